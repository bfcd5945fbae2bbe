"""A plan: ordered, immutable steps. `etl plan` explains them, `etl apply` executes exactly them."""

from __future__ import annotations

from collections.abc import Mapping as MappingType
from dataclasses import dataclass, field

from .mapping import TargetColumn, TargetForeignKey, TargetIndex, TargetTable, TargetUnique
from .settings import Mode
from .target_catalog import TargetCatalog


@dataclass(frozen=True)
class RowChange:
    op: str  # "insert" | "update" | "delete"
    key: str  # e.g. "id=5"; "" for a table without a key
    columns: tuple[str, ...] = ()  # the columns an update changes


@dataclass(frozen=True)
class RowDiff:
    insert: int = 0
    update: int = 0
    delete: int = 0
    unchanged: int = 0  # with mode: append, the rows at or before the watermark (not compared)
    samples: tuple[RowChange, ...] = ()
    watermark: str | None = None  # mode: append: the largest value the target holds

    @property
    def changes(self) -> int:
        return self.insert + self.update + self.delete

    def counts(self) -> tuple[int, int, int]:
        return self.insert, self.update, self.delete


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
    rows: MappingType[str, RowDiff] = field(default_factory=dict)
    # Tables earlier applies created in this schema that the spec no longer names: rows they hold.
    removed: MappingType[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    destructive = False

    def describe(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class CreateSchema(Step):
    schema: str

    def describe(self) -> str:
        return f'+ schema "{self.schema}"'


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

    def describe(self) -> str:
        names = ", ".join(f'"{self.schema}"."{t}"' for t in self.tables)
        held = f"; {self.rows:,} rows" if self.rows else ""
        return f"- tables {names} (mode: replace; dropped and created again{held})"


@dataclass(frozen=True)
class CreateEnum(Step):
    schema: str
    name: str
    labels: tuple[str, ...]

    def describe(self) -> str:
        return f'+ enum type "{self.schema}"."{self.name}" ({", ".join(self.labels)})'


@dataclass(frozen=True)
class KeepForRollback(Step):
    """Before anything changes: a copy of each existing table the plan changes, and a note of the
    tables it creates, so that `etl rollback` can restore them (kept for `retention` applies)."""

    schema: str
    kept: tuple[str, ...]
    created: tuple[str, ...]
    retention: int

    def describe(self) -> str:
        if not self.kept:
            return "  record the tables this apply creates, for etl rollback"
        names = ", ".join(f'"{t}"' for t in self.kept)
        return f"  keep a copy of {names} for etl rollback (rollback.retention: {self.retention})"


@dataclass(frozen=True)
class DropTable(Step):
    """A table an earlier apply created that the spec no longer names."""

    schema: str
    table: str
    rows: int
    destructive = True

    def describe(self) -> str:
        return (
            f'- table "{self.schema}"."{self.table}" (no longer in the spec; its {self.rows:,} rows are lost)'
        )


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

    def describe(self) -> str:
        added = [label for label in self.labels if label not in self.old_labels]
        gone = [label for label in self.old_labels if label not in self.labels]
        change = "; ".join(
            part
            for part in (
                f"+ {', '.join(added)}" if added else "",
                f"- {', '.join(gone)} (fails if a row uses it)" if gone else "",
                "labels reordered" if not added and not gone else "",
            )
            if part
        )
        return f'~ enum type "{self.schema}"."{self.name}" ({", ".join(self.labels)}): {change}'


@dataclass(frozen=True)
class FinishEnum(Step):
    """After the rows moved: the columns of a replaced enum type take the new type, the old goes."""

    schema: str
    name: str
    columns: tuple[tuple[str, TargetColumn], ...]

    def describe(self) -> str:
        used = ", ".join(f'"{t}"."{c.name}"' for t, c in self.columns) or "no columns"
        return f'  {used} take the new enum type "{self.name}"; the old one is dropped'


@dataclass(frozen=True)
class CreateTable(Step):
    schema: str
    table: TargetTable

    def describe(self) -> str:
        return f'+ table "{self.schema}"."{self.table.name}" ({len(self.table.columns)} columns) from "{self.table.source}"'


@dataclass(frozen=True)
class LoadRows(Step):
    schema: str
    table: TargetTable

    def describe(self) -> str:
        where = f" where {self.table.where}" if self.table.where else ""
        rows = f"{self.table.source_rows:,} rows" if self.table.source_rows is not None else "rows"
        return f'  load {rows} from "{self.table.source}"{where} -> "{self.schema}"."{self.table.name}"'


@dataclass(frozen=True)
class ConvertColumn(Step):
    """A column DuckDB cannot write exactly is loaded as text and converted by PostgreSQL."""

    schema: str
    table: str
    column: TargetColumn

    def describe(self) -> str:
        return f'  convert "{self.table}"."{self.column.name}" to {self.column.pg_type.sql()} in PostgreSQL'


@dataclass(frozen=True)
class AddPrimaryKey(Step):
    schema: str
    table: TargetTable

    def describe(self) -> str:
        return f'+ primary key "{self.table.primary_key_name}" ({", ".join(self.table.primary_key)})'


@dataclass(frozen=True)
class AddUnique(Step):
    schema: str
    table: str
    unique: TargetUnique

    def describe(self) -> str:
        return f'+ unique "{self.unique.name}" on "{self.table}" ({", ".join(self.unique.columns)})'


@dataclass(frozen=True)
class CreateIndex(Step):
    schema: str
    table: str
    index: TargetIndex

    def describe(self) -> str:
        kind = "unique index" if self.index.unique else "index"
        partial = " (partial)" if self.index.where is not None else ""
        return f'+ {kind} "{self.index.name}" on "{self.table}"{partial}'


@dataclass(frozen=True)
class AddForeignKey(Step):
    schema: str
    table: str
    foreign_key: TargetForeignKey

    def describe(self) -> str:
        fk = self.foreign_key
        return (
            f'+ foreign key "{fk.name}" "{self.table}" ({", ".join(fk.columns)}) -> '
            f'"{fk.ref_table}" ({", ".join(fk.ref_columns)}) on delete {fk.on_delete.lower()}, on update {fk.on_update.lower()}'
        )


@dataclass(frozen=True)
class ResetSequence(Step):
    """The identity continues past the largest id (and past SQLite's AUTOINCREMENT counter)."""

    schema: str
    table: str
    column: str
    floor: int | None

    def describe(self) -> str:
        return f'  identity "{self.table}"."{self.column}" continues after the largest id'


@dataclass(frozen=True)
class AddColumn(Step):
    """A column the spec has and the target's table lacks; NOT NULL follows once rows are in."""

    schema: str
    table: str
    column: TargetColumn

    def describe(self) -> str:
        default = f" default {self.column.default.as_string(None)}" if self.column.default is not None else ""
        return f'+ column "{self.table}"."{self.column.name}" {self.column.pg_type.sql()}{default}'


@dataclass(frozen=True)
class DropColumn(Step):
    schema: str
    table: str
    column: str
    destructive = True

    def describe(self) -> str:
        return f'- column "{self.table}"."{self.column}" (not in the spec; its values are lost)'


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

    def describe(self) -> str:
        why = " (narrowing: values may change or not fit)" if self.narrowing else ""
        return f'~ column "{self.table}"."{self.column.name}" type {self.old_type} -> {self.column.pg_type.sql()}{why}'


@dataclass(frozen=True)
class SetNotNull(Step):
    schema: str
    table: str
    column: str
    not_null: bool

    def describe(self) -> str:
        if self.not_null:
            return (
                f'~ column "{self.table}"."{self.column}" NOT NULL (checked against the rows the table holds)'
            )
        return f'~ column "{self.table}"."{self.column}" allows NULL'


@dataclass(frozen=True)
class SetDefault(Step):
    schema: str
    table: str
    column: TargetColumn
    old: str | None  # the target's default, as PostgreSQL prints it

    def describe(self) -> str:
        if self.column.default is None:
            return f'~ column "{self.table}"."{self.column.name}" drop default {self.old}'
        return f'~ column "{self.table}"."{self.column.name}" default {self.old or "none"} -> {self.column.default.as_string(None)}'


@dataclass(frozen=True)
class SetIdentity(Step):
    schema: str
    table: str
    column: str
    identity: bool

    def describe(self) -> str:
        if self.identity:
            return f'~ column "{self.table}"."{self.column}" generated by default as identity'
        return f'~ column "{self.table}"."{self.column}" no longer an identity'


@dataclass(frozen=True)
class DropConstraint(Step):
    schema: str
    table: str
    name: str
    what: str  # "primary key", "unique", "foreign key"

    def describe(self) -> str:
        return f'- {self.what} "{self.name}" on "{self.table}"'


@dataclass(frozen=True)
class DropIndex(Step):
    schema: str
    table: str
    name: str

    def describe(self) -> str:
        return f'- index "{self.name}" on "{self.table}"'


@dataclass(frozen=True)
class SyncRows(Step):
    """Rows of an existing table brought up to date by key: inserts and updates (deletes follow,
    children first, in DeleteRows)."""

    schema: str
    table: TargetTable
    diff: RowDiff

    def describe(self) -> str:
        d = self.diff
        where = f" where {self.table.where}" if self.table.where else ""
        if self.table.mode == Mode.APPEND:
            mark = (
                f" ({self.table.watermark} >= {d.watermark}, not in the target)"
                if d.watermark is not None
                else ""
            )
            return (
                f'~ rows "{self.table.name}": {d.insert:,} to insert{mark} from "{self.table.source}"{where}'
            )
        return (
            f'~ rows "{self.table.name}": {d.insert:,} to insert, {d.update:,} to update, '
            f'{d.unchanged:,} unchanged ({self.table.mode} {_key(self.table)}) from "{self.table.source}"{where}'
        )


@dataclass(frozen=True)
class DeleteRows(Step):
    schema: str
    table: TargetTable
    count: int
    destructive = True

    def describe(self) -> str:
        return f'- rows "{self.table.name}": {self.count:,} to delete (gone from "{self.table.source}")'


def _key(table: TargetTable) -> str:
    return (
        f"by {', '.join(table.primary_key)}" if table.primary_key else "no primary key: whole rows compared"
    )


@dataclass(frozen=True)
class VerifyStep(Step):
    """Counts and checksums of every table, source against target, before COMMIT."""

    schema: str

    def describe(self) -> str:
        return "  verify every table against the source (counts and checksums)"


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]
    schema: str
    checked: tuple[TargetTable, ...] = ()  # tables whose rows or columns change: verified by apply

    @property
    def destructive_steps(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.destructive)

    @property
    def tables(self) -> tuple[TargetTable, ...]:
        """The tables this plan loads, brings up to date or alters: the ones apply verifies."""
        listed = tuple(s.table for s in self.steps if isinstance(s, CreateTable | SyncRows))
        names = {t.name for t in listed}
        return listed + tuple(t for t in self.checked if t.name not in names)

    @property
    def has_changes(self) -> bool:
        return bool(self.steps)

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
        | KeepForRollback,
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

    def line(self) -> str:
        if not any(
            (self.create, self.replace, self.change, self.drop, self.insert, self.update, self.delete)
        ):
            return "No changes. The target matches the spec."
        tables = [f"{self.create} {'table' if self.create == 1 else 'tables'} to create"]
        if self.replace:
            tables.append(f"{self.replace} to replace")
        tables.append(f"{self.change} to change")
        if self.drop:
            tables.append(f"{self.drop} to drop")
        rows = f"{self.insert:,} to insert, {self.update:,} to update, {self.delete:,} to delete"
        return f"Plan: {', '.join(tables)}; rows: {rows}."
