"""How many locks apply's one transaction takes, against how many the target's lock table holds.

PostgreSQL keeps every lock a transaction takes until it ends, in one lock table shared by the
whole server: about max_locks_per_transaction x (max_connections + its other processes +
max_prepared_transactions) entries (LockCapacity). Apply runs the whole plan in one transaction, so a plan of thousands of tables can fill
that table and fail deep in the load with "out of shared memory". The estimate here is an upper
bound, counted from the plan alone; the check runs before apply changes anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from etl.core.mapping import TargetTable
from etl.core.plan import (
    AddForeignKey,
    CreateEnum,
    CreateTable,
    CreateView,
    DeleteRows,
    DropConstraint,
    DropIndex,
    DropTable,
    DropTables,
    DropView,
    FinishEnum,
    KeepForRollback,
    LoadRows,
    Plan,
    ReplaceEnum,
    SyncRows,
    table_of,
)
from etl.errors import PlanError

# Locks every apply takes whatever the plan: the system catalogs and their indexes that DuckDB's
# postgres extension and etl read or write, etl's own tables, their indexes and sequences, the
# schema's advisory lock, the transaction's ids. tests/test_wide.py counts them in pg_locks (about
# half of this): the rest is room for what other catalog reads may add.
FIXED_LOCKS = 100

# A table known to the plan by its name only (one it drops, or alters without loading): the table,
# its row type, its TOAST table and TOAST index, and room for a key (its index and constraint), an
# index, a foreign key and a sequence.
UNKNOWN_TABLE_LOCKS = 9

# Types whose values never go to a TOAST table: a table of only these gets none.
_FIXED_WIDTH = frozenset(
    {
        "smallint",
        "integer",
        "bigint",
        "real",
        "double precision",
        "boolean",
        "date",
        "timestamp without time zone",
        "timestamp with time zone",
        "time without time zone",
        "time with time zone",
        "uuid",
        "interval",
        "money",
        "oid",
    }
)


@dataclass(frozen=True)
class LockCapacity:
    """The target server's settings that size its shared lock table: max_locks_per_transaction
    entries for each server process (connections, and the autovacuum, background worker and WAL
    sender processes: `other_processes`) and each prepared transaction."""

    max_locks_per_transaction: int
    max_connections: int
    max_prepared_transactions: int
    other_processes: int = 0

    @property
    def holders(self) -> int:
        return self.max_connections + self.other_processes + self.max_prepared_transactions

    @property
    def sized(self) -> int:
        """The entries PostgreSQL sizes its lock table for."""
        return self.max_locks_per_transaction * self.holders

    @property
    def slots(self) -> int:
        """The locks one transaction can hold: PostgreSQL reserves memory for the table of locks
        and for twice as many entries of who holds each, and one transaction holds each of its
        locks once, so its locks fill the reserve at about one and a half times the sized count."""
        return self.sized * 3 // 2


def table_locks(table: TargetTable) -> int:
    """The objects one table brings, each locked once: itself and its row type, its TOAST table
    and the TOAST table's index (where a column may be stored out of line), its key, unique and
    other indexes, its constraints (key, uniques, foreign keys, checks), its sequences."""
    toast = any(c.pg_type.array or c.pg_type.name not in _FIXED_WIDTH for c in table.columns)
    key = 1 if table.primary_key else 0
    indexes = key + len(table.uniques) + len(table.indexes)
    constraints = key + len(table.uniques) + len(table.foreign_keys) + len(table.checks)
    sequences = sum(1 for c in table.columns if c.identity or c.serial)
    return 2 + (2 if toast else 0) + indexes + constraints + sequences


def locks_needed(plan: Plan) -> int:
    """An upper bound of the locks apply holds at once when it runs `plan` in one transaction."""
    known: dict[str, TargetTable] = {t.name: t for t in plan.checked}
    for step in plan.steps:
        if isinstance(step, CreateTable | LoadRows | SyncRows | DeleteRows):
            known[step.table.name] = step.table
    # Each relation counts once however many steps lock it: a lock is held per object.
    tables: dict[str, int] = {name: table_locks(t) for name, t in known.items()}
    extra = 0
    for step in plan.steps:
        if isinstance(step, DropTables):
            # The old tables are dropped with their indexes and sequences, the new ones created.
            extra += sum(tables.get(name, UNKNOWN_TABLE_LOCKS) for name in step.tables)
        elif isinstance(step, KeepForRollback):
            # A copy of each kept table, with its indexes and sequences, in the run's history schema.
            extra += sum(tables.get(name, UNKNOWN_TABLE_LOCKS) for name in step.kept)
        elif isinstance(step, DropTable):
            tables.setdefault(step.table, UNKNOWN_TABLE_LOCKS)
        elif isinstance(step, DropIndex | DropConstraint):
            extra += 1  # the index that goes (a constraint's own index) is not in the desired table
        elif isinstance(step, AddForeignKey):
            if step.foreign_key.ref_table not in tables:
                tables[step.foreign_key.ref_table] = UNKNOWN_TABLE_LOCKS  # read to check the rows
        elif isinstance(step, CreateView | DropView):
            extra += 1
        elif isinstance(step, CreateEnum | ReplaceEnum | FinishEnum):
            extra += 2  # the type and its array type
        elif (name := table_of(step)) is not None:
            tables.setdefault(name, UNKNOWN_TABLE_LOCKS)
    for table in known.values():
        for fk in table.foreign_keys:
            tables.setdefault(fk.ref_table, UNKNOWN_TABLE_LOCKS)
    return FIXED_LOCKS + sum(tables.values()) + extra


def check_locks(plan: Plan, capacity: LockCapacity) -> None:
    """Refuse a plan whose transaction would hold more locks than the target's lock table holds,
    naming the numbers and the two ways out."""
    needed = locks_needed(plan)
    if needed <= capacity.slots:
        return
    setting = _rounded_up(math.ceil(needed / capacity.holders))  # without counting on the reserve
    tables = len({t.name for t in plan.tables}) or 1
    per_table = max(1, math.ceil((needed - FIXED_LOCKS) / tables))
    fit = max(1, (capacity.slots - FIXED_LOCKS) // per_table)
    raise PlanError(
        f"apply runs in one PostgreSQL transaction, which would hold about {needed:,} locks "
        f"({tables:,} tables with their indexes, constraints, sequences and TOAST tables); the "
        f"server's lock table holds about {capacity.slots:,} (max_locks_per_transaction "
        f"{capacity.max_locks_per_transaction} x {capacity.holders} server processes and prepared "
        f"transactions, and half as many again in the memory reserved beside it): run ALTER SYSTEM "
        f"SET max_locks_per_transaction = {setting} and restart PostgreSQL, or split the spec's "
        f"tables into specs of at most {fit:,} tables each"
    )


def _rounded_up(value: int) -> int:
    """A setting a person would type: the next multiple of 64 (PostgreSQL's default)."""
    return max(64, math.ceil(value / 64) * 64)
