"""While apply waits on PostgreSQL (keys and indexes, reading the rows back, COMMIT), DuckDB runs
on one thread: with worker threads its client thread spins on a core until PostgreSQL answers."""

from __future__ import annotations

import time
from pathlib import Path

from etl.pipeline import apply, plan_for
from etl.run.executor import WAITING_THREADS
from etl.run.session import Statement, attach, connect_for

SOURCE = """
CREATE TABLE author (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE post (id INTEGER PRIMARY KEY, author_id INTEGER NOT NULL REFERENCES author(id), title TEXT);
CREATE INDEX post_by_author ON post(author_id);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)
INSERT INTO author SELECT i, 'author ' || i FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60000)
INSERT INTO post SELECT i, i % 100 + 1, 'post ' || i FROM n;
"""


def _threads_at_each_statement(sent: list[Statement]) -> list[tuple[str | None, Statement]]:
    """Each statement with DuckDB's threads setting it ran under (None: DuckDB's default), from
    the SET/RESET threads statements told before it."""
    threads: str | None = None
    seen = []
    for statement in sent:
        text = statement.text
        if statement.engine == "duckdb" and text.startswith("SET threads = "):
            threads = text.removeprefix("SET threads = ")
        elif statement.engine == "duckdb" and text == "RESET threads":
            threads = None
        else:
            seen.append((threads, statement))
    return seen


def test_apply_waits_on_postgresql_with_one_thread(migration):
    m = migration(SOURCE)
    checked = m.check()
    sent: list[Statement] = []
    result = apply(checked, plan_for(checked), on_statement=sent.append)
    assert result.verified and result.rows == {"author": 100, "post": 60000}
    seen = _threads_at_each_statement(sent)
    waiting = [
        (threads, s.text)
        for threads, s in seen
        if s.engine == "postgresql"  # DDL, keys and indexes, etl's records
        or s.text == "COMMIT"
        or "FROM postgres_query(" in s.text  # verification reading the rows back
    ]
    assert any(text.startswith("CREATE INDEX") for _, text in waiting)
    assert any("postgres_query(" in text for _, text in waiting)
    assert [(threads, text[:80]) for threads, text in waiting if threads != str(WAITING_THREADS)] == []


def test_duckdb_waits_on_one_thread_without_spinning(tmp_sqlite, pg_url):
    """Why WAITING_THREADS is 1: on it, a query that waits on PostgreSQL costs no CPU."""
    source: Path = tmp_sqlite("CREATE TABLE t (id INTEGER PRIMARY KEY);")
    con = connect_for(())
    try:
        attach(con, source, pg_url)
        con.execute(f"SET threads = {WAITING_THREADS}")
        cpu = time.process_time()
        con.execute("CALL postgres_execute('dst', 'SELECT pg_sleep(0.5)')")
        assert time.process_time() - cpu < 0.25
    finally:
        con.close()
