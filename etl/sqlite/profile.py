"""What a SQLite database actually holds, column by column: storage classes, datetime conventions,
integer ranges, values that would not fit the intended type, and foreign keys whose parent row is
missing.

Two scans per table, computed inside SQLite: cheap aggregates over typeof() for every column, then
detailed metrics only for the columns whose storage classes and intended type call for them. A
metric that matters only when every value counts (all UUIDs, all base64) is first looked for a
value that rules it out, which usually the first row is. So profiling costs about as much as
reading the table twice.

Which values count as datetimes and times mirrors what `etl.convert` accepts (see
`datetime_text_code`), so a column the profile calls clean converts cleanly at apply.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import sqlite3
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from etl.duck import quote_ident
from etl.errors import SourceError
from etl.model import Catalog, ForeignKey, Table
from etl.pgtypes import PgType, default_pg_type, sqlite_affinity
from etl.sqlite.catalog import corrupt_source_error, open_sqlite, per_core_ranges, rowid_bounds

# Integers of this magnitude are epoch milliseconds / microseconds (see convert._datetime_us).
_MS, _US = 100_000_000_000, 100_000_000_000_000
# Julian days of the years 1..9999 (see convert._datetime_us and convert._julian_or_seconds).
_JULIAN_LOW, _JULIAN_HIGH = 1721059.5, 5373484.5
_MAX_DOUBLE = "1.7976931348623157e308"


@dataclass(frozen=True)
class ColumnProfile:
    name: str
    nulls: int = 0
    integers: int = 0
    reals: int = 0
    texts: int = 0
    blobs: int = 0
    int_min: int | None = None
    int_max: int | None = None
    # how datetime-like values are written
    iso_texts: int = 0  # ISO 8601 text etl converts (YYYY-MM-DD[ HH:MM[:SS[.ffffff]]][offset])
    iso_offsets: int = 0  # ... with Z or +hh:mm
    epoch_seconds: int = 0
    epoch_milliseconds: int = 0
    epoch_microseconds: int = 0
    julian_reals: int = 0
    julian_integers: int = 0  # integers in the julian-day range (SQLite keeps 2451545.0 as INTEGER)
    sub_milliseconds: int = 0  # datetimes with digits below the millisecond (timestamp(3) would round)
    day_fractions: int = 0  # datetimes with a time of day (date would drop it)
    time_texts: int = 0  # text that is a time of day HH:MM[:SS[.ffffff]]
    # booleans and numbers written as text
    boolean_texts: int = 0  # 'true'/'false'/'t'/'f'
    integer_texts: int = 0  # text that is a decimal integer
    number_texts: int = 0  # text that is a decimal number
    json_texts: int = 0  # text that is JSON
    # values that do not fit the intended type's limits
    infinities: int = 0  # reals that are +-Infinity
    numeric_misfits: int = 0  # numbers with more digits than numeric(p,s) holds
    too_long: int = 0  # text longer than varchar(n) / char(n)
    # what a text or bytea column holds; of such a column, counted only where every value may be
    # one (0 where a value rules that out: _Detail.refuted_by)
    uuid_values: int = 0  # text or 16-byte blobs that are UUIDs
    lower_uuids: int = 0  # text that is a UUID as PostgreSQL prints one (lower case, hyphens)
    utf8_blobs: int = 0  # blobs that are UTF-8 text without NUL
    base64_values: int = 0  # text or blobs that are canonical base64 (converter: base64)
    uuid_blobs: int = 0  # 16-byte blobs with an RFC 9562 version (1-8) and variant: UUIDs
    samples: tuple[str, ...] = ()  # a few values that do not fit the intended type, quoted

    @property
    def non_null(self) -> int:
        return self.integers + self.reals + self.texts + self.blobs


@dataclass(frozen=True)
class OrphanReport:
    foreign_key: ForeignKey
    rows: int  # child rows whose parent is missing
    samples: tuple[str, ...] = ()  # their key values, quoted as SQLite does


@dataclass(frozen=True)
class TableProfile:
    name: str
    rows: int
    columns: tuple[ColumnProfile, ...]
    orphans: tuple[OrphanReport, ...] = field(default=())
    # How many rowid slices its storage classes were counted in at once (1: one scan). How it was
    # read, not what it holds: two profiles of the same data are equal however they were read.
    slices: int = field(default=1, compare=False)

    def column(self, name: str) -> ColumnProfile | None:
        return next((c for c in self.columns if c.name == name), None)


# --- datetimes and times written as text ------------------------------------------------------

# What convert.ISO_DATETIME_RE accepts *and* DuckDB's TIMESTAMPTZ cast reads: an offset only after seconds,
# no space before it, an upper-case Z (DuckDB refuses the others, so they are not datetimes here).
_ISO_TEXT = re.compile(
    rb"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})"
    rb"(?:[T ]([0-9]{1,2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,6}))?)?)?"
    rb"(Z|[+-][0-9]{2}(?::?[0-9]{2})?)?"
)
_TIME_TEXT = re.compile(rb"([0-9]{1,2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,6}))?)?")
# convert._NUM_RE and convert._INT_RE.
_NUMBER_TEXT = re.compile(rb"[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?")
_INTEGER_TEXT = re.compile(rb"[+-]?[0-9]+")
_FIRST, _LAST = dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59, 999999)

# Bits of datetime_text_code, time_text_code and number_text_code.
IS_VALUE, HAS_OFFSET, SUB_MS, TIME_OF_DAY = 1, 2, 4, 8
IS_INTEGER, IS_FINITE = 2, 4


def datetime_text_code(value: bytes | None) -> int:
    """0 when `value` (UTF-8 bytes) is not a datetime etl converts; else IS_VALUE, plus HAS_OFFSET,
    SUB_MS (digits below the millisecond) and TIME_OF_DAY (not midnight in UTC)."""
    if value is None:
        return 0
    m = _ISO_TEXT.fullmatch(value)
    if m is None:
        return 0
    year, month, day, hour, minute, second, fraction, offset = m.groups()
    if offset is not None and second is None:
        return 0
    digits = (fraction or b"").ljust(6, b"0")
    try:
        local = dt.datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), int(digits)
        )
    except ValueError:
        return 0
    shift = dt.timedelta(0)
    if offset and offset != b"Z":
        hours, minutes = int(offset[1:3]), int(offset[-2:]) if len(offset) > 3 else 0
        if hours > 23 or minutes > 59:
            return 0
        shift = dt.timedelta(hours=hours, minutes=minutes) * (1 if offset[:1] == b"+" else -1)
    try:
        utc = local - shift
    except OverflowError:
        return 0
    if not _FIRST <= utc <= _LAST:
        return 0
    code = IS_VALUE
    if offset:
        code |= HAS_OFFSET
    if int(digits[3:]):
        code |= SUB_MS
    if utc.time() != dt.time(0):
        code |= TIME_OF_DAY
    return code


def time_text_code(value: bytes | None) -> int:
    """0 when `value` is not a time of day etl converts; else IS_VALUE, plus SUB_MS."""
    if value is None:
        return 0
    m = _TIME_TEXT.fullmatch(value)
    if m is None:
        return 0
    hour, minute, second, fraction = m.groups()
    if int(hour) > 23 or int(minute) > 59 or int(second or 0) > 59:
        return 0
    return IS_VALUE | (SUB_MS if int((fraction or b"").ljust(6, b"0")[3:]) else 0)


def number_text_code(value: bytes | None) -> int:
    """0 when `value` is not a number etl converts; else IS_VALUE, plus IS_INTEGER and IS_FINITE
    (a double precision can hold it: not beyond 1.8e308)."""
    if value is None or _NUMBER_TEXT.fullmatch(value) is None:
        return 0
    code = IS_VALUE | (IS_INTEGER if _INTEGER_TEXT.fullmatch(value) else 0)
    return code | (IS_FINITE if abs(float(value)) < float("inf") else 0)


IS_UTF8, IS_BASE64 = 1, 2


def blob_text_code(value: bytes | None) -> int:
    """What the bytes `value` are as text: IS_UTF8 (UTF-8 without NUL, which PostgreSQL text
    holds) and IS_BASE64 (canonical base64 of at least one byte, which converter: base64 reads:
    the spelling base64 encodes the decoded bytes back to)."""
    if not value:
        return 0
    code = 0
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return 0
    if "\0" not in text:
        code |= IS_UTF8
    try:
        if base64.b64encode(base64.b64decode(value, validate=True)) == value:
            code |= IS_BASE64
    except binascii.Error:
        pass
    return code


def _register(con: sqlite3.Connection) -> None:
    con.create_function("etl_datetime_code", 1, datetime_text_code, deterministic=True)
    con.create_function("etl_time_code", 1, time_text_code, deterministic=True)
    con.create_function("etl_number_code", 1, number_text_code, deterministic=True)
    con.create_function("etl_numeric_misfit", 3, numeric_misfit, deterministic=True)
    con.create_function("etl_blob_text_code", 1, blob_text_code, deterministic=True)


# --- the detailed metrics -----------------------------------------------------------------------

_DATETIME_KINDS = ("timestamp", "timestamptz", "date")
_NUMBER_KINDS = ("integer", "float", "numeric", "boolean")
_HEX = "[0-9a-fA-F]"
_UUID_GLOBS = (
    "-".join(_HEX * n for n in (8, 4, 4, 4, 12)),
    _HEX * 32,
)


@dataclass(frozen=True)
class _Detail:
    """The SQL of one metric over `{c}` (the column) and `{k}` (its per-row text code, if any).

    `refuted_by`: for a metric that only matters when it counts every value (the column is then
    all UUIDs, all base64, ...), SQL over `{c}` true for a value that rules that out. The metric
    is counted only where no value is (found by a query that stops at the first), and is 0
    otherwise: a column of random keys costs one row's look, not a call per row."""

    sql: str
    code: str | None = None  # the function computing {k}: etl_datetime_code / etl_time_code
    refuted_by: str | None = None


_TEXT_UUID = f"typeof({{c}}) = 'text' AND ({{c}} GLOB '{_UUID_GLOBS[0]}' OR {{c}} GLOB '{_UUID_GLOBS[1]}')"

_BASE = {
    "epoch_seconds": _Detail(f"typeof({{c}}) = 'integer' AND abs({{c}}) < {_MS}"),
    "epoch_milliseconds": _Detail(
        f"typeof({{c}}) = 'integer' AND abs({{c}}) >= {_MS} AND abs({{c}}) < {_US}"
    ),
    "epoch_microseconds": _Detail(f"typeof({{c}}) = 'integer' AND abs({{c}}) >= {_US}"),
    "julian_reals": _Detail(f"typeof({{c}}) = 'real' AND {{c}} BETWEEN {_JULIAN_LOW} AND {_JULIAN_HIGH}"),
    "julian_integers": _Detail("typeof({c}) = 'integer' AND {c} BETWEEN 1721060 AND 5373484"),
    "boolean_texts": _Detail("typeof({c}) = 'text' AND lower({c}) IN ('true', 'false', 't', 'f')"),
    # PostgreSQL's jsonb cannot hold \u0000 (see convert.duck_expressions).
    "json_texts": _Detail("typeof({c}) = 'text' AND json_valid({c}) AND instr({c}, '\\u0000') = 0"),
    "infinities": _Detail(f"typeof({{c}}) = 'real' AND abs({{c}}) > {_MAX_DOUBLE}"),
    "uuid_values": _Detail(f"({_TEXT_UUID}) OR (typeof({{c}}) = 'blob' AND length({{c}}) = 16)"),
}
_LOWER_UUID_GLOB = "-".join("[0-9a-f]" * n for n in (8, 4, 4, 4, 12))
# The version (1-8) and variant bits, compared as bytes: the 7th byte's high nibble and the 9th's.
# Random 16-byte secrets (a push subscription's auth key) pass both bit tests 1 time in 8.
_UUID_BLOB = (
    "typeof({c}) = 'blob' AND length({c}) = 16 "
    "AND substr({c}, 7, 1) BETWEEN X'10' AND X'8F' AND substr({c}, 9, 1) BETWEEN X'80' AND X'BF'"
)
# What UTF-8 without NUL needs of its bytes, SQLite's to check: no NUL, and a first byte that is
# ASCII or starts a sequence (not a continuation byte, C0, C1 or F5-FF). Random bytes fail it at
# once; the Python function decides the rest.
_MAY_BE_UTF8 = (
    "typeof({c}) = 'blob' AND instr({c}, X'00') = 0 "
    "AND NOT substr({c}, 1, 1) BETWEEN X'80' AND X'C1' AND substr({c}, 1, 1) < X'F5'"
)
# Only text of base64's letters and a length divisible by 4 can be canonical base64: SQLite
# rules out the rest before the Python function runs.
_MAY_BE_BASE64 = (
    "typeof({c}) IN ('text', 'blob') AND length(CAST({c} AS BLOB)) % 4 = 0 "
    "AND NOT CAST({c} AS TEXT) GLOB '*[^A-Za-z0-9+/=]*'"
)
# How a text or bytea column is named all UUIDs, all text or all base64 (init.infer): each
# metric matters only when it counts every value, so one value that is not rules it out.
_TEXT_DETAILS = {
    "uuid_values": _Detail(_TEXT_UUID, refuted_by=f"{{c}} IS NOT NULL AND NOT ({_TEXT_UUID})"),
    "lower_uuids": _Detail(
        f"typeof({{c}}) = 'text' AND {{c}} GLOB '{_LOWER_UUID_GLOB}'",
        refuted_by=f"{{c}} IS NOT NULL AND NOT ({_TEXT_UUID})",
    ),
    "utf8_blobs": _Detail(
        f"{_MAY_BE_UTF8} AND (etl_blob_text_code({{c}}) & {IS_UTF8}) <> 0",
        refuted_by=f"typeof({{c}}) IN ('integer', 'real') OR (typeof({{c}}) = 'blob' AND NOT ({_MAY_BE_UTF8}))",
    ),
    "uuid_blobs": _Detail(_UUID_BLOB, refuted_by=f"{{c}} IS NOT NULL AND NOT ({_UUID_BLOB})"),
    "base64_values": _Detail(
        f"{_MAY_BE_BASE64} AND (etl_blob_text_code(CAST({{c}} AS BLOB)) & {IS_BASE64}) <> 0",
        refuted_by=f"{{c}} IS NOT NULL AND NOT ({_MAY_BE_BASE64})",
    ),
}
_DT_CODE = "etl_datetime_code"
_NUMBER_CODE = "etl_number_code"
_ISO = {
    "iso_texts": _Detail(f"({{k}} & {IS_VALUE}) <> 0", _DT_CODE),
    "iso_offsets": _Detail(f"({{k}} & {HAS_OFFSET}) <> 0", _DT_CODE),
}


def _sub_milliseconds() -> _Detail:
    """Datetimes timestamp(3) would round: ISO text with finer digits, epoch microseconds that are
    not whole milliseconds, reals read as epoch seconds (julian days are read to the millisecond)."""
    return _Detail(
        f"({{k}} & {SUB_MS}) <> 0 "
        f"OR (typeof({{c}}) = 'integer' AND abs({{c}}) >= {_US} AND {{c}} % 1000 <> 0) "
        f"OR (typeof({{c}}) = 'real' AND NOT {{c}} BETWEEN {_JULIAN_LOW} AND {_JULIAN_HIGH} "
        "AND abs({c}) < 1e15 AND CAST(round({c} * 1000000) AS INTEGER) % 1000 <> 0)",
        _DT_CODE,
    )


def _day_fractions() -> _Detail:
    """Datetimes that are not midnight (UTC): a date column would drop the time of day."""
    day_us = 86_400_000_000
    return _Detail(
        f"({{k}} & {TIME_OF_DAY}) <> 0 "
        f"OR (typeof({{c}}) = 'integer' AND ("
        f"(abs({{c}}) < {_MS} AND {{c}} % 86400 <> 0) "
        f"OR (abs({{c}}) >= {_MS} AND abs({{c}}) < {_US} AND {{c}} % 86400000 <> 0) "
        f"OR (abs({{c}}) >= {_US} AND {{c}} % {day_us} <> 0))) "
        f"OR (typeof({{c}}) = 'real' AND {{c}} BETWEEN {_JULIAN_LOW} AND {_JULIAN_HIGH} "
        "AND CAST(round(({c} - 2440587.5) * 86400000) AS INTEGER) % 86400000 <> 0) "
        f"OR (typeof({{c}}) = 'real' AND NOT {{c}} BETWEEN {_JULIAN_LOW} AND {_JULIAN_HIGH} "
        f"AND (abs({{c}}) >= 1e15 OR CAST(round({{c}} * 1000000) AS INTEGER) % {day_us} <> 0))",
        _DT_CODE,
    )


def numeric_misfit(value: int | float | bytes | None, precision: int, scale: int) -> int:
    """1 when numeric(precision, scale) cannot take `value` exactly, as convert reads it: a real
    by its shortest round-trip digits (DuckDB's and Python's repr), text and integers by their own
    digits. Leading and trailing zeros do not count (see convert._decimal_digits)."""
    if value is None:
        return 0
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return 1
        text = repr(value)
    elif isinstance(value, bytes):  # text, as its UTF-8 bytes
        if _NUMBER_TEXT.fullmatch(value) is None:
            return 0  # not a number at all: reported as such, not as a misfit
        text = value.decode("ascii")
    else:
        text = str(value)
    number = Decimal(text)
    if not number:
        return 0
    _sign, digits, exponent = number.normalize().as_tuple()
    assert isinstance(exponent, int)
    places = max(0, -exponent)
    whole = max(0, len(digits) + exponent)
    return int(places > scale or whole > precision - scale)


def _numeric_misfits(precision: int, scale: int) -> _Detail:
    """Numbers numeric(p,s) would round or refuse: too many digits before or after the point."""
    whole = precision - scale
    integer = f"{{c}} >= {10**whole} OR {{c}} <= -{10**whole}" if whole <= 18 else "0"
    return _Detail(
        f"CASE typeof({{c}}) WHEN 'integer' THEN {integer} "
        f"WHEN 'real' THEN etl_numeric_misfit({{c}}, {precision}, {scale}) "
        f"WHEN 'text' THEN etl_numeric_misfit(CAST({{c}} AS BLOB), {precision}, {scale}) END"
    )


def _details_for(declared: str, storage: dict[str, int], expected: PgType) -> dict[str, _Detail]:
    """The detailed metrics worth a second look at a column, given its storage classes and the type
    it is meant to become: datetime conventions for datetime columns, numbers written as text for
    numeric ones, JSON, UUIDs and lengths where the type asks for them."""
    kind = expected.kind
    has = {k: storage[k] > 0 for k in ("integers", "reals", "texts", "blobs")}
    chosen: dict[str, _Detail] = {}
    if kind in _DATETIME_KINDS and (has["integers"] or has["reals"] or has["texts"]):
        # Each counts values of one storage class: where the column holds none, it is 0 unread.
        if has["integers"]:
            for name in ("epoch_seconds", "epoch_milliseconds", "epoch_microseconds", "julian_integers"):
                chosen[name] = _BASE[name]
        if has["reals"]:
            chosen["julian_reals"] = _BASE["julian_reals"]
        if has["texts"]:
            chosen.update(_ISO)
        precision = expected.modifiers[0] if expected.modifiers else 6
        if kind == "date":
            chosen["day_fractions"] = _day_fractions()
        elif precision < 6:
            chosen["sub_milliseconds"] = _sub_milliseconds()
    elif kind == "time" and has["texts"]:
        chosen["time_texts"] = _Detail(f"({{k}} & {IS_VALUE}) <> 0", "etl_time_code")
        if expected.modifiers and expected.modifiers[0] < 6:
            chosen["sub_milliseconds"] = _Detail(f"({{k}} & {SUB_MS}) <> 0", "etl_time_code")
    elif (kind in _NUMBER_KINDS or sqlite_affinity(declared) in ("INTEGER", "REAL", "NUMERIC")) and has[
        "texts"
    ]:
        chosen["boolean_texts"] = _BASE["boolean_texts"]
        chosen["integer_texts"] = _Detail(f"({{k}} & {IS_INTEGER}) <> 0", _NUMBER_CODE)
        # A double precision column takes only the finite ones.
        finite = IS_FINITE if kind == "float" else IS_VALUE
        chosen["number_texts"] = _Detail(f"({{k}} & {finite}) <> 0", _NUMBER_CODE)
    if kind in ("integer", "numeric") and has["reals"]:
        chosen["infinities"] = _BASE["infinities"]
    if kind == "numeric" and expected.modifiers and (has["integers"] or has["reals"] or has["texts"]):
        precision = expected.modifiers[0]
        scale = expected.modifiers[1] if len(expected.modifiers) > 1 else 0
        chosen["numeric_misfits"] = _numeric_misfits(precision, scale)
    if kind == "json" and has["texts"]:
        chosen["json_texts"] = _BASE["json_texts"]
    if kind == "uuid" and (has["texts"] or has["blobs"]):
        chosen["uuid_values"] = _BASE["uuid_values"]
    # Text that is all UUIDs may become uuid (etl init proposes it); blobs that are all text or
    # base64 are named, with what a spec can do about them.
    if kind == "text" and not expected.modifiers and has["texts"] and not has["blobs"]:
        chosen["uuid_values"] = _TEXT_DETAILS["uuid_values"]
        chosen["lower_uuids"] = _TEXT_DETAILS["lower_uuids"]
    if kind == "bytea" and (has["texts"] or has["blobs"]):
        chosen["uuid_blobs"] = _TEXT_DETAILS["uuid_blobs"]
        chosen["utf8_blobs"] = _TEXT_DETAILS["utf8_blobs"]
        chosen["base64_values"] = _TEXT_DETAILS["base64_values"]
    if expected.name in ("character varying", "character") and expected.modifiers and has["texts"]:
        n = expected.modifiers[0]
        chosen["too_long"] = _Detail(f"typeof({{c}}) IN ('text', 'integer') AND length({{c}}) > {n}")
    return chosen


def _misfit_condition(p: ColumnProfile, expected: PgType) -> str | None:
    """SQL picking the values of a column that do not fit its intended type, for a few samples in
    the messages; None when they all fit (as far as the profile can tell)."""
    kind = expected.kind

    def not_code(function: str, bit: int) -> str:
        return f"typeof({{c}}) = 'text' AND ({function}(CAST({{c}} AS BLOB)) & {bit}) = 0"

    if kind in _DATETIME_KINDS and p.texts > p.iso_texts:
        return not_code(_DT_CODE, IS_VALUE)
    if kind == "time" and p.texts > p.time_texts:
        return not_code("etl_time_code", IS_VALUE)
    if kind == "integer" and p.texts > p.integer_texts:
        return not_code(_NUMBER_CODE, IS_INTEGER)
    if kind in ("float", "numeric") and p.texts > p.number_texts:
        return not_code(_NUMBER_CODE, IS_FINITE if kind == "float" else IS_VALUE)
    if kind == "boolean" and p.texts > p.boolean_texts:
        return "typeof({c}) = 'text' AND lower({c}) NOT IN ('true', 'false', 't', 'f')"
    if kind == "json" and p.texts > p.json_texts:
        return "typeof({c}) = 'text' AND NOT json_valid({c})"
    if p.blobs and kind not in ("bytea", "uuid"):
        return "typeof({c}) = 'blob'"
    if kind == "numeric" and p.numeric_misfits:
        precision = expected.modifiers[0]
        scale = expected.modifiers[1] if len(expected.modifiers) > 1 else 0
        return _numeric_misfits(precision, scale).sql
    if p.too_long:
        return f"typeof({{c}}) IN ('text', 'integer') AND length({{c}}) > {expected.modifiers[0]}"
    return None


def _scan(con: sqlite3.Connection, source: str, items: list[str]) -> tuple:
    return con.execute(f"SELECT {', '.join(items) or '1'} FROM {source}").fetchone()


# A table of more rowids than this has its storage classes counted in one rowid slice per core,
# on connections of its own at once (sqlite3 lets go of the GIL while SQLite reads): every metric
# is a count, a sum, a smallest or a largest value, which add up, or compare, across slices.
SLICE_FROM_ROWS = 200_000


@dataclass(frozen=True)
class _Source:
    """Where a table's scans read: the whole table through `con`, or rowid slices of it."""

    con: sqlite3.Connection
    whole: str
    path: Path | None = None
    slices: tuple[str, ...] = ()

    def scan(self, items: list[tuple[str, str]], wrap: Callable[[str], str] = lambda source: source) -> tuple:
        """One row of the aggregates `items` ((kind, SQL): kind "sum", "min" or "max") over the
        table, `wrap` around its source (e.g. a subquery computing per-row values)."""
        sql = [expr for _, expr in items]
        if not self.slices or self.path is None:
            return _scan(self.con, wrap(self.whole), sql)
        with ThreadPoolExecutor(max_workers=len(self.slices)) as pool:
            rows = list(pool.map(lambda part: self._scan_slice(wrap(part), sql), self.slices))
        return tuple(_combine(kind, [row[i] for row in rows]) for i, (kind, _) in enumerate(items))

    def _scan_slice(self, source: str, items: list[str]) -> tuple:
        assert self.path is not None
        with open_sqlite(self.path) as con:
            con.text_factory = self.con.text_factory
            _register(con)
            return _scan(con, source, items)


def _combine(kind: str, values: list) -> Any:
    present = [v for v in values if v is not None]
    if kind == "sum":
        return sum(present)
    if not present:
        return None
    return min(present) if kind == "min" else max(present)


def _rowid_slices(con: sqlite3.Connection, table: str, rowid: str, slice_from_rows: int) -> tuple[str, ...]:
    return tuple(
        f"(SELECT * FROM {table} WHERE {rowid} BETWEEN {low} AND {high})"
        for low, high in per_core_ranges(rowid_bounds(con, table, rowid), slice_from_rows)
    )


def profile_table(
    con: sqlite3.Connection,
    table: Table,
    sample_rows: int | None = None,
    expected: Mapping[str, PgType] | None = None,
    path: Path | None = None,
    *,
    slice_from_rows: int = SLICE_FROM_ROWS,
) -> TableProfile:
    """Two scans: storage classes and integer ranges of every column (cheap aggregates), then the
    detailed metrics only for the columns whose storage classes call for them.

    `expected` maps a column to the type it is meant to become (default: from its declared type);
    that decides which details are measured (e.g. whether numbers fit numeric(10,2)). `path`: the
    file `con` reads, for the connections of a large table's slices, of more than `slice_from_rows`
    rowids."""
    _register(con)
    expected = expected or {}
    source = quote_ident(table.name)
    # The rowid under a name no column of the table hides.
    taken = {c.name.lower() for c in table.columns}
    rowid = next((n for n in ("rowid", "_rowid_", "oid") if n not in taken), None)
    slices: tuple[str, ...] = ()
    if rowid and not table.without_rowid:
        if sample_rows:
            # A sample spread over the table, not its first rows (old rows are often the cleanest).
            count = con.execute(f"SELECT count(*) FROM {source}").fetchone()[0]
            step = max(1, count // sample_rows)
            if step > 1:
                source = f"(SELECT * FROM {source} WHERE {rowid} % {step} = 0)"
        elif path is not None:
            slices = _rowid_slices(con, source, rowid, slice_from_rows)
    scanned = _Source(con, source, path, slices)
    items = [("sum", "count(*)")]
    for column in table.columns:
        c = quote_ident(column.name)
        items += [
            ("sum", f"count({c})"),
            ("sum", f"coalesce(sum(typeof({c}) = 'integer'), 0)"),
            ("sum", f"coalesce(sum(typeof({c}) = 'real'), 0)"),
            ("sum", f"coalesce(sum(typeof({c}) = 'text'), 0)"),
            ("min", f"min(CASE WHEN typeof({c}) = 'integer' THEN {c} END)"),
            ("max", f"max(CASE WHEN typeof({c}) = 'integer' THEN {c} END)"),
        ]
    first = scanned.scan(items)
    rows = first[0]
    storage: dict[str, dict[str, int]] = {}
    ranges: dict[str, tuple[int | None, int | None]] = {}
    for i, column in enumerate(table.columns):
        non_null, integers, reals, texts, low, high = first[1 + 6 * i : 7 + 6 * i]
        storage[column.name] = {
            "nulls": rows - non_null,
            "integers": integers,
            "reals": reals,
            "texts": texts,
            "blobs": non_null - integers - reals - texts,
        }
        ranges[column.name] = (low, high)
    types = {c.name: expected.get(c.name) or default_pg_type(c.declared_type) for c in table.columns}
    wanted = {c.name: _details_for(c.declared_type, storage[c.name], types[c.name]) for c in table.columns}
    wanted = _unrefuted(con, source, wanted)
    # The details in one scan of the whole table: their text functions allocate strings, and
    # SQLite's allocator takes a lock of the whole process, so slices at once are slower than
    # one after the other.
    counts = _detail_scan(replace(scanned, slices=()), table, wanted)
    profiles = []
    for column in table.columns:
        low, high = ranges[column.name]
        measured: dict[str, Any] = {**storage[column.name], **counts[column.name]}
        profile = ColumnProfile(column.name, int_min=low, int_max=high, **measured)
        condition = _misfit_condition(profile, types[column.name])
        if condition:
            profile = _with_samples(con, source, column.name, condition, profile)
        profiles.append(profile)
    return TableProfile(table.name, rows, tuple(profiles), slices=max(1, len(slices)))


# The most common datetime text, 'YYYY-MM-DD HH:MM:SS' (SQLite's CURRENT_TIMESTAMP) and
# 'YYYY-MM-DDTHH:MM:SSZ', is recognised by SQLite itself (datetime(c, '+0 days') gives the same text back only
# for a valid date and time), which is several times faster than the Python function.
_DATE_TIME_GLOB = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9][T ][0-9][0-9]:[0-9][0-9]:[0-9][0-9]"


def _code_sql(code: str, c: str) -> str:
    """SQL of a column's per-row text code (NULL unless the value is text)."""
    slow = f"{code}(CAST({c} AS BLOB))"
    if code != _DT_CODE:
        return f"CASE WHEN typeof({c}) = 'text' THEN {slow} END"
    plain = f"{c} GLOB '{_DATE_TIME_GLOB}'"
    zulu = f"{c} GLOB '{_DATE_TIME_GLOB}Z'"
    # `+`: the value without the column's affinity; a DATETIME column's (NUMERIC) would make the
    # literal the number 1, which every text sorts after, and count the year 0 as a datetime.
    same = f"datetime({c}, '+0 days') = replace(rtrim({c}, 'Z'), 'T', ' ') AND +{c} >= '0001'"
    time_of_day = f"CASE WHEN substr({c}, 12, 8) <> '00:00:00' THEN {TIME_OF_DAY} ELSE 0 END"
    return (
        f"CASE WHEN typeof({c}) <> 'text' THEN NULL "
        f"WHEN {plain} AND {same} THEN {IS_VALUE} | {time_of_day} "
        f"WHEN {zulu} AND {same} THEN {IS_VALUE | HAS_OFFSET} | {time_of_day} "
        f"ELSE {slow} END"
    )


def _unrefuted(
    con: sqlite3.Connection, source: str, wanted: dict[str, dict[str, _Detail]]
) -> dict[str, dict[str, _Detail]]:
    """`wanted` without the metrics some value refutes (_Detail.refuted_by): one query, each
    refutation an EXISTS that stops at the first value it finds."""
    refutations = sorted(
        {(name, d.refuted_by) for name, metrics in wanted.items() for d in metrics.values() if d.refuted_by}
    )
    if not refutations:
        return wanted
    probes = ", ".join(
        f"EXISTS (SELECT 1 FROM {source} WHERE {sql.format(c=quote_ident(name))})"
        for name, sql in refutations
    )
    found = con.execute(f"SELECT {probes}").fetchone()
    refuted = {refutation for refutation, hit in zip(refutations, found, strict=True) if hit}
    return {
        name: {m: d for m, d in metrics.items() if (name, d.refuted_by) not in refuted}
        for name, metrics in wanted.items()
    }


def _detail_scan(
    source: _Source, table: Table, wanted: dict[str, dict[str, _Detail]]
) -> dict[str, dict[str, int]]:
    """One scan for every detailed metric. A column's text code (a Python function, the costly
    part) is computed once per row, in a subquery that LIMIT keeps SQLite from flattening."""
    counts: dict[str, dict[str, int]] = {name: {} for name in wanted}
    items, keys = [], []
    inner: dict[str, str] = {}  # alias -> per-row expression
    taken = {c.name.lower() for c in table.columns}
    for index, (name, metrics) in enumerate(wanted.items()):
        if not metrics:
            continue
        c = quote_ident(name)
        inner[name] = c
        k = "NULL"
        code = next((m.code for m in metrics.values() if m.code), None)
        if code:
            alias = f"etl_code_{index}"
            while alias.lower() in taken:
                alias += "_"
            inner[alias] = _code_sql(code, c)
            k = quote_ident(alias)
        for metric, detail in metrics.items():
            items.append(("sum", f"coalesce(sum(CASE WHEN {detail.sql.format(c=c, k=k)} THEN 1 END), 0)"))
            keys.append((name, metric))
    if not items:
        return counts
    columns = ", ".join(f"{expr} AS {quote_ident(alias)}" for alias, expr in inner.items())
    row = source.scan(items, lambda part: f"(SELECT {columns} FROM {part} LIMIT -1)")
    for (name, metric), value in zip(keys, row, strict=True):
        counts[name][metric] = value
    return counts


def _with_samples(
    con: sqlite3.Connection, source: str, column: str, condition: str, profile: ColumnProfile, limit: int = 3
) -> ColumnProfile:
    c = quote_ident(column)
    where = condition.format(c=c, k="NULL")
    shown = f"CASE WHEN length(quote({c})) > 40 THEN substr(quote({c}), 1, 37) || '...' ELSE quote({c}) END"
    samples = tuple(
        r[0] for r in con.execute(f"SELECT DISTINCT {shown} FROM {source} WHERE {where} LIMIT {limit}")
    )
    return ColumnProfile(**{**profile.__dict__, "samples": samples})


def find_orphans(
    con: sqlite3.Connection, table: Table, fk: ForeignKey, limit: int = 3
) -> OrphanReport | None:
    """Child rows whose foreign key points at no parent row (SQLite does not enforce foreign keys
    unless the app switched them on)."""
    child, parent = quote_ident(table.name), quote_ident(fk.ref_table)
    joined = " AND ".join(
        f"p.{quote_ident(pc)} = c.{quote_ident(cc)}"
        for cc, pc in zip(fk.columns, fk.ref_columns, strict=True)
    )
    present = " AND ".join(f"c.{quote_ident(cc)} IS NOT NULL" for cc in fk.columns)
    where = f"{present} AND NOT EXISTS (SELECT 1 FROM {parent} AS p WHERE {joined})"
    count = con.execute(f"SELECT count(*) FROM {child} AS c WHERE {where}").fetchone()[0]
    if not count:
        return None
    keys = table.primary_key or (("rowid",) if not table.without_rowid else fk.columns)
    label = " || ', ' || ".join(
        f"{_sql_text(k + '=')} || quote(c.{quote_ident(k) if k != 'rowid' else 'rowid'})" for k in keys
    )
    samples = tuple(
        r[0] for r in con.execute(f"SELECT {label} FROM {child} AS c WHERE {where} LIMIT {limit}")
    )
    return OrphanReport(fk, count, samples)


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def profile_sqlite(
    path: str | Path,
    catalog: Catalog,
    sample_rows: int | None = None,
    expected: Mapping[tuple[str, str], PgType] | None = None,
    *,
    slice_from_rows: int = SLICE_FROM_ROWS,
) -> dict[str, TableProfile]:
    """Profiles of every table; `expected` maps (table, column) to the type it is meant to become
    when that is not the default for its declared type (e.g. from a Prisma schema)."""
    expected = expected or {}
    profiles = {}
    by_table: dict[str, dict[str, PgType]] = {}
    for (name, column), pg_type in expected.items():
        by_table.setdefault(name, {})[column] = pg_type
    with open_sqlite(path) as con:
        con.text_factory = lambda b: b.decode("utf-8", errors="replace")
        for table in catalog.tables:
            wanted = by_table.get(table.name, {})
            try:
                profile = profile_table(
                    con, table, sample_rows, wanted, Path(path), slice_from_rows=slice_from_rows
                )
                orphans = []
                for fk in table.foreign_keys:
                    parent = catalog.table(fk.ref_table)
                    if (
                        parent is None
                        or not fk.ref_columns
                        or len(fk.ref_columns) != len(fk.columns)
                        or any(parent.column(c) is None for c in fk.ref_columns)
                    ):
                        continue
                    report = find_orphans(con, table, fk)
                    if report:
                        orphans.append(report)
            except sqlite3.Error as exc:
                corrupt = corrupt_source_error(path, str(exc))
                if corrupt is not None:
                    raise corrupt from exc
                raise SourceError(f"cannot profile table '{table.name}' of '{path}': {exc}") from exc
            profiles[table.name] = replace(profile, orphans=tuple(orphans))
    return profiles
