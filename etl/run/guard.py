"""The state check of the tables a sync by ranges writes over, read on a PostgreSQL connection of
its own while the apply goes on.

Apply first locks those tables against other writers (EXCLUSIVE: readers still read). From then
on no one else changes them, so a reader whose snapshot comes after that lock sees them as the
apply's own transaction does. Reading their state (etl.fingerprints' query over every row's xmin)
costs a scan of each table: on a connection of its own, the server runs it while the apply reads
the source and writes. The apply awaits the verdict before verification and COMMIT, and at once
when anything fails, so that a target written behind etl's back is named as such rather than by
what the write made fail.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import psycopg
from psycopg import sql

from etl.errors import TargetError, first_line
from etl.postgres.target import connect, redact


class StateCheck:
    """The state query (`state`: rows of table name and the time of the apply that recorded it,
    for each table still as that apply left it) run on its own connection, under a lock on
    `tables` that lets the apply's transaction do anything but drop or rewrite them."""

    def __init__(self, target_url: str, tables: sql.Composed, state: sql.Composed):
        self._url = target_url
        self._conn: psycopg.Connection | None = None
        self._holding = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._found = self._pool.submit(self._read, tables, state)
        # The reader holds its lock before the apply goes on: a statement of the apply taking a
        # stronger one would otherwise make the reader wait for the apply, which waits for it.
        while not self._holding.wait(0.01) and not self._found.done():
            pass

    @property
    def started(self) -> bool:
        """Whether the reader holds its lock (else: found() raises why it could not take it)."""
        return self._holding.is_set()

    def _read(self, tables: sql.Composed, state: sql.Composed) -> dict[str, str]:
        self._conn = conn = connect(self._url)
        with conn.transaction():
            # NOWAIT: a session queued for a stronger lock behind the apply's would make this one
            # wait behind it, and so the apply too; the caller then reads the state itself.
            conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS SHARE MODE NOWAIT").format(tables))
            self._holding.set()
            rows = conn.execute(state).fetchall()
        return {str(row[0]): str(row[1]) for row in rows}

    def found(self) -> dict[str, str]:
        """Table name -> the time of the apply that recorded it, for the tables still as it left them."""
        try:
            return self._found.result()
        except psycopg.Error as exc:
            raise TargetError(
                "reading the state of the tables synced by ranges failed: "
                f"{redact(first_line(exc), self._url)}; nothing was committed: run apply again"
            ) from exc

    def close(self) -> None:
        conn = self._conn
        if conn is not None and not self._found.done():
            conn.cancel_safe()
        self._pool.shutdown(wait=True)
        if conn is not None:
            conn.close()
