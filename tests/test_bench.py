"""bench/run.py reports every dimension of issue 21 in one run: loads against both floors, re-syncs
unchanged and 0.1% changed, several sizes, two clean datasets, and README-ready tables."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench" / "run.py"

LOADS = ["floor", "floor (autocommit)", "etl init", "etl apply", "etl apply --no-verify"]
RESYNCS = [
    "etl plan (unchanged)",
    "etl apply (unchanged)",
    "etl plan (0.1% changed)",
    "etl apply (0.1% changed)",
]
TARGETS = [
    "apply without verification / floor",
    "apply with verification / floor",
    "pgloader / apply (speed-up)",
    "etl apply peak memory",
    "etl plan (unchanged) peak memory",
    "etl plan (0.1% changed) peak memory",
    "etl plan (unchanged) / etl apply",
    "etl apply (unchanged) / etl apply",
    "etl plan (0.1% changed) / etl apply",
    "etl apply (0.1% changed) / etl apply",
]


def run_bench(tmp_path: Path, server: str, *options: str) -> tuple[subprocess.CompletedProcess[str], Any]:
    """bench/run.py with its files in tmp_path and target databases of its own prefix; (process, JSON)."""
    prefix = f"etl_bench_test_{os.getpid()}_"
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, str(BENCH), *options, "--workdir", str(tmp_path / "work"), "--json", str(out)]
        + ["--target-server", server, "--db-prefix", prefix],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with psycopg.connect(server, autocommit=True) as conn:
        left = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", [prefix + "%"])
        assert left.fetchall() == [], "bench/run.py drops its target databases"
    return done, json.loads(out.read_text())


def test_one_run_reports_loads_resyncs_and_targets(tmp_path: Path, pg_server_url: str):
    # One dataset: every step and target is the same code for each (both are built below), and
    # each step costs a child process and a database.
    done, results = run_bench(
        tmp_path,
        pg_server_url,
        "--rows",
        "3000",
        "--datasets",
        "shop",
        "--only",
        "floor,etl,plan",
        "--markdown",
    )

    assert [(d["name"], d["size"]) for d in results["datasets"]] == [("shop", 3000)]
    shop = results["datasets"][0]
    assert shop["tables"] == {"customers": 150, "orders": 750, "order_lines": 3000}
    for dataset in results["datasets"]:
        steps = {r["step"]: r for r in dataset["results"]}
        assert list(steps) == LOADS + RESYNCS
        assert {step: r["status"] for step, r in steps.items()} == dict.fromkeys(steps, "ok")
        assert all(r["x_load"] is not None for r in map(steps.get, RESYNCS))
        assert "3 rows changed, shown in the plan" in steps["etl plan (0.1% changed)"]["detail"]
        found = {t["target"]: t for t in dataset["targets"]}
        assert list(found) == TARGETS
        measured = [t for t in found.values() if t["target"] != "pgloader / apply (speed-up)"]
        assert all(t["verdict"] in ("met", "MISSED") for t in measured), measured
        assert "faster floor: floor" in found["apply with verification / floor"]["note"]

    assert "| shop, 3,900 rows |" in done.stdout
    for table in ("**Rows**", "**Re-syncs**", "Machine: "):
        assert table in done.stdout


def load_bench() -> ModuleType:
    """bench/run.py as a module (its datasets module beside it on sys.path)."""
    if str(BENCH.parent) not in sys.path:
        sys.path.insert(0, str(BENCH.parent))
    spec = importlib.util.spec_from_file_location("bench_run", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_each_size_of_rows_is_its_own_dataset_in_the_same_run(tmp_path: Path):
    bench = load_bench()
    args = bench.parse_args(["--rows", "1000,2000", "--datasets", "shop,clean", "--workdir", str(tmp_path)])

    built = bench.build_datasets(args)

    biggest = [(d.label, bench.datasets.row_counts(d.path)[d.big_table]) for d in built]
    assert biggest == [
        ("shop 1,000", 1000),
        ("clean 1,000", 1000),
        ("shop 2,000", 2000),
        ("clean 2,000", 2000),
    ]
    assert bench.results_name(args) == "1000-2000"
