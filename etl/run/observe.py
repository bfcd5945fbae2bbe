"""What the planner needs to know, read from the target and the source: the target's catalog, the
spec's tables as PostgreSQL describes them, and the row diff of every table that exists.
Nothing here changes the target."""

from __future__ import annotations

import secrets
from dataclasses import replace
from pathlib import Path

import duckdb
import psycopg
from psycopg import sql

from etl import duck
from etl.core.mapping import DesiredSchema
from etl.core.plan import RowDiff, TargetState
from etl.errors import TargetError, first_line
from etl.model import TargetCatalog
from etl.postgres.catalog import read_target_catalog
from etl.postgres.ddl import fresh_schema_sql
from etl.postgres.metadata import METADATA_SCHEMA, RUNS
from etl.postgres.target import connect, metadata_privileges_error, metadata_privileges_missing, redact
from etl.run.rowdiff import plan_diff
from etl.run.session import SOURCE_ALIAS, attach, connect_for, corrupt_source, raise_read_error
from etl.run.typedscan import prove


def observe_target(mapping: DesiredSchema, source: Path, url: str, show_rows: int = 0) -> TargetState:
    with connect(url) as conn:
        catalog = read_target_catalog(conn, mapping.schema)
        relations = _relations(conn, mapping.schema)
        existing = [t for t in mapping.tables if t.name in relations]
        desired = desired_catalog(conn, mapping, url) if existing else None
        removed = _removed_tables(conn, mapping, catalog)
    rows: dict[str, RowDiff] = {}
    present = [t for t in existing if catalog.table(t.name) is not None]
    if present:
        con = connect_for(present)
        try:
            attach(con, source, url, read_only=True)
            proven = prove(con, SOURCE_ALIAS, present)
            for table in present:
                current = catalog.table(table.name)
                assert current is not None
                scanned = replace(table, scan=proven.get(table.source))
                try:
                    rows[table.name] = plan_diff(con, mapping.schema, scanned, current, show_rows)
                except duck.ERRORS:
                    if scanned.scan is None:
                        raise
                    # a value DuckDB's typed read cannot convert: the exact path names its row
                    rows[table.name] = plan_diff(con, mapping.schema, table, current, show_rows)
        except duckdb.Error as exc:
            if (corrupt := corrupt_source(exc, source)) is not None:
                raise corrupt from exc
            raise_read_error(exc, "comparing rows with the target failed", url)
        finally:
            con.close()
    return TargetState(
        schema_exists=catalog.exists,
        tables=frozenset(relations),
        enums=frozenset(name for name, _ in catalog.enums),
        catalog=catalog,
        desired=desired,
        rows=rows,
        removed=removed,
    )


def _removed_tables(
    conn: psycopg.Connection, mapping: DesiredSchema, catalog: TargetCatalog
) -> dict[str, int]:
    """Tables that successful applies to this schema loaded (etl.runs) and the spec no longer
    names, with the rows they hold. Tables etl never loaded are not its to drop."""
    try:
        has_runs = conn.execute("SELECT to_regclass(%s)", (f"{METADATA_SCHEMA}.runs",)).fetchone()
        if not has_runs or has_runs[0] is None:
            return {}
        loaded = conn.execute(
            sql.SQL(
                "SELECT DISTINCT jsonb_object_keys(rows) FROM {} WHERE target_schema = %s AND status = 'succeeded'"
            ).format(RUNS),
            (mapping.schema,),
        ).fetchall()
    except psycopg.errors.InsufficientPrivilege as exc:
        missing = metadata_privileges_missing(conn) or [first_line(exc)]
        raise metadata_privileges_error(conn, missing) from exc
    named = {t.name for t in mapping.tables}
    removed = {}
    for (name,) in loaded:
        if name not in named and catalog.table(name) is not None:
            count = conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(mapping.schema, name))
            ).fetchone()
            removed[name] = int(count[0]) if count else 0
    return dict(sorted(removed.items()))


def _relations(conn: psycopg.Connection, schema: str) -> set[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'f')",
        (schema,),
    ).fetchall()
    return {r[0] for r in rows}


def desired_catalog(conn: psycopg.Connection, mapping: DesiredSchema, url: str) -> TargetCatalog:
    """The spec's tables as PostgreSQL itself describes them: created (with the very DDL apply
    runs) in a scratch schema inside a transaction that is rolled back, then read like the
    target. Both sides of the schema diff are then in PostgreSQL's words (format_type, the text of
    defaults and index definitions), so an unchanged table compares equal."""
    scratch = f"etl_plan_{secrets.token_hex(6)}"
    statements = fresh_schema_sql(replace(mapping, schema=scratch))
    try:
        with conn.transaction(force_rollback=True):
            for statement in statements:
                conn.execute(statement)
            found = read_target_catalog(conn, scratch)
    except psycopg.Error as exc:
        raise TargetError(
            "PostgreSQL refused the spec's tables (checked in a scratch schema, rolled back): "
            f"{redact(first_line(exc), url)}"
        ) from exc
    return replace(found, schema=mapping.schema)
