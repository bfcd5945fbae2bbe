"""The DuckDB session: one DuckDB connection with the SQLite source and the PostgreSQL target
attached (as SOURCE_ALIAS and TARGET_ALIAS), and what its errors say. Observe (which only reads
the target) and the executor (which writes it) both open it here, so that reading never imports
writing."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, cast

import duckdb

from etl import duck
from etl.core.mapping import TargetTable
from etl.errors import DataError, EtlError, SourceError, TargetError
from etl.postgres.target import display_url, libpq_conninfo, redact
from etl.run.problem import raised_value_problem
from etl.sqlite.catalog import corrupt_source_error

SOURCE_ALIAS = "src"  # the SQLite database, attached read-only in DuckDB
TARGET_ALIAS = "dst"  # the PostgreSQL database, attached in DuckDB


@dataclass(frozen=True)
class Statement:
    """One statement apply runs. `engine`: "postgresql" (sent to PostgreSQL as is, through DuckDB's
    postgres_execute or postgres_query, inside apply's transaction), "duckdb" (a query DuckDB
    runs over the attached source and target), or "" (a comment: `text` says what is decided only
    while apply runs). `path`: "typed" or "sqlite" for a statement reading the `source` table that
    DuckDB's typed scan can read: apply runs it when it reads the table on that path."""

    engine: str
    text: str
    path: str = ""
    source: str = ""


StatementObserver = Callable[[Statement], None]


class ObservedConnection:
    """A DuckDB connection that tells `observer` each statement before running it: what an apply
    sends, for whoever must know it exactly (the test that `etl plan --sql` prints it). DuckDB's
    queries are told as they are; PostgreSQL's are told by whoever wraps them (tell_postgres),
    unwrapped. Cursors made from it are not observed."""

    def __init__(self, con: duckdb.DuckDBPyConnection, observer: StatementObserver):
        self.unobserved = con
        self.observer = observer

    def execute(self, query: str, parameters: Any = None) -> duckdb.DuckDBPyConnection:
        self.observer(Statement("duckdb", query))
        return self.unobserved.execute(query, parameters)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.unobserved, name)


def observed(con: duckdb.DuckDBPyConnection, observer: StatementObserver | None) -> duckdb.DuckDBPyConnection:
    """`con`, telling `observer` its statements (as itself when there is no observer)."""
    return con if observer is None else cast(duckdb.DuckDBPyConnection, ObservedConnection(con, observer))


def tell_postgres(con: duckdb.DuckDBPyConnection, statement: str) -> duckdb.DuckDBPyConnection:
    """Tell `con`'s observer (if any) of a PostgreSQL statement about to be sent through it, and
    return the connection to send its DuckDB wrapper through, unobserved."""
    if isinstance(con, ObservedConnection):
        con.observer(Statement("postgresql", statement))
        return con.unobserved
    return con


def duck_message(exc: Exception) -> str:
    """DuckDB's error text as one line: without its error-class prefix, without the echo of the
    statement the postgres extension sent, with PostgreSQL's DETAIL kept; without what only a
    developer of DuckDB can read (its C++ stack trace and the note that an internal error is an
    assertion failure), of a Python function's traceback, and of libpq's guess at why a
    connection closed."""
    text = str(exc).strip()
    text = re.sub(r"\s*Stack Trace:.*", "", text, flags=re.DOTALL)
    text = re.sub(r"\s*This error signals an assertion failure within DuckDB.*", "", text, flags=re.DOTALL)
    text = re.sub(r"\s*At:\s*\n.*", "", text, flags=re.DOTALL)  # a Python UDF's frames
    text = re.sub(
        r"\s*This probably means the server terminated abnormally.*?request\.", "", text, flags=re.DOTALL
    )
    text = re.sub(r"^[A-Z][A-Za-z ]* Error: ", "", text)
    text = re.sub(r'^Failed to execute query ".*?": (?=ERROR:)', "", text, flags=re.DOTALL)
    text = re.sub(r"^Failed to copy data: (?=ERROR:)", "", text)
    text = re.sub(r"^ERROR:\s+", "", text)
    text = re.sub(r"\s*\nDETAIL:\s+(.*?)\s*(\n|$)", r" (\1)\2", text)
    text = re.sub(r"\s*\nCONTEXT:.*", "", text, flags=re.DOTALL)
    return " ".join(text.split())


def connect_for(tables: Iterable[TargetTable]) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with room in its memory limit for the largest record of `tables`."""
    return duck.connect(max((t.largest_row for t in tables), default=0))


def attach(con: duckdb.DuckDBPyConnection, source: Path, target_url: str, read_only: bool = False) -> None:
    try:
        con.execute(f"ATTACH {duck.quote_literal(str(source))} AS {SOURCE_ALIAS} (TYPE sqlite, READ_ONLY)")
    except duckdb.Error as exc:
        raise EtlError(f"cannot open SQLite file '{source}' in DuckDB: {duck_message(exc)}") from exc
    try:
        options = "TYPE postgres, READ_ONLY" if read_only else "TYPE postgres"
        con.execute(f"ATTACH {duck.quote_literal(libpq_conninfo(target_url))} AS {TARGET_ALIAS} ({options})")
    except duckdb.Error as exc:
        raise TargetError(
            f"cannot connect to PostgreSQL at {display_url(target_url)}: {redact(duck_message(exc), target_url)}"
            " (give the right URL with --target URL or in the spec's target.url)"
        ) from exc


def corrupt_source(exc: BaseException, source: Path) -> SourceError | None:
    """The SourceError naming `source` as damaged, when `exc` (or what caused it) is DuckDB's
    sqlite scanner meeting a damaged page; None otherwise."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, SourceError):
            return None  # already says so
        if (error := corrupt_source_error(source, str(seen))) is not None:
            return error
        seen = seen.__cause__
    return None


def raise_read_error(exc: Exception, what: str, source: Path, target_url: str) -> NoReturn:
    """A failed read of both sides: a damaged source file is a SourceError naming it; a source
    value that cannot arrive (named by its row) is a DataError; anything else is the target's."""
    if (corrupt := corrupt_source(exc, source)) is not None:
        raise corrupt from exc
    if (problem := raised_value_problem(exc)) is not None:
        raise DataError(str(problem), problem) from exc
    message = duck_message(exc)
    raise TargetError(f"{what}: {redact(message, target_url)}") from exc
