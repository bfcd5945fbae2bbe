"""converter: base64 turns base64 text (pgloader's base64-decode) into the bytes it encodes, in a
bytea column; a value that is not canonical base64 is named, never altered."""

from __future__ import annotations

import pytest

from etl.errors import DataError, SpecError

SOURCE = [
    "CREATE TABLE doc (id INTEGER PRIMARY KEY, body BLOB)",
    ("INSERT INTO doc VALUES (1, ?)", ("aGVsbG8=",)),  # text storage class
    ("INSERT INTO doc VALUES (2, ?)", (b"AAH/",)),  # a blob of ASCII base64
    ("INSERT INTO doc VALUES (3, ?)", ("",)),  # empty text: zero bytes
    ("INSERT INTO doc VALUES (4, NULL)", ()),
]
BASE64_BODY = "tables:\n  doc:\n    columns:\n      body: {type: bytea, converter: base64}\n"


def test_base64_text_arrives_as_the_bytes_it_encodes_and_verifies(migration, pg):
    m = migration(SOURCE)
    result = m.apply(BASE64_BODY)

    assert result.verified
    assert pg.execute("SELECT id, body FROM doc ORDER BY id").fetchall() == [
        (1, b"hello"),
        (2, b"\x00\x01\xff"),
        (3, b""),
        (4, None),
    ]
    assert not m.plan().has_changes  # the row diff reads the source through the same decoding
    m.change_source("UPDATE doc SET body = 'aGk=' WHERE id = 3")
    assert m.apply().rows == {"doc": 1}
    assert pg.execute("SELECT body FROM doc WHERE id = 3").fetchone() == (b"hi",)


@pytest.mark.parametrize(
    ("bad", "shown"),
    [
        ("aGVsbG8", "text 'aGVsbG8'"),  # padding missing
        ("aGVs\nbG8=", "text 'aGVs\\nbG8='"),  # a line break (shown as \n: the message is one line)
        ("QR==", "text 'QR=='"),  # unused bits set: QQ== is the same byte
        ("not base64!", "text 'not base64!'"),
    ],
)
def test_text_that_is_not_canonical_base64_fails_the_run_by_name(migration, pg, bad, shown):
    m = migration([*SOURCE, ("INSERT INTO doc VALUES (5, ?)", (bad,))])

    with pytest.raises(DataError) as failure:
        m.apply(BASE64_BODY)

    assert str(failure.value) == (
        f'table "doc", row id=5: column "body": expected base64 text (converter: base64), found {shown}'
    )
    assert pg.execute("SELECT to_regclass('public.doc')").fetchone() == (None,)


def test_with_on_error_reject_a_row_that_is_not_base64_is_set_aside_and_the_rest_loads(migration, pg):
    m = migration([*SOURCE, ("INSERT INTO doc VALUES (5, 42)", ())])

    result = m.apply("on_error: reject\n" + BASE64_BODY)

    assert [(r["key"], r["reason"]) for r in result.rejects] == [
        ("id=5", 'column "body": expected base64 text (converter: base64), found integer 42')
    ]
    assert [i for (i,) in pg.execute("SELECT id FROM doc ORDER BY id")] == [1, 2, 3, 4]
    assert result.verified


def test_a_type_rule_decodes_base64_in_every_column_of_a_declared_type(migration, pg):
    m = migration(SOURCE)

    m.apply("type_rules:\n  - {declared: BLOB, type: bytea, converter: base64}\n")

    assert pg.execute("SELECT body FROM doc WHERE id = 1").fetchone() == (b"hello",)


def test_base64_on_a_column_that_is_not_bytea_is_a_spec_mistake(migration):
    m = migration(SOURCE)

    with pytest.raises(SpecError, match="converter 'base64' applies to bytea columns, not text"):
        m.check("tables:\n  doc:\n    columns:\n      body: {type: text, converter: base64}\n")
