"""How each SQLite value becomes a PostgreSQL value, exactly, or is named as a problem.

Values travel in two halves. SQLite renders each one as text together with its storage class
(`typeof`), so nothing depends on DuckDB's reading of declared types (which turns a Prisma
epoch-millisecond DATETIME into the year 57569 and a NUMERIC(10,2) into a DOUBLE). DuckDB then
parses that text into the target type. Every parse is a TRY_ that yields NULL on failure, and a
separate problem expression turns "a value went in but nothing came out" (or came out changed)
into a message that names the column and the value; the load query raises it with the row's key.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from etl.duck import quote_literal
from etl.pgtypes import PgType
from etl.settings import Converter

# PostgreSQL types DuckDB's postgres extension writes without loss. Anything else (numeric wider
# than DuckDB's DECIMAL(38), inet, interval, arrays, ...) is loaded as text and converted by
# PostgreSQL itself with ALTER COLUMN ... TYPE ... USING, inside the same transaction.
_NATIVE_KINDS = {
    "integer",
    "float",
    "boolean",
    "text",
    "bytea",
    "json",
    "date",
    "time",
    "timestamp",
    "timestamptz",
    "uuid",
}


def loads_as_text(pg: PgType) -> bool:
    if pg.kind == "numeric":
        return not pg.modifiers or pg.modifiers[0] > 38
    return pg.kind not in _NATIVE_KINDS


@dataclass(frozen=True, slots=True)
class ValueConversion:
    """One target column: where its value comes from in SQLite and what it becomes."""

    source_sql: str  # a SQLite expression: the quoted source column, or the spec's expression
    target: str  # target column name
    pg_type: PgType
    converter: Converter = Converter.AUTO
    nullable: bool = True
    # For `auto` datetimes, decided from the integers the column holds (see integer_unit): the
    # unit of its integers, and whether they span several magnitudes (then the smaller ones are
    # ambiguous: 86400000 is 1970-01-02 in milliseconds and 1972-09-27 in seconds).
    integer_unit: str | None = None
    mixed_units: bool = False
    column: str | None = None  # the source column, when the value is one (not an expression)
    # Whether a REAL -0.0 can reach the target through this column: its values keep their sign in
    # SQLite (no REAL, NUMERIC, INTEGER or TEXT affinity turned -0.0 into 0 or '0.0' as it was
    # stored) and its type keeps the sign (float, text). SQLite's SQL cannot tell -0.0 from 0.0
    # (printf, quote, hex and CAST all write '0.0', dividing by zero yields NULL, and its math
    # functions are not compiled in), so these columns are measured through Python's sqlite3 ...
    signed_zeros: bool = False
    # ... and the rowid ranges whose zero reals are -0.0 are kept here (measured, see
    # validate.measure), for sqlite_select to render those zeros with their sign.
    negative_zeros: tuple[tuple[int, int], ...] = ()


_UNIT_FLOORS = (("us", 100_000_000_000_000), ("ms", 100_000_000_000), ("s", 0))
_UNIT_NAMES = {"us": "microseconds", "ms": "milliseconds", "s": "seconds"}


def _unit_of(magnitude: int) -> str:
    return next(unit for unit, floor in _UNIT_FLOORS if magnitude >= floor)


def integer_unit(smallest_abs: int | None, largest_abs: int | None) -> tuple[str | None, bool]:
    """The unit for a column's integers and whether its integers span several units. Seconds
    reach 1e11 only in the year 5138, so any integer that large makes the column milliseconds
    (or microseconds from 1e14), and smaller integers beside them cannot be read with certainty."""
    if largest_abs is None or smallest_abs is None:
        return None, False
    unit = _unit_of(largest_abs)
    return unit, _unit_of(smallest_abs) != unit


# --- the SQLite half -------------------------------------------------------------------------

_TWO_TO_50 = "1125899906842624.0"


def _scaled_real(expr: str, times: int) -> str:
    # Dividing by a power of two is exact; SQLite's printf is exact only below ~1e100.
    return f"printf('%!.17g', {expr}{(' / ' + _TWO_TO_50) * times})"


def affinity(declared: str) -> str:
    """SQLite's type affinity of a declared column type (https://www.sqlite.org/datatype3.html 3.1)."""
    d = declared.upper()
    if "INT" in d:
        return "INTEGER"
    if "CHAR" in d or "CLOB" in d or "TEXT" in d:
        return "TEXT"
    if "BLOB" in d or not d.strip():
        return "BLOB"
    if "REAL" in d or "FLOA" in d or "DOUB" in d:
        return "REAL"
    return "NUMERIC"


def keeps_zero_sign(declared: str | None, pg: PgType) -> bool:
    """Whether a -0.0 can reach a column of type `pg` from a source column declared `declared`
    (None: a spec expression) with its sign. SQLite stores -0.0 as the integer 0 under REAL,
    NUMERIC and INTEGER affinity and as the text '0.0' under TEXT affinity; only BLOB affinity
    (no declared type) and a STRICT table's ANY keep it. Of the target types only float and text
    keep a sign (numeric has no -0; an integer or a datetime is the same either way)."""
    if pg.kind not in ("float", "text"):
        return False
    return declared is None or affinity(declared) == "BLOB" or declared.strip().upper() == "ANY"


def sqlite_render(expr: str, negative_zero: str | None = None) -> str:
    """SQLite SQL that renders any value of `expr` as text that loses nothing. `negative_zero`: a
    SQLite condition that holds for the rows whose zero real is -0.0, which SQLite itself writes
    as '0.0' (see ValueConversion.negative_zeros)."""
    e = f"({expr})"
    signed = f"WHEN {e} = 0 AND {negative_zero} THEN '-0.0' " if negative_zero else ""
    real = (
        f"CASE {signed}WHEN abs({e}) >= 1e200 THEN 'p700:' || {_scaled_real(e, 14)} "
        f"WHEN abs({e}) >= 1e100 THEN 'p400:' || {_scaled_real(e, 8)} "
        f"ELSE printf('%!.17g', {e}) END"
    )
    # A blob travels as its raw bytes in a VARCHAR (the scanner does not check UTF-8 and keeps NUL
    # bytes); DuckDB takes them back with encode(). Only byte-level functions ever touch them.
    return f"CASE typeof({e}) WHEN 'real' THEN {real} ELSE {e} END"


# --- the DuckDB half -------------------------------------------------------------------------


def _real(v: str) -> str:
    """DuckDB DOUBLE from sqlite_render's text of a REAL."""
    return (
        f"CASE WHEN starts_with({v}, 'p700:') THEN TRY_CAST(substr({v}, 6) AS DOUBLE) * pow(2::DOUBLE, 700) "
        f"WHEN starts_with({v}, 'p400:') THEN TRY_CAST(substr({v}, 6) AS DOUBLE) * pow(2::DOUBLE, 400) "
        f"ELSE TRY_CAST({v} AS DOUBLE) END"
    )


_INT_RE = "'[+-]?[0-9]+'"
_NUM_RE = "'[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?'"
# A DuckDB string literal: the texts the converter reads as datetimes. Public because init's
# profile must call a text a datetime only if this pattern matches it (tests/test_init.py).
ISO_DATETIME_RE = (
    "'[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([T ][0-9]{1,2}:[0-9]{2}(:[0-9]{2}([.][0-9]{1,6})?)?)?"
    " ?(Z|z|[+-][0-9]{2}(:?[0-9]{2})?)?'"
)


def invalid_utf8(v: str) -> str:
    """True when the text `v` is not valid UTF-8. The SQLite scanner passes such bytes through
    unchecked: PostgreSQL would refuse them without naming the row, and DuckDB's lower()/upper()
    fail on them with an internal error, so raw text never goes through those."""
    return f"TRY(decode(encode({v}))) IS NULL"


# DuckDB's json_valid also accepts NaN, Infinity and trailing commas, which PostgreSQL refuses.
# Outside of strings (blanked first), valid JSON has no letters but those of true/false/null
# and exponents, so "nan" and "inf" can only be those extensions.
_JSON_STRING_RE = '\'"([^"\\\\]|\\\\.)*"\''
_JSON_EXTENSION_RE = "'(?i)nan|inf|,\\s*[\\]}]'"


def _json_extension(value: str) -> str:
    return f"regexp_matches(regexp_replace({value}, {_JSON_STRING_RE}, '\"\"', 'g'), {_JSON_EXTENSION_RE})"


def describe_value(t: str, v: str) -> str:
    """A short, printable rendering of a source value for messages."""
    shown = f"replace(left({v}, 80), chr(0), '\\0')"
    return (
        f"CASE WHEN {t} = 'text' AND {invalid_utf8(v)} THEN 'text X''' || left(hex(encode({v})), 64) "
        f"|| CASE WHEN octet_length(encode({v})) > 32 THEN '''...' ELSE '''' END ELSE "
        f"CASE {t} WHEN 'text' THEN 'text ''' || {shown} || CASE WHEN length({v}) > 80 THEN '''...' ELSE '''' END "
        f"WHEN 'blob' THEN 'blob X''' || left(hex(encode({v})), 64) "
        f"|| CASE WHEN octet_length(encode({v})) > 32 THEN '''...' ELSE '''' END "
        f"WHEN 'real' THEN 'real ' || CAST({_real(v)} AS VARCHAR) "
        f"ELSE {t} || ' ' || {v} END END"
    )


def _decimal_digits(d: str) -> tuple[str, str]:
    """How many digits after and before the decimal point the decimal text `d` needs, exactly.

    `d` is digits with an optional point and exponent ('19.990', '1.5e-40', '0012e3'); leading
    and trailing zeros do not count, so these need (2, 2), (41, 0) and (0, 5). Both are 0 for zero
    and when `d` is NULL. An exponent of more than 12 digits counts as 10**12.
    """
    ip = f"regexp_extract({d}, '^[+-]?([0-9]*)', 1)"
    fp = f"regexp_extract({d}, '[.]([0-9]*)', 1)"
    e = f"regexp_extract({d}, '[eE]([+-]?[0-9]+)$', 1)"
    magnitude = f"ltrim({e}, '+-0')"
    capped = f"CASE WHEN length({magnitude}) > 12 THEN '1000000000000' ELSE {magnitude} END"
    exponent = (
        f"(CASE WHEN starts_with({e}, '-') THEN -1 ELSE 1 END * coalesce(TRY_CAST({capped} AS BIGINT), 0))"
    )
    all_digits = f"({ip} || {fp})"
    significant = f"rtrim({all_digits}, '0')"
    point = f"(length({ip}) + {exponent})"  # how many of all_digits stand before the point
    leading = f"(length({all_digits}) - length(ltrim({all_digits}, '0')))"
    places = f"(CASE WHEN {significant} = '' THEN 0 WHEN length({significant}) > {point} THEN length({significant}) - {point} ELSE 0 END)"
    whole = (
        f"(CASE WHEN {significant} = '' THEN 0 WHEN {point} > {leading} THEN {point} - {leading} ELSE 0 END)"
    )
    return places, whole


@dataclass(frozen=True)
class DuckExpressions:
    value: str  # DuckDB expression of the target value (NULL when it cannot be converted)
    # DuckDB expression: NULL when fine, else why, as a printf template with `%s` where the
    # value's description goes. A query that computes the reason a level below its message
    # describes the value once (with_value), not once per reason: DuckDB parses and binds every copy.
    reason: str
    found: str  # DuckDB expression describing the source value (describe_value)

    @property
    def problem(self) -> str:
        """DuckDB expression: NULL when fine, else why (without the column name)."""
        return with_value(self.reason, self.found)


def with_value(reason: str, found: str) -> str:
    """The message of a reason template, describing the value only where there is a reason."""
    return f"CASE WHEN ({reason}) IS NOT NULL THEN printf({reason}, {found}) END"


# Why a value cannot arrive: text before the value, or (before, after).
Reason = str | tuple[str, str]


def _explained(value: str, cases: Sequence[tuple[str, Reason]], found: str) -> DuckExpressions:
    """The value, and the reason of the first case whose condition holds (each reason's text
    quoted: enum labels and names may hold quotes; a % is escaped for printf)."""
    templates = []
    for cond, reason in cases:
        before, after = (reason, "") if isinstance(reason, str) else reason
        template = before.replace("%", "%%") + "%s" + after.replace("%", "%%")
        templates.append(f"WHEN {cond} THEN {quote_literal(template)}")
    return DuckExpressions(value, f"CASE {' '.join(templates)} END", found)


def _epoch_us(n: str, unit: str) -> str:
    factor = {"s": 1_000_000, "ms": 1_000, "us": 1}[unit]
    return f"(TRY_CAST({n} AS HUGEINT) * {factor})"


def _integer_text(t: str, v: str) -> str:
    return f"({t} = 'integer' OR ({t} = 'text' AND regexp_full_match({v}, {_INT_RE})))"


def _julian_or_seconds(t: str, v: str) -> str:
    """An integer that `auto` cannot read: in a NUMERIC-affinity column (DATETIME) SQLite stores a
    julian day at noon (2451545.0) as an INTEGER, which then reads as epoch seconds in 1970."""
    return f"({_integer_text(t, v)} AND TRY_CAST({v} AS HUGEINT) BETWEEN 1721060 AND 5373484)"


def _iso_for_duckdb(v: str) -> str:
    """ISO 8601 text in the spelling DuckDB's cast reads: `z` as `Z`, no space before the offset,
    seconds before an offset, a time on a date that carries an offset."""
    x = f"regexp_replace({v}, 'z$', 'Z')"
    x = f"regexp_replace({x}, ' ([Z+-])', '\\1')"
    x = f"regexp_replace({x}, '([T ][0-9]{{1,2}}:[0-9]{{2}})([Z+-])', '\\1:00\\2')"
    return f"regexp_replace({x}, '^([0-9]{{4}}-[0-9]{{1,2}}-[0-9]{{1,2}})([Z+-])', '\\1T00:00:00\\2')"


def _julian_us(x: str) -> str:
    """Microseconds since the epoch of the julian day `x` (a DuckDB DOUBLE)."""
    return f"TRY_CAST(round(({x} - 2440587.5) * 86400000) AS HUGEINT) * 1000"


@dataclass(frozen=True)
class _DatetimeReading:
    """How a converter reads a SQLite integer (from its text) and a real (a DuckDB DOUBLE) as
    microseconds since the epoch, in DuckDB SQL: NULL where its convention reads no such value."""

    integer: Callable[[str], str] | None  # None: in the column's unit, from its data (_auto_integer_us)
    real: Callable[[str], str]


_DATETIME_READINGS = {
    # Julian days for years 0..9999 lie in 1721059.5..5373484.5; larger reals are epoch seconds.
    Converter.AUTO: _DatetimeReading(
        None,
        lambda r: (
            f"CASE WHEN {r} BETWEEN 1721059.5 AND 5373484.5 THEN {_julian_us(r)} "
            f"ELSE TRY_CAST(round({r} * 1000000) AS HUGEINT) END"
        ),
    ),
    Converter.ISO: _DatetimeReading(lambda v: "NULL", lambda r: "NULL"),
    Converter.EPOCH_SECONDS: _DatetimeReading(
        lambda v: _epoch_us(v, "s"), lambda r: f"TRY_CAST(round({r} * 1000000) AS HUGEINT)"
    ),
    Converter.EPOCH_MILLISECONDS: _DatetimeReading(
        lambda v: _epoch_us(v, "ms"), lambda r: f"TRY_CAST(round({r} * 1000) AS HUGEINT)"
    ),
    Converter.EPOCH_MICROSECONDS: _DatetimeReading(
        lambda v: _epoch_us(v, "us"), lambda r: f"TRY_CAST(round({r}) AS HUGEINT)"
    ),
    Converter.JULIAN_DAY: _DatetimeReading(lambda v: _julian_us(f"TRY_CAST({v} AS DOUBLE)"), _julian_us),
}


def _auto_integer_us(t: str, v: str, unit: str | None, mixed: bool) -> str:
    """`auto`'s reading of an integer: in the column's unit where its data decided one (only the
    integers of that magnitude when it holds several), else in the unit of the integer's own magnitude."""
    if unit is None:
        n = f"abs(TRY_CAST({v} AS HUGEINT))"
        return (
            f"CASE WHEN {_julian_or_seconds(t, v)} THEN NULL "
            f"WHEN {n} >= 100000000000000 THEN {_epoch_us(v, 'us')} "
            f"WHEN {n} >= 100000000000 THEN {_epoch_us(v, 'ms')} ELSE {_epoch_us(v, 's')} END"
        )
    from_int = _epoch_us(v, unit)
    if unit == "s":
        return f"CASE WHEN {_julian_or_seconds(t, v)} THEN NULL ELSE {from_int} END"
    if mixed:
        floor = dict(_UNIT_FLOORS)[unit]
        return f"CASE WHEN abs(TRY_CAST({v} AS HUGEINT)) >= {floor} THEN {from_int} END"
    return from_int


def _datetime_us(t: str, v: str, converter: Converter, unit: str | None = None, mixed: bool = False) -> str:
    """Microseconds since 1970-01-01 UTC as HUGEINT, or NULL when no convention explains the value."""
    integer_text = _integer_text(t, v)
    reading = _DATETIME_READINGS[converter]
    from_int = _auto_integer_us(t, v, unit, mixed) if reading.integer is None else reading.integer(v)
    from_real = reading.real(_real(v))
    from_text = (
        f"CASE WHEN regexp_full_match({v}, {ISO_DATETIME_RE}) "
        f"THEN epoch_us(TRY_CAST({_iso_for_duckdb(v)} AS TIMESTAMPTZ))::HUGEINT END"
    )
    return (
        f"CASE WHEN {integer_text} THEN {from_int} WHEN {t} = 'real' THEN {from_real} "
        f"WHEN {t} = 'text' THEN {from_text} END"
    )


# 0001-01-01 (included) and 10000-01-01 (excluded) in microseconds since the epoch: a converted
# datetime outside this range means the convention was wrong (epoch seconds read as milliseconds, or the reverse).
_MIN_US = -62135596800000000
_MAX_US = 253402300800000000
_DAY_US = 86_400_000_000


def as_timestamptz(timestamp: str) -> str:
    """DuckDB SQL: the TIMESTAMP `timestamp` read as UTC. CAST(... AS TIMESTAMPTZ) goes through
    ICU's calendar for every value, far more CPU than reading the epoch; only +-infinity,
    which has no epoch, takes it (etl sets the session's time zone to UTC)."""
    return (
        f"CASE WHEN isfinite({timestamp}) THEN make_timestamptz(epoch_us({timestamp})) "
        f"ELSE CAST({timestamp} AS TIMESTAMPTZ) END"
    )


def duck_expressions(
    col: ValueConversion, t: str, v: str, named: str | None = None, *, fast_path: bool = True
) -> DuckExpressions:
    """DuckDB expressions for `col`, given the columns holding its storage class `t` and text `v`.
    `named`: a column the query computes from the value expression before the problem (the
    problem then refers to it by name rather than repeating the expression, which DuckDB would
    parse and bind again: a Prisma table's query grows large).

    Most values take a fast path whose condition proves the plain cast exact (an INTEGER into a
    bigint, a TEXT without NUL into text); CASE evaluates the full checks only for the others.
    `fast_path=False` gives the full checks alone, which the fast path must agree with."""
    full = _full_expressions(col, t, v, named)
    fast = _fast_path(col, t, v) if fast_path else None
    if fast is None:
        return full
    condition, value = fast
    fine = f"{t} = 'null' OR ({condition})"
    return DuckExpressions(
        f"CASE WHEN {condition} THEN {value} ELSE {full.value} END",
        f"CASE WHEN {fine} THEN NULL ELSE {full.reason} END",
        full.found,
    )


def _fast_path(col: ValueConversion, t: str, v: str) -> tuple[str, str] | None:
    """(condition, value): where the condition holds, the value is exactly the source value."""
    pg = col.pg_type
    kind = pg.kind
    if kind == "integer":
        if pg.name == "bigint":
            return f"{t} = 'integer'", f"CAST({v} AS BIGINT)"
        lo, hi = pg.integer_range or (0, 0)
        return f"{t} = 'integer' AND TRY_CAST({v} AS BIGINT) BETWEEN {lo} AND {hi}", f"CAST({v} AS BIGINT)"
    if kind == "float" and pg.name == "double precision":
        return f"{t} = 'real' AND NOT starts_with({v}, 'p')", f"CAST({v} AS DOUBLE)"
    if kind == "boolean":
        return f"{t} = 'integer' AND {v} IN ('0', '1')", f"{v} = '1'"
    if kind == "bytea" and col.converter == Converter.BASE64:
        return None
    if kind == "bytea":
        return f"{t} = 'blob'", f"encode({v})"
    if kind == "text" and not pg.modifiers:
        return f"{t} = 'text' AND NOT contains({v}, chr(0)) AND NOT {invalid_utf8(v)}", v
    if (
        kind in ("timestamp", "timestamptz")
        and col.converter in (Converter.AUTO, Converter.ISO)
        and not col.integer_unit
    ):
        # ISO text to the second, no zone: exactly what the full path's TIMESTAMPTZ cast (in UTC)
        # gives, without its regular expressions. Anything else takes the full path.
        condition = (
            f"{t} = 'text' AND {v} GLOB '{ISO_SECONDS}' AND NOT starts_with({v}, '0000') "
            f"AND TRY_CAST({v} AS TIMESTAMP) IS NOT NULL"
        )
        value = f"TRY_CAST({v} AS TIMESTAMP)"
        return condition, value if kind == "timestamp" else as_timestamptz(value)
    if (
        kind in ("timestamp", "timestamptz")
        and col.integer_unit
        and not col.mixed_units
        or (kind in ("timestamp", "timestamptz") and col.converter in EPOCH_UNITS)
    ):
        unit = col.integer_unit if col.converter == Converter.AUTO else EPOCH_UNITS[col.converter]
        if unit is None:
            return None
        factor = {"s": 1_000_000, "ms": 1_000, "us": 1}[unit]
        precision = pg.modifiers[0] if pg.modifiers else 6
        if factor < 10 ** (6 - precision):
            return None  # sub-precision digits possible: the full path checks them
        lo, hi = -(-_MIN_US // factor), (_MAX_US - 1) // factor
        condition = f"{t} = 'integer' AND TRY_CAST({v} AS BIGINT) BETWEEN {lo} AND {hi}"
        if unit == "s" and col.converter == Converter.AUTO:
            condition += f" AND NOT {_julian_or_seconds(t, v)}"
        value = f"make_timestamp(CAST({v} AS BIGINT) * {factor})"
        return condition, value if kind == "timestamp" else as_timestamptz(value)
    return None


# ISO datetime text to the second, as a GLOB.
ISO_SECONDS = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9][ T][0-9][0-9]:[0-9][0-9]:[0-9][0-9]"
# The converters that read integers as epoch time in one fixed unit.
EPOCH_UNITS = {
    Converter.EPOCH_SECONDS: "s",
    Converter.EPOCH_MILLISECONDS: "ms",
    Converter.EPOCH_MICROSECONDS: "us",
}


@dataclass(frozen=True)
class _Read:
    """The value being converted, as _full_expressions's helpers read it: its storage class `t`
    and text `v`, the DuckDB expression describing it in a message, and the column the query
    computes the converted value in (`named`), if any."""

    t: str
    v: str
    found: str
    not_null: str
    named: str | None

    def ref(self, value: str) -> str:
        """The value in a problem's condition: by name where the query has computed it."""
        return f"({self.named or value})"

    def failed(
        self, value: str, expected: str, extra: list[tuple[str, str]] | None = None
    ) -> DuckExpressions:
        # The specific reasons come first: CASE takes the first that holds, and the generic
        # "expected ..." holds whenever the value is NULL, which most specific reasons make it.
        cases = [(f"{self.not_null} AND {self.ref(value)} IS NULL", f"expected {expected}, found ")]
        return _explained(value, (extra or []) + cases, self.found)


def _full_expressions(col: ValueConversion, t: str, v: str, named: str | None = None) -> DuckExpressions:
    pg = col.pg_type
    kind = pg.kind
    read = _Read(t, v, describe_value(t, v), f"{t} <> 'null'", named)

    if kind == "integer":
        return _integer_expressions(read, pg)
    if kind == "float":
        return _float_expressions(read, pg)
    if kind == "numeric":
        return _numeric_expressions(read, pg)
    if kind == "boolean":
        value = (
            f"CASE WHEN {t} = 'integer' AND {v} IN ('0', '1') THEN {v} = '1' "
            f"WHEN {t} = 'text' AND regexp_full_match({v}, 'true|t|1', 'i') THEN true "
            f"WHEN {t} = 'text' AND regexp_full_match({v}, 'false|f|0', 'i') THEN false END"
        )
        return read.failed(value, "a boolean (0/1, true/false)")

    if kind == "enum":
        labels = ", ".join(quote_literal(label) for label in pg.labels or ())
        value = f"CASE WHEN {t} = 'text' AND {v} IN ({labels}) THEN {v} END"
        return read.failed(value, f"a label of enum {pg.name} ({', '.join(pg.labels or ())})")

    if kind in ("text", "json", "other", "array", "timetz"):
        return _text_expressions(read, pg, blobs=col.converter == Converter.UTF8)
    if kind == "bytea" and col.converter == Converter.BASE64:
        return _base64_expressions(read)
    if kind == "bytea":
        value = f"CASE WHEN {t} IN ('blob', 'text') THEN encode({v}) END"
        return read.failed(value, "a blob or text")

    if kind == "uuid":
        hex_uuid = f"regexp_replace(lower(hex(encode({v}))), '^(.{{8}})(.{{4}})(.{{4}})(.{{4}})(.{{12}})$', '\\1-\\2-\\3-\\4-\\5')"
        value = (
            f"CASE WHEN {t} = 'text' AND regexp_full_match({v}, '[0-9a-fA-F]{{8}}-?[0-9a-fA-F]{{4}}-?[0-9a-fA-F]{{4}}-?[0-9a-fA-F]{{4}}-?[0-9a-fA-F]{{12}}') "
            f"THEN TRY_CAST({v} AS UUID) "
            f"WHEN {t} = 'blob' AND octet_length(encode({v})) = 16 THEN TRY_CAST({hex_uuid} AS UUID) END"
        )
        return read.failed(value, "a UUID")

    if kind == "time":
        return _time_expressions(read, pg)
    if kind in ("timestamp", "timestamptz", "date"):
        return _datetime_expressions(read, col)

    raise AssertionError(f"no conversion for kind {kind}")


def _base64_expressions(read: _Read) -> DuckExpressions:
    """bytea from base64 (converter: base64): text, or a blob of ASCII, decoded. Only canonical
    base64 (padded, no line breaks, unused bits zero) is read: it is the one spelling the bytes
    encode back to, so no two source texts arrive as the same bytes."""
    t, v = read.t, read.v
    decoded = f"TRY(from_base64({v}))"
    value = f"CASE WHEN {t} IN ('text', 'blob') AND to_base64({decoded}) = {v} THEN {decoded} END"
    return read.failed(value, "base64 text (converter: base64)")


def _integer_expressions(read: _Read, pg: PgType) -> DuckExpressions:
    """An integer type: integers, integral reals and integer text within its range."""
    t, v = read.t, read.v
    lo, hi = pg.integer_range or (-(2**63), 2**63 - 1)
    r = _real(v)
    wide = (
        f"CASE WHEN {t} = 'integer' OR ({t} = 'text' AND regexp_full_match({v}, {_INT_RE})) "
        f"THEN TRY_CAST({v} AS HUGEINT) "
        f"WHEN {t} = 'real' AND {r} = trunc({r}) AND abs({r}) < 1e19 THEN TRY_CAST({r} AS HUGEINT) END"
    )
    value = f"CASE WHEN ({wide}) BETWEEN {lo} AND {hi} THEN CAST(({wide}) AS BIGINT) END"
    extra = [(f"({wide}) IS NOT NULL AND {read.ref(value)} IS NULL", f"out of range for {pg.sql()}: ")]
    return _explained(
        value,
        extra + [(f"{read.not_null} AND {read.ref(value)} IS NULL", "expected an integer, found ")],
        read.found,
    )


def _float_expressions(read: _Read, pg: PgType) -> DuckExpressions:
    """real or double precision: numbers it holds exactly."""
    t, v = read.t, read.v
    as_double = (
        f"CASE WHEN {t} = 'real' THEN {_real(v)} "
        f"WHEN {t} = 'integer' AND abs(TRY_CAST({v} AS HUGEINT)) <= 9007199254740992 THEN TRY_CAST({v} AS DOUBLE) "
        f"WHEN {t} = 'text' AND regexp_full_match({v}, {_NUM_RE}) AND abs(TRY_CAST({v} AS DOUBLE)) < 'inf'::DOUBLE "
        f"THEN TRY_CAST({v} AS DOUBLE) END"
    )
    extra = [
        (
            f"{t} = 'integer' AND abs(TRY_CAST({v} AS HUGEINT)) > 9007199254740992",
            f"integer too large to be exact in {pg.sql()}: ",
        )
    ]
    if pg.name == "real":
        as_float = f"TRY_CAST(({as_double}) AS FLOAT)"
        value = f"CASE WHEN CAST({as_float} AS DOUBLE) = ({as_double}) THEN {as_float} END"
        extra.append(
            (
                f"({as_double}) IS NOT NULL AND {read.ref(value)} IS NULL",
                "cannot be stored exactly in real (use double precision): ",
            )
        )
        return read.failed(value, "a number", extra)
    return read.failed(as_double, "a number", extra)


def _numeric_expressions(read: _Read, pg: PgType) -> DuckExpressions:
    """numeric: numbers within its precision and scale, none rounded."""
    t, v = read.t, read.v
    digits = (
        f"CASE WHEN {t} = 'integer' OR ({t} = 'text' AND regexp_full_match({v}, {_NUM_RE})) THEN {v} "
        f"WHEN {t} = 'real' AND abs({_real(v)}) < 'inf'::DOUBLE THEN CAST({_real(v)} AS VARCHAR) END"
    )
    places, whole = _decimal_digits(digits)
    if not pg.modifiers:
        # Unconstrained numeric: only PostgreSQL's own limits (131072 digits before the point,
        # 16383 after) apply; beyond them it would refuse the whole column without naming a row.
        return read.failed(
            digits,
            "a number",
            [(f"{places} > 16383 OR {whole} > 131072", f"out of range for {pg.sql()}: ")],
        )
    precision, scale = pg.modifiers[0], (pg.modifiers[1] if len(pg.modifiers) > 1 else 0)
    # Exact digit counts, not a comparison of two DuckDB DECIMALs: those round too, beyond
    # 38 digits or below the last decimal place of the wider one ('1e-40', '5e-324').
    out_of_range = (f"{whole} > {precision - scale}", f"out of range for {pg.sql()}: ")
    if loads_as_text(pg):
        extra = [
            (
                f"{places} > {scale}",
                f"has more than {scale} decimal places for {pg.sql()}: ",
            ),
            out_of_range,
        ]
        return read.failed(digits, "a number", extra)
    value = f"TRY_CAST(({digits}) AS DECIMAL({precision},{scale}))"
    extra = [
        (f"{places} > {scale}", f"would be rounded by {pg.sql()}: "),
        out_of_range,
        (
            f"({digits}) IS NOT NULL AND {read.ref(value)} IS NULL",
            f"out of range for {pg.sql()}: ",
        ),
    ]
    return read.failed(value, "a number", extra)


def _text_expressions(read: _Read, pg: PgType, blobs: bool = False) -> DuckExpressions:
    """Text types (and those PostgreSQL reads from text): valid UTF-8 without NUL, valid JSON for
    json, no longer than the type allows. `blobs` (converter: utf8): a blob is read as the text its
    bytes spell, on the same terms."""
    t, v = read.t, read.v
    kind = pg.kind
    textual = f"{t} IN ('text', 'blob')" if blobs else f"{t} = 'text'"
    taken = "'text', 'integer', 'blob'" if blobs else "'text', 'integer'"
    value = f"CASE WHEN {t} IN ({taken}) THEN {v} WHEN {t} = 'real' THEN CAST({_real(v)} AS VARCHAR) END"
    extra = [
        (
            f"{textual} AND {invalid_utf8(v)}",
            "is not valid UTF-8 (fix it in SQLite, or use type bytea to keep the bytes): ",
        ),
        (
            f"{textual} AND contains({v}, chr(0))",
            "contains a NUL byte, which PostgreSQL text cannot hold: ",
        ),
    ]
    if kind == "json":
        extra.append(
            (
                f"{read.ref(value)} IS NOT NULL AND (NOT json_valid({read.ref(value)}) OR {_json_extension(read.ref(value))})",
                "is not valid JSON: ",
            )
        )
        extra.append(
            (
                f"{read.ref(value)} IS NOT NULL AND contains({read.ref(value)}, '\\u0000')",
                "JSON with \\u0000, which PostgreSQL jsonb cannot hold: ",
            )
        )
    if pg.name in ("character varying", "character") and pg.modifiers:
        extra.append((f"length{read.ref(value)} > {pg.modifiers[0]}", f"longer than {pg.sql()} allows: "))
    expected = {"json": "JSON text", "text": "text"}.get(kind, f"text for {pg.sql()}")
    blob_case = (f"{t} = 'blob'", (f"expected {expected}, found ", " (use type bytea to keep bytes)"))
    cases = extra + ([] if blobs else [blob_case])
    return _explained(
        value,
        cases + [(f"{read.not_null} AND {read.ref(value)} IS NULL", f"expected {expected}, found ")],
        read.found,
    )


def _time_expressions(read: _Read, pg: PgType) -> DuckExpressions:
    """time: a time of day, with no more fractional digits than the type keeps."""
    t, v = read.t, read.v
    value = f"CASE WHEN {t} = 'text' AND regexp_full_match({v}, '[0-9]{{1,2}}:[0-9]{{2}}(:[0-9]{{2}}([.][0-9]{{1,6}})?)?') THEN TRY_CAST({v} AS TIME) END"
    precision = pg.modifiers[0] if pg.modifiers else 6
    extra = []
    if precision < 6:  # PostgreSQL would round the fraction to fit
        extra.append(
            (
                f"microsecond{read.ref(value)} % {10 ** (6 - precision)} <> 0",
                f"has more fractional digits than {pg.sql()} keeps: ",
            )
        )
    return read.failed(value, "a time of day (HH:MM:SS)", extra)


def _datetime_expressions(read: _Read, col: ValueConversion) -> DuckExpressions:
    """timestamp, timestamptz and date: the instant the column's converter reads, within the years
    1-9999."""
    t, v = read.t, read.v
    pg = col.pg_type
    kind = pg.kind
    us = _datetime_us(t, v, col.converter, col.integer_unit, col.mixed_units)
    # Each expression names `us` (1 kB or more) as few times as it can: DuckDB parses and binds
    # every copy, and a Prisma table's load query holds many such columns.
    # BETWEEN names it once; NULL (no convention explains the value) is neither in nor out.
    in_range = f"({us}) BETWEEN {_MIN_US} AND {_MAX_US - 1}"
    infinity = f"{t} = 'text' AND regexp_full_match({v}, '-?infinity', 'i')"
    extra = [
        (
            f"NOT ({in_range})",
            f"is outside the years 1-9999 when read as {col.converter} (choose another converter): ",
        )
    ]
    if col.converter == Converter.AUTO and col.mixed_units and col.integer_unit:
        floor = dict(_UNIT_FLOORS)[col.integer_unit]
        extra.append(
            (
                f"{_integer_text(t, v)} AND abs(TRY_CAST({v} AS HUGEINT)) < {floor}",
                f"is ambiguous: the column also holds epoch {_UNIT_NAMES[col.integer_unit]}, and this "
                "integer reads as a different instant in each unit (choose a converter): ",
            )
        )
    if col.converter == Converter.AUTO and col.integer_unit in (None, "s"):
        extra.append(
            (
                _julian_or_seconds(t, v),
                "may be a julian day or epoch seconds, which auto cannot tell apart (choose a converter): ",
            )
        )
    if kind == "date":
        # A timestamp at midnight: its microseconds are whole days (also before 1970).
        value = (
            f"CASE WHEN {in_range} AND ({us}) % {_DAY_US} = 0 "
            f"THEN CAST(make_timestamp(CAST(({us}) AS BIGINT)) AS DATE) "
            f"WHEN {infinity} THEN CAST(lower({v}) AS DATE) END"
        )
        extra.append(
            (
                f"{in_range} AND ({us}) % {_DAY_US} <> 0",
                "has a time of day, which date would drop: ",
            )
        )
        return read.failed(value, "a date", extra)
    precision = pg.modifiers[0] if pg.modifiers else 6
    if precision < 6:
        unit = 10 ** (6 - precision)
        extra.append((f"({us}) % {unit} <> 0", f"has more fractional digits than {pg.sql()} keeps: "))
    # make_timestamptz reads the microseconds as UTC, as as_timestamptz does, in one step.
    make, cast = (
        ("make_timestamp", "TIMESTAMP") if kind == "timestamp" else ("make_timestamptz", "TIMESTAMPTZ")
    )
    value = (
        f"CASE WHEN {in_range} THEN {make}(CAST(({us}) AS BIGINT)) "
        f"WHEN {infinity} THEN CAST(lower({v}) AS {cast}) END"
    )
    return read.failed(value, f"a datetime ({col.converter})", extra)
