"""What the planner needs to know, read from the target and the source: the target's catalog, the
spec's tables as PostgreSQL describes them, and the row diff of every table that exists.
Nothing here changes the target."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import replace
from functools import cache
from itertools import chain
from pathlib import Path
from typing import TypeVar

import duckdb
import psycopg
from psycopg import sql

from etl import __version__, duck
from etl import model as model_module
from etl.core.mapping import DesiredSchema, TargetTable
from etl.core.plan import DesiredRecord, RowDiff, TargetState
from etl.errors import TargetError, first_line
from etl.model import PgTable, TargetCatalog, catalog_from_json
from etl.postgres import catalog as catalog_module
from etl.postgres.catalog import read_firing, read_target_catalog
from etl.postgres.ddl import create_view_sql, fresh_schema_sql
from etl.postgres.history import view_readers_query
from etl.postgres.metadata import (
    METADATA_SCHEMA,
    RUNS,
    last_desired_sql,
    recorded_desired_sql,
    recorded_set_aside_sql,
)
from etl.postgres.target import connect, metadata_privileges_error, metadata_privileges_missing, redact
from etl.run.fingerprint import (
    Ranged,
    Recorded,
    fingerprintable,
    recorded_extremes,
    recorded_tables,
    unchanged_tables,
    units_moved,
)
from etl.run.rowdiff import batchable, plan_diff, plan_diffs, set_aside_count
from etl.run.session import SOURCE_ALIAS, attach, connect_for, raise_read_error
from etl.run.typedscan import prove
from etl.run.validate import InRanges
from etl.settings import OnError
from etl.sqlite.catalog import source_stamp
from etl.sqlite.pages import wal_pending


def observe_target(
    mapping: DesiredSchema,
    source: Path,
    url: str,
    show_rows: int = 0,
    diff_batch: int | None = None,
    full_diff: bool = False,
    sized: Callable[[set[str], set[str], InRanges | None], DesiredSchema] | None = None,
) -> TargetState:
    """The target as it is, and each existing table's row diff (`diff_batch` small tables per
    DuckDB query; DIFF_BATCH unless given). `full_diff`: compare every table's rows, also those
    provably unchanged since the last apply. `sized`: for a mapping whose row counts and sizes are
    not measured yet, the mapping with those of the tables named first measured, and the
    datetime units of those named second (in the ranges the third gives, for its source tables;
    validate.with_sizes); called with the tables not skipped as unchanged (less, first, those
    compared in ranges) before any row is compared, and again, measuring whole, if a table's
    units moved since the apply that recorded its ranges."""
    with connect(url) as conn:
        catalog = read_target_catalog(conn, mapping.schema)
        relations = _relations(conn, mapping.schema)
        existing = [t for t in mapping.tables if t.name in relations]
        # Views are checked in the scratch schema even on an empty target: their SQL is the spec's.
        needed = bool(existing or mapping.views)
        key = desired_key(conn, mapping)
        desired = recorded_desired(conn, mapping, key) if needed else None
        record = None
        if desired is None:
            record = DesiredRecord(key, desired_catalog(conn, mapping, url) if needed else None)
            desired = record.catalog
        removed = _removed_tables(conn, mapping, catalog)
        removed_views = _removed_views(conn, mapping, catalog)
        present = [t for t in existing if catalog.table(t.name) is not None]
        # before the pages are hashed: a sync by ranges, and the apply's use of what they tell,
        # hold only while the source keeps this stamp
        stamp = source_stamp(source)
        held = _read_records(conn, url, lambda: recorded_tables(conn, mapping.schema)) if present else set()
        recorded = (
            Recorded({}, {})
            if full_diff
            else _read_records(
                conn, url, lambda: unchanged_tables(conn, mapping.schema, source, present, held)
            )
        )
        # Pages pending in a -wal file keep an apply from recording anything: none is named.
        recordable = bool(present) and not wal_pending(source)
        set_aside = _set_aside(conn, mapping.schema, url) if present else {}
        firing = read_firing(conn, mapping.schema) if present else ()
    unchanged, ranged = recorded.unchanged, recorded.ranged
    compared = {t.name for t in mapping.tables if t.name not in unchanged}
    if sized is not None:
        mapping = sized(compared - _unsized(ranged), compared, _units_in_ranges(mapping, ranged))
    # A table whose units moved reads its unchanged rows differently too: compared in full.
    by_name = {t.name: t for t in mapping.tables}
    moved = {name for name, r in ranged.items() if units_moved(by_name[name], r)}
    if moved:
        ranged = {name: r for name, r in ranged.items() if name not in moved}
        if sized is not None:
            mapping = sized(compared - _unsized(ranged), compared, None)
            by_name = {t.name: t for t in mapping.tables}
    present = [by_name[t.name] for t in present]
    rows: dict[str, RowDiff] = {name: RowDiff(unchanged=u.rows) for name, u in unchanged.items()}
    present = [t for t in present if t.name not in unchanged]
    if present:
        con = connect_for(present)
        try:
            attach(con, source, url, read_only=True)
            with _source_alone(con):
                # a table compared in some ranges reads them on the exact path: nothing to prove
                proven = prove(con, SOURCE_ALIAS, [t for t in present if t.name not in ranged])
            scanned = [replace(t, scan=proven.get(t.source)) for t in present]
            batch = diff_batch or DIFF_BATCH
            # Only a table that still sets such rows aside leaves them out: with on_error: fail
            # they are planned again, and the apply fails naming them.
            hashes = {
                t.name: set_aside[t.name][0]
                for t in scanned
                if t.name in set_aside and t.on_error == OnError.REJECT
            }
            diffs = _diff_tables(con, mapping.schema, scanned, catalog, show_rows, batch, ranged, hashes)
            for table in scanned:
                d = diffs[table.name]
                if d.set_aside:
                    count, total = set_aside_count(
                        con, mapping.schema, replace(table, scan=None), d.set_aside
                    )
                    at = set_aside[table.name][1]
                    diffs[table.name] = replace(d, set_aside_at=at, set_aside_rows=count, set_aside_sum=total)
            rows.update(diffs)
        except duckdb.Error as exc:
            raise_read_error(exc, "comparing rows with the target failed", source, url)
        finally:
            con.close()
    return TargetState(
        schema_exists=catalog.exists,
        tables=frozenset(relations),
        enums=frozenset(name for name, _ in catalog.enums),
        catalog=catalog,
        desired=desired,
        record=record,
        rows=rows,
        removed=removed,
        removed_views=removed_views,
        skipped={name: u.since for name, u in unchanged.items()},
        ranged={name: (r.changed, r.total, r.since) for name, r in ranged.items()},
        unrecorded=frozenset(
            t.name
            for t in present
            if recordable
            # a record that no longer proves the table unchanged (the source vacuumed, the spec
            # changed, the target written behind etl's back) is recorded anew too, unless the
            # plan compared every table on purpose
            and (t.name not in held or not full_diff)
            # one compared in ranges, where most of them moved (a vacuumed source): compared in
            # full on every plan else; where few did, comparing them costs less than verifying
            and (t.name not in ranged or 2 * ranged[t.name].changed >= ranged[t.name].total)
            and t.name in rows
            and fingerprintable(t)
        ),
        source_stamp=stamp if recorded.pages else None,
        source_pages=recorded.pages,
        firing=firing,
    )


def _unsized(ranged: dict[str, Ranged]) -> set[str]:
    """The tables whose row counts and sizes a plan leaves unread: one compared in ranges reads
    them by rowid, and one with no changed range reads none, where (compared in ranges) every
    record is known to fit a page, so DuckDB needs no room for larger ones."""
    return {name for name, r in ranged.items() if not r.rowids or (r.by_ranges and r.in_leaves)}


def _units_in_ranges(mapping: DesiredSchema, ranged: dict[str, Ranged]) -> InRanges:
    """The source tables whose `auto` datetime units a plan measures in their changed ranges only:
    those of a table compared in ranges whose record proves the other rows' (the only target
    table of its source: the units are measured per source table)."""
    targets: dict[str, int] = {}
    for table in mapping.tables:
        targets[table.source] = targets.get(table.source, 0) + 1
    found: InRanges = {}
    for table in mapping.tables:
        r = ranged.get(table.name)
        if r is None or targets[table.source] != 1:
            continue
        extremes = recorded_extremes(table, r)
        if extremes is not None:
            found[table.source] = (r.rowids, extremes)
    return found


def schema_catalogs(mapping: DesiredSchema, url: str) -> tuple[TargetCatalog, TargetCatalog]:
    """The target schema as it is now, and the spec's tables and views as PostgreSQL describes
    them (recorded by the last apply, else made in a scratch schema and rolled back): the two
    catalogs the schema ledger holds side by side. Changes nothing."""
    with connect(url) as conn:
        actual = read_target_catalog(conn, mapping.schema)
        desired = recorded_desired(conn, mapping, desired_key(conn, mapping))
        if desired is None:
            desired = desired_catalog(conn, mapping, url)
    return actual, desired


T = TypeVar("T")


def _read_records(conn: psycopg.Connection, url: str, read: Callable[[], T]) -> T:
    """What `read` finds of etl.fingerprints, its errors named as such."""
    try:
        return read()
    except psycopg.errors.InsufficientPrivilege as exc:
        missing = metadata_privileges_missing(conn) or [first_line(exc)]
        raise metadata_privileges_error(conn, missing) from exc
    except psycopg.Error as exc:
        raise TargetError(
            f"reading what the last apply recorded of the tables failed: {redact(first_line(exc), url)}"
        ) from exc


DIFF_BATCH = 50  # small tables whose rows are compared in one DuckDB query


def _diff_tables(
    con: duckdb.DuckDBPyConnection,
    schema: str,
    tables: list[TargetTable],
    catalog: TargetCatalog,
    show_rows: int,
    diff_batch: int,
    ranged: dict[str, Ranged] | None = None,
    set_aside: dict[str, tuple[int, ...]] | None = None,
) -> dict[str, RowDiff]:
    """Each table's row diff: tables that can, `diff_batch` at a time in one query; any batch that
    fails, and every other table, one by one (where an error names its table and a value the typed
    read cannot convert is read again on the exact path). A table in `ranged` is compared in its
    changed rowid ranges only. `set_aside`: per table, the hashes of source rows left out."""
    rows: dict[str, RowDiff] = {}
    ranged, set_aside = ranged or {}, set_aside or {}
    for table in tables:
        if table.name in ranged:
            rows[table.name] = _ranged_diff(
                con,
                schema,
                table,
                _current(catalog, table),
                show_rows,
                ranged[table.name],
                set_aside.get(table.name, ()),
            )
    tables_left = [t for t in tables if t.name not in ranged]
    together = [t for t in tables_left if not show_rows and batchable(t)]
    alone = [t for t in tables_left if show_rows or not batchable(t)]
    for start in range(0, len(together), diff_batch):
        batch = together[start : start + diff_batch]
        try:
            with _source_alone(con):
                rows.update(plan_diffs(con, schema, [(t, _current(catalog, t)) for t in batch], set_aside))
        except duck.ERRORS:
            alone += batch
    order = {t.name: i for i, t in enumerate(tables)}
    for table in sorted(alone, key=lambda t: order[t.name]):
        try:
            hashes = set_aside.get(table.name, ())
            rows[table.name] = plan_diff(
                con, schema, table, _current(catalog, table), show_rows, set_aside=hashes
            )
        except duck.ERRORS:
            if table.scan is None:
                raise
            # a value DuckDB's typed read cannot convert: the exact path names its row
            exact = replace(table, scan=None)
            rows[table.name] = plan_diff(
                con, schema, exact, _current(catalog, table), show_rows, set_aside=hashes
            )
    return {t.name: rows[t.name] for t in tables}


def _ranged_diff(
    con: duckdb.DuckDBPyConnection,
    schema: str,
    table: TargetTable,
    current: PgTable,
    show_rows: int,
    ranged: Ranged,
    set_aside: tuple[int, ...] = (),
) -> RowDiff:
    """The diff of a table compared in its changed ranges only: the rows outside them are as the
    apply left them on both sides, equal, and counted unchanged (the target's rows then were
    `ranged.rows`; of those, the ones in the ranges are the compared rows the target has)."""
    if not ranged.rowids:
        return RowDiff(unchanged=ranged.rows)
    if not ranged.by_ranges:
        return plan_diff(con, schema, table, current, show_rows, set_aside=set_aside)
    found = plan_diff(con, schema, table, current, show_rows, rowids=ranged.rowids, set_aside=set_aside)
    in_ranges = found.update + found.delete + found.unchanged
    return replace(found, unchanged=found.unchanged + ranged.rows - in_ranges, rowids=ranged.rowids)


def _set_aside(conn: psycopg.Connection, schema: str, url: str) -> dict[str, tuple[tuple[int, ...], str]]:
    """Per table, the hashes of the source rows a check set aside at earlier applies (etl.set_aside)
    and when the latest was; nothing before the first apply made etl's tables."""
    try:
        exists = conn.execute(
            "SELECT to_regclass(%s) IS NOT NULL", (f"{METADATA_SCHEMA}.set_aside",)
        ).fetchone()
        if not exists or not exists[0]:
            return {}
        rows = conn.execute(recorded_set_aside_sql(schema)).fetchall()
    except psycopg.Error as exc:
        raise TargetError(
            f"reading the rows earlier applies set aside failed: {redact(first_line(exc), url)}"
        ) from exc
    found: dict[str, tuple[tuple[int, ...], str]] = {}
    for table, hash_, at in rows:
        hashes, _ = found.get(table, ((), at))
        found[table] = ((*hashes, int(hash_)), at)
    return found


@contextmanager
def _source_alone(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Queries that read many small tables of the source: on one thread, through one SQLite
    connection kept by a read-only DuckDB transaction. Otherwise every scan opens connections of
    its own, and opening one parses the whole schema: in a file of many tables that costs more
    than a small table's rows. (Not for large tables: they are worth the threads, and inside a
    transaction DuckDB keeps a dropped temp table's memory until it ends.)"""
    con.execute("SET sqlite_disable_multithreaded_scans = true")
    con.execute("BEGIN TRANSACTION")
    try:
        yield
    finally:
        with suppress(*duck.ERRORS):
            con.execute("ROLLBACK")
        con.execute("RESET sqlite_disable_multithreaded_scans")


def _current(catalog: TargetCatalog, table: TargetTable) -> PgTable:
    current = catalog.table(table.name)
    assert current is not None
    return current


def _removed_views(
    conn: psycopg.Connection, mapping: DesiredSchema, catalog: TargetCatalog
) -> dict[str, tuple[str, ...]]:
    """Views the last apply that recorded the spec's schema created (etl.desired) and the spec no
    longer names, still views in the target, each with the views reading it (named with their
    schema when it is another). Views etl never created are not its to drop."""
    try:
        with conn.transaction():
            if conn.execute("SELECT to_regclass(%s)", (f"{METADATA_SCHEMA}.desired",)).fetchone() == (None,):
                return {}
            found = conn.execute(last_desired_sql(mapping.schema)).fetchone()
    except psycopg.errors.InsufficientPrivilege:
        return {}
    if found is None:
        return {}
    try:
        recorded = catalog_from_json(found[0])
    except ValueError:
        return {}
    named = {v.name for v in mapping.views}
    removed: dict[str, tuple[str, ...]] = {}
    for view in recorded.views:
        if view.name in named or catalog.view(view.name) is None:
            continue
        readers = conn.execute(view_readers_query(mapping.schema, view.name)).fetchall()
        removed[view.name] = tuple(name if ns == mapping.schema else f"{ns}.{name}" for ns, name in readers)
    return removed


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


def desired_key(conn: psycopg.Connection, mapping: DesiredSchema) -> str:
    """What decides the spec's tables as PostgreSQL describes them: the DDL that creates them (in
    a placeholder schema: the catalog is read without its schema's name), the server's version,
    and the code that reads and records a catalog (any change to it makes earlier records unused)."""
    placeholder = "etl_desired"
    statements = chain(
        fresh_schema_sql(replace(mapping, schema=placeholder)),
        (create_view_sql(placeholder, view.name, view.sql) for view in mapping.views),
    )
    digest = hashlib.sha256(f"{__version__}\n{conn.info.server_version}\n".encode() + _reader_code())
    for statement in statements:
        digest.update(statement.as_string(None).encode() + b";\n")
    return digest.hexdigest()


@cache
def _reader_code() -> bytes:
    """The source of the modules that read a catalog and write its document; without them (an
    install without sources), a value no record was made under."""
    try:
        return b"".join(Path(module.__file__ or "").read_bytes() for module in (catalog_module, model_module))
    except OSError:
        return secrets.token_bytes(16)


def recorded_desired(conn: psycopg.Connection, mapping: DesiredSchema, key: str) -> TargetCatalog | None:
    """The desired catalog an earlier apply recorded under `key`, or None: none recorded (or etl's
    schema is not there, or not readable), or made by another version (then the scratch schema
    decides, as it always can)."""
    try:
        with conn.transaction():
            if conn.execute("SELECT to_regclass(%s)", (f"{METADATA_SCHEMA}.desired",)).fetchone() == (None,):
                return None
            found = conn.execute(recorded_desired_sql(mapping.schema, key)).fetchone()
    except psycopg.errors.InsufficientPrivilege:
        return None
    if found is None:
        return None
    try:
        catalog = catalog_from_json(found[0])
    except ValueError:
        return None
    return replace(catalog, schema=mapping.schema)


SCRATCH_BATCH = 500  # statements per round trip when the spec's tables are created in the scratch schema


def desired_catalog(conn: psycopg.Connection, mapping: DesiredSchema, url: str) -> TargetCatalog:
    """The spec's tables as PostgreSQL itself describes them: created (with the very DDL apply
    runs) in a scratch schema inside a transaction that is rolled back, then read like the
    target. Both sides of the schema diff are then in PostgreSQL's words (format_type, the text of
    defaults and index definitions), so an unchanged table compares equal."""
    scratch = f"etl_plan_{secrets.token_hex(6)}"
    statements = list(fresh_schema_sql(replace(mapping, schema=scratch)))
    try:
        with conn.transaction(force_rollback=True):
            # Many statements per round trip (no parameters: PostgreSQL's simple query protocol).
            for start in range(0, len(statements), SCRATCH_BATCH):
                conn.execute(sql.SQL(";\n").join(statements[start : start + SCRATCH_BATCH]))
            _create_views(conn, mapping, scratch, url)
            found = read_target_catalog(conn, scratch)
    except psycopg.Error as exc:
        raise TargetError(
            "PostgreSQL refused the spec's tables (checked in a scratch schema, rolled back): "
            f"{redact(first_line(exc), url)}"
        ) from exc
    return replace(found, schema=mapping.schema)


def _create_views(conn: psycopg.Connection, mapping: DesiredSchema, scratch: str, url: str) -> None:
    """The spec's views, in the scratch schema: a query PostgreSQL refuses is named where the spec
    writes it, before apply loads a row."""
    for view in mapping.views:
        try:
            with conn.transaction():
                conn.execute(create_view_sql(scratch, view.name, view.sql))
        except psycopg.Error as exc:
            raise TargetError(
                f"{view.where}: PostgreSQL refuses view '{view.name}': "
                f"{redact(first_line(exc), url).replace(scratch, mapping.schema)}; correct its query in the spec"
            ) from exc
