"""A plan: ordered, immutable steps. `etl plan` explains them, `etl apply` executes exactly them."""

from __future__ import annotations

from collections.abc import Mapping as MappingType
from dataclasses import dataclass, field

from etl.core.mapping import (
    LeftOut,
    TargetCheck,
    TargetColumn,
    TargetForeignKey,
    TargetIndex,
    TargetTable,
    TargetTrigger,
    TargetUnique,
    TargetView,
)
from etl.model import TargetCatalog


@dataclass(frozen=True)
class RowChange:
    op: str  # "insert" | "update" | "delete"
    key: str  # e.g. "id=5"; for a table without a key its values, e.g. "name='a', n=5"
    columns: tuple[str, ...] = ()  # the columns an update changes


@dataclass(frozen=True)
class RowDiff:
    insert: int = 0
    update: int = 0
    delete: int = 0
    unchanged: int = 0  # with mode: append, the rows at or before the watermark (not compared)
    samples: tuple[RowChange, ...] = ()
    watermark: str | None = None  # mode: append: the largest value the target holds
    # Hashes (verification's) of source rows a check set aside at an earlier apply, left out of
    # the counts and of the sync's staged rows; and when the latest of them was set aside.
    set_aside: tuple[int, ...] = ()
    set_aside_at: str | None = None
    set_aside_rows: int = 0  # the source rows those hashes match
    set_aside_sum: int = 0  # the sum of their hashes (verification's)
    # The inclusive rowid ranges the diff compared (the source's rowids; on the target, the same
    # values of the rowid key), when the rows outside them are proven equal on both sides since
    # the last apply (etl/run/fingerprint.py Ranged); None: the whole table was compared.
    rowids: tuple[tuple[int, int], ...] | None = None
    # Within `rowids`: the merged rowid ranges of the rows that differ, which a sync reads on both
    # sides (None: it reads all of `rowids`, e.g. when too many rows differ to keep them here);
    # and the source's row count and checksum (verification's) over the rows the sync reads
    # (SyncRows.read_rowids), summed by the plan's own read, which verification compares the
    # target's rows there against. The other rows of `rowids` the plan found equal on both sides,
    # and the apply writes none of them.
    differing: tuple[tuple[int, int], ...] | None = None
    range_sums: tuple[int, str] | None = None

    @property
    def changes(self) -> int:
        return self.insert + self.update + self.delete

    def counts(self) -> tuple[int, int, int]:
        return self.insert, self.update, self.delete


@dataclass(frozen=True)
class PagesRead:
    """What one read of a source table's pages told the plan (etl/sqlite/pages.py TablePages):
    an apply records it as its own read while the source keeps the stamp taken before it
    (Plan.source_stamp), instead of reading the pages again."""

    table: str  # the source table, as SQLite spells it
    digest: str
    ranged: bool  # read for its ranges of leaf pages (which it may lack: too few, no rowid)
    ranges: bytes | None = None  # those ranges, as recorded (PageRanges.to_bytes())


@dataclass(frozen=True)
class DesiredRecord:
    """The spec's tables as PostgreSQL describes them, for apply to record under `key` (everything
    that decides them): the next plan with the same key reads them instead of building a scratch
    schema. `catalog` None: the apply creates every table of the spec, and reads them after."""

    key: str
    catalog: TargetCatalog | None


@dataclass(frozen=True)
class TargetState:
    """The target as it is, and what the planner learned comparing it with the source.

    `catalog`: the target schema as read; `desired`: the spec's tables as PostgreSQL itself
    describes them (created in a scratch schema and rolled back), so that both sides of the schema
    diff are PostgreSQL's own words; `rows`: the row diff of every table that exists."""

    schema_exists: bool
    tables: frozenset[str] = frozenset()  # every relation in the schema (tables, views, ...)
    enums: frozenset[str] = frozenset()
    catalog: TargetCatalog | None = None
    desired: TargetCatalog | None = None
    # What apply records of the desired catalog for the next plan (None: it is recorded already).
    record: DesiredRecord | None = None
    rows: MappingType[str, RowDiff] = field(default_factory=dict)
    # Tables earlier applies created in this schema that the spec no longer names: rows they hold.
    removed: MappingType[str, int] = field(default_factory=dict)
    # Views earlier applies created that the spec no longer names, each with the target's views
    # that read it (PostgreSQL refuses to drop a view another one reads).
    removed_views: MappingType[str, tuple[str, ...]] = field(default_factory=dict)
    # Tables whose rows were not compared: provably unchanged on both sides since the apply that
    # began at this time (UTC) left them equal to the source (etl/run/fingerprint.py).
    skipped: MappingType[str, str] = field(default_factory=dict)
    # Tables whose rows were compared in some rowid ranges only: (ranges whose source pages
    # changed, ranges of the table, time of the apply that left the others equal on both sides).
    ranged: MappingType[str, tuple[int, int, str]] = field(default_factory=dict)
    # Tables whose rows were compared in full that no apply has recorded (etl.fingerprints holds
    # nothing of them) though one could: see Plan.unrecorded.
    unrecorded: frozenset[str] = frozenset()
    # The source file's stamp (etl.sqlite.catalog.source_stamp) taken before its pages were
    # hashed (None: none were): a sync by ranges holds only while the source still has it.
    source_stamp: tuple | None = None
    # What that read of the pages told, per source table read.
    source_pages: tuple[PagesRead, ...] = ()
    # (table, "trigger" or "rule", name, the trigger's function) of each trigger and rule that
    # fires on writes to a table of the schema (etl/postgres/catalog.py read_firing).
    firing: tuple[tuple[str, str, str, str], ...] = ()


@dataclass(frozen=True)
class Step:
    destructive = False


@dataclass(frozen=True)
class CreateSchema(Step):
    schema: str


@dataclass(frozen=True)
class DropTables(Step):
    """Tables of the spec that exist in the target, dropped together: foreign keys among them go
    with them, while anything else that depends on them (a view, another table's foreign key)
    makes PostgreSQL refuse instead of being dropped silently (no CASCADE)."""

    schema: str
    tables: tuple[str, ...]
    held: tuple[int, ...] = ()  # rows each table holds (all lost, then loaded again)
    destructive = True

    @property
    def rows(self) -> int:
        return sum(self.held)


@dataclass(frozen=True)
class CreateEnum(Step):
    schema: str
    name: str
    labels: tuple[str, ...]


# The column a copy of changed rows puts first to say what the run did to each row ('i', 'u',
# 'd'), as the sync's staging table does.
CHANGE_COLUMN = "etl_op"


@dataclass(frozen=True)
class KeepForRollback(Step):
    """Before anything changes: a copy of each existing table the plan changes, and a note of the
    tables it creates, so that `etl rollback` can restore them (kept for `retention` applies)."""

    schema: str
    kept: tuple[str, ...]
    created: tuple[str, ...]
    retention: int
    # The views it drops (their definitions are recorded first) and those it creates anew.
    views: tuple[str, ...] = ()
    new_views: tuple[str, ...] = ()
    # The kept tables whose copy holds only the rows the run changes, with their key columns: a
    # keyed table whose rows only a sync changes. Its sync (SyncRows.keep_changes) copies the old
    # version of each row it updates or deletes and the key of each it inserts; rollback puts
    # back just those rows instead of the whole table.
    changes_only: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def keeps_changes_only(self, table: str) -> bool:
        return any(name == table for name, _ in self.changes_only)


@dataclass(frozen=True)
class DropTable(Step):
    """A table an earlier apply created that the spec no longer names."""

    schema: str
    table: str
    rows: int
    destructive = True


@dataclass(frozen=True)
class ReplaceEnum(Step):
    """An enum type whose labels change: the old type is renamed and the columns using it hold
    text while rows move (so rows using a label that goes can be deleted or updated), then
    FinishEnum gives them the new type. A label still used then fails the run."""

    schema: str
    name: str
    labels: tuple[str, ...]
    old_labels: tuple[str, ...]
    columns: tuple[tuple[str, TargetColumn], ...]  # (table, column) using the type

    @property
    def destructive(self) -> bool:  # type: ignore[override]
        return not set(self.old_labels) <= set(self.labels)


@dataclass(frozen=True)
class FinishEnum(Step):
    """After the rows moved: the columns of a replaced enum type take the new type, the old goes."""

    schema: str
    name: str
    columns: tuple[tuple[str, TargetColumn], ...]


@dataclass(frozen=True)
class CreateTable(Step):
    schema: str
    table: TargetTable


@dataclass(frozen=True)
class LoadRows(Step):
    schema: str
    table: TargetTable


@dataclass(frozen=True)
class ConvertColumn(Step):
    """A column DuckDB cannot write exactly is loaded as text and converted by PostgreSQL."""

    schema: str
    table: str
    column: TargetColumn


@dataclass(frozen=True)
class AddPrimaryKey(Step):
    schema: str
    table: TargetTable


@dataclass(frozen=True)
class AddUnique(Step):
    schema: str
    table: str
    unique: TargetUnique


@dataclass(frozen=True)
class CreateIndex(Step):
    schema: str
    table: str
    index: TargetIndex


@dataclass(frozen=True)
class AddForeignKey(Step):
    schema: str
    table: str
    foreign_key: TargetForeignKey


@dataclass(frozen=True)
class AddCheck(Step):
    """A CHECK constraint, once the rows are in; `key` (target columns) names the rows that
    violate it, if any."""

    schema: str
    table: str
    check: TargetCheck
    key: tuple[str, ...] = ()


@dataclass(frozen=True)
class ResetSequence(Step):
    """The column's sequence (an identity's, or a serial column's own) continues past the largest
    id (and past SQLite's AUTOINCREMENT counter)."""

    schema: str
    table: str
    column: str
    floor: int | None
    serial: bool = False  # a serial column's sequence, not an identity


@dataclass(frozen=True)
class AddColumn(Step):
    """A column the spec has and the target's table lacks; NOT NULL follows once rows are in."""

    schema: str
    table: str
    column: TargetColumn


@dataclass(frozen=True)
class DropColumn(Step):
    schema: str
    table: str
    column: str
    destructive = True


@dataclass(frozen=True)
class AlterColumnType(Step):
    schema: str
    table: str
    column: TargetColumn
    old_type: str
    narrowing: bool  # some values of the old type may not fit, or change

    @property
    def destructive(self) -> bool:  # type: ignore[override]
        return self.narrowing


@dataclass(frozen=True)
class SetNotNull(Step):
    schema: str
    table: str
    column: str
    not_null: bool


@dataclass(frozen=True)
class SetDefault(Step):
    schema: str
    table: str
    column: TargetColumn
    old: str | None  # the target's default, as PostgreSQL prints it


@dataclass(frozen=True)
class SetIdentity(Step):
    schema: str
    table: str
    column: str
    identity: bool


@dataclass(frozen=True)
class DropConstraint(Step):
    schema: str
    table: str
    name: str
    what: str  # "primary key", "unique", "foreign key"


@dataclass(frozen=True)
class DropIndex(Step):
    schema: str
    table: str
    name: str


@dataclass(frozen=True)
class SyncRows(Step):
    """Rows of an existing table brought up to date by key: inserts and updates (deletes follow,
    children first, in DeleteRows)."""

    schema: str
    table: TargetTable
    diff: RowDiff
    # Rollback keeps the rows this sync changes, as it finds them (KeepForRollback.changes_only).
    keep_changes: bool = False

    @property
    def rowids(self) -> tuple[tuple[int, int], ...] | None:
        """The rowid ranges the sync reads on both sides (None: the whole table): those the plan
        compared, the rows outside them being equal on both sides."""
        return self.diff.rowids

    @property
    def read_rowids(self) -> tuple[tuple[int, int], ...] | None:
        """The rowid ranges the sync reads on both sides (None: the whole table): the rows the plan
        found differing where it kept them, else all of `rowids`."""
        return self.diff.rowids if self.diff.differing is None else self.diff.differing


@dataclass(frozen=True)
class DeleteRows(Step):
    schema: str
    table: TargetTable
    count: int
    destructive = True


@dataclass(frozen=True)
class DropView(Step):
    """A view of the spec that is replaced: dropped before anything else changes (PostgreSQL
    refuses to drop or alter what a view reads), created again at the end; or, `removed`, a view
    an earlier apply created that the spec no longer names. No rows are lost: a view holds none."""

    schema: str
    name: str
    removed: bool = False


@dataclass(frozen=True)
class CreateView(Step):
    """A view of the spec, once every table holds its rows; `replaced`: it existed (DropView)."""

    schema: str
    view: TargetView
    replaced: bool = False


@dataclass(frozen=True)
class DropTrigger(Step):
    """A trigger of the spec that is replaced, or whose table's rows move: dropped before the rows
    move (a trigger never fires on what etl writes), created again at the end."""

    schema: str
    table: str
    name: str
    function: str


@dataclass(frozen=True)
class CreateTrigger(Step):
    """A trigger of the spec, once its table holds its rows; `replaced`: it existed (DropTrigger)."""

    schema: str
    trigger: TargetTrigger
    replaced: bool = False


@dataclass(frozen=True)
class VerifyStep(Step):
    """Counts and checksums of every table, source against target, before COMMIT."""

    schema: str


@dataclass(frozen=True)
class WritePrismaBaseline(Step):
    """Prisma's baseline for the switch to the postgresql provider (etl/core/prisma.py): the
    files of `files` (those missing or different) written into the migrations folder once the
    transaction commits, and 0_init's row in `_prisma_migrations` inserted or brought up to date
    inside it."""

    schema: str
    directory: str  # the Prisma project's migrations folder
    migration: str  # the text of 0_init/migration.sql
    files: tuple[str, ...]  # paths in `directory` to write: 0_init/migration.sql, migration_lock.toml
    record: str  # "insert" | "update" (another checksum) | "" (the row is there already)
    create_history: bool  # `_prisma_migrations` does not exist yet


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]
    schema: str
    checked: tuple[TargetTable, ...] = ()  # tables whose rows or columns change: verified by apply
    left_out: tuple[LeftOut, ...] = ()  # what of the source's schema the target does not get
    views: tuple[TargetView, ...] = ()  # the spec's views: apply compares their rows with the source's
    desired: DesiredRecord | None = None  # what apply records for the next plan
    # (table, time of the apply): rows not compared, unchanged on both sides since that apply
    skipped: tuple[tuple[str, str], ...] = ()
    # (table, changed ranges, all ranges, time of the apply): rows compared in those ranges only
    ranged: tuple[tuple[str, int, int, str], ...] = ()
    # (table, source rows, time of the latest apply that set one aside, sum of their hashes):
    # rows a check set aside at an earlier apply, left out of the row diff and of the sync until
    # their values change, and out of the source's side of verification
    set_aside: tuple[tuple[str, int, str, int], ...] = ()
    # The source file's stamp before the plan hashed its pages (TargetState.source_stamp; None:
    # it hashed none): apply commits a sync by ranges only while the source has it, and records
    # what the plan read of the pages (`source_pages`) only if it began under the same stamp.
    source_stamp: tuple | None = None
    source_pages: tuple[PagesRead, ...] = ()
    # Tables whose rows the plan compared in full and found equal, with no fingerprint a later
    # plan could skip them by (an apply without verification loaded them, or an older etl):
    # apply verifies and records them, so that while they stay unchanged they cost nothing again.
    unrecorded: tuple[TargetTable, ...] = ()
    # (table, "trigger" or "rule", name): made by someone else on a table whose rows the plan
    # writes; it fires on etl's writes and may change rows anywhere, so `checked` holds every
    # table apply verifies in full (also those the plan skipped or compared in ranges).
    foreign_triggers: tuple[tuple[str, str, str], ...] = ()
    # The same, on a table the plan drops and makes again (mode: replace): it goes with the table.
    dropped_triggers: tuple[tuple[str, str, str], ...] = ()
    # (table, why): existing tables the plan compares in full every time, their rows depending on
    # more than their own source rows (mapping.compared_every_time)
    compared_every_time: tuple[tuple[str, str], ...] = ()

    @property
    def destructive_steps(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.destructive)

    @property
    def tables(self) -> tuple[TargetTable, ...]:
        """The tables this plan loads, brings up to date or alters: the ones apply verifies."""
        listed = tuple(s.table for s in self.steps if isinstance(s, CreateTable | SyncRows))
        names = {t.name for t in listed}
        return (
            listed
            + tuple(t for t in self.checked if t.name not in names)
            + tuple(t for t in self.unrecorded if t.name not in names)
        )

    @property
    def has_changes(self) -> bool:
        return bool(self.steps)

    def has_work(self, verify: bool = True) -> bool:
        """Whether apply has anything to do: changes, or (verifying) tables to record."""
        return self.has_changes or (verify and bool(self.unrecorded))

    def summary(self) -> PlanSummary:
        created = {s.table.name for s in self.steps if isinstance(s, CreateTable)}
        replaced = {t for s in self.steps if isinstance(s, DropTables) for t in s.tables}
        dropped = {s.table for s in self.steps if isinstance(s, DropTable)}
        touched = {table_of(s) for s in self.steps} - {None} - created - dropped
        return PlanSummary(
            create=len(created - replaced),
            replace=len(replaced),
            change=len(touched),
            drop=len(dropped),
            insert=sum(s.table.source_rows or 0 for s in self.steps if isinstance(s, LoadRows))
            + sum(s.diff.insert for s in self.steps if isinstance(s, SyncRows)),
            update=sum(s.diff.update for s in self.steps if isinstance(s, SyncRows)),
            delete=sum(s.count for s in self.steps if isinstance(s, DeleteRows))
            + sum(s.rows for s in self.steps if isinstance(s, DropTables | DropTable)),
            create_views=sum(1 for s in self.steps if isinstance(s, CreateView) and not s.replaced),
            replace_views=sum(1 for s in self.steps if isinstance(s, CreateView) and s.replaced),
            drop_views=sum(1 for s in self.steps if isinstance(s, DropView) and s.removed),
        )


def table_of(step: Step) -> str | None:
    """The existing table a step changes, if any."""
    if isinstance(
        step,
        CreateSchema
        | CreateEnum
        | ReplaceEnum
        | FinishEnum
        | DropTables
        | VerifyStep
        | ResetSequence
        | KeepForRollback
        | DropView
        | CreateView
        | DropTrigger
        | CreateTrigger
        | WritePrismaBaseline,
    ):
        return None
    table = getattr(step, "table", None)
    return table if isinstance(table, str) or table is None else table.name


@dataclass(frozen=True)
class PlanSummary:
    create: int
    replace: int
    change: int
    drop: int
    insert: int
    update: int
    delete: int
    create_views: int = 0
    replace_views: int = 0
    drop_views: int = 0


# `etl rollback`'s plan: what each table goes back to, from what the last apply kept.


@dataclass(frozen=True)
class Restore:
    table: str
    kept_in: str | None  # the schema holding the copy; None: the apply created the table
    rows_then: int | None  # the rows it holds after the rollback (a whole copy: as before the apply)
    rows_now: int | None  # None: the table does not exist now
    foreign_keys: tuple[tuple[str, str], ...]  # (name, definition) the table held then
    enum_columns: tuple[tuple[str, str, str | None], ...]  # (column, enum type, default) kept as text
    sequences: tuple[tuple[str, int, bool], ...]  # (column, last_value, is_called) of its sequences then
    # (name, definition, function, function's definition or None) of its triggers then
    triggers: tuple[tuple[str, str, str, str | None], ...] = ()
    # The key columns of a copy holding only the rows the apply changed (KeepForRollback
    # changes_only), and how many rows it holds; None: the copy is the whole table.
    key: tuple[str, ...] | None = None
    changed: int = 0


@dataclass(frozen=True)
class RollbackPlan:
    schema: str
    run_started_at: str
    spec: str | None
    restores: tuple[Restore, ...]
    # The views the apply dropped or created, in the order it dropped them (readers first):
    # (name, definition before the apply; None: the apply created it).
    views: tuple[tuple[str, str | None], ...] = ()


# What `etl apply` did.


@dataclass
class ApplyResult:
    """What an apply did, as it goes: filled in by the executor, read by the explainer and the CLI."""

    rows: dict[str, int] = field(default_factory=dict)  # target table -> rows loaded
    changes: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # rows inserted, updated, deleted
    seconds: float = 0.0
    verified: bool = False
    rejects: list[dict] = field(default_factory=list)  # rows set aside by on_error: reject
    typed: tuple[str, ...] = ()  # source tables read through DuckDB's typed scan (etl/run/typedscan.py)
    run_id: int | None = None  # the run's row in the target's etl.runs
