"""The story end to end: the Prisma chat-app sample migrated with specs/chat_app.yaml, every value
checked against the SQLite source, every constraint and sequence checked in PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from make_chat_app import build_chat_app  # samples/, on sys.path via conftest
from psycopg import sql

from etl.core.mapping import DesiredSchema, TargetTable
from etl.pipeline import apply, check, plan_for

ROOT = Path(__file__).resolve().parent.parent
EPOCH = dt.datetime(1970, 1, 1)


@pytest.fixture
def chat_app(tmp_path: Path, pg_url: str):
    """The sample built in tmp_path next to a copy of specs/chat_app.yaml, migrated into pg_url."""
    (tmp_path / "specs").mkdir()
    (tmp_path / "samples").mkdir()
    spec_path = tmp_path / "specs" / "chat_app.yaml"
    shutil.copy(ROOT / "specs" / "chat_app.yaml", spec_path)
    counts = build_chat_app(tmp_path / "samples" / "chat_app.db", users=40, messages=1500, seed=7)
    checked = check(spec_path, {"DATABASE_URL": pg_url})
    result = apply(checked, plan_for(checked))
    return checked, counts, result


def expected_value(raw, table: TargetTable, column_name: str):
    """What PostgreSQL must hold for the SQLite value `raw`, by the column's target type."""
    column = table.column(column_name)
    assert column is not None
    kind = column.pg_type.kind
    if raw is None:
        return None
    if kind in ("timestamp", "timestamptz"):
        if isinstance(raw, int):
            assert column.conversion.converter == "epoch_milliseconds"
            value = EPOCH + dt.timedelta(milliseconds=raw)
        else:
            value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00")).replace(tzinfo=None)
        return value.replace(tzinfo=dt.UTC) if kind == "timestamptz" else value
    if kind == "boolean":
        return {0: False, 1: True}[raw]
    if kind == "numeric":
        return Decimal(repr(raw)) if isinstance(raw, float) else Decimal(raw)
    if kind == "json":
        return json.loads(raw)
    return raw


def test_every_value_of_every_table_arrives_exactly(chat_app, pg: psycopg.Connection):
    checked, counts, result = chat_app
    mapping: DesiredSchema = checked.mapping
    assert len(mapping.tables) == 23
    assert result.rows == {t.name: counts[t.source] for t in mapping.tables}
    src = sqlite3.connect(checked.spec.source)
    compared = 0
    for table in mapping.tables:
        names = [c.name for c in table.columns]
        key = list(table.primary_key)
        src_rows = src.execute(
            f'SELECT {", ".join(chr(34) + n + chr(34) for n in names)} FROM "{table.source}"'
        ).fetchall()
        pg_rows = pg.execute(
            sql.SQL("SELECT {} FROM {}").format(
                sql.SQL(", ").join(map(sql.Identifier, names)), sql.Identifier("public", table.name)
            )
        ).fetchall()
        assert len(pg_rows) == len(src_rows), table.name
        by_key = {tuple(row[names.index(k)] for k in key): row for row in pg_rows}
        for row in src_rows:
            target = by_key[tuple(row[names.index(k)] for k in key)]
            for name, raw, got in zip(names, row, target, strict=True):
                want = expected_value(raw, table, name)
                assert got == want, (
                    f"{table.name}.{name}: SQLite {raw!r} -> PostgreSQL {got!r}, expected {want!r}"
                )
                compared += 1
    assert compared > 30_000


def test_the_schema_has_prismas_types_keys_and_constraints(chat_app, pg: psycopg.Connection):
    types = dict(
        pg.execute(
            "SELECT table_name || '.' || column_name, data_type || coalesce('(' || datetime_precision || ')', '') "
            "FROM information_schema.columns WHERE table_schema = 'public'"
        ).fetchall()
    )
    assert types["User.createdAt"] == "timestamp without time zone(3)"
    assert types["User.isActive"] == "boolean"
    assert types["Message.sequence"] == "bigint"
    assert types["Message.amount"] == "numeric"
    assert types["IdentityKey.publicKey"] == "bytea"
    assert types["UserSettings.preferences"] == "jsonb"
    assert types["OneTimePreKey.id"] == "integer"
    constraints = dict(
        pg.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE connamespace = 'public'::regnamespace"
        ).fetchall()
    )
    assert constraints["ConversationParticipant_pkey"] == 'PRIMARY KEY ("conversationId", "userId")'
    assert constraints["Message_conversationId_fkey"] == (
        'FOREIGN KEY ("conversationId") REFERENCES "Conversation"(id) ON UPDATE CASCADE ON DELETE CASCADE'
    )
    assert constraints["Message_replyToId_fkey"].endswith("ON UPDATE CASCADE ON DELETE SET NULL")
    indexes = dict(
        pg.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'").fetchall()
    )
    assert indexes["User_email_key"].startswith('CREATE UNIQUE INDEX "User_email_key" ON public."User"')
    not_null = pg.execute(
        "SELECT is_nullable FROM information_schema.columns WHERE table_name = 'User' AND column_name = 'email'"
    ).fetchone()
    assert not_null == ("NO",)
    started_default = pg.execute(
        "SELECT column_default FROM information_schema.columns "
        "WHERE table_name = '_prisma_migrations' AND column_name = 'started_at'"
    ).fetchone()
    assert started_default == ("CURRENT_TIMESTAMP",)


def test_identity_sequences_continue_past_sqlites_ids(chat_app, pg: psycopg.Connection):
    checked, _counts, _result = chat_app
    src = sqlite3.connect(checked.spec.source)
    seq = src.execute("SELECT seq FROM sqlite_sequence WHERE name = 'OneTimePreKey'").fetchone()[0]
    device = pg.execute('SELECT "id" FROM "Device" LIMIT 1').fetchone()[0]
    new_id = pg.execute(
        'INSERT INTO "OneTimePreKey" ("deviceId", "keyId", "publicKey") VALUES (%s, 999999, %s) RETURNING id',
        (device, b"\x01" * 32),
    ).fetchone()[0]
    assert new_id == seq + 1
    max_id = pg.execute('SELECT max(id) FROM "AuditLog"').fetchone()[0]
    audit_seq = src.execute("SELECT seq FROM sqlite_sequence WHERE name = 'AuditLog'").fetchone()[0]
    next_audit = pg.execute(
        """INSERT INTO "AuditLog" ("action", "details") VALUES ('test', '{}') RETURNING id"""
    ).fetchone()[0]
    assert next_audit == max(max_id, audit_seq) + 1
