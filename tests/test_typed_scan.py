"""DuckDB's typed scan of the attached SQLite file is a shortcut, never a different answer: where
the proof admits a table, the typed read gives exactly what the exact path gives, or raises (and
apply starts over on the exact path, whose message names the row)."""

from __future__ import annotations

import contextlib
import math
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from etl import duck
from etl.core.mapping import TargetColumn, TargetTable
from etl.errors import DataError
from etl.pgtypes import parse_pg_type
from etl.run.load import sqlite_select
from etl.run.session import SOURCE_ALIAS
from etl.run.typedscan import affinity, prove, typed_expressions
from etl.settings import Converter, OnError
from etl.sqlite.convert import ValueConversion, duck_expressions

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
    "2024-01-20 24:00:00",
    "-0001-01-20 10:11:12",
    " 2024-01-20 10:11:12",
    "2024-01-20 10:11:12 ",
    "2024-01-20t10:11:12",
    "0001-01-01",
    "1754560800000",
    1754560800000,
    1754560800000000,
    253402300800,
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


def one_column_table(
    source_table: str, pg_type: str, converter: str = "auto", unit: str | None = None, mixed: bool = False
) -> TargetTable:
    pg = parse_pg_type(pg_type)
    conversion = ValueConversion(
        '"v"', "v", pg, Converter(converter), True, integer_unit=unit, mixed_units=mixed, column="v"
    )
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


@pytest.fixture(scope="module")
def readings(source):
    """Which values DuckDB's scan reads without raising: (declared index, value index) pairs."""
    readable = set()
    for d in range(len(DECLARED)):
        for n in range(len(VALUES)):
            with contextlib.suppress(*duck.ERRORS):  # the scan raises on this value
                source.execute(f"SELECT max(hash(v)) FROM {SOURCE_ALIAS}.t{d}_{n}").fetchall()
                readable.add((d, n))
    return source, readable


def scanned(d: int, ns: list[int]) -> str:
    """Each value as DuckDB's scan reads it (n, v), all in one relation: the conversions are then
    compiled once for all values, not once per value."""
    return " UNION ALL ".join(f"SELECT {n} AS n, v FROM {SOURCE_ALIAS}.t{d}_{n}" for n in ns)


def rendered(d: int, ns: list[int]) -> str:
    """Each value as SQLite renders it for the exact path (n, t, v)."""
    return " UNION ALL ".join(
        f"SELECT {n} AS n, t0 AS t, v0 AS v FROM sqlite_query('{SOURCE_ALIAS}', "
        f"{duck.quote_literal(sqlite_select(one_column_table(f't{d}_{n}', 'text')))})"
        for n in ns
    )


def outcomes(con, query: str) -> dict[int, tuple]:
    """n -> ("problem",) or ("value", type, repr) of each row of `query` (n, value, problem)."""
    found = {}
    # a value with a problem may not even be valid UTF-8: only the problem is fetched then
    shown = (
        f"SELECT n, CASE WHEN problem IS NULL THEN value END, problem FROM ({query}) AS x(n, value, problem)"
    )
    for n, value, problem in con.execute(shown).fetchall():
        if problem is not None:
            found[n] = ("problem",)
        elif isinstance(value, float):
            found[n] = ("value", "float", math.copysign(1.0, value), repr(value))
        else:
            found[n] = ("value", type(value).__name__, repr(value))
    return found


def agreements(readings, pg_type: str, *conversion, declared_types=DECLARED) -> int:
    """How many values the typed scan reads, through one conversion, just as the exact path does;
    fails on a value it reads differently."""
    con, readable = readings
    same = 0
    for d, declared in enumerate(DECLARED):
        if declared not in declared_types:
            continue
        proven = {}
        for n in range(len(VALUES)):
            proven.update(prove(con, SOURCE_ALIAS, [one_column_table(f"t{d}_{n}", pg_type, *conversion)]))
        ns = [n for n in range(len(VALUES)) if f"t{d}_{n}" in proven and (d, n) in readable]
        if not ns:
            continue
        column = one_column_table("t", pg_type, *conversion).columns[0]
        (scan_type,) = set(proven.values()).pop()
        value, problems = typed_expressions(column, scan_type, "v")
        problem = f"COALESCE({', '.join(problems)})" if problems else "NULL"
        typed = outcomes(con, f"SELECT n, {value}, {problem} FROM ({scanned(d, ns)})")
        exact_exprs = duck_expressions(column.conversion, "t", "v")
        exact = outcomes(
            con, f"SELECT n, {exact_exprs.value}, {exact_exprs.problem} FROM ({rendered(d, ns)})"
        )
        for n, read in typed.items():
            if read == ("problem",):
                continue  # the typed read raises: apply starts over on the exact path
            assert read == exact[n], f"{declared or 'untyped'} column holding {VALUES[n]!r} as {pg_type}"
            same += 1
    return same


@pytest.mark.parametrize("pg_type", TARGETS)
def test_the_typed_scan_reads_what_the_exact_path_reads_or_raises(readings, pg_type):
    assert agreements(readings, pg_type) >= 5  # the typed scan was in use, and agreed


@pytest.mark.parametrize("pg_type", ["timestamptz", "timestamp", "timestamp(0)", "date", "bigint", "text"])
@pytest.mark.parametrize(
    "conversion",
    [
        ("auto", "s"),
        ("auto", "ms"),
        ("auto", "ms", True),
        ("auto", "us"),
        ("epoch_seconds",),
        ("epoch_milliseconds",),
        ("epoch_microseconds",),
    ],
)
def test_epoch_integers_read_through_the_typed_scan_as_through_the_exact_path(readings, pg_type, conversion):
    """Prisma's DATETIME columns hold epoch milliseconds: DuckDB's scan reads such an integer as
    epoch seconds (raising beyond its range), from which the integer comes back exactly."""
    assert agreements(readings, pg_type, *conversion, declared_types=("DATETIME", "INTEGER")) >= 2


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
    for other in (replace(table, where="1"), expression, replace(table, on_error=OnError.REJECT)):
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
    result = m.apply(on_event=events.append)
    assert [e.phase for e in events].count("restart") == 1
    assert result.typed == ()  # the run that committed read every value through SQLite
    assert pg.execute("SELECT id, code FROM t ORDER BY id").fetchall() == [(1, "7"), (2, "seven")]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("'a' || char(0) || 'b'", "contains a NUL byte"),
        ("CAST(X'41FF42' AS TEXT)", "is not valid UTF-8"),
    ],
)
def test_a_bad_value_in_a_typed_table_is_named_by_the_exact_path(migration, pg, bad, reason):
    """The typed load leaves these to the target (PostgreSQL refuses text that is not UTF-8,
    DuckDB's writer a NUL byte): refused, the apply starts over on the exact path, which names
    the row."""
    m = migration(
        [
            ("CREATE TABLE t (id INTEGER PRIMARY KEY, note TEXT)", ()),
            (f"INSERT INTO t VALUES (1, 'fine'), (2, {bad})", ()),
        ]
    )
    events = []
    with pytest.raises(DataError, match=f'^table "t", row id=2: column "note": {reason}'):
        m.apply(on_event=events.append)
    assert [e.phase for e in events].count("restart") == 1
    assert pg.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == (0,)
    assert pg.execute("SELECT status FROM etl.runs").fetchall() == [("failed",)]  # one run, recorded once


@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        ("INTEGER", "INTEGER"),
        ("TINYINT", "INTEGER"),
        ("CHARINT", "INTEGER"),  # INT wins, as in SQLite
        ("VARCHAR(255)", "TEXT"),
        ("nvarchar", "TEXT"),
        ("CLOB", "TEXT"),
        ("BLOB", "BLOB"),
        ("", "BLOB"),
        ("REAL", "REAL"),
        ("FLOAT", "REAL"),
        ("DOUBLE PRECISION", "REAL"),
        ("NUMERIC(10,2)", "NUMERIC"),
        ("DATETIME", "NUMERIC"),
        ("STRING", "NUMERIC"),  # no TEXT affinity: '42' is stored as an integer
        ("POINT", "INTEGER"),  # P-O-I-N-T contains INT
    ],
)
def test_affinity_follows_sqlites_rules(declared, expected):
    assert affinity(declared) == expected


def test_affinity_is_sqlites_own(tmp_path):
    """The rules above, checked against SQLite storing 42 and '42' in each declared type."""
    db = sqlite3.connect(tmp_path / "a.db")
    for declared in ("INTEGER", "VARCHAR(3)", "BLOB", "", "FLOAT", "NUMERIC", "STRING", "POINT"):
        db.execute("DROP TABLE IF EXISTS a")
        db.execute(f"CREATE TABLE a (v {declared})")
        db.execute("INSERT INTO a VALUES (42), ('42'), (4.0)")
        stored = [r[0] for r in db.execute("SELECT typeof(v) FROM a ORDER BY rowid")]
        expected = {
            "INTEGER": ["integer", "integer", "integer"],
            "TEXT": ["text", "text", "text"],
            "BLOB": ["integer", "text", "real"],
            "REAL": ["real", "real", "real"],
            "NUMERIC": ["integer", "integer", "integer"],
        }[affinity(declared)]
        assert stored == expected, declared


def test_a_proof_that_fails_after_its_table_was_read_starts_the_apply_over(migration, pg, monkeypatch):
    """A big table is read through the scan while its proof still runs; the proof decides before
    COMMIT. Here it finds an integer in an untyped column (the scan read it as the bytes of '42'):
    nothing of that read is committed, and the exact path names the row."""
    import time

    import etl.run.executor
    import etl.run.typedscan

    holds = etl.run.typedscan.holds

    def slow_holds(*args):
        time.sleep(1.0)  # still running when the table is read
        return holds(*args)

    # A proof slower than the load is a matter of timing, not a setting: simulated where the executor calls it.
    monkeypatch.setattr(etl.run.executor, "holds", slow_holds)
    m = migration(
        """
        CREATE TABLE t (id INTEGER PRIMARY KEY, data);
        INSERT INTO t VALUES (1, X'00FF'), (2, 42);
        """
    )
    m.write_spec("tables:\n  t:\n    columns:\n      data: {type: bytea}\n")
    with pytest.raises(DataError, match=r'^table "t", row id=2: column "data": expected a blob or text'):
        m.apply(trust_from_rows=0)
    assert pg.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == (0,)


# A datetime column of ISO text, which DuckDB's scan reads exactly until the app writes epoch
# milliseconds into it (the scan reads those as seconds: the year 56970).
ISO_DATETIMES = """
CREATE TABLE t (id INTEGER PRIMARY KEY, at DATETIME);
INSERT INTO t VALUES (1, '2025-01-01 10:00:00'), (2, '2025-01-02 10:00:00');
"""


def test_a_value_written_to_the_source_during_the_apply_starts_it_over(migration, pg):
    """The app writes epoch milliseconds into a datetime column of ISO text after the table's
    proof ran and before its rows are read: DuckDB's scan reads them as seconds, without an
    error. The source's stamp has changed by COMMIT, so every table read through the scan counts
    as unproved and the apply starts over on the exact path, which reads the rows as they are."""
    m = migration(ISO_DATETIMES)
    from etl.core.plan import LoadRows

    events = []

    def app_writes(event) -> None:
        events.append(event)
        if isinstance(event.step, LoadRows) and event.phase == "start" and len(events) < 10:
            m.change_source("UPDATE t SET at = 1735689600000 WHERE id = 2")

    result = m.apply(on_event=app_writes)
    assert [e.phase for e in events].count("restart") == 1
    assert result.typed == ()
    assert pg.execute("SELECT at FROM t ORDER BY id").fetchall() == [
        (datetime(2025, 1, 1, 10, tzinfo=UTC),),
        (datetime(2025, 1, 1, tzinfo=UTC),),
    ]


def test_a_value_written_during_the_load_and_written_back_after_it_is_never_committed_as_misread(
    migration, pg
):
    """The app writes epoch milliseconds after the proof ran and before the load, which DuckDB's
    scan misreads (as seconds), then writes the text back once the load is done: a proof run
    again at COMMIT would find the table as it was. The misread value never commits: the apply
    either starts over and loads the rows as they are, or fails naming what changed."""
    from etl.core.plan import LoadRows
    from etl.errors import EtlError

    m = migration(ISO_DATETIMES)
    events = []

    def app_writes_and_writes_back(event) -> None:
        events.append(event)
        if isinstance(event.step, LoadRows) and len(events) < 10:
            if event.phase == "start":
                m.change_source("UPDATE t SET at = 1735689600000 WHERE id = 2")
            elif event.phase == "done":
                m.change_source("UPDATE t SET at = '2025-01-02 10:00:00' WHERE id = 2")

    try:
        m.apply(on_event=app_writes_and_writes_back)
    except EtlError:
        assert pg.execute("SELECT to_regclass('t')").fetchone() == (None,)  # nothing committed
        return
    assert pg.execute("SELECT at FROM t ORDER BY id").fetchall() == [
        (datetime(2025, 1, 1, 10, tzinfo=UTC),),
        (datetime(2025, 1, 2, 10, tzinfo=UTC),),
    ]


def test_with_many_tables_a_value_written_to_the_source_during_the_apply_starts_it_over(migration, pg):
    """As above, with LIST_COLUMNS_FROM tables more, whose columns the apply's transaction lists
    at once before the first load (DuckDB then keeps them for the loads): the value written
    after the proof still arrives as written, never converted silently."""
    from etl.core.plan import LoadRows
    from etl.run.typedscan import LIST_COLUMNS_FROM

    others = "".join(f"CREATE TABLE o{i} (id INTEGER PRIMARY KEY);\n" for i in range(LIST_COLUMNS_FROM))
    m = migration(ISO_DATETIMES + others)
    events = []

    def app_writes(event) -> None:
        events.append(event)
        loading_t = isinstance(event.step, LoadRows) and event.step.table.name == "t"
        if loading_t and event.phase == "start" and "restart" not in [e.phase for e in events]:
            m.change_source("UPDATE t SET at = 1735689600000 WHERE id = 2")

    result = m.apply(on_event=app_writes)
    assert [e.phase for e in events].count("restart") == 1
    assert "t" not in result.typed
    assert pg.execute("SELECT at FROM t ORDER BY id").fetchall() == [
        (datetime(2025, 1, 1, 10, tzinfo=UTC),),
        (datetime(2025, 1, 1, tzinfo=UTC),),
    ]
