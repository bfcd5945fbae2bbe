"""One apply is one PostgreSQL transaction: whatever fails, the target is exactly as before."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from etl.core.explain import step_text
from etl.errors import DataError, EtlError


def tables_in(pg: psycopg.Connection) -> list[str]:
    rows = pg.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1"
    ).fetchall()
    return [r[0] for r in rows]


def test_a_failing_replace_keeps_the_tables_it_would_have_dropped(migration, pg):
    m = migration(
        """
        CREATE TABLE keep (id INTEGER PRIMARY KEY, v TEXT);
        INSERT INTO keep VALUES (1, 'new');
        CREATE TABLE bad (id INTEGER PRIMARY KEY, n INTEGER);
        INSERT INTO bad VALUES (1, 'not a number');
        """
    )
    pg.execute("CREATE TABLE keep (id bigint PRIMARY KEY, v text)")
    pg.execute("INSERT INTO keep VALUES (1, 'old'), (2, 'also old')")
    with pytest.raises(DataError, match='table "bad", row id=1: column "n": expected an integer'):
        m.apply(allow_destructive=True)
    assert tables_in(pg) == ["keep"]
    assert pg.execute("SELECT id, v FROM keep ORDER BY id").fetchall() == [(1, "old"), (2, "also old")]


def test_an_orphaned_foreign_key_fails_the_run_and_leaves_nothing(migration, pg):
    m = migration(
        """
        CREATE TABLE parent (id INTEGER PRIMARY KEY);
        CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id));
        INSERT INTO parent VALUES (1);
        INSERT INTO child VALUES (1, 1), (2, 99);
        """
    )
    with pytest.raises(
        EtlError, match=r'child_parent_id_fkey.*Key \(parent_id\)=\(99\) is not present in table "parent"'
    ):
        m.apply()
    assert tables_in(pg) == []


def test_a_connection_killed_in_the_middle_of_a_copy_leaves_the_target_as_before(migration, pg, pg_url):
    rows = 400_000
    m = migration(
        [
            "CREATE TABLE small (id INTEGER PRIMARY KEY)",
            "INSERT INTO small VALUES (1)",
            "CREATE TABLE big (id INTEGER PRIMARY KEY, payload TEXT)",
            f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) "
            "INSERT INTO big SELECT i, printf('%080d', i) FROM n",
        ]
    )
    pg.execute("CREATE TABLE canary (id int)")
    dbname = psycopg.conninfo.conninfo_to_dict(pg_url)["dbname"]
    outcome: dict[str, BaseException] = {}

    def run() -> None:
        try:
            m.apply()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    killed = False
    deadline = time.monotonic() + 60
    while worker.is_alive() and time.monotonic() < deadline and not killed:
        killed = bool(
            pg.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid() AND query ILIKE 'COPY%%big%%'",
                (dbname,),
            ).fetchall()
        )
        time.sleep(0.005)
    worker.join(120)
    assert killed, "the COPY of table big was never seen; the test could not kill it"
    assert isinstance(outcome.get("error"), EtlError), outcome
    assert tables_in(pg) == ["canary"]
    # and the next run succeeds
    m.apply()
    assert pg.execute("SELECT count(*) FROM big").fetchone() == (rows,)


def test_a_key_that_is_not_valid_utf8_is_shown_as_hex_in_the_error(migration, pg):
    m = migration(
        [
            "CREATE TABLE t (id TEXT PRIMARY KEY, x TEXT)",
            "INSERT INTO t VALUES (CAST(X'41FF42' AS TEXT), X'00')",
        ]
    )
    with pytest.raises(DataError) as failure:
        m.apply()
    assert str(failure.value).startswith('table "t", row id=X\'41FF42\': column "id": is not valid UTF-8')
    assert tables_in(pg) == []


def test_a_second_apply_against_the_same_schema_at_once_fails_clearly_and_changes_nothing(
    migration, pg, pg_url
):
    from etl.errors import TargetError
    from etl.postgres.ddl import schema_lock_sql

    m = migration("CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (1);")
    with psycopg.connect(pg_url) as other:  # an apply in progress holds the lock in its transaction
        other.execute(schema_lock_sql("public")).fetchone()
        with pytest.raises(TargetError, match='another etl apply is running against schema "public"'):
            m.apply()
        assert tables_in(pg) == []
    m.apply()  # the lock went with the other transaction
    assert tables_in(pg) == ["t"]


def test_replacing_tables_never_drops_what_depends_on_them_outside_the_spec(migration, pg):
    from etl.errors import TargetError

    m = migration(
        """
        CREATE TABLE a (id INTEGER PRIMARY KEY, b_id INTEGER REFERENCES b(id));
        CREATE TABLE b (id INTEGER PRIMARY KEY, a_id INTEGER REFERENCES a(id));
        INSERT INTO b VALUES (1, NULL); INSERT INTO a VALUES (1, 1); UPDATE b SET a_id = 1;
        """
    )
    m.apply("mode: replace\n")
    m.change_source("INSERT INTO b VALUES (2, 1); INSERT INTO a VALUES (2, 2);")
    m.apply(allow_destructive=True)  # a foreign-key cycle among the spec's own tables is no obstacle
    assert pg.execute("SELECT count(*) FROM a").fetchone() == (2,)
    pg.execute("CREATE VIEW a_view AS SELECT id FROM a")
    m.change_source("UPDATE a SET b_id = 1 WHERE id = 2;")
    with pytest.raises(
        TargetError, match=r"because other objects depend on (?:it|them) \(view a_view depends on table a\)"
    ):
        m.apply(allow_destructive=True)
    assert pg.execute("SELECT count(*) FROM a_view").fetchone() == (2,)


def sequence_state(pg: psycopg.Connection, table: str, column: str = "id") -> tuple:
    """(last_value, is_called) of the sequence behind `table`.`column`."""
    from psycopg import sql

    schema, name = pg.execute(
        "SELECT n.nspname::text, c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.oid = pg_get_serial_sequence(%s, %s)::regclass",
        (table, column),
    ).fetchone()
    return pg.execute(
        sql.SQL("SELECT last_value, is_called FROM {}").format(sql.Identifier(schema, name))
    ).fetchone()


ITEMS = (
    "CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT);"
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100) INSERT INTO item SELECT i, 'x' FROM n;"
)

# PostgreSQL runs a deferred constraint trigger at COMMIT: the apply fails after every step ran.
REFUSE_AT_COMMIT = [
    "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'refused'; END$$",
    "CREATE CONSTRAINT TRIGGER refuse_changes AFTER INSERT OR DELETE ON item "
    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse()",
]


@pytest.mark.parametrize(
    ("in_target", "in_source", "rows"),
    [
        (None, "INSERT INTO item SELECT id + 1000, name FROM item;", 100),  # the sequence would move forward
        # row 50 is missing from the target, rows above 90 from the source: back to 90
        ("DELETE FROM item WHERE id = 50", "DELETE FROM item WHERE id > 90;", 99),
    ],
    ids=["forward", "backward"],
)
def test_an_apply_that_fails_after_the_identity_step_leaves_the_sequence_as_it_was(
    migration, pg, in_target, in_source, rows
):
    from etl.errors import TargetError

    m = migration(ITEMS)
    m.apply()
    if in_target:
        pg.execute(in_target)
    m.change_source(in_source)
    before = sequence_state(pg, "item")
    assert before == (100, True)
    plan = m.plan()
    assert any(step_text(s).startswith('  identity "item"."id"') for s in plan.steps)
    for statement in REFUSE_AT_COMMIT:
        pg.execute(statement)
    with pytest.raises(TargetError, match="COMMIT failed: .*refused.*nothing was committed"):
        m.apply(allow_destructive=True)
    assert sequence_state(pg, "item") == before
    assert pg.execute("SELECT count(*), max(id) FROM item").fetchone() == (rows, 100)
