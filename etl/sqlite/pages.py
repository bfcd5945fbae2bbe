"""Fingerprints of SQLite tables from the file's pages: a digest of the pages of each table's own
b-tree (interior, leaf and overflow pages, as SQLite's `dbstat` lists them) and of their numbers.
A table's rows live in exactly those pages, so equal fingerprints mean equal rows, and hashing
pages costs a fraction of decoding the rows (no value is parsed).

A rowid table also gets a digest per range of its leaf pages (`PageRanges`): the leaves of a
rowid table's b-tree hold its rows in rowid order, so the rows whose rowid lies between the last
rowid of one range's pages and the last rowid of the next are exactly the rows in the next
range's pages (with the overflow pages their large rows continue on). A range whose bounds and
digest are those of a range recorded earlier holds the same rows as then; a re-sync compares only
the other ranges' rows."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import struct
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from etl.sqlite.catalog import open_sqlite

# Pages read per system call: runs of consecutive pages (a table loaded at once is mostly one run).
_RUN_PAGES = 1024

# Ranges recorded per table at most: a larger table's ranges hold several leaf pages each. One
# leaf page per range keeps a change's range small (a few dozen rows); the cap bounds the record.
MAX_RANGES = 65_536

# Tables of fewer leaf pages get no ranges: comparing all their rows costs about as little.
MIN_RANGES = 16

# Rowid bounds of the first and last range: open below and above (rows inserted past the last
# rowid, or before the first, fall in them).
LOWEST, HIGHEST = -(2**63), 2**63 - 1

_LEAF_TABLE = 13  # b-tree page type of a table's leaf page
_RANGE = struct.Struct(">q32s")  # a range as recorded: its last rowid, its digest

T = TypeVar("T")


@dataclass(frozen=True)
class PageRanges:
    """A rowid table's leaf pages in rowid order, cut into ranges: each range's last rowid and the
    digest of its pages. Range k covers rowids from last[k-1] + 1 (LOWEST for the first) to
    last[k] (HIGHEST for the last): together they cover every rowid there can be."""

    last: tuple[int, ...]
    digests: tuple[bytes, ...]

    def bounds(self) -> list[tuple[int, int, bytes]]:
        """(first rowid, last rowid, digest) of each range, the first and last open-ended."""
        found = []
        for k, digest in enumerate(self.digests):
            low = LOWEST if k == 0 else self.last[k - 1] + 1
            high = HIGHEST if k == len(self.digests) - 1 else self.last[k]
            found.append((low, high, digest))
        return found

    def to_bytes(self) -> bytes:
        return b"".join(
            _RANGE.pack(last, digest) for last, digest in zip(self.last, self.digests, strict=True)
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> PageRanges:
        items = list(_RANGE.iter_unpack(data))
        return cls(tuple(last for last, _ in items), tuple(digest for _, digest in items))


def changed_ranges(recorded: PageRanges, current: PageRanges) -> tuple[int, tuple[tuple[int, int], ...]]:
    """How many ranges of `current` may hold rows other than `recorded`'s, and their rowids: each
    range that was not recorded with the same bounds and the same digest (pages that changed,
    split, moved or appeared), adjacent ones merged (inclusive bounds)."""
    known = set(recorded.bounds())
    count, merged = 0, list[tuple[int, int]]()
    for low, high, digest in current.bounds():
        if (low, high, digest) in known:
            continue
        count += 1
        if merged and merged[-1][1] + 1 == low:
            merged[-1] = (merged[-1][0], high)
        else:
            merged.append((low, high))
    return count, tuple(merged)


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
    return _each_table(path, tables, _fingerprint)


def _fingerprint(con: sqlite3.Connection, fd: int, page_size: int, name: str, schema: str) -> str | None:
    pages = sorted(p for (p,) in con.execute("SELECT pageno FROM dbstat WHERE name = ?", (name,)))
    return _digest(fd, page_size, pages, schema) if pages else None


# Reads one table's pages: (connection, the file's descriptor, page size, table, how its pages
# read as rows) -> what is recorded for it, or None for nothing.
_ReadTable = Callable[[sqlite3.Connection, int, int, str, str], T | None]


def _each_table(path: str | Path, tables: list[str], read: _ReadTable[T]) -> dict[str, T] | None:
    """`read` of each of `tables` that is an ordinary table, under one read transaction (see
    table_fingerprints); None when the file's pages cannot be trusted to be its rows."""
    path = Path(path)
    with open_sqlite(path) as con:
        try:
            con.execute("BEGIN")
            try:
                return _read_each(con, path, tables, read)
            finally:
                con.execute("ROLLBACK")
        except (sqlite3.Error, OSError):
            return None


def _read_each(
    con: sqlite3.Connection, path: Path, tables: list[str], read: _ReadTable[T]
) -> dict[str, T] | None:
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
    found: dict[str, T] = {}
    fd = os.open(path, os.O_RDONLY)
    try:
        for name in tables:
            if name not in ordinary:
                continue  # a view, a virtual table, or no such table: nothing to read
            value = read(con, fd, page_size, name, ordinary[name])
            if value is not None:
                found[name] = value
    finally:
        os.close(fd)
    return found


def _digest(fd: int, page_size: int, pages: list[int], schema: str) -> str:
    """SHA-256 over how the pages read (`schema`), the page size, the page numbers and the pages'
    bytes in page order: a page that moved (VACUUM) or changed, or one more or fewer, changes it."""
    digest = _digest_prefix(page_size, pages, schema)
    for _, data in _runs(fd, page_size, pages):
        digest.update(data)
    return digest.hexdigest()


def _digest_prefix(page_size: int, pages: Sequence[int], schema: str) -> hashlib._Hash:
    """_digest before the pages' bytes."""
    digest = hashlib.sha256(schema.encode("utf-8", "surrogatepass") + b"\x00")
    digest.update(page_size.to_bytes(4, "big"))
    digest.update(array("q", pages).tobytes())
    return digest


def table_ranges(path: str | Path, tables: list[str]) -> dict[str, PageRanges] | None:
    """Each of `tables` that is a rowid table with rows, with its ranges of leaf pages; None when
    the file's pages cannot be trusted to be its rows (as for table_fingerprints, whose read
    transaction and WAL rule this follows). Reading them costs more than a table's digest (each
    leaf page is hashed alone and its last rowid read): a plan asks only for tables whose digest
    moved."""
    return _each_table(path, tables, _table_ranges)


def _table_ranges(
    con: sqlite3.Connection, fd: int, page_size: int, name: str, schema: str
) -> PageRanges | None:
    listed = con.execute(
        "SELECT pageno, pagetype, path FROM dbstat WHERE name = ? AND pagetype IN ('leaf', 'overflow')",
        (name,),
    )
    leaves = _LeafPages(page_size, listed)
    if not leaves.pages:
        return None
    for first, data in _runs(fd, page_size, leaves.pages):
        leaves.add(first, data)
    return leaves.ranges(schema)


def table_fingerprints_and_ranges(
    path: str | Path, tables: list[str], ranged: set[str]
) -> tuple[dict[str, str], dict[str, PageRanges]] | None:
    """table_fingerprints of `tables`, and table_ranges of those among them in `ranged`, from one
    read of each table's pages (what an apply records): equal to the two read apart. None when
    the file's pages cannot be trusted to be its rows."""

    def read(
        con: sqlite3.Connection, fd: int, page_size: int, name: str, schema: str
    ) -> tuple[str, PageRanges | None] | None:
        if name not in ranged:
            digest = _fingerprint(con, fd, page_size, name, schema)
            return None if digest is None else (digest, None)
        return _fingerprint_and_ranges(con, fd, page_size, name, schema)

    found = _each_table(path, tables, read)
    if found is None:
        return None
    prints = {name: digest for name, (digest, _) in found.items()}
    ranges = {name: pages for name, (_, pages) in found.items() if pages is not None}
    return prints, ranges


def _fingerprint_and_ranges(
    con: sqlite3.Connection, fd: int, page_size: int, name: str, schema: str
) -> tuple[str, PageRanges | None] | None:
    """The table's digest (as _digest) and ranges (as _table_ranges), its pages read once."""
    listed = con.execute("SELECT pageno, pagetype, path FROM dbstat WHERE name = ?", (name,))
    leaves = _LeafPages(page_size, listed)
    if not leaves.pages:
        return None
    digest = _digest_prefix(page_size, leaves.pages, schema)
    for first, data in _runs(fd, page_size, leaves.pages):
        digest.update(data)
        leaves.add(first, data)
    return digest.hexdigest(), leaves.ranges(schema)


def _runs(fd: int, page_size: int, pages: Sequence[int]) -> Iterator[tuple[int, bytes]]:
    """(first page number, bytes) of each run of consecutive pages among `pages` (sorted)."""
    start = 0
    while start < len(pages):
        end = start + 1
        while end < len(pages) and end - start < _RUN_PAGES and pages[end] == pages[end - 1] + 1:
            end += 1
        size = page_size * (end - start)
        data = os.pread(fd, size, (pages[start] - 1) * page_size)
        if len(data) != size:
            raise OSError(f"short read of page {pages[start]}")
        yield pages[start], data
        start = end


def _varint(data: bytes | memoryview, at: int) -> tuple[int, int]:
    """SQLite's variable-length integer at `at`: (value, offset after it)."""
    value = 0
    for i in range(8):
        byte = data[at + i]
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, at + i + 1
    return (value << 8) | data[at + 8], at + 9


def _last_rowid_in(data: bytes, page: int, header: int) -> int | None:
    """The last rowid of the cells of the table leaf page at offset `page` of `data`, its b-tree
    header at `header` within the page (None: not a table leaf, or empty). Only the last cell's
    pointer and the two varints that begin the cell are read."""
    at = page + header
    if data[at] != _LEAF_TABLE:
        return None
    cells = (data[at + 3] << 8) | data[at + 4]
    if cells == 0:
        return None
    pointer = at + 8 + 2 * (cells - 1)
    _, cell = _varint(data, page + ((data[pointer] << 8) | data[pointer + 1]))  # the payload's size
    value, _ = _varint(data, cell)
    return value - (1 << 64) if value >= 1 << 63 else value


class _LeafPages:
    """The pages of a rowid table's b-tree from dbstat's listing of them (`listed`: page number,
    type, path), in the order dbstat walks the tree: its leaves come in key order, each followed
    by the overflow pages of its cells. `pages`: every listed page, in page order, to be read in
    runs (`add`): each leaf's and overflow page's SHA-256 and each leaf's last rowid are kept,
    then cut into ranges (`ranges`). What is kept per page is a few dozen bytes in arrays: a
    table of millions of rows has hundreds of thousands of leaves."""

    def __init__(self, page_size: int, listed: Iterable[tuple[int, str, str]]):
        self.page_size = page_size
        self.leaves = array("q")  # leaf page numbers in dbstat's order
        self.spills: dict[int, list[tuple[str, int]]] = {}  # leaf -> (path, page) of its overflow pages
        self.broken = False  # the listing or a leaf is not as a rowid table's b-tree has them
        pages, leaf_path = array("q"), ""
        for number, kind, where in listed:
            pages.append(number)
            if kind == "leaf":
                self.leaves.append(number)
                leaf_path = where
            elif kind == "overflow":
                if not self.leaves or where[: where.rindex("/") + 1] != leaf_path:
                    self.broken = True  # an overflow page that does not follow its leaf
                else:
                    self.spills.setdefault(self.leaves[-1], []).append((where, number))
        self.pages = array("q", sorted(pages))
        # By page number: the leaf's position in `leaves` (its digest and last rowid are kept
        # there), -2 for an overflow page, -1 for any other page.
        self.slot = array("i", [-1]) * ((self.pages[-1] + 1) if self.pages else 0)
        for position, number in enumerate(self.leaves):
            self.slot[number] = position
        for spilled in self.spills.values():
            for _, number in spilled:
                self.slot[number] = -2
        self.hashes = bytearray(32 * len(self.leaves))
        self.lasts = array("q", bytes(8 * len(self.leaves)))
        self.spill_hashes: dict[int, bytes] = {}

    def add(self, first: int, data: bytes) -> None:
        """The pages of one run: `data` holds pages `first`, `first` + 1, ... (interior pages
        among them are passed over)."""
        size, view, sha256, slot = self.page_size, memoryview(data), hashlib.sha256, self.slot
        for i in range(len(data) // size):
            number = first + i
            position = slot[number]
            if position == -1:
                continue
            at = i * size
            page = sha256(view[at : at + size]).digest()
            if position == -2:
                self.spill_hashes[number] = page
                continue
            self.hashes[32 * position : 32 * position + 32] = page
            last = _last_rowid_in(data, at, 100 if number == 1 else 0)
            if last is None:
                self.broken = True
            else:
                self.lasts[position] = last

    def ranges(self, schema: str) -> PageRanges | None:
        """The leaf pages in rowid order cut into at most MAX_RANGES ranges; each range's digest is
        over how the pages read (`schema`), the page size, and its leaf pages and the overflow
        pages their rows continue on (numbers and each page's SHA-256; overflow pages in their
        paths' order). None for a table of fewer than MIN_RANGES leaves, or one that is not a
        rowid table with rows."""
        leaves, lasts, hashes = self.leaves, self.lasts, self.hashes
        if self.broken or len(leaves) < MIN_RANGES:
            return None
        # A b-tree's leaves hold disjoint, ordered runs of rowids: in the order dbstat walks
        # them, their last rowids increase. Anything else is not a table b-tree as expected.
        if any(lasts[k] >= lasts[k + 1] for k in range(len(leaves) - 1)):
            return None
        prefix = hashlib.sha256(
            schema.encode("utf-8", "surrogatepass") + b"\x00" + self.page_size.to_bytes(4, "big")
        ).digest()
        per_range = -(-len(leaves) // MAX_RANGES)
        last, digests = [], []
        for start in range(0, len(leaves), per_range):
            end = min(start + per_range, len(leaves))
            digest = hashlib.sha256(prefix)
            for position in range(start, end):
                number = leaves[position]
                digest.update(number.to_bytes(8, "big") + hashes[32 * position : 32 * position + 32])
                for _, spill in sorted(self.spills.get(number, ())):
                    digest.update(spill.to_bytes(8, "big") + self.spill_hashes[spill])
            last.append(lasts[end - 1])
            digests.append(digest.digest())
        return PageRanges(tuple(last), tuple(digests))
