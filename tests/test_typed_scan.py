"""DuckDB's typed scan of the attached SQLite file is a shortcut, never a different answer: where
the proof admits a table, the typed read gives exactly what the exact path gives, or raises (and
apply starts over on the exact path, whose message names the row)."""

from __future__ import annotations

import math
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from etl import duck
from etl.convert import ValueConversion
from etl.errors import DataError
from etl.mapping import TargetColumn, TargetTable
from etl.render import SOURCE_ALIAS, source_rows_query
from etl.typedscan import prove, typed_rows_query
from etl.types import parse_pg_type

DECLARED = ["INTEGER", "BOOLEAN", "REAL", "NUMERIC", "TEXT", "BLOB", "", "DATETIME", "DATE"]
TARGETS = [
    "bigint",
    "integer",
    "smallint",
    "boolean",
    "double precision",
    "real",
    "numeric(10,2)",
    "text",
    "varchar(3)",
    "jsonb",
    "bytea",
    "timestamp",
    "timestamptz",
    "date",
    "uuid",
]
VALUES = [
    None,
    0,
    1,
    2,
    -1,
    40000,
    2**31,
    2**53 + 1,
    2**63 - 1,
    0.5,
    -0.0,
    1.0e300,
    0.1 + 0.2,
    "",
    "abc",
    "1",
    "true",
    "a\x00b",
    "\u00e9t\u00e9",
    '{"a": 1}',
    "12.345",
    "2024-01-20 10:11:12",
    "2024-01-20T10:11:12",
    "2024-02-30 10:11:12",
    "0000-01-01 00:00:00",
    "2024-01-20",
    "2024-01-20 10:11:12.5",
    "2024-01-20 10:11:12+02:00",
    "1754560800000",
    "550e8400-e29b-41d4-a716-446655440000",
    b"",
    b"\x00\xff",
    b"0123456789abcdef",
    "invalid \udcff utf-8",
]


def _sqlite_value(value):
    if isinstance(value, str) and "\udcff" in value:
        return ("cast", value.encode("utf-8", "surrogateescape"))
    return ("plain", value)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """One single-row table per (declared type, value): a scan that raises spoils only its own."""
    path = tmp_path_factory.mktemp("typed") / "values.db"
    db = sqlite3.connect(path)
    for d, declared in enumerate(DECLARED):
        for n, value in enumerate(VALUES):
            table = f"t{d}_{n}"
            db.execute(f"CREATE TABLE {table} (v {declared or ''})")
            kind, raw = _sqlite_value(value)
            if kind == "cast":
                db.execute(f"INSERT INTO {table} VALUES (CAST(? AS TEXT))", (raw,))
            else:
                db.execute(f"INSERT INTO {table} VALUES (?)", (raw,))
    db.commit()
    db.close()
    con = duck.connect()
    con.execute(f"ATTACH {duck.quote_literal(str(path))} AS {SOURCE_ALIAS} (TYPE sqlite, READ_ONLY)")
    con.execute("SET TimeZone = 'UTC'")
    yield con
    con.close()


def one_column_table(source_table: str, pg_type: str) -> TargetTable:
    pg = parse_pg_type(pg_type)
    conversion = ValueConversion('"v"', "v", pg, "auto", True, column="v")
    return TargetTable(
        source=source_table,
        name="t",
        columns=(TargetColumn("v", pg, True, None, False, conversion),),
        primary_key=(),
        primary_key_name="t_pkey",
        uniques=(),
        indexes=(),
        foreign_keys=(),
        where=None,
        key_sql=(),
        rowid="rowid",
    )


def outcome(con, query: str):
    try:
        rows = con.execute(query).fetchall()
    except Exception as exc:  # noqa: BLE001 - a raise is an outcome here
        return ("raised", type(exc).__name__)
    (value,) = rows[0]
    if isinstance(value, float):
        return ("value", "float", math.copysign(1.0, value), repr(value))
    return ("value", type(value).__name__, repr(value))


@pytest.mark.parametrize("pg_type", TARGETS)
def test_the_typed_scan_reads_what_the_exact_path_reads_or_raises(source, pg_type):
    same, raised = 0, 0
    for d, declared in enumerate(DECLARED):
        for n, value in enumerate(VALUES):
            table = one_column_table(f"t{d}_{n}", pg_type)
            proven = prove(source, SOURCE_ALIAS, [table])
            if table.source not in proven:
                continue
            typed = outcome(source, typed_rows_query(SOURCE_ALIAS, replace(table, scan=proven[table.source])))
            if typed[0] == "raised":
                raised += 1
                continue
            exact = outcome(source, source_rows_query("public", table))
            assert typed == exact, f"{declared or 'untyped'} column holding {value!r} as {pg_type}"
            same += 1
    assert same >= 5  # the typed scan was in use, and agreed
    assert raised + same >= 5


def test_a_table_holding_a_value_the_scan_would_convert_silently_is_not_proven(source):
    """An integer in an untyped column would arrive as the bytes of '2' through the scan (read
    as BLOB): the proof refuses that table, and admits the one holding a blob."""
    integer = one_column_table(f"t{DECLARED.index('')}_{VALUES.index(2)}", "bytea")
    blob = one_column_table(f"t{DECLARED.index('')}_{VALUES.index(b'')}", "bytea")
    assert prove(source, SOURCE_ALIAS, [integer, blob]) == {blob.source: ("BLOB",)}


def test_tables_with_a_where_or_an_expression_or_rejects_take_the_exact_path(source):
    table = one_column_table(f"t{DECLARED.index('TEXT')}_{VALUES.index('abc')}", "text")
    expression = replace(
        table,
        columns=(replace(table.columns[0], conversion=replace(table.columns[0].conversion, column=None)),),
    )
    for other in (replace(table, where="1"), expression, replace(table, on_error="reject")):
        assert prove(source, SOURCE_ALIAS, [other]) == {}


# --- through apply ---------------------------------------------------------------------------------


def test_apply_reads_clean_tables_through_the_typed_scan(migration, pg):
    m = migration(
        """
        CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL, score REAL, seen DATETIME, avatar BLOB);
        INSERT INTO users VALUES (1, 'ada@example.com', 0.1, '2024-01-20 10:11:12', X'00FF');
        INSERT INTO users VALUES (2, 'bob@example.com', NULL, NULL, NULL);
        CREATE TABLE notes (id INTEGER PRIMARY KEY, body);
        INSERT INTO notes VALUES (1, 'text'), (2, 42);
        """
    )
    result = m.apply()
    assert result.typed == ("users",)  # notes' untyped column holds text and an integer: exact path
    assert pg.execute("SELECT id, email, score, seen, avatar FROM users ORDER BY id").fetchall() == [
        (1, "ada@example.com", 0.1, datetime(2024, 1, 20, 10, 11, 12, tzinfo=UTC), b"\x00\xff"),
        (2, "bob@example.com", None, None, None),
    ]
    assert m.plan().has_changes is False


def test_a_value_the_typed_scan_cannot_read_starts_the_apply_over_on_the_exact_path(migration, pg):
    """An INTEGER column holding text: DuckDB's scan raises; the spec makes it text, which the
    exact path reads, so apply starts over and loads every row."""
    m = migration(
        """
        CREATE TABLE t (id INTEGER PRIMARY KEY, code INTEGER);
        INSERT INTO t VALUES (1, 7), (2, 'seven');
        """
    )
    m.write_spec("tables:\n  t:\n    columns:\n      code: {type: text}\n")
    events = []
    from etl.executor import apply_plan
    from etl.observe import observe_target
    from etl.planner import build_plan
    from etl.validate import validate

    checked = validate(m.spec_path, {})
    plan = build_plan(checked.mapping, observe_target(checked.mapping, checked.spec.source, m.url))
    result = apply_plan(plan, checked.spec.source, m.url, on_event=events.append)
    assert [e.phase for e in events].count("restart") == 1
    assert result.typed == ()  # the run that committed read every value through SQLite
    assert pg.execute("SELECT id, code FROM t ORDER BY id").fetchall() == [(1, "7"), (2, "seven")]


def test_a_bad_value_in_a_typed_table_is_named_by_the_exact_path(migration, pg):
    m = migration(
        [
            ("CREATE TABLE t (id INTEGER PRIMARY KEY, note TEXT)", ()),
            ("INSERT INTO t VALUES (1, 'fine'), (2, 'a' || char(0) || 'b')", ()),
        ]
    )
    with pytest.raises(DataError, match='^table "t", row id=2: column "note": contains a NUL byte'):
        m.apply()
    assert pg.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == (0,)
    assert pg.execute("SELECT status FROM etl.runs").fetchall() == [("failed",)]  # one run, recorded once
