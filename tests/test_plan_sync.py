"""`etl plan` shows what `etl apply` will do to a target that already holds data, and apply does
exactly that: the schema diff (+ ~ -), the row diff by primary key (or as multisets without one),
the modes sync, upsert, append and replace, destructive steps refused unless allowed.

Every test runs against a real PostgreSQL and a SQLite file it builds. The plans a reviewer reads
are snapshots in __snapshots__/test_plan_sync.ambr, with the target URL written as <target>.
"""

from __future__ import annotations

import json
import re
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from typer.testing import CliRunner

from etl.cli import app
from etl.core.plan import KeepForRollback
from etl.errors import PlanError
from etl.pipeline import apply, check, plan_for
from etl.postgres.target import display_url

runner = CliRunner()
NO_CHANGES = "No changes. The target matches the spec."

CUSTOMERS = """
CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT NOT NULL, city TEXT);
INSERT INTO customer VALUES
    (1, 'Ada', 'London'), (2, 'Brian', 'Toronto'), (3, 'Grace', 'Arlington'), (4, 'Linus', 'Helsinki'),
    (5, 'Barbara', 'Boston'), (6, 'Ken', 'Berkeley'), (7, 'Dennis', 'Murray Hill');
"""


# --- helpers -------------------------------------------------------------------------------------


def run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def without_apply_time(text: str) -> str:
    """The time of the apply a skipped table dates from, written as <time>."""
    return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", "<time>", text)


def plan_text(spec: Path, url: str, *options: str) -> str:
    """`etl plan` as printed, with the target URL written as <target> and apply times as <time>."""
    result = run("plan", str(spec), *options)
    assert result.exit_code == 0, result.stderr
    return without_apply_time(result.stdout.replace(display_url(url), "<target>"))


def plan_json(spec: Path, url: str, *options: str) -> dict[str, Any]:
    result = run("plan", str(spec), "--json", *options)
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["target"] == display_url(url)
    return {**document, "target": "<target>"}


def as_text(document: dict[str, Any]) -> str:
    """A plan document as the reviewed snapshot text: JSON, two-space indent, keys as printed,
    apply times as <time>."""
    return without_apply_time(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def without_timing(stdout: str, url: str, spec: Path) -> str:
    """apply's output with the URL as <target>, the spec as spec.yaml, durations as <s>, rates as <n>."""
    text = stdout.replace(display_url(url), "<target>").replace(str(spec), "spec.yaml")
    text = re.sub(r" +\d[\d,]*\.\d\d s\b", " <s> s", text)  # with the padding, which varies with them
    return re.sub(r" +[\d,]+ rows/s", " <n> rows/s", text)


def rows(pg: psycopg.Connection, table: str, order_by: str = "id") -> list[tuple[Any, ...]]:
    """Every row of a table of the target; `order_by` is trusted SQL written by the test."""
    query = sql.SQL("SELECT * FROM {} ORDER BY {}").format(sql.Identifier(table), sql.SQL(order_by))
    return pg.execute(query).fetchall()


def sqlite_rows(source: Path, query: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(source)) as conn:
        return conn.execute(query).fetchall()


def last_line(stdout: str) -> str:
    return stdout.rstrip("\n").splitlines()[-1]


def table_oid(pg: psycopg.Connection, table: str) -> int:
    row = pg.execute("SELECT %s::regclass::oid::int", [f'"public"."{table}"']).fetchone()
    assert row is not None
    return row[0]


# --- 1. plans as a reviewer reads them -------------------------------------------------------------


def test_plan_of_an_empty_target_creates_and_loads_every_table(migration, pg_url, snapshot):
    m = migration(CUSTOMERS)
    spec = m.write_spec()
    assert plan_text(spec, pg_url) == snapshot(name="text")
    assert as_text(plan_json(spec, pg_url)) == snapshot(name="json")


def test_plan_of_a_target_that_matches_the_spec_says_no_changes(migration, pg_url, snapshot):
    m = migration(CUSTOMERS)
    spec = m.write_spec()
    m.apply()
    text = plan_text(spec, pg_url)
    assert last_line(text) == NO_CHANGES
    assert text == snapshot(name="text")
    assert as_text(plan_json(spec, pg_url)) == snapshot(name="json")


def test_plan_shows_rows_updated_inserted_and_deleted_with_samples(migration, pg_url, snapshot):
    m = migration(CUSTOMERS)
    spec = m.write_spec()
    m.apply()
    m.change_source(
        """
        UPDATE customer SET city = 'Cambridge' WHERE id = 1;
        UPDATE customer SET name = 'Brian K.', city = 'Princeton' WHERE id = 2;
        INSERT INTO customer VALUES (101, 'Margaret', 'Boston'), (102, 'Edsger', NULL);
        DELETE FROM customer WHERE id = 7;
        """
    )
    text = plan_text(spec, pg_url, "--show-rows", "5")
    assert text == snapshot(name="text")
    assert (
        last_line(text)
        == "Plan: 0 tables to create, 1 to change; rows: 2 to insert, 2 to update, 1 to delete."
    )
    assert as_text(plan_json(spec, pg_url, "--show-rows", "5")) == snapshot(name="json")


def test_show_rows_caps_the_samples_per_table_but_not_the_counts(migration, pg_url):
    m = migration(CUSTOMERS)
    spec = m.write_spec()
    m.apply()
    m.change_source(
        """
        UPDATE customer SET city = 'Paris' WHERE id IN (1, 2, 3);
        INSERT INTO customer VALUES (101, 'Margaret', 'Boston'), (102, 'Edsger', NULL), (103, 'Tony', 'Oxford');
        DELETE FROM customer WHERE id IN (6, 7);
        """
    )
    text = plan_text(spec, pg_url, "--show-rows", "2")
    samples = [line for line in text.splitlines() if line.startswith("    ")]
    every_change = {
        *(f"    + id={i}" for i in (101, 102, 103)),
        *(f"    ~ id={i}: city" for i in (1, 2, 3)),
        *(f"    - id={i}" for i in (6, 7)),
    }
    assert len(samples) == 2
    assert set(samples) <= every_change
    assert (
        last_line(text)
        == "Plan: 0 tables to create, 1 to change; rows: 3 to insert, 3 to update, 2 to delete."
    )


def test_plan_shows_a_column_added_in_the_source(migration, pg_url, snapshot):
    m = migration(CUSTOMERS)
    spec = m.write_spec()
    m.apply()
    m.change_source(
        "ALTER TABLE customer ADD COLUMN born INTEGER; UPDATE customer SET born = 1815 WHERE id = 1;"
    )
    assert plan_text(spec, pg_url, "--show-rows", "5") == snapshot(name="text")
    assert as_text(plan_json(spec, pg_url)) == snapshot(name="json")


def test_constraints_added_to_a_table_that_keeps_its_rows_may_fail_on_those_rows(
    migration, pg, pg_url, snapshot
):
    m = migration(CUSTOMERS)
    m.apply()
    spec = m.write_spec(
        """
        tables:
          customer:
            mode: upsert
            columns:
              city: {nullable: false}
            indexes:
              - {columns: [name], unique: true}
        """
    )
    assert plan_text(spec, pg_url) == snapshot(name="text")
    may_fail = [s["action"] for s in plan_json(spec, pg_url)["steps"] if s["may_fail"]]
    assert may_fail == ["set_not_null", "create_index"]
    # upsert keeps rows only the target holds, such as a second 'Ada'
    pg.execute("INSERT INTO customer VALUES (99, 'Ada', 'Only in the target')")
    refused = run("apply", str(spec))
    assert refused.exit_code == 1
    assert refused.stderr == snapshot(name="stderr")
    assert pg.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'customer'").fetchall() == [
        ("customer_pkey",)
    ]
    assert pg.execute(
        "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'customer'::regclass AND attname = 'city'"
    ).fetchone() == (False,)


READING = "CREATE TABLE reading (id INTEGER PRIMARY KEY, v INTEGER); INSERT INTO reading VALUES (1, 7);"


def reading_spec(pg_type: str) -> str:
    return f"tables:\n  reading:\n    columns:\n      v: {{type: {pg_type}}}\n"


def test_widening_a_column_type_in_the_spec_is_a_plain_change(migration, pg, pg_url, snapshot):
    m = migration(READING)
    m.apply(reading_spec("integer"))
    spec = m.write_spec(reading_spec("bigint"))
    assert plan_text(spec, pg_url) == snapshot(name="text")
    document = plan_json(spec, pg_url)
    assert as_text(document) == snapshot(name="json")
    assert document["destructive"] is False

    applied = run("apply", str(spec))  # no --allow-destructive needed
    assert applied.exit_code == 0, applied.stderr
    assert pg.execute("SELECT pg_typeof(v)::text, v FROM reading").fetchall() == [("bigint", 7)]
    assert last_line(plan_text(spec, pg_url)) == NO_CHANGES


def test_narrowing_a_column_type_in_the_spec_is_destructive(migration, pg, pg_url, snapshot):
    m = migration(READING)
    m.apply(reading_spec("bigint"))
    spec = m.write_spec(reading_spec("integer"))
    assert plan_text(spec, pg_url) == snapshot(name="text")
    document = plan_json(spec, pg_url)
    assert as_text(document) == snapshot(name="json")
    assert document["destructive"] is True

    refused = run("apply", str(spec))
    assert refused.exit_code == 1
    assert refused.stderr == snapshot(name="refused stderr")
    assert pg.execute("SELECT pg_typeof(v)::text, v FROM reading").fetchall() == [("bigint", 7)]

    allowed = run("apply", str(spec), "--allow-destructive")
    assert allowed.exit_code == 0, allowed.stderr
    assert pg.execute("SELECT pg_typeof(v)::text, v FROM reading").fetchall() == [("integer", 7)]
    assert last_line(plan_text(spec, pg_url)) == NO_CHANGES


def test_plan_shows_a_narrowing_even_when_a_row_to_delete_does_not_fit_the_new_type(migration, pg, pg_url):
    m = migration(READING)
    m.apply(reading_spec("bigint"))
    pg.execute("INSERT INTO reading VALUES (2, 1099511627776)")  # only in the target: sync deletes it
    spec = m.write_spec(reading_spec("integer"))
    result = run("plan", str(spec))
    assert result.exit_code == 0, result.stderr
    # The narrowing waits for the rows: the row that would not fit is deleted first.
    assert result.stdout.splitlines()[1:] == [
        '  keep a copy of "reading" for etl rollback (rollback.retention: 1)',
        '~ rows "reading": 0 to insert, 0 to update, 1 unchanged (sync by id) from "reading"',
        '! rows "reading": 1 to delete (gone from "reading")  [destructive]',
        '! column "reading"."v" type bigint -> integer (narrowing: values may change or not fit)  [destructive]',
        "Plan: 0 tables to create, 1 to change; rows: 0 to insert, 0 to update, 1 to delete.",
    ]
    applied = run("apply", str(spec), "--allow-destructive")
    assert applied.exit_code == 0, applied.stderr
    assert pg.execute("SELECT id, v FROM reading ORDER BY id").fetchall() == [(1, 7)]


def test_narrowing_below_a_value_the_source_holds_names_the_row_like_a_first_load(migration, pg):
    m = migration(READING + "INSERT INTO reading VALUES (2, 1099511627776);")
    m.apply(reading_spec("bigint"))
    spec = m.write_spec(reading_spec("integer"))
    result = run("plan", str(spec))
    assert result.exit_code == 1
    # What a first load into an empty target says of the same value:
    assert result.stderr.startswith('Error: table "reading", row id=2: column "v": out of range for integer')


# --- 2. apply does what the plan printed ----------------------------------------------------------

LIBRARY = """
CREATE TABLE author (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE book (id INTEGER PRIMARY KEY, author_id INTEGER NOT NULL REFERENCES author(id), title TEXT NOT NULL);
CREATE TABLE tag (label TEXT NOT NULL, weight INTEGER);
INSERT INTO author VALUES (1, 'Ada'), (2, 'Brian'), (3, 'Grace');
INSERT INTO book VALUES (10, 1, 'Notes'), (11, 2, 'C'), (12, 2, 'Unix'), (13, 3, 'COBOL');
INSERT INTO tag VALUES ('classic', 1), ('classic', 1), ('new', 2);
"""


def test_apply_changes_exactly_the_rows_the_plan_counted(migration, pg, pg_url):
    m = migration(LIBRARY)
    spec = m.write_spec()
    m.apply()
    m.change_source(
        """
        INSERT INTO author VALUES (4, 'Edsger');
        UPDATE author SET name = 'Ada L.' WHERE id = 1;
        INSERT INTO book VALUES (14, 4, 'GOTO'), (15, 1, 'Engine');
        UPDATE book SET title = 'The C Book' WHERE id = 11;
        DELETE FROM book WHERE id = 13;
        DELETE FROM tag WHERE label = 'new';
        INSERT INTO tag VALUES ('classic', 1), ('rare', NULL);
        """
    )
    assert run("plan", str(spec), "--detailed-exitcode").exit_code == 2
    document = plan_json(spec, pg_url)
    planned: dict[str, dict[str, int]] = {}
    for step in document["steps"]:  # inserts and updates in sync_rows, deletes in delete_rows
        if step["action"] in ("sync_rows", "delete_rows"):
            counted = planned.setdefault(
                step["table"], {"insert": 0, "update": 0, "delete": 0, "unchanged": 0}
            )
            for op, n in step["rows"].items():
                counted[op] += n
    assert planned == {
        "author": {"insert": 1, "update": 1, "delete": 0, "unchanged": 2},
        "book": {"insert": 2, "update": 1, "delete": 1, "unchanged": 2},
        "tag": {"insert": 2, "update": 0, "delete": 1, "unchanged": 2},
    }
    before = {table: len(rows(pg, table, "1")) for table in planned}

    applied = run("apply", str(spec), "--allow-destructive")
    assert applied.exit_code == 0, applied.stderr
    total = {op: sum(r[op] for r in planned.values()) for op in ("insert", "update", "delete")}
    assert total == document["summary"]["rows"]
    assert re.search(
        rf"^Done: rows: {total['insert']} inserted, {total['update']} updated, {total['delete']} deleted "
        r"in \d+\.\d\d s, every table verified\. Committed\.$",
        applied.stdout,
        re.MULTILINE,
    )
    for table, counted in planned.items():
        assert len(rows(pg, table, "1")) == before[table] + counted["insert"] - counted["delete"], table
    assert rows(pg, "author") == sqlite_rows(m.source, "SELECT * FROM author ORDER BY id")
    assert rows(pg, "book") == sqlite_rows(m.source, "SELECT * FROM book ORDER BY id")
    assert rows(pg, "tag", "label, weight") == [("classic", 1)] * 3 + [("rare", None)]

    again = run("apply", str(spec))
    assert again.exit_code == 0, again.stderr
    assert without_apply_time(again.stdout).splitlines()[1:] == [
        '  = "author", "tag", "book": unchanged since apply of <time> (rows not compared)',
        NO_CHANGES,
    ]
    assert run("plan", str(spec), "--detailed-exitcode").exit_code == 0


# --- 3. modes --------------------------------------------------------------------------------------


def test_sync_deletes_rows_gone_from_the_source_only_with_allow_destructive(migration, pg, pg_url, snapshot):
    m = migration(CUSTOMERS)
    spec = m.write_spec("mode: sync\n")
    m.apply()
    m.change_source(
        "DELETE FROM customer WHERE id IN (6, 7); UPDATE customer SET city = 'Paris' WHERE id = 1;"
    )
    before = rows(pg, "customer")

    refused = run("apply", str(spec))
    assert refused.exit_code == 1
    assert refused.stderr == snapshot(name="refused stderr")
    assert rows(pg, "customer") == before

    allowed = run("apply", str(spec), "--allow-destructive")
    assert allowed.exit_code == 0, allowed.stderr
    assert without_timing(allowed.stdout, pg_url, spec) == snapshot(name="allowed stdout")
    assert rows(pg, "customer") == [(1, "Ada", "Paris"), *before[1:5]]


def test_upsert_inserts_and_updates_but_keeps_rows_the_source_lacks(migration, pg, pg_url, snapshot):
    m = migration(CUSTOMERS)
    spec = m.write_spec("mode: upsert\n")
    m.apply()
    pg.execute("INSERT INTO customer VALUES (99, 'Only in the target', NULL)")
    m.change_source(
        "DELETE FROM customer WHERE id = 7; UPDATE customer SET city = 'Paris' WHERE id = 1;"
        "INSERT INTO customer VALUES (101, 'Margaret', 'Boston');"
    )
    text = plan_text(spec, pg_url, "--show-rows", "5")
    assert text == snapshot

    applied = run("apply", str(spec))  # nothing destructive: no flag needed
    assert applied.exit_code == 0, applied.stderr
    assert "Done: rows: 1 inserted, 1 updated, 0 deleted" in applied.stdout
    assert rows(pg, "customer") == [
        (1, "Ada", "Paris"),
        (2, "Brian", "Toronto"),
        (3, "Grace", "Arlington"),
        (4, "Linus", "Helsinki"),
        (5, "Barbara", "Boston"),
        (6, "Ken", "Berkeley"),
        (7, "Dennis", "Murray Hill"),
        (99, "Only in the target", None),
        (101, "Margaret", "Boston"),
    ]
    assert last_line(plan_text(spec, pg_url)) == NO_CHANGES


EVENTS = """
CREATE TABLE event (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, what TEXT);
INSERT INTO event VALUES (1, 10, 'boot'), (2, 20, 'login'), (3, 30, 'logout');
"""


def test_append_inserts_rows_past_the_watermark_and_missing_ones_at_it(migration, pg, pg_url, snapshot):
    m = migration(EVENTS)
    spec = m.write_spec("tables:\n  event:\n    mode: append\n    watermark: at\n")
    m.apply()
    m.change_source(
        """
        UPDATE event SET what = 'reboot' WHERE id = 1;   -- before the watermark: not compared
        UPDATE event SET what = 'exit' WHERE id = 3;     -- at the watermark, in the target: not compared
        INSERT INTO event VALUES (4, 30, 'late');        -- at the watermark, not in the target
        INSERT INTO event VALUES (5, 40, 'login'), (6, 50, 'logout');
        """
    )
    assert plan_text(spec, pg_url) == snapshot(name="text")
    assert as_text(plan_json(spec, pg_url)) == snapshot(name="json")

    applied = run("apply", str(spec))
    assert applied.exit_code == 0, applied.stderr
    assert "Done: rows: 3 inserted, 0 updated, 0 deleted" in applied.stdout
    assert rows(pg, "event") == [
        (1, 10, "boot"),
        (2, 20, "login"),
        (3, 30, "logout"),
        (4, 30, "late"),
        (5, 40, "login"),
        (6, 50, "logout"),
    ]
    assert last_line(plan_text(spec, pg_url)) == NO_CHANGES


def test_append_loads_rows_written_at_the_watermark_or_without_one(migration, pg, pg_url):
    """Rows the app writes at the same instant as the last loaded one, or with no watermark value,
    are not lost: they are matched against the target's rows at that watermark (by key; a table
    without one as copies of equal rows)."""
    m = migration(
        """
        CREATE TABLE log (at INTEGER, what TEXT);
        INSERT INTO log VALUES (10, 'a'), (20, 'b'), (20, 'b'), (NULL, 'x');
        CREATE TABLE item (id INTEGER PRIMARY KEY, at INTEGER, what TEXT);
        INSERT INTO item VALUES (1, 10, 'a'), (2, 20, 'b'), (3, NULL, 'x');
        """
    )
    spec = m.write_spec(
        "tables:\n  log:\n    mode: append\n    watermark: at\n  item:\n    mode: append\n    watermark: at\n"
    )
    m.apply()
    m.change_source(
        """
        INSERT INTO log VALUES (20, 'b'), (20, 'c'), (NULL, 'x'), (NULL, 'y'), (5, 'old');
        INSERT INTO item VALUES (4, 20, 'c'), (5, NULL, 'y'), (6, 5, 'old');
        """
    )
    planned = plan_text(spec, pg_url)
    assert '~ rows "log": 4 to insert (at >= 20, not in the target) from "log"' in planned
    assert '~ rows "item": 2 to insert (at >= 20, not in the target) from "item"' in planned

    applied = run("apply", str(spec))
    assert applied.exit_code == 0, applied.stderr
    assert "Done: rows: 6 inserted, 0 updated, 0 deleted" in applied.stdout
    assert sorted(rows(pg, "log", order_by="1"), key=repr) == sorted(
        [(10, "a"), (20, "b"), (20, "b"), (20, "b"), (20, "c"), (None, "x"), (None, "x"), (None, "y")],
        key=repr,
    )
    assert rows(pg, "item") == [(1, 10, "a"), (2, 20, "b"), (3, None, "x"), (4, 20, "c"), (5, None, "y")]
    assert last_line(plan_text(spec, pg_url)) == NO_CHANGES


def test_show_rows_lists_the_rows_append_would_insert(migration, pg_url):
    m = migration(EVENTS)
    spec = m.write_spec("tables:\n  event:\n    mode: append\n    watermark: at\n")
    m.apply()
    m.change_source("INSERT INTO event VALUES (5, 40, 'login'), (6, 50, 'logout');")
    text = plan_text(spec, pg_url, "--show-rows", "5")
    assert text.splitlines()[1:5] == [
        '  keep the rows it changes in "event" for etl rollback (rollback.retention: 1)',
        '~ rows "event": 2 to insert (at >= 30, not in the target) from "event"',
        "    + id=5",
        "    + id=6",
    ]
    samples = next(
        s for s in plan_json(spec, pg_url, "--show-rows", "5")["steps"] if s["action"] == "sync_rows"
    )
    assert samples["samples"] == [
        {"op": "insert", "key": "id=5", "columns": []},
        {"op": "insert", "key": "id=6", "columns": []},
    ]


def test_replace_rebuilds_the_table_only_when_something_differs(migration, pg, pg_url, snapshot):
    m = migration(CUSTOMERS)
    spec = m.write_spec("tables:\n  customer:\n    mode: replace\n")
    m.apply()
    built = table_oid(pg, "customer")
    unchanged = run("apply", str(spec))
    assert unchanged.exit_code == 0, unchanged.stderr
    assert last_line(unchanged.stdout) == NO_CHANGES
    assert table_oid(pg, "customer") == built

    m.change_source("UPDATE customer SET city = 'Paris' WHERE id = 1;")
    text = plan_text(spec, pg_url)
    assert text == snapshot(name="text")
    assert as_text(plan_json(spec, pg_url)) == snapshot(name="json")
    before = rows(pg, "customer")
    refused = run("apply", str(spec))
    assert refused.exit_code == 1
    assert "--allow-destructive" in refused.stderr
    assert table_oid(pg, "customer") == built
    assert rows(pg, "customer") == before

    allowed = run("apply", str(spec), "--allow-destructive")
    assert allowed.exit_code == 0, allowed.stderr
    assert table_oid(pg, "customer") != built
    assert rows(pg, "customer") == [(1, "Ada", "Paris"), *before[1:]]
    assert last_line(plan_text(spec, pg_url)) == NO_CHANGES


def test_apply_reports_the_rows_a_replace_deleted_as_the_plan_counted_them(migration, pg, pg_url):
    m = migration(CUSTOMERS)
    spec = m.write_spec("tables:\n  customer:\n    mode: replace\n")
    m.apply()
    m.change_source("UPDATE customer SET city = 'Paris' WHERE id = 1; DELETE FROM customer WHERE id = 7;")
    planned = plan_json(spec, pg_url)["summary"]["rows"]
    assert planned == {"insert": 6, "update": 0, "delete": 7}  # every row the table held goes, then 6 load
    applied = run("apply", str(spec), "--allow-destructive")
    assert applied.exit_code == 0, applied.stderr
    assert pg.execute("SELECT count(*) FROM customer").fetchone() == (6,)
    assert "Done: rows: 6 inserted, 0 updated, 7 deleted in " in applied.stdout


def test_replace_rebuilds_the_table_when_only_its_schema_differs(migration, pg, pg_url, snapshot):
    m = migration(CUSTOMERS)
    m.apply("tables:\n  customer:\n    mode: replace\n")
    built = table_oid(pg, "customer")
    spec = m.write_spec(
        "tables:\n  customer:\n    mode: replace\n    columns:\n      city: {type: varchar(40)}\n"
    )
    assert plan_text(spec, pg_url) == snapshot
    allowed = run("apply", str(spec), "--allow-destructive")
    assert allowed.exit_code == 0, allowed.stderr
    assert table_oid(pg, "customer") != built
    assert pg.execute(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'customer'::regclass AND attname = 'city'"
    ).fetchone() == ("character varying(40)",)
    assert len(rows(pg, "customer")) == 7


# --- 4. tables without a primary key ------------------------------------------------------------


def test_without_a_primary_key_one_copy_more_or_less_is_one_row_inserted_or_deleted(
    migration, pg, pg_url, snapshot
):
    m = migration(
        """
        CREATE TABLE tally (label TEXT, n INTEGER);
        INSERT INTO tally VALUES ('a', 1), ('a', 1), ('a', 1), ('b', 2), ('b', 2), (NULL, NULL), (NULL, NULL);
        """
    )
    spec = m.write_spec()
    m.apply()
    m.change_source(
        """
        DELETE FROM tally WHERE rowid = (SELECT min(rowid) FROM tally WHERE label = 'a');
        DELETE FROM tally WHERE rowid = (SELECT min(rowid) FROM tally WHERE label IS NULL);
        INSERT INTO tally VALUES ('b', 2);
        """
    )
    assert plan_text(spec, pg_url, "--show-rows", "5") == snapshot
    applied = run("apply", str(spec), "--allow-destructive")
    assert applied.exit_code == 0, applied.stderr
    assert "Done: rows: 1 inserted, 0 updated, 2 deleted" in applied.stdout
    assert rows(pg, "tally", "label, n") == [("a", 1), ("a", 1), ("b", 2), ("b", 2), ("b", 2), (None, None)]
    assert last_line(plan_text(spec, pg_url)) == NO_CHANGES


# --- 5. foreign keys ------------------------------------------------------------------------------

FAMILY = """
CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL REFERENCES parent(id), name TEXT);
INSERT INTO parent VALUES (1, 'p1'), (2, 'p2');
INSERT INTO child VALUES (10, 1, 'c10'), (20, 2, 'c20'), (21, 2, 'c21');
"""


def test_a_new_child_row_whose_parent_is_also_new_is_inserted_after_its_parent(
    migration, pg, pg_url, snapshot
):
    m = migration(FAMILY)
    spec = m.write_spec()
    m.apply()
    m.change_source("INSERT INTO parent VALUES (3, 'p3'); INSERT INTO child VALUES (30, 3, 'c30');")
    assert plan_text(spec, pg_url) == snapshot
    applied = run("apply", str(spec))
    assert applied.exit_code == 0, applied.stderr
    assert rows(pg, "child") == [(10, 1, "c10"), (20, 2, "c20"), (21, 2, "c21"), (30, 3, "c30")]
    assert rows(pg, "parent")[-1] == (3, "p3")


def test_a_parent_deleted_with_its_children_is_deleted_after_them(migration, pg, pg_url, snapshot):
    m = migration(FAMILY)
    spec = m.write_spec()
    m.apply()
    m.change_source("DELETE FROM child WHERE parent_id = 2; DELETE FROM parent WHERE id = 2;")
    assert plan_text(spec, pg_url, "--show-rows", "5") == snapshot
    deletes = [s["table"] for s in plan_json(spec, pg_url)["steps"] if s["action"] == "delete_rows"]
    assert deletes == ["child", "parent"]
    applied = run("apply", str(spec), "--allow-destructive")
    assert applied.exit_code == 0, applied.stderr
    assert "Done: rows: 0 inserted, 0 updated, 3 deleted" in applied.stdout
    assert rows(pg, "parent") == [(1, "p1")]
    assert rows(pg, "child") == [(10, 1, "c10")]


# --- 6. plan and apply --dry-run change nothing ---------------------------------------------------


def target_state(pg: psycopg.Connection) -> dict[str, Any]:
    """Everything a write could change: relations (a rewrite changes relfilenode), columns,
    constraints, sequences, and every row of every table with its xmin and ctid."""
    user_schemas = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'"
    relations = pg.execute(
        "SELECT n.nspname, c.relname, c.relkind, c.relfilenode::int FROM pg_class c "
        f"JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {user_schemas} ORDER BY 1, 2"
    ).fetchall()
    columns = pg.execute(
        "SELECT c.oid::regclass::text, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull "
        "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        f"WHERE {user_schemas} AND a.attnum > 0 AND NOT a.attisdropped ORDER BY 1, 2"
    ).fetchall()
    constraints = pg.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE connamespace IN (SELECT oid FROM pg_namespace n WHERE " + user_schemas + ") ORDER BY 1, 2"
    ).fetchall()
    sequences = pg.execute(
        "SELECT schemaname, sequencename, last_value FROM pg_sequences ORDER BY 1, 2"
    ).fetchall()
    contents = {
        f"{schema}.{name}": pg.execute(
            f'SELECT xmin::text, ctid::text, t::text FROM "{schema}"."{name}" t ORDER BY ctid'
        ).fetchall()
        for schema, name, kind, _ in relations
        if kind == "r"
    }
    return {
        "relations": relations,
        "columns": columns,
        "constraints": constraints,
        "sequences": sequences,
        "contents": contents,
    }


def test_plan_and_apply_dry_run_leave_the_target_untouched(migration, pg, pg_url):
    m = migration(LIBRARY)
    spec = m.write_spec()
    empty = target_state(pg)
    assert run("plan", str(spec), "--show-rows", "5").exit_code == 0
    dry = run("apply", str(spec), "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert last_line(dry.stdout).startswith("Plan: 3 tables to create")
    assert target_state(pg) == empty

    m.apply()
    m.change_source(
        """
        UPDATE author SET name = 'Ada L.' WHERE id = 1;
        INSERT INTO author VALUES (4, 'Edsger');
        DELETE FROM book WHERE id = 13;
        DELETE FROM tag WHERE label = 'new';
        ALTER TABLE author ADD COLUMN born INTEGER;
        """
    )
    m.write_spec("tables:\n  book:\n    columns:\n      id: {type: integer}\n")
    applied = target_state(pg)
    assert run("plan", str(spec), "--show-rows", "5").exit_code == 0
    assert run("plan", str(spec), "--json", "--show-rows", "5").exit_code == 0
    assert run("plan", str(spec), "--detailed-exitcode").exit_code == 2
    dry = run("apply", str(spec), "--dry-run", "--allow-destructive", "--show-rows", "5")
    assert dry.exit_code == 0, dry.stderr
    assert "Done:" not in dry.stdout
    assert last_line(dry.stdout) == (
        "Plan: 0 tables to create, 3 to change; rows: 1 to insert, 1 to update, 2 to delete."
    )
    assert target_state(pg) == applied


# --- 7. the plan is applied only to the target it was made against --------------------------------


def test_rows_changed_in_the_target_after_planning_fail_the_apply_and_commit_nothing(migration, pg):
    m = migration(FAMILY)
    spec = m.write_spec()
    m.apply()
    m.change_source("INSERT INTO parent VALUES (3, 'p3'); INSERT INTO child VALUES (30, 3, 'c30');")
    checked = check(spec, {})
    plan = plan_for(checked)

    pg.execute("UPDATE child SET name = 'changed meanwhile' WHERE id = 10")
    held = {t: rows(pg, t) for t in ("parent", "child")}
    with pytest.raises(PlanError) as raised:
        apply(checked, plan, allow_destructive=True)
    assert str(raised.value) == (
        'table "child" changed since the plan was made: planned 1 to insert, 0 to update, 0 to delete, '
        "found 1 to insert, 1 to update, 0 to delete; nothing was committed: run etl plan again"
    )
    assert {t: rows(pg, t) for t in ("parent", "child")} == held
    assert (3, "p3") not in held["parent"]  # inserted before "child" was found changed, then rolled back

    m.apply()  # a new plan sees the change made meanwhile and undoes it
    assert rows(pg, "child")[0] == (10, 1, "c10")
    assert rows(pg, "parent")[-1] == (3, "p3")


# --- 8. values that look different but are equal --------------------------------------------------

VALUES = [
    "CREATE TABLE doc (id INTEGER PRIMARY KEY, payload TEXT, created DATETIME, seen INTEGER, price NUMERIC(10,2))",
    (
        "INSERT INTO doc VALUES (?, ?, ?, ?, ?)",
        (1, '{"b": 1,   "a": [1, 2.50, {"z": null, "y": "\\u00e9"}]}', 1754560800123, 1754560800123, 19.99),
    ),
    ("INSERT INTO doc VALUES (?, ?, ?, ?, ?)", (2, "  [ ]  ", 0, 0, "0.10")),
    ("INSERT INTO doc VALUES (?, ?, ?, ?, ?)", (3, '{"k": 1, "k": 2, "e": 1.0e2}', 86_400_000, 999, 100)),
    ("INSERT INTO doc VALUES (?, ?, ?, ?, ?)", (4, None, None, None, None)),
    ("INSERT INTO doc VALUES (?, ?, ?, ?, ?)", (5, '"text"', 1754560800000, 1, -99999999.99)),
]
VALUES_SPEC = """
tables:
  doc:
    columns:
      payload: {type: jsonb}
      created: {type: timestamptz, converter: epoch_milliseconds}
      seen: {type: timestamp(3), converter: epoch_milliseconds}
"""


def test_values_equal_in_postgresql_but_written_differently_in_sqlite_are_no_change(migration, pg, pg_url):
    m = migration(VALUES)
    spec = m.write_spec(VALUES_SPEC)
    m.apply()
    assert pg.execute("SELECT payload::text, created, seen, price FROM doc WHERE id = 1").fetchone() == (
        '{"a": [1, 2.50, {"y": "é", "z": null}], "b": 1}',
        datetime(2025, 8, 7, 10, 0, 0, 123000, tzinfo=UTC),
        datetime(2025, 8, 7, 10, 0, 0, 123000),
        Decimal("19.99"),
    )
    assert last_line(plan_text(spec, pg_url)) == NO_CHANGES

    # The same documents written another way in the source are still the same documents.
    m.change_source(
        """UPDATE doc SET payload = '{"a":[1,2.50,{"y":"é","z":null}],"b":1}' WHERE id = 1;
        UPDATE doc SET payload = '[]' WHERE id = 2;"""
    )
    assert last_line(plan_text(spec, pg_url)) == NO_CHANGES

    # ...while a change of value is one.
    m.change_source(
        """UPDATE doc SET payload = '{"a": [1, 2.50, {"y": "é", "z": null}], "b": 2}' WHERE id = 1;
        UPDATE doc SET price = -99999999.98 WHERE id = 5;
        UPDATE doc SET seen = 1000 WHERE id = 3;"""
    )
    text = plan_text(spec, pg_url, "--show-rows", "5")
    assert text.splitlines()[1:] == [
        '  keep the rows it changes in "doc" for etl rollback (rollback.retention: 1)',
        '~ rows "doc": 0 to insert, 3 to update, 2 unchanged (sync by id) from "doc"',
        "    ~ id=1: payload",
        "    ~ id=3: seen",
        "    ~ id=5: price",
        "Plan: 0 tables to create, 1 to change; rows: 0 to insert, 3 to update, 0 to delete.",
    ]


# --- 9. tables that leave the spec ------------------------------------------------------------------


def test_a_table_etl_loaded_and_the_spec_no_longer_names_is_dropped_only_when_allowed(migration, pg, pg_url):
    m = migration(LIBRARY)
    spec = m.write_spec()
    m.apply()
    pg.execute("CREATE TABLE notes (id int)")  # the app's own table, never loaded by etl
    m.write_spec("exclude: [tag, book]\n")
    text = plan_text(spec, pg_url)
    assert text.splitlines()[1:] == [
        '  keep a copy of "book", "tag" for etl rollback (rollback.retention: 1)',
        '- foreign key "book_author_id_fkey" on "book"',
        '! table "public"."book" (no longer in the spec; its 4 rows are lost)  [destructive]',
        '! table "public"."tag" (no longer in the spec; its 3 rows are lost)  [destructive]',
        '  = "author": unchanged since apply of <time> (rows not compared)',
        "Plan: 0 tables to create, 0 to change, 2 to drop; rows: 0 to insert, 0 to update, 7 to delete.",
    ]
    refused = run("apply", str(spec))
    assert refused.exit_code == 1 and "--allow-destructive" in refused.stderr
    applied = run("apply", str(spec), "--allow-destructive")
    assert applied.exit_code == 0, applied.stderr
    assert "rows: 0 inserted, 0 updated, 7 deleted" in applied.stdout
    tables = pg.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1").fetchall()
    assert tables == [("author",), ("notes",)]
    assert plan_text(spec, pg_url).splitlines()[1:] == [
        '  = "author": unchanged since apply of <time> (rows not compared)',
        NO_CHANGES,
    ]


CASCADING = """
CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id) ON DELETE {action}, name TEXT);
INSERT INTO parent VALUES (1, 'p1'), (2, 'p2');
INSERT INTO child VALUES (10, 1, 'c10'), (20, 2, 'c20');
"""


@pytest.mark.parametrize("action", ["CASCADE", "SET NULL"])
def test_rows_a_foreign_key_action_would_change_in_an_unchanged_table_are_never_lost_silently(
    migration, pg, pg_url, action
):
    # The app deleted a parent but kept its child (SQLite enforces no foreign keys by default):
    # deleting the parent in PostgreSQL would take the child row with it through the key's action.
    m = migration(CASCADING.format(action=action))
    spec = m.write_spec()
    m.apply()
    m.change_source("DELETE FROM parent WHERE id = 2;")
    applied = run("apply", str(spec), "--allow-destructive")
    assert applied.exit_code == 1
    assert 'verification failed, nothing was committed: table "child"' in applied.stderr
    assert rows(pg, "parent") == [(1, "p1"), (2, "p2")]
    assert rows(pg, "child") == [(10, 1, "c10"), (20, 2, "c20")]


def test_a_table_a_foreign_key_action_may_change_is_kept_for_rollback_and_verified(migration):
    m = migration(CASCADING.format(action="CASCADE"))
    m.apply()
    m.change_source("DELETE FROM parent WHERE id = 2;")
    plan = m.plan()
    keep = next(s for s in plan.steps if isinstance(s, KeepForRollback))
    assert set(keep.kept) == {"parent", "child"}
    assert {t.name for t in plan.tables} == {"parent", "child"}


def test_rows_updated_by_their_key_fire_no_key_action_and_leave_the_children_unread(migration):
    # A sync matches rows by their primary key, so an update never changes a key's values: an
    # ON UPDATE action onto the key cannot fire, and a child only referencing it is not read whole.
    m = migration(
        CASCADING.format(action="CASCADE ON UPDATE CASCADE")
        + "CREATE TABLE tag (id INTEGER PRIMARY KEY, code TEXT UNIQUE, name TEXT);"
        + "CREATE TABLE tagged (id INTEGER PRIMARY KEY, code TEXT REFERENCES tag (code) ON UPDATE CASCADE);"
        + "INSERT INTO tag VALUES (1, 'a', 'A'); INSERT INTO tagged VALUES (1, 'a');"
    )
    m.apply()
    m.change_source("UPDATE parent SET name = 'p1 renamed' WHERE id = 1; UPDATE tag SET name = 'A!'")
    plan = m.plan()
    # tagged references a column that is not tag's key: an update of tag may change it
    assert {t.name for t in plan.tables} == {"parent", "tag", "tagged"}
    keep = next(s for s in plan.steps if isinstance(s, KeepForRollback))
    assert "child" not in keep.kept and "tagged" in keep.kept  # rollback keeps what may change


def test_show_rows_names_a_row_of_a_keyless_table_by_its_values(migration, pg_url):
    m = migration(
        "CREATE TABLE visit (path TEXT, n INTEGER, note TEXT);"
        "INSERT INTO visit VALUES ('/home', 1, NULL), ('/about', 2, 'it''s'), ('/gone', 3, NULL);"
    )
    spec = m.write_spec()
    m.apply()
    m.change_source(
        "DELETE FROM visit WHERE path = '/gone'; INSERT INTO visit VALUES ('/new', 4, '" + "x" * 50 + "');"
    )
    text = plan_text(spec, pg_url, "--show-rows", "5")
    assert "    + path='/new', n=4, note='" + "x" * 40 + "...'" in text.splitlines(), text
    assert "    - path='/gone', n=3, note=NULL" in text.splitlines(), text
    assert "(a row)" not in text
