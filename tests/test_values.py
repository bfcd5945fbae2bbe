"""Every value arrives in PostgreSQL exactly as SQLite holds it.

Each test builds a small SQLite database, migrates it, and compares what PostgreSQL holds (read
with psycopg) with what SQLite holds (read with Python's sqlite3), value by value. Values that
cannot arrive exactly are the subject of test_bad_values.py.
"""

from __future__ import annotations

import json
import math
import random
import sqlite3
import struct
import uuid
from contextlib import closing
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from etl.errors import DataError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PRISMA_INSTANT = datetime(2025, 8, 7, 10, 0, tzinfo=UTC)  # 1754560800000 ms since the epoch


def sqlite_rows(source: Path, query: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(source)) as conn:
        return conn.execute(query).fetchall()


def pg_rows(pg: psycopg.Connection, query: str) -> list[tuple[Any, ...]]:
    # Binary transfer: a double arrives as its 8 bytes, not as text PostgreSQL printed.
    return pg.execute(query, binary=True).fetchall()


def column_type(pg: psycopg.Connection, table: str, column: str) -> str:
    row = pg.execute(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = %s::regclass AND attname = %s",
        [f'"{table}"', column],
    ).fetchone()
    assert row is not None
    return row[0]


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


def iso_instant(text: str) -> datetime:
    """An ISO 8601 text read the way etl documents: without an offset, it is UTC."""
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def sqlite_julian_instant(source: Path, value: float) -> datetime:
    """The instant SQLite's own date functions read from a julian-day real (to the millisecond)."""
    ((text,),) = sqlite_rows(source, f"SELECT strftime('%Y-%m-%d %H:%M:%f', {value!r})")
    return iso_instant(text)


# --- datetimes ---------------------------------------------------------------------------------


def test_iso_text_arrives_as_the_same_instant(migration, pg):
    texts = [
        "2025-08-07T10:00:00Z",
        "2025-08-07T10:00:00.5Z",
        "2025-08-07T10:00:00.123456Z",
        "2025-08-07T12:00:00+02:00",
        "2025-08-07T12:00:00.654321+02:00",
        "2025-08-07T05:30:00-04:30",
        "2025-08-07 10:00:00",
        "2025-08-07T10:00",
        "2025-08-07",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999Z",
    ]
    m = migration(
        [("CREATE TABLE Event (id INTEGER PRIMARY KEY, at DATETIME)", ())]
        + [("INSERT INTO Event (at) VALUES (?)", (t,)) for t in texts]
    )
    m.apply()
    held = dict(sqlite_rows(m.source, "SELECT id, at FROM Event"))
    arrived = dict(pg_rows(pg, 'SELECT id, at FROM "Event"'))
    assert column_type(pg, "Event", "at") == "timestamp with time zone"
    assert arrived == {i: iso_instant(text) for i, text in held.items()}


def test_sqlite_current_timestamp_text_arrives_as_that_utc_instant(migration, pg):
    m = migration(
        """
        CREATE TABLE Log (id INTEGER PRIMARY KEY, at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, msg TEXT);
        INSERT INTO Log (msg) VALUES ('written by SQLite');
        INSERT INTO Log (at, msg) VALUES ('2025-08-07 10:00:00', 'literal');
        """
    )
    m.apply("tables:\n  Log:\n    columns:\n      at: {default: null}\n")
    held = dict(sqlite_rows(m.source, "SELECT id, at FROM Log"))
    assert all(len(text) == 19 for text in held.values())  # 'YYYY-MM-DD HH:MM:SS'
    arrived = dict(pg_rows(pg, 'SELECT id, at FROM "Log"'))
    assert arrived == {i: datetime.fromisoformat(text).replace(tzinfo=UTC) for i, text in held.items()}
    assert arrived[2] == PRISMA_INSTANT


def test_integer_epoch_seconds_arrive_as_the_same_instant(migration, pg):
    m = migration(
        """
        CREATE TABLE Event (id INTEGER PRIMARY KEY, at DATETIME);
        INSERT INTO Event (at) VALUES (0), (1), (-1), (1754560800), (99999999999), (-62135596800);
        """
    )
    m.apply()
    held = dict(sqlite_rows(m.source, "SELECT id, at FROM Event"))
    arrived = dict(pg_rows(pg, 'SELECT id, at FROM "Event"'))
    assert arrived == {i: EPOCH + timedelta(seconds=s) for i, s in held.items()}
    assert arrived[4] == PRISMA_INSTANT


def test_prisma_epoch_milliseconds_arrive_as_the_same_instant(migration, pg):
    m = migration(
        """
        CREATE TABLE Message (id INTEGER PRIMARY KEY, createdAt DATETIME NOT NULL);
        INSERT INTO Message (createdAt) VALUES (1754560800000), (1754560800001), (1754560800999),
            (100000000000), (-1754560800000);
        """
    )
    m.apply()
    held = dict(sqlite_rows(m.source, "SELECT id, createdAt FROM Message"))
    arrived = dict(pg_rows(pg, 'SELECT id, "createdAt" FROM "Message"'))
    assert arrived == {i: EPOCH + timedelta(milliseconds=ms) for i, ms in held.items()}
    assert arrived[1] == PRISMA_INSTANT  # 2025-08-07 10:00:00 UTC, not the year 57569


def test_integer_epoch_microseconds_arrive_as_the_same_instant(migration, pg):
    m = migration(
        """
        CREATE TABLE Event (id INTEGER PRIMARY KEY, at DATETIME);
        INSERT INTO Event (at) VALUES (1754560800000000), (1754560800123456), (-1754560800000001);
        """
    )
    m.apply()
    held = dict(sqlite_rows(m.source, "SELECT id, at FROM Event"))
    arrived = dict(pg_rows(pg, 'SELECT id, at FROM "Event"'))
    assert arrived == {i: EPOCH + timedelta(microseconds=us) for i, us in held.items()}


def test_julian_day_reals_arrive_as_the_instant_sqlite_reads(migration, pg):
    m = migration(
        """
        CREATE TABLE Event (id INTEGER PRIMARY KEY, at DATETIME);
        INSERT INTO Event (at) VALUES (julianday('2025-08-07 10:00:00')), (julianday('2025-08-07 10:00:00.123')),
            (2451545.25), (2440587.5), (1721425.5), (5373484.49999);
        """
    )
    m.apply()
    held = dict(sqlite_rows(m.source, "SELECT id, at FROM Event"))
    # A julian day at noon (2451545.0) would be stored as an INTEGER: see test_bad_values.py.
    assert all(isinstance(v, float) for v in held.values())
    arrived = dict(pg_rows(pg, 'SELECT id, at FROM "Event"'))
    assert arrived == {i: sqlite_julian_instant(m.source, jd) for i, jd in held.items()}
    assert arrived[1] == PRISMA_INSTANT
    assert arrived[4] == EPOCH


def test_a_column_mixing_conventions_is_read_value_by_value(migration, pg):
    m = migration(
        """
        CREATE TABLE Event (id INTEGER PRIMARY KEY, at DATETIME);
        INSERT INTO Event (at) VALUES
            ('2025-08-07T10:00:00Z'), ('2025-08-07 10:00:00'), ('2025-08-07T12:00:00+02:00'),
            (1754560800000), (2460894.916666667), (1754560800.25);
        """
    )
    m.apply("tables:\n  Event:\n    columns:\n      at: {converter: auto}\n")
    held = sqlite_rows(m.source, "SELECT id, at, typeof(at) FROM Event ORDER BY id")
    assert [t for _i, _v, t in held] == ["text"] * 3 + ["integer"] + ["real"] * 2
    arrived = dict(pg_rows(pg, 'SELECT id, at FROM "Event"'))
    expected = {}
    for i, value, storage in held:
        if storage == "text":
            expected[i] = iso_instant(value)
        elif storage == "integer":  # the column's integers are milliseconds
            expected[i] = EPOCH + timedelta(milliseconds=value)
        elif 1721059.5 <= value <= 5373484.5:  # a julian day
            expected[i] = sqlite_julian_instant(m.source, value)
        else:  # a real number of epoch seconds
            expected[i] = EPOCH + timedelta(microseconds=round(value * 1_000_000))
    assert arrived == expected
    assert set(arrived.values()) == {PRISMA_INSTANT, PRISMA_INSTANT + timedelta(milliseconds=250)}


def test_auto_reads_every_integer_of_a_column_in_one_unit_decided_by_the_column(migration, pg):
    # Prisma birthdays: milliseconds, some close to 1970 (below 1e11, where a value-by-value
    # guess would take them for seconds). With one unit per column, all are milliseconds.
    m = migration(
        """
        CREATE TABLE Profile (id INTEGER PRIMARY KEY, birthday DATETIME);
        INSERT INTO Profile (birthday) VALUES (-15552000000), (86400000), (1754560800000);
        """
    )
    with pytest.raises(DataError) as failure:
        m.apply("tables:\n  Profile:\n    columns:\n      birthday: {converter: auto}\n")
    assert str(failure.value) == (
        'table "Profile", row id=1: column "birthday": is ambiguous: the column also holds epoch '
        "milliseconds, and this integer reads as a different instant in each unit (choose a converter): "
        "integer -15552000000"
    )
    m.apply("tables:\n  Profile:\n    columns:\n      birthday: {converter: epoch_milliseconds}\n")
    arrived = dict(pg_rows(pg, 'SELECT id, birthday FROM "Profile"'))
    assert arrived == {
        1: datetime(1969, 7, 5, tzinfo=UTC),  # 180 days before the epoch
        2: datetime(1970, 1, 2, tzinfo=UTC),
        3: PRISMA_INSTANT,
    }


def test_auto_reads_a_column_of_plain_epoch_seconds_as_seconds(migration, pg):
    m = migration(
        "CREATE TABLE E (id INTEGER PRIMARY KEY, at DATETIME); INSERT INTO E (at) VALUES (1754560800), (0);"
    )
    m.apply()
    assert dict(pg_rows(pg, 'SELECT id, at FROM "E"')) == {1: PRISMA_INSTANT, 2: EPOCH}


CONVERTER_CASES = [
    # Milliseconds below 10**11 would be read as seconds by `auto`: the converter decides.
    ("epoch_milliseconds", 86_400_000, datetime(1970, 1, 2, tzinfo=UTC)),
    ("epoch_milliseconds", 1754560800000.5, PRISMA_INSTANT + timedelta(microseconds=500)),
    ("epoch_seconds", 1754560800, PRISMA_INSTANT),
    ("epoch_seconds", 1754560800.5, PRISMA_INSTANT + timedelta(milliseconds=500)),
    ("epoch_seconds", 10**11, datetime(5138, 11, 16, 9, 46, 40, tzinfo=UTC)),
    ("epoch_seconds", 2451545, datetime(1970, 1, 29, 8, 59, 5, tzinfo=UTC)),
    ("epoch_microseconds", 86_400_000_000, datetime(1970, 1, 2, tzinfo=UTC)),
    ("julian_day", 2460895, datetime(2025, 8, 7, 12, tzinfo=UTC)),  # how SQLite stores 2460895.0 here
    ("julian_day", 2460894.5, datetime(2025, 8, 7, tzinfo=UTC)),
    ("iso", "2025-08-07T10:00:00Z", PRISMA_INSTANT),
]


def test_an_explicit_converter_reads_every_value_by_its_convention(migration, pg):
    names = [f"c{i}" for i in range(len(CONVERTER_CASES))]
    stored = [value for _c, value, _i in CONVERTER_CASES]
    m = migration(
        [
            (f"CREATE TABLE Event (id INTEGER PRIMARY KEY, {', '.join(f'{n} DATETIME' for n in names)})", ()),
            (f"INSERT INTO Event VALUES (1, {', '.join('?' for _ in names)})", stored),
        ]
    )
    columns = "".join(
        f"      {n}: {{converter: {c}}}\n" for n, (c, _v, _i) in zip(names, CONVERTER_CASES, strict=True)
    )
    m.apply(f"tables:\n  Event:\n    columns:\n{columns}")
    assert sqlite_rows(m.source, f"SELECT {', '.join(names)} FROM Event") == [tuple(stored)]
    arrived = pg_rows(pg, f'SELECT {", ".join(names)} FROM "Event"')
    assert arrived == [tuple(instant for _c, _v, instant in CONVERTER_CASES)]


def test_timestamp_without_time_zone_holds_the_utc_wall_time(migration, pg):
    m = migration(
        """
        CREATE TABLE Event (id INTEGER PRIMARY KEY, at DATETIME);
        INSERT INTO Event (at) VALUES ('2025-08-07T12:00:00.123456+02:00'), ('2025-08-07 10:00:00'),
            (1754560800000), (2460894.9166666665);
        """
    )
    m.apply("tables:\n  Event:\n    columns:\n      at: {type: timestamp}\n")
    assert column_type(pg, "Event", "at") == "timestamp without time zone"
    arrived = dict(pg_rows(pg, 'SELECT id, at FROM "Event"'))
    wall = PRISMA_INSTANT.replace(tzinfo=None)
    assert arrived == {1: wall + timedelta(microseconds=123456), 2: wall, 3: wall, 4: wall}


def test_milliseconds_arrive_exactly_in_timestamp_3(migration, pg):
    m = migration(
        """
        CREATE TABLE Event (id INTEGER PRIMARY KEY, at DATETIME);
        INSERT INTO Event (at) VALUES (1754560800123), ('2025-08-07T10:00:00.123Z'),
            ('2025-08-07T10:00:00.120000Z'), (julianday('2025-08-07 10:00:00.123'));
        """
    )
    m.apply("tables:\n  Event:\n    columns:\n      at: {type: timestamp(3), converter: auto}\n")
    assert column_type(pg, "Event", "at") == "timestamp(3) without time zone"
    arrived = dict(pg_rows(pg, 'SELECT id, at FROM "Event"'))
    wall = PRISMA_INSTANT.replace(tzinfo=None)
    assert arrived == {
        1: wall + timedelta(milliseconds=123),
        2: wall + timedelta(milliseconds=123),
        3: wall + timedelta(milliseconds=120),
        4: wall + timedelta(milliseconds=123),
    }


def test_date_column_values_arrive_as_the_same_dates(migration, pg):
    m = migration(
        """
        CREATE TABLE Person (id INTEGER PRIMARY KEY, born DATE);
        INSERT INTO Person (born) VALUES ('2025-08-07'), ('0001-01-01'), ('9999-12-31'), ('2024-02-29'),
            ('1969-12-31T00:00:00Z'), (1754524800), (2460894.5), (NULL);
        """
    )
    m.apply()
    assert column_type(pg, "Person", "born") == "date"
    arrived = dict(pg_rows(pg, 'SELECT id, born FROM "Person"'))
    assert arrived == {
        1: date(2025, 8, 7),
        2: date(1, 1, 1),
        3: date(9999, 12, 31),
        4: date(2024, 2, 29),
        5: date(1969, 12, 31),
        6: date(2025, 8, 7),  # epoch seconds of midnight UTC
        7: date(2025, 8, 7),  # julian day of midnight UTC
        8: None,
    }


def test_time_column_text_arrives_as_the_same_time_of_day(migration, pg):
    m = migration(
        """
        CREATE TABLE Shift (id INTEGER PRIMARY KEY, starts TIME);
        INSERT INTO Shift (starts) VALUES ('10:00'), ('10:00:00'), ('23:59:59.999999'), ('00:00:00.000001'),
            ('07:05:03.25'), (NULL);
        """
    )
    m.apply()
    assert column_type(pg, "Shift", "starts") == "time without time zone"
    held = dict(sqlite_rows(m.source, "SELECT id, starts FROM Shift"))
    arrived = dict(pg_rows(pg, 'SELECT id, starts FROM "Shift"'))
    assert arrived == {i: None if t is None else time.fromisoformat(t) for i, t in held.items()}


def test_infinite_timestamps_arrive_as_infinity(migration, pg):
    m = migration(
        """
        CREATE TABLE Event (id INTEGER PRIMARY KEY, at DATETIME);
        INSERT INTO Event (at) VALUES ('infinity'), ('-infinity');
        """
    )
    m.apply()
    assert pg.execute('SELECT id, at::text FROM "Event" ORDER BY id').fetchall() == [
        (1, "infinity"),
        (2, "-infinity"),
    ]


# --- booleans and integers -----------------------------------------------------------------------


def test_booleans_stored_as_0_and_1_arrive_as_false_and_true(migration, pg):
    m = migration(
        """
        CREATE TABLE Flag (id INTEGER PRIMARY KEY, on_ BOOLEAN);
        INSERT INTO Flag (on_) VALUES (0), (1), (NULL);
        """
    )
    m.apply()
    assert [t for (t,) in sqlite_rows(m.source, "SELECT typeof(on_) FROM Flag ORDER BY id")] == [
        "integer",
        "integer",
        "null",
    ]
    assert pg_rows(pg, 'SELECT id, on_ FROM "Flag" ORDER BY id') == [(1, False), (2, True), (3, None)]


def test_booleans_stored_as_true_and_false_text_arrive_as_booleans(migration, pg):
    m = migration(
        """
        CREATE TABLE Flag (id INTEGER PRIMARY KEY, on_ BOOLEAN);
        INSERT INTO Flag (on_) VALUES ('true'), ('false'), ('TRUE'), ('False'), ('t'), ('f');
        """
    )
    m.apply()
    held = dict(sqlite_rows(m.source, "SELECT id, on_ FROM Flag"))
    assert all(isinstance(v, str) for v in held.values())
    arrived = dict(pg_rows(pg, 'SELECT id, on_ FROM "Flag"'))
    assert arrived == {i: text.lower() in ("true", "t") for i, text in held.items()}


INTEGERS = [
    0,
    1,
    -1,
    2**31 - 1,
    -(2**31),
    2**31,
    2**53,
    2**53 + 1,
    -(2**53) - 1,
    2**63 - 2,
    2**63 - 1,
    -(2**63),
]


def test_integers_arrive_exactly_up_to_the_64_bit_limits(migration, pg):
    m = migration(
        [("CREATE TABLE N (id INTEGER PRIMARY KEY, n INTEGER)", ())]
        + [("INSERT INTO N (id, n) VALUES (?, ?)", (i, n)) for i, n in enumerate(INTEGERS)]
    )
    m.apply()
    assert column_type(pg, "N", "n") == "bigint"
    held = dict(sqlite_rows(m.source, "SELECT id, n FROM N"))
    assert held == dict(enumerate(INTEGERS))
    assert dict(pg_rows(pg, 'SELECT id, n FROM "N"')) == held


def test_integers_above_2_53_never_pass_through_a_double(migration, pg):
    big = [2**53 + 1, 2**63 - 1, -(2**63) + 1, 1234567890123456789]
    assert all(int(float(n)) != n for n in big)  # a double would have changed every one
    targets = {"t": "text", "n20": "numeric(20,0)", "n40": "numeric(40,0)", "n": "numeric"}
    m = migration(
        [("CREATE TABLE N (id INTEGER PRIMARY KEY, t INTEGER, n20 INTEGER, n40 INTEGER, n INTEGER)", ())]
        + [("INSERT INTO N VALUES (?, ?, ?, ?, ?)", (i, n, n, n, n)) for i, n in enumerate(big)]
    )
    columns = "".join(f"      {c}: {{type: '{t}'}}\n" for c, t in targets.items())
    m.apply(f"tables:\n  N:\n    columns:\n{columns}")
    held = sqlite_rows(m.source, "SELECT id, t, n20, n40, n FROM N ORDER BY id")
    arrived = pg.execute('SELECT id, t, n20::text, n40::text, n::text FROM "N" ORDER BY id').fetchall()
    assert arrived == [(i, *(str(v) for v in values)) for i, *values in held]


def test_integers_into_smaller_integer_types_arrive_at_their_limits(migration, pg):
    m = migration(
        """
        CREATE TABLE N (id INTEGER PRIMARY KEY, s INTEGER, i INTEGER);
        INSERT INTO N VALUES (1, 32767, 2147483647), (2, -32768, -2147483648), (3, 0, 0);
        """
    )
    m.apply("tables:\n  N:\n    columns:\n      s: {type: smallint}\n      i: {type: integer}\n")
    assert pg_rows(pg, 'SELECT id, s, i FROM "N" ORDER BY id') == sqlite_rows(
        m.source, "SELECT id, s, i FROM N ORDER BY id"
    )


# --- exact decimals ------------------------------------------------------------------------------


def test_decimal_10_2_values_arrive_with_the_same_digits(migration, pg):
    m = migration(
        """
        CREATE TABLE Price (id INTEGER PRIMARY KEY, amount DECIMAL(10,2));
        INSERT INTO Price (amount) VALUES ('19.99'), (19.99), ('0.10'), (0.3), (-0.01), (100),
            (12345678.99), (-99999999.99), ('0.00'), (NULL);
        """
    )
    m.apply()
    assert column_type(pg, "Price", "amount") == "numeric(10,2)"
    held = sqlite_rows(m.source, "SELECT id, amount FROM Price ORDER BY id")
    arrived = pg_rows(pg, 'SELECT id, amount FROM "Price" ORDER BY id')
    # SQLite stores '19.99' as the double nearest 19.99; its shortest decimal is the value meant.
    assert arrived == [(i, None if v is None else Decimal(repr(v))) for i, v in held]
    assert arrived[0] == (1, Decimal("19.99"))


def test_numeric_65_30_is_loaded_as_text_and_converted_by_postgresql(migration, pg):
    texts = [
        "12345678901234567890123456789012345.123456789012345678901234567890",
        "-99999999999999999999999999999999999.999999999999999999999999999999",
        "0.000000000000000000000000000001",
        "19.99",
        "1.5e10",
        "0",
    ]
    m = migration(
        [("CREATE TABLE Amount (id INTEGER PRIMARY KEY, v TEXT, i INTEGER, r REAL)", ())]
        + [("INSERT INTO Amount (v, i, r) VALUES (?, ?, ?)", (t, 2**63 - 1, 0.1)) for t in texts]
    )
    m.apply(
        "tables:\n  Amount:\n    columns:\n"
        "      v: {type: 'numeric(65,30)'}\n      i: {type: 'numeric(65,30)'}\n      r: {type: 'numeric(65,30)'}\n"
    )
    assert column_type(pg, "Amount", "v") == "numeric(65,30)"
    held = sqlite_rows(m.source, "SELECT id, v, i, r FROM Amount ORDER BY id")
    arrived = pg_rows(pg, 'SELECT id, v, i, r FROM "Amount" ORDER BY id')
    assert arrived == [(i, Decimal(v), Decimal(n), Decimal(repr(r))) for i, v, n, r in held]


def test_unconstrained_numeric_keeps_every_digit(migration, pg):
    texts = ["3.14159265358979323846264338327950288419716939937510", "-1e-40", "123456789" * 20]
    m = migration(
        [("CREATE TABLE Amount (id INTEGER PRIMARY KEY, v TEXT)", ())]
        + [("INSERT INTO Amount (v) VALUES (?)", (t,)) for t in texts]
    )
    m.apply("tables:\n  Amount:\n    columns:\n      v: {type: numeric}\n")
    held = dict(sqlite_rows(m.source, "SELECT id, v FROM Amount"))
    assert dict(pg_rows(pg, 'SELECT id, v FROM "Amount"')) == {i: Decimal(t) for i, t in held.items()}


# --- doubles -------------------------------------------------------------------------------------

SPECIAL_DOUBLES = [
    math.inf,
    -math.inf,
    -0.0,
    0.0,
    5e-324,
    -5e-324,
    2.2250738585072014e-308,  # smallest normal
    2.225073858507201e-308,  # largest subnormal
    1.7976931348623157e308,
    -1.7976931348623157e308,
    0.1,
    1 / 3,
    9.999999999999999e99,  # either side of the scaled transport's thresholds
    1e100,
    9.999999999999999e199,
    1e200,
    2.0**1023,
    2.0**-1074,
    123456789012345680000.0,
]


def test_special_doubles_arrive_bit_for_bit(migration, pg):
    m = migration(
        [("CREATE TABLE R (id INTEGER PRIMARY KEY, x REAL)", ())]
        + [("INSERT INTO R (id, x) VALUES (?, ?)", (i, x)) for i, x in enumerate(SPECIAL_DOUBLES)]
    )
    m.apply()
    assert column_type(pg, "R", "x") == "double precision"
    held = dict(sqlite_rows(m.source, "SELECT id, x FROM R"))
    arrived = dict(pg_rows(pg, 'SELECT id, x FROM "R"'))
    assert {i: bits(x) for i, x in arrived.items()} == {i: bits(x) for i, x in held.items()}


def test_twenty_thousand_random_doubles_arrive_bit_for_bit(migration, pg):
    rnd = random.Random(20250807)
    doubles = []
    while len(doubles) < 20_000:
        (x,) = struct.unpack("d", rnd.randbytes(8))
        if not math.isnan(x):  # SQLite stores NaN as NULL
            doubles.append(x)
    assert sum(abs(x) >= 1e100 for x in doubles) > 5_000  # the scaled transport is exercised
    m = migration(
        [
            ("CREATE TABLE R (id INTEGER PRIMARY KEY, x REAL)", ()),
            *[("INSERT INTO R (id, x) VALUES (?, ?)", (i, x)) for i, x in enumerate(doubles)],
        ]
    )
    m.apply()
    held = dict(sqlite_rows(m.source, "SELECT id, x FROM R"))
    arrived = dict(pg_rows(pg, 'SELECT id, x FROM "R"'))
    assert len(arrived) == len(held) == 20_000
    differing = [(i, held[i], arrived[i]) for i in held if bits(held[i]) != bits(arrived[i])]
    assert differing == []


def test_negative_zero_in_an_untyped_column_keeps_its_sign(migration, pg):
    m = migration(
        [("CREATE TABLE R (id INTEGER PRIMARY KEY, x)", ()), ("INSERT INTO R VALUES (1, ?)", (-0.0,))]
    )
    m.apply("tables:\n  R:\n    columns:\n      x: {type: double precision}\n")
    ((held,),) = sqlite_rows(m.source, "SELECT x FROM R")
    assert bits(held) == bits(-0.0)  # SQLite keeps the sign in a column without REAL affinity
    ((arrived,),) = pg_rows(pg, 'SELECT x FROM "R"')
    assert bits(arrived) == bits(held)


# Zeros of both signs, interleaved, beside other values of an untyped column: each zero keeps its
# sign in SQLite, and -0.0 and 0.0 come in runs the measurement must keep apart.
SIGNED_ZEROS = [-0.0, -0.0, 0.0, 1.5, -0.0, "0.0", 0, 0.0, -0.0, None, -2.5, -0.0]


def signed_zeros_source():
    return [("CREATE TABLE R (id INTEGER PRIMARY KEY, x)", ())] + [
        ("INSERT INTO R (id, x) VALUES (?, ?)", (i, x)) for i, x in enumerate(SIGNED_ZEROS, 1)
    ]


def test_zeros_of_both_signs_in_an_untyped_column_each_keep_theirs(migration, pg):
    m = migration(signed_zeros_source())
    result = m.apply(
        "tables:\n  R:\n    columns:\n      x: {type: double precision}\n"
        "      y: {expression: 'x * 1.0', type: double precision}\n      f: {expression: x, type: real}\n"
    )
    assert result.verified
    held = dict(sqlite_rows(m.source, "SELECT id, x FROM R WHERE typeof(x) = 'real'"))
    assert [i for i, x in held.items() if bits(x) == bits(-0.0)] == [1, 2, 5, 9, 12]
    for column in ("x", "y", "f"):
        arrived = dict(pg_rows(pg, f'SELECT id, {column} FROM "R" WHERE id IN ({", ".join(map(str, held))})'))
        assert {i: bits(x) for i, x in arrived.items()} == {i: bits(x) for i, x in held.items()}, column
    # the text '0.0' and the integer 0 are numbers without a sign: they arrive as 0
    others = dict(pg_rows(pg, 'SELECT id, x FROM "R" WHERE id IN (6, 7)'))
    assert {i: bits(x) for i, x in others.items()} == {6: bits(0.0), 7: bits(0.0)}


def test_negative_zero_arrives_in_text_as_minus_zero(migration, pg):
    m = migration(signed_zeros_source())
    m.apply("tables:\n  R:\n    columns:\n      x: {type: text}\n")
    arrived = dict(pg_rows(pg, 'SELECT id, x FROM "R" WHERE id <= 3'))
    assert arrived == {1: "-0.0", 2: "-0.0", 3: "0.0"}


def test_real_affinity_stores_negative_zero_as_zero_which_arrives_as_such(migration, pg):
    m = migration(
        [("CREATE TABLE R (id INTEGER PRIMARY KEY, x REAL)", ()), ("INSERT INTO R VALUES (1, ?)", (-0.0,))]
    )
    m.apply("tables:\n  R:\n    columns:\n      x: {type: double precision}\n")
    ((held,),) = sqlite_rows(m.source, "SELECT x FROM R")
    assert bits(held) == bits(0.0)  # SQLite stores an integral real as an integer under REAL affinity
    ((arrived,),) = pg_rows(pg, 'SELECT x FROM "R"')
    assert bits(arrived) == bits(held)


def test_a_rejected_row_keeps_the_sign_of_its_zero_and_a_loaded_one_arrives_with_it(migration, pg):
    m = migration(
        [
            ("CREATE TABLE R (id INTEGER PRIMARY KEY, x, n INTEGER)", ()),
            ("INSERT INTO R VALUES (1, ?, 'five')", (-0.0,)),
            ("INSERT INTO R VALUES (2, ?, 5)", (-0.0,)),
        ]
    )
    result = m.apply("on_error: reject\ntables:\n  R:\n    columns:\n      x: {type: double precision}\n")
    assert result.verified and result.rows == {"R": 1}
    assert result.rejects[0]["row"]["x"] == {"type": "real", "text": "-0.0"}
    ((arrived,),) = pg_rows(pg, 'SELECT x FROM "R"')
    assert bits(arrived) == bits(-0.0)


def test_too_many_runs_of_signed_zeros_are_refused_with_a_way_out(migration, pg, monkeypatch):
    from etl.errors import SourceError
    from etl.run import validate

    monkeypatch.setattr(validate, "MAX_NEGATIVE_ZERO_RUNS", 2)
    m = migration(signed_zeros_source())
    with pytest.raises(SourceError, match=r'table "R", column "x" holds -0.0 and 0.0 interleaved.*x \+ 0\.0'):
        m.apply()
    m.apply("tables:\n  R:\n    columns:\n      x: {expression: 'x + 0.0', type: double precision}\n")
    arrived = [x for (x,) in pg_rows(pg, 'SELECT x FROM "R" WHERE x = 0')]
    assert {bits(x) for x in arrived} == {bits(0.0)}


def test_negative_zero_in_a_table_without_rowid_is_named_not_lost(migration, pg):
    from etl.errors import SourceError

    m = migration(
        [
            ("CREATE TABLE W (k TEXT PRIMARY KEY, x) WITHOUT ROWID", ()),
            ("INSERT INTO W VALUES ('a', ?), ('b', 0.0)", (-0.0,)),
        ]
    )
    with pytest.raises(SourceError, match=r'table "W", column "x" holds -0.0, .* has no rowid .*x \+ 0\.0'):
        m.apply("tables:\n  W:\n    columns:\n      x: {type: double precision}\n")
    m.change_source("UPDATE W SET x = 0.0")
    m.apply()  # only zeros without a sign now
    assert pg_rows(pg, 'SELECT k, x FROM "W" ORDER BY k') == [("a", 0.0), ("b", 0.0)]


def test_negative_zero_from_a_query_table_is_named_not_lost(migration):
    from etl.errors import SourceError

    m = migration(signed_zeros_source())
    body = "tables:\n  Q:\n    query: SELECT id, x FROM R\n    columns:\n      x: {type: double precision}\n"
    with pytest.raises(
        SourceError, match=r'table "Q", column "x" holds -0.0, .* has no rowid \(WITHOUT ROWID, or a query\)'
    ):
        m.apply(body)


def test_verification_sees_a_zero_whose_sign_changed_in_the_target(migration, pg):
    from etl.pipeline import verify

    m = migration(signed_zeros_source())
    m.apply("tables:\n  R:\n    columns:\n      x: {type: double precision}\n")
    assert verify(m.check()).ok
    pg.execute("""UPDATE "R" SET x = '0' WHERE id = 1""")  # -0.0 in the source
    pg.execute("""UPDATE "R" SET x = '-0' WHERE id = 3""")  # 0.0 in the source
    checked = verify(m.check())
    assert not checked.ok
    (table,) = checked.tables
    assert sorted(table.differing_keys) == ["id=1: different values", "id=3: different values"]


def test_a_resync_sees_no_difference_in_zeros_that_kept_their_sign(migration, pg):
    from etl.pipeline import check, plan_for

    m = migration(signed_zeros_source())
    m.apply("tables:\n  R:\n    columns:\n      x: {type: double precision}\n")
    assert {name for name, _ in m.plan().skipped} == {"R"}
    m.change_source("INSERT INTO R (id, x) VALUES (100, -0.0); UPDATE R SET x = 0.0 WHERE id = 2")
    plan = plan_for(m.check())
    # etl plan and apply measure only the tables they compare: the same plan
    assert plan_for(check(m.spec_path, {}, sizes_later=True)) == plan
    (diff,) = [s.diff for s in plan.steps if hasattr(s, "diff")]
    assert (diff.insert, diff.update) == (1, 1)
    m.apply()
    arrived = dict(pg_rows(pg, 'SELECT id, x FROM "R" WHERE id IN (1, 2, 100)'))
    assert {i: bits(x) for i, x in arrived.items()} == {1: bits(-0.0), 2: bits(0.0), 100: bits(-0.0)}
    assert {name for name, _ in m.plan().skipped} == {"R"}


def test_doubles_that_float4_holds_exactly_arrive_in_real(migration, pg):
    values = [0.5, -0.25, 1.0, 16777216.0, 3.4028234663852886e38, 1.401298464324817e-45, math.inf, -math.inf]
    m = migration(
        [("CREATE TABLE R (id INTEGER PRIMARY KEY, x REAL)", ())]
        + [("INSERT INTO R (id, x) VALUES (?, ?)", (i, x)) for i, x in enumerate(values)]
    )
    m.apply("tables:\n  R:\n    columns:\n      x: {type: real}\n")
    assert column_type(pg, "R", "x") == "real"
    held = dict(sqlite_rows(m.source, "SELECT id, x FROM R"))
    arrived = dict(pg_rows(pg, 'SELECT id, x FROM "R"'))
    assert {i: bits(x) for i, x in arrived.items()} == {i: bits(x) for i, x in held.items()}


# --- text, bytes, documents ----------------------------------------------------------------------

TEXTS = [
    "",
    " ",
    "plain ASCII",
    "emoji 😀 👩‍👩‍👧‍👦 🇯🇵 and a 4-byte CJK 𠜎",
    "中文 日本語 한국어",
    "עברית مرحبا بالعالم",  # right to left
    "e\u0301 a\u0308 \u0915\u094d\u0937",  # combining marks
    "𝄞 𝕏 \U0010fffd",  # outside the BMP, up to the last plane
    "quotes ' \" `; backslashes \\ \\\\ \\n \\x00; percent %s %%",
    "line\nbreak\r\nand\ttab",
    "\ufeffBOM and zero\u200bwidth",
    "x" * 100_000,
]


def test_any_unicode_text_arrives_unchanged(migration, pg):
    m = migration(
        [("CREATE TABLE Note (id INTEGER PRIMARY KEY, body TEXT)", ())]
        + [("INSERT INTO Note (id, body) VALUES (?, ?)", (i, t)) for i, t in enumerate(TEXTS)]
    )
    m.apply()
    held = dict(sqlite_rows(m.source, "SELECT id, body FROM Note"))
    assert held == dict(enumerate(TEXTS))
    assert dict(pg_rows(pg, 'SELECT id, body FROM "Note"')) == held


def test_empty_text_stays_distinct_from_null(migration, pg):
    m = migration(
        """
        CREATE TABLE Note (id INTEGER PRIMARY KEY, body TEXT, tag VARCHAR(10));
        INSERT INTO Note VALUES (1, '', NULL), (2, NULL, ''), (3, '', '');
        """
    )
    m.apply()
    rows = pg_rows(pg, 'SELECT id, body, tag FROM "Note" ORDER BY id')
    assert rows == sqlite_rows(m.source, "SELECT id, body, tag FROM Note ORDER BY id")
    assert rows == [(1, "", None), (2, None, ""), (3, "", "")]


def test_numbers_in_a_text_column_arrive_as_their_exact_digits(migration, pg):
    m = migration(
        [
            ("CREATE TABLE Misc (id INTEGER PRIMARY KEY, v)", ()),  # no declared type: becomes text
            ("INSERT INTO Misc VALUES (1, ?), (2, ?), (3, ?)", (2**63 - 1, -(2**63), "007")),
        ]
    )
    m.apply()
    assert column_type(pg, "Misc", "v") == "text"
    assert pg_rows(pg, 'SELECT id, v FROM "Misc" ORDER BY id') == [
        (1, str(2**63 - 1)),
        (2, str(-(2**63))),
        (3, "007"),
    ]


def test_blobs_arrive_byte_for_byte(migration, pg):
    rnd = random.Random(7)
    blobs = [b"", b"\x00", b"\xff", bytes(range(256)), b"\x00" * 1000, rnd.randbytes(1024 * 1024)]
    m = migration(
        [("CREATE TABLE File (id INTEGER PRIMARY KEY, data BLOB)", ())]
        + [("INSERT INTO File (id, data) VALUES (?, ?)", (i, b)) for i, b in enumerate(blobs)]
        + [("INSERT INTO File (id, data) VALUES (?, NULL)", (len(blobs),))]
    )
    m.apply()
    assert column_type(pg, "File", "data") == "bytea"
    held = dict(sqlite_rows(m.source, "SELECT id, data FROM File"))
    assert held[0] == b"" and held[len(blobs)] is None  # an empty blob is not NULL
    assert dict(pg_rows(pg, 'SELECT id, data FROM "File"')) == held


def test_text_into_bytea_arrives_as_its_utf8_bytes(migration, pg):
    m = migration(
        [
            ("CREATE TABLE File (id INTEGER PRIMARY KEY, data TEXT)", ()),
            ("INSERT INTO File VALUES (1, ?)", ("é😀",)),
        ]
    )
    m.apply("tables:\n  File:\n    columns:\n      data: {type: bytea}\n")
    assert pg_rows(pg, 'SELECT data FROM "File"') == [("é😀".encode(),)]


JSON_TEXTS = [
    '{"a": 1, "b": [true, false, null], "c": {"d": "e"}}',
    "[]",
    "{}",
    '"just a string"',
    "42",
    "null",
    '{"big": 123456789012345678901234567890, "exp": 2.5e3, "neg": -0.25}',
    '{"unicode": "😀 中文 \\u00e9 \\ud83d\\ude00", "escapes": "quote \\" backslash \\\\ tab \\t"}',
    '  {"spaced" :  [ 1 , 2 ] }  ',
]


def test_json_text_arrives_in_jsonb_as_the_same_document(migration, pg):
    m = migration(
        [("CREATE TABLE Doc (id INTEGER PRIMARY KEY, payload TEXT, raw TEXT)", ())]
        + [
            ("INSERT INTO Doc (id, payload, raw) VALUES (?, ?, ?)", (i, j, j))
            for i, j in enumerate(JSON_TEXTS)
        ]
    )
    m.apply("tables:\n  Doc:\n    columns:\n      payload: {type: jsonb}\n")
    assert column_type(pg, "Doc", "payload") == "jsonb"
    assert column_type(pg, "Doc", "raw") == "text"  # only where the spec asks
    held = sqlite_rows(m.source, "SELECT id, payload, raw FROM Doc ORDER BY id")
    arrived = pg.execute('SELECT id, payload, raw FROM "Doc" ORDER BY id').fetchall()
    assert arrived == [(i, json.loads(p), r) for i, p, r in held]


def test_declared_json_columns_become_jsonb(migration, pg):
    m = migration(
        """
        CREATE TABLE Doc (id INTEGER PRIMARY KEY, payload JSON);
        INSERT INTO Doc VALUES (1, '{"a": [1, 2.5, "x"]}');
        """
    )
    m.apply()
    assert column_type(pg, "Doc", "payload") == "jsonb"
    assert pg.execute('SELECT payload FROM "Doc"').fetchall() == [({"a": [1, 2.5, "x"]},)]


def test_uuid_text_arrives_as_the_same_uuid(migration, pg):
    texts = [
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A12",
        "a0eebc999c0b4ef8bb6d6bb9bd380a13",
        "00000000-0000-0000-0000-000000000000",
        "ffffffff-ffff-ffff-ffff-ffffffffffff",
    ]
    m = migration(
        [("CREATE TABLE Thing (id INTEGER PRIMARY KEY, key TEXT)", ())]
        + [("INSERT INTO Thing (id, key) VALUES (?, ?)", (i, t)) for i, t in enumerate(texts)]
        + [("INSERT INTO Thing (id, key) VALUES (?, ?)", (len(texts), uuid.UUID(texts[0]).bytes))]
    )
    m.apply("tables:\n  Thing:\n    columns:\n      key: {type: uuid}\n")
    assert column_type(pg, "Thing", "key") == "uuid"
    held = dict(sqlite_rows(m.source, "SELECT id, key FROM Thing"))
    expected = {i: uuid.UUID(bytes=v) if isinstance(v, bytes) else uuid.UUID(v) for i, v in held.items()}
    assert dict(pg_rows(pg, 'SELECT id, key FROM "Thing"')) == expected


@pytest.mark.parametrize(
    ("text", "instant"),
    [
        ("2025-08-07T10:00:00z", PRISMA_INSTANT),
        ("2025-08-07T12:00:00 +02:00", PRISMA_INSTANT),
        ("2025-08-07T12:00+02:00", PRISMA_INSTANT),
        ("2025-08-07T12:00:00+0200", PRISMA_INSTANT),
        ("2025-08-07T12:00:00+02", PRISMA_INSTANT),
        ("2025-08-07Z", datetime(2025, 8, 7, tzinfo=UTC)),
        ("2025-08-07+02:00", datetime(2025, 8, 6, 22, tzinfo=UTC)),
        ("2025-08-07 04:30:00-05:30", PRISMA_INSTANT),
    ],
)
def test_iso_spellings_that_duckdb_reads_differently_arrive_as_the_same_instant(migration, pg, text, instant):
    m = migration(
        [
            ("CREATE TABLE e (id INTEGER PRIMARY KEY, at DATETIME)", ()),
            ("INSERT INTO e (at) VALUES (?)", (text,)),
        ]
    )
    m.apply()
    assert pg.execute("SELECT at FROM e").fetchone()[0] == instant
