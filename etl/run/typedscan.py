"""Reading a table through DuckDB's own scan of the attached SQLite file, where a proof shows that
scan reads every value exactly as the exact path would.

The exact path (render.sqlite_select) has SQLite render every value as text beside its storage
class, on one thread. DuckDB's scan of the attached table reads the declared types natively on
every core, several times faster than rendering, but it converts some values silently:

| DuckDB type (from the declared type) | reads exactly               | otherwise                      |
|---|---|---|
| BIGINT (INT in the name)             | integers                    | raises                         |
| DOUBLE (REAL, FLOA, DOUB, NUMERIC)   | reals                       | integers become doubles; text raises |
| VARCHAR (CHAR, CLOB, TEXT)           | text (bytes as they are)    | 42 becomes '42', 0.1 becomes '0.1' (15 digits) |
| BLOB (BLOB, none)                    | blobs                       | anything becomes its text's bytes |
| TIMESTAMP (DATETIME, TIMESTAMP)      | 'YYYY-MM-DD HH:MM:SS' text, integers (as epoch seconds) | other text its own way; integers beyond year 294247 raise |
| DATE (DATE)                          | 'YYYY-MM-DD' text           | the same                       |

So a column reads through the scan only where the scan raises on what it cannot read (BIGINT), or
where a proof query run in SQLite finds nothing but the storage class it reads exactly. From the
typed value the exact path's storage class and text (t, v) are rebuilt, so the same conversion
expressions (convert.duck_expressions) apply, with shortcuts where the typed value already is the
target value. A value that cannot arrive raises; the executor then starts over on the exact path,
whose message names the row (the same holds for a value written to the source after the proof).

Tables read this way: every column a plain source column, no `where`, no rowid ranges, on_error:
fail (rejects need the raw values), with a rowid.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import duckdb

from etl import duck
from etl.core.mapping import TargetColumn, TargetTable
from etl.duck import quote_ident, quote_literal
from etl.settings import Converter, OnError
from etl.sqlite.convert import (
    EPOCH_UNITS,
    ValueConversion,
    affinity,
    as_timestamptz,
    duck_expressions,
    invalid_utf8,
    loads_as_text,
)

_STORAGE = {"BIGINT": "integer", "DOUBLE": "real", "VARCHAR": "text", "BLOB": "blob"}


def eligible(table: TargetTable) -> bool:
    return (
        table.where is None
        and not table.row_ranges
        and table.on_error == OnError.FAIL
        and table.rowid is not None
        and bool(table.columns)
        and all(c.conversion.column is not None for c in table.columns)
        and not any(c.conversion.negative_zeros for c in table.columns)  # rendered with their sign
    )


def epoch_integers(conversion: ValueConversion) -> bool:
    """Whether the conversion reads the column's integers as epoch time (Prisma's DATETIME holds
    milliseconds): read through a TIMESTAMP scan they are then integers, not ISO text."""
    return conversion.converter in EPOCH_UNITS or (
        conversion.converter == Converter.AUTO and conversion.integer_unit is not None
    )


def _direct(conversion: ValueConversion, scan_type: str, x: str) -> str | None:
    """The target value straight from the typed value `x`, where no conversion is needed."""
    pg = conversion.pg_type
    if scan_type in ("TIMESTAMP", "DATE") and epoch_integers(conversion):
        return None
    if scan_type == "BIGINT" and pg.name == "bigint":
        return x
    if scan_type == "DOUBLE" and pg.name == "double precision":
        return x
    if scan_type == "BLOB" and pg.kind == "bytea":
        return x
    if scan_type == "TIMESTAMP":
        return x if pg.kind == "timestamp" else as_timestamptz(x)
    if scan_type == "DATE":
        return x
    return None


def _supported(conversion: ValueConversion, scan_type: str) -> bool:
    pg = conversion.pg_type
    if loads_as_text(pg) or conversion.converter == Converter.BASE64:
        return False
    if scan_type in ("BIGINT", "DOUBLE", "VARCHAR"):
        return True
    if scan_type == "BLOB":
        return pg.kind == "bytea"
    datetime = conversion.converter in (Converter.AUTO, Converter.ISO) and not conversion.integer_unit
    if scan_type == "TIMESTAMP" and epoch_integers(conversion):
        return pg.kind in ("timestamp", "timestamptz", "date")
    if scan_type == "TIMESTAMP":
        return datetime and pg.kind in ("timestamp", "timestamptz")
    if scan_type == "DATE":
        return datetime and pg.kind == "date"
    return False


def proof_condition(column: str, scan_type: str, declared: str, epoch: bool = False) -> str | None:
    """SQLite condition true for a value the scan reads exactly; None when nothing needs proving:
    the scan raises on every other value itself (BIGINT; VARCHAR and DOUBLE on blobs, DOUBLE on
    text), and the column's affinity stores no value the scan would convert (TEXT affinity turns
    numbers into text as they are stored, REAL affinity integers into reals). `epoch`: a TIMESTAMP
    column read as epoch integers (epoch_integers), which must then hold nothing else."""
    c = quote_ident(column)
    if scan_type == "BIGINT":
        return None
    if scan_type == "TIMESTAMP" and epoch:
        return f"typeof({c}) IN ('integer', 'null')"
    if (scan_type, affinity(declared)) in (("VARCHAR", "TEXT"), ("DOUBLE", "REAL")):
        return None
    if scan_type in _STORAGE:
        return f"typeof({c}) IN ('{_STORAGE[scan_type]}', 'null')"
    # Not `>= '0001'`: compared with a column of NUMERIC affinity, that literal becomes the number 1.
    # `+`: the value without the column's affinity, which SQLite would otherwise try on the literal
    # for every row (the text compares the same; the column's collation still applies).
    return f"(typeof({c}) = 'null' OR (typeof({c}) = 'text' AND {_canonical(c, scan_type)} AND +{c} >= '0001-01-01'))"


def _canonical(c: str, scan_type: str) -> str:
    """SQLite condition: the text `c` is a valid date ('YYYY-MM-DD') or datetime to the second
    ('YYYY-MM-DD HH:MM:SS', or with a 'T') written as SQLite's own date functions write it. A
    GLOB of digit classes proves the shape too, but costs more CPU than the date functions;
    `>= '0001-01-01'` leaves out the year 0 and the signed years of newer SQLite versions."""
    # IS, not =: these functions yield NULL for text they cannot read, and NOT NULL is no proof.
    if scan_type == "DATE":
        return f"date({c}) IS {c}"
    return f"(datetime({c}) IS {c} OR datetime({c}) IS replace({c}, 'T', ' '))"


def scan_types(table: TargetTable, described: dict[str, str]) -> tuple[str, ...] | None:
    """Each column's DuckDB scan type, or None when some column cannot be read through the scan.
    `table` is eligible; `described`: DuckDB's DESCRIBE of the source table, lower-cased column
    name -> type."""
    types = []
    for column in table.columns:
        source = column.conversion.column or ""
        scan_type = described.get(source.lower())
        if scan_type is None or not _supported(column.conversion, scan_type):
            return None
        types.append(scan_type)
    return tuple(types)


def proof_query(table: TargetTable, types: tuple[str, ...], declared: dict[str, str]) -> str | None:
    """SQLite SQL yielding 1 when every value reads exactly through the scan (None: nothing to
    prove). It stops at the first value that does not. `declared`: lower-cased column name ->
    declared type."""
    conditions = []
    for column, scan_type in zip(table.columns, types, strict=True):
        name = column.conversion.column or ""
        condition = proof_condition(
            name, scan_type, declared.get(name.lower(), ""), epoch_integers(column.conversion)
        )
        if condition is not None:
            conditions.append(condition)
    if not conditions:
        return None
    failing = " OR ".join(f"NOT {c}" for c in conditions)
    return f"SELECT NOT EXISTS (SELECT 1 FROM {quote_ident(table.source)} WHERE {failing})"


def _storage_and_text(conversion: ValueConversion, scan_type: str, x: str) -> tuple[str, str]:
    """The exact path's (storage class, text) of the typed value `x`."""
    if scan_type == "TIMESTAMP" and epoch_integers(conversion):  # proven integers, read as seconds
        return (
            f"CASE WHEN {x} IS NULL THEN 'null' ELSE 'integer' END",
            f"CAST(epoch_us({x}) // 1000000 AS VARCHAR)",
        )
    t = f"CASE WHEN {x} IS NULL THEN 'null' ELSE '{_STORAGE[scan_type]}' END"
    return t, x if scan_type == "VARCHAR" else f"CAST({x} AS VARCHAR)"


def _plain_text(column: TargetColumn, scan_type: str) -> bool:
    return scan_type == "VARCHAR" and column.pg_type.kind == "text" and not column.pg_type.modifiers


def _integer_boolean(column: TargetColumn, scan_type: str) -> bool:
    return scan_type == "BIGINT" and column.pg_type.kind == "boolean"


def _needs_text(column: TargetColumn, scan_type: str) -> bool:
    """Whether the column converts through the exact path's (storage class, text)."""
    return (
        _direct(column.conversion, scan_type, "x") is None
        and not _plain_text(column, scan_type)
        and not _integer_boolean(column, scan_type)
    )


def typed_expressions(
    column: TargetColumn,
    scan_type: str,
    x: str,
    names: tuple[str, str] | None = None,
    into_postgres: bool = False,
    named: str | None = None,
) -> tuple[str, list[str]]:
    """The column's target value from its typed value `x`, and the problems (DuckDB expressions,
    NULL when fine) that make the read raise. `names`: columns already holding the exact path's
    (storage class, text) of `x` (the conversions repeat them many times: as names, a table's
    query stays small, and DuckDB parses and binds each copy). `into_postgres`: the
    value goes straight into a PostgreSQL text column, whose COPY refuses text that is not UTF-8
    (DuckDB's writer refuses a NUL byte): the check is left to them, which saves the typed scan's
    CPU on every text value (the refused load starts over on the exact path). `named`:
    the column holding the value when the problems are computed (convert.duck_expressions)."""
    conversion = column.conversion
    direct = _direct(conversion, scan_type, x)
    problems = [f"CASE WHEN {x} IS NULL THEN 'NULL' END"] if not column.nullable else []
    if direct is not None:
        return direct, problems
    if _plain_text(column, scan_type):
        if into_postgres:
            return x, problems
        check = f"CASE WHEN {x} IS NOT NULL AND (contains({x}, chr(0)) OR {invalid_utf8(x)}) THEN 'text' END"
        return x, [*problems, check]
    if _integer_boolean(column, scan_type):
        # The exact path's 0 and 1, compared as integers rather than as its text.
        return f"({x} = 1)", [*problems, f"CASE WHEN {x} NOT IN (0, 1) THEN 'boolean' END"]
    t, v = names or _storage_and_text(conversion, scan_type, x)
    exprs = duck_expressions(conversion, t, v, named)
    # The reason with the storage class for the value: the message only ever says why the apply
    # starts over on the exact path, whose own message names the row and shows the value.
    return exprs.value, [*problems, f"printf({exprs.reason}, {t})"]


def typed_rows_query(
    source_alias: str, table: TargetTable, checked: bool = True, into_postgres: bool = False
) -> str:
    """DuckDB SQL yielding the table's rows as they must arrive (c0, c1, ...) from DuckDB's scan;
    raises on a value that cannot arrive exactly (the executor then uses the exact path).
    `checked=False`: the values only, for rows a load has just read through this very query
    without a problem (a row changed since then changes the values, and so the checksum).
    `into_postgres`: the rows are written straight to the target (see typed_expressions)."""
    assert table.scan is not None
    read, values, problems, carried = [], [], [], []
    for i, (column, scan_type) in enumerate(zip(table.columns, table.scan, strict=True)):
        x = quote_ident(column.conversion.column or "")
        read.append(f"{x} AS x{i}")
        carried.append(f"x{i}")
        names = None
        if _needs_text(column, scan_type):
            t, v = _storage_and_text(column.conversion, scan_type, f"x{i}")
            names = (f"t{i}", f"v{i}")
            read.append(f"{t} AS t{i}, {v} AS v{i}")
            carried += names
        value, found = typed_expressions(column, scan_type, f"x{i}", names, into_postgres, f"c{i}")
        values.append(value)
        problems += found
    scan = f"(SELECT {', '.join(read)} FROM {_source(source_alias, table)})"
    columns = ", ".join(f"{value} AS c{i}" for i, value in enumerate(values))
    if not problems or not checked:
        return f"SELECT {columns}\nFROM {scan}"
    head = quote_literal(f'table "{table.source}": a value the typed scan cannot convert: ')
    outputs = [f"c{i}" for i in range(len(values))]
    # The check rides on a column that is written: a generated one is not, and would go unread.
    g = table.loaded_columns[0] if table.loaded_columns else 0
    outputs[g] = f"CASE WHEN problem IS NULL THEN c{g} ELSE error({head} || problem) END AS c{g}"
    # The problems read the values c0.. by name, computed a level below them.
    return (
        f"SELECT {', '.join(outputs)}\nFROM (SELECT *, COALESCE({', '.join(problems)}) AS problem "
        f"FROM (SELECT {columns}, {', '.join(carried)} FROM {scan}))"
    )


def _source(source_alias: str, table: TargetTable) -> str:
    return f"{quote_ident(source_alias)}.{quote_ident(table.source)}"


# --- the proof, run against the source ------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A table DuckDB's scan can read: its scan types, and the SQLite query proving every value
    reads exactly (None: nothing to prove)."""

    types: tuple[str, ...]
    proof: str | None


def candidates(
    con: duckdb.DuckDBPyConnection, source_alias: str, tables: Iterable[TargetTable]
) -> dict[str, Candidate]:
    """Source table name -> Candidate, for the tables whose columns the scan can read at all.
    Quick: DuckDB's and SQLite's catalogs only, no row is read, each in one query for all tables."""
    found: dict[str, Candidate] = {}
    tables = list(tables)
    # Listing every table's columns costs about as much as describing a few tables one by one.
    listed = len({t.source for t in tables}) >= LIST_COLUMNS_FROM
    scanned = _scan_columns(con, source_alias) if listed else None
    declared_all = _declared_columns(con, source_alias) if listed else {}
    for table in tables:
        if not eligible(table) or table.source in found:
            continue
        described = scanned.get(table.source) if scanned is not None else None
        if described is None:
            try:
                described = {
                    str(name).lower(): str(type_)
                    for name, type_, *_ in con.execute(f"DESCRIBE {_source(source_alias, table)}").fetchall()
                }
            except duck.ERRORS:
                continue  # a table DuckDB's scanner cannot read: the exact path reads it
        types = scan_types(table, described)
        if types is None:
            continue
        declared = declared_all.get(table.source)
        if declared is None:
            declared = {
                str(name).lower(): str(type_ or "")
                for name, type_ in _sqlite_rows(
                    con,
                    source_alias,
                    f"SELECT name, type FROM pragma_table_info({quote_literal(table.source)})",
                )
            }
        found[table.source] = Candidate(types, proof_query(table, types, declared))
    return found


LIST_COLUMNS_FROM = 20  # tables asked about, from which the source's columns are listed at once


def _scan_columns(con: duckdb.DuckDBPyConnection, source_alias: str) -> dict[str, dict[str, str]] | None:
    """Table -> column (lower case) -> the type DuckDB's scan reads it as, for every table of the
    source at once (None when DuckDB cannot list them all: each table is then described alone)."""
    try:
        rows = con.execute(
            "SELECT table_name, column_name, data_type FROM duckdb_columns() WHERE database_name = ?",
            [source_alias],
        ).fetchall()
    except duck.ERRORS:
        return None
    found: dict[str, dict[str, str]] = {}
    for table, column, type_ in rows:
        found.setdefault(str(table), {})[str(column).lower()] = str(type_)
    return found


def _declared_columns(con: duckdb.DuckDBPyConnection, source_alias: str) -> dict[str, dict[str, str]]:
    """Table (as sqlite_master names it) -> column (lower case) -> its declared type."""
    query = (
        "SELECT m.name AS table_name, p.name AS column_name, p.type AS declared "
        "FROM sqlite_master AS m, pragma_table_info(m.name) AS p WHERE m.type = 'table'"
    )
    found: dict[str, dict[str, str]] = {}
    for table, column, type_ in _sqlite_rows(con, source_alias, query):
        found.setdefault(str(table), {})[str(column).lower()] = str(type_ or "")
    return found


def holds(con: duckdb.DuckDBPyConnection, source_alias: str, candidate: Candidate) -> bool:
    """Run the candidate's proof: True when every value reads exactly through the scan."""
    if candidate.proof is None:
        return True
    rows = _sqlite_rows(con, source_alias, candidate.proof)
    return bool(rows) and str(rows[0][0]) == "1"


def prove(
    con: duckdb.DuckDBPyConnection, source_alias: str, tables: Iterable[TargetTable]
) -> dict[str, tuple[str, ...]]:
    """Source table name -> scan types, for the tables whose values the scan reads exactly now.
    The proofs run PROOF_BATCH at a time in one SQLite query (one round trip, not one per table)."""
    found = candidates(con, source_alias, tables)
    proven = {source: c.types for source, c in found.items() if c.proof is None}
    pending = [(source, c) for source, c in found.items() if c.proof is not None]
    for start in range(0, len(pending), PROOF_BATCH):
        batch = pending[start : start + PROOF_BATCH]
        for (source, candidate), held in zip(
            batch, prove_candidates(con, source_alias, [c for _, c in batch]), strict=True
        ):
            if held:
                proven[source] = candidate.types
    return {source: proven[source] for source in found if source in proven}


def prove_candidates(con: duckdb.DuckDBPyConnection, source_alias: str, batch: list[Candidate]) -> list[bool]:
    """Whether each candidate's proof holds, all of them in one SQLite query (a result column each)."""
    if not batch:
        return []
    query = "SELECT " + ", ".join(
        f"({c.proof}) AS p{i}" if c.proof is not None else f"1 AS p{i}" for i, c in enumerate(batch)
    )
    rows = _sqlite_rows(con, source_alias, query)
    values = rows[0] if rows else (None,) * len(batch)
    return [str(value) == "1" for value in values]


PROOF_BATCH = 50  # proofs per SQLite query (a result column each)


def _sqlite_rows(con: duckdb.DuckDBPyConnection, source_alias: str, query: str) -> list[tuple]:
    """Rows of a query SQLite itself runs on the attached file."""
    return con.execute(
        f"SELECT * FROM sqlite_query({quote_literal(source_alias)}, {quote_literal(query)})"
    ).fetchall()
