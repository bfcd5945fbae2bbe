"""etl's own tables in the target database, in schema `etl`: its runs (etl.runs), the rows they
rejected (etl.rejects) and what they kept for rollback (etl.history); the SQL that creates them,
upgrades them and records into them. Pure: statements only. At the bottom of the package: it
imports nothing of etl, so that every module that reads or writes these tables can import it."""

from __future__ import annotations

import json

from psycopg import sql

METADATA_SCHEMA = "etl"  # where etl keeps its own records in the target database
METADATA_TABLES = ("runs", "rejects", "history")

RUNS = sql.Identifier(METADATA_SCHEMA, "runs")
REJECTS = sql.Identifier(METADATA_SCHEMA, "rejects")
HISTORY = sql.Identifier(METADATA_SCHEMA, "history")


def metadata_ddl() -> list[sql.Composed]:
    """etl's own tables (its runs, the rows they rejected, what they kept for rollback); created if
    missing. The schema first, then METADATA_TABLES in their order; metadata_upgrades() adds what
    later versions record to tables made before them."""
    return [
        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(METADATA_SCHEMA)),
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} ("
            "id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
            "target_schema text NOT NULL, spec text, spec_sha256 text, "
            "started_at timestamptz NOT NULL, finished_at timestamptz NOT NULL, "
            "status text NOT NULL CHECK (status IN ('succeeded', 'failed')), "
            "rows jsonb, error text)"
        ).format(RUNS),
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} ("
            "id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, run_started_at timestamptz NOT NULL, "
            "target_schema text NOT NULL, source_table text NOT NULL, row_key text, reason text NOT NULL, "
            "row jsonb NOT NULL, column_name text, value text)"
        ).format(REJECTS),
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} ("
            "id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, run_started_at timestamptz NOT NULL, "
            "target_schema text NOT NULL, table_name text NOT NULL, "
            "kept_in text, "  # the schema holding the copy; NULL: the run created the table
            "rows bigint, foreign_keys jsonb NOT NULL DEFAULT '[]', enum_columns jsonb NOT NULL DEFAULT '[]', "
            "sequences jsonb NOT NULL DEFAULT '[]', restored_at timestamptz)"
        ).format(HISTORY),
    ]


def metadata_upgrades() -> list[sql.Composed]:
    """Columns a later version of etl records, added to metadata tables made before it: etl.history
    and etl.rejects as earlier versions made them gain the columns this one records."""
    return [
        _add_column_sql(HISTORY, "sequences", sql.SQL("jsonb NOT NULL DEFAULT '[]'")),
        _add_column_sql(REJECTS, "column_name", sql.SQL("text")),
        _add_column_sql(REJECTS, "value", sql.SQL("text")),
    ]


def _add_column_sql(table: sql.Identifier, column: str, definition: sql.Composable) -> sql.Composed:
    """Add a column a later version records to an etl.history made before it (its rows then
    record nothing there). Only when missing: ALTER TABLE locks the table to everyone until the
    apply commits, even when IF NOT EXISTS finds the column."""
    body = sql.SQL(
        "BEGIN IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = {}::regclass AND attname = {} "
        "AND NOT attisdropped) THEN ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}; END IF; END"
    ).format(
        sql.Literal(table.as_string(None)), sql.Literal(column), table, sql.Identifier(column), definition
    )
    return sql.SQL("DO {}").format(sql.Literal(body.as_string(None)))


def metadata_lock_sql() -> sql.Composed:
    """Wait for the database-wide advisory lock under which etl creates its metadata schema and
    tables: PostgreSQL's IF NOT EXISTS does not make two concurrent creations safe (the later one
    fails on a unique index of the catalog)."""
    return sql.SQL("SELECT pg_advisory_xact_lock(hashtext({}))").format(sql.Literal("etl metadata"))


def record_run_sql(
    schema: str,
    spec: str | None,
    spec_sha256: str | None,
    started_at: str,
    finished_at: str,
    status: str,
    rows: dict[str, int],
    error: str | None,
) -> sql.Composed:
    return sql.SQL(
        "INSERT INTO {} (target_schema, spec, spec_sha256, started_at, finished_at, status, rows, error) "
        "VALUES ({}, {}, {}, {}, {}, {}, {}::jsonb, {})"
    ).format(
        RUNS,
        *(
            sql.Literal(v)
            for v in (schema, spec, spec_sha256, started_at, finished_at, status, json.dumps(rows), error)
        ),
    )


def record_rejects_sql(
    started_at: str, schema: str, rows: list[tuple[str, str | None, str, str, str | None, str | None]]
) -> sql.Composed:
    """One INSERT into etl.rejects for (table, key, reason, row as JSON text, column, value) tuples."""
    values = sql.SQL(", ").join(
        sql.SQL("({}, {}, {}, {}, {}, {}::jsonb, {}, {})").format(
            *(sql.Literal(v) for v in (started_at, schema, *row))
        )
        for row in rows
    )
    return sql.SQL(
        "INSERT INTO {} (run_started_at, target_schema, source_table, row_key, reason, row, column_name, value) "
        "VALUES {}"
    ).format(REJECTS, values)
