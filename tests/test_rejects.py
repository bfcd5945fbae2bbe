"""on_error: reject sets aside the rows that cannot arrive exactly, keeps their raw values byte
for byte (report file beside the spec, and etl.rejects in the target), and loads the rest."""

from __future__ import annotations

import json
import stat

import pytest
from typer.testing import CliRunner

from etl.cli import app
from etl.errors import DataError, TargetError, ValueProblem

runner = CliRunner()

SOURCE = [
    ("CREATE TABLE m (id INTEGER PRIMARY KEY, n INTEGER, t TEXT, at DATETIME, r REAL)", ()),
    ("INSERT INTO m VALUES (1, 5, 'fine', 1754560800000, 1.5)", ()),
    ("INSERT INTO m VALUES (2, 'five', 'bad number', NULL, 1e300)", ()),
    ("INSERT INTO m VALUES (3, 6, CAST(X'41FF00' AS TEXT), NULL, NULL)", ()),
    ("INSERT INTO m VALUES (4, 7, 'bad date', 'next tuesday', 0.1)", ()),
    ("INSERT INTO m VALUES (5, 8, 'fine too', NULL, NULL)", ()),
]


def test_rejected_rows_are_set_aside_with_their_raw_bytes_and_the_rest_loads(migration, pg):
    m = migration(SOURCE)
    result = m.apply("on_error: reject\n")
    assert result.rows == {"m": 2}
    assert pg.execute("SELECT id FROM m ORDER BY id").fetchall() == [(1,), (5,)]
    assert [(r["key"], r["reason"]) for r in result.rejects] == [
        ("id=2", "column \"n\": expected an integer, found text 'five'"),
        (
            "id=3",
            "column \"t\": is not valid UTF-8 (fix it in SQLite, or use type bytea to keep the bytes): text X'41FF00'",
        ),
        ("id=4", "column \"at\": expected a datetime (auto), found text 'next tuesday'"),
    ]
    assert result.rejects[0]["row"] == {
        "id": {"type": "integer", "text": "2"},
        "n": {"type": "text", "text": "five"},
        "t": {"type": "text", "text": "bad number"},
        "at": {"type": "null"},
        "r": {"type": "real", "text": "1e+300"},
    }
    assert result.rejects[1]["row"]["t"] == {"type": "text", "hex": "41ff00"}
    stored = pg.execute("SELECT source_table, row_key, reason, row FROM etl.rejects ORDER BY id").fetchall()
    assert [(t, k) for t, k, _r, _row in stored] == [("m", "id=2"), ("m", "id=3"), ("m", "id=4")]
    assert stored[1][3]["t"] == {"type": "text", "hex": "41ff00"}


def test_the_cli_writes_the_reject_report_beside_the_spec(migration):
    m = migration(SOURCE)
    spec = m.write_spec("tables:\n  m:\n    on_error: reject\n")
    result = runner.invoke(app, ["apply", str(spec)])
    assert result.exit_code == 0, result.stderr
    report = spec.with_name("spec.rejects.jsonl")
    assert f"Rejected: 3 rows set aside, each with its reason and raw values, in {report}" in result.stdout
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert [line["key"] for line in lines] == ["id=2", "id=3", "id=4"]


@pytest.mark.parametrize("limit", ["2", "'50%'"])
def test_more_rejects_than_max_rejects_fails_the_run_and_loads_nothing(migration, pg, limit):
    m = migration(SOURCE)
    with pytest.raises(DataError) as failure:
        m.apply(f"on_error: reject\nmax_rejects: {limit}\n")
    assert str(failure.value).startswith(
        f'table "m": 3 rows rejected, more than max_rejects {limit.strip(chr(39))} allows; nothing was committed. '
        'The first: row id=2: column "n": expected an integer'
    )
    assert pg.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
    ).fetchone() == (0,)


def test_within_max_rejects_the_run_succeeds_and_verifies(migration, pg):
    m = migration(SOURCE)
    result = m.apply("on_error: reject\nmax_rejects: '60%'\n")
    assert result.verified and result.rows == {"m": 2} and len(result.rejects) == 3


def test_fail_stays_the_default(migration):
    m = migration(SOURCE)
    with pytest.raises(DataError, match='^table "m", row id=2: column "n": expected an integer'):
        m.apply()


ORPHANS = """
CREATE TABLE "User" (id INTEGER PRIMARY KEY, age INTEGER);
CREATE TABLE "Post" (id INTEGER PRIMARY KEY, "authorId" INTEGER REFERENCES "User"(id), title TEXT);
CREATE TABLE "Comment" (id INTEGER PRIMARY KEY, "postId" INTEGER NOT NULL REFERENCES "Post"(id));
INSERT INTO "User" VALUES (1, 30), (2, 'old');
INSERT INTO "Post" VALUES (10, 1, 'ok'), (11, 99, 'orphan'), (12, 2, 'author rejected'), (13, NULL, 'no author');
INSERT INTO "Comment" VALUES (100, 10), (101, 11), (102, 12), (103, 13);
"""


def test_child_rows_whose_parent_is_missing_or_rejected_are_rejected_too(migration, pg):
    m = migration(ORPHANS)
    result = m.apply("on_error: reject\n")
    assert [(r["table"], r["key"], r["reason"]) for r in result.rejects] == [
        ("User", "id=2", "column \"age\": expected an integer, found text 'old'"),
        ("Post", "id=11", 'foreign key (authorId) references no "User" row with (id) = (99)'),
        ("Post", "id=12", 'foreign key (authorId) references no "User" row with (id) = (2)'),
        ("Comment", "id=101", 'foreign key (postId) references no "Post" row with (id) = (11)'),
        ("Comment", "id=102", 'foreign key (postId) references no "Post" row with (id) = (12)'),
    ]
    assert result.rows == {"User": 1, "Post": 2, "Comment": 2}
    assert result.verified
    assert pg.execute('SELECT id FROM "Post" ORDER BY id').fetchall() == [(10,), (13,)]
    assert pg.execute('SELECT id FROM "Comment" ORDER BY id').fetchall() == [(100,), (103,)]
    # the foreign keys were added: the data satisfies them
    assert pg.execute("SELECT count(*) FROM pg_constraint WHERE contype = 'f'").fetchone() == (2,)


def test_orphans_still_fail_the_run_where_on_error_is_fail(migration, pg):
    m = migration(ORPHANS)
    with pytest.raises(TargetError, match='PostgreSQL refused foreign key "Post_authorId_fkey"'):
        m.apply("tables:\n  User:\n    on_error: reject\n")
    assert pg.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
    ).fetchone() == (0,)


def test_a_self_reference_to_a_missing_or_rejected_row_is_rejected_with_its_descendants(migration, pg):
    m = migration(
        """
        CREATE TABLE node (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES node(id), n INTEGER);
        INSERT INTO node VALUES (1, NULL, 1), (2, 1, 2), (3, 99, 3), (4, 3, 4), (5, 4, 5),
                                (6, 1, 'six'), (7, 6, 7), (8, 9, 8), (9, 8, 9);
        """
    )
    result = m.apply("on_error: reject\n")
    # 3 points at no row; 4 and 5 descend from it; 6 holds text; 7 descends from 6; 8 and 9 form
    # a cycle of rows that both arrive.
    assert pg.execute("SELECT id FROM node ORDER BY id").fetchall() == [(1,), (2,), (8,), (9,)]
    assert [(r["key"], r["reason"]) for r in result.rejects] == [
        ("id=3", 'foreign key (parent_id) references no "node" row with (id) = (99)'),
        ("id=4", 'foreign key (parent_id) references no "node" row with (id) = (3)'),
        ("id=5", 'foreign key (parent_id) references no "node" row with (id) = (4)'),
        ("id=6", "column \"n\": expected an integer, found text 'six'"),
        ("id=7", 'foreign key (parent_id) references no "node" row with (id) = (6)'),
    ]
    assert pg.execute(
        "SELECT conname FROM pg_constraint WHERE conrelid = 'node'::regclass AND contype = 'f'"
    ).fetchall() == [("node_parent_id_fkey",)]


# --- the report file: private, written whole, never through a link, before COMMIT ----------------


def test_the_reject_report_is_readable_by_its_owner_only(migration):
    m = migration(SOURCE)
    spec = m.write_spec("tables:\n  m:\n    on_error: reject\n")
    result = runner.invoke(app, ["apply", str(spec)])
    assert result.exit_code == 0, result.stderr
    report = spec.with_name("spec.rejects.jsonl")
    assert stat.S_IMODE(report.stat().st_mode) == 0o600
    assert sorted(p.name for p in spec.parent.iterdir() if "rejects" in p.name) == ["spec.rejects.jsonl"]


def assert_refused_before_commit(result, report, pg) -> None:
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: cannot write '{report}': ")
    assert result.stderr.endswith("; nothing was committed\n") and result.stderr.count("\n") == 1
    assert pg.execute("SELECT to_regclass('public.m')").fetchone() == (None,)
    runs = pg.execute("SELECT status, error FROM etl.runs").fetchall()
    assert [status for status, _ in runs] == ["failed"]
    assert runs[0][1] == result.stderr.removeprefix("Error: ").strip()
    assert [p.name for p in report.parent.iterdir() if p.name.startswith(".spec.rejects")] == []


def test_a_symbolic_link_at_the_reject_report_is_refused_and_what_it_points_to_is_unchanged(migration, pg):
    m = migration(SOURCE)
    spec = m.write_spec("tables:\n  m:\n    on_error: reject\n")
    elsewhere = m.tmp_path / "elsewhere.txt"
    elsewhere.write_text("not etl's\n")
    report = spec.with_name("spec.rejects.jsonl")
    report.symlink_to(elsewhere)
    result = runner.invoke(app, ["apply", str(spec)])
    assert_refused_before_commit(result, report, pg)
    assert "symbolic link" in result.stderr
    assert elsewhere.read_text() == "not etl's\n"
    assert report.is_symlink()


def test_a_reject_report_that_cannot_be_written_fails_the_apply_and_commits_nothing(migration, pg):
    m = migration(SOURCE)
    spec = m.write_spec("tables:\n  m:\n    on_error: reject\n")
    report = spec.with_name("spec.rejects.jsonl")
    report.mkdir()
    result = runner.invoke(app, ["apply", str(spec)])
    assert_refused_before_commit(result, report, pg)
    assert "is a directory" in result.stderr


# --- one ValueProblem for a failure and for a reject ----------------------------------------------


def test_a_failure_names_table_key_column_reason_and_value_as_fields(migration):
    m = migration(SOURCE)
    with pytest.raises(DataError) as failure:
        m.apply()
    assert failure.value.problem == ValueProblem(
        table="m",
        key="id=2",
        column="n",
        reason="expected an integer, found text 'five'",
        value="text 'five'",
    )


def test_a_reject_carries_the_same_fields_as_the_failure_would(migration, pg):
    m = migration(SOURCE)
    with pytest.raises(DataError) as failure:
        m.apply()
    result = m.apply("on_error: reject\n")
    first = result.rejects[0]
    problem = failure.value.problem
    assert (first["table"], first["key"], first["column"], first["value"]) == (
        problem.table,
        problem.key,
        problem.column,
        problem.value,
    )
    assert first["reason"] == problem.detail == 'column "n": expected an integer, found text \'five\''
    stored = pg.execute("SELECT row_key, column_name, value FROM etl.rejects ORDER BY id").fetchall()
    assert stored[0] == ("id=2", "n", "text 'five'")


def test_a_value_with_line_breaks_and_spaces_is_reported_as_it_is(migration):
    m = migration(
        [
            ("CREATE TABLE m (id INTEGER PRIMARY KEY, n INTEGER)", ()),
            ("INSERT INTO m VALUES (1, ?)", ("two  spaces\nand a % sign",)),
        ]
    )
    with pytest.raises(DataError) as failure:
        m.apply()
    assert failure.value.problem.value == "text 'two  spaces\nand a % sign'"
    assert failure.value.problem.reason == "expected an integer, found text 'two  spaces\nand a % sign'"


def test_a_row_without_a_primary_key_is_named_by_rowid_and_a_foreign_key_problem_by_no_column(migration):
    m = migration(
        """
        CREATE TABLE parent (id INTEGER PRIMARY KEY);
        CREATE TABLE loose (n INTEGER, parent_id INTEGER REFERENCES parent(id));
        INSERT INTO parent VALUES (1);
        INSERT INTO loose VALUES ('x', 1), (2, 7);
        """
    )
    result = m.apply("on_error: reject\n")
    assert [(r["table"], r["key"], r["column"], r["value"]) for r in result.rejects] == [
        ("loose", "rowid=1", "n", "text 'x'"),
        ("loose", "rowid=2", None, "7"),
    ]
    assert result.rejects[1]["reason"] == 'foreign key (parent_id) references no "parent" row with (id) = (7)'


def test_an_etl_rejects_table_of_an_earlier_version_gains_the_new_columns(migration, pg):
    m = migration(SOURCE)
    pg.execute("CREATE SCHEMA etl")
    pg.execute(
        "CREATE TABLE etl.rejects (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
        "run_started_at timestamptz NOT NULL, target_schema text NOT NULL, source_table text NOT NULL, "
        "row_key text, reason text NOT NULL, row jsonb NOT NULL)"
    )
    m.apply("on_error: reject\n")
    assert pg.execute("SELECT column_name, value FROM etl.rejects ORDER BY id LIMIT 1").fetchone() == (
        "n",
        "text 'five'",
    )
