"""DuckDB's memory is bounded: beyond duck.MEMORY_LIMIT_MB (or ETL_MEMORY_LIMIT_MB), temp tables, joins and sorts spill to a
directory of this process's own, which DuckDB removes again; answers stay the same."""

from __future__ import annotations

import hashlib
import os
import tempfile

import pytest

from etl import duck


@pytest.fixture
def little_memory(monkeypatch, tmp_path):
    monkeypatch.setenv("ETL_MEMORY_LIMIT_MB", "40")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where spill_directory() lies


def test_duckdb_spills_into_its_own_directory_and_removes_it(little_memory, tmp_path):
    con = duck.connect()
    assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0] in ("40.0 MB", "38.1 MiB")
    spill = duck.spill_directory()
    assert os.path.dirname(spill) == str(tmp_path)
    con.execute("CREATE TEMP TABLE t AS SELECT i, md5(CAST(i AS VARCHAR)) AS h FROM range(2000000) r(i)")
    joined = con.execute("SELECT count(*) FROM t a JOIN t b ON a.h = b.h").fetchone()
    assert joined == (2_000_000,)
    assert os.listdir(spill)  # it did spill (the table alone is ~100 MB)
    con.close()
    assert not os.path.exists(spill)


def test_a_row_diff_larger_than_duckdbs_memory_counts_every_change(migration, pg, little_memory):
    m = migration(
        """
        CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 600000)
        INSERT INTO t SELECT i, 'name ' || i || ' ' || hex(randomblob(16)) FROM n;
        """
    )
    m.apply()
    m.change_source("UPDATE t SET name = 'changed' WHERE id % 1000 = 0; DELETE FROM t WHERE id <= 10;")
    (sync,) = [s for s in m.plan().steps if type(s).__name__ == "SyncRows"]
    assert (sync.diff.insert, sync.diff.update, sync.diff.delete) == (0, 600, 10)


def test_a_value_larger_than_the_memory_limit_still_loads(migration, pg, little_memory):
    """A value cannot spill: the limit grows with the source's largest record (measured by
    validate), so a 60 MB BLOB loads and verifies under a 40 MB limit."""
    value = os.urandom(60 * 1024 * 1024)
    m = migration(
        [("CREATE TABLE b (id INTEGER PRIMARY KEY, x BLOB)", ()), ("INSERT INTO b (x) VALUES (?)", (value,))]
    )
    assert m.apply().verified
    assert pg.execute("SELECT md5(x) FROM b").fetchone()[0] == hashlib.md5(value).hexdigest()
