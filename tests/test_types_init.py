"""etl init names columns whose values are of another kind than their declared type: BLOBs that
hold text or base64, text and blobs that are all UUIDs. Where the change is exact (every UUID
written as PostgreSQL's uuid prints it), it proposes the type; otherwise it says what a spec can
do, and the spec it writes applies as written."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import yaml

from etl.errors import DataError
from etl.init.infer import init_spec
from etl.pipeline import apply, check, plan_for

U1, U2 = str(uuid.UUID(int=1)), "6f1c0a4e-9b7d-4c1e-8a2f-3d5e6f7a8b9c"


def apply_spec(spec: Path, url: str):
    checked = check(spec, {"DATABASE_URL": url})
    return apply(checked, plan_for(checked))


def columns_of(spec: Path, table: str) -> dict:
    return yaml.safe_load(spec.read_text(encoding="utf-8"))["tables"][table]["columns"]


def findings_of(result) -> dict[str, str]:
    return {f"{f.table}.{f.column}": f.message for f in result.findings}


def test_a_blob_column_of_utf8_text_is_named_with_what_to_do_and_utf8_stores_it_as_text(
    tmp_sqlite, tmp_path, pg_url, pg
):
    db = tmp_sqlite(
        [
            "CREATE TABLE note (id INTEGER PRIMARY KEY, body BLOB)",
            ("INSERT INTO note VALUES (1, ?)", ("grüße".encode(),)),
            ("INSERT INTO note VALUES (2, ?)", ("plain text",)),
        ]
    )
    spec = tmp_path / "spec.yaml"

    result = init_spec(db, spec)

    assert findings_of(result)["note.body"] == (
        "every value is UTF-8 text (2 values, 1 stored as blobs); chose bytea, which keeps their bytes "
        "(set type: text, converter: utf8 to store them as text)"
    )
    assert "# !! BLOB; every value is UTF-8 text" in spec.read_text()
    apply_spec(spec, pg_url)
    assert pg.execute("SELECT body FROM note ORDER BY id").fetchall() == [
        ("grüße".encode(),),
        (b"plain text",),
    ]

    pg.execute("DROP TABLE note")
    pg.commit()
    spec.write_text(spec.read_text().replace("body: {type: bytea}", "body: {type: text, converter: utf8}"))
    assert apply_spec(spec, pg_url).verified
    assert pg.execute("SELECT body FROM note ORDER BY id").fetchall() == [("grüße",), ("plain text",)]
    assert not plan_for(check(spec, {"DATABASE_URL": pg_url})).has_changes


def test_utf8_names_a_blob_that_is_not_text(migration, pg):
    m = migration(
        [
            "CREATE TABLE note (id INTEGER PRIMARY KEY, body BLOB)",
            ("INSERT INTO note VALUES (1, ?)", (b"\xff\xfe",)),
        ]
    )
    with pytest.raises(DataError) as failure:
        m.apply("tables:\n  note:\n    columns:\n      body: {type: text, converter: utf8}\n")
    assert str(failure.value) == (
        'table "note", row id=1: column "body": is not valid UTF-8 (fix it in SQLite, or use type '
        "bytea to keep the bytes): blob X'FFFE'"
    )


def test_a_blob_column_of_base64_is_named_and_converter_base64_decodes_it(tmp_sqlite, tmp_path, pg_url, pg):
    db = tmp_sqlite(
        [
            "CREATE TABLE img (id INTEGER PRIMARY KEY, data BLOB)",
            ("INSERT INTO img VALUES (1, ?)", ("iVBORw0KGgo=",)),
            ("INSERT INTO img VALUES (2, ?)", (b"AAECAw==",)),
        ]
    )
    spec = tmp_path / "spec.yaml"

    result = init_spec(db, spec)

    assert findings_of(result)["img.data"] == (
        "every value is base64 (2 values); chose bytea, which keeps the base64 text's bytes "
        "(set converter: base64 to store the bytes it encodes)"
    )
    spec.write_text(spec.read_text().replace("data: {type: bytea}", "data: {type: bytea, converter: base64}"))
    assert apply_spec(spec, pg_url).verified
    assert pg.execute("SELECT data FROM img ORDER BY id").fetchall() == [
        (b"\x89PNG\r\n\x1a\n",),
        (b"\x00\x01\x02\x03",),
    ]


def test_text_that_is_all_lower_case_uuids_arrives_as_uuid_and_verifies(tmp_sqlite, tmp_path, pg_url, pg):
    db = tmp_sqlite(
        [
            "CREATE TABLE account (id TEXT PRIMARY KEY, name TEXT)",
            "CREATE TABLE post (id INTEGER PRIMARY KEY, author TEXT REFERENCES account(id))",
            ("INSERT INTO account VALUES (?, 'a'), (?, 'b')", (U1, U2)),
            ("INSERT INTO post VALUES (1, ?), (2, NULL)", (U2,)),
        ]
    )
    spec = tmp_path / "spec.yaml"

    result = init_spec(db, spec)

    assert columns_of(spec, "account")["id"] == {"type": "uuid"}
    assert columns_of(spec, "post")["author"] == {"type": "uuid"}
    assert (
        "every value is a UUID (2 values), each as PostgreSQL's uuid prints it; chose uuid"
        in (findings_of(result)["account.id"])
    )
    assert apply_spec(spec, pg_url).verified
    assert pg.execute("SELECT id::text FROM account ORDER BY name").fetchall() == [(U1,), (U2,)]
    assert pg.execute(
        "SELECT data_type FROM information_schema.columns WHERE table_name = 'post' AND column_name = 'author'"
    ).fetchone() == ("uuid",)


def test_upper_case_uuids_stay_text_with_a_finding_since_uuid_would_change_their_text(
    tmp_sqlite, tmp_path, pg_url, pg
):
    db = tmp_sqlite(
        [
            "CREATE TABLE device (id INTEGER PRIMARY KEY, serial TEXT)",
            ("INSERT INTO device VALUES (1, ?), (2, ?)", (U1, U2.upper())),
        ]
    )
    spec = tmp_path / "spec.yaml"

    result = init_spec(db, spec)

    assert columns_of(spec, "device")["serial"] == {"type": "text"}
    assert findings_of(result)["device.serial"].startswith(
        "every value is a UUID (2 values), 1 not written as PostgreSQL's uuid prints them"
    )
    apply_spec(spec, pg_url)
    assert pg.execute("SELECT serial FROM device ORDER BY id").fetchall() == [(U1,), (U2.upper(),)]


def test_a_uuid_column_joined_by_a_foreign_key_to_text_stays_text(tmp_sqlite, tmp_path, pg_url, pg):
    db = tmp_sqlite(
        [
            "CREATE TABLE account (id TEXT PRIMARY KEY)",
            "CREATE TABLE post (id INTEGER PRIMARY KEY, author TEXT REFERENCES account(id))",
            ("INSERT INTO account VALUES (?), ('legacy-1')", (U1,)),
            ("INSERT INTO post VALUES (1, ?)", (U1,)),
        ]
    )
    spec = tmp_path / "spec.yaml"

    result = init_spec(db, spec)

    assert columns_of(spec, "post")["author"] == {"type": "text"}
    assert "joins it to a column that is not: kept text" in findings_of(result)["post.author"]
    apply_spec(spec, pg_url)
    assert pg.execute("SELECT author FROM post").fetchall() == [(U1,)]


def test_a_uuid_text_column_that_a_check_reads_stays_text(tmp_sqlite, tmp_path):
    db = tmp_sqlite(
        [
            "CREATE TABLE t (id INTEGER PRIMARY KEY, token TEXT CHECK (length(token) = 36))",
            ("INSERT INTO t VALUES (1, ?)", (U1,)),
        ]
    )
    spec = tmp_path / "spec.yaml"

    init_spec(db, spec)

    assert columns_of(spec, "t")["token"] == {}  # text, as TEXT gives it


def test_blobs_of_uuid_bytes_are_named_and_type_uuid_stores_them_byte_for_byte(
    tmp_sqlite, tmp_path, pg_url, pg
):
    ids = [uuid.UUID(U2), uuid.UUID("123e4567-e89b-42d3-a456-426614174000")]
    db = tmp_sqlite(
        [
            "CREATE TABLE t (id INTEGER PRIMARY KEY, ref BLOB, secret BLOB)",
            ("INSERT INTO t VALUES (1, ?, ?)", (ids[0].bytes, bytes(16))),
            ("INSERT INTO t VALUES (2, ?, ?)", (ids[1].bytes, bytes(range(16)))),
        ]
    )
    spec = tmp_path / "spec.yaml"

    result = init_spec(db, spec)

    found = findings_of(result)
    assert found["t.ref"].startswith("every value is 16 bytes with a UUID's version and variant bits")
    assert "t.secret" not in found  # 16 bytes without those bits: a key, a hash, not named a UUID
    spec.write_text(spec.read_text().replace("ref: {type: bytea}", "ref: {type: uuid}"))
    assert apply_spec(spec, pg_url).verified
    assert pg.execute("SELECT ref FROM t ORDER BY id").fetchall() == [(ids[0],), (ids[1],)]


def test_blobs_of_utf8_text_are_named_whatever_character_each_starts_with(tmp_sqlite, tmp_path):
    """SQLite rules out bytes that cannot be UTF-8 before Python decodes the rest: a first byte
    that starts a two-, three- or four-byte character still counts as text."""
    texts = ["été", "日本語", "😀 ok", "plain", "ÿ"]
    db = tmp_sqlite(
        ["CREATE TABLE note (id INTEGER PRIMARY KEY, body BLOB, key BLOB)"]
        + [
            ("INSERT INTO note VALUES (?, ?, ?)", (i, text.encode(), bytes([0xC3, 0x28]) if i == 1 else b"k"))
            for i, text in enumerate(texts)
        ]
    )

    found = findings_of(init_spec(db, tmp_path / "spec.yaml"))

    assert found["note.body"].startswith("every value is UTF-8 text (5 values, 5 stored as blobs)")
    assert "note.key" not in found  # C3 28 starts a character it does not finish


def test_a_blob_column_is_named_all_text_all_base64_or_all_uuids_only_when_every_value_is(
    tmp_sqlite, tmp_path
):
    """One value of another kind, wherever it is, keeps the column from being named."""
    rows = 50
    uuids = [uuid.uuid4().bytes for _ in range(rows)]
    db = tmp_sqlite(
        ["CREATE TABLE t (id INTEGER PRIMARY KEY, texts BLOB, uuids BLOB, encoded TEXT, words TEXT)"]
        + [
            (
                "INSERT INTO t VALUES (?, ?, ?, ?, ?)",
                (
                    i,
                    b"\xff\xfe" if i == rows - 1 else b"word",
                    bytes(16) if i == rows // 2 else uuids[i],
                    "not base64!" if i == rows - 1 else "aGVsbG8=",
                    "x" if i == 0 else U2,
                ),
            )
            for i in range(rows)
        ]
    )

    found = findings_of(init_spec(db, tmp_path / "spec.yaml"))

    assert not {"t.texts", "t.uuids", "t.encoded", "t.words"} & set(found)


@pytest.mark.parametrize(
    ("version", "variant", "named"),
    [
        (0x10, 0x80, True),
        (0x8F, 0xBF, True),
        (0x0F, 0x80, False),
        (0x90, 0x80, False),
        (0x40, 0x7F, False),
        (0x40, 0xC0, False),
    ],
)
def test_a_uuid_blob_is_told_by_its_version_and_variant_bits(tmp_sqlite, tmp_path, version, variant, named):
    value = bytearray(range(16))
    value[6], value[8] = version, variant
    db = tmp_sqlite(
        [
            "CREATE TABLE t (id INTEGER PRIMARY KEY, ref BLOB)",
            ("INSERT INTO t VALUES (1, ?)", (bytes(value),)),
        ]
    )

    found = findings_of(init_spec(db, tmp_path / "spec.yaml"))

    assert ("t.ref" in found and "UUID's version" in found["t.ref"]) is named
