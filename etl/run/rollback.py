"""`etl rollback`: the tables as they were before the last successful apply, from what it kept
(etl/postgres/history.py). Planned first, like apply, then run in one transaction under apply's lock."""

from __future__ import annotations

import psycopg
from psycopg import sql

from etl.core.plan import CHANGE_COLUMN, ResetSequence, Restore, RollbackPlan
from etl.errors import PlanError, TargetError, first_line
from etl.postgres.ddl import create_view_sql, postgres_sql, schema_lock_sql, set_sequence_sql
from etl.postgres.history import (
    dependent_views_query,
    foreign_keys_query,
    function_definition_query,
    triggers_query,
)
from etl.postgres.metadata import HISTORY, METADATA_SCHEMA, RUNS
from etl.postgres.target import connect, redact


def plan_rollback(url: str, schema: str) -> RollbackPlan:
    with connect(url) as conn:
        return _read_plan(conn, schema)


def _read_plan(conn: psycopg.Connection, schema: str) -> RollbackPlan:
    has = conn.execute(
        "SELECT to_regclass(%s), to_regclass(%s)",
        (f"{METADATA_SCHEMA}.history", f"{METADATA_SCHEMA}.runs"),
    ).fetchone()
    if not has or has[0] is None or has[1] is None:
        raise PlanError(f'nothing to roll back: no apply to schema "{schema}" has kept anything')
    runs = conn.execute(
        sql.SQL(
            "SELECT r.started_at, r.spec, EXISTS (SELECT 1 FROM {h} h WHERE h.target_schema = r.target_schema "
            "AND h.run_started_at = r.started_at), EXISTS (SELECT 1 FROM {h} h WHERE h.target_schema = "
            "r.target_schema AND h.run_started_at = r.started_at AND h.restored_at IS NOT NULL) "
            "FROM {runs} r WHERE r.target_schema = %s AND r.status = 'succeeded' ORDER BY r.started_at DESC"
        ).format(h=HISTORY, runs=RUNS),
        (schema,),
    ).fetchall()
    # The newest apply not rolled back yet is the one to undo; it must have kept its tables.
    run = next((r for r in runs if not r[3]), None)
    if run is None:
        raise PlanError(f'nothing to roll back: no successful apply to schema "{schema}" is left to undo')
    started_at, spec, kept, _ = run
    if not kept:
        raise PlanError(
            f"the last apply (started {started_at}) kept nothing to roll back to: "
            "its copies expired, or the spec's rollback.retention was 0"
        )
    rows = conn.execute(
        sql.SQL(
            # An etl.history made by an earlier version has no column sequences until an apply adds it.
            "SELECT table_name, kept_in, rows, foreign_keys, enum_columns, "
            "COALESCE(to_jsonb(h) -> 'sequences', '[]'), COALESCE((to_jsonb(h) ->> 'is_view')::boolean, false), "
            "to_jsonb(h) ->> 'view_definition', COALESCE(to_jsonb(h) -> 'triggers', '[]'), "
            "to_jsonb(h) -> 'key_columns' FROM {} AS h "
            "WHERE target_schema = %s AND run_started_at = %s ORDER BY id"
        ).format(HISTORY),
        (schema, started_at),
    ).fetchall()
    restores = []
    views = tuple((row[0], row[7]) for row in rows if row[6])
    for table, kept_in, rows_then, fks, enums, sequences, is_view, _, triggers, key in rows:
        if is_view:
            continue
        exists = conn.execute(
            "SELECT to_regclass(%s)", (sql.Identifier(schema, table).as_string(conn),)
        ).fetchone()
        rows_now = None
        if exists and exists[0] is not None:
            count = conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))
            ).fetchone()
            rows_now = int(count[0]) if count else 0
        changed = 0
        if key is not None:
            if rows_now is None:
                raise PlanError(
                    f'table "{schema}"."{table}" was dropped since the apply that started at {started_at}, '
                    "which kept only the rows it changed: rollback cannot restore it; nothing was changed"
                )
            enum_types = {e["column"]: e["enum"] for e in enums}
            changed, rows_then = _changes_kept(conn, schema, table, kept_in, tuple(key), enum_types, rows_now)
        restores.append(
            Restore(
                table,
                kept_in,
                rows_then,
                rows_now,
                tuple((f["name"], f["definition"]) for f in fks),
                tuple((e["column"], e["enum"], e["default"]) for e in enums),
                tuple((q["column"], q["last_value"], q["is_called"]) for q in sequences),
                tuple(
                    (t["name"], t["definition"], t["function"], t["function_definition"]) for t in triggers
                ),
                None if key is None else tuple(key),
                changed,
            )
        )
    return RollbackPlan(schema, str(started_at), spec, tuple(restores), views)


def apply_rollback(plan: RollbackPlan, url: str) -> None:
    schema = plan.schema
    try:
        with connect(url) as conn, conn.transaction():
            locked = conn.execute(schema_lock_sql(schema)).fetchone()
            if not locked or not locked[0]:
                raise TargetError(
                    f'an etl apply is running against schema "{schema}"; nothing was changed: run again when it has finished'
                )
            # The plan was shown, maybe answered much later: an apply that committed since must
            # not be undone unseen, so what is undone now must still be what the plan showed.
            if _history(_read_plan(conn, schema)) != _history(plan):
                raise PlanError(
                    f'the history of schema "{schema}" changed since the rollback plan was made '
                    "(an apply or rollback ran since); nothing was changed: run etl rollback again"
                )
            # A table kept whole is replaced by its copy; one kept by its changes is restored in
            # place (_put_back_changes).
            whole = {r.table for r in plan.restores if r.key is None}
            in_place = [r for r in plan.restores if r.key is not None]
            # Foreign keys of other tables onto the tables replaced go, and come back onto the copies.
            referencing: list[tuple[str, str, str, str]] = []
            for r in plan.restores:
                if r.rows_now is not None and r.key is None:
                    for row in conn.execute(foreign_keys_query(schema, r.table, referencing=True)).fetchall():
                        if not (row[0] == schema and row[1] in whole) and row not in referencing:
                            referencing.append(row)
            for ns, table, name, _ in referencing:
                conn.execute(
                    sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                        sql.Identifier(ns, table), sql.Identifier(name)
                    )
                )
            live = [r.table for r in plan.restores if r.rows_now is not None and r.key is None]
            # The views the apply dropped or created go too (their readers first), and come back
            # as they were before it.
            recorded = [name for name, _ in plan.views if _is_view(conn, schema, name)]
            views = _drop_views_reading(conn, schema, live + recorded)
            for name in recorded:
                conn.execute(sql.SQL("DROP VIEW IF EXISTS {}").format(sql.Identifier(schema, name)))
            if live:
                conn.execute(
                    sql.SQL("DROP TABLE {}").format(
                        sql.SQL(", ").join(sql.Identifier(schema, t) for t in live)
                    )
                )
            deferred = _defer_keys_between(conn, schema, [r.table for r in in_place])
            for r in in_place:
                _put_back_changes(conn, schema, r)
            for r in plan.restores:
                if r.kept_in is None or r.key is not None:
                    continue
                conn.execute(
                    sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(
                        sql.Identifier(r.kept_in, r.table), sql.Identifier(schema)
                    )
                )
                for column, enum, default in r.enum_columns:
                    conn.execute(
                        sql.SQL("ALTER TABLE {} ALTER COLUMN {} TYPE {} USING {}::{}").format(
                            sql.Identifier(schema, r.table),
                            sql.Identifier(column),
                            sql.Identifier(schema, enum),
                            sql.Identifier(column),
                            sql.Identifier(schema, enum),
                        )
                    )
                    if default is not None:
                        # PostgreSQL's own text of the default, as pg_get_expr printed it.
                        conn.execute(
                            sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET DEFAULT {}").format(
                                sql.Identifier(schema, r.table), sql.Identifier(column), sql.SQL(default)
                            )
                        )
            # Definitions as pg_get_constraintdef printed them when the copy was made.
            for r in plan.restores:
                if r.kept_in is None or r.key is not None:
                    continue
                for name, definition in r.foreign_keys:
                    conn.execute(
                        sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                            sql.Identifier(schema, r.table), sql.Identifier(name), sql.SQL(definition)
                        )
                    )
            for r in plan.restores:
                if r.kept_in is not None:
                    _restore_triggers(conn, r)
            for ns, table, name, definition in referencing:
                conn.execute(
                    sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                        sql.Identifier(ns, table), sql.Identifier(name), sql.SQL(definition)
                    )
                )
            for r in plan.restores:
                if r.kept_in is None:
                    continue
                for statement in _sequence_statements(conn, schema, r):
                    conn.execute(statement)
            for name, before in reversed(plan.views):  # readers after the views they read
                if before is not None:
                    conn.execute(create_view_sql(schema, name, before.strip().removesuffix(";")))
            restored_views = {name for name, _ in plan.views}
            _create_views_again(conn, schema, [(n, d) for n, d in views if n not in restored_views])
            _undefer(conn, deferred)
            for kept_in in sorted({r.kept_in for r in plan.restores if r.kept_in}):
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(kept_in)))
            conn.execute(
                sql.SQL(
                    "UPDATE {} SET restored_at = now() WHERE target_schema = %s AND run_started_at = %s"
                ).format(HISTORY),
                (schema, plan.run_started_at),
            )
    except psycopg.Error as exc:
        raise TargetError(f"rollback failed, nothing was changed: {redact(first_line(exc), url)}") from exc


def _is_view(conn: psycopg.Connection, schema: str, name: str) -> bool:
    found = conn.execute(
        "SELECT c.relkind = 'v' FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s",
        (schema, name),
    ).fetchone()
    return bool(found and found[0])


def _drop_views_reading(conn: psycopg.Connection, schema: str, tables: list[str]) -> list[tuple[str, str]]:
    """Drop the views that read the tables being restored (PostgreSQL refuses to drop a table a
    view reads), readers of readers first; their (name, definition), to create them again."""
    if not tables:
        return []
    with conn.transaction():
        conn.execute("SELECT set_config('search_path', %s, true)", (sql.Identifier(schema).as_string(conn),))
        found = conn.execute(dependent_views_query(schema, tables)).fetchall()
    for name, _, _ in reversed(found):
        conn.execute(sql.SQL("DROP VIEW {}").format(sql.Identifier(schema, name)))
    return [(name, definition.strip().removesuffix(";")) for name, definition, _ in found]


def _create_views_again(conn: psycopg.Connection, schema: str, views: list[tuple[str, str]]) -> None:
    """The views dropped for the restore, over the restored tables. A view reading a table the
    restore drops (one the undone apply created) was created by that apply too: it stays gone."""
    for name, definition in views:
        try:
            with conn.transaction():
                conn.execute(create_view_sql(schema, name, definition))
        except psycopg.errors.UndefinedTable:
            continue


def _history(plan: RollbackPlan) -> tuple:
    """What a rollback plan undoes: the apply, and what it kept of each table."""
    return (
        plan.run_started_at,
        tuple(
            (r.table, r.kept_in, r.rows_then, r.foreign_keys, r.enum_columns, r.sequences, r.triggers, r.key)
            for r in plan.restores
        ),
        plan.views,
    )


def _restore_triggers(conn: psycopg.Connection, restore: Restore) -> None:
    """The restored table's triggers as they were before the undone apply (the copy holds none):
    each one's function first, as it was then, where the apply changed or dropped it.
    Definitions as pg_get_triggerdef and pg_get_functiondef printed them when the copy was made."""
    for _, definition, function, function_definition in restore.triggers:
        if function_definition is not None:
            found = conn.execute(function_definition_query(function)).fetchone()
            if found is None or found[0] != function_definition:
                conn.execute(sql.SQL(function_definition))
        conn.execute(sql.SQL(definition))


def _sequence_statements(conn: psycopg.Connection, schema: str, restore: Restore) -> list[sql.Composed]:
    """The restored table's sequences as they were when the copy was made, inside the transaction
    (etl/postgres/ddl.py set_sequence_sql). A copy recorded by an earlier version, with no sequence
    state, has its identity continue after its largest id."""
    qualified = sql.Literal(sql.Identifier(schema, restore.table).as_string(conn))
    statements: list[sql.Composed] = [
        set_sequence_sql(
            sql.SQL("pg_get_serial_sequence({}, {})").format(qualified, sql.Literal(column)),
            sql.SQL("SELECT {}::bigint, {}::boolean").format(sql.Literal(last_value), sql.Literal(is_called)),
        )
        for column, last_value, is_called in restore.sequences
    ]
    recorded = {column for column, _, _ in restore.sequences}
    identity = conn.execute(
        "SELECT a.attname FROM pg_attribute a WHERE a.attrelid = %s::regclass AND a.attidentity <> ''",
        (sql.Identifier(schema, restore.table).as_string(conn),),
    ).fetchall()
    for (column,) in identity:
        if column not in recorded:
            statements += postgres_sql(ResetSequence(schema, restore.table, column, None))
    return statements


def _key_match(key: tuple[str, ...], enum_types: dict[str, str], schema: str) -> sql.Composable:
    """The live row `t` and the copy's row `k` have the same key (the copy holds enums as text)."""
    return sql.SQL(" AND ").join(
        sql.SQL("t.{} = {}").format(sql.Identifier(c), _kept_value(c, enum_types, schema)) for c in key
    )


def _kept_value(column: str, enum_types: dict[str, str], schema: str) -> sql.Composable:
    if column in enum_types:
        return sql.SQL("k.{}::{}").format(sql.Identifier(column), sql.Identifier(schema, enum_types[column]))
    return sql.SQL("k.{}").format(sql.Identifier(column))


def _changes_kept(
    conn: psycopg.Connection,
    schema: str,
    table: str,
    kept_in: str,
    key: tuple[str, ...],
    enum_types: dict[str, str],
    rows_now: int,
) -> tuple[int, int]:
    """(rows the copy holds, rows the table held before the apply): now, less the rows it
    inserted that are still there, plus those it updated or deleted that are gone."""
    live = sql.SQL("EXISTS (SELECT 1 FROM {} AS t WHERE {})").format(
        sql.Identifier(schema, table), _key_match(key, enum_types, schema)
    )
    found = conn.execute(
        sql.SQL(
            "SELECT count(*), count(*) FILTER (WHERE k.{op} = 'i' AND {live}), "
            "count(*) FILTER (WHERE k.{op} <> 'i' AND NOT {live}) FROM {copy} AS k"
        ).format(op=sql.Identifier(CHANGE_COLUMN), live=live, copy=sql.Identifier(kept_in, table))
    ).fetchone()
    assert found is not None  # an aggregate always yields one row
    held, inserted, gone = (int(v) for v in found)
    return held, rows_now - inserted + gone


def _defer_keys_between(conn: psycopg.Connection, schema: str, tables: list[str]) -> list[tuple]:
    """Make the foreign keys between `tables` (a table's onto itself too) check at the end of the
    transaction, so that rows put back in any order may reference each other; (schema, table,
    name, deferrable, initially deferred) of each one changed, to set back (_undefer)."""
    if not tables:
        return []
    names = [sql.Identifier(schema, t).as_string(conn) for t in tables]
    found = conn.execute(
        "SELECT n.nspname::text, c.relname::text, k.conname::text, k.condeferrable, k.condeferred "
        "FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE k.contype = 'f' AND k.conrelid = ANY(%s::regclass[]) AND k.confrelid = ANY(%s::regclass[]) "
        "AND NOT (k.condeferrable AND k.condeferred) ORDER BY 1, 2, 3",
        (names, names),
    ).fetchall()
    for ns, table, name, _, _ in found:
        conn.execute(
            sql.SQL("ALTER TABLE {} ALTER CONSTRAINT {} DEFERRABLE INITIALLY DEFERRED").format(
                sql.Identifier(ns, table), sql.Identifier(name)
            )
        )
    conn.execute("SET CONSTRAINTS ALL DEFERRED")
    return found


def _undefer(conn: psycopg.Connection, deferred: list[tuple]) -> None:
    """Check the deferred foreign keys now, then give them back their own timing."""
    if not deferred:
        return
    conn.execute("SET CONSTRAINTS ALL IMMEDIATE")
    for ns, table, name, deferrable, _ in deferred:
        timing = "DEFERRABLE INITIALLY IMMEDIATE" if deferrable else "NOT DEFERRABLE"
        conn.execute(
            sql.SQL("ALTER TABLE {} ALTER CONSTRAINT {} {}").format(
                sql.Identifier(ns, table), sql.Identifier(name), sql.SQL(timing)
            )
        )


def _put_back_changes(conn: psycopg.Connection, schema: str, restore: Restore) -> None:
    """Restore a table kept by its changes in place: the rows the apply inserted go, those it
    updated or deleted get their values back (inserted again where gone). No trigger fires: the
    table's triggers go first and come back as they were before the apply (_restore_triggers)."""
    assert restore.kept_in is not None and restore.key is not None
    target = sql.Identifier(schema, restore.table)
    qualified = target.as_string(conn)
    for name, _, _, _ in conn.execute(triggers_query(schema, restore.table)).fetchall():
        conn.execute(sql.SQL("DROP TRIGGER {} ON {}").format(sql.Identifier(name), target))
    columns = [
        name
        for (name,) in conn.execute(
            "SELECT attname::text FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
            "AND NOT attisdropped AND attgenerated = '' ORDER BY attnum",
            (qualified,),
        ).fetchall()
    ]
    enum_types = {column: enum for column, enum, _ in restore.enum_columns}
    copy = sql.Identifier(restore.kept_in, restore.table)
    op = sql.Identifier(CHANGE_COLUMN)
    match = _key_match(restore.key, enum_types, schema)
    conn.execute(
        sql.SQL("DELETE FROM {} AS t USING {} AS k WHERE k.{} = 'i' AND {}").format(target, copy, op, match)
    )
    others = [c for c in columns if c not in restore.key]
    if others:
        conn.execute(
            sql.SQL("UPDATE {} AS t SET {} FROM {} AS k WHERE k.{} <> 'i' AND {}").format(
                target,
                sql.SQL(", ").join(
                    sql.SQL("{} = {}").format(sql.Identifier(c), _kept_value(c, enum_types, schema))
                    for c in others
                ),
                copy,
                op,
                match,
            )
        )
    conn.execute(
        sql.SQL(
            "INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE SELECT {} FROM {} AS k "
            "WHERE k.{} <> 'i' AND NOT EXISTS (SELECT 1 FROM {} AS t WHERE {})"
        ).format(
            target,
            sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.SQL(", ").join(_kept_value(c, enum_types, schema) for c in columns),
            copy,
            op,
            target,
            match,
        )
    )
