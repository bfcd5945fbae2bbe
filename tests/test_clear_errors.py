"""What is the user's situation, not a bug in etl, is said in one line that names the file, the
table or the privilege and what to do: a damaged SQLite file, a role without rights on etl's
schema, a lost connection, a value PostgreSQL cannot take."""

from __future__ import annotations

import os
import random
import secrets
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from typer.testing import CliRunner

from etl.cli import app

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def one_line_error(result) -> str:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "bug in etl" not in lines[0]
    return lines[0]


def garble_pages(path: Path, first_page: int, keep: int = 0, page_size: int = 4096) -> None:
    """The same garbage every time over each page of `path` from `first_page` (0-based) on, after
    its first `keep` bytes."""
    noise = random.Random(17)
    data = bytearray(path.read_bytes())
    for page in range(first_page, len(data) // page_size):
        data[page * page_size + keep : (page + 1) * page_size] = noise.randbytes(page_size - keep)
    path.write_bytes(bytes(data))


def spec_for(tmp_path: Path, source: Path, url: str) -> Path:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"version: 1\nsource:\n  sqlite: {source.name}\ntarget:\n  url: {url}\n", encoding="utf-8"
    )
    return spec


def test_a_corrupt_sqlite_file_is_named_with_how_to_recover_it_by_every_command(tmp_sqlite, tmp_path, pg_url):
    source = tmp_sqlite(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);"
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000) "
        "INSERT INTO t SELECT i, printf('%080d', i) FROM n;"
    )
    garble_pages(source, first_page=2)  # the header and the schema read well, the rows do not
    spec = spec_for(tmp_path, source, pg_url)
    expected = f"the SQLite file '{source}' is corrupt (database disk image is malformed): restore it"
    for command in (["validate"], ["plan"], ["apply", "--yes"], ["verify"]):
        assert expected in one_line_error(run(*command, str(spec))), command
    init = run("init", str(source), "-o", str(tmp_path / "init.yaml"))
    assert expected in one_line_error(init)
    assert f"sqlite3 '{source}' .recover" in one_line_error(init)


def test_a_file_with_a_sqlite_header_and_garbage_after_it_is_named_as_corrupt(tmp_sqlite, tmp_path, pg_url):
    source = tmp_sqlite("CREATE TABLE t (id INTEGER PRIMARY KEY);")
    source.write_bytes(source.read_bytes()[:100] + random.Random(17).randbytes(8192))
    spec = spec_for(tmp_path, source, pg_url)
    expected = f"the SQLite file '{source}' is corrupt (database disk image is malformed): restore it"
    init = ["init", str(source), "-o", str(tmp_path / "init.yaml")]
    for command in (["validate", str(spec)], ["apply", "--yes", str(spec)], init):
        assert expected in one_line_error(run(*command)), command


def test_a_sqlite_file_damaged_only_in_its_large_values_is_named_by_apply_and_verify(
    tmp_sqlite, tmp_path, pg, pg_url
):
    source = tmp_sqlite(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);"
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) "
        "INSERT INTO t SELECT i, printf('%020000d', i) FROM n;"
    )
    with closing(sqlite3.connect(source)) as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    # The second half of the file is the values' overflow pages, which validation does not read:
    # only a read of the values meets the damage.
    garble_pages(source, first_page=pages // 2, keep=8)
    spec = spec_for(tmp_path, source, pg_url)
    assert run("validate", str(spec)).exit_code == 0
    expected = f"Error: the SQLite file '{source}' is corrupt (database disk image is malformed)"
    assert one_line_error(run("apply", "--yes", str(spec))).startswith(expected)
    assert pg.execute("SELECT status, error FROM etl.runs").fetchall() == [
        ("failed", one_line_error(run("apply", "--yes", str(spec)))[len("Error: ") :])
    ]
    assert one_line_error(run("verify", str(spec))).startswith(expected)


@pytest.fixture
def app_role(pg_url):
    """A role that may log in and use a schema "app" of its own, and nothing else in the database."""
    role = f"etl_app_{secrets.token_hex(4)}"
    info = psycopg.conninfo.conninfo_to_dict(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        admin.execute(
            sql.SQL("REVOKE CREATE ON DATABASE {} FROM PUBLIC").format(sql.Identifier(info["dbname"]))
        )
        admin.execute(sql.SQL("CREATE SCHEMA app AUTHORIZATION {}").format(sql.Identifier(role)))
    host, port = info.get("host", "127.0.0.1"), info.get("port", "5432")
    try:
        yield role, f"postgresql://{role}@/{info['dbname']}?host={host}&port={port}"
    finally:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def write_spec(tmp_path: Path, source: Path, url: str) -> Path:
    spec = spec_for(tmp_path, source, url)
    spec.write_text(spec.read_text(encoding="utf-8") + "  schema: app\n", encoding="utf-8")
    return spec


def test_a_role_without_rights_on_schema_etl_is_told_the_grant_it_needs_before_anything_loads(
    migration, pg, app_role
):
    role, url = app_role
    m = migration("CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (1);")
    spec = write_spec(m.tmp_path, m.source, url)
    pg.execute("CREATE SCHEMA etl")  # owned by postgres: the role may neither use nor create in it
    for command in (["plan"], ["apply", "--yes"]):
        line = one_line_error(run(*command, str(spec)))
        assert f'role "{role}" lacks privileges on schema "etl"' in line, line
        assert f'GRANT USAGE ON SCHEMA etl TO "{role}"' in line
        assert f'GRANT CREATE ON SCHEMA etl TO "{role}"' in line
    assert pg.execute("SELECT count(*) FROM pg_tables WHERE schemaname IN ('app', 'etl')").fetchone() == (0,)
    pg.execute(sql.SQL("GRANT USAGE, CREATE ON SCHEMA etl TO {}").format(sql.Identifier(role)))
    assert run("apply", "--yes", str(spec)).exit_code == 0
    assert pg.execute("SELECT count(*) FROM app.t").fetchone() == (1,)


def test_a_role_that_may_not_create_schema_etl_is_told_how_to_create_it(migration, pg, app_role):
    role, url = app_role
    m = migration("CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (1);")
    spec = write_spec(m.tmp_path, m.source, url)
    line = one_line_error(run("apply", "--yes", str(spec)))
    assert f'role "{role}" may not create schema "etl"' in line, line
    assert f'CREATE SCHEMA "etl" AUTHORIZATION "{role}"' in line
    assert pg.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'app'").fetchone() == (0,)


def test_a_connection_lost_during_a_load_is_one_readable_line_and_leaves_no_spill_files(
    migration, pg, pg_url, tmp_path
):
    m = migration(
        [
            "CREATE TABLE big (id INTEGER PRIMARY KEY, payload TEXT)",
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400000) "
            "INSERT INTO big SELECT i, printf('%080d', i) FROM n",
        ]
    )
    spec = m.write_spec()
    dbname = psycopg.conninfo.conninfo_to_dict(pg_url)["dbname"]
    etl = Path(sys.executable).parent / "etl"
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    proc = subprocess.Popen(
        [str(etl), "apply", "--yes", str(spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(tmpdir)},
    )
    # What DuckDB spills in a larger load: the connection that lost PostgreSQL is never closed
    # (executor._quarantine), so DuckDB itself would not remove it.
    spill = tmpdir / f"etl-duckdb-{proc.pid}"
    spill.mkdir()
    (spill / "duckdb_temp_storage-0.tmp").write_bytes(bytes(4096))
    try:
        deadline = time.monotonic() + 60
        killed = False
        while not killed and proc.poll() is None and time.monotonic() < deadline:
            killed = bool(
                pg.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid() AND query ILIKE 'COPY%%big%%'",
                    (dbname,),
                ).fetchall()
            )
            time.sleep(0.005)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert killed, "the COPY of table big was never seen; the test could not end its connection"
    assert proc.returncode == 1, err
    (line,) = err.strip().splitlines()
    assert line.startswith('Error: lost the connection to PostgreSQL while loading table "big": '), line
    assert line.endswith("; nothing was committed: run apply again once the server accepts connections")
    assert "Stack Trace" not in line and "duckdb" not in line.lower() and len(line) < 300, line
    assert not spill.exists()
