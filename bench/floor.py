"""The floor: what DuckDB alone costs to move a SQLite file into PostgreSQL, with nothing on top.

    python bench/floor.py [--autocommit] SQLITE_FILE POSTGRES_URL

In one transaction (with --autocommit, each statement commits alone): ``CREATE TABLE dst.public.t AS SELECT * FROM src.t`` for every table (DuckDB's
own type mapping, binary COPY), then the SQLite file's primary keys, unique constraints, plain
column indexes and foreign keys as plain SQL through ``postgres_execute``. No profiling, no
conversion, no checks. bench/run.py runs it as a child process to time it and read its peak memory.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
from datasets import open_read_only, quote, table_names
from psycopg.conninfo import make_conninfo

from etl import duck


def _columns(names: list[str]) -> str:
    return ", ".join(quote(n) for n in names)


def _primary_key(db: sqlite3.Connection, table: str) -> list[str]:
    info = db.execute(f"PRAGMA table_info({quote(table)})").fetchall()
    return [row[1] for row in sorted((r for r in info if r[5]), key=lambda r: r[5])]


def _key_and_index_sql(db: sqlite3.Connection, table: str) -> Iterator[str]:
    target = f"public.{quote(table)}"
    pk = _primary_key(db, table)
    if pk:
        yield f"ALTER TABLE {target} ADD PRIMARY KEY ({_columns(pk)})"
    for _, index, unique, origin, partial in db.execute(f"PRAGMA index_list({quote(table)})").fetchall():
        columns = [row[2] for row in db.execute(f"PRAGMA index_info({quote(index)})")]
        if origin == "pk" or partial or None in columns:  # the key above; partial/expression: skipped
            continue
        if origin == "u":
            yield f"ALTER TABLE {target} ADD UNIQUE ({_columns(columns)})"
        else:
            kind = "UNIQUE INDEX" if unique else "INDEX"
            yield f"CREATE {kind} {quote(index)} ON {target} ({_columns(columns)})"


def _foreign_key_sql(db: sqlite3.Connection, table: str) -> Iterator[str]:
    keys: dict[int, list[tuple]] = {}
    for row in db.execute(f"PRAGMA foreign_key_list({quote(table)})"):
        keys.setdefault(row[0], []).append(row)
    for rows in keys.values():
        parent, on_update, on_delete = rows[0][2], rows[0][5], rows[0][6]
        columns = [r[3] for r in rows]
        ref_columns = [r[4] for r in rows] if rows[0][4] else _primary_key(db, parent)
        yield (
            f"ALTER TABLE public.{quote(table)} ADD FOREIGN KEY ({_columns(columns)}) "
            f"REFERENCES public.{quote(parent)} ({_columns(ref_columns)}) "
            f"ON DELETE {on_delete} ON UPDATE {on_update}"
        )


def schema_sql(sqlite_path: Path) -> tuple[list[str], list[str]]:
    """The tables, and the DDL for their keys and indexes (foreign keys last)."""
    db = open_read_only(sqlite_path)
    try:
        tables = table_names(db)
        ddl = [s for t in tables for s in _key_and_index_sql(db, t)]
        ddl += [s for t in tables for s in _foreign_key_sql(db, t)]
    finally:
        db.close()
    return tables, ddl


def load(sqlite_path: Path, postgres_url: str, autocommit: bool = False) -> None:
    tables, ddl = schema_sql(sqlite_path)
    con = duck.connect()
    # DuckDB's own default (80% of RAM), not etl's bound. Set, not RESET: DuckDB 1.5.5 shows the
    # default after RESET memory_limit but its buffer manager keeps the limit set before.
    default = duckdb.connect().execute("SELECT current_setting('memory_limit')").fetchone()
    con.execute(f"SET memory_limit = {duck.quote_literal(default[0])}")
    con.execute(f"ATTACH {duck.quote_literal(str(sqlite_path))} AS src (TYPE sqlite, READ_ONLY)")
    con.execute(f"ATTACH {duck.quote_literal(make_conninfo(postgres_url))} AS dst (TYPE postgres)")
    if not autocommit:  # autocommit: DuckDB commits each statement, and with it PostgreSQL's transaction
        con.execute("BEGIN")
    for table in tables:
        con.execute(f"CREATE TABLE dst.public.{quote(table)} AS SELECT * FROM src.{quote(table)}")
    for statement in ddl:
        con.execute(f"CALL postgres_execute('dst', {duck.quote_literal(statement)})")
    if not autocommit:
        con.execute("COMMIT")
    con.close()


if __name__ == "__main__":
    arguments = sys.argv[1:]
    autocommit = "--autocommit" in arguments
    arguments = [a for a in arguments if a != "--autocommit"]
    if len(arguments) != 2:
        sys.exit(f"usage: {sys.argv[0]} [--autocommit] SQLITE_FILE POSTGRES_URL")
    try:
        load(Path(arguments[0]), arguments[1], autocommit)
    except Exception as exc:  # one line for the benchmark's log, and a non-zero exit code
        sys.exit(f"floor failed: {' '.join(str(exc).split())}")
