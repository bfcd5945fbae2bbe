"""One exception root for everything etl reports to a user.

Only the CLI turns these into `Error: ...` lines and exit codes; every message is written to be
read on its own: what failed, where, and how to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (PostgreSQL adds DETAIL, HINT and CONTEXT lines below
    it), or the error's class when it has no message."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class EtlError(Exception):
    """Root of every error etl raises on purpose."""


@dataclass(frozen=True)
class Location:
    file: str
    line: int  # 1-based
    column: int  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class SpecProblem:
    """One mistake in a spec: where it is, which setting, and what is wrong."""

    location: Location | None
    path: str  # dotted path into the spec, e.g. "tables.User.columns.createdAt.type"
    message: str

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        what = f"{self.path}: " if self.path else ""
        return f"{where}{what}{self.message}"


class SpecError(EtlError):
    """A spec has one or more mistakes; all of them are collected before raising."""

    def __init__(self, problems: list[SpecProblem]):
        self.problems = sorted(
            problems,
            key=lambda p: (p.location.line, p.location.column) if p.location else (0, 0),
        )
        super().__init__("\n".join(str(p) for p in self.problems))


class SourceError(EtlError):
    """The SQLite source cannot be opened or read."""


class TargetError(EtlError):
    """The PostgreSQL target cannot be reached or refused a statement."""


class PlanError(EtlError):
    """The spec and the databases cannot be reconciled into a plan."""


class DestructiveChangeRefused(PlanError):
    """The plan would drop or replace data and the user did not allow it."""


@dataclass(frozen=True)
class ValueProblem:
    """Why one source row cannot arrive exactly: the same fields for a row that fails the run and
    for a row set aside by on_error: reject."""

    table: str  # the source table
    key: str | None  # the row's key as SQLite quotes it, e.g. "id=2"; None for a table without one
    column: str | None  # the column whose value cannot arrive; None for the whole row (a foreign key)
    reason: str  # what is wrong, naming the value where there is one
    value: str | None  # the value as found in SQLite, e.g. "text 'five'"; None when there is none

    @property
    def detail(self) -> str:
        """The problem within its row: `column "n": expected an integer, found text 'five'`."""
        return f'column "{self.column}": {self.reason}' if self.column is not None else self.reason

    def __str__(self) -> str:
        row = f", row {self.key}" if self.key is not None else ""
        return f'table "{self.table}"{row}: {self.detail}'


class DataError(EtlError):
    """A value cannot arrive in PostgreSQL exactly as it is in SQLite; `problem` names the row,
    column and value when one row is the cause."""

    def __init__(self, message: str, problem: ValueProblem | None = None):
        super().__init__(message)
        self.problem = problem


class VerificationFailed(EtlError):
    """The target does not hold exactly what the source, through the spec, says it should."""


class OutputFileError(EtlError):
    """A file etl writes (a spec, a report of rejected rows) cannot be written safely where asked."""
