"""`etl verify` and the verification apply runs before COMMIT: counts and checksums of every
table, source through the spec against the target, with differing keys named."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from etl.cli import app
from etl.errors import VerificationFailed
from etl.pipeline import apply, plan_for
from etl.run.verify import jsonb_canonical, numeric_canonical

runner = CliRunner()

SOURCE = """
CREATE TABLE "User" (id INTEGER PRIMARY KEY, email TEXT NOT NULL, prefs TEXT, balance DECIMAL, seen DATETIME);
INSERT INTO "User" VALUES (1, 'a@x', '{"b": 1, "a": [1.50, 2e2], "a": "dup"}', '19.99', 1754560800000);
INSERT INTO "User" VALUES (2, 'b@x', '{"z": null, "é": true}', 20, '2025-08-07 10:00:00');
INSERT INTO "User" VALUES (3, 'c@x', NULL, NULL, NULL);
CREATE TABLE tag (id INTEGER PRIMARY KEY, name TEXT);
INSERT INTO tag VALUES (1, 'x');
"""
BODY = """
tables:
  User:
    columns:
      prefs: {type: jsonb}
      balance: {type: "numeric(65,30)"}
"""


def run(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture
def loaded(migration):
    m = migration(SOURCE)
    m.apply(BODY)
    return m


def test_verify_reports_every_table_the_same_after_apply(loaded):
    result = run("verify", str(loaded.spec_path))
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:3] == [
        "table                             source rows  target rows  checksum",
        "User                                        3            3  same",
        "tag                                         1            1  same",
    ]
    # the schema ledger follows (tests/test_ledger.py): with every entry carried, only its
    # summary; then the verdict
    assert lines[-4:] == [
        "",
        "Schema ledger: 14 carried, 0 translated, 0 materialized, 0 left out, 0 missing in target.",
        "(14 carried entries not listed: --verbose lists every entry.)",
        "Verified: 2 tables match the source.",
    ]


def test_a_changed_a_missing_and_an_extra_row_are_each_named(loaded, pg):
    pg.execute("""UPDATE "User" SET prefs = '{"b": 2}' WHERE id = 1""")
    pg.execute('DELETE FROM "User" WHERE id = 2')
    pg.execute("""INSERT INTO "User" (id, email) VALUES (9, 'new')""")
    result = run("verify", str(loaded.spec_path))
    assert result.exit_code == 1
    assert "    id=1: different values" in result.stdout
    assert "    id=2: missing in the target" in result.stdout
    assert "    id=9: not in the source" in result.stdout
    assert result.stderr.startswith(
        'Error: the target differs from the source: table "User": the same number of rows'
    )


def test_verify_json_says_which_tables_differ(loaded, pg):
    pg.execute("DELETE FROM tag")
    result = run("verify", str(loaded.spec_path), "--json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["ok"] is False
    assert [(t["table"], t["ok"], t["source_rows"], t["target_rows"]) for t in document["tables"]] == [
        ("User", True, 3, 3),
        ("tag", False, 1, 0),
    ]
    assert document["tables"][1]["differing_keys"] == ["id=1: missing in the target"]


def test_verify_names_a_table_missing_in_the_target(loaded, pg):
    pg.execute("DROP TABLE tag")
    result = run("verify", str(loaded.spec_path))
    assert result.exit_code == 1
    assert 'table "tag" is missing in the target' in result.stderr


def test_apply_rolls_back_when_verification_finds_a_difference(migration, pg):
    """A trigger in the target rewrites rows as they arrive: verification reads back what
    PostgreSQL stored, finds it is not the source, and nothing of the apply is committed."""
    m = migration(SOURCE)
    m.write_spec(BODY)
    m.apply()
    pg.execute(
        "CREATE FUNCTION shout() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN NEW.name := upper(NEW.name); RETURN NEW; END $$"
    )
    pg.execute("CREATE TRIGGER shout BEFORE INSERT ON tag FOR EACH ROW EXECUTE FUNCTION shout()")
    m.change_source("INSERT INTO tag VALUES (2, 'y')")
    with pytest.raises(VerificationFailed) as failure:
        m.apply()
    assert str(failure.value).startswith('verification failed, nothing was committed: table "tag"')
    assert pg.execute("SELECT id, name FROM tag ORDER BY id").fetchall() == [(1, "x")]


def test_no_verify_skips_verification_and_says_so(migration):
    m = migration(SOURCE)
    result = run("apply", str(m.write_spec(BODY)), "--no-verify")
    assert result.exit_code == 0, result.stderr
    assert "not verified (--no-verify). Committed." in result.stdout


@pytest.mark.parametrize(
    ("text", "printed"),
    [
        ('{"b": 1, "a": 2, "aa": 3}', '{"a": 2, "b": 1, "aa": 3}'),  # shorter keys first, then bytes
        ('{"a": 1, "a": 2}', '{"a": 2}'),  # the last duplicate wins
        ("[1.50, 2e2, 1.5e1, -0, 0.0, 1E-2]", "[1.50, 200, 15, 0, 0.0, 0.01]"),
        ('{"é": "\\u00e9\\n\\"", "e": []}', '{"e": [], "é": "é\\n\\""}'),
        ("  true ", "true"),
        ('"x"', '"x"'),
    ],
)
def test_jsonb_canonical_prints_what_postgresql_prints(pg, text, printed):
    assert jsonb_canonical(text) == printed
    assert pg.execute("SELECT %s::jsonb::text", (text,)).fetchone()[0] == printed


@pytest.mark.parametrize("text", ["19.99", "19.990000", "1e+22", "-0.0", "0.5E-3", "100", "12.0"])
def test_numeric_canonical_equals_for_equal_numbers(pg, text):
    stored = pg.execute("SELECT %s::numeric(65,30)::text", (text,)).fetchone()[0]
    assert numeric_canonical(stored) == numeric_canonical(text)
    assert Decimal(numeric_canonical(text)) == Decimal(text)


def test_the_machines_time_zone_changes_no_value_and_no_checksum(migration, pg):
    import os
    import subprocess
    import sys

    m = migration(
        "CREATE TABLE e (id INTEGER PRIMARY KEY, at DATETIME, ms DATETIME);"
        "INSERT INTO e VALUES (1, '2024-03-10 02:30:00', 1754560800000), (2, '2024-11-03 01:30:00', 1754560800001);"
    )
    spec = m.write_spec(
        "tables:\n  e:\n    columns:\n      at: {type: timestamptz}\n      ms: {type: timestamp(3)}\n"
    )
    env = {**os.environ, "TZ": "America/New_York"}
    done = subprocess.run(
        [sys.executable, "-m", "etl", "apply", str(spec)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "every table verified" in done.stdout
    rows = pg.execute("SELECT id, at AT TIME ZONE 'UTC', ms FROM e ORDER BY id").fetchall()
    assert [(r[0], str(r[1]), str(r[2])) for r in rows] == [
        (1, "2024-03-10 02:30:00", "2025-08-07 10:00:00"),
        (2, "2024-11-03 01:30:00", "2025-08-07 10:00:00.001000"),
    ]


DEEP = [
    "[" * 5000 + "]" * 5000,
    '{"a": ' * 3000 + '[1.50, {"b": 2, "a": 1, "b": 3}]' + "}" * 3000,
]


@pytest.mark.parametrize("text", DEEP, ids=["arrays", "objects"])
def test_jsonb_canonical_prints_what_postgresql_prints_at_thousands_of_levels(pg, text):
    assert jsonb_canonical(text) == pg.execute("SELECT %s::jsonb::text", (text,)).fetchone()[0]


def test_jsonb_nested_thousands_of_levels_deep_arrives_and_verifies(migration, pg):
    m = migration([("CREATE TABLE d (id INTEGER PRIMARY KEY, doc TEXT)", ())])
    m.change_source("".join(f"INSERT INTO d VALUES ({i}, '{text}');" for i, text in enumerate(DEEP)))
    m.apply("tables:\n  d:\n    columns:\n      doc: {type: jsonb}\n")
    assert pg.execute("SELECT count(*) FROM d").fetchone() == (2,)
    result = run("verify", str(m.spec_path))
    assert result.exit_code == 0, result.output
    assert "Verified: 1 table matches the source." in result.stdout


# The app: another process (two SQLite libraries in one process, Python's and DuckDB's, break each
# other's locks on the WAL), writing small transactions, rows in and out, until it is stopped.
APP_WRITES = """
import sqlite3, sys, time
app = sqlite3.connect(sys.argv[1], isolation_level=None)
while True:
    app.execute("INSERT INTO big (payload) VALUES ('new')")
    app.execute("DELETE FROM big WHERE id = (SELECT min(id) FROM big)")
    print("wrote", flush=True)
    time.sleep(0.001)
"""


def test_an_app_writing_during_a_first_load_is_named_instead_of_a_count_that_never_existed(migration, pg):
    import subprocess
    import sys

    m = migration(
        [
            "PRAGMA journal_mode=WAL",
            "CREATE TABLE big (id INTEGER PRIMARY KEY, payload TEXT)",
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000) "
            "INSERT INTO big SELECT i, printf('%080d', i) FROM n",
        ]
    )
    m.write_spec()
    checked = m.check()
    plan = plan_for(checked)
    app = subprocess.Popen(
        [sys.executable, "-c", APP_WRITES, str(m.source)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert app.stdout is not None and app.stdout.readline() == "wrote\n"
        with pytest.raises(VerificationFailed) as failure:
            apply(checked, plan)
    finally:
        app.kill()
        app.communicate()
    assert str(failure.value).startswith(
        f"the SQLite file '{checked.spec.source}' changed while apply read it (an app wrote to it)"
    )
    assert "nothing was committed: stop the app and run apply again" in str(failure.value)
    assert "rows in the source" not in str(failure.value)
    assert pg.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
    ).fetchone() == (0,)


def test_jsonb_nested_deeper_than_postgresql_accepts_names_its_row(migration, pg):
    from etl.errors import DataError

    m = migration([("CREATE TABLE d (id INTEGER PRIMARY KEY, doc TEXT)", ())])
    deep = "[" * 100_000 + "]" * 100_000
    m.change_source(f"INSERT INTO d VALUES (1, '{{}}'); INSERT INTO d VALUES (7, '{deep}');")
    with pytest.raises(DataError) as failure:
        m.apply("tables:\n  d:\n    columns:\n      doc: {type: jsonb}\n")
    assert str(failure.value) == (
        'table "d", row id=7: column "doc": JSON nested 100,000 levels deep, deeper than PostgreSQL accepts '
        "(stack depth limit exceeded); nothing was committed: flatten the value in SQLite, or raise "
        "max_stack_depth on the server"
    )
    assert pg.execute("SELECT status, error FROM etl.runs").fetchall() == [("failed", str(failure.value))]
