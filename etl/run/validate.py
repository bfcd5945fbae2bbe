"""Check a spec completely: its YAML and schema, then its meaning against the SQLite source.

This is the I/O edge of validation: it opens the source (read-only) to learn its catalog and to
let SQLite itself judge the spec's SQLite expressions, and uses DuckDB's parser (PostgreSQL's
grammar) for the PostgreSQL expressions. Every problem is collected and raised once.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable
from collections.abc import Mapping as AnyMapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, replace
from typing import TypeVar

import duckdb

from etl.core.mapping import (
    MAX_NAME_BYTES,
    DesiredSchema,
    TargetColumn,
    TargetTable,
    datetime_columns_to_measure,
    resolve,
    with_integer_units,
    with_negative_zeros,
    with_row_ranges,
    zero_signs_to_measure,
)
from etl.duck import quote_ident, quote_literal
from etl.errors import SourceError, SpecError, SpecProblem
from etl.model import Catalog
from etl.postgres.history import HISTORY_SCHEMA_PREFIX
from etl.postgres.metadata import METADATA_SCHEMA
from etl.specfile.document import Spec, SqlDefault, read_spec
from etl.specfile.sqltext import POSTGRESQL, SQLITE, one_expression_problem, one_select_problem
from etl.sqlite.catalog import (
    covering_ranges,
    integer_magnitudes,
    integer_magnitudes_in_ranges,
    introspect_sqlite,
    negative_zero_runs,
    open_sqlite,
    per_core_ranges,
    query_tables,
    rowid_bounds,
    widest,
)

T = TypeVar("T")


@dataclass(frozen=True)
class Validated:
    spec: Spec
    source: Catalog
    mapping: DesiredSchema
    # Set when the tables' row counts and sizes are not measured yet (validate's `sizes_later`):
    # how to measure them, with_sizes, for the tables that need them.
    sizes_pending: Measuring | None = None


# Source bytes per load query. Far below PostgreSQL's 1 GB message limit, and it bounds how much
# of a table of large values DuckDB holds at once.
CHUNK_BYTES = 32 * 1024 * 1024
# DuckDB moves rows in vectors of this many: a table whose rows are small enough that a vector
# stays under CHUNK_BYTES streams through one query, however large the table.
VECTOR_ROWS = 2048


# A table with more rowids than this has its magnitudes measured in one slice per core.
SLICE_FROM_ROWS = 500_000


@dataclass(frozen=True)
class Measuring:
    """How validation measures the source: the bytes of one load query's rows, and from how many
    rowids a table's magnitudes are measured in slices."""

    chunk_bytes: int = CHUNK_BYTES
    slice_from_rows: int = SLICE_FROM_ROWS


def validate(
    path: str | os.PathLike[str],
    environ: AnyMapping[str, str] | None = None,
    target_url: str | None = None,
    *,
    measuring: Measuring = Measuring(),
    sizes_later: bool = False,
) -> Validated:
    """The spec, checked against the source, with the source measured. `sizes_later`: the row
    counts and sizes are left for with_sizes to measure, for only the tables a plan compares or
    loads (a re-sync skips the tables it proves unchanged, whose sizes nothing reads)."""
    spec, problems = read_spec(path, environ, target_url)
    if spec is None:
        raise SpecError(problems)
    try:
        catalog = introspect_sqlite(spec.source)
    except SourceError as exc:
        raise SpecError([*problems, spec.problem(("source", "sqlite"), str(exc))]) from exc
    catalog, found = with_query_tables(spec, catalog)
    problems += found
    problems += target_schema_problems(spec) + prisma_project_problems(spec)
    problems += sqlite_expression_problems(spec, catalog) + postgres_expression_problems(spec)
    try:
        mapping = resolve(spec, catalog)
    except SpecError as exc:
        raise SpecError(_unique(problems + exc.problems)) from exc
    if problems:
        raise SpecError(_unique(problems))
    # The YAML with positions locates a spec's problems, and there are none: nothing after this
    # reads it, and it holds several objects per line of the spec (thousands of tables' worth).
    spec = replace(spec, document=None)
    if sizes_later:
        return Validated(
            spec, catalog, measure(spec, mapping, measuring, sizes=set(), units=set()), measuring
        )
    return Validated(spec, catalog, measure(spec, mapping, measuring))


# Per source table: rowid ranges (inclusive), and per target column the smallest and largest
# absolute integer of the rows outside them (fingerprint.recorded_extremes).
InRanges = dict[str, tuple[tuple[tuple[int, int], ...], dict[str, tuple[int | None, int | None]]]]


def with_sizes(
    checked: Validated, names: set[str], units: set[str] | None = None, in_ranges: InRanges | None = None
) -> DesiredSchema:
    """The mapping with the row counts and sizes of the tables named (target names) measured, and
    the datetime units of those and of `units`, for a Validated whose sizes are pending; the
    mapping as it is otherwise. `in_ranges`: source tables whose units are measured in those
    rowid ranges only, widened by the extremes given for the other rows."""
    if checked.sizes_pending is None:
        return checked.mapping
    units = names | (units or set())
    return measure(
        checked.spec, checked.mapping, checked.sizes_pending, sizes=names, units=units, in_ranges=in_ranges
    )


def with_query_tables(spec: Spec, catalog: Catalog) -> tuple[Catalog, list[SpecProblem]]:
    """The catalog with the spec's `query:` tables in it, and what is wrong with their queries."""
    problems: list[SpecProblem] = []
    queries: dict[str, str] = {}
    for name, table in spec.tables.items():
        if table.query is None:
            continue
        at = ("tables", name, "query")
        bad = one_select_problem(table.query, SQLITE)
        if bad:
            problems.append(spec.problem(at, f"table '{name}': {bad}"))
        elif catalog.table(name) is not None or name in catalog.views:
            problems.append(
                spec.problem(
                    at, f"'{name}' is a table or view of the source: give the query's table another name"
                )
            )
        else:
            queries[name] = table.query
    tables, refused = query_tables(spec.source, queries)
    problems += [
        spec.problem(("tables", name, "query"), f"table '{name}': {why}") for name, why in refused.items()
    ]
    return replace(catalog, tables=catalog.tables + tuple(tables.values())), problems


def prisma_project_problems(spec: Spec) -> list[SpecProblem]:
    """The `prisma:` project's schema file must be there: apply writes the baseline from it."""
    project = spec.prisma
    if project is None or project.schema.is_file():
        return []
    what = "is a directory" if project.schema.is_dir() else "does not exist"
    return [
        spec.problem(
            ("prisma", "schema"),
            f"'{project.schema}' {what}; give the path of the app's schema.prisma, relative to the spec",
        )
    ]


def measure(
    spec: Spec,
    mapping: DesiredSchema,
    measuring: Measuring = Measuring(),
    *,
    sizes: set[str] | None = None,
    units: set[str] | None = None,
    in_ranges: InRanges | None = None,
) -> DesiredSchema:
    """What loading needs to know of the data: each table's row count and record sizes (its row
    ranges, see table_sizes) and each `auto` datetime column's integer unit (from the magnitudes
    of the integers it holds). Each is a scan of a whole table, slow for a large one when run one
    after the other, so they run at once on read-only connections of their own, a large table's
    magnitudes in rowid slices: sqlite3 lets go of the GIL while SQLite reads. `sizes`, `units`:
    only the tables named (target names) have their sizes or units measured (None: all); a
    table's units are those of its source table's (all its target tables'). `in_ranges`: see
    with_sizes."""
    in_ranges = in_ranges or {}
    measure_sizes = spec.source.stat().st_size > measuring.chunk_bytes
    wanted = datetime_columns_to_measure(mapping)
    if units is not None:
        sources = {t.source for t in mapping.tables if t.name in units}
        wanted = {source: columns for source, columns in wanted.items() if source in sources}
    first: dict[str, TargetTable] = {}
    for table in mapping.tables:
        first.setdefault(table.source, table)
    sized = [t for t in mapping.tables if sizes is None or t.name in sizes]
    extremes: dict[tuple[str, str], tuple[int | None, int | None]] = {}
    ranges: dict[str, tuple[tuple[int, int], ...]] = {}
    counts: dict[str, int] = {}
    largest: dict[str, int] = {}
    # One worker more than cores, and the magnitudes' slices before the sizes: a large table's
    # size (dbstat walks its pages) is measured beside its slices, not after them, so the
    # measure ends sooner. Each worker keeps one connection for all its tables: opening one
    # reads the whole schema, which costs as much as measuring a small table.
    with _Connections(spec) as connections, ThreadPoolExecutor(max_workers=(os.cpu_count() or 1) + 1) as pool:
        slices_of = {
            source: [
                pool.submit(connections.run, _magnitudes, first[source], columns, rowids)
                for rowids in _rowid_slices_on(connections.get(), first[source], measuring.slice_from_rows)
            ]
            for source, columns in wanted.items()
            if source not in in_ranges
        }
        for source, (rowids, outside) in in_ranges.items():
            if source not in wanted:
                continue
            columns = wanted[source]
            slices_of[source] = [
                pool.submit(connections.run, _magnitudes_in_ranges, first[source], columns, rowids),
                _done([outside.get(c.name, (None, None)) for c in columns]),
            ]
        stored = (
            all_stored_bytes(connections.get(), {t.source for t in sized})
            if measure_sizes and len(sized) >= STORED_BYTES_AT_ONCE
            else {}
        )
        sized_by_source = {
            t.source: pool.submit(
                connections.run, table_sizes, t, measure_sizes, measuring.chunk_bytes, stored.get(t.source)
            )
            for t in sized
        }
        signs = {
            t.name: pool.submit(connections.run, negative_zeros, t)
            for t in zero_signs_to_measure(mapping, units)
        }
        for source, slices in slices_of.items():
            per_column = zip(*(s.result() for s in slices), strict=True)
            for column, found in zip(wanted[source], per_column, strict=True):
                extremes[(source, column.name)] = widest(found)
        for source, future in sized_by_source.items():
            counts[source], largest[source], ranges[source] = future.result()
    measured = with_integer_units(mapping, extremes)
    measured = with_negative_zeros(measured, {name: future.result() for name, future in signs.items()})
    return with_row_ranges(measured, ranges, counts, largest)


class _Connections:
    """One read-only connection to the source per thread, all closed (and a SQLite error raised
    while they were open turned into the SourceError that names the file) on leaving."""

    def __init__(self, spec: Spec) -> None:
        self._source = spec.source
        self._stack = ExitStack()
        self._local = threading.local()
        self._lock = threading.Lock()

    def __enter__(self) -> _Connections:
        self._stack.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> bool:
        return bool(self._stack.__exit__(*exc_info))  # type: ignore[arg-type]

    def get(self) -> sqlite3.Connection:
        con: sqlite3.Connection | None = getattr(self._local, "con", None)
        if con is None:
            with self._lock:
                con = self._stack.enter_context(open_sqlite(self._source, any_thread=True))
            self._local.con = con
        return con

    def run(self, measure: Callable[..., T], *args) -> T:
        return measure(self.get(), *args)


def rowid_slices(
    spec: Spec, table: TargetTable, slice_from_rows: int = SLICE_FROM_ROWS
) -> list[tuple[int, int] | None]:
    """The rowid ranges validation measures `table` in, concurrently (one range, None, for the
    whole table when it is small or has no rowid)."""
    with open_sqlite(spec.source) as con:
        return _rowid_slices_on(con, table, slice_from_rows)


def _rowid_slices_on(
    con: sqlite3.Connection, table: TargetTable, slice_from_rows: int = SLICE_FROM_ROWS
) -> list[tuple[int, int] | None]:
    if table.rowid is None:
        return [None]
    bounds = rowid_bounds(con, quote_ident(table.source), table.rowid)
    return list(per_core_ranges(bounds, slice_from_rows)) or [None]


def _magnitudes(
    con: sqlite3.Connection, table: TargetTable, columns: list[TargetColumn], rowids: tuple[int, int] | None
) -> list[tuple[int | None, int | None]]:
    conditions = [f"({table.where})"] if table.where else []
    if rowids is not None:
        conditions.append(f"{table.rowid} BETWEEN {int(rowids[0])} AND {int(rowids[1])}")
    where = " AND ".join(conditions) or None
    return integer_magnitudes(
        con, table.source, where, [c.conversion.source_sql for c in columns], relation=table.sqlite_relation
    )


# Rowid ranges of -0.0 one column may have: they become a condition in the SQL that reads it.
MAX_NEGATIVE_ZERO_RUNS = 10_000


def negative_zeros(con: sqlite3.Connection, table: TargetTable) -> dict[str, tuple[tuple[int, int], ...]]:
    """Target column -> the rowid ranges of its -0.0 values, for the columns that keep the sign."""
    columns = [c for c in table.columns if c.conversion.signed_zeros]
    expressions = [c.conversion.source_sql for c in columns]
    runs = negative_zero_runs(con, table.sqlite_relation, table.rowid or "NULL", expressions)
    for column, found in zip(columns, runs, strict=True):
        where = f'table "{table.source}", column "{column.conversion.column or column.name}"'
        if found and table.rowid is None:
            raise SourceError(
                f"{where} holds -0.0, whose sign etl carries by rowid, and the table has no rowid "
                "(WITHOUT ROWID, or a query): give the column a REAL type in SQLite, or map it with an "
                "expression such as `x + 0.0` (which writes every zero as 0.0) to drop the sign knowingly"
            )
        if len(found) > MAX_NEGATIVE_ZERO_RUNS:
            raise SourceError(
                f"{where} holds -0.0 and 0.0 interleaved over more than {MAX_NEGATIVE_ZERO_RUNS:,} rowid "
                "ranges, too many to carry each zero's sign: give the column a REAL type in SQLite, or map "
                "it with an expression such as `x + 0.0` (which writes every zero as 0.0) to drop the "
                "signs knowingly"
            )
    return {c.name: found for c, found in zip(columns, runs, strict=True) if found}


def _magnitudes_in_ranges(
    con: sqlite3.Connection,
    table: TargetTable,
    columns: list[TargetColumn],
    rowids: tuple[tuple[int, int], ...],
) -> list[tuple[int | None, int | None]]:
    return integer_magnitudes_in_ranges(
        con,
        table.source,
        table.rowid or "rowid",
        table.where,
        [c.conversion.source_sql for c in columns],
        rowids,
    )


def _done(value: T) -> Future[T]:
    future: Future[T] = Future()
    future.set_result(value)
    return future


def table_sizes(
    con: sqlite3.Connection,
    table: TargetTable,
    measure_sizes: bool,
    chunk_bytes: int = CHUNK_BYTES,
    stored: tuple[int, int] | None = None,
) -> tuple[int, int, tuple[tuple[int, int], ...]]:
    """A table's row count, its largest record's bytes, and (for tables of large rows: a vector of
    them would hold more than `chunk_bytes`) the rowid ranges of about `chunk_bytes` each it is loaded in.

    Sizes come from SQLite's dbstat table (page headers only, no record decoded, an order of
    magnitude faster than length() over every value); where SQLite lacks it,
    from length(), which reads a value's size from its record header. Nothing is measured when
    the whole file is smaller than a chunk (`measure_sizes` false). `stored`: the table's bytes
    and largest record's, when all_stored_bytes read them already."""
    condition = f" WHERE ({table.where})" if table.where else ""
    source = table.sqlite_relation
    count = con.execute(f"SELECT count(*) FROM {source}{condition}").fetchone()[0]
    if not measure_sizes or not count:
        return count, 0, ()
    total, largest = stored if stored is not None else _stored_bytes(con, table)
    if table.rowid is None or total <= chunk_bytes or total * VECTOR_ROWS <= chunk_bytes * count:
        return count, largest, ()
    bounds = rowid_bounds(con, source, table.rowid)
    assert bounds is not None  # the table has rows
    low, high = bounds
    parts = -(-total // chunk_bytes)
    ranges = covering_ranges(low, high, (high - low + 1) // parts)  # rounded down: none above a chunk
    return count, largest, tuple(ranges)


# From this many tables on, their sizes are read in one walk of the whole file: dbstat finds one
# table by scanning the schema, so a query per table costs the square of the tables.
STORED_BYTES_AT_ONCE = 100


def all_stored_bytes(con: sqlite3.Connection, tables: set[str]) -> dict[str, tuple[int, int]]:
    """The bytes of each of `tables`' records and of its largest record, from one walk of dbstat
    over the whole file (page headers only); empty where SQLite lacks dbstat."""
    try:
        rows = con.execute(
            "SELECT name, sum(payload), max(mx_payload) FROM dbstat WHERE aggregate = TRUE GROUP BY name"
        ).fetchall()
    except sqlite3.Error:
        return {}  # SQLite built without dbstat: each table is measured on its own
    return {name: (int(total or 0), int(most or 0)) for name, total, most in rows if name in tables}


def _stored_bytes(con: sqlite3.Connection, table: TargetTable) -> tuple[int, int]:
    """The bytes of the table's records (all its rows: a `where` only makes this an
    overestimate), and of its largest record."""
    try:
        row = con.execute(
            "SELECT sum(payload), max(mx_payload) FROM dbstat WHERE name = ? AND aggregate = TRUE",
            (table.source,),
        ).fetchone()
        if row and row[0] is not None:
            return int(row[0]), int(row[1] or 0)
    except sqlite3.Error:
        pass  # SQLite built without dbstat
    sizes = " + ".join(f"coalesce(length({c.conversion.source_sql}), 0)" for c in table.columns) or "0"
    row = con.execute(f"SELECT sum({sizes}), max({sizes}) FROM {table.sqlite_relation}").fetchone()
    return int(row[0] or 0), int(row[1] or 0)


def _unique(problems: list[SpecProblem]) -> list[SpecProblem]:
    return list(dict.fromkeys(problems))


def target_schema_problems(spec: Spec) -> list[SpecProblem]:
    """What PostgreSQL or etl itself would refuse of the target schema's name, found before apply."""
    name, at = spec.target_schema, ("target", "schema")
    if len(name.encode()) > MAX_NAME_BYTES:
        return [spec.problem(at, f"schema name '{name}' is longer than PostgreSQL's 63 bytes; shorten it")]
    if name == METADATA_SCHEMA or name.startswith(HISTORY_SCHEMA_PREFIX):
        return [
            spec.problem(
                at, f"schema '{name}' is where etl keeps its own records; migrate into another schema"
            )
        ]
    if name.startswith("pg_"):
        return [
            spec.problem(at, f"PostgreSQL reserves schema names starting with pg_ ('{name}'); choose another")
        ]
    return []


def sqlite_expression_problems(spec: Spec, catalog: Catalog) -> list[SpecProblem]:
    """Each SQLite field (a table's `where`, a column's `expression`) must be one expression
    (see etl/specfile/sqltext.py) that SQLite accepts in the statement etl writes around it."""
    checks: list[tuple[tuple[str | int, ...], str]] = []
    problems = []
    for name, ts in spec.tables.items():
        fields: list[tuple[tuple[str | int, ...], str, str]] = []
        if ts.where:
            fields.append((("tables", name, "where"), ts.where, "SELECT 1 FROM {table} WHERE ({text})"))
        for column, cs in ts.columns.items():
            if cs.expression:
                at: tuple[str | int, ...] = ("tables", name, "columns", column, "expression")
                fields.append((at, cs.expression, "SELECT ({text}) FROM {table}"))
        for path, text, statement in fields:
            shape = one_expression_problem(text, SQLITE)
            if shape:
                problems.append(spec.problem(path, f"not one SQLite expression: {shape}"))
            elif catalog.table(name) is not None:  # else reported by the resolver
                checks.append((path, statement.format(table=quote_ident(name), text=text)))
    if checks:
        with open_sqlite(spec.source) as con:
            for path, query in checks:
                try:
                    con.execute(f"EXPLAIN {query}")
                except sqlite3.Error as exc:
                    problems.append(spec.problem(path, f"SQLite cannot run this expression: {exc}"))
    return problems


def postgres_expression_problems(spec: Spec) -> list[SpecProblem]:
    """Each PostgreSQL field (an index's `where`, a check's `sql`, a `default: {sql: ...}`) must be one expression
    (see etl/specfile/sqltext.py) that PostgreSQL's grammar (DuckDB's parser of it) accepts."""
    checks: list[tuple[tuple[str | int, ...], str]] = []
    problems = []
    fields: list[tuple[tuple[str | int, ...], str, str]] = []
    for name, ts in spec.tables.items():
        for i, ix in enumerate(ts.indexes or ()):
            if ix.where:
                fields.append((("tables", name, "indexes", i, "where"), ix.where, "SELECT 1 WHERE ({})"))
        for i, check in enumerate(ts.checks or ()):
            fields.append((("tables", name, "checks", i, "sql"), check.sql, "SELECT 1 WHERE ({})"))
        for column, cs in ts.columns.items():
            if isinstance(cs.default, SqlDefault):
                at: tuple[str | int, ...] = ("tables", name, "columns", column, "default", "sql")
                fields.append((at, cs.default.sql, "SELECT ({})"))
    for path, text, statement in fields:
        shape = one_expression_problem(text, POSTGRESQL)
        if shape:
            problems.append(spec.problem(path, f"not one PostgreSQL expression: {shape}"))
        else:
            checks.append((path, statement.format(text)))
    if not checks:
        return problems
    con = duckdb.connect()
    try:
        for path, query in checks:
            result = con.execute(f"SELECT json_serialize_sql({quote_literal(query)})").fetchone()
            parsed = json.loads(result[0]) if result else {}
            if parsed.get("error") or len(parsed.get("statements", ())) != 1:
                message = str(parsed.get("error_message") or "syntax error")
                problems.append(
                    spec.problem(path, f"not a valid PostgreSQL expression: {message.splitlines()[0]}")
                )
    finally:
        con.close()
    return problems
