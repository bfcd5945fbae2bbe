"""Measuring the source in rowid slices at once gives the answers one scan gives: validation's
row counts, record sizes and integer units of `auto` datetime columns, and init's storage
classes and integer ranges."""

from __future__ import annotations

import os
import sqlite3

import pytest

from etl.run import validate as validation


@pytest.fixture
def slices(monkeypatch):
    """Every table of more than 10 rowids is measured in 4 slices: pass as
    ``migration(script, measuring=slices)``. (Four cores are simulated: the machine has its own.)"""
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    return validation.Measuring(slice_from_rows=10)


def _measured(m, body: str = ""):
    return m.check(body).mapping


def _conversion(mapping, table: str, column: str):
    (found,) = [c for t in mapping.tables if t.name == table for c in t.columns if c.name == column]
    return found.conversion


ROWS = """
CREATE TABLE t (id INTEGER PRIMARY KEY, at DATETIME, kind TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
INSERT INTO t SELECT i,
  CASE WHEN i = 300 THEN 1735689600
       WHEN i > 900 THEN 1735689600000 + i
       ELSE '2025-01-01 00:00:00' END,
  CASE WHEN i = 300 THEN 'seconds' ELSE 'other' END
FROM n;
"""


def test_the_unit_comes_from_every_slice(migration, slices):
    """Milliseconds (1.7e12) in the last of 4 slices, one value in seconds in the second."""
    m = migration(ROWS, measuring=slices)
    checked = m.check()
    assert len(validation.rowid_slices(checked.spec, checked.mapping.tables[0], slices.slice_from_rows)) == 4
    conversion = _conversion(_measured(m), "t", "at")
    assert (conversion.integer_unit, conversion.mixed_units) == ("ms", True)


def test_the_unit_counts_only_rows_the_where_keeps(migration, slices):
    m = migration(ROWS, measuring=slices)
    mapping = _measured(m, "tables:\n  t:\n    where: \"kind = 'seconds'\"\n")
    conversion = _conversion(mapping, "t", "at")
    assert (conversion.integer_unit, conversion.mixed_units) == ("s", False)
    (table,) = mapping.tables
    assert table.source_rows == 1


def test_sliced_and_whole_measures_agree_and_load(migration, slices, pg):
    m = migration(ROWS.replace("WHEN i = 300 THEN 1735689600\n", ""), measuring=slices)
    conversion = _conversion(_measured(m), "t", "at")
    assert (conversion.integer_unit, conversion.mixed_units) == ("ms", False)
    assert m.apply().verified
    assert pg.execute("SELECT count(*), max(at)::text FROM t WHERE at > '2025-01-01'").fetchone() == (
        100,
        "2025-01-01 00:00:01+00",
    )


PROFILED = """
CREATE TABLE p (id INTEGER PRIMARY KEY, n NUMERIC, at DATETIME, doc TEXT, raw BLOB, flag BOOLEAN);
WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < 400)
INSERT INTO p SELECT i,
  CASE i % 5 WHEN 0 THEN i WHEN 1 THEN i * 1.5 WHEN 2 THEN 'x' || i WHEN 3 THEN NULL ELSE -i END,
  CASE WHEN i < 100 THEN '2025-01-02 03:04:05' WHEN i < 300 THEN 1735689600000 + i ELSE 'soon' END,
  CASE WHEN i % 7 = 0 THEN '{"a": ' || i || '}' ELSE 'text ' || i END,
  CASE WHEN i % 3 = 0 THEN randomblob(4) END,
  i % 2
FROM k;
"""


def test_init_profiles_a_large_table_in_slices_with_the_same_answers(tmp_sqlite, monkeypatch):
    """Storage classes and integer ranges are counted in rowid slices at once; every count, sum,
    smallest and largest value is the one a single scan gives."""
    from etl.sqlite import profile
    from etl.sqlite.catalog import introspect_sqlite

    path = tmp_sqlite(PROFILED)
    catalog = introspect_sqlite(path)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    whole = profile.profile_sqlite(path, catalog, slice_from_rows=10**9)
    sliced = profile.profile_sqlite(path, catalog, slice_from_rows=10)
    assert (whole["p"].slices, sliced["p"].slices) == (1, 4)  # the storage classes were counted in 4 slices
    assert sliced == whole
    # NUMERIC affinity stores 1.5 * an even i as an integer
    (n,) = [c for c in whole["p"].columns if c.name == "n"]
    assert (n.integers, n.reals, n.texts, n.nulls, n.int_min, n.int_max) == (200, 40, 80, 80, -399, 594)


def test_integer_magnitudes_see_only_integers_and_survive_the_smallest_one():
    """abs() of -2**63 overflows in SQLite: its magnitude reads as 2**63 - 1. Reals, text and
    NULL are not integers, whatever they look like."""
    import sqlite3

    from etl.sqlite.catalog import integer_magnitudes

    con = sqlite3.connect(":memory:")
    con.execute("CREATE TABLE t (at DATETIME, other DATETIME)")
    rows = [(-(2**63), "12"), (5, 2.5), ("x", None), (None, "1700000000000"), (2.5, "y")]
    con.executemany("INSERT INTO t VALUES (?, ?)", rows)  # NUMERIC affinity stores '12' as 12
    assert integer_magnitudes(con, "t", None, ['"at"', '"other"']) == [
        (5, 2**63 - 1),
        (12, 1700000000000),
    ]
    assert integer_magnitudes(con, "t", '"at" IS NULL', ['"at"']) == [(None, None)]


@pytest.mark.parametrize(
    "declared",
    ["DATETIME", "INTEGER", "TEXT", "REAL", "BLOB", "", "TEXT COLLATE NOCASE", "DATETIME COLLATE RTRIM"],
)
def test_integer_magnitudes_find_the_integers_whatever_the_columns_affinity_or_collation(declared):
    """The integers of a column are found among text of every kind (empty, blank, digits, before
    and after digits in byte order), blobs, reals and NULL, in a column of each affinity (which
    turns some of those values into integers as it stores them) and collation."""
    from etl.sqlite.catalog import integer_magnitudes

    con = sqlite3.connect(":memory:")
    con.execute(f"CREATE TABLE t (v {declared})")
    values = [
        7,
        -(2**63),
        1700000000000,
        -3,
        0,
        "",
        " ",
        "  ",
        "\x01",
        "12",
        "-5",
        "9e3",
        "abc",
        "2024-01-01",
    ]
    values += [b"", b"\x00", b"12", 2.5, -0.0, 1e300, None, 42]
    con.executemany("INSERT INTO t VALUES (?)", [(v,) for v in values])
    stored = [v for (v,) in con.execute("SELECT v FROM t WHERE typeof(v) = 'integer'")]
    magnitudes = [2**63 - 1 if v == -(2**63) else abs(v) for v in stored]
    expected = (min(magnitudes), max(magnitudes)) if magnitudes else (None, None)  # TEXT affinity: none
    assert integer_magnitudes(con, "t", None, ['"v"', '("v")']) == [expected, expected]


def test_negative_zeros_are_measured_as_the_rowid_runs_between_positive_zeros():
    from etl.sqlite.catalog import negative_zero_runs

    con = sqlite3.connect(":memory:")
    con.execute("CREATE TABLE t (x, y)")
    values = [-0.0, -0.0, 0.0, 1.5, -0.0, "-0.0", 0, None, -0.0, 0.0]
    con.executemany("INSERT INTO t (rowid, x, y) VALUES (?, ?, 1.0)", enumerate(values, 1))
    # a row whose zero is neither sign's (text, integer) or not a zero does not end a run
    assert negative_zero_runs(con, "t", "rowid", ['"x"', '"y"', '"x" * -1.0']) == [
        ((1, 2), (5, 9)),
        (),
        ((3, 3), (7, 7), (10, 10)),  # the integer 0 times -1.0 is -0.0 too
    ]
