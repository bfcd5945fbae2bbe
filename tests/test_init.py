"""`etl init`: a spec written from the database itself applies with no hand edits.

Every test here writes a spec with `etl init` (through the command line where the report or the
exit code matters) and, where it says so, applies it as written and compares what arrived.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import shutil
import sqlite3
import uuid
from contextlib import closing
from decimal import Decimal
from pathlib import Path

import duckdb
import psycopg
import pytest
import yaml
from make_chat_app import build_chat_app  # samples/, on sys.path via conftest
from typer.testing import CliRunner

from etl.cli import app
from etl.init.infer import choose_column, comment_text, init_spec, yaml_str
from etl.init.prisma import is_autoincrement, postgres_type, read_prisma_file
from etl.model import Column
from etl.pgtypes import parse_pg_type
from etl.pipeline import apply, check, plan_for
from etl.sqlite.convert import ISO_DATETIME_RE
from etl.sqlite.profile import (
    IS_VALUE,
    ColumnProfile,
    _code_sql,
    _register,
    datetime_text_code,
    number_text_code,
    numeric_misfit,
)

ROOT = Path(__file__).resolve().parent.parent
PRISMA_SCHEMA = ROOT / "samples" / "chat_app.prisma"
EPOCH = dt.datetime(1970, 1, 1)

runner = CliRunner()


def run(*args: str | Path):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def stable(text: str, tmp_path: Path | None = None) -> str:
    """The spec or report without what depends on the machine: the time profiling took, the
    test's directory."""
    if tmp_path is not None:
        text = text.replace(str(tmp_path), "<tmp>")
    return re.sub(r"profiled in [0-9.]+ s", "profiled in <t> s", text)


def apply_spec(spec: Path, url: str):
    """`etl apply` as written (no edits), with ${DATABASE_URL} pointing at the test's database."""
    checked = check(spec, {"DATABASE_URL": url})
    result = apply(checked, plan_for(checked))
    return checked, result


def spec_of(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


# --- the chat-app sample ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chat_app(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    path = tmp_path_factory.mktemp("chat") / "chat_app.db"
    counts = build_chat_app(path, users=20, messages=400, seed=7)
    return path, counts


def julian_to_datetime(days: float) -> dt.datetime:
    return EPOCH + dt.timedelta(milliseconds=round((days - 2440587.5) * 86_400_000))


def expected_value(raw, pg_type: str, converter: str):
    """What PostgreSQL must hold for the SQLite value `raw` in a column of `pg_type`."""
    if raw is None:
        return None
    kind = parse_pg_type(pg_type).kind
    if kind in ("timestamp", "timestamptz"):
        if isinstance(raw, int):
            unit = {"epoch_seconds": 1000, "epoch_milliseconds": 1, "auto": 1}[converter]
            value = EPOCH + dt.timedelta(milliseconds=raw * unit)
        elif isinstance(raw, float):
            value = julian_to_datetime(raw)
        else:
            value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
            if value.tzinfo is not None:
                value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.replace(tzinfo=dt.UTC) if kind == "timestamptz" else value
    if kind == "boolean":
        return {0: False, 1: True, "true": True, "false": False}[raw]
    if kind == "numeric":
        return Decimal(repr(raw)) if isinstance(raw, float) else Decimal(raw)
    if kind == "json":
        return json.loads(raw)
    if kind == "float":
        return float(raw)
    if kind == "bytea":
        return raw.encode() if isinstance(raw, str) else raw
    if kind == "uuid":
        return uuid.UUID(raw)
    return raw


def compare_every_value(checked, pg: psycopg.Connection) -> int:
    """Every value of every table, by primary key: SQLite's against PostgreSQL's."""
    src = sqlite3.connect(checked.spec.source)
    compared = 0
    for table in checked.mapping.tables:
        names = [c.name for c in table.columns]
        sources = [c.conversion.source_sql for c in table.columns]
        key = [names.index(k) for k in table.primary_key]
        src_rows = src.execute(f'SELECT {", ".join(sources)} FROM "{table.source}"').fetchall()
        pg_rows = pg.execute(
            psycopg.sql.SQL("SELECT {} FROM {}").format(
                psycopg.sql.SQL(", ").join(map(psycopg.sql.Identifier, names)),
                psycopg.sql.Identifier("public", table.name),
            )
        ).fetchall()
        assert len(pg_rows) == len(src_rows), table.name
        # A uuid key is compared by its text, which init made uuid only where PostgreSQL prints the same.
        by_key = {
            tuple(str(row[i]) if isinstance(row[i], uuid.UUID) else row[i] for i in key): row
            for row in pg_rows
        }
        for row in src_rows:
            target = by_key[tuple(row[i] for i in key)]
            for column, raw, got in zip(table.columns, row, target, strict=True):
                want = expected_value(raw, column.pg_type.sql(), column.conversion.converter)
                if isinstance(got, memoryview):
                    got = bytes(got)
                assert got == want, (
                    f"{table.name}.{column.name}: SQLite {raw!r} -> {got!r}, expected {want!r}"
                )
                compared += 1
    return compared


def test_init_writes_the_chat_app_spec_and_it_migrates_every_value(chat_app, pg_url, pg, snapshot):
    db, counts = chat_app
    tmp_path = db.parent
    spec = tmp_path / "chat_app.yaml"
    result = run("init", db, "-o", spec)
    assert result.exit_code == 0, result.stderr
    text = spec.read_text(encoding="utf-8")
    assert text.startswith("# yaml-language-server: $schema=")
    assert stable(text) == snapshot(name="spec")
    assert stable(result.stdout, tmp_path) == snapshot(name="report")
    # Relative paths: the spec works wherever the two files move together.
    assert spec_of(spec)["source"]["sqlite"] == "chat_app.db"
    # One block per table, in load order: every table but sqlite_sequence, parents first.
    data = spec_of(spec)
    assert list(data["tables"]) == data["load_order"] == [t for t in data["load_order"] if t in counts]
    assert set(data["load_order"]) == set(counts) and "sqlite_sequence" not in data["load_order"]
    assert data["load_order"].index("User") < data["load_order"].index("Message")

    checked, applied = apply_spec(spec, pg_url)
    assert applied.rows == {t.name: counts[t.source] for t in checked.mapping.tables}
    assert compare_every_value(checked, pg) > 5_000
    # Keys, indexes, foreign keys, identity and defaults came from SQLite, unedited.
    constraints = dict(
        pg.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace = 'public'::regnamespace"
        ).fetchall()
    )
    assert constraints["ConversationParticipant_pkey"] == 'PRIMARY KEY ("conversationId", "userId")'
    assert constraints["Message_replyToId_fkey"].endswith("ON UPDATE CASCADE ON DELETE SET NULL")
    indexes = {r[0] for r in pg.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}
    assert {"User_email_key", "Message_conversationId_sequence_key", "Session_expiresAt_idx"} <= indexes
    seq = sqlite3.connect(db).execute("SELECT seq FROM sqlite_sequence WHERE name = 'AuditLog'").fetchone()[0]
    largest = pg.execute('SELECT max(id) FROM "AuditLog"').fetchone()[0]
    next_id = pg.execute("""INSERT INTO "AuditLog" (action) VALUES ('x') RETURNING id""").fetchone()[0]
    assert next_id == max(seq, largest) + 1
    default = pg.execute(
        "SELECT column_default FROM information_schema.columns WHERE table_name = 'User' AND column_name = 'createdAt'"
    ).fetchone()
    assert default == ("CURRENT_TIMESTAMP",)


def test_prisma_types_match_what_the_prisma_schema_implies(chat_app, pg_url, pg, snapshot):
    """After `etl init --prisma` and apply, the catalog is what Prisma's postgresql provider
    would have created from samples/chat_app.prisma: every column by its mapped name with exactly
    the type, nullability, primary keys and unique indexes of its model."""
    db, _counts = chat_app
    spec = db.parent / "prisma.yaml"
    # The app's project beside the spec: apply writes Prisma's baseline into its migrations folder.
    project = db.parent / "prisma"
    project.mkdir()
    shutil.copy(PRISMA_SCHEMA, project / "schema.prisma")
    result = run("init", db, "-o", spec, "--prisma", project / "schema.prisma")
    assert result.exit_code == 0, result.stderr
    assert stable(spec.read_text(encoding="utf-8")) == snapshot(name="spec")
    checked, _ = apply_spec(spec, pg_url)
    assert compare_every_value(checked, pg) > 5_000

    columns = {
        (table, column): (type_, not_null, identity)
        for table, column, type_, not_null, identity in pg.execute(
            "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, "
            "CASE WHEN a.attidentity <> '' THEN 'identity' "
            "WHEN pg_get_serial_sequence(format('%I', c.relname), a.attname) IS NOT NULL THEN 'serial' END "
            "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' AND a.attnum > 0 "
            "AND NOT a.attisdropped"
        )
    }
    indexes: dict[str, list[tuple[bool, bool, tuple[str, ...]]]] = {}
    for table, primary, unique, names in pg.execute(
        "SELECT t.relname, i.indisprimary, i.indisunique, "
        "array(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY AS k(n, o) "
        "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.n ORDER BY k.o) "
        "FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid "
        "WHERE t.relnamespace = 'public'::regnamespace"
    ):
        indexes.setdefault(table, []).append((primary, unique, tuple(names)))

    schema = read_prisma_file(PRISMA_SCHEMA)
    checked_fields = 0
    for model in schema.models:
        for field in model.columns:
            key = (model.table, field.column)
            assert key in columns, f"{model.name}.{field.name}: no column {key}"
            type_, not_null, identity = columns[key]
            expected = parse_pg_type(postgres_type(field, schema)).sql()
            assert type_ == expected, f"{model.name}.{field.name}: {type_} != {expected}"
            assert not_null == (not field.optional), f"{model.name}.{field.name}: nullability"
            # Prisma numbers autoincrement ids with a sequence of their own (SERIAL), not an identity.
            assert identity == ("serial" if is_autoincrement(field) else None), f"{model.name}.{field.name}"
            checked_fields += 1
        column_of = {f.name: f.column for f in model.columns}
        primary = [names for is_pk, _u, names in indexes[model.table] if is_pk]
        assert primary == [tuple(column_of[f] for f in model.id_fields)], model.name
        unique = sorted(names for is_pk, is_unique, names in indexes[model.table] if is_unique and not is_pk)
        assert unique == sorted(tuple(column_of[f] for f in u.fields) for u in model.uniques), model.name
    assert checked_fields == sum(len(m.columns) for m in schema.models) > 150


def test_prisma_findings_are_marked_where_they_apply(tmp_sqlite, tmp_path, pg_url, pg):
    db = tmp_sqlite(
        """
        CREATE TABLE "User" (id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, name TEXT, code TEXT,
                             role TEXT NOT NULL DEFAULT 'USER', extra TEXT, "bornAt" DATETIME);
        CREATE TABLE "Other" (id INTEGER PRIMARY KEY);
        INSERT INTO "User" (name, code, extra, "bornAt") VALUES ('Ada', 'abcdef', 'x', 86400000);
        """
    )
    schema = tmp_path / "schema.prisma"
    schema.write_text(
        """
        datasource db {
          provider = "postgresql"
          url      = env("DATABASE_URL")
        }
        enum Role {
          USER
          ADMIN
        }
        model User {
          id     Int      @id @default(autoincrement())
          name   String?  @db.VarChar(10)
          code   String?  @db.VarChar(3)
          role   Role     @default(USER)
          bornAt DateTime? @db.Date
        }
        """
    )
    spec = tmp_path / "spec.yaml"
    result = run("init", db, "-o", spec, "--prisma", schema)
    assert result.exit_code == 0, result.stderr
    assert "Other: has no model in the Prisma schema; types chosen from the data" in result.stdout
    assert "User.extra: has no field in Prisma model User" in result.stdout
    assert "role" not in result.stdout  # the enum is created: nothing to report
    assert "User.code: holds text longer than character varying(3) allows (1 value, e.g. 'abcdef')" in (
        result.stdout
    )
    lines = spec.read_text(encoding="utf-8").splitlines()
    assert "    # !! has no model in the Prisma schema; types chosen from the data" in lines
    columns = spec_of(spec)["tables"]["User"]["columns"]
    assert columns["name"] == {"type": "varchar(10)"}
    assert columns["code"] == {"type": "text"}
    # A Prisma DateTime is epoch milliseconds, however small: 86400000 is 1970-01-02.
    assert columns["bornAt"] == {"type": "date", "converter": "epoch_milliseconds"}
    assert columns["id"] == {"type": "integer", "serial": True}  # Prisma's SERIAL
    assert columns["role"] == {"type": "Role"}
    assert spec_of(spec)["enums"] == {"Role": ["USER", "ADMIN"]}
    for name in ("extra", "code"):
        assert "# !! " in next(line for line in lines if line.strip().startswith(f"{name}:"))
    apply_spec(spec, pg_url)
    assert pg.execute('SELECT id, "bornAt", role::text FROM "User"').fetchone() == (
        1,
        dt.date(1970, 1, 2),
        "USER",
    )
    # The serial's sequence continues after the loaded ids.
    assert pg.execute("INSERT INTO \"User\" (role) VALUES ('ADMIN') RETURNING id").fetchone() == (2,)


# --- a database with every quirk ----------------------------------------------------------------

QUIRKS = """
CREATE TABLE "Parent" (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL);
CREATE TABLE quirks (
    id INTEGER PRIMARY KEY,
    parent_id INTEGER REFERENCES "Parent"(id),
    iso_naive DATETIME,
    iso_offsets DATETIME,
    epoch_s DATETIME,
    epoch_ms DATETIME,
    julian DATETIME,
    mixed DATETIME,
    flag BOOLEAN,
    big INTEGER,
    price NUMERIC(10,2),
    exact NUMERIC,
    ratio REAL,
    qty INTEGER,
    label TEXT,
    anything,
    note TEXT,
    small SMALLINT,
    cents NUMERIC(5,2)
);
INSERT INTO "Parent" (name) VALUES ('p1'), ('p2');
"""
QUIRK_ROWS = [
    # id, parent_id, iso_naive, iso_offsets, epoch_s, epoch_ms, julian, mixed, flag, big, price,
    # exact, ratio, qty, label, anything, note, small, cents
    (1, 1, "2024-01-02 03:04:05", "2024-01-02T03:04:05+02:00", 1700000000, 1700000000123, 2460000.25,
     "2024-05-06 07:08:09", 0, 2**53 + 1, "19.99", 12345678901234567, math.inf, 5,
     "plain", 42, "héllo 👋 مرحبا", 1, "1.5"),
    (2, 2, "2024-01-02T03:04:05.123456", "2024-01-02 03:04:05Z", 1600000000, 1600000000456, 2451545.5,
     1700000000123, 1, -(2**63), 20, 0.5, -math.inf, "twelve", b"\x00\x01blob", "text", "日本語", 2,
     "2.25"),
    (3, 99, None, "2024-03-01 00:00:00", None, None, None, 2460000.5, "true", 2**63 - 1, "0.10", 7, 1.5,
     7, "x", 3.25, "", 100000, "123456.5"),
    (4, None, "2024-12-31", None, 0, 1500000000000, 2440587.5, None, "false", 12, None, None, -0.0, None,
     None, None, "Zoe\u0308 \u202eRTL\u202c \U0001f3f3\ufe0f\u200d\U0001f308", None, None),
]  # fmt: skip


@pytest.fixture
def quirks(tmp_sqlite) -> Path:
    path = tmp_sqlite(QUIRKS, name="quirks.db")
    with closing(sqlite3.connect(path)) as con:
        con.executemany(f"INSERT INTO quirks VALUES ({', '.join('?' * 19)})", QUIRK_ROWS)
        con.commit()
    return path


def test_every_quirk_is_named_and_the_spec_applies_with_no_edits(quirks, tmp_path, pg_url, pg, snapshot):
    spec = tmp_path / "quirks.yaml"
    result = run("init", quirks, "-o", spec, "--target", pg_url)
    assert result.exit_code == 0, result.stderr
    report = stable(result.stdout, tmp_path).replace(pg_url, "<url>")
    assert report == snapshot(name="report")
    text = spec.read_text(encoding="utf-8")
    assert stable(text).replace(pg_url, "<url>") == snapshot(name="spec")
    assert "sqlite_sequence" not in text  # SQLite's own, for Parent's AUTOINCREMENT
    # Each surprise is named in the report and marked !! at its column in the spec.
    for column, words in {
        "iso_offsets": "without an offset is read as UTC",
        "mixed": "mixed conventions",
        "qty": "text that is not an integer",
        "label": "blobs beside text",
        "anything": "chose text",
        "small": "do not fit smallint",
        "cents": "more digits than numeric(5,2)",
    }.items():
        assert f"quirks.{column}: " in result.stdout and words in result.stdout, column
        line = next(line for line in text.splitlines() if line.strip().startswith(f"{column}:"))
        assert "# !! " in line and words in line, line
    assert "foreign key (parent_id) -> Parent: 1 row with no matching Parent row (e.g. id=3); left out" in (
        result.stdout
    )

    checked, applied = apply_spec(spec, pg_url)
    assert applied.rows == {"Parent": 2, "quirks": 4}
    rows = {r[0]: r for r in pg.execute("SELECT * FROM quirks ORDER BY id")}
    utc = dt.UTC
    assert rows[1][2] == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=utc)
    assert rows[2][2] == dt.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=utc)
    assert rows[1][3] == dt.datetime(2024, 1, 2, 1, 4, 5, tzinfo=utc)  # +02:00
    assert rows[3][3] == dt.datetime(2024, 3, 1, tzinfo=utc)  # no offset: UTC
    assert rows[1][4] == dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=utc)
    assert rows[4][4] == dt.datetime(1970, 1, 1, tzinfo=utc)
    assert rows[1][5] == dt.datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=utc)
    assert rows[4][5] == dt.datetime(2017, 7, 14, 2, 40, tzinfo=utc)
    assert rows[1][6] == dt.datetime(2023, 2, 24, 18, tzinfo=utc)
    assert rows[2][6] == dt.datetime(2000, 1, 2, tzinfo=utc)
    # One column, three conventions, each read as what it is.
    assert [rows[i][7] for i in (1, 2, 3)] == [
        dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=utc),
        dt.datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=utc),
        dt.datetime(2023, 2, 25, tzinfo=utc),
    ]
    assert [rows[i][8] for i in (1, 2, 3, 4)] == [False, True, True, False]
    assert [rows[i][9] for i in (1, 2, 3)] == [2**53 + 1, -(2**63), 2**63 - 1]
    assert [rows[i][10] for i in (1, 2, 3)] == [Decimal("19.99"), Decimal("20.00"), Decimal("0.10")]
    assert [rows[i][11] for i in (1, 2, 3)] == [Decimal(12345678901234567), Decimal("0.5"), Decimal(7)]
    assert [rows[i][12] for i in (1, 2, 3)] == [math.inf, -math.inf, 1.5]
    assert rows[4][12] == 0.0  # SQLite itself keeps -0.0 in a REAL column as 0
    assert [rows[i][13] for i in (1, 2, 3)] == ["5", "twelve", "7"]
    assert bytes(rows[2][14]) == b"\x00\x01blob" and bytes(rows[1][14]) == b"plain"
    assert [rows[i][15] for i in (1, 2, 3)] == ["42", "text", "3.25"]
    assert [rows[i][16] for i in (1, 2, 3, 4)] == [r[16] for r in QUIRK_ROWS]
    assert rows[3][17] == 100000
    assert [rows[i][18] for i in (1, 2, 3)] == [Decimal("1.5"), Decimal("2.25"), Decimal("123456.5")]
    assert rows[3][1] == 99  # the orphan arrived; its foreign key was left out
    fks = pg.execute("SELECT count(*) FROM pg_constraint WHERE contype = 'f'").fetchone()[0]
    assert fks == 0


def test_mixed_datetime_integers_and_reals_that_no_converter_reads_are_kept_as_text(tmp_sqlite, tmp_path):
    """Seconds and milliseconds beside julian days: reading the reals as milliseconds (or the
    integers as julian days) would silently move instants, so nothing is guessed."""
    db = tmp_sqlite(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, at DATETIME);"
        "INSERT INTO t (at) VALUES (1700000000), (1700000000123), (2460000.25);"
    )
    result = init_spec(db, tmp_path / "spec.yaml")
    line = next(line for line in result.text.splitlines() if line.strip().startswith("at:"))
    assert line.startswith("      at: {type: text}  # !! DATETIME; 1 epoch seconds, 1 epoch milliseconds")
    assert "no one converter reads both" in line


def test_whole_julian_days_stored_as_integers_are_read_as_julian_days(tmp_sqlite, tmp_path, pg_url, pg):
    db = tmp_sqlite(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, at DATETIME);"
        "INSERT INTO t (at) VALUES (julianday('2000-01-01 12:00:00')), (julianday('2024-02-03 04:05:06'));"
    )
    spec = tmp_path / "spec.yaml"
    init_spec(db, spec)
    # timestamptz, as DATETIME gives it: only the converter the data chose is written.
    assert spec_of(spec)["tables"]["t"]["columns"]["at"] == {"converter": "julian_day"}
    apply_spec(spec, pg_url)
    assert [r[0] for r in pg.execute("SELECT at FROM t ORDER BY id")] == [
        dt.datetime(2000, 1, 1, 12, tzinfo=dt.UTC),
        dt.datetime(2024, 2, 3, 4, 5, 6, tzinfo=dt.UTC),
    ]


def test_what_postgresql_would_refuse_is_written_out_and_applies(tmp_sqlite, tmp_path, pg_url, pg, snapshot):
    """Defaults, indexes and unique constraints without a PostgreSQL equivalent, a primary key
    holding NULL, foreign keys to a missing table, to columns without a unique key, between
    different types: each left out with a !! line, and the spec applies as written."""
    db = tmp_sqlite(
        """
        CREATE TABLE account (
            id INTEGER PRIMARY KEY,
            email TEXT COLLATE NOCASE UNIQUE,
            code TEXT,
            handle TEXT UNIQUE,
            seed INTEGER DEFAULT (random()),
            stamp TEXT DEFAULT (strftime('%s', 'now')),
            status TEXT DEFAULT 'new'
        );
        CREATE INDEX account_code ON account(code);
        CREATE INDEX account_lower ON account(lower(code));
        CREATE INDEX account_like ON account(code) WHERE code LIKE 'a%';
        CREATE INDEX account_partial ON account(handle) WHERE status = 'new';
        CREATE TABLE pair (a TEXT, b INTEGER, PRIMARY KEY (a, b));
        CREATE TABLE child (
            id INTEGER PRIMARY KEY,
            account_code TEXT REFERENCES account(code),
            gone_id INTEGER REFERENCES gone(id),
            handle TEXT REFERENCES account(handle),
            pair_a TEXT, pair_b INTEGER,
            ref INTEGER REFERENCES account(id),
            FOREIGN KEY (pair_a, pair_b) REFERENCES pair(a, b)
        );
        INSERT INTO account (id, email, code, handle) VALUES (1, 'A@x', 'a1', 'h1'), (2, 'b@x', 'b2', 'h2');
        INSERT INTO pair VALUES ('x', 1), (NULL, 2);
        INSERT INTO child VALUES (1, 'a1', 5, 'h1', 'x', 1, 'one');
        """
    )
    spec = tmp_path / "spec.yaml"
    result = run("init", db, "-o", spec)
    assert result.exit_code == 0, result.stderr
    assert stable(spec.read_text(encoding="utf-8")) == snapshot(name="spec")
    assert stable(result.stdout, tmp_path) == snapshot(name="report")
    apply_spec(spec, pg_url)
    assert pg.execute("SELECT count(*) FROM pair WHERE a IS NULL").fetchone() == (1,)
    assert "pair_a_b_key" in {r[0] for r in pg.execute("SELECT conname FROM pg_constraint")}
    constraints = {r[0] for r in pg.execute("SELECT conname FROM pg_constraint")}
    assert "account_handle_key" in constraints and "child_handle_fkey" in constraints
    assert "child_pair_a_pair_b_fkey" in constraints
    assert "child_account_code_fkey" not in constraints and "child_ref_fkey" not in constraints
    indexes = {r[0] for r in pg.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}
    assert {"account_code", "account_lower", "account_partial"} <= indexes and "account_like" not in indexes
    assert pg.execute("SELECT status FROM account WHERE id = 1").fetchone() == ("new",)


# --- odd inputs --------------------------------------------------------------------------------


@pytest.mark.parametrize("script", ["", "CREATE VIEW v AS SELECT 1"], ids=["no tables", "only a view"])
def test_a_database_without_tables_gets_no_spec_but_a_reason(tmp_sqlite, tmp_path, script):
    """An empty spec would plan to drop every table etl loaded before: a wrong path must not
    read as an empty database."""
    db = tmp_sqlite(script)
    spec = tmp_path / "spec.yaml"

    result = runner.invoke(app, ["init", str(db), "-o", str(spec)])

    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert f"'{db}' holds no tables" in result.stderr and "check the path" in result.stderr
    assert not spec.exists()


def test_a_zero_byte_file_gets_no_spec_but_a_reason(tmp_path):
    db = tmp_path / "app.db"
    db.touch()

    result = runner.invoke(app, ["init", str(db), "-o", str(tmp_path / "spec.yaml")])

    assert result.exit_code == 1
    assert f"'{db}' holds no tables: check the path" in result.stderr
    assert not (tmp_path / "spec.yaml").exists()


def test_odd_tables_views_and_names_arrive_as_they_are(tmp_sqlite, tmp_path, pg_url, pg):
    hostile = 'x"; DROP TABLE t; --'
    line_break = "line\nbreak \u2028 del\x7f nel\x85"
    db = tmp_sqlite(
        [
            'CREATE TABLE "no key" ("first name" TEXT, "select" INTEGER, "it\'s" TEXT)',
            "CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID",
            f'CREATE TABLE "{hostile.replace(chr(34), chr(34) * 2)}" ("order" INTEGER PRIMARY KEY, '
            f'"{line_break}" TEXT, "group" TEXT REFERENCES kv(k))',
            f'CREATE TABLE "{"t" * 70}" ("{"c" * 70}" INTEGER)',
            'CREATE VIEW "named view" AS SELECT * FROM kv',
            "CREATE VIEW v2 AS SELECT 1",
            ('INSERT INTO "no key" VALUES (?, ?, ?)', ("a b", 1, "it's")),
            ('INSERT INTO "no key" VALUES (?, ?, ?)', ("a b", 1, "it's")),
            ("INSERT INTO kv VALUES (?, ?)", ("k\n1", b"\x00")),
            "CREATE INDEX kv_v ON kv(v)",
            "ANALYZE",  # creates sqlite_stat1, SQLite's own
            (
                f'INSERT INTO "{hostile.replace(chr(34), chr(34) * 2)}" VALUES (?, ?, ?)',
                (1, "v\nversion: 2", "k\n1"),
            ),
        ]
    )
    spec = tmp_path / "spec.yaml"
    result = run("init", db, "-o", spec)
    assert result.exit_code == 0, result.stderr
    assert "no key: has no primary key; rows are loaded as they are" in result.stdout
    text = spec.read_text(encoding="utf-8")
    assert spec_of(spec)["views"] == {
        "named view": {"sql": 'SELECT * FROM "kv"'},
        "v2": {"sql": 'SELECT 1 AS "1"'},
    }
    assert spec_of(spec)["tables"]["kv"] == {"columns": {"k": {}, "v": {}}}  # text and bytea, as declared
    assert "# 1 row; primary key (k); WITHOUT ROWID; 1 index" in text
    assert "sqlite_stat" not in text and "sqlite_" not in "".join(spec_of(spec)["load_order"])
    assert line_break in spec_of(spec)["tables"][hostile]["columns"]
    apply_spec(spec, pg_url)
    tables = {r[0] for r in pg.execute("SELECT relname FROM pg_class WHERE relkind IN ('r', 'v')")}
    assert {"no key", "kv", hostile, "named view", "v2"} <= tables
    assert pg.execute('SELECT k, v FROM "named view"').fetchall() == [("k\n1", b"\x00")]
    assert pg.execute('SELECT count(*) FROM "no key"').fetchone() == (2,)
    assert pg.execute(
        psycopg.sql.SQL("SELECT {} FROM {}").format(
            psycopg.sql.Identifier(line_break), psycopg.sql.Identifier(hostile)
        )
    ).fetchone() == ("v\nversion: 2",)
    assert pg.execute("SELECT v FROM kv").fetchone() == (b"\x00",)
    # Names longer than PostgreSQL's 63 bytes are shortened, distinctly, and reported.
    long_table = next(t for t in tables if t.startswith("ttt"))
    assert len(long_table) == 63 and f"{'t' * 70}: '{'t' * 70}' is longer than PostgreSQL's 63 bytes" in (
        result.stdout
    )


def test_naming_snake_renames_every_table_and_column(tmp_sqlite, tmp_path, pg_url, pg):
    db = tmp_sqlite(
        """
        CREATE TABLE "UserAccount" ("userId" INTEGER PRIMARY KEY, "createdAt" DATETIME, "HTTPStatus" INTEGER);
        CREATE TABLE "BlogPost" (id INTEGER PRIMARY KEY, "authorId" INTEGER REFERENCES "UserAccount"("userId"),
                                 "author_id" INTEGER);
        CREATE INDEX "BlogPost_authorId_idx" ON "BlogPost"("authorId");
        INSERT INTO "UserAccount" VALUES (1, '2024-01-01 00:00:00', 200);
        INSERT INTO "BlogPost" VALUES (1, 1, 7);
        """
    )
    spec = tmp_path / "spec.yaml"
    result = run("init", db, "-o", spec, "--naming", "snake")
    assert result.exit_code == 0, result.stderr
    data = spec_of(spec)
    assert data["naming"] == "snake"
    assert data["tables"]["UserAccount"]["name"] == "user_account"
    # authorId and author_id would both be author_id: the second one gets a name of its own.
    assert data["tables"]["BlogPost"]["columns"]["author_id"]["name"] == "author_id_2"
    assert "BlogPost.author_id: 'author_id' is taken under naming snake: named 'author_id_2'" in result.stdout
    apply_spec(spec, pg_url)
    columns = {
        (t, c)
        for t, c in pg.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'"
        )
    }
    assert columns == {
        ("user_account", "user_id"),
        ("user_account", "created_at"),
        ("user_account", "http_status"),
        ("blog_post", "id"),
        ("blog_post", "author_id"),
        ("blog_post", "author_id_2"),
    }
    assert pg.execute("SELECT author_id, author_id_2 FROM blog_post").fetchone() == (1, 7)
    assert pg.execute(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'blog_post' AND indexname LIKE '%idx'"
    ).fetchone() == ("blog_post_author_id_idx",)


def test_sample_profiles_part_of_each_table(tmp_sqlite, tmp_path, pg_url, pg):
    db = tmp_sqlite(
        "CREATE TABLE big (id INTEGER PRIMARY KEY, at DATETIME, n INTEGER);"
        "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 5000) "
        "INSERT INTO big SELECT i, 1700000000000 + i, i FROM s;"
        "CREATE TABLE tiny (k TEXT PRIMARY KEY, v INTEGER) WITHOUT ROWID;"
        "INSERT INTO tiny VALUES ('a', 1), ('b', 2);"
        'CREATE TABLE shadow ("rowid" TEXT, n INTEGER);'  # a column that hides SQLite's rowid
        "INSERT INTO shadow SELECT 'r' || id, id FROM big WHERE id <= 1000;"
    )
    spec = tmp_path / "spec.yaml"
    result = run("init", db, "-o", spec, "--sample", "100")
    assert result.exit_code == 0, result.stderr
    # 100 of big's 5,000 rows, spread over the table; a WITHOUT ROWID table is read whole.
    assert "3 tables, 202 rows profiled" in result.stdout
    text = spec.read_text(encoding="utf-8")
    assert "(a sample of 100 rows per table profiled)" in text
    assert "# 100 rows; primary key (id)" in text
    assert spec_of(spec)["tables"]["big"]["columns"]["at"]["converter"] == "epoch_milliseconds"
    _checked, applied = apply_spec(spec, pg_url)
    assert applied.rows == {"big": 5000, "tiny": 2, "shadow": 1000}
    assert run("init", db, "-o", tmp_path / "x.yaml", "--sample", "0").exit_code == 2


def test_init_asks_nothing_and_refuses_to_overwrite_without_force(tmp_sqlite, tmp_path):
    db = tmp_sqlite("CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (1);")
    spec = tmp_path / "out" / "spec.yaml"
    assert runner.invoke(app, ["init", str(db), "-o", str(spec)], input="").exit_code == 0
    spec.write_text("# mine\n")
    result = run("init", db, "-o", spec)
    assert result.exit_code == 1
    assert result.stderr == f"Error: '{spec}' already exists; pass --force to overwrite it\n"
    assert spec.read_text() == "# mine\n"
    result = run("init", db, "-o", spec, "--force")
    assert result.exit_code == 0, result.stderr
    assert spec.read_text().startswith("# yaml-language-server: $schema=")
    # No temporary file left; the schema the modeline names is beside the spec.
    assert sorted(p.name for p in spec.parent.iterdir()) == ["etl-spec.schema.json", "spec.yaml"]


def test_a_target_url_is_written_so_that_it_reads_back_the_same(tmp_sqlite, tmp_path):
    db = tmp_sqlite("CREATE TABLE t (id INTEGER PRIMARY KEY);")
    spec = tmp_path / "spec.yaml"
    url = "postgresql://me@db.example.com/pa$$w${o}rd"
    init_spec(db, spec, target_url=url)
    assert check(spec, {}).spec.target_url == url
    init_spec(db, spec, target_url="${APP_URL:-postgresql://localhost/app}", force=True)
    assert check(spec, {}).spec.target_url == "postgresql://localhost/app"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://me:s3cr3t-pw@db.example.com/app", "postgresql://me:***@db.example.com/app"),
        (
            "host=db.example.com dbname=app password='s3cr3t-pw x'",
            "host=db.example.com dbname=app password=***",
        ),
    ],
)
def test_a_target_url_with_a_password_is_read_from_the_environment_not_written(
    tmp_sqlite, tmp_path, url, shown
):
    db = tmp_sqlite("CREATE TABLE t (id INTEGER PRIMARY KEY);")
    spec = tmp_path / "spec.yaml"
    result = run("init", db, "-o", spec, "--target", url)
    assert result.exit_code == 0, result.stderr
    assert "s3cr3t-pw" not in spec.read_text() + result.stdout + result.stderr
    assert "\ntarget:\n  url: ${DATABASE_URL}\n" in spec.read_text()
    assert (
        "The URL given holds a password, which the spec does not keep: target.url reads ${DATABASE_URL}. "
        f"Set it before etl validate, with the password in place of ***: export DATABASE_URL='{shown}'\n"
    ) in result.stdout
    assert check(spec, {"DATABASE_URL": url}).spec.target_url == url


def test_a_malformed_target_url_is_refused_without_showing_it(tmp_sqlite, tmp_path):
    db = tmp_sqlite("CREATE TABLE t (id INTEGER PRIMARY KEY);")
    spec = tmp_path / "spec.yaml"
    result = runner.invoke(
        app, ["init", str(db), "-o", str(spec), "--target", "postgresql:/me:s3cr3t-pw@db/app"]
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: invalid PostgreSQL URL 'postgresql:***'")
    assert "s3cr3t-pw" not in result.stdout + result.stderr
    assert not spec.exists()


def test_init_never_writes_through_a_symbolic_link(tmp_sqlite, tmp_path):
    db = tmp_sqlite("CREATE TABLE t (id INTEGER PRIMARY KEY);")
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("not etl's\n")
    spec = tmp_path / "spec.yaml"
    spec.symlink_to(elsewhere)
    for force in ([], ["--force"]):
        result = runner.invoke(app, ["init", str(db), "-o", str(spec), *force])
        assert result.exit_code == 1
        assert result.stderr == (
            f"Error: cannot write '{spec}': it is a symbolic link, which etl never writes through (remove it)\n"
        )
    assert spec.is_symlink() and elsewhere.read_text() == "not etl's\n"
    # a link planted where a temporary file could be is not written through either
    spec.unlink()
    spec.with_name("spec.yaml.tmp").symlink_to(elsewhere)
    result = runner.invoke(app, ["init", str(db), "-o", str(spec)])
    assert result.exit_code == 0, result.stderr
    assert elsewhere.read_text() == "not etl's\n"
    assert not spec.is_symlink() and spec.read_text().startswith("# yaml-language-server")


# --- bad input: one clear error each ------------------------------------------------------------


def assert_one_error(result, *fragments: str) -> None:
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


def test_a_file_that_is_not_sqlite(tmp_path):
    bad = tmp_path / "notes.db"
    bad.write_text("just some text, not a database\n" * 100)
    assert_one_error(run("init", bad, "-o", tmp_path / "s.yaml"), f"'{bad}' is not a SQLite database")
    assert not (tmp_path / "s.yaml").exists()


def test_a_missing_file(tmp_path):
    missing = tmp_path / "nope.db"
    assert_one_error(
        run("init", missing, "-o", tmp_path / "s.yaml"), f"SQLite file '{missing}' does not exist"
    )


def test_a_locked_file(tmp_sqlite, tmp_path):
    db = tmp_sqlite("CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (1);")
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        holder.execute("PRAGMA locking_mode=EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        result = run("init", db, "-o", tmp_path / "s.yaml")
    finally:
        holder.close()
    assert_one_error(result, f"SQLite file '{db}' is locked by another process")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no such Prisma schema file"),
        ("directory", "is a directory, not a Prisma schema file"),
        (b"model User {\n  id Int @id\n  name Str\xe9ng\n}\n", "not UTF-8 text (byte 0xe9)"),
        ("model User {\n  id Int @id\n  name Strin\n}\n", "schema.prisma:3:8:"),
    ],
    ids=["missing", "directory", "not-utf8", "invalid"],
)
def test_an_unreadable_or_invalid_prisma_schema(tmp_sqlite, tmp_path, content, expected):
    db = tmp_sqlite("CREATE TABLE User (id INTEGER PRIMARY KEY, name TEXT);")
    schema = tmp_path / "schema.prisma"
    if content == "directory":
        schema.mkdir()
    elif isinstance(content, bytes):
        schema.write_bytes(content)
    elif content is not None:
        schema.write_text(content)
    result = run("init", db, "-o", tmp_path / "s.yaml", "--prisma", schema)
    assert_one_error(result, expected)
    assert not (tmp_path / "s.yaml").exists()


def test_an_existing_output_without_force(tmp_sqlite, tmp_path):
    db = tmp_sqlite("CREATE TABLE t (id INTEGER PRIMARY KEY);")
    (tmp_path / "s.yaml").write_text("")
    assert_one_error(run("init", db, "-o", tmp_path / "s.yaml"), "already exists; pass --force")
    assert_one_error(run("init", db, "-o", tmp_path, "--force"), "is a directory")


# --- the pieces ---------------------------------------------------------------------------------


DATETIME_TEXTS = [
    "2024-01-02",
    "2024-1-5",
    "2024-01-02 03:04",
    "2024-01-02T03:04:05",
    "2024-01-02 3:04:05",
    "2024-01-02T03:04:05.123456",
    "2024-01-02T03:04:05.1234567",
    "2024-01-02T03:04:05Z",
    "2024-01-02T03:04:05z",
    "2024-01-02 03:04:05+02:00",
    "2024-01-02 03:04:05+0200",
    "2024-01-02 03:04:05-05",
    "2024-01-02 03:04:05 +02:00",
    "2024-01-02T03:04+02:00",
    "2024-01-02Z",
    "2024-02-29 00:00:00",
    "2023-02-29 00:00:00",
    "2024-13-01",
    "2024-01-02 24:00:00",
    "2024-01-02 23:60:00",
    "0000-01-01 00:00:00",
    "0001-01-01 00:00:00+01:00",
    "9999-12-31 23:59:59.999999",
    "12024-01-02",
    "2024-01-02 garbage",
    "now",
    "",
]


def test_datetime_text_is_what_convert_and_duckdb_both_read():
    """A text the profile calls a datetime converts at apply: the converter's pattern matches it
    and DuckDB's cast reads it, to the same instant. (The reverse need not hold: what the
    profile refuses is kept as text, which loses nothing.)"""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    accepted = []
    for text in DATETIME_TEXTS:
        code = datetime_text_code(text.encode())
        if code & IS_VALUE:
            accepted.append(text)
            matched, value = con.execute(
                f"SELECT regexp_full_match($1, {ISO_DATETIME_RE}), TRY_CAST($1 AS TIMESTAMPTZ)", [text]
            ).fetchone()
            assert matched and value is not None, text
            assert (
                dt.datetime(1, 1, 1, tzinfo=dt.UTC)
                <= value
                <= dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC)
            )
    assert accepted == [
        "2024-01-02",
        "2024-1-5",
        "2024-01-02 03:04",
        "2024-01-02T03:04:05",
        "2024-01-02 3:04:05",
        "2024-01-02T03:04:05.123456",
        "2024-01-02T03:04:05Z",
        "2024-01-02 03:04:05+02:00",
        "2024-01-02 03:04:05+0200",
        "2024-01-02 03:04:05-05",
        "2024-02-29 00:00:00",
        "9999-12-31 23:59:59.999999",
    ]


@pytest.mark.parametrize("declared", ["", "DATETIME", "TIMESTAMP", "TEXT"])
def test_the_fast_sqlite_path_agrees_with_the_python_function(declared):
    """In a column of any affinity: compared with a DATETIME column (NUMERIC affinity), a text
    literal such as '0001' would become a number, which every text sorts after."""
    con = sqlite3.connect(":memory:")
    _register(con)
    con.execute(f"CREATE TABLE t (c {declared})")
    values = [
        *DATETIME_TEXTS,
        "2024-01-02 00:00:00",
        "2024-01-02T10:00:00Z",
        "2024-02-30 00:00:00",
        5,
        2.5,
        None,
    ]
    con.executemany("INSERT INTO t VALUES (?)", [(v,) for v in values])
    rows = con.execute(f"SELECT {_code_sql('etl_datetime_code', 'c')}, c FROM t ORDER BY rowid").fetchall()
    got = [code for code, _ in rows]
    want = [datetime_text_code(v.encode()) if isinstance(v, str) else None for _, v in rows]
    assert got == want


def test_number_text_and_numeric_fit_follow_the_converter():
    assert [number_text_code(t) for t in (b"12", b"-1.5e3", b".5", b"1e999", b"1e5e5", b"0x1F", b" 5")] == [
        7, 5, 5, 1, 0, 0, 0,
    ]  # fmt: skip
    assert numeric_misfit(19.99, 10, 2) == 0
    assert numeric_misfit(0.1 + 0.2, 10, 2) == 1  # 0.30000000000000004
    assert numeric_misfit(19.99, 65, 30) == 0
    assert numeric_misfit(1e-40, 65, 30) == 1
    assert numeric_misfit(b"123.4500", 5, 2) == 0
    assert numeric_misfit(b"1234.5", 5, 2) == 1
    assert numeric_misfit(math.inf, 65, 30) == 1


def test_a_julian_real_is_never_read_as_milliseconds():
    """The silent loss this guards against: a julian-day real in a column of epoch milliseconds
    read by epoch_milliseconds lands in 1970."""
    p = ColumnProfile("at", integers=1, reals=1, epoch_milliseconds=1, julian_reals=1, int_min=1, int_max=1)
    choice = choose_column(Column("at", "DATETIME"), p)
    assert (choice.type.sql(), choice.converter) == ("timestamp with time zone", None)  # auto
    assert choice.surprise
    prisma = choose_column(Column("at", "DATETIME"), p, parse_pg_type("timestamp(3)"))
    assert prisma.converter is None


@pytest.mark.parametrize(
    "name",
    ["plain", "yes", "On", "a b", 'say "hi"', "back\\slash", "line\nbreak", "nel\x85", "ls\u2028ps\u2029",
     "del\x7f", "bom\ufeff", "tab\t", "emoji 🎉", "#hash", "- dash", "colon: x", "{brace}", "123", "~", ""],
)  # fmt: skip
def test_yaml_strings_read_back_exactly_and_comments_stay_on_one_line(name):
    assert yaml.load(f"key: {yaml_str(name)}\n", Loader=yaml.BaseLoader) == {"key": name}
    line = f"key: x  # {comment_text(name)}\n"
    assert yaml.load(line, Loader=yaml.BaseLoader) == {"key": "x"}
    assert len(line.splitlines()) == 1


def test_the_schema_modeline_works_wherever_the_spec_and_etl_live(tmp_path):
    import shutil

    import jsonschema

    db = tmp_path / "app.db"
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("CREATE TABLE note (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
    spec = tmp_path / "deploy" / "spec.yaml"
    result = run("init", db, "-o", spec)
    assert result.exit_code == 0, result.stderr
    modeline = spec.read_text(encoding="utf-8").splitlines()[0]
    ref = modeline.removeprefix("# yaml-language-server: $schema=")
    assert ref == "etl-spec.schema.json"  # beside the spec: nothing points into the installed package
    # Moved elsewhere together, the spec still finds its schema, and the schema accepts it.
    moved = tmp_path / "elsewhere" / "nested"
    shutil.copytree(spec.parent, moved)
    schema = json.loads((moved / spec.name).parent.joinpath(ref).read_text(encoding="utf-8"))
    jsonschema.validate(yaml.safe_load((moved / spec.name).read_text(encoding="utf-8")), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"version": 1, "no_such_key": True}, schema)


def test_etl_schema_write_puts_the_schema_where_a_modeline_finds_it(tmp_path):
    result = run("schema", "--write", tmp_path)
    assert result.exit_code == 0, result.stderr
    written = tmp_path / "etl-spec.schema.json"
    assert result.stdout.strip() == f"Wrote {written}"
    assert written.read_text(encoding="utf-8") == run("schema").stdout
