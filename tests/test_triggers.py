"""SQLite triggers of the simple, common shapes carried to PostgreSQL as PL/pgSQL triggers, where
the translation is exact; the others named with their SQL. Each test asserts what PostgreSQL
does once etl has migrated the source: an update stamps the row, an audit row appears, a
trigger updating its own row does not fire again (SQLite's recursive_triggers is off), and no
trigger fires on the rows etl itself loads or syncs."""

from __future__ import annotations

import sqlite3

import yaml

from etl.core.explain import plan_lines

APP = """
CREATE TABLE doc (id INTEGER PRIMARY KEY, title TEXT NOT NULL, updated TEXT, edits INTEGER NOT NULL DEFAULT 0);
CREATE TABLE audit (id INTEGER PRIMARY KEY, doc_id INTEGER, action TEXT);
CREATE TRIGGER doc_touch AFTER UPDATE OF title ON doc FOR EACH ROW WHEN old.title IS NOT new.title BEGIN
    UPDATE doc SET updated = datetime('now'), edits = edits + 1 WHERE id = new.id;
END;
CREATE TRIGGER doc_added AFTER INSERT ON doc BEGIN
    INSERT INTO audit (doc_id, action) VALUES (new.id, 'insert');
END;
CREATE TRIGGER doc_removed AFTER DELETE ON doc BEGIN
    INSERT INTO audit (doc_id, action) VALUES (old.id, 'delete');
END;
CREATE TRIGGER doc_guard BEFORE DELETE ON doc BEGIN
    SELECT RAISE(ABORT, 'locked') WHERE old.title = 'locked';
END;
INSERT INTO doc (id, title) VALUES (1, 'first');
INSERT INTO doc (id, title) VALUES (2, 'second');
"""


def _init(tmp_path, source, pg_url) -> dict:
    from etl.init.infer import init_spec

    spec = tmp_path / "spec.yaml"
    result = init_spec(source, spec, target_url=pg_url)
    return {"spec": yaml.safe_load(spec.read_text()), "text": spec.read_text(), "result": result}


def test_init_writes_the_triggers_it_translates_exactly_and_names_the_rest(tmp_path, tmp_sqlite, pg_url):
    written = _init(tmp_path, tmp_sqlite(APP), pg_url)

    triggers = written["spec"]["triggers"]
    assert set(triggers) == {"doc_touch", "doc_added", "doc_removed"}
    assert triggers["doc_touch"] == {
        "table": "doc",
        "event": "update",
        "columns": ["title"],
        "when": 'OLD."title" IS DISTINCT FROM NEW."title"',
        "body": "UPDATE \"doc\" SET \"updated\" = to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), "
        '"edits" = "edits" + 1 WHERE "id" = NEW."id";',
    }
    assert (
        triggers["doc_added"]["body"]
        == 'INSERT INTO "audit" ("doc_id", "action") VALUES (NEW."id", \'insert\');'
    )
    assert "# !! trigger doc_guard: not translated: it is a BEFORE trigger" in written["text"]
    assert "SELECT RAISE(ABORT, 'locked') WHERE old.title = 'locked';" in written["text"]


def test_translated_triggers_behave_as_in_sqlite(tmp_path, tmp_sqlite, pg_url, pg):
    from conftest import Migration

    source = tmp_sqlite(APP)
    _init(tmp_path, source, pg_url)
    m = Migration(tmp_path, pg_url, source)
    plan = m.plan()
    assert [x.name for x in plan.left_out if x.kind == "trigger"] == ["doc_guard"]
    m.apply()

    # The load fired nothing: the audit table holds what SQLite's did, no more.
    assert pg.execute("SELECT doc_id, action FROM audit ORDER BY id").fetchall() == [
        (1, "insert"),
        (2, "insert"),
    ]
    assert pg.execute("SELECT updated, edits FROM doc WHERE id = 1").fetchone() == (None, 0)

    pg.execute("UPDATE doc SET title = 'first, again' WHERE id = 1")
    updated, edits = pg.execute("SELECT updated, edits FROM doc WHERE id = 1").fetchone()
    # Stamped once, not again by its own UPDATE (which PostgreSQL would fire without end).
    assert edits == 1 and len(updated) == 19
    pg.execute("UPDATE doc SET title = 'first, again' WHERE id = 1")  # WHEN: the title is the same
    assert pg.execute("SELECT edits FROM doc WHERE id = 1").fetchone() == (1,)
    pg.execute("UPDATE doc SET updated = NULL WHERE id = 2")  # UPDATE OF title: not this one
    assert pg.execute("SELECT edits FROM doc WHERE id = 2").fetchone() == (0,)

    pg.execute("INSERT INTO doc (id, title) VALUES (3, 'third')")
    pg.execute("DELETE FROM doc WHERE id = 2")
    assert pg.execute("SELECT doc_id, action FROM audit ORDER BY id").fetchall() == [
        (1, "insert"),
        (2, "insert"),
        (3, "insert"),
        (2, "delete"),
    ]


def test_a_sync_never_fires_the_triggers_and_a_replan_finds_nothing_to_do(tmp_path, tmp_sqlite, pg_url, pg):
    from conftest import Migration

    source = tmp_sqlite(APP)
    _init(tmp_path, source, pg_url)
    m = Migration(tmp_path, pg_url, source)
    m.apply()
    assert not m.plan().has_changes

    m.change_source("UPDATE doc SET title = 'renamed' WHERE id = 1;")
    m.change_source("INSERT INTO doc (id, title) VALUES (5, 'fifth');")
    # SQLite's triggers fired on those changes: the audit row of doc 5, and doc 1 stamped.
    plan = m.plan()
    text = "\n".join(plan_lines(plan, "target"))
    assert 'trigger "doc_touch" on "doc" (created again below)' in text
    m.apply()

    with sqlite3.connect(m.source) as con:
        expected = con.execute("SELECT id, doc_id, action FROM audit ORDER BY id").fetchall()
        stamped = con.execute("SELECT id, updated, edits FROM doc ORDER BY id").fetchall()
    assert pg.execute("SELECT id, doc_id, action FROM audit ORDER BY id").fetchall() == expected
    assert pg.execute("SELECT id, updated, edits FROM doc ORDER BY id").fetchall() == stamped
    assert not m.plan().has_changes
    # ... and the triggers are there again.
    pg.execute("INSERT INTO doc (id, title) VALUES (6, 'sixth')")
    assert pg.execute("SELECT action FROM audit WHERE doc_id = 6").fetchall() == [("insert",)]


def test_a_trigger_left_out_of_the_spec_is_named_and_dropped(tmp_path, tmp_sqlite, pg_url, pg):
    from conftest import Migration

    source = tmp_sqlite(APP)
    _init(tmp_path, source, pg_url)
    m = Migration(tmp_path, pg_url, source)
    m.apply()
    spec = yaml.safe_load(m.spec_path.read_text())
    del spec["triggers"]["doc_added"]
    m.spec_path.write_text(yaml.safe_dump(spec))

    plan = m.plan()
    reasons = {x.name: x.reason for x in plan.left_out}
    assert "triggers are not migrated" in reasons["doc_added"]
    m.apply()
    pg.execute("INSERT INTO doc (id, title) VALUES (7, 'seventh')")
    assert pg.execute("SELECT count(*) FROM audit WHERE doc_id = 7").fetchone() == (0,)
    names = {r[0] for r in pg.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")}
    assert names == {"doc_touch", "doc_removed"}


def test_rollback_brings_back_the_triggers_and_functions_as_they_were(tmp_path, tmp_sqlite, pg_url, pg):
    from conftest import Migration
    from typer.testing import CliRunner

    from etl.cli import app

    source = tmp_sqlite(APP)
    _init(tmp_path, source, pg_url)
    m = Migration(tmp_path, pg_url, source)
    m.apply()
    # A trigger of the app's own on a table etl loads, beside etl's.
    pg.execute(
        "CREATE FUNCTION count_titles() RETURNS trigger LANGUAGE plpgsql AS "
        "$$BEGIN INSERT INTO audit (doc_id, action) VALUES (NEW.id, 'counted'); RETURN NULL; END$$"
    )
    pg.execute("CREATE TRIGGER app_counts AFTER INSERT ON doc FOR EACH ROW EXECUTE FUNCTION count_titles()")
    pg.execute("DELETE FROM audit WHERE action = 'counted'")

    # The next apply syncs doc (its triggers dropped and made again) with doc_added's body changed.
    spec = yaml.safe_load(m.spec_path.read_text())
    spec["triggers"]["doc_added"]["body"] = spec["triggers"]["doc_added"]["body"].replace(
        "'insert'", "'added'"
    )
    m.spec_path.write_text(yaml.safe_dump(spec))
    m.change_source("UPDATE doc SET title = 'renamed' WHERE id = 2;")
    m.apply()
    pg.execute("INSERT INTO doc (id, title) VALUES (8, 'eighth')")
    assert pg.execute("SELECT action FROM audit WHERE doc_id = 8 ORDER BY action").fetchall() == [
        ("added",),
        ("counted",),
    ]
    pg.execute("DELETE FROM doc WHERE id = 8")

    shown = CliRunner().invoke(app, ["rollback", str(m.spec_path), "--dry-run"])
    assert (
        '~ table "public"."doc": the 1 row that apply changed put back (2 rows now, 2 after, 4 triggers)'
        in shown.output
    )
    done = CliRunner().invoke(app, ["rollback", str(m.spec_path), "--yes"])
    assert done.exit_code == 0, done.output

    found = pg.execute("SELECT tgname FROM pg_trigger WHERE tgrelid = 'doc'::regclass AND NOT tgisinternal")
    names = {r[0] for r in found}
    assert names == {"doc_touch", "doc_added", "doc_removed", "app_counts"}
    pg.execute("INSERT INTO doc (id, title) VALUES (9, 'ninth')")
    # doc_added's body as the first apply made it, and the app's trigger still there.
    assert pg.execute("SELECT action FROM audit WHERE doc_id = 9 ORDER BY action").fetchall() == [
        ("counted",),
        ("insert",),
    ]
