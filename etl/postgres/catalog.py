"""What a PostgreSQL schema holds, read from pg_catalog (the values live in etl/model.py): the
other side of a schema diff."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg import sql

from etl.model import PgColumn, PgConstraint, PgIndex, PgTable, PgTrigger, PgView, TargetCatalog
from etl.settings import ForeignKeyAction

_FK_ACTIONS = {
    "a": ForeignKeyAction.NO_ACTION,
    "r": ForeignKeyAction.RESTRICT,
    "c": ForeignKeyAction.CASCADE,
    "n": ForeignKeyAction.SET_NULL,
    "d": ForeignKeyAction.SET_DEFAULT,
}


# Runs one query and returns its rows: psycopg's connection, or the apply's own transaction.
Rows = Callable[[sql.SQL | sql.Composed], Sequence[Sequence[Any]]]


def read_target_catalog(conn: psycopg.Connection, schema: str) -> TargetCatalog:
    """Read in a transaction whose search_path is the schema itself, so that names in defaults,
    types and index predicates print without the schema: two schemas holding the same
    definitions read back equal."""
    with conn.transaction():
        return read_catalog_with(lambda query: conn.execute(query).fetchall(), schema)


def read_firing(conn: psycopg.Connection, schema: str) -> tuple[tuple[str, str, str, str], ...]:
    """(table, "trigger" or "rule", name, the trigger's function) of each trigger and rule on a
    table of `schema` that fires on the session's writes (not disabled, nor only for replicas;
    a view's own `_RETURN` rule is not a table's)."""
    found = conn.execute(
        sql.SQL(
            "SELECT c.relname::text, 'trigger', t.tgname::text, p.proname::text FROM pg_trigger t "
            "JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_proc p ON p.oid = t.tgfoid "
            "WHERE n.nspname = {0} AND c.relkind IN ('r', 'p') AND NOT t.tgisinternal "
            "AND t.tgenabled IN ('O', 'A') "
            "UNION ALL SELECT c.relname::text, 'rule', r.rulename::text, '' FROM pg_rewrite r "
            "JOIN pg_class c ON c.oid = r.ev_class JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = {0} AND c.relkind IN ('r', 'p') AND r.ev_enabled IN ('O', 'A') "
            "ORDER BY 1, 2, 3"
        ).format(sql.Literal(schema))
    ).fetchall()
    return tuple((str(t), str(k), str(n), str(f)) for t, k, n, f in found)


def read_catalog_with(rows: Rows, schema: str) -> TargetCatalog:
    """The catalog of `schema` read through `rows`, inside a transaction the caller holds: its
    search_path is the schema until the read ends, then as it was."""
    (previous,) = rows(sql.SQL("SELECT current_setting('search_path')"))[0]
    rows(
        sql.SQL("SELECT set_config('search_path', {}, true)").format(
            sql.Literal(sql.Identifier(schema).as_string(None))
        )
    )
    try:
        return _read(rows, schema)
    finally:
        rows(sql.SQL("SELECT set_config('search_path', {}, true)").format(sql.Literal(previous)))


def _read(rows: Rows, schema: str) -> TargetCatalog:
    literal = sql.Literal(schema)
    if not rows(sql.SQL("SELECT 1 FROM pg_namespace WHERE nspname = {}").format(literal)):
        return TargetCatalog(schema, False)
    columns: dict[str, list[PgColumn]] = {}
    for table, name, type_, not_null, default, identity, enum, generated in rows(
        sql.SQL(
            "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, "
            "pg_get_expr(d.adbin, d.adrelid), a.attidentity <> '', "
            "CASE WHEN t.typtype = 'e' THEN t.typname END, a.attgenerated <> '' "
            "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_type t ON t.oid = a.atttypid "
            "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
            "WHERE n.nspname = {} AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped "
            "ORDER BY c.relname, a.attnum"
        ).format(literal)
    ):
        columns.setdefault(table, []).append(
            PgColumn(name, type_, not not_null, default, identity, enum, generated)
        )
    constraints: dict[str, list[PgConstraint]] = {}
    for table, name, kind, cols, ref_table, ref_cols, on_delete, on_update, definition in rows(
        sql.SQL(
            "SELECT c.relname, k.conname, k.contype, "
            "ARRAY(SELECT a.attname FROM unnest(k.conkey) WITH ORDINALITY u(n, i) "
            "      JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.i), "
            "r.relname, "
            "ARRAY(SELECT a.attname FROM unnest(k.confkey) WITH ORDINALITY u(n, i) "
            "      JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY u.i), "
            "k.confdeltype, k.confupdtype, "
            "CASE k.contype WHEN 'c' THEN pg_get_constraintdef(k.oid, true) "
            "  WHEN 'f' THEN CASE WHEN k.condeferred THEN 'DEFERRABLE INITIALLY DEFERRED' "
            "    WHEN k.condeferrable THEN 'DEFERRABLE' ELSE '' END END "
            "FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_class r ON r.oid = k.confrelid "
            "WHERE n.nspname = {} AND k.contype IN ('p', 'u', 'f', 'c') ORDER BY c.relname, k.conname"
        ).format(literal)
    ):
        constraints.setdefault(table, []).append(
            PgConstraint(
                name,
                kind,
                tuple(cols),
                ref_table,
                tuple(ref_cols or ()),
                _FK_ACTIONS.get(on_delete) if kind == "f" else None,
                _FK_ACTIONS.get(on_update) if kind == "f" else None,
                definition,
            )
        )
    indexes: dict[str, list[PgIndex]] = {}
    for table, name, definition, unique in rows(
        sql.SQL(
            # The whole definition after its head (`CREATE INDEX name ON table USING `): a key's
            # own pg_get_indexdef(oid, k) leaves out its DESC, NULLS FIRST/LAST and COLLATE.
            "SELECT t.relname, i.relname, "
            "CASE WHEN starts_with(d.def, d.head) THEN substr(d.def, length(d.head) + 1) ELSE d.def END, "
            "x.indisunique "
            "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
            "JOIN pg_namespace n ON n.oid = t.relnamespace "
            "CROSS JOIN LATERAL (SELECT pg_get_indexdef(x.indexrelid, 0, true) AS def, "
            "  'CREATE ' || CASE WHEN x.indisunique THEN 'UNIQUE ' ELSE '' END || 'INDEX ' "
            "  || quote_ident(i.relname) || ' ON ' || quote_ident(t.relname) || ' USING ' AS head) d "
            "WHERE n.nspname = {} AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid) "
            "ORDER BY t.relname, i.relname"
        ).format(literal)
    ):
        indexes.setdefault(table, []).append(PgIndex(name, definition, unique))
    enums = rows(
        sql.SQL(
            "SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_type t "
            "JOIN pg_namespace n ON n.oid = t.typnamespace JOIN pg_enum e ON e.enumtypid = t.oid "
            "WHERE n.nspname = {} GROUP BY t.typname ORDER BY t.typname"
        ).format(literal)
    )
    tables = tuple(
        PgTable(name, tuple(cols), tuple(constraints.get(name, ())), tuple(indexes.get(name, ())))
        for name, cols in columns.items()
    )
    views = rows(
        sql.SQL(
            "SELECT c.relname, pg_get_viewdef(c.oid) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = {} AND c.relkind = 'v' "
            "ORDER BY c.relname"
        ).format(literal)
    )
    triggers = rows(
        sql.SQL(
            "SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid, true) || ' ' || p.prosrc FROM pg_trigger t "
            "JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_proc p ON p.oid = t.tgfoid WHERE n.nspname = {} AND NOT t.tgisinternal "
            "ORDER BY c.relname, t.tgname"
        ).format(literal)
    )
    return TargetCatalog(
        schema,
        True,
        tables,
        tuple((name, tuple(labels)) for name, labels in enums),
        tuple(PgView(name, definition) for name, definition in views),
        tuple(PgTrigger(name, table, definition) for table, name, definition in triggers),
    )
