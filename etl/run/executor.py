"""Runs a plan: one PostgreSQL transaction, opened and driven by DuckDB, so that DDL (through
postgres_execute) and rows (through binary COPY) commit together or not at all."""

from __future__ import annotations

import ctypes
import datetime
import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, NoReturn

import duckdb
from psycopg import sql

from etl import duck
from etl.core.explain import describe
from etl.core.locks import check_locks
from etl.core.mapping import DesiredSchema, TargetCheck, TargetForeignKey, TargetTable
from etl.core.plan import (
    CHANGE_COLUMN,
    AddCheck,
    ApplyResult,
    CreateTable,
    DeleteRows,
    DesiredRecord,
    DropConstraint,
    DropTable,
    DropTables,
    KeepForRollback,
    LoadRows,
    PagesRead,
    Plan,
    Step,
    SyncRows,
    VerifyStep,
    WritePrismaBaseline,
)
from etl.core.prisma import LOCK_FILE, LOCK_TEXT
from etl.errors import (
    DataError,
    DestructiveChangeRefused,
    EtlError,
    OutputFileError,
    PlanError,
    TargetError,
    ValueProblem,
    VerificationFailed,
)
from etl.files import PRIVATE, default_mode, replace_file, stage_file
from etl.model import catalog_json
from etl.postgres.catalog import read_catalog_with
from etl.postgres.ddl import (
    BATCH_FAILURE_PREFIX,
    check_violations_sql,
    ddl_batch_sql,
    postgres_sql,
    schema_lock_sql,
)
from etl.postgres.history import (
    changes_copy_statements,
    enum_columns_query,
    enum_to_text_statements,
    expire_statements,
    expired_query,
    foreign_keys_query,
    history_schema,
    index_statements,
    indexes_query,
    keep_statements,
    record_statement,
    record_view_statement,
    sequence_state_query,
    sequences_query,
    serial_sequence_statements,
    serial_sequences_query,
    triggers_query,
)
from etl.postgres.metadata import (
    RUNS,
    STAGED_RANGES,
    forget_fingerprints_sql,
    forget_set_aside_sql,
    record_desired_sql,
    record_rejects_sql,
    record_run_sql,
    record_set_aside_sql,
    stage_ranges_sql,
    staged_parts,
)
from etl.postgres.target import connect, ensure_metadata, read_lock_capacity, redact
from etl.run.checkrows import (
    orphan_problem,
    orphan_where,
    refused_problem,
    refused_rows_query,
    refused_where,
    staged_check_query,
    staged_count_query,
    staged_orphan_where,
)
from etl.run.fingerprint import (
    analyze_sql,
    planned_pages,
    record_sql,
    source_fingerprints_and_ranges,
    staged_ranges,
    unit_records,
)
from etl.run.guard import StateCheck
from etl.run.load import load_query, rejects_query, source_rows_query
from etl.run.problem import raised_value_problem, value_problem
from etl.run.session import (
    SOURCE_ALIAS,
    TARGET_ALIAS,
    StatementObserver,
    attach,
    connect_for,
    corrupt_source,
    duck_message,
    observed,
    raise_read_error,
    tell_postgres,
)
from etl.run.sync import (
    check_written,
    delete_rows,
    drop_refused_sql,
    ranged_guard_sql,
    ranged_syncs,
    sync_rows,
    written_xmins,
)
from etl.run.typedscan import (
    LIST_COLUMNS_FROM,
    PROOF_BATCH,
    Candidate,
    candidates,
    holds,
    prove,
    prove_candidates,
)
from etl.run.verify import (
    Verification,
    check_views,
    describe_failures,
    register_functions,
    source_sums_query,
    verify_tables,
)
from etl.settings import OnError
from etl.sqlite.catalog import SourceStamp, deepest_json, open_sqlite, source_stamp
from etl.sqlite.pages import PageRanges


@dataclass(frozen=True)
class StepEvent:
    step: Step
    # "start" | "progress" (rows so far, of a load) | "done" | "restart" (on the exact path: `note`
    # names the source table, quoted, whose value the typed read could not convert, or is empty)
    phase: str
    rows: int | None = None
    seconds: float = 0.0
    note: str = ""


@dataclass(frozen=True)
class RunInfo:
    """What identifies a run in etl.runs: the spec it applied."""

    spec: str | None = None
    spec_sha256: str | None = None


def refuse_destructive(plan: Plan, allow_destructive: bool) -> None:
    if plan.destructive_steps and not allow_destructive:
        listed = "; ".join(describe(s).text for s in plan.destructive_steps)
        raise DestructiveChangeRefused(
            f"the plan would drop data ({listed}); pass --allow-destructive to allow it"
        )


@dataclass(frozen=True)
class StartOver(Step):
    """Not a plan step: the event of an apply starting over on the exact path."""

    schema: str


class _TypedScanFailed(Exception):
    """A table read through DuckDB's typed scan met a value it cannot convert: start over on the
    exact path, which names the row (never reaches the user). `table`: the source table, if known."""

    def __init__(self, message: str, table: str | None = None):
        super().__init__(message)
        self.table = table


# Tables of at least this many rows are read through the scan while their proof still runs.
TRUST_FROM_ROWS = 100_000


def apply_plan(
    plan: Plan,
    source: Path,
    target_url: str,
    allow_destructive: bool = False,
    on_event: Callable[[StepEvent], None] = lambda e: None,
    run: RunInfo = RunInfo(),
    verify: bool = True,
    rejects_file: Path | None = None,
    *,
    trust_from_rows: int = TRUST_FROM_ROWS,
    on_statement: StatementObserver | None = None,
) -> ApplyResult:
    """Run the plan in one transaction. Rows set aside by on_error: reject are also written to
    `rejects_file` (JSON lines, readable by the owner only): staged before COMMIT, so that a file
    that cannot be written fails the apply instead of a committed run losing its report. A table
    of at least `trust_from_rows` rows is read through the typed scan while its proof still runs.
    `on_statement` is told every statement of the transaction's connection before it runs
    (session.ObservedConnection): DuckDB's queries, and PostgreSQL's as sent to it."""
    refuse_destructive(plan, allow_destructive)
    # Before anything changes: a transaction the server's lock table cannot hold fails only
    # after the loads of the tables that fit, and takes every other session's locks with it.
    check_locks(plan, read_lock_capacity(target_url))
    try:
        return _apply(
            plan,
            source,
            target_url,
            on_event,
            run,
            verify,
            rejects_file,
            typed=True,
            trust_from_rows=trust_from_rows,
            on_statement=on_statement,
        )
    except _TypedScanFailed as failed:
        # The note names the table only: DuckDB's own message would mean nothing to the user.
        note = f'"{failed.table}"' if failed.table else ""
        on_event(StepEvent(StartOver(plan.schema), "restart", note=note))
        return _apply(
            plan,
            source,
            target_url,
            on_event,
            run,
            verify,
            rejects_file,
            typed=False,
            on_statement=on_statement,
        )


def _apply(
    plan: Plan,
    source: Path,
    target_url: str,
    on_event: Callable[[StepEvent], None],
    run: RunInfo,
    verify: bool,
    rejects_file: Path | None,
    typed: bool,
    trust_from_rows: int = TRUST_FROM_ROWS,
    on_statement: StatementObserver | None = None,
) -> ApplyResult:
    started = time.perf_counter()
    started_at = _now()
    ensure_metadata(target_url)  # committed on its own: see there
    stamp = source_stamp(source)  # before anything reads the source
    con = observed(connect_for(plan.tables), on_statement)
    tx = _Transaction(plan, source, target_url, on_event, verify, con, stamp, started_at)
    try:
        _run_and_commit(tx, run, rejects_file, typed, trust_from_rows)
    except BaseException as exc:
        tx.abandon()
        interrupted = isinstance(exc, duckdb.InterruptException | KeyboardInterrupt) or (
            isinstance(exc, RuntimeError) and "interrupted" in str(exc)
        )
        explained = _record_failure_of(tx, run, exc, interrupted)
        if interrupted and not isinstance(exc, KeyboardInterrupt):
            raise KeyboardInterrupt from exc  # Ctrl-C reached DuckDB first
        if explained is not None:
            raise explained from exc
        raise
    tx.close()
    for staged, path in tx.baseline:
        try:
            replace_file(staged, path)
        except OutputFileError as exc:  # only if the path changed since it was staged, a moment ago
            raise OutputFileError(f"{exc}; the apply was committed: run it again to write the file") from exc
    if tx.staged is not None and rejects_file is not None:
        try:
            replace_file(tx.staged, rejects_file)
        except OutputFileError as exc:  # only if the path changed since it was staged, a moment ago
            raise OutputFileError(
                f"{exc}; the apply was committed, and its rejected rows are in the target's etl.rejects"
            ) from exc
    tx.result.run_id = _run_id(target_url, plan.schema, started_at)
    tx.result.seconds = time.perf_counter() - started
    return tx.result


@dataclass
class _Transaction:
    """One attempt at a plan: the DuckDB connection whose PostgreSQL transaction it runs in, and what
    the steps learn on the way that is checked or recorded before COMMIT."""

    plan: Plan
    source: Path
    target_url: str
    on_event: Callable[[StepEvent], None]
    verify: bool
    con: duckdb.DuckDBPyConnection
    stamp: SourceStamp  # the source file as it was before anything read it
    started_at: str
    result: ApplyResult = field(default_factory=ApplyResult)
    typed_sources: set[str] = field(default_factory=set)  # result.typed, to look up
    in_transaction: bool = False
    scans_alone: bool = False  # sqlite_disable_multithreaded_scans, as last set
    backend: int | None = None  # the PostgreSQL backend's pid, for load progress
    proofs: _Proofs | None = None
    state_check: StateCheck | None = None  # the guard's, awaited before verification
    small_only: bool = False  # every table read has fewer than PROGRESS_FROM_ROWS rows
    sums: _SourceSums | None = None  # source checksums computed beside the loads
    pages: _PageDigests | None = None  # the source's pages, hashed once every step has run
    source_sums: dict[str, tuple[int, str]] = field(default_factory=dict)
    counted: dict[str, int] = field(default_factory=dict)  # target rows verification read, whole tables
    written: dict[str, tuple[TargetTable, str]] = field(default_factory=dict)  # upsert/append: rows to check
    # Count and checksum of the source rows a check set aside, per table: verification expects
    # the target to lack them.
    set_aside: dict[str, tuple[int, int]] = field(default_factory=dict)
    staged: Path | None = None  # the rejects report, written before COMMIT
    baseline: list[tuple[Path, Path]] = field(default_factory=list)  # Prisma's files: staged, final

    def execute(self, statement, what: str) -> None:
        _execute(self.con, statement, what, self.target_url)

    def execute_many(self, statements: list[tuple[sql.Composed, str]]) -> None:
        _execute_many(self.con, statements, self.target_url)

    def scan_alone(self, alone: bool) -> None:
        """Whether DuckDB scans the source on one thread, through the transaction's own SQLite
        connection. Several threads open a SQLite connection each, and opening one parses the
        whole schema: for a small table in a file of many tables that costs more than its rows.
        A large table is worth the threads."""
        if alone != self.scans_alone:
            self.con.execute(f"SET sqlite_disable_multithreaded_scans = {str(alone).lower()}")
            self.scans_alone = alone

    def scanned(self, table: TargetTable) -> TargetTable:
        """The table as this attempt reads it: through the typed scan where proven (or trusted)."""
        read = self.proofs.read(table) if self.proofs else replace(table, scan=None)
        if read.scan is not None and read.source not in self.typed_sources:
            self.typed_sources.add(read.source)
            self.result.typed += (read.source,)
        return read

    def _close_helpers(self) -> None:
        for helper in (self.proofs, self.state_check, self.sums, self.pages):
            if helper is not None:
                helper.close()

    def close(self) -> None:
        self._close_helpers()
        self.con.close()

    def abandon(self) -> None:
        """Undo what this attempt did: its staged report, its helpers, its transaction."""
        if self.staged is not None:
            self.staged.unlink(missing_ok=True)
        for staged, _ in self.baseline:
            staged.unlink(missing_ok=True)
        self._close_helpers()
        if self.in_transaction and not _rollback(self.con):
            _quarantine(self.con)  # PostgreSQL dropped the connection and with it the transaction
        else:
            self.con.close()


def _run_and_commit(
    tx: _Transaction, run: RunInfo, rejects_file: Path | None, typed: bool, trust_from_rows: int
) -> None:
    attach(tx.con, tx.source, tx.target_url)
    tx.con.execute(f"SET threads = {WAITING_THREADS}")
    read_tables = _read_tables(tx.plan)
    register_functions(tx.con, read_tables)  # before BEGIN: committed, so other cursors see them too
    # Small tables give DuckDB nothing to share among threads, even where its own work is waited
    # for: the apply stays on WAITING_THREADS throughout (_all_threads).
    tx.small_only = all(_small(t) for t in read_tables)
    proved: list[TargetTable] = []
    if typed:
        # A table synced by ranges reads them on the exact path: nothing for a proof to decide,
        # and proving it would scan all its rows.
        ranged = {s.table.name for s in ranged_syncs(tx.plan)}
        proved = [t for t in read_tables if t.name not in ranged]
    # DuckDB looks up each source table it reads by scanning SQLite's whole schema, once per
    # transaction: a look-up per table costs the square of the tables. Where the candidates list
    # every table's columns at once (typedscan.candidates), they do it in the transaction, and the
    # loads find the tables already described. Not for fewer: described one by one (DESCRIBE)
    # inside the transaction, a table the app wrote to between its proof and its load failed
    # verification instead of the apply starting over on the exact path. Listing the columns
    # reads the target's catalog too, which takes the transaction's snapshot: the guard's lock
    # comes first.
    early = len({t.source for t in proved}) >= LIST_COLUMNS_FROM
    if early:
        _begin(tx)
    if typed:
        tx.proofs = _Proofs(tx.con, proved, tx.source, tx.stamp, trust_from_rows)
    if not early:
        _begin(tx)
    _lock_schema(tx.con, tx.plan.schema)
    tx.backend = _backend_pid(tx.con)
    try:
        _run_steps(tx)
        _expire_kept_copies(tx)
        _record_rejects(tx)
        _check_ranged_state(tx)  # before verification, which a write behind etl's back would fail
    except Exception:
        # A target written behind etl's back is named as such, not by what the write made fail.
        _check_ranged_state(tx)
        raise
    if tx.verify:
        tx.scan_alone(False)
        _verify_before_commit(tx)
        tx.result.verified = True
    if tx.proofs is not None and (wrong := tx.proofs.failed()):
        raise _TypedScanFailed(
            f'table "{wrong[0]}" holds values DuckDB\'s typed read would convert (its proof failed)',
            wrong[0],
        )
    if rejects_file is not None and tx.result.rejects:
        report = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in tx.result.rejects)
        try:
            tx.staged = stage_file(rejects_file, report, PRIVATE)
        except OutputFileError as exc:
            raise OutputFileError(f"{exc}; nothing was committed") from exc
    if tx.plan.desired is not None:
        _record_desired(tx, tx.plan.desired)
    _record_fingerprints(tx)
    record = record_run_sql(
        tx.plan.schema, run.spec, run.spec_sha256, tx.started_at, _now(), "succeeded", tx.result.rows, None
    )
    tx.execute(record, "recording the run in etl.runs")
    try:
        tx.con.execute("COMMIT")
    except duckdb.Error as exc:
        raise TargetError(
            f"COMMIT failed: {redact(duck_message(exc), tx.target_url)}; nothing was committed"
        ) from exc
    tx.in_transaction = False


def _begin(tx: _Transaction) -> None:
    tx.con.execute("BEGIN TRANSACTION")
    tx.in_transaction = True
    _guard_ranged(tx)  # first: its lock must come before the transaction's snapshot


def _guard_ranged(tx: _Transaction) -> None:
    """Make the syncs by ranges exact on the target's side: lock their tables against other
    writers, then check that each is still as the apply the plan relied on left it (the rows
    outside the ranges are equal to the source's only while it is), and keep the xmins of the
    rows the syncs leave (ranged_guard_sql). The check reads on a connection of its own while
    the apply goes on (etl/run/guard.py); _check_ranged_state awaits it."""
    guard = ranged_guard_sql(tx.plan)
    if guard is None:
        return
    tx.execute(guard.lock, "locking the tables synced by ranges against other writers")
    check = StateCheck(tx.target_url, guard.tables, guard.state)
    if check.started:
        tx.state_check = check
    else:
        check.close()  # it could not take its lock at once: the transaction reads the state itself
        _raise_moved(tx, {str(row[0]): str(row[1]) for row in _query(tx.con, guard.state)})
    tx.execute(guard.no_jit, "reading by ranges without just-in-time compilation")
    if guard.keep:
        tx.execute_many(
            [(statement, "keeping the xmins of the rows the syncs leave") for statement in guard.keep]
        )


def _check_ranged_state(tx: _Transaction) -> None:
    """Await the guard's check of the tables synced by ranges; raise if one was written since the
    plan read it (once: the check is then done)."""
    check, tx.state_check = tx.state_check, None
    if check is None:
        return
    try:
        found = check.found()
    finally:
        check.close()
    _raise_moved(tx, found)


def _raise_moved(tx: _Transaction, found: dict[str, str]) -> None:
    """Raise if a table synced by ranges is not as the apply the plan relied on left it. `found`:
    table name -> the time of the apply that recorded it, for the tables still as it left them."""
    planned = {name: since for name, _, _, since in tx.plan.ranged}
    for step in ranged_syncs(tx.plan):
        name = step.table.name
        now = found.get(name)
        if now is not None and now != planned.get(name):
            # The lock waited for another etl apply, which recorded the table anew.
            raise TargetError(
                f'table "{name}" was applied again since the plan read it (by the etl apply of {now}); '
                "nothing was committed: run apply again"
            )
        if now is None:
            raise TargetError(
                f'table "{name}" changed in the target since the plan read it; nothing was committed: '
                "run apply again"
            )


def _source_changed(source: Path, why: str) -> VerificationFailed:
    return VerificationFailed(
        f"the SQLite file '{source}' changed {why}; nothing was committed: stop the app and run "
        f"apply again, or apply a copy made with: sqlite3 '{source}' \".backup copy.db\""
    )


def _record_fingerprints(tx: _Transaction) -> None:
    """Record the state of each table this apply verified equal to the source, so that a later plan
    may skip it while neither side changes (etl/run/fingerprint.py); forget what earlier applies
    recorded of the other tables it changed. The source's pages (hashed by _PageDigests) count
    only if the source did not change since the apply began reading it, which is checked here,
    after they were hashed and verification read the rows.
    A sync by ranges is refused if the source changed since the plan hashed its pages: a row
    written outside the ranges would be neither synced nor seen by verification."""
    if ranged_syncs(tx.plan) and source_stamp(tx.source) != tx.plan.source_stamp:
        raise _source_changed(
            tx.source,
            "since the plan compared its pages (an app wrote to it), so the rows synced by their "
            "changed ranges may not be all that changed",
        )
    schema = tx.plan.schema
    changed = [t.name for t in tx.plan.tables]
    statements = (
        [(forget_fingerprints_sql(schema, changed), "forgetting earlier fingerprints")] if changed else []
    )
    if tx.verify:
        _hash_pages(tx)
        assert tx.pages is not None
        verified, (prints, ranges) = tx.pages.tables, tx.pages.result()
        # read before the stamp is checked: it counts only if the source is as verified
        units = unit_records(tx.source, verified, ranges) if prints else {}
        if prints and source_stamp(tx.source) == tx.stamp:
            statements += [
                (statement, "gathering statistics of the tables recorded by range")
                for statement in analyze_sql(schema, verified, ranges)
            ]
            staged = staged_ranges(verified, prints, ranges)
            if staged:
                statements.append((stage_ranges_sql(), "staging the tables' ranges of pages"))
                tx.execute_many(statements)
                _stage_ranges(tx, staged)
                statements = []
            # A table the apply created holds only rows it wrote: their xmins need no reading.
            created = {
                s.table.name: tx.counted[s.table.name]
                for s in tx.plan.steps
                if isinstance(s, CreateTable) and s.table.name in tx.counted
            }
            statements += [
                (statement, "recording the tables' fingerprints in etl.fingerprints")
                for statement in record_sql(
                    schema, verified, prints, tx.started_at, ranges, written_xmins(tx.plan), units, created
                )
            ]
    if statements:
        tx.execute_many(statements)


def _stage_ranges(tx: _Transaction, staged: list[tuple[str, bytes]]) -> None:
    """Copy each (table, ranges) into the staging table as bound values (metadata.STAGED_RANGES)."""
    tx.con.execute("CALL pg_clear_cache()")  # DuckDB must see the staging table just made
    insert = f"INSERT INTO {TARGET_ALIAS}.pg_temp.{duck.quote_ident(STAGED_RANGES)} VALUES (?, ?, ?)"
    try:
        for name, ranges in staged:
            for number, part in staged_parts(ranges):
                tx.con.execute(insert, [name, number, part])
    except duckdb.Error as exc:
        raise TargetError(
            f"PostgreSQL refused staging the tables' ranges of pages: {redact(duck_message(exc), tx.target_url)}"
        ) from exc


def _run_steps(tx: _Transaction) -> None:
    """Every step in order; consecutive steps that are only DDL go to PostgreSQL together."""
    steps, number = tx.plan.steps, 0
    # A table loaded afresh, or whose checks change, has its checks run on its rows again: the
    # rows earlier applies set aside are no longer left out of it.
    rechecked = sorted(
        {s.table.name for s in steps if isinstance(s, LoadRows)}
        | {s.table for s in steps if isinstance(s, AddCheck | DropConstraint)}
    )
    if rechecked:
        tx.execute(forget_set_aside_sql(tx.plan.schema, rechecked), "forgetting rows set aside earlier")
    while number < len(steps):
        batch = _ddl_batch(steps, number)
        if len(batch) > 1:
            _run_ddl_batch(tx, batch)
            number += len(batch)
        else:
            _run_step(tx, number, steps[number])
            number += 1
    if tx.verify:
        _hash_pages(tx)


def _hash_pages(tx: _Transaction) -> None:
    """Start hashing the source's pages of the tables verification will find equal (unless started
    already): once every step has run, beside verification. Not beside the loads, nor beside the
    keys and indexes, which keep both cores busy (PostgreSQL builds an index with parallel
    workers while the source's checksums are summed); reading the target back keeps one."""
    if tx.pages is None:
        # What the plan read of the pages is this apply's own read while the source has kept the
        # stamp taken before it: it had it when this apply began reading (tx.stamp), and
        # _record_fingerprints checks that it still has it.
        read = tx.plan.source_pages if tx.plan.source_stamp == tx.stamp else ()
        tx.pages = _PageDigests(tx.source, [t for t in tx.plan.tables if t.name not in tx.written], read)


# Statements per round trip: a few hundred make the round trips' cost vanish beside the DDL's own,
# and keep a batch's text (and PostgreSQL's parse of it) small however many tables there are.
DDL_BATCH_STATEMENTS = 500


def _ddl_batch(steps: tuple[Step, ...], start: int) -> list[tuple[Step, list]]:
    """The steps from `start` on that are only DDL (no runner of their own), up to the batch size,
    each with its statements."""
    batch: list[tuple[Step, list]] = []
    statements = 0
    # By index: skipping to `start` (islice, a slice) would cost the steps before it, for every step.
    for index in range(start, len(steps)):
        step = steps[index]
        if type(step) in _STEP_RUNNERS or (batch and statements >= DDL_BATCH_STATEMENTS):
            break
        sql = postgres_sql(step)
        batch.append((step, sql))
        statements += len(sql)
    return batch


def _run_ddl_batch(tx: _Transaction, batch: list[tuple[Step, list]]) -> None:
    """Run the DDL of `batch` in one round trip; a refusal names the step whose statement
    PostgreSQL refused, as the step run on its own would. Each step is reported done with an
    equal share of the batch's time; the first is reported started before the batch runs, so a
    progress display says what is being done while it runs."""
    tx.on_event(StepEvent(batch[0][0], "start"))
    started = time.perf_counter()
    tx.execute_many([(statement, describe(step).text) for step, sql in batch for statement in sql])
    # DuckDB caches the target's catalog; DDL we just ran must be visible to the next load.
    tx.con.execute("CALL pg_clear_cache()")
    share = (time.perf_counter() - started) / len(batch)
    for i, (step, _) in enumerate(batch):
        if i:
            tx.on_event(StepEvent(step, "start"))
        tx.on_event(StepEvent(step, "done", None, share))


def _run_step(tx: _Transaction, number: int, step: Step) -> None:
    if isinstance(step, LoadRows | SyncRows | DeleteRows):
        step = replace(step, table=tx.scanned(step.table))
    tx.on_event(StepEvent(step, "start"))
    started = time.perf_counter()
    rows = _STEP_RUNNERS.get(type(step), _run_ddl_step)(tx, number, step)
    tx.on_event(StepEvent(step, "done", rows, time.perf_counter() - started))


# One runner per kind of step that does more than its DDL; each returns the rows it wrote, if any.


def _run_load(tx: _Transaction, number: int, step: LoadRows) -> int | None:
    rows: int | None
    if step.table.on_error == OnError.REJECT:
        with _all_threads(tx):
            rows, rejected = _load_rejecting(tx.con, step, tx.target_url)
        tx.result.rejects += rejected
    else:
        tx.scan_alone(_small(step.table))
        with (
            _reporting_progress(step, tx.on_event, tx.target_url, tx.backend),
            _load_threads(tx.con, step.table.source_rows),
        ):
            rows = _load(tx.con, step, tx.target_url)
        if tx.verify:
            tx.sums = tx.sums or _SourceSums(tx.con)
            tx.sums.start(step.schema, step.table)
    name = step.table.name
    tx.result.rows[name] = rows or 0
    _, _, deleted = tx.result.changes.get(name, (0, 0, 0))
    tx.result.changes[name] = (rows or 0, 0, deleted)
    return rows


def _run_sync(tx: _Transaction, number: int, step: SyncRows) -> int:
    tx.scan_alone(False)
    with _all_threads(tx):  # the diff scans the source and hashes both sides: DuckDB's work
        return _sync(tx, number, step)


def _sync(tx: _Transaction, number: int, step: SyncRows) -> int:
    if step.table.on_error == OnError.REJECT:
        tx.result.rejects += _collect_rejects(tx.con, step, tx.target_url)
    try:
        refused: list[tuple[int, int]] = []  # (new, changed) rows set aside by a check
        synced = sync_rows(
            tx.con,
            step,
            number,
            tx.execute,
            tx.verify,
            lambda staged: _refuse_staged(tx, step.table, staged, refused, bool(step.diff.set_aside)),
            history_schema(tx.started_at),
        )
    except duck.ERRORS as exc:
        _raise_load_error(exc, step.table, tx.target_url)
    _check_planned(step, synced.counts)
    name = step.table.name
    new, changed = map(sum, zip(*refused, strict=True)) if refused else (0, 0)
    inserted, updated, deleted = synced.counts
    # A changed row set aside leaves the target: it counts as deleted.
    counts = (inserted - new, updated - changed, deleted + changed)
    rows = counts[0] + counts[1]
    tx.result.changes[name] = counts
    tx.result.rows[name] = rows
    if synced.sums is not None:
        tx.source_sums[name] = synced.sums
    if synced.written is not None:
        tx.written[name] = (step.table, synced.written)
    return rows


def _run_keep(tx: _Transaction, number: int, step: KeepForRollback) -> None:
    _keep_for_rollback(tx.con, step, tx.started_at, tx.execute, tx.execute_many)


def _run_delete(tx: _Transaction, number: int, step: DeleteRows) -> None:
    delete_rows(step, tx.execute)
    inserted, updated, _ = tx.result.changes.get(step.table.name, (0, 0, 0))
    tx.result.changes[step.table.name] = (inserted, updated, step.count)


def _run_drop_table(tx: _Transaction, number: int, step: DropTable) -> None:
    _run_ddl(tx.con, step, tx.target_url)
    tx.result.changes[step.table] = (0, 0, step.rows)


def _run_drop_tables(tx: _Transaction, number: int, step: DropTables) -> None:
    _run_ddl(tx.con, step, tx.target_url)
    for name, held in zip(step.tables, step.held, strict=True):
        tx.result.changes[name] = (0, 0, held)


def _run_ddl_step(tx: _Transaction, number: int, step: Step) -> None:
    _run_ddl(tx.con, step, tx.target_url)


def _run_check(tx: _Transaction, number: int, step: AddCheck) -> None:
    """Name the rows a check refuses as SQLite holds them, rather than PostgreSQL's "violated by
    some row"; with on_error: reject, set them aside first."""
    found = _evaluate_check(tx, step.table, step.check, check_violations_sql(step))
    if found:
        table = next((t for t in _read_tables(tx.plan) if t.name == step.table), None)
        if table is None:  # rows this apply did not load: no source row to name
            _raise_unaccounted(step.table, step.check, found)
        refused = _refuse_rows(tx, table, step.check, found)
        tx.execute(
            sql.SQL("DELETE FROM {} WHERE {}").format(
                sql.Identifier(step.schema, step.table), refused_where(step.check)
            ),
            f'deleting the rows check "{step.check.name}" refuses from "{step.table}"',
        )
        name = table.name
        tx.result.rows[name] = tx.result.rows.get(name, 0) - len(refused)
        inserted, updated, deleted = tx.result.changes.get(name, (0, 0, 0))
        tx.result.changes[name] = (max(inserted - len(refused), 0), updated, deleted)
        _follow_parent(tx, name)
    _run_ddl(tx.con, step, tx.target_url)


def _evaluate_check(tx: _Transaction, table: str, check: TargetCheck, query: sql.Composed) -> list[tuple]:
    """Rows of `query` (check_violations_sql's shape: how many, then keys), or a TargetError when
    PostgreSQL cannot evaluate the check at all."""
    try:
        return _query(tx.con, query)
    except duck.ERRORS as exc:
        raise TargetError(
            f'table "{table}": PostgreSQL cannot evaluate check "{check.name}" '
            f"({check.sql.as_string(None)}): {redact(duck_message(exc), tx.target_url)}; nothing was "
            "committed: correct the table's checks in the spec"
        ) from exc


def _raise_unaccounted(table: str, check: TargetCheck, found: list[tuple]) -> NoReturn:
    keys = "; ".join(", ".join(str(v) for v in row[1:] if v is not None) or "(a row)" for row in found)
    raise DataError(
        f'table "{table}": {found[0][0]:,} rows of the target violate check "{check.name}" '
        f"({check.sql.as_string(None)}), and this apply loaded none of them from the source, e.g. {keys}; "
        "nothing was committed: correct those rows in the target, or edit or remove the check in the "
        "table's checks"
    )


def _refuse_rows(
    tx: _Transaction,
    table: TargetTable,
    check: TargetCheck,
    found: list[tuple],
    relation: sql.Composable | None = None,
) -> list[int]:
    """The rows `check` refuses (in the target, or in `relation`), named by their source rows:
    with on_error: fail the run fails naming the first; with on_error: reject they are recorded
    as rejects and accounted for in verification; the caller removes them. Their hashes."""
    reject = table.on_error == OnError.REJECT
    query = refused_rows_query(
        tx.plan.schema, table, refused_where(check), relation, limit=None if reject else 1
    )
    try:
        rows = tx.con.execute(query).fetchall()
    except duck.ERRORS as exc:
        _raise_load_error(exc, table, tx.target_url)
    if not rows or not all(row[0] for row in rows):
        _raise_unaccounted(table.name, check, found)
    records = [_refused_record(table, check, row) for row in rows]
    if not reject:
        problem = records[0][0]
        raise DataError(
            f"{problem}; {found[0][0]:,} rows violate it; nothing was committed: correct them in the "
            "source, set on_error: reject to set them aside, or edit or remove the check in the table's checks",
            problem,
        )
    hashes = [int(row[2]) for row in rows]
    # Recorded so that later plans leave these source rows out until their values change.
    tx.execute(
        record_set_aside_sql(tx.plan.schema, table.name, hashes, tx.started_at),
        f'recording the rows of "{table.name}" its checks set aside',
    )
    return _set_aside(tx, table, [record for _problem, record in records], hashes)


def _set_aside(tx: _Transaction, table: TargetTable, records: list[dict], hashes: list[int]) -> list[int]:
    """Record rows set aside after they loaded as rejects, within max_rejects, and account for
    them in verification (by their hashes, which it returns)."""
    tx.result.rejects += records
    mine = [r for r in tx.result.rejects if r["table"] == table.source]
    _check_reject_limit(table, mine, tx.result.rows.get(table.name, 0) + len(mine))
    count, total = tx.set_aside.get(table.name, (0, 0))
    tx.set_aside[table.name] = (count + len(hashes), total + sum(hashes))
    return hashes


def _follow_parent(tx: _Transaction, parent: str) -> None:
    """After rows of `parent` went (a check refused them): the rows of the tables this apply
    loads that point at them go too, and theirs, as load's orphans follow a rejected parent;
    before those tables' own checks and any foreign key are added, so each row goes once."""
    for child in [s.table for s in tx.plan.steps if isinstance(s, LoadRows)]:
        for index, fk in enumerate(child.foreign_keys):
            if fk.ref_table == parent and _refuse_orphans(tx, child, index):
                _follow_parent(tx, child.name)


def _refuse_orphans(tx: _Transaction, table: TargetTable, index: int) -> bool:
    """Set aside the rows of `table` whose foreign key `index` names a row that is gone (onto the
    table itself, generation after generation); whether any went."""
    fk, schema = table.foreign_keys[index], tx.plan.schema
    where = orphan_where(schema, table.name, fk)
    if table.on_error != OnError.REJECT:
        _raise_orphaned(tx, table, fk, where)
        return False
    # Matched among the source rows as they loaded: the source's own orphan test reads the
    # parent as the target holds it now, and would already leave these rows out.
    loaded = replace(table, orphan_checks=())
    went = False
    while rows := tx.con.execute(refused_rows_query(schema, loaded, where)).fetchall():
        if not all(row[0] for row in rows):
            raise DataError(
                f'table "{table.name}": {len(rows):,} rows of the target reference "{fk.ref_table}" rows '
                "that were set aside, and this apply loaded some of them from no source row; nothing "
                "was committed: correct those rows in the target"
            )
        records = [_orphan_record(table, fk, row) for row in rows]
        # Verification reads the source through the same orphan test, which leaves these rows
        # out already: only those it does not make (a reference onto the table itself, or onto a
        # table loaded later) are accounted for as set aside.
        hashes = [] if index in table.orphan_checks else [int(row[2]) for row in rows]
        _set_aside(tx, table, records, hashes)
        tx.execute(
            sql.SQL("DELETE FROM {} WHERE {}").format(sql.Identifier(schema, table.name), where),
            f'deleting the rows of "{table.name}" whose "{fk.ref_table}" row was set aside',
        )
        tx.result.rows[table.name] = tx.result.rows.get(table.name, 0) - len(rows)
        inserted, updated, deleted = tx.result.changes.get(table.name, (0, 0, 0))
        tx.result.changes[table.name] = (max(inserted - len(rows), 0), updated, deleted)
        went = True
        if fk.ref_table != table.name:
            break
    return went


def _raise_orphaned(
    tx: _Transaction, table: TargetTable, fk: TargetForeignKey, where: sql.Composable
) -> None:
    """A table that does not reject, whose rows point at parent rows set aside, fails, naming
    why the first parent row went."""
    query = sql.SQL("SELECT count(*) FROM {} WHERE {}").format(
        sql.Identifier(tx.plan.schema, table.name), where
    )
    (count,) = _query(tx.con, query)[0]
    if not count:
        return
    parent = next((t.source for t in _read_tables(tx.plan) if t.name == fk.ref_table), fk.ref_table)
    first = next((r for r in tx.result.rejects if r["table"] == parent), None)
    why = f'table "{parent}", row {first["key"]}: {first["reason"]}' if first is not None else "a check"
    raise DataError(
        f'table "{table.source}": {count:,} rows reference "{fk.ref_table}" rows set aside ({why}); '
        "nothing was committed: correct the rows in the source, or set on_error: reject on table "
        f'"{table.source}" too so that they are set aside with their parent'
    )


def _orphan_record(table: TargetTable, fk: TargetForeignKey, row: tuple) -> dict:
    """A row whose parent was set aside (refused_rows_query's shape), as its reject record."""
    _matched, key, _hash, *raw = row
    values = {c.name: _raw_value(raw[2 * i], raw[2 * i + 1]) for i, c in enumerate(table.columns)}
    shown = ", ".join(values[c].get("text", f"X'{values[c].get('hex')}'") for c in fk.columns)
    problem = orphan_problem(table, fk, key, shown)
    return {
        "table": problem.table,
        "key": problem.key,
        "column": problem.column,
        "reason": problem.detail,
        "value": problem.value,
        "row": values,
    }


def _refused_record(table: TargetTable, check: TargetCheck, row: tuple) -> tuple[ValueProblem, dict]:
    """A refused row (refused_rows_query's shape): its ValueProblem and its reject record."""
    _matched, key, _hash, *raw = row
    values = {c.name: _raw_value(raw[2 * i], raw[2 * i + 1]) for i, c in enumerate(table.columns)}
    shown = _shown(values[check.column]) if check.column in values else None
    problem = refused_problem(table, check, key, shown)
    return problem, {
        "table": problem.table,
        "key": problem.key,
        "column": problem.column,
        "reason": problem.detail,
        "value": problem.value,
        "row": values,
    }


def _shown(value: dict) -> str:
    """A raw value (_raw_value's shape) as messages show a value: `text 'five'`, `real -3.0`."""
    if value["type"] == "null":
        return "NULL"
    if "hex" in value:
        return f"{value['type']} X'{value['hex']}'"
    text = value["text"]
    return f"{value['type']} '{text}'" if value["type"] == "text" else f"{value['type']} {text}"


def _refuse_staged(
    tx: _Transaction,
    table: TargetTable,
    staged: sql.Composable,
    refused: list[tuple[int, int]],
    left_out: bool = False,
) -> list[int]:
    """Before a sync writes its staged rows: each check of the table on them, as _run_check does
    on loaded rows; rows set aside leave the staging table (and a changed one the target), and
    how many (new, changed) is appended to `refused`. `left_out`: the sync left out rows a check
    set aside at an earlier apply, whose descendants in the table itself are set aside again
    (only the rows a check refuses are recorded: a descendant arrives once its ancestor does)."""
    hashes: list[int] = []
    for check in table.checks:
        found = _evaluate_check(tx, table.name, check, staged_check_query(staged, check))
        if found:
            count, changed = found[0]
            hashes += _refuse_rows(tx, table, check, [(count, None)], staged)
            refused.append((count - changed, changed))
            tx.execute_many(
                [
                    (statement, f'setting aside the rows check "{check.name}" refuses in "{table.name}"')
                    for statement in drop_refused_sql(tx.plan.schema, table, refused_where(check))
                ]
            )
    if hashes or left_out:
        hashes += _refuse_staged_orphans(tx, table, staged, refused)
    return hashes


def _refuse_staged_orphans(
    tx: _Transaction, table: TargetTable, staged: sql.Composable, refused: list[tuple[int, int]]
) -> list[int]:
    """After a check set staged rows aside: the staged rows whose reference onto their own table
    named one of them go too, generation after generation (the target's foreign key would refuse
    them). References onto other tables are load's own orphan test, made when the rows were staged."""
    hashes: list[int] = []
    for index in table.self_checks:
        fk = table.foreign_keys[index]
        where = staged_orphan_where(tx.plan.schema, table.name, fk, staged)
        while (found := _query(tx.con, staged_count_query(staged, where))[0])[0]:
            count, changed = found
            query = refused_rows_query(tx.plan.schema, replace(table, orphan_checks=()), where, staged)
            rows = tx.con.execute(query).fetchall()
            if not rows or not all(row[0] for row in rows):
                raise DataError(
                    f'table "{table.name}": {count:,} staged rows reference rows set aside, and some '
                    "match no source row; nothing was committed"
                )
            records = [_orphan_record(table, fk, row) for row in rows]
            hashes += _set_aside(tx, table, records, [int(row[2]) for row in rows])
            refused.append((count - changed, changed))
            tx.execute_many(
                [
                    (statement, f'setting aside the rows of "{table.name}" whose parent row was set aside')
                    for statement in drop_refused_sql(tx.plan.schema, table, where)
                ]
            )
    return hashes


def _run_prisma_baseline(tx: _Transaction, number: int, step: WritePrismaBaseline) -> None:
    """0_init's row inside the transaction; its files staged beside their places now, so that a
    folder that cannot be written fails the apply, and put in place once it commits."""
    _run_ddl(tx.con, step, tx.target_url)
    texts = {LOCK_FILE: LOCK_TEXT}
    for name in step.files:
        path = Path(step.directory) / name
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputFileError(
                f"cannot write '{path}': {exc.strerror or exc}; nothing was committed"
            ) from exc
        tx.baseline.append((stage_file(path, texts.get(name, step.migration), default_mode()), path))


_STEP_RUNNERS: dict[type, Callable[[_Transaction, int, Any], int | None]] = {
    LoadRows: _run_load,
    SyncRows: _run_sync,
    KeepForRollback: _run_keep,
    DeleteRows: _run_delete,
    DropTable: _run_drop_table,
    DropTables: _run_drop_tables,
    AddCheck: _run_check,
    WritePrismaBaseline: _run_prisma_baseline,
}


def _expire_kept_copies(tx: _Transaction) -> None:
    keep = next((s for s in tx.plan.steps if isinstance(s, KeepForRollback)), None)
    if keep is not None:
        expired = [r[0] for r in _query(tx.con, expired_query(tx.plan.schema, keep.retention))]
        for expire in expire_statements(tx.plan.schema, expired, keep.retention):
            tx.execute(expire, "dropping copies kept for rollback beyond the retention")


def _record_rejects(tx: _Transaction) -> None:
    for start in range(0, len(tx.result.rejects), 500):  # a few statements, not one per row
        batch = tx.result.rejects[start : start + 500]
        record = record_rejects_sql(
            tx.started_at,
            tx.plan.schema,
            [
                (r["table"], r["key"], r["reason"], json.dumps(r["row"]), r["column"], r["value"])
                for r in batch
            ],
        )
        tx.execute(record, "recording rejected rows in etl.rejects")


def _verify_before_commit(tx: _Transaction) -> None:
    schema = tx.plan.schema
    tx.on_event(StepEvent(VerifyStep(schema), "start"))
    started = time.perf_counter()
    # The source checksums still being computed are waited for table by table, once its target
    # rows are read: reading them back is PostgreSQL's work, summing the source this process's.
    summing: dict[str, Callable[[], tuple[int, str]]] = {}
    if tx.sums is not None:
        summing = {name: partial(_summed, tx, name) for name in tx.sums.tables}
    whole = tuple(tx.scanned(t) for t in tx.plan.tables if t.name not in tx.written)
    # A table synced by ranges is compared where its sync read (read_rowids: its differing rows,
    # or all its changed ranges), against the plan's sums of the source's rows there; the plan
    # found the others equal, and the guard keeps anyone else from writing them. One whose rows a
    # key's action (another table's, or its own onto itself) may change elsewhere is compared in
    # full.
    checked = {t.name for t in tx.plan.checked}
    ranged: dict[str, tuple[tuple[int, int], ...]] = {}
    for step in ranged_syncs(tx.plan):
        if step.table.name in checked:
            tx.source_sums.pop(step.table.name, None)
            summing.pop(step.table.name, None)
        elif step.read_rowids is not None and (
            step.table.name in tx.source_sums or step.table.name in summing
        ):
            ranged[step.table.name] = step.read_rowids
    sources: dict[str, tuple[int, str] | Callable[[], tuple[int, str]]] = {**tx.source_sums, **summing}
    for name, rows, _, total in tx.plan.set_aside:
        if name not in sources:  # a sync's own sums leave those rows out already
            count, sum_ = tx.set_aside.get(name, (0, 0))
            tx.set_aside[name] = (count + rows, sum_ + total)
    # Source rows verification scans itself (not summed beside a load) are DuckDB's work, worth
    # every core; reading the target back is PostgreSQL's, waited on by one thread.
    scans = any(t.name not in sources for t in whole)
    try:
        with _all_threads(tx) if scans else nullcontext():
            verification = verify_tables(
                tx.con, schema, whole, sources=sources, set_aside=tx.set_aside, ranged=ranged
            )
        if tx.sums is not None:
            tx.sums.finish()
    except duck.ERRORS as exc:
        if any(t.scan is not None for t in whole):
            raise _TypedScanFailed(duck_message(exc)) from exc
        raise_read_error(
            exc, "verification could not read the source or the target", tx.source, tx.target_url
        )
    tx.counted = {
        check.table: check.target_rows
        for check in verification.tables
        if check.target_rows is not None and check.table not in ranged
    }
    verification = replace(verification, views=_check_views(tx.con, tx.source, schema, tx.plan))
    with _all_threads(tx) if tx.written else nullcontext():  # joins the rows sent in DuckDB
        missing = [
            (table.name, check_written(tx.con, schema, table, name)) for table, name in tx.written.values()
        ]
    tx.on_event(StepEvent(VerifyStep(schema), "done", None, time.perf_counter() - started))
    bad = [f'table "{name}": {n:,} rows written differ in the target' for name, n in missing if n]
    if (bad or not verification.ok) and source_stamp(tx.source) != tx.stamp:
        # The loads and verification read the file at different moments: their counts
        # differ by what the app wrote in between, and neither is a count that existed.
        raise _source_changed(
            tx.source,
            "while apply read it (an app wrote to it), so the rows loaded and verification's "
            "reading of the source differ",
        )
    if not verification.ok:
        raise VerificationFailed(
            f"verification failed, nothing was committed: {describe_failures(verification)}"
            + _foreign_trigger_hint(tx.plan)
        )
    if bad:
        raise VerificationFailed(
            f"verification failed, nothing was committed: {'; '.join(bad)}" + _foreign_trigger_hint(tx.plan)
        )


def _foreign_trigger_hint(plan: Plan) -> str:
    """What to do about the triggers and rules etl did not make that fired on its writes (one
    may have made the difference): disable them while etl applies."""
    if not plan.foreign_triggers:
        return ""
    statements = "; ".join(
        sql.SQL("ALTER TABLE {} DISABLE {} {}")
        .format(sql.Identifier(plan.schema, table), sql.SQL(kind.upper()), sql.Identifier(name))
        .as_string(None)
        for table, kind, name in plan.foreign_triggers
    )
    return f" (a trigger or rule etl did not make fired on its writes and may be the cause: {statements}; then apply again)"


def _summed(tx: _Transaction, name: str) -> tuple[int, str]:
    """The source checksum _SourceSums computes of a loaded table; while it still runs, on every
    core (the apply's connection waits for nothing else)."""
    assert tx.sums is not None
    if tx.sums.done(name):
        return tx.sums.result(name, tx.target_url)
    with _all_threads(tx):
        return tx.sums.result(name, tx.target_url)


def _check_views(con: duckdb.DuckDBPyConnection, source: Path, schema: str, plan: Plan) -> tuple:
    """The spec's views, SQLite's rows against PostgreSQL's, inside the transaction."""
    if not plan.views:
        return ()
    try:
        con.execute("CALL pg_clear_cache()")  # the views were created after DuckDB read the catalog
        with open_sqlite(source) as lite:
            return check_views(con, lite, schema, [v.name for v in plan.views])
    except (sqlite3.Error, *duck.ERRORS) as exc:
        raise VerificationFailed(
            f"verification could not read a view: {duck_message(exc) if isinstance(exc, duckdb.Error) else exc}; "
            "nothing was committed: correct the view's query under views: in the spec, or leave it out"
        ) from exc


def _record_failure_of(
    tx: _Transaction, run: RunInfo, exc: BaseException, interrupted: bool
) -> EtlError | None:
    """Record a failed attempt in etl.runs (unless it only starts over on the exact path), and
    return the source's state said plainly where it explains the failure."""
    explained = (
        None if interrupted else corrupt_source(exc, tx.source) or _too_deep_json(exc, tx.source, tx.plan)
    )
    if (tx.in_transaction or interrupted) and (explained or not isinstance(exc, _TypedScanFailed)):
        error = "interrupted" if interrupted else redact(str(explained or exc), tx.target_url)
        _record_failure(tx.plan.schema, run, tx.started_at, error, tx.target_url)
    return explained


def _run_id(target_url: str, schema: str, started_at: str) -> int | None:
    """The id etl.runs gave the committed run (its INSERT ran through DuckDB, which returns no rows)."""
    query = sql.SQL("SELECT max(id) FROM {} WHERE target_schema = %s AND started_at = %s AND status = %s")
    with connect(target_url) as conn:
        row = conn.execute(query.format(RUNS), (schema, started_at, "succeeded")).fetchone()
    return None if row is None or row[0] is None else int(row[0])


class _Proofs:
    """The typed scan's proofs (etl/run/typedscan.py), run one by one on another core while the apply
    goes on: a table whose proof has failed by the time it is read takes the exact path; one whose
    proof is still running is read through the scan, and the proof decides before COMMIT (a failed
    one starts the apply over on the exact path). Proofs that fail find their first wrong value
    early, so starting over is rare. When the source changed while the apply read it (an app
    still writes to it), every table read through the scan counts as failed and the apply starts
    over on the exact path: a value written after its proof ran must not have been converted
    silently, and no proof run later can tell what the scan read."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        tables: list[TargetTable],
        source: Path,
        stamp: SourceStamp,
        trust_from_rows: int,
    ):
        self._source = source
        self._trust_from_rows = trust_from_rows
        self._stamp = stamp  # the apply's, taken before anything read the source
        self._candidates = candidates(con, SOURCE_ALIAS, tables)
        self._cursor = duck.configure(con.cursor())
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._in_transaction = False
        # Small tables' proofs in batches, one SQLite query each, all in one DuckDB transaction:
        # each DuckDB transaction opens the file anew, and SQLite parses the whole schema on
        # opening, so a query per table, or a transaction per batch, costs the square of the
        # tables. A large table's proof runs alone, so that no small table waits for it. The tables
        # come in load order: the first batch decides the first tables read.
        rows = {t.source: t.source_rows or 0 for t in tables}
        pending = [name for name, candidate in self._candidates.items() if candidate.proof is not None]
        batches: list[list[str]] = [[]]
        for name in pending:
            if rows.get(name, 0) >= trust_from_rows:
                batches.append([name])
            elif len(batches[-1]) < PROOF_BATCH and (
                not batches[-1] or rows.get(batches[-1][0], 0) < trust_from_rows
            ):
                batches[-1].append(name)
            else:
                batches.append([name])
        self._proofs: dict[str, Future[dict[str, bool]]] = {}
        for batch in batches:
            if batch:
                future = self._pool.submit(self._hold, batch)
                self._proofs.update(dict.fromkeys(batch, future))
        # Once the proofs are done, their transaction holds only a SQLite read lock and memory.
        self._pool.submit(self._end)
        self._trusted: set[str] = set()  # read through the scan before their proof was done
        self._read: set[str] = set()  # read through the scan

    def _hold(self, sources: list[str]) -> dict[str, bool]:
        """Which of the tables' proofs hold; each alone where their query together fails."""
        try:
            self._begin()
            proven = prove_candidates(self._cursor, SOURCE_ALIAS, [self._candidates[s] for s in sources])
        except duck.ERRORS:
            self._end()
            return {source: self._holds(self._candidates[source]) for source in sources}
        return dict(zip(sources, proven, strict=True))

    def _holds(self, candidate: Candidate) -> bool:
        try:
            self._begin()
            return holds(self._cursor, SOURCE_ALIAS, candidate)
        except duck.ERRORS:
            self._end()
            return False

    def _begin(self) -> None:
        if not self._in_transaction:
            self._cursor.execute("BEGIN TRANSACTION")
            self._in_transaction = True

    def _end(self) -> None:
        """End the cursor's transaction: after a failed query DuckDB refuses any other statement in
        it; once the proofs are done, it holds only a read lock on the source and memory."""
        if self._in_transaction:
            self._in_transaction = False
            with suppress(*duck.ERRORS):
                self._cursor.execute("ROLLBACK")

    def read(self, table: TargetTable) -> TargetTable:
        """`table`, read through the scan or not."""
        candidate = self._candidates.get(table.source)
        if candidate is None:
            return replace(table, scan=None)
        proof = self._proofs.get(table.source)
        if proof is not None and not proof.done() and (table.source_rows or 0) < self._trust_from_rows:
            proof.result()  # a small table's proof is quick: wait rather than risk starting over
        if proof is not None and proof.done() and not proof.result()[table.source]:
            return replace(table, scan=None)
        if proof is not None and not proof.done():
            self._trusted.add(table.source)
        self._read.add(table.source)
        return replace(table, scan=candidate.types)

    def failed(self) -> list[str]:
        """The tables read through the scan whose proof has failed (waits for the proofs), or
        fails now that the source has changed."""
        wrong = [source for source in sorted(self._trusted) if not self._proofs[source].result()[source]]
        if wrong or source_stamp(self._source) == self._stamp:
            return wrong
        # A proof run now reads the file as it is now, not as the scan read it: a value written
        # before a load and written back after it would pass, its misread value committed.
        return sorted(self._read)

    def close(self) -> None:
        self._cursor.interrupt()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._cursor.close()


def _read_tables(plan: Plan) -> list[TargetTable]:
    """The tables whose source rows the plan reads."""
    return [s.table for s in plan.steps if isinstance(s, LoadRows | SyncRows)] + list(plan.tables)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat()


def _execute(con: duckdb.DuckDBPyConnection, statement, what: str, target_url: str) -> None:
    text = statement.as_string(None)
    try:
        tell_postgres(con, text).execute(
            f"CALL postgres_execute({duck.quote_literal(TARGET_ALIAS)}, {duck.quote_literal(text)})"
        )
    except duckdb.Error as exc:
        raise TargetError(f"PostgreSQL refused {what}: {redact(duck_message(exc), target_url)}") from exc


def _execute_many(
    con: duckdb.DuckDBPyConnection, statements: list[tuple[sql.Composed, str]], target_url: str
) -> None:
    """Run (statement, what it does) pairs DDL_BATCH_STATEMENTS per round trip (one DO block,
    etl/postgres/ddl.py ddl_batch_sql): a refusal says what the refused statement did, and
    PostgreSQL's message, as `_execute` would have."""
    if len(statements) == 1:
        _execute(con, *statements[0], target_url)
        return
    for start in range(0, len(statements), DDL_BATCH_STATEMENTS):
        chunk = statements[start : start + DDL_BATCH_STATEMENTS]
        text = ddl_batch_sql([statement for statement, _ in chunk]).as_string(None)
        sender = con
        for statement, _ in chunk:  # the observer is told each statement, not the block sending them
            sender = tell_postgres(con, statement.as_string(None))
        try:
            sender.execute(
                f"CALL postgres_execute({duck.quote_literal(TARGET_ALIAS)}, {duck.quote_literal(text)})"
            )
        except duckdb.Error as exc:
            message = duck_message(exc)
            found = re.match(rf"{re.escape(BATCH_FAILURE_PREFIX)}(\d+): ", message)
            number = int(found[1]) if found else 0
            what = chunk[number - 1][1] if 0 < number <= len(chunk) else chunk[0][1]
            message = message[found.end() :] if found else message
            raise TargetError(f"PostgreSQL refused {what}: {redact(message, target_url)}") from exc


def _record_failure(schema: str, run: RunInfo, started_at: str, error: str, target_url: str) -> None:
    """Best effort, after the rollback, on a connection of its own: the failed run is recorded,
    nothing else of it remains."""
    import psycopg

    try:
        ensure_metadata(target_url)
        with psycopg.connect(target_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(
                record_run_sql(schema, run.spec, run.spec_sha256, started_at, _now(), "failed", {}, error)
            )
    except (psycopg.Error, EtlError):
        pass  # the target is unreachable or refuses: the error the user sees says why


def _lock_schema(con: duckdb.DuckDBPyConnection, schema: str) -> None:
    """One apply per target schema at a time: a transaction-scoped advisory lock, released by
    PostgreSQL at commit, rollback or a dropped connection, so it can never be left behind."""
    rows = _query(con, schema_lock_sql(schema))
    if not rows or not rows[0][0]:
        raise TargetError(
            f'another etl apply is running against schema "{schema}" of this database; '
            "nothing was changed: run again when it has finished"
        )


def _backend_pid(con: duckdb.DuckDBPyConnection) -> int | None:
    """The PostgreSQL backend running apply's transaction."""
    rows = _query(con, sql.SQL("SELECT pg_backend_pid()"))
    return int(rows[0][0]) if rows else None


def _rollback(con: duckdb.DuckDBPyConnection) -> bool:
    try:
        con.execute("ROLLBACK")
        return True
    except duckdb.Error:
        return False


_QUARANTINED: list[duckdb.DuckDBPyConnection] = []


def _quarantine(con: duckdb.DuckDBPyConnection) -> None:
    """Keep a DuckDB connection that lost PostgreSQL mid-transaction alive until the process ends.

    DuckDB 1.5.5 invalidates the database when the postgres connection drops during a COPY; closing
    or garbage-collecting it then retries ROLLBACK on the dead connection from a destructor and
    aborts the whole process (SIGABRT). PostgreSQL has already rolled the transaction back, so
    nothing is left to clean up: the object is simply never destroyed.
    """
    _QUARANTINED.append(con)
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(con))


@contextmanager
def _load_threads(con: duckdb.DuckDBPyConnection, rows: int | None = None) -> Iterator[None]:
    """DuckDB's threads while a table loads: one core fewer than the machine has, left to the
    PostgreSQL backend that takes the COPY: with as many threads as cores (DuckDB's default),
    DuckDB and the backend compete for them, and some loads of the same rows take markedly more
    CPU. Afterwards WAITING_THREADS again. A table of fewer than PROGRESS_FROM_ROWS `rows` loads
    in a moment on any number of threads: left on WAITING_THREADS."""
    if rows is not None and rows < PROGRESS_FROM_ROWS:
        yield
        return
    con.execute(f"SET threads = {max(1, (os.cpu_count() or 1) - 1)}")
    try:
        yield
    finally:
        with suppress(*duck.ERRORS):  # after a failed load the transaction refuses it: no matter
            con.execute(f"SET threads = {WAITING_THREADS}")


# DuckDB's threads while the apply's connection waits on PostgreSQL (DDL, reading the target back,
# COMMIT): with worker threads, DuckDB's client thread spins on a core of its own until PostgreSQL
# answers (duckdb 1.5.5's pending query polls for tasks), a core that PostgreSQL building keys and
# indexes, or sending rows back, then lacks. On one thread the client thread runs the query's task
# itself and blocks in libpq. The setting is the DuckDB instance's: _SourceSums' cursor, scanning
# beside the DDL, gets one thread too, and the other core is PostgreSQL's.
WAITING_THREADS = 1


@contextmanager
def _all_threads(tx: _Transaction) -> Iterator[None]:
    """DuckDB's default threads (one per core) while its own work, not PostgreSQL's, is waited for;
    left on WAITING_THREADS where the apply reads only small tables."""
    if tx.small_only:
        yield
        return
    tx.con.execute("RESET threads")
    try:
        yield
    finally:
        with suppress(*duck.ERRORS):
            tx.con.execute(f"SET threads = {WAITING_THREADS}")


def _run_ddl(con: duckdb.DuckDBPyConnection, step: Step, target_url: str) -> None:
    for statement in postgres_sql(step):
        _execute(con, statement, describe(step).text, target_url)
    # DuckDB caches the target's catalog; DDL we just ran must be visible to the next load.
    con.execute("CALL pg_clear_cache()")


def _load(con: duckdb.DuckDBPyConnection, step: LoadRows, target_url: str) -> int:
    table = step.table
    try:
        rows = 0
        for row_range in table.row_ranges or (None,):
            row = con.execute(load_query(step.schema, table, row_range)).fetchone()
            rows += int(row[0]) if row else 0
    except duck.ERRORS as exc:
        _raise_load_error(exc, table, target_url)
    return rows


# Loads of fewer rows end before the first progress report would come (it waits 0.25 s).
PROGRESS_FROM_ROWS = 50_000


def _small(table: TargetTable) -> bool:
    """Whether the table's source rows are known to be fewer than PROGRESS_FROM_ROWS."""
    return table.source_rows is not None and table.source_rows < PROGRESS_FROM_ROWS


@contextmanager
def _reporting_progress(
    step: LoadRows, on_event: Callable[[StepEvent], None], target_url: str, backend: int | None
) -> Iterator[None]:
    """While a table loads in one COPY, report the rows PostgreSQL has taken so far (its
    pg_stat_progress_copy for apply's backend, polled from another connection on another thread)
    as StepEvent "progress"."""
    total = step.table.source_rows or 0
    if step.table.row_ranges or total < PROGRESS_FROM_ROWS or backend is None:
        yield  # a load this short needs no progress, nor a thread and a connection to show it
        return
    stop = threading.Event()

    def poll() -> None:
        import psycopg

        if stop.wait(0.25):
            return  # a load this short needs no progress, nor a connection (which it would wait for)
        try:
            with psycopg.connect(target_url, autocommit=True, connect_timeout=5) as conn:
                while not stop.wait(0.25):
                    row = conn.execute(
                        "SELECT tuples_processed FROM pg_stat_progress_copy WHERE pid = %s", (backend,)
                    ).fetchone()
                    if row is not None:
                        on_event(StepEvent(step, "progress", rows=min(total, int(row[0]))))
        except psycopg.Error:
            return  # no progress to show (PostgreSQL before 14 has no pg_stat_progress_copy)

    watcher = threading.Thread(target=poll, name="etl-progress", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join()


class _SourceSums:
    """Count and checksum of each loaded table's source rows, through the same reading and
    conversions as its load, computed on another DuckDB cursor (outside the transaction) once the
    table is loaded, while the apply goes on: PostgreSQL builds keys and indexes, the next table
    loads.

    Not from a temp table of the rows sent: inside a DuckDB transaction a dropped temp table's
    memory is kept until COMMIT, so it grows with the rows, and memory must stay flat."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        # Same database, attachments and functions (registered before the transaction began).
        self._cursor = duck.configure(con.cursor())
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._sums: dict[str, tuple[TargetTable, Future[tuple[int, int]]]] = {}
        self._alone = False  # in a read transaction of its own, scanning on one thread

    def start(self, schema: str, table: TargetTable) -> None:
        self._sums[table.name] = (table, self._pool.submit(self._compute, schema, table))

    def _scan_alone(self, alone: bool) -> None:
        """As _Transaction.scan_alone, for this cursor: small tables read through one SQLite
        connection, kept by a read transaction (no temp table is made in it, so it holds no memory)."""
        if alone == self._alone:
            return
        if alone:
            self._cursor.execute("SET sqlite_disable_multithreaded_scans = true")
            self._cursor.execute("BEGIN TRANSACTION")
        else:
            self._cursor.execute("COMMIT")
            self._cursor.execute("RESET sqlite_disable_multithreaded_scans")
        self._alone = alone

    def _compute(self, schema: str, table: TargetTable) -> tuple[int, int]:
        self._scan_alone(table.source_rows is not None and table.source_rows < PROGRESS_FROM_ROWS)
        count, total = 0, 0
        for row_range in table.row_ranges or (None,):
            relation = f"({source_rows_query(schema, table, row_range, loaded=True)})"
            sums = self._cursor.execute(source_sums_query(table, relation)).fetchone()
            assert sums is not None  # an aggregate always yields one row
            count, total = count + int(sums[0]), total + int(sums[1])
        return count, total

    @property
    def tables(self) -> list[str]:
        return list(self._sums)

    def done(self, name: str) -> bool:
        return self._sums[name][1].done()

    def result(self, name: str, target_url: str) -> tuple[int, str]:
        """The table's count and checksum (waits for them); a value that cannot arrive raises as
        its load would have."""
        table, future = self._sums[name]
        try:
            count, total = future.result()
        except duck.ERRORS as exc:
            _raise_load_error(exc, table, target_url)
        return count, str(total)

    def finish(self) -> None:
        """End the cursor's read transaction, once every result is taken."""
        self._pool.submit(self._scan_alone, False).result()

    def close(self) -> None:
        self._cursor.interrupt()  # e.g. a bad value or Ctrl-C: the checksums are no longer wanted
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._cursor.close()


class _PageDigests:
    """What an apply records of the source's pages of `tables` (etl/run/fingerprint.py): taken
    from what the plan read of them (`planned`, fingerprint.planned_pages), and the others hashed
    on another thread while verification reads the rows back: the hashing is this process's CPU,
    the reading mostly PostgreSQL's, so on two cores they overlap. Hashing reads the file under a
    SQLite read transaction of its own; what it finds counts only if the source did not change
    since the apply began (checked before it is recorded)."""

    def __init__(self, source: Path, tables: list[TargetTable], planned: tuple[PagesRead, ...] = ()):
        self.tables = tables
        prints, ranges, rest = planned_pages(planned, tables)
        self._planned = (prints, ranges)
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="etl-pages")
        self._found = (
            self._pool.submit(source_fingerprints_and_ranges, source, rest, self._stop) if rest else None
        )

    def result(self) -> tuple[dict[str, str], dict[str, PageRanges]]:
        prints, ranges = self._planned
        if self._found is None:
            return prints, ranges
        found_prints, found_ranges = self._found.result()
        return {**found_prints, **prints}, {**found_ranges, **ranges}

    def close(self) -> None:
        self._stop.set()  # e.g. verification failed or Ctrl-C: the digests are no longer wanted
        self._pool.shutdown(wait=True, cancel_futures=True)


def _record_desired(tx: _Transaction, desired: DesiredRecord) -> None:
    """Record the spec's tables as PostgreSQL describes them, for the next plan. An apply that
    creates every table reads them here, after its DDL: the very statements a scratch schema
    would run, so the same description."""
    catalog = desired.catalog
    if catalog is None:
        created = {s.table.name for s in tx.plan.steps if isinstance(s, CreateTable)}
        views = {v.name for v in tx.plan.views}
        found = read_catalog_with(lambda query: _query_rows(tx.con, query), tx.plan.schema)
        catalog = replace(
            found,
            tables=tuple(t for t in found.tables if t.name in created),
            views=tuple(v for v in found.views if v.name in views),
        )
    for statement in record_desired_sql(tx.plan.schema, desired.key, tx.started_at, catalog_json(catalog)):
        tx.execute(statement, "recording the schema in etl.desired")


def _query_rows(con: duckdb.DuckDBPyConnection, statement) -> list[list]:
    """Rows of a PostgreSQL query run inside apply's transaction, with the types psycopg would
    give them (arrays as lists): sent as one JSON document, whose rows keep their column order."""
    text = sql.SQL("SELECT COALESCE(json_agg(q), '[]')::text FROM ({}) AS q").format(statement)
    (document,) = _query(con, text)[0]
    return json.loads(document, object_pairs_hook=lambda pairs: [value for _name, value in pairs])


def _query(con: duckdb.DuckDBPyConnection, statement) -> list[tuple]:
    """Rows of a PostgreSQL query, run inside apply's transaction."""
    text = statement.as_string(None)
    return (
        tell_postgres(con, text)
        .execute(
            f"SELECT * FROM postgres_query({duck.quote_literal(TARGET_ALIAS)}, {duck.quote_literal(text)})"
        )
        .fetchall()
    )


def _keep_for_rollback(
    con: duckdb.DuckDBPyConnection, step: KeepForRollback, started_at: str, execute, execute_many
) -> None:
    """Copy each table the plan changes into the run's history schema, names and all (see
    etl/postgres/history.py), and record it; record the tables the plan creates."""
    kept_in = history_schema(started_at)
    keys = dict(step.changes_only)
    for table in step.kept:
        if table in keys:
            _keep_changes_of(con, step.schema, table, kept_in, keys[table], started_at, execute)
            continue
        for copy_table in keep_statements(step.schema, table, kept_in):
            execute(copy_table, f'keeping a copy of "{table}" for etl rollback')
        for index in index_statements(kept_in, table, _query(con, indexes_query(step.schema, table))):
            execute(index, f'indexing the copy of "{table}"')
        serials = _query(con, serial_sequences_query(step.schema, table))
        for own in serial_sequence_statements(kept_in, table, serials):
            execute(own, f'giving the copy of "{table}" its own sequences')
        enums = _query(con, enum_columns_query(kept_in, table))
        for as_text in enum_to_text_statements(kept_in, table, enums):
            execute(as_text, f'keeping the enum columns of "{table}" as text')
        fks = [
            {"name": name, "definition": d}
            for _, _, name, d in _query(con, foreign_keys_query(step.schema, table))
        ]
        columns = [{"column": c, "enum": e, "default": d} for c, e, d in enums]
        sequences = _sequence_states(con, step.schema, table)
        triggers = _triggers(con, step.schema, table)
        record = record_statement(
            started_at,
            step.schema,
            table,
            kept_in,
            json.dumps(fks),
            json.dumps(columns),
            json.dumps(sequences),
            json.dumps(triggers),
        )
        execute(record, "recording the copy in etl.history")
    if step.created:
        execute_many(
            [
                (
                    record_statement(started_at, step.schema, table, None, "[]", "[]"),
                    "recording in etl.history",
                )
                for table in step.created
            ]
        )
    views = [(v, True) for v in step.views] + [(v, False) for v in step.new_views]
    if views:
        execute_many(
            [
                (
                    record_view_statement(started_at, step.schema, view, existed),
                    "recording a view in etl.history",
                )
                for view, existed in views
            ]
        )
    con.execute("CALL pg_clear_cache()")


def _keep_changes_of(
    con: duckdb.DuckDBPyConnection,
    schema: str,
    table: str,
    kept_in: str,
    key: tuple[str, ...],
    started_at: str,
    execute,
) -> None:
    """An empty copy of `table` for the rows its sync changes (the sync fills it), recorded with
    what a whole copy records but its keys and indexes: rollback restores the table in place."""
    for statement in changes_copy_statements(schema, table, kept_in, CHANGE_COLUMN):
        execute(statement, f'keeping the rows apply changes in "{table}" for etl rollback')
    enums = _query(con, enum_columns_query(kept_in, table))
    for as_text in enum_to_text_statements(kept_in, table, enums):
        execute(as_text, f'keeping the enum columns of "{table}" as text')
    fks = [
        {"name": name, "definition": d} for _, _, name, d in _query(con, foreign_keys_query(schema, table))
    ]
    record = record_statement(
        started_at,
        schema,
        table,
        kept_in,
        json.dumps(fks),
        json.dumps([{"column": c, "enum": e, "default": d} for c, e, d in enums]),
        json.dumps(_sequence_states(con, schema, table)),
        json.dumps(_triggers(con, schema, table)),
        json.dumps(list(key)),
    )
    execute(record, "recording the copy in etl.history")


def _sequence_states(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[dict]:
    states = []
    for column, sequence_schema, sequence in _query(con, sequences_query(schema, table)):
        ((last_value, is_called),) = _query(con, sequence_state_query(sequence_schema, sequence))
        states.append({"column": column, "last_value": int(last_value), "is_called": bool(is_called)})
    return states


def _triggers(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[dict]:
    return [
        {"name": name, "definition": d, "function": function, "function_definition": body}
        for name, d, function, body in _query(con, triggers_query(schema, table))
    ]


def _check_planned(step: SyncRows, counts: tuple[int, int, int]) -> None:
    """apply does what plan showed: if the rows differ from what was planned (the source or the
    target changed in between), nothing is committed."""
    if counts != step.diff.counts():
        planned = "{:,} to insert, {:,} to update, {:,} to delete".format(*step.diff.counts())
        found = "{:,} to insert, {:,} to update, {:,} to delete".format(*counts)
        raise PlanError(
            f'table "{step.table.name}" changed since the plan was made: planned {planned}, '
            f"found {found}; nothing was committed: run etl plan again"
        )


def _collect_rejects(con: duckdb.DuckDBPyConnection, step: SyncRows, target_url: str) -> list[dict]:
    table = step.table
    rejected = []
    try:
        for row_range in table.row_ranges or (None,):
            for found in con.execute(rejects_query(step.schema, table, row_range)).fetchall():
                rejected.append(_reject_record(table, found))
    except duck.ERRORS as exc:
        _raise_load_error(exc, table, target_url)
    _check_reject_limit(table, rejected, table.source_rows or 0)
    return rejected


def _load_rejecting(
    con: duckdb.DuckDBPyConnection, step: LoadRows, target_url: str
) -> tuple[int, list[dict]]:
    """Load the rows that arrive exactly; set the others aside, each with its reason and its raw
    values byte for byte, and fail if there are more than max_rejects."""
    table = step.table
    rows, rejected = 0, []
    try:
        for row_range in table.row_ranges or (None,):
            for found in con.execute(rejects_query(step.schema, table, row_range)).fetchall():
                rejected.append(_reject_record(table, found))
            row = con.execute(load_query(step.schema, table, row_range)).fetchone()
            rows += int(row[0]) if row else 0
    except duck.ERRORS as exc:
        _raise_load_error(exc, table, target_url)
    _check_reject_limit(table, rejected, rows + len(rejected))
    return rows, rejected


def _check_reject_limit(table: TargetTable, rejected: list[dict], total_rows: int) -> None:
    limit = _reject_limit(table.max_rejects, total_rows)
    if limit is not None and len(rejected) > limit:
        first = rejected[0]
        row = f"row {first['key']}: " if first["key"] is not None else ""
        raise DataError(
            f'table "{table.source}": {len(rejected):,} rows rejected, more than max_rejects {table.max_rejects} '
            f"allows; nothing was committed. The first: {row}{first['reason']}"
        )


def _reject_limit(max_rejects: int | str | None, total_rows: int) -> int | None:
    if max_rejects is None:
        return None
    if isinstance(max_rejects, str):
        return int(total_rows * float(max_rejects.rstrip("%")) / 100)
    return max_rejects


def _raw_value(storage: str, data: bytes | None) -> dict:
    """A rejected value as JSON, byte for byte: text as text when it is UTF-8 without NUL, else hex."""
    if storage == "null" or data is None:
        return {"type": "null"}
    if storage == "real":
        text = data.decode()
        for prefix, scale in (("p700:", 2.0**700), ("p400:", 2.0**400)):
            if text.startswith(prefix):
                return {"type": "real", "text": repr(float(text[len(prefix) :]) * scale)}
        return {"type": "real", "text": repr(float(text))}
    if storage != "blob":
        try:
            text = data.decode("utf-8")
            if "\x00" not in text:
                return {"type": storage, "text": text}
        except UnicodeDecodeError:
            pass
    return {"type": storage, "hex": data.hex()}


def _reject_record(table: TargetTable, found: tuple) -> dict:
    """A rejected row as the report and etl.rejects keep it: the ValueProblem's fields (its
    `reason` within the row, as a failure's message says it) and the raw values."""
    key, problem_json, *raw = found
    problem = value_problem(table.source, key, problem_json)
    row = {column.name: _raw_value(raw[2 * i], raw[2 * i + 1]) for i, column in enumerate(table.columns)}
    return {
        "table": problem.table,
        "key": problem.key,
        "column": problem.column,
        "reason": problem.detail,
        "value": problem.value,
        "row": row,
    }


# PostgreSQL parses json and jsonb recursively, as deep as its max_stack_depth allows, which with
# the default setting is far deeper than this; no value nesting fewer levels is suspected.
_JSON_DEPTH_SUSPECT = 500


def _too_deep_json(exc: BaseException, source: Path, plan: Plan) -> DataError | None:
    """The DataError naming the row, when PostgreSQL refused a json or jsonb value for nesting
    deeper than its stack allows (its own message names no row); None for any other error."""
    if "stack depth limit exceeded" not in str(exc):
        return None
    for table in {t.source: t for t in _read_tables(plan)}.values():
        columns = [(c.name, c.conversion.source_sql) for c in table.columns if c.pg_type.kind == "json"]
        if not columns:
            continue
        found = deepest_json(
            source,
            table.source,
            table.where,
            table.key_sql,
            columns,
            _JSON_DEPTH_SUSPECT,
            table.sqlite_relation,
        )
        if found is not None:
            key, column, depth = found
            reason = f"JSON nested {depth:,} levels deep, deeper than PostgreSQL accepts (stack depth limit exceeded)"
            problem = ValueProblem(table.source, key or None, column, reason, value=None)
            return DataError(
                f"{problem}; nothing was committed: flatten the value in SQLite, or raise max_stack_depth "
                "on the server",
                problem,
            )
    return None


def _raise_load_error(exc: Exception, table: TargetTable, target_url: str) -> NoReturn:
    message = duck_message(exc)
    lost = isinstance(exc, duckdb.InternalException | duckdb.FatalException) or "connection" in message
    if table.scan is not None and not lost:
        raise _TypedScanFailed(f'table "{table.source}": {message}', table.source) from exc
    if (problem := raised_value_problem(exc)) is not None:
        raise DataError(str(problem), problem) from exc
    if lost:
        raise TargetError(
            f'lost the connection to PostgreSQL while loading table "{table.source}": '
            f"{redact(message, target_url)}; nothing was committed: run apply again once the server "
            "accepts connections"
        ) from exc
    raise DataError(
        f'loading table "{table.source}" into "{table.name}" failed: {redact(message, target_url)}'
    ) from exc


def verify_target(
    mapping: DesiredSchema, source: Path, target_url: str, existing: frozenset[str]
) -> Verification:
    """Verify the tables of `mapping` against the target as it is, changing nothing."""
    con = connect_for(mapping.tables)
    try:
        attach(con, source, target_url, read_only=True)
        proven = prove(con, SOURCE_ALIAS, mapping.tables)
        verification = None
        if proven:
            try:
                scanned = tuple(replace(t, scan=proven.get(t.source)) for t in mapping.tables)
                verification = verify_tables(con, mapping.schema, scanned, existing)
            except duck.ERRORS:
                pass  # a value DuckDB's typed read cannot convert: the exact path names its row
        if verification is None:
            verification = verify_tables(con, mapping.schema, mapping.tables, existing)
        with open_sqlite(source) as lite:
            views = check_views(con, lite, mapping.schema, [v.name for v in mapping.views], existing)
        return replace(verification, views=views)
    except duckdb.Error as exc:
        raise_read_error(exc, "verification could not read the source or the target", source, target_url)
    finally:
        con.close()
