"""A plan in words (what `etl plan` prints) and as a JSON document (`etl plan --json`,
described by schemas/etl-plan.schema.json). Every step's wording lives here, one function per
step kind: a plan step carries data, never its own display text. Pure: the CLI prints."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import singledispatch

from etl.core.ledger import LedgerEntry, Outcome, ledger_counts
from etl.core.mapping import LeftOut
from etl.core.plan import (
    AddCheck,
    AddColumn,
    AddForeignKey,
    AddPrimaryKey,
    AddUnique,
    AlterColumnType,
    ApplyResult,
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
    PlanSummary,
    ReplaceEnum,
    ResetSequence,
    RollbackPlan,
    SetDefault,
    SetIdentity,
    SetNotNull,
    Step,
    SyncRows,
    TargetTable,
    VerifyStep,
    WritePrismaBaseline,
)
from etl.settings import Mode

PLAN_FORMAT_VERSION = 1
_MARK = {"insert": "+", "update": "~", "delete": "-"}


@dataclass(frozen=True)
class Line:
    """One line of a plan: `marker` says what the step does to the target ("+" adds, "~" changes,
    "-" removes, "!" destroys data, "" neither), `note` a warning printed after the text."""

    marker: str
    text: str
    note: str = ""

    def render(self) -> str:
        note = f"  [{self.note}]" if self.note else ""
        return f"{self.marker or ' '} {self.text}{note}"


def step_text(step: Step) -> str:
    """A step as one line, marker first: the progress display and the JSON plan show it."""
    return describe(step).render()


@singledispatch
def describe(step: Step) -> Line:
    """What a step does, in words (the marker apart)."""
    raise TypeError(f"no wording for the plan step {type(step).__name__}")


@describe.register
def _(step: CreateSchema) -> Line:
    return Line("+", f'schema "{step.schema}"')


@describe.register
def _(step: DropTables) -> Line:
    names = ", ".join(f'"{step.schema}"."{t}"' for t in step.tables)
    held = f"; {counted(step.rows, 'row')}" if step.rows else ""
    return Line("-", f"tables {names} (mode: replace; dropped and created again{held})")


@describe.register
def _(step: CreateEnum) -> Line:
    return Line("+", f'enum type "{step.schema}"."{step.name}" ({", ".join(step.labels)})')


@describe.register
def _(step: WritePrismaBaseline) -> Line:
    written = [f"{step.directory}/{name}" for name in step.files]
    row = {
        "insert": f'its row in "{step.schema}"."_prisma_migrations"',
        "update": f'its row in "{step.schema}"."_prisma_migrations" (a new checksum)',
    }.get(step.record)
    parts = ", ".join([*written, *([row] if row else [])])
    return Line("+" if step.record != "update" else "~", f"Prisma baseline 0_init: {parts}")


@describe.register
def _(step: KeepForRollback) -> Line:
    if not step.kept and (step.views or step.new_views):
        return Line("", "record the tables and views this apply creates or replaces, for etl rollback")
    if not step.kept:
        return Line("", "record the tables this apply creates, for etl rollback")
    whole = [t for t in step.kept if not step.keeps_changes_only(t)]
    changed = [t for t in step.kept if step.keeps_changes_only(t)]
    parts = []
    if whole:
        parts.append("a copy of " + ", ".join(f'"{t}"' for t in whole))
    if changed:
        parts.append("the rows it changes in " + ", ".join(f'"{t}"' for t in changed))
    return Line("", f"keep {' and '.join(parts)} for etl rollback (rollback.retention: {step.retention})")


@describe.register
def _(step: DropTable) -> Line:
    return Line(
        "-",
        f'table "{step.schema}"."{step.table}" (no longer in the spec; its {counted(step.rows, "row")} {"is" if step.rows == 1 else "are"} lost)',
    )


@describe.register
def _(step: ReplaceEnum) -> Line:
    added = [label for label in step.labels if label not in step.old_labels]
    gone = [label for label in step.old_labels if label not in step.labels]
    change = "; ".join(
        part
        for part in (
            f"+ {', '.join(added)}" if added else "",
            f"- {', '.join(gone)} (fails if a row uses it)" if gone else "",
            "labels reordered" if not added and not gone else "",
        )
        if part
    )
    return Line("~", f'enum type "{step.schema}"."{step.name}" ({", ".join(step.labels)}): {change}')


@describe.register
def _(step: FinishEnum) -> Line:
    used = ", ".join(f'"{t}"."{c.name}"' for t, c in step.columns) or "no columns"
    return Line("", f'{used} take the new enum type "{step.name}"; the old one is dropped')


@describe.register
def _(step: CreateTable) -> Line:
    return Line(
        "+",
        f'table "{step.schema}"."{step.table.name}" ({counted(len(step.table.columns), "column")}) from '
        + ("a query" if step.table.query is not None else f'"{step.table.source}"'),
    )


@describe.register
def _(step: LoadRows) -> Line:
    where = f" where {step.table.where}" if step.table.where else ""
    rows = counted(step.table.source_rows, "row") if step.table.source_rows is not None else "rows"
    source = f"a query ({step.table.query})" if step.table.query is not None else f'"{step.table.source}"'
    return Line("", f'load {rows} from {source}{where} -> "{step.schema}"."{step.table.name}"')


@describe.register
def _(step: ConvertColumn) -> Line:
    return Line(
        "", f'convert "{step.table}"."{step.column.name}" to {step.column.pg_type.sql()} in PostgreSQL'
    )


@describe.register
def _(step: AddPrimaryKey) -> Line:
    return Line("+", f'primary key "{step.table.primary_key_name}" ({", ".join(step.table.primary_key)})')


@describe.register
def _(step: AddUnique) -> Line:
    return Line("+", f'unique "{step.unique.name}" on "{step.table}" ({", ".join(step.unique.columns)})')


@describe.register
def _(step: CreateIndex) -> Line:
    kind = "unique index" if step.index.unique else "index"
    partial = " (partial)" if step.index.where is not None else ""
    return Line("+", f'{kind} "{step.index.name}" on "{step.table}"{partial}')


@describe.register
def _(step: AddForeignKey) -> Line:
    fk = step.foreign_key
    return Line(
        "+",
        f'foreign key "{fk.name}" "{step.table}" ({", ".join(fk.columns)}) -> '
        f'"{fk.ref_table}" ({", ".join(fk.ref_columns)}) on delete {fk.on_delete.lower()}, on update {fk.on_update.lower()}'
        + (f", {fk.deferrable.lower()}" if fk.deferrable else ""),
    )


@describe.register
def _(step: AddCheck) -> Line:
    return Line("+", f'check "{step.check.name}" on "{step.table}" ({step.check.sql.as_string(None)})')


@describe.register
def _(step: ResetSequence) -> Line:
    numbering = "sequence of" if step.serial else "identity"
    return Line("", f'{numbering} "{step.table}"."{step.column}" continues after the largest id')


@describe.register
def _(step: AddColumn) -> Line:
    default = f" default {step.column.default.as_string(None)}" if step.column.default is not None else ""
    return Line("+", f'column "{step.table}"."{step.column.name}" {step.column.pg_type.sql()}{default}')


@describe.register
def _(step: DropColumn) -> Line:
    return Line("-", f'column "{step.table}"."{step.column}" (not in the spec; its values are lost)')


@describe.register
def _(step: AlterColumnType) -> Line:
    why = " (narrowing: values may change or not fit)" if step.narrowing else ""
    return Line(
        "~",
        f'column "{step.table}"."{step.column.name}" type {step.old_type} -> {step.column.pg_type.sql()}{why}',
    )


@describe.register
def _(step: SetNotNull) -> Line:
    if step.not_null:
        return Line(
            "~", f'column "{step.table}"."{step.column}" NOT NULL (checked against the rows the table holds)'
        )
    return Line("~", f'column "{step.table}"."{step.column}" allows NULL')


@describe.register
def _(step: SetDefault) -> Line:
    if step.column.default is None:
        return Line("~", f'column "{step.table}"."{step.column.name}" drop default {step.old}')
    return Line(
        "~",
        f'column "{step.table}"."{step.column.name}" default {step.old or "none"} -> {step.column.default.as_string(None)}',
    )


@describe.register
def _(step: SetIdentity) -> Line:
    if step.identity:
        return Line("~", f'column "{step.table}"."{step.column}" generated by default as identity')
    return Line("~", f'column "{step.table}"."{step.column}" no longer an identity')


@describe.register
def _(step: DropConstraint) -> Line:
    return Line("-", f'{step.what} "{step.name}" on "{step.table}"')


@describe.register
def _(step: DropIndex) -> Line:
    return Line("-", f'index "{step.name}" on "{step.table}"')


@describe.register
def _(step: SyncRows) -> Line:
    d = step.diff
    where = f" where {step.table.where}" if step.table.where else ""
    if step.table.mode == Mode.APPEND:
        mark = (
            f" ({step.table.watermark} >= {d.watermark}, not in the target)"
            if d.watermark is not None
            else ""
        )
        return Line(
            "~", f'rows "{step.table.name}": {d.insert:,} to insert{mark} from "{step.table.source}"{where}'
        )
    return Line(
        "~",
        f'rows "{step.table.name}": {d.insert:,} to insert, {d.update:,} to update, '
        f'{d.unchanged:,} unchanged ({step.table.mode} {_key(step.table)}) from "{step.table.source}"{where}',
    )


def _key(table: TargetTable) -> str:
    return (
        f"by {', '.join(table.primary_key)}" if table.primary_key else "no primary key: whole rows compared"
    )


@describe.register
def _(step: DeleteRows) -> Line:
    return Line("-", f'rows "{step.table.name}": {step.count:,} to delete (gone from "{step.table.source}")')


@describe.register
def _(step: DropView) -> Line:
    if step.removed:
        return Line(
            "-", f'view "{step.schema}"."{step.name}": no longer in the spec; dropped (a view holds no rows)'
        )
    return Line("-", f'view "{step.schema}"."{step.name}" (created again below)')


@describe.register
def _(step: CreateView) -> Line:
    reads = ", ".join(f'"{r}"' for r in step.view.reads)
    return Line("~" if step.replaced else "+", f'view "{step.schema}"."{step.view.name}" reading {reads}')


@describe.register
def _(step: DropTrigger) -> Line:
    return Line("-", f'trigger "{step.name}" on "{step.table}" (created again below)')


@describe.register
def _(step: CreateTrigger) -> Line:
    t = step.trigger
    event = f"update of {', '.join(t.columns)}" if t.columns else t.event
    when = f" when {t.when}" if t.when else ""
    return Line(
        "~" if step.replaced else "+", f'trigger "{t.name}" after {event} on "{t.table}" for each row{when}'
    )


@describe.register
def _(step: VerifyStep) -> Line:
    return Line("", "verify every table against the source (counts and checksums)")


def summary_line(summary: PlanSummary) -> str:
    s = summary
    views = (s.create_views, s.replace_views, s.drop_views)
    if not any((s.create, s.replace, s.change, s.drop, s.insert, s.update, s.delete, *views)):
        return "No changes. The target matches the spec."
    tables = [f"{s.create} {'table' if s.create == 1 else 'tables'} to create"]
    if s.replace:
        tables.append(f"{s.replace} to replace")
    tables.append(f"{s.change} to change")
    if s.drop:
        tables.append(f"{s.drop} to drop")
    rows = f"{s.insert:,} to insert, {s.update:,} to update, {s.delete:,} to delete"
    if any(views):
        dropped = f", {views[2]} to drop" if views[2] else ""
        return f"Plan: {', '.join(tables)}; rows: {rows}; views: {views[0]} to create, {views[1]} to replace{dropped}."
    return f"Plan: {', '.join(tables)}; rows: {rows}."


def rollback_lines(plan: RollbackPlan) -> list[str]:
    lines = [f"Rollback of the apply that started at {plan.run_started_at} (spec {plan.spec}):"]
    for r in plan.restores:
        now = "it does not exist now" if r.rows_now is None else f"{counted(r.rows_now, 'row')} now"
        if r.kept_in is None:
            lines.append(f'- table "{plan.schema}"."{r.table}": created by that apply; dropped ({now})')
        elif r.rows_now is None:
            lines.append(
                f'+ table "{plan.schema}"."{r.table}": dropped by that apply; restored ({counted(r.rows_then or 0, "row")})'
            )
        elif r.key is not None:
            triggers = f", {counted(len(r.triggers), 'trigger')}" if r.triggers else ""
            lines.append(
                f'~ table "{plan.schema}"."{r.table}": the {counted(r.changed, "row")} that apply changed '
                f"put back ({now}, {r.rows_then or 0:,} after{triggers})"
            )
        else:
            triggers = f", {counted(len(r.triggers), 'trigger')}" if r.triggers else ""
            lines.append(
                f'~ table "{plan.schema}"."{r.table}": restored as it was '
                f"({counted(r.rows_then or 0, 'row')} then, {now}{triggers})"
            )
    for name, definition in plan.views:
        if definition is None:
            lines.append(f'- view "{plan.schema}"."{name}": created by that apply; dropped')
        else:
            lines.append(f'~ view "{plan.schema}"."{name}": its definition before that apply restored')
    views = f", {counted(len(plan.views), 'view')} to restore" if plan.views else ""
    lines.append(f"Plan: {counted(len(plan.restores), 'table')} to restore{views}.")
    return lines


def _created(plan: Plan) -> set[str]:
    return {s.table.name for s in plan.steps if isinstance(s, CreateTable)}


def may_fail(step: Step, created: set[str]) -> bool:
    """A constraint added to a table that keeps rows it already held: the rows decide."""
    if isinstance(step, SetNotNull):
        return step.not_null
    if isinstance(step, AddPrimaryKey):
        return step.table.name not in created
    if isinstance(step, AddUnique | AddForeignKey | AddCheck):
        return step.table not in created
    if isinstance(step, CreateIndex):
        return step.index.unique and step.table not in created
    return False


def plan_line(step: Step, created: set[str]) -> Line:
    """A step as `etl plan` shows it: destructive steps marked "!", with their warning."""
    line = describe(step)
    if step.destructive:
        return Line("!", line.text, "destructive")
    if may_fail(step, created):
        return Line(line.marker, line.text, "may fail on the rows the table holds")
    return line


def counted(n: int, word: str, plural: str | None = None) -> str:
    """`1 row`, `2 rows`, `1,000 indexes`: a count with its noun in the right number."""
    return f"{n:,} {word if n == 1 else plural or word + 's'}"


def _created_table_line(step: CreateTable) -> Line:
    """A created table, its keys and indexes and its load in one line (the default plan)."""
    t = step.table
    parts = [counted(len(t.columns), "column")]
    if t.uniques:
        parts.append(counted(len(t.uniques), "unique constraint"))
    if t.indexes:
        parts.append(counted(len(t.indexes), "index", "indexes"))
    if t.foreign_keys:
        parts.append(counted(len(t.foreign_keys), "foreign key"))
    if t.search is not None:
        parts.append(f'full-text search column "{t.search.name}"')
    source = " from a query" if t.query is not None else f' from "{t.source}"' if t.source != t.name else ""
    where = f" where {t.where}" if t.where else ""
    rows = f" <- {counted(t.source_rows, 'row')}" if t.source_rows is not None else ""
    return Line("+", f'table "{t.name}" ({", ".join(parts)}){rows}{source}{where}')


def _folded_into_its_table(step: Step, created: set[str]) -> bool:
    """A step the one line of its created table already says, or bookkeeping (default plan)."""
    if isinstance(step, VerifyStep):
        return True
    if isinstance(step, KeepForRollback):
        return not step.kept
    if isinstance(step, LoadRows | AddPrimaryKey):
        return step.table.name in created
    if isinstance(step, AddUnique | CreateIndex | AddForeignKey | ResetSequence | ConvertColumn):
        return step.table in created
    return False


def _sample_lines(step: Step, samples: dict) -> list[str]:
    if not isinstance(step, SyncRows | DeleteRows):
        return []
    wanted = ("delete",) if isinstance(step, DeleteRows) else ("insert", "update")
    lines = []
    for change in samples.get(step.table.name, ()):
        if change.op in wanted:
            columns = f": {', '.join(change.columns)}" if change.columns else ""
            lines.append(f"    {_MARK[change.op]} {change.key or '(a row)'}{columns}")
    return lines


def plan_lines(plan: Plan, target: str, *, verbose: bool = False, list_creates: bool = True) -> list[str]:
    """The plan as `etl plan` prints it: by default one line per created table and one per changed
    object; `verbose`: every step, each key, index, foreign key and load on its own line. Without `list_creates`
    (apply that asks nothing prints each created table's line as it loads) the created tables are
    left to the summary."""
    lines = [f'Target: {target} (schema "{plan.schema}")']
    created = _created(plan)
    samples = {s.table.name: s.diff.samples for s in plan.steps if isinstance(s, SyncRows)}
    for step in plan.steps:
        if verbose:
            lines.append(plan_line(step, created).render())
        elif isinstance(step, CreateTable):
            if list_creates:
                lines.append(_created_table_line(step).render())
        elif not _folded_into_its_table(step, created):
            lines.append(plan_line(step, created).render())
        lines.extend(_sample_lines(step, samples))
    lines += skipped_lines(plan, verbose=verbose)
    lines += unrecorded_lines(plan)
    lines += ranged_lines(plan)
    lines += set_aside_lines(plan)
    lines += [f"  ! {foreign_trigger_text(*found)}" for found in plan.foreign_triggers]
    lines += [f"  ! {dropped_trigger_text(*found)}" for found in plan.dropped_triggers]
    lines += [f'  = "{name}": {compared_every_time_text(why)}' for name, why in plan.compared_every_time]
    lines.append(summary_line(plan.summary()))
    if plan.left_out:
        lines.append("Left out of the target (each is marked !! in a spec etl init writes):")
        lines += [f"  {left_out_text(item)}" for item in plan.left_out]
    return lines


# Tables named on one line of a plan that is not verbose; the rest are counted.
_SKIPPED_NAMED = 10


def set_aside_text(rows: int, since: str) -> str:
    return f"{rows:,} rows set aside by checks at apply of {since}"


def set_aside_lines(plan: Plan) -> list[str]:
    """The tables whose source holds rows a check set aside at an earlier apply: they stay out
    of the target (and of the counts) until their values change."""
    return [
        f'  = "{name}": {set_aside_text(rows, since)} (left out until changed in the source)'
        for name, rows, since, _ in plan.set_aside
    ]


def foreign_trigger_text(table: str, kind: str, name: str) -> str:
    return (
        f'{kind} "{name}" on "{table}" was not made by etl: it fires on the rows etl writes there '
        "and may change others, so apply verifies every table in full"
    )


def dropped_trigger_text(table: str, kind: str, name: str) -> str:
    return (
        f'{kind} "{name}" on "{table}" was not made by etl: it goes with the table, which mode: replace '
        "drops and makes again; make it again after the apply"
    )


def _trigger_items(
    found: tuple[tuple[str, str, str], ...], text: Callable[[str, str, str], str]
) -> list[dict]:
    """The plan document's items for (table, kind, name) of triggers and rules, each with `text`'s
    reason."""
    return [{"table": t, "kind": k, "name": n, "reason": text(t, k, n)} for t, k, n in found]


def compared_every_time_text(why: str) -> str:
    return f"rows compared every time, never skipped: {why}"


def skipped_text(since: str) -> str:
    return f"unchanged since apply of {since}"


_SKIPPED_WHY = (
    "its SQLite pages, and the target's rows (their transaction ids), file and columns, are as that "
    "apply left them, verified equal; rows not compared (--full-diff compares them)"
)


def skipped_lines(plan: Plan, *, verbose: bool = False) -> list[str]:
    """The tables whose rows the plan did not compare: one line per apply they date from (verbose:
    per table, with why that proves them unchanged)."""
    if verbose:
        return [f'  = "{name}": {skipped_text(since)}: {_SKIPPED_WHY}' for name, since in plan.skipped]
    by_time: dict[str, list[str]] = {}
    for name, since in plan.skipped:
        by_time.setdefault(since, []).append(name)
    return [
        f"  = {_named(names)}: {skipped_text(since)} (rows not compared)" for since, names in by_time.items()
    ]


def _named(names: list[str]) -> str:
    """Table names quoted, the first _SKIPPED_NAMED of them, then how many more."""
    listed = ", ".join(f'"{n}"' for n in names[:_SKIPPED_NAMED])
    more = len(names) - _SKIPPED_NAMED
    return f"{listed} and {counted(more, 'more table')}" if more > 0 else listed


UNRECORDED_TEXT = (
    "rows compared, equal; nothing recorded proves them unchanged (apply verifies and records them, "
    "and later plans skip them while they stay unchanged)"
)


def unrecorded_lines(plan: Plan) -> list[str]:
    """The tables whose rows the plan compared in full and found equal, with nothing recorded
    that would let a later plan skip them (see Plan.unrecorded)."""
    names = [t.name for t in plan.unrecorded]
    return [f"  = {_named(names)}: {UNRECORDED_TEXT}"] if names else []


def ranged_text(changed: int, total: int, since: str) -> str:
    return f"{changed:,} of {counted(total, 'page range')} changed since apply of {since}"


def ranged_lines(plan: Plan) -> list[str]:
    """The tables whose rows the plan compared in the rowid ranges whose source pages changed."""
    return [
        f'  = "{name}": {ranged_text(changed, total, since)} (only their rows compared)'
        for name, changed, total, since in plan.ranged
    ]


def left_out_text(item: LeftOut) -> str:
    """One schema object the target does not get, with its SQLite text and why."""
    name = f' "{item.name}"' if item.name else ""
    where = f' of "{item.table}"' if item.table else ""
    return f"{item.kind}{name}{where}: {item.reason}: {_one_line(item.source_sql)}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def action_name(step: Step) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(step).__name__).lower()


def plan_document(plan: Plan, target: str) -> dict:
    created = _created(plan)
    summary = plan.summary()
    steps = []
    for step in plan.steps:
        item: dict = {
            "action": action_name(step),
            "description": step_text(step).strip(),
            "destructive": step.destructive,
            "may_fail": may_fail(step, created),
        }
        table = getattr(step, "table", None)
        if table is not None:
            item["table"] = table if isinstance(table, str) else table.name
        if isinstance(step, CreateView | DropView):
            item["view"] = step.view.name if isinstance(step, CreateView) else step.name
        if isinstance(step, LoadRows):
            item["rows"] = {"insert": step.table.source_rows or 0, "update": 0, "delete": 0, "unchanged": 0}
        if isinstance(step, SyncRows):
            d = step.diff
            item["mode"] = step.table.mode
            # Deletes are the delete_rows step's (children's before parents'): counted there.
            item["rows"] = {
                "insert": d.insert,
                "update": d.update,
                "delete": 0,
                "unchanged": d.unchanged,
            }
            if d.watermark is not None:
                item["watermark"] = {"column": step.table.watermark, "value": d.watermark}
            item["samples"] = [{"op": c.op, "key": c.key, "columns": list(c.columns)} for c in d.samples]
        if isinstance(step, DeleteRows):
            item["rows"] = {"insert": 0, "update": 0, "delete": step.count, "unchanged": 0}
        steps.append(item)
    document = {
        "format_version": PLAN_FORMAT_VERSION,
        "target": target,
        "schema": plan.schema,
        "changes": plan.has_changes,
        "destructive": bool(plan.destructive_steps),
        "summary": {
            "tables": {
                "create": summary.create,
                "replace": summary.replace,
                "change": summary.change,
                "drop": summary.drop,
            },
            "rows": {"insert": summary.insert, "update": summary.update, "delete": summary.delete},
            **(
                {
                    "views": {
                        "create": summary.create_views,
                        "replace": summary.replace_views,
                        "drop": summary.drop_views,
                    }
                }
                if summary.create_views or summary.replace_views or summary.drop_views
                else {}
            ),
            "text": summary_line(summary),
        },
        "steps": steps,
    }
    if plan.skipped:
        document["skipped"] = [
            {"table": name, "since": since, "reason": f"{skipped_text(since)}: {_SKIPPED_WHY}"}
            for name, since in plan.skipped
        ]
    if plan.unrecorded:
        document["unrecorded"] = [t.name for t in plan.unrecorded]
    if plan.foreign_triggers:
        document["foreign_triggers"] = _trigger_items(plan.foreign_triggers, foreign_trigger_text)
    if plan.compared_every_time:
        document["compared_every_time"] = [
            {"table": name, "reason": compared_every_time_text(why)} for name, why in plan.compared_every_time
        ]
    if plan.dropped_triggers:
        document["dropped_triggers"] = _trigger_items(plan.dropped_triggers, dropped_trigger_text)
    if plan.set_aside:
        document["set_aside"] = [
            {"table": name, "rows": rows, "since": since, "text": set_aside_text(rows, since)}
            for name, rows, since, _ in plan.set_aside
        ]
    if plan.ranged:
        document["ranged"] = [
            {
                "table": name,
                "since": since,
                "changed_ranges": changed,
                "ranges": total,
                "reason": ranged_text(changed, total, since),
            }
            for name, changed, total, since in plan.ranged
        ]
    if plan.left_out:  # only when there is something to say: plans of most sources stay as they were
        document["left_out"] = [
            {
                "table": item.table,
                "kind": item.kind,
                "name": item.name,
                "sql": item.source_sql,
                "reason": item.reason,
            }
            for item in plan.left_out
        ]
    return document


APPLY_FORMAT_VERSION = 1


def apply_document(
    target: str,
    plan: Plan,
    result: ApplyResult | None,
    table_seconds: dict[str, float],
    phase_seconds: dict[str, float | None],
    rejects_file: str | None,
) -> dict:
    """What `etl apply --json` prints (schemas/etl-apply.schema.json). `result` None: nothing was
    applied (no changes, or --dry-run)."""
    changes = result.changes if result is not None else {}
    rejected: dict[str, int] = {}
    for reject in result.rejects if result is not None else ():
        rejected[reject["table"]] = rejected.get(reject["table"], 0) + 1
    tables = [
        {
            "table": name,
            "inserted": inserted,
            "updated": updated,
            "deleted": deleted,
            "seconds": round(table_seconds[name], 3) if name in table_seconds else None,
        }
        for name, (inserted, updated, deleted) in changes.items()
    ]
    return {
        "format_version": APPLY_FORMAT_VERSION,
        "target": target,
        "schema": plan.schema,
        "committed": result is not None,
        "run_id": result.run_id if result is not None else None,
        "seconds": round(result.seconds, 3) if result is not None else 0.0,
        "verified": bool(result and result.verified),
        "rows": {
            "inserted": sum(c[0] for c in changes.values()),
            "updated": sum(c[1] for c in changes.values()),
            "deleted": sum(c[2] for c in changes.values()),
        },
        "tables": tables,
        "phases": {
            name: None if seconds is None else round(seconds, 3)
            for name, seconds in {"keys_and_indexes": None, "verification": None, **phase_seconds}.items()
        },
        "rejects": {"count": sum(rejected.values()), "by_source_table": rejected, "file": rejects_file},
    }


# --- the schema ledger (etl verify) -------------------------------------------------------------


def ledger_summary(entries: tuple[LedgerEntry, ...]) -> str:
    counts = ledger_counts(entries)
    return "Schema ledger: " + ", ".join(f"{counts[o]:,} {o.value}" for o in Outcome) + "."


def ledger_line(entry: LedgerEntry) -> str:
    """One source object: its outcome, kind and name, where it went, in what form, and why."""
    name = entry.name.removeprefix(f"{entry.table}.") if entry.table else entry.name
    text = f"  {entry.outcome.value:<17} {entry.kind:<17} {name}"
    if entry.target is not None and entry.target != entry.name:
        text += f" -> {entry.target}"
    if entry.form and entry.outcome != Outcome.LEFT_OUT:
        text += f" [{_one_line(entry.form)}]"
    if entry.reason:
        text += f": {_one_line(entry.reason)}"
    return text


def ledger_lines(entries: tuple[LedgerEntry, ...], verbose: bool = False) -> list[str]:
    """The ledger grouped by source table (then the database's views, triggers and virtual
    tables), ending with its summary. Without `verbose`, only what is not carried as it is: on a
    schema of a thousand tables the exceptions are what a reader looks for; the summary counts all."""
    lines: list[str] = []
    current: object = object()
    shown = entries if verbose else tuple(e for e in entries if e.outcome != Outcome.CARRIED)
    for entry in shown:
        group = entry.table
        if group != current:
            current = group
            lines.append(
                f'table "{group}"' if group is not None else "views, triggers, virtual tables, queries"
            )
        lines.append(ledger_line(entry))
    lines.append(ledger_summary(entries))
    hidden = len(entries) - len(shown)
    if hidden:
        lines.append(
            f"({counted(hidden, 'carried entry', 'carried entries')} not listed: --verbose lists every entry.)"
        )
    return lines


def ledger_document(entries: tuple[LedgerEntry, ...]) -> list[dict]:
    """The ledger as verify --json writes it (schemas/etl-verify.schema.json)."""
    return [
        {
            "kind": e.kind,
            "table": e.table,
            "source": e.name,
            "outcome": e.outcome.value,
            "target": e.target,
            "form": e.form,
            "reason": e.reason,
        }
        for e in entries
    ]
