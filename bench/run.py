#!/usr/bin/env python3
"""etl's performance benchmark: etl against the DuckDB floor and pgloader, in one run, on one machine.

    .venv/bin/python bench/run.py [--rows 1000000[,10000000]] [--datasets clean,shop]
                                  [--chat-messages 0] [--blobs [--blob-mb 16]]
                                  [--tables 0 [--table-rows 10]] [--repeat 1] [--markdown]
                                  [--only floor,etl,pgloader,plan] [--target-server URL] [--keep]

Builds the SQLite databases (cached in --workdir by size and seed: clean and shop at each size of
--rows), then for each one times, every load into a fresh PostgreSQL database that this script
creates and drops, in rounds (--repeat):

* floor: DuckDB alone (bench/floor.py): CREATE TABLE AS SELECT per table, then the same keys,
  indexes and foreign keys, in one transaction; floor (autocommit): each statement committing alone;
* etl init (the profiling cost), etl apply, and etl apply --no-verify when etl has that option;
* pgloader, when installed (--install-pgloader installs the Debian package);
* the re-syncs, against the target each round's etl apply just loaded: etl plan and etl apply
  unchanged, then after changing 0.1% of the biggest table's rows (when etl plan reports row
  differences).

--tables N (the fixed cost per table): etl init, etl plan on an empty target, etl apply into it,
etl plan on the target it loaded, and pgloader, as ratios to pgloader's time in the same run.

Every child is timed with time.perf_counter and reaped with os.wait4, whose ru_maxrss is the peak
memory of that child. Every load is checked afterwards by counting each table's rows in the target.
Prints a table per dataset (ratios to the faster floor, re-syncs to their round's load) and issue
21's targets as medians of round-by-round ratios, with --markdown README-ready tables, and writes
bench/results-<rows>.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import os
import platform
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import datasets
import duckdb
import psycopg
from datasets import Dataset
from psycopg import sql

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent / "samples"))
from pg_server import get_url, start_cluster, url_with_dbname  # noqa: E402

FLOOR, FLOOR_AUTOCOMMIT = "floor", "floor (autocommit)"
INIT, APPLY, APPLY_NO_VERIFY = "etl init", "etl apply", "etl apply --no-verify"
PGLOADER, PLAN, PLAN_CHANGED = "pgloader", "etl plan (unchanged)", "etl plan (0.1% changed)"
APPLY_UNCHANGED, APPLY_CHANGED = "etl apply (unchanged)", "etl apply (0.1% changed)"
RESYNCS = (PLAN, APPLY_UNCHANGED, PLAN_CHANGED, APPLY_CHANGED)  # against the target etl apply loaded
PLAN_FRESH = "etl plan (fresh)"
TOOLS = ("floor", "etl", "pgloader", "plan")
ROW_DATASETS = ("clean", "shop")  # --datasets: the clean datasets whose size --rows sets
DB_PREFIX = "etl_bench_"
MB = 1 << 20


# --- what ran and how it went ------------------------------------------------------------------------


@dataclass
class Result:
    """One measured (or deliberately not measured) step."""

    step: str
    status: str = "ok"
    seconds: float | None = None
    exit_code: int | None = None
    peak_mb: float | None = None
    detail: str = ""
    log: str | None = None
    rounds: list[float] = field(default_factory=list)  # each run's seconds, in the order of the rounds

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass
class Report:
    dataset: Dataset
    counts: dict[str, int]
    results: list[Result] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(self.counts.values())

    def get(self, step: str) -> Result | None:
        return next((r for r in self.results if r.step == step), None)

    def seconds(self, step: str) -> float | None:
        """Wall time of ``step`` if it ran and succeeded."""
        result = self.get(step)
        return result.seconds if result and result.ok else None

    def floors(self) -> list[Result]:
        return [r for r in map(self.get, (FLOOR, FLOOR_AUTOCOMMIT)) if r is not None and r.ok]

    def floor_seconds(self) -> float | None:
        """The faster floor's median wall time (in one transaction, or each statement committing alone)."""
        return min((r.seconds for r in self.floors() if r.seconds is not None), default=None)


@dataclass(frozen=True)
class Tools:
    etl: str
    apply_no_verify: bool  # `etl apply --help` lists --no-verify
    plan: bool  # `etl plan --help` works
    pgloader: str | None


@dataclass(frozen=True)
class Context:
    server: str
    workdir: Path
    only: frozenset[str]
    keep: bool
    tools: Tools
    repeat: int = 1  # runs of each step; the median wall time is reported
    db_prefix: str = DB_PREFIX  # of the target databases' names


# --- running children --------------------------------------------------------------------------------


GNU_TIME = Path("/usr/bin/time")


def measure(step: str, command: list[str], log: Path, target: str | None = None) -> Result:
    """Run ``command`` with its output in ``log``: wall time, exit code and the child's peak memory.

    ``target`` is also given to the child as $DATABASE_URL, which the specs of `etl init` name (etl
    resolves ${DATABASE_URL} even when --target overrides it).
    """
    env = dict(os.environ, DATABASE_URL=target) if target else None
    log.parent.mkdir(parents=True, exist_ok=True)
    # A child forked from this (large) process starts with its pages, and ru_maxrss keeps that
    # peak across exec. GNU time, small itself, forks the command and reports the command's own peak.
    memory_file = log.with_suffix(".maxrss")
    if GNU_TIME.exists():
        command = [str(GNU_TIME), "-f", "%M", "-o", str(memory_file), *command]
    with log.open("wb") as out:
        started = time.perf_counter()
        child = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
    child.returncode = code = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    peak_kb = usage.ru_maxrss
    if memory_file.exists() and memory_file.read_text().split():
        peak_kb = int(memory_file.read_text().split()[-1])
    print(f"  {step:<24} {seconds:9.2f} s  exit {code}  peak {peak_kb / 1024:,.0f} MB", flush=True)
    return Result(
        step,
        status="ok" if code == 0 else f"failed (exit {code})",
        seconds=seconds,
        exit_code=code,
        peak_mb=peak_kb / 1024,  # KB on Linux
        detail="" if code == 0 else first_error(log),
        log=str(log),
    )


def first_error(log: Path) -> str:
    for line in log.read_text(errors="replace").splitlines():
        if re.search(r"ERROR|FATAL|[Ee]rror|failed", line):
            line = re.sub(r"^\d{4}-\d\d-\d\dT\S+\s+", "", line)  # pgloader's timestamps
            return " ".join(line.split())[:300]
    return ""


def not_run(step: str, why: str) -> Result:
    return Result(step, status=why)


def help_text(command: list[str]) -> str | None:
    """A command's --help output, or None if it does not exist (non-zero exit)."""
    env = dict(os.environ, COLUMNS="200", NO_COLOR="1")
    done = subprocess.run([*command, "--help"], capture_output=True, text=True, env=env)
    return done.stdout if done.returncode == 0 else None


# --- target databases ----------------------------------------------------------------------------------


def admin(server: str, statement: sql.Composed) -> None:
    with psycopg.connect(url_with_dbname(server, "postgres"), autocommit=True) as conn:
        conn.execute(statement)


@contextmanager
def fresh_database(ctx: Context, dataset: Dataset, step: str) -> Iterator[str]:
    """A new, empty database for one load; dropped afterwards unless --keep."""
    name = ctx.db_prefix + re.sub(r"[^a-z0-9]+", "_", f"{dataset.label}_{step}".lower()).strip("_")
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    admin(ctx.server, drop)
    admin(ctx.server, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    settle(ctx)
    try:
        yield url_with_dbname(ctx.server, name)
    finally:
        if not ctx.keep:
            admin(ctx.server, drop)


def settle(ctx: Context) -> None:
    """Start a step with no dirty buffers of the step before: without a CHECKPOINT, PostgreSQL
    writes the previous load's rows while the next tool loads, and that tool looks slower than
    it is (see RESULTS.md)."""
    # CHECKPOINT needs a superuser or pg_checkpoint: without, steps share the server as it is.
    with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
        admin(ctx.server, sql.SQL("CHECKPOINT"))


def target_counts(url: str, tables: list[str]) -> dict[str, int | None]:
    """Rows in the target for each source table (matched by name, then case-insensitively); None if missing."""
    with psycopg.connect(url) as conn:
        present = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema', 'etl') "
            # etl's copies kept for rollback bear the tables' names
            "AND table_schema NOT LIKE 'etl\\_history\\_%'"
        ).fetchall()
        exact = {name: (schema, name) for schema, name in present}
        folded = {name.lower(): (schema, name) for schema, name in present}
        counts: dict[str, int | None] = {}
        for table in tables:
            found = exact.get(table) or folded.get(table.lower())
            count = sql.SQL("SELECT count(*) FROM {}.{}")
            counts[table] = None if found is None else scalar(conn, count.format(*map(sql.Identifier, found)))
    return counts


def scalar(conn: psycopg.Connection, query: sql.Composed | str) -> Any:
    row = conn.execute(query).fetchone()
    return row[0] if row else None


def check_rows(result: Result, url: str, expected: dict[str, int]) -> None:
    """Turn ``result`` into a failure unless every source table arrived with all its rows."""
    got = target_counts(url, list(expected))
    missing = [table for table in expected if got[table] is None]
    short = [f"{t}: {got[t]:,} of {n:,} rows" for t, n in expected.items() if got[t] not in (None, n)]
    if not missing and not short:
        return
    loaded = len(expected) - len(missing) - len(short)
    why = [f"exit {result.exit_code}", f"{loaded} of {len(expected)} tables loaded"]
    if short:
        why.append("row mismatch")
    result.status = f"failed ({', '.join(why)})"
    listed = f"missing: {', '.join(missing[:8])}{' ...' * (len(missing) > 8)}" if missing else ""
    error = result.detail or first_error(Path(str(result.log)))
    result.detail = "; ".join(filter(None, [error, listed, *short[:8]]))


@contextmanager
def loaded(
    ctx: Context, report: Report, step: str, command: Callable[[str], list[str]]
) -> Iterator[tuple[Result, str]]:
    """Run a load into a fresh database, check its rows, and keep the database for the caller's block."""
    with fresh_database(ctx, report.dataset, step) as url:
        result = measure(step, command(url), log_path(ctx, report.dataset, step), url)
        check_rows(result, url, report.counts)
        yield result, url


def _load_single(ctx: Context, report: Report, step: str, command: Callable[[str], list[str]]) -> Result:
    with loaded(ctx, report, step, command) as (result, _):
        return result


def repeated(ctx: Context, run: Callable[[], Result]) -> Result:
    """``run`` ctx.repeat times, one after the other (stopping at a failure), summarized."""
    runs: list[Result] = []
    while len(runs) < ctx.repeat and (not runs or runs[-1].ok):
        runs.append(run())
    return summarized(runs)


def summarized(runs: list[Result]) -> Result:
    """The median wall time and the largest peak memory of the runs, or the first failure."""
    failed = next((r for r in runs if not r.ok), None)
    if failed is not None or len(runs) == 1:
        return failed or dataclasses.replace(runs[0], rounds=[runs[0].seconds or 0.0])
    times = sorted(r.seconds or 0.0 for r in runs)
    note = f"median of {len(runs)} runs: {', '.join(f'{t:.2f}' for t in times)} s"
    return dataclasses.replace(
        runs[0],
        seconds=statistics.median(times),
        peak_mb=max(r.peak_mb or 0.0 for r in runs),
        detail="; ".join(filter(None, [runs[0].detail, note])),
        rounds=[r.seconds or 0.0 for r in runs],
    )


@dataclass(frozen=True)
class Paired:
    """A step's time over a base's (the floor, the load) round by round: the two ran in the same
    round, in the same spell of the machine, so their ratios move less than the times."""

    ratios: list[float]
    note: str

    @property
    def median(self) -> float | None:
        return statistics.median(self.ratios) if self.ratios else None


def paired(mine: Result | None, base: list[float], what: str = "") -> Paired:
    """``mine``'s rounds over ``base`` (one time per round): the median ratio and a note listing them."""
    if not mine or not mine.ok or not base or len(mine.rounds) != len(base):
        return Paired([], "")
    ratios = sorted(m / b for m, b in zip(mine.rounds, base, strict=True) if b)
    listed = f"round by round: {', '.join(f'{r:.2f}' for r in ratios)}" if len(ratios) > 1 else ""
    return Paired(ratios, "; ".join(filter(None, [what, listed])))


def floor_rounds(report: Report) -> tuple[list[float], str]:
    """The faster of the two floors in each round, and which one it was how often."""
    floors = [r for r in report.floors() if r.rounds]
    if not floors or len({len(r.rounds) for r in floors}) != 1:
        return [], ""
    best = [min(times) for times in zip(*(r.rounds for r in floors), strict=True)]
    wins = [
        sum(1 for times in zip(*(r.rounds for r in floors), strict=True) if min(times) == times[i])
        for i in range(len(floors))
    ]
    rounds = len(best)
    which = [
        f"{r.step} {n} of {rounds}" if rounds > 1 else r.step for r, n in zip(floors, wins, strict=True) if n
    ]
    return best, "faster floor: " + ", ".join(which)


def versus_floor(report: Report, step: str) -> Paired:
    base, which = floor_rounds(report)
    return paired(report.get(step), base, which)


def versus_load(report: Report, step: str) -> Paired:
    """A re-sync's time over the fresh verified `etl apply` of the same round."""
    load = report.get(APPLY)
    return paired(report.get(step), load.rounds if load and load.ok else [])


def log_path(ctx: Context, dataset: Dataset, step: str) -> Path:
    slug = re.sub(r"[^a-z0-9]+", "-", step.lower()).strip("-")
    return ctx.workdir / "logs" / f"{dataset.path.stem}.{slug}.log"


# --- the steps ---------------------------------------------------------------------------------------


def run_init(ctx: Context, report: Report) -> tuple[Result, Path]:
    """etl init (timed: the profiling cost), writing the spec beside the database (its source path
    is then just the name)."""
    dataset, etl = report.dataset, ctx.tools.etl
    spec = dataset.path.with_suffix(".spec.yaml")
    init = repeated(
        ctx,
        lambda: measure(
            INIT, [etl, "init", str(dataset.path), "-o", str(spec), "--force"], log_path(ctx, dataset, INIT)
        ),
    )
    return init, spec


def run_loads(
    ctx: Context,
    report: Report,
    loads: list[tuple[str, Callable[[str], list[str]]]],
    resync: Callable[[str], list[Result]] | None,
) -> dict[str, Result]:
    """Each load ctx.repeat times, each into a fresh database, in rounds (floor, apply, ..., then
    again), so that a slower spell of the machine falls on every tool alike, not on one tool's
    runs. In each round, ``resync`` runs against the target etl apply just loaded, so every round's
    re-syncs start from the same state and compare with the load of their own round. Returns
    each step's summary."""
    runs: dict[str, list[Result]] = {step: [] for step, _ in loads}
    for _ in range(ctx.repeat):
        for step, command in loads:
            if runs[step] and not runs[step][-1].ok:
                continue  # failed once: reported as it failed
            if step == APPLY and resync is not None:
                with loaded(ctx, report, APPLY, command) as (apply, url):
                    resyncs = resync(url) if apply.ok else [not_run(PLAN, "not run (apply failed)")]
                runs[step].append(apply)
                for result in resyncs:
                    runs.setdefault(result.step, []).append(result)
            else:
                runs[step].append(_load_single(ctx, report, step, command))
    return {step: summarized(found) for step, found in runs.items()}


def run_etl(ctx: Context, dataset: Dataset, step: str, command: list[str], url: str) -> tuple[Result, str]:
    """One etl command against ``url`` after a checkpoint, and what it printed."""
    settle(ctx)
    result = measure(step, [ctx.tools.etl, *command, "--target", url], log_path(ctx, dataset, step), url)
    return result, Path(str(result.log)).read_text(errors="replace")


def run_resyncs(
    ctx: Context, report: Report, spec: Path, changed: tuple[Path, int], url: str
) -> list[Result]:
    """The re-syncs of one round against the target etl apply just loaded: etl plan and etl apply
    unchanged, then from a copy with 0.1% of the biggest table's rows changed (only if etl plan
    reports row counts). Each round loads a target of its own, so every round's re-syncs start
    from the same state; a target kept (--keep) gets the original applied again, unmeasured, so
    it holds what the load left."""
    dataset = report.dataset
    if not ctx.tools.plan:
        return [not_run(PLAN, "not measured (no etl plan)")]
    plan, output = run_etl(ctx, dataset, PLAN, ["plan", str(spec)], url)
    if not plan.ok:
        return [plan, *(not_run(step, "not run (etl plan failed)") for step in RESYNCS[1:])]
    apply, _ = run_etl(ctx, dataset, APPLY_UNCHANGED, ["apply", str(spec)], url)
    check_rows(apply, url, report.counts)
    if not (mentions_row_counts(output) or "No changes" in output):
        print("plan: not measured (row diff not implemented)", flush=True)
        why = "not measured (row diff not implemented)"
        return [plan, apply, not_run(PLAN_CHANGED, why), not_run(APPLY_CHANGED, why)]
    changed_spec, changed_rows = changed
    plan_changed, output = run_etl(ctx, dataset, PLAN_CHANGED, ["plan", str(changed_spec)], url)
    shown = re.search(rf"\b({changed_rows}|{changed_rows:,})\b", output)
    found = f"{changed_rows:,} rows changed, {'shown' if shown else 'not shown'} in the plan"
    plan_changed.detail = "; ".join(filter(None, [found, plan_changed.detail]))
    apply_changed, _ = run_etl(ctx, dataset, APPLY_CHANGED, ["apply", str(changed_spec)], url)
    check_rows(apply_changed, url, report.counts)
    if apply_changed.ok and ctx.keep and not restore_target(ctx, dataset, spec, url):
        apply_changed.detail = "restoring the target afterwards failed (see its log)"
    return [plan, apply, plan_changed, apply_changed]


def restore_target(ctx: Context, dataset: Dataset, spec: Path, url: str) -> bool:
    """Apply the original again (not measured), so the target holds what the fresh apply loaded."""
    log = log_path(ctx, dataset, "restore target")
    with log.open("wb") as out:
        done = subprocess.run(
            [ctx.tools.etl, "apply", str(spec), "--target", url],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(os.environ, DATABASE_URL=url),
        )
    return done.returncode == 0


def mentions_row_counts(plan_output: str) -> bool:
    """True if the plan reports numbers of rows ("1,000 rows", "12 changed rows"), not just "load rows"."""
    return re.search(r"\b\d[\d,]*\s+(?:\w+\s+)?rows?\b", plan_output) is not None


@contextmanager
def changed_copy(ctx: Context, dataset: Dataset, spec: Path) -> Iterator[tuple[Path, int]]:
    """A copy of the database and its spec with ~0.1% of the biggest table's rows updated: (spec, rows)."""
    folder = ctx.workdir / "changed"
    folder.mkdir(exist_ok=True)
    copy = folder / dataset.path.name
    shutil.copyfile(dataset.path, copy)
    shutil.copyfile(spec, folder / spec.name)  # its relative source path now names the copy
    db = sqlite3.connect(copy)
    try:
        changed = db.execute(dataset.mutation).rowcount
        db.commit()
    finally:
        db.close()
    try:
        yield folder / spec.name, changed
    finally:
        if not ctx.keep:
            shutil.rmtree(folder)


def run_wide(ctx: Context, report: Report) -> Report:
    """The many-tables dataset: its cost is per table, not per row, so it is measured against
    pgloader and in absolute seconds, not against the floor: etl init, etl plan on an empty target,
    etl apply into it, etl plan on the target it loaded, and pgloader."""
    dataset, etl = report.dataset, ctx.tools.etl
    if "etl" in ctx.only:
        init, spec = run_init(ctx, report)
        report.results.append(init)
        if init.ok:
            with fresh_database(ctx, dataset, APPLY) as url:

                def etl_step(step: str, *command: str) -> Result:
                    settle(ctx)
                    return measure(
                        step, [etl, *command, str(spec), "--target", url], log_path(ctx, dataset, step), url
                    )

                report.results.append(etl_step(PLAN_FRESH, "plan"))
                apply = etl_step(APPLY, "apply")
                check_rows(apply, url, report.counts)
                report.results.append(apply)
                if apply.ok and "plan" in ctx.only:
                    report.results.append(etl_step(PLAN, "plan"))
    if "pgloader" in ctx.only:
        if ctx.tools.pgloader is None:
            report.results.append(not_run(PGLOADER, "not installed (pass --install-pgloader)"))
        else:
            pgloader, source = ctx.tools.pgloader, f"sqlite://{dataset.path.resolve()}"
            report.results.append(_load_single(ctx, report, PGLOADER, lambda url: [pgloader, source, url]))
    return report


def run_dataset(ctx: Context, dataset: Dataset) -> Report:
    report = Report(dataset, datasets.row_counts(dataset.path))
    print(
        f"{dataset.label}: {report.rows:,} rows, {dataset.size_bytes / MB:,.1f} MB ({dataset.path})",
        flush=True,
    )
    if dataset.name == "wide":
        return run_wide(ctx, report)
    path, tools = str(dataset.path), ctx.tools
    loads: list[tuple[str, Callable[[str], list[str]]]] = []
    skipped: dict[str, Result] = {}
    if "floor" in ctx.only:
        floor = [sys.executable, str(BENCH_DIR / "floor.py")]
        loads.append((FLOOR, lambda url: [*floor, path, url]))
        loads.append((FLOOR_AUTOCOMMIT, lambda url: [*floor, "--autocommit", path, url]))
    init, spec = None, None
    if "etl" in ctx.only:
        init, spec = run_init(ctx, report)
        if not init.ok:
            skipped[APPLY] = not_run(APPLY, "not run (etl init failed)")
        else:
            loads.append((APPLY, lambda url: [tools.etl, "apply", str(spec), "--target", url]))
            if tools.apply_no_verify:
                loads.append(
                    (
                        APPLY_NO_VERIFY,
                        lambda url: [tools.etl, "apply", str(spec), "--target", url, "--no-verify"],
                    )
                )
            else:
                skipped[APPLY_NO_VERIFY] = not_run(
                    APPLY_NO_VERIFY, "not measured (etl apply has no --no-verify)"
                )
    if "pgloader" in ctx.only:
        if tools.pgloader is None:
            skipped[PGLOADER] = not_run(PGLOADER, "not installed (pass --install-pgloader)")
        else:
            pgloader, source = tools.pgloader, f"sqlite://{dataset.path.resolve()}"
            loads.append((PGLOADER, lambda url: [pgloader, source, url]))
    with contextlib.ExitStack() as stack:
        resync = None
        if spec is not None and init is not None and init.ok and "plan" in ctx.only:
            changed = stack.enter_context(changed_copy(ctx, dataset, spec))
            resync = functools.partial(run_resyncs, ctx, report, spec, changed)
        done = run_loads(ctx, report, loads, resync)
    found = {**done, **skipped, **({INIT: init} if init is not None else {})}
    order = [FLOOR, FLOOR_AUTOCOMMIT, INIT, APPLY, APPLY_NO_VERIFY, PGLOADER, *RESYNCS]
    report.results += [found[step] for step in order if step in found]
    return report


# --- set-up --------------------------------------------------------------------------------------------


def detect_tools(install_pgloader: bool) -> Tools:
    etl = str(Path(sys.executable).with_name("etl"))  # the CLI installed beside this Python
    if not Path(etl).exists():
        sys.exit(f"bench: no etl beside {sys.executable}; run it as .venv/bin/python bench/run.py")
    apply_help = help_text([etl, "apply"]) or ""
    if install_pgloader and shutil.which("pgloader") is None:
        install_debian_package("pgloader")
    return Tools(
        etl=etl,
        apply_no_verify="--no-verify" in apply_help,
        plan=help_text([etl, "plan"]) is not None,
        pgloader=shutil.which("pgloader"),
    )


def install_debian_package(name: str) -> None:
    print(f"installing {name} (apt-get)", flush=True)
    if subprocess.run(["apt-get", "install", "-y", name]).returncode != 0:
        subprocess.run(["apt-get", "update"], check=False)
        subprocess.run(["apt-get", "install", "-y", name], check=False)


def build_datasets(args: argparse.Namespace) -> list[Dataset]:
    built = []
    builders = {"clean": datasets.clean, "shop": datasets.shop}
    for rows in args.rows:  # each size in turn: every dataset of one size, then the next size
        built += [builders[name](args.workdir, rows, args.seed, args.rebuild) for name in args.datasets]
    if args.chat_messages > 0:
        built.append(
            datasets.chat(args.workdir, args.chat_messages, args.chat_users, args.seed, args.rebuild)
        )
    if args.blobs:
        built.append(datasets.blobs(args.workdir, args.blob_count, args.blob_mb, args.seed, args.rebuild))
    if args.tables > 0:
        built.append(datasets.wide(args.workdir, args.tables, args.table_rows, args.seed, args.rebuild))
    return built


def version_of(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True)
    except OSError:
        return "-"
    return (done.stdout or done.stderr).strip().splitlines()[0] if done.returncode == 0 else "-"


def pgloader_version(pgloader: str | None) -> str:
    """`3.6.7~devel` from `pgloader version "3.6.7~devel"`."""
    if pgloader is None:
        return "not installed"
    found = version_of([pgloader, "--version"])
    return re.sub(r'^pgloader version\s+"?([^"]*)"?$', r"\1", found)


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    found = re.search(r"model name\s*:\s*(.+)", cpuinfo.read_text()) if cpuinfo.exists() else None
    return found.group(1).strip() if found else platform.processor()


def machine_info(ctx: Context) -> dict[str, object]:
    with psycopg.connect(url_with_dbname(ctx.server, "postgres")) as conn:
        postgres = scalar(conn, "SHOW server_version")
    return {
        "cores": os.cpu_count(),
        "cpu": cpu_model(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9, 1),
        "postgresql": postgres,
        "duckdb": duckdb.__version__,
        "etl": version_of([ctx.tools.etl, "--version"]),
        "pgloader": pgloader_version(ctx.tools.pgloader),
        "python": platform.python_version(),
    }


# --- the report ----------------------------------------------------------------------------------------


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    return numerator / denominator if numerator is not None and denominator else None


def metrics(report: Report, result: Result) -> dict[str, float | None]:
    seconds = result.seconds
    resync = result.step in RESYNCS
    return {
        "rows_per_s": ratio(report.rows, seconds),
        "mb_per_s": ratio(report.dataset.size_bytes / MB, seconds),
        "x_floor": None if resync else ratio(seconds, report.floor_seconds()),
        "x_load": ratio(seconds, report.seconds(APPLY)) if resync else None,
    }


def target(name: str, value: float | None, op: str, limit: float, unit: str, note: str = "") -> dict:
    """One of the issue's targets: ``value op limit``, and whether it is met."""
    if value is None:
        verdict = "n/a"
    else:
        met = value < limit if op == "<" else value <= limit if op == "<=" else value >= limit
        verdict = "met" if met else "MISSED"
    return {
        "target": name,
        "value": value,
        "op": op,
        "limit": limit,
        "unit": unit,
        "verdict": verdict,
        "note": note,
    }


def wide_targets(report: Report) -> list[dict]:
    """Issue 21's targets for many small tables: against pgloader of the same run, and init in seconds."""
    pgloader, apply = report.seconds(PGLOADER), report.get(APPLY)
    return [
        target("apply / pgloader", ratio(report.seconds(APPLY), pgloader), "<=", 0.25, "x"),
        target("plan (unchanged) / pgloader", ratio(report.seconds(PLAN), pgloader), "<=", 0.1, "x"),
        target("plan (fresh) / pgloader", ratio(report.seconds(PLAN_FRESH), pgloader), "<=", 0.1, "x"),
        target("init", report.seconds(INIT), "<=", 5, "s"),
        target("apply peak memory", apply.peak_mb if apply and apply.ok else None, "<=", 500, "MB"),
    ]


PEAK_MB = 200  # issue 21: apply and plan stay under it (at 10M rows; reported at every size)


def peak(report: Report, step: str) -> float | None:
    result = report.get(step)
    return result.peak_mb if result and result.ok else None


def targets(report: Report, tools: Tools) -> list[dict]:
    """Issue 21's targets, measured on this dataset: ratios are medians of the round-by-round ratios."""
    if report.dataset.name == "wide":
        return wide_targets(report)
    if tools.apply_no_verify:
        unverified, verified, why = versus_floor(report, APPLY_NO_VERIFY), versus_floor(report, APPLY), ""
    else:  # nothing to switch off: today's apply is the unverified one
        unverified, verified, why = (
            versus_floor(report, APPLY),
            Paired([], ""),
            "etl apply has no --no-verify",
        )
    apply = report.get(APPLY)
    pgloader = report.get(PGLOADER)
    speed_up = paired(pgloader, apply.rounds if apply and apply.ok else [])
    pgloader_note = f"pgloader {pgloader.status}" if pgloader and not pgloader.ok else speed_up.note
    found = [
        target(
            "apply without verification / floor", unverified.median, "<=", 1.1, "x", why or unverified.note
        ),
        target("apply with verification / floor", verified.median, "<=", 1.3, "x", why or verified.note),
    ]
    if tools.pgloader is not None:
        found.append(target("pgloader / apply (speed-up)", speed_up.median, ">=", 2, "x", pgloader_note))
    found += [
        target(f"{step} peak memory", peak(report, step), "<", PEAK_MB, "MB")
        for step in (APPLY, PLAN, PLAN_CHANGED)
    ]
    # Re-syncs cost what changed: tables unchanged since the last apply are skipped.
    for step, limit in ((PLAN, 0.1), (APPLY_UNCHANGED, 0.1), (PLAN_CHANGED, 0.2), (APPLY_CHANGED, 0.2)):
        versus = versus_load(report, step)
        found.append(target(f"{step} / etl apply", versus.median, "<=", limit, "x", versus.note))
    return found


def apply_memory_by_size(reports: list[Report]) -> dict[tuple[str, int], float]:
    """etl apply's peak MB on the clean datasets by name and rows: bench/results-*.json, then this run."""
    found: dict[tuple[str, int], float] = {}
    runs = [json.loads(p.read_text())["datasets"] for p in sorted(BENCH_DIR.glob("results-*.json"))]
    runs.append(
        [{"name": r.dataset.name, "rows": r.rows, "results": map(asdict, r.results)} for r in reports]
    )
    for run in runs:
        for data in (d for d in run if d["name"] in ROW_DATASETS):
            for result in data["results"]:
                if result["step"] == APPLY and result["status"] == "ok":
                    found[data["name"], data["rows"]] = result["peak_mb"]
    return dict(sorted(found.items()))


def fmt(value: float | None, digits: int = 2, suffix: str = "") -> str:
    return "-" if value is None else f"{value:,.{digits}f}{suffix}"


def table_lines(report: Report) -> list[str]:
    header = ("step", "wall s", "rows/s", "MB/s", "peak MB", "exit", "x floor", "x load", "result")
    rows = [header]
    for r in report.results:
        m = metrics(report, r)
        rows.append(
            (
                r.step,
                fmt(r.seconds),
                fmt(m["rows_per_s"], 0),
                fmt(m["mb_per_s"], 1),
                fmt(r.peak_mb, 0),
                "-" if r.exit_code is None else str(r.exit_code),
                fmt(m["x_floor"], 2, "x"),
                fmt(m["x_load"], 2, "x"),
                r.status,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return [
        "  ".join(
            cell.ljust(w) if i in (0, len(header) - 1) else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


def machine_line(machine: dict[str, object]) -> str:
    return (
        f"{machine['cores']} cores ({machine['cpu']}), {machine['memory_gb']} GB memory, "
        f"PostgreSQL {machine['postgresql']}, DuckDB {machine['duckdb']}, {machine['etl']}, "
        f"pgloader {machine['pgloader']}"
    )


def print_report(machine: dict[str, object], reports: list[Report], tools: Tools) -> None:
    print()
    print(f"machine: {machine_line(machine)}")
    for report in reports:
        counts = ", ".join(f"{t} {n:,}" for t, n in report.counts.items())
        if len(report.counts) > 8:  # many tables: how many, not each
            counts = f"{len(report.counts):,} tables"
        size = report.dataset.size_bytes / MB
        print(f"\n{report.dataset.label}: {report.rows:,} rows ({counts}), SQLite file {size:,.1f} MB")
        for line in table_lines(report):
            print("  " + line)
        for r in report.results:
            if r.detail:
                print(f"  * {r.step}: {r.detail}")
        print("  targets:")
        for t in targets(report, tools):
            value = fmt(t["value"], 0 if t["unit"] == "MB" else 2, " " + str(t["unit"]))
            limit = f"{t['op']} {t['limit']:g} {t['unit']}"
            note = f"  ({t['note']})" if t["note"] else ""
            print(f"    {t['target']:<38} {value:>10}  {limit:<10} {t['verdict']}{note}")
    by_size = apply_memory_by_size(reports)
    if by_size:  # "flat from 1M to 10M rows" compares runs of several sizes
        sizes = "; ".join(f"{name} {rows:,} rows {mb:,.0f} MB" for (name, rows), mb in by_size.items())
        print(f"\netl apply peak memory by size (this run and bench/results-*.json): {sizes}")


# --- README-ready tables (--markdown) -------------------------------------------------------------------


def seconds_cell(result: Result | None, versus: Paired | None = None, of: str = "") -> str:
    """`2.25 s (1.08x)`, the median ratio ``versus`` found; a step that failed or did not run says so."""
    if result is None:
        return "-"
    if not result.ok or result.seconds is None:
        return result.status
    times = f"{result.seconds:,.2f} s"
    return f"{times} ({versus.median:.2f}x{' ' + of if of else ''})" if versus and versus.median else times


def peak_cell(report: Report, *steps: str) -> str:
    peaks = [mb for mb in map(functools.partial(peak, report), steps) if mb is not None]
    return f"{max(peaks):,.0f} MB" if peaks else "-"


def floor_cell(report: Report) -> str:
    fastest = min(report.floors(), key=lambda r: r.seconds or 0.0, default=None)
    if fastest is None:
        return seconds_cell(report.get(FLOOR))
    which = "autocommit" if fastest.step == FLOOR_AUTOCOMMIT else "one transaction"
    return f"{seconds_cell(fastest)} ({which})"


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def data_cell(report: Report) -> str:
    return f"{report.dataset.name}, {report.rows:,} rows"


def rows_table(reports: list[Report]) -> list[str]:
    header = [
        "data",
        "floor",
        "etl apply --no-verify",
        "etl apply (verified)",
        "pgloader",
        "peak memory (apply)",
    ]
    rows = []
    for r in reports:
        apply = r.get(APPLY)
        speed_up = paired(r.get(PGLOADER), apply.rounds if apply and apply.ok else [])
        rows.append(
            [
                data_cell(r),
                floor_cell(r),
                seconds_cell(r.get(APPLY_NO_VERIFY), versus_floor(r, APPLY_NO_VERIFY)),
                seconds_cell(apply, versus_floor(r, APPLY)),
                seconds_cell(r.get(PGLOADER), speed_up, "of etl apply"),
                peak_cell(r, APPLY),
            ]
        )
    return markdown_table(header, rows)


def resync_table(reports: list[Report]) -> list[str]:
    header = [
        "data",
        "etl apply (the load)",
        "etl plan, unchanged",
        "etl apply, unchanged",
        "etl plan, 0.1% changed",
        "etl apply, 0.1% changed",
        "peak memory (plans)",
    ]
    rows = [
        [
            data_cell(r),
            seconds_cell(r.get(APPLY)),
            *(seconds_cell(r.get(step), versus_load(r, step)) for step in RESYNCS),
            peak_cell(r, PLAN, PLAN_CHANGED),
        ]
        for r in reports
    ]
    return markdown_table(header, rows)


def wide_table(reports: list[Report]) -> list[str]:
    header = [
        "tables",
        "etl init",
        "etl plan, empty target",
        "etl apply (verified)",
        "etl plan, unchanged",
        "pgloader",
        "peak memory (apply)",
    ]
    rows = [
        [
            f"{len(r.counts):,}",
            seconds_cell(r.get(INIT)),
            *(versus_pgloader_cell(r, step) for step in (PLAN_FRESH, APPLY, PLAN)),
            seconds_cell(r.get(PGLOADER)),
            peak_cell(r, APPLY),
        ]
        for r in reports
    ]
    return markdown_table(header, rows)


def versus_pgloader_cell(report: Report, step: str) -> str:
    """The wide dataset runs each step once: one ratio to pgloader's time."""
    share = ratio(report.seconds(step), report.seconds(PGLOADER))
    return seconds_cell(report.get(step), Paired([share] if share else [], ""), "of pgloader")


def markdown_lines(machine: dict[str, object], reports: list[Report], repeat: int) -> list[str]:
    """One table per dimension of issue 21, ready for README's Performance section."""
    runs = "one run" if repeat == 1 else f"medians of {repeat} rounds (ratios: medians of each round's ratio)"
    day = time.strftime("%Y-%m-%d", time.gmtime())
    lines = [f"Machine: {machine_line(machine)}; {day}, `bench/run.py`, {runs}."]
    loads = [r for r in reports if r.dataset.name != "wide"]
    wide = [r for r in reports if r.dataset.name == "wide"]
    if loads:
        lines += [
            "",
            "**Rows** (floor: DuckDB alone, the faster of one transaction and autocommit; x: of it):",
            "",
        ]
        lines += rows_table(loads)
    if any(r.get(step) for r in loads for step in RESYNCS):
        lines += [
            "",
            "**Re-syncs** against the target the apply loaded (x: of that apply, round by round):",
            "",
        ]
        lines += resync_table([r for r in loads if any(r.get(step) for step in RESYNCS)])
    if wide:
        lines += ["", "**Many tables** (x: of pgloader's time):", ""]
        lines += wide_table(wide)
    return lines


def jsonable(value: object) -> object:
    if isinstance(value, Path):
        return str(value)
    return sorted(value) if isinstance(value, frozenset) else value


def to_json(
    machine: dict[str, object], reports: list[Report], tools: Tools, args: argparse.Namespace
) -> dict:
    return {
        "machine": machine,
        "arguments": {k: jsonable(v) for k, v in vars(args).items()},
        "etl_options": {"apply --no-verify": tools.apply_no_verify, "plan": tools.plan},
        "datasets": [
            {
                "name": r.dataset.name,
                "label": r.dataset.label,
                "size": r.dataset.size,
                "sqlite": str(r.dataset.path),
                "sqlite_mb": round(r.dataset.size_bytes / MB, 2),
                "rows": r.rows,
                "tables": r.counts,
                "results": [{**asdict(x), **metrics(r, x)} for x in r.results],
                "targets": targets(r, tools),
            }
            for r in reports
        ],
    }


# --- command line --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Benchmark etl against the DuckDB floor and pgloader (see bench/README.md)."
    )
    p.add_argument(
        "--rows",
        type=row_sizes,
        default=[1_000_000],
        help="comma-separated sizes, each its own dataset in this run: rows of the biggest table of "
        "each of --datasets (clean: events, users rows/10; shop: order_lines, orders rows/4, "
        "customers rows/20); 0 skips them. Default 1000000",
    )
    p.add_argument(
        "--datasets",
        default=",".join(ROW_DATASETS),
        help=f"comma-separated subset of {','.join(ROW_DATASETS)}: the datasets --rows sizes (default both)",
    )
    p.add_argument(
        "--chat-messages", type=int, default=0, help="also run the chat-app sample with this many messages"
    )
    p.add_argument("--chat-users", type=int, default=50, help="users of the chat-app sample (default 50)")
    p.add_argument(
        "--blobs", action="store_true", help="also run a table of --blob-count rows of --blob-mb MB BLOBs"
    )
    p.add_argument("--blob-count", type=int, default=100, help="rows of the BLOB table (default 100)")
    p.add_argument("--blob-mb", type=int, default=16, help="MB per BLOB (default 16)")
    p.add_argument(
        "--tables",
        type=int,
        default=0,
        help="also run a database of this many small tables (--table-rows rows each, an index and "
        "a foreign key each), timed against pgloader: init, plan (fresh), apply, plan (unchanged)",
    )
    p.add_argument("--table-rows", type=int, default=10, help="rows per table of --tables (default 10)")
    p.add_argument(
        "--only",
        default=",".join(TOOLS),
        help=f"comma-separated subset of {','.join(TOOLS)} (plan implies etl)",
    )
    p.add_argument(
        "--target-server", help="PostgreSQL server URL (default: $DATABASE_URL, 127.0.0.1:5432, or embedded)"
    )
    p.add_argument("--workdir", type=Path, default=Path("/tmp/etl-bench"), help="where databases and logs go")
    p.add_argument("--seed", type=int, default=1, help="seed of the generated data (default 1)")
    p.add_argument("--rebuild", action="store_true", help="rebuild the SQLite databases even if cached")
    p.add_argument(
        "--keep", action="store_true", help="keep the target databases (etl_bench_*) after the run"
    )
    p.add_argument(
        "--db-prefix",
        default=DB_PREFIX,
        help=f"prefix of the target databases' names (default {DB_PREFIX}): two runs on one server need two",
    )
    p.add_argument(
        "--install-pgloader", action="store_true", help="apt-get install pgloader if it is missing"
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run each step N times and report the median wall time (default 1)",
    )
    p.add_argument("--json", type=Path, help="where to write the results (default bench/results-<rows>.json)")
    p.add_argument(
        "--markdown", action="store_true", help="also print README-ready tables, one per dimension"
    )
    args = p.parse_args(argv)
    only = {t.strip() for t in args.only.split(",") if t.strip()}
    if only - set(TOOLS):
        p.error(f"--only: unknown {', '.join(sorted(only - set(TOOLS)))} (choose from {', '.join(TOOLS)})")
    args.only = frozenset(only | ({"etl"} if "plan" in only else set()))
    chosen = [d.strip() for d in args.datasets.split(",") if d.strip()]
    if set(chosen) - set(ROW_DATASETS):
        unknown = ", ".join(sorted(set(chosen) - set(ROW_DATASETS)))
        p.error(f"--datasets: unknown {unknown} (choose from {', '.join(ROW_DATASETS)})")
    args.datasets = list(dict.fromkeys(chosen))
    return args


def row_sizes(text: str) -> list[int]:
    """``1000000,10000000`` -> [1000000, 10000000]; 0 alone means none."""
    try:
        sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of row counts") from None
    if any(size < 0 for size in sizes):
        raise argparse.ArgumentTypeError(f"{text!r}: row counts are 0 or more")
    return [size for size in dict.fromkeys(sizes) if size > 0]


def byte_compile() -> None:
    """Compile etl and the bench scripts' modules once, as pip does when it installs a package: with
    PYTHONDONTWRITEBYTECODE set (as on our machines) every run of a checkout would compile etl's
    modules again at the start of each `etl` command, and every timing would include it."""
    import compileall

    for folder in (BENCH_DIR.parent / "etl", BENCH_DIR):
        compileall.compile_dir(folder, quiet=1)


# An upper bound of the locks etl apply's one transaction takes per table of the wide dataset (the
# table, its row type, TOAST table and index, key index, created_at index, key and foreign key
# constraints, identity sequence) and for everything else (etl/core/locks.py counts them for apply).
WIDE_TABLE_LOCKS, OTHER_LOCKS = 9, 100


@contextmanager
def server_for_tables(server: str, tables: int, workdir: Path) -> Iterator[str]:
    """`server`, unless its lock table cannot hold `tables` tables created in one transaction (etl
    apply refuses such a plan): then a cluster of the same PostgreSQL started in the workdir with a
    max_locks_per_transaction that can, and stopped at the end. The shared server's settings are
    never changed."""
    if not tables:
        yield server
        return
    from etl.postgres.target import read_lock_capacity

    capacity = read_lock_capacity(url_with_dbname(server, "postgres"))
    needed = tables * WIDE_TABLE_LOCKS + OTHER_LOCKS
    if needed <= capacity.slots:
        yield server
        return
    holders = capacity.holders
    setting = -(-2 * needed // holders // 64) * 64  # twice the need, for the other sessions' locks
    directory = workdir / f"cluster-{os.getpid()}"
    print(
        f"{tables:,} tables need about {needed:,} locks in one transaction; the server holds "
        f"about {capacity.slots:,}: starting a cluster in {directory} with "
        f"max_locks_per_transaction = {setting}",
        flush=True,
    )
    cluster = start_cluster(
        directory,
        {"max_locks_per_transaction": setting, "max_connections": capacity.max_connections, "fsync": "on"},
    )
    try:
        yield cluster.url
    finally:
        cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)


def results_name(args: argparse.Namespace) -> str:
    """`1000000-10000000` for the sizes of --rows; `wide-N` for --tables N alone."""
    if args.tables and not args.rows:
        return f"wide-{args.tables}"
    return "-".join(map(str, args.rows)) or "0"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    byte_compile()
    tools = detect_tools(args.install_pgloader)
    server = args.target_server or get_url("DATABASE_URL")
    with server_for_tables(server, args.tables, args.workdir) as server:
        ctx = Context(server, args.workdir, args.only, args.keep, tools, args.repeat, args.db_prefix)
        machine = machine_info(ctx)
        reports = [run_dataset(ctx, dataset) for dataset in build_datasets(args)]
    print_report(machine, reports, tools)
    if args.markdown:
        print("\n" + "\n".join(markdown_lines(machine, reports, args.repeat)))
    out = args.json or BENCH_DIR / f"results-{results_name(args)}.json"
    out.write_text(json.dumps(to_json(machine, reports, tools, args), indent=2) + "\n")
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
