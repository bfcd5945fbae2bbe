"""The SQL `etl apply` runs for a plan, in order, without running it (`etl plan --sql`).

The DDL is PostgreSQL's (apply sends each statement to PostgreSQL as is, inside its one
transaction); the loads are DuckDB's queries over the attached SQLite source ("src") and target
("dst"). The same functions make the statements here and in the executor (render.postgres_sql,
render.load_query, render.rejects_query, sync.delete_rows): this is their pure twin. What apply
decides only while it runs is said in a comment in its place: the statements of a row sync (they
stage the rows that differ, found then), the copies kept for rollback (they follow the target's
catalog as it is then), and verification."""

from __future__ import annotations

from dataclasses import dataclass, replace

from psycopg import sql

from etl.core.plan import (
    DeleteRows,
    KeepForRollback,
    LoadRows,
    Plan,
    Step,
    SyncRows,
    VerifyStep,
    WritePrismaBaseline,
)
from etl.postgres.ddl import postgres_sql
from etl.run.load import load_query, rejects_query
from etl.run.sync import delete_rows
from etl.settings import OnError


@dataclass(frozen=True)
class Statement:
    engine: str  # "postgresql": sent to PostgreSQL as is; "duckdb": run by DuckDB; "": a comment
    text: str


def _postgres(statement: sql.Composable) -> Statement:
    return Statement("postgresql", statement.as_string(None))


def step_statements(step: Step) -> list[Statement]:
    """The statements of one plan step, as apply runs them."""
    if isinstance(step, LoadRows):
        # At run time a table whose values DuckDB's typed read is proven to convert exactly is read
        # through that scan instead of through SQLite, with the same conversions; shown here: SQLite.
        table = replace(step.table, scan=None)
        found = []
        for row_range in table.row_ranges or (None,):
            if table.on_error == OnError.REJECT:
                found.append(Statement("duckdb", rejects_query(step.schema, table, row_range)))
            found.append(Statement("duckdb", load_query(step.schema, table, row_range)))
        return found
    if isinstance(step, DeleteRows):
        found = []
        delete_rows(step, lambda statement, _what: found.append(_postgres(statement)))
        return found
    if isinstance(step, SyncRows):
        return [
            Statement("", f'rows of "{step.table.name}": staged, inserted and updated as found at run time')
        ]
    if isinstance(step, KeepForRollback):
        return [
            Statement(
                "",
                "etl.history: the tables this apply creates, and copies of those it changes, for etl rollback",
            )
        ]
    if isinstance(step, WritePrismaBaseline):
        files = [Statement("", f"after COMMIT, written: {step.directory}/{name}") for name in step.files]
        return [_postgres(statement) for statement in postgres_sql(step)] + files
    if isinstance(step, VerifyStep):
        return [Statement("", "verification: counts and checksums of every table, source against target")]
    return [_postgres(statement) for statement in postgres_sql(step)]


def plan_statements(plan: Plan) -> list[Statement]:
    return [statement for step in plan.steps for statement in step_statements(step)]


def plan_sql_text(plan: Plan) -> str:
    """The statements as one script: each ends with `;`, DuckDB's marked by a comment line."""
    parts = ["-- etl apply runs these in one transaction, in this order."]
    for statement in plan_statements(plan):
        if statement.engine == "":
            parts.append(f"-- {statement.text}")
        elif statement.engine == "duckdb":
            parts.append(f"-- DuckDB:\n{statement.text};")
        else:
            parts.append(f"{statement.text};")
    return "\n".join(parts) + "\n"
