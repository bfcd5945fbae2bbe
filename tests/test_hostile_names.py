"""Names are data, never SQL: quotes, spaces, keywords, comment markers, `x"; DROP TABLE users; --`,
unicode and mixed case arrive exactly as they are, and nothing else happens to the target.

SQLite accepts all of these names; so does PostgreSQL, when they are quoted. Each one passes
through every layer (introspection, SQLite's SELECT, DuckDB's INSERT, PostgreSQL's DDL, the
identity's sequence), so one unquoted use anywhere would show up here as a syntax error, as a
wrong name, or as a dropped canary table.
"""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

EVIL = 'x"; DROP TABLE users; --'  # a table name
EVIL_INDEX = 'i"dx; DROP TABLE users; --'

SOURCE = '''
CREATE TABLE "user" (
    "id ""quoted""" INTEGER PRIMARY KEY AUTOINCREMENT,
    "select" TEXT NOT NULL,
    "Mixed Case" TEXT,
    "名前" TEXT,
    "a'b" TEXT NOT NULL DEFAULT 'it''s',
    UNIQUE ("select")
);
CREATE TABLE "x""; DROP TABLE users; --" (
    "order" INTEGER NOT NULL REFERENCES "user"("id ""quoted""") ON DELETE CASCADE,
    ";--" TEXT NOT NULL,
    "with space" TEXT,
    "🎉" TEXT,
    PRIMARY KEY ("order", ";--")
);
CREATE TABLE `order` (
    [id] INTEGER PRIMARY KEY,
    [user] INTEGER,
    ";--" TEXT,
    FOREIGN KEY ([user], ";--") REFERENCES "x""; DROP TABLE users; --" ("order", ";--") ON DELETE SET NULL
);
CREATE INDEX "i""dx; DROP TABLE users; --" ON "x""; DROP TABLE users; --" ("with space" DESC, "🎉");
CREATE UNIQUE INDEX "Mixed ""Idx""" ON "user" (lower("Mixed Case")) WHERE "名前" IS NOT NULL;
CREATE INDEX [bracket idx] ON `order` ([user]) WHERE ";--" <> 'x''; DROP TABLE users; --';

INSERT INTO "user" ("select", "Mixed Case", "名前") VALUES
    ('Robert''); DROP TABLE users; --', 'Bobby', 'ボビー'),
    ('"quoted"', 'QUOTE', NULL);
INSERT INTO "x""; DROP TABLE users; --" VALUES (1, '--', 'a b', '🎉🎉'), (2, ';', NULL, NULL);
INSERT INTO `order` VALUES (10, 1, '--'), (11, 2, ';'), (12, NULL, NULL);
'''


def relations(pg: psycopg.Connection, schema: str) -> list[str]:
    """Tables and views in `schema`."""
    rows = pg.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relkind IN ('r', 'v', 'm', 'f', 'p') ORDER BY c.relname",
        (schema,),
    ).fetchall()
    return [r[0] for r in rows]


def everything(pg: psycopg.Connection) -> set[tuple[str, str, str]]:
    """(schema, name, kind) of every relation outside PostgreSQL's own schemas."""
    rows = pg.execute(
        "SELECT n.nspname, c.relname, c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'"
    ).fetchall()
    return set(rows)


def columns(pg: psycopg.Connection, schema: str, table: str) -> list[str]:
    rows = pg.execute(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
        (schema, table),
    ).fetchall()
    return [r[0] for r in rows]


def constraints(pg: psycopg.Connection, schema: str, table: str) -> dict[str, str]:
    rows = pg.execute(
        "SELECT k.conname, pg_get_constraintdef(k.oid) FROM pg_constraint k"
        " JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
        # PostgreSQL 18 lists NOT NULL as constraints too (contype 'n'); they are checked elsewhere.
        " WHERE n.nspname = %s AND c.relname = %s AND k.contype <> 'n' ORDER BY k.conname",
        (schema, table),
    ).fetchall()
    return dict(rows)


def index_names(pg: psycopg.Connection, schema: str) -> list[str]:
    rows = pg.execute(
        "SELECT indexname FROM pg_indexes WHERE schemaname = %s ORDER BY indexname", (schema,)
    ).fetchall()
    return [r[0] for r in rows]


def index_predicate(pg: psycopg.Connection, schema: str, index: str) -> str:
    row = pg.execute(
        "SELECT pg_get_expr(i.indpred, i.indrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
        (schema, index),
    ).fetchone()
    assert row is not None
    return row[0]


def rows(pg: psycopg.Connection, schema: str, table: str) -> list[tuple]:
    query = sql.SQL("SELECT * FROM {} ORDER BY 1, 2").format(sql.Identifier(schema, table))
    return pg.execute(query).fetchall()


@pytest.fixture
def canary(pg: psycopg.Connection) -> None:
    """A table in the target that a name-turned-SQL would drop."""
    pg.execute("CREATE TABLE users (id int PRIMARY KEY, name text)")
    pg.execute("INSERT INTO users VALUES (1, 'still here')")


def test_hostile_names_arrive_exactly_and_nothing_else_happens(migration, pg, canary):
    before = everything(pg)

    migration(SOURCE).apply()

    assert relations(pg, "public") == sorted(["order", "user", EVIL, "users"])
    assert rows(pg, "public", "users") == [(1, "still here")]
    assert everything(pg) - before == {
        ("public", "user", "r"),
        ("public", EVIL, "r"),
        ("public", "order", "r"),
        ("public", "user_pkey", "i"),
        ("public", "user_select_key", "i"),
        ("public", 'x"; DROP TABLE users; --_pkey', "i"),
        ("public", "order_pkey", "i"),
        ("public", EVIL_INDEX, "i"),
        ("public", 'Mixed "Idx"', "i"),
        ("public", "bracket idx", "i"),
        ("public", 'user_id "quoted"_seq', "S"),  # the identities' sequences
        ("public", "order_id_seq", "S"),
        ("etl", "runs", "r"),  # etl's record of its runs, of the rows they rejected
        ("etl", "runs_pkey", "i"),
        ("etl", "runs_id_seq", "S"),
        ("etl", "rejects", "r"),
        ("etl", "rejects_pkey", "i"),
        ("etl", "rejects_id_seq", "S"),
        ("etl", "history", "r"),  # and of what they kept for etl rollback
        ("etl", "history_pkey", "i"),
        ("etl", "history_id_seq", "S"),
        ("etl", "desired", "r"),  # and of the schema it made, for the next plan
        ("etl", "desired_pkey", "i"),
        ("etl", "fingerprints", "r"),  # and of the state each verified table was left in
        ("etl", "fingerprints_pkey", "i"),
        ("etl", "set_aside", "r"),  # and of the rows a check set aside, until they change
        ("etl", "set_aside_pkey", "i"),
    }
    assert before <= everything(pg)

    assert columns(pg, "public", "user") == ['id "quoted"', "select", "Mixed Case", "名前", "a'b"]
    assert columns(pg, "public", EVIL) == ["order", ";--", "with space", "🎉"]
    assert columns(pg, "public", "order") == ["id", "user", ";--"]

    assert constraints(pg, "public", "user") == {
        "user_pkey": 'PRIMARY KEY ("id ""quoted""")',
        "user_select_key": 'UNIQUE ("select")',
    }
    assert constraints(pg, "public", EVIL) == {
        'x"; DROP TABLE users; --_order_fkey': 'FOREIGN KEY ("order") REFERENCES "user"("id ""quoted""") ON DELETE CASCADE',
        'x"; DROP TABLE users; --_pkey': 'PRIMARY KEY ("order", ";--")',
    }
    assert constraints(pg, "public", "order") == {
        "order_user_;--_fkey": (
            'FOREIGN KEY ("user", ";--") REFERENCES "x""; DROP TABLE users; --"("order", ";--") ON DELETE SET NULL'
        ),
        "order_pkey": "PRIMARY KEY (id)",
    }
    assert index_names(pg, "public") == sorted(
        [
            'Mixed "Idx"',
            "bracket idx",
            EVIL_INDEX,
            "order_pkey",
            "user_pkey",
            "user_select_key",
            'x"; DROP TABLE users; --_pkey',
            "users_pkey",
        ]
    )
    assert index_predicate(pg, "public", 'Mixed "Idx"') == '("名前" IS NOT NULL)'
    assert index_predicate(pg, "public", "bracket idx") == "(\";--\" <> 'x''; DROP TABLE users; --'::text)"

    assert rows(pg, "public", "user") == [
        (1, "Robert'); DROP TABLE users; --", "Bobby", "ボビー", "it's"),
        (2, '"quoted"', "QUOTE", None, "it's"),
    ]
    assert rows(pg, "public", EVIL) == [(1, "--", "a b", "🎉🎉"), (2, ";", None, None)]
    assert rows(pg, "public", "order") == [(10, 1, "--"), (11, 2, ";"), (12, None, None)]

    # The identity continues after the largest id, and the constraints work on these names.
    id_ = sql.Identifier('id "quoted"')
    new = pg.execute(sql.SQL('INSERT INTO "user" ("select") VALUES (\'new\') RETURNING {}').format(id_))
    assert new.fetchone() == (3,)
    with pytest.raises(psycopg.errors.UniqueViolation):  # lower("Mixed Case") where "名前" IS NOT NULL
        pg.execute('INSERT INTO "user" ("select", "Mixed Case", "名前") VALUES (\'b\', \'BOBBY\', \'x\')')
    pg.execute(sql.SQL('DELETE FROM "user" WHERE {} = 1').format(id_))  # ON DELETE CASCADE
    assert rows(pg, "public", EVIL) == [(2, ";", None, None)]
    assert rows(pg, "public", "order") == [(10, None, None), (11, 2, ";"), (12, None, None)]  # SET NULL


def test_hostile_names_in_a_hostile_schema_under_snake_case(migration, pg, canary):
    schema = 'etl"; DROP TABLE users; --'
    m = migration(SOURCE)
    m.spec_path.write_text(
        f"version: 1\nsource:\n  sqlite: {m.source.name}\n"
        f"target:\n  url: {m.url}\n  schema: '{schema}'\nnaming: snake\n",
        encoding="utf-8",
    )

    m.apply()

    assert relations(pg, "public") == ["users"]
    assert rows(pg, "public", "users") == [(1, "still here")]
    assert relations(pg, schema) == sorted(["order", "user", 'x";_drop_table_users;_'])
    assert columns(pg, schema, "user") == ['id_"quoted"', "select", "mixed_case", "名前", "a'b"]
    assert columns(pg, schema, 'x";_drop_table_users;_') == ["order", ";_", "with_space", "🎉"]
    assert constraints(pg, schema, "order") == {
        "order_pkey": "PRIMARY KEY (id)",
        "order_user_;__fkey": (
            'FOREIGN KEY ("user", ";_") REFERENCES "etl""; DROP TABLE users; --"."x"";_drop_table_users;_"'
            '("order", ";_") ON DELETE SET NULL'
        ),
    }
    assert rows(pg, schema, "order") == [(10, 1, "--"), (11, 2, ";"), (12, None, None)]
    new = pg.execute(
        sql.SQL("INSERT INTO {} (\"select\") VALUES ('new') RETURNING {}").format(
            sql.Identifier(schema, "user"), sql.Identifier('id_"quoted"')
        )
    )
    assert new.fetchone() == (3,)  # the identity's sequence was found in the hostile schema too


def test_rollback_in_a_hostile_schema_restores_rows_keys_and_sequences(migration, pg, canary):
    from typer.testing import CliRunner

    from etl.cli import app

    schema = 'etl"; DROP TABLE users; --'
    m = migration(SOURCE)
    m.spec_path.write_text(
        f"version: 1\nsource:\n  sqlite: {m.source.name}\ntarget:\n  url: {m.url}\n  schema: '{schema}'\n",
        encoding="utf-8",
    )
    m.apply()
    sequence = sql.SQL("SELECT last_value, is_called FROM {}").format(
        sql.Identifier(schema, 'user_id "quoted"_seq')
    )

    def state() -> tuple:
        tables = relations(pg, schema)
        return (
            tables,
            {t: (rows(pg, schema, t), constraints(pg, schema, t)) for t in tables},
            index_names(pg, schema),
            pg.execute(sequence).fetchone(),
        )

    before = state()
    assert before[3] == (2, True)
    m.change_source(
        '''INSERT INTO "user" ("select") VALUES ('third'); DELETE FROM "user" WHERE "id ""quoted""" = 3;
        INSERT INTO "user" ("select") VALUES ('fourth'); DELETE FROM "x""; DROP TABLE users; --" WHERE "order" = 2;
        UPDATE `order` SET [user] = NULL, ";--" = NULL WHERE id = 11;'''
    )
    m.apply(allow_destructive=True)
    assert pg.execute(sequence).fetchone() == (4, True)
    done = CliRunner().invoke(app, ["rollback", str(m.spec_path), "--yes"], catch_exceptions=False)
    assert done.exit_code == 0, done.stderr
    assert state() == before
    assert rows(pg, "public", "users") == [(1, "still here")]
