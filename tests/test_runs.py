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


def test_first_applies_into_two_schemas_of_one_fresh_database_at_once_both_succeed(tmp_path, pg, pg_url):
    """Both create etl's metadata schema and tables, which PostgreSQL's IF NOT EXISTS does not make
    safe against each other: the first to commit would fail the other after its whole load."""
    import sqlite3
    import threading
    from contextlib import closing

    from etl.pipeline import apply, check, plan_for

    applies = []
    for schema in ("alpha", "beta"):
        source = tmp_path / f"{schema}.db"
        with closing(sqlite3.connect(source)) as conn:
            conn.executescript(
                "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);"
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200000) "
                "INSERT INTO t SELECT i, printf('%040d', i) FROM n;"
            )
        spec = tmp_path / f"{schema}.yaml"
        spec.write_text(
            f"version: 1\nsource:\n  sqlite: {source.name}\ntarget:\n  url: {pg_url}\n  schema: {schema}\n",
            encoding="utf-8",
        )
        checked = check(spec, {})
        applies.append((checked, plan_for(checked)))
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(checked, plan) -> None:
        try:
            barrier.wait()
            apply(checked, plan)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)

    workers = [threading.Thread(target=run, args=a) for a in applies]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert errors == []
    assert pg.execute("SELECT target_schema, status FROM etl.runs ORDER BY 1").fetchall() == [
        ("alpha", "succeeded"),
        ("beta", "succeeded"),
    ]
    for schema in ("alpha", "beta"):
        assert pg.execute(f"SELECT count(*) FROM {schema}.t").fetchone() == (200000,)
