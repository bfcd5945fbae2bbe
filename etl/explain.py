"""A plan in words (what `etl plan` prints) and as a JSON document (`etl plan --json`,
described by schemas/etl-plan.schema.json). Pure: the CLI prints."""

from __future__ import annotations

import re

from .plan import (
    AddForeignKey,
    AddPrimaryKey,
    AddUnique,
    CreateIndex,
    CreateTable,
    DeleteRows,
    LoadRows,
    Plan,
    SetNotNull,
    Step,
    SyncRows,
)

PLAN_FORMAT_VERSION = 1
_MARK = {"insert": "+", "update": "~", "delete": "-"}


def _created(plan: Plan) -> set[str]:
    return {s.table.name for s in plan.steps if isinstance(s, CreateTable)}


def may_fail(step: Step, created: set[str]) -> bool:
    """A constraint added to a table that keeps rows it already held: the rows decide."""
    if isinstance(step, SetNotNull):
        return step.not_null
    if isinstance(step, AddPrimaryKey):
        return step.table.name not in created
    if isinstance(step, AddUnique | AddForeignKey):
        return step.table not in created
    if isinstance(step, CreateIndex):
        return step.index.unique and step.table not in created
    return False


def plan_lines(plan: Plan, target: str) -> list[str]:
    lines = [f'Target: {target} (schema "{plan.schema}")']
    created = _created(plan)
    samples = {s.table.name: s.diff.samples for s in plan.steps if isinstance(s, SyncRows)}
    for step in plan.steps:
        line = step.describe()
        if step.destructive:
            line = "! " + line[2:] + "  [destructive]"
        elif may_fail(step, created):
            line += "  [may fail on the rows the table holds]"
        lines.append(line)
        if isinstance(step, SyncRows | DeleteRows):
            wanted = ("delete",) if isinstance(step, DeleteRows) else ("insert", "update")
            for change in samples.get(step.table.name, ()):
                if change.op in wanted:
                    columns = f": {', '.join(change.columns)}" if change.columns else ""
                    lines.append(f"    {_MARK[change.op]} {change.key or '(a row)'}{columns}")
    lines.append(plan.summary().line())
    return lines


def action_name(step: Step) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(step).__name__).lower()


def plan_document(plan: Plan, target: str) -> dict:
    created = _created(plan)
    summary = plan.summary()
    steps = []
    for step in plan.steps:
        item: dict = {
            "action": action_name(step),
            "description": step.describe().strip(),
            "destructive": step.destructive,
            "may_fail": may_fail(step, created),
        }
        table = getattr(step, "table", None)
        if table is not None:
            item["table"] = table if isinstance(table, str) else table.name
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
    return {
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
            "text": summary.line(),
        },
        "steps": steps,
    }
