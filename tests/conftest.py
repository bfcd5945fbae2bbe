"""Shared pytest fixtures for etl's tests.

PostgreSQL: ``pg_server_url`` (session) finds or starts a server via ``samples/pg_server.py``:
``$ETL_TEST_DSN`` if set, else a passwordless ``postgres`` on 127.0.0.1:5432, else an embedded server
in ``<repo>/.etl-pg`` (stopped at session end if this session started it). Each test that asks for
``pg_url`` / ``pg`` gets its own freshly created, empty database, dropped afterwards.

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


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    """URL of a new, empty database ``etl_test_<hex>`` (UTF8, from template0), dropped after the test."""
    dbname = f"etl_test_{secrets.token_hex(6)}"
    ident = sql.Identifier(dbname)
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        # template0 guarantees an empty database and never has sessions attached (template1 may be
        # customized on a shared server, and CREATE DATABASE fails while anyone is connected to it).
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(ident))
    try:
        yield pg_server.url_with_dbname(pg_server_url, dbname)
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))


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

    def __init__(self, tmp_path: Path, url: str, source: Path):
        self.tmp_path = tmp_path
        self.url = url
        self.source = source
        self.spec_path = tmp_path / "spec.yaml"

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

    def plan(self, body: str | None = None):
        """The plan apply would run now (the spec as written, or `body`)."""
        from etl.observe import observe_target
        from etl.planner import build_plan
        from etl.validate import validate

        if body is not None or not self.spec_path.exists():
            self.write_spec(body or "")
        checked = validate(self.spec_path, {})
        return build_plan(checked.mapping, observe_target(checked.mapping, checked.spec.source, self.url))

    def apply(self, body: str | None = None, allow_destructive: bool = False):
        from etl.executor import apply_plan
        from etl.observe import observe_target
        from etl.planner import build_plan
        from etl.validate import validate

        if body is not None or not self.spec_path.exists():
            self.write_spec(body or "")
        checked = validate(self.spec_path, {})
        plan = build_plan(checked.mapping, observe_target(checked.mapping, checked.spec.source, self.url))
        return apply_plan(plan, checked.spec.source, self.url, allow_destructive=allow_destructive)


@pytest.fixture
def migration(tmp_path: Path, pg_url: str, tmp_sqlite: Callable[..., Path]) -> Callable[..., Migration]:
    """Factory: ``migration(sqlite_script) -> Migration`` ready to ``.apply(spec_body)``."""

    def make(script: SqliteScript) -> Migration:
        return Migration(tmp_path, pg_url, tmp_sqlite(script))

    return make
