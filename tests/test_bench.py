"""bench/run.py reports every dimension of issue 21 in one run: loads against both floors, re-syncs
unchanged and 0.1% changed, several sizes, two clean datasets, and README-ready tables."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

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


@pytest.fixture
def server(pg_server_url: str) -> str:
    return pg_server_url


def test_one_run_reports_loads_resyncs_and_targets_of_both_clean_datasets(tmp_path: Path, server: str):
    done, results = run_bench(
        tmp_path,
        server,
        "--rows",
        "3000",
        "--datasets",
        "clean,shop",
        "--only",
        "floor,etl,plan",
        "--markdown",
    )

    assert [(d["name"], d["size"]) for d in results["datasets"]] == [("clean", 3000), ("shop", 3000)]
    shop = results["datasets"][1]
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

    assert "| clean, 3,300 rows |" in done.stdout
    assert "| shop, 3,900 rows |" in done.stdout
    for table in ("**Rows**", "**Re-syncs**", "Machine: "):
        assert table in done.stdout


def test_each_size_of_rows_is_its_own_dataset_in_the_same_run(tmp_path: Path, server: str):
    _, results = run_bench(tmp_path, server, "--rows", "1000,2000", "--datasets", "shop", "--only", "floor")

    assert [(d["label"], d["rows"]) for d in results["datasets"]] == [
        ("shop 1,000", 1300),
        ("shop 2,000", 2600),
    ]
    for dataset in results["datasets"]:
        assert [r["step"] for r in dataset["results"]] == ["floor", "floor (autocommit)"]
