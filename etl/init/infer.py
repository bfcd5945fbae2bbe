"""`etl init`: write a spec from the database itself, its schema and its data.

`choose_column` decides each column's target type and converter from the declared type, what the
profile found in the data, and (optionally) the Prisma schema; `render_spec` writes the YAML with
a comment wherever the data surprised it, and writes out explicitly whatever `etl apply` could not
take from SQLite as it is (a default or index PostgreSQL has no equivalent for, a foreign key
whose parent rows are missing, ...). Both are pure; `init_spec` does the I/O, and checks the
written spec the way `etl validate` does, so a spec it writes applies with no edits.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from etl.core.mapping import (
    MAX_NAME_BYTES,
    fit_name,
    fts_config,
    fts_differences,
    fts_query,
    no_tables_reason,
    search_carried,
    source_object_left_out,
    target_name,
    topological_order,
    unique_check_names,
)
from etl.duck import quote_ident
from etl.errors import EtlError, OutputFileError, SourceError, SpecError
from etl.files import check_writable_path, default_mode, replace_file, stage_file, write_file
from etl.model import Catalog, Column, ForeignKey, Index, IndexKey, SourceObject, Table
from etl.pgtypes import PgType, UnknownType, default_pg_type, parse_pg_type
from etl.postgres.target import holds_password
from etl.settings import Converter, Deferral, Naming
from etl.specfile.document import DEFERRABLE, SCHEMA_FILE
from etl.sqlite.catalog import introspect_sqlite
from etl.sqlite.convert import loads_as_text
from etl.sqlite.ddl import unquote_identifier
from etl.sqlite.profile import ColumnProfile, TableProfile, profile_sqlite
from etl.sqlite.translate import (
    TargetColumnRef,
    collation_of,
    translate_default,
    translate_expression,
    translate_index_key,
    translate_view,
)
from etl.sqlite.triggers import TableRef, translate_trigger

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Plain words a YAML 1.1 reader (many editors) would not read as a string.
_YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}
_MAX_EXACT_DOUBLE_INT = 2**53


_PLAIN_VALUE = re.compile(r"^[A-Za-z_][A-Za-z0-9_ ()]*[A-Za-z0-9_)]$")


def _printable(ch: str) -> bool:
    """Characters YAML takes as they are inside a double-quoted scalar or a comment. Line breaks
    (YAML 1.1 also breaks lines at NEL, LS and PS) and non-printable characters are escaped."""
    code = ord(ch)
    return (
        (0x20 <= code <= 0x7E)
        or (0xA0 <= code <= 0xD7FF and code not in (0x2028, 0x2029))
        or (0xE000 <= code <= 0xFFFD and code != 0xFEFF)
        or code >= 0x10000
    )


def _escape(ch: str) -> str:
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _quoted(text: str) -> str:
    """A double-quoted YAML scalar that every YAML reader takes as exactly `text`."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif _printable(ch):
            out.append(ch)
        else:
            out.append(_escape(ch))
    return '"' + "".join(out) + '"'


def comment_text(text: str) -> str:
    """`text` made safe for one line of a YAML comment (and a terminal): line breaks and other
    control characters are shown escaped, so a name or value can never end the comment."""
    return "".join(ch if _printable(ch) else _escape(ch) for ch in text)


def yaml_value(text: str) -> str:
    """A scalar for a flow mapping ({type: ...}): plain when nothing in it has a YAML meaning."""
    if _PLAIN_VALUE.match(text) and text.lower() not in _YAML_WORDS:
        return text
    return _quoted(text)


def yaml_str(text: str) -> str:
    """A YAML scalar that every YAML reader takes as exactly this string."""
    if _PLAIN_KEY.match(text) and text.lower() not in _YAML_WORDS:
        return text
    return _quoted(text)


def _yaml_list(items: Iterable[str]) -> str:
    return "[" + ", ".join(yaml_str(i) for i in items) + "]"


@dataclass(frozen=True)
class ColumnChoice:
    type: PgType
    converter: Converter | None = None
    note: str | None = None  # why, when the data surprised us
    surprise: bool = False


@dataclass(frozen=True)
class Finding:
    table: str
    column: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        return comment_text(f"{where}: {self.message}")


def _n(count: int, what: str | None = None) -> str:
    """`1,234` or, with a noun, `1 row` / `2 rows`."""
    if what is None:
        return f"{count:,}"
    return f"{count:,} {what}" if count == 1 else f"{count:,} {what}s"


def _are(count: int) -> str:
    return "is" if count == 1 else "are"


def _kept(p: ColumnProfile, found: str, then: str = "") -> ColumnChoice:
    """A column whose values do not all fit its type keeps them as they are: as text, or as bytea
    when it holds blobs (bytea takes text too, as its UTF-8 bytes). Blobs beside numbers fit no
    type: they are reported at apply rather than altered."""
    if p.blobs and (p.integers or p.reals):
        chose = "chose text (no one type holds blobs and numbers: the blobs will be reported)"
        return ColumnChoice(parse_pg_type("text"), None, f"{found}; {chose}{then}", True)
    if p.blobs:
        chose = "chose bytea so nothing is lost (text arrives as its UTF-8 bytes)"
        return ColumnChoice(parse_pg_type("bytea"), None, f"{found}; {chose}{then}", True)
    return ColumnChoice(parse_pg_type("text"), None, f"{found}; chose text so nothing is lost{then}", True)


def _holds(what: str, count: int, p: ColumnProfile) -> str:
    """`holds text that is not an integer (2 values, e.g. 'x', 'y')`."""
    examples = f", e.g. {', '.join(p.samples)}" if p.samples else ""
    return f"holds {what} ({_n(count, 'value')}{examples})"


_UNITS = ("seconds", "milliseconds", "microseconds")
_EPOCH_CONVERTERS = {
    "seconds": Converter.EPOCH_SECONDS,
    "milliseconds": Converter.EPOCH_MILLISECONDS,
    "microseconds": Converter.EPOCH_MICROSECONDS,
}


def _datetime_found(p: ColumnProfile, prisma: bool) -> list[str]:
    """What a datetime column holds, convention by convention."""
    integers = (p.epoch_seconds, p.epoch_milliseconds, p.epoch_microseconds)
    if prisma and p.integers:  # Prisma writes milliseconds, however small
        integers = (0, p.integers, 0)
    parts = [f"{_n(n)} epoch {unit}" for unit, n in zip(_UNITS, integers, strict=True) if n]
    if p.julian_reals:
        parts.append(f"{_n(p.julian_reals)} julian days")
    if p.reals - p.julian_reals:
        parts.append(f"{_n(p.reals - p.julian_reals)} other reals")
    if p.iso_texts:
        offsets = f" ({_n(p.iso_offsets)} with offsets)" if p.iso_offsets else ""
        parts.append(f"{_n(p.iso_texts)} ISO text{offsets}")
    return parts


def _datetime_choice(p: ColumnProfile, base: PgType, prisma: bool) -> ColumnChoice:
    """Type and converter for a timestamp or date column, from the conventions its values use.

    A fixed converter (epoch_milliseconds, ...) reads every integer and real in one unit, and ISO
    text as ISO; `auto` (no converter) reads integers in the unit of the column's largest one and
    reals as julian days or, beyond their range, epoch seconds. When neither reads every value
    for certain, the column is kept as text: nothing is lost, and the note says why."""
    text = parse_pg_type("text")
    not_datetimes = p.texts - p.iso_texts
    if not_datetimes or p.blobs:
        what = (
            _holds("text that is not a datetime", not_datetimes, p)
            if not_datetimes
            else _holds("blobs", p.blobs, p)
        )
        return _kept(p, what, f" (fix them, then set type: {base.short()})")
    found = _datetime_found(p, prisma)
    counts = dict(zip(_UNITS, (p.epoch_seconds, p.epoch_milliseconds, p.epoch_microseconds), strict=True))
    present = [u for u in _UNITS if counts[u]]
    other_reals = p.reals - p.julian_reals
    readings: list[str] = []  # how each convention is read, when there are several
    notes: list[str] = []  # anything else worth saying
    surprise = len(found) > 1
    converter: Converter | None = None
    if p.iso_texts:
        readings.append("ISO text as ISO")
    if p.integers:
        # Prisma's SQLite connector writes every DateTime as epoch milliseconds, also those that
        # are small enough to look like seconds (dates near 1970).
        unit = "milliseconds" if prisma else present[-1]
        mixed = len(present) > 1
        if p.reals and p.julian_integers == p.integers and not other_reals:
            # SQLite stores a julian day that is a whole number (noon) as an INTEGER.
            converter = Converter.JULIAN_DAY
            readings.append("integers and reals as julian days")
        elif p.reals and (mixed or (unit == "seconds" and p.julian_integers)):
            return ColumnChoice(
                text,
                None,
                f"{', '.join(found)}: no one converter reads both these integers and these reals; "
                f"kept as text so nothing is lost (set type: {base.short()} and a converter)",
                True,
            )
        elif p.reals:
            converter = None  # auto: integers in the column's unit, reals as julian days
            readings.append(f"integers as epoch {unit}")
        else:
            converter = _EPOCH_CONVERTERS[unit]
            readings.append(f"integers as epoch {unit}")
            if mixed and not prisma:
                surprise = True
                smaller = sum(n for u, n in counts.items() if u != present[-1])
                notes.append(
                    f"read all as {unit}: the {_n(smaller, 'smaller integer')} {_are(smaller)} then "
                    "within 3 years of 1970 (set another converter if they are not)"
                )
            if unit == "seconds" and p.julian_integers:
                surprise = True
                notes.append(
                    f"{_n(p.julian_integers)} integers could also be julian days; read as epoch seconds"
                )
    if p.reals and converter != Converter.JULIAN_DAY:
        if p.julian_reals:
            readings.append("reals as julian days")
        if other_reals:
            surprise = True
            readings.append("reals beyond the julian-day range as epoch seconds")
        if not p.integers and not other_reals:
            converter = Converter.JULIAN_DAY
    if 0 < p.iso_offsets < p.iso_texts:
        surprise = True
        naive = p.iso_texts - p.iso_offsets
        notes.append(f"{_n(naive, 'ISO text')} without an offset {_are(naive)} read as UTC")
    chosen = base
    if base.kind == "date" and p.day_fractions:
        chosen = parse_pg_type("timestamp(3)" if prisma else "timestamptz")
        surprise = True
        notes.append(
            f"{_n(p.day_fractions, 'value')} with a time of day, which date would drop: chose {chosen.short()}"
        )
    elif base.modifiers and base.modifiers[0] < 6 and p.sub_milliseconds:
        chosen = PgType(base.name)
        surprise = True
        notes.append(
            f"{_n(p.sub_milliseconds, 'value')} with digits below the millisecond, which "
            f"{base.short()} would round: chose {chosen.short()}"
        )
    if len(readings) > 1:
        notes.insert(0, "mixed conventions, read " + ", ".join(readings))
    if not notes:
        return ColumnChoice(chosen, converter)
    return ColumnChoice(chosen, converter, ", ".join(found) + ": " + "; ".join(notes), surprise)


def choose_column(
    column: Column,
    profile: ColumnProfile | None,
    prisma_type: PgType | None = None,
    *,
    uuid_allowed: bool = False,
) -> ColumnChoice:
    """`uuid_allowed`: a text column whose every value is a UUID may become uuid: no SQL of its
    table names it (PostgreSQL would then read it as uuid, where text functions fail)."""
    base = prisma_type or default_pg_type(column.declared_type)
    if base.kind == "enum":
        return ColumnChoice(base)  # its values were checked against the labels (enum_misfits)
    if profile is None or profile.non_null == 0:
        note = "no values to profile" if profile is not None and profile.nulls else None
        return ColumnChoice(base, None, note)
    p = profile
    kind = base.kind

    if not column.declared_type.strip() and not prisma_type:
        return _untyped(p)

    if kind in ("timestamp", "timestamptz", "date"):
        return _datetime_choice(p, base, prisma_type is not None)
    if kind == "time":
        return _time_choice(p, base)
    if kind == "integer":
        return _integer_choice(p, base)
    if kind == "boolean":
        return _boolean_choice(p, base)
    if kind in ("float", "numeric"):
        return _number_choice(p, base)
    if kind == "text" and not base.modifiers and not prisma_type and p.texts == p.non_null == p.uuid_values:
        held = None if uuid_allowed else "a CHECK, index or generated column of its table reads it as text"
        if column.default is not None:
            held = f"its default {column.default} is text"
        return _uuid_choice(p, base, held)
    if kind == "bytea" and not (p.integers or p.reals):
        return _textual_blobs_choice(p, base)
    return _text_or_bytes_choice(p, base)


def _uuid_choice(p: ColumnProfile, base: PgType, held: str | None) -> ColumnChoice:
    """A text column whose every value is a UUID becomes uuid only where each value's text is what
    PostgreSQL's uuid prints (lower case, with hyphens): otherwise the text would change. `held`:
    why the column stays text even so."""
    found = f"every value is a UUID ({_n(p.non_null, 'value')})"
    others = p.non_null - p.lower_uuids
    if others:
        return ColumnChoice(
            base,
            None,
            f"{found}, {_n(others)} not written as PostgreSQL's uuid prints them (lower case, with "
            "hyphens), so type uuid would change their text: kept text (set type: uuid to store "
            "them as uuid anyway)",
            True,
        )
    if held:
        return ColumnChoice(base, None, f"{found}; kept text, as {held}")
    return ColumnChoice(
        parse_pg_type("uuid"),
        None,
        f"{found}, each as PostgreSQL's uuid prints it; chose uuid (16 bytes a value; set type: "
        "text to keep text)",
        True,
    )


def _textual_blobs_choice(p: ColumnProfile, base: PgType) -> ColumnChoice:
    """A bytea column keeps every value's bytes; where those are all text, base64 or 16-byte
    UUIDs, the note says so and what the spec can say instead."""
    n = p.non_null
    blob_texts = p.texts + p.utf8_blobs
    if p.base64_values == n:
        return ColumnChoice(
            base,
            None,
            f"every value is base64 ({_n(n, 'value')}); chose bytea, which keeps the base64 text's "
            "bytes (set converter: base64 to store the bytes it encodes)",
            True,
        )
    if blob_texts == n:
        stored = f", {_n(p.utf8_blobs)} stored as blobs" if p.utf8_blobs else ""
        converter = ", converter: utf8" if p.utf8_blobs else ""
        return ColumnChoice(
            base,
            None,
            f"every value is UTF-8 text ({_n(n, 'value')}{stored}); chose bytea, which keeps their "
            f"bytes (set type: text{converter} to store them as text)",
            True,
        )
    if p.blobs == n == p.uuid_blobs:
        return ColumnChoice(
            base,
            None,
            f"every value is 16 bytes with a UUID's version and variant bits ({_n(n, 'value')}); "
            "chose bytea (if they are UUIDs, set type: uuid to store them as uuid, byte for byte)",
            True,
        )
    return ColumnChoice(base)


def _time_choice(p: ColumnProfile, base: PgType) -> ColumnChoice:
    """A time column keeps its type unless it holds other values, or more precision than it takes."""
    others = p.non_null - p.time_texts
    if others:
        return _kept(p, _holds("values that are not times of day (HH:MM:SS)", others, p))
    if base.modifiers and base.modifiers[0] < 6 and p.sub_milliseconds:
        return ColumnChoice(
            PgType(base.name),
            None,
            f"{_n(p.sub_milliseconds, 'value')} with digits below the millisecond: chose time",
            True,
        )
    return ColumnChoice(base)


def _integer_choice(p: ColumnProfile, base: PgType) -> ColumnChoice:
    """An integer column widens to bigint, a real type or text when its values do not fit it."""
    text = parse_pg_type("text")
    stray_texts = p.texts - p.integer_texts
    if stray_texts or p.blobs:
        what = (
            _holds("text that is not an integer", stray_texts, p)
            if stray_texts
            else _holds("blobs", p.blobs, p)
        )
        return _kept(p, what)
    if p.reals:
        exact = max(abs(p.int_min or 0), abs(p.int_max or 0)) <= _MAX_EXACT_DOUBLE_INT
        if not exact and p.infinities:
            return ColumnChoice(
                text,
                None,
                "holds integers beyond 2^53 and +-Infinity, which no number type holds together; "
                "chose text so nothing is lost",
                True,
            )
        chosen = parse_pg_type("double precision" if exact else "numeric")
        return ColumnChoice(
            chosen, None, f"holds {_n(p.reals, 'non-integral real')}; chose {chosen.sql()}", True
        )
    low, high = base.integer_range or (-(2**63), 2**63 - 1)
    if (p.int_min is not None and p.int_min < low) or (p.int_max is not None and p.int_max > high):
        return ColumnChoice(
            parse_pg_type("bigint"),
            None,
            f"values from {p.int_min} to {p.int_max} do not fit {base.sql()}; chose bigint",
            True,
        )
    return ColumnChoice(base)


def _boolean_choice(p: ColumnProfile, base: PgType) -> ColumnChoice:
    """A boolean column stays boolean only when it holds 0/1/true/false."""
    stray_texts = p.texts - p.boolean_texts
    out_of_range = (p.int_min is not None and p.int_min < 0) or (p.int_max is not None and p.int_max > 1)
    if stray_texts or p.blobs or p.reals:
        return _kept(
            p, _holds("values other than 0/1/true/false", p.non_null - p.integers - p.boolean_texts, p)
        )
    if out_of_range:
        return ColumnChoice(
            parse_pg_type("bigint"),
            None,
            f"holds integers from {p.int_min} to {p.int_max}, not just 0/1; chose bigint",
            True,
        )
    return ColumnChoice(base)


def _number_choice(p: ColumnProfile, base: PgType) -> ColumnChoice:
    """A float or numeric column moves to the number type (or text) that holds its values exactly."""
    kind = base.kind
    text = parse_pg_type("text")
    stray_texts = p.texts - p.number_texts
    if stray_texts or p.blobs:
        what = (
            _holds("text that is not a number", stray_texts, p)
            if stray_texts
            else _holds("blobs", p.blobs, p)
        )
        return _kept(p, what)
    beyond = max(abs(p.int_min or 0), abs(p.int_max or 0)) > _MAX_EXACT_DOUBLE_INT
    if kind == "float" and beyond:
        if p.infinities or p.texts:
            return ColumnChoice(
                text,
                None,
                "holds integers beyond 2^53 beside other numbers no one number type holds; chose text",
                True,
            )
        return ColumnChoice(
            parse_pg_type("numeric"),
            None,
            "holds integers beyond 2^53; chose numeric to keep them exact",
            True,
        )
    if kind == "numeric" and p.infinities:
        if beyond or p.texts:
            return ColumnChoice(
                text,
                None,
                f"holds {_n(p.infinities, 'infinite real')} beside exact numbers; chose text",
                True,
            )
        chosen = parse_pg_type("double precision")
        return ColumnChoice(
            chosen,
            None,
            f"holds {_n(p.infinities, 'infinite real')} (+-Infinity), which {base.sql()} cannot "
            f"take; chose {chosen.sql()}",
            True,
        )
    if kind == "numeric" and p.numeric_misfits:
        chosen = parse_pg_type("numeric")
        return ColumnChoice(
            chosen,
            None,
            f"{_holds(f'numbers with more digits than {base.sql()} takes', p.numeric_misfits, p)}; "
            f"chose {chosen.sql()}",
            True,
        )
    return ColumnChoice(base)


def _text_or_bytes_choice(p: ColumnProfile, base: PgType) -> ColumnChoice:
    """A text, json, bytea or uuid column (or any other type) keeps its type unless its values do
    not fit: blobs beside text, text too long, numbers beside blobs, text that is not JSON or UUIDs."""
    kind = base.kind
    text = parse_pg_type("text")
    bytea = parse_pg_type("bytea")
    if kind in ("text", "json") and p.blobs:
        return ColumnChoice(
            bytea,
            None,
            f"{_holds('blobs beside text', p.blobs, p)}; chose bytea (text arrives as its UTF-8 bytes)",
            True,
        )
    if kind == "text" and p.too_long:
        return ColumnChoice(
            text,
            None,
            f"{_holds(f'text longer than {base.sql()} allows', p.too_long, p)}; chose text",
            True,
        )
    if kind == "bytea" and (p.integers or p.reals):
        return _kept(p, _holds("numbers beside blobs", p.integers + p.reals, p))
    if kind == "json" and p.json_texts < p.texts:
        return ColumnChoice(
            text,
            None,
            f"{_holds('text that is not JSON', p.texts - p.json_texts, p)}; chose text",
            True,
        )
    if kind == "uuid" and p.uuid_values < p.non_null:
        return _kept(p, _holds("values that are not UUIDs", p.non_null - p.uuid_values, p))
    return ColumnChoice(base)


def _untyped(p: ColumnProfile) -> ColumnChoice:
    """A column with no declared type holds whatever was put in it: its type comes from the data,
    which is worth a look, so it is always reported."""
    classes = [
        name
        for name, n in (("integers", p.integers), ("reals", p.reals), ("texts", p.texts), ("blobs", p.blobs))
        if n
    ]
    found = ", ".join(_n(getattr(p, c), c[:-1]) for c in classes)

    def chose(type_name: str, extra: str = "") -> ColumnChoice:
        return ColumnChoice(parse_pg_type(type_name), None, f"holds {found}{extra}; chose {type_name}", True)

    if classes == ["integers"]:
        return chose("bigint")
    if set(classes) <= {"integers", "reals"}:
        exact = max(abs(p.int_min or 0), abs(p.int_max or 0)) <= _MAX_EXACT_DOUBLE_INT
        if exact:
            return chose("double precision")
        if p.infinities:
            return chose("text", " (integers beyond 2^53 and +-Infinity)")
        return chose("numeric")
    if classes == ["blobs"] or (set(classes) == {"texts", "blobs"}):
        return chose("bytea", " (text arrives as its UTF-8 bytes)" if p.texts else "")
    if "blobs" in classes:
        return chose("text", ": the blobs will be reported (no one type holds blobs and numbers)")
    return chose("text")


@dataclass
class InitResult:
    text: str
    findings: list[Finding] = field(default_factory=list)
    tables: int = 0
    rows: int = 0
    # The URL given to etl init holds a password: the spec reads target.url from this variable instead.
    url_variable: str | None = None
    schema_file: Path | None = None  # the JSON Schema written beside the spec, for editors


def _fit(name: str, naming: Naming) -> str:
    return fit_name(target_name(name, naming))


def _target_names(names: list[str], naming: Naming) -> dict[str, tuple[str, str | None]]:
    """Each name's target name, and why it is not simply the naming policy's (too long for
    PostgreSQL, or the same as an earlier one's under the policy)."""
    out: dict[str, tuple[str, str | None]] = {}
    taken: set[str] = set()
    for name in names:
        wanted = target_name(name, naming)
        chosen, why = wanted, None
        if len(wanted.encode()) > MAX_NAME_BYTES:
            chosen = fit_name(wanted)
            why = f"'{wanted}' is longer than PostgreSQL's {MAX_NAME_BYTES} bytes: named '{chosen}'"
        if chosen in taken:
            n = 2
            while fit_name(f"{wanted}_{n}") in taken:
                n += 1
            chosen = fit_name(f"{wanted}_{n}")
            why = f"'{wanted}' is taken under naming {naming}: named '{chosen}'"
        taken.add(chosen)
        out[name] = (chosen, why)
    return out


@dataclass
class _TablePlan:
    """What render_spec writes for one table beyond its columns' types."""

    table: Table
    target: str
    target_note: str | None
    columns: dict[str, tuple[str, str | None]]  # source column -> (target name, why renamed)
    choices: dict[str, ColumnChoice]
    keep_primary_key: bool = True
    settings: tuple[str, ...] = ()  # further YAML lines of the table's own (from the Prisma schema)
    column_settings: dict[str, tuple[str, ...]] = field(default_factory=dict)  # further `key: value`s
    schema_typed: frozenset[str] = frozenset()  # columns whose type a schema file chose (Prisma's)
    search: tuple[str, ...] = ()  # the `search:` lines, for a table an FTS table indexes
    resorted: tuple[str, ...] = ()  # indexes the Prisma schema sorts otherwise (PrismaLayout.resorted)


def render_spec(
    catalog: Catalog,
    profiles: dict[str, TableProfile],
    source_ref: str,
    schema_ref: str,
    target_url: str = "${DATABASE_URL}",
    naming: Naming = Naming.KEEP,
    prisma_types: dict[tuple[str, str], PgType] | None = None,
    header: str = "",
    findings: Iterable[Finding] = (),
    prisma_layout: PrismaLayout | None = None,
) -> InitResult:
    """The spec's text and its findings. `findings` found elsewhere (e.g. reading the Prisma
    schema) are marked at their table or column too."""
    prisma_types = prisma_types or {}
    layout = prisma_layout or PrismaLayout()
    result = InitResult(text="")
    marks: dict[tuple[str, str | None], list[str]] = {}
    for f in findings:
        marks.setdefault((f.table, f.column), []).append(f.message)
        result.findings.append(f)
    names = [t.name for t in catalog.tables]
    known = set(names)
    parents = {
        t.name: {fk.ref_table for fk in t.foreign_keys if fk.ref_table in known and fk.ref_table != t.name}
        for t in catalog.tables
    }
    order = topological_order(names, parents)
    table_names = _target_names(order, naming)
    plans: dict[str, _TablePlan] = {}
    for table in catalog.tables:
        profile = profiles.get(table.name)
        named_in_sql = _named_in_sql(table)
        choices = {
            c.name: choose_column(
                c,
                profile.column(c.name) if profile else None,
                prisma_types.get((table.name, c.name)),
                uuid_allowed=c.name.lower() not in named_in_sql,
            )
            for c in table.columns
        }
        # SQLite lets a primary key column hold NULL (unless it is the rowid or WITHOUT ROWID).
        pk_nulls = [c for c in table.primary_key if profile and (cp := profile.column(c)) and cp.nulls]
        plans[table.name] = _TablePlan(
            table,
            *table_names[table.name],
            _target_names([c.name for c in table.columns], naming),
            choices,
            keep_primary_key=not pk_nulls,
            settings=layout.tables.get(table.name, ()),
            column_settings={c: v for (t, c), v in layout.columns.items() if t == table.name},
            schema_typed=frozenset(c for (t, c) in prisma_types if t == table.name),
            resorted=layout.resorted.get(table.name, ()),
        )

    _keep_uuid_keys_matched(catalog, plans)
    fts_tables, searched = _fts_searches(catalog, plans, naming)
    order += [obj.name for obj in fts_tables]

    lines = [f"# yaml-language-server: $schema={schema_ref}"]
    lines += [f"# {comment_text(line)}" if line else "#" for line in header.splitlines()]
    lines += [
        "version: 1",
        "",
        "source:",
        f"  sqlite: {yaml_str(source_ref)}",
        "",
        "target:",
        f"  url: {yaml_str(target_url) if not _is_env_reference(target_url) else target_url}",
        "  schema: public",
        "",
        f"naming: {naming}",
    ]
    if layout.exclude:
        lines += ["", "# Left out: Prisma's migration history belongs to the SQLite database.", "exclude:"]
        lines += [f"  - {yaml_str(name)}" for name in layout.exclude]
    lines += layout.project
    enums = {pg.name: pg.labels for pg in prisma_types.values() if pg.kind == "enum" and pg.labels}
    if enums:
        lines += ["", "# Enum types, created in the target schema before the tables.", "enums:"]
        lines += [
            f"  {yaml_str(name)}: [{', '.join(yaml_str(label) for label in labels)}]"
            for name, labels in enums.items()
        ]
    views, view_lines = _view_lines(catalog, plans)
    triggers, trigger_lines = _trigger_lines(catalog, plans)
    lines += _source_object_lines(catalog, result, views, searched, triggers)
    if not order:
        lines += ["", "# The database has no tables.", "load_order: []", "tables: {}"]
    else:
        lines += ["", "# Parents before children, from the foreign keys.", "load_order:"]
        lines += [f"  - {yaml_str(n)}" for n in order]
        lines += ["", "tables:"]
    for name in order:
        if name not in plans:
            continue
        profile = profiles.get(name)
        lines += [""] + _render_table(plans[name], profile, naming, plans, result, marks)
        result.tables += 1
        result.rows += profile.rows if profile else 0
    for obj in fts_tables:
        lines += [""] + _fts_table_lines(obj)
        result.tables += 1
    lines += view_lines
    lines += trigger_lines
    result.text = "\n".join(lines) + "\n"
    return result


def _view_lines(catalog: Catalog, plans: dict[str, _TablePlan]) -> tuple[dict[str, str | None], list[str]]:
    """Each view: None when it is written under `views:` (its SQL translated exactly, reading
    tables and columns that keep their names), else why not; and the `views:` section."""
    found: dict[str, str | None] = {}
    lines: list[str] = []
    for view in (o for o in catalog.objects if o.kind == "view"):
        why = _view_not_carried(view, plans, found)
        translated = translate_view(view.sql, view.columns) if why is None else None
        if translated is not None and translated.sql is None:
            why = f"its SQL does not translate exactly: {translated.reason}"
        found[view.name] = why
        if why is None and translated is not None and translated.sql is not None:
            lines += [f"  {yaml_str(view.name)}:", f"    sql: {yaml_str(translated.sql)}"]
    if lines:
        lines = [
            "",
            "# Views, created after the tables; apply compares their rows with SQLite's.",
            "views:",
            *lines,
        ]
    return found, lines


def _view_not_carried(
    view: SourceObject, plans: dict[str, _TablePlan], views: dict[str, str | None]
) -> str | None:
    """Why a view cannot be written as it is: it reads a table, column or view that the target
    names differently, or does not get."""
    if not view.columns:
        return "SQLite cannot prepare a query of it (does it read a table that is gone?)"
    for table, column in view.reads:
        if table in views:
            if views[table] is not None:
                return f"it reads view '{table}', which is not carried"
            continue
        plan = plans.get(table)
        if plan is None:
            return f"it reads '{table}', which the target does not get"
        if plan.target != table:
            return f"it reads table '{table}', named '{plan.target}' in the target"
        target = plan.columns.get(column, (None, None))[0]
        if target != column:
            named = f"named '{target}' in the target" if target else "which the target does not get"
            return f"it reads column '{table}'.'{column}', {named}"
    return None


def _named_in_sql(table: Table) -> set[str]:
    """Lower-cased names of the columns that SQL of the table (a CHECK, a generated column, an
    index expression or predicate) may read: words of that SQL, a superset."""
    texts = [check.expression for check in table.checks]
    texts += [c.generated for c in table.columns if c.generated]
    for ix in table.indexes:
        texts += [k.expression for k in ix.keys if k.expression] + ([ix.where] if ix.where else [])
    return {word.lower() for text in texts for word in re.findall(r"\w+", text)}


def _keep_uuid_keys_matched(catalog: Catalog, plans: dict[str, _TablePlan]) -> None:
    """A foreign key joins columns of one type family: where a column init made uuid (all its
    values UUIDs) meets one that stays text, both stay text, with a note."""
    changed = True
    while changed:
        changed = False
        for table in catalog.tables:
            for fk in table.foreign_keys:
                parent = plans.get(fk.ref_table)
                if parent is None or len(fk.columns) != len(fk.ref_columns):
                    continue
                for child_col, parent_col in zip(fk.columns, fk.ref_columns, strict=True):
                    ends = [(plans[table.name], child_col), (parent, parent_col)]
                    if any(p.table.column(c) is None for p, c in ends):
                        continue
                    kinds = {p.choices[c].type.kind for p, c in ends}
                    if "uuid" not in kinds or len(kinds) == 1:
                        continue
                    for end_plan, column in ends:
                        choice = end_plan.choices[column]
                        source_column = end_plan.table.column(column)
                        assert source_column is not None
                        if (
                            choice.type.kind == "uuid"
                            and default_pg_type(source_column.declared_type).kind != "uuid"
                        ):
                            end_plan.choices[column] = ColumnChoice(
                                default_pg_type(source_column.declared_type),
                                None,
                                f"every value is a UUID, but the foreign key ({', '.join(fk.columns)}) -> "
                                f"{fk.ref_table} joins it to a column that is not: kept text (set type: "
                                "uuid on both to store them as uuid)",
                                True,
                            )
                            changed = True


def _fts_searches(
    catalog: Catalog, plans: dict[str, _TablePlan], naming: Naming
) -> tuple[list[SourceObject], dict[str, str]]:
    """Each FTS table's search written as `search:`: on its external content table (into its
    plan), or on a `query:` table reading an FTS table that stores its own rows (returned, to be
    written as a table); and, for every FTS table, where its search went ("" where nowhere)."""
    own: list[SourceObject] = []
    searched: dict[str, str] = {}
    for obj in catalog.objects:
        if obj.kind != "virtual table" or not (obj.module or "").startswith("fts"):
            continue
        searched[obj.name] = ""
        if obj.content is None:
            if obj.indexed and catalog.table(obj.name) is None:
                own.append(obj)
                searched[obj.name] = search_carried(target_name(obj.name, naming), "search", query=True)
            continue
        plan = plans.get(obj.content or "")
        if plan is None or plan.search:
            continue
        columns = [c for c in obj.indexed if c in plan.choices and plan.choices[c].type.kind == "text"]
        if not columns:
            continue
        taken = {target for target, _ in plan.columns.values()}
        name = next(n for n in ("search", "search_vector", f"{obj.name}_search") if n not in taken)
        plan.search = (
            f"    # {comment_text(fts_differences(obj))}",
            f"    search: {_search_yaml(name, columns, fts_config(obj))}",
        )
        searched[obj.name] = search_carried(plan.target, name, query=False)
    return own, searched


def _search_yaml(name: str, columns: list[str] | tuple[str, ...], config: str) -> str:
    return f"{{name: {yaml_str(name)}, columns: {_yaml_list(columns)}, config: {config}}}"


def _fts_table_lines(obj: SourceObject) -> list[str]:
    """A `query:` table holding the rows an FTS table stores itself, with its search."""
    query = fts_query(obj)
    key = "id" if query.startswith("SELECT rowid AS id,") else "rowid"
    columns = obj.columns
    return [
        f"  # The rows the {obj.module} table {comment_text(obj.name)} stores itself, read through it "
        "(its shadow tables are never copied).",
        f"  {yaml_str(obj.name)}:",
        f"    query: {yaml_str(query)}",
        f"    primary_key: [{key}]",
        "    columns:",
        f"      {key}: {{type: bigint}}",
        *(f"      {yaml_str(c)}: {{type: text}}" for c in columns),
        f"    # {comment_text(fts_differences(obj))}",
        f"    search: {_search_yaml('search', obj.indexed, fts_config(obj))}",
    ]


def _trigger_lines(catalog: Catalog, plans: dict[str, _TablePlan]) -> tuple[dict[str, str | None], list[str]]:
    """Each trigger: None when it is written under `triggers:` (translated exactly, on tables that
    keep their names), else why not; and the `triggers:` section."""
    tables = {
        name: TableRef(plan.target, _kinds(plan), plan.table.primary_key) for name, plan in plans.items()
    }
    found: dict[str, str | None] = {}
    lines: list[str] = []
    for trigger in (o for o in catalog.objects if o.kind == "trigger"):
        translated = translate_trigger(trigger.sql, tables)
        found[trigger.name] = translated.reason
        if translated.reason is not None:
            continue
        lines += [
            f"  {yaml_str(trigger.name)}:",
            f"    table: {yaml_str(translated.table)}",
            f"    event: {translated.event}",
        ]
        if translated.columns:
            lines.append(f"    columns: {_yaml_list(translated.columns)}")
        if translated.when:
            lines.append(f"    when: {yaml_str(translated.when)}")
        lines.append(f"    body: {yaml_str(translated.body)}")
    if lines:
        lines = [
            "",
            "# Triggers, created after the rows are in (they never fire on what etl writes); as in",
            "# SQLite, a trigger does not fire again from within itself.",
            "triggers:",
            *lines,
        ]
    return found, lines


def _source_object_lines(
    catalog: Catalog,
    result: InitResult,
    views: dict[str, str | None],
    searched: dict[str, str],
    triggers: dict[str, str | None],
) -> list[str]:
    """Triggers, virtual tables and views not carried: each named, with why it is left out and its SQL."""
    objects = [
        o
        for o in catalog.objects
        if not (o.kind == "view" and views.get(o.name) is None)
        and not (o.kind == "trigger" and triggers.get(o.name) is None)
    ]
    if not objects:
        return []
    lines = ["", "# Not migrated (etl plan lists them too):"]
    for obj in objects:
        reason = views.get(obj.name) if obj.kind == "view" else None
        if reason is not None:
            reason = (
                f"not created in PostgreSQL: {reason}; write its PostgreSQL SELECT under views: to create it, "
                f"or load its rows as a table (tables: {{<name>: {{query: SELECT * FROM {quote_ident(obj.name)}}}}})"
            )
        else:
            reason = source_object_left_out(obj, searched).reason
            if obj.kind == "trigger" and not reason.startswith("FTS maintenance"):
                reason = f"not translated: {triggers.get(obj.name)}; {reason}"
        lines.append(f"# !! {obj.kind} {comment_text(obj.name)}: {comment_text(reason)}. Its SQLite SQL:")
        lines += [f"#      {comment_text(line)}" for line in obj.sql.splitlines()]
        result.findings.append(Finding(obj.name, None, f"{obj.kind}: {reason}"))
    return lines


_ENV_REFERENCE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}$")


def _is_env_reference(url: str) -> bool:
    return _ENV_REFERENCE.match(url) is not None


def _describe_table(table: Table, profile: TableProfile | None) -> str:
    rows = _n(profile.rows, "row") if profile else "rows not profiled"
    key = f"primary key ({', '.join(table.primary_key)})" if table.primary_key else "no primary key"
    extra = []
    if table.without_rowid:
        extra.append("WITHOUT ROWID")
    if table.autoincrement:
        extra.append("AUTOINCREMENT")
    if table.indexes:
        extra.append(_n(len(table.indexes), "index").replace("indexs", "indexes"))
    if table.foreign_keys:
        extra.append("references " + ", ".join(sorted({fk.ref_table for fk in table.foreign_keys})))
    return comment_text("; ".join([rows, key, *extra]))


def _fk_yaml(fk: ForeignKey) -> str:
    return (
        f"{{columns: {_yaml_list(fk.columns)}, references: {{table: {yaml_str(fk.ref_table)}, "
        f"columns: {_yaml_list(fk.ref_columns)}}}, "
        f"on_delete: {fk.on_delete.lower()}, on_update: {fk.on_update.lower()}{_deferrable_yaml(fk)}}}"
    )


def _deferrable_yaml(fk: ForeignKey) -> str:
    words = {v: k for k, v in DEFERRABLE.items()}
    return f", deferrable: {words[Deferral(fk.deferrable)]}" if fk.deferrable else ""


def _same_family(a: PgType, b: PgType) -> bool:
    """Can PostgreSQL make a foreign key between columns of these types?"""
    if a.array or b.array:
        return a == b
    if a.kind == b.kind and a.kind in ("integer", "text", "json", "bytea", "uuid", "boolean"):
        return a.kind != "json" or a.name == b.name == "jsonb"
    return a.name == b.name


def _unique_keys(plan: _TablePlan) -> list[frozenset[str]]:
    """The column sets PostgreSQL will hold unique in a table: what a foreign key may reference."""
    table = plan.table
    # A primary key holding NULL becomes a unique constraint, which a foreign key may reference too.
    keys = [frozenset(table.primary_key)] if table.primary_key else []
    keys += [
        frozenset(ix.columns)
        for ix in table.indexes
        if ix.unique and not ix.where and not ix.has_expressions and ix.columns
    ]
    return keys


def _foreign_key_problem(fk: ForeignKey, plan: _TablePlan, plans: dict[str, _TablePlan]) -> str | None:
    """Why PostgreSQL could not create this foreign key, or None."""
    what = f"({', '.join(fk.columns)}) -> {fk.ref_table}"
    parent = plans.get(fk.ref_table)
    if parent is None:
        return f"{what}: {fk.ref_table} is not a table in this database"
    missing = [c for c in fk.ref_columns if parent.table.column(c) is None]
    if not fk.ref_columns or missing or len(fk.ref_columns) != len(fk.columns):
        return f"{what}: {fk.ref_table} has no column {', '.join(missing) or '(its key)'}"
    if frozenset(fk.ref_columns) not in _unique_keys(parent):
        return (
            f"{what}({', '.join(fk.ref_columns)}): PostgreSQL needs a primary key or unique constraint "
            "on the referenced columns, and there is none"
        )
    for child_col, parent_col in zip(fk.columns, fk.ref_columns, strict=True):
        a, b = plan.choices[child_col].type, parent.choices[parent_col].type
        if not _same_family(a, b):
            return f"{what}: {child_col} is {a.sql()} but {fk.ref_table}.{parent_col} is {b.sql()}"
    return None


def _index_problem(ix: Index, kinds: dict[str, TargetColumnRef]) -> str | None:
    """Why etl apply could not create this SQLite index in PostgreSQL, or None."""
    for key in ix.keys:
        if key.column is None and translate_index_key(key.expression or "", kinds) is None:
            return f"its expression {key.expression} has no PostgreSQL equivalent"
    if ix.where and translate_expression(ix.where, kinds) is None:
        return f"its WHERE clause ({ix.where}) has no PostgreSQL equivalent"
    return None


def _index_yaml(ix: Index, kinds: dict[str, TargetColumnRef], naming: Naming, named: bool = True) -> str:
    """The index as a spec entry, exactly: each key a column, a column in descending order or
    under a collation, or a SQLite expression; its uniqueness and its WHERE (in PostgreSQL)."""
    parts = [f"name: {yaml_str(_fit(ix.name, naming))}"] if named else []
    parts.append(f"columns: [{', '.join(_index_key_yaml(k) for k in ix.keys)}]")
    if ix.unique:
        parts.append("unique: true")
    if ix.where:
        where = translate_expression(ix.where, kinds)
        assert where is not None
        parts.append(f"where: {yaml_str(where.as_string(None))}")
    return "{" + ", ".join(parts) + "}"


def _index_key_yaml(key: IndexKey) -> str:
    order = ", order: desc" if key.descending else ""
    if key.column is not None:
        return f"{{column: {yaml_str(key.column)}{order}}}" if order else yaml_str(key.column)
    collated = collation_of(key.expression or "")
    if collated is not None:
        column, collation = collated
        collate = f", collate: {collation.lower()}" if collation != "BINARY" else ""
        return f"{{column: {yaml_str(column)}{collate}{order}}}"
    return f"{{expression: {yaml_str(key.expression or '')}{order}}}"


# Records a finding about the table being rendered: (column or None for the table, message).
_FindingSink = Callable[[str | None, str], None]


def _render_table(
    plan: _TablePlan,
    profile: TableProfile | None,
    naming: Naming,
    plans: dict[str, _TablePlan],
    result: InitResult,
    marks: dict[tuple[str, str | None], list[str]],
) -> list[str]:
    table = plan.table

    def finding(column: str | None, message: str) -> None:
        result.findings.append(Finding(table.name, column, message))

    lines = _table_header_lines(plan, profile, marks, finding)
    kinds = {
        c.name: TargetColumnRef(plan.columns[c.name][0], plan.choices[c.name].type.kind)
        for c in table.columns
    }
    lines += _column_lines(plan, profile, naming, result, marks, finding)
    unique_lines = _unique_lines(plan, finding)
    lines += unique_lines
    if not any(s.startswith("indexes:") for s in plan.settings):
        lines += _index_lines(plan, kinds, naming, finding, unique_listed=bool(unique_lines))
    lines += _check_lines(plan, kinds, naming, finding)
    lines += _foreign_key_lines(plan, profile, plans, finding)
    lines += plan.search
    return lines


def _table_header_lines(
    plan: _TablePlan,
    profile: TableProfile | None,
    marks: dict[tuple[str, str | None], list[str]],
    finding: _FindingSink,
) -> list[str]:
    """The table's description, its name, and what it does about a missing or nullable primary key."""
    table = plan.table
    lines = [f"  # {_describe_table(table, profile)}", f"  {yaml_str(table.name)}:"]
    lines += [f"    # !! {comment_text(m)}" for m in marks.get((table.name, None), ())]
    if plan.target_note:
        lines.append(f"    # !! {comment_text(plan.target_note)}")
        finding(None, plan.target_note)
    if plan.target != table.name:
        lines.append(f"    name: {yaml_str(plan.target)}")
    lines += [f"    {setting}" for setting in plan.settings]
    if not table.primary_key and not any(s.startswith("primary_key:") for s in plan.settings):
        lines.append("    # !! No primary key: rows are loaded as they are.")
        finding(None, "has no primary key; rows are loaded as they are")
    if not plan.keep_primary_key:
        nulls = {c: cp.nulls for c in table.primary_key if profile and (cp := profile.column(c)) and cp.nulls}
        shown = ", ".join(f"{_n(n, 'NULL')} in {c}" for c, n in nulls.items())
        message = (
            f"primary key ({', '.join(table.primary_key)}) holds {shown} (SQLite allows it, PostgreSQL "
            "does not); made a unique constraint instead, which allows NULL as SQLite did"
        )
        lines.append(f"    # !! {comment_text(message)}")
        lines.append("    primary_key: []")
        finding(None, message)
    return lines


def _column_lines(
    plan: _TablePlan,
    profile: TableProfile | None,
    naming: Naming,
    result: InitResult,
    marks: dict[tuple[str, str | None], list[str]],
    finding: _FindingSink,
) -> list[str]:
    """`columns:`, one line per column: its settings, and a comment saying what was found."""
    table = plan.table
    lines = ["    columns:"]
    for column in table.columns:
        choice = plan.choices[column.name]
        target, renamed = plan.columns[column.name]
        settings = []
        notes = [choice.note] if choice.note else []
        notes += marks.get((table.name, column.name), [])
        surprise = choice.surprise or (table.name, column.name) in marks
        if target != target_name(column.name, naming):
            settings.append(f"name: {yaml_str(target)}")
            notes.append(renamed or "")
            surprise = True
            finding(column.name, renamed or "")
        declared = column.declared_type or "no declared type"
        # A type the data or a schema file chose is written; one the declared type gives anyway is
        # left to the spec's type_rules (and shown in the comment), so a rule added later applies.
        if (
            choice.surprise
            or column.name in plan.schema_typed
            or choice.type != default_pg_type(column.declared_type)
        ):
            settings.append(f"type: {yaml_value(choice.type.short())}")
        else:
            declared += f" -> {choice.type.short()}"
        if choice.converter:
            settings.append(f"converter: {choice.converter}")
        extra = plan.column_settings.get(column.name, ())
        settings += extra
        column_profile = profile.column(column.name) if profile else None
        if (
            not plan.keep_primary_key
            and column.name in table.primary_key
            and column_profile
            and column_profile.nulls
        ):
            settings.append("nullable: true")
        if (
            column.default is not None
            and not any(e.startswith("default:") for e in extra)
            and translate_default(column.default, choice.type.kind) is None
        ):
            settings.append("default: null")
            message = (
                f"default {column.default} has no PostgreSQL equivalent for {choice.type.sql()}; "
                "left out (set default: {sql: ...})"
            )
            notes.append(message)
            surprise = True
            finding(column.name, message)
        if column.generated is not None:
            message = _generated_note(plan, column)
            notes.append(message)
            if message.startswith("generated by"):
                finding(column.name, message)
                surprise = True
        line = f"      {yaml_str(column.name)}: {{{', '.join(settings)}}}"
        comment = comment_text(f"{declared}" + (f"; {'; '.join(notes)}" if notes else ""))
        lines.append(f"{line}  # {'!! ' if surprise else ''}{comment}")
        if choice.surprise:
            result.findings.append(Finding(table.name, column.name, choice.note or ""))
    return lines


def _generated_note(plan: _TablePlan, column: Column) -> str:
    """What becomes of a generated column: PostgreSQL generates it too, or it is a plain column."""
    kinds = {
        c.name: TargetColumnRef(plan.columns[c.name][0], plan.choices[c.name].type.kind)
        for c in plan.table.columns
    }
    staged = [c for c, choice in plan.choices.items() if loads_as_text(choice.type)]
    translates = translate_expression(column.generated or "", kinds, ascii_case=True) is not None
    if translates and not staged:
        virtual = "" if column.stored else " (VIRTUAL in SQLite: PostgreSQL stores it)"
        return f"GENERATED ALWAYS AS ({column.generated}) STORED{virtual}: PostgreSQL computes it"
    why = (
        f"{', '.join(staged)} loads as text and PostgreSQL converts it afterwards, which a generated "
        "column's inputs cannot (give it a type DuckDB writes, e.g. numeric(p,s))"
        if translates
        else "which has no exact PostgreSQL equivalent"
    )
    return (
        f"generated by SQLite as ({column.generated}), {why}: a plain column holding the loaded values; "
        "new rows get none computed (compute it in the app, or a trigger)"
    )


_JSON_VALID = re.compile(
    r'\bjson_valid\s*\(\s*("(?:[^"]|"")*"|`(?:[^`]|``)*`|\[[^\]]*\]|[^\W\d][\w$]*)\s*\)', re.IGNORECASE
)


def json_checked_columns(catalog: Catalog) -> list[tuple[str, str]]:
    """(table, column) of the text columns a CHECK asks to hold valid JSON: JSON_VALID(column)."""
    found = []
    for table in catalog.tables:
        by_name = {c.name.lower(): c for c in table.columns}
        for check in table.checks:
            for match in _JSON_VALID.finditer(check.expression):
                column = by_name.get(unquote_identifier(match.group(1)).lower())
                declared = column.declared_type.strip() if column is not None else ""
                if column is not None and declared and default_pg_type(declared).kind == "text":
                    found.append((table.name, column.name))
    return found


def _kinds(plan: _TablePlan) -> dict[str, TargetColumnRef]:
    return {
        c.name: TargetColumnRef(plan.columns[c.name][0], plan.choices[c.name].type.kind)
        for c in plan.table.columns
    }


def _carried_as_indexes(plan: _TablePlan) -> list[Index]:
    """Unique constraints comparing under a collation (NOCASE, RTRIM) that PostgreSQL gets as a
    unique index on what the collation compares."""
    kinds = _kinds(plan)
    return [
        ix
        for ix in plan.table.indexes
        if ix.is_constraint
        and ix.has_expressions
        and all(k.column is not None or translate_index_key(k.expression or "", kinds) for k in ix.keys)
    ]


def _unique_lines(plan: _TablePlan, finding: _FindingSink) -> list[str]:
    """Unique constraints (from CREATE TABLE): one PostgreSQL cannot make replaces the list. One
    comparing under a collation (NOCASE, RTRIM) is kept as a unique index on what the collation
    compares: without a `unique` list by itself, with one in the table's `indexes`."""
    table = plan.table
    lines: list[str] = []
    constraints = [ix for ix in table.indexes if ix.is_constraint]
    carried = {ix.name for ix in _carried_as_indexes(plan)}
    if any(ix.has_expressions and ix.name not in carried for ix in constraints) or not plan.keep_primary_key:
        entries: list[str] = []
        if not plan.keep_primary_key and not any(
            set(ix.columns) == set(table.primary_key) for ix in constraints
        ):
            entries.append(f"      - {_yaml_list(table.primary_key)}  # the primary key")
        for ix in constraints:
            if not ix.has_expressions:
                entries.append(f"      - {_yaml_list(ix.columns)}")
                continue
            shown = ", ".join(k.column or k.expression or "?" for k in ix.keys)
            if ix.name in carried:
                entries.append(
                    f"      # ({comment_text(shown)}): in `indexes`, as a unique index on what it compares"
                )
                continue
            message = (
                f"unique constraint ({shown}): it compares with a collation PostgreSQL cannot express exactly; "
                "left out"
            )
            entries.append(f"      # !! {comment_text(message)}")
            finding(None, message)
        lines.append("    unique:" if any(e.startswith("      -") for e in entries) else "    unique: []")
        lines += entries
    return lines


def _index_lines(
    plan: _TablePlan,
    kinds: dict[str, TargetColumnRef],
    naming: Naming,
    finding: _FindingSink,
    unique_listed: bool,
) -> list[str]:
    """Indexes (CREATE INDEX): the spec's list replaces SQLite's, so it is written out only when
    one of them has no PostgreSQL equivalent, or when the table's `unique` list is written and a
    unique constraint under a collation must become one of these indexes instead. Every index
    PostgreSQL can hold is written exactly."""
    lines: list[str] = []
    indexes = [ix for ix in plan.table.indexes if not ix.is_constraint]
    carried = _carried_as_indexes(plan) if unique_listed else []
    problems = {ix.name: _index_problem(ix, kinds) for ix in indexes}
    if any(problems.values()) or carried or plan.resorted:
        entries = [f"      # !! {comment_text(note)}" for note in plan.resorted]
        for note in plan.resorted:
            finding(None, note)
        for ix in indexes:
            problem = problems[ix.name]
            if problem is None:
                entries.append(f"      - {_index_yaml(ix, kinds, naming)}")
                continue
            message = f"index {ix.name}: {problem}; left out"
            entries.append(f"      # !! {comment_text(message)}")
            finding(None, message)
        # Unnamed: the index gets the name etl gives such a constraint without the lists.
        entries += [f"      - {_index_yaml(ix, kinds, naming, named=False)}" for ix in carried]
        lines.append("    indexes:" if any(e.startswith("      -") for e in entries) else "    indexes: []")
        lines += entries
    return lines


def _check_lines(
    plan: _TablePlan, kinds: dict[str, TargetColumnRef], naming: Naming, finding: _FindingSink
) -> list[str]:
    """CHECK constraints: the spec's list replaces SQLite's, so it is written out only when one
    has no exact PostgreSQL equivalent; that one is named, with its SQLite text."""
    table = plan.table
    translated = [
        (check, translate_expression(check.expression, kinds, ascii_case=True)) for check in table.checks
    ]
    if all(pg is not None for _, pg in translated):
        return []
    names = unique_check_names(
        plan.target,
        [(c, kinds[c.column].name if c.column in kinds else None) for c, pg in translated if pg is not None],
        naming,
    )
    entries = []
    for check, pg in translated:
        if pg is not None:
            entries.append(f"      - {{name: {yaml_str(names.pop(0))}, sql: {yaml_str(pg.as_string(None))}}}")
            continue
        where = f" on column {check.column}" if check.column else ""
        message = (
            f"CHECK ({check.expression}){where} has no exact PostgreSQL equivalent for the types chosen; "
            "left out (write it here as {sql: ...} in PostgreSQL"
            + (
                ", or make the column jsonb, whose type keeps JSON valid"
                if "json_valid" in check.expression.lower()
                else ""
            )
            + ")"
        )
        entries.append(f"      # !! {comment_text(message)}")
        finding(check.column, message)
    return ["    checks:" if any(e.startswith("      -") for e in entries) else "    checks: []", *entries]


def _foreign_key_lines(
    plan: _TablePlan, profile: TableProfile | None, plans: dict[str, _TablePlan], finding: _FindingSink
) -> list[str]:
    """Foreign keys: those PostgreSQL would refuse (missing parent rows, no unique key to point at,
    different types) are left out, and then the list is written out."""
    table = plan.table
    lines: list[str] = []
    orphaned = {id(o.foreign_key): o for o in (profile.orphans if profile else ())}
    reasons: dict[int, str] = {}
    for fk in table.foreign_keys:
        problem = _foreign_key_problem(fk, plan, plans)
        report = orphaned.get(id(fk))
        if problem is None and report is not None:
            problem = (
                f"({', '.join(fk.columns)}) -> {fk.ref_table}: {_n(report.rows, 'row')} with no matching "
                f"{fk.ref_table} row (e.g. {'; '.join(report.samples)})"
            )
        if problem is not None:
            reasons[id(fk)] = problem
    if reasons:
        kept = [fk for fk in table.foreign_keys if id(fk) not in reasons]
        lines.append(
            "    # !! Foreign keys PostgreSQL would refuse are left out below; the rows load as they are."
        )
        lines.append("    foreign_keys:" if kept else "    foreign_keys: []")
        for fk in table.foreign_keys:
            if id(fk) not in reasons:
                lines.append(f"      - {_fk_yaml(fk)}")
                continue
            lines.append(f"      # left out: {comment_text(reasons[id(fk)])}")
            lines.append(f"      # - {comment_text(_fk_yaml(fk))}")
            finding(None, f"foreign key {reasons[id(fk)]}; left out")
    return lines


def init_spec(
    sqlite_path: str | os.PathLike[str],
    output: str | os.PathLike[str],
    target_url: str | None = None,
    naming: Naming = Naming.KEEP,
    force: bool = False,
    sample_rows: int | None = None,
    prisma_schema: str | os.PathLike[str] | None = None,
    prisma_major: int | None = None,
) -> InitResult:
    """Write the spec for `sqlite_path` into `output`. With `prisma_schema`, as Prisma's postgresql
    provider lays the tables out, for the Prisma version `prisma_major` (default: the app's own,
    read beside the schema), and with the spec's `prisma:` project, whose baseline apply writes."""
    source = Path(sqlite_path)
    out = Path(output)
    if out.is_dir() and not out.is_symlink():
        raise EtlError(f"'{out}' is a directory; give the spec file's path with -o")
    check_writable_path(out)  # before profiling, which can take a while
    if out.exists() and not force:
        raise EtlError(f"'{out}' already exists; pass --force to overwrite it")
    catalog = introspect_sqlite(source)
    if not catalog.tables:
        raise SourceError(f"{no_tables_reason(source, catalog.views)}; no spec written")
    prisma_findings: list[Finding] = []
    prisma_types: dict[tuple[str, str], PgType] | None = None
    layout = None
    if prisma_schema is not None:
        from etl.init.prisma import prisma_version, read_prisma_file

        schema = read_prisma_file(Path(prisma_schema))
        version = (
            (prisma_major, f"--prisma-version {prisma_major}")
            if prisma_major is not None
            else prisma_version(Path(prisma_schema))
        )
        layout = prisma_layout(schema, catalog, version)
        catalog = replace(catalog, tables=tuple(t for t in catalog.tables if t.name not in layout.exclude))
        catalog, resorted = sorted_as_prisma(schema, catalog)
        layout = replace(layout, project=_prisma_project_lines(Path(prisma_schema), out), resorted=resorted)
        prisma_types, prisma_findings = prisma_column_types(schema, catalog)
        prisma_types, enum_findings = enum_misfits(source, prisma_types)
        prisma_findings += enum_findings
    # A text column whose CHECK asks for valid JSON (Django's JSONField) is meant to be jsonb, as
    # Django makes it on PostgreSQL: its type then keeps the JSON valid, and the check translates.
    json_checked = {key: parse_pg_type("jsonb") for key in json_checked_columns(catalog)}
    prisma_types = {**json_checked, **(prisma_types or {})} or None
    expected = dict(prisma_types or {})
    profiles = profile_sqlite(source, catalog, sample_rows, expected)
    out_dir = out.resolve().parent
    source_ref = os.path.relpath(source.resolve(), out_dir)
    # The schema goes beside the spec: a modeline into the installed package would break when
    # the spec moves, or etl is installed elsewhere or from a wheel.
    schema_ref = SCHEMA_FILE.name
    sampled = f"a sample of {sample_rows:,} rows per table" if sample_rows else "every row"
    header = (
        f"Written by `etl init` from {source.name} ({sampled} profiled).\n"
        "Lines marked !! are where the data surprised etl init; each says what it chose.\n"
        "A column without `type` takes it from type_rules, else from its declared type (after ->).\n"
        "Check it with `etl validate`, then `etl plan` and `etl apply`."
    )
    url = target_url or "${DATABASE_URL}"
    # A spec is shared, committed and readable by others: a password stays in the environment.
    secret = not _is_env_reference(url) and holds_password(url)
    if secret:
        url = "${DATABASE_URL}"
        header += "\ntarget.url reads $DATABASE_URL: the URL given to etl init holds a password."
    result = render_spec(
        catalog,
        profiles,
        source_ref,
        schema_ref,
        # The spec reads ${VAR} in target.url from the environment and $$ as $.
        url if _is_env_reference(url) else url.replace("$", "$$"),
        naming,
        prisma_types,
        header,
        prisma_findings,
        layout,
    )
    if secret:
        result.url_variable = "DATABASE_URL"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputFileError(f"cannot write '{out}': {exc.strerror or exc}") from exc
    # Checked beside the spec's place (its source path is relative to it), then put in place whole.
    staged = stage_file(out, result.text, default_mode())
    try:
        left = _left_to_edit(staged, catalog)
        if left:  # not expected: a safety net, so that nothing fails only at apply
            result.text += "\n# !! etl validate will still object to this spec:\n"
            result.text += "".join(f"# !! {comment_text(str(f))}\n" for f in left)
            result.findings += left
            staged.unlink()
            staged = stage_file(out, result.text, default_mode())
        replace_file(staged, out)
    finally:
        staged.unlink(missing_ok=True)
    result.schema_file = write_spec_schema(out.parent)
    return result


def write_spec_schema(directory: Path) -> Path:
    """Write the JSON Schema of spec files into `directory`, where a spec's modeline finds it."""
    path = directory / SCHEMA_FILE.name
    write_file(path, SCHEMA_FILE.read_text(encoding="utf-8"), default_mode())
    return path


def _left_to_edit(path: Path, catalog: Catalog) -> list[Finding]:
    """What `etl validate` would still object to in the written spec (nothing, normally), as
    findings: checked against the catalog, without reading the data again."""
    from etl.core.mapping import resolve
    from etl.run.validate import postgres_expression_problems, with_query_tables
    from etl.specfile.document import read_spec

    spec, problems = read_spec(path, {"DATABASE_URL": "postgresql://localhost/etl-init-check"})
    if spec is not None:
        catalog, found = with_query_tables(spec, catalog)
        problems = problems + found + postgres_expression_problems(spec)
        try:
            resolve(spec, catalog)
        except SpecError as exc:
            problems = problems + exc.problems
    return [
        Finding(problem.path or "spec", None, f"{problem.message} (edit the spec before etl apply)")
        for problem in dict.fromkeys(problems)
    ]


# Prisma keeps its migration history here: the SQLite one means nothing to the PostgreSQL database.
PRISMA_MIGRATIONS = "_prisma_migrations"


@dataclass(frozen=True)
class PrismaLayout:
    """What a spec says, beyond column types, so that the tables are laid out as Prisma's
    postgresql provider lays them out."""

    tables: dict[str, tuple[str, ...]] = field(default_factory=dict)  # YAML lines of a table's own
    columns: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)  # `key: value`s
    exclude: tuple[str, ...] = ()  # source tables left out
    project: tuple[str, ...] = ()  # the spec's `prisma:` lines
    # Per table: what the Prisma schema sorts otherwise than SQLite's indexes (sorted_as_prisma);
    # its index list is written out, as the schema sorts it.
    resorted: dict[str, tuple[str, ...]] = field(default_factory=dict)


def sorted_as_prisma(schema, catalog: Catalog) -> tuple[Catalog, dict[str, tuple[str, ...]]]:
    """The catalog with each index sorted as the Prisma schema sorts the index on the same
    columns (`field(sort: Desc)`), where SQLite's differs (a database made by an older schema, or
    by hand): Prisma on PostgreSQL would otherwise want to rebuild it. With what was changed, per
    table, said for the finding."""
    said: dict[str, tuple[str, ...]] = {}
    tables = []
    for table in catalog.tables:
        model = schema.model_for_table(table.name)
        declared: dict[tuple[str, ...], frozenset[str]] = {}
        for ix in (*model.indexes, *model.uniques) if model else ():
            columns = tuple(f.column if (f := model.field(n)) else n for n in ix.fields)
            declared[columns] = frozenset(f.column if (f := model.field(n)) else n for n in ix.descending)
        indexes, notes = [], []
        for ix in table.indexes:
            wanted = declared.get(ix.columns) if not ix.is_constraint and not ix.has_expressions else None
            if wanted is None or all(k.descending == (k.column in wanted) for k in ix.keys):
                indexes.append(ix)
                continue
            keys = tuple(replace(k, descending=k.column in wanted) for k in ix.keys)
            indexes.append(replace(ix, keys=keys))
            shown = ", ".join(f"{k.column}{' desc' if k.descending else ''}" for k in keys)
            notes.append(
                f"index {ix.name}: the Prisma schema sorts it ({shown}), SQLite's index differs; "
                "written as the Prisma schema sorts it, as Prisma makes it in PostgreSQL"
            )
        tables.append(replace(table, indexes=tuple(indexes)) if notes else table)
        if notes:
            said[table.name] = tuple(notes)
    return replace(catalog, tables=tuple(tables)), said


def prisma_layout(schema, catalog: Catalog, version: tuple[int, str] = (6, "")) -> PrismaLayout:
    """Prisma's defaults for `@default(now())`, its serial sequences for autoincrement ids, and
    its implicit many-to-many tables: Prisma 6 makes (A, B) the primary key `_AToB_AB_pkey`,
    earlier versions a unique index `_AToB_AB_unique`; both index B. `version`: Prisma's major
    version and where it was read (prisma_version)."""
    from etl.init.prisma import implicit_many_to_many, is_autoincrement

    columns: dict[tuple[str, str], tuple[str, ...]] = {}
    for table in catalog.tables:
        model = schema.model_for_table(table.name)
        for column in table.columns if model else ():
            f = model.field_for_column(column.name)
            if f is None:
                continue
            if f.type == "DateTime" and f.default is not None and re.sub(r"\s+", "", f.default) == "now()":
                # Prisma's own default: the session's time zone, as the app's Prisma Client sees it.
                columns[(table.name, column.name)] = ("default: {sql: CURRENT_TIMESTAMP}",)
            elif is_autoincrement(f):
                columns[(table.name, column.name)] = ("serial: true",)
    tables: dict[str, tuple[str, ...]] = {}
    for join in implicit_many_to_many(schema):
        if catalog.table(join.table) is not None:
            tables[join.table] = _join_table_layout(join.table, *version)
    exclude = (PRISMA_MIGRATIONS,) if catalog.table(PRISMA_MIGRATIONS) else ()
    return PrismaLayout(tables, columns, exclude)


def _prisma_project_lines(schema: Path, spec: Path) -> tuple[str, ...]:
    relative = os.path.relpath(schema.resolve(), spec.resolve().parent)
    return (
        "",
        "# The app's Prisma project: etl apply writes Prisma's baseline for the postgresql provider",
        "# (0_init/migration.sql and migration_lock.toml in the migrations folder beside the schema,",
        "# and 0_init's row in _prisma_migrations): see \"Moving a Prisma app\" in etl's README.",
        "prisma:",
        f"  schema: {yaml_str(relative)}",
    )


def _join_table_layout(table: str, major: int, source: str) -> tuple[str, ...]:
    b_index = f"{{name: {yaml_str(table + '_B_index')}, columns: [B]}}"
    if major >= 6:
        return (
            f"# Prisma {major}'s layout ({comment_text(source)}): primary key (A, B)",
            "primary_key: [A, B]",
            f"primary_key_name: {yaml_str(table + '_AB_pkey')}",
            f"indexes: [{b_index}]",
        )
    return (
        f"# Prisma {major}'s layout ({comment_text(source)}): a unique index on (A, B), no primary key",
        "primary_key: []",
        f"indexes: [{{name: {yaml_str(table + '_AB_unique')}, columns: [A, B], unique: true}}, {b_index}]",
    )


def prisma_column_types(schema, catalog: Catalog) -> tuple[dict[tuple[str, str], PgType], list[Finding]]:
    """(table, column) -> the PostgreSQL type Prisma's postgresql provider expects, from the
    Prisma schema; and what could not be matched."""
    from etl.init.prisma import implicit_many_to_many, postgres_type

    types: dict[tuple[str, str], PgType] = {}
    findings: list[Finding] = []
    joins = {join.table: join for join in implicit_many_to_many(schema)}
    for table in catalog.tables:
        if table.name in joins:
            # A and B hold the ids of the two models (a single-field id each).
            for letter, side in (("A", joins[table.name].a), ("B", joins[table.name].b)):
                ids = [f for f in side.columns if f.name in side.id_fields]
                if table.column(letter) is not None and len(ids) == 1:
                    types[(table.name, letter)] = parse_pg_type(postgres_type(ids[0], schema))
            continue
        model = schema.model_for_table(table.name)
        if model is None:
            findings.append(
                Finding(table.name, None, "has no model in the Prisma schema; types chosen from the data")
            )
            continue
        for column in table.columns:
            field = model.field_for_column(column.name)
            if field is None:
                findings.append(
                    Finding(table.name, column.name, f"has no field in Prisma model {model.name}")
                )
            elif (enum := schema.enum_named(field.type)) is not None:
                types[(table.name, column.name)] = PgType(enum.db_name, labels=tuple(enum.values))
            else:
                wanted = postgres_type(field, schema)
                try:
                    parse_pg_type(wanted)
                except UnknownType:
                    findings.append(
                        Finding(
                            table.name,
                            column.name,
                            f"Prisma expects {wanted}, which etl cannot create; type chosen from the data",
                        )
                    )
                    continue
                types[(table.name, column.name)] = parse_pg_type(wanted)
    return types, findings


def enum_misfits(
    source: Path, types: dict[tuple[str, str], PgType]
) -> tuple[dict[tuple[str, str], PgType], list[Finding]]:
    """Enum columns whose values are not all labels of their enum become text, with a finding."""
    from etl.duck import quote_ident
    from etl.sqlite.catalog import open_sqlite

    checked = dict(types)
    findings = []
    with open_sqlite(source) as con:
        for (table, column), pg in types.items():
            if pg.kind != "enum":
                continue
            c = quote_ident(column)
            labels = ", ".join("?" for _ in pg.labels or ())
            row = con.execute(
                f"SELECT count(*), min(quote({c})) FROM {quote_ident(table)} "
                f"WHERE {c} IS NOT NULL AND (typeof({c}) <> 'text' OR {c} NOT IN ({labels}))",
                pg.labels or (),
            ).fetchone()
            if row[0]:
                checked[(table, column)] = parse_pg_type("text")
                findings.append(
                    Finding(
                        table,
                        column,
                        f"holds {row[0]:,} values that are not labels of enum "
                        f"{pg.name} (e.g. {row[1]}); chose text",
                    )
                )
    return checked, findings
