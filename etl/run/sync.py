"""Bringing an existing table up to date inside apply's transaction: the rows that differ are
staged in PostgreSQL (etl's own schema, dropped before COMMIT) and applied with one INSERT, one
UPDATE and one DELETE. Staging lets PostgreSQL cast values it converts itself (numeric(65,30),
inet, enums, ...) exactly as a first load does, and keeps every statement set-based."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import duckdb
from psycopg import sql

from etl.core.mapping import TargetTable
from etl.core.plan import CHANGE_COLUMN, DeleteRows, Plan, SyncRows
from etl.duck import quote_ident
from etl.postgres.ddl import type_sql
from etl.postgres.metadata import METADATA_SCHEMA, keep_xmins_sql, unchanged_since_sql
from etl.run.fingerprint import desired_digest
from etl.run.load import source_rows_query
from etl.run.rowdiff import (
    append_mark_statements,
    at_mark,
    diff_ranges,
    key_join,
    key_names,
    keyed,
    late_rows,
    past_mark,
    source_keys_sql,
    target_keys_sql,
    without_set_aside,
)
from etl.run.session import TARGET_ALIAS
from etl.run.verify import (
    range_batches,
    register_functions,
    row_hash,
    rows_in_ranges,
    source_sums_query,
    target_relation,
    xmins_in_ranges,
)
from etl.settings import Mode
from etl.sqlite.convert import loads_as_text

Execute = Callable[[sql.Composable, str], None]


@dataclass(frozen=True)
class SyncResult:
    counts: tuple[int, int, int]  # rows inserted, updated, to be deleted
    sums: tuple[int, str] | None  # the source's count and checksum (mode: sync), for verification
    written: str | None  # DuckDB temp table of the rows written (upsert, append), for verification


def stage_name(schema: str, table: str) -> str:
    digest = hashlib.sha256(f"{schema}\x00{table}".encode()).hexdigest()[:24]
    return f"stage_{digest}"


def _stage(schema: str, table: str) -> sql.Identifier:
    return sql.Identifier(METADATA_SCHEMA, stage_name(schema, table))


def _stage_ddl(step: SyncRows) -> list[sql.Composable]:
    table = step.table
    columns: list[sql.Composable] = [
        sql.SQL("{} {}").format(
            sql.Identifier(c.name), sql.SQL("text" if loads_as_text(c.pg_type) else c.pg_type.sql())
        )
        for c in table.columns
    ]
    columns += [sql.SQL("etl_op text NOT NULL"), sql.SQL("etl_ctid text")]
    return [
        # No CREATE SCHEMA: apply creates etl's schema before its transaction (target.ensure_metadata).
        sql.SQL("DROP TABLE IF EXISTS {}").format(_stage(step.schema, table.name)),
        sql.SQL("CREATE TABLE {} ({})").format(_stage(step.schema, table.name), sql.SQL(", ").join(columns)),
    ]


def _stage_target(step: SyncRows) -> str:
    return f"{TARGET_ALIAS}.{quote_ident(METADATA_SCHEMA)}.{quote_ident(stage_name(step.schema, step.table.name))}"


def _cast(schema: str, table: TargetTable, name: str) -> sql.Composed:
    column = next(c for c in table.columns if c.name == name)
    return sql.SQL("st.{}::{}").format(sql.Identifier(name), type_sql(column.pg_type, schema))


# Called with the staged rows to insert or update (staged_rows) before they are written: it
# fails the run on a row a check refuses, or sets such rows aside (drop_refused_sql) and returns
# their verification hashes.
Refuse = Callable[[sql.Composable], list[int]]


@dataclass(frozen=True)
class SyncStatement:
    """One statement of a row sync, in the order apply runs it: DuckDB's (`text` a str) or
    PostgreSQL's (a Composable, sent with `what` naming it in an error). `reads`: what the one
    row it yields counts ("" for none); `clears_cache`: DuckDB forgets the target's catalog after
    it (the statement created a table the next ones write to)."""

    text: str | sql.Composable
    what: str = ""
    reads: str = ""  # "" | "inserts" | "inserts, updates" | "deletes" | "sums"
    clears_cache: bool = False
    writes_staged: bool = False  # the first statement writing the staged rows: checks run before it


def written_name(step: SyncRows, index: int, verify: bool) -> str | None:
    """The DuckDB temp table keeping the rows an upsert or append writes, which verification
    checks in the target (a sync's rows are verified with the whole table instead)."""
    return f"etl_written_{index}" if verify and step.table.mode != Mode.SYNC else None


def sync_statements(
    step: SyncRows, index: int, verify: bool, kept_in: str | None = None
) -> list[SyncStatement]:
    """The statements bringing the table of `step` up to date, as sync_rows runs them (its pure
    twin, for `etl plan --sql`): they are fixed by the plan; only the rows they find vary. They
    stage the rows that differ, insert and update them, and stage the keys to delete (DeleteRows
    deletes them, children first). `index`: a number unique to the table in this run; `verify`:
    whether apply verifies (then the rows written, or the source's checksum, are kept); `kept_in`:
    the schema of the run's copies for rollback, where a sync that keeps its changes
    (`step.keep_changes`) copies the rows it is about to change."""
    table, schema = step.table, step.schema
    what = "creating a staging table for the rows that differ"
    found = [SyncStatement(statement, what) for statement in _stage_ddl(step)]
    found[-1] = replace(found[-1], clears_cache=True)
    stage = _stage_target(step)
    values = ", ".join(f"s.c{i}" for i in range(len(table.columns)))
    names = ", ".join(quote_ident(c.name) for c in table.columns)
    written = written_name(step, index, verify)
    vhash, _ = row_hash(table, "source", "s.c")
    kept = _Written(written, table)
    if table.mode == Mode.APPEND:
        marks, source_mark = append_mark_statements(schema, table)
        found += [SyncStatement(m) for m in marks]
        for i, row_range in enumerate(diff_ranges(table)):
            found.append(
                SyncStatement(
                    f"CREATE OR REPLACE TEMP TABLE etl_rows AS {source_rows_query(schema, table, row_range)}"
                )
            )
            new = f"FROM etl_rows s, etl_mark m WHERE {past_mark(source_mark)}"
            found.append(SyncStatement(f"SELECT count(*) {new}", reads="inserts"))
            found.append(SyncStatement(f"INSERT INTO {stage} ({names}, etl_op) SELECT {values}, 'i' {new}"))
            found += kept.statements(f"SELECT s.*, {vhash} AS vh {new}")
            at = f"(SELECT s.* FROM etl_rows s, etl_mark m WHERE {at_mark(source_mark)})"
            select = source_keys_sql(table, at, keep="*")
            found.append(
                SyncStatement(
                    f"CREATE OR REPLACE TEMP TABLE etl_at AS {select}"
                    if i == 0
                    else f"INSERT INTO etl_at {select}"
                )
            )
        late = late_rows(table, "etl_at")
        found.append(SyncStatement(f"SELECT count(*) {late}", reads="inserts"))
        found.append(SyncStatement(f"INSERT INTO {stage} ({names}, etl_op) SELECT {values}, 'i' {late}"))
        found += kept.statements(f"SELECT s.*, {vhash} AS vh {late}")
        found += [
            SyncStatement(f"DROP TABLE {name}") for name in ("etl_rows", "etl_at", "etl_mark", "etl_at_mark")
        ]
    else:
        found += [SyncStatement(statement) for statement in _target_keys(step)]
        reads = _source_reads(step)
        # A sync by ranges reads few rows, in many queries: they gather in etl_rows and are compared,
        # staged and summed once. A table's row ranges (large values) are one at a time instead.
        groups = [reads] if step.read_rowids is not None else [[read] for read in reads]
        for i, group in enumerate(groups):
            for j, read in enumerate(group):
                # Rows a check set aside at an earlier apply stay out (unless their values changed).
                relation = without_set_aside(table, f"({read})", step.diff.set_aside)
                select = source_keys_sql(table, relation, keep="*")
                found.append(
                    SyncStatement(
                        f"INSERT INTO etl_rows {select}"
                        if j
                        else f"CREATE OR REPLACE TEMP TABLE etl_rows AS {select}"
                    )
                )
            joined = f"FROM etl_rows s LEFT JOIN etl_t t ON {key_join(table, 's', 't')}"
            found.append(
                SyncStatement(
                    f"SELECT count(*) FILTER (WHERE t.h IS NULL), count(*) FILTER (WHERE t.h <> s.h) {joined}",
                    reads="inserts, updates",
                )
            )
            differing = f"{joined} WHERE t.h IS DISTINCT FROM s.h"
            found.append(
                SyncStatement(
                    f"INSERT INTO {stage} ({names}, etl_op) "
                    f"SELECT {values}, CASE WHEN t.h IS NULL THEN 'i' ELSE 'u' END {differing}"
                )
            )
            if table.mode == Mode.SYNC:
                listed = ", ".join(key_names(table))
                found.append(
                    SyncStatement(
                        f"INSERT INTO etl_seen SELECT {listed} FROM etl_rows"
                        if i
                        else f"CREATE OR REPLACE TEMP TABLE etl_seen AS SELECT {listed} FROM etl_rows"
                    )
                )
                if verify and step.diff.range_sums is None:
                    found.append(SyncStatement(source_sums_query(table, "etl_rows"), reads="sums"))
            found += kept.statements(f"SELECT s.*, {vhash} AS vh {differing}")
        found.append(SyncStatement("DROP TABLE etl_rows"))
        if table.mode == Mode.SYNC:
            gone = f"FROM etl_t t ANTI JOIN etl_seen s ON {key_join(table, 't', 's')}"
            found.append(SyncStatement(f"SELECT count(*) {gone}", reads="deletes"))
            if keyed(table):
                key_columns = ", ".join(quote_ident(k) for k in table.primary_key)
                key_values = ", ".join(f"t.k{j}" for j in range(len(table.primary_key)))
                found.append(
                    SyncStatement(
                        f"INSERT INTO {stage} ({key_columns}, etl_op) SELECT {key_values}, 'd' {gone}"
                    )
                )
            else:
                found.append(
                    SyncStatement(f"INSERT INTO {stage} (etl_ctid, etl_op) SELECT t.etl_ctid, 'd' {gone}")
                )
            found.append(SyncStatement("DROP TABLE etl_seen"))
        found.append(SyncStatement("DROP TABLE etl_t"))
    if step.keep_changes:
        assert kept_in is not None, "a sync keeping its changes needs the run's history schema"
        found += [
            SyncStatement(s, f'keeping the rows apply changes in "{table.name}"')
            for s in keep_changes_sql(step, kept_in)
        ]
    found += _apply_staged(step)
    if not step.diff.delete:  # else DeleteRows deletes the staged keys, then drops the table
        found.append(
            SyncStatement(
                sql.SQL("DROP TABLE {}").format(_stage(schema, table.name)), "dropping the staging table"
            )
        )
    return found


def _target_keys(step: SyncRows) -> list[str]:
    """DuckDB SQL making etl_t, the target's keys and row hashes: of the whole table, or (a sync
    by ranges) of the rows whose rowid key lies in the ranges it reads. The rows outside them are
    equal on both sides (the plan proved it): no delete comes from them."""
    schema, table, rowids = step.schema, step.table, step.read_rowids
    rows = None if rowids is None else rows_in_ranges(schema, table, rowids)
    return [f"CREATE OR REPLACE TEMP TABLE etl_t AS {target_keys_sql(schema, table, rows=rows)}"]


def _source_reads(step: SyncRows) -> list[str]:
    """DuckDB SQL reading the source's rows the sync compares, one query each: the table's row
    ranges, or (a sync by ranges) a batch of the rowid ranges it reads each."""
    schema, table, rowids = step.schema, step.table, step.read_rowids
    if rowids is None:
        return [source_rows_query(schema, table, row_range) for row_range in diff_ranges(table)]
    return [source_rows_query(schema, table, rowids=batch) for batch in range_batches(rowids)]


def ranged_syncs(plan: Plan) -> list[SyncRows]:
    """The plan's syncs that read only some rowid ranges of their table."""
    return [s for s in plan.steps if isinstance(s, SyncRows) and s.rowids is not None]


@dataclass(frozen=True)
class RangedGuard:
    """What apply runs first in its transaction when it syncs tables by ranges: `lock` them
    (`tables`) against other writers (readers still read); read their `state` again with the
    plan's own query (etl.fingerprints), one row per table still as the last apply left it; then
    `keep` the recorded xmins of the rows those whose syncs read only their differing rows will
    not write (written_xmins). The lock comes before any statement that takes the transaction's
    snapshot, so the state read is the one the sync writes over: a write another session
    committed after the plan's read is seen, and none can come after. `no_jit` comes before
    `keep`: the statements that read rows by ranges (a join of the ranges to the key) are
    estimated at many times the rows they read, since PostgreSQL cannot tell how few each range
    holds, and just-in-time compilation, which that estimate triggers, costs more than they do.
    For the apply's transaction only (SET LOCAL)."""

    tables: sql.Composed
    lock: sql.Composed
    state: sql.Composed
    keep: list[sql.Composed]
    no_jit: sql.Composed = field(default_factory=lambda: sql.Composed([sql.SQL("SET LOCAL jit = off")]))


def ranged_guard_sql(plan: Plan) -> RangedGuard | None:
    """The plan's RangedGuard; None when it syncs no table by ranges."""
    steps = ranged_syncs(plan)
    if not steps:
        return None
    tables = sql.SQL(", ").join(sql.Identifier(s.schema, s.table.name) for s in steps)
    state = sql.SQL(" UNION ALL ").join(
        unchanged_since_sql(s.schema, s.table.name, desired_digest(s.table)) for s in steps
    )
    keep = keep_xmins_sql(plan.schema, list(written_xmins(plan).items()))
    return RangedGuard(tables, sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(tables), state, keep)


def written_xmins(plan: Plan) -> dict[str, sql.Composable]:
    """For each table whose sync by ranges writes only the rows its plan found differing, and no
    key's action reaches (plan.checked): the query of those rows' xmins (x, n). The apply
    records the table's xmins from the others' as the guard kept them and these as the sync
    left them, instead of reading every row's."""
    checked = {t.name for t in plan.checked}
    return {
        s.table.name: xmins_in_ranges(s.schema, s.table, s.diff.differing)
        for s in ranged_syncs(plan)
        if s.diff.differing is not None and s.table.name not in checked
    }


class _Written:
    """The statements keeping (key, verification hash) of each row written, to check them after
    the load: the first creates the temp table, the next add to it."""

    def __init__(self, name: str | None, table: TargetTable):
        self.name, self.table, self.made = name, table, False

    def statements(self, select: str) -> list[SyncStatement]:
        if self.name is None:
            return []
        keys = [f"c{i}" for i, c in enumerate(self.table.columns) if c.name in self.table.primary_key]
        items = ", ".join([*keys, "vh"])
        verb = f"INSERT INTO {self.name}" if self.made else f"CREATE TEMP TABLE {self.name} AS"
        self.made = True
        return [SyncStatement(f"{verb} SELECT {items} FROM ({select})")]


def sync_rows(
    con: duckdb.DuckDBPyConnection,
    step: SyncRows,
    index: int,
    execute: Execute,
    verify: bool,
    refuse: Refuse | None = None,
    kept_in: str | None = None,
) -> SyncResult:
    """Run sync_statements: the rows that differ are staged, inserted and updated, the keys to
    delete staged. `refuse` runs the table's checks on the staged rows before they are written;
    `kept_in`: the run's history schema (see sync_statements). Returns the rows each kind counted."""
    table = step.table
    register_functions(con, (table,))
    counted = {"inserts": 0, "updates": 0, "deletes": 0, "count": 0, "total": 0}
    written = written_name(step, index, verify)
    for statement in sync_statements(step, index, verify, kept_in):
        if statement.writes_staged and refuse is not None:
            refused = refuse(staged_rows(step.schema, table))
            if refused and written:
                # Rows set aside are not written: verification must not look for them.
                con.execute(f"DELETE FROM {written} WHERE list_contains(?, vh)", [refused])
        if isinstance(statement.text, str):
            cursor = con.execute(statement.text)
            row = cursor.fetchone() if statement.reads else None
            if statement.reads == "sums":
                assert row is not None  # an aggregate always yields one row
                counted["count"] += int(row[0])
                counted["total"] += int(row[1])
            elif statement.reads:
                assert row is not None
                for name, value in zip(statement.reads.split(", "), row, strict=True):
                    counted[name] += int(value)
        else:
            execute(statement.text, statement.what)
        if statement.clears_cache:
            con.execute("CALL pg_clear_cache()")
    sums = None
    if verify and table.mode == Mode.SYNC:
        # A sync by ranges is verified where it read, against the plan's sums of those rows.
        sums = step.diff.range_sums or (counted["count"], str(counted["total"]))
    return SyncResult((counted["inserts"], counted["updates"], counted["deletes"]), sums, written)


def keep_changes_sql(step: SyncRows, kept_in: str) -> list[sql.Composed]:
    """Copy into the run's copy of the table (etl/postgres/history.py changes_copy_statements),
    before anything is written: the version in the target of each row staged to update or delete,
    and the key of each staged to insert. Checks may still set staged rows aside: rollback puts
    back what the copy holds whatever became of them."""
    table, schema = step.table, step.schema
    stage = _stage(schema, table.name)
    copy = sql.Identifier(kept_in, table.name)
    op = sql.Identifier(CHANGE_COLUMN)
    keys = sql.SQL(", ").join(map(sql.Identifier, table.primary_key))
    return [
        sql.SQL(
            "INSERT INTO {} SELECT st.etl_op, t.* FROM {} AS t JOIN {} AS st ON {} WHERE st.etl_op IN ('u', 'd')"
        ).format(copy, sql.Identifier(schema, table.name), stage, _key_match(schema, table)),
        sql.SQL("INSERT INTO {} ({}, {}) SELECT 'i', {} FROM {} AS st WHERE st.etl_op = 'i'").format(
            copy,
            op,
            keys,
            sql.SQL(", ").join(_cast(schema, table, k) for k in table.primary_key),
            stage,
        ),
    ]


def _apply_staged(step: SyncRows) -> list[SyncStatement]:
    table, schema = step.table, step.schema
    stage = _stage(schema, table.name)
    target = sql.Identifier(schema, table.name)
    names = [c.name for c in table.columns if c.generated is None]  # PostgreSQL computes the others
    found = [
        SyncStatement(
            sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} AS st WHERE st.etl_op = 'i'").format(
                target,
                sql.SQL(", ").join(map(sql.Identifier, names)),
                sql.SQL(", ").join(_cast(schema, table, n) for n in names),
                stage,
            ),
            f'inserting new rows into "{table.name}"',
            writes_staged=True,
        )
    ]
    others = [n for n in names if n not in table.primary_key]
    # The plan's count decides: apply fails before COMMIT when the rows found differ from it.
    if step.diff.update and others:
        found.append(
            SyncStatement(
                sql.SQL("UPDATE {} AS t SET {} FROM {} AS st WHERE st.etl_op = 'u' AND {}").format(
                    target,
                    sql.SQL(", ").join(
                        sql.SQL("{} = {}").format(sql.Identifier(n), _cast(schema, table, n)) for n in others
                    ),
                    stage,
                    _key_match(schema, table),
                ),
                f'updating changed rows of "{table.name}"',
            )
        )
    return found


def staged_rows(schema: str, table: TargetTable) -> sql.Composed:
    """PostgreSQL relation of the rows staged to insert or update, cast to the target's types and
    named as its columns, with the staging row's ctid as etl_row and its etl_op ('i' new, 'u' changed)."""
    casts = [
        sql.SQL("{} AS {}").format(_cast(schema, table, c.name), sql.Identifier(c.name))
        for c in table.columns
    ]
    return sql.SQL(
        "(SELECT st.ctid AS etl_row, st.etl_op, {} FROM {} AS st WHERE st.etl_op IN ('i', 'u')) AS r"
    ).format(sql.SQL(", ").join(casts), _stage(schema, table.name))


def drop_refused_sql(schema: str, table: TargetTable, where: sql.Composable) -> list[sql.Composed]:
    """Set aside the staged rows for which `where` (a condition on the table's columns) holds: a
    changed row leaves the target (its old version is not the source's any more), a new one is
    not inserted."""
    stage = _stage(schema, table.name)
    refused = sql.SQL("SELECT etl_row FROM {} WHERE {}").format(staged_rows(schema, table), where)
    return [
        sql.SQL("DELETE FROM {} AS t USING {} AS st WHERE st.etl_op = 'u' AND st.ctid IN ({}) AND {}").format(
            sql.Identifier(schema, table.name), stage, refused, _key_match(schema, table)
        ),
        sql.SQL("DELETE FROM {} WHERE ctid IN ({})").format(stage, refused),
    ]


def _key_match(schema: str, table: TargetTable) -> sql.Composable:
    if not keyed(table):
        return sql.SQL("t.ctid = st.etl_ctid::tid")
    return sql.SQL(" AND ").join(
        sql.SQL("t.{} = {}").format(sql.Identifier(k), _cast(schema, table, k)) for k in table.primary_key
    )


def delete_rows(step: DeleteRows, execute: Execute) -> None:
    stage = _stage(step.schema, step.table.name)
    execute(
        sql.SQL("DELETE FROM {} AS t USING {} AS st WHERE st.etl_op = 'd' AND {}").format(
            sql.Identifier(step.schema, step.table.name), stage, _key_match(step.schema, step.table)
        ),
        f'deleting rows gone from the source from "{step.table.name}"',
    )
    execute(sql.SQL("DROP TABLE {}").format(stage), "dropping the staging table")


def check_written_query(schema: str, table: TargetTable, written: str) -> str:
    """DuckDB SQL: how many of the rows kept in `written` are not in the target exactly as sent."""
    target_hash, _ = row_hash(table, "target", "")
    if keyed(table):
        keys = [c.name for c in table.columns if c.name in table.primary_key]
        positions = [i for i, c in enumerate(table.columns) if c.name in table.primary_key]
        on = " AND ".join(f"w.c{p} = t.{quote_ident(k)}" for p, k in zip(positions, keys, strict=True))
        return (
            f"SELECT count(*) FROM {written} w LEFT JOIN "
            f"(SELECT *, {target_hash} AS vh FROM {target_relation(schema, table)}) t ON {on} "
            "WHERE t.vh IS DISTINCT FROM w.vh"
        )
    return (
        f"SELECT count(*) FROM (SELECT vh, count(*) AS c FROM {written} GROUP BY vh) w LEFT JOIN "
        f"(SELECT {target_hash} AS vh, count(*) AS c FROM {target_relation(schema, table)} GROUP BY 1) t "
        "USING (vh) WHERE t.c IS NULL OR t.c < w.c"
    )


def check_written(con: duckdb.DuckDBPyConnection, schema: str, table: TargetTable, written: str) -> int:
    """How many of the rows written are not in the target exactly as sent (0: all arrived)."""
    row = con.execute(check_written_query(schema, table, written)).fetchone()
    return int(row[0]) if row else 0
