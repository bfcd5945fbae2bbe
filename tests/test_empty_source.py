"""A source that yields no table is a mistake, never a plan to empty the target.

A zero-byte file, a SQLite file with no tables, or include/exclude globs that select none would
otherwise read as "the source is now empty": `apply --allow-destructive` would then drop every
table earlier applies loaded. `etl validate`, `etl plan` and `etl apply` refuse it in one line
that names the file and what to check.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from etl.cli import app
from etl.errors import SpecError

runner = CliRunner()

SOURCE = """
CREATE TABLE account (id INTEGER PRIMARY KEY, name TEXT);
INSERT INTO account VALUES (1, 'ada'), (2, 'grace');
"""


def empty_the_source(path: Path, how: str) -> None:
    """Turn the source into what a wrong path or a freshly created file looks like."""
    path.unlink()
    if how == "zero bytes":
        path.touch()
    else:
        with closing(sqlite3.connect(path)) as con:
            con.execute("CREATE TABLE gone (x)")
            con.execute("DROP TABLE gone")


@pytest.mark.parametrize("how", ["zero bytes", "no tables"])
def test_a_source_without_tables_leaves_what_etl_loaded_before_untouched(migration, pg, how):
    m = migration(SOURCE)
    m.apply()
    empty_the_source(m.source, how)

    with pytest.raises(SpecError) as caught:
        m.apply(allow_destructive=True)

    assert str(caught.value) == (
        f"{m.spec_path}:3:11: source.sqlite: '{m.source}' holds no tables: check the path "
        "(is it empty, or does the app keep its database elsewhere?); etl never plans to empty the target"
    )
    assert pg.execute("SELECT id, name FROM account ORDER BY id").fetchall() == [(1, "ada"), (2, "grace")]


def test_filters_that_select_no_table_leave_the_target_untouched(migration, pg):
    m = migration(SOURCE)
    m.apply()

    with pytest.raises(SpecError) as caught:
        m.apply("include: [Acc*]\n", allow_destructive=True)

    assert str(caught.value) == (
        f"{m.spec_path}:6:10: include: include/exclude leave out the only table of '{m.source}' (account): "
        "check the globs (they match table names exactly, case included)"
    )
    assert pg.execute("SELECT count(*) FROM account").fetchone() == (2,)


def test_an_exclude_that_leaves_nothing_is_reported_at_the_exclude(migration):
    m = migration(SOURCE)

    with pytest.raises(SpecError, match=r"spec.yaml:6:10: exclude: include/exclude leave out the only table"):
        m.plan("exclude: ['*']\n")


@pytest.mark.parametrize("command", ["validate", "plan", "apply"])
def test_validate_plan_and_apply_refuse_an_empty_source_in_one_line(migration, pg, command):
    m = migration(SOURCE)
    m.apply()
    empty_the_source(m.source, "zero bytes")

    extra = ["--yes", "--allow-destructive"] if command == "apply" else []
    result = runner.invoke(app, [command, str(m.spec_path), *extra])

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert f"'{m.source}' holds no tables: check the path" in result.stderr
    assert pg.execute("SELECT count(*) FROM account").fetchone() == (2,)
