"""`etl rollback` restores the tables as they were before the last successful apply — rows,
columns, keys, indexes with their names, foreign keys, identity — from the copies that apply kept,
after showing what it will do. What it cannot restore it refuses, saying why."""

from __future__ import annotations

import pytest
from psycopg import sql
from typer.testing import CliRunner

from etl.cli import app
from etl.core.explain import step_text
from etl.postgres.catalog import read_target_catalog

runner = CliRunner()

SOURCE = """
CREATE TABLE author (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT UNIQUE);
CREATE TABLE book (id INTEGER PRIMARY KEY, author_id INTEGER NOT NULL REFERENCES author(id), title TEXT);
CREATE INDEX book_title ON book(title);
CREATE TABLE tag (label TEXT);
INSERT INTO author VALUES (1, 'Ada', 'ada@x'), (2, 'Brian', 'bwk@x');
INSERT INTO book VALUES (10, 1, 'Notes'), (11, 2, 'C');
INSERT INTO tag VALUES ('a'), ('a');
"""


def run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def contents(pg) -> dict:
    """Every row of every table in public, and the catalog: what a rollback must restore."""
    rows = {
        table: sorted(
            pg.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier("public", table))).fetchall(),
            key=repr,
        )
        for (table,) in pg.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    }
    return {"rows": rows, "tables": read_target_catalog(pg, "public").tables}


def test_rollback_restores_rows_schema_and_names_of_a_sync_run(migration, pg):
    m = migration(SOURCE)
    spec = m.write_spec()
    m.apply()
    before = contents(pg)
    m.change_source(
        "UPDATE author SET name = 'Ada L.' WHERE id = 1; DELETE FROM book WHERE id = 11;"
        "INSERT INTO author VALUES (3, 'Grace', 'gmh@x'); INSERT INTO tag VALUES ('b');"
        "ALTER TABLE book ADD COLUMN pages INTEGER;"
    )
    m.apply(allow_destructive=True)
    assert contents(pg) != before

    shown = run("rollback", str(spec), "--dry-run")
    assert shown.exit_code == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[1].startswith("Rollback of the apply that started at ")
    assert lines[2:] == [
        '~ table "public"."book": restored as it was (2 rows then, 1 row now)',
        '~ table "public"."author": the 2 rows that apply changed put back (3 rows now, 2 after)',
        '~ table "public"."tag": restored as it was (2 rows then, 3 rows now)',
        "Plan: 3 tables to restore.",
    ]
    assert contents(pg) != before  # --dry-run changed nothing

    done = run("rollback", str(spec), "--yes")
    assert done.exit_code == 0, done.stderr
    assert contents(pg) == before
    assert pg.execute("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'etl_history_%'").fetchone() == (
        0,
    )
    # The identity continues after the largest id of the restored table.
    pg.execute("INSERT INTO author (name) VALUES ('next')")
    assert pg.execute("SELECT max(id) FROM author").fetchone() == (3,)
    # The plan again shows the changes the rolled-back apply had made.
    assert "3 to change" in run("plan", str(spec)).stdout.splitlines()[-1]


def test_rollback_of_the_first_apply_drops_the_tables_it_created(migration, pg):
    m = migration(SOURCE)
    spec = m.write_spec()
    m.apply()
    done = run("rollback", str(spec), "--yes")
    assert done.exit_code == 0, done.stderr
    assert '- table "public"."book": created by that apply; dropped (2 rows now)' in done.stdout
    assert pg.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == (0,)
    again = run("rollback", str(spec), "--yes")
    assert again.exit_code == 1
    assert again.stderr.startswith(
        'Error: nothing to roll back: no successful apply to schema "public" is left'
    )


def test_rollback_restores_a_replaced_table_and_one_dropped_from_the_spec(migration, pg):
    m = migration(SOURCE)
    m.write_spec("tables:\n  author:\n    mode: replace\n")
    m.apply()
    before = contents(pg)
    m.change_source("UPDATE author SET name = 'Ada L.' WHERE id = 1;")
    m.write_spec("exclude: [tag]\ntables:\n  author:\n    mode: replace\n")
    m.apply(allow_destructive=True)
    assert pg.execute("SELECT to_regclass('public.tag')").fetchone() == (None,)
    done = run("rollback", str(m.spec_path), "--yes")
    assert done.exit_code == 0, done.stderr
    assert '+ table "public"."tag": dropped by that apply; restored (2 rows)' in done.stdout
    assert contents(pg) == before


def test_enum_columns_are_restored_with_their_type_and_default(migration, pg):
    m = migration(
        "CREATE TABLE u (id INTEGER PRIMARY KEY, role TEXT NOT NULL DEFAULT 'USER'); INSERT INTO u VALUES (1, 'ADMIN');"
    )
    body = "enums:\n  Role: [USER, ADMIN]\ntables:\n  u:\n    columns:\n      role: {type: Role}\n"
    m.apply(body)
    before = contents(pg)
    m.change_source("INSERT INTO u VALUES (2, 'GUEST')")
    m.apply(body.replace("[USER, ADMIN]", "[USER, ADMIN, GUEST]"))
    done = run("rollback", str(m.spec_path), "--yes")
    assert done.exit_code == 0, done.stderr
    assert contents(pg) == before
    # The type keeps the label the rolled-back apply added: enum types are not rolled back.
    assert pg.execute('SELECT enum_range(NULL::"Role")::text[]').fetchone() == (["USER", "ADMIN", "GUEST"],)


def test_with_retention_zero_apply_keeps_nothing_and_rollback_says_so(migration, pg):
    m = migration(SOURCE)
    spec = m.write_spec("rollback:\n  retention: 0\n")
    m.apply()
    m.change_source("UPDATE author SET name = 'x' WHERE id = 1;")
    plan = m.plan()
    assert not any("rollback" in step_text(s) for s in plan.steps)
    m.apply()
    refused = run("rollback", str(spec))
    assert refused.exit_code == 1
    assert "kept nothing to roll back to" in refused.stderr
    assert "rollback.retention was 0" in refused.stderr


def test_copies_beyond_the_retention_are_dropped(migration, pg):
    m = migration(SOURCE)
    m.write_spec("rollback:\n  retention: 2\n")
    m.apply()
    for n in range(3):
        m.change_source(f"UPDATE author SET name = 'v{n}' WHERE id = 1;")
        m.apply()
    kept = pg.execute(
        "SELECT count(DISTINCT run_started_at), count(DISTINCT kept_in) FROM etl.history"
    ).fetchone()
    assert kept == (2, 2)
    schemas = pg.execute("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'etl_history_%'").fetchone()
    assert schemas == (2,)


def test_rollback_without_yes_on_no_terminal_does_not_ask(migration, pg):
    m = migration(SOURCE)
    spec = m.write_spec()
    m.apply()
    result = run("rollback", str(spec))  # CliRunner is no terminal: no question, like apply
    assert result.exit_code == 0, result.stderr
    assert pg.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == (0,)


def test_hostile_names_are_kept_and_restored_as_names(migration, pg):
    evil = 'x"; DROP TABLE keep; --'
    m = migration(
        f"""
        CREATE TABLE keep (id INTEGER PRIMARY KEY);
        CREATE TABLE "{evil.replace('"', '""')}" (id INTEGER PRIMARY KEY, "it's" TEXT);
        CREATE INDEX "ix {evil.replace('"', '""')}" ON "{evil.replace('"', '""')}" ("it's");
        INSERT INTO keep VALUES (1);
        INSERT INTO "{evil.replace('"', '""')}" VALUES (1, 'a');
        """
    )
    spec = m.write_spec()
    m.apply()
    before = contents(pg)
    m.change_source(f"""UPDATE "{evil.replace('"', '""')}" SET "it's" = 'b';""")
    m.apply()
    done = run("rollback", str(spec), "--yes")
    assert done.exit_code == 0, done.stderr
    assert contents(pg) == before


SELF_REFERENCING = """
CREATE TABLE cat (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES cat(id) ON DELETE {action}, name TEXT);
INSERT INTO cat VALUES (1, NULL, 'root'), (2, 1, 'a'), (3, 2, 'b'), (4, 1, 'c');
"""


def self_foreign_keys(pg) -> list[tuple]:
    return pg.execute(
        "SELECT n.nspname::text, c.relname::text, k.conname::text, pg_get_constraintdef(k.oid) "
        "FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE k.contype = 'f' ORDER BY 1, 2, 3"
    ).fetchall()


@pytest.mark.parametrize("action", ["CASCADE", "NO ACTION"])
def test_a_table_with_a_foreign_key_onto_itself_is_restored_exactly(migration, pg, action):
    m = migration(SELF_REFERENCING.format(action=action))
    spec = m.write_spec()
    m.apply()
    before = contents(pg)
    fks_before = self_foreign_keys(pg)
    assert [(s, t) for s, t, _, _ in fks_before] == [("public", "cat")]
    # Deleting the root's subtree in the source: the apply deletes rows 2 and 3 of the live table.
    m.change_source("DELETE FROM cat WHERE id IN (3, 2);")
    m.apply(allow_destructive=True)
    assert pg.execute("SELECT count(*) FROM cat").fetchone() == (2,)
    # With a key action the copy holds every row (the action may change rows the sync does not
    # stage); without, the rows the sync deletes. No constraint of the copy points outside it.
    kept_in = pg.execute("SELECT kept_in FROM etl.history WHERE table_name = 'cat'").fetchone()[0]
    assert pg.execute(
        sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(kept_in, "cat"))
    ).fetchone() == ((4,) if action == "CASCADE" else (2,))
    outside = pg.execute(
        "SELECT k.conname FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_class r ON r.oid = k.confrelid "
        "LEFT JOIN pg_namespace rn ON rn.oid = r.relnamespace WHERE n.nspname = %s AND k.contype = 'f' "
        "AND rn.nspname <> %s",
        (kept_in, kept_in),
    ).fetchall()
    assert outside == []

    done = run("rollback", str(spec), "--yes")
    assert done.exit_code == 0, done.stderr
    assert contents(pg) == before
    assert self_foreign_keys(pg) == fks_before


def test_a_table_with_a_foreign_key_onto_itself_can_be_replaced_and_rolled_back(migration, pg):
    m = migration(SELF_REFERENCING.format(action="CASCADE"))
    m.write_spec("tables:\n  cat:\n    mode: replace\n")
    m.apply()
    before = contents(pg)
    fks_before = self_foreign_keys(pg)
    m.change_source("UPDATE cat SET name = 'root!' WHERE id = 1;")
    m.apply(allow_destructive=True)
    assert pg.execute("SELECT name FROM cat WHERE id = 1").fetchone() == ("root!",)
    done = run("rollback", str(m.spec_path), "--yes")
    assert done.exit_code == 0, done.stderr
    assert contents(pg) == before
    assert self_foreign_keys(pg) == fks_before


def sequence_state(pg, table: str, column: str = "id") -> tuple:
    """(last_value, is_called) of the sequence behind "public".`table`.`column`."""
    schema, name = pg.execute(
        "SELECT n.nspname::text, c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.oid = pg_get_serial_sequence(%s, %s)::regclass",
        (sql.Identifier("public", table).as_string(pg), column),
    ).fetchone()
    return pg.execute(
        sql.SQL("SELECT last_value, is_called FROM {}").format(sql.Identifier(schema, name))
    ).fetchone()


def test_rollback_restores_a_sequence_that_was_past_the_largest_id(migration, pg):
    m = migration(
        "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT);"
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10) INSERT INTO t SELECT i, 'x' FROM n;"
        "DELETE FROM t WHERE id > 8;"  # SQLite's AUTOINCREMENT counter stays at 10
    )
    spec = m.write_spec()
    m.apply()
    before = contents(pg)
    assert sequence_state(pg, "t") == (10, True)
    m.change_source("INSERT INTO t (v) VALUES ('eleven'); UPDATE t SET v = 'y' WHERE id = 1;")
    m.apply()
    assert sequence_state(pg, "t") == (11, True)
    done = run("rollback", str(spec), "--yes")
    assert done.exit_code == 0, done.stderr
    assert contents(pg) == before
    assert sequence_state(pg, "t") == (10, True)
    assert pg.execute("INSERT INTO t (v) VALUES ('next') RETURNING id").fetchone() == (11,)


def test_a_rollback_plan_made_before_another_apply_is_refused_and_changes_nothing(migration, pg):
    from etl.errors import PlanError
    from etl.run.rollback import apply_rollback, plan_rollback

    m = migration(SOURCE)
    spec = m.write_spec("rollback:\n  retention: 3\n")
    m.apply()
    m.change_source("UPDATE author SET name = 'first' WHERE id = 1;")
    m.apply()
    after_first = contents(pg)
    plan = plan_rollback(m.url, "public")  # shown, and answered only after the next apply
    m.change_source("UPDATE author SET name = 'second' WHERE id = 1; INSERT INTO tag VALUES ('c');")
    m.apply()
    after_second = contents(pg)
    with pytest.raises(PlanError) as refused:
        apply_rollback(plan, m.url)
    assert str(refused.value) == (
        'the history of schema "public" changed since the rollback plan was made (an apply or rollback ran '
        "since); nothing was changed: run etl rollback again"
    )
    assert contents(pg) == after_second
    # Planned again, rollback undoes the newest apply only.
    done = run("rollback", str(spec), "--yes")
    assert done.exit_code == 0, done.stderr
    assert contents(pg) == after_first


def test_an_etl_history_made_before_sequences_were_recorded_still_rolls_back(migration, pg):
    m = migration(SOURCE)
    spec = m.write_spec("rollback:\n  retention: 3\n")
    m.apply()
    m.change_source("UPDATE author SET name = 'x' WHERE id = 1;")
    m.apply()
    before = contents(pg)
    pg.execute("ALTER TABLE etl.history DROP COLUMN sequences")  # as an earlier version made it
    m.change_source("UPDATE author SET name = 'y' WHERE id = 1; INSERT INTO author VALUES (7, 'z', NULL);")
    m.apply()  # records the sequences again
    assert pg.execute("SELECT table_name, sequences FROM etl.history WHERE sequences <> '[]'").fetchall() == [
        ("author", [{"column": "id", "last_value": 2, "is_called": True}])
    ]
    assert run("rollback", str(spec), "--yes").exit_code == 0
    assert contents(pg) == before
    assert sequence_state(pg, "author") == (2, True)
    pg.execute("ALTER TABLE etl.history DROP COLUMN sequences")
    done = run(
        "rollback", str(spec), "--yes"
    )  # no sequence state: the identity continues after the largest id
    assert done.exit_code == 0, done.stderr
    assert sequence_state(pg, "author") == (2, True)


@pytest.mark.parametrize(
    ("mode", "name"),
    [("sync", "t"), ("replace", "t"), ("sync", 'x"; DROP TABLE t; --')],
    ids=["sync", "replace", "hostile"],
)
def test_a_serial_column_made_by_another_tool_is_kept_with_its_own_sequence_and_restored(
    migration, pg, mode, name
):
    quoted = name.replace('"', '""')
    m = migration(
        f"CREATE TABLE \"{quoted}\" (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO \"{quoted}\" VALUES (1, 'a'), (2, 'b');"
    )
    # As Prisma's or Rails' migrations make it: a serial column, its sequence past the largest id.
    table = sql.Identifier("public", name)
    pg.execute(sql.SQL("CREATE TABLE {} (id serial PRIMARY KEY, v text)").format(table))
    pg.execute(sql.SQL("INSERT INTO {} (v) VALUES ('a'), ('b'), ('c')").format(table))
    pg.execute(sql.SQL("DELETE FROM {} WHERE id = 3").format(table))
    before = contents(pg)
    default = (
        "SELECT column_default FROM information_schema.columns WHERE table_name = %s AND column_name = 'id'"
    )
    serial = pg.execute(default, (name,)).fetchone()
    assert serial[0].startswith("nextval(")
    spec = m.write_spec(f"tables:\n  '{name}':\n    mode: {mode}\n")
    m.apply(allow_destructive=True)  # the column becomes an identity
    kept_in = pg.execute("SELECT kept_in FROM etl.history WHERE table_name = %s", (name,)).fetchone()[0]
    assert pg.execute(
        "SELECT n.nspname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.oid = pg_get_serial_sequence(%s, 'id')::regclass",
        (sql.Identifier(kept_in, name).as_string(pg),),
    ).fetchone() == (kept_in,)
    done = run("rollback", str(spec), "--yes")
    assert done.exit_code == 0, done.stderr
    assert contents(pg) == before
    assert pg.execute(default, (name,)).fetchone() == serial
    assert sequence_state(pg, name) == (3, True)
    assert pg.execute(
        sql.SQL("INSERT INTO {} (v) VALUES ('next') RETURNING id").format(table)
    ).fetchone() == (4,)
