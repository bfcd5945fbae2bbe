"""Tables of large values load in rowid ranges, so no load query or COPY message has to hold
the whole table (PostgreSQL refuses a message over 1 GB; DuckDB would hold it all in memory)."""

from __future__ import annotations

import pytest

from etl.core.plan import SyncRows
from etl.errors import DataError
from etl.run.validate import Measuring


@pytest.fixture
def small_chunks():
    """Load queries of 1000 bytes of rows: pass as ``migration(script, measuring=small_chunks)``."""
    return Measuring(chunk_bytes=1000)


def blobs(n: int, size: int) -> list[bytes]:
    return [bytes([i % 256]) * size for i in range(n)]


def test_a_table_larger_than_a_chunk_loads_in_rowid_ranges_with_every_byte(migration, pg, small_chunks):
    values = blobs(50, 300)
    m = migration(
        [("CREATE TABLE b (id INTEGER PRIMARY KEY, x BLOB)", ())]
        + [("INSERT INTO b (x) VALUES (?)", (v,)) for v in values],
        measuring=small_chunks,
    )
    m.write_spec()
    table = m.check().mapping.tables[0]
    assert len(table.row_ranges) >= 15
    assert table.row_ranges[0][1] < table.row_ranges[1][0]  # consecutive, without overlap
    assert table.row_ranges[0][0] == -(2**63) and table.row_ranges[-1][1] == 2**63 - 1
    result = m.apply()
    assert result.rows == {"b": 50}
    assert [r[0] for r in pg.execute("SELECT x FROM b ORDER BY id")] == values


def test_rows_the_app_writes_after_the_ranges_were_measured_still_load(migration, pg, small_chunks):
    """Between validation and the load the app may write rows below the first rowid or above the
    last: the first range is open below and the last above, and verification sees every row."""
    from etl.run.executor import apply_plan

    m = migration(
        [("CREATE TABLE b (id INTEGER PRIMARY KEY, x BLOB)", ())]
        + [("INSERT INTO b (x) VALUES (?)", (v,)) for v in blobs(50, 300)],
        measuring=small_chunks,
    )
    plan = m.plan()
    m.change_source("INSERT INTO b VALUES (-5, x'05'), (0, x'00'); INSERT INTO b (x) VALUES (x'33');")
    result = apply_plan(plan, m.source, m.url)
    assert result.verified and result.rows == {"b": 53}
    assert pg.execute("SELECT min(id), max(id), count(*) FROM b").fetchone() == (-5, 51, 53)


def test_a_column_called_rowid_does_not_hide_the_rowid(migration, pg, small_chunks):
    m = migration(
        [("CREATE TABLE b (rowid TEXT, x BLOB)", ())]
        + [("INSERT INTO b VALUES (?, ?)", (f"r{i}", v)) for i, v in enumerate(blobs(20, 300))],
        measuring=small_chunks,
    )
    m.write_spec()
    table = m.check().mapping.tables[0]
    assert table.rowid == "_rowid_" and len(table.row_ranges) > 1
    m.apply()
    assert pg.execute("SELECT count(*), count(DISTINCT rowid) FROM b").fetchone() == (20, 20)


def test_a_bad_value_in_a_later_range_is_named_and_nothing_is_loaded(migration, pg, small_chunks):
    m = migration(
        [("CREATE TABLE b (id INTEGER PRIMARY KEY, x BLOB, n INTEGER)", ())]
        + [("INSERT INTO b (x, n) VALUES (?, ?)", (v, 1)) for v in blobs(30, 300)]
        + [("UPDATE b SET n = 'many' WHERE id = 29", ())],
        measuring=small_chunks,
    )
    with pytest.raises(DataError, match='^table "b", row id=29: column "n": expected an integer'):
        m.apply()
    assert pg.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
    ).fetchone() == (0,)


def test_a_where_filter_still_applies_within_each_range(migration, pg, small_chunks):
    m = migration(
        [("CREATE TABLE b (id INTEGER PRIMARY KEY, x BLOB)", ())]
        + [("INSERT INTO b (x) VALUES (?)", (v,)) for v in blobs(40, 300)],
        measuring=small_chunks,
    )
    m.apply("tables:\n  b:\n    where: id % 2 = 0\n")
    assert pg.execute("SELECT count(*), min(id), max(id) FROM b").fetchone() == (20, 2, 40)


def test_a_large_table_of_small_rows_streams_through_one_query(migration):
    """Splitting bounds the bytes of one vector of rows: small rows never need it, however many."""
    m = migration(
        [("CREATE TABLE s (id INTEGER PRIMARY KEY, x TEXT)", ())]
        + [("INSERT INTO s (x) VALUES (?)", (f"value {i:040d}",)) for i in range(8000)],
        measuring=Measuring(chunk_bytes=200_000),
    )
    m.write_spec()
    table = m.check().mapping.tables[0]
    assert table.source_rows == 8000
    assert table.row_ranges == ()


def test_a_table_of_large_rows_is_compared_by_digests_and_a_changed_byte_is_still_seen(
    migration, pg, small_chunks
):
    """PostgreSQL sends the MD5 of a large table's bytea and text values to verification and row
    diffs (not the values: DuckDB would hold 2,048 of them at once); a byte changed in the target
    is found all the same, by key."""
    from etl.run.executor import verify_target
    from etl.run.verify import describe_failures, target_select

    m = migration(
        [("CREATE TABLE b (id INTEGER PRIMARY KEY, x BLOB, note TEXT)", ())]
        + [
            ("INSERT INTO b (x, note) VALUES (?, ?)", (v, f"note {i}" * 40))
            for i, v in enumerate(blobs(30, 300))
        ],
        measuring=small_chunks,
    )
    m.write_spec()
    checked = m.check()
    table = checked.mapping.tables[0]
    assert target_select("public", table) == (
        'SELECT "id" AS "id", md5("x") AS "x", md5("note") AS "note" FROM "public"."b"'
    )
    assert m.apply().verified
    assert not m.plan().has_changes

    pg.execute("UPDATE b SET x = overlay(x PLACING '\\x00'::bytea FROM 150) WHERE id = 7")
    pg.execute("UPDATE b SET note = note || ' ' WHERE id = 12")
    pg.commit()
    (sync,) = [s for s in m.plan().steps if isinstance(s, SyncRows)]
    assert (sync.diff.insert, sync.diff.update, sync.diff.unchanged) == (0, 2, 28)
    verification = verify_target(checked.mapping, checked.spec.source, m.url, frozenset({"b"}))
    assert describe_failures(verification) == (
        'table "b": the same number of rows but different values '
        "(e.g. id=12: different values; id=7: different values)"
    )
    m.apply()  # the two rows are made right again, and verified
    assert pg.execute("SELECT x FROM b WHERE id = 7").fetchone() == (blobs(30, 300)[6],)
