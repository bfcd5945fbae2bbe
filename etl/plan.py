"""A plan: ordered, immutable steps. `etl plan` explains them, `etl apply` executes exactly them."""

from __future__ import annotations

from dataclasses import dataclass

from .mapping import TargetColumn, TargetForeignKey, TargetIndex, TargetTable, TargetUnique


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
    destructive = True

    def describe(self) -> str:
        names = ", ".join(f'"{self.schema}"."{t}"' for t in self.tables)
        return f"- tables {names} (exist in the target; dropped and created again)"


@dataclass(frozen=True)
class DropEnum(Step):
    schema: str
    name: str
    destructive = True

    def describe(self) -> str:
        return f'- enum type "{self.schema}"."{self.name}" (exists in the target; dropped and created again)'


@dataclass(frozen=True)
class CreateEnum(Step):
    schema: str
    name: str
    labels: tuple[str, ...]

    def describe(self) -> str:
        return f'+ enum type "{self.schema}"."{self.name}" ({", ".join(self.labels)})'


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
class VerifyStep(Step):
    """Counts and checksums of every table, source against target, before COMMIT."""

    schema: str

    def describe(self) -> str:
        return "  verify every table against the source (counts and checksums)"


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]
    schema: str

    @property
    def destructive_steps(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.destructive)

    @property
    def tables(self) -> tuple[TargetTable, ...]:
        return tuple(s.table for s in self.steps if isinstance(s, CreateTable))
