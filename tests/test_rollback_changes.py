"""A re-sync keeps for rollback only what it changes: for a keyed table whose rows only a sync
changes, the copy holds the rows it updates or deletes as they were, and the keys of the rows it
inserts; `etl rollback` puts exactly those back, in place, and the table is as it was before the
apply, whatever referenced what."""

from __future__ import annotations

from psycopg import sql
from typer.testing import CliRunner

from etl.cli import app

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def everything(pg) -> dict:
    """Every row of every table of public, and every constraint with its timing."""
    rows = {
        table: sorted(
            pg.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier("public", table))).fetchall(),
            key=repr,
        )
        for (table,) in pg.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    }
    constraints = pg.execute(
        "SELECT c.relname::text, k.conname::text, pg_get_constraintdef(k.oid), k.condeferrable, k.condeferred "
        "FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' ORDER BY 1, 2"
    ).fetchall()
    triggers = pg.execute(
        "SELECT tgrelid::regclass::text, tgname::text, pg_get_triggerdef(oid) FROM pg_trigger "
        "WHERE NOT tgisinternal ORDER BY 1, 2"
    ).fetchall()
    return {"rows": rows, "constraints": constraints, "triggers": triggers}


def kept_rows(pg, table: str) -> list[tuple]:
    """(what the apply did, key) of each row the last apply kept of `table`."""
    (kept_in,) = pg.execute(
        "SELECT kept_in FROM etl.history WHERE table_name = %s ORDER BY id DESC LIMIT 1", (table,)
    ).fetchone()
    return pg.execute(
        sql.SQL("SELECT etl_op, id FROM {} ORDER BY id").format(sql.Identifier(kept_in, table))
    ).fetchall()


def test_a_resync_keeps_only_the_rows_it_changes_and_rollback_puts_them_back(migration, pg):
    m = migration(
        "CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL);"
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) "
        "INSERT INTO item SELECT i, 'item ' || i, i * 0.5 FROM n;"
    )
    spec = m.write_spec()
    m.apply()
    before = everything(pg)
    m.change_source(
        "UPDATE item SET name = 'renamed', price = NULL WHERE id = 7;"
        "DELETE FROM item WHERE id = 1500;"
        "INSERT INTO item VALUES (2001, 'new', 1.0);"
    )
    m.apply(allow_destructive=True)
    assert kept_rows(pg, "item") == [("u", 7), ("d", 1500), ("i", 2001)]

    shown = run("rollback", str(spec), "--dry-run")
    assert shown.exit_code == 0, shown.stderr
    assert shown.stdout.splitlines()[2:] == [
        '~ table "public"."item": the 3 rows that apply changed put back (2,000 rows now, 2,000 after)',
        "Plan: 1 table to restore.",
    ]
    done = run("rollback", str(spec), "--yes")
    assert done.exit_code == 0, done.stderr
    assert everything(pg) == before
    assert "1 to insert, 1 to update, 1 to delete" in run("plan", str(spec)).stdout.splitlines()[-1]


FAMILY = """
CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL REFERENCES parent(id),
                    next_id INTEGER REFERENCES child(id), note TEXT);
INSERT INTO parent VALUES (1, 'one'), (2, 'two'), (3, 'three');
INSERT INTO child VALUES (10, 1, NULL, 'a'), (11, 2, 10, 'b'), (12, 3, 11, 'c');
"""


def test_rows_that_reference_each_other_are_put_back_whatever_the_order(migration, pg):
    """The apply inserts a parent and children of it, moves a child to another parent, deletes a
    parent with its children and renames a parent: rollback has to undo
    all of it at once, and the foreign keys keep their own timing afterwards."""
    m = migration(FAMILY)
    spec = m.write_spec()
    m.apply()
    before = everything(pg)
    m.change_source(
        "INSERT INTO parent VALUES (4, 'four');"
        "INSERT INTO child VALUES (13, 4, NULL, 'd'), (14, 4, 13, 'e');"
        "UPDATE child SET parent_id = 4, next_id = 14 WHERE id = 10;"
        "UPDATE child SET next_id = NULL WHERE id = 12;"
        "DELETE FROM child WHERE id = 11; DELETE FROM parent WHERE id = 2;"
        "UPDATE parent SET name = 'THREE' WHERE id = 3;"
    )
    m.apply(allow_destructive=True)
    assert {t for (t,) in pg.execute("SELECT table_name FROM etl.history WHERE key_columns IS NOT NULL")} == {
        "parent",
        "child",
    }
    done = run("rollback", str(spec), "--yes")
    assert done.exit_code == 0, done.stderr
    assert everything(pg) == before


def test_rollback_fires_no_trigger_and_brings_the_tables_triggers_back(migration, pg):
    m = migration(
        "CREATE TABLE account (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);"
        "INSERT INTO account VALUES (1, 100), (2, 200);"
    )
    spec = m.write_spec()
    m.apply()
    # The app's own audit trigger, made in PostgreSQL after the first load.
    pg.execute(
        "CREATE TABLE audit (account_id integer, balance integer);"
        "CREATE FUNCTION audit_account() RETURNS trigger LANGUAGE plpgsql AS "
        "$$BEGIN INSERT INTO audit VALUES (NEW.id, NEW.balance); RETURN NEW; END$$;"
        "CREATE TRIGGER account_audit AFTER INSERT OR UPDATE ON account "
        "FOR EACH ROW EXECUTE FUNCTION audit_account();"
    )
    before = everything(pg)
    m.change_source("UPDATE account SET balance = 150 WHERE id = 1; INSERT INTO account VALUES (3, 5);")
    m.apply()
    audited = pg.execute("SELECT count(*) FROM audit").fetchone()
    done = run("rollback", str(spec), "--yes")
    assert done.exit_code == 0, done.stderr
    assert pg.execute("SELECT count(*) FROM audit").fetchone() == audited  # no trigger fired
    after = everything(pg)
    after["rows"].pop("audit")
    expected = dict(before)
    expected["rows"] = {k: v for k, v in before["rows"].items() if k != "audit"}
    assert after == expected


def test_identity_enum_and_generated_columns_are_put_back(migration, pg):
    m = migration(
        "CREATE TABLE u (id INTEGER PRIMARY KEY AUTOINCREMENT, role TEXT NOT NULL DEFAULT 'USER', "
        "name TEXT, shout TEXT GENERATED ALWAYS AS (upper(name)) STORED);"
        "INSERT INTO u (id, role, name) VALUES (1, 'ADMIN', 'ada'), (2, 'USER', 'bob');"
    )
    body = "enums:\n  Role: [USER, ADMIN]\ntables:\n  u:\n    columns:\n      role: {type: Role}\n"
    m.apply(body)
    before = everything(pg)
    m.change_source("UPDATE u SET role = 'USER', name = 'al' WHERE id = 1; DELETE FROM u WHERE id = 2;")
    m.apply(body, allow_destructive=True)
    assert kept_rows(pg, "u") == [("u", 1), ("d", 2)]
    done = run("rollback", str(m.spec_path), "--yes")
    assert done.exit_code == 0, done.stderr
    assert everything(pg) == before


def test_a_table_kept_by_its_changes_and_dropped_since_cannot_be_rolled_back(migration, pg):
    m = migration("CREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT); INSERT INTO t VALUES (1, 'a');")
    spec = m.write_spec()
    m.apply()
    m.change_source("UPDATE t SET x = 'b' WHERE id = 1;")
    m.apply()
    pg.execute("DROP TABLE t")
    refused = run("rollback", str(spec), "--yes")
    assert refused.exit_code == 1
    assert 'table "public"."t" was dropped since the apply' in refused.stderr
    assert "rollback cannot restore it" in refused.stderr


def test_a_changed_row_a_check_sets_aside_comes_back_with_rollback(migration, pg):
    m = migration(
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, total REAL CHECK (total >= 0));"
        "INSERT INTO orders VALUES (1, 10), (2, 20);"
    )
    m.apply("on_error: reject\n")
    before = everything(pg)
    m.change_source("PRAGMA ignore_check_constraints = 1; UPDATE orders SET total = -1 WHERE id = 2;")
    m.apply("on_error: reject\n")
    assert pg.execute("SELECT id FROM orders").fetchall() == [(1,)]  # its old version left the target
    done = run("rollback", str(m.spec_path), "--yes")
    assert done.exit_code == 0, done.stderr
    assert everything(pg) == before
