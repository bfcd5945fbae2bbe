"""Shared pytest fixtures for etl's tests.

PostgreSQL: ``pg_server_url`` (session) finds or starts a server via ``samples/pg_server.py``:
``$ETL_TEST_DSN`` if set, else a passwordless ``postgres`` on 127.0.0.1:5432, else an embedded server
in ``<repo>/.etl-pg`` (stopped at session end if this session started it). Each test that asks for
``pg_url`` / ``pg`` gets an empty database of its own (see DatabasePool).

SQLite: ``tmp_sqlite`` is a factory that builds a SQLite file in ``tmp_path``.
"""

from __future__ import annotations

import secrets
import sqlite3
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

_SAMPLES = Path(__file__).resolve().parent.parent / "samples"
if str(_SAMPLES) not in sys.path:
    sys.path.insert(0, str(_SAMPLES))

import pg_server  # noqa: E402  (samples/pg_server.py)

# --- PostgreSQL ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """URL of the PostgreSQL server the tests use (its maintenance database, e.g. ``postgres``)."""
    server = pg_server.find_or_start("ETL_TEST_DSN")
    try:
        yield server.url
    finally:
        if server.started:
            server.stop()


class DatabasePool:
    """Empty databases for tests, each used by one test at a time and emptied for the next.

    CREATE DATABASE copies template0 through the write-ahead log, which costs far more than
    dropping the few schemas a test made. A database that a test changed beyond its schemas
    (privileges or settings of the database itself, extensions, event triggers, ...) is dropped,
    never handed out again, so every test starts from what CREATE DATABASE gives."""

    def __init__(self, server_url: str):
        self.server_url = server_url
        self.free: list[str] = []
        self.made: set[str] = set()

    def take(self) -> str:
        if self.free:
            return self.free.pop()
        dbname = f"etl_test_{secrets.token_hex(6)}"
        with psycopg.connect(self.server_url, autocommit=True) as admin:
            # template0 guarantees an empty database and never has sessions attached (template1 may be
            # customized on a shared server, and CREATE DATABASE fails while anyone is connected to it).
            admin.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(
                    sql.Identifier(dbname)
                )
            )
        self.made.add(dbname)
        return dbname

    def give_back(self, dbname: str) -> None:
        with psycopg.connect(self.server_url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (dbname,),
            )
            try:
                with psycopg.connect(
                    pg_server.url_with_dbname(self.server_url, dbname), autocommit=True
                ) as db:
                    if _emptied(db):
                        self.free.append(dbname)
                        return
            except psycopg.Error:
                pass
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
            self.made.discard(dbname)

    def close(self) -> None:
        with psycopg.connect(self.server_url, autocommit=True) as admin:
            for dbname in self.made:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
                )


_USER_SCHEMAS = (
    "SELECT nspname FROM pg_namespace WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') "
    "AND nspname NOT LIKE 'pg\\_temp\\_%' AND nspname NOT LIKE 'pg\\_toast\\_temp\\_%'"
)

# Anything a test may have changed outside its schemas; where any of these is not zero the database
# is not reused.
_DATABASE_CHANGES = (
    "SELECT (SELECT datacl IS NOT NULL FROM pg_database WHERE datname = current_database())::int "
    "+ (SELECT count(*) FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase "
    "   WHERE d.datname = current_database()) "
    "+ (SELECT count(*) FROM pg_extension WHERE extname <> 'plpgsql') "
    "+ (SELECT count(*) FROM pg_event_trigger) + (SELECT count(*) FROM pg_publication) "
    "+ (SELECT count(*) FROM pg_foreign_server) + (SELECT count(*) FROM pg_largeobject_metadata) "
    "+ (SELECT count(*) FROM pg_default_acl)"
)


def _emptied(db: psycopg.Connection[Any]) -> bool:
    """Drop every schema a test made and give `public` back as CREATE DATABASE makes it; False when
    the database holds changes of another kind."""
    changes = db.execute(_DATABASE_CHANGES).fetchone()
    if changes is None or changes[0] != 0:
        return False
    schemas = [row[0] for row in db.execute(_USER_SCHEMAS)]
    with db.transaction():
        if schemas:
            db.execute(
                sql.SQL("DROP SCHEMA {} CASCADE").format(sql.SQL(", ").join(map(sql.Identifier, schemas)))
            )
        db.execute("CREATE SCHEMA public AUTHORIZATION pg_database_owner")
        db.execute("GRANT USAGE ON SCHEMA public TO PUBLIC")
        db.execute("COMMENT ON SCHEMA public IS 'standard public schema'")
    return True


@pytest.fixture(scope="session")
def database_pool(pg_server_url: str) -> Iterator[DatabasePool]:
    pool = DatabasePool(pg_server_url)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture
def pg_url(pg_server_url: str, database_pool: DatabasePool) -> Iterator[str]:
    """URL of an empty database ``etl_test_<hex>`` (UTF8, as template0 gives it), used by this test alone."""
    dbname = database_pool.take()
    try:
        yield pg_server.url_with_dbname(pg_server_url, dbname)
    finally:
        database_pool.give_back(dbname)


@pytest.fixture
def two_databases(pg_server_url: str, database_pool: DatabasePool) -> Iterator[tuple[str, str]]:
    """Two empty databases: etl's target, and one a framework (Prisma, Django, Rails' DDL) builds
    its own schema in, to compare with."""
    names = [database_pool.take(), database_pool.take()]
    try:
        yield (
            pg_server.url_with_dbname(pg_server_url, names[0]),
            pg_server.url_with_dbname(pg_server_url, names[1]),
        )
    finally:
        for name in names:
            database_pool.give_back(name)


@pytest.fixture
def pg(pg_url: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit psycopg connection to the test's fresh database."""
    conn = psycopg.connect(pg_url, autocommit=True)
    try:
        yield conn
    finally:
        conn.close()


# --- SQLite ----------------------------------------------------------------------------------------

SqliteScript = str | Sequence[tuple[str, Sequence[Any] | dict[str, Any]] | str]


@pytest.fixture
def tmp_sqlite(tmp_path: Path) -> Callable[..., Path]:
    """Factory ``make_sqlite(ddl_and_inserts, name="src.db") -> Path`` building a SQLite file in tmp_path.

    ``ddl_and_inserts`` is either one SQL script (run with ``executescript``) or a list of
    ``(sql, params)`` tuples (a bare SQL string is allowed for statements without parameters).
    Refuses to overwrite an existing file, so a test cannot silently append to an earlier one.
    """

    def make_sqlite(ddl_and_inserts: SqliteScript, name: str = "src.db") -> Path:
        path = tmp_path / name
        if path.exists():
            raise FileExistsError(f"{path} already exists; pass a different name")
        with closing(sqlite3.connect(path)) as conn:
            if isinstance(ddl_and_inserts, str):
                conn.executescript(ddl_and_inserts)
            else:
                for item in ddl_and_inserts:
                    if isinstance(item, str):
                        conn.execute(item)
                    else:
                        stmt, params = item
                        conn.execute(stmt, params)
            conn.commit()
        return path

    return make_sqlite


# --- Further fixtures ------------------------------------------------------------------------------
# Add new shared fixtures below this line, in their own commented section.

# --- Migrating: spec file + SQLite source -> PostgreSQL ---------------------------------------------


class Migration:
    """One source database and its spec in tmp_path, migrated into the test's fresh database."""

    def __init__(self, tmp_path: Path, url: str, source: Path, measuring=None):
        from etl.run.validate import Measuring

        self.tmp_path = tmp_path
        self.url = url
        self.source = source
        self.spec_path = tmp_path / "spec.yaml"
        self.measuring = measuring or Measuring()

    def write_spec(self, body: str = "") -> Path:
        """A spec for the source and the test database; `body` adds top-level YAML (tables:, ...)."""
        import textwrap

        head = f"version: 1\nsource:\n  sqlite: {self.source.name}\ntarget:\n  url: {self.url}\n"
        self.spec_path.write_text(head + textwrap.dedent(body), encoding="utf-8")
        return self.spec_path

    def change_source(self, script: str) -> None:
        """Run SQL against the source, as the app would between two runs."""
        with closing(sqlite3.connect(self.source)) as conn:
            conn.executescript(script)
            conn.commit()

    def check(self, body: str | None = None):
        """The spec (as written, or `body`) checked against the source, measured with `measuring`."""
        from etl.pipeline import check

        if body is not None or not self.spec_path.exists():
            self.write_spec(body or "")
        return check(self.spec_path, {}, measuring=self.measuring)

    def plan(self, body: str | None = None):
        """The plan apply would run now (the spec as written, or `body`)."""
        from etl.pipeline import plan_for

        return plan_for(self.check(body))

    def apply(self, body: str | None = None, allow_destructive: bool = False, **options):
        """Check, plan and apply; `options` go to etl.pipeline.apply (on_event, ...)."""
        from etl.pipeline import apply, plan_for

        checked = self.check(body)
        return apply(checked, plan_for(checked), allow_destructive=allow_destructive, **options)


@pytest.fixture
def migration(tmp_path: Path, pg_url: str, tmp_sqlite: Callable[..., Path]) -> Callable[..., Migration]:
    """Factory: ``migration(sqlite_script) -> Migration`` ready to ``.apply(spec_body)``;
    ``measuring=`` (etl.validate.Measuring) sets how validation measures the source."""

    def make(script: SqliteScript, measuring=None) -> Migration:
        return Migration(tmp_path, pg_url, tmp_sqlite(script), measuring)

    return make


# --- A server of its own: settings the shared server must keep ------------------------------------


@pytest.fixture(scope="session")
def small_lock_table_url() -> Iterator[str]:
    """A PostgreSQL cluster started for this session with a lock table sized for 16 x 7 = 112
    entries (max_locks_per_transaction 16; 5 connections, one autovacuum worker and its launcher,
    no background workers or WAL senders), which the shared server's settings must never be
    changed to: a plan's lock estimate is checked against what a server reports."""
    import shutil
    import tempfile

    directory = Path(tempfile.mkdtemp(prefix="etl-locks-"))
    server = pg_server.start_cluster(
        directory / "cluster",
        {
            "max_locks_per_transaction": 16,
            "max_connections": 5,
            "autovacuum_max_workers": 1,
            "max_worker_processes": 0,
            "max_wal_senders": 0,
        },
    )
    try:
        yield server.url
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
