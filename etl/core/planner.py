"""build_plan: the desired schema and rows against the target as it is -> ordered steps. Pure.

Order matters and is the executor's: foreign keys that change go first (nothing else can then
trip over them); tables replaced are dropped; existing tables are altered; rows are created,
inserted and updated parents first, deleted children first; NOT NULL, keys and indexes follow the
rows (cheaper to build once, and checked against the rows the table ends up with); foreign keys
last, when every table holds its rows.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import replace

from etl.core.mapping import DesiredSchema, TargetTable, compared_every_time, etl_trigger_function
from etl.core.plan import (
    CHANGE_COLUMN,
    AddCheck,
    AddColumn,
    AddForeignKey,
    AddPrimaryKey,
    AddUnique,
    AlterColumnType,
    ConvertColumn,
    CreateEnum,
    CreateIndex,
    CreateSchema,
    CreateTable,
    CreateTrigger,
    CreateView,
    DeleteRows,
    DropColumn,
    DropConstraint,
    DropIndex,
    DropTable,
    DropTables,
    DropTrigger,
    DropView,
    FinishEnum,
    KeepForRollback,
    LoadRows,
    Plan,
    ReplaceEnum,
    ResetSequence,
    RowDiff,
    SetDefault,
    SetIdentity,
    SetNotNull,
    Step,
    SyncRows,
    TargetState,
    table_of,
)
from etl.errors import PlanError
from etl.model import PgColumn, PgConstraint, PgTable, TargetCatalog
from etl.pgtypes import narrows
from etl.settings import ForeignKeyAction, Mode
from etl.sqlite.convert import loads_as_text

_WHAT = {"p": "primary key", "u": "unique", "f": "foreign key", "c": "check"}


def build_plan(mapping: DesiredSchema, target: TargetState) -> Plan:
    schema = mapping.schema
    existing = [t for t in mapping.tables if t.name in target.tables]
    if existing and (target.catalog is None or target.desired is None):
        raise PlanError("planning against existing tables needs the target's catalog")
    catalog = target.catalog or TargetCatalog(schema, target.schema_exists)
    desired = target.desired or TargetCatalog(schema, False)

    enum_steps = _enum_steps(mapping, target, catalog)
    rebuilt, kept = _rebuilt_or_kept(schema, existing, target, catalog, desired)
    rebuilt_names = {t.name for t in rebuilt}
    fresh = [t for t in mapping.tables if t.name not in target.tables or t.name in rebuilt_names]
    fresh_names = {t.name for t in fresh}

    first, alter, after, readd_fks = _steps_for_existing_tables(schema, kept, rebuilt_names)
    steps: list[Step] = []
    if not target.schema_exists:
        steps.append(CreateSchema(schema))
    # Foreign keys of tables that go, onto tables that stay, go first.
    removed = [name for name in target.removed if catalog.table(name) is not None]
    for name in removed:
        pg_table = catalog.table(name)
        assert pg_table is not None
        first += [
            DropConstraint(schema, name, c.name, "foreign key") for c in pg_table.constraints if c.kind == "f"
        ]
    steps += enum_steps + first
    steps += [DropTable(schema, name, target.removed[name]) for name in removed]
    if rebuilt:
        held = tuple(_target_rows(target.rows.get(t.name, RowDiff())) for t in rebuilt)
        steps.append(DropTables(schema, tuple(t.name for t in rebuilt), held))
    steps += alter

    kept_by_name = {t.name: t for t, _, _ in kept}
    steps += _row_steps(schema, mapping, target, fresh_names, kept_by_name)
    steps += [FinishEnum(s.schema, s.name, s.columns) for s in enum_steps if isinstance(s, ReplaceEnum)]
    steps += after
    steps += _key_steps(schema, fresh, kept)
    steps += readd_fks
    for table in mapping.tables:
        numbered = table.sequence_column
        if not numbered:
            continue
        if table.name in fresh_names or target.rows.get(table.name, RowDiff()).insert:
            serial = any(c.serial for c in table.columns if c.name == numbered)
            steps.append(ResetSequence(schema, table.name, numbered, table.sequence_floor, serial))
    # Rows a foreign key's ON DELETE/ON UPDATE action changes as the plan writes belong to tables
    # the plan may not otherwise touch (`cascaded`), and to written ones outside the rows their
    # sync reads: no sync stages them, so every table an action may reach (`acted_on`) is kept
    # whole for rollback and verified in full, like the tables the plan changes.
    acted_on = _acted_on_by_writes(catalog, steps)
    cascaded = acted_on - _rows_written(steps)
    drops, creates = _view_steps(mapping, target, catalog, desired, steps)
    trigger_drops, trigger_creates = _trigger_steps(mapping, catalog, desired, steps, fresh_names, acted_on)
    if mapping.retention > 0 and (steps or drops or creates):
        views = tuple(s.name for s in drops if isinstance(s, DropView))
        new_views = tuple(s.view.name for s in creates if isinstance(s, CreateView) and not s.replaced)
        steps = _with_keep(schema, steps, mapping.retention, cascaded, views, new_views, acted_on)
    head = sum(1 for s in steps[:2] if isinstance(s, CreateSchema | KeepForRollback))
    steps = [*steps[:head], *trigger_drops, *drops, *steps[head:], *creates, *trigger_creates]
    # Tables only altered are verified too (a type change rewrites every value), unless their
    # mode lets the target keep rows the source no longer has.
    altered = {t for t in (table_of(s) for s in alter + after) if t is not None} | acted_on
    foreign = _foreign_triggers(target.firing, (_rows_written(steps) - fresh_names) | acted_on)
    dropped = _foreign_triggers(target.firing, rebuilt_names)
    checked = tuple(
        t for t, _, _ in kept if (t.name in altered or foreign) and t.mode in (Mode.SYNC, Mode.REPLACE)
    )
    skipped = tuple(
        (t.name, target.skipped[t.name])
        for t in mapping.tables
        if t.name in target.skipped and t.name not in fresh_names
    )
    ranged = tuple(
        (t.name, *target.ranged[t.name])
        for t in mapping.tables
        if t.name in target.ranged and t.name not in fresh_names
    )
    loaded = {s.table.name for s in steps if isinstance(s, CreateTable | SyncRows)} | {
        t.name for t in checked
    }
    unrecorded = tuple(
        t
        for t in mapping.tables
        if t.name in target.unrecorded
        and t.name not in fresh_names
        and t.name not in loaded
        and t.mode in (Mode.SYNC, Mode.REPLACE)
    )
    set_aside = tuple(
        (t.name, d.set_aside_rows, d.set_aside_at, d.set_aside_sum)
        for t in mapping.tables
        if (d := target.rows.get(t.name)) is not None
        and d.set_aside_rows
        and d.set_aside_at is not None
        and t.name not in fresh_names
    )
    return Plan(
        steps=tuple(steps),
        schema=schema,
        checked=checked,
        left_out=mapping.left_out,
        views=mapping.views,
        desired=target.record,
        skipped=skipped,
        ranged=ranged,
        set_aside=set_aside,
        source_stamp=target.source_stamp,
        source_pages=target.source_pages,
        unrecorded=unrecorded,
        foreign_triggers=foreign,
        dropped_triggers=dropped,
        compared_every_time=tuple(
            (t.name, why)
            for t in mapping.tables
            if t.name not in fresh_names and (why := compared_every_time(t)) is not None
        ),
    )


# Steps after which a view reading the table must be created again: PostgreSQL refuses to drop or
# retype what a view reads, and a view keeps the columns `*` stood for when it was created.
_REDEFINING = (DropColumn, AlterColumnType, AddColumn, DropTable)


def _view_steps(
    mapping: DesiredSchema,
    target: TargetState,
    catalog: TargetCatalog,
    desired: TargetCatalog,
    steps: list[Step],
) -> tuple[list[Step], list[Step]]:
    """The spec's views that are dropped first (those whose definition changes, that read a table
    the plan redefines, or that read such a view), and those created at the end."""
    redefined: set[str] = set()
    for step in steps:
        if isinstance(step, DropTables):
            redefined |= set(step.tables)
        elif isinstance(step, ReplaceEnum | FinishEnum):
            redefined |= {t for t, _ in step.columns}
        elif isinstance(step, _REDEFINING):
            redefined.add(step.table)
    replaced: set[str] = set()
    for view in mapping.views:
        actual = catalog.view(view.name)
        if actual is None and view.name in target.tables:
            raise PlanError(
                f'"{mapping.schema}"."{view.name}" exists in the target but is not a view; drop or rename '
                "it, or leave the view out of the spec's views"
            )
        wanted = desired.view(view.name)
        if actual is not None and (
            wanted is None or wanted.definition != actual.definition or redefined & set(view.reads)
        ):
            replaced.add(view.name)
        # Views are in creation order: a view reading a replaced one follows it.
        if actual is not None and replaced & set(view.reads):
            replaced.add(view.name)
    drops: list[Step] = [
        DropView(mapping.schema, name, removed=True) for name in _removed_views(mapping, target)
    ]
    drops += [DropView(mapping.schema, v.name) for v in reversed(mapping.views) if v.name in replaced]
    creates: list[Step] = [
        CreateView(mapping.schema, v, v.name in replaced)
        for v in mapping.views
        if v.name in replaced or catalog.view(v.name) is None
    ]
    return drops, creates


def _trigger_steps(
    mapping: DesiredSchema,
    catalog: TargetCatalog,
    desired: TargetCatalog,
    steps: list[Step],
    fresh: set[str],
    cascaded: set[str],
) -> tuple[list[Step], list[Step]]:
    """The triggers dropped first and those created last: a new one; one whose definition
    changes; one on a table whose rows or columns this plan changes (a trigger never fires on
    what etl writes: it is dropped before and created again after); and etl's triggers the spec
    no longer has, dropped."""
    touched = {t for t in (table_of(s) for s in steps) if t is not None} | cascaded
    drops: list[Step] = []
    creates: list[Step] = []
    for trigger in mapping.triggers:
        if trigger.table in fresh:
            creates.append(CreateTrigger(mapping.schema, trigger))
            continue
        actual = catalog.trigger(trigger.table, trigger.name)
        wanted = desired.trigger(trigger.table, trigger.name)
        if actual is None:
            creates.append(CreateTrigger(mapping.schema, trigger))
        elif wanted is None or wanted.definition != actual.definition or trigger.table in touched:
            drops.append(DropTrigger(mapping.schema, trigger.table, trigger.name, trigger.function))
            creates.append(CreateTrigger(mapping.schema, trigger, replaced=True))
    wanted_names = {(t.table, t.name) for t in mapping.triggers}
    tables = {t.name for t in mapping.tables} - fresh
    for found in catalog.triggers:
        # Only etl's own: a trigger someone else made on a table etl loads is theirs to drop.
        function = etl_trigger_function(found.name)
        ours = f"EXECUTE FUNCTION {function}()" in found.definition
        if found.table in tables and (found.table, found.name) not in wanted_names and ours:
            drops.append(DropTrigger(mapping.schema, found.table, found.name, function))
    return drops, creates


def _rows_written(steps: list[Step]) -> set[str]:
    """The tables whose rows the plan's steps insert, update or delete."""
    return {s.table.name for s in steps if isinstance(s, LoadRows | SyncRows | DeleteRows)}


def _foreign_triggers(
    firing: tuple[tuple[str, str, str, str], ...], tables: set[str]
) -> tuple[tuple[str, str, str], ...]:
    """(table, "trigger" or "rule", name) of each trigger and rule etl did not make on one of
    `tables`. On a table whose rows the plan writes, it fires on etl's writes (etl's own are
    dropped before and made again after) and may change rows of any table, also of one the plan
    compared only in part or not at all: apply then verifies every table in full. On a table the
    plan drops and makes again (mode: replace), it goes with the table."""
    return tuple(
        (table, kind, name)
        for table, kind, name, function in firing
        if table in tables and not (kind == "trigger" and function == etl_trigger_function(name))
    )


def _removed_views(mapping: DesiredSchema, target: TargetState) -> list[str]:
    """The views earlier applies created that the spec no longer names, readers first. A view that
    stays (the spec's, or one etl did not create) and reads one of them is an error: dropping
    would take it along, or PostgreSQL would refuse."""
    removed = target.removed_views
    problems = []
    for name, readers in removed.items():
        staying = [r for r in readers if r not in removed]
        staying += [v.name for v in mapping.views if name in v.reads and v.name not in staying]
        for reader in staying:
            whose = "the spec's view" if any(v.name == reader for v in mapping.views) else "view"
            problems.append(
                f'{whose} "{mapping.schema}"."{reader}" reads view "{name}", which the spec no longer names: '
                f'keep "{name}" under views:, or leave "{reader}" out too'
            )
    if problems:
        raise PlanError("; ".join(problems))
    return _readers_first(removed)


def _readers_first(removed: Mapping[str, tuple[str, ...]]) -> list[str]:
    """The views of `removed` (name -> the views reading it), each after every view reading it."""
    ordered: list[str] = []
    placing: set[str] = set()

    def place(name: str) -> None:
        if name in ordered or name in placing:
            return
        placing.add(name)
        for reader in removed[name]:
            if reader in removed:
                place(reader)
        ordered.append(name)

    for name in sorted(removed):
        place(name)
    return ordered


def _enum_steps(mapping: DesiredSchema, target: TargetState, catalog: TargetCatalog) -> list[Step]:
    """The spec's enums the target lacks, and those whose labels changed."""
    schema = mapping.schema
    enum_steps: list[Step] = []
    found_enums = dict(catalog.enums)
    for name, labels in mapping.enums:
        if name not in found_enums and name not in target.enums:
            enum_steps.append(CreateEnum(schema, name, labels))
        elif name in found_enums and found_enums[name] != labels:
            enum_steps.append(
                ReplaceEnum(schema, name, labels, found_enums[name], _enum_users(mapping, catalog, name))
            )
    return enum_steps


def _rebuilt_or_kept(
    schema: str,
    existing: list[TargetTable],
    target: TargetState,
    catalog: TargetCatalog,
    desired: TargetCatalog,
) -> tuple[list[TargetTable], list[tuple[TargetTable, PgTable, PgTable]]]:
    """The existing tables dropped and created again (mode: replace, when their rows or their
    definition changed), and the others, kept with their actual and wanted definitions."""
    rebuilt: list[TargetTable] = []
    kept: list[tuple[TargetTable, PgTable, PgTable]] = []
    for table in existing:
        actual = catalog.table(table.name)
        wanted = desired.table(table.name)
        if actual is None or wanted is None:
            raise PlanError(
                f'"{schema}"."{table.name}" exists in the target but is not a table (a view?); '
                "drop or rename it, or give the table another name in the spec"
            )
        diff = target.rows.get(table.name, RowDiff())
        if table.mode == Mode.REPLACE and (diff.changes or _differs(wanted, actual)):
            rebuilt.append(table)
        else:
            kept.append((table, actual, wanted))
    return rebuilt, kept


def _steps_for_existing_tables(
    schema: str, kept: list[tuple[TargetTable, PgTable, PgTable]], rebuilt_names: set[str]
) -> tuple[list[Step], list[Step], list[Step], list[Step]]:
    """The kept tables' changes: foreign keys dropped first, changes before their rows, changes
    after their rows, and foreign keys onto rebuilt tables added again at the end."""
    first: list[Step] = []  # foreign keys dropped
    alter: list[Step] = []  # existing tables, before their rows
    after: list[Step] = []  # existing tables, after their rows
    readd_fks: list[Step] = []
    for table, actual, wanted in kept:
        first += [
            DropConstraint(schema, table.name, c.name, "foreign key")
            for c in _constraint_changes(actual, wanted, "f")
        ]
        # A foreign key onto a table that is dropped and created again goes with it, and returns.
        for fk in table.foreign_keys:
            dropped = any(isinstance(s, DropConstraint) and s.name == fk.name for s in first)
            if fk.ref_table in rebuilt_names and _constraint(actual, fk.name) is not None and not dropped:
                first.append(DropConstraint(schema, table.name, fk.name, "foreign key"))
                readd_fks.append(AddForeignKey(schema, table.name, fk))
        a, b = _table_changes(schema, table, actual, wanted)
        alter += a
        after += b
    return first, alter, after, readd_fks


def _row_steps(
    schema: str,
    mapping: DesiredSchema,
    target: TargetState,
    fresh_names: set[str],
    kept_by_name: dict[str, TargetTable],
) -> list[Step]:
    """New tables created and loaded, kept tables' rows inserted and updated parents first, and
    deleted children first."""
    steps: list[Step] = []
    # Every new table before the first rows: DuckDB reads the target's catalog again after DDL,
    # once for all of them rather than once per table, a cost that grows with the schema.
    steps += [CreateTable(schema, table) for table in mapping.tables if table.name in fresh_names]
    for table in mapping.tables:
        if table.name in fresh_names:
            steps.append(LoadRows(schema, table))
            steps.extend(
                ConvertColumn(schema, table.name, c) for c in table.columns if loads_as_text(c.pg_type)
            )
        elif table.name in kept_by_name:
            diff = target.rows.get(table.name, RowDiff())
            if diff.insert or diff.update or diff.delete:
                steps.append(SyncRows(schema, table, diff))
    for table in reversed(mapping.tables):
        diff = target.rows.get(table.name, RowDiff())
        if table.name in kept_by_name and diff.delete:
            steps.append(DeleteRows(schema, table, diff.delete))
    return steps


def _key_steps(
    schema: str, fresh: list[TargetTable], kept: list[tuple[TargetTable, PgTable, PgTable]]
) -> list[Step]:
    """The new tables' keys and indexes, then their foreign keys, then the kept tables' changed
    foreign keys."""
    steps: list[Step] = []
    # Keys, indexes and foreign keys after the rows: building them once is faster than
    # maintaining them row by row, and foreign keys on cycles need every table loaded first.
    for table in fresh:
        if table.primary_key:
            steps.append(AddPrimaryKey(schema, table))
        steps.extend(AddUnique(schema, table.name, u) for u in table.uniques)
        steps.extend(CreateIndex(schema, table.name, ix) for ix in table.indexes)
        steps.extend(AddCheck(schema, table.name, c, table.primary_key) for c in table.checks)
    for table in fresh:
        steps.extend(AddForeignKey(schema, table.name, fk) for fk in table.foreign_keys)
    for table, actual, wanted in kept:
        steps.extend(
            AddForeignKey(schema, table.name, fk)
            for fk in table.foreign_keys
            if any(c.name == fk.name for c in _constraint_changes(wanted, actual, "f"))
        )
    return steps


def _acted_on_by_writes(catalog: TargetCatalog, steps: list[Step]) -> set[str]:
    """Tables, written ones included, whose rows a foreign key's action may change as the plan's
    rows are written: an ON DELETE action onto a table it deletes rows of; an ON UPDATE action
    onto a table it updates rows of, unless the key references that table's primary key (a sync
    matches rows by it, so it never changes a key's values); and onward, any action onto a table
    so reached."""
    deleted = {s.table.name for s in steps if isinstance(s, SyncRows) and s.diff.delete} | {
        s.table.name for s in steps if isinstance(s, DeleteRows)
    }
    updated = {s.table.name for s in steps if isinstance(s, SyncRows) and s.diff.update}
    reached = {
        table.name
        for table in catalog.tables
        for c in table.constraints
        if c.kind == "f"
        and (
            (c.ref_table in deleted and _acts(c.on_delete))
            or (c.ref_table in updated and _acts(c.on_update) and not _onto_primary_key(catalog, c))
        )
    }
    frontier = set(reached)
    while frontier:
        frontier = _holding_key_actions_onto(catalog, frontier) - reached
        reached |= frontier
    return reached


def _onto_primary_key(catalog: TargetCatalog, key: PgConstraint) -> bool:
    """Whether the foreign key references its table's primary key."""
    referenced = catalog.table(key.ref_table) if key.ref_table is not None else None
    return referenced is not None and any(
        c.kind == "p" and set(c.columns) == set(key.ref_columns) for c in referenced.constraints
    )


def _holding_key_actions_onto(catalog: TargetCatalog, tables: set[str]) -> set[str]:
    """Tables of the target holding a foreign key onto one of `tables` whose ON DELETE or ON
    UPDATE action changes rows (one of `tables` itself, for a key onto itself)."""
    return {
        table.name
        for table in catalog.tables
        for c in table.constraints
        if c.kind == "f"
        and c.ref_table in tables
        and any(_acts(action) for action in (c.on_delete, c.on_update))
    }


def _acts(action: str | None) -> bool:
    return action is not None and action.upper() not in (
        ForeignKeyAction.NO_ACTION,
        ForeignKeyAction.RESTRICT,
    )


def _with_keep(
    schema: str,
    steps: list[Step],
    retention: int,
    cascaded: set[str],
    views: tuple[str, ...] = (),
    new_views: tuple[str, ...] = (),
    acted_on: Collection[str] = (),
) -> list[Step]:
    """The plan preceded by what it keeps for etl rollback: the existing tables it changes (also
    through foreign-key actions), the names of those it creates, and the views it drops (with
    their definitions) or creates. A table only synced is kept by its changes, unless a key's
    action may change its rows too (`acted_on`)."""
    replaced = {t for s in steps if isinstance(s, DropTables) for t in s.tables}
    created = [s.table.name for s in steps if isinstance(s, CreateTable) and s.table.name not in replaced]
    new = set(created)
    kept: dict[str, None] = {}  # in the order of the steps
    for step in steps:
        for name in _tables_changed(step):
            if name not in new:
                kept[name] = None
    kept.update(dict.fromkeys(sorted(cascaded - set(kept) - new)))
    changes_only = _kept_by_changes(steps, set(kept) - cascaded - set(acted_on))
    steps = [
        replace(s, keep_changes=True) if isinstance(s, SyncRows) and s.table.name in changes_only else s
        for s in steps
    ]
    keep = KeepForRollback(
        schema,
        tuple(kept),
        tuple(created),
        retention,
        views,
        new_views,
        tuple((name, changes_only[name]) for name in kept if name in changes_only),
    )
    head = 1 if steps and isinstance(steps[0], CreateSchema) else 0
    return [*steps[:head], keep, *steps[head:]]


def _tables_changed(step: Step) -> list[str]:
    """The existing tables a step changes: table_of's, all those a DropTables drops, and the
    tables whose columns a ReplaceEnum retypes."""
    if isinstance(step, DropTables):
        return list(step.tables)
    if isinstance(step, ReplaceEnum):
        return [t for t, _ in step.columns]
    name = table_of(step)
    return [] if name is None else [name]


def _kept_by_changes(steps: list[Step], candidates: set[str]) -> dict[str, tuple[str, ...]]:
    """The tables of `candidates` whose rows only a sync changes (no other step names them), with
    their key columns: a keyed table whose sync stages every row it changes by key, so rollback
    needs only those rows' old versions. A table with a column named like the copy's own keeps
    a whole copy."""
    synced: dict[str, tuple[str, ...]] = {}
    others: set[str] = set()
    for step in steps:
        if isinstance(step, SyncRows):
            table = step.table
            if table.primary_key and all(c.name != CHANGE_COLUMN for c in table.columns):
                synced[table.name] = tuple(table.primary_key)
            else:
                others.add(table.name)
        elif not isinstance(step, DeleteRows):
            others.update(_tables_changed(step))
    return {name: key for name, key in synced.items() if name in candidates and name not in others}


def _enum_users(mapping: DesiredSchema, catalog: TargetCatalog, name: str) -> tuple:
    """The target's columns of enum type `name`, as the spec defines them (their defaults are set
    again once the new type is in place)."""
    users = []
    for pg_table in catalog.tables:
        for pg_column in pg_table.columns:
            if pg_column.enum != name:
                continue
            table = next((t for t in mapping.tables if t.name == pg_table.name), None)
            column = next((c for c in table.columns if c.name == pg_column.name), None) if table else None
            if column is None or column.pg_type.kind != "enum" or column.pg_type.name != name:
                raise PlanError(
                    f'enum type "{mapping.schema}"."{name}" changes its labels, but column '
                    f'"{pg_table.name}"."{pg_column.name}" uses it and the spec does not give that column '
                    "this type: convert or drop the column first"
                )
            users.append((pg_table.name, column))
    return tuple(users)


def _target_rows(diff: RowDiff) -> int:
    """Rows the target's table holds, as the diff counted them."""
    return diff.delete + diff.update + diff.unchanged


def _constraint(table: PgTable, name: str) -> PgConstraint | None:
    return next((c for c in table.constraints if c.name == name), None)


def _constraint_changes(have: PgTable, want: PgTable, kind: str) -> list[PgConstraint]:
    """Constraints of `have` (of one kind) that `want` lacks or defines differently."""
    return [c for c in have.constraints if c.kind == kind and _constraint(want, c.name) != c]


def _differs(wanted: PgTable, actual: PgTable) -> bool:
    return (
        {c.name: _column_key(c) for c in wanted.columns} != {c.name: _column_key(c) for c in actual.columns}
        or set(wanted.constraints) != set(actual.constraints)
        or set(wanted.indexes) != set(actual.indexes)
    )


def _column_key(c: PgColumn) -> tuple:
    return (c.enum or c.type, c.nullable, c.default, c.identity, c.generated)


def _same_type(wanted: PgColumn, actual: PgColumn) -> bool:
    if wanted.enum or actual.enum:
        return wanted.enum == actual.enum
    return wanted.type == actual.type


def _table_changes(
    schema: str, table: TargetTable, actual: PgTable, wanted: PgTable
) -> tuple[list[Step], list[Step]]:
    """Steps altering an existing table: those before its rows move, and those after."""
    name = table.name
    before: list[Step] = []
    after: list[Step] = []
    for c in (
        _constraint_changes(actual, wanted, "p")
        + _constraint_changes(actual, wanted, "u")
        + _constraint_changes(actual, wanted, "c")
    ):
        before.append(DropConstraint(schema, name, c.name, _WHAT[c.kind]))
    wanted_indexes = set(wanted.indexes)
    before += [DropIndex(schema, name, ix.name) for ix in actual.indexes if ix not in wanted_indexes]
    wanted_names = {c.name for c in wanted.columns}
    before += [DropColumn(schema, name, c.name) for c in actual.columns if c.name not in wanted_names]
    for column in (*table.columns, table.search) if table.search is not None else table.columns:
        want = wanted.column(column.name)
        have = actual.column(column.name)
        assert want is not None  # the scratch schema was made from this very table
        if have is not None and column is table.search and _column_key(have) != _column_key(want):
            # A search column over other columns or another configuration is computed again;
            # its GIN index goes with it, and is built again.
            before.append(DropColumn(schema, name, column.name))
            after += [CreateIndex(schema, name, ix) for ix in table.indexes if ix.method == "gin"]
            have = None
        if have is not None and have.generated != want.generated:
            # A plain column cannot become generated, nor the reverse (PostgreSQL 15): it goes and
            # comes back, its values computed by PostgreSQL or loaded with the rows.
            before.append(DropColumn(schema, name, column.name))
            have = None
        if have is None:
            before.append(AddColumn(schema, name, column))
            if not column.nullable and not column.identity:
                after.append(SetNotNull(schema, name, column.name, True))
            continue
        if have.identity and not want.identity:
            before.append(SetIdentity(schema, name, column.name, False))
        if not _same_type(want, have):
            # A narrowing waits for the rows: those the sync deletes or rewrites may not fit the
            # new type. The sync writes into the old type meanwhile.
            narrowing = narrows(have.type, column.pg_type)
            (after if narrowing else before).append(
                AlterColumnType(schema, name, column, have.type, narrowing)
            )
        if have.default != want.default:
            before.append(SetDefault(schema, name, column, have.default))
        if want.nullable and not have.nullable:
            before.append(SetNotNull(schema, name, column.name, False))
        if not want.nullable and have.nullable and not want.identity:
            after.append(SetNotNull(schema, name, column.name, True))
        if want.identity and not have.identity:
            after.append(SetIdentity(schema, name, column.name, True))
    if _constraint_changes(wanted, actual, "p"):
        after.append(AddPrimaryKey(schema, table))
    for c in _constraint_changes(wanted, actual, "u"):
        unique = next(u for u in table.uniques if u.name == c.name)
        after.append(AddUnique(schema, name, unique))
    for c in _constraint_changes(wanted, actual, "c"):
        check = next(k for k in table.checks if k.name == c.name)
        after.append(AddCheck(schema, name, check, table.primary_key))
    actual_indexes = set(actual.indexes)
    for ix in wanted.indexes:
        if ix not in actual_indexes and not any(
            isinstance(s, CreateIndex) and s.index.name == ix.name for s in after
        ):
            after.append(CreateIndex(schema, name, next(i for i in table.indexes if i.name == ix.name)))
    return before, after
