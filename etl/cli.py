"""The command line: the only module that prints, reads the environment or exits.

Exit codes: 0 success, 1 failure (spec, data, connection), 2 usage error.
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from etl import __version__
from etl.core.explain import (
    apply_document,
    counted,
    ledger_document,
    ledger_lines,
    plan_document,
    plan_lines,
    rollback_lines,
)
from etl.core.ledger import Outcome
from etl.core.plan import (
    AddForeignKey,
    AddPrimaryKey,
    AddUnique,
    ApplyResult,
    CreateIndex,
    DeleteRows,
    LoadRows,
    Plan,
    Step,
    SyncRows,
    VerifyStep,
    WritePrismaBaseline,
)
from etl.duck import remove_spill_directory, sweep_stale_spill_directories
from etl.errors import EtlError, PlanError, SpecError
from etl.pipeline import apply, apply_refusal, check, ledger, plan_for, run_info, verify
from etl.postgres.target import display_url, redact
from etl.run.validate import Validated
from etl.settings import Naming
from etl.specfile.document import SCHEMA_FILE

# What only apply, verify and `plan --sql` use is imported where they run: the other commands,
# `etl plan` above all (run again and again before a cut-over), start without it.
if TYPE_CHECKING:
    from etl.run.executor import StepEvent

app = typer.Typer(
    name="etl",
    help="Move a SQLite database into PostgreSQL, declared in YAML, with nothing lost.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,  # tracebacks could show locals, and DSNs hold passwords
)

_state: dict[str, object] = {"debug": False}
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

SpecPath = Annotated[Path, typer.Argument(help="The spec file (YAML).", show_default=False)]
TargetOption = Annotated[
    str | None,
    typer.Option(
        "--target", help="PostgreSQL URL to use instead of the spec's target.url.", show_default=False
    ),
]


def _version(value: bool) -> None:
    if value:
        out.print(f"etl {__version__}")
        raise typer.Exit(0)


@app.callback()
def main_options(
    debug: Annotated[bool, typer.Option("--debug", help="Show a traceback on errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    _state["debug"] = debug


def _fail(exc: Exception, url: str | None = None) -> None:
    if _state["debug"]:
        import traceback

        err.print(redact("".join(traceback.format_exception(exc)), url), markup=False)
    if isinstance(exc, SpecError) and len(exc.problems) > 1:
        err.print(f"Error: the spec has {len(exc.problems)} problems:", markup=False)
        for problem in exc.problems:
            err.print(redact(str(problem), url), markup=False)
    else:
        err.print(f"Error: {redact(str(exc), url)}", markup=False)
    raise typer.Exit(1)


def _load(spec: Path, target: str | None, *, sizes_later: bool = False) -> Validated:
    return check(spec, os.environ, target_url=target, sizes_later=sizes_later)


@app.command(
    "validate",
    epilog="\b\nExamples:\n  etl validate spec.yaml\n  etl validate spec.yaml --target postgresql://app@localhost/app",
)
def validate_command(spec: SpecPath, target: TargetOption = None) -> None:
    """Check a spec: YAML, schema, and meaning against the SQLite source. Lists every mistake."""
    try:
        checked = _load(spec, target)
    except EtlError as exc:
        _fail(exc)
        return
    tables = len(checked.mapping.tables)
    columns = sum(len(t.columns) for t in checked.mapping.tables)
    out.print(f"{spec}: OK ({counted(tables, 'table')}, {counted(columns, 'column')})", markup=False)
    for rule in checked.mapping.shadowed_rules:
        where = f"{rule.location}: " if rule.location else ""
        out.print(
            f"Note: {where}type_rules[{rule.index}] ({rule.declared}) changes no column: "
            f"the {counted(rule.columns, 'column')} it matches {'each set their' if rule.columns > 1 else 'sets its'} "
            "own `type` (remove that `type` to let the rule apply)",
            markup=False,
        )


def _print_plan(
    plan: Plan, url: str, *, verbose: bool = False, list_creates: bool = True, console: Console = out
) -> None:
    for line in plan_lines(plan, display_url(url), verbose=verbose, list_creates=list_creates):
        _say_line(console, line)


Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask first (on a terminal etl asks).")]
ShowRows = Annotated[
    int,
    typer.Option(
        "--show-rows", min=0, metavar="N", help="Show up to N changed rows per table (keys and columns)."
    ),
]
FullDiff = Annotated[
    bool,
    typer.Option(
        "--full-diff",
        help="Compare the rows of every table, also those unchanged on both sides since the last apply.",
    ),
]
Verbose = Annotated[
    bool,
    typer.Option(
        "--verbose",
        "-v",
        help="Show every step of the plan: each key, index, foreign key and load on its own line.",
    ),
]


@app.command(
    "plan",
    epilog="\b\nExamples:\n  etl plan spec.yaml\n  etl plan spec.yaml --verbose --show-rows 5\n  etl plan spec.yaml --sql > migration.sql\n  etl plan spec.yaml --json | jq .summary",
)
def plan_command(
    spec: SpecPath,
    target: TargetOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the plan as JSON (schemas/etl-plan.schema.json).")
    ] = False,
    detailed_exitcode: Annotated[
        bool,
        typer.Option(
            "--detailed-exitcode", help="Exit 0 when there is nothing to change, 2 when there is, 1 on error."
        ),
    ] = False,
    show_rows: ShowRows = 0,
    verbose: Verbose = False,
    full_diff: FullDiff = False,
    as_sql: Annotated[
        bool,
        typer.Option(
            "--sql", help="Print every statement apply would run, in order: PostgreSQL's and DuckDB's."
        ),
    ] = False,
) -> None:
    """Show what apply would do, schema and rows, changing nothing."""
    if as_json and as_sql:
        err.print("Error: --json and --sql cannot go together; choose one", markup=False)
        raise typer.Exit(2)
    url = target
    try:
        # the tables the plan skips as unchanged are not measured: nothing reads their sizes
        checked = _load(spec, target, sizes_later=True)
        url = checked.spec.target_url
        plan = plan_for(checked, show_rows, full_diff=full_diff)
        refusal = apply_refusal(checked, plan)
    except EtlError as exc:
        _fail(exc, url)
        return
    if as_json:
        sys.stdout.write(
            json.dumps(plan_document(plan, display_url(url)), indent=2, ensure_ascii=False) + "\n"
        )
    elif as_sql:
        from etl.run.plan_sql import plan_sql_text, typed_candidates

        sys.stdout.write(plan_sql_text(plan, typed_candidates(checked.spec.source, plan)))
    else:
        _print_plan(plan, url, verbose=verbose)
    if refusal is not None:
        _fail(PlanError(f"apply would refuse this plan: {refusal}"), url)
    if detailed_exitcode and plan.has_changes:
        raise typer.Exit(2)


def _confirm(question: str = "Apply this plan?", console: Console = out) -> bool:
    """Ask on a terminal; anything but yes is no."""
    console.print(f"{question} Only 'yes' is accepted: ", end="", markup=False)
    try:
        answer = input()
    except EOFError:
        return False
    return answer.strip() == "yes"


@app.command(
    "apply",
    epilog='\b\nExamples:\n  etl apply spec.yaml\n  etl apply spec.yaml --yes --json > run.json\n  etl apply spec.yaml --target "$DATABASE_URL" --allow-destructive',
)
def apply_command(
    spec: SpecPath,
    target: TargetOption = None,
    allow_destructive: Annotated[
        bool,
        typer.Option(
            "--allow-destructive", help="Allow dropping tables, columns or rows, and narrowing types."
        ),
    ] = False,
    no_verify: Annotated[
        bool,
        typer.Option("--no-verify", help="Skip comparing counts and checksums of every table before COMMIT."),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the plan and change nothing (same as etl plan).")
    ] = False,
    yes: Yes = False,
    show_rows: ShowRows = 0,
    verbose: Verbose = False,
    full_diff: FullDiff = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print the run's result as JSON (schemas/etl-apply.schema.json); the rest goes to stderr.",
        ),
    ] = False,
) -> None:
    """Bring the target up to date with the source through the spec, in one transaction:
    create, load, sync, add keys and indexes, verify. Shows the plan first."""
    url = target
    say = err if as_json else out  # what a person reads; stdout holds only the document with --json
    try:
        # as etl plan: the tables the plan skips as unchanged are not measured
        checked = _load(spec, target, sizes_later=True)
        url = checked.spec.target_url
        plan = plan_for(checked, show_rows, full_diff=full_diff)
        ask = not yes and not dry_run and sys.stdin.isatty() and say.is_terminal
        # Whoever is asked sees every table first; otherwise each created table's line follows as it loads.
        _print_plan(plan, url, verbose=verbose, list_creates=ask or dry_run or verbose, console=say)
        if dry_run or not plan.has_work(verify=not no_verify):
            if as_json:
                _write_json(apply_document(display_url(url), plan, None, {}, {}, None))
            return
        from etl.run.executor import refuse_destructive

        refuse_destructive(plan, allow_destructive)
        if ask and not _confirm(console=say):
            err.print("Error: not applied; nothing was changed", markup=False)
            raise typer.Exit(1)
        say.print(f'Applying {spec} to {display_url(url)} (schema "{plan.schema}")', markup=False)
        report = spec.with_name(spec.stem + ".rejects.jsonl")
        result, phases, tables = _apply_with_progress(
            checked, plan, spec, say, allow_destructive, not no_verify, report
        )
    except EtlError as exc:
        _fail(exc, url)
        return
    except KeyboardInterrupt:
        # click would turn this into "Aborted!"; the user needs to know what became of the target.
        raise typer.Exit(_say_interrupted()) from None
    _print_result(say, result, phases, report)
    for step in plan.steps:
        if isinstance(step, WritePrismaBaseline):
            row = [f'its row in "{step.schema}"."_prisma_migrations"'] if step.record else []
            written = ", ".join([*(f"{step.directory}/{name}" for name in step.files), *row])
            say.print(
                f'Wrote Prisma\'s baseline 0_init: {written}. Next: provider = "postgresql" in the '
                'Prisma schema (see the README\'s "Moving a Prisma app").',
                markup=False,
            )
    if as_json:
        rejects = str(report) if result.rejects else None
        _write_json(apply_document(display_url(url), plan, result, tables, phases.seconds(), rejects))


def _write_json(document: dict) -> None:
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def _apply_with_progress(
    checked: Validated,
    plan: Plan,
    spec: Path,
    say: Console,
    allow_destructive: bool,
    verify_tables: bool,
    report: Path,
) -> tuple[ApplyResult, _PhaseTimes, dict[str, float]]:
    """Run the plan, a line per table as it is done on `say`, the progress bar below them."""
    # The bar lives on the terminal the table lines go to, so that they print above it; with
    # those lines redirected, on stderr's terminal.
    screen = say if say.is_terminal else err if err.is_terminal else None
    bar = _ProgressBar(screen) if screen is not None else None
    phases = _PhaseTimes()
    printed: set[tuple[str, str]] = set()  # the exact path's second pass does not repeat a line
    seconds: dict[str, float] = {}  # per table: its load, sync and deletes
    deleting = {s.table.name for s in plan.steps if isinstance(s, DeleteRows)}

    def progress(event: StepEvent) -> None:
        phases.add(event)
        if event.phase == "restart":
            seconds.clear()
            where = f"table {event.note} holds" if event.note else "the source holds"
            say.print(
                f"  starting over: {where} a value DuckDB's typed read cannot convert exactly; "
                "every value is read again through SQLite",
                markup=False,
            )
            return
        if bar:
            bar.show(event)
        if event.phase == "done" and isinstance(event.step, LoadRows | SyncRows | DeleteRows):
            name = event.step.table.name
            seconds[name] = seconds.get(name, 0.0) + event.seconds
        shown = _table_line(event, deleting)
        if shown is not None and shown[0] not in printed:
            printed.add(shown[0])
            _say_line(say, shown[1])

    try:
        result = apply(
            checked,
            plan,
            allow_destructive=allow_destructive,
            on_event=progress,
            run=run_info(spec),
            verify=verify_tables,
            rejects_file=report,
        )
    finally:
        if bar:
            bar.stop()
    return result, phases, seconds


def _print_result(say: Console, result: ApplyResult, phases: _PhaseTimes, report: Path) -> None:
    inserted = sum(c[0] for c in result.changes.values())
    updated = sum(c[1] for c in result.changes.values())
    deleted = sum(c[2] for c in result.changes.values())
    for line in phases.lines():
        say.print(line, markup=False)
    if result.rejects:
        say.print(
            f"Rejected: {counted(len(result.rejects), 'row')} set aside, each with its reason and raw values, "
            f"in {report} and the target's etl.rejects.",
            markup=False,
        )
    say.print(
        f"Done: rows: {inserted:,} inserted, {updated:,} updated, "
        f"{deleted:,} deleted in {result.seconds:.2f} s"
        f"{', every table verified' if result.verified else ', not verified (--no-verify)'}. Committed.",
        markup=False,
    )


def _rows(n: int) -> str:
    return f"{n:>10,} {'row ' if n == 1 else 'rows'}"


def _say_line(say: Console, line: str) -> None:
    """One line of plain text: as it is where no terminal shows it (a log of thousands of tables'
    lines costs rich's rendering of each, and rich asks the file whether it is a terminal each
    time), through rich where its progress bar is drawn."""
    key = (id(say), id(say.file))
    terminal = _TERMINALS.get(key)
    if terminal is None:
        terminal = _TERMINALS[key] = say.is_terminal
    if terminal:
        say.print(line, markup=False)
    else:
        say.file.write(line + "\n")


# (console, its file), by id (out, err and the one apply prints to live as long as the command)
# -> whether it is a terminal.
_TERMINALS: dict[tuple[int, int], bool] = {}


def _table_line(event: StepEvent, deleting: set[str]) -> tuple[tuple[str, str], str] | None:
    """The line of a table whose rows apply loaded, synced or deleted, with what identifies it;
    `deleting`: the tables whose deletes have a line of their own."""
    step = event.step
    if event.phase != "done" or not isinstance(step, LoadRows | SyncRows | DeleteRows):
        return None
    name, seconds = step.table.name, event.seconds
    if isinstance(step, DeleteRows):
        return ("delete", name), f"  {name:<32} {_rows(step.count).rstrip()} deleted {seconds:8.2f} s"
    rows = event.rows or 0
    if isinstance(step, SyncRows) and rows == 0 and name in deleting:
        return None  # only deletes: their own line says so
    rate = rows / seconds if seconds > 0 else 0.0
    return ("rows", name), f"  {name:<32} {_rows(rows)} {seconds:8.2f} s {rate:>10,.0f} rows/s"


_KEY_STEPS = (AddPrimaryKey, AddUnique, CreateIndex, AddForeignKey)


class _PhaseTimes:
    """Where apply's time went besides the table lines' loads: PostgreSQL building keys and
    indexes and checking foreign keys once the rows are in, and verification. On large tables these
    can take longer than the loads themselves; the summary says so rather than leave it unexplained."""

    def __init__(self) -> None:
        self.keys, self.key_seconds = 0, 0.0
        self.verified: float | None = None

    def add(self, event: StepEvent) -> None:
        if event.phase == "restart":  # the exact path runs every step again
            self.keys, self.key_seconds, self.verified = 0, 0.0, None
        elif event.phase == "done" and isinstance(event.step, _KEY_STEPS):
            self.keys, self.key_seconds = self.keys + 1, self.key_seconds + event.seconds
        elif event.phase == "done" and isinstance(event.step, VerifyStep):
            self.verified = event.seconds

    def seconds(self) -> dict[str, float | None]:
        return {"keys_and_indexes": self.key_seconds if self.keys else None, "verification": self.verified}

    def lines(self) -> list[str]:
        # The seconds in the column of the table lines' seconds.
        found = []
        if self.keys:
            label = f"keys and indexes ({self.keys})"
            found.append(f"  {label:<48} {self.key_seconds:8.2f} s")
        if self.verified is not None:
            found.append(f"  {'verification':<48} {self.verified:8.2f} s")
        return found


class _ProgressBar:
    """On a terminal: one live line, what apply is doing, and for a table being loaded a bar of its
    rows with the rate (from PostgreSQL's progress of the COPY, see executor.StepEvent "progress").
    Lines printed on its console appear above it; it leaves nothing behind when it stops."""

    def __init__(self, console: Console) -> None:
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn

        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[count]}"),
            TextColumn("{task.fields[rate]}"),
            console=console,
            transient=True,
        )
        self._task = self._progress.add_task("starting", total=None, count="", rate="")
        self._started = time.perf_counter()
        self._total: int | None = None
        self._progress.start()

    def show(self, event: StepEvent) -> None:
        step = event.step
        if event.phase == "start":
            self._started = time.perf_counter()
            self._total = step.table.source_rows if isinstance(step, LoadRows) else None
            count = f"0/{self._total:,}" if self._total is not None else ""
            self._progress.update(
                self._task,
                description=_doing(step),
                total=self._total,
                completed=0,
                count=count,
                rate="",
                refresh=True,  # a step may be over before the next timed refresh: show what runs now
            )
        elif event.phase == "progress" and event.rows is not None:
            elapsed = time.perf_counter() - self._started
            rate = f"{event.rows / elapsed:,.0f} rows/s" if elapsed > 0 else ""
            count = f"{event.rows:,}/{self._total:,}" if self._total is not None else f"{event.rows:,}"
            self._progress.update(self._task, completed=event.rows, count=count, rate=rate)

    def stop(self) -> None:
        self._progress.stop()


def _doing(step: Step) -> str:
    """What the live line says while a step runs: a table's name, or the phase (never a
    constraint's own name, which would read like a table being loaded)."""
    if isinstance(step, LoadRows | SyncRows | DeleteRows):
        verb = {LoadRows: "loading", SyncRows: "syncing", DeleteRows: "deleting from"}[type(step)]
        return f"{verb} {step.table.name}"
    if isinstance(step, _KEY_STEPS):
        return "building keys and indexes"
    if isinstance(step, VerifyStep):
        return "verifying every table"
    return "changing the schema"


@app.command(
    "rollback", epilog="\b\nExamples:\n  etl rollback spec.yaml --dry-run\n  etl rollback spec.yaml --yes"
)
def rollback_command(
    spec: SpecPath,
    target: TargetOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what rollback would do and change nothing.")
    ] = False,
    yes: Yes = False,
) -> None:
    """Restore the tables as they were before the last successful apply, from the copies it kept
    (rollback.retention in the spec). Shows the plan first."""
    from etl.run.rollback import apply_rollback, plan_rollback

    url = target
    try:
        checked = _load(spec, target)
        url = checked.spec.target_url
        plan = plan_rollback(url, checked.mapping.schema)
        out.print(f'Target: {display_url(url)} (schema "{plan.schema}")', markup=False)
        for line in rollback_lines(plan):
            _say_line(out, line)
        if dry_run:
            return
        if not yes and sys.stdin.isatty() and out.is_terminal and not _confirm("Roll back?"):
            err.print("Error: not rolled back; nothing was changed", markup=False)
            raise typer.Exit(1)
        apply_rollback(plan, url)
    except EtlError as exc:
        _fail(exc, url)
        return
    tables = counted(len(plan.restores), "table")
    out.print(f"Rolled back: {tables} as they were before {plan.run_started_at}. Committed.", markup=False)


@app.command(
    "verify",
    epilog="\b\nExamples:\n  etl verify spec.yaml\n  etl verify spec.yaml --verbose\n  etl verify spec.yaml --json",
)
def verify_command(
    spec: SpecPath,
    target: TargetOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the result as JSON (schemas/etl-verify.schema.json).")
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="List every entry of the schema ledger, the carried ones too (by default only the "
            "entries not carried as they are, and the summary).",
        ),
    ] = False,
) -> None:
    """Compare every table of the target with the source through the spec: row counts and
    checksums side by side; then the schema ledger: every schema object of the source and where
    it went (carried, translated, materialized, left out and why), checked against the target as
    it is; without --verbose, only the entries not carried as they are, and the summary. Exit 1 on any difference, naming the table and a sample of keys, or on an object the
    spec carries that the target lacks."""
    url = target
    try:
        checked = _load(spec, target)
        url = checked.spec.target_url
        verification = verify(checked)
        entries = ledger(checked)
    except EtlError as exc:
        _fail(exc, url)
        return
    missing = [e for e in entries if e.outcome == Outcome.MISSING]
    if as_json:
        document = {
            "ok": verification.ok and not missing,
            "tables": [
                {
                    "table": c.table,
                    "ok": c.ok,
                    "source_rows": c.source_rows,
                    "target_rows": c.target_rows,
                    "source_checksum": c.source_checksum,
                    "target_checksum": c.target_checksum,
                    "differing_keys": list(c.differing_keys),
                    "compared_by_nullness_only": list(c.unchecked_columns),
                }
                for c in verification.tables
            ],
        }
        if verification.views:
            document["views"] = [
                {"view": v.view, "ok": v.ok, "source_rows": v.source_rows, "target_rows": v.target_rows}
                for v in verification.views
            ]
        document["ledger"] = ledger_document(entries)
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        out.print(f"{'table':<32} {'source rows':>12} {'target rows':>12}  checksum", markup=False)
        for c in verification.tables:
            target_rows = "missing" if c.target_rows is None else f"{c.target_rows:,}"
            status = "same" if c.ok else "DIFFERENT"
            out.print(f"{c.table:<32} {c.source_rows:>12,} {target_rows:>12}  {status}", markup=False)
            for key in c.differing_keys:
                out.print(f"    {key}", markup=False)
        for v in verification.views:
            target_rows = "missing" if v.target_rows is None else f"{v.target_rows:,}"
            status = "same" if v.ok else "DIFFERENT"
            out.print(
                f"{'view ' + v.view:<32} {v.source_rows:>12,} {target_rows:>12}  {status}", markup=False
            )
        out.print("", markup=False)
        for line in ledger_lines(entries, verbose=verbose):
            _say_line(out, line)
    failures = []
    if not verification.ok:
        from etl.run.verify import describe_failures

        failures.append(f"the target differs from the source: {describe_failures(verification)}")
    if missing:
        named = "; ".join(f"{e.kind} {e.name}" for e in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        failures.append(
            f"{counted(len(missing), 'schema object')} the spec carries {'is' if len(missing) == 1 else 'are'} "
            f"missing in the target ({named}{more}): run `etl apply` to create them again"
        )
    if failures:
        err.print(f"Error: {'; '.join(failures)}", markup=False)
        raise typer.Exit(1)
    if not as_json:
        matched = counted(len(verification.tables), "table") + (
            f" and {counted(len(verification.views), 'view')}" if verification.views else ""
        )
        out.print(
            f"Verified: {matched} {'matches' if len(verification.tables) + len(verification.views) == 1 else 'match'} the source.",
            markup=False,
        )


@app.command(
    "init",
    epilog="\b\nExamples:\n  etl init app.db -o spec.yaml\n  etl init prisma/dev.db --prisma prisma/schema.prisma --target '${DATABASE_URL}'",
)
def init_command(
    sqlite: Annotated[Path, typer.Argument(help="The SQLite database to describe.", show_default=False)],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the spec.")] = Path(
        "spec.yaml"
    ),
    target: Annotated[
        str | None,
        typer.Option("--target", help="PostgreSQL URL to write into the spec (default: ${DATABASE_URL})."),
    ] = None,
    naming: Annotated[Naming, typer.Option("--naming", help="How target names are made.")] = Naming.KEEP,
    prisma: Annotated[
        Path | None,
        typer.Option(
            "--prisma", help="The app's schema.prisma: choose the types Prisma's postgresql provider expects."
        ),
    ] = None,
    prisma_version: Annotated[
        int | None,
        typer.Option(
            "--prisma-version",
            min=1,
            help="With --prisma: the app's Prisma major version, for its many-to-many tables' layout "
            "(default: read from package.json beside the schema, else 6).",
        ),
    ] = None,
    sample: Annotated[
        int | None,
        typer.Option("--sample", min=1, help="Profile about this many rows per table instead of all."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing spec.")] = False,
) -> None:
    """Write a spec for a SQLite database from its schema and its data."""
    from etl.init.infer import init_spec  # only init profiles data: the other commands start faster

    started = time.perf_counter()
    try:
        result = init_spec(
            sqlite,
            output,
            target,
            naming,
            force=force,
            sample_rows=sample,
            prisma_schema=prisma,
            prisma_major=prisma_version,
        )
    except EtlError as exc:
        _fail(exc, target)
        return
    seconds = time.perf_counter() - started
    out.print(
        f"Wrote {output}: {counted(result.tables, 'table')}, {counted(result.rows, 'row')} profiled in {seconds:.2f} s.",
        markup=False,
    )
    if result.url_variable and target:
        out.print(
            f"The URL given holds a password, which the spec does not keep: target.url reads "
            f"${{{result.url_variable}}}. Set it before etl validate, with the password in place of ***: "
            f"export {result.url_variable}='{display_url(target)}'",
            markup=False,
        )
    if result.findings:
        out.print(f"Findings ({len(result.findings)}), each marked !! in the spec:", markup=False)
        for finding in result.findings:
            out.print(f"  {finding}", markup=False)
    if result.schema_file is not None:
        out.print(
            f"Wrote {result.schema_file} beside it: editors check the spec with it (its first line says so).",
            markup=False,
        )
    out.print(f"Next: etl validate {output}", markup=False)


@app.command(
    "schema", epilog="\b\nExamples:\n  etl schema > etl-spec.schema.json\n  etl schema --write specs/"
)
def schema_command(
    write: Annotated[
        Path | None,
        typer.Option(
            "--write",
            metavar="DIR",
            help="Write etl-spec.schema.json into DIR (where specs' modelines find it) instead of printing it.",
        ),
    ] = None,
) -> None:
    """Print the JSON Schema of spec files (editors complete and check specs with it)."""
    if write is None:
        sys.stdout.write(SCHEMA_FILE.read_text(encoding="utf-8"))
        return
    from etl.init.infer import write_spec_schema

    try:
        path = write_spec_schema(write)
    except EtlError as exc:
        _fail(exc)
        return
    out.print(f"Wrote {path}", markup=False)


def _terminate(signum: int, _frame: object) -> None:
    """SIGTERM takes Ctrl-C's path: the apply rolls back, is recorded in etl.runs as interrupted,
    the user is told nothing was committed, and the spill directory is removed on exit."""
    _state["signal"] = signum
    raise KeyboardInterrupt


def _say_interrupted() -> int:
    """Tell the user what became of the target after Ctrl-C or SIGTERM; the exit code (128 + the signal)."""
    if _state.get("signal") == signal.SIGTERM:
        err.print("Error: terminated (SIGTERM); nothing was committed", markup=False)
        return 128 + signal.SIGTERM
    err.print("Error: interrupted; nothing was committed", markup=False)
    return 128 + signal.SIGINT


# Collections of the youngest generation this many allocations apart, and of the older ones
# rarely: a command builds the spec, the catalogs and the plan once and keeps them to the end, so
# with Python's defaults the collector walks them again and again as they grow, a cost that grows
# faster than the number of tables. Garbage cycles are still collected.
GC_THRESHOLDS = (50_000, 20, 10)


def _exit_now(code: str | int | None) -> None:
    """Exit with `code` as sys.exit would, without tearing the interpreter down: freeing every
    module's objects one by one (DuckDB, psycopg, jsonschema, typer, rich, etl) is a visible part
    of a short command's time, and nothing of it is seen. What a normal exit does that is
    seen happens first: the output flushed, the atexit handlers run (the spill directory removed).
    The normal exit is taken where it may matter: another thread still running, a profiler or
    tracer attached (it writes its results at exit), output that cannot be flushed, an exit code
    that is not a number."""
    if isinstance(code, str) or threading.active_count() > 1:
        sys.exit(code)
    if sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(code)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        sys.exit(code)  # Python reports what it could not write, as it always does
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        sys.exit(code)
    os._exit(code or 0)


def main() -> None:
    gc.set_threshold(*GC_THRESHOLDS)
    sweep_stale_spill_directories()
    atexit.register(remove_spill_directory)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        app()
    except SystemExit as exc:  # how typer ends every command, with its exit code
        _exit_now(exc.code)
    except KeyboardInterrupt:
        sys.exit(_say_interrupted())
    except Exception as exc:  # a bug in etl: still one line, still no secrets
        if _state["debug"]:
            raise
        err.print(
            f"Error: unexpected {type(exc).__name__}: {redact(str(exc), None)} "
            "(this is a bug in etl; run with --debug for a traceback)",
            markup=False,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
