"""Bringing an existing table up to date inside apply's transaction: the rows that differ are
staged in PostgreSQL (etl's own schema, dropped before COMMIT) and applied with one INSERT, one
UPDATE and one DELETE. Staging lets PostgreSQL cast values it converts itself (numeric(65,30),
inet, enums, ...) exactly as a first load does, and keeps every statement set-based."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import duckdb
from psycopg import sql

from etl.core.mapping import TargetTable
from etl.core.plan import DeleteRows, SyncRows
from etl.duck import quote_ident
from etl.postgres.ddl import type_sql
from etl.postgres.metadata import METADATA_SCHEMA
from etl.run.load import source_rows_query
from etl.run.rowdiff import (
    append_marks,
    at_mark,
    diff_ranges,
    key_join,
    key_names,
    keyed,
    late_rows,
    past_mark,
    source_keys_sql,
    target_keys_sql,
)
from etl.run.session import TARGET_ALIAS
from etl.run.verify import register_functions, row_hash, source_sums_query, target_relation
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


def sync_rows(
    con: duckdb.DuckDBPyConnection,
    step: SyncRows,
    index: int,
    execute: Execute,
    verify: bool,
    refuse: Refuse | None = None,
) -> SyncResult:
    """Stage the rows that differ, insert and update them; stage the keys to delete (DeleteRows
    deletes them, children first). `index`: a number unique to the table in this run."""
    table, schema = step.table, step.schema
    register_functions(con, (table,))
    for statement in _stage_ddl(step):
        execute(statement, "creating a staging table for the rows that differ")
    con.execute("CALL pg_clear_cache()")
    stage = _stage_target(step)
    values = ", ".join(f"s.c{i}" for i in range(len(table.columns)))
    names = ", ".join(quote_ident(c.name) for c in table.columns)
    written = f"etl_written_{index}" if verify and table.mode != Mode.SYNC else None
    vhash, _ = row_hash(table, "source", "s.c")
    inserts = updates = deletes = 0
    count, total = 0, 0
    if table.mode == Mode.APPEND:
        source_mark = append_marks(con, schema, table)
        for i, row_range in enumerate(diff_ranges(table)):
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE etl_rows AS {source_rows_query(schema, table, row_range)}"
            )
            new = f"FROM etl_rows s, etl_mark m WHERE {past_mark(source_mark)}"
            row = con.execute(f"SELECT count(*) {new}").fetchone()
            inserts += int(row[0]) if row else 0
            con.execute(f"INSERT INTO {stage} ({names}, etl_op) SELECT {values}, 'i' {new}")
            if written:
                _keep_written(con, written, table, f"SELECT s.*, {vhash} AS vh {new}")
            at = f"(SELECT s.* FROM etl_rows s, etl_mark m WHERE {at_mark(source_mark)})"
            select = source_keys_sql(table, at, keep="*")
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE etl_at AS {select}"
                if i == 0
                else f"INSERT INTO etl_at {select}"
            )
        late = late_rows(table, "etl_at")
        row = con.execute(f"SELECT count(*) {late}").fetchone()
        inserts += int(row[0]) if row else 0
        con.execute(f"INSERT INTO {stage} ({names}, etl_op) SELECT {values}, 'i' {late}")
        if written:
            _keep_written(con, written, table, f"SELECT s.*, {vhash} AS vh {late}")
        for name in ("etl_rows", "etl_at", "etl_mark", "etl_at_mark"):
            con.execute(f"DROP TABLE {name}")
    else:
        con.execute(f"CREATE OR REPLACE TEMP TABLE etl_t AS {target_keys_sql(schema, table)}")
        seen = False
        for row_range in diff_ranges(table):
            relation = f"({source_rows_query(schema, table, row_range)})"
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE etl_rows AS {source_keys_sql(table, relation, keep='*')}"
            )
            joined = f"FROM etl_rows s LEFT JOIN etl_t t ON {key_join(table, 's', 't')}"
            row = con.execute(
                f"SELECT count(*) FILTER (WHERE t.h IS NULL), count(*) FILTER (WHERE t.h <> s.h) {joined}"
            ).fetchone()
            assert row is not None  # an aggregate always yields one row
            inserts, updates = inserts + int(row[0]), updates + int(row[1])
            differing = f"{joined} WHERE t.h IS DISTINCT FROM s.h"
            con.execute(
                f"INSERT INTO {stage} ({names}, etl_op) "
                f"SELECT {values}, CASE WHEN t.h IS NULL THEN 'i' ELSE 'u' END {differing}"
            )
            if table.mode == Mode.SYNC:
                listed = ", ".join(key_names(table))
                if seen:
                    con.execute(f"INSERT INTO etl_seen SELECT {listed} FROM etl_rows")
                else:
                    con.execute(f"CREATE OR REPLACE TEMP TABLE etl_seen AS SELECT {listed} FROM etl_rows")
                    seen = True
                if verify:
                    sums = con.execute(source_sums_query(table, "etl_rows")).fetchone()
                    assert sums is not None
                    count, total = count + int(sums[0]), total + int(sums[1])
            if written:
                _keep_written(con, written, table, f"SELECT s.*, {vhash} AS vh {differing}")
        con.execute("DROP TABLE etl_rows")
        if table.mode == Mode.SYNC:
            gone = f"FROM etl_t t ANTI JOIN etl_seen s ON {key_join(table, 't', 's')}"
            row = con.execute(f"SELECT count(*) {gone}").fetchone()
            deletes = int(row[0]) if row else 0
            if keyed(table):
                key_columns = ", ".join(quote_ident(k) for k in table.primary_key)
                key_values = ", ".join(f"t.k{j}" for j in range(len(table.primary_key)))
                con.execute(f"INSERT INTO {stage} ({key_columns}, etl_op) SELECT {key_values}, 'd' {gone}")
            else:
                con.execute(f"INSERT INTO {stage} (etl_ctid, etl_op) SELECT t.etl_ctid, 'd' {gone}")
            con.execute("DROP TABLE etl_seen")
        con.execute("DROP TABLE etl_t")
    if refuse is not None and (refused := refuse(staged_rows(schema, table))) and written:
        # Rows set aside are not written: verification must not look for them.
        con.execute(f"DELETE FROM {written} WHERE list_contains(?, vh)", [refused])
    _apply_staged(step, execute, updates)
    if not deletes:
        execute(sql.SQL("DROP TABLE {}").format(_stage(schema, table.name)), "dropping the staging table")
    sums = (count, str(total)) if verify and table.mode == Mode.SYNC else None
    return SyncResult((inserts, updates, deletes), sums, written)


def _keep_written(con: duckdb.DuckDBPyConnection, written: str, table: TargetTable, select: str) -> None:
    """Remember (key, verification hash) of each row written, to check them after the load."""
    keys = [f"c{i}" for i, c in enumerate(table.columns) if c.name in table.primary_key]
    items = ", ".join([*keys, "vh"])
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = ?", [written]
    ).fetchone()
    if exists and exists[0]:
        con.execute(f"INSERT INTO {written} SELECT {items} FROM ({select})")
    else:
        con.execute(f"CREATE TEMP TABLE {written} AS SELECT {items} FROM ({select})")


def _apply_staged(step: SyncRows, execute: Execute, updates: int) -> None:
    table, schema = step.table, step.schema
    stage = _stage(schema, table.name)
    target = sql.Identifier(schema, table.name)
    names = [c.name for c in table.columns if c.generated is None]  # PostgreSQL computes the others
    execute(
        sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} AS st WHERE st.etl_op = 'i'").format(
            target,
            sql.SQL(", ").join(map(sql.Identifier, names)),
            sql.SQL(", ").join(_cast(schema, table, n) for n in names),
            stage,
        ),
        f'inserting new rows into "{table.name}"',
    )
    others = [n for n in names if n not in table.primary_key]
    if updates and others:
        execute(
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


def check_written(con: duckdb.DuckDBPyConnection, schema: str, table: TargetTable, written: str) -> int:
    """How many of the rows written are not in the target exactly as sent (0: all arrived)."""
    target_hash, _ = row_hash(table, "target", "")
    if keyed(table):
        keys = [c.name for c in table.columns if c.name in table.primary_key]
        positions = [i for i, c in enumerate(table.columns) if c.name in table.primary_key]
        on = " AND ".join(f"w.c{p} = t.{quote_ident(k)}" for p, k in zip(positions, keys, strict=True))
        query = (
            f"SELECT count(*) FROM {written} w LEFT JOIN "
            f"(SELECT *, {target_hash} AS vh FROM {target_relation(schema, table)}) t ON {on} "
            "WHERE t.vh IS DISTINCT FROM w.vh"
        )
    else:
        query = (
            f"SELECT count(*) FROM (SELECT vh, count(*) AS c FROM {written} GROUP BY vh) w LEFT JOIN "
            f"(SELECT {target_hash} AS vh, count(*) AS c FROM {target_relation(schema, table)} GROUP BY 1) t "
            "USING (vh) WHERE t.c IS NULL OR t.c < w.c"
        )
    row = con.execute(query).fetchone()
    return int(row[0]) if row else 0
