"""Verification: do the target's tables hold exactly the source seen through the spec?

For each table, both sides are reduced in DuckDB to a row count and an order-independent
checksum (the sum of one hash per row) over the same normalized values: the source through the
very conversion expressions apply uses, the target read back from PostgreSQL. jsonb is compared
in PostgreSQL's own canonical text (keys sorted, duplicates dropped, numbers as numeric prints
them); PostgreSQL-converted types (inet, interval, arrays, ...) compare by NULL-ness only, since
PostgreSQL itself cast them from the source text. On a difference, keys of differing rows are
sampled by joining per-row hashes.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal

import duckdb
from duckdb.func import FunctionNullHandling
from psycopg import sql

from etl.core.mapping import TargetColumn, TargetTable
from etl.duck import quote_ident, quote_literal
from etl.model import PgTable
from etl.pgtypes import narrows
from etl.run.load import source_rows_query
from etl.run.session import TARGET_ALIAS
from etl.sqlite.convert import loads_as_text

Sums = tuple[int, str]  # a side's count of rows and checksum (a decimal integer)


@dataclass(frozen=True)
class TableCheck:
    table: str
    source_rows: int
    target_rows: int | None  # None: the table does not exist in the target
    source_checksum: str
    target_checksum: str | None
    differing_keys: tuple[str, ...] = ()
    unchecked_columns: tuple[str, ...] = ()  # compared by NULL-ness only

    @property
    def ok(self) -> bool:
        return self.target_rows == self.source_rows and self.target_checksum == self.source_checksum


@dataclass(frozen=True)
class ViewCheck:
    """A view's rows on both sides, as a count and an order-independent checksum of the rows."""

    view: str
    source_rows: int
    target_rows: int | None  # None: the view does not exist in the target
    source_checksum: int
    target_checksum: int | None

    @property
    def ok(self) -> bool:
        return self.target_rows == self.source_rows and self.target_checksum == self.source_checksum


@dataclass(frozen=True)
class Verification:
    tables: tuple[TableCheck, ...] = field(default=())
    views: tuple[ViewCheck, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tables) and all(v.ok for v in self.views)


# --- jsonb as PostgreSQL prints it -------------------------------------------------------------


def _numeric_text(number: Decimal) -> str:
    text = format(number, "f")
    return text[1:] if number == 0 and text.startswith("-") else text  # numeric has no -0


def _jsonb_text(value) -> str:
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (len(k.encode("utf-8")), k.encode("utf-8")))
        return (
            "{"
            + ", ".join(f"{json.dumps(k, ensure_ascii=False)}: {_jsonb_text(value[k])}" for k in keys)
            + "}"
        )
    if isinstance(value, list):
        return "[" + ", ".join(_jsonb_text(v) for v in value) + "]"
    if isinstance(value, Decimal):
        return _numeric_text(value)
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    return json.dumps(value, ensure_ascii=False)


def jsonb_canonical(text: str | None) -> str | None:
    """The text PostgreSQL prints for `text::jsonb`."""
    if text is None:
        return None
    try:
        return _jsonb_text(json.loads(text, parse_float=Decimal, parse_int=Decimal))
    except RecursionError:
        # Nested deeper than Python's recursion allows (PostgreSQL takes thousands of levels):
        # the same text, built without recursion.
        return _deep_jsonb_text(text)


_JSON_WHITESPACE = re.compile(r"[ \t\n\r]*")
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?")
_JSON_LITERALS = {"true": True, "false": False, "null": None}


def _deep_jsonb_text(text: str) -> str:
    """_jsonb_text(json.loads(text)) for JSON of any depth: an explicit stack instead of recursion,
    for parsing and for printing. Raises ValueError for text that is not JSON."""
    containers: list[tuple[dict | list, str | None]] = []  # open containers, each with its key pending
    root: object = None
    pos = 0

    def skip(at: int) -> int:
        match = _JSON_WHITESPACE.match(text, at)
        return match.end() if match else at

    def add(value: object) -> None:
        nonlocal root
        if not containers:
            root = value
            return
        container, key = containers[-1]
        if isinstance(container, list):
            container.append(value)
        else:
            assert key is not None
            container[key] = value  # a later duplicate replaces the earlier, as jsonb keeps it

    def closes(at: int) -> bool:
        return at < len(text) and text[at] in "]}"

    expect_value = True
    while True:
        pos = skip(pos)
        if expect_value:
            char = text[pos : pos + 1]
            if char in ("[", "{"):
                container: dict | list = [] if char == "[" else {}
                add(container)
                containers.append((container, None))
                pos = skip(pos + 1)
                if closes(pos):
                    expect_value = False
                    continue
                if char == "{":
                    expect_value = False
                    pos = _object_key(text, pos, containers, skip)
                    expect_value = True
                continue
            if char == '"':
                value, pos = json.decoder.scanstring(text, pos + 1)  # type: ignore[attr-defined]
                add(value)
            elif (number := _JSON_NUMBER.match(text, pos)) is not None:
                add(Decimal(number.group()))
                pos = number.end()
            else:
                literal = next((w for w in _JSON_LITERALS if text.startswith(w, pos)), None)
                if literal is None:
                    raise ValueError(f"not JSON at character {pos}")
                add(_JSON_LITERALS[literal])
                pos += len(literal)
            expect_value = False
            continue
        if not containers:
            if skip(pos) != len(text):
                raise ValueError(f"not JSON at character {pos}")
            break
        char = text[pos : pos + 1]
        container = containers[-1][0]
        if char == ("]" if isinstance(container, list) else "}"):
            containers.pop()
            pos += 1
        elif char == ",":
            pos = skip(pos + 1)
            if isinstance(container, dict):
                pos = _object_key(text, pos, containers, skip)
            expect_value = True
        else:
            raise ValueError(f"not JSON at character {pos}")
    return _print_jsonb(root)


def _object_key(text: str, pos: int, containers: list, skip) -> int:
    """Read `"key" :` at `pos` for the innermost open object; the position after the colon."""
    if text[pos : pos + 1] != '"':
        raise ValueError(f"not JSON at character {pos}")
    key, pos = json.decoder.scanstring(text, pos + 1)  # type: ignore[attr-defined]
    pos = skip(pos)
    if text[pos : pos + 1] != ":":
        raise ValueError(f"not JSON at character {pos}")
    containers[-1] = (containers[-1][0], key)
    return pos + 1


def _print_jsonb(root: object) -> str:
    """_jsonb_text(root) with an explicit stack: items are values to print or text (str) as is."""
    parts: list[str] = []
    stack: list[object] = [root]
    while stack:
        item = stack.pop()
        if isinstance(item, _Text):
            parts.append(item.text)
        elif isinstance(item, dict):
            keys = sorted(item, key=lambda k: (len(k.encode("utf-8")), k.encode("utf-8")))
            todo: list[object] = [_Text("{")]
            for i, key in enumerate(keys):
                todo += [_Text(", ")] if i else []
                todo += [_Text(f"{json.dumps(key, ensure_ascii=False)}: "), item[key]]
            stack += reversed([*todo, _Text("}")])
        elif isinstance(item, list):
            todo = [_Text("[")]
            for i, value in enumerate(item):
                todo += [_Text(", "), value] if i else [value]
            stack += reversed([*todo, _Text("]")])
        else:
            parts.append(_jsonb_text(item))  # a scalar: no recursion
    return "".join(parts)


@dataclass(frozen=True)
class _Text:
    text: str


def numeric_canonical(text: str | None) -> str | None:
    """A decimal's digits without insignificant zeros, however it was written."""
    if text is None:
        return None
    if text.lower() in ("infinity", "-infinity", "nan"):
        return text.lower()
    number = Decimal(text)
    digits = _numeric_text(number)
    return digits.rstrip("0").rstrip(".") if "." in digits else digits


_FUNCTIONS = {"etl_jsonb": jsonb_canonical, "etl_numeric": numeric_canonical}


def _functions_needed(tables: Iterable[TargetTable]) -> set[str]:
    """The functions compared_value calls on the source side of these tables' columns."""
    compared = [compared_value(c, "x", "source", exact_text=True) or "" for t in tables for c in t.columns]
    return {name for name in _FUNCTIONS if any(f"{name}(" in value for value in compared)}


def register_functions(con: duckdb.DuckDBPyConnection, tables: Iterable[TargetTable]) -> None:
    """The Python functions compared_value uses for the jsonb and numeric columns of `tables`
    (registering one is not free, so none is registered when no column needs it)."""
    for name in sorted(_functions_needed(tables)):
        try:
            con.create_function(
                name,
                _FUNCTIONS[name],
                ["VARCHAR"],
                "VARCHAR",
                null_handling=FunctionNullHandling.SPECIAL,
                side_effects=False,
            )
        except duckdb.NotImplementedException as exc:
            # Registered already (by this connection or another cursor of its database): asking
            # DuckDB first would list every function it has, which costs more than this refusal.
            if "already created" not in str(exc):
                raise


# --- the two sides ------------------------------------------------------------------------------


def digested(table: TargetTable, column: TargetColumn) -> bool:
    """Whether both sides compare the column by its MD5: in a table of large rows (read in row
    ranges) PostgreSQL sends a bytea or text value's digest, not the value, so the target side is
    never held whole in memory (DuckDB reads 2,048 rows at a time: 100 BLOBs of 16 MB are 1.6 GB).
    Key columns stay values: they name rows and match them."""
    return (
        bool(table.row_ranges)
        and column.pg_type.name in ("bytea", "text", "character varying")
        and column.name not in table.primary_key
    )


def compared_value(
    column: TargetColumn, expr: str, side: str, exact_text: bool = False, digest: bool = False
) -> str | None:
    """The value both sides are hashed by; None where only NULL-ness is compared. `exact_text`:
    types PostgreSQL converts itself (inet, interval, arrays, ...) compare as text, the source's
    against PostgreSQL's output (a row diff must see a changed value; a spelling PostgreSQL
    would print differently then shows as a change, never as a silent match). `digest`: the
    target side reads the column's MD5 (see digested), the source side computes it."""
    pg = column.pg_type
    if digest:
        return f"md5({expr})" if side == "source" else expr
    if pg.kind == "json":
        return f"etl_jsonb({expr})" if pg.name == "jsonb" and side == "source" else expr
    if pg.kind == "numeric" and loads_as_text(pg):
        return f"etl_numeric({expr})"
    if pg.kind == "enum":
        return f"CAST({expr} AS VARCHAR)"
    if pg.name == "character" and pg.modifiers:
        return f"rtrim(CAST({expr} AS VARCHAR))"  # char(n) pads; PostgreSQL ignores the padding
    if loads_as_text(pg):
        return f"CAST({expr} AS VARCHAR)" if exact_text else None
    if pg.kind == "integer":
        return f"CAST({expr} AS BIGINT)"
    if pg.kind == "float":
        # DuckDB's hash (and =) take -0.0 for 0.0: the sign is compared beside the value.
        return f"{{'v': {expr}, 'negative': signbit({expr})}}"
    return expr


def target_select(
    schema: str,
    table: TargetTable,
    current: PgTable | None = None,
    extra: tuple[str, ...] = (),
    where: sql.Composable | None = None,
    relation: sql.Composable | None = None,
) -> str:
    """PostgreSQL text of the target side: columns DuckDB reads exactly as they are, the others as
    text (DuckDB reads numeric(65,30) as DOUBLE). `current`: the table as the target holds it now,
    when a plan will still change it: a column it lacks reads as NULL, a column of another type
    is cast to the type it will have before the rows move (a widening; a narrowing happens after). `extra`: PostgreSQL expressions appended (e.g. ctid); `where`: a condition on the table's
    own columns; `relation`: rows shaped as the table's, read instead of the table (a staging
    table's rows cast to the target's types)."""
    items: list[sql.Composable] = []
    for column in table.columns:
        ident = sql.Identifier(column.name)
        as_text = column.pg_type.kind in ("json", "enum") or loads_as_text(column.pg_type)
        found = current.column(column.name) if current is not None else None
        if current is not None and found is None:
            # What ADD COLUMN gives the rows the table holds: the default, else NULL.
            value: sql.Composable = sql.SQL("({})::{}").format(
                column.default if column.default is not None else sql.SQL("NULL"),
                sql.SQL("text" if as_text else column.pg_type.sql()),
            )
        elif (
            found is not None
            and column.pg_type.kind != "enum"
            and found.type != column.pg_type.sql()
            and not narrows(found.type, column.pg_type)  # a narrowing waits for the rows
        ):
            value = sql.SQL("{}::{}").format(ident, sql.SQL(column.pg_type.sql()))
        else:
            value = ident
        if as_text:
            value = sql.SQL("{}::text").format(value)
        if digested(table, column):
            value = sql.SQL("md5({})").format(value)
        items.append(sql.SQL("{} AS {}").format(value, ident))
    items.extend(sql.SQL(e) for e in extra)
    read = relation if relation is not None else sql.Identifier(schema, table.name)
    query = sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(items), read)
    if where is not None:
        query = sql.SQL("{} WHERE {}").format(query, where)
    return query.as_string(None)


def row_hash(table: TargetTable, side: str, prefix: str) -> tuple[str, list[str]]:
    parts, unchecked = [], []
    for i, column in enumerate(table.columns):
        expr = f"{prefix}{i}" if side == "source" else quote_ident(column.name)
        compared = compared_value(column, expr, side, digest=digested(table, column))
        if compared is None:
            unchecked.append(column.name)
            compared = f"({expr} IS NULL)"
        parts.append(compared)
    return f"hash({', '.join(parts)})" if parts else "0", unchecked


def _source_relation(schema: str, table: TargetTable) -> str:
    return f"({source_rows_query(schema, table)})"


def target_relation(
    schema: str,
    table: TargetTable,
    current: PgTable | None = None,
    extra: tuple[str, ...] = (),
    where: sql.Composable | None = None,
    relation: sql.Composable | None = None,
) -> str:
    """DuckDB relation of the target's rows, read by PostgreSQL as target_select describes."""
    query = target_select(schema, table, current, extra, where, relation)
    return f"postgres_query({quote_literal(TARGET_ALIAS)}, {quote_literal(query)})"


def source_sums_queries(schema: str, table: TargetTable) -> list[str]:
    """DuckDB SQL: count and checksum of the source, range by range for tables of large values
    (sums add up)."""
    return [
        source_sums_query(table, f"({source_rows_query(schema, table, row_range)})")
        for row_range in table.row_ranges or (None,)
    ]


def target_sums_query(
    schema: str,
    table: TargetTable,
    where: sql.Composable | None = None,
    relation: sql.Composable | None = None,
) -> str:
    """DuckDB SQL: count and checksum of the target's rows (those for which `where` holds; of
    `relation` instead of the table, see target_select), as source_sums_queries sums the source's."""
    target_hash, _ = row_hash(table, "target", "")
    return (
        f"SELECT count(*), CAST(coalesce(sum({target_hash}::HUGEINT), 0) AS VARCHAR) "
        f"FROM {target_relation(schema, table, where=where, relation=relation)}"
    )


def ranged_target_sums_queries(
    schema: str, table: TargetTable, rowids: tuple[tuple[int, int], ...]
) -> list[str]:
    """DuckDB SQL: count and checksum of the target's rows whose rowid key lies in `rowids`: the
    rows a sync by ranges compared."""
    return [target_sums_query(schema, table, relation=rows_in_ranges(schema, table, rowids))]


# Rowid ranges per query on the source's side (load._in_ranges): each query costs DuckDB a fixed
# time to bind its conversions, so fewer are better; SQLite keeps the rowids a query reads in a
# list of its own, which this bounds.
RANGES_PER_QUERY = 10_000


def merged_ranges(rowids: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
    """The inclusive ranges `rowids` in order, those that overlap or touch made one: the same
    rowids, each in one range only (a join against them yields every row once)."""
    merged: list[tuple[int, int]] = []
    for low, high in sorted(rowids):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return tuple(merged)


def range_batches(rowids: tuple[tuple[int, int], ...], readers: int = 1) -> list[tuple[tuple[int, int], ...]]:
    """`rowids` (merged) cut into the batches each query of the source reads: at most
    RANGES_PER_QUERY each, and at least `readers` batches where there are as many ranges (so that
    that many cursors can read them at once)."""
    merged = merged_ranges(rowids)
    size = max(1, min(RANGES_PER_QUERY, -(-len(merged) // max(1, readers))))
    return [merged[start : start + size] for start in range(0, len(merged), size)]


def rows_in_ranges(schema: str, table: TargetTable, rowids: tuple[tuple[int, int], ...]) -> sql.Composable:
    """PostgreSQL relation for target_select's `relation`: the rows of the table whose rowid key
    lies in one of the inclusive ranges `rowids`, each row once (the ranges merged). The ranges
    are two bigint arrays, unnested and joined to the key: one seek of its index per range, and a
    statement that grows by two numbers per range, not by a condition PostgreSQL plans each of."""
    return sql.SQL("(SELECT etl_row.* {}) AS etl_rows").format(_joined_to_ranges(schema, table, rowids))


def xmins_in_ranges(schema: str, table: TargetTable, rowids: tuple[tuple[int, int], ...]) -> sql.Composable:
    """PostgreSQL query: (x: a transaction id as text, n: rows carrying it) of the rows of the table
    whose rowid key lies in one of the inclusive ranges `rowids`."""
    return sql.SQL("SELECT etl_row.xmin::text AS x, count(*) AS n {} GROUP BY etl_row.xmin").format(
        _joined_to_ranges(schema, table, rowids)
    )


def _joined_to_ranges(schema: str, table: TargetTable, rowids: tuple[tuple[int, int], ...]) -> sql.Composed:
    assert table.rowid_key is not None, "ranges are rowids: the key must be the source's rowid"
    merged = merged_ranges(rowids)
    return sql.SQL(
        "FROM unnest({}::int8[], {}::int8[]) AS etl_range(low, high) "
        "JOIN {} AS etl_row ON etl_row.{} BETWEEN etl_range.low AND etl_range.high"
    ).format(
        sql.Literal([low for low, _ in merged]),
        sql.Literal([high for _, high in merged]),
        sql.Identifier(schema, table.name),
        sql.Identifier(table.rowid_key),
    )


def _source_sums(con: duckdb.DuckDBPyConnection, schema: str, table: TargetTable) -> tuple[int, str]:
    count, total = 0, 0
    for query in source_sums_queries(schema, table):
        row = con.execute(query).fetchone()
        assert row is not None  # an aggregate always yields one row
        count, total = count + row[0], total + int(row[1])
    return count, str(total)


def source_sums_query(table: TargetTable, relation: str) -> str:
    """DuckDB SQL: row count and checksum of `relation`, rows as source_rows_query yields them."""
    source_hash, _ = row_hash(table, "source", "c")
    return f"SELECT count(*), coalesce(sum({source_hash}::HUGEINT), 0) FROM {relation}"


def check_table(
    con: duckdb.DuckDBPyConnection,
    schema: str,
    table: TargetTable,
    exists: bool = True,
    sample: int = 5,
    source: Sums | Callable[[], Sums] | None = None,
    set_aside: tuple[int, int] = (0, 0),
    rowids: tuple[tuple[int, int], ...] | None = None,
) -> TableCheck:
    """`source`: the source's count and checksum when the load already computed them (or a
    function returning them, called once the target is read: they may still be being computed);
    `set_aside`: count and checksum of source rows a check rejected after they loaded; `rowids`:
    compare only the rows in these rowid ranges (a sync by ranges; `source` then holds the
    source's sums over them)."""
    source_hash, unchecked = row_hash(table, "source", "c")
    target_hash, _ = row_hash(table, "target", "")
    assert rowids is None or source is not None  # the sync by ranges summed the source's side
    # Summed here: before the target, as `etl plan --sql` lists them. Given: taken after it.
    summed = _source_sums(con, schema, table) if source is None else source
    target_rows: int | None = None
    target_sum = 0
    if exists:
        queries = (
            [target_sums_query(schema, table)]
            if rowids is None
            else ranged_target_sums_queries(schema, table, rowids)
        )
        target_rows = 0
        for query in queries:
            target = con.execute(query).fetchone()
            assert target is not None  # an aggregate always yields one row
            target_rows, target_sum = target_rows + int(target[0]), target_sum + int(target[1])
    source_rows, source_sum = summed() if callable(summed) else summed
    if set_aside != (0, 0):
        source_rows, source_sum = source_rows - set_aside[0], str(int(source_sum) - set_aside[1])
    if target_rows is None:
        return TableCheck(table.name, source_rows, None, source_sum, None, (), tuple(unchecked))
    check = TableCheck(
        table.name, source_rows, target_rows, source_sum, str(target_sum), (), tuple(unchecked)
    )
    if check.ok:
        return check
    return replace(
        check, differing_keys=_differing_keys(con, schema, table, source_hash, target_hash, sample, rowids)
    )


def _differing_keys(
    con,
    schema: str,
    table: TargetTable,
    source_hash: str,
    target_hash: str,
    sample: int,
    rowids: tuple[tuple[int, int], ...] | None = None,
) -> tuple[str, ...]:
    keys = [c for c in table.primary_key]
    if not keys:
        return ()
    source, target = _source_relation(schema, table), target_relation(schema, table)
    if rowids is not None and table.rowid_key is not None:  # the rows a sync by ranges compared
        source = f"({source_rows_query(schema, table, rowids=rowids)})"
        target = target_relation(schema, table, relation=rows_in_ranges(schema, table, rowids))
    positions = {c.name: i for i, c in enumerate(table.columns)}
    source_keys = ", ".join(f"CAST(c{positions[k]} AS VARCHAR) AS {quote_ident('k_' + k)}" for k in keys)
    target_keys = ", ".join(f"CAST({quote_ident(k)} AS VARCHAR) AS {quote_ident('k_' + k)}" for k in keys)
    join = " AND ".join(f"s.{quote_ident('k_' + k)} = t.{quote_ident('k_' + k)}" for k in keys)
    label = " || ', ' || ".join(
        f"{quote_literal(k + '=')} || coalesce(s.{quote_ident('k_' + k)}, t.{quote_ident('k_' + k)})"
        for k in keys
    )
    query = (
        f"SELECT {label}, CASE WHEN t.h IS NULL THEN 'missing in the target' WHEN s.h IS NULL THEN 'not in the source' "
        f"ELSE 'different values' END "
        f"FROM (SELECT {source_keys}, {source_hash} AS h FROM {source}) s "
        f"FULL OUTER JOIN (SELECT {target_keys}, {target_hash} AS h FROM {target}) t ON {join} "
        f"WHERE s.h IS DISTINCT FROM t.h ORDER BY 1 LIMIT {int(sample)}"
    )
    return tuple(f"{key}: {why}" for key, why in con.execute(query).fetchall())


def verify_tables(
    con: duckdb.DuckDBPyConnection,
    schema: str,
    tables: tuple[TargetTable, ...],
    existing: frozenset[str] | None = None,
    sources: Mapping[str, Sums | Callable[[], Sums]] | None = None,
    set_aside: dict[str, tuple[int, int]] | None = None,
    ranged: dict[str, tuple[tuple[int, int], ...]] | None = None,
) -> Verification:
    """Check every table; `existing` are the target's table names (None: they all exist);
    `sources` holds count and checksum of tables whose load computed them already (or a function
    returning them, see check_table); `set_aside`
    the count and checksum of rows a check rejected, which the target rightly lacks; `ranged`
    the rowid ranges of tables synced by ranges, whose `sources` sums cover only those."""
    register_functions(con, tables)
    sources, set_aside, ranged = sources or {}, set_aside or {}, ranged or {}
    return Verification(
        tuple(
            check_table(
                con,
                schema,
                t,
                exists=existing is None or t.name in existing,
                source=sources.get(t.name),
                set_aside=set_aside.get(t.name, (0, 0)),
                rowids=ranged.get(t.name),
            )
            for t in tables
        )
    )


# --- views: rows as each database returns them, normalized in Python ---------------------------

# PostgreSQL types whose values DuckDB's postgres scanner would round (numeric as a double) or
# respell (json): read as PostgreSQL's text instead.
_AS_TEXT = frozenset({"numeric", "json", "jsonb"})
_ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?)?")


def _normal(value: object) -> object:
    """One value as both sides can agree on it: numbers by value (SQLite's 1 and PostgreSQL's 1.0,
    true and 1 are equal), bytes as bytes, ISO date and time text and PostgreSQL's dates and
    timestamps as the same UTC instant; other text as it is."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float | Decimal):
        number = Decimal(value) if not isinstance(value, Decimal) else value
        if number.is_finite() and number == number.to_integral_value():
            return int(number)
        return float(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, datetime.datetime | datetime.date):
        moment = value if isinstance(value, datetime.datetime) else datetime.datetime(*value.timetuple()[:3])
        if moment.tzinfo is not None:
            moment = moment.astimezone(datetime.UTC).replace(tzinfo=None)
        return moment
    if isinstance(value, str) and _ISO_DATETIME.fullmatch(value):
        try:
            return _normal(datetime.datetime.fromisoformat(value))
        except ValueError:
            return value
    return value if value is None or isinstance(value, str) else str(value)


def _rows_sum(rows: Iterable[tuple], decoded: tuple[bool, ...] = ()) -> tuple[int, int]:
    """Count and order-independent checksum (the sum of one 64-bit hash per row) of `rows`; the
    columns marked in `decoded` hold PostgreSQL's text of a number or of JSON."""
    count = total = 0
    for row in rows:
        values = tuple(
            _from_text(v) if i < len(decoded) and decoded[i] else _normal(v) for i, v in enumerate(row)
        )
        digest = hashlib.blake2b(repr(values).encode("utf-8", "surrogatepass"), digest_size=8).digest()
        total = (total + int.from_bytes(digest, "big")) % (1 << 64)
        count += 1
    return count, total


def _from_text(value: object) -> object:
    if not isinstance(value, str):
        return _normal(value)
    try:
        return _normal(Decimal(value))
    except ArithmeticError:
        return value  # json text: compared as PostgreSQL prints it


def view_columns_query(schema: str, name: str) -> str:
    """DuckDB SQL: the view's columns and their types, as PostgreSQL has them."""
    qualified = sql.Identifier(schema, name).as_string(None)
    return f"SELECT * FROM postgres_query({quote_literal(TARGET_ALIAS)}, {quote_literal(_view_columns_sql(qualified))})"


def _target_view_rows(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> tuple[int, int]:
    columns = con.execute(view_columns_query(schema, name)).fetchall()
    select = sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(
            sql.SQL("{}::text" if t in _AS_TEXT else "{}").format(sql.Identifier(c)) for c, t in columns
        ),
        sql.Identifier(schema, name),
    )
    cursor = con.execute(
        f"SELECT * FROM postgres_query({quote_literal(TARGET_ALIAS)}, {quote_literal(select.as_string(None))})"
    )
    decoded = tuple(t in _AS_TEXT for _, t in columns)
    return _rows_sum(_chain(cursor), decoded)


def _chain(cursor) -> Iterable[tuple]:
    while batch := cursor.fetchmany(10_000):
        yield from batch


def _view_columns_sql(qualified: str) -> str:
    return (
        sql.SQL(
            "SELECT a.attname::text, t.typname::text FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
            "WHERE a.attrelid = {}::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"
        )
        .format(sql.Literal(qualified))
        .as_string(None)
    )


def check_views(
    con: duckdb.DuckDBPyConnection,
    source: sqlite3.Connection,
    schema: str,
    views: Iterable[str],
    existing: frozenset[str] | None = None,
) -> tuple[ViewCheck, ...]:
    """Each view's rows in SQLite against the same view's in PostgreSQL (through `con`, inside the
    apply's transaction); `existing` are the target's relations (None: they all exist)."""
    checks = []
    for name in views:
        count, checksum = _rows_sum(source.execute(f"SELECT * FROM {quote_ident(name)}"))
        if existing is not None and name not in existing:
            checks.append(ViewCheck(name, count, None, checksum, None))
            continue
        target_count, target_checksum = _target_view_rows(con, schema, name)
        checks.append(ViewCheck(name, count, target_count, checksum, target_checksum))
    return tuple(checks)


def describe_failures(verification: Verification) -> str:
    parts = []
    for view in verification.views:
        if view.ok:
            continue
        if view.target_rows is None:
            parts.append(f'view "{view.view}" is missing in the target')
        elif view.target_rows != view.source_rows:
            parts.append(
                f'view "{view.view}": {view.source_rows:,} rows in SQLite, {view.target_rows:,} in PostgreSQL '
                "(correct its query under views: in the spec, or leave it out)"
            )
        else:
            parts.append(
                f'view "{view.view}": the same number of rows but different values in SQLite and PostgreSQL '
                "(correct its query under views: in the spec, or leave it out)"
            )
    for check in verification.tables:
        if check.ok:
            continue
        if check.target_rows is None:
            parts.append(f'table "{check.table}" is missing in the target')
            continue
        if check.source_rows != check.target_rows:
            what = f"{check.source_rows:,} rows in the source, {check.target_rows:,} in the target"
        else:
            what = "the same number of rows but different values"
        keys = f" (e.g. {'; '.join(check.differing_keys)})" if check.differing_keys else ""
        parts.append(f'table "{check.table}": {what}{keys}')
    return "; ".join(parts)
