"""Re-syncs that cost what changed: a table is skipped by plan (its rows not compared) only when
it is provably as the last apply that verified it left it, on both sides:

- the spec's table is the same (`desired_digest`: everything of the mapping that decides its rows,
  and etl's version, which decides how they are read);
- the SQLite table's pages are the same (etl/sqlite/pages.py);
- the PostgreSQL table's rows, file and columns are as that apply left them
  (etl/postgres/metadata.py, etl.fingerprints, says what is compared and why it suffices).

A table whose target key is the source's rowid (TargetTable.rowid_key) is also recorded per range
of leaf pages (one leaf page a range, up to pages.MAX_RANGES): when only some of its pages
changed and its target is as the apply left it, only the rowid ranges whose pages changed are
compared, on both sides (`Ranged`). One read of a table's pages gives its digest and its ranges.

A plan's read of the pages (`PagesRead`, on the plan) is what the apply that runs it records, for
the tables it read as the apply would read them, when the source keeps the stamp taken before that
read until the apply has verified the rows (`planned_pages`): the pages are the same.

Anything else (no record, a WAL file with frames, a table read through a view or checked against
other tables) compares the rows in full. An apply records a table only when verification found
it equal to the source before COMMIT and the source did not change while the apply read it."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import psycopg
from psycopg import sql

from etl import __version__
from etl.core.mapping import TargetColumn, TargetTable, compared_every_time, measures_unit
from etl.core.plan import PagesRead
from etl.postgres.metadata import (
    FINGERPRINTS,
    record_fingerprint_sql,
    recorded_ranges_sql,
    unchanged_since_sql,
)
from etl.settings import Mode, OnError
from etl.sqlite.catalog import integer_witnesses, open_sqlite
from etl.sqlite.pages import (
    PageRanges,
    TablePages,
    changed_ranges,
    table_fingerprints_and_ranges,
    table_pages,
)


@dataclass(frozen=True)
class Unchanged:
    since: str  # when the apply that left the table so began (UTC)
    rows: int  # the rows it left


@dataclass(frozen=True)
class UnitRecord:
    """What an apply recorded of one `auto` datetime column of a table it recorded with ranges:
    the integer unit it read the column in, whether the integers spanned several units, and a
    witness (rowid, absolute value): a row of the column's first that held an integer (None:
    none found there). Every row reads in the column's unit, which its integers decide; a row
    whose range of pages has not changed since holds the same value, so while the witness's
    range is unchanged the unchanged rows still hold the unit (and, not mixed, no other)."""

    unit: str | None
    mixed: bool
    witness: tuple[int, int] | None


@dataclass(frozen=True)
class Ranged:
    """A table whose target is as the last apply that recorded it left it, and some of whose
    source pages changed since: only the rows in `rowids` (inclusive rowid ranges, on the source;
    the same key ranges on the target) can differ."""

    since: str
    rows: int  # the rows that apply left
    changed: int  # ranges of leaf pages that changed
    total: int  # ranges the table has now
    rowids: tuple[tuple[int, int], ...]
    in_leaves: bool = False  # no record continues on overflow pages (TablePages.in_leaves)
    # by target column, what the apply recorded of its `auto` datetime columns; None: nothing
    # recorded (a record made before etl recorded units)
    units: dict[str, UnitRecord] | None = None

    @property
    def by_ranges(self) -> bool:
        """Whether the table is compared in its changed ranges: not when most of them changed
        (a VACUUM, say), where one pass over each side costs less than seeking ranges."""
        return self.changed * 2 <= self.total


@dataclass(frozen=True)
class Recorded:
    unchanged: dict[str, Unchanged]  # by target name: rows not compared
    ranged: dict[str, Ranged]  # by target name: only these rows compared
    pages: tuple[PagesRead, ...] = ()  # what the source's pages read to tell so, per source table


def desired_digest(table: TargetTable) -> str:
    """SHA-256 of what decides a table's rows in the target: the mapping's columns, types,
    conversions, key, filter and mode, and etl's version. What the source's measurements add at
    plan time (row counts, ranges, which scan reads it, the integer units of `auto` datetime
    columns, where a column's -0.0 values are) is left out: it follows from the rows, which the pages already tell, and from the
    spec (the units' `unit_recipe` stays in), so a plan need not measure a table it skips."""
    columns = tuple(
        replace(c, conversion=replace(c.conversion, integer_unit=None, mixed_units=False, negative_zeros=()))
        if measures_unit(c) or c.conversion.negative_zeros
        else c
        for c in table.columns
    )
    kept = replace(
        table, columns=columns, row_ranges=(), scan=None, source_rows=None, largest_row=0, sequence_floor=None
    )
    return hashlib.sha256(f"etl {__version__}\x00{kept!r}".encode()).hexdigest()


def fingerprintable(table: TargetTable) -> bool:
    """A table whose rows depend on its own source table's rows alone, so that its pages tell
    whether they changed. Not with on_error: reject (the rows kept also depend on the parent
    tables: orphan checks), nor one mapping.compared_every_time names (a `query:` table; a
    `where:` or `expression:` reading beyond the row)."""
    return table.on_error != OnError.REJECT and compared_every_time(table) is None


def rangeable(table: TargetTable) -> bool:
    """A table whose rows can be compared per rowid range: its target key is the source's rowid,
    and its diff matches every row by that key (mode: sync; upsert does not count the target's
    rows the source lacks, append compares by watermark)."""
    return fingerprintable(table) and table.rowid_key is not None and table.mode == Mode.SYNC


def _ranged_sources(tables: list[TargetTable]) -> set[str]:
    """The source tables whose pages are read for their ranges: those a `rangeable` table reads."""
    return {t.source for t in tables if rangeable(t)}


def source_pages(source: Path, tables: list[TargetTable]) -> dict[str, TablePages]:
    """Source table -> one read of its pages (its digest; the ranges of leaf pages of those
    `rangeable`), for the tables that can have one (none in WAL mode with uncheckpointed
    frames)."""
    names = sorted({t.source for t in tables if fingerprintable(t)})
    if not names:
        return {}
    return table_pages(source, names, _ranged_sources(tables)) or {}


def pages_read(pages: dict[str, TablePages], tables: list[TargetTable]) -> tuple[PagesRead, ...]:
    """source_pages' read of `tables`, as a plan carries it to the apply."""
    ranged = _ranged_sources(tables)
    return tuple(
        PagesRead(name, read.digest, name in ranged, None if read.ranges is None else read.ranges.to_bytes())
        for name, read in sorted(pages.items())
    )


def planned_pages(
    read: tuple[PagesRead, ...], tables: list[TargetTable]
) -> tuple[dict[str, str], dict[str, PageRanges], list[TargetTable]]:
    """What a plan's read of the pages (`read`) tells of `tables`, as
    source_fingerprints_and_ranges would read it: the digests and ranges of the source tables it
    read as that would (for their ranges, where one of `tables` is rangeable); and the tables
    whose pages are still to be read. It holds only while the source keeps the stamp taken
    before that read: the caller checks."""
    by_table = {p.table: p for p in read}
    ranged = _ranged_sources(tables)
    prints: dict[str, str] = {}
    ranges: dict[str, PageRanges] = {}
    rest: list[TargetTable] = []
    for table in tables:
        if not fingerprintable(table) or table.source in prints:
            continue
        found = by_table.get(table.source)
        wanted = table.source in ranged
        if found is None or (wanted and not found.ranged):
            rest.append(table)
            continue
        prints[table.source] = found.digest
        kept = PageRanges.from_bytes(found.ranges) if wanted and found.ranges is not None else None
        if kept is not None:
            ranges[table.source] = kept
    return prints, ranges, rest


def source_fingerprints_and_ranges(
    source: Path, tables: list[TargetTable], stop: threading.Event | None = None
) -> tuple[dict[str, str], dict[str, PageRanges]]:
    """Source table -> its digest, and -> its ranges of leaf pages (those `rangeable`), from one
    read of each table's pages (what an apply records of the tables it verified); raises
    HashingStopped once `stop` is set."""
    names = sorted({t.source for t in tables if fingerprintable(t)})
    if not names:
        return {}, {}
    found = table_fingerprints_and_ranges(source, names, _ranged_sources(tables), stop)
    return found or ({}, {})


def unchanged_tables(
    conn: psycopg.Connection, schema: str, source: Path, tables: list[TargetTable], held: Collection[str]
) -> Recorded:
    """The tables (by target name) that are provably as the last apply that recorded them left
    them: skipped by plan; and those whose target is, and whose source changed in some ranges of
    pages only: compared in those. `held`: the tables etl.fingerprints holds a record of
    (recorded_tables); with none, no page is hashed. The target's side (a scan of each table's
    xmins, in PostgreSQL) runs on a thread while this one hashes the source's pages: the two take
    about as long."""
    candidates = [t for t in tables if fingerprintable(t)]
    if not candidates or not held:
        return Recorded({}, {})
    with ThreadPoolExecutor(max_workers=1) as pool:
        target = pool.submit(_target_unchanged, conn, schema, candidates)
        pages = source_pages(source, candidates)
        recorded = target.result()
    found: dict[str, Unchanged] = {}
    moved: list[TargetTable] = []
    for table in candidates:
        read, row = pages.get(table.source), recorded.get(table.name)
        if read is None or row is None:
            continue
        if row[2] == read.digest:
            found[table.name] = Unchanged(str(row[0]), int(row[1]))
        elif rangeable(table):
            moved.append(table)
    ranged: dict[str, Ranged] = {}
    before = _recorded_ranges(conn, schema, [t.name for t in moved]) if moved else {}
    for table in moved:
        then, units = before.get(table.name, (None, None))
        now = pages[table.source].ranges
        if now is None or then is None:
            continue
        count, rowids = changed_ranges(then, now)
        since, rows = recorded[table.name][:2]
        ranged[table.name] = Ranged(
            str(since), int(rows), count, len(now), rowids, pages[table.source].in_leaves, units
        )
    return Recorded(found, ranged, pages_read(pages, candidates))


def _recorded_ranges(
    conn: psycopg.Connection, schema: str, names: list[str]
) -> dict[str, tuple[PageRanges, dict[str, UnitRecord] | None]]:
    """The ranges of leaf pages recorded of these tables (none for a table an earlier version of
    etl recorded, a record made before etl recorded ranges, or one of another layout), and the
    units of their `auto` datetime columns."""
    try:
        with conn.transaction():
            found = conn.execute(recorded_ranges_sql(schema, names)).fetchall()
    except psycopg.errors.UndefinedColumn:
        return {}
    read = {name: (PageRanges.from_bytes(bytes(data)), _unit_records(units)) for name, data, units in found}
    return {name: (ranges, units) for name, (ranges, units) in read.items() if ranges is not None}


def _unit_records(recorded: object) -> dict[str, UnitRecord] | None:
    if not isinstance(recorded, dict):
        return None
    return {
        column: UnitRecord(r["unit"], bool(r["mixed"]), None if r["witness"] is None else tuple(r["witness"]))
        for column, r in recorded.items()
    }


def unit_columns(table: TargetTable) -> list[TargetColumn]:
    """The table's `auto` datetime columns: their units depend on every row."""
    return [c for c in table.columns if measures_unit(c)]


def recorded_extremes(table: TargetTable, ranged: Ranged) -> dict[str, tuple[int | None, int | None]] | None:
    """Per `auto` datetime column, the smallest and largest absolute integer the table's unchanged
    rows (those outside ranged.rowids) decide its unit by, as the apply's record proves them:
    measuring the changed ranges and taking the wider of the two gives the unit measuring every
    row would. None when the record does not prove them (no record, integers of several units,
    or the witness's row in a changed range): every row is measured."""
    columns = unit_columns(table)
    if not columns or ranged.units is None:
        return None
    extremes: dict[str, tuple[int | None, int | None]] = {}
    for name in (c.name for c in columns):
        record = ranged.units.get(name)
        if record is None or record.mixed:
            return None
        if record.unit is None:
            extremes[name] = (None, None)  # no integer then, so none in the unchanged rows now
            continue
        if record.witness is None or _within(record.witness[0], ranged.rowids):
            return None
        magnitude = record.witness[1]
        extremes[name] = (magnitude, magnitude)
    return extremes


def _within(rowid: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(low <= rowid <= high for low, high in ranges)


def units_moved(table: TargetTable, ranged: Ranged) -> bool:
    """Whether the units `table` (measured) reads its `auto` datetime columns in may differ from
    those the recorded apply read them in: then the unchanged rows read differently too, and the
    table is compared in full."""
    columns = unit_columns(table)
    if not columns:
        return False
    if ranged.units is None:
        return True
    for column in columns:
        record = ranged.units.get(column.name)
        conversion = column.conversion
        if record is None or (record.unit, record.mixed) != (conversion.integer_unit, conversion.mixed_units):
            return True
    return False


def unit_records(source: Path, tables: list[TargetTable], ranges: dict[str, PageRanges]) -> dict[str, str]:
    """Target name -> the JSON record (UnitRecord per column) of the units of the `auto` datetime
    columns of each of `tables` recorded with ranges: the units it was read in, and a witness of
    each found among the first rows. Read from the source as the apply verified it (the caller
    checks that it did not change since)."""
    wanted = [(t, t.rowid) for t in tables if rangeable(t) and t.source in ranges and unit_columns(t)]
    if not wanted:
        return {}
    found: dict[str, str] = {}
    with open_sqlite(source) as con:
        for table, rowid in wanted:
            assert rowid is not None  # rangeable: the target's key is the rowid
            columns = unit_columns(table)
            # A column read in no unit held no integer: it needs no witness, nor a look for one.
            witnessed = [c for c in columns if c.conversion.integer_unit is not None]
            expressions = [c.conversion.source_sql for c in witnessed]
            witnesses = dict(
                zip(
                    (c.name for c in witnessed),
                    integer_witnesses(con, table.source, rowid, table.where, expressions),
                    strict=True,
                )
            )
            found[table.name] = json.dumps(
                {
                    c.name: {
                        "unit": c.conversion.integer_unit,
                        "mixed": c.conversion.mixed_units,
                        "witness": witnesses.get(c.name),
                    }
                    for c in columns
                }
            )
    return found


# Tables whose target state one query checks: a round trip each would cost more than a small
# table's scan.
TARGET_CHECK_BATCH = 100


def _target_unchanged(conn: psycopg.Connection, schema: str, tables: list[TargetTable]) -> dict[str, tuple]:
    """Target name -> (time, rows, source digest) recorded, for the tables whose spec and target
    state are as the last apply that recorded them left them."""
    found: dict[str, tuple] = {}
    for start in range(0, len(tables), TARGET_CHECK_BATCH):
        batch = tables[start : start + TARGET_CHECK_BATCH]
        query = sql.SQL(" UNION ALL ").join(
            unchanged_since_sql(schema, t.name, desired_digest(t)) for t in batch
        )
        for name, since, rows, source in conn.execute(query).fetchall():
            found[name] = (since, rows, source)
    return found


def recorded_tables(conn: psycopg.Connection, schema: str) -> set[str]:
    """The tables (target names) of the schema etl.fingerprints holds a record of, valid or not."""
    exists = conn.execute("SELECT to_regclass(%s)", (FINGERPRINTS.as_string(None),)).fetchone()
    if exists is None or exists[0] is None:
        return set()
    query = sql.SQL("SELECT table_name FROM {} WHERE target_schema = %s").format(FINGERPRINTS)
    return {str(name) for (name,) in conn.execute(query, (schema,)).fetchall()}


# Sampled rows of a key for its statistics: 300 times this. A key's histogram tells PostgreSQL
# how few rows a narrow range of keys holds (enough to read it through the index, with no
# just-in-time compilation) from a few thousand sampled rows as well as from the default 30,000,
# and the sample's pages are most of the cost of ANALYZE.
KEY_STATISTICS_TARGET = 10


def analyze_sql(schema: str, tables: list[TargetTable], ranges: dict[str, PageRanges]) -> list[sql.Composed]:
    """Statistics of the key of each table recorded with ranges: a later plan reads its changed
    ranges through the key's index, which PostgreSQL picks (and keeps just-in-time compilation
    out of) only when it knows how the keys spread; a server without autovacuum never gathers
    statistics. Only the key's, from a small sample: those are all the read needs."""
    keyed = [t for t in tables if fingerprintable(t) and rangeable(t) and t.source in ranges]
    if not keyed:
        return []
    target = sql.SQL("SET LOCAL default_statistics_target = {}").format(sql.Literal(KEY_STATISTICS_TARGET))
    return [
        target,
        *(
            sql.SQL("ANALYZE {} ({})").format(
                sql.Identifier(schema, t.name), sql.Identifier(t.rowid_key or "")
            )
            for t in keyed
        ),
        sql.Composed([sql.SQL("RESET default_statistics_target")]),
    ]


def record_sql(
    schema: str,
    tables: list[TargetTable],
    prints: dict[str, str],
    applied_at: str,
    ranges: dict[str, PageRanges] | None = None,
    written: dict[str, sql.Composable] | None = None,
    units: dict[str, str] | None = None,
    created: dict[str, int] | None = None,
) -> list[sql.Composed]:
    """The statements recording each of `tables` that has a source fingerprint (and its ranges
    of leaf pages, where `ranges` has them and the table is `rangeable`, read from the staging
    table that `staged_ranges` says what to put in; `written`: the tables whose xmins are
    recorded from the rows the apply wrote, sync.written_xmins; `units`: unit_records';
    `created`: the tables the apply created, with the rows verification counted in them)."""
    ranges, written, units, created = ranges or {}, written or {}, units or {}, created or {}
    return [
        record_fingerprint_sql(
            schema,
            t.name,
            applied_at,
            desired_digest(t),
            prints[t.source],
            ranged=rangeable(t) and t.source in ranges,
            written=written.get(t.name),
            units=units.get(t.name),
            created_rows=created.get(t.name),
        )
        for t in tables
        if fingerprintable(t) and t.source in prints
    ]


def staged_ranges(
    tables: list[TargetTable], prints: dict[str, str], ranges: dict[str, PageRanges]
) -> list[tuple[str, bytes]]:
    """(target name, recorded ranges) of each table record_sql records with ranges."""
    return [
        (t.name, ranges[t.source].to_bytes())
        for t in tables
        if fingerprintable(t) and rangeable(t) and t.source in prints and t.source in ranges
    ]
