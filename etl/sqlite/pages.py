"""Fingerprints of SQLite tables from the file's pages: a digest of the pages of each table's own
b-tree (interior, leaf and overflow pages, as SQLite's `dbstat` lists them) and of their numbers.
A table's rows live in exactly those pages, so equal fingerprints mean equal rows, and hashing
pages costs a fraction of decoding the rows (no value is parsed)."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from array import array
from pathlib import Path

from etl.sqlite.catalog import open_sqlite

# Pages read per system call: runs of consecutive pages (a table loaded at once is mostly one run).
_RUN_PAGES = 1024


def table_fingerprints(path: str | Path, tables: list[str]) -> dict[str, str] | None:
    """Each of `tables` (SQLite names, exactly as the schema spells them) that is an ordinary table,
    with the digest of its pages; None when the file's pages cannot be trusted to be its rows.

    The pages are read under one SQLite read transaction: in rollback journal mode it holds a
    SHARED lock, so no writer changes the file while it is read. In WAL mode the file holds only
    what was checkpointed: a committed transaction may still be in the -wal file, whose frames
    replace pages of the file. When the -wal file is empty once the read transaction has begun,
    the file is the snapshot (a reader whose snapshot needs WAL frames keeps them there until it
    ends, and a checkpoint cannot write a page a reader of the file alone still needs); otherwise
    no fingerprint is given and every table is compared row by row. Without `dbstat` (a SQLite
    built without it): None as well."""
    path = Path(path)
    found: dict[str, str] = {}
    with open_sqlite(path) as con:
        try:
            con.execute("BEGIN")
            try:
                return _fingerprints(con, path, tables, found)
            finally:
                con.execute("ROLLBACK")
        except (sqlite3.Error, OSError):
            return None


def _fingerprints(
    con: sqlite3.Connection, path: Path, tables: list[str], found: dict[str, str]
) -> dict[str, str] | None:
    rows = con.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND rootpage > 0 AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
    ).fetchall()  # also begins the read transaction: the snapshot is fixed from here on
    # A table's CREATE statement and the file's text encoding decide how its pages read as rows
    # (ALTER TABLE ADD COLUMN gives old rows the new column's default without touching them).
    (encoding,) = con.execute("PRAGMA encoding").fetchone()
    ordinary = {name: f"{encoding}\x00{text}" for name, text in rows}
    wal = Path(f"{path}-wal")
    if wal.exists() and wal.stat().st_size > 0:
        return None
    (page_size,) = con.execute("PRAGMA page_size").fetchone()
    fd = os.open(path, os.O_RDONLY)
    try:
        for name in tables:
            if name not in ordinary:
                continue  # a view, a virtual table, or no such table: nothing to fingerprint
            pages = sorted(p for (p,) in con.execute("SELECT pageno FROM dbstat WHERE name = ?", (name,)))
            if not pages:
                continue
            found[name] = _digest(fd, page_size, pages, ordinary[name])
    finally:
        os.close(fd)
    return found


def _digest(fd: int, page_size: int, pages: list[int], schema: str) -> str:
    """SHA-256 over how the pages read (`schema`), the page size, the page numbers and the pages'
    bytes in page order: a page that moved (VACUUM) or changed, or one more or fewer, changes it."""
    digest = hashlib.sha256(schema.encode("utf-8", "surrogatepass") + b"\x00")
    digest.update(page_size.to_bytes(4, "big"))
    digest.update(array("q", pages).tobytes())
    start = 0
    while start < len(pages):
        end = start + 1
        while end < len(pages) and end - start < _RUN_PAGES and pages[end] == pages[end - 1] + 1:
            end += 1
        size = page_size * (end - start)
        data = os.pread(fd, size, (pages[start] - 1) * page_size)
        if len(data) != size:
            raise OSError(f"short read of page {pages[start]}")
        digest.update(data)
        start = end
    return digest.hexdigest()
