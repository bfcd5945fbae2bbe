"""A blob can sit in any SQLite column. Its raw bytes (NUL, 0xff, not UTF-8) must arrive byte for
byte where the target is bytea, and be named as a bad value everywhere else: never crash DuckDB."""

from __future__ import annotations

import pytest

from etl.errors import DataError

BYTES = bytes([0x00, 0xFF, 0xC3, 0x28, 0x41, 0x00, 0xE2, 0x82])  # NUL, invalid UTF-8 sequences

TARGETS = [
    "bigint",
    "integer",
    "double precision",
    "real",
    "numeric(10,2)",
    "numeric",
    "boolean",
    "text",
    "varchar(4)",
    "jsonb",
    "uuid",
    "date",
    "time",
    "timestamp(3)",
    "timestamptz",
    "inet",
]


@pytest.mark.parametrize("target", TARGETS)
def test_a_blob_in_a_column_of_another_type_is_named_not_mangled(migration, pg, target):
    m = migration(
        [("CREATE TABLE t (id INTEGER PRIMARY KEY, x ANY)", ()), ("INSERT INTO t VALUES (1, ?)", (BYTES,))]
    )
    with pytest.raises(DataError) as failure:
        m.apply(f'tables:\n  t:\n    columns:\n      x: {{type: "{target}"}}\n')
    message = str(failure.value)
    assert message.startswith('table "t", row id=1: column "x": '), message
    assert "blob X'00FFC3284100E282'" in message
    assert pg.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
    ).fetchone() == (0,)


def test_blob_bytes_arrive_exactly_in_bytea_and_a_16_byte_blob_becomes_a_uuid(migration, pg):
    uuid_bytes = bytes(range(16))
    m = migration(
        [
            ("CREATE TABLE t (id INTEGER PRIMARY KEY, x BLOB, u BLOB)", ()),
            ("INSERT INTO t VALUES (1, ?, ?)", (BYTES, uuid_bytes)),
            ("INSERT INTO t VALUES (2, ?, NULL)", (BYTES * 1000,)),
        ]
    )
    m.apply("tables:\n  t:\n    columns:\n      u: {type: uuid}\n")
    rows = pg.execute("SELECT id, x, u::text FROM t ORDER BY id").fetchall()
    assert rows == [(1, BYTES, "00010203-0405-0607-0809-0a0b0c0d0e0f"), (2, BYTES * 1000, None)]
