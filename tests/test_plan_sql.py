"""`etl plan --sql`: the SQL apply runs, in its order, printed without running it."""

from __future__ import annotations

import psycopg
from typer.testing import CliRunner

from etl.cli import app
from etl.pipeline import check, plan_for
from etl.run.plan_sql import plan_statements

runner = CliRunner()

SOURCE = """
CREATE TABLE author (id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT NOT NULL UNIQUE, name TEXT DEFAULT 'anon');
CREATE TABLE "my post" (id INTEGER PRIMARY KEY, author_id INTEGER NOT NULL REFERENCES author(id) ON DELETE CASCADE,
                        title TEXT NOT NULL, score REAL);
CREATE INDEX post_by_author ON "my post"(author_id);
INSERT INTO author (email, name) VALUES ('a@x', 'Ada'), ('b@x', NULL);
INSERT INTO "my post" VALUES (1, 1, 'hello', 1.5), (2, 2, 'again', NULL);
"""

CATALOG = """
SELECT 'column', c.relname, a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull::text
       || ' ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '') || ' ' || a.attidentity::text
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'constraint', conrelid::regclass::text, conname || ' ' || pg_get_constraintdef(oid)
FROM pg_constraint WHERE connamespace = 'public'::regnamespace
UNION ALL
SELECT 'index', tablename, indexdef FROM pg_indexes WHERE schemaname = 'public'
ORDER BY 1, 2, 3
"""


def catalog(pg: psycopg.Connection) -> list[tuple]:
    return pg.execute(CATALOG).fetchall()


def test_plan_sql_prints_the_ddl_and_loads_in_the_order_apply_runs_them(migration, pg, pg_url):
    m = migration(SOURCE)
    spec = m.write_spec()
    result = runner.invoke(app, ["plan", str(spec), "--sql"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    statements = plan_statements(plan_for(check(spec, {})))
    for statement in statements:
        assert statement.text in result.stdout
    text = result.stdout
    # In apply's order: the tables are created, loaded (parents first), then given their keys.
    order = [
        'CREATE TABLE "public"."author"',
        'CREATE TABLE "public"."my post"',
        'INSERT INTO dst."public"."author"',
        'INSERT INTO dst."public"."my post"',
        'ALTER TABLE "public"."author" ADD CONSTRAINT',
        'FOREIGN KEY ("author_id") REFERENCES "public"."author"',
    ]
    positions = [text.index(part) for part in order]
    assert positions == sorted(positions), text
    assert text.count("-- DuckDB:") == 2
    assert pg.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == (0,)

    # The PostgreSQL statements build exactly the schema apply builds.
    with pg.transaction():
        for statement in statements:
            if statement.engine == "postgresql":
                pg.execute(statement.text)
    built_from_sql = catalog(pg)
    pg.execute('DROP TABLE "my post", author')
    assert runner.invoke(app, ["apply", str(spec)], catch_exceptions=False).exit_code == 0
    assert catalog(pg) == built_from_sql
    assert len(built_from_sql) > 10


def test_plan_sql_and_json_together_are_a_usage_error(migration):
    spec = migration(SOURCE).write_spec()
    result = runner.invoke(app, ["plan", str(spec), "--sql", "--json"])
    assert result.exit_code == 2
    assert "--json and --sql" in result.stderr
