"""Re-syncs that cost what changed: `etl plan` skips a table whose rows are provably unchanged on
both sides since the apply that verified them (its SQLite pages, and the target's rows, file and
columns, as that apply left them), names it, and compares every other table in full. A change
anywhere, on either side, in the spec, or behind etl's back, is found and synced."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import jsonschema
import pytest
from psycopg import sql
from typer.testing import CliRunner

from etl.cli import app
from etl.core.plan import LoadRows, SyncRows
from etl.errors import DataError, EtlError, TargetError, VerificationFailed
from etl.pipeline import apply, check, plan_for, verify
from etl.run import validate as validate_module
from etl.run.validate import Measuring, with_sizes
from etl.run.verify import RANGES_PER_QUERY, merged_ranges, range_batches, rows_in_ranges
from etl.specfile.sqltext import beyond_the_row
from etl.sqlite.pages import (
    HIGHEST,
    LOWEST,
    HashingStopped,
    PageRanges,
    changed_ranges,
    table_fingerprints,
    table_fingerprints_and_ranges,
    table_ranges,
)

runner = CliRunner()
PLAN_SCHEMA = json.loads((Path(__file__).parent.parent / "schemas" / "etl-plan.schema.json").read_text())

BIG_ROWS = 100_000

# A 100k-row table (text of fixed width: an update in place keeps the row's size) beside a small
# one, and a WITHOUT ROWID table whose rows live in its key's b-tree.
SOURCE = f"""
CREATE TABLE big (id INTEGER PRIMARY KEY, code TEXT NOT NULL, n INTEGER);
WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < {BIG_ROWS})
INSERT INTO big SELECT i, printf('code-%08d', i), i % 97 FROM r;
CREATE TABLE small (id INTEGER PRIMARY KEY, name TEXT);
INSERT INTO small VALUES (1, 'one'), (2, 'two');
CREATE TABLE tag (name TEXT PRIMARY KEY, n INTEGER) WITHOUT ROWID;
INSERT INTO tag VALUES ('a', 1), ('b', 2);
"""
TABLES = ("big", "small", "tag")


def skipped(plan) -> set[str]:
    return {name for name, _ in plan.skipped}


def diff_of(plan, table: str) -> tuple[int, int, int]:
    """(insert, update, delete) the plan counted for a table: sync steps and delete steps."""
    inserts = updates = deletes = 0
    for step in plan.steps:
        name = getattr(getattr(step, "table", None), "name", None)
        if name != table:
            continue
        if hasattr(step, "diff"):
            inserts, updates = step.diff.insert, step.diff.update
        if hasattr(step, "count"):
            deletes = step.count
    return inserts, updates, deletes


def apply_now(m, allow_destructive: bool = False):
    checked = m.check()
    return apply(checked, plan_for(checked), allow_destructive=allow_destructive)


def target_matches_source(m) -> bool:
    return verify(m.check()).ok


def applied(migration, source: str):
    """A migration of `source`, applied once: every table recorded as verified equal."""
    m = migration(source)
    m.write_spec()
    m.apply()
    return m


def lazy_plan(m):
    """The plan `etl plan` makes: sizes and units measured only where the plan needs them."""
    return plan_for(check(m.spec_path, {}, measuring=m.measuring, sizes_later=True))


@pytest.fixture
def loaded(migration):
    """The source, applied once: every table recorded as verified equal."""
    return applied(migration, SOURCE)


# --- 1. what is skipped, and how the plan says so ----------------------------------------------------


def test_tables_unchanged_on_both_sides_are_skipped_and_named(loaded, pg_url):
    plan = loaded.plan()
    assert skipped(plan) == set(TABLES)
    assert not plan.has_changes

    text = runner.invoke(app, ["plan", str(loaded.spec_path)], catch_exceptions=False)
    assert text.exit_code == 0, text.stderr
    line = next(x for x in text.stdout.splitlines() if "unchanged since apply of" in x)
    assert all(f'"{t}"' in line for t in TABLES)
    assert "No changes" in text.stdout

    verbose = runner.invoke(app, ["plan", str(loaded.spec_path), "--verbose"], catch_exceptions=False)
    assert sum("unchanged since apply of" in x for x in verbose.stdout.splitlines()) == len(TABLES)
    assert "--full-diff" in verbose.stdout  # says how to compare them anyway

    document = json.loads(runner.invoke(app, ["plan", str(loaded.spec_path), "--json"]).stdout)
    assert {s["table"] for s in document["skipped"]} == set(TABLES)
    assert all(s["reason"].startswith("unchanged since apply of ") for s in document["skipped"])


def test_full_diff_compares_every_table(loaded):
    plan = plan_for(loaded.check(), full_diff=True)
    assert plan.skipped == ()
    assert not plan.has_changes
    result = runner.invoke(app, ["plan", str(loaded.spec_path), "--full-diff"], catch_exceptions=False)
    assert "unchanged since apply of" not in result.stdout


def unsized(plan):
    """The plan with the row counts and sizes of the tables it syncs left out."""
    from dataclasses import replace

    def bare(step):
        if not isinstance(step, SyncRows):
            return step
        return replace(step, table=replace(step.table, source_rows=None, largest_row=0, row_ranges=()))

    return replace(plan, steps=tuple(bare(s) for s in plan.steps))


def test_a_plan_measures_only_the_tables_it_does_not_skip_and_plans_the_same(migration):
    """`etl plan` leaves the row counts and sizes of the tables it skips unmeasured, and of those it
    compares in ranges (read by rowid, their records within a page each): the plan it makes is
    the one made with every table measured, on a fresh target, an unchanged one, and one whose
    source changed (a chunk of 64 kB, below the file's size, has the sizes measured)."""
    m = migration(SOURCE, measuring=Measuring(chunk_bytes=64 * 1024))
    m.write_spec()

    def both_ways():
        eager = plan_for(check(m.spec_path, {}, measuring=m.measuring))
        lazy = plan_for(check(m.spec_path, {}, measuring=m.measuring, sizes_later=True))
        assert unsized(lazy) == unsized(eager)
        return lazy

    fresh = both_ways()
    loads = {s.table.name: s.table for s in fresh.steps if isinstance(s, LoadRows)}
    assert loads["big"].source_rows == BIG_ROWS and loads["big"].largest_row > 0
    m.apply()
    assert skipped(both_ways()) == set(TABLES)
    m.change_source("UPDATE big SET code = 'code-XXXXXXXX' WHERE id = 54321")
    changed = both_ways()
    assert skipped(changed) == {"small", "tag"}
    assert diff_of(changed, "big") == (0, 1, 0)
    (sync,) = [s for s in changed.steps if isinstance(s, SyncRows)]
    assert sync.rowids is not None and sync.table.source_rows is None  # in ranges, not measured
    apply_now(m)
    assert target_matches_source(m)


def test_a_plan_measures_the_datetime_units_only_of_the_tables_it_compares(migration):
    """An `auto` datetime column holding epoch milliseconds (as Prisma writes them) has its unit
    measured from the data. `etl plan` measures it only for the tables it compares: a skipped
    table's record does not depend on it, and a compared one reads its values in milliseconds."""
    m = migration(
        "CREATE TABLE event (id INTEGER PRIMARY KEY, title TEXT, at DATETIME NOT NULL);"
        "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 2000) "
        "INSERT INTO event SELECT i, 'e' || i, 1735689600000 + i * 1000 FROM r;"
        "CREATE TABLE note (id INTEGER PRIMARY KEY, at DATETIME);"
        "INSERT INTO note VALUES (1, 1735689600123), (2, NULL);"
    )
    m.write_spec()
    m.apply()

    def unit(mapping, table: str) -> str | None:
        return next(t for t in mapping.tables if t.name == table).column("at").conversion.integer_unit

    checked = check(m.spec_path, {}, measuring=m.measuring, sizes_later=True)
    assert unit(checked.mapping, "event") is None and unit(checked.mapping, "note") is None  # not yet
    measured = with_sizes(checked, {"event"})
    assert unit(measured, "event") == "ms" and unit(measured, "note") is None
    assert unit(check(m.spec_path, {}, measuring=m.measuring).mapping, "note") == "ms"
    assert skipped(lazy_plan(m)) == {"event", "note"}
    m.change_source("UPDATE event SET title = 'changed' WHERE id = 1500")
    plan = lazy_plan(m)
    assert skipped(plan) == {"note"}
    assert diff_of(plan, "event") == (0, 1, 0)  # milliseconds read as such: one row differs
    (sync,) = [s for s in plan.steps if getattr(s, "table", None) and s.table.name == "event"]
    assert sync.table.column("at").conversion.integer_unit == "ms"
    apply_now(m)
    assert target_matches_source(m)
    assert skipped(lazy_plan(m)) == {"event", "note"}


# --- 2. the source changes ------------------------------------------------------------------------


def test_one_row_updated_in_place_in_a_100k_row_table_is_found_and_synced(loaded, pg):
    size = loaded.source.stat().st_size
    loaded.change_source("UPDATE big SET code = 'code-XXXXXXXX' WHERE id = 54321")
    assert loaded.source.stat().st_size == size  # the same pages, one of them different

    plan = loaded.plan()
    assert "big" not in skipped(plan)
    assert skipped(plan) == {"small", "tag"}
    assert diff_of(plan, "big") == (0, 1, 0)

    apply_now(loaded)
    assert pg.execute("SELECT code FROM big WHERE id = 54321").fetchone() == ("code-XXXXXXXX",)
    assert target_matches_source(loaded)
    assert skipped(loaded.plan()) == set(TABLES)  # the sync recorded the table again


def test_rows_inserted_and_deleted_in_the_source_are_found(loaded, pg):
    loaded.change_source("INSERT INTO small VALUES (3, 'three'); DELETE FROM big WHERE id = 7;")
    loaded.change_source("DELETE FROM tag WHERE name = 'a'")
    plan = loaded.plan()
    assert skipped(plan) == set()
    assert diff_of(plan, "small") == (1, 0, 0)
    assert diff_of(plan, "big") == (0, 0, 1)
    assert diff_of(plan, "tag") == (0, 0, 1)
    apply_now(loaded, allow_destructive=True)
    assert target_matches_source(loaded)
    assert pg.execute("SELECT count(*) FROM big").fetchone() == (BIG_ROWS - 1,)


def test_a_vacuumed_source_whose_pages_moved_is_not_skipped_wrongly(loaded):
    loaded.change_source("DELETE FROM small WHERE id = 1")
    with closing(sqlite3.connect(loaded.source)) as conn:
        conn.execute("VACUUM")  # rewrites the file: pages of every table may move
    plan = loaded.plan()
    assert "small" not in skipped(plan)
    assert diff_of(plan, "small") == (0, 0, 1)
    apply_now(loaded, allow_destructive=True)
    assert target_matches_source(loaded)


def test_a_wal_source_with_writes_not_checkpointed_is_compared_in_full(migration, pg):
    m = migration(SOURCE)
    m.change_source("PRAGMA journal_mode = WAL")
    m.write_spec()
    m.apply()
    writer = sqlite3.connect(m.source)
    try:
        writer.execute("PRAGMA wal_autocheckpoint = 0")
        writer.execute("UPDATE small SET name = 'uno' WHERE id = 1")
        writer.commit()  # in the -wal file only, while this connection stays open
        assert Path(f"{m.source}-wal").stat().st_size > 0
        plan = m.plan()
        assert skipped(plan) == set()  # the file's pages are not the rows: nothing is skipped
        assert diff_of(plan, "small") == (0, 1, 0)
        apply_now(m)
        assert pg.execute("SELECT name FROM small WHERE id = 1").fetchone() == ("uno",)
    finally:
        writer.close()
    # Checkpointed on close: the pages are the rows again. "small" was synced while they were not,
    # so that apply recorded nothing of it: compared in full (and equal) until an apply records it.
    plan = m.plan()
    assert skipped(plan) == {"big", "tag"}
    assert not plan.has_changes


# --- 3. the target changes behind etl's back --------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        "UPDATE big SET n = n + 1 WHERE id = 500",
        "DELETE FROM big WHERE id = 500",
        "INSERT INTO big VALUES (100001, 'code-extra', 1)",
        "TRUNCATE big",
        "UPDATE big SET n = n WHERE id = 500",  # the same values: a new row version all the same
        "ALTER TABLE big DROP COLUMN n; ALTER TABLE big ADD COLUMN n integer DEFAULT 1",
    ],
)
def test_a_target_written_behind_etls_back_is_compared_in_full_and_synced(loaded, pg, change):
    pg.execute(change)
    plan = loaded.plan()
    assert "big" not in skipped(plan)
    assert skipped(plan) == {"small", "tag"}
    apply_now(loaded, allow_destructive=True)
    assert target_matches_source(loaded)
    assert pg.execute("SELECT count(*) FROM big").fetchone() == (BIG_ROWS,)
    assert pg.execute("SELECT n FROM big WHERE id = 500").fetchone() == (500 % 97,)


def test_a_vacuum_full_of_the_target_is_compared_in_full(loaded, pg):
    pg.execute("VACUUM FULL small")  # a new file: no proof, though the rows are the same
    plan = loaded.plan()
    assert "small" not in skipped(plan)
    assert not plan.has_changes


# --- 4. the spec changes --------------------------------------------------------------------------


EVENTS = "CREATE TABLE ev (id INTEGER PRIMARY KEY, at DATETIME); INSERT INTO ev VALUES (1, 1700000000);"


def converter_spec(converter: str) -> str:
    return f"tables:\n  ev:\n    columns:\n      at: {{type: timestamptz, converter: {converter}}}\n"


def test_a_table_whose_conversion_changes_in_the_spec_is_compared_again(migration, pg):
    m = migration(EVENTS)
    m.apply(converter_spec("epoch_milliseconds"))
    assert skipped(m.plan()) == {"ev"}
    plan = m.plan(converter_spec("epoch_seconds"))
    assert skipped(plan) == set()
    assert diff_of(plan, "ev") == (0, 1, 0)
    apply_now(m)
    assert pg.execute("SELECT extract(year FROM at AT TIME ZONE 'UTC')::int FROM ev").fetchone() == (2023,)


def test_a_filter_added_in_the_spec_is_compared_again(loaded):
    plan = loaded.plan("tables:\n  small:\n    where: id > 1\n")
    assert "small" not in skipped(plan)
    assert diff_of(plan, "small") == (0, 0, 1)


@pytest.mark.parametrize(
    "spec, change",
    [
        (
            "tables:\n  small:\n    where: id IN (SELECT n FROM big WHERE id IN (1, 2))\n",
            "UPDATE big SET n = 5 WHERE id = 2",  # only big's pages change
        ),
        (
            "tables:\n  small:\n    columns:\n      id: {}\n      name: {}\n"
            "      biggest: {expression: '(SELECT max(n) FROM big)', type: bigint}\n",
            "UPDATE big SET n = 1000 WHERE id = 5",
        ),
    ],
    ids=["where", "expression"],
)
def test_a_table_whose_rows_read_another_table_is_compared_every_time(migration, spec, change):
    m = migration(SOURCE)
    m.write_spec(spec)
    m.apply()
    m.change_source(change)
    plan = m.plan()
    assert "small" not in skipped(plan)
    assert diff_of(plan, "small") != (0, 0, 0)
    assert [name for name, _ in plan.compared_every_time] == ["small"]
    text = runner.invoke(app, ["plan", str(m.spec_path)], catch_exceptions=False).stdout
    assert '= "small": rows compared every time, never skipped: ' in text
    assert "reads other rows (a subquery)" in text
    apply_now(m, allow_destructive=True)
    assert target_matches_source(m)


def test_a_query_table_is_compared_every_time_and_promises_no_skip(migration):
    m = migration(SOURCE)
    query = "SELECT s.id AS id, s.name AS name, b.n AS n FROM small s JOIN big b ON b.id = s.id"
    m.write_spec(f"tables:\n  joined:\n    query: {json.dumps(query)}\n    primary_key: [id]\n")
    m.apply()
    assert "joined" not in {t.name for t in m.plan().unrecorded}  # it could never be recorded
    m.change_source("UPDATE big SET n = 50 WHERE id = 2")  # small's pages stay as they were
    plan = m.plan()
    assert "joined" not in skipped(plan) and "joined" not in {t.name for t in plan.unrecorded}
    assert diff_of(plan, "joined") == (0, 1, 0)
    document = json.loads(runner.invoke(app, ["plan", str(m.spec_path), "--json"]).stdout)
    jsonschema.validate(document, PLAN_SCHEMA)
    assert document["compared_every_time"] == [
        {
            "table": "joined",
            "reason": "rows compared every time, never skipped: a query: table holds what its query reads",
        }
    ]


@pytest.mark.parametrize(
    "text, reads",
    [
        ("deleted_at IS NULL", None),
        ("lower(\"select\") = 'select' AND [date] > 3", None),  # quoted names and strings
        ("id IN (SELECT id FROM other)", "other rows"),
        ("EXISTS (select 1 FROM t)", "other rows"),
        ("created_at > datetime('now', '-30 days')", "clock"),
        ("date(created_at) = '2024-01-01'", "clock"),  # a value 'now' reads the clock too
        ("created_at < CURRENT_TIMESTAMP", "clock"),
        ("abs(random()) % 2 = 0", "random"),
        ("id > last_insert_rowid ()", "state"),
    ],
)
def test_what_an_expression_reads_beyond_its_row(text, reads):
    found = beyond_the_row(text)
    assert (found is None) if reads is None else (found is not None and reads in found)


# --- 5. the fingerprints themselves -------------------------------------------------------------------


def test_a_page_fingerprint_moves_with_any_row_and_only_its_table(tmp_sqlite):
    source = tmp_sqlite(SOURCE)
    before = table_fingerprints(source, list(TABLES))
    assert before is not None and set(before) == set(TABLES)
    assert table_fingerprints(source, list(TABLES)) == before
    with closing(sqlite3.connect(source)) as conn:
        conn.execute("UPDATE tag SET n = 3 WHERE name = 'a'")
        conn.commit()
    after = table_fingerprints(source, list(TABLES))
    assert after is not None
    assert after["tag"] != before["tag"]
    assert (after["big"], after["small"]) == (before["big"], before["small"])


def test_a_view_or_a_missing_table_has_no_fingerprint(tmp_sqlite):
    source = tmp_sqlite("CREATE TABLE t (id INTEGER PRIMARY KEY); CREATE VIEW v AS SELECT * FROM t;")
    assert table_fingerprints(source, ["t", "v", "nothing"]).keys() == {"t"}


def test_an_apply_without_verification_records_nothing_to_skip(migration):
    m = migration(SOURCE)
    checked = m.check()
    apply(checked, plan_for(checked), verify=False)
    assert skipped(m.plan()) == set()


def test_tables_an_apply_without_verification_loaded_are_recorded_by_the_next_apply(migration, pg):
    """Found equal row by row, they are named; the next apply changes nothing in them but verifies
    and records them, and later plans skip them."""
    m = migration(SOURCE)
    checked = m.check()
    apply(checked, plan_for(checked), verify=False)
    xmins = pg.execute('SELECT xmin::text::bigint FROM "small" ORDER BY id').fetchall()
    pg.commit()

    plan = m.plan()
    assert not plan.has_changes and plan.has_work() and not plan.has_work(verify=False)
    assert {t.name for t in plan.unrecorded} == set(TABLES)
    shown = runner.invoke(app, ["plan", str(m.spec_path)], catch_exceptions=False)
    assert "nothing recorded proves them unchanged (apply verifies and records them" in shown.stdout
    document = json.loads(runner.invoke(app, ["plan", str(m.spec_path), "--json"]).stdout)
    assert set(document["unrecorded"]) == set(TABLES)

    result = runner.invoke(app, ["apply", str(m.spec_path), "--yes"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert pg.execute('SELECT xmin::text::bigint FROM "small" ORDER BY id').fetchall() == xmins
    pg.commit()
    again = m.plan()
    assert skipped(again) == set(TABLES) and not again.unrecorded


@pytest.mark.parametrize(
    "spec, change",
    [
        ("tables:\n  small:\n    where: id > 0\n", ""),
        ("", "VACUUM"),
        # every page range of big changes, its rows stay
        (
            "",
            "CREATE TEMP TABLE c AS SELECT * FROM big; DELETE FROM big; INSERT INTO big SELECT * FROM c ORDER BY id DESC",
        ),
    ],
    ids=["spec changed, no row moved", "source vacuumed", "rows written again in another order"],
)
def test_a_table_found_equal_whose_record_no_longer_proves_it_is_recorded_anew(loaded, spec, change):
    """Else it would be compared in full by every plan until one of its rows changed."""
    loaded.write_spec(spec)
    loaded.change_source(change)
    plan = loaded.plan()
    found_equal = {t.name for t in plan.unrecorded}
    assert found_equal and not plan.has_changes and plan.has_work()
    loaded.apply()
    assert found_equal <= skipped(loaded.plan())


def test_a_wal_source_with_writes_not_checkpointed_names_no_table_to_record(migration):
    """Its pages are not its rows: an apply could record nothing, so none is named."""
    m = migration(SOURCE)
    m.change_source("PRAGMA journal_mode = WAL")
    checked = m.check()
    apply(checked, plan_for(checked), verify=False)
    writer = sqlite3.connect(m.source)
    try:
        writer.execute("PRAGMA wal_autocheckpoint = 0")
        writer.execute("UPDATE small SET name = 'uno' WHERE id = 1")
        writer.commit()
        plan = m.plan()
        assert diff_of(plan, "small") == (0, 1, 0)
        assert not plan.unrecorded
    finally:
        writer.close()
    assert {t.name for t in m.plan().unrecorded} == {"big", "tag"}  # "small" differs: synced, not named


def test_an_apply_without_verification_records_nothing_even_when_asked_to(migration):
    m = migration(SOURCE)
    checked = m.check()
    apply(checked, plan_for(checked), verify=False)
    result = runner.invoke(app, ["apply", str(m.spec_path), "--yes", "--no-verify"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert {t.name for t in m.plan().unrecorded} == set(TABLES)


HOSTILE = 'CREATE TABLE "we""ird; --t" (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO "we""ird; --t" VALUES (1, \'a\');'


def test_a_table_with_a_hostile_name_is_skipped_and_its_changes_found(migration, pg):
    m = migration(HOSTILE)
    m.apply()
    assert skipped(m.plan()) == {'we"ird; --t'}
    pg.execute('UPDATE "we""ird; --t" SET v = \'b\'')
    plan = m.plan()
    assert skipped(plan) == set()
    assert diff_of(plan, 'we"ird; --t') == (0, 1, 0)


# `INTEGER PRIMARY KEY DESC` written on the column is not the rowid (a quirk SQLite keeps): its
# values and the rowids differ, so its rowid ranges are not ranges of the key.
DESC_KEY = f"""
CREATE TABLE d (x INTEGER PRIMARY KEY DESC, code TEXT NOT NULL);
WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < {BIG_ROWS})
INSERT INTO d SELECT {BIG_ROWS} + 1 - i, printf('code-%08d', i) FROM r;
"""


def test_a_key_declared_integer_primary_key_desc_is_not_taken_for_the_rowid(migration, pg):
    m = migration(DESC_KEY)
    m.apply()
    m.change_source("UPDATE d SET code = 'changed-0001' WHERE x = 10; DELETE FROM d WHERE x = 20")
    plan = m.plan()
    assert diff_of(plan, "d") == (0, 1, 1)
    apply_now(m, allow_destructive=True)
    assert pg.execute("SELECT code FROM d WHERE x IN (10, 20)").fetchall() == [("changed-0001",)]
    assert target_matches_source(m)


def test_a_record_older_than_half_the_transaction_id_space_proves_nothing(loaded, pg):
    # Transaction ids are 32 bits: 2^31 transactions after an apply, a later one could carry an id
    # that apply recorded. Such a record is as if the table were written: compared in full.
    pg.execute("UPDATE etl.fingerprints SET oldest_xid = oldest_xid - 2147483648 WHERE table_name = 'small'")
    plan = loaded.plan()
    assert skipped(plan) == {"big", "tag"}
    assert not plan.has_changes


def test_the_recorded_state_is_the_one_the_apply_committed(loaded, pg):
    recorded = pg.execute(
        "SELECT table_name, rows, (SELECT sum(value::bigint) FROM jsonb_each_text(xmins)) FROM etl.fingerprints "
        "ORDER BY table_name"
    ).fetchall()
    assert recorded == [("big", BIG_ROWS, BIG_ROWS), ("small", 2, 2), ("tag", 2, 2)]


def test_a_table_the_apply_created_is_recorded_without_reading_its_rows_xmins(migration, pg):
    # Every row of a table created in the apply's transaction carries that transaction's id:
    # the record is the rows verification counted, under that id, and equals a reading of them.
    m = migration(SOURCE)
    m.write_spec()
    result, sent = apply_observed(m)
    assert result.verified
    assert not [s.text for s in sent if "GROUP BY xmin" in s.text]
    for table in TABLES:
        xmins, rows, oldest = recorded_xmins(pg, table)
        assert xmins == scanned_xmins(pg, table) and rows == sum(xmins.values())
        assert oldest % 2**32 == int(next(iter(xmins)))
    assert skipped(m.plan()) == set(TABLES)


# --- 6. a changed table is compared in the rowid ranges whose pages changed -------------------------


def ranges_of(plan, table: str) -> tuple[int, int] | None:
    """(changed ranges, all ranges) of a table the plan compared in part; None: not in part."""
    return next(((changed, total) for name, changed, total, _ in plan.ranged if name == table), None)


def test_one_row_changed_in_a_100k_row_table_is_found_in_its_own_range_only(loaded):
    loaded.change_source("UPDATE big SET code = 'code-XXXXXXXX' WHERE id = 54321")
    plan = loaded.plan()
    changed, total = ranges_of(plan, "big")
    assert changed == 1 and total > 100  # one leaf page of several hundred
    assert diff_of(plan, "big") == (0, 1, 0)
    step = next(s for s in plan.steps if getattr(getattr(s, "table", None), "name", None) == "big")
    assert step.diff.unchanged == BIG_ROWS - 1  # the ranges not compared count as unchanged

    text = runner.invoke(app, ["plan", str(loaded.spec_path)], catch_exceptions=False).stdout
    assert f'"big": 1 of {total:,} page ranges changed since apply of ' in text
    document = json.loads(runner.invoke(app, ["plan", str(loaded.spec_path), "--json"]).stdout)
    assert document["ranged"][0]["table"] == "big"
    assert (document["ranged"][0]["changed_ranges"], document["ranged"][0]["ranges"]) == (1, total)


@pytest.mark.parametrize(
    ("change", "diff"),
    [
        ("INSERT INTO big VALUES (100001, 'code-extra', 1)", (1, 0, 0)),  # past the last range
        ("INSERT INTO big VALUES (0, 'code-first', 1)", (1, 0, 0)),  # before the first range
        ("DELETE FROM big WHERE id = 50000", (0, 0, 1)),  # a range that shrank
        ("DELETE FROM big WHERE id BETWEEN 40000 AND 41000", (0, 0, 1001)),  # pages freed
        # a row grown past its page's free space: the page splits, the ranges' bounds move
        ("UPDATE big SET code = printf('%.3000c', 'x') WHERE id = 30000", (0, 1, 0)),
    ],
)
def test_inserts_deletes_and_page_splits_are_found_in_their_ranges(loaded, change, diff):
    loaded.change_source(change)
    plan = loaded.plan()
    changed, total = ranges_of(plan, "big")
    assert 1 <= changed < total
    assert diff_of(plan, "big") == diff
    apply_now(loaded, allow_destructive=True)
    assert target_matches_source(loaded)


def test_a_vacuumed_source_is_compared_where_its_pages_moved(loaded):
    loaded.change_source("DELETE FROM big WHERE id % 1000 = 0")
    with closing(sqlite3.connect(loaded.source)) as conn:
        conn.execute("VACUUM")  # every leaf page rewritten, most at other page numbers
    plan = loaded.plan()
    assert "big" not in skipped(plan)
    assert diff_of(plan, "big") == (0, 0, BIG_ROWS // 1000)
    apply_now(loaded, allow_destructive=True)
    assert target_matches_source(loaded)


def test_a_target_row_changed_behind_etls_back_in_an_unchanged_range_is_found(loaded, pg):
    loaded.change_source("UPDATE big SET code = 'code-XXXXXXXX' WHERE id = 54321")
    pg.execute("UPDATE big SET n = n + 1 WHERE id = 500")  # far from the source's changed page
    plan = loaded.plan()
    assert ranges_of(plan, "big") is None  # the target moved: the table is compared in full
    assert diff_of(plan, "big") == (0, 2, 0)
    apply_now(loaded)
    assert target_matches_source(loaded)


# A trigger or rule someone else made on a table etl writes fires on etl's writes, and may change
# rows anywhere: outside the ranges a sync compared, or in a table the plan skipped.


def foreign_trigger(pg, body: str) -> None:
    """A trigger of the target's own (not etl's) that runs `body` after each update of big."""
    pg.execute(
        f"CREATE FUNCTION bump() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {body} RETURN NEW; END $$"
    )
    pg.execute("CREATE TRIGGER bump AFTER UPDATE ON big FOR EACH ROW EXECUTE FUNCTION bump()")


def test_a_trigger_etl_did_not_make_changing_a_row_outside_the_ranges_fails_the_apply(loaded, pg):
    foreign_trigger(pg, "UPDATE big SET n = -1 WHERE id = 7 AND n <> -1;")
    loaded.change_source("UPDATE big SET code = 'code-XXXXXXXX' WHERE id = 54321")
    plan = loaded.plan()
    assert ranges_of(plan, "big") is not None  # the sync compares the changed range only
    assert plan.foreign_triggers == (("big", "trigger", "bump"),)
    assert {t.name for t in plan.tables} == set(TABLES)  # apply verifies every table in full

    with pytest.raises(VerificationFailed, match=r'id=7: different values.*DISABLE TRIGGER "bump"'):
        apply_now(loaded)
    assert pg.execute("SELECT n FROM big WHERE id = 7").fetchone() == (7,)  # nothing committed

    pg.execute("ALTER TABLE big DISABLE TRIGGER bump")  # disabled, it fires no more
    assert loaded.plan().foreign_triggers == ()
    apply_now(loaded)
    assert target_matches_source(loaded)


def test_a_trigger_etl_did_not_make_writing_a_table_the_plan_skipped_fails_the_apply(loaded, pg):
    foreign_trigger(pg, "UPDATE small SET name = 'changed' WHERE id = 1;")
    loaded.change_source("UPDATE big SET code = 'code-XXXXXXXX' WHERE id = 54321")
    plan = loaded.plan()
    assert "small" in skipped(plan)
    with pytest.raises(VerificationFailed, match='table "small"'):
        apply_now(loaded)
    assert pg.execute("SELECT name FROM small WHERE id = 1").fetchone() == ("one",)


def test_a_rule_etl_did_not_make_is_named_and_every_table_verified(loaded, pg):
    pg.execute("CREATE SCHEMA elsewhere")
    pg.execute("CREATE TABLE elsewhere.audit (id bigint)")
    pg.execute("CREATE RULE audited AS ON UPDATE TO big DO ALSO INSERT INTO elsewhere.audit VALUES (NEW.id)")
    loaded.change_source("UPDATE big SET code = 'code-XXXXXXXX' WHERE id = 54321")
    plan = loaded.plan()
    assert plan.foreign_triggers == (("big", "rule", "audited"),)
    assert {t.name for t in plan.tables} == set(TABLES)

    text = runner.invoke(app, ["plan", str(loaded.spec_path)], catch_exceptions=False).stdout
    assert 'rule "audited" on "big" was not made by etl' in text
    assert "apply verifies every table in full" in text
    document = json.loads(runner.invoke(app, ["plan", str(loaded.spec_path), "--json"]).stdout)
    jsonschema.validate(document, PLAN_SCHEMA)
    assert [(f["table"], f["kind"], f["name"]) for f in document["foreign_triggers"]] == [
        ("big", "rule", "audited")
    ]

    apply_now(loaded)  # the rule writes outside the spec's tables: every table verified equal
    assert pg.execute("SELECT id FROM elsewhere.audit").fetchall() == [(54321,)]
    assert target_matches_source(loaded)


def test_a_trigger_etl_did_not_make_on_a_table_replace_makes_again_is_named_as_lost(migration, pg):
    m = migration(SOURCE)
    m.write_spec("tables:\n  small:\n    mode: replace\n")
    m.apply()
    pg.execute("CREATE FUNCTION keep() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$")
    pg.execute("CREATE TRIGGER keep AFTER INSERT ON small FOR EACH ROW EXECUTE FUNCTION keep()")
    m.change_source("UPDATE small SET name = 'uno' WHERE id = 1")
    plan = m.plan()
    assert plan.dropped_triggers == (("small", "trigger", "keep"),)
    text = runner.invoke(app, ["plan", str(m.spec_path)], catch_exceptions=False).stdout
    assert 'trigger "keep" on "small" was not made by etl: it goes with the table' in text
    document = json.loads(runner.invoke(app, ["plan", str(m.spec_path), "--json"]).stdout)
    jsonschema.validate(document, PLAN_SCHEMA)
    assert [d["name"] for d in document["dropped_triggers"]] == ["keep"]


def test_a_trigger_on_a_table_the_plan_does_not_write_changes_nothing_in_the_plan(loaded, pg):
    pg.execute("CREATE FUNCTION bump() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$")
    pg.execute("CREATE TRIGGER bump AFTER UPDATE ON small FOR EACH ROW EXECUTE FUNCTION bump()")
    loaded.change_source("UPDATE big SET code = 'code-XXXXXXXX' WHERE id = 54321")
    plan = loaded.plan()
    assert plan.foreign_triggers == ()
    assert {t.name for t in plan.tables} == {"big"}


# A tree of 100k rows whose key onto itself deletes the children of a deleted row; the last row
# is a child of a row in another page range.
TREE = f"""
CREATE TABLE tree (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES tree (id) ON DELETE CASCADE,
    code TEXT NOT NULL);
WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < {BIG_ROWS})
INSERT INTO tree SELECT i, CASE WHEN i > 1 THEN 1 END, printf('code-%08d', i) FROM r;
UPDATE tree SET parent_id = 70000 WHERE id = {BIG_ROWS};
"""


def test_a_key_onto_its_own_table_deleting_rows_outside_the_ranges_fails_the_apply(migration, pg):
    m = applied(migration, TREE)
    m.change_source("DELETE FROM tree WHERE id = 70000")  # SQLite leaves its child: keys are off
    plan = m.plan()
    assert ranges_of(plan, "tree") is not None  # the sync compares the changed range only
    assert "tree" in {t.name for t in plan.checked}  # and apply verifies the whole table
    with pytest.raises(VerificationFailed, match=f"id={BIG_ROWS}: missing in the target"):
        apply_now(m, allow_destructive=True)
    assert pg.execute("SELECT count(*) FROM tree WHERE id IN (70000, %s)", (BIG_ROWS,)).fetchone() == (2,)

    m.change_source(f"DELETE FROM tree WHERE id = {BIG_ROWS}")  # as the target's key would
    apply_now(m, allow_destructive=True)
    assert target_matches_source(m)


def test_a_table_keyed_by_other_than_its_rowid_is_compared_in_full(migration):
    m = migration(
        "CREATE TABLE k (code TEXT PRIMARY KEY, n INTEGER);"
        "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 2000) "
        "INSERT INTO k SELECT printf('c%05d', i), i FROM r;"
    )
    m.apply()
    m.change_source("UPDATE k SET n = 0 WHERE code = 'c01000'")
    plan = m.plan()
    assert ranges_of(plan, "k") is None
    assert diff_of(plan, "k") == (0, 1, 0)


def test_ranges_of_leaf_pages_move_only_where_rows_changed(tmp_sqlite):
    source = tmp_sqlite(SOURCE)
    before = table_ranges(source, ["big", "tag"])
    assert before is not None and "tag" not in before  # WITHOUT ROWID: no rowid ranges
    ranges = before["big"]
    assert ranges.last[-1] == BIG_ROWS
    assert PageRanges.from_bytes(ranges.to_bytes()) == ranges
    with closing(sqlite3.connect(source)) as conn:
        conn.execute("UPDATE big SET n = -1 WHERE id = 777")
        conn.commit()
    after = table_ranges(source, ["big"])
    assert after is not None
    count, rowids = changed_ranges(ranges, after["big"])
    assert count == 1 and len(rowids) == 1
    low, high = rowids[0]
    assert low <= 777 <= high and high - low < 1000


# `big` and `small` beside a table whose rows continue on overflow pages (each row is larger than
# a page), in enough leaf pages to have ranges.
SPILLING = (
    SOURCE
    + """
CREATE TABLE wide (id INTEGER PRIMARY KEY, body TEXT);
WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 300)
INSERT INTO wide SELECT i, printf('%.9000c', char(65 + i % 26)) FROM r;
"""
)


def test_one_read_of_the_pages_gives_the_digests_and_ranges_two_reads_give(tmp_sqlite):
    source = tmp_sqlite(SPILLING)
    names = [*TABLES, "wide"]
    prints, ranges = table_fingerprints_and_ranges(source, names, {"big", "tag", "wide"})
    assert prints == table_fingerprints(source, names)
    assert ranges == table_ranges(source, ["big", "tag", "wide"])
    assert set(ranges) == {"big", "wide"}  # `tag` has no rowid; `small` was not asked for


def test_reading_the_pages_stops_when_asked(tmp_sqlite):
    import threading

    source = tmp_sqlite(SPILLING)
    stop = threading.Event()
    stop.set()
    with pytest.raises(HashingStopped):
        table_fingerprints_and_ranges(source, [*TABLES, "wide"], {"big", "wide"}, stop)


def test_an_apply_hashes_the_pages_beside_verification_not_beside_the_keys(migration, monkeypatch):
    """The pages are hashed on a thread of their own once every step has run, beside
    verification's reading of the target: not beside the keys and indexes, for which PostgreSQL
    takes both cores."""
    import threading

    from etl.run import executor

    m = migration(SOURCE)
    m.write_spec()
    hashing, real = threading.Event(), executor.source_fingerprints_and_ranges

    def hash_pages(*args, **options):
        hashing.set()
        return real(*args, **options)

    monkeypatch.setattr(executor, "source_fingerprints_and_ranges", hash_pages)
    at_keys: list[bool] = []
    at_reading_back: list[bool] = []

    def told(statement) -> None:
        if "PRIMARY KEY" in statement.text and statement.text.startswith("ALTER TABLE"):
            at_keys.append(hashing.is_set())
        if statement.engine == "duckdb" and "postgres_query(" in statement.text and "hash(" in statement.text:
            at_reading_back.append(hashing.wait(10))  # begun, or about to on its thread

    checked = m.check()
    apply(checked, plan_for(checked), on_statement=told)
    assert at_keys and not any(at_keys)
    assert at_reading_back and all(at_reading_back)
    assert {name for name, _ in plan_for(m.check()).skipped} == set(TABLES)


def test_an_apply_records_ranges_sent_as_values_not_as_statement_text(migration, pg):
    m = migration(SOURCE)
    m.write_spec()
    checked = m.check()
    sent = []
    apply(checked, plan_for(checked), on_statement=sent.append)
    (recorded,) = pg.execute("SELECT ranges FROM etl.fingerprints WHERE table_name = 'big'").fetchone()
    assert bytes(recorded) == table_ranges(m.source, ["big"])["big"].to_bytes()
    assert [s.text[:80] for s in sent if len(s.text) > len(recorded)] == []  # not in any text


def test_an_apply_records_ranges_sent_in_parts_whole_and_in_order(migration, pg, monkeypatch):
    from etl.postgres import metadata

    monkeypatch.setattr(metadata, "STAGED_PART_BYTES", 1000)  # `big`'s ranges: a dozen parts
    m = migration(SOURCE)
    m.write_spec()
    m.apply()
    (recorded,) = pg.execute("SELECT ranges FROM etl.fingerprints WHERE table_name = 'big'").fetchone()
    expected = table_ranges(m.source, ["big"])["big"].to_bytes()
    assert len(expected) > 10 * 1000
    assert bytes(recorded) == expected


def test_an_apply_gives_the_key_of_a_ranged_table_the_statistics_its_ranged_read_needs(loaded, pg):
    gathered = pg.execute(
        "SELECT attname, cardinality(histogram_bounds::text::text[]) FROM pg_stats "
        "WHERE schemaname = 'public' AND tablename = 'big'"
    ).fetchall()
    assert [name for name, _ in gathered] == ["id"]  # the key's only, from a small sample
    assert gathered[0][1] <= 11
    # The rows of 500 narrow ranges of keys: one seek of the key's index per range.
    ranges = tuple((low, low + 20) for low in range(1, BIG_ROWS, BIG_ROWS // 500))
    big = next(t for t in loaded.check().mapping.tables if t.name == "big")
    query = sql.SQL("EXPLAIN (FORMAT JSON) SELECT * FROM {}").format(rows_in_ranges("public", big, ranges))
    (explained,) = pg.execute(query).fetchone()
    joined = explained[0]["Plan"]
    assert joined["Node Type"] == "Nested Loop"
    ranges_read, rows_read = joined["Plans"]
    assert (ranges_read["Node Type"], ranges_read["Plan Rows"]) == ("Function Scan", len(ranges))
    assert (rows_read["Node Type"], rows_read["Index Name"]) == ("Index Scan", "big_pkey")


# --- 6a. the target's rows of many ranges, read in one query -------------------------------------

# Keys from -300 to 300 in steps of 3: negative rowids, gaps between keys.
SIGNED = """
CREATE TABLE signed (id INTEGER PRIMARY KEY, n INTEGER);
WITH RECURSIVE r(i) AS (SELECT -300 UNION ALL SELECT i + 3 FROM r WHERE i < 300)
INSERT INTO signed SELECT i, i * 7 FROM r;
"""


@pytest.fixture
def signed(migration, pg):
    m = migration(SIGNED)
    m.write_spec()
    m.apply()
    return next(t for t in m.check().mapping.tables if t.name == "signed")


def keys_in(pg, table, ranges) -> list[int]:
    query = sql.SQL("SELECT id FROM {}").format(rows_in_ranges("public", table, ranges))
    return [key for (key,) in pg.execute(query).fetchall()]


@pytest.mark.parametrize(
    "ranges",
    [
        ((LOWEST, -290), (290, HIGHEST)),  # open first and last ranges
        ((-12, -3), (-3, 6), (6, 6), (7, 9)),  # touching, sharing an end, one key wide
        ((-100, 50), (-20, 10), (0, 80), (-300, -280), (-290, -285)),  # overlapping, nested, unordered
        ((LOWEST, HIGHEST), (0, 0)),  # everything, twice
        ((1, 2), (301, 1000), (-1000, -301)),  # no key in any
    ],
)
def test_the_target_rows_of_ranges_are_each_read_once_whatever_the_ranges_overlap(signed, pg, ranges):
    expected = [key for key in range(-300, 301, 3) if any(low <= key <= high for low, high in ranges)]
    assert sorted(keys_in(pg, signed, ranges)) == expected


def test_thousands_of_ranges_are_read_in_one_statement_of_two_numbers_each(signed, pg):
    ranges = tuple((key, key) for key in range(-300, 301, 3)) * 20  # 4,020 ranges, each key 20 times
    statement = sql.SQL("SELECT id FROM {}").format(rows_in_ranges("public", signed, ranges)).as_string(pg)
    assert len(statement) < 2_000  # the ranges merged: keys three apart are 201 ranges
    assert sorted(keys_in(pg, signed, ranges)) == list(range(-300, 301, 3))
    apart = tuple((key, key + 1) for key in range(-30_000, 30_000, 3))  # 20,000 ranges, none merged
    assert len(sql.SQL("{}").format(rows_in_ranges("public", signed, apart)).as_string(pg)) < 40 * len(apart)
    assert sorted(keys_in(pg, signed, apart)) == list(range(-300, 301, 3))


def test_ranges_that_overlap_or_touch_are_merged_and_cut_into_batches_in_order():
    assert merged_ranges(((5, 9), (LOWEST, -1), (0, 3), (10, 10), (12, HIGHEST), (11, 11))) == (
        (LOWEST, 3),
        (5, HIGHEST),
    )
    apart = tuple((key, key) for key in range(0, 4 * RANGES_PER_QUERY, 2))
    batches = range_batches(tuple(reversed(apart)))
    assert [len(batch) for batch in batches] == [RANGES_PER_QUERY, RANGES_PER_QUERY]
    assert tuple(r for batch in batches for r in batch) == apart


# --- 6b. one range per leaf page: a change costs its own leaf's rows ----------------------------------


def leaf_pages(source: Path, table: str) -> int:
    with closing(sqlite3.connect(source)) as conn:
        query = "SELECT count(*) FROM dbstat WHERE name = ? AND pagetype = 'leaf'"
        return conn.execute(query, (table,)).fetchone()[0]


def test_a_rowid_table_has_a_range_per_leaf_page_in_a_few_bytes_each(tmp_sqlite):
    source = tmp_sqlite(SOURCE)
    ranges = table_ranges(source, ["big"])["big"]
    assert len(ranges) == leaf_pages(source, "big")
    assert len(ranges.to_bytes()) <= 24 * len(ranges) + 64  # its last rowid and a 128-bit digest


@pytest.mark.parametrize(
    "change",
    [
        "UPDATE big SET code = 'code-first' WHERE id = 1",  # the first leaf, open below
        f"UPDATE big SET code = 'code-last' WHERE id = {BIG_ROWS}",  # the last leaf, open above
        # a row grown onto overflow pages of its own: its leaf gains a cell pointing at them
        "UPDATE big SET code = printf('%.9000c', 'y') WHERE id = 20000",
    ],
)
def test_a_change_in_the_first_or_last_leaf_or_onto_overflow_pages_is_found_in_its_range(loaded, change):
    loaded.change_source(change)
    plan = loaded.plan()
    changed, total = ranges_of(plan, "big")
    assert 1 <= changed <= 3 < total
    assert diff_of(plan, "big") == (0, 1, 0)
    apply_now(loaded)
    assert target_matches_source(loaded)


def test_a_value_changed_on_its_overflow_pages_only_is_found(migration):
    m = migration(SPILLING)
    m.write_spec()
    m.apply()
    # The value keeps its length and its first bytes (those in the leaf): what changes is on the
    # overflow pages the row continues on.
    m.change_source("UPDATE wide SET body = substr(body, 1, 8000) || printf('%.1000c', 'z') WHERE id = 150")
    plan = m.plan()
    changed, total = ranges_of(plan, "wide")
    assert 1 <= changed <= 2 < total
    assert diff_of(plan, "wide") == (0, 1, 0)


def test_pages_that_read_as_other_rows_change_every_range(tmp_sqlite):
    source = tmp_sqlite(SOURCE)
    before = table_ranges(source, ["big"])["big"]
    with closing(sqlite3.connect(source)) as conn:
        conn.execute("ALTER TABLE big ADD COLUMN extra INTEGER DEFAULT 7")  # rows gain it, pages do not
        conn.commit()
    after = table_ranges(source, ["big"])["big"]
    assert after.digests == before.digests and after.last == before.last
    assert changed_ranges(before, after) == (len(after), ((LOWEST, HIGHEST),))


def test_ranges_recorded_in_another_layout_are_no_record_and_the_table_is_compared_in_full(loaded, pg):
    # 40 bytes a range: an earlier version of etl's layout
    pg.execute("UPDATE etl.fingerprints SET ranges = %s WHERE table_name = 'big'", (bytes(40 * 300),))
    loaded.change_source("UPDATE big SET code = 'code-XXXXXXXX' WHERE id = 54321")
    plan = loaded.plan()
    assert ranges_of(plan, "big") is None
    assert diff_of(plan, "big") == (0, 1, 0)


# --- 7. an apply of a table changed in some ranges reads and verifies those ranges only -------------


def reads_of(sent, table: str) -> list[str]:
    """DuckDB's statements apply sent that read `table`'s rows, on either side."""
    return [
        s.text
        for s in sent
        if s.engine == "duckdb" and f'"{table}"' in s.text and not s.text.startswith("DESCRIBE ")
    ]


def in_ranges_only(text: str) -> bool:
    """Every read of `big` in the statement, SQLite's or PostgreSQL's, is bounded by the rowid: a
    condition on it (SQLite: bounds, or a join of a JSON array of ranges to the table, each sought
    by rowid), or a join of its key to the ranges (PostgreSQL)."""
    reads = [text[m.end() : m.end() + 80] for m in re.finditer(r'(FROM|JOIN|,) ("public"\.)?"big"', text)]
    bounded = (
        r' WHERE \(+(rowid|"id") [<>]= \d+| AS etl_row ON etl_row\."id" BETWEEN etl_range\.low AND '
        r"| AS etl_t ON etl_t\.rowid BETWEEN etl_j\.value ->> 0 AND etl_j\.value ->> 1\)"
    )
    return bool(reads) and all(re.match(bounded, after) for after in reads)


def apply_observed(m, plan=None, allow_destructive: bool = False):
    checked = m.check()
    sent: list = []
    result = apply(
        checked, plan or plan_for(checked), allow_destructive=allow_destructive, on_statement=sent.append
    )
    return result, sent


def test_one_row_changed_in_a_100k_row_table_is_applied_in_its_range_only(loaded, pg):
    loaded.change_source("UPDATE big SET code = 'code-XXXXXXXX' WHERE id = 54321")
    result, sent = apply_observed(loaded)
    assert result.changes == {"big": (0, 1, 0)} and result.verified
    # The sync's reads of both sides, and verification's of the target, stay in the changed range.
    reads = reads_of(sent, "big")
    assert len(reads) >= 3, reads
    assert all(in_ranges_only(text) for text in reads), [t for t in reads if not in_ranges_only(t)]
    assert pg.execute("SELECT code FROM big WHERE id = 54321").fetchone() == ("code-XXXXXXXX",)
    assert target_matches_source(loaded)
    assert skipped(loaded.plan()) == set(TABLES)  # recorded again as the apply left it


def test_inserts_past_the_end_and_deletes_at_both_ends_are_applied_by_ranges(loaded, pg):
    loaded.change_source(
        "DELETE FROM big WHERE id IN (1, 2, 99999, 100000);"
        "INSERT INTO big VALUES (100001, 'code-x', 1), (100002, 'code-y', 2);"
    )
    plan = loaded.plan()
    assert ranges_of(plan, "big") is not None
    result, sent = apply_observed(loaded, allow_destructive=True)
    assert result.changes == {"big": (2, 0, 4)}
    assert all(in_ranges_only(text) for text in reads_of(sent, "big"))
    assert target_matches_source(loaded)
    assert pg.execute("SELECT min(id), max(id), count(*) FROM big").fetchone() == (3, 100002, BIG_ROWS - 2)


def test_a_filter_on_the_rowid_holds_in_a_sync_by_ranges(migration):
    # The source's rows in changed ranges are read through json_each joined to the table: the
    # rowid a filter names, and columns named as json_each's (key, value, type, path, id), are
    # still the table's.
    m = migration(
        f"""
        CREATE TABLE t (id INTEGER PRIMARY KEY, key TEXT, value INTEGER, type TEXT, path TEXT);
        WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < {BIG_ROWS})
        INSERT INTO t SELECT i, printf('k%08d', i), i, 'x', 'p' FROM r;
        """
    )
    m.write_spec("tables:\n  t:\n    where: rowid % 10 <> 3\n")
    m.apply()
    m.change_source("UPDATE t SET value = -value, key = 'changed' WHERE id IN (5, 54321, 54323)")
    plan = m.plan()
    assert ranges_of(plan, "t") is not None
    assert diff_of(plan, "t") == (0, 2, 0)  # 54323 is filtered out
    result = apply_now(m)
    assert result.changes == {"t": (0, 2, 0)} and result.verified
    assert target_matches_source(m)


# Three updates, two deletes and an insert, from the first leaf to past the last; and the rowids
# of the six rows that then differ.
SIX_ROWS_CHANGED = (
    "UPDATE big SET n = n + 1 WHERE id IN (5, 30000, 60000);"
    "DELETE FROM big WHERE id IN (1, 45000); INSERT INTO big VALUES (100001, 'code-x', 1);"
)
SIX_ROWS_DIFFERING = ((1, 1), (5, 5), (30000, 30000), (45000, 45000), (60000, 60000), (100001, 100001))


def test_a_sync_by_ranges_reads_the_source_in_batches_and_stages_its_rows_at_once(loaded, pg, monkeypatch):
    from etl.run import verify as verify_module

    monkeypatch.setattr(verify_module, "RANGES_PER_QUERY", 2)
    loaded.change_source(SIX_ROWS_CHANGED)
    plan = loaded.plan()
    changed, _ = ranges_of(plan, "big")
    assert changed >= 5
    # The sync reads the six rows that differ, each its own range, two ranges a query.
    assert sync_of(plan, "big").read_rowids == SIX_ROWS_DIFFERING
    result, sent = apply_observed(loaded, plan, allow_destructive=True)
    assert result.changes == {"big": (1, 3, 2)}
    source_reads = [s.text for s in sent if "sqlite_query(" in s.text and "etl_rows" in s.text]
    assert len(source_reads) == 3
    staged = [s.text for s in sent if s.engine == "duckdb" and 'INSERT INTO dst."etl"."stage_' in s.text]
    assert len(staged) == 2  # the rows to insert or update, then the keys to delete
    assert target_matches_source(loaded)
    assert skipped(loaded.plan()) == set(TABLES)


def sync_of(plan, table: str):
    return next(s for s in plan.steps if getattr(s, "diff", None) is not None and s.table.name == table)


def test_a_sync_by_ranges_reads_only_the_rows_its_plan_found_differing(loaded, pg):
    # Rows 54320 and 54322 share the changed leaf page with 54321 but did not change.
    loaded.change_source("UPDATE big SET code = 'code-XXXXXXXX' WHERE id = 54321")
    plan = loaded.plan()
    step = sync_of(plan, "big")
    assert step.diff.differing == ((54321, 54321),) and step.read_rowids == ((54321, 54321),)
    assert step.rowids is not None and step.rowids != step.read_rowids  # the leaf's whole range
    result, sent = apply_observed(loaded, plan)
    assert result.changes == {"big": (0, 1, 0)} and result.verified
    staged_reads = [s.text for s in sent if "sqlite_query(" in s.text and "etl_rows" in s.text]
    assert len(staged_reads) == 1 and "54321" in staged_reads[0]
    assert target_matches_source(loaded)


def recorded_xmins(pg, table: str) -> tuple[dict, int, int]:
    return pg.execute(
        "SELECT xmins, rows, oldest_xid FROM etl.fingerprints WHERE table_name = %s", (table,)
    ).fetchone()


def scanned_xmins(pg, table: str) -> dict:
    found = pg.execute(
        sql.SQL("SELECT xmin::text, count(*) FROM {} GROUP BY xmin").format(sql.Identifier(table))
    )
    return {x: n for x, n in found.fetchall()}


def test_a_sync_of_its_differing_rows_records_every_rows_xmins_without_reading_them_all(loaded, pg):
    loaded.change_source(SIX_ROWS_CHANGED)
    result, sent = apply_observed(loaded, allow_destructive=True)
    assert result.changes == {"big": (1, 3, 2)} and result.verified
    xmins, rows, _ = recorded_xmins(pg, "big")
    assert xmins == scanned_xmins(pg, "big") and rows == BIG_ROWS - 1
    # Only the guard reads every row's xmin, on a connection of its own; the apply's transaction
    # reads the xmins of the rows the sync wrote.
    whole = [s.text for s in sent if 'FROM "public"."big" GROUP BY xmin' in s.text]
    assert whole == []
    assert skipped(loaded.plan()) == set(TABLES)
    # The next change is found and recorded from that record as well.
    loaded.change_source("UPDATE big SET n = n + 1 WHERE id = 5")
    result, _ = apply_observed(loaded)
    assert result.changes == {"big": (0, 1, 0)}
    assert recorded_xmins(pg, "big")[0] == scanned_xmins(pg, "big")
    assert skipped(loaded.plan()) == set(TABLES)


def test_a_sync_of_many_differing_rows_reads_its_changed_ranges_whole(loaded, pg, monkeypatch):
    from etl.run import rowdiff

    monkeypatch.setattr(rowdiff, "MAX_DIFFERING_ROWS", 1)
    loaded.change_source("UPDATE big SET n = n + 1 WHERE id IN (10, 20)")
    plan = loaded.plan()
    step = sync_of(plan, "big")
    assert step.diff.differing is None and step.read_rowids == step.rowids
    result, _ = apply_observed(loaded, plan)
    assert result.changes == {"big": (0, 2, 0)} and result.verified
    assert target_matches_source(loaded)


def verified_ranges(sent, table: str) -> list[tuple[tuple[int, int], ...]]:
    """The rowid ranges of each target read of verification's sums in ranges (the count and
    checksum of the rows there)."""
    found = []
    for s in sent:
        if "postgres_query(" in s.text and f'"{table}"' in s.text and s.text.startswith("SELECT count(*)"):
            arrays = re.search(r"unnest\('+\{([-0-9,]*)\}'+[^,]*, '+\{([-0-9,]*)\}'+", s.text)
            if arrays is not None:
                lows, highs = ([int(v) for v in a.split(",")] for a in arrays.groups())
                found.append(tuple(zip(lows, highs, strict=True)))
    return found


def test_a_sync_by_ranges_is_verified_where_it_read_against_the_plans_sums_of_those_rows(loaded, pg):
    from dataclasses import replace

    # Rows 54320 and 54322 share the changed leaf with 54321: the plan found them equal on both
    # sides, and the sync writes only 54321, which verification reads back.
    loaded.change_source("UPDATE big SET code = 'code-XXXXXXXX' WHERE id = 54321")
    plan = loaded.plan()
    step = sync_of(plan, "big")
    count, total = step.diff.range_sums
    assert count == 1 and step.read_rowids == ((54321, 54321),)
    result, sent = apply_observed(loaded, plan)
    assert result.verified
    reads = verified_ranges(sent, "big")
    assert reads == [((54321, 54321),)]
    # Sums that disagree with the target's row fail the apply.
    loaded.change_source("UPDATE big SET code = 'code-YYYYYYYY' WHERE id = 54321")
    plan = loaded.plan()
    step = sync_of(plan, "big")
    count, total = step.diff.range_sums
    wrong = replace(step, diff=replace(step.diff, range_sums=(count, str(int(total) + 1))))
    broken = replace(plan, steps=tuple(wrong if s is step else s for s in plan.steps))
    with pytest.raises(VerificationFailed):
        apply_observed(loaded, broken)
    assert pg.execute("SELECT code FROM big WHERE id = 54321").fetchone() == ("code-XXXXXXXX",)


def test_a_plan_that_shows_rows_keeps_the_same_differing_rows_and_sums(loaded):
    # A plan showing rows compares the ranges in one pass, one that does not in parts: the sync
    # and verification must get the same rows and sums from either.
    loaded.change_source("UPDATE big SET code = 'code-XXXXXXXX' WHERE id IN (7, 54321)")
    checked = loaded.check()
    parts = sync_of(plan_for(checked), "big").diff
    shown = sync_of(plan_for(checked, show_rows=5), "big").diff
    assert len(shown.samples) == 2
    assert parts.differing == shown.differing == ((7, 7), (54321, 54321))
    assert parts.range_sums == shown.range_sums and parts.range_sums[0] == 2


def test_a_sync_of_too_many_differing_rows_to_keep_is_verified_in_its_whole_ranges(loaded, pg, monkeypatch):
    from etl.run import rowdiff

    monkeypatch.setattr(rowdiff, "MAX_DIFFERING_ROWS", 1)
    loaded.change_source("UPDATE big SET n = n + 1 WHERE id IN (10, 54321)")
    plan = loaded.plan()
    step = sync_of(plan, "big")
    count, _ = step.diff.range_sums
    assert step.diff.differing is None and count > 2  # every source row of the two changed leaves
    result, sent = apply_observed(loaded, plan)
    assert result.verified and result.changes == {"big": (0, 2, 0)}
    reads = verified_ranges(sent, "big")
    assert len(reads) == 1 and len(reads[0]) == 2, reads
    assert any(low <= 54320 < 54321 <= high for low, high in reads[0]), reads
    assert target_matches_source(loaded)


def test_a_target_written_between_plan_and_apply_fails_the_apply(loaded, pg):
    loaded.change_source("UPDATE big SET code = 'code-XXXXXXXX' WHERE id = 54321")
    checked = loaded.check()
    plan = plan_for(checked)
    assert ranges_of(plan, "big") is not None
    pg.execute("UPDATE big SET n = n + 1 WHERE id = 500")  # outside the changed range
    with pytest.raises(
        TargetError,
        match='table "big" changed in the target since the plan read it; nothing was committed: run apply again',
    ):
        apply(checked, plan)
    assert pg.execute("SELECT code FROM big WHERE id = 54321").fetchone() == ("code-00054321",)
    apply_now(loaded)  # the next apply plans again: the whole table is compared
    assert target_matches_source(loaded)


def test_a_target_write_that_fails_the_sync_is_named_as_a_write_since_the_plan(loaded, pg):
    loaded.change_source("INSERT INTO big VALUES (100001, 'code-x', 1)")
    checked = loaded.check()
    plan = plan_for(checked)
    assert ranges_of(plan, "big") is not None
    pg.execute("INSERT INTO big VALUES (100001, 'code-y', 2)")  # the row the sync inserts
    with pytest.raises(TargetError, match='table "big" changed in the target since the plan read it'):
        apply(checked, plan)
    assert pg.execute("SELECT code FROM big WHERE id = 100001").fetchone() == ("code-y",)


def test_a_guard_that_cannot_read_beside_the_apply_reads_in_its_transaction(loaded, pg, monkeypatch):
    """A session queued for a stronger lock on the table would make the guard's own reader wait
    behind the apply: it does not wait, and the transaction reads the state itself."""
    import psycopg

    from etl.run import executor, guard

    class Refused(guard.StateCheck):
        def _read(self, tables, state):
            raise psycopg.errors.LockNotAvailable("could not obtain lock on relation")

    monkeypatch.setattr(executor, "StateCheck", Refused)
    loaded.change_source("UPDATE big SET code = 'code-XXXXXXXX' WHERE id = 54321")
    checked = loaded.check()
    plan = plan_for(checked)
    pg.execute("UPDATE big SET n = n + 1 WHERE id = 500")
    with pytest.raises(TargetError, match='table "big" changed in the target since the plan read it'):
        apply(checked, plan)
    apply_now(loaded)  # compared in full: the target was written
    loaded.change_source("UPDATE big SET code = 'code-YYYYYYYY' WHERE id = 54321")
    result, sent = apply_observed(loaded)
    assert result.changes["big"] == (0, 1, 0) and result.verified
    # The state query ran in the apply's transaction, right after the lock.
    texts = [s.text for s in sent]
    locked = texts.index('LOCK TABLE "public"."big" IN EXCLUSIVE MODE')
    assert texts[locked + 1].startswith("(SELECT f.table_name")


def test_a_many_table_apply_locks_its_ranged_tables_before_it_reads_the_targets_catalog(
    migration, pg, pg_url, monkeypatch
):
    """From LIST_COLUMNS_FROM source tables on, apply lists their columns inside its transaction,
    which reads the target's catalog and so takes the snapshot: the tables synced by ranges are
    locked before, and a writer committing meanwhile waits rather than going unseen."""
    import psycopg

    from etl.run import typedscan

    extra = "".join(
        f"CREATE TABLE t{i} (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t{i} VALUES (1, 'a');"
        for i in range(typedscan.LIST_COLUMNS_FROM)
    )
    m = migration(SOURCE + extra)
    m.write_spec()
    m.apply()
    # Every small table changes too: they are proved, so the apply lists their columns.
    m.change_source(
        "UPDATE big SET code = 'code-XXXXXXXX' WHERE id = 54321;"
        + "".join(f"UPDATE t{i} SET v = 'b';" for i in range(typedscan.LIST_COLUMNS_FROM))
    )
    checked = m.check()
    plan = plan_for(checked)
    assert ranges_of(plan, "big") is not None
    declared = typedscan._declared_columns
    wrote: list[str] = []

    def write_meanwhile(*args):
        with psycopg.connect(pg_url, autocommit=True) as other:
            other.execute("SET lock_timeout = '500ms'")
            try:
                other.execute("INSERT INTO big VALUES (200000, 'code-w', 1)")
                wrote.append("committed")
            except psycopg.errors.LockNotAvailable:
                wrote.append("waited")
        return declared(*args)

    monkeypatch.setattr(typedscan, "_declared_columns", write_meanwhile)
    result = apply(checked, plan)
    assert wrote and set(wrote) == {"waited"}
    assert result.changes["big"] == (0, 1, 0) and result.verified
    assert pg.execute("SELECT count(*) FROM big WHERE id = 200000").fetchone() == (0,)


def test_another_apply_between_plan_and_apply_is_named_as_such(loaded, pg):
    loaded.change_source("UPDATE big SET code = 'code-XXXXXXXX' WHERE id = 54321")
    checked = loaded.check()
    plan = plan_for(checked)
    assert ranges_of(plan, "big") is not None
    time.sleep(1.1)  # the record's time is to the second: the other apply's must differ
    apply(checked, plan_for(checked))  # another apply commits first (apply waits for its lock)
    with pytest.raises(
        TargetError,
        match=r'table "big" was applied again since the plan read it \(by the etl apply of \d{4}-.* UTC\); '
        "nothing was committed: run apply again",
    ):
        apply(checked, plan)
    assert target_matches_source(loaded)


def test_a_source_written_between_plan_and_apply_fails_the_apply(loaded, pg):
    loaded.change_source("UPDATE big SET code = 'code-XXXXXXXX' WHERE id = 54321")
    checked = loaded.check()
    plan = plan_for(checked)
    assert ranges_of(plan, "big") is not None
    loaded.change_source("UPDATE big SET code = 'code-YYYYYYYY' WHERE id = 10")  # outside the range
    with pytest.raises(
        VerificationFailed, match="changed since the plan compared its pages.*nothing was committed"
    ):
        apply(checked, plan)
    assert pg.execute("SELECT code FROM big WHERE id IN (10, 54321) ORDER BY id").fetchall() == [
        ("code-00000010",),
        ("code-00054321",),
    ]
    apply_now(loaded)
    assert target_matches_source(loaded)


def test_an_unchanged_apply_measures_no_table(loaded, monkeypatch):
    measured: list[set[str] | None] = []
    real = validate_module.measure

    def measure(spec, mapping, *args, sizes=None, **options):
        measured.append(None if sizes is None else set(sizes))
        return real(spec, mapping, *args, sizes=sizes, **options)

    monkeypatch.setattr(validate_module, "measure", measure)
    result = runner.invoke(app, ["apply", str(loaded.spec_path), "--yes"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert measured and all(sizes == set() for sizes in measured), measured


# --- 8. an apply records what its plan read of the source's pages, while the source is the same -----


def hashed_by_apply(monkeypatch) -> list[str]:
    """The source tables whose pages applies read for themselves from now on (not taken from the
    plan's read)."""
    from etl.run import executor

    asked: list[str] = []
    real = executor.source_fingerprints_and_ranges

    def hash_pages(source, tables, *args, **options):
        asked.extend(sorted({t.source for t in tables}))
        return real(source, tables, *args, **options)

    monkeypatch.setattr(executor, "source_fingerprints_and_ranges", hash_pages)
    return asked


def recorded_pages(pg) -> dict[str, tuple[str, bytes | None]]:
    rows = pg.execute("SELECT table_name, source, ranges FROM etl.fingerprints").fetchall()
    return {name: (digest, None if ranges is None else bytes(ranges)) for name, digest, ranges in rows}


def read_afresh(source: Path, tables: list[str]) -> dict[str, tuple[str, bytes | None]]:
    prints, ranges = table_fingerprints_and_ranges(source, tables, set(tables))
    return {t: (prints[t], ranges[t].to_bytes() if t in ranges else None) for t in tables}


def test_an_apply_records_the_pages_its_plan_read_and_reads_only_those_it_did_not(loaded, pg, monkeypatch):
    loaded.change_source(
        "UPDATE big SET code = 'code-XXXXXXXX' WHERE id = 54321;"
        "CREATE TABLE fresh (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO fresh VALUES (1, 'a');"
    )
    checked = loaded.check()
    plan = plan_for(checked)
    assert ranges_of(plan, "big") is not None  # `big` read for its ranges; `fresh` not yet there
    asked = hashed_by_apply(monkeypatch)
    result = apply(checked, plan)
    assert result.verified and result.changes["big"] == (0, 1, 0)
    assert asked == ["fresh"]  # created by this apply: no plan read its pages
    recorded = recorded_pages(pg)
    assert recorded == read_afresh(loaded.source, [*TABLES, "fresh"])
    assert recorded["big"][1] is not None  # its ranges too
    assert skipped(loaded.plan()) == {*TABLES, "fresh"}


def test_a_source_written_between_plan_and_apply_is_recorded_as_the_apply_read_it(loaded, pg, monkeypatch):
    loaded.change_source("UPDATE small SET name = 'uno' WHERE id = 1")
    checked = loaded.check()
    plan = plan_for(checked)
    assert plan.source_pages and diff_of(plan, "small") == (0, 1, 0)
    # after the plan read the pages, the same row again: the sync finds what the plan counted
    loaded.change_source("UPDATE small SET name = 'eins' WHERE id = 1")
    asked = hashed_by_apply(monkeypatch)
    assert apply(checked, plan).verified
    assert asked == ["small"]  # the plan's read is stale: read again
    assert recorded_pages(pg)["small"] == read_afresh(loaded.source, ["small"])["small"]
    assert target_matches_source(loaded)
    assert skipped(loaded.plan()) == set(TABLES)


def test_a_value_that_cannot_arrive_in_any_batch_of_a_diff_by_ranges_is_named(loaded, monkeypatch):
    from etl.run import rowdiff
    from etl.run import verify as verify_module

    monkeypatch.setattr(verify_module, "RANGES_PER_QUERY", 1)
    monkeypatch.setattr(rowdiff, "SOURCE_READERS", 2)
    read: list[int] = []
    real = rowdiff._read_into_sides
    monkeypatch.setattr(
        rowdiff, "_read_into_sides", lambda con, sources: (read.append(len(sources)), real(con, sources))
    )
    # Three changed ranges, a batch each, read by two readers at once; the bad value in the last.
    loaded.change_source(
        "UPDATE big SET n = n + 1 WHERE id IN (20000, 30000); UPDATE big SET n = 'many' WHERE id = 60000"
    )
    with pytest.raises(
        EtlError, match=r'table "big", row id=60000: column "n": expected an integer, found text'
    ):
        loaded.plan()
    assert sorted(read) == [1, 2]


def test_parts_of_cut_merged_ranges_in_order_at_a_span_of_rowids():
    from etl.run.rowdiff import parts_of

    assert parts_of(((20, 29), (1, 10), (11, 12), (40, 40)), most=15) == [((1, 12),), ((20, 29), (40, 40))]
    assert parts_of(((1, 100), (200, 201)), most=10) == [((1, 100),), ((200, 201),)]
    assert parts_of((), most=10) == []


def test_a_diff_by_ranges_compared_in_parts_finds_what_one_pass_finds(loaded, monkeypatch):
    from etl.run import rowdiff

    loaded.change_source(SIX_ROWS_CHANGED)
    whole = sync_of(loaded.plan(), "big").diff
    monkeypatch.setattr(rowdiff, "PART_ROWIDS", 50)
    parted: list[int] = []
    real = rowdiff._ranged_sides
    monkeypatch.setattr(rowdiff, "_ranged_sides", lambda *a, **k: (parted.append(1), real(*a, **k)))
    in_parts = sync_of(loaded.plan(), "big").diff
    assert len(parted) == 5  # a part per changed range: each spans more than 50 rowids
    assert in_parts == whole
    assert (whole.insert, whole.update, whole.delete) == (1, 3, 2) and whole.unchanged == BIG_ROWS - 5
    assert whole.differing == SIX_ROWS_DIFFERING


# --- 7. the integer units of `auto` datetime columns in a sync by ranges -------------------------------

# A 100k-row table whose `at` holds epoch milliseconds (as Prisma writes them): its unit is
# measured from every row, and decides how every row's integer reads.
DATED = f"""
CREATE TABLE ev (id INTEGER PRIMARY KEY, code TEXT NOT NULL, at DATETIME);
WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < {BIG_ROWS})
INSERT INTO ev SELECT i, printf('code-%08d', i), 1735689600000 + i * 1000 FROM r;
"""


@pytest.fixture
def dated(migration):
    return applied(migration, DATED)


def in_ranges_measures(monkeypatch) -> tuple[list, list]:
    """Record the source tables whose units a plan measures whole, and the rowid ranges of those it
    measures in ranges."""
    whole: list[str] = []
    ranged: list[tuple[tuple[int, int], ...]] = []
    real_whole, real_ranged = validate_module.integer_magnitudes, validate_module.integer_magnitudes_in_ranges

    def measure_whole(con, table, where, expressions, relation=None):
        whole.append(table)
        return real_whole(con, table, where, expressions, relation=relation)

    def measure_in_ranges(con, table, rowid, where, expressions, ranges):
        ranged.append(ranges)
        return real_ranged(con, table, rowid, where, expressions, ranges)

    monkeypatch.setattr(validate_module, "integer_magnitudes", measure_whole)
    monkeypatch.setattr(validate_module, "integer_magnitudes_in_ranges", measure_in_ranges)
    return whole, ranged


def unit_of(plan, table: str) -> tuple[str | None, bool]:
    step = sync_of(plan, table)
    conversion = step.table.column("at").conversion
    return conversion.integer_unit, conversion.mixed_units


def test_a_plan_measures_a_ranged_tables_units_in_its_changed_ranges_only(dated, monkeypatch):
    """The apply records, per `auto` column, its unit and a witness: a row holding an integer of
    that unit. While the witness's range is unchanged, the unchanged rows still hold that unit and
    no other, so the plan measures the changed ranges alone and finds the unit measuring every row
    would."""
    whole, ranged = in_ranges_measures(monkeypatch)
    dated.change_source("UPDATE ev SET code = 'code-XXXXXXXX', at = at + 1 WHERE id = 54321")
    plan = lazy_plan(dated)
    assert ranges_of(plan, "ev")[0] == 1 and diff_of(plan, "ev") == (0, 1, 0)
    assert unit_of(plan, "ev") == ("ms", False)
    assert whole == [] and len(ranged) == 1
    assert [r for r in ranged[0] if r[0] <= 54321 <= r[1]] and all(
        high - low < 1000 for low, high in ranged[0]
    )
    apply_now(dated)
    assert target_matches_source(dated)

    # The witness (the first row) changes: its range no longer proves the others', all are measured.
    whole.clear()
    dated.change_source("UPDATE ev SET at = at + 1 WHERE id = 1")
    plan = lazy_plan(dated)
    assert ranges_of(plan, "ev")[0] == 1 and diff_of(plan, "ev") == (0, 1, 0)
    assert whole == ["ev"] and unit_of(plan, "ev") == ("ms", False)


def test_a_column_without_integers_is_measured_in_its_changed_ranges_only(migration, monkeypatch):
    """A column that held no integer at the apply holds none outside the changed ranges: its unit
    (none) is measured there alone; an integer written there gives it one, and the table is then
    compared in full."""
    m = applied(
        migration,
        "CREATE TABLE ev (id INTEGER PRIMARY KEY, code TEXT NOT NULL, at DATETIME);"
        f"WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < {BIG_ROWS}) "
        "INSERT INTO ev SELECT i, printf('code-%08d', i), datetime(1735689600 + i, 'unixepoch') FROM r;",
    )
    whole, ranged = in_ranges_measures(monkeypatch)
    m.change_source("UPDATE ev SET code = 'code-XXXXXXXX' WHERE id = 54321")
    plan = lazy_plan(m)
    assert ranges_of(plan, "ev")[0] == 1 and diff_of(plan, "ev") == (0, 1, 0)
    assert whole == [] and len(ranged) == 1 and unit_of(plan, "ev") == (None, False)
    m.change_source("UPDATE ev SET at = 1735689600123 WHERE id = 54321")
    plan = lazy_plan(m)
    assert ranges_of(plan, "ev") is None and diff_of(plan, "ev") == (0, 1, 0)
    assert unit_of(plan, "ev") == ("ms", False)


@pytest.mark.parametrize("lazy", [True, False], ids=["measured-in-ranges", "measured-whole"])
def test_a_change_that_moves_a_columns_unit_compares_the_table_in_full(dated, lazy):
    """Every row of one leaf page rewritten in microseconds (of the same size, in place: only that
    page changes) makes the column's unit microseconds, and the milliseconds of the other rows
    ambiguous: those rows lie outside the changed range, and read differently now. The table is
    compared in full, as a first apply would compare it: the plan names such a value rather than
    syncing the page's rows."""
    last = table_ranges(dated.source, ["ev"])["ev"].last
    low, high = last[500] + 1, last[501]
    dated.change_source(f"UPDATE ev SET at = 120000000000000 + id WHERE id BETWEEN {low} AND {high}")
    assert table_ranges(dated.source, ["ev"])["ev"].last == last  # the same pages, one rewritten
    with pytest.raises(DataError, match=r'row id=1: column "at": is ambiguous'):
        lazy_plan(dated) if lazy else dated.plan()


def test_a_record_without_units_compares_a_table_with_auto_datetimes_in_full(dated, pg):
    """A record made before etl recorded units proves nothing of them."""
    pg.execute("UPDATE etl.fingerprints SET units = NULL")
    dated.change_source("UPDATE ev SET code = 'code-XXXXXXXX' WHERE id = 54321")
    plan = lazy_plan(dated)
    assert ranges_of(plan, "ev") is None and diff_of(plan, "ev") == (0, 1, 0)


def test_a_table_whose_columns_share_json_eachs_names_and_rowids_is_synced_by_ranges(migration, pg):
    """The changed ranges reach SQLite as a JSON array read by json_each, whose columns are named
    key, value, id, ...: a table of such columns, and one called rowid, reads its ranges alike."""
    m = applied(
        migration,
        'CREATE TABLE kv (id INTEGER PRIMARY KEY, "rowid" INTEGER, key TEXT, value TEXT, atom TEXT, etl_j TEXT);'
        "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 20000) "
        "INSERT INTO kv SELECT i, i, 'k' || i, printf('value-%08d', i), 'a', 'j' FROM r;",
    )
    m.change_source("UPDATE kv SET value = 'value-XXXXXXXX' WHERE id = 12345")
    plan = lazy_plan(m)
    assert ranges_of(plan, "kv")[0] == 1 and diff_of(plan, "kv") == (0, 1, 0)
    result = apply(m.check(), plan)
    assert result.changes == {"kv": (0, 1, 0)} and result.verified
    assert pg.execute("SELECT value FROM kv WHERE id = 12345").fetchone() == ("value-XXXXXXXX",)


def test_a_sync_by_ranges_reads_without_just_in_time_compilation(loaded, pg):
    """PostgreSQL estimates a join of ranges to the key at many times the rows it reads, and would
    compile the statement for that estimate; the apply's transaction turns compilation off for
    itself alone (the server's setting is untouched)."""
    before = pg.execute("SHOW jit").fetchone()
    loaded.change_source("UPDATE big SET code = 'code-XXXXXXXX' WHERE id = 54321")
    result, sent = apply_observed(loaded)
    assert result.changes == {"big": (0, 1, 0)}
    texts = [s.text for s in sent]
    assert texts.index("SET LOCAL jit = off") > texts.index('LOCK TABLE "public"."big" IN EXCLUSIVE MODE')
    assert pg.execute("SHOW jit").fetchone() == before

    loaded.change_source("INSERT INTO small VALUES (3, 'three')")  # compared in full, not by ranges
    _, sent = apply_observed(loaded)
    assert "SET LOCAL jit = off" not in [s.text for s in sent]
