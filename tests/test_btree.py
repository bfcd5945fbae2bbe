"""A rowid table's b-tree read straight from the SQLite file (etl/sqlite/btree.py) finds exactly
the pages SQLite's dbstat lists, and the fingerprints read through it are those a listing by
dbstat gives: a table the walk cannot see whole (rows on overflow pages, no rowid) is listed by
dbstat instead."""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from etl.sqlite import pages as pages_module
from etl.sqlite.btree import walk_table_tree
from etl.sqlite.pages import table_pages

SOURCE = """
CREATE TABLE big (id INTEGER PRIMARY KEY, code TEXT NOT NULL, n INTEGER);
WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 30000)
INSERT INTO big SELECT i, printf('code-%08d', i), i % 97 FROM r;
CREATE TABLE small (id INTEGER PRIMARY KEY, name TEXT);
INSERT INTO small VALUES (1, 'one'), (2, 'two');
CREATE TABLE empty (id INTEGER PRIMARY KEY, name TEXT);
CREATE TABLE negative (a TEXT, b REAL);
WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 5000)
INSERT INTO negative (rowid, a, b) SELECT -i * 1000, printf('%.200c', 'n'), i / 3.0 FROM r;
CREATE TABLE tag (name TEXT PRIMARY KEY, n INTEGER) WITHOUT ROWID;
INSERT INTO tag VALUES ('a', 1), ('b', 2);
"""
ROWID_TABLES = ("big", "small", "empty", "negative")


def listed(source: Path, table: str) -> tuple[list[int], list[int]]:
    """(every page, the leaves in key order) of a table, as dbstat lists them."""
    with closing(sqlite3.connect(source)) as conn:
        found = conn.execute("SELECT pageno, pagetype FROM dbstat WHERE name = ?", (table,)).fetchall()
    return sorted(number for number, _ in found), [number for number, kind in found if kind == "leaf"]


def walked(source: Path, table: str):
    with closing(sqlite3.connect(source)) as conn:
        (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()
        (page_size,) = conn.execute("PRAGMA page_size").fetchone()
    fd = os.open(source, os.O_RDONLY)
    try:
        return walk_table_tree(fd, page_size, root)
    finally:
        os.close(fd)


def by_dbstat(monkeypatch, source: Path, tables: list[str], ranged: set[str]):
    """table_pages with every table listed by dbstat: the walk finds nothing."""
    with monkeypatch.context() as patch:
        patch.setattr(pages_module, "walk_table_tree", lambda *args: None)
        return table_pages(source, tables, ranged)


@pytest.mark.parametrize("page_size", [512, 4096, 65536])
def test_the_walk_of_a_rowid_table_finds_the_pages_and_leaf_order_dbstat_lists(tmp_sqlite, page_size):
    source = tmp_sqlite(f"PRAGMA page_size = {page_size}; VACUUM;" + SOURCE)
    for table in ROWID_TABLES:
        tree = walked(source, table)
        assert tree is not None, table
        every, leaves = listed(source, table)
        assert list(tree.pages) == every, table
        assert list(tree.leaves) == leaves, table


def test_a_without_rowid_table_is_not_walked(tmp_sqlite):
    source = tmp_sqlite(SOURCE)
    assert walked(source, "tag") is None


def told(pages):
    """What a read of the pages tells of each table that the walk and dbstat's listing both tell."""
    return {name: (read.digest, read.ranges) for name, read in pages.items()}


def test_fingerprints_read_by_the_walk_are_those_dbstat_listing_gives(tmp_sqlite, monkeypatch):
    source = tmp_sqlite(SOURCE)
    tables = [*ROWID_TABLES, "tag"]

    for ranged in (set(), set(tables)):
        walked_pages = table_pages(source, tables, ranged)
        assert told(walked_pages) == told(by_dbstat(monkeypatch, source, tables, ranged))
        # The walk checked every cell: no record continues on overflow pages.
        assert {name for name, read in walked_pages.items() if read.in_leaves} == set(ROWID_TABLES)
    assert table_pages(source, tables, set(tables))["big"].ranges is not None


# One row in the middle of `big` grows past what a leaf holds of a row: it continues on overflow
# pages, which only its cell points at. Sizes around the largest payload a 4096-byte page's leaf
# keeps whole (4061 bytes): those just above it spill, those at or below do not.
@pytest.mark.parametrize("length", [4040, 4054, 4055, 4056, 4057, 4058, 9000])
def test_a_table_with_a_row_on_overflow_pages_gets_the_fingerprint_of_all_its_pages(
    tmp_sqlite, monkeypatch, length
):
    source = tmp_sqlite(SOURCE + f"UPDATE big SET code = printf('%.{length}c', 'x') WHERE id = 15000;")
    with closing(sqlite3.connect(source)) as conn:
        spilled = conn.execute("SELECT count(*) FROM dbstat WHERE name = 'big' AND pagetype = 'overflow'")
        overflow = spilled.fetchone()[0]
    for ranged in (set(), {"big"}):
        read = table_pages(source, ["big"], ranged)
        assert told(read) == told(by_dbstat(monkeypatch, source, ["big"], ranged))
        assert read["big"].in_leaves == (overflow == 0)
    if length == 9000:
        assert overflow > 0


def test_a_row_changed_only_on_its_overflow_pages_changes_the_fingerprint(tmp_sqlite):
    source = tmp_sqlite(SOURCE + "UPDATE big SET code = printf('%.9000c', 'x') WHERE id = 15000;")
    before = table_pages(source, ["big"], {"big"})["big"]
    with closing(sqlite3.connect(source)) as conn:
        conn.execute("UPDATE big SET code = substr(code, 1, 8000) || printf('%.1000c', 'z') WHERE id = 15000")
        conn.commit()
    after = table_pages(source, ["big"], {"big"})["big"]
    assert after.digest != before.digest
    assert after.ranges != before.ranges
