"""Validation measures the data (row counts, record sizes, the integer unit of `auto` datetime
columns) on several read-only connections at once, a large table's magnitudes in rowid slices;
the answers are the ones one scan of the whole table gives."""

from __future__ import annotations

import os

import pytest

from etl import validate as validation


@pytest.fixture
def slices(monkeypatch):
    """Every table of more than 10 rowids is measured in 4 slices."""
    monkeypatch.setattr(validation, "SLICE_FROM_ROWS", 10)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)


def _measured(m, body: str = ""):
    m.write_spec(body)
    return validation.validate(m.spec_path, {}).mapping


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
    m = migration(ROWS)
    checked = validation.validate(m.write_spec(), {})
    assert len(validation._rowid_slices(checked.spec, checked.mapping.tables[0])) == 4
    conversion = _conversion(_measured(m), "t", "at")
    assert (conversion.integer_unit, conversion.mixed_units) == ("ms", True)


def test_the_unit_counts_only_rows_the_where_keeps(migration, slices):
    m = migration(ROWS)
    mapping = _measured(m, "tables:\n  t:\n    where: \"kind = 'seconds'\"\n")
    conversion = _conversion(mapping, "t", "at")
    assert (conversion.integer_unit, conversion.mixed_units) == ("s", False)
    (table,) = mapping.tables
    assert table.source_rows == 1


def test_sliced_and_whole_measures_agree_and_load(migration, slices, pg):
    m = migration(ROWS.replace("WHEN i = 300 THEN 1735689600\n", ""))
    conversion = _conversion(_measured(m), "t", "at")
    assert (conversion.integer_unit, conversion.mixed_units) == ("ms", False)
    assert m.apply().verified
    assert pg.execute("SELECT count(*), max(at)::text FROM t WHERE at > '2025-01-01'").fetchone() == (
        100,
        "2025-01-01 00:00:01+00",
    )
