"""A rowid table's b-tree read straight from the SQLite file, as its file format lays it out
(https://www.sqlite.org/fileformat2.html): which pages it holds, its leaves in rowid order, and what
its leaf pages' cells say. SQLite's `dbstat` tells the same by decoding every page of the table,
which costs more than hashing them; here only the interior pages are decoded, and the leaves'
cells are checked in bulk while their bytes are read anyway.

Everything here reads pages under the caller's SQLite read transaction, and gives up (None, or
False from `leaves_fit`) on anything a table's b-tree does not look like: the caller then asks
`dbstat`."""

from __future__ import annotations

import os
from array import array
from dataclasses import dataclass
from typing import TYPE_CHECKING

# numpy is imported where pages are hashed or walked: a command that only names this module's
# constants and types (etl apply --no-verify, etl plan of a fresh target) starts without it.
if TYPE_CHECKING:
    import numpy as np

INTERIOR_TABLE = 5  # b-tree page type of a table's interior page
LEAF_TABLE = 13  # b-tree page type of a table's leaf page

# Levels of interior pages at most: a b-tree of 4 levels of 512-byte pages holds millions of rows,
# of 40 levels more rows than a rowid can number. More is a loop in a damaged file.
_MAX_DEPTH = 40


@dataclass(frozen=True)
class TreePages:
    """A rowid table's b-tree without overflow pages as its interior pages list it: `interior`
    (page numbers, top level first), `leaves` (page numbers in rowid order) and `pages` (all of
    them, in page order). Whether its leaves are leaves, and whether none of their cells
    continues on overflow pages, is checked when they are read (`page_types_fit`, `leaves_fit`)."""

    interior: array  # array("q")
    leaves: array  # array("q")
    pages: array  # array("q")


def header_offset(number: int) -> int:
    """Where page `number`'s b-tree header begins: page 1 begins with the file's 100-byte header."""
    return 100 if number == 1 else 0


def usable_size(fd: int, page_size: int) -> int:
    """The bytes of each page that hold b-tree content: the page size less the reserved bytes at
    its end (byte 20 of the file's header)."""
    return page_size - os.pread(fd, 1, 20)[0]


def walk_table_tree(fd: int, page_size: int, root: int) -> TreePages | None:
    """The interior pages and leaves of the rowid table b-tree whose root page is `root`, read
    from the file (descriptor `fd`) level by level; None when a page read is not an interior page
    of a table b-tree where one must be (a WITHOUT ROWID table's b-tree is an index b-tree), or a
    page number points outside the file or twice at one page."""
    import numpy as np

    page_count = os.fstat(fd).st_size // page_size
    interior = array("q")
    level = [root]
    seen = 0
    for _ in range(_MAX_DEPTH):
        if not level or min(level) < 1 or max(level) > page_count:
            return None
        seen += len(level)
        if seen > page_count:
            return None
        first = _read_page(fd, page_size, level[0])
        kind = first[header_offset(level[0])]
        if kind == LEAF_TABLE:
            # A b-tree keeps every leaf at one depth: the level of the first is the level of all
            # (the type of each is checked when it is read).
            leaves = array("q", level)
            pages = np.sort(np.frombuffer(interior + leaves, dtype=np.int64))
            if not bool(np.all(np.diff(pages) > 0)):
                return None
            return TreePages(interior, leaves, array("q", pages.tobytes()))
        if kind != INTERIOR_TABLE:
            return None
        children: list[int] = []
        for number in level:
            page = first if number == level[0] else _read_page(fd, page_size, number)
            found = _children(page, page_size, header_offset(number))
            if found is None:
                return None
            children.extend(found)
        interior.extend(level)
        level = children
    return None


def _read_page(fd: int, page_size: int, number: int) -> bytes:
    data = os.pread(fd, page_size, (number - 1) * page_size)
    if len(data) != page_size:
        raise OSError(f"short read of page {number}")
    return data


def _children(page: bytes, page_size: int, header: int) -> list[int] | None:
    """The child page numbers of an interior table page, in key order: each cell's left child,
    then the right-most pointer of its header. None when it is not such a page."""
    import numpy as np

    data = np.frombuffer(page, dtype=np.uint8)
    if data[header] != INTERIOR_TABLE:
        return None
    cells = (int(data[header + 3]) << 8) | int(data[header + 4])
    if header + 12 + 2 * cells > page_size:
        return None
    pointers = np.frombuffer(page, dtype=">u2", count=cells, offset=header + 12).astype(np.int64)
    if cells and (pointers.min() < header + 12 + 2 * cells or pointers.max() + 4 > page_size):
        return None
    left = np.zeros(cells, dtype=np.int64)
    for i in range(4):
        left = (left << 8) | data[pointers + i]
    return [*left.tolist(), int.from_bytes(page[header + 8 : header + 12], "big")]


def page_types_fit(pages: np.ndarray, numbers: np.ndarray, tree_leaves: np.ndarray) -> bool:
    """Whether each page of `pages` (one page a row of bytes; page numbers `numbers`) is a leaf of
    a table b-tree where `tree_leaves` (a bool per row) says it is one, else an interior page."""
    import numpy as np

    kinds = pages[np.arange(len(numbers)), np.where(numbers == 1, 100, 0)]
    return bool(np.all(np.where(tree_leaves, kinds == LEAF_TABLE, kinds == INTERIOR_TABLE)))


def leaves_fit(pages: np.ndarray, rows: np.ndarray, headers: np.ndarray, usable: int) -> bool:
    """Whether no cell of the table leaf pages `rows` of `pages` continues on overflow pages: each
    cell's payload is at most `usable` - 35 bytes (the file format's limit for a table leaf). The
    payload's size is the varint that begins the cell: only cells whose first byte says it is 128
    or more are decoded further. False also for a cell pointer outside its page."""
    import numpy as np

    page_size = pages.shape[1]
    counts = (pages[rows, headers + 3].astype(np.int64) << 8) | pages[rows, headers + 4]
    if not len(rows) or not counts.any():
        return True
    owner = np.repeat(rows, counts)
    starts = np.repeat(headers + 8, counts)
    index = np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
    at = starts + 2 * index
    if int(at.max()) + 1 >= page_size:
        return False
    pointer = (pages[owner, at].astype(np.int64) << 8) | pages[owner, at + 1]
    if int(pointer.max()) >= page_size:
        return False
    # A payload of more than 127 bytes takes a varint of two bytes or more; of two bytes it is
    # at most 16383: only longer ones are decoded in full.
    first = pages[owner, pointer]
    large = first >= 0x80
    if not large.any():
        return True
    owner, pointer, first = owner[large], pointer[large], first[large].astype(np.int64)
    second = pages[owner, np.minimum(pointer + 1, page_size - 1)].astype(np.int64)
    short = second < 0x80
    if bool(np.any(((first & 0x7F) << 7 | second)[short] > usable - 35)):
        return False
    if short.all():
        return True
    sizes, _ = varints(pages, owner[~short], pointer[~short])
    return bool(np.all(sizes <= usable - 35))


def varints(pages: np.ndarray, rows: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SQLite's variable-length integer at offset `at[k]` of page `rows[k]` of `pages` (one page
    a row of bytes), for every k at once: (values, offsets after them)."""
    import numpy as np

    value = np.zeros(len(rows), dtype=np.uint64)
    done = np.zeros(len(rows), dtype=bool)
    after = at.copy()
    for i in range(9):
        byte = pages[rows, np.minimum(at + i, pages.shape[1] - 1)].astype(np.uint64)
        live = ~done
        if i < 8:
            value[live] = (value[live] << np.uint64(7)) | (byte[live] & np.uint64(0x7F))
            stop = live & (byte < 0x80)
        else:  # the ninth byte counts all its eight bits
            value[live] = (value[live] << np.uint64(8)) | byte[live]
            stop = live
        after[stop] = at[stop] + i + 1
        done |= stop
    return value, after


def last_rowids(pages: np.ndarray, rows: np.ndarray, headers: np.ndarray) -> np.ndarray | None:
    """The last rowid of the cells of each table leaf page `rows` of `pages`, its b-tree header at
    offset `headers` (None when one is not a table leaf with cells). Only the last cell's pointer
    and the two varints that begin the cell (the payload's size, the rowid) are read."""
    import numpy as np

    kind = pages[rows, headers]
    cells = (pages[rows, headers + 3].astype(np.int64) << 8) | pages[rows, headers + 4]
    if not bool(np.all((kind == LEAF_TABLE) & (cells > 0))):
        return None
    pointer = headers + 8 + 2 * (cells - 1)
    cell = (pages[rows, pointer].astype(np.int64) << 8) | pages[rows, pointer + 1]
    _, rowid_at = varints(pages, rows, cell)
    rowids, _ = varints(pages, rows, rowid_at)
    return rowids.view(np.int64)  # two's complement, as SQLite stores a negative rowid
