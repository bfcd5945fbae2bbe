"""The target schema: what a migrated SQLite database looks like in PostgreSQL.

Each test migrates a small SQLite database into a fresh PostgreSQL database and reads the result
back from the catalog (pg_attribute, pg_constraint, pg_get_indexdef, ...), so what is asserted is
what PostgreSQL really holds, not what etl meant to send.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import psycopg
import pytest
from conftest import Migration
from psycopg import sql

from etl.core.explain import step_text
from etl.core.plan import CreateTable, TargetState
from etl.core.planner import build_plan
from etl.errors import SpecError, TargetError
from etl.postgres import ddl as render
from etl.run.validate import validate

# --- reading the target back -----------------------------------------------------------------------


class Col(NamedTuple):
    type: str
    not_null: bool
    default: str | None
    identity: bool


def _oid(pg: psycopg.Connection, table: str, schema: str = "public") -> int:
    row = pg.execute(
        "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s",
        (schema, table),
    ).fetchone()
    assert row is not None, f"no relation {schema}.{table}"
    return row[0]


def columns(pg: psycopg.Connection, table: str, schema: str = "public") -> dict[str, Col]:
    rows = pg.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,"
        " pg_get_expr(d.adbin, d.adrelid), a.attidentity <> ''"
        " FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
        " WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        (_oid(pg, table, schema),),
    ).fetchall()
    return {name: Col(*rest) for name, *rest in rows}


def constraints(pg: psycopg.Connection, table: str, schema: str = "public") -> dict[str, str]:
    """Primary key, unique and foreign key constraints by name, as pg_get_constraintdef prints them."""
    rows = pg.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = %s AND contype IN ('p', 'u', 'f') ORDER BY conname",
        (_oid(pg, table, schema),),
    ).fetchall()
    return dict(rows)


def indexes(pg: psycopg.Connection, table: str, schema: str = "public") -> dict[str, str]:
    """Indexes that do not back a constraint, by name, as pg_get_indexdef prints them."""
    rows = pg.execute(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i"
        " JOIN pg_class c ON c.oid = i.indexrelid"
        " WHERE i.indrelid = %s AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)"
        " ORDER BY c.relname",
        (_oid(pg, table, schema),),
    ).fetchall()
    return dict(rows)


def tables(pg: psycopg.Connection, schema: str = "public") -> list[str]:
    rows = pg.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY c.relname",
        (schema,),
    ).fetchall()
    return [r[0] for r in rows]


def rows(pg: psycopg.Connection, table: str, order_by: str = "1") -> list[tuple[Any, ...]]:
    query = sql.SQL("SELECT * FROM {} ORDER BY " + order_by).format(sql.Identifier(table))
    return pg.execute(query).fetchall()


def insert_defaults(pg: psycopg.Connection, table: str, **values: Any) -> dict[str, Any]:
    """Insert one row giving only `values` (the rest from defaults); return the whole row."""
    target = sql.Identifier(table)
    if values:
        query = sql.SQL("INSERT INTO {} ({}) VALUES ({}) RETURNING *").format(
            target,
            sql.SQL(", ").join(sql.Identifier(k) for k in values),
            sql.SQL(", ").join(sql.Placeholder() for _ in values),
        )
    else:
        query = sql.SQL("INSERT INTO {} DEFAULT VALUES RETURNING *").format(target)
    cur = pg.execute(query, list(values.values()))
    row = cur.fetchone()
    assert row is not None and cur.description is not None
    return {d.name: v for d, v in zip(cur.description, row, strict=True)}


@pytest.fixture
def offline(tmp_path: Path, tmp_sqlite) -> Callable[[str], Migration]:
    """Factory: ``offline(sqlite_script) -> Migration`` whose target is never contacted, for tests
    of what validation reports (validation needs no database)."""
    return lambda script: Migration(tmp_path, "postgresql://etl@127.0.0.1:1/unused", tmp_sqlite(script))


def spec_error(m: Migration, body: str) -> str:
    """The full text of the SpecError that validating `body` raises, with the spec's path shortened."""
    with pytest.raises(SpecError) as caught:
        validate(m.write_spec(body), {})
    return str(caught.value).replace(str(m.spec_path), "spec.yaml")


def _now(pg: psycopg.Connection) -> datetime.datetime:
    value = pg.execute("SELECT now()").fetchone()
    assert value is not None
    return value[0]


# --- columns: NOT NULL and defaults -----------------------------------------------------------------


def test_not_null_is_kept_and_other_columns_stay_nullable(migration, pg):
    migration(
        'CREATE TABLE "User" (id TEXT PRIMARY KEY, email TEXT NOT NULL, "displayName" TEXT, age INTEGER NOT NULL);'
    ).apply()

    assert {name: c.not_null for name, c in columns(pg, "User").items()} == {
        "id": True,  # a primary key column is NOT NULL in PostgreSQL
        "email": True,
        "displayName": False,
        "age": True,
    }


PRISMA_MIGRATIONS = """
CREATE TABLE "_prisma_migrations" (
    "id"                    TEXT PRIMARY KEY NOT NULL,
    "checksum"              TEXT NOT NULL,
    "finished_at"           DATETIME,
    "migration_name"        TEXT NOT NULL,
    "started_at"            DATETIME NOT NULL DEFAULT current_timestamp,
    "applied_steps_count"   INTEGER UNSIGNED NOT NULL DEFAULT 0
);
"""


def test_defaults_are_translated_to_postgresql(migration, pg):
    migration(
        PRISMA_MIGRATIONS
        + """
        CREATE TABLE "Setting" (
            "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
            "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
            "touchedAt" DATETIME DEFAULT (datetime('now')),
            "retries" INTEGER NOT NULL DEFAULT 3,
            "offset" INTEGER NOT NULL DEFAULT -7,
            "ratio" REAL NOT NULL DEFAULT -1.5,
            "price" DECIMAL(10,2) NOT NULL DEFAULT 9.99,
            "kind" TEXT NOT NULL DEFAULT 'it''s',
            "parenthesized" TEXT NOT NULL DEFAULT ('x'),
            "isActive" BOOLEAN NOT NULL DEFAULT true,
            "isBot" BOOLEAN NOT NULL DEFAULT false,
            "isAdmin" BOOLEAN NOT NULL DEFAULT 1,
            "isMuted" BOOLEAN NOT NULL DEFAULT 0,
            "note" TEXT DEFAULT NULL,
            "localAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
        );
        """
    ).apply(
        """
        tables:
          Setting:
            columns:
              localAt: {type: timestamp}
        """
    )

    cols = columns(pg, "Setting")
    assert cols["createdAt"].default == "CURRENT_TIMESTAMP"
    assert cols["touchedAt"].default == "CURRENT_TIMESTAMP"  # (datetime('now'))
    assert cols["note"].default is None  # DEFAULT NULL is no default at all
    assert columns(pg, "_prisma_migrations")["started_at"].default == "CURRENT_TIMESTAMP"

    # SQLite's CURRENT_TIMESTAMP is UTC and loaded timestamps (without time zone) are UTC values:
    # a new row gets UTC too, whatever the session's time zone.
    assert cols["localAt"].default == "(CURRENT_TIMESTAMP AT TIME ZONE 'UTC'::text)"
    pg.execute("SET TimeZone = 'America/New_York'")

    before = _now(pg)
    row = insert_defaults(pg, "Setting")
    utc_now = pg.execute("SELECT now() AT TIME ZONE 'UTC'").fetchone()[0]  # type: ignore[index]
    assert abs(row.pop("localAt") - utc_now) < datetime.timedelta(seconds=5)
    assert abs(row.pop("createdAt") - before) < datetime.timedelta(seconds=5)
    assert abs(row.pop("touchedAt") - before) < datetime.timedelta(seconds=5)
    assert row == {
        "id": 1,
        "retries": 3,
        "offset": -7,
        "ratio": -1.5,
        "price": Decimal("9.99"),
        "kind": "it's",
        "parenthesized": "x",
        "isActive": True,
        "isBot": False,
        "isAdmin": True,
        "isMuted": False,
        "note": None,
    }
    prisma = insert_defaults(pg, "_prisma_migrations", id="m1", checksum="c", migration_name="init")
    assert abs(prisma["started_at"] - _now(pg)) < datetime.timedelta(seconds=5)
    assert prisma["applied_steps_count"] == 0


def test_a_default_without_postgresql_equivalent_is_a_spec_error_asking_for_a_default(offline):
    m = offline(
        'CREATE TABLE "Ticket" (id INTEGER PRIMARY KEY, "luckyNumber" INTEGER DEFAULT (abs(random())));'
    )

    message = spec_error(m, "")

    assert message == (
        "spec.yaml:1:1: tables.Ticket: column 'luckyNumber': default abs(random()) has no PostgreSQL "
        "equivalent for bigint; set tables.Ticket.columns.luckyNumber.default (null for none)"
    )


def test_defaults_that_only_look_like_literals_are_spec_errors(offline):
    m = offline(
        """
        CREATE TABLE t (
            id INTEGER PRIMARY KEY,
            s TEXT DEFAULT ('a' || 'b'),      -- an expression, not the string a' || 'b
            n INTEGER DEFAULT 'not a number', -- SQLite keeps this text in an INTEGER column; bigint cannot
            d DATETIME DEFAULT 'now'          -- PostgreSQL would freeze 'now' at CREATE TABLE time
        );
        """
    )

    assert spec_error(m, "") == "\n".join(
        [
            "spec.yaml:1:1: tables.t: column 's': default 'a' || 'b' has no PostgreSQL equivalent for text; set tables.t.columns.s.default (null for none)",
            "spec.yaml:1:1: tables.t: column 'n': default 'not a number' has no PostgreSQL equivalent for bigint; set tables.t.columns.n.default (null for none)",
            "spec.yaml:1:1: tables.t: column 'd': default 'now' has no PostgreSQL equivalent for timestamp with time zone; set tables.t.columns.d.default (null for none)",
        ]
    )


def test_an_untranslatable_default_can_be_set_in_the_spec(migration, pg):
    m = migration(
        """
        CREATE TABLE "Ticket" (
            id INTEGER PRIMARY KEY,
            "luckyNumber" INTEGER DEFAULT (abs(random())),
            "updatedAt" DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
        );
        INSERT INTO "Ticket" (id) VALUES (1);
        """
    )
    m.apply(
        """
        tables:
          Ticket:
            columns:
              luckyNumber: {default: null}
              updatedAt: {default: {sql: now()}}
        """
    )

    cols = columns(pg, "Ticket")
    assert cols["luckyNumber"].default is None
    assert cols["updatedAt"].default == "now()"
    row = insert_defaults(pg, "Ticket", id=2)
    assert row["luckyNumber"] is None
    assert abs(row["updatedAt"] - _now(pg)) < datetime.timedelta(seconds=5)
    assert len(rows(pg, "Ticket")) == 2  # the SQLite row arrived with its own value


# --- keys and indexes -------------------------------------------------------------------------------


def test_primary_keys_and_unique_constraints_of_create_table(migration, pg):
    migration(
        """
        CREATE TABLE "User" (
            id TEXT NOT NULL PRIMARY KEY,
            email TEXT NOT NULL UNIQUE,
            tenant TEXT NOT NULL,
            handle TEXT NOT NULL,
            UNIQUE (tenant, handle)
        );
        CREATE TABLE "Membership" ("groupId" TEXT NOT NULL, "userId" TEXT NOT NULL, role TEXT,
                                   PRIMARY KEY ("groupId", "userId"));
        """
    ).apply()

    assert constraints(pg, "User") == {
        "User_email_key": "UNIQUE (email)",
        "User_pkey": "PRIMARY KEY (id)",
        "User_tenant_handle_key": "UNIQUE (tenant, handle)",
    }
    assert constraints(pg, "Membership") == {"Membership_pkey": 'PRIMARY KEY ("groupId", "userId")'}


def test_unique_composite_and_descending_indexes_keep_their_names_and_keys(migration, pg):
    migration(
        """
        CREATE TABLE "Message" (id TEXT PRIMARY KEY, "conversationId" TEXT, sequence INTEGER,
                                "createdAt" DATETIME, "senderId" TEXT);
        CREATE UNIQUE INDEX "Message_conversationId_sequence_key" ON "Message"("conversationId", "sequence");
        CREATE INDEX "Message_conversationId_createdAt_idx" ON "Message"("conversationId", "createdAt" DESC);
        CREATE INDEX "Message_senderId_idx" ON "Message"("senderId");
        """
    ).apply()

    assert indexes(pg, "Message") == {
        "Message_conversationId_createdAt_idx": 'CREATE INDEX "Message_conversationId_createdAt_idx" ON public."Message" USING btree ("conversationId", "createdAt" DESC)',
        "Message_conversationId_sequence_key": 'CREATE UNIQUE INDEX "Message_conversationId_sequence_key" ON public."Message" USING btree ("conversationId", sequence)',
        "Message_senderId_idx": 'CREATE INDEX "Message_senderId_idx" ON public."Message" USING btree ("senderId")',
    }


def test_partial_indexes_keep_their_where_translated(migration, pg):
    m = migration(
        """
        CREATE TABLE "User" (id INTEGER PRIMARY KEY, email TEXT NOT NULL, "deletedAt" DATETIME,
                             "isActive" BOOLEAN NOT NULL DEFAULT 1, karma INTEGER);
        CREATE UNIQUE INDEX "User_email_live_key" ON "User"(email) /* "live" rows */ WHERE "deletedAt" IS NULL;
        CREATE INDEX "User_active_idx" ON "User"(email) WHERE isActive = 1;
        -- SQLite's IS compares any two values; PostgreSQL's takes only NULL, TRUE or FALSE
        CREATE INDEX "User_karma_idx" ON "User"(email) WHERE karma IS NOT 5 AND 0 IS "isActive";
        INSERT INTO "User" VALUES (1, 'a@x', '2024-01-01 00:00:00', 0, 3), (2, 'a@x', NULL, 1, 5);
        """
    )
    m.apply()

    assert indexes(pg, "User") == {
        "User_active_idx": 'CREATE INDEX "User_active_idx" ON public."User" USING btree (email) WHERE ("isActive" = true)',
        "User_email_live_key": 'CREATE UNIQUE INDEX "User_email_live_key" ON public."User" USING btree (email) WHERE ("deletedAt" IS NULL)',
        "User_karma_idx": 'CREATE INDEX "User_karma_idx" ON public."User" USING btree (email) WHERE ((karma IS DISTINCT FROM 5) AND (NOT (false IS DISTINCT FROM "isActive")))',
    }
    # The predicate still does its job: only live rows must be unique.
    insert_defaults(
        pg, "User", id=3, email="a@x", deletedAt=datetime.datetime(2024, 2, 1, tzinfo=datetime.UTC)
    )
    with pytest.raises(psycopg.errors.UniqueViolation):
        insert_defaults(pg, "User", id=4, email="a@x")


def test_expression_indexes_are_translated(migration, pg):
    migration(
        """
        CREATE TABLE "User" (id INTEGER PRIMARY KEY, email TEXT NOT NULL);
        CREATE UNIQUE INDEX "User_email_lower_key" ON "User"(lower(email));
        INSERT INTO "User" VALUES (1, 'Ada@example.com');
        """
    ).apply()

    assert indexes(pg, "User") == {
        # lower() of ASCII letters only, as SQLite's: the index refuses exactly what SQLite's refuses
        "User_email_lower_key": 'CREATE UNIQUE INDEX "User_email_lower_key" ON public."User" USING btree (lower((email COLLATE "C")))'
    }
    with pytest.raises(psycopg.errors.UniqueViolation):
        insert_defaults(pg, "User", id=2, email="ADA@example.com")


@pytest.mark.parametrize(
    ("index", "why"),
    [
        (
            'CREATE INDEX "Event_a_idx" ON "Event"(json_extract(data, \'$.a\'))',
            "index 'Event_a_idx' on expression json_extract(data, '$.a') cannot be translated to PostgreSQL",
        ),
        (
            # SQLite's LIKE ignores ASCII case, PostgreSQL's does not: the index would cover other rows
            'CREATE INDEX "Event_a_idx" ON "Event"(data) WHERE data LIKE \'a%\'',
            "partial index 'Event_a_idx' has a WHERE clause that cannot be translated (data LIKE 'a%')",
        ),
        (
            'CREATE INDEX "Event_a_idx" ON "Event"(data) WHERE x = X\'00\'',
            "partial index 'Event_a_idx' has a WHERE clause that cannot be translated (x = X'00')",
        ),
        (
            # NOCASE on bytes: nothing in PostgreSQL compares bytea values that way
            'CREATE UNIQUE INDEX "Event_a_idx" ON "Event"(x COLLATE NOCASE)',
            "index 'Event_a_idx' on expression \"x\" COLLATE NOCASE cannot be translated to PostgreSQL",
        ),
    ],
    ids=["json_extract", "like", "blob-literal", "collate-nocase"],
)
def test_an_index_that_cannot_be_translated_is_a_spec_error(offline, index, why):
    m = offline(f'CREATE TABLE "Event" (id INTEGER PRIMARY KEY, data TEXT, x BLOB); {index};')

    assert spec_error(m, "") == f"spec.yaml:1:1: tables.Event: {why}; replace this table's `indexes`"


def test_a_unique_constraint_with_a_collation_on_bytes_is_a_spec_error(offline):
    # On text it is a unique index on what the collation compares (tests/test_schema_carried.py).
    m = offline("CREATE TABLE t (id INTEGER PRIMARY KEY, token BLOB COLLATE NOCASE UNIQUE);")

    assert spec_error(m, "") == (
        'spec.yaml:1:1: tables.t: unique constraint on ("token" COLLATE NOCASE) cannot be translated to '
        "PostgreSQL (it compares with a collation PostgreSQL cannot express exactly for its type); "
        "replace this table's `unique`"
    )


def test_indexes_replaced_in_the_spec(migration, pg):
    migration(
        """
        CREATE TABLE "Event" (id INTEGER PRIMARY KEY, data TEXT, kind TEXT);
        CREATE INDEX "Event_a_idx" ON "Event"(json_extract(data, '$.a'));
        """
    ).apply(
        """
        tables:
          Event:
            indexes:
              - {columns: [kind]}
              - {name: event_live_kind, columns: [kind, id], unique: true, where: "kind <> 'gone'"}
        """
    )

    assert indexes(pg, "Event") == {
        "Event_kind_idx": 'CREATE INDEX "Event_kind_idx" ON public."Event" USING btree (kind)',
        "event_live_kind": "CREATE UNIQUE INDEX event_live_kind ON public.\"Event\" USING btree (kind, id) WHERE (kind <> 'gone'::text)",
    }


# --- foreign keys ------------------------------------------------------------------------------------


def test_foreign_keys_keep_their_actions(migration, pg):
    migration(
        """
        CREATE TABLE "User" (id TEXT PRIMARY KEY);
        CREATE TABLE "Post" (
            id TEXT PRIMARY KEY,
            "authorId" TEXT NOT NULL REFERENCES "User"(id) ON DELETE CASCADE ON UPDATE CASCADE,
            "editorId" TEXT REFERENCES "User"(id) ON DELETE SET NULL,
            "ownerId" TEXT REFERENCES "User"(id) ON DELETE RESTRICT ON UPDATE RESTRICT,
            "reviewerId" TEXT REFERENCES "User"
        );
        INSERT INTO "User" VALUES ('u1'), ('u2');
        INSERT INTO "Post" VALUES ('p1', 'u1', 'u2', NULL, 'u2');
        """
    ).apply()

    assert constraints(pg, "Post") == {
        "Post_authorId_fkey": 'FOREIGN KEY ("authorId") REFERENCES "User"(id) ON UPDATE CASCADE ON DELETE CASCADE',
        "Post_editorId_fkey": 'FOREIGN KEY ("editorId") REFERENCES "User"(id) ON DELETE SET NULL',
        "Post_ownerId_fkey": 'FOREIGN KEY ("ownerId") REFERENCES "User"(id) ON UPDATE RESTRICT ON DELETE RESTRICT',
        "Post_pkey": "PRIMARY KEY (id)",
        "Post_reviewerId_fkey": 'FOREIGN KEY ("reviewerId") REFERENCES "User"(id)',  # the parent's key
    }
    pg.execute("""UPDATE "Post" SET "reviewerId" = NULL""")
    pg.execute("""DELETE FROM "User" WHERE id = 'u2'""")  # SET NULL
    assert rows(pg, "Post") == [("p1", "u1", None, None, None)]
    pg.execute("""UPDATE "User" SET id = 'u9' WHERE id = 'u1'""")  # ON UPDATE CASCADE
    assert rows(pg, "Post") == [("p1", "u9", None, None, None)]
    pg.execute("""DELETE FROM "User" WHERE id = 'u9'""")  # CASCADE
    assert rows(pg, "Post") == []


def test_a_foreign_key_may_spell_its_parent_in_another_case(migration, pg):
    """SQLite matches `REFERENCES user(ID)` to table "User", column "id"; PostgreSQL names are exact."""
    migration(
        """
        CREATE TABLE "User" (id TEXT PRIMARY KEY);
        CREATE TABLE "Post" (id INTEGER PRIMARY KEY, "authorId" TEXT REFERENCES user(ID));
        """
    ).apply()

    assert constraints(pg, "Post")["Post_authorId_fkey"] == 'FOREIGN KEY ("authorId") REFERENCES "User"(id)'


def test_composite_foreign_key(migration, pg):
    migration(
        """
        CREATE TABLE "Membership" ("groupId" TEXT, "userId" TEXT, PRIMARY KEY ("groupId", "userId"));
        CREATE TABLE "Vote" (id INTEGER PRIMARY KEY, "groupId" TEXT, "userId" TEXT,
            FOREIGN KEY ("groupId", "userId") REFERENCES "Membership" ("groupId", "userId") ON DELETE CASCADE);
        INSERT INTO "Membership" VALUES ('g', 'u');
        INSERT INTO "Vote" VALUES (1, 'g', 'u');
        """
    ).apply()

    assert constraints(pg, "Vote")["Vote_groupId_userId_fkey"] == (
        'FOREIGN KEY ("groupId", "userId") REFERENCES "Membership"("groupId", "userId") ON DELETE CASCADE'
    )


def test_self_references_and_cycles_load_because_foreign_keys_come_after_the_rows(migration, pg):
    migration(
        """
        CREATE TABLE "Message" (id TEXT PRIMARY KEY, "replyToId" TEXT REFERENCES "Message"(id) ON DELETE SET NULL);
        CREATE TABLE a (id INTEGER PRIMARY KEY, b_id INTEGER REFERENCES b(id));
        CREATE TABLE b (id INTEGER PRIMARY KEY, a_id INTEGER REFERENCES a(id));
        -- a reply stored before the message it replies to; a and b point at each other
        INSERT INTO "Message" VALUES ('m2', 'm1'), ('m1', NULL);
        INSERT INTO a VALUES (1, 10);
        INSERT INTO b VALUES (10, 1);
        """
    ).apply()

    assert rows(pg, "Message") == [("m1", None), ("m2", "m1")]
    assert rows(pg, "a") == [(1, 10)]
    assert rows(pg, "b") == [(10, 1)]
    assert constraints(pg, "Message")["Message_replyToId_fkey"] == (
        'FOREIGN KEY ("replyToId") REFERENCES "Message"(id) ON DELETE SET NULL'
    )
    assert constraints(pg, "a")["a_b_id_fkey"] == "FOREIGN KEY (b_id) REFERENCES b(id)"
    assert constraints(pg, "b")["b_a_id_fkey"] == "FOREIGN KEY (a_id) REFERENCES a(id)"


def test_an_orphaned_foreign_key_value_fails_apply_naming_the_constraint_and_leaves_the_target_empty(
    migration, pg
):
    m = migration(
        """
        CREATE TABLE "User" (id TEXT PRIMARY KEY);
        CREATE TABLE "Post" (id INTEGER PRIMARY KEY, "authorId" TEXT REFERENCES "User"(id));
        INSERT INTO "User" VALUES ('u1');
        INSERT INTO "Post" VALUES (1, 'u1'), (2, 'ghost');  -- SQLite did not enforce foreign keys
        """
    )

    with pytest.raises(TargetError) as caught:
        m.apply()

    assert 'foreign key "Post_authorId_fkey"' in str(caught.value)
    assert 'violates foreign key constraint "Post_authorId_fkey"' in str(caught.value)
    assert "(authorId)=(ghost)" in str(caught.value)  # and the value that has no parent
    assert tables(pg) == []


# --- integer primary keys become identity columns ---------------------------------------------------


def test_integer_primary_keys_become_identities_that_continue_where_sqlite_would(migration, pg):
    migration(
        """
        CREATE TABLE "Plain" (id INTEGER PRIMARY KEY, name TEXT);  -- an alias of SQLite's rowid
        CREATE TABLE "Counted" (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT);
        CREATE TABLE "Deleted" (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT);
        CREATE TABLE "EmptyPlain" (id INTEGER PRIMARY KEY, name TEXT);
        CREATE TABLE "EmptyCounted" (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT);
        INSERT INTO "Plain" (id, name) VALUES (1, 'a'), (7, 'b'), (41, 'c');
        INSERT INTO "Counted" (id, name) VALUES (1, 'a'), (7, 'b'), (41, 'c');
        INSERT INTO "Deleted" (name) VALUES ('a'), ('b'), ('c'), ('d'), ('e');
        DELETE FROM "Deleted" WHERE id > 2;  -- sqlite_sequence still says 5
        """
    ).apply()

    for table in ("Plain", "Counted", "Deleted", "EmptyPlain", "EmptyCounted"):
        assert columns(pg, table)["id"] == Col("bigint", True, None, True)
    assert insert_defaults(pg, "Plain", name="d")["id"] == 42
    assert insert_defaults(pg, "Counted", name="d")["id"] == 42
    assert insert_defaults(pg, "Deleted", name="f")["id"] == 6  # AUTOINCREMENT never reuses 3, 4, 5
    assert insert_defaults(pg, "EmptyPlain", name="first")["id"] == 1
    assert insert_defaults(pg, "EmptyCounted", name="first")["id"] == 1


def test_only_the_rowid_alias_becomes_an_identity(migration, pg):
    migration(
        """
        CREATE TABLE int_pk (id INT PRIMARY KEY, name TEXT);  -- INT, not INTEGER: not the rowid
        CREATE TABLE composite (id INTEGER, name TEXT, PRIMARY KEY (id, name));
        CREATE TABLE no_rowid (id INTEGER PRIMARY KEY, name TEXT) WITHOUT ROWID;
        CREATE TABLE text_pk (id TEXT PRIMARY KEY, name TEXT);
        """
    ).apply()

    assert {t: columns(pg, t)["id"].identity for t in tables(pg)} == {
        "composite": False,
        "int_pk": False,
        "no_rowid": False,
        "text_pk": False,
    }


def test_serial_columns_own_a_sequence_that_continues_after_the_loaded_ids(migration, pg):
    """`serial: true` makes PostgreSQL's serial/bigserial (Prisma's autoincrement ids), also for a
    column that is not SQLite's rowid (Prisma's BigInt ids are declared BIGINT)."""
    m = migration(
        """
        CREATE TABLE "Role" (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT);
        CREATE TABLE "Event" (id BIGINT NOT NULL PRIMARY KEY, name TEXT);
        INSERT INTO "Role" (id, name) VALUES (1, 'a'), (9, 'b');
        INSERT INTO "Event" (id, name) VALUES (5, 'a'), (1099511627776, 'b');
        """
    )
    body = """
        tables:
          Role: {columns: {id: {type: integer, serial: true}}}
          Event: {columns: {id: {serial: true}}}
        """
    planned = [step_text(s) for s in m.plan(body).steps]
    assert '  sequence of "Role"."id" continues after the largest id' in planned
    assert not any("identity" in text for text in planned)
    m.apply(body)

    assert columns(pg, "Role")["id"] == Col("integer", True, "nextval('\"Role_id_seq\"'::regclass)", False)
    assert columns(pg, "Event")["id"] == Col("bigint", True, "nextval('\"Event_id_seq\"'::regclass)", False)
    owned = pg.execute("SELECT pg_get_serial_sequence('\"Event\"', 'id')").fetchone()
    assert owned == ('public."Event_id_seq"',)
    assert insert_defaults(pg, "Role", name="c")["id"] == 10
    assert insert_defaults(pg, "Event", name="c")["id"] == 1099511627777


def test_serial_is_for_integer_columns(offline):
    m = offline('CREATE TABLE "T" (id TEXT PRIMARY KEY);')

    message = spec_error(m, "tables:\n  T: {columns: {id: {serial: true}}}\n")

    assert (
        message
        == "spec.yaml:7:30: tables.T.columns.id.serial: serial is for smallint, integer and bigint columns, not text"
    )


def test_a_serial_column_takes_no_other_default(offline):
    m = offline('CREATE TABLE "T" (id INTEGER PRIMARY KEY);')

    message = spec_error(m, "tables:\n  T: {columns: {id: {serial: true, default: 7}}}\n")

    assert message == (
        "spec.yaml:7:45: tables.T.columns.id.default: a serial column takes its default from its sequence; "
        "remove `default`"
    )


def test_the_primary_key_may_be_named_in_the_spec(migration, pg):
    migration(
        """
        CREATE TABLE "_PostToTag" ("A" INTEGER NOT NULL, "B" INTEGER NOT NULL);
        CREATE UNIQUE INDEX "_PostToTag_AB_unique" ON "_PostToTag"("A", "B");
        CREATE INDEX "_PostToTag_B_index" ON "_PostToTag"("B");
        INSERT INTO "_PostToTag" VALUES (1, 2);
        """
    ).apply(
        """
        tables:
          _PostToTag:
            primary_key: [A, B]
            primary_key_name: _PostToTag_AB_pkey
            indexes: [{name: _PostToTag_B_index, columns: [B]}]
        """
    )

    found = pg.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = '\"_PostToTag\"'::regclass"
    ).fetchall()
    assert found == [("_PostToTag_AB_pkey", 'PRIMARY KEY ("A", "B")')]
    indexes = pg.execute(
        "SELECT indexname FROM pg_indexes WHERE tablename = '_PostToTag' ORDER BY 1"
    ).fetchall()
    assert indexes == [("_PostToTag_AB_pkey",), ("_PostToTag_B_index",)]


# --- which tables arrive -----------------------------------------------------------------------------


def test_without_rowid_tables_and_tables_without_a_primary_key_are_migrated(migration, pg):
    migration(
        """
        CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID;
        CREATE TABLE log (at TEXT, line TEXT);
        INSERT INTO kv VALUES ('a', '1'), ('b', '2');
        INSERT INTO log VALUES ('t1', 'x'), ('t1', 'x');  -- duplicates are data too
        """
    ).apply()

    assert rows(pg, "kv") == [("a", "1"), ("b", "2")]
    assert constraints(pg, "kv") == {"kv_pkey": "PRIMARY KEY (k)"}
    assert rows(pg, "log") == [("t1", "x"), ("t1", "x")]
    assert constraints(pg, "log") == {}


def test_views_and_sqlite_sequence_are_not_migrated(migration, pg):
    migration(
        """
        CREATE TABLE "Item" (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT);
        CREATE VIEW "ItemNames" AS SELECT name FROM "Item";
        INSERT INTO "Item" (name) VALUES ('a');
        """
    ).apply()

    assert tables(pg) == ["Item"]


def test_generated_columns_arrive_as_plain_columns_with_their_values(migration, pg):
    """table_info does not list generated columns; their values are data and must not vanish."""
    migration(
        """
        CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER,
                        doubled INTEGER GENERATED ALWAYS AS (a * 2) STORED,
                        plus_one INTEGER AS (a + 1));
        INSERT INTO t (a) VALUES (5);
        """
    ).apply()

    assert rows(pg, "t") == [(1, 5, 10, 6)]


# --- naming ------------------------------------------------------------------------------------------

NAMING_SOURCE = """
CREATE TABLE "UserAccount" (id INTEGER PRIMARY KEY, "createdAt" DATETIME, "HTMLBody" TEXT);
CREATE TABLE "Post" (id INTEGER PRIMARY KEY, "authorId" INTEGER REFERENCES "UserAccount"(id));
CREATE INDEX "Post_authorId_idx" ON "Post"("authorId");
"""


@pytest.mark.parametrize(
    ("naming", "user", "post"),
    [
        (
            "keep",
            ("UserAccount", ["id", "createdAt", "HTMLBody"]),
            ("Post", ["id", "authorId"], "Post_authorId_idx", "Post_authorId_fkey"),
        ),
        (
            "lower",
            ("useraccount", ["id", "createdat", "htmlbody"]),
            ("post", ["id", "authorid"], "post_authorid_idx", "post_authorid_fkey"),
        ),
        (
            "snake",
            ("user_account", ["id", "created_at", "html_body"]),
            ("post", ["id", "author_id"], "post_author_id_idx", "post_author_id_fkey"),
        ),
    ],
)
def test_naming_policies(migration, pg, naming, user, post):
    migration(NAMING_SOURCE).apply(f"naming: {naming}\n")

    user_table, user_columns = user
    post_table, post_columns, index, fk = post
    assert tables(pg) == sorted([user_table, post_table])
    assert list(columns(pg, user_table)) == user_columns
    assert list(columns(pg, post_table)) == post_columns
    assert list(indexes(pg, post_table)) == [index]
    assert fk in constraints(pg, post_table)


def test_tables_and_columns_renamed_in_the_spec(migration, pg):
    migration(NAMING_SOURCE + "INSERT INTO \"UserAccount\" VALUES (1, '2024-01-01 00:00:00', '<p>');").apply(
        """
        naming: snake
        tables:
          UserAccount:
            name: accounts
            columns:
              HTMLBody: {name: body}
        """
    )

    assert tables(pg) == ["accounts", "post"]
    assert list(columns(pg, "accounts")) == ["id", "created_at", "body"]
    assert constraints(pg, "post")["post_author_id_fkey"] == "FOREIGN KEY (author_id) REFERENCES accounts(id)"
    assert rows(pg, "accounts")[0][2] == "<p>"


def test_name_collisions_are_spec_errors(offline):
    m = offline(
        """
        CREATE TABLE "UserRole" (id INTEGER PRIMARY KEY, "userId" TEXT, user_id TEXT);
        CREATE TABLE user_role (id INTEGER PRIMARY KEY);
        """
    )

    assert spec_error(m, "naming: snake\n") == "\n".join(
        [
            "spec.yaml:1:1: tables.user_role: tables 'UserRole' and 'user_role' would both become 'user_role'; rename one with `name:`",
            "spec.yaml:1:1: tables.UserRole.columns.user_id: columns 'userId' and 'user_id' would both become 'user_id'; rename one with `name:`",
        ]
    )


def test_index_and_constraint_names_must_be_unique_in_the_schema(offline):
    """PostgreSQL keeps tables and indexes in one namespace per schema; SQLite's names, once
    mapped, can clash with the names etl gives keys and constraints."""
    m = offline(
        """
        CREATE TABLE a_b (id INTEGER PRIMARY KEY, c TEXT UNIQUE);
        CREATE TABLE a (id INTEGER PRIMARY KEY, b_c TEXT UNIQUE);
        CREATE INDEX a_pkey ON a_b (c);
        """
    )

    assert spec_error(m, "") == "\n".join(
        [
            "spec.yaml:1:1: tables.a: index 'a_pkey' of 'a_b' and the primary key of 'a' would both be named 'a_pkey' in PostgreSQL (one namespace per schema); rename one",
            "spec.yaml:1:1: tables.a: the unique constraint (c) of 'a_b' and the unique constraint (b_c) of 'a' would both be named 'a_b_c_key' in PostgreSQL (one namespace per schema); rename one",
        ]
    )


def test_names_longer_than_postgresql_allows(offline):
    """PostgreSQL silently truncates names beyond 63 bytes; etl never lets that happen."""
    long_column = "é" * 32  # 64 bytes in UTF-8
    long_index = "Message_conversationId_createdAt_senderId_replyToId_deletedAt_idx"  # 65 bytes
    m = offline(
        f"""
        CREATE TABLE t (id INTEGER PRIMARY KEY, "{long_column}" TEXT, a TEXT);
        CREATE INDEX "{long_index}" ON t (a);
        """
    )

    assert spec_error(m, "") == (
        f"spec.yaml:1:1: tables.t.columns.{long_column}: target column name '{long_column}' is longer "
        "than PostgreSQL's 63 bytes; rename it with `name:`"
    )
    checked = validate(m.write_spec(f"tables: {{t: {{columns: {{{long_column}: {{name: e}}}}}}}}\n"), {})
    index = checked.mapping.tables[0].indexes[0].name
    assert (
        index == "Message_conversationId_createdAt_senderId_replyToId_de_ebc8f951"
    )  # shortened, kept distinct
    assert len(index.encode()) == 63


# --- choosing what moves: include/exclude, columns, rows, types --------------------------------------


def test_include_and_exclude_globs_choose_the_tables(migration, pg):
    migration(
        """
        CREATE TABLE "User" (id INTEGER PRIMARY KEY);
        CREATE TABLE "UserSetting" (id INTEGER PRIMARY KEY);
        CREATE TABLE "UserTmp" (id INTEGER PRIMARY KEY);
        CREATE TABLE "Audit" (id INTEGER PRIMARY KEY);
        """
    ).apply(
        """
        include: ["User*"]
        exclude: ["*Tmp"]
        """
    )

    assert tables(pg) == ["User", "UserSetting"]


def test_excluded_columns_are_left_out(migration, pg):
    migration(
        """
        CREATE TABLE "User" (id INTEGER PRIMARY KEY, email TEXT, "passwordHash" TEXT);
        INSERT INTO "User" VALUES (1, 'a@x', 'secret');
        """
    ).apply(
        """
        tables:
          User:
            exclude_columns: [passwordHash]
        """
    )

    assert list(columns(pg, "User")) == ["id", "email"]
    assert rows(pg, "User") == [(1, "a@x")]


def test_a_where_filter_keeps_only_matching_rows(migration, pg):
    migration(
        """
        CREATE TABLE "Session" (id INTEGER PRIMARY KEY, "revokedAt" INTEGER);
        INSERT INTO "Session" VALUES (1, NULL), (2, 1700000000000), (3, NULL);
        """
    ).apply(
        """
        tables:
          Session:
            where: '"revokedAt" IS NULL'
        """
    )

    assert [r[0] for r in rows(pg, "Session")] == [1, 3]


def test_a_computed_column_from_a_sqlite_expression(migration, pg):
    migration(
        """
        CREATE TABLE "User" (id INTEGER PRIMARY KEY, first TEXT, last TEXT);
        INSERT INTO "User" VALUES (1, 'Ada', 'Lovelace');
        """
    ).apply(
        """
        tables:
          User:
            columns:
              fullName: {expression: "first || ' ' || last", type: text, nullable: false}
        """
    )

    assert columns(pg, "User")["fullName"] == Col("text", True, None, False)
    assert rows(pg, "User") == [(1, "Ada", "Lovelace", "Ada Lovelace")]


def test_type_rules_choose_types_by_declared_type(migration, pg):
    migration(
        """
        CREATE TABLE t (id INTEGER PRIMARY KEY, name VARCHAR(40), code varchar(3), price DECIMAL(10,2),
                        at DATETIME, n INTEGER);
        INSERT INTO t VALUES (1, 'x', 'abc', 1.25, '2024-01-02 03:04:05', 7);
        """
    ).apply(
        """
        type_rules:
          - {declared: "VARCHAR(3)", type: "char(3)"}
          - {declared: "VARCHAR*", type: "varchar(40)"}
          - {declared: DATETIME, type: "timestamp(3)"}
        tables:
          t:
            columns:
              n: {type: integer}  # a column's own type wins over every rule
        """
    )

    assert {name: c.type for name, c in columns(pg, "t").items()} == {
        "id": "bigint",
        "name": "character varying(40)",
        "code": "character(3)",
        "price": "numeric(10,2)",
        "at": "timestamp(3) without time zone",
        "n": "integer",
    }
    assert rows(pg, "t") == [(1, "x", "abc", Decimal("1.25"), datetime.datetime(2024, 1, 2, 3, 4, 5), 7)]


# --- load order --------------------------------------------------------------------------------------

ORDER_SOURCE = """
CREATE TABLE "Comment" (id INTEGER PRIMARY KEY, "postId" INTEGER REFERENCES "Post"(id));
CREATE TABLE "Post" (id INTEGER PRIMARY KEY, "authorId" INTEGER REFERENCES "User"(id));
CREATE TABLE "User" (id INTEGER PRIMARY KEY);
"""


def _load_order(spec_path) -> list[str]:
    checked = validate(spec_path, {})
    plan = build_plan(checked.mapping, TargetState(schema_exists=True))
    return [s.table.source for s in plan.steps if isinstance(s, CreateTable)]


def test_load_order_puts_parents_before_children(offline):
    m = offline(ORDER_SOURCE)

    assert _load_order(m.write_spec()) == ["User", "Post", "Comment"]


def test_an_explicit_load_order_with_a_child_before_its_parent_is_a_spec_error(offline):
    m = offline(ORDER_SOURCE)

    assert spec_error(m, "load_order: [Post, Comment, User]\n") == (
        "spec.yaml:6:14: load_order[0]: 'Post' is loaded before 'User', which its foreign key references"
    )


def test_an_explicit_load_order_may_follow_a_cycle_either_way(migration, pg):
    m = migration(
        """
        CREATE TABLE a (id INTEGER PRIMARY KEY, b_id INTEGER REFERENCES b(id));
        CREATE TABLE b (id INTEGER PRIMARY KEY, a_id INTEGER REFERENCES a(id));
        INSERT INTO a VALUES (1, 1);
        INSERT INTO b VALUES (1, 1);
        """
    )

    assert _load_order(m.write_spec("load_order: [b, a]\n")) == ["b", "a"]
    m.apply("load_order: [b, a]\n")
    assert rows(pg, "a") == [(1, 1)]


# --- the DDL, as reviewers read it -------------------------------------------------------------------

PRISMA_LIKE = """
CREATE TABLE "User" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "email" TEXT NOT NULL,
    "displayName" TEXT,
    "isActive" BOOLEAN NOT NULL DEFAULT true,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL,
    "deletedAt" DATETIME
);
CREATE TABLE "Conversation" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "createdById" TEXT NOT NULL,
    "lastMessageId" TEXT,
    "lastSequence" BIGINT NOT NULL DEFAULT 0,
    CONSTRAINT "Conversation_createdById_fkey" FOREIGN KEY ("createdById") REFERENCES "User" ("id") ON DELETE RESTRICT ON UPDATE CASCADE,
    CONSTRAINT "Conversation_lastMessageId_fkey" FOREIGN KEY ("lastMessageId") REFERENCES "Message" ("id") ON DELETE SET NULL ON UPDATE CASCADE
);
CREATE TABLE "Message" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "conversationId" TEXT NOT NULL,
    "senderId" TEXT NOT NULL,
    "replyToId" TEXT,
    "kind" TEXT NOT NULL DEFAULT 'TEXT',
    "body" TEXT,
    "sequence" BIGINT NOT NULL,
    "amount" DECIMAL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "Message_conversationId_fkey" FOREIGN KEY ("conversationId") REFERENCES "Conversation" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "Message_senderId_fkey" FOREIGN KEY ("senderId") REFERENCES "User" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "Message_replyToId_fkey" FOREIGN KEY ("replyToId") REFERENCES "Message" ("id") ON DELETE SET NULL ON UPDATE CASCADE
);
CREATE TABLE "ConversationParticipant" (
    "conversationId" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "isMuted" BOOLEAN NOT NULL DEFAULT false,
    PRIMARY KEY ("conversationId", "userId"),
    CONSTRAINT "ConversationParticipant_conversationId_fkey" FOREIGN KEY ("conversationId") REFERENCES "Conversation" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "ConversationParticipant_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE TABLE "AuditLog" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "actorId" TEXT,
    "action" TEXT NOT NULL,
    "details" JSONB,
    CONSTRAINT "AuditLog_actorId_fkey" FOREIGN KEY ("actorId") REFERENCES "User" ("id") ON DELETE SET NULL ON UPDATE CASCADE
);
CREATE UNIQUE INDEX "User_email_key" ON "User"("email");
CREATE UNIQUE INDEX "User_email_live_key" ON "User"(lower("email")) WHERE "deletedAt" IS NULL;
CREATE INDEX "User_active_idx" ON "User"("createdAt" DESC) WHERE "isActive" = 1;
CREATE UNIQUE INDEX "Conversation_lastMessageId_key" ON "Conversation"("lastMessageId");
CREATE UNIQUE INDEX "Message_conversationId_sequence_key" ON "Message"("conversationId", "sequence");
CREATE INDEX "Message_conversationId_createdAt_idx" ON "Message"("conversationId", "createdAt");
CREATE INDEX "ConversationParticipant_userId_idx" ON "ConversationParticipant"("userId");
CREATE INDEX "AuditLog_actorId_createdAt_idx" ON "AuditLog"("actorId");
"""


def test_rendered_ddl_of_a_prisma_like_schema(migration, pg, snapshot):
    m = migration(PRISMA_LIKE)
    checked = validate(m.write_spec(), {})
    plan = build_plan(checked.mapping, TargetState(schema_exists=False))

    ddl = "\n\n".join(
        statement.as_string(None) + ";" for step in plan.steps for statement in render.postgres_sql(step)
    )

    assert ddl == snapshot
    m.apply()  # and PostgreSQL accepts every statement of it
    assert tables(pg) == ["AuditLog", "Conversation", "ConversationParticipant", "Message", "User"]
