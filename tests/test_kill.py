"""Killing `etl apply` at any moment leaves the target exactly as before, and the next run succeeds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

ROWS = 400_000


def tables_in(pg: psycopg.Connection) -> list[str]:
    rows = pg.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1"
    ).fetchall()
    return [r[0] for r in rows]


@pytest.fixture
def big_migration(migration):
    m = migration(
        [
            "CREATE TABLE small (id INTEGER PRIMARY KEY)",
            "INSERT INTO small VALUES (1)",
            "CREATE TABLE big (id INTEGER PRIMARY KEY, payload TEXT)",
            f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {ROWS}) "
            "INSERT INTO big SELECT i, printf('%080d', i) FROM n",
        ]
    )
    m.write_spec()
    return m


def wait_for_copy(pg: psycopg.Connection, dbname: str, proc: subprocess.Popen, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        seen = pg.execute(
            "SELECT 1 FROM pg_stat_activity WHERE datname = %s AND query ILIKE 'COPY%%big%%'", (dbname,)
        ).fetchone()
        if seen:
            return True
        time.sleep(0.005)
    return False


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name)
def test_killing_apply_in_the_middle_of_a_large_table_leaves_the_target_as_before(
    big_migration, pg, pg_url, sig
):
    pg.execute("CREATE TABLE canary (id int)")
    dbname = psycopg.conninfo.conninfo_to_dict(pg_url)["dbname"]
    etl = Path(sys.executable).parent / "etl"
    proc = subprocess.Popen(
        [str(etl), "apply", str(big_migration.spec_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert wait_for_copy(pg, dbname, proc), "the COPY of table big was never seen"
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    if sig == signal.SIGINT:
        assert proc.returncode == 130, err
        assert err.strip().endswith("Error: interrupted; nothing was committed"), err
    # PostgreSQL ends the transaction of a dead client; wait until its backend is gone.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and pg.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (dbname,)
    ).fetchone() != (0,):
        time.sleep(0.05)
    assert tables_in(pg) == ["canary"]
    big_migration.apply()
    assert pg.execute("SELECT count(*) FROM big").fetchone() == (ROWS,)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name)
def test_killing_apply_after_its_identity_step_leaves_the_sequence_as_it_was(migration, pg, pg_url, sig):
    m = migration(
        "CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT);"
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100) "
        "INSERT INTO item SELECT i, 'x' FROM n;"
    )
    m.write_spec()
    m.apply()
    m.change_source("INSERT INTO item SELECT id + 1000, name FROM item;")
    sequence = "SELECT last_value, is_called FROM public.item_id_seq"
    before = pg.execute(sequence).fetchone()
    assert before == (100, True)
    dbname = psycopg.conninfo.conninfo_to_dict(pg_url)["dbname"]
    etl = Path(sys.executable).parent / "etl"
    with psycopg.connect(pg_url) as holder:
        # Apply records its run in etl.runs last, after every step: it waits there, to be killed.
        holder.execute("LOCK TABLE etl.runs IN SHARE MODE")
        proc = subprocess.Popen(
            [str(etl), "apply", str(m.spec_path), "--yes"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and proc.poll() is None:
                waiting = pg.execute(
                    "SELECT 1 FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock' "
                    'AND query LIKE \'%%INSERT INTO "etl"."runs"%%\'',
                    (dbname,),
                ).fetchone()
                if waiting:
                    break
                time.sleep(0.01)
            else:
                pytest.fail(f"apply never waited to record its run: {proc.communicate()}")
            proc.send_signal(sig)
            time.sleep(0.5)
        finally:
            holder.rollback()
            try:
                proc.communicate(timeout=60)
            finally:
                if proc.poll() is None:
                    proc.kill()
    assert proc.returncode != 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and pg.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (dbname,)
    ).fetchone() != (0,):
        time.sleep(0.05)
    assert pg.execute("SELECT count(*) FROM item").fetchone() == (100,)
    assert pg.execute(sequence).fetchone() == before


def start_apply(spec: Path, tmpdir: Path) -> subprocess.Popen:
    """`etl apply` in a process of its own, with its temporary files (DuckDB's spill directory) in `tmpdir`."""
    etl = Path(sys.executable).parent / "etl"
    return subprocess.Popen(
        [str(etl), "apply", "--yes", str(spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "TMPDIR": str(tmpdir)},
    )


def test_sigterm_rolls_back_records_the_run_says_so_and_removes_the_spill_directory(
    big_migration, pg, pg_url, tmp_path
):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    dbname = psycopg.conninfo.conninfo_to_dict(pg_url)["dbname"]
    proc = start_apply(big_migration.spec_path, tmpdir)
    try:
        assert wait_for_copy(pg, dbname, proc), "the COPY of table big was never seen"
        # What DuckDB would have spilled by now in a larger load: its files are the process's own.
        spill = tmpdir / f"etl-duckdb-{proc.pid}"
        spill.mkdir(exist_ok=True)
        (spill / "duckdb_temp_storage-0.tmp").write_bytes(b"\0" * 4096)
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert err.strip().endswith("Error: terminated (SIGTERM); nothing was committed"), err
    assert not spill.exists()
    assert tables_in(pg) == []
    assert pg.execute("SELECT target_schema, status, error FROM etl.runs").fetchall() == [
        ("public", "failed", "interrupted")
    ]


def test_the_next_run_removes_the_spill_directory_of_a_killed_run_and_not_of_a_live_one(
    big_migration, tmp_path
):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(gone.stdout)  # that process has ended, as one killed with SIGKILL has
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        for pid in (dead_pid, live.pid):
            (tmpdir / f"etl-duckdb-{pid}").mkdir()
            (tmpdir / f"etl-duckdb-{pid}" / "duckdb_temp_storage-0.tmp").write_bytes(b"\0" * 4096)
        other = tmpdir / "etl-duckdb-notapid"
        other.mkdir()
        etl = Path(sys.executable).parent / "etl"
        validate = subprocess.run(
            [str(etl), "validate", str(big_migration.spec_path)],
            capture_output=True,
            text=True,
            env={**os.environ, "TMPDIR": str(tmpdir)},
        )
        assert validate.returncode == 0, validate.stderr
        assert not (tmpdir / f"etl-duckdb-{dead_pid}").exists()
        assert (tmpdir / f"etl-duckdb-{live.pid}" / "duckdb_temp_storage-0.tmp").exists()
        assert other.exists()
    finally:
        live.kill()
        live.wait()
