"""The command line as a user meets it: exit codes, one-line errors, no secrets, no tracebacks."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from etl.cli import app

runner = CliRunner()

SOURCE = """
CREATE TABLE "User" (id INTEGER PRIMARY KEY, email TEXT NOT NULL, createdAt DATETIME NOT NULL);
INSERT INTO "User" VALUES (1, 'a@example.com', 1754560800000), (2, 'b@example.com', '2025-01-02 03:04:05');
"""


def run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_schema_prints_the_packaged_json_schema():
    result = run("schema")
    assert result.exit_code == 0
    on_disk = (Path(__file__).parent.parent / "schemas" / "etl-spec.schema.json").read_text()
    assert result.stdout == on_disk
    assert json.loads(result.stdout)["$schema"] == "http://json-schema.org/draft-07/schema#"


def test_validate_accepts_a_good_spec(migration):
    m = migration(SOURCE)
    spec = m.write_spec()
    result = run("validate", str(spec))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == f"{spec}: OK (1 table, 3 columns)"


def test_validate_lists_every_problem_with_its_place_and_exits_1(migration, snapshot):
    m = migration(SOURCE)
    spec = m.write_spec(
        """
        naming: keeps
        tables:
          User:
            colums: {}
          Usr: {}
        """
    )
    result = run("validate", str(spec))
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.replace(str(spec), "spec.yaml") == snapshot


def test_apply_migrates_and_prints_a_summary(migration, pg):
    m = migration(SOURCE)
    result = run("apply", str(m.write_spec()))
    assert result.exit_code == 0, result.stderr
    assert "User" in result.stdout
    assert "Done: rows: 2 inserted, 0 updated, 0 deleted" in result.stdout
    assert pg.execute('SELECT count(*) FROM "User"').fetchone() == (2,)


TWO_TABLES = """
CREATE TABLE team (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE player (id INTEGER PRIMARY KEY, team_id INTEGER NOT NULL REFERENCES team (id), name TEXT);
CREATE INDEX player_name ON player (name);
INSERT INTO team VALUES (1, 'red'), (2, 'blue');
INSERT INTO player VALUES (1, 1, 'ann'), (2, 2, 'bob'), (3, 2, 'cy');
"""


def test_apply_summary_says_how_long_keys_indexes_and_verification_took(migration):
    """After the table lines (the loads), the time PostgreSQL spent building the 2 primary keys,
    the unique constraint, the index and the foreign key, then verification's; in the column of
    the table lines' seconds."""
    m = migration(TWO_TABLES)
    spec = str(m.write_spec())
    lines = run("apply", spec).stdout.splitlines()
    done = next(i for i, line in enumerate(lines) if line.startswith("Done: "))
    keys, verification = lines[done - 2], lines[done - 1]
    assert keys.split()[:4] == ["keys", "and", "indexes", "(5)"]
    assert verification.split()[0] == "verification"
    load = lines[done - 3]
    assert load.split()[0] in ("team", "player")
    # the seconds end where the table lines' seconds end
    assert keys.index(" s") == verification.index(" s") == load.index(" s ")
    m.change_source("INSERT INTO team VALUES (3, 'green')")
    unverified = run("apply", spec, "--no-verify").stdout
    assert "verification" not in unverified and "keys and indexes" not in unverified


def test_a_second_apply_does_nothing_and_deleting_rows_needs_allow_destructive(migration, pg):
    m = migration(SOURCE)
    spec = str(m.write_spec())
    assert run("apply", spec).exit_code == 0
    again = run("apply", spec)
    assert again.exit_code == 0, again.stderr
    assert again.stdout.splitlines()[-1] == "No changes. The target matches the spec."
    m.change_source('DELETE FROM "User" WHERE id = 2')
    refused = run("apply", spec)
    assert refused.exit_code == 1
    assert "--allow-destructive" in refused.stderr
    assert refused.stderr.startswith("Error: ")
    assert pg.execute('SELECT count(*) FROM "User"').fetchone() == (2,)
    allowed = run("apply", spec, "--allow-destructive")
    assert allowed.exit_code == 0, allowed.stderr
    assert pg.execute('SELECT count(*) FROM "User"').fetchone() == (1,)


def test_target_option_overrides_the_spec_target(migration, pg, pg_url):
    m = migration(SOURCE)
    spec = m.spec_path
    spec.write_text(
        f"version: 1\nsource:\n  sqlite: {m.source.name}\ntarget:\n  url: postgresql://nobody@127.0.0.1:1/none\n"
    )
    result = run("apply", str(spec), "--target", pg_url)
    assert result.exit_code == 0, result.stderr
    assert pg.execute('SELECT count(*) FROM "User"').fetchone() == (2,)


@pytest.mark.parametrize("debug", [False, True])
def test_a_password_never_appears_in_any_output(migration, debug):
    m = migration(SOURCE)
    spec = m.spec_path
    spec.write_text(
        f"version: 1\nsource:\n  sqlite: {m.source.name}\n"
        "target:\n  url: postgresql://alice:s3cr3t-pw@127.0.0.1:1/app\n"
    )
    args = (["--debug"] if debug else []) + ["apply", str(spec)]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "s3cr3t-pw" not in result.stdout + result.stderr
    assert "Error: cannot connect to PostgreSQL at postgresql://alice:***@127.0.0.1:1/app" in result.stderr
    assert ("Traceback" in result.stderr) is debug


def test_an_unset_environment_variable_is_a_spec_error(migration, monkeypatch):
    m = migration(SOURCE)
    spec = m.spec_path
    spec.write_text(f"version: 1\nsource:\n  sqlite: {m.source.name}\ntarget:\n  url: ${{ETL_NO_SUCH_VAR}}\n")
    monkeypatch.delenv("ETL_NO_SUCH_VAR", raising=False)
    result = run("validate", str(spec))
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"Error: {spec}:5:8: target.url: environment variable 'ETL_NO_SUCH_VAR' is not set "
        "(set it, e.g. export ETL_NO_SUCH_VAR=..., or give the whole URL with --target URL, "
        "or a fallback: ${ETL_NO_SUCH_VAR:-...})"
    )


def test_a_missing_spec_file_is_one_clear_error(tmp_path):
    result = run("validate", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: cannot read spec file")
    assert "Traceback" not in result.stderr


def test_usage_errors_exit_2():
    assert runner.invoke(app, ["apply"]).exit_code == 2
    assert runner.invoke(app, ["frobnicate"]).exit_code == 2


def test_a_bad_value_fails_the_run_with_exit_1_and_names_the_row(migration, pg):
    m = migration(
        """
        CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER);
        INSERT INTO t VALUES (1, 5), (2, 'five');
        """
    )
    result = run("apply", str(m.write_spec()))
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        'Error: table "t", row id=2: column "n": expected an integer, found text \'five\''
    )
    assert pg.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
    ).fetchone() == (0,)


def test_target_option_makes_the_specs_url_variables_unnecessary(migration, pg, pg_url, monkeypatch):
    m = migration(SOURCE)
    m.spec_path.write_text(
        f"version: 1\nsource:\n  sqlite: {m.source.name}\ntarget:\n  url: ${{ETL_UNSET_URL}}\n"
    )
    monkeypatch.delenv("ETL_UNSET_URL", raising=False)
    result = run("apply", str(m.spec_path), "--target", pg_url)
    assert result.exit_code == 0, result.stderr
    assert pg.execute('SELECT count(*) FROM "User"').fetchone() == (2,)


def test_plan_shows_every_step_with_row_counts_and_changes_nothing(migration, pg, pg_url):
    m = migration(SOURCE)
    spec = m.write_spec()
    result = run("plan", str(spec))
    assert result.exit_code == 0, result.stderr
    from etl.postgres.target import display_url

    assert result.stdout.splitlines() == [
        f'Target: {display_url(pg_url)} (schema "public")',
        '+ table "User" (3 columns) <- 2 rows',
        "Plan: 1 table to create, 0 to change; rows: 2 to insert, 0 to update, 0 to delete.",
    ]
    verbose = run("plan", str(spec), "--verbose")
    assert verbose.stdout.splitlines() == [
        f'Target: {display_url(pg_url)} (schema "public")',
        "  record the tables this apply creates, for etl rollback",
        '+ table "public"."User" (3 columns) from "User"',
        '  load 2 rows from "User" -> "public"."User"',
        '+ primary key "User_pkey" (id)',
        '  identity "User"."id" continues after the largest id',
        "Plan: 1 table to create, 0 to change; rows: 2 to insert, 0 to update, 0 to delete.",
    ]
    assert pg.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
    ).fetchone() == (0,)
    assert run("apply", str(spec)).exit_code == 0
    replanned = run("plan", str(spec))
    skipped, last = replanned.stdout.splitlines()[1:]
    assert re.fullmatch(
        r'  = "User": unchanged since apply of [\d-]{10} [\d:]{8} UTC \(rows not compared\)', skipped
    )
    assert last == "No changes. The target matches the spec."


def test_the_fallback_to_the_exact_path_is_one_plain_line_and_no_table_line_twice(migration, pg):
    m = migration(
        """
        CREATE TABLE a (id INTEGER PRIMARY KEY, n INTEGER);
        INSERT INTO a VALUES (1, 5);
        CREATE TABLE t (id INTEGER PRIMARY KEY, code INTEGER);
        INSERT INTO t VALUES (1, 7), (2, 'seven');
        """
    )
    spec = m.write_spec("tables:\n  t:\n    columns:\n      code: {type: text}\n")
    result = run("apply", str(spec))
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line for line in lines if "starting over" in line] == [
        '  starting over: table "t" holds a value DuckDB\'s typed read cannot convert exactly; '
        "every value is read again through SQLite"
    ]
    assert "DuckDB's typed read" in result.stdout and "Error" not in result.stdout
    for table, rows in (("a", "1 row "), ("t", "2 rows")):
        assert len([line for line in lines if line.startswith(f"  {table} ") and rows in line]) == 1, lines
    assert pg.execute("SELECT code FROM t ORDER BY id").fetchall() == [("7",), ("seven",)]


def test_a_table_that_only_had_deletes_says_so(migration, pg):
    m = migration("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'a'), (2, 'b');")
    spec = m.write_spec()
    assert run("apply", str(spec)).exit_code == 0
    m.change_source("DELETE FROM t WHERE id = 2")
    result = run("apply", str(spec), "--allow-destructive")
    assert result.exit_code == 0, result.stderr
    table_lines = [line for line in result.stdout.splitlines() if line.startswith("  t ")]
    assert len(table_lines) == 1 and " 1 row deleted " in table_lines[0], result.stdout
    assert pg.execute("SELECT id FROM t").fetchall() == [(1,)]


def test_an_unset_url_variable_in_validate_says_how_to_give_the_url(migration, monkeypatch, pg_url):
    m = migration(SOURCE)
    spec = m.spec_path
    spec.write_text(f"version: 1\nsource:\n  sqlite: {m.source.name}\ntarget:\n  url: ${{DATABASE_URL}}\n")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    result = run("validate", str(spec))
    assert result.exit_code == 1
    assert "export DATABASE_URL=" in result.stderr and "--target URL" in result.stderr
    assert run("validate", str(spec), "--target", pg_url).exit_code == 0


@pytest.mark.parametrize("command", ["plan", "apply", "verify", "rollback"])
def test_cannot_connect_says_how_to_give_the_url(migration, command):
    m = migration(SOURCE)
    spec = m.write_spec()
    result = run(command, str(spec), "--target", "postgresql://postgres@127.0.0.1:1/app")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "Error: cannot connect to PostgreSQL at postgresql://postgres@127.0.0.1:1/app"
    )
    assert result.stderr.rstrip().endswith(
        "(give the right URL with --target URL or in the spec's target.url)"
    )
    assert len(result.stderr.splitlines()) == 1
