"""On a terminal, apply shows the plan and asks; only "yes" applies. --yes, or no terminal, asks nothing."""

from __future__ import annotations

import sys

import pytest
from fix_terminal import run_on_terminal

SOURCE = "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'a');"


def run_on_a_terminal(args: list[str], answer: str, question: bytes = b"Apply this plan?") -> tuple[int, str]:
    """Run `etl` with stdin and stdout on a pseudo-terminal, type `answer` when asked `question`,
    return exit code and output."""
    return run_on_terminal(
        [sys.executable, "-m", "etl", *args], columns=80, timeout=60, answer=(question, answer)
    )


def tables(pg) -> list[str]:
    rows = pg.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1").fetchall()
    return [r[0] for r in rows]


@pytest.mark.parametrize("answer", ["no", "y", "YES please"])
def test_anything_but_yes_on_a_terminal_changes_nothing(migration, pg, answer):
    spec = migration(SOURCE).write_spec()
    code, output = run_on_a_terminal(["apply", str(spec)], answer)
    assert code == 1, output
    assert "+ table" in output and "Apply this plan?" in output
    assert "not applied; nothing was changed" in output
    assert tables(pg) == []


def test_yes_on_a_terminal_applies(migration, pg):
    spec = migration(SOURCE).write_spec()
    code, output = run_on_a_terminal(["apply", str(spec)], "yes")
    assert code == 0, output
    assert "Committed." in output
    assert tables(pg) == ["t"]


def test_the_yes_flag_asks_nothing(migration, pg):
    spec = migration(SOURCE).write_spec()
    code, output = run_on_a_terminal(["apply", str(spec), "--yes"], "")
    assert code == 0, output
    assert "Apply this plan?" not in output
    assert tables(pg) == ["t"]


def test_rollback_on_a_terminal_asks_and_no_keeps_everything(migration, pg):
    m = migration(SOURCE)
    spec = m.write_spec()
    m.apply()
    code, output = run_on_a_terminal(["rollback", str(spec)], "no", question=b"Roll back?")
    assert code == 1, output
    assert "not rolled back; nothing was changed" in output
    assert tables(pg) == ["t"]


def test_on_a_terminal_a_table_loads_under_a_progress_bar(migration, pg):
    m = migration(
        "CREATE TABLE big (id INTEGER PRIMARY KEY, n INTEGER);"
        "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 1500000) "
        "INSERT INTO big SELECT i, i * 7 FROM r;"
    )  # long enough (0.5 s+) for the bar, redrawn 10 times a second, to be drawn while it loads
    spec = m.write_spec()
    code, output = run_on_a_terminal(["apply", str(spec), "--yes"], "")
    assert code == 0, output
    assert "loading big" in output and "/1,500,000" in output  # the bar: its table and rows
    assert pg.execute("SELECT count(*) FROM big").fetchone() == (1500000,)


def test_a_long_load_reports_its_progress_in_rows(migration, pg):
    """apply's progress events carry the rows DuckDB's progress of the load stands for."""
    from etl.core.plan import LoadRows
    from etl.pipeline import apply, check, plan_for
    from etl.run.executor import StepEvent

    m = migration(
        "CREATE TABLE big (id INTEGER PRIMARY KEY, label TEXT);"
        "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 3000000) "
        "INSERT INTO big SELECT i, 'row number ' || i FROM r;"
    )
    m.write_spec()
    checked = check(m.spec_path, {})
    plan = plan_for(checked)
    events: list[StepEvent] = []
    apply(checked, plan, on_event=events.append, verify=False)
    rows = [e.rows for e in events if e.phase == "progress" and isinstance(e.step, LoadRows)]
    assert rows, "no progress reported while 3M rows loaded"
    assert all(0 <= r <= 3_000_000 for r in rows if r is not None)
    assert rows == sorted(rows)
