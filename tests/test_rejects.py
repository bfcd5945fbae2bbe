"""on_error: reject sets aside the rows that cannot arrive exactly, keeps their raw values byte
for byte (report file beside the spec, and etl.rejects in the target), and loads the rest."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from etl.cli import app
from etl.errors import DataError

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
