"""Every apply is recorded in the target's `etl.runs`: spec, its hash, start and end, rows per
table, status, and the error of a failed run (whose other changes are all rolled back)."""

from __future__ import annotations

import hashlib

from typer.testing import CliRunner

from etl.cli import app

runner = CliRunner()


def runs(pg):
    return pg.execute(
        "SELECT target_schema, spec, spec_sha256, status, rows, error, finished_at >= started_at FROM etl.runs ORDER BY id"
    ).fetchall()


def test_a_successful_apply_is_recorded_with_its_rows(migration, pg):
    m = migration("CREATE TABLE a (id INTEGER PRIMARY KEY); INSERT INTO a VALUES (1), (2);")
    spec = m.write_spec()
    result = runner.invoke(app, ["apply", str(spec)])
    assert result.exit_code == 0, result.stderr
    sha = hashlib.sha256(spec.read_bytes()).hexdigest()
    assert runs(pg) == [("public", str(spec), sha, "succeeded", {"a": 2}, None, True)]


def test_a_failed_apply_is_recorded_and_nothing_else_of_it_remains(migration, pg):
    m = migration("CREATE TABLE a (id INTEGER PRIMARY KEY, n INTEGER); INSERT INTO a VALUES (1, 'x');")
    spec = m.write_spec()
    result = runner.invoke(app, ["apply", str(spec)])
    assert result.exit_code == 1
    assert runs(pg) == [
        (
            "public",
            str(spec),
            hashlib.sha256(spec.read_bytes()).hexdigest(),
            "failed",
            {},
            'table "a", row id=1: column "n": expected an integer, found text \'x\'',
            True,
        )
    ]
    assert pg.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
    ).fetchone() == (0,)
