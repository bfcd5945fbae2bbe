"""build_plan: the desired schema and the target as it is -> ordered steps. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from .convert import loads_as_text
from .mapping import Mapping
from .plan import (
    AddForeignKey,
    AddPrimaryKey,
    AddUnique,
    ConvertColumn,
    CreateEnum,
    CreateIndex,
    CreateSchema,
    CreateTable,
    DropEnum,
    DropTables,
    LoadRows,
    Plan,
    ResetSequence,
    Step,
)


@dataclass(frozen=True)
class TargetState:
    """What the planner needs to know about the target: which schema and tables exist."""

    schema_exists: bool
    tables: frozenset[str] = frozenset()
    enums: frozenset[str] = frozenset()  # enum types in the schema


def build_plan(mapping: Mapping, target: TargetState) -> Plan:
    schema = mapping.schema
    steps: list[Step] = []
    if not target.schema_exists:
        steps.append(CreateSchema(schema))
    existing = tuple(t.name for t in mapping.tables if t.name in target.tables)
    if existing:
        steps.append(DropTables(schema, existing))
    for name, labels in mapping.enums:
        if name in target.enums:
            steps.append(DropEnum(schema, name))
        steps.append(CreateEnum(schema, name, labels))
    for table in mapping.tables:
        steps.append(CreateTable(schema, table))
        steps.append(LoadRows(schema, table))
        steps.extend(ConvertColumn(schema, table.name, c) for c in table.columns if loads_as_text(c.pg_type))
    # Keys, indexes and foreign keys after the rows: building them once is faster than
    # maintaining them row by row, and foreign keys on cycles need every table loaded first.
    for table in mapping.tables:
        if table.primary_key:
            steps.append(AddPrimaryKey(schema, table))
        steps.extend(AddUnique(schema, table.name, u) for u in table.uniques)
        steps.extend(CreateIndex(schema, table.name, ix) for ix in table.indexes)
    for table in mapping.tables:
        steps.extend(AddForeignKey(schema, table.name, fk) for fk in table.foreign_keys)
    for table in mapping.tables:
        identity = table.identity_column
        if identity:
            steps.append(ResetSequence(schema, table.name, identity, table.sequence_floor))
    return Plan(steps=tuple(steps), schema=schema)
