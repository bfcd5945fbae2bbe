"""Check a spec completely: its YAML and schema, then its meaning against the SQLite source.

This is the I/O edge of validation: it opens the source (read-only) to learn its catalog and to
let SQLite itself judge the spec's SQLite expressions, and uses DuckDB's parser (PostgreSQL's
grammar) for the PostgreSQL expressions. Every problem is collected and raised once.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping as AnyMapping
from dataclasses import dataclass

import duckdb

from .duck import quote_ident, quote_literal
from .errors import SourceError, SpecError, SpecProblem
from .mapping import (
    Mapping,
    TargetTable,
    datetime_columns_to_measure,
    resolve,
    with_integer_units,
    with_row_ranges,
)
from .model import Catalog
from .source import integer_magnitudes, introspect_sqlite, open_sqlite
from .spec import Spec, SqlDefault, read_spec


@dataclass(frozen=True)
class Validated:
    spec: Spec
    source: Catalog
    mapping: Mapping


def validate(
    path: str | os.PathLike[str], environ: AnyMapping[str, str] | None = None, target_url: str | None = None
) -> Validated:
    spec, problems = read_spec(path, environ, target_url)
    if spec is None:
        raise SpecError(problems)
    try:
        catalog = introspect_sqlite(spec.source)
    except SourceError as exc:
        raise SpecError([*problems, spec.problem(("source", "sqlite"), str(exc))]) from exc
    problems += sqlite_expression_problems(spec, catalog) + postgres_expression_problems(spec)
    try:
        mapping = resolve(spec, catalog)
    except SpecError as exc:
        raise SpecError(_unique(problems + exc.problems)) from exc
    if problems:
        raise SpecError(_unique(problems))
    mapping = measure_datetime_units(spec, mapping)
    return Validated(spec, catalog, measure_row_ranges(spec, mapping))


# Source bytes per load query. Far below PostgreSQL's 1 GB message limit, and it bounds how much
# of a table of large values DuckDB holds at once.
CHUNK_BYTES = 32 * 1024 * 1024
# DuckDB moves rows in vectors of this many: a table whose rows are small enough that a vector
# stays under CHUNK_BYTES streams through one query, however large the table.
VECTOR_ROWS = 2048


def measure_row_ranges(spec: Spec, mapping: Mapping) -> Mapping:
    """Count each table's rows, and split tables of large rows (a vector of them would hold more
    than CHUNK_BYTES) into rowid ranges of about CHUNK_BYTES each, loaded one by one.

    Sizes come from SQLite's dbstat table (page headers only, no record decoded: 0.06 s for a
    1M-row table that length() over every value takes 0.7 s to measure); where SQLite lacks it,
    from length(), which reads a value's size from its record header. Nothing is measured when
    the whole file is smaller than a chunk."""
    measure_sizes = spec.source.stat().st_size > CHUNK_BYTES
    ranges: dict[str, tuple[tuple[int, int], ...]] = {}
    counts: dict[str, int] = {}
    largest: dict[str, int] = {}
    with open_sqlite(spec.source) as con:
        for table in mapping.tables:
            condition = f" WHERE ({table.where})" if table.where else ""
            source = quote_ident(table.source)
            counts[table.source] = con.execute(f"SELECT count(*) FROM {source}{condition}").fetchone()[0]
            if not measure_sizes or not counts[table.source]:
                continue
            total, largest[table.source] = _stored_bytes(con, table)
            if table.rowid is None:
                continue
            if total <= CHUNK_BYTES or total * VECTOR_ROWS <= CHUNK_BYTES * counts[table.source]:
                continue
            low, high = con.execute(f"SELECT min({table.rowid}), max({table.rowid}) FROM {source}").fetchone()
            parts = -(-total // CHUNK_BYTES)
            width = max(1, (high - low + 1) // parts)  # rounded down: no range above a chunk
            ranges[table.source] = tuple(
                (start, min(start + width - 1, high)) for start in range(low, high + 1, width)
            )
    return with_row_ranges(mapping, ranges, counts, largest)


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
    row = con.execute(f"SELECT sum({sizes}), max({sizes}) FROM {quote_ident(table.source)}").fetchone()
    return int(row[0] or 0), int(row[1] or 0)


def measure_datetime_units(spec: Spec, mapping: Mapping) -> Mapping:
    """Fix each `auto` datetime column's integer unit from the integers it holds."""
    magnitudes: dict[tuple[str, str], tuple[int | None, int | None]] = {}
    wanted = datetime_columns_to_measure(mapping)
    if not wanted:
        return mapping
    with open_sqlite(spec.source) as con:
        for source_table, columns in wanted.items():
            where = next((t.where for t in mapping.tables if t.source == source_table), None)
            found = integer_magnitudes(con, source_table, where, [c.conversion.source_sql for c in columns])
            for column, extremes in zip(columns, found, strict=True):
                magnitudes[(source_table, column.name)] = extremes
    return with_integer_units(mapping, magnitudes)


def _unique(problems: list[SpecProblem]) -> list[SpecProblem]:
    return list(dict.fromkeys(problems))


def sqlite_expression_problems(spec: Spec, catalog: Catalog) -> list[SpecProblem]:
    checks: list[tuple[tuple[str | int, ...], str]] = []
    for name, ts in spec.tables.items():
        if catalog.table(name) is None:
            continue  # reported by the resolver
        table = quote_ident(name)
        if ts.where:
            checks.append((("tables", name, "where"), f"SELECT 1 FROM {table} WHERE ({ts.where})"))
        for column, cs in ts.columns.items():
            if cs.expression:
                checks.append(
                    (
                        ("tables", name, "columns", column, "expression"),
                        f"SELECT ({cs.expression}) FROM {table}",
                    )
                )
    problems = []
    if checks:
        with open_sqlite(spec.source) as con:
            for path, query in checks:
                try:
                    con.execute(f"EXPLAIN {query}")
                except sqlite3.Error as exc:
                    problems.append(spec.problem(path, f"SQLite cannot run this expression: {exc}"))
    return problems


def postgres_expression_problems(spec: Spec) -> list[SpecProblem]:
    checks: list[tuple[tuple[str | int, ...], str]] = []
    for name, ts in spec.tables.items():
        for i, ix in enumerate(ts.indexes or ()):
            if ix.where:
                checks.append((("tables", name, "indexes", i, "where"), f"SELECT 1 WHERE {ix.where}"))
        for column, cs in ts.columns.items():
            if isinstance(cs.default, SqlDefault):
                checks.append(
                    (("tables", name, "columns", column, "default", "sql"), f"SELECT {cs.default.sql}")
                )
    if not checks:
        return []
    problems = []
    con = duckdb.connect()
    try:
        for path, query in checks:
            result = con.execute(f"SELECT json_serialize_sql({quote_literal(query)})").fetchone()
            text = result[0] if result else ""
            if '"error":true' in text.replace(" ", ""):
                import json

                message = json.loads(text).get("error_message", "syntax error")
                problems.append(
                    spec.problem(path, f"not a valid PostgreSQL expression: {message.splitlines()[0]}")
                )
    finally:
        con.close()
    return problems
