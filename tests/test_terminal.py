"""What a person watching a terminal sees: the demo runs to the end unattended and fits a screen,
and apply's progress leaves one line per table and no stale bar, at 80 and at 120 columns."""

from __future__ import annotations

import re
import secrets
import shutil
import sys
from pathlib import Path

import psycopg
import pytest
from fix_terminal import final_screen, run_on_terminal
from make_chat_app import build_chat_app  # samples/, on sys.path via conftest
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
BAR_MARKS = ("━", "loading ", "syncing ", "building keys", "verifying every") + tuple(
    chr(c) for c in range(0x2800, 0x2900)
)


def masked(lines: list[str]) -> list[str]:
    """Lines with what differs between runs replaced: timings, rates, the target's URL."""
    out = []
    for line in lines:
        line = re.sub(r"postgresql://[^ ]+", "<url>", line)
        line = re.sub(r" +\d+\.\d\d s\b", " <t> s", line)
        out.append(re.sub(r" +[\d,]+ rows/s", " <n> rows/s", line))
    return out


def readme_demo_block() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- demo output -->\n```\n(.*?)```", text, re.S)
    assert found, "README.md lacks the demo's output after <!-- demo output -->"
    return found.group(1).splitlines()


@pytest.fixture
def demo_database(pg_server_url: str):
    name = f"etl_demo_{secrets.token_hex(4)}"
    yield name
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def test_the_demo_runs_unattended_fits_a_screen_and_prints_what_readme_shows(pg_server_url, demo_database):
    env = dict(__import__("os").environ, DATABASE_URL=pg_server_url, ETL_DEMO_DATABASE=demo_database)
    env["ETL_VENV"] = sys.prefix
    # Wide enough that no line wraps: the lines compared are the lines printed.
    code, output = run_on_terminal(
        ["sh", str(ROOT / "samples" / "demo.sh")], columns=200, env=env, timeout=300
    )
    screen = final_screen(output, 200)
    assert code == 0, "\n".join(screen)
    assert "Only 'yes'" not in output
    assert len(screen) <= 40, "\n".join(screen)
    assert masked(screen) == masked(readme_demo_block())
    assert screen[-1].startswith("Done: rows: 6,483 inserted") and screen[-1].endswith("Committed.")
    assert f"/{demo_database}" in output and "/postgres " not in output


@pytest.fixture
def larger_chat_app(tmp_path: Path) -> tuple[Path, dict[str, int]]:
    (tmp_path / "specs").mkdir()
    (tmp_path / "samples").mkdir()
    spec = tmp_path / "specs" / "chat_app.yaml"
    shutil.copy(ROOT / "specs" / "chat_app.yaml", spec)
    counts = build_chat_app(tmp_path / "samples" / "chat_app.db", users=200, messages=30000, seed=3)
    return spec, counts


@pytest.mark.parametrize("columns", [80, 120])
def test_apply_on_a_terminal_leaves_each_table_line_once_and_no_bar(larger_chat_app, pg_url, columns):
    spec, counts = larger_chat_app
    code, output = run_on_terminal(
        [sys.executable, "-m", "etl", "apply", str(spec), "--yes", "--target", pg_url], columns=columns
    )
    screen = final_screen(output, columns)
    shown = "\n".join(screen)
    assert code == 0, shown
    assert "loading Message" in output  # the bar was there while the rows loaded
    assert "building keys and indexes" in output
    assert "primary key" not in output and "foreign key" not in output  # the bar names no constraint
    for table, rows in counts.items():
        lines = [line for line in screen if re.match(rf"  {re.escape(table)} +{rows:,} rows? ", line)]
        assert len(lines) == 1, f"{table}: {lines}\n{shown}"
    stale = [line for line in screen if any(mark in line for mark in BAR_MARKS)]
    assert stale == [], shown
    assert all(len(line) <= columns for line in screen)
    assert any(line.startswith("Done: ") for line in screen)
