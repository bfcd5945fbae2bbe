"""The spec settings a user picks from a fixed list: how an existing table is brought up to date
(`mode`), what a row that cannot arrive exactly does (`on_error`), how datetime values are read
(`converter`), how source names become target names (`naming`), and what a foreign key does when
its parent row is deleted or updated (`on_delete`, `on_update`).

This module imports nothing, beside errors.py and model.py at the bottom of the import chain,
because every layer decides by these settings: the spec reader produces them, the SQLite value
conversion (convert.py) and the mapping read them, the planner and the run modules act on them.
Defined in spec.py they would make convert.py import the spec; defined in model.py they would mix
the user's choices into the description of a database.

The JSON Schema (schemas/etl-spec.schema.json) stays the source of the allowed strings: it
validates the YAML before these are built, and tests/test_settings.py checks that both list the
same values. A StrEnum member is its string (equal, hashed, formatted and JSON-encoded as the
value), so plans, reports and written specs print exactly what the spec says.
"""

from enum import StrEnum


class Mode(StrEnum):
    """How a table that already exists in the target is brought up to date."""

    SYNC = "sync"  # insert new rows, update changed ones, delete those gone from the source
    UPSERT = "upsert"  # insert and update, never delete
    APPEND = "append"  # insert the rows past the target's largest watermark
    REPLACE = "replace"  # drop the table and load it again whenever anything differs


class OnError(StrEnum):
    """What a row whose value cannot arrive exactly does."""

    FAIL = "fail"  # fails the run
    REJECT = "reject"  # is set aside in the reject report and etl.rejects; the rest loads


class Converter(StrEnum):
    """How a column's values are read: a datetime column's integers, reals and text, a bytea
    column's base64 text, or a text column's blobs."""

    AUTO = "auto"  # per value: ISO text, epoch integers in the column's unit, julian-day reals
    ISO = "iso"  # ISO text only
    EPOCH_SECONDS = "epoch_seconds"
    EPOCH_MILLISECONDS = "epoch_milliseconds"
    EPOCH_MICROSECONDS = "epoch_microseconds"
    JULIAN_DAY = "julian_day"
    BASE64 = "base64"  # bytea from base64 text: each value decoded, canonical base64 only
    UTF8 = "utf8"  # text from blobs too: each blob's bytes read as UTF-8 text


_DATETIME_KINDS = ("timestamp", "timestamptz", "date")


def converter_applies(converter: Converter, kind: str) -> str | None:
    """None when `converter` can read values into a column of the PostgreSQL type kind `kind`
    (PgType.kind), else the types it applies to, for a message."""
    if converter == Converter.AUTO:
        return None
    if converter == Converter.BASE64:
        return None if kind == "bytea" else "bytea"
    if converter == Converter.UTF8:
        return None if kind == "text" else "text"
    return None if kind in _DATETIME_KINDS else "timestamp and date"


class Naming(StrEnum):
    """How source names become target names."""

    KEEP = "keep"  # exactly, quoted where needed
    LOWER = "lower"
    SNAKE = "snake"  # camelCase and spaces to snake_case


class Deferral(StrEnum):
    """When PostgreSQL checks a foreign key: at each statement, or (deferrable) at COMMIT. The
    values are the words DDL writes after the key; a spec says `not deferrable`, `deferrable` or
    `initially deferred` (specfile/document.py's DEFERRABLE)."""

    NOT_DEFERRABLE = ""
    DEFERRABLE = "DEFERRABLE"
    INITIALLY_DEFERRED = "DEFERRABLE INITIALLY DEFERRED"


class ForeignKeyAction(StrEnum):
    """What a foreign key does to the child rows when its parent row is deleted or updated. The
    values are SQL's keywords; a spec writes them in lower case."""

    NO_ACTION = "NO ACTION"
    RESTRICT = "RESTRICT"
    CASCADE = "CASCADE"
    SET_NULL = "SET NULL"
    SET_DEFAULT = "SET DEFAULT"
