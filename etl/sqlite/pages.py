"""Fingerprints of SQLite tables from the file's pages: a digest of the pages of each table's own
b-tree (interior, leaf and overflow pages: walked from its root page, etl/sqlite/btree.py, or as
SQLite's `dbstat` lists them) and of their numbers.
A table's rows live in exactly those pages, so equal fingerprints mean equal rows, and hashing
pages costs a fraction of decoding the rows (no value is parsed).

A rowid table also gets a digest per range of its leaf pages (`PageRanges`), one leaf page per
range up to MAX_RANGES leaves: the leaves of a rowid table's b-tree hold its rows in rowid
order, so the rows whose rowid lies between the last rowid of one range's pages and the last
rowid of the next are exactly the rows in the next range's pages (with the overflow pages their
large rows continue on). A range whose bounds and digest are those of a range recorded earlier
holds the same rows as then; a re-sync compares only the other ranges' rows. A row that changes
in place changes its leaf (or an overflow page of that leaf): that range moves. A row inserted
or deleted changes a leaf whose range covers its rowid (past the last rowid: the last range,
open above). A page split, a merge or pages moved by VACUUM change the bounds, page numbers or
contents of the ranges involved: they move. An interior page holds no row values, only the
rowids that route a search, and every leaf's rows are bounded by its own last rowid and its
predecessor's: so the leaves' ranges alone decide the rows.

One read of each table's pages gives both (`table_pages`): each page is hashed once; the
table's digest is over those hashes, the ranges' digests over the leaf and overflow pages'."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from etl.sqlite.btree import last_rowids, leaves_fit, page_types_fit, usable_size, walk_table_tree
from etl.sqlite.catalog import open_sqlite

# numpy is imported where pages are hashed or walked: a command that only names this module's
# constants and types (etl apply --no-verify, etl plan of a fresh target) starts without it.
if TYPE_CHECKING:
    import numpy as np

# Pages read per system call: runs of consecutive pages (a table loaded at once is mostly one run).
_RUN_PAGES = 1024

# Ranges recorded per table at most: one leaf page per range keeps a change's range small (a few
# dozen rows); a table of more leaves has several per range. The record takes RANGE_BYTES per
# range: this bounds it.
MAX_RANGES = 1 << 19

# Tables of fewer leaf pages get no ranges: comparing all their rows costs about as little.
MIN_RANGES = 16

# Rowid bounds of the first and last range: open below and above (rows inserted past the last
# rowid, or before the first, fall in them).
LOWEST, HIGHEST = -(2**63), 2**63 - 1

# A range's digest: SHA-256 cut to 128 bits. Two different ranges with the same digest take a
# collision of SHA-256's first 128 bits: about 2**64 attempts even for pages made to collide.
DIGEST_BYTES = 16
RANGE_BYTES = 8 + DIGEST_BYTES  # its last rowid and its digest

# What a record of ranges begins with: a record of another layout (an earlier version of etl's)
# reads as no record, and the table is compared in full once.
_FORMAT = b"etl page ranges 2\x00"


@dataclass(frozen=True)
class PageRanges:
    """A rowid table's leaf pages in rowid order, cut into ranges: each range's last rowid
    (`last`, increasing) and the digest of its pages (`digests`, DIGEST_BYTES each), and a digest
    of how the pages read as rows (`reading`: the table's CREATE statement, the file's text
    encoding and page size). Range k covers rowids from last[k-1] + 1 (LOWEST for the first) to
    last[k] (HIGHEST for the last): together they cover every rowid there can be. Arrays, not
    tuples: a table of millions of rows has hundreds of thousands of ranges."""

    last: array  # array("q")
    digests: bytes
    reading: bytes

    def __len__(self) -> int:
        return len(self.last)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """The first and the last rowid of each range, the first range open below and the last
        open above."""
        import numpy as np

        last = np.frombuffer(self.last, dtype=np.int64)
        low, high = np.empty_like(last), last.copy()
        if len(last):
            low[0], high[-1] = LOWEST, HIGHEST
            low[1:] = last[:-1] + 1
        return low, high

    def to_bytes(self) -> bytes:
        """The record: _FORMAT, `reading`, every last rowid (8 bytes, big-endian), every digest."""
        import numpy as np

        last = np.frombuffer(self.last, dtype=np.int64).astype(">i8").tobytes()
        return _FORMAT + self.reading + last + self.digests

    @classmethod
    def from_bytes(cls, data: bytes) -> PageRanges | None:
        """The ranges to_bytes recorded; None for a record of another layout."""
        import numpy as np

        head = len(_FORMAT) + DIGEST_BYTES
        if not data.startswith(_FORMAT) or len(data) < head or (len(data) - head) % RANGE_BYTES:
            return None
        count = (len(data) - head) // RANGE_BYTES
        last = np.frombuffer(data, dtype=">i8", count=count, offset=head).astype(np.int64)
        return cls(array("q", last.tobytes()), data[head + 8 * count :], data[len(_FORMAT) : head])


def changed_ranges(recorded: PageRanges, current: PageRanges) -> tuple[int, tuple[tuple[int, int], ...]]:
    """How many ranges of `current` may hold rows other than `recorded`'s, and their rowids: each
    range that was not recorded with the same bounds and the same digest (pages that changed,
    split, moved or appeared), adjacent ones merged (inclusive bounds). Pages that read as rows
    in another way (`reading`) change every range."""
    import numpy as np

    low, high = current.bounds()
    then_low, then_high = recorded.bounds()
    now = np.frombuffer(current.digests, dtype=np.uint8).reshape(-1, DIGEST_BYTES)
    then = np.frombuffer(recorded.digests, dtype=np.uint8).reshape(-1, DIGEST_BYTES)
    same = np.zeros(len(high), dtype=bool)
    if len(then_high) and recorded.reading == current.reading:
        # Recorded ranges' last rowids increase: the one that could be equal to each current range
        # is the one ending at the same rowid.
        at = np.minimum(np.searchsorted(then_high, high), len(then_high) - 1)
        same = (then_high[at] == high) & (then_low[at] == low) & (then[at] == now).all(axis=1)
    moved = np.flatnonzero(~same)
    if not len(moved):
        return 0, ()
    cut = np.diff(moved) != 1  # adjacent moved ranges form one run
    starts = moved[np.concatenate(([True], cut))]
    ends = moved[np.concatenate((cut, [True]))]
    return len(moved), tuple(zip(low[starts].tolist(), high[ends].tolist(), strict=True))


@dataclass(frozen=True)
class TablePages:
    """What one read of a table's pages tells: the table's digest, and (a rowid table read for
    its ranges, of at least MIN_RANGES leaf pages) its ranges of leaf pages; `in_leaves`: every
    record lies whole in its leaf page (none continues on overflow pages), so none is larger
    than a page (False where the read does not tell)."""

    digest: str
    ranges: PageRanges | None = None
    in_leaves: bool = False


def table_pages(
    path: str | Path,
    tables: list[str],
    ranged: frozenset[str] | set[str] = frozenset(),
    stop: threading.Event | None = None,
) -> dict[str, TablePages] | None:
    """Each of `tables` (SQLite names, exactly as the schema spells them) that is an ordinary table
    with pages, read once: its digest, and for those in `ranged` its leaf pages to cut into
    ranges. None when the file's pages cannot be trusted to be its rows.

    The pages are read under one SQLite read transaction: in rollback journal mode it holds a
    SHARED lock, so no writer changes the file while it is read. In WAL mode the file holds only
    what was checkpointed: a committed transaction may still be in the -wal file, whose frames
    replace pages of the file. When the -wal file is empty once the read transaction has begun,
    the file is the snapshot (a reader whose snapshot needs WAL frames keeps them there until it
    ends, and a checkpoint cannot write a page a reader of the file alone still needs); otherwise
    nothing is given and every table is compared row by row. Without `dbstat` (a SQLite built
    without it): None as well. Raises HashingStopped soon after `stop` is set (an apply hashes on
    a thread of its own, and stops it when it fails)."""

    return _each_table(path, tables, ranged, stop)


def table_fingerprints(path: str | Path, tables: list[str]) -> dict[str, str] | None:
    """table_pages' digest of each of `tables`."""
    found = table_pages(path, tables)
    return None if found is None else {name: pages.digest for name, pages in found.items()}


def table_ranges(path: str | Path, tables: list[str]) -> dict[str, PageRanges] | None:
    """Each of `tables` that is a rowid table of at least MIN_RANGES leaf pages, with its ranges
    of leaf pages (None as for table_pages)."""
    found = table_fingerprints_and_ranges(path, tables, set(tables))
    return None if found is None else found[1]


def table_fingerprints_and_ranges(
    path: str | Path, tables: list[str], ranged: set[str], stop: threading.Event | None = None
) -> tuple[dict[str, str], dict[str, PageRanges]] | None:
    """table_fingerprints of `tables`, and table_ranges of those among them in `ranged`, from one
    read of each table's pages (what an apply records). None, and `stop`, as for table_pages."""
    found = table_pages(path, tables, ranged, stop)
    if found is None:
        return None
    prints = {name: pages.digest for name, pages in found.items()}
    return prints, {name: pages.ranges for name, pages in found.items() if pages.ranges is not None}


def _each_table(
    path: str | Path, tables: list[str], ranged: frozenset[str] | set[str], stop: threading.Event | None
) -> dict[str, TablePages] | None:
    """_read_table of each of `tables` that is an ordinary table, under one read transaction (see
    table_pages); None when the file's pages cannot be trusted to be its rows."""
    path = Path(path)
    with open_sqlite(path) as con:
        try:
            con.execute("BEGIN")
            try:
                return _read_each(con, path, tables, ranged, stop)
            finally:
                con.execute("ROLLBACK")
        except (sqlite3.Error, OSError):
            return None


@dataclass(frozen=True)
class _Table:
    name: str
    root: int  # its b-tree's root page
    reading: str  # how its pages read as rows: the file's text encoding and its CREATE statement


def wal_pending(path: Path) -> bool:
    """Whether the -wal file beside the database holds frames: pages that replace the file's,
    so the file's own pages are not the rows."""
    wal = Path(f"{path}-wal")
    return wal.exists() and wal.stat().st_size > 0


def _read_each(
    con: sqlite3.Connection,
    path: Path,
    tables: list[str],
    ranged: frozenset[str] | set[str],
    stop: threading.Event | None,
) -> dict[str, TablePages] | None:
    rows = con.execute(
        "SELECT name, rootpage, sql FROM sqlite_master WHERE type = 'table' AND rootpage > 0 AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
    ).fetchall()  # also begins the read transaction: the snapshot is fixed from here on
    # A table's CREATE statement and the file's text encoding decide how its pages read as rows
    # (ALTER TABLE ADD COLUMN gives old rows the new column's default without touching them).
    (encoding,) = con.execute("PRAGMA encoding").fetchone()
    ordinary = {name: _Table(name, root, f"{encoding}\x00{text}") for name, root, text in rows}
    if wal_pending(path):
        return None
    (page_size,) = con.execute("PRAGMA page_size").fetchone()
    found: dict[str, TablePages] = {}
    fd = os.open(path, os.O_RDONLY)
    try:
        file = _File(fd, page_size, usable_size(fd, page_size))
        for name in tables:
            if name not in ordinary:
                continue  # a view, a virtual table, or no such table: nothing to read
            value = _read_table(con, file, ordinary[name], name in ranged, stop)
            if value is not None:
                found[name] = value
    finally:
        os.close(fd)
    return found


@dataclass(frozen=True)
class _File:
    fd: int
    page_size: int
    usable: int  # bytes of each page that hold b-tree content


def _read_table(
    con: sqlite3.Connection, file: _File, table: _Table, ranged: bool, stop: threading.Event | None
) -> TablePages | None:
    """The table's pages read once: its digest, SHA-256 over how the pages read (`reading`), the
    page size, the page numbers and each page's SHA-256 in page order (a page that moved
    (VACUUM) or changed, or one more or fewer, changes it); and, `ranged`, its leaf pages.
    A rowid table without overflow pages is walked from its root page (btree.walk_table_tree);
    any other (a WITHOUT ROWID table, a row too large for its leaf) is listed by dbstat."""
    tree = walk_table_tree(file.fd, file.page_size, table.root)
    if tree is not None:
        leaves = _LeafPages(file.page_size, tree.leaves, {}, tree.pages, table.reading) if ranged else None
        read = _hash_pages(file, tree.pages, table.reading, leaves, stop, tree.leaves)
        if read is not None:
            return replace(read, in_leaves=True)  # the walk checked that no cell overflows
    if ranged:
        listed: Iterable[tuple[int, str, str]] = _listing(
            con.execute("SELECT pageno, pagetype, path FROM dbstat WHERE name = ?", (table.name,)), stop
        )
        leaves = _LeafPages.listed(file.page_size, listed, table.reading)
        return _hash_pages(file, leaves.pages, table.reading, leaves, stop)
    listed_pages = _listing(con.execute("SELECT pageno FROM dbstat WHERE name = ?", (table.name,)), stop)
    return _hash_pages(file, array("q", sorted(p for (p,) in listed_pages)), table.reading, None, stop)


def _hash_pages(
    file: _File,
    pages: array,
    reading: str,
    leaves: _LeafPages | None,
    stop: threading.Event | None,
    walked: array | None = None,
) -> TablePages | None:
    """The table's digest over `pages` (every page of its b-tree, in page order) and the ranges
    of `leaves`. `walked`: the leaves of a tree walked from its root: then every page must be a
    leaf or interior page as the walk found it, and no leaf's cell may continue on an overflow
    page (None otherwise: the walk did not see every page)."""
    import numpy as np

    if not pages:
        return None
    page_size = file.page_size
    is_leaf = None
    if walked is not None:
        is_leaf = np.zeros(pages[-1] + 1, dtype=bool)
        is_leaf[np.frombuffer(walked, dtype=np.int64)] = True
    digest = hashlib.sha256(reading.encode("utf-8", "surrogatepass") + b"\x00")
    digest.update(page_size.to_bytes(4, "big"))
    digest.update(pages.tobytes())
    sha256 = hashlib.sha256
    held: list[tuple[int, bytes, bytes]] = []  # runs not yet checked and passed to `leaves`
    held_pages = 0
    for first, data in _runs(file.fd, page_size, pages, stop):
        view = memoryview(data)
        hashes = b"".join(
            [sha256(view[at : at + page_size]).digest() for at in range(0, len(data), page_size)]
        )
        digest.update(hashes)
        # Short runs (a table whose pages interleave with its index's) are checked and passed on
        # together: the leaves' cells are read for many pages at once.
        held.append((first, data, hashes))
        held_pages += len(data) // page_size
        if held_pages >= _RUN_PAGES:
            if not _take(file, held, is_leaf, leaves):
                return None
            held, held_pages = [], 0
    if held and not _take(file, held, is_leaf, leaves):
        return None
    # Cut now: what is kept per leaf until then (its page's SHA-256, its last rowid, the slot of
    # each page number) is more than its range.
    return TablePages(digest.hexdigest(), None if leaves is None else leaves.ranges())


def _take(
    file: _File, runs: list[tuple[int, bytes, bytes]], is_leaf: np.ndarray | None, leaves: _LeafPages | None
) -> bool:
    """Check the runs of pages of a walked tree (`is_leaf`: whether each page number is one of its
    leaves) and pass them to `leaves`; False when a page is not as the walk found it: a leaf or
    interior page of a table b-tree, a leaf whose cells all fit on their page."""
    import numpy as np

    if is_leaf is not None:
        numbers = np.concatenate([np.arange(first, first + len(h) // 32) for first, _, h in runs])
        data = runs[0][1] if len(runs) == 1 else b"".join(d for _, d, _ in runs)
        pages = np.frombuffer(data, dtype=np.uint8).reshape(-1, file.page_size)
        leaf = is_leaf[numbers]
        if not page_types_fit(pages, numbers, leaf):
            return False
        rows = np.flatnonzero(leaf)
        if not leaves_fit(pages, rows, np.where(numbers[rows] == 1, 100, 0), file.usable):
            return False
    if leaves is not None:
        leaves.add(runs)
    return True


class HashingStopped(Exception):
    """Reading the pages was stopped (`stop` was set): nothing is recorded of them."""


def _listing(cursor: sqlite3.Cursor, stop: threading.Event | None) -> Iterable[tuple]:
    """The cursor's rows; raises HashingStopped once `stop` is set (checked every few thousand
    rows: dbstat lists a large table's pages for a while)."""
    if stop is None:
        return cursor
    return _stoppable(cursor, stop)


def _stoppable(cursor: sqlite3.Cursor, stop: threading.Event) -> Iterator[tuple]:
    while rows := cursor.fetchmany(4096):
        if stop.is_set():
            raise HashingStopped()
        yield from rows


def _runs(
    fd: int, page_size: int, pages: Sequence[int], stop: threading.Event | None = None
) -> Iterator[tuple[int, bytes]]:
    """(first page number, bytes) of each run of consecutive pages among `pages` (sorted); raises
    HashingStopped once `stop` is set."""
    start = 0
    while start < len(pages):
        if stop is not None and stop.is_set():
            raise HashingStopped()
        end = start + 1
        while end < len(pages) and end - start < _RUN_PAGES and pages[end] == pages[end - 1] + 1:
            end += 1
        size = page_size * (end - start)
        data = os.pread(fd, size, (pages[start] - 1) * page_size)
        if len(data) != size:
            raise OSError(f"short read of page {pages[start]}")
        yield pages[start], data
        start = end


class _LeafPages:
    """The pages of a rowid table's b-tree: its leaves in key order (`leaves`), the overflow pages
    each leaf's cells continue on (`spills`: leaf -> (path, page number), paths as dbstat gives
    them), and every page (`pages`, in page order, to be read in runs: `add`). Each leaf's and
    overflow page's SHA-256 and each leaf's last rowid are kept, then cut into ranges (`ranges`).
    What is kept per page is a few dozen bytes in arrays: a table of millions of rows has hundreds
    of thousands of leaves."""

    def __init__(
        self,
        page_size: int,
        leaves: array,
        spills: dict[int, list[tuple[str, int]]],
        pages: array,
        schema: str,
        broken: bool = False,
    ):
        import numpy as np

        self.page_size = page_size
        self.schema = schema
        self.leaves = leaves
        self.spills = spills
        self.broken = broken  # the listing or a leaf is not as a rowid table's b-tree has them
        self.pages = pages
        # By page number: the leaf's position in `leaves` (its digest and last rowid are kept
        # there), -2 for an overflow page, -1 for any other page.
        slot = np.full((pages[-1] + 1) if pages else 0, -1, dtype=np.int32)
        slot[np.frombuffer(leaves, dtype=np.int64)] = np.arange(len(leaves), dtype=np.int32)
        for spilled in spills.values():
            for _, number in spilled:
                slot[number] = -2
        self.slot = slot
        self.hashes = np.zeros((len(leaves), 32), dtype=np.uint8)
        self.lasts = np.zeros(len(leaves), dtype=np.int64)
        self.spill_hashes: dict[int, bytes] = {}

    @classmethod
    def listed(cls, page_size: int, listed: Iterable[tuple[int, str, str]], schema: str) -> _LeafPages:
        """From dbstat's listing of the b-tree's pages (page number, type, path), in the order
        dbstat walks the tree: its leaves come in key order, each followed by the overflow pages
        of its cells."""
        leaves = array("q")
        spills: dict[int, list[tuple[str, int]]] = {}
        broken = False
        pages, leaf_path = array("q"), ""
        for number, kind, where in listed:
            pages.append(number)
            if kind == "leaf":
                leaves.append(number)
                leaf_path = where
            elif kind == "overflow":
                if not leaves or where[: where.rindex("/") + 1] != leaf_path:
                    broken = True  # an overflow page that does not follow its leaf
                else:
                    spills.setdefault(leaves[-1], []).append((where, number))
        return cls(page_size, leaves, spills, array("q", sorted(pages)), schema, broken)

    def add(self, runs: list[tuple[int, bytes, bytes]]) -> None:
        """Runs of pages: (first page number, the bytes of pages first, first + 1, ..., their
        SHA-256s). Interior pages among them are passed over."""
        import numpy as np

        numbers = np.concatenate([np.arange(first, first + len(h) // 32) for first, _, h in runs])
        hashes = b"".join(h for _, _, h in runs)
        slots = self.slot[numbers]
        for i in np.flatnonzero(slots == -2).tolist():
            self.spill_hashes[int(numbers[i])] = hashes[32 * i : 32 * i + 32]
        rows = np.flatnonzero(slots >= 0)
        if not len(rows):
            return
        positions = slots[rows]
        self.hashes[positions] = np.frombuffer(hashes, dtype=np.uint8).reshape(-1, 32)[rows]
        data = runs[0][1] if len(runs) == 1 else b"".join(d for _, d, _ in runs)
        pages = np.frombuffer(data, dtype=np.uint8).reshape(-1, self.page_size)
        headers = np.where(numbers[rows] == 1, 100, 0)  # page 1 begins with the file's header
        lasts = last_rowids(pages, rows, headers)
        if lasts is None:
            self.broken = True
        else:
            self.lasts[positions] = lasts

    def ranges(self) -> PageRanges | None:
        """The leaf pages in rowid order cut into at most MAX_RANGES ranges. A range of one leaf
        page whose rows have no overflow pages has the leaf's SHA-256 as its digest (cut to
        DIGEST_BYTES): the page's bytes are its rows, wherever it lies in the file. Any other
        range's digest is over its leaf pages and the overflow pages their rows continue on
        (numbers and each page's SHA-256; overflow pages in their paths' order). How the pages
        read (`schema`, the page size) is the ranges' `reading`. None for a table of fewer than
        MIN_RANGES leaves, or one that is not a rowid table with rows."""
        import numpy as np

        leaves, lasts, hashes = self.leaves, self.lasts, self.hashes
        if self.broken or len(leaves) < MIN_RANGES:
            return None
        # A b-tree's leaves hold disjoint, ordered runs of rowids: in the order dbstat walks
        # them, their last rowids increase. Anything else is not a table b-tree as expected.
        if not bool(np.all(np.diff(lasts) > 0)):
            return None
        reading = hashlib.sha256(
            self.schema.encode("utf-8", "surrogatepass") + b"\x00" + self.page_size.to_bytes(4, "big")
        ).digest()[:DIGEST_BYTES]
        per_range = -(-len(leaves) // MAX_RANGES)
        if per_range == 1:
            digests = np.ascontiguousarray(hashes[:, :DIGEST_BYTES])
            for number in self.spills:
                position = int(self.slot[number])
                digests[position] = np.frombuffer(self._digest(position, position + 1), dtype=np.uint8)
            return PageRanges(array("q", lasts.tobytes()), digests.tobytes(), reading)
        starts = range(0, len(leaves), per_range)
        ends = [min(start + per_range, len(leaves)) for start in starts]
        last = array("q", lasts[np.array(ends) - 1].tobytes())
        return PageRanges(
            last, b"".join(self._digest(a, b) for a, b in zip(starts, ends, strict=True)), reading
        )

    def _digest(self, start: int, end: int) -> bytes:
        """The digest of the range of leaves `start` to `end` (exclusive) that is not one leaf
        alone: over a tag no leaf page begins with, then each leaf's number and SHA-256, each
        followed by its overflow pages'."""
        digest = hashlib.sha256(b"\x01")
        for position in range(start, end):
            number = self.leaves[position]
            digest.update(number.to_bytes(8, "big") + self.hashes[position].tobytes())
            for _, spill in sorted(self.spills.get(number, ())):
                digest.update(spill.to_bytes(8, "big") + self.spill_hashes[spill])
        return digest.digest()[:DIGEST_BYTES]
