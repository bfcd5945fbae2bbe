"""Read a SQLite file, strictly read-only, into a Catalog."""

from __future__ import annotations

import json
import math
import os
import re
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

from etl.duck import quote_ident
from etl.errors import SourceError
from etl.model import Catalog, Check, Column, ForeignKey, Index, IndexKey, SourceObject, Table
from etl.settings import Deferral, ForeignKeyAction
from etl.sqlite.ddl import (
    has_autoincrement,
    index_parts,
    part_checks,
    part_collation,
    part_column,
    part_foreign_key,
    part_generated,
    part_named_unique,
    strip_quoted,
    table_parts,
    unquote_identifier,
)

_FK_ACTIONS = {a.value: a for a in ForeignKeyAction}


# What SQLite (or DuckDB's sqlite scanner, which quotes SQLite) says of a file whose pages are damaged.
_CORRUPT = ("database disk image is malformed", "file is not a database")


def corrupt_source_error(path: str | Path, message: str) -> SourceError | None:
    """The error for a SQLite file that turns out to be damaged while it is read (`message` is
    SQLite's or DuckDB's), or None when `message` says something else."""
    found = next((c for c in _CORRUPT if c in message), None)
    if found is None:
        return None
    return SourceError(
        f"the SQLite file '{path}' is corrupt ({found}): restore it from a backup, or recover what "
        f"is readable with: sqlite3 '{path}' .recover | sqlite3 recovered.db"
    )


def _read_error(path: Path, exc: sqlite3.Error) -> SourceError | None:
    """A SourceError for what is the file's state rather than etl's doing: damaged, locked, gone."""
    name = getattr(exc, "sqlite_errorname", "")
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return corrupt_source_error(path, str(exc)) or corrupt_source_error(path, _CORRUPT[0])
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return SourceError(f"SQLite file '{path}' is locked by another process; retry when it is released")
    if name.startswith(("SQLITE_IOERR", "SQLITE_CANTOPEN")):
        return SourceError(f"cannot read SQLite file '{path}': {exc}")
    return None


@contextmanager
def open_sqlite(path: str | Path, *, any_thread: bool = False) -> Iterator[sqlite3.Connection]:
    """A read-only connection: mode=ro never writes, not even to a WAL file an app keeps open.
    `any_thread`: the connection may be closed by another thread than the one that uses it."""
    path = Path(path)
    if not path.exists():
        raise SourceError(f"SQLite file '{path}' does not exist")
    if not path.is_file():
        raise SourceError(f"'{path}' is not a file")
    try:
        con = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5, check_same_thread=not any_thread
        )
    except sqlite3.Error as exc:
        raise SourceError(f"cannot open SQLite file '{path}': {exc}") from exc
    try:
        try:
            con.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError as exc:
            if "not a database" in str(exc):
                raise SourceError(f"'{path}' is not a SQLite database") from exc
            raise _read_error(path, exc) or SourceError(f"cannot read SQLite file '{path}': {exc}") from exc
        try:
            yield con
        except sqlite3.Error as exc:
            # The header and schema may read well and a page further on be damaged: any read of
            # the file (validation, init, plan) can be the first to meet it.
            error = _read_error(path, exc)
            if error is None:
                raise
            raise error from exc
    finally:
        con.close()


def introspect_sqlite(path: str | Path) -> Catalog:
    with open_sqlite(path) as con:
        try:
            return _read_catalog(con)
        except sqlite3.Error as exc:
            raise SourceError(f"cannot read the schema of '{path}': {exc}") from exc


def _read_catalog(con: sqlite3.Connection) -> Catalog:
    rows = con.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master "
        "WHERE type IN ('table', 'view', 'trigger') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid"
    ).fetchall()
    # SQLite matches table and column names case-insensitively (ASCII letters only), so a foreign
    # key may spell its parent `user(ID)` for a table "User" with a column "id".
    names = {_fold(name): name for kind, name, _table, _sql in rows if kind == "table"}
    objects = [_source_object(kind, name, table, sql, names) for kind, name, table, sql in rows]
    found = [o for o in objects if o is not None]
    shadows = {_fold(s) for o in found for s in o.shadows}
    ordinary = [
        (name, sql)
        for (kind, name, _table, sql), obj in zip(rows, objects, strict=True)
        if kind == "table" and obj is None and sql and _fold(name) not in shadows
    ]
    pragmas = _Pragmas(con, [name for name, _sql in ordinary])
    tables = [_read_table(pragmas, name, sql, names) for name, sql in ordinary]
    found = [_with_reads(con, o) if o.kind == "view" else o for o in found]
    views = [o.name for o in found if o.kind == "view"]
    return Catalog(tables=tuple(tables), views=tuple(views), objects=tuple(found))


class _Pragmas:
    """What SQLite's PRAGMAs say of many tables, read in one query per PRAGMA for all of them
    (a query per table and index costs more than its answer in a schema of thousands of tables),
    then looked up by name. A table asked about later (a foreign key's parent that is no ordinary
    table) is read on its own."""

    def __init__(self, con: sqlite3.Connection, tables: list[str]):
        self.con = con
        self.columns: dict[str, list[tuple]] = {}
        self.foreign_keys: dict[str, list[tuple]] = {name: [] for name in tables}
        self.indexes: dict[str, list[tuple]] = {name: [] for name in tables}
        self.index_keys: dict[str, list[tuple]] = {}
        self.index_sql: dict[str, str | None] = dict(
            con.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index'").fetchall()
        )
        if not tables:
            return
        listed = json.dumps(tables)
        try:
            for name, *row in con.execute(
                'SELECT j.value, p.cid, p.name, p.type, p."notnull", p.dflt_value, p.pk, p.hidden '
                "FROM json_each(?) AS j, pragma_table_xinfo(j.value) AS p",
                (listed,),
            ):
                self.columns.setdefault(name, []).append(tuple(row))
        except sqlite3.OperationalError:  # SQLite before 3.26 (no table_xinfo) or without JSON
            self.columns = {}
            self.foreign_keys, self.indexes = {}, {}
            return
        for name, *row in con.execute(
            "SELECT j.value, p.* FROM json_each(?) AS j, pragma_foreign_key_list(j.value) AS p", (listed,)
        ):
            self.foreign_keys[name].append(tuple(row))
        for name, *row in con.execute(
            'SELECT j.value, p.seq, p.name, p."unique", p.origin, p.partial '
            "FROM json_each(?) AS j, pragma_index_list(j.value) AS p",
            (listed,),
        ):
            self.indexes[name].append(tuple(row))
        index_names = json.dumps([row[1] for rows in self.indexes.values() for row in rows])
        for name, *row in con.execute(
            "SELECT j.value, p.* FROM json_each(?) AS j, pragma_index_xinfo(j.value) AS p", (index_names,)
        ):
            self.index_keys.setdefault(name, []).append(tuple(row))

    def columns_info(self, name: str) -> list[tuple]:
        if name not in self.columns:
            self.columns[name] = _columns_info(self.con, name)
        return [r for r in self.columns[name] if r[6] in (0, 2, 3)]

    def foreign_key_list(self, name: str) -> list[tuple]:
        if name not in self.foreign_keys:
            self.foreign_keys[name] = _pragma(self.con, "foreign_key_list", name)
        return self.foreign_keys[name]

    def index_list(self, name: str) -> list[tuple]:
        if name not in self.indexes:
            self.indexes[name] = _pragma(self.con, "index_list", name)
        return self.indexes[name]

    def index_xinfo(self, index: str) -> list[tuple]:
        if index not in self.index_keys:
            self.index_keys[index] = _pragma(self.con, "index_xinfo", index)
        return self.index_keys[index]

    def sqlite_sequence(self, name: str) -> int | None:
        row = self.con.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None


def _with_reads(con: sqlite3.Connection, view: SourceObject) -> SourceObject:
    """The view with its columns and what it reads, as SQLite resolves them preparing a query of
    it (its authorizer is told each column read, and through which view): exact, where reading
    the SQL text would have to resolve unqualified names and `*` itself. A view SQLite cannot
    prepare (it names a table that is gone) reads nothing it can tell."""
    reads: dict[tuple[str, str], None] = {}  # read by the view itself (tables and views)
    through: dict[str, None] = {}  # views read on the way, directly or not

    def authorize(action: int, arg1: str | None, arg2: str | None, _db: str | None, inner: str | None) -> int:
        if action == sqlite3.SQLITE_READ and arg1 is not None and inner is not None:
            if inner == view.name:
                reads[(arg1, arg2 or "")] = None
            else:
                through[inner] = None
        return sqlite3.SQLITE_OK

    query = f"SELECT * FROM {quote_ident(view.name)}"
    con.set_authorizer(authorize)
    try:
        columns = tuple(d[0] for d in con.execute(query + " LIMIT 0").description or ())
    except sqlite3.Error:
        return view
    finally:
        con.set_authorizer(None)
    return replace(view, columns=columns, reads=tuple(reads), views_read=tuple(through))


def query_tables(path: str | Path, queries: dict[str, str]) -> tuple[dict[str, Table], dict[str, str]]:
    """Tables the spec defines by a SQLite query, each as a Table of the query's columns (declared
    types as SQLite derives them: a column's own where the query reads one, none for computed
    ones); and, for a query SQLite refuses, why. Each query is prepared as a TEMP view, which
    lives on the read-only connection only: the file is never written."""
    tables: dict[str, Table] = {}
    refused: dict[str, str] = {}
    if not queries:
        return tables, refused
    with open_sqlite(path) as con:
        for number, (name, query) in enumerate(queries.items()):
            view = quote_ident(f"etl_query_{number}")
            try:
                con.execute(f"CREATE TEMP VIEW {view} AS {query}")
                info = con.execute(f"PRAGMA temp.table_info({view})").fetchall()
                con.execute(f"SELECT * FROM {view} LIMIT 0")  # names a missing table or column now
            except sqlite3.Error as exc:
                refused[name] = f"SQLite refuses the query: {exc}"
                continue
            columns = tuple(Column(row[1], row[2] or "") for row in info)
            tables[name] = Table(name, columns, without_rowid=True, query=query)
    return tables, refused


# The shadow tables each kind of virtual table keeps its index in (`<name>_<suffix>`).
_SHADOWS = {
    "fts3": ("content", "segments", "segdir"),
    "fts4": ("content", "segments", "segdir", "docsize", "stat"),
    "fts5": ("data", "idx", "content", "docsize", "config"),
    "rtree": ("node", "parent", "rowid"),
    "rtree_i32": ("node", "parent", "rowid"),
    "geopoly": ("node", "parent", "rowid"),
}
_VIRTUAL = re.compile(r"\s*CREATE\s+VIRTUAL\s+TABLE\b.*?\bUSING\s+(\w+)", re.IGNORECASE | re.DOTALL)
_CONTENT_OPTION = re.compile(
    r"[(,]\s*content\s*=\s*('(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|[\w$]+)", re.IGNORECASE
)


def _source_object(
    kind: str, name: str, table: str, sql: str | None, names: dict[bytes, str]
) -> SourceObject | None:
    """A view, trigger or virtual table as a SourceObject; None for an ordinary table."""
    if kind == "view":
        return SourceObject(kind, name, sql or "")
    if kind == "trigger":
        return SourceObject(kind, name, sql or "", table, writes=_trigger_writes(sql or "", names))
    virtual = _VIRTUAL.match(sql or "")
    if virtual is None:
        return None
    module = virtual.group(1).lower()
    shadows = tuple(
        names[_fold(f"{name}_{suffix}")]
        for suffix in _SHADOWS.get(module, ())
        if _fold(f"{name}_{suffix}") in names
    )
    content = None
    columns: tuple[str, ...] = ()
    indexed: tuple[str, ...] = ()
    tokenize = None
    if module.startswith("fts"):
        option = _CONTENT_OPTION.search(sql or "")
        content = unquote_identifier(option.group(1)) if option else None
        if content is not None:
            content = names.get(_fold(content), content)
        columns, indexed, tokenize = _fts_arguments(sql or "")
    return SourceObject(
        "virtual table",
        name,
        sql or "",
        None,
        module,
        shadows,
        content,
        columns=columns,
        indexed=indexed,
        tokenize=tokenize,
    )


_WRITE = re.compile(
    r"\b(?:INSERT\s+(?:OR\s+\w+\s+)?INTO|REPLACE\s+INTO|DELETE\s+FROM|UPDATE(?:\s+OR\s+\w+)?)\s+"
    r"(\"(?:[^\"]|\"\")*\"|`(?:[^`]|``)*`|\[[^\]]*\]|'(?:[^']|'')*'|[\w$]+)",
    re.IGNORECASE,
)


def _trigger_writes(sql: str, names: dict[bytes, str]) -> tuple[str, ...]:
    """The tables the body of CREATE TRIGGER writes to, by their names in the catalog."""
    body = re.search(r"\bBEGIN\b", strip_quoted(sql), re.IGNORECASE)
    if body is None:
        return ()
    found: dict[str, None] = {}
    blanked = strip_quoted(sql)
    for match in _WRITE.finditer(sql, body.end()):
        if blanked[match.start()] == " ":  # inside a string or a comment
            continue
        written = unquote_identifier(match.group(1))
        found[names.get(_fold(written), written)] = None
    return tuple(found)


def _fts_arguments(sql: str) -> tuple[tuple[str, ...], tuple[str, ...], str | None]:
    """An FTS table's columns, those of them it indexes, and its tokenize option: each argument
    of USING fts5(...) is a column (`body`, `body UNINDEXED`) or an option (`tokenize = 'porter'`,
    `content=docs`)."""
    columns: list[str] = []
    indexed: list[str] = []
    tokenize = None
    for part in table_parts(sql):
        option = re.match(r"\s*([\w$]+)\s*=\s*(.*)$", part, re.DOTALL)
        if option is not None:
            if option.group(1).lower() == "tokenize":
                tokenize = unquote_identifier(option.group(2).strip())
            continue
        column = part_column(part)
        if column is None:
            continue
        columns.append(column)
        if not re.search(r"\bUNINDEXED\b", strip_quoted(part), re.IGNORECASE):
            indexed.append(column)
    return tuple(columns), tuple(indexed), tokenize


def _fold(name: str) -> bytes:
    """A name as SQLite compares names: ASCII letters case-insensitively, everything else exactly."""
    return name.encode("utf-8", "surrogatepass").lower()


def _pragma(con: sqlite3.Connection, pragma: str, name: str) -> list[tuple]:
    # Table-valued pragma functions take the name as a bound value: no quoting of user names.
    return con.execute(f"SELECT * FROM pragma_{pragma}(?)", (name,)).fetchall()


def _columns_info(con: sqlite3.Connection, name: str) -> list[tuple]:
    """cid, name, type, notnull, dflt_value, pk, hidden of every column, generated ones included.

    table_info leaves out generated columns (`b INT AS (a * 2)`); table_xinfo lists them with
    hidden = 2 (VIRTUAL) or 3 (STORED). Their values are read like any other: PostgreSQL computes
    them again where the expression translates, and verification compares both sides.
    """
    try:
        rows = _pragma(con, "table_xinfo", name)  # ..., hidden
    except sqlite3.OperationalError:  # SQLite before 3.26
        return [(*r, 0) for r in _pragma(con, "table_info", name)]
    return [r for r in rows if r[6] in (0, 2, 3)]


def _read_table(pragmas: _Pragmas, name: str, sql: str, names: dict[bytes, str]) -> Table:
    info = pragmas.columns_info(name)  # cid, name, type, notnull, dflt_value, pk, hidden
    parts = table_parts(sql)
    generated = {
        _fold(column): found
        for part in parts
        if (column := part_column(part)) is not None and (found := part_generated(part)) is not None
    }
    collations = {
        _fold(column): collation
        for part in parts
        if (column := part_column(part)) is not None and (collation := part_collation(part)) is not None
    }
    columns = tuple(
        Column(
            name=r[1],
            declared_type=r[2] or "",
            nullable=not r[3] and r[5] == 0,
            default=r[4],
            # hidden 2: VIRTUAL, 3: STORED
            generated=generated[_fold(r[1])][0] if r[6] in (2, 3) and _fold(r[1]) in generated else None,
            stored=r[6] == 3,
            collation=collations.get(_fold(r[1])),
        )
        for r in info
    )
    without_rowid = re.search(r"\bWITHOUT\s+ROWID\b", strip_quoted(sql), re.IGNORECASE) is not None
    pk = tuple(r[1] for r in sorted((r for r in info if r[5] > 0), key=lambda r: r[5]))
    # SQLite lets PRIMARY KEY columns hold NULL (a historical bug it keeps) except the rowid alias
    # and WITHOUT ROWID tables; PostgreSQL does not, so such NULLs are reported at load time.
    autoincrement = has_autoincrement(sql)
    sequence = pragmas.sqlite_sequence(name) if autoincrement else None
    checks = tuple(
        Check(expression, check_name, part_column(part))
        for part in parts
        for check_name, expression in part_checks(part)
    )
    return Table(
        name=name,
        columns=columns,
        primary_key=pk,
        foreign_keys=_with_deferrable(_read_foreign_keys(pragmas, name, names), parts),
        indexes=_with_constraint_names(_read_indexes(pragmas, name), parts),
        autoincrement=autoincrement,
        without_rowid=without_rowid,
        key_indexed=any(
            origin == "pk" for _seq, _name, _unique, origin, _partial in pragmas.index_list(name)
        ),
        sequence=sequence,
        checks=checks,
    )


def _with_constraint_names(indexes: tuple[Index, ...], parts: list[str]) -> tuple[Index, ...]:
    """The indexes of UNIQUE constraints with the constraints' own names, which PRAGMA index_list
    does not say (it names them sqlite_autoindex_*): read from CREATE TABLE, matched by columns."""
    named: dict[tuple[bytes, ...], list[str]] = {}
    for part in parts:
        found = part_named_unique(part)
        if found is not None:
            named.setdefault(tuple(_fold(c) for c in found[1]), []).append(found[0])
    out = []
    for ix in indexes:
        names = (
            named.get(tuple(_fold(c) for c in ix.columns))
            if ix.is_constraint and not ix.has_expressions
            else None
        )
        out.append(replace(ix, constraint_name=names.pop(0)) if names else ix)
    return tuple(out)


def _with_deferrable(fks: tuple[ForeignKey, ...], parts: list[str]) -> tuple[ForeignKey, ...]:
    """The foreign keys with how each defers, which PRAGMA foreign_key_list does not say: read
    from the REFERENCES clause of CREATE TABLE with the same child columns."""
    deferring = {}
    for part in parts:
        found = part_foreign_key(part)
        if found is not None:
            deferring[tuple(_fold(c) for c in found[0])] = found[1]
    none = Deferral.NOT_DEFERRABLE
    return tuple(
        replace(fk, deferrable=deferring.get(tuple(_fold(c) for c in fk.columns), none)) for fk in fks
    )


def _read_foreign_keys(pragmas: _Pragmas, name: str, names: dict[bytes, str]) -> tuple[ForeignKey, ...]:
    grouped: dict[int, list[tuple]] = {}
    for row in pragmas.foreign_key_list(name):  # id, seq, table, from, to, upd, del, match
        grouped.setdefault(row[0], []).append(row)
    fks = []
    for _fk_id, parts in sorted(grouped.items(), key=lambda kv: kv[0], reverse=True):
        parts.sort(key=lambda r: r[1])
        # `table` and `to` are spelled as the REFERENCES clause wrote them; the parent's own
        # spelling is what the rest of etl (and PostgreSQL, where names are exact) knows.
        ref_table = names.get(_fold(parts[0][2]), parts[0][2])
        parent = pragmas.columns_info(ref_table) if _fold(ref_table) in names else []
        parent_columns = {_fold(r[1]): r[1] for r in parent}
        ref_columns = tuple(r[4] for r in parts)
        if any(c is None for c in ref_columns):
            # REFERENCES parent with no column list means the parent's primary key.
            ref_columns = tuple(r[1] for r in sorted((r for r in parent if r[5] > 0), key=lambda r: r[5]))
        else:
            ref_columns = tuple(parent_columns.get(_fold(c), c) for c in ref_columns)
        on_update, on_delete = parts[0][5].upper(), parts[0][6].upper()
        fks.append(
            ForeignKey(
                columns=tuple(r[3] for r in parts),
                ref_table=ref_table,
                ref_columns=ref_columns,
                on_delete=_FK_ACTIONS.get(on_delete, ForeignKeyAction.NO_ACTION),
                on_update=_FK_ACTIONS.get(on_update, ForeignKeyAction.NO_ACTION),
            )
        )
    return tuple(fks)


def _read_indexes(pragmas: _Pragmas, table: str) -> tuple[Index, ...]:
    indexes = []
    # index_list: seq, name, unique, origin ('c' CREATE INDEX, 'u' UNIQUE, 'pk'), partial
    for _seq, index_name, unique, origin, _partial in reversed(pragmas.index_list(table)):
        if origin == "pk" and not _collated(pragmas, index_name):
            continue  # the primary key itself; one under a collation is kept as a unique constraint too
        xinfo = [r for r in pragmas.index_xinfo(index_name) if r[5]]  # key columns only
        index_sql = pragmas.index_sql.get(index_name)
        key_texts, where = index_parts(index_sql) if index_sql else ([], None)
        keys = []
        for position, (_seqno, cid, col_name, desc, coll, _key) in enumerate(xinfo):
            if cid == -2:  # an expression: keep SQLite's text of it
                text = key_texts[position] if position < len(key_texts) else "?"
                text = re.sub(r"\s+(ASC|DESC)\s*$", "", text, flags=re.IGNORECASE)
                keys.append(IndexKey(column=None, expression=text, descending=bool(desc)))
            elif cid == -1:  # the rowid itself, which is not a column that is migrated
                keys.append(IndexKey(column=None, expression="rowid", descending=bool(desc)))
            elif coll and coll.upper() != "BINARY":
                # A collation (NOCASE, RTRIM) changes what the index considers equal: a UNIQUE
                # index on `email COLLATE NOCASE` rejects 'A@x' next to 'a@x'. Kept as an
                # expression, so it is translated or reported, never silently dropped.
                keys.append(
                    IndexKey(
                        column=None,
                        expression=f"{quote_ident(col_name)} COLLATE {coll}",
                        descending=bool(desc),
                    )
                )
            else:
                keys.append(IndexKey(column=col_name, descending=bool(desc)))
        indexes.append(
            Index(
                name=index_name,
                keys=tuple(keys),
                unique=bool(unique),
                where=where,
                is_constraint=origin in ("u", "pk"),
            )
        )
    return tuple(indexes)


def _collated(pragmas: _Pragmas, index_name: str) -> bool:
    """Does a key of the index compare under a collation other than BINARY?"""
    return any(r[5] and r[4] and r[4].upper() != "BINARY" for r in pragmas.index_xinfo(index_name))


def rowid_bounds(con: sqlite3.Connection, table: str, rowid: str) -> tuple[int, int] | None:
    """The smallest and largest rowid of `table` (SQL: a quoted name or a subquery), None when it
    is empty. Two subqueries: SQLite reads min() or max() alone from the b-tree's end, both at once
    by a scan."""
    row = con.execute(
        f"SELECT (SELECT min({rowid}) FROM {table}), (SELECT max({rowid}) FROM {table})"
    ).fetchone()
    return None if row[0] is None else (int(row[0]), int(row[1]))


def rowid_ranges(low: int, high: int, width: int) -> list[tuple[int, int]]:
    """[low, high] in consecutive ranges of `width` rowids (the last one shorter)."""
    width = max(1, width)
    return [(start, min(start + width - 1, high)) for start in range(low, high + 1, width)]


ROWID_MIN, ROWID_MAX = -(2**63), 2**63 - 1


def covering_ranges(low: int, high: int, width: int) -> list[tuple[int, int]]:
    """rowid_ranges, with the first range open below and the last open above: rows the app writes
    after the bounds were read (it may still be running) fall in one of them, not outside all."""
    ranges = rowid_ranges(low, high, width)
    ranges[0] = (ROWID_MIN, ranges[0][1])
    ranges[-1] = (ranges[-1][0], ROWID_MAX)
    return ranges


def per_core_ranges(bounds: tuple[int, int] | None, from_rows: int) -> list[tuple[int, int]]:
    """One rowid range per core (covering the table), for a table of at least `from_rows` rowids
    (else none), so that each core's connection scans its own part at once."""
    cores = os.cpu_count() or 1
    if bounds is None or bounds[1] - bounds[0] < from_rows or cores == 1:
        return []
    low, high = bounds
    return covering_ranges(low, high, (high - low) // cores + 1)


def integer_magnitudes(
    con: sqlite3.Connection,
    table: str,
    where: str | None,
    expressions: list[str],
    relation: str | None = None,  # what to read instead of the table (a query: `(...) AS "t"`)
) -> list[tuple[int | None, int | None]]:
    """(smallest, largest) absolute integer each SQLite expression yields over the rows, one scan."""
    from etl.duck import quote_ident

    if not expressions:
        return []
    row = _magnitudes_row(
        con, relation or quote_ident(table), f"({where})" if where else "true", expressions, ()
    )
    return [(row[2 * i], row[2 * i + 1]) for i in range(len(expressions))]


def integer_magnitudes_in_ranges(
    con: sqlite3.Connection,
    table: str,
    rowid: str,
    where: str | None,
    expressions: list[str],
    ranges: tuple[tuple[int, int], ...],
) -> list[tuple[int | None, int | None]]:
    """integer_magnitudes over only the rows whose rowid lies in `ranges` (inclusive, disjoint):
    one seek of the table's b-tree per range, the range's bounds bound as values."""
    from etl.duck import quote_ident

    if not expressions:
        return []
    found: list[tuple[int | None, int | None]] = [(None, None)] * len(expressions)
    condition = f"{quote_ident(rowid)} BETWEEN ? AND ?" + (f" AND ({where})" if where else "")
    for low, high in ranges:
        row = _magnitudes_row(con, quote_ident(table), condition, expressions, (low, high))
        found = [widest([before, (row[2 * i], row[2 * i + 1])]) for i, before in enumerate(found)]
    return found


def _magnitude(e: str) -> str:
    # abs() of the smallest 64-bit integer overflows in SQLite; its magnitude is 2**63.
    return f"CASE WHEN {e} = -9223372036854775807 - 1 THEN 9223372036854775807 ELSE abs({e}) END"


def _magnitudes_row(
    con: sqlite3.Connection, relation: str, where: str, expressions: list[str], parameters: tuple
) -> tuple:
    items = []
    for e in expressions:
        magnitude = _magnitude(e)
        # FILTER rather than a CASE around it, which costs SQLite more CPU per value. Every number
        # sorts before every text (and NULL compares as nothing), so `< ''` keeps only integers
        # and reals, and SQLite compares the storage class before it looks at a text's bytes:
        # cheaper than typeof() for the text that fills a datetime column. '' stays text beside
        # a column of NUMERIC affinity (it is no number), and no collation sorts a text before it.
        integer = f"FILTER (WHERE +({e}) < '' AND typeof({e}) = 'integer')"
        items += [f"min({magnitude}) {integer}", f"max({magnitude}) {integer}"]
    return con.execute(f"SELECT {', '.join(items)} FROM {relation} WHERE {where}", parameters).fetchone()


def widest(parts: Iterable[tuple[int | None, int | None]]) -> tuple[int | None, int | None]:
    """The smallest of the (smallest, largest) pairs' first values and the largest of their second
    (None where every pair has None): magnitudes measured in parts, as one measure of all."""
    parts = list(parts)
    smallest = [low for low, _ in parts if low is not None]
    largest = [high for _, high in parts if high is not None]
    return (min(smallest) if smallest else None, max(largest) if largest else None)


# Rows an integer witness is looked for in, from the first: a column whose first rows hold no
# integer gets none (the next re-sync then measures it whole), rather than a scan of every row.
WITNESS_ROWS = 100_000


def integer_witnesses(
    con: sqlite3.Connection, table: str, rowid: str, where: str | None, expressions: list[str]
) -> list[tuple[int, int] | None]:
    """Per expression, (rowid, absolute value) of the first row among the first WITNESS_ROWS (that
    `where` keeps) where it yields an integer; None where none of those rows does."""
    from etl.duck import quote_ident

    found: list[tuple[int, int] | None] = []
    for e in expressions:
        magnitude = _magnitude(e)
        query = (
            f"SELECT etl_rowid, etl_magnitude FROM (SELECT {quote_ident(rowid)} AS etl_rowid, "
            f"typeof({e}) AS etl_type, {magnitude} AS etl_magnitude FROM {quote_ident(table)}"
            + (f" WHERE ({where})" if where else "")
            + f" LIMIT {int(WITNESS_ROWS)}) WHERE etl_type = 'integer' LIMIT 1"
        )
        row = con.execute(query).fetchone()
        found.append(None if row is None else (int(row[0]), int(row[1])))
    return found


def negative_zero_runs(
    con: sqlite3.Connection, relation: str, rowid: str, expressions: list[str]
) -> list[tuple[tuple[int, int], ...]]:
    """For each SQLite expression, the rowid ranges over `relation` within which every zero real
    it yields is -0.0, one scan. SQLite's SQL sees no sign of a zero, Python's float does: only
    the zeros come back to Python, so a table without any costs one scan inside SQLite."""
    if not expressions:
        return []
    # The comparison first: it costs SQLite less than typeof(), and rules out nearly every value.
    zero = [f"({e} = 0 AND typeof({e}) = 'real')" for e in expressions]
    items = ", ".join(f"CASE WHEN {z} THEN {e} END" for z, e in zip(zero, expressions, strict=True))
    query = f"SELECT {rowid}, {items} FROM {relation} WHERE {' OR '.join(zero)} ORDER BY {rowid}"
    runs: list[list[tuple[int, int]]] = [[] for _ in expressions]
    open_run: list[bool] = [False] * len(expressions)  # the last zero seen was -0.0
    for row in con.execute(query):
        for i, value in enumerate(row[1:]):
            if value is None:
                continue
            if math.copysign(1.0, value) > 0:
                open_run[i] = False
            elif open_run[i]:
                runs[i][-1] = (runs[i][-1][0], row[0])
            else:
                runs[i].append((row[0], row[0]))
                open_run[i] = True
    return [tuple(r) for r in runs]


# What a stamp reads of each file: the database header's file change counter and the version it
# is valid for (offsets 24 and 92), the WAL header (salts and checkpoint sequence: they change when
# the WAL starts over), and the first copy of the WAL index header in -shm (its change counter and
# last committed frame move with every commit in WAL mode, where the database header stays).
# -shm's size and time are left out: readers write their read marks into it.
_STAMPED = (("", ((24, 4), (92, 4)), True), ("-wal", ((0, 32),), True), ("-shm", ((0, 48),), False))

SourceStamp = tuple[tuple[int, int, int, bytes] | None, ...]


def source_stamp(path: str | Path) -> SourceStamp:
    """What changes when a transaction commits to the SQLite file at `path` (in rollback journal or
    WAL mode), and nothing else: equal stamps taken before and after reading the file mean every
    read saw the same rows. A change the stamp cannot tell apart (a file replaced, an -shm that
    appeared) makes it differ: it errs only towards "changed"."""
    parts: list[tuple[int, int, int, bytes] | None] = []
    for suffix, spans, timed in _STAMPED:
        try:
            with open(f"{path}{suffix}", "rb") as f:
                st = os.fstat(f.fileno())
                head = b"".join(_read_at(f, offset, size) for offset, size in spans)
        except FileNotFoundError:
            parts.append(None)
            continue
        parts.append((st.st_ino, st.st_size, st.st_mtime_ns, head) if timed else (st.st_ino, 0, 0, head))
    return tuple(parts)


def _read_at(f: BinaryIO, offset: int, size: int) -> bytes:
    f.seek(offset)
    return f.read(size)


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_JSON_BRACKETS = re.compile(r"[\[\]{}]")


def json_depth(text: str) -> int:
    """How deeply arrays and objects nest in the JSON `text` (0 for a scalar), without recursion."""
    depth = deepest = 0
    for bracket in _JSON_BRACKETS.findall(_JSON_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def deepest_json(
    path: str | Path,
    table: str,
    where: str | None,
    key_sql: tuple[tuple[str, str], ...],
    columns: list[tuple[str, str]],
    at_least: int,
    relation: str | None = None,  # what to read instead of the table (a query: `(...) AS "t"`)
) -> tuple[str, str, int] | None:
    """The row key (as in messages: `id=7`), column and depth of the most deeply nested JSON value
    in `columns` ((name, SQLite expression) pairs) of `table`, if one nests `at_least` levels."""
    found: tuple[str, str, int] | None = None
    keys = ", ".join(f"quote({expr})" for _label, expr in key_sql) or "NULL"
    with open_sqlite(path) as con:
        con.text_factory = lambda b: b.decode("utf-8", "replace")
        for name, expr in columns:
            # A value nesting n levels is at least 2n characters long: only those are measured.
            query = f"SELECT {keys}, {expr} FROM {relation or quote_ident(table)} WHERE length(CAST({expr} AS BLOB)) >= ?"
            if where:
                query += f" AND ({where})"
            for *key, value in con.execute(query, (2 * at_least,)):
                depth = json_depth(value) if isinstance(value, str) else 0
                if depth >= at_least and (found is None or depth > found[2]):
                    label = ", ".join(f"{label}={k}" for (label, _), k in zip(key_sql, key, strict=False))
                    found = (label, name, depth)
    return found
