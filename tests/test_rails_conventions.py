"""A Rails app's SQLite database moved as README's "Moving a Rails app" says arrives in the schema
Rails' PostgreSQL adapter would have made for the same migrations.

Ruby is not here, so Rails is not the judge (as Django and Prisma are in test_django_in_sync.py and
test_prisma_in_sync.py): the SQLite side is what Rails 7's SQLite adapter writes into
db/structure.sql (`schema_migrations`, `ar_internal_metadata`, `integer PRIMARY KEY AUTOINCREMENT
NOT NULL`, `varchar`, `datetime(6)` holding UTC text, booleans as 1/0, `json`, `t.references` with
`CONSTRAINT "fk_rails_<hash>"` and an `index_<table>_on_<column>`), and the PostgreSQL side is the
DDL its PostgreSQL adapter documents for them (`bigserial` ids, `bigint` references, `character
varying`, `timestamp(6) without time zone`, `json`, `boolean DEFAULT false`), written below.
"""

from __future__ import annotations

import datetime
import decimal
import re
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from etl.cli import app

# As Rails 7's SQLite adapter writes it (db/structure.sql), with rows a Rails app stores: UTC
# datetimes as text with microseconds, booleans as 1/0, JSON as text, decimals by NUMERIC affinity.
RAILS_SQLITE = """
CREATE TABLE "schema_migrations" ("version" varchar NOT NULL PRIMARY KEY);
CREATE TABLE "ar_internal_metadata" ("key" varchar NOT NULL PRIMARY KEY, "value" varchar,
  "created_at" datetime(6) NOT NULL, "updated_at" datetime(6) NOT NULL);
CREATE TABLE "users" ("id" integer PRIMARY KEY AUTOINCREMENT NOT NULL, "email" varchar NOT NULL,
  "name" varchar, "admin" boolean DEFAULT 0 NOT NULL, "settings" json,
  "created_at" datetime(6) NOT NULL, "updated_at" datetime(6) NOT NULL);
CREATE UNIQUE INDEX "index_users_on_email" ON "users" ("email");
CREATE TABLE "posts" ("id" integer PRIMARY KEY AUTOINCREMENT NOT NULL, "user_id" integer NOT NULL,
  "title" varchar NOT NULL, "body" text, "price" decimal(10,2), "published_on" date,
  "created_at" datetime(6) NOT NULL, "updated_at" datetime(6) NOT NULL, CONSTRAINT "fk_rails_5b5ddfd518"
FOREIGN KEY ("user_id")
  REFERENCES "users" ("id")
);
CREATE INDEX "index_posts_on_user_id" ON "posts" ("user_id");
CREATE TABLE "comments" ("id" integer PRIMARY KEY AUTOINCREMENT NOT NULL, "post_id" integer NOT NULL,
  "body" text NOT NULL, "created_at" datetime(6) NOT NULL, "updated_at" datetime(6) NOT NULL,
  CONSTRAINT "fk_rails_2fd19c0db7"
FOREIGN KEY ("post_id")
  REFERENCES "posts" ("id")
 ON DELETE CASCADE);
CREATE INDEX "index_comments_on_post_id" ON "comments" ("post_id");
INSERT INTO "schema_migrations" (version) VALUES ('20250807100000'), ('20250807100100'), ('20250807100200');
INSERT INTO "ar_internal_metadata" VALUES
  ('environment', 'production', '2025-08-07 10:00:00.123456', '2025-08-07 10:00:00.123456');
INSERT INTO "users" VALUES
  (1, 'ana@example.com', 'Ana', 1, '{"theme": "dark", "langs": ["pt", "en"]}',
   '2025-03-30 01:30:00.000001', '2025-10-26 02:30:00.999999'),
  (2, 'bo@example.com', NULL, 0, NULL, '2025-08-07 10:00:00', '2025-08-07 10:00:00');
INSERT INTO "posts" VALUES
  (1, 1, 'Hello', 'First post', '12.34', '2025-08-07', '2025-08-07 10:00:00.5', '2025-08-07 10:00:00.5'),
  (3, 2, 'Later', NULL, NULL, NULL, '2025-08-08 10:00:00', '2025-08-08 10:00:00');
INSERT INTO "comments" VALUES (1, 1, 'Nice', '2025-08-07 11:00:00', '2025-08-07 11:00:00');
INSERT INTO "comments" VALUES (2, 3, 'Gone', '2025-08-07 11:00:00', '2025-08-07 11:00:00');
DELETE FROM "comments" WHERE id = 2;
"""

# The same migrations as Rails 7's PostgreSQL adapter runs them (create_table: `bigserial primary
# key`; t.references: bigint, an index, `fk_rails_<hash>`; t.string: character varying;
# t.datetime / t.timestamps: timestamp(6) without time zone).
RAILS_POSTGRESQL = """
CREATE TABLE schema_migrations (version character varying NOT NULL PRIMARY KEY);
CREATE TABLE ar_internal_metadata (key character varying NOT NULL PRIMARY KEY, value character varying,
  created_at timestamp(6) without time zone NOT NULL, updated_at timestamp(6) without time zone NOT NULL);
CREATE TABLE users (id bigserial PRIMARY KEY, email character varying NOT NULL, name character varying,
  admin boolean DEFAULT false NOT NULL, settings json,
  created_at timestamp(6) without time zone NOT NULL, updated_at timestamp(6) without time zone NOT NULL);
CREATE UNIQUE INDEX index_users_on_email ON users USING btree (email);
CREATE TABLE posts (id bigserial PRIMARY KEY, user_id bigint NOT NULL, title character varying NOT NULL,
  body text, price numeric(10,2), published_on date,
  created_at timestamp(6) without time zone NOT NULL, updated_at timestamp(6) without time zone NOT NULL);
CREATE INDEX index_posts_on_user_id ON posts USING btree (user_id);
ALTER TABLE posts ADD CONSTRAINT fk_rails_5b5ddfd518 FOREIGN KEY (user_id) REFERENCES users(id);
CREATE TABLE comments (id bigserial PRIMARY KEY, post_id bigint NOT NULL, body text NOT NULL,
  created_at timestamp(6) without time zone NOT NULL, updated_at timestamp(6) without time zone NOT NULL);
CREATE INDEX index_comments_on_post_id ON comments USING btree (post_id);
ALTER TABLE comments ADD CONSTRAINT fk_rails_2fd19c0db7 FOREIGN KEY (post_id) REFERENCES posts(id)
  ON DELETE CASCADE;
"""


def readme_spec() -> str:
    """The spec README's "Moving a Rails app" shows, reading the SQLite file beside it."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Moving a Rails app", 1)[1].split("\n## ", 1)[0]
    spec = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert "sqlite: storage/production.sqlite3" in spec
    return spec.replace("sqlite: storage/production.sqlite3", "sqlite: production.sqlite3")


SCHEMA_FACTS = """
SELECT 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
       || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
       || coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '')
       || CASE a.attidentity WHEN '' THEN '' ELSE ' IDENTITY' END
       || coalesce(' sequence ' || pg_get_serial_sequence(format('%I', c.relname), a.attname), '')
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'constraint ' || c.relname || ' ' || k.conname || ' ' || pg_get_constraintdef(k.oid)
FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public'
UNION ALL
SELECT 'index ' || pg_get_indexdef(i.indexrelid)
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conindid = i.indexrelid)
UNION ALL
SELECT format('sequence %s %s start %s increment %s min %s max %s cache %s cycle %s', c.relname,
              format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle)
FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public'
"""


def schema_facts(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {row[0] for row in conn.execute(SCHEMA_FACTS)}


def foreign_key_unnamed(fact: str) -> str:
    """SQLite does not report a foreign key's constraint name (Rails' `fk_rails_<hash>`), so etl
    names it `<table>_<column>_fkey`; Rails finds foreign keys by table and column, not by name."""
    return re.sub(r"^(constraint \w+) \w+ (FOREIGN KEY)", r"\1 \2", fact)


@pytest.fixture
def moved(tmp_path, tmp_sqlite, two_databases) -> tuple[str, str]:
    target, reference = two_databases
    tmp_sqlite(RAILS_SQLITE, name="production.sqlite3")
    spec = tmp_path / "rails.yaml"
    spec.write_text(readme_spec(), encoding="utf-8")
    result = CliRunner().invoke(app, ["apply", str(spec), "--yes", "--target", target])
    assert result.exit_code == 0, result.output
    with psycopg.connect(reference, autocommit=True) as conn:
        conn.execute(RAILS_POSTGRESQL)  # type: ignore[call-overload]
    return target, reference


def test_the_schema_is_the_one_rails_postgresql_adapter_makes(moved):
    target, reference = moved
    ours = sorted(foreign_key_unnamed(f) for f in schema_facts(target))
    theirs = sorted(foreign_key_unnamed(f) for f in schema_facts(reference))
    assert ours == theirs
    assert schema_facts(target) != schema_facts(reference)  # the foreign keys' names


def test_values_arrive_as_rails_reads_them_and_ids_continue(moved):
    target, _ = moved
    with psycopg.connect(target) as conn:
        users = conn.execute(
            "SELECT id, admin, settings, created_at, updated_at FROM users ORDER BY id"
        ).fetchall()
        assert users == [
            (
                1,
                True,
                {"theme": "dark", "langs": ["pt", "en"]},
                datetime.datetime(2025, 3, 30, 1, 30, 0, 1),  # UTC, as Rails wrote it: no zone shift
                datetime.datetime(2025, 10, 26, 2, 30, 0, 999999),
            ),
            (2, False, None, datetime.datetime(2025, 8, 7, 10), datetime.datetime(2025, 8, 7, 10)),
        ]
        settings_text = conn.execute("SELECT settings::text FROM users WHERE id = 1").fetchone()
        assert settings_text == ('{"theme": "dark", "langs": ["pt", "en"]}',)  # json keeps the text
        assert conn.execute("SELECT price FROM posts ORDER BY id").fetchall() == [
            (decimal.Decimal("12.34"),),
            (None,),
        ]
        assert conn.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall() == [
            ("20250807100000",),
            ("20250807100100",),
            ("20250807100200",),
        ]
        # What Rails' INSERT ... RETURNING "id" gets: past the largest id, and past SQLite's
        # AUTOINCREMENT counter where the last comment was deleted.
        new_ids = [
            conn.execute(
                "INSERT INTO users (email, created_at, updated_at) VALUES ('cy@example.com', now(), now()) "
                "RETURNING id"
            ).fetchone(),
            conn.execute(
                "INSERT INTO posts (user_id, title, created_at, updated_at) VALUES (1, 'New', now(), now()) "
                "RETURNING id"
            ).fetchone(),
            conn.execute(
                "INSERT INTO comments (post_id, body, created_at, updated_at) VALUES (1, 'Hi', now(), now()) "
                "RETURNING id"
            ).fetchone(),
        ]
        assert new_ids == [(3,), (4,), (3,)]
        assert conn.execute("SELECT admin FROM users WHERE id = 3").fetchone() == (False,)  # its default
