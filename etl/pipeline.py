"""The steps of a migration in one place: check the spec against the source, observe the target,
plan, apply; and verify a target as it is. Each step is a function of the previous one's result,
so the CLI and the tests run the same sequence. Nothing here prints, prompts or exits: that is
the CLI's part."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from collections.abc import Mapping as AnyMapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from etl.core.ledger import LedgerEntry, build_ledger
from etl.core.locks import check_locks
from etl.core.mapping import DesiredSchema
from etl.core.plan import Plan
from etl.core.planner import build_plan
from etl.core.prisma import HISTORY_TABLE, render_migration
from etl.errors import PlanError
from etl.postgres.target import read_lock_capacity, read_target_state
from etl.run.baseline import plan_prisma_baseline
from etl.run.observe import observe_target, schema_catalogs
from etl.run.session import StatementObserver
from etl.run.validate import InRanges, Measuring, Validated, validate, with_sizes

if TYPE_CHECKING:
    from etl.core.plan import ApplyResult
    from etl.run.executor import RunInfo, StepEvent
    from etl.run.verify import Verification

# Loading, verifying and the Prisma reader are imported where they run: `etl plan`, run again and
# again before a cut-over, starts without them.


def check(
    spec_path: str | os.PathLike[str],
    environ: AnyMapping[str, str] | None = None,
    target_url: str | None = None,
    *,
    measuring: Measuring | None = None,
    sizes_later: bool = False,
) -> Validated:
    """The spec, read and checked against the SQLite source (every problem at once, as a
    SpecError), with the source measured (as `measuring` says); `target_url` replaces the spec's
    target.url. `sizes_later`: plan_for measures the row counts and sizes of only the tables it
    compares or loads."""
    return validate(
        spec_path, environ, target_url=target_url, measuring=measuring or Measuring(), sizes_later=sizes_later
    )


def plan_for(checked: Validated, show_rows: int = 0, *, full_diff: bool = False) -> Plan:
    """What apply would do to the spec's target as it is now (read, never changed); up to
    `show_rows` changed rows per table are kept in the plan for display. Tables provably unchanged
    since the last apply are skipped, unless `full_diff`."""
    measured = [checked.mapping]

    def sized(names: set[str], units: set[str], in_ranges: InRanges | None) -> DesiredSchema:
        measured.append(with_sizes(checked, names, units, in_ranges))
        return measured[-1]

    state = observe_target(
        checked.mapping,
        checked.spec.source,
        checked.spec.target_url,
        show_rows,
        full_diff=full_diff,
        sized=None if checked.sizes_pending is None else sized,
    )
    plan = build_plan(measured[-1], state)
    return with_prisma_baseline(checked, plan) if checked.spec.prisma is not None else plan


def apply_refusal(checked: Validated, plan: Plan) -> str | None:
    """Why apply would refuse `plan` before changing anything, read from the target's server as
    it is now (its lock table, etl/core/locks.py); None when it would run it. `etl plan` says so
    instead of leaving it to apply."""
    if not plan.has_work():
        return None
    try:
        check_locks(plan, read_lock_capacity(checked.spec.target_url))
    except PlanError as exc:
        return str(exc)
    return None


def prisma_migration(checked: Validated) -> str:
    """0_init's migration.sql for the spec's `prisma:` project: the target's DDL in Prisma's order."""
    assert checked.spec.prisma is not None
    from etl.init.prisma import prisma_order, read_prisma_file

    schema = read_prisma_file(checked.spec.prisma.schema)
    return render_migration(checked.mapping, prisma_order(schema))


def with_prisma_baseline(checked: Validated, plan: Plan) -> Plan:
    """`plan`, and last the writing of Prisma's baseline where the folder or the row lacks it."""
    project = checked.spec.prisma
    assert project is not None
    if any(t.name == HISTORY_TABLE for t in checked.mapping.tables):
        raise PlanError(
            f"the spec loads {HISTORY_TABLE} from SQLite, where prisma: writes Prisma's history for "
            f"PostgreSQL: add {HISTORY_TABLE} to the spec's exclude"
        )
    step = plan_prisma_baseline(
        project.migrations, checked.spec.target_url, checked.mapping.schema, prisma_migration(checked)
    )
    return plan if step is None else replace(plan, steps=(*plan.steps, step))


def run_info(spec_path: Path) -> RunInfo:
    """What etl.runs records of the spec an apply runs: its path and the SHA-256 of its bytes."""
    from etl.run.executor import RunInfo

    return RunInfo(str(spec_path), hashlib.sha256(spec_path.read_bytes()).hexdigest())


def apply(
    checked: Validated,
    plan: Plan,
    *,
    allow_destructive: bool = False,
    on_event: Callable[[StepEvent], None] = lambda e: None,
    run: RunInfo | None = None,
    verify: bool = True,
    rejects_file: Path | None = None,
    trust_from_rows: int | None = None,
    on_statement: StatementObserver | None = None,
) -> ApplyResult:
    """Run `plan` against the spec's target in one transaction (see executor.apply_plan;
    `trust_from_rows`: its TRUST_FROM_ROWS unless given)."""
    from etl.run.executor import TRUST_FROM_ROWS, RunInfo, apply_plan

    return apply_plan(
        plan,
        checked.spec.source,
        checked.spec.target_url,
        allow_destructive=allow_destructive,
        on_event=on_event,
        run=run or RunInfo(),
        verify=verify,
        rejects_file=rejects_file,
        trust_from_rows=TRUST_FROM_ROWS if trust_from_rows is None else trust_from_rows,
        on_statement=on_statement,
    )


def verify(checked: Validated) -> Verification:
    """Compare every table of the spec's target with the source, changing nothing."""
    from etl.run.executor import verify_target

    url = checked.spec.target_url
    state = read_target_state(url, checked.mapping.schema)
    return verify_target(checked.mapping, checked.spec.source, url, state.tables)


def ledger(checked: Validated) -> tuple[LedgerEntry, ...]:
    """Every schema object of the source and where it went, checked against the target as it is."""
    actual, desired = schema_catalogs(checked.mapping, checked.spec.target_url)
    return build_ledger(checked.source, checked.mapping, desired, actual, checked.spec.naming)
