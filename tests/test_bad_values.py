"""A value that cannot arrive exactly is named, the run fails, and the target is left as it was.

Every message names the table, the row's key, the column, the reason and the value; the exact
messages are in __snapshots__/test_bad_values.ambr. The apply is one PostgreSQL transaction, so
after a failure the (fresh) target database holds no tables at all.
"""

from __future__ import annotations

import psycopg
import pytest

from etl.core.plan import LoadRows
from etl.errors import DataError
from etl.run.executor import StepEvent


def tables_in(pg: psycopg.Connection) -> list[str]:
    rows = pg.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1"
    ).fetchall()
    return [name for (name,) in rows]


def failure(m, pg: psycopg.Connection, body: str = "", **options) -> str:
    """Apply (`options` go to etl.pipeline.apply), expect a DataError, check that nothing was left
    behind; the error's message."""
    with pytest.raises(DataError) as exc:
        m.apply(body, **options)
    assert tables_in(pg) == []
    return str(exc.value)


def one_column(declared: str, bad_value_sql: str) -> str:
    """Table T with two good rows (ids 1 and 2, NULLs) and the bad value in row id=3."""
    return f"""
        CREATE TABLE T (id INTEGER PRIMARY KEY, c {declared});
        INSERT INTO T (id, c) VALUES (1, NULL), (2, NULL), (3, {bad_value_sql});
    """


def typed(pg_type: str, converter: str | None = None) -> str:
    conv = f", converter: {converter}" if converter else ""
    return f"tables:\n  T:\n    columns:\n      c: {{type: '{pg_type}'{conv}}}\n"


# --- the bad values the issue lists ----------------------------------------------------------------


def test_text_in_an_integer_column_is_named(migration, pg, snapshot):
    m = migration(one_column("INTEGER", "'forty-two'"))
    assert failure(m, pg) == snapshot


def test_a_nul_byte_in_text_is_named(migration, pg, snapshot):
    m = migration(
        [
            ("CREATE TABLE T (id INTEGER PRIMARY KEY, c TEXT)", ()),
            ("INSERT INTO T VALUES (1, 'fine'), (2, ''), (3, ?)", ("before\x00after",)),
        ]
    )
    assert failure(m, pg) == snapshot


def test_invalid_utf8_in_text_is_named(migration, pg, snapshot):
    m = migration(one_column("TEXT", "CAST(X'41FF42' AS TEXT)"))
    assert failure(m, pg) == snapshot


@pytest.mark.parametrize("pg_type", ["text", "jsonb", "timestamptz", "boolean"])
def test_invalid_utf8_text_is_named_whatever_the_target_type(migration, pg, snapshot, pg_type):
    m = migration(one_column("TEXT", "CAST(X'C0AF' AS TEXT)"))  # an overlong encoding of '/'
    assert failure(m, pg, typed(pg_type)) == snapshot


def test_the_current_timestamp_keyword_stored_as_text_is_named(migration, pg, snapshot):
    # What `DEFAULT 'CURRENT_TIMESTAMP'` (quoted by mistake) leaves in every row.
    m = migration(one_column("DATETIME", "'current_timestamp'"))
    assert failure(m, pg) == snapshot


def test_a_datetime_no_convention_explains_is_named(migration, pg, snapshot):
    m = migration(one_column("DATETIME", "'next tuesday'"))
    assert failure(m, pg) == snapshot


@pytest.mark.parametrize(
    ("pg_type", "value"), [("smallint", 32768), ("smallint", -32769), ("integer", 2**31)]
)
def test_an_integer_out_of_range_for_the_target_is_named(migration, pg, snapshot, pg_type, value):
    m = migration(one_column("INTEGER", str(value)))
    assert failure(m, pg, typed(pg_type)) == snapshot


@pytest.mark.parametrize("value", ["0.1", "16777217", "1e300"])
def test_a_number_float4_cannot_hold_exactly_is_named(migration, pg, snapshot, value):
    m = migration(one_column("REAL", value))
    assert failure(m, pg, typed("real")) == snapshot


def test_more_decimals_than_numeric_10_2_keeps_are_named(migration, pg, snapshot):
    m = migration(one_column("DECIMAL(10,2)", "'19.999'"))
    assert failure(m, pg) == snapshot


@pytest.mark.parametrize(
    ("pg_type", "value"),
    [
        ("numeric(10,2)", "'0.0000000000000000000000000000001'"),  # beyond DECIMAL(38,30) as well
        ("numeric(10,2)", "5e-324"),
        ("numeric(65,2)", "'1.234'"),  # loaded as text, converted by PostgreSQL
        ("numeric(65,30)", "'1.5e-40'"),
        ("numeric(65,30)", "1e-40"),
    ],
)
def test_decimals_a_numeric_would_round_away_are_named(migration, pg, snapshot, pg_type, value):
    m = migration(one_column("", value))
    assert failure(m, pg, typed(pg_type)) == snapshot


@pytest.mark.parametrize(
    ("pg_type", "value"),
    [("numeric(10,2)", "'123456789.5'"), ("numeric(40,2)", "'1e38'"), ("numeric(40,2)", "1e39")],
)
def test_too_many_integer_digits_for_a_numeric_are_named(migration, pg, snapshot, pg_type, value):
    m = migration(one_column("", value))
    assert failure(m, pg, typed(pg_type)) == snapshot


@pytest.mark.parametrize(
    "document",
    ["{bad", '{"a": NaN}', "[1, Infinity]", "[1, 2,]", '{"a": 1,}', '"\\u0000"', ""],
    ids=[
        "unterminated",
        "nan",
        "infinity",
        "trailing-comma-array",
        "trailing-comma-object",
        "nul-escape",
        "empty",
    ],
)
def test_text_that_jsonb_refuses_is_named(migration, pg, snapshot, document):
    m = migration(
        [
            ("CREATE TABLE T (id INTEGER PRIMARY KEY, c TEXT)", ()),
            ("INSERT INTO T VALUES (1, '[]'), (3, ?)", (document,)),
        ]
    )
    assert failure(m, pg, typed("jsonb")) == snapshot


def test_null_in_a_not_null_column_is_named(migration, pg, snapshot):
    m = migration(
        """
        CREATE TABLE T (id INTEGER PRIMARY KEY, c TEXT);
        INSERT INTO T VALUES (1, 'a'), (2, 'b'), (3, NULL);
        """
    )
    assert failure(m, pg, "tables:\n  T:\n    columns:\n      c: {nullable: false}\n") == snapshot


def test_a_blob_in_a_text_column_is_named(migration, pg, snapshot):
    m = migration(one_column("TEXT", "X'00FF10'"))
    assert failure(m, pg) == snapshot


# --- datetimes that would be rounded, truncated or misread ---------------------------------------


def test_microseconds_into_timestamp_3_are_named_not_rounded(migration, pg, snapshot):
    m = migration(one_column("DATETIME", "'2025-08-07T10:00:00.123456Z'"))
    assert failure(m, pg, typed("timestamp(3)")) == snapshot


def test_fractional_seconds_in_timestamp_0_are_named(migration, pg, snapshot):
    m = migration(one_column("DATETIME", "1754560800500"))
    assert failure(m, pg, typed("timestamptz(0)")) == snapshot


def test_prisma_milliseconds_read_as_epoch_seconds_are_named(migration, pg, snapshot):
    m = migration(one_column("DATETIME", "1754560800000"))
    assert failure(m, pg, typed("timestamptz", "epoch_seconds")) == snapshot


def test_an_integral_julian_day_is_named_as_ambiguous_under_auto(migration, pg, snapshot):
    # SQLite stores the julian day 2451545.0 in a DATETIME column as the INTEGER 2451545, which
    # auto would otherwise read as epoch seconds: 1970-01-29.
    m = migration(one_column("DATETIME", "2451545.0"))
    assert failure(m, pg) == snapshot


def test_a_datetime_in_the_year_10000_is_named(migration, pg, snapshot):
    m = migration(one_column("DATETIME", "253402300800"))  # 10000-01-01T00:00:00Z
    assert failure(m, pg, typed("timestamptz", "epoch_seconds")) == snapshot


def test_a_time_of_day_in_a_date_column_is_named(migration, pg, snapshot):
    m = migration(one_column("DATE", "'2025-08-07 10:00:00'"))
    assert failure(m, pg) == snapshot


def test_fractional_seconds_beyond_time_0_are_named(migration, pg, snapshot):
    m = migration(one_column("TIME", "'10:00:00.5'"))
    assert failure(m, pg, typed("time(0)")) == snapshot


# --- numbers that would change -------------------------------------------------------------------


def test_an_integer_beyond_2_53_into_double_precision_is_named(migration, pg, snapshot):
    m = migration(one_column("INTEGER", str(2**53 + 1)))
    assert failure(m, pg, typed("double precision")) == snapshot


def test_a_non_integral_real_into_an_integer_column_is_named(migration, pg, snapshot):
    m = migration(one_column("", "2.5"))
    assert failure(m, pg, typed("bigint")) == snapshot


# --- naming the row ----------------------------------------------------------------------------------


def test_a_text_key_is_quoted_in_the_message(migration, pg, snapshot):
    m = migration(
        """
        CREATE TABLE User (id TEXT PRIMARY KEY, age INTEGER);
        INSERT INTO User VALUES ('ck1', 30), ('it''s me', 'thirty');
        """
    )
    assert failure(m, pg) == snapshot


def test_a_composite_key_is_named_column_by_column(migration, pg, snapshot):
    m = migration(
        """
        CREATE TABLE Member (org INTEGER, user TEXT, since DATETIME, PRIMARY KEY (org, user));
        INSERT INTO Member VALUES (1, 'ada', '2025-08-07'), (1, 'bob', 'yesterday');
        """
    )
    assert failure(m, pg) == snapshot


def test_a_table_without_a_key_names_the_rowid(migration, pg, snapshot):
    m = migration(
        """
        CREATE TABLE Log (msg TEXT, at DATETIME);
        INSERT INTO Log VALUES ('ok', '2025-08-07'), ('bad', 'soon');
        """
    )
    assert failure(m, pg) == snapshot


# --- atomicity ---------------------------------------------------------------------------------------


def test_a_failure_in_the_last_table_leaves_the_target_without_tables(migration, pg, snapshot):
    m = migration(
        """
        CREATE TABLE Org (id INTEGER PRIMARY KEY, name TEXT);
        CREATE TABLE User (id INTEGER PRIMARY KEY, orgId INTEGER REFERENCES Org(id), email TEXT);
        CREATE TABLE Message (id INTEGER PRIMARY KEY, userId INTEGER REFERENCES User(id), createdAt DATETIME);
        INSERT INTO Org VALUES (1, 'Acme');
        INSERT INTO User VALUES (1, 1, 'ada@example.com'), (2, 1, 'bob@example.com');
        INSERT INTO Message VALUES (1, 1, 1754560800000), (2, 2, 1754560800001), (3, 2, 'next tuesday');
        """
    )
    loaded: list[tuple[str, int | None]] = []

    def on_event(event: StepEvent) -> None:
        if isinstance(event.step, LoadRows) and event.phase == "done":
            loaded.append((event.step.table.source, event.rows))

    assert failure(m, pg, on_event=on_event) == snapshot
    assert loaded == [("Org", 1), ("User", 2)]  # loaded, then rolled back with the failed Message


def test_a_failed_run_leaves_tables_already_in_the_target_untouched(migration, pg, snapshot):
    pg.execute("CREATE TABLE unrelated (id int PRIMARY KEY, note text)")
    pg.execute("INSERT INTO unrelated VALUES (1, 'kept')")
    m = migration(one_column("INTEGER", "'x'"))
    with pytest.raises(DataError) as exc:
        m.apply()
    assert str(exc.value) == snapshot
    assert tables_in(pg) == ["unrelated"]
    assert pg.execute("SELECT id, note FROM unrelated").fetchall() == [(1, "kept")]
