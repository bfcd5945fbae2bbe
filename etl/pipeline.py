"""The steps of a migration in one place: check the spec against the source, observe the target,
plan, apply; and verify a target as it is. Each step is a function of the previous one's result,
so the CLI and the tests run the same sequence. Nothing here prints, prompts or exits: that is
the CLI's part."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from collections.abc import Mapping as AnyMapping
from pathlib import Path

from etl.core.plan import Plan
from etl.core.planner import build_plan
from etl.postgres.target import read_target_state
from etl.run.executor import TRUST_FROM_ROWS, ApplyResult, RunInfo, StepEvent, apply_plan, verify_target
from etl.run.observe import observe_target
from etl.run.validate import Measuring, Validated, validate
from etl.run.verify import Verification


def check(
    spec_path: str | os.PathLike[str],
    environ: AnyMapping[str, str] | None = None,
    target_url: str | None = None,
    *,
    measuring: Measuring | None = None,
) -> Validated:
    """The spec, read and checked against the SQLite source (every problem at once, as a
    SpecError), with the source measured (as `measuring` says); `target_url` replaces the spec's
    target.url."""
    return validate(spec_path, environ, target_url=target_url, measuring=measuring or Measuring())


def plan_for(checked: Validated, show_rows: int = 0, *, full_diff: bool = False) -> Plan:
    """What apply would do to the spec's target as it is now (read, never changed); up to
    `show_rows` changed rows per table are kept in the plan for display. Tables provably unchanged
    since the last apply are skipped, unless `full_diff`."""
    state = observe_target(
        checked.mapping, checked.spec.source, checked.spec.target_url, show_rows, full_diff=full_diff
    )
    return build_plan(checked.mapping, state)


def run_info(spec_path: Path) -> RunInfo:
    """What etl.runs records of the spec an apply runs: its path and the SHA-256 of its bytes."""
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
    trust_from_rows: int = TRUST_FROM_ROWS,
) -> ApplyResult:
    """Run `plan` against the spec's target in one transaction (see executor.apply_plan)."""
    return apply_plan(
        plan,
        checked.spec.source,
        checked.spec.target_url,
        allow_destructive=allow_destructive,
        on_event=on_event,
        run=run or RunInfo(),
        verify=verify,
        rejects_file=rejects_file,
        trust_from_rows=trust_from_rows,
    )


def verify(checked: Validated) -> Verification:
    """Compare every table of the spec's target with the source, changing nothing."""
    url = checked.spec.target_url
    state = read_target_state(url, checked.mapping.schema)
    return verify_target(checked.mapping, checked.spec.source, url, state.tables)
