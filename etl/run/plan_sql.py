"""The SQL `etl apply` runs for a plan, in order, without running it (`etl plan --sql`).

The DDL is PostgreSQL's (apply sends each statement to PostgreSQL as is, inside its one
transaction); the loads, the row syncs and verification are DuckDB's queries over the attached
SQLite source ("src") and target ("dst"). The executor runs what the same functions make
(postgres_sql, load_query, rejects_query, sync_statements, delete_rows, keep_statements,
record_statement, expire_statements, source_sums_queries, target_sums_query,
check_written_query): this is their pure twin. What only the run decides is one comment line in
its place, naming what decides it. Left out, and said so once: the session's own statements
(ATTACH, BEGIN, COMMIT, DuckDB's settings and cache) and etl's records of the run in its `etl`
schema (runs, rejects, fingerprints, the schema it built)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from psycopg import sql

from etl.core.mapping import TargetTable
from etl.core.plan import (
    CHANGE_COLUMN,
    AddCheck,
    DeleteRows,
    KeepForRollback,
    LoadRows,
    Plan,
    Step,
    SyncRows,
    WritePrismaBaseline,
)
from etl.duck import quote_literal
from etl.postgres.ddl import check_violations_sql, postgres_sql
from etl.postgres.history import (
    HISTORY_SCHEMA_PREFIX,
    changes_copy_statements,
    expire_statements,
    expired_query,
    history_schema,
    keep_statements,
    record_statement,
    record_view_statement,
)
from etl.run.checkrows import staged_check_query
from etl.run.load import load_query, rejects_query
from etl.run.session import SOURCE_ALIAS, Statement, connect_for
from etl.run.sync import (
    check_written_query,
    delete_rows,
    ranged_guard_sql,
    ranged_syncs,
    staged_rows,
    sync_statements,
    written_name,
)
from etl.run.typedscan import Candidate, candidates
from etl.run.verify import (
    ranged_target_sums_queries,
    source_sums_queries,
    target_sums_query,
    view_columns_query,
)
from etl.settings import Mode, OnError

__all__ = ["APPLY_START", "Statement", "plan_sql_text", "plan_statements", "typed_candidates"]

# The one value of the statements that only the run knows: when it starts (UTC, ISO text). It
# names the schema of the copies kept for etl rollback and dates the run's rows in etl.history.
APPLY_START = "<apply's start>"


def typed_candidates(source: Path, plan: Plan) -> dict[str, Candidate]:
    """The source tables DuckDB's typed scan can read (source table -> its scan types and proof),
    from the source's catalog alone, as apply finds them when it starts."""
    con = connect_for(plan.tables)
    try:
        con.execute(f"ATTACH {quote_literal(str(source))} AS {SOURCE_ALIAS} (TYPE sqlite, READ_ONLY)")
        return candidates(con, SOURCE_ALIAS, _read_tables(plan))
    finally:
        con.close()


def _read_tables(plan: Plan) -> list[TargetTable]:
    return [s.table for s in plan.steps if isinstance(s, LoadRows | SyncRows)] + list(plan.tables)


def _postgres(statement: sql.Composable) -> Statement:
    return Statement("postgresql", statement.as_string(None))


def _both_paths(table: TargetTable, candidate: Candidate | None, make) -> list[Statement]:
    """`make(table)`'s statements as apply runs them on the path it reads the table on: where the
    table has DuckDB's typed read, a statement that reads the source is shown on both paths (the
    typed read's first), after one line saying which runs when."""
    sqlite = make(replace(table, scan=None))
    if candidate is None:
        return sqlite
    typed = make(replace(table, scan=candidate.types))
    assert len(typed) == len(sqlite)  # the same statements, but for how they read the source
    when = (
        f"its proof holds: {candidate.proof} (SQLite)"
        if candidate.proof
        else "DuckDB reads every value (it raises on any other)"
    )
    differ = any(on_typed != on_sqlite for on_typed, on_sqlite in zip(typed, sqlite, strict=True))
    found = [
        Statement(
            "",
            f'"{table.source}": DuckDB\'s typed read runs if {when}; else the SQLite path (apply starts over if it finds out late)',
        )
    ][:differ]
    for on_typed, on_sqlite in zip(typed, sqlite, strict=True):
        if on_typed == on_sqlite:
            found.append(on_typed)
        else:
            found += [
                replace(on_typed, path="typed", source=table.source),
                replace(on_sqlite, path="sqlite", source=table.source),
            ]
    return found


def _load(step: LoadRows, candidate: Candidate | None) -> list[Statement]:
    def make(table: TargetTable) -> list[Statement]:
        found = []
        for row_range in table.row_ranges or (None,):
            if table.on_error == OnError.REJECT:
                found.append(Statement("duckdb", rejects_query(step.schema, table, row_range)))
            found.append(Statement("duckdb", load_query(step.schema, table, row_range)))
        return found

    return _both_paths(step.table, candidate, make)


def _sync(
    step: SyncRows, number: int, candidate: Candidate | None, verify: bool, kept_in: str
) -> list[Statement]:
    def make(table: TargetTable) -> list[Statement]:
        found = []
        if table.on_error == OnError.REJECT:
            found += [
                Statement("duckdb", rejects_query(step.schema, table, row_range))
                for row_range in table.row_ranges or (None,)
            ]
        for statement in sync_statements(replace(step, table=table), number, verify, kept_in):
            if statement.writes_staged:
                # Each check on the rows about to be written; rows it refuses are set aside first.
                staged = staged_rows(step.schema, table)
                found += [_postgres(staged_check_query(staged, check)) for check in table.checks]
            if isinstance(statement.text, str):
                found.append(Statement("duckdb", statement.text))
            else:
                found.append(_postgres(statement.text))
        return found

    return _both_paths(step.table, candidate, make)


def _keep(step: KeepForRollback, started_at: str, kept_in: str) -> list[Statement]:
    found = []
    for table in step.kept:
        if step.keeps_changes_only(table):
            found += [
                _postgres(statement)
                for statement in changes_copy_statements(step.schema, table, kept_in, CHANGE_COLUMN)
            ]
            found.append(
                Statement(
                    "",
                    f'then, as the target\'s catalog describes "{table}" when apply runs: its enum columns as '
                    "text, and its row in etl.history (with its key, sequences' state and triggers); its sync "
                    "fills the copy with the rows it changes",
                )
            )
            continue
        found += [_postgres(statement) for statement in keep_statements(step.schema, table, kept_in)]
        found.append(
            Statement(
                "",
                f"then, as the target's catalog describes \"{table}\" when apply runs: the copy's indexes, "
                "its own sequences, its enum columns as text, and its row in etl.history (with its foreign "
                "keys, sequences' state and triggers)",
            )
        )
    found += [
        _postgres(record_statement(started_at, step.schema, table, None, "[]", "[]"))
        for table in step.created
    ]
    views = [(v, True) for v in step.views] + [(v, False) for v in step.new_views]
    found += [_postgres(record_view_statement(started_at, step.schema, v, existed)) for v, existed in views]
    return found


def step_statements(
    step: Step,
    number: int = 0,
    scans: Mapping[str, Candidate] | None = None,
    verify: bool = True,
    started_at: str = APPLY_START,
    kept_in: str = HISTORY_SCHEMA_PREFIX + APPLY_START,
) -> list[Statement]:
    """The statements of one plan step (the plan's `number`-th), as apply runs them."""
    scans = scans or {}
    if isinstance(step, LoadRows):
        return _load(step, scans.get(step.table.source))
    if isinstance(step, SyncRows):
        return _sync(step, number, scans.get(step.table.source), verify, kept_in)
    if isinstance(step, DeleteRows):
        found: list[Statement] = []
        delete_rows(step, lambda statement, _what: found.append(_postgres(statement)))
        return found
    if isinstance(step, KeepForRollback):
        return _keep(step, started_at, kept_in)
    if isinstance(step, AddCheck):  # the rows it refuses are looked for first, to name them
        return [_postgres(check_violations_sql(step)), *[_postgres(s) for s in postgres_sql(step)]]
    if isinstance(step, WritePrismaBaseline):
        files = [Statement("", f"after COMMIT, written: {step.directory}/{name}") for name in step.files]
        return [_postgres(statement) for statement in postgres_sql(step)] + files
    return [_postgres(statement) for statement in postgres_sql(step)]


def _expiry(plan: Plan) -> list[Statement]:
    keep = next((s for s in plan.steps if isinstance(s, KeepForRollback)), None)
    if keep is None:
        return []
    return [
        _postgres(expired_query(plan.schema, keep.retention)),
        Statement("", "DROP SCHEMA ... CASCADE of each copy the query above finds beyond the retention"),
        *[_postgres(s) for s in expire_statements(plan.schema, [], keep.retention)],
    ]


def _verification(plan: Plan, scans: Mapping[str, Candidate]) -> list[Statement]:
    """Verification's queries, in the executor's order: the source's count and checksum of each
    table whose load or sync did not compute them already (a load of on_error: fail computes
    them beside itself, on a second DuckDB connection), the target's, then the rows an upsert or
    append wrote, each looked up in the target."""
    summed = {
        s.table.name for s in plan.steps if isinstance(s, LoadRows) and s.table.on_error != OnError.REJECT
    }
    summed |= {s.table.name for s in plan.steps if isinstance(s, SyncRows) and s.table.mode == Mode.SYNC}
    # A table synced by ranges is compared where its sync read (read_rowids); in full (its sync's
    # sums cover only those rows) when a key's action in another table may change its rows elsewhere.
    checked = {t.name for t in plan.checked}
    summed -= {s.table.name for s in ranged_syncs(plan) if s.table.name in checked}
    ranged = {s.table.name: s.read_rowids for s in ranged_syncs(plan) if s.table.name not in checked}
    written = {
        s.table.name: (s.table, name)
        for number, s in enumerate(plan.steps)
        if isinstance(s, SyncRows) and (name := written_name(s, number, True)) is not None
    }
    found = [Statement("", "verification: counts and checksums of every table, source against target")]
    if summed:
        beside = ", ".join(f'"{name}"' for name in sorted(summed))
        found.append(
            Statement("", f"the source's counts and checksums of {beside}: computed by their load or sync")
        )
    for table in plan.tables:
        if table.name in written:
            continue

        def make(read: TargetTable) -> list[Statement]:
            queries = [] if read.name in summed else source_sums_queries(plan.schema, read)
            rowids = ranged.get(read.name)
            if rowids is None:
                queries.append(target_sums_query(plan.schema, read))
            else:
                queries += ranged_target_sums_queries(plan.schema, read, rowids)
            return [Statement("duckdb", q) for q in queries]

        found += _both_paths(table, scans.get(table.source), make)
    for view in plan.views:
        found += [
            Statement("duckdb", view_columns_query(plan.schema, view.name)),
            Statement("", f'the rows of view "{view.name}", each column read as the query above types it'),
        ]
    for table, name in written.values():
        found.append(Statement("duckdb", check_written_query(plan.schema, table, name)))
    return found


GUARD_READS_APART = (
    "after the LOCK, on a connection of its own (awaited before verification), apply reads whether "
    "the tables are still as the last apply left them:"
)


def plan_statements(
    plan: Plan,
    scans: Mapping[str, Candidate] | None = None,
    verify: bool = True,
    started_at: str = APPLY_START,
) -> list[Statement]:
    """Every statement apply runs for `plan`, in order (verification's too, when `verify`).
    `scans`: the tables DuckDB's typed scan can read (typed_candidates), whose loads are shown on
    both paths; `started_at`: the apply's start, when known."""
    scans = scans or {}
    kept_in = HISTORY_SCHEMA_PREFIX + APPLY_START if started_at == APPLY_START else history_schema(started_at)
    guard = ranged_guard_sql(plan)
    found = []
    if guard is not None:
        found.append(_postgres(guard.lock))
        # Read on a connection of its own while the transaction goes on (etl/run/guard.py).
        found.append(Statement("", f"{GUARD_READS_APART} {guard.state.as_string(None)}"))
        found += [_postgres(statement) for statement in guard.keep]
    found += [
        statement
        for number, step in enumerate(plan.steps)
        for statement in step_statements(step, number, scans, verify, started_at, kept_in)
    ]
    found += _expiry(plan)
    if verify and plan.steps:
        found += _verification(plan, scans)
    return found


def plan_sql_text(plan: Plan, scans: Mapping[str, Candidate] | None = None) -> str:
    """The statements as one script: each ends with `;`; a run of DuckDB's statements follows a
    comment line saying so (and which read path runs it, where that matters)."""
    parts = [
        "-- etl apply runs these in one transaction, in this order, between its BEGIN and COMMIT;",
        "-- not shown: DuckDB's session settings, and etl's records of the run in its etl schema.",
    ]
    if any(isinstance(s, KeepForRollback) for s in plan.steps):
        parts.append(f"-- {APPLY_START}: the time apply starts (UTC), known only then.")
    label = ""  # of the DuckDB statements printed last: a run of them shares one
    for statement in plan_statements(plan, scans):
        if statement.engine == "duckdb":
            said = {"typed": "DuckDB, typed read:", "sqlite": "DuckDB, SQLite path:"}.get(
                statement.path, "DuckDB:"
            )
            if said != label:
                parts.append(f"-- {said}")
            parts.append(f"{statement.text};")
            label = said
            continue
        label = ""
        parts.append(f"-- {statement.text}" if statement.engine == "" else f"{statement.text};")
    return "\n".join(parts) + "\n"
