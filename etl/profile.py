"""What a SQLite database actually holds, column by column: storage classes, datetime conventions,
integer ranges, and foreign keys whose parent row is missing.

One scan per table, computed inside SQLite (aggregates over typeof() and a few GLOBs), so
profiling costs about as much as reading the table once.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from .duck import quote_ident
from .model import Catalog, ForeignKey, Table
from .source import open_sqlite
from .types import sqlite_affinity

# Integers of this magnitude are epoch milliseconds / microseconds (see convert._datetime_us).
_MS, _US = 100_000_000_000, 100_000_000_000_000
_ISO_GLOB = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*"


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
    iso_texts: int = 0  # text starting YYYY-MM-DD
    iso_offsets: int = 0  # ... ending in Z or +hh:mm
    epoch_seconds: int = 0
    epoch_milliseconds: int = 0
    epoch_microseconds: int = 0
    julian_reals: int = 0
    # booleans and numbers written as text
    boolean_texts: int = 0  # 'true'/'false'/'t'/'f'
    integer_texts: int = 0  # text that is a decimal integer
    number_texts: int = 0  # text that is a decimal number
    json_texts: int = 0  # text that is a JSON object or array
    samples: tuple[str, ...] = ()  # a few values that do not fit the declared type, quoted

    @property
    def non_null(self) -> int:
        return self.integers + self.reals + self.texts + self.blobs

    @property
    def other_texts(self) -> int:
        """Text that is neither a datetime nor a number: what breaks numeric or datetime targets."""
        return self.texts - max(self.iso_texts, self.number_texts)


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

    def column(self, name: str) -> ColumnProfile | None:
        return next((c for c in self.columns if c.name == name), None)


_METRICS = {
    "nulls": "typeof({c}) = 'null'",
    "integers": "typeof({c}) = 'integer'",
    "reals": "typeof({c}) = 'real'",
    "texts": "typeof({c}) = 'text'",
    "blobs": "typeof({c}) = 'blob'",
    "iso_texts": f"typeof({{c}}) = 'text' AND {{c}} GLOB '{_ISO_GLOB}'",
    "iso_offsets": (
        f"typeof({{c}}) = 'text' AND {{c}} GLOB '{_ISO_GLOB}' "
        "AND ({c} GLOB '*[Zz]' OR {c} GLOB '*[T ]*[+-][0-9][0-9]:[0-9][0-9]' OR {c} GLOB '*[T ]*[+-][0-9][0-9][0-9][0-9]')"
    ),
    "epoch_seconds": f"typeof({{c}}) = 'integer' AND abs({{c}}) < {_MS}",
    "epoch_milliseconds": f"typeof({{c}}) = 'integer' AND abs({{c}}) >= {_MS} AND abs({{c}}) < {_US}",
    "epoch_microseconds": f"typeof({{c}}) = 'integer' AND abs({{c}}) >= {_US}",
    "julian_reals": "typeof({c}) = 'real' AND {c} BETWEEN 1721059.5 AND 5373484.5",
    "boolean_texts": "typeof({c}) = 'text' AND lower({c}) IN ('true', 'false', 't', 'f')",
    "integer_texts": "typeof({c}) = 'text' AND {c} <> '' AND ltrim({c}, '+-') NOT GLOB '*[^0-9]*' AND ltrim({c}, '+-') <> ''",
    "number_texts": (
        "typeof({c}) = 'text' AND {c} <> '' AND CAST({c} AS NUMERIC) || '' <> '' "
        "AND ltrim({c}, '+-') NOT GLOB '*[^0-9.eE+-]*' AND ltrim({c}, '+-') GLOB '*[0-9]*'"
    ),
    "json_texts": "typeof({c}) = 'text' AND ({c} GLOB '{{*' OR {c} GLOB '[[]*') AND json_valid({c})",
}


_DATETIME = (
    "iso_texts",
    "iso_offsets",
    "epoch_seconds",
    "epoch_milliseconds",
    "epoch_microseconds",
    "julian_reals",
)
_NUMERIC = ("boolean_texts", "integer_texts", "number_texts")


def _details_for(declared: str, storage: dict[str, int], json: bool = False) -> tuple[str, ...]:
    """The detailed metrics worth a second look at a column, given its storage classes: datetime
    conventions only for datetime columns, numbers written as text only where the declared type
    is not text, JSON only where declared."""
    upper = declared.upper()
    chosen: list[str] = []
    if any(word in upper for word in ("DATE", "TIME")) and (
        storage["integers"] or storage["reals"] or storage["texts"]
    ):
        chosen += _DATETIME
    elif sqlite_affinity(declared) in ("INTEGER", "REAL", "NUMERIC") and storage["texts"]:
        chosen += _NUMERIC
    if ("JSON" in upper or json) and storage["texts"]:
        chosen.append("json_texts")
    return tuple(chosen)


def _scan(con: sqlite3.Connection, source: str, items: list[str]) -> tuple:
    return con.execute(f"SELECT {', '.join(items) or '1'} FROM {source}").fetchone()


def profile_table(
    con: sqlite3.Connection,
    table: Table,
    sample_rows: int | None = None,
    json_columns: frozenset[str] = frozenset(),
) -> TableProfile:
    """Two scans: storage classes and integer ranges of every column (cheap aggregates), then the
    detailed metrics only for the columns whose storage classes call for them."""
    source = quote_ident(table.name)
    if sample_rows and not table.without_rowid:
        # A sample spread over the table, not its first rows (old rows are often the cleanest).
        count = con.execute(f"SELECT count(*) FROM {source}").fetchone()[0]
        step = max(1, count // sample_rows)
        if step > 1:
            source = f"(SELECT * FROM {source} WHERE rowid % {step} = 0)"
    items = ["count(*)"]
    for column in table.columns:
        c = quote_ident(column.name)
        items += [
            f"count({c})",
            f"coalesce(sum(typeof({c}) = 'integer'), 0)",
            f"coalesce(sum(typeof({c}) = 'real'), 0)",
            f"coalesce(sum(typeof({c}) = 'text'), 0)",
            f"min(CASE WHEN typeof({c}) = 'integer' THEN {c} END)",
            f"max(CASE WHEN typeof({c}) = 'integer' THEN {c} END)",
        ]
    first = _scan(con, source, items)
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
    wanted = {
        c.name: _details_for(c.declared_type, storage[c.name], c.name in json_columns) for c in table.columns
    }
    detail_items = [
        f"coalesce(sum({_METRICS[m].format(c=quote_ident(name))}), 0)"
        for name, ms in wanted.items()
        for m in ms
    ]
    details = iter(_scan(con, source, detail_items) if detail_items else ())
    profiles = []
    for column in table.columns:
        counts = {m: next(details) for m in wanted[column.name]}
        low, high = ranges[column.name]
        profiles.append(
            ColumnProfile(column.name, **storage[column.name], **counts, int_min=low, int_max=high)
        )
    return TableProfile(table.name, rows, tuple(profiles))


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
        f"'{k}=' || quote(c.{quote_ident(k) if k != 'rowid' else 'rowid'})" for k in keys
    )
    samples = tuple(
        r[0] for r in con.execute(f"SELECT {label} FROM {child} AS c WHERE {where} LIMIT {limit}")
    )
    return OrphanReport(fk, count, samples)


def profile_sqlite(
    path: str | Path,
    catalog: Catalog,
    sample_rows: int | None = None,
    json_columns: frozenset[tuple[str, str]] = frozenset(),
) -> dict[str, TableProfile]:
    """Profiles of every table; `json_columns` (table, column) are also checked for JSON text."""
    profiles = {}
    with open_sqlite(path) as con:
        con.text_factory = lambda b: b.decode("utf-8", errors="replace")
        for table in catalog.tables:
            wanted_json = frozenset(c for t, c in json_columns if t == table.name)
            profile = profile_table(con, table, sample_rows, wanted_json)
            orphans = []
            for fk in table.foreign_keys:
                if catalog.table(fk.ref_table) is None or not fk.ref_columns:
                    continue
                report = find_orphans(con, table, fk)
                if report:
                    orphans.append(report)
            profiles[table.name] = TableProfile(profile.name, profile.rows, profile.columns, tuple(orphans))
    return profiles
