"""The conversions' fast paths are shortcuts, never different answers: on every value, a column's
expressions give exactly what the full checks give (value and problem alike)."""

from __future__ import annotations

import random

import pytest

from etl import duck
from etl.pgtypes import parse_pg_type
from etl.settings import Converter
from etl.sqlite.convert import ValueConversion, as_timestamptz, duck_expressions


def iso_texts(n: int, seed: int = 1) -> list[str]:
    """Text shaped like ISO datetimes to the second, valid or not (month 13, hour 25, year 0)."""
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        year = rng.choice([0, 1, 99, 1000, 1969, 1970, 2024, 9999])
        texts.append(
            f"{year:04d}-{rng.randint(0, 13):02d}-{rng.randint(0, 32):02d}{rng.choice(' T')}"
            f"{rng.randint(0, 25):02d}:{rng.randint(0, 60):02d}:{rng.randint(0, 61):02d}"
        )
    return texts + [
        "2024-01-20 00:10:10",
        "2024-01-20T00:10:10",
        "2024-02-29 12:00:00",
        "2023-02-29 12:00:00",
    ]


@pytest.mark.parametrize("pg_type", ["timestamptz", "timestamp", "timestamp(3)", "timestamp(0)"])
@pytest.mark.parametrize("converter", [Converter.AUTO, Converter.ISO])
def test_iso_text_to_the_second_converts_as_the_full_checks_do(pg_type, converter):
    con = duck.connect()
    con.execute("CREATE TABLE x (v VARCHAR)")
    con.executemany("INSERT INTO x VALUES (?)", [(v,) for v in iso_texts(2000)])
    column = ValueConversion('"a"', "a", parse_pg_type(pg_type), converter, nullable=True)
    fast = duck_expressions(column, "'text'", "v")
    full = duck_expressions(column, "'text'", "v", fast_path=False)
    assert fast.value != full.value  # the fast path is in use
    differing = con.execute(
        f"SELECT v FROM x WHERE ({fast.value}) IS DISTINCT FROM ({full.value}) "
        f"OR ({fast.problem}) IS DISTINCT FROM ({full.problem}) LIMIT 5"
    ).fetchall()
    assert differing == []
    valid, invalid = con.execute(
        f"SELECT count(*) FILTER (WHERE ({full.problem}) IS NULL), count(*) FILTER (WHERE ({full.problem}) IS NOT NULL) FROM x"
    ).fetchone()
    assert valid > 500 and invalid > 500  # both kinds were compared


def test_timestamps_read_as_utc_are_the_instants_the_utc_cast_gives():
    con = duck.connect()
    con.execute("SET TimeZone = 'America/New_York'")  # the shortcut must not depend on the session's zone
    cast_in_utc = "CAST(strftime(ts, '%Y-%m-%d %H:%M:%S.%f+00') AS TIMESTAMPTZ)"
    differing = con.execute(
        f"SELECT ts FROM (SELECT TIMESTAMP '0001-01-01' + INTERVAL (i * 7919) MINUTE "
        f"+ INTERVAL (i % 1000000) MICROSECOND AS ts FROM range(1000000) r(i) "
        f"UNION ALL VALUES (TIMESTAMP '9999-12-31 23:59:59.999999'), (NULL)) "
        f"WHERE ({as_timestamptz('ts')}) IS DISTINCT FROM ({cast_in_utc}) LIMIT 5"
    ).fetchall()
    assert differing == []
    con.execute("SET TimeZone = 'UTC'")
    infinite = con.execute(
        f"SELECT {as_timestamptz('ts')} = CAST(ts AS TIMESTAMPTZ) FROM "
        "(VALUES (TIMESTAMP 'infinity'), (TIMESTAMP '-infinity')) v(ts)"
    ).fetchall()
    assert infinite == [(True,), (True,)]
