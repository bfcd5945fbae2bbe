"""`etl plan --sql`: the SQL apply runs, in its order, printed without running it."""

from __future__ import annotations

import datetime
import re

import psycopg
from typer.testing import CliRunner

from etl.cli import app
from etl.pipeline import apply, check, plan_for
from etl.run.plan_sql import GUARD_READS_APART, Statement, plan_statements, typed_candidates

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
    # Each table's load on both paths, and when which runs.
    assert text.count("-- DuckDB, typed read:\nINSERT INTO dst") == 2
    assert text.count("-- DuckDB, SQLite path:\nINSERT INTO dst") == 2
    assert '-- "author": DuckDB\'s typed read runs if DuckDB reads every value' in text
    assert pg.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == (0,)

    # The PostgreSQL statements build exactly the schema apply builds.
    with pg.transaction():
        for statement in statements:
            if statement.engine == "postgresql" and '"etl".' not in statement.text:  # not etl's records
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


# --- `etl plan --sql` is exactly what apply sends -------------------------------------------------

# What apply sends that plan --sql leaves out, and says so in its first lines: the session's own
# statements (attaching, the transaction, DuckDB's settings and catalog cache, the lock, the typed
# scan's look at the source's catalog) and etl's records of the run in its etl schema.
NOT_SHOWN = re.compile(
    r"ATTACH |DESCRIBE |BEGIN TRANSACTION$|COMMIT$|SET |RESET |CALL pg_clear_cache\(\)$"
    r"|SELECT function_name FROM duckdb_functions\(\)"
    r"|SELECT \* FROM sqlite_query\('src', 'SELECT (name, type FROM pragma_table_info|m\.name AS table_name)"
    r"|SELECT table_name, column_name, data_type FROM duckdb_columns\(\)"
    r"|SELECT pg_try_advisory_xact_lock\(|SELECT pg_backend_pid\(\)$"
    r"|SELECT COALESCE\(json_agg\(q\), '\[\]'\)::text FROM \((SELECT (current_setting|set_config)|SELECT 1 FROM pg_namespace"
    r"|SELECT c\.relname|SELECT t\.relname|SELECT t\.typname)"
    r'|INSERT INTO "etl"\."(runs|desired|fingerprints|rejects|set_aside)"|DELETE FROM "etl"\."(fingerprints|set_aside)"'
    # recording a table by ranges: its key's statistics, its ranges staged for the record
    r'|ANALYZE "|CREATE TEMP TABLE "etl_ranges"|INSERT INTO dst\.pg_temp\.'
    r"|SELECT set_config\('etl\.desired_catalog', "  # the desired catalog's record, sent in parts
)

# The comment lines of plan --sql that stand for statements only the run decides, and what each
# may stand for (None: it stands for nothing apply sends).
RUN_TIME = {
    "DROP SCHEMA ... CASCADE of each copy": re.compile(r'DROP SCHEMA IF EXISTS "etl_history_\d+" CASCADE$'),
    "then, as the target's catalog describes": re.compile(
        r"SELECT (i\.relname|a\.attname|c\.conname|pg_get_serial_sequence|n\.nspname|last_value|t\.tgname)"
        r'|CREATE (UNIQUE )?INDEX .* ON "etl_history_|ALTER (TABLE|SEQUENCE) .*"etl_history_'
        r'|CREATE SEQUENCE "etl_history_|INSERT INTO "etl"\."history"'
    ),
    "the rows of view": re.compile(r"SELECT \* FROM postgres_query\('dst', 'SELECT "),
}


def _expected(planned, typed: tuple[str, ...]):
    """The planned statements on the path apply took for each table."""
    return [s for s in planned if not s.path or (s.path == "typed") == (s.source in typed)]


def assert_sent_as_planned(planned, sent) -> None:
    """`sent` (what apply told its observer) equals `planned` (plan_statements) in order, but for
    NOT_SHOWN statements and the statements a RUN_TIME comment stands for."""
    sent = [(s.engine, s.text) for s in sent if not NOT_SHOWN.match(s.text)]
    at = 0
    for statement in planned:
        if statement.engine == "":
            pattern = next((p for start, p in RUN_TIME.items() if statement.text.startswith(start)), None)
            while pattern is not None and at < len(sent) and pattern.match(sent[at][1]):
                at += 1
            continue
        assert at < len(sent), f"planned but not sent: {statement.text[:300]}"
        assert sent[at] == (statement.engine, statement.text), f"statement {at}"
        at += 1
    assert sent[at:] == [], "sent but not planned"


def applied_as_planned(m, body: str = "", **options):
    """Plan, apply with an observer; assert apply sent what plan_statements printed. Returns the
    result and the planned statements."""
    checked = m.check(body)
    plan = plan_for(checked)
    scans = typed_candidates(checked.spec.source, plan)
    sent: list[Statement] = []
    result = apply(checked, plan, on_statement=sent.append, **options)
    with psycopg.connect(m.url) as conn:
        (started,) = conn.execute(
            "SELECT started_at FROM etl.runs WHERE id = %s", (result.run_id,)
        ).fetchone()
    started_at = started.astimezone(datetime.UTC).isoformat()  # the run's start: bound at run time
    planned = _expected(plan_statements(plan, scans, started_at=started_at), result.typed)
    assert_sent_as_planned(planned, sent)
    return result, planned


def test_a_fresh_load_through_the_typed_read_sends_what_plan_sql_prints(migration):
    result, planned = applied_as_planned(migration(SOURCE))
    assert result.typed == ("author", "my post")
    assert [s.path for s in planned if s.engine == "duckdb" and s.text.startswith("INSERT")] == [
        "typed",
        "typed",
    ]


def test_a_fresh_load_of_a_table_recorded_by_ranges_sends_what_plan_sql_prints(migration, pg):
    # Enough rows for ranges of leaf pages: the apply gathers the key's statistics and stages
    # the ranges for etl.fingerprints, records plan --sql leaves out.
    m = migration(
        SOURCE + "CREATE TABLE big (id INTEGER PRIMARY KEY, code TEXT);"
        "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 20000) "
        "INSERT INTO big SELECT i, printf('code-%08d', i) FROM r;"
    )
    applied_as_planned(m)
    (ranges,) = pg.execute("SELECT ranges FROM etl.fingerprints WHERE table_name = 'big'").fetchone()
    assert ranges is not None


def test_a_fresh_load_through_sqlite_sends_what_plan_sql_prints(migration):
    # A datetime with a fraction of a second: not the text DuckDB's typed read is proven to read
    # exactly, so its proof fails and the table is read through SQLite.
    m = migration(
        SOURCE + "CREATE TABLE note (id INTEGER PRIMARY KEY, at DATETIME);"
        "INSERT INTO note VALUES (1, '2025-01-01 10:00:00'), (2, '2025-01-01 10:00:00.5');"
    )
    result, planned = applied_as_planned(m)
    assert "note" not in result.typed
    assert any(s.path == "sqlite" and s.source == "note" for s in planned)


def test_a_fresh_load_rejecting_rows_sends_what_plan_sql_prints(migration):
    m = migration(
        SOURCE + "CREATE TABLE n (id INTEGER PRIMARY KEY, v INTEGER); INSERT INTO n VALUES (1, 2), (2, 'x');"
    )
    result, planned = applied_as_planned(m, "tables:\n  n:\n    on_error: reject\n")
    assert len(result.rejects) == 1
    assert any(s.text.startswith("SELECT ") and "problem IS NOT NULL" in s.text for s in planned)


def test_a_fresh_load_with_a_view_sends_what_plan_sql_prints(migration):
    m = migration(
        SOURCE + 'CREATE VIEW busy AS SELECT author_id, count(*) AS posts FROM "my post" GROUP BY author_id;'
    )
    view = 'views: {busy: {sql: \'SELECT "author_id", count(*) AS "posts" FROM "my post" GROUP BY "author_id"\'}}\n'
    result, planned = applied_as_planned(m, view)
    assert result.verified
    assert any('CREATE VIEW "public"."busy"' in s.text for s in planned)
    assert any(s.engine == "" and s.text.startswith('the rows of view "busy"') for s in planned)


def test_an_upsert_and_an_append_send_what_plan_sql_prints(migration):
    m = migration(SOURCE)
    modes = 'tables: {author: {mode: upsert}, "my post": {mode: append, watermark: id}}\n'
    m.apply(modes)
    m.change_source(
        "INSERT INTO author (email) VALUES ('c@x'); UPDATE author SET name = 'Z' WHERE id = 1;"
        "INSERT INTO \"my post\" VALUES (3, 1, 'late', 2.5);"
    )
    result, planned = applied_as_planned(m, modes)
    assert result.changes == {"author": (1, 1, 0), "my post": (1, 0, 0)}
    texts = [s.text for s in planned]
    assert sum(t.startswith("CREATE TEMP TABLE etl_written_") for t in texts) == 2  # rows kept to verify
    assert any(t.startswith("CREATE OR REPLACE TEMP TABLE etl_mark AS") for t in texts)


def test_a_resync_of_inserts_updates_and_deletes_sends_what_plan_sql_prints(migration):
    m = migration(SOURCE)
    m.apply()
    m.change_source(
        "INSERT INTO author (email) VALUES ('c@x'); UPDATE author SET name = 'Z' WHERE id = 1;"
        'DELETE FROM "my post" WHERE id = 2;'
    )
    result, planned = applied_as_planned(m, allow_destructive=True)
    assert result.changes == {"author": (1, 1, 0), "my post": (0, 0, 1)}
    texts = [s.text for s in planned]
    assert any(t.startswith('UPDATE "public"."author" AS t SET') for t in texts)
    assert any(t.startswith('DELETE FROM "public"."my post" AS t USING') for t in texts)
    assert any(t.startswith('CREATE TABLE "etl_history_') for t in texts)  # the copy kept for rollback


# A table of a few dozen leaf pages: one changed row changes one page, and the table is compared
# and synced in that page's rowid range only.
LOG = """
CREATE TABLE log (id INTEGER PRIMARY KEY, note TEXT NOT NULL);
WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 5000)
INSERT INTO log SELECT i, printf('note-%08d', i) FROM r;
"""


def test_a_resync_by_ranges_sends_what_plan_sql_prints(migration):
    m = migration(SOURCE + LOG)
    m.apply()
    m.change_source("UPDATE log SET note = 'changed' WHERE id = 2500; DELETE FROM log WHERE id = 5000")
    result, planned = applied_as_planned(m, allow_destructive=True)
    assert result.changes == {"log": (0, 1, 1)}
    texts = [s.text for s in planned]
    # First the table is locked against other writers; its recorded state is read again beside.
    assert texts[0] == 'LOCK TABLE "public"."log" IN EXCLUSIVE MODE'
    assert planned[1].engine == "" and texts[1].startswith(f"{GUARD_READS_APART} (SELECT f.table_name")
    # Both sides are read in the changed ranges, and verification sums the target's in them.
    assert any(
        t.startswith("CREATE OR REPLACE TEMP TABLE etl_t AS") and 'JOIN "public"."log" AS etl_row ON' in t
        for t in texts
    )
    assert any(t.startswith("SELECT count(*)") and 'JOIN "public"."log" AS etl_row ON' in t for t in texts)


def test_a_schema_change_sends_what_plan_sql_prints(migration):
    m = migration(SOURCE)
    m.apply()
    m.change_source("ALTER TABLE author ADD COLUMN born TEXT; UPDATE author SET born = '1815' WHERE id = 1;")
    check = 'tables: {"my post": {checks: [{name: score_check, sql: "score > 0"}]}}\n'
    result, planned = applied_as_planned(m, check, allow_destructive=True)
    texts = [s.text for s in planned]
    assert any(t.startswith('ALTER TABLE "public"."author" ADD COLUMN "born"') for t in texts)
    assert any(t.startswith('ALTER TABLE "public"."my post" ADD CONSTRAINT "score_check"') for t in texts)


def test_plan_sql_of_a_resync_reads_as_reviewed(migration, snapshot):
    """The reviewed text of a re-sync: the copies kept for rollback, each table's row sync with
    the statements that read the source on both paths, the delete, and verification."""
    m = migration(SOURCE)
    spec = m.write_spec()
    m.apply()
    m.change_source(
        "INSERT INTO author (email) VALUES ('c@x'); UPDATE author SET name = 'Z' WHERE id = 1;"
        'DELETE FROM "my post" WHERE id = 2;'
    )
    result = runner.invoke(app, ["plan", str(spec), "--sql"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == snapshot
