"""Plain, frozen descriptions of a database, as introspection finds it: a source's catalog (tables,
columns, keys, indexes: what etl/sqlite/catalog.py reads) and a PostgreSQL schema's (the Pg*
values and TargetCatalog: what etl/postgres/catalog.py reads).

These are values: the planner and the tests build them as literals, no connection needed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, is_dataclass
from functools import cached_property
from typing import Any, Protocol, TypeVar


class _HasName(Protocol):
    @property
    def name(self) -> str: ...


_Named = TypeVar("_Named", bound=_HasName)


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    declared_type: str  # as written in the SQLite DDL, "" when none was declared
    nullable: bool = True
    default: str | None = None  # the default's SQL text exactly as SQLite keeps it
    generated: str | None = None  # a generated column's SQLite expression
    stored: bool = False  # a generated column that is STORED (else VIRTUAL)
    collation: str | None = None  # the COLLATE its definition declares (NOCASE, RTRIM, ...), in capitals


@dataclass(frozen=True, slots=True)
class ForeignKey:
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]
    on_delete: str = "NO ACTION"  # NO ACTION | RESTRICT | CASCADE | SET NULL | SET DEFAULT
    on_update: str = "NO ACTION"
    deferrable: str = ""  # "" | "DEFERRABLE" | "DEFERRABLE INITIALLY DEFERRED"


@dataclass(frozen=True)
class Check:
    """A CHECK constraint of CREATE TABLE: its SQLite expression, its name if it has one, and the
    column it was written on (None for a table constraint)."""

    expression: str
    name: str | None = None
    column: str | None = None


@dataclass(frozen=True, slots=True)
class IndexKey:
    """One element of an index: a column, or an expression SQLite wrote for it."""

    column: str | None
    expression: str | None = None
    descending: bool = False


@dataclass(frozen=True, slots=True)
class Index:
    name: str
    keys: tuple[IndexKey, ...]
    unique: bool = False
    where: str | None = None  # partial index predicate, SQLite SQL text
    is_constraint: bool = False  # came from a UNIQUE constraint in CREATE TABLE
    constraint_name: str | None = None  # that constraint's own name: CONSTRAINT name UNIQUE (...)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(k.column for k in self.keys if k.column is not None)

    @property
    def has_expressions(self) -> bool:
        return any(k.column is None for k in self.keys)


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()
    indexes: tuple[Index, ...] = ()
    autoincrement: bool = False
    without_rowid: bool = False
    sequence: int | None = None  # sqlite_sequence's value: AUTOINCREMENT never reuses ids below it
    checks: tuple[Check, ...] = ()
    query: str | None = None  # a table the spec defines by a SQLite query (`query:`), not stored
    # SQLite keeps the primary key in an index of its own (PRAGMA index_list's origin 'pk'): it is
    # not the rowid, even where it reads INTEGER PRIMARY KEY (written `... PRIMARY KEY DESC` on the
    # column, a quirk SQLite keeps).
    key_indexed: bool = False

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def rowid_alias(self) -> str | None:
        """The INTEGER PRIMARY KEY column that aliases SQLite's rowid, if there is one."""
        if self.without_rowid or self.key_indexed or len(self.primary_key) != 1:
            return None
        col = self.column(self.primary_key[0])
        if col is not None and col.declared_type.strip().upper() == "INTEGER":
            return col.name
        return None


@dataclass(frozen=True)
class SourceObject:
    """A view, trigger or virtual table of the source: what etl names rather than migrates."""

    kind: str  # "view" | "trigger" | "virtual table"
    name: str
    sql: str  # its CREATE statement, as SQLite keeps it
    table: str | None = None  # a trigger's table
    module: str | None = None  # a virtual table's module (fts5, rtree, ...)
    shadows: tuple[str, ...] = ()  # a virtual table's shadow tables, which hold its index
    content: str | None = None  # an FTS table's external content table ("" when contentless)
    # An FTS table's indexed columns (UNINDEXED ones left out) and its tokenize option as written.
    indexed: tuple[str, ...] = ()
    tokenize: str | None = None
    writes: tuple[str, ...] = ()  # the tables a trigger's body inserts into, updates or deletes from
    # A view's columns as SQLite names them (an FTS table's: every column, UNINDEXED ones too),
    # and the (table, column) pairs and views a view reads, as SQLite itself resolves them when
    # it prepares a query of the view.
    columns: tuple[str, ...] = ()
    reads: tuple[tuple[str, str], ...] = ()
    views_read: tuple[str, ...] = ()


@dataclass(frozen=True)
class Catalog:
    tables: tuple[Table, ...] = ()
    views: tuple[str, ...] = field(default=())
    objects: tuple[SourceObject, ...] = ()  # views, triggers and virtual tables, in source order

    @property
    def shadow_tables(self) -> dict[str, str]:
        """Each shadow table's name, and the virtual table it belongs to."""
        return {s: o.name for o in self.objects for s in o.shadows}

    def table(self, name: str) -> Table | None:
        return self._tables_by_name.get(name)

    @cached_property
    def _tables_by_name(self) -> dict[str, Table]:
        return _first_by_name(self.tables)


def _first_by_name(items: Iterable[_Named]) -> dict[str, _Named]:
    """Each name's first item: a lookup per name, where a scan of every item each time costs the
    square of their number (a catalog of thousands of tables)."""
    found: dict[str, _Named] = {}
    for item in items:
        found.setdefault(item.name, item)
    return found


# PostgreSQL: what a target schema holds, read from pg_catalog.


@dataclass(frozen=True, slots=True)
class PgColumn:
    name: str
    type: str  # format_type(), e.g. "timestamp(3) without time zone"
    nullable: bool
    default: str | None  # pg_get_expr() of the default
    identity: bool
    enum: str | None = None  # the enum type's name, for a column of an enum type
    generated: bool = False  # GENERATED ALWAYS AS (`default`) STORED


@dataclass(frozen=True, slots=True)
class PgConstraint:
    name: str
    kind: str  # "p" primary key, "u" unique, "f" foreign key, "c" check
    columns: tuple[str, ...]
    ref_table: str | None = None
    ref_columns: tuple[str, ...] = ()
    on_delete: str | None = None
    on_update: str | None = None
    # pg_get_constraintdef() of a check, and of a deferrable foreign key (where DEFERRABLE shows)
    definition: str | None = None


@dataclass(frozen=True, slots=True)
class PgIndex:
    name: str
    definition: str  # access method, keys and predicate, e.g. "btree (email) WHERE (active)"
    unique: bool


@dataclass(frozen=True, slots=True)
class PgTable:
    name: str
    columns: tuple[PgColumn, ...]
    constraints: tuple[PgConstraint, ...]
    indexes: tuple[PgIndex, ...]  # indexes that do not back a constraint

    def column(self, name: str) -> PgColumn | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def primary_key(self) -> PgConstraint | None:
        return next((c for c in self.constraints if c.kind == "p"), None)


@dataclass(frozen=True)
class PgView:
    name: str
    definition: str  # pg_get_viewdef(), read with the view's own schema as the search path


@dataclass(frozen=True)
class PgTrigger:
    name: str
    table: str
    # pg_get_triggerdef() and its function's body, read with the schema as the search path
    definition: str


@dataclass(frozen=True)
class TargetCatalog:
    schema: str
    exists: bool
    tables: tuple[PgTable, ...] = ()
    enums: tuple[tuple[str, tuple[str, ...]], ...] = ()
    views: tuple[PgView, ...] = ()
    triggers: tuple[PgTrigger, ...] = ()

    def trigger(self, table: str, name: str) -> PgTrigger | None:
        return next((t for t in self.triggers if t.table == table and t.name == name), None)

    def view(self, name: str) -> PgView | None:
        return next((v for v in self.views if v.name == name), None)

    def table(self, name: str) -> PgTable | None:
        return self._tables_by_name.get(name)

    @cached_property
    def _tables_by_name(self) -> dict[str, PgTable]:
        return _first_by_name(self.tables)


# --- the catalog as JSON, for etl's record of the desired schema ------------------------------


def catalog_document(catalog: TargetCatalog) -> dict[str, Any]:
    """`catalog` as a JSON document: each value with its class name, every tuple a list."""
    encoded = _encoded(catalog)
    assert isinstance(encoded, dict)
    return encoded


def catalog_from_document(document: object) -> TargetCatalog:
    """The TargetCatalog of catalog_document(); ValueError when the document is not one (made by
    another version of etl, or edited)."""
    try:
        catalog = _decoded(document)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not a catalog document: {exc}") from exc
    if not isinstance(catalog, TargetCatalog):
        raise ValueError("not a catalog document")
    return catalog


def catalog_json(catalog: TargetCatalog) -> str:
    """catalog_document(catalog) as JSON text, written one object at a time: the document never
    exists as dicts and lists all at once, which for thousands of tables is several times the
    size of its text."""
    return json.dumps(catalog, default=_encoded_object)


def catalog_from_json(text: str | bytes) -> TargetCatalog:
    """The TargetCatalog of catalog_json() (or of catalog_document() as JSON), each object built as
    soon as it is read, so that the parsed document is never whole; ValueError as
    catalog_from_document."""
    try:
        catalog = json.loads(text, object_hook=_decoded_object)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not a catalog document: {exc}") from exc
    if not isinstance(catalog, TargetCatalog):
        raise ValueError("not a catalog document")
    return catalog


def _encoded_object(value: object) -> dict[str, Any]:
    """One value class's object, one level deep: json.dumps writes its tuples as lists and asks
    again for the objects inside."""
    if is_dataclass(value) and not isinstance(value, type):
        return {"class": type(value).__name__} | {f.name: getattr(value, f.name) for f in fields(value)}
    raise TypeError(f"{type(value).__name__} is not part of a catalog")


def _decoded_object(found: dict[str, Any]) -> object:
    cls = _CATALOG_CLASSES[found.pop("class")]
    return cls(**{name: _tupled(v) for name, v in found.items()})


def _tupled(value: object) -> object:
    return tuple(_tupled(v) for v in value) if isinstance(value, list) else value


def _encoded(value: object) -> object:
    if is_dataclass(value) and not isinstance(value, type):
        return {"class": type(value).__name__} | {
            f.name: _encoded(getattr(value, f.name)) for f in fields(value)
        }
    if isinstance(value, tuple):
        return [_encoded(v) for v in value]
    return value


def _decoded(value: object) -> object:
    if isinstance(value, list):
        return tuple(_decoded(v) for v in value)
    if isinstance(value, dict):
        found = dict(value)
        cls = _CATALOG_CLASSES[found.pop("class")]
        return cls(**{name: _decoded(v) for name, v in found.items()})
    return value


# Every value class of this module, by name: what a catalog document may hold.
_CATALOG_CLASSES: dict[str, type] = {
    name: cls
    for name, cls in list(globals().items())
    if isinstance(cls, type) and is_dataclass(cls) and cls.__module__ == __name__
}
