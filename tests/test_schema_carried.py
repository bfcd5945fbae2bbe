"""Schema objects beyond tables and columns: CHECK constraints, deferrable foreign keys, generated
columns, defaults, and what is named rather than carried (triggers, views, virtual tables).

Each test asserts the behaviour PostgreSQL shows once etl has migrated the source (an insert it
must refuse, a value it computes), not only the DDL etl meant to send."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import psycopg
import pytest
import yaml
from psycopg import errors
from typer.testing import CliRunner

from etl.cli import app
from etl.core.explain import plan_document, plan_lines
from etl.errors import DataError

PLAN_SCHEMA = json.loads((Path(__file__).parent.parent / "schemas" / "etl-plan.schema.json").read_text())

DJANGO_LOG = """
CREATE TABLE "auth_user" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "username" varchar(150) NOT NULL);
CREATE TABLE "django_admin_log" (
    "id" integer NOT NULL PRIMARY KEY AUTOINCREMENT,
    "action_flag" smallint unsigned NOT NULL CHECK ("action_flag" >= 0),
    "change_message" text NOT NULL,
    "data" text NULL CHECK ((JSON_VALID("data") OR "data" IS NULL)),
    "user_id" integer NOT NULL REFERENCES "auth_user" ("id") DEFERRABLE INITIALLY DEFERRED,
    CONSTRAINT "message_not_empty" CHECK (length(change_message) > 0 AND action_flag IN (1, 2, 3))
);
INSERT INTO auth_user VALUES (1, 'ada');
INSERT INTO django_admin_log VALUES (1, 1, 'added', '{"a": 1}', 1);
INSERT INTO django_admin_log VALUES (2, 2, 'changed', NULL, 1);
"""


def _refused(pg: psycopg.Connection, statement: str) -> type[Exception]:
    """The error class PostgreSQL raises for `statement` (rolled back to a savepoint)."""
    with pytest.raises(psycopg.Error) as caught, pg.transaction():
        pg.execute(statement)
    return type(caught.value)


def _accepted(pg: psycopg.Connection, statement: str) -> None:
    with pg.transaction(force_rollback=True):
        pg.execute(statement)


def test_check_constraints_refuse_rows_in_postgresql(migration, pg):
    m = migration(DJANGO_LOG)
    m.apply("tables:\n  django_admin_log:\n    columns:\n      data: {type: jsonb}\n")

    log = "INSERT INTO django_admin_log (id, action_flag, change_message, data, user_id) VALUES "
    assert _refused(pg, log + "(9, -1, 'x', NULL, 1)") is errors.CheckViolation
    assert _refused(pg, log + "(9, 1, '', NULL, 1)") is errors.CheckViolation
    assert _refused(pg, log + "(9, 7, 'x', NULL, 1)") is errors.CheckViolation
    _accepted(pg, log + "(9, 3, 'x', NULL, 1)")
    _accepted(pg, log + """(9, 3, 'x', '{"b": [1]}', 1)""")
    names = {
        r[0]
        for r in pg.execute(
            "SELECT conname FROM pg_constraint WHERE contype = 'c' AND conrelid = 'django_admin_log'::regclass"
        )
    }
    assert names == {"message_not_empty", "django_admin_log_action_flag_check", "django_admin_log_data_check"}
    # Planned again, the target matches: the checks read back as they were made.
    assert not m.plan().has_changes


def test_a_json_valid_check_on_a_text_column_is_named_in_the_plan(migration, pg):
    m = migration(DJANGO_LOG)
    plan = m.plan()

    text = "\n".join(plan_lines(plan, "target"))
    assert 'check of "django_admin_log": has no exact PostgreSQL equivalent' in text
    assert '(JSON_VALID("data") OR "data" IS NULL)' in text
    document = plan_document(plan, "target")
    jsonschema.validate(document, PLAN_SCHEMA)
    left = document["left_out"]
    assert [(x["table"], x["kind"], x["sql"]) for x in left] == [
        ("django_admin_log", "check", '(JSON_VALID("data") OR "data" IS NULL)')
    ]
    m.apply()
    log = "INSERT INTO django_admin_log (id, action_flag, change_message, data, user_id) VALUES "
    assert _refused(pg, log + "(9, -1, 'x', NULL, 1)") is errors.CheckViolation


PRICES = (
    "CREATE TABLE item (id INTEGER PRIMARY KEY, price REAL CHECK (price >= 0), name TEXT);"
    "PRAGMA ignore_check_constraints = 1;"
    "INSERT INTO item VALUES (1, 5, 'a'), (2, -3, 'b'), (3, NULL, 'c'), (4, -0.5, 'd');"
)


def test_a_row_violating_a_check_is_named_as_a_value_problem_and_nothing_is_committed(migration, pg):
    m = migration(PRICES)
    with pytest.raises(DataError) as caught:
        m.apply()

    problem = caught.value.problem
    assert problem is not None
    assert (problem.table, problem.key, problem.column, problem.value) == (
        "item",
        "id=2",
        "price",
        "real -3.0",
    )
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(
        'table "item", row id=2: column "price": violates check "item_price_check" ("price" >= 0), '
        "found real -3.0; 2 rows violate it; nothing was committed"
    )
    assert pg.execute("SELECT count(*) FROM pg_tables WHERE tablename = 'item'").fetchone() == (0,)


def test_with_on_error_reject_rows_a_check_refuses_are_set_aside_and_the_check_holds(migration, pg):
    m = migration(PRICES)
    result = m.apply("on_error: reject\n")

    assert result.verified
    # NULL passes a CHECK, as in SQLite: row 3 arrives.
    assert pg.execute("SELECT id FROM item ORDER BY id").fetchall() == [(1,), (3,)]
    assert result.rows == {"item": 2}
    assert [(r["key"], r["column"], r["reason"]) for r in result.rejects] == [
        (
            "id=2",
            "price",
            'column "price": violates check "item_price_check" ("price" >= 0), found real -3.0',
        ),
        (
            "id=4",
            "price",
            'column "price": violates check "item_price_check" ("price" >= 0), found real -0.5',
        ),
    ]
    assert result.rejects[0]["row"] == {
        "id": {"type": "integer", "text": "2"},
        "price": {"type": "real", "text": "-3.0"},
        "name": {"type": "text", "text": "b"},
    }
    stored = pg.execute("SELECT row_key, reason FROM etl.rejects ORDER BY id").fetchall()
    assert [k for k, _ in stored] == ["id=2", "id=4"] and "item_price_check" in stored[0][1]
    assert _refused(pg, "INSERT INTO item VALUES (9, -1, 'x')") is errors.CheckViolation
    # Applied again, the rows set aside stay out: nothing to change, nothing rejected again.
    again = m.apply("on_error: reject\n")
    assert again.verified and again.rejects == [] and again.changes == {}
    assert pg.execute("SELECT id FROM item ORDER BY id").fetchall() == [(1,), (3,)]


def test_apply_json_and_the_report_name_the_check_of_each_row_set_aside(migration):
    m = migration(PRICES)
    spec = m.write_spec("on_error: reject\n")
    result = CliRunner().invoke(app, ["apply", str(spec), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["verified"] is True
    assert document["rejects"]["count"] == 2 and document["rejects"]["by_source_table"] == {"item": 2}
    assert [t["inserted"] for t in document["tables"] if t["table"] == "item"] == [2]
    report = [json.loads(line) for line in spec.with_name("spec.rejects.jsonl").read_text().splitlines()]
    assert [(r["key"], "item_price_check" in r["reason"]) for r in report] == [("id=2", True), ("id=4", True)]


def test_a_key_less_table_sets_aside_each_refused_row_once(migration, pg):
    m = migration(
        "CREATE TABLE reading (sensor TEXT, value INTEGER, CONSTRAINT in_range CHECK (value BETWEEN 0 AND 100));"
        "PRAGMA ignore_check_constraints = 1;"
        "INSERT INTO reading VALUES ('a', 5), ('a', 500), ('a', 500), ('b', -1), ('b', 50);"
    )
    with pytest.raises(DataError) as caught:
        m.apply()
    # A table without a key names its rows by rowid, as every value problem does.
    assert str(caught.value).startswith(
        'table "reading", row rowid=2: violates check "in_range" ("value" BETWEEN 0 AND 100); 3 rows violate it'
    )

    result = m.apply("on_error: reject\n")
    assert result.verified
    assert sorted(pg.execute("SELECT sensor, value FROM reading").fetchall()) == [("a", 5), ("b", 50)]
    assert [(r["key"], r["column"], r["row"]["value"]["text"]) for r in result.rejects] == [
        ("rowid=2", None, "500"),
        ("rowid=3", None, "500"),
        ("rowid=4", None, "-1"),
    ]


def test_a_changed_row_violating_a_check_is_named_or_set_aside_on_resync(migration, pg):
    m = migration(
        "CREATE TABLE item (id INTEGER PRIMARY KEY, price REAL CHECK (price >= 0), name TEXT);"
        "INSERT INTO item VALUES (1, 5, 'a'), (2, 3, 'b'), (3, 4, 'c');"
    )
    m.apply("on_error: reject\n")
    m.change_source(
        "PRAGMA ignore_check_constraints = 1;"
        "UPDATE item SET price = -1 WHERE id = 2; INSERT INTO item VALUES (4, -7, 'd'), (5, 1, 'e');"
    )

    with pytest.raises(DataError) as caught:
        m.apply("")
    assert str(caught.value).startswith(
        'table "item", row id=2: column "price": violates check "item_price_check" ("price" >= 0), found real -1.0'
    )
    assert pg.execute("SELECT id, price FROM item ORDER BY id").fetchall() == [(1, 5), (2, 3), (3, 4)]

    result = m.apply("on_error: reject\n")
    assert result.verified
    assert [r["key"] for r in result.rejects] == ["id=2", "id=4"]
    assert result.changes == {"item": (1, 0, 1)}
    # The changed row leaves the target: its old values are no longer the source's.
    assert pg.execute("SELECT id, price FROM item ORDER BY id").fetchall() == [(1, 5), (3, 4), (5, 1)]


def test_a_hostile_check_name_is_named_and_its_rows_set_aside(migration, pg):
    m = migration(
        """CREATE TABLE "t; --" ("we""ird" INTEGER, CONSTRAINT "c"" ; DROP TABLE x; --" CHECK ("we""ird" > 0));
        PRAGMA ignore_check_constraints = 1;
        INSERT INTO "t; --" VALUES (1), (0);"""
    )
    with pytest.raises(DataError) as caught:
        m.apply()
    assert 'violates check "c" ; DROP TABLE x; --"' in str(caught.value)

    result = m.apply("on_error: reject\n")
    assert result.verified and len(result.rejects) == 1
    assert pg.execute('SELECT * FROM "t; --"').fetchall() == [(1,)]


def test_checks_given_in_the_spec_replace_the_sources(migration, pg):
    m = migration(
        "CREATE TABLE item (id INTEGER PRIMARY KEY, price REAL CHECK (price >= 0), qty INTEGER);"
        "INSERT INTO item VALUES (1, 5, 1);"
    )
    plan = m.plan("tables:\n  item:\n    checks:\n      - {name: qty_positive, sql: qty > 0}\n")
    assert [x.source_sql for x in plan.left_out] == ["price >= 0"]
    m.apply()

    _accepted(pg, "INSERT INTO item VALUES (2, -1, 1)")
    assert _refused(pg, "INSERT INTO item VALUES (2, 1, 0)") is errors.CheckViolation


def test_deferred_foreign_keys_stay_deferred(migration, pg):
    m = migration(
        "CREATE TABLE parent (id INTEGER PRIMARY KEY);"
        "CREATE TABLE deferred (id INTEGER PRIMARY KEY,"
        " parent_id INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);"
        "CREATE TABLE immediate (id INTEGER PRIMARY KEY, parent_id INTEGER,"
        " FOREIGN KEY (parent_id) REFERENCES parent (id) DEFERRABLE INITIALLY IMMEDIATE);"
        "CREATE TABLE plain (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent (id));"
        "INSERT INTO parent VALUES (1); INSERT INTO deferred VALUES (1, 1);"
    )
    text = "\n".join(plan_lines(m.plan(), "target", verbose=True))
    assert (
        '"deferred" (parent_id) -> "parent" (id) on delete no action, on update no action, deferrable initially deferred'
        in text
    )
    m.apply()

    # A child inserted before its parent, in one transaction: checked at COMMIT.
    with pg.transaction(force_rollback=True):
        pg.execute("INSERT INTO deferred VALUES (2, 5)")
        pg.execute("INSERT INTO parent VALUES (5)")
    assert _refused(pg, "INSERT INTO plain VALUES (2, 5)") is errors.ForeignKeyViolation
    assert _refused(pg, "INSERT INTO immediate VALUES (2, 5)") is errors.ForeignKeyViolation
    with pg.transaction(force_rollback=True):  # DEFERRABLE: a transaction may defer it
        pg.execute("SET CONSTRAINTS ALL DEFERRED")
        pg.execute("INSERT INTO immediate VALUES (2, 5)")
        pg.execute("INSERT INTO parent VALUES (5)")
    with pytest.raises(errors.ForeignKeyViolation), pg.transaction():
        pg.execute("INSERT INTO deferred VALUES (3, 6)")
    assert not m.plan().has_changes


def test_init_makes_a_json_checked_text_column_jsonb_and_the_check_carries(tmp_sqlite, tmp_path, pg_url, pg):
    from etl.init.infer import init_spec
    from etl.pipeline import apply, check, plan_for

    spec = tmp_path / "spec.yaml"
    result = init_spec(tmp_sqlite(DJANGO_LOG), spec, target_url=pg_url)

    text = spec.read_text()
    assert "data: {type: jsonb}  # TEXT" in text
    assert "checks:" not in text and not [f for f in result.findings if "CHECK" in f.message]
    checked = check(spec, {})
    plan = plan_for(checked)
    assert plan.left_out == ()
    apply(checked, plan)
    log = "INSERT INTO django_admin_log (id, action_flag, change_message, data, user_id) VALUES "
    assert _refused(pg, log + "(9, -1, 'x', NULL, 1)") is errors.CheckViolation
    assert _refused(pg, log + "(9, 7, 'x', NULL, 1)") is errors.CheckViolation
    assert _refused(pg, log + "(9, 1, 'x', 'not json', 1)") is errors.InvalidTextRepresentation
    _accepted(pg, log + "(9, 1, 'x', NULL, 1)")


def test_init_names_a_check_it_cannot_carry_and_writes_the_others(tmp_sqlite, tmp_path, pg_url, pg):
    from etl.init.infer import init_spec
    from etl.pipeline import apply, check, plan_for

    source = tmp_sqlite(
        DJANGO_LOG
        + "PRAGMA ignore_check_constraints = 1;"
        + "INSERT INTO django_admin_log VALUES (3, 1, 'added', 'not json', 1);"
    )
    spec = tmp_path / "spec.yaml"
    result = init_spec(source, spec, target_url=pg_url)

    text = spec.read_text()
    assert "data: {type: text}  # !! TEXT; holds text that is not JSON (1 value" in text
    assert '- {name: django_admin_log_action_flag_check, sql: "\\"action_flag\\" >= 0"}' in text
    assert '# !! CHECK ((JSON_VALID("data") OR "data" IS NULL)) on column data has no exact' in text
    assert [(f.table, f.column) for f in result.findings if "CHECK" in f.message] == [
        ("django_admin_log", "data")
    ]
    checked = check(spec, {})
    plan = plan_for(checked)
    assert [x.source_sql for x in plan.left_out] == ['(JSON_VALID("data") OR "data" IS NULL)']
    apply(checked, plan)
    log = "INSERT INTO django_admin_log (id, action_flag, change_message, data, user_id) VALUES "
    assert _refused(pg, log + "(9, -1, 'x', NULL, 1)") is errors.CheckViolation
    assert _refused(pg, log + "(9, 7, 'x', NULL, 1)") is errors.CheckViolation


GENERATED = """
CREATE TABLE line (
    id INTEGER PRIMARY KEY,
    qty INTEGER NOT NULL,
    price INTEGER NOT NULL,
    name TEXT,
    total INTEGER GENERATED ALWAYS AS (qty * price) STORED,
    shout TEXT AS (upper(name)),
    odd TEXT AS (printf('%d!', qty)) VIRTUAL
);
INSERT INTO line (id, qty, price, name) VALUES (1, 2, 3, 'crème'), (2, 5, 7, NULL);
"""


def test_generated_columns_are_computed_by_postgresql(migration, pg):
    m = migration(GENERATED)
    plan = m.plan()
    assert [(x.kind, x.name) for x in plan.left_out] == [("generated column", "odd")]
    m.apply()

    assert pg.execute("SELECT id, total, shout, odd FROM line ORDER BY id").fetchall() == [
        (1, 6, "CRèME", "2!"),  # SQLite's upper() changes ASCII letters only, and so does the target's
        (2, 35, None, "5!"),
    ]
    with pg.transaction(force_rollback=True):
        new = pg.execute(
            "INSERT INTO line (id, qty, price, name) VALUES (3, 4, 10, 'é-a') RETURNING total, shout, odd"
        )
        assert new.fetchone() == (40, "é-A", None)  # odd is a plain column: nothing computes it
    assert (
        _refused(pg, "INSERT INTO line (id, qty, price, total) VALUES (4, 1, 1, 9)") is errors.GeneratedAlways
    )
    assert not m.plan().has_changes


def test_generated_columns_are_verified_and_kept_in_sync(migration, pg):
    m = migration(GENERATED)
    m.apply()
    m.change_source(
        "UPDATE line SET qty = 10 WHERE id = 1; INSERT INTO line (id, qty, price) VALUES (3, 1, 1);"
    )
    plan = m.plan()
    assert plan.has_changes
    m.apply()  # verification compares the generated values of both sides

    assert pg.execute("SELECT id, total FROM line ORDER BY id").fetchall() == [(1, 30), (2, 35), (3, 1)]

    from etl.run.rollback import apply_rollback, plan_rollback

    apply_rollback(plan_rollback(m.url, "public"), m.url)  # the copy kept its generated column
    assert pg.execute("SELECT id, total FROM line ORDER BY id").fetchall() == [(1, 6), (2, 35)]
    with pg.transaction(force_rollback=True):
        assert pg.execute(
            "INSERT INTO line (id, qty, price) VALUES (9, 3, 3) RETURNING total"
        ).fetchone() == (9,)


def test_init_says_what_becomes_of_each_generated_column(tmp_sqlite, tmp_path):
    from etl.init.infer import init_spec

    result = init_spec(tmp_sqlite(GENERATED), tmp_path / "spec.yaml")

    text = (tmp_path / "spec.yaml").read_text()
    assert "GENERATED ALWAYS AS (qty * price) STORED: PostgreSQL computes it" in text
    assert "GENERATED ALWAYS AS (upper(name)) STORED (VIRTUAL in SQLite: PostgreSQL stores it)" in text
    assert [(f.column, f.message.split(",")[0]) for f in result.findings if f.column == "odd"] == [
        ("odd", "generated by SQLite as (printf('%d!'")
    ]


def test_defaults_of_the_current_moment_and_empty_strings_are_translated(migration, pg):
    import datetime

    migration(
        """
        CREATE TABLE event (
            id INTEGER PRIMARY KEY,
            day DATE DEFAULT CURRENT_DATE,
            at_day DATETIME DEFAULT CURRENT_DATE,
            clock TEXT DEFAULT CURRENT_TIME,
            label TEXT NOT NULL DEFAULT "",
            blank TEXT NOT NULL DEFAULT '',
            epoch INTEGER NOT NULL DEFAULT (strftime('%s', 'now')),
            created TEXT DEFAULT (datetime('now')),
            stamped TEXT DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
            touched DATETIME DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
        );
        """
    ).apply()

    pg.execute("SET TimeZone = 'Pacific/Kiritimati'")  # UTC+14: a day ahead of UTC for 14 hours
    row = pg.execute("INSERT INTO event (id) VALUES (1) RETURNING *, now()").fetchone()
    assert row is not None
    now: datetime.datetime = row[-1]
    utc = now.astimezone(datetime.UTC)
    _, day, at_day, clock, label, blank, epoch, created, stamped, touched, _ = row
    assert day == utc.date()
    assert at_day == datetime.datetime.combine(utc.date(), datetime.time(), datetime.UTC)
    assert clock == utc.strftime("%H:%M:%S")
    assert (label, blank) == ("", "")
    assert epoch == int(now.timestamp())
    assert created == utc.strftime("%Y-%m-%d %H:%M:%S")
    assert stamped == utc.strftime("%Y-%m-%d %H:%M:%S.") + f"{utc.microsecond // 1000:03d}"
    assert touched == now.replace(microsecond=now.microsecond // 1000 * 1000)


OBJECTS = """
CREATE TABLE doc (id INTEGER PRIMARY KEY, title TEXT, body TEXT, updated TEXT);
CREATE VIRTUAL TABLE doc_fts USING fts5(title, body, content='doc', content_rowid='id');
CREATE VIRTUAL TABLE note_fts USING fts5(text);
CREATE VIRTUAL TABLE old_fts USING fts4(text);
CREATE TRIGGER doc_touch AFTER UPDATE ON doc BEGIN
    UPDATE doc SET updated = datetime('now') WHERE id = new.id;
END;
CREATE VIEW titled AS SELECT id, title FROM doc WHERE title IS NOT NULL;
INSERT INTO doc VALUES (1, 'hello', 'world', NULL);
INSERT INTO doc_fts (rowid, title, body) VALUES (1, 'hello', 'world');
INSERT INTO note_fts VALUES ('kept only in the index');
INSERT INTO old_fts VALUES ('fts4 text');
"""


def test_views_triggers_and_virtual_tables_are_named_and_shadow_tables_never_copied(migration, pg):
    m = migration(OBJECTS)
    plan = m.plan()

    named = [(x.kind, x.name) for x in plan.left_out]
    assert named == [
        ("virtual table", "doc_fts"),
        ("virtual table", "note_fts"),
        ("virtual table", "old_fts"),
        ("trigger", "doc_touch"),
        ("view", "titled"),
    ]
    reasons = {x.name: x.reason for x in plan.left_out}
    assert (
        "nor its shadow tables (doc_fts_data, doc_fts_idx, doc_fts_docsize, doc_fts_config)"
        in reasons["doc_fts"]
    )
    assert "the rows it indexes are in 'doc', which is migrated" in reasons["doc_fts"]
    assert "the rows it indexes live only inside it" in reasons["note_fts"]
    assert "old_fts_segments" in reasons["old_fts"] and "old_fts_segdir" in reasons["old_fts"]
    text = "\n".join(plan_lines(plan, "target"))
    assert 'trigger "doc_touch" of "doc": triggers are not migrated' in text
    assert "UPDATE doc SET updated = datetime('now') WHERE id = new.id; END" in text
    m.apply()

    tables = [r[0] for r in pg.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    assert tables == ["doc"]  # no shadow table of binary index blocks arrived


def test_a_shadow_table_named_in_the_spec_is_explained(tmp_sqlite, tmp_path):
    from conftest import Migration

    from etl.errors import SpecError

    m = Migration(tmp_path, "postgresql://etl@127.0.0.1:1/unused", tmp_sqlite(OBJECTS))
    with pytest.raises(SpecError) as caught:
        m.check("tables:\n  doc_fts_data: {}\n")
    assert "'doc_fts_data' is a shadow table of the virtual table 'doc_fts'" in str(caught.value)


def test_init_writes_each_left_out_object_with_its_sql(tmp_sqlite, tmp_path):
    from etl.init.infer import init_spec

    result = init_spec(tmp_sqlite(OBJECTS), tmp_path / "spec.yaml")

    text = (tmp_path / "spec.yaml").read_text()
    # The trigger translates exactly: written under triggers:, to be created (tests/test_triggers.py).
    assert yaml.safe_load(text)["triggers"]["doc_touch"]["event"] == "update"
    assert "#      CREATE VIRTUAL TABLE note_fts USING fts5(text)" in text
    # The view translates exactly: written under views:, to be created (tests/test_views.py).
    assert yaml.safe_load(text)["views"] == {
        "titled": {"sql": 'SELECT "id", "title" FROM "doc" WHERE NOT "title" IS NULL'}
    }
    assert "doc_fts_data" not in text.split("tables:")[1]  # no shadow table among the tables
    assert {f.table for f in result.findings} >= {"doc_fts", "note_fts", "old_fts"}


def test_nocase_and_rtrim_uniqueness_is_kept_exactly(migration, pg):
    m = migration(
        """
        CREATE TABLE account (id INTEGER PRIMARY KEY, email TEXT COLLATE NOCASE UNIQUE, handle TEXT,
                              tag TEXT UNIQUE COLLATE RTRIM);
        CREATE UNIQUE INDEX account_handle ON account (handle COLLATE NOCASE);
        CREATE TABLE code (code TEXT PRIMARY KEY COLLATE NOCASE, label TEXT);
        INSERT INTO account VALUES (1, 'a@X.com', 'Ada', 't');
        INSERT INTO code VALUES ('ab', 'first');
        """
    )
    m.apply()

    account = "INSERT INTO account (id, email, handle, tag) VALUES "
    assert _refused(pg, account + "(2, 'A@x.com', 'b', 'u')") is errors.UniqueViolation
    assert _refused(pg, account + "(2, 'b@x.com', 'ADA', 'u')") is errors.UniqueViolation
    assert _refused(pg, account + "(2, 'b@x.com', 'b', 't  ')") is errors.UniqueViolation
    assert _refused(pg, "INSERT INTO code VALUES ('AB', 'second')") is errors.UniqueViolation
    # SQLite's NOCASE folds ASCII letters only: 'é' and 'É' differ there, and here.
    _accepted(pg, account + "(2, 'é@x.com', 'é', 'u'), (3, 'É@x.com', 'É', 'v')")
    assert not m.plan().has_changes


@pytest.mark.parametrize("rows", [1, 3000], ids=["small", "typed-scan-sized"])
def test_a_bad_value_beside_a_generated_first_column_is_still_named(migration, pg, rows):
    m = migration(
        "CREATE TABLE t (doubled INTEGER AS (n * 2) STORED, n INTEGER PRIMARY KEY, day DATE);"
        f"WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {rows})"
        " INSERT INTO t (n, day) SELECT i, '2024-01-01' FROM s;"
        f"UPDATE t SET day = 'not a day' WHERE n = {rows};"
    )
    with pytest.raises(DataError) as caught:
        m.apply()

    assert f"n={rows}" in str(caught.value) and "not a day" in str(caught.value)
    assert pg.execute("SELECT count(*) FROM pg_tables WHERE tablename = 't'").fetchone() == (0,)


def test_hostile_names_in_checks_stay_names(migration, pg):
    m = migration(
        """CREATE TABLE "t; --" ("we""ird" INTEGER, CONSTRAINT "c"" ; DROP TABLE x; --" CHECK ("we""ird" > 0));
        INSERT INTO "t; --" VALUES (1);"""
    )
    m.apply()

    assert pg.execute(
        "SELECT conname FROM pg_constraint WHERE contype = 'c' AND conrelid = '\"t; --\"'::regclass"
    ).fetchall() == [('c" ; DROP TABLE x; --',)]
    assert _refused(pg, 'INSERT INTO "t; --" VALUES (0)') is errors.CheckViolation


def test_a_plain_column_in_the_target_becomes_generated(migration, pg):
    m = migration(GENERATED)
    # As an apply before generated columns were carried left it: total a plain column.
    m.apply("tables:\n  line:\n    columns:\n      total: {expression: qty * price, type: bigint}\n")
    assert pg.execute("SELECT attgenerated FROM pg_attribute WHERE attname = 'total'").fetchone() == ("",)

    plan = m.plan("")
    assert [type(s).__name__ for s in plan.steps if getattr(s, "table", None) == "line"] == [
        "DropColumn",
        "AddColumn",
    ]
    m.apply(allow_destructive=True)
    assert pg.execute("SELECT attgenerated FROM pg_attribute WHERE attname = 'total'").fetchone() == ("s",)
    assert pg.execute("SELECT id, total FROM line ORDER BY id").fetchall() == [(1, 6), (2, 35)]
    assert not m.plan().has_changes


def test_a_named_unique_constraint_keeps_its_name_and_refuses_duplicates(migration, pg):
    """Django's Meta.constraints UniqueConstraint is `CONSTRAINT "name" UNIQUE (...)` in SQLite, and
    Django drops it by that name in a later migration; an unnamed one is named as PostgreSQL would."""
    m = migration(
        '''
        CREATE TABLE "shop_category" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT,
            "name" varchar(100) NOT NULL, "parent_id" integer NULL,
            "code" text CONSTRAINT "code is ""unique""" UNIQUE, "slug" text UNIQUE,
            CONSTRAINT "category_name_per_parent" UNIQUE ("parent_id", "name"));
        INSERT INTO shop_category VALUES (1, 'Books', NULL, 'b', 'books'), (2, 'Books', 1, 'n', 'novels');
        '''
    )
    m.apply()
    named = pg.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'shop_category'::regclass AND contype = 'u' ORDER BY 1"
    ).fetchall()
    assert named == [
        ("category_name_per_parent", "UNIQUE (parent_id, name)"),
        ('code is "unique"', "UNIQUE (code)"),
        ("shop_category_slug_key", "UNIQUE (slug)"),
    ]
    insert = "INSERT INTO shop_category (name, parent_id, code, slug) VALUES "
    assert _refused(pg, insert + "('Books', 1, 'x', 'x')") is errors.UniqueViolation
    assert _refused(pg, insert + "('Other', NULL, 'b', 'x')") is errors.UniqueViolation
    _accepted(pg, insert + "('Books', 2, 'x', 'x')")
    pg.execute('ALTER TABLE shop_category DROP CONSTRAINT "category_name_per_parent"')  # as Django does
    _accepted(pg, insert + "('Books', 1, 'x', 'x')")
