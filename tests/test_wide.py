"""Many tables at once: DDL, proofs, row diffs and spec parsing batched across tables behave as
the same work done table by table."""

from __future__ import annotations

from dataclasses import replace

import psycopg
import pytest

from etl import duck
from etl.core.explain import describe
from etl.core.plan import CreateTable
from etl.errors import TargetError
from etl.pipeline import apply, check, plan_for
from etl.postgres.ddl import BATCH_FAILURE_PREFIX, ddl_batch_sql
from etl.run import observe
from etl.run.session import SOURCE_ALIAS, attach
from etl.run.typedscan import candidates, holds, prove
from etl.specfile import yamlpos


def tables_in(pg: psycopg.Connection) -> list[str]:
    rows = pg.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1"
    ).fetchall()
    return [r[0] for r in rows]


def test_a_batch_of_ddl_raises_postgresql_error_naming_the_failing_statement(pg):
    hostile = 'we$etl$ird "name"; --'
    statements = [
        psycopg.sql.SQL("CREATE TABLE {} (id int)").format(psycopg.sql.Identifier(hostile)),
        psycopg.sql.SQL("CREATE TABLE {} (id int)").format(psycopg.sql.Identifier("b")),
        psycopg.sql.SQL("CREATE TABLE {} (id int)").format(psycopg.sql.Identifier(hostile)),
        psycopg.sql.SQL("CREATE TABLE {} (id int)").format(psycopg.sql.Identifier("c")),
    ]
    with pytest.raises(psycopg.errors.DuplicateTable) as raised:
        pg.execute(ddl_batch_sql(statements))
    assert str(raised.value).startswith(f'{BATCH_FAILURE_PREFIX}3: relation "{hostile}" already exists')
    assert raised.value.diag.message_detail is None  # PostgreSQL gave none: none is made up
    pg.rollback()
    pg.execute(ddl_batch_sql(statements[:2] + statements[3:]))
    assert tables_in(pg) == ["b", "c", hostile]


def test_apply_names_the_third_step_of_a_ddl_batch_when_postgresql_refuses_it(migration, pg):
    m = migration(
        """
        CREATE TABLE a (id INTEGER PRIMARY KEY);
        CREATE TABLE b (id INTEGER PRIMARY KEY);
        CREATE TABLE c (id INTEGER PRIMARY KEY);
        CREATE TABLE d (id INTEGER PRIMARY KEY);
        """
    )
    checked = m.check()
    plan = plan_for(checked)
    creates = [s for s in plan.steps if isinstance(s, CreateTable)]
    assert [s.table.name for s in creates] == ["a", "b", "c", "d"]
    pg.execute("CREATE TABLE c (other text)")  # after the plan: its third CREATE TABLE now fails
    pg.commit()
    with pytest.raises(TargetError) as raised:
        apply(checked, plan)
    assert str(raised.value) == f'PostgreSQL refused {describe(creates[2]).text}: relation "c" already exists'
    assert tables_in(pg) == ["c"]  # the whole batch, and the apply, rolled back


def test_batched_proofs_agree_with_each_table_proved_alone(tmp_sqlite, pg_url):
    script = []
    for i in range(60):  # more than a batch of proofs, and more than listing columns needs
        script.append(f"CREATE TABLE t{i} (id INTEGER PRIMARY KEY, seen DATETIME, n INTEGER)")
        seen = "'not a date'" if i % 7 == 3 else "'2024-01-02 03:04:05'"
        script.append(f"INSERT INTO t{i} VALUES (1, {seen}, {i})")
    source = tmp_sqlite(script)
    m_tables = _tables_of(source, pg_url, tmp_sqlite)
    con = duck.connect()
    try:
        attach(con, source, pg_url, read_only=True)
        batched = prove(con, SOURCE_ALIAS, m_tables)
        alone = {}
        for table in m_tables:
            for name, candidate in candidates(con, SOURCE_ALIAS, [table]).items():
                if holds(con, SOURCE_ALIAS, candidate):
                    alone[name] = candidate.types
    finally:
        con.close()
    assert batched == alone
    assert len(batched) == 60 - len([i for i in range(60) if i % 7 == 3])


def test_proofs_after_a_failed_query_go_on_in_a_transaction_that_works(tmp_sqlite, pg_url, monkeypatch):
    """The apply's proofs share one DuckDB transaction; a query that fails leaves it refusing
    every later statement, so the proofs end it and begin another: each table is still proved,
    none taken for failed because an earlier query failed."""
    from etl.run import executor
    from etl.sqlite.catalog import source_stamp

    script = []
    for i in range(120):  # more than two batches of proofs
        script.append(f"CREATE TABLE t{i} (id INTEGER PRIMARY KEY, seen DATETIME)")
        seen = "'not a date'" if i % 7 == 3 else "'2024-01-02 03:04:05'"
        script.append(f"INSERT INTO t{i} VALUES (1, {seen})")
    source = tmp_sqlite(script)
    tables = _tables_of(source, pg_url, tmp_sqlite)
    real, calls = executor.prove_candidates, []

    def failing_first(cursor, alias, batch):
        calls.append(len(batch))
        if len(calls) == 1:
            cursor.execute("SELECT error('the first proof query fails')")
        return real(cursor, alias, batch)

    monkeypatch.setattr(executor, "prove_candidates", failing_first)
    con = duck.connect()
    try:
        attach(con, source, pg_url, read_only=True)
        proofs = executor._Proofs(con, tables, source, source_stamp(source), trust_from_rows=10**9)
        try:
            scanned = {t.source for t in tables if proofs.read(t).scan is not None}
        finally:
            proofs.close()
        expected = set(prove(con, SOURCE_ALIAS, tables))
    finally:
        con.close()
    assert len(calls) >= 3
    assert scanned == expected
    assert len(expected) == 120 - len([i for i in range(120) if i % 7 == 3])


def _tables_of(source, pg_url, tmp_sqlite):
    from etl.run.validate import validate

    spec = source.with_name("spec.yaml")
    spec.write_text(f"version: 1\nsource:\n  sqlite: {source.name}\ntarget:\n  url: {pg_url}\n")
    return list(validate(spec, {}).mapping.tables)


def test_row_diffs_batched_across_tables_equal_those_of_each_table_alone(migration, pg):
    script = []
    for i in range(7):
        script.append(f"CREATE TABLE k{i} (id INTEGER PRIMARY KEY, v TEXT)")
        script.append(f"INSERT INTO k{i} VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    script.append("CREATE TABLE loose (v TEXT)")  # no key: rows match by hash
    script.append("INSERT INTO loose VALUES ('x'), ('x'), ('y')")
    m = migration(script)
    m.apply()
    pg.execute("UPDATE k1 SET v = 'changed' WHERE id = 2")
    pg.execute("DELETE FROM k3 WHERE id = 1")
    pg.execute("INSERT INTO k5 VALUES (9, 'extra')")
    pg.execute("DELETE FROM loose WHERE ctid = (SELECT min(ctid) FROM loose WHERE v = 'x')")
    pg.commit()
    checked = m.check()
    source, url = checked.spec.source, checked.spec.target_url
    # Several batches, the last one short; showing rows, each table is diffed alone. full_diff:
    # the tables unchanged since the apply would be skipped, not diffed.
    batched = observe.observe_target(checked.mapping, source, url, diff_batch=3, full_diff=True)
    alone = observe.observe_target(checked.mapping, source, url, show_rows=1, full_diff=True)
    assert {n: replace(d, samples=()) for n, d in batched.rows.items()} == {
        n: replace(d, samples=()) for n, d in alone.rows.items()
    }
    assert (batched.rows["k1"].update, batched.rows["k3"].insert, batched.rows["k5"].delete) == (1, 1, 1)
    assert batched.rows["loose"].insert == 1


SPEC = """\
version: 1
defaults: &defaults
  null: true
  type: text
source:
  sqlite: "a b.db"
tables:
  users:
    columns:
      name: {<<: *defaults, type: varchar(3)}
      "quoted key": [1, 2.5, ~, 'x']
"""


def test_libyaml_and_pyyaml_read_a_spec_alike():
    import yaml

    assert yaml.__with_libyaml__  # installed with PyYAML's wheel: the fast path is what runs
    fast = yamlpos.load_yaml(SPEC, "spec.yaml")
    slow = yamlpos.load_yaml(SPEC, "spec.yaml", fast=False)
    assert fast.data == slow.data
    assert fast.positions == slow.positions


def _rounds_reference(names, parents, strict=False):
    """topological_order as first written: scan the remaining tables every round."""
    done: list[str] = []
    remaining = list(names)
    while remaining:
        ready = [n for n in remaining if parents[n] <= set(done)]
        if not ready:
            if strict:
                return done
            ready = [remaining[0]]
        for n in ready:
            done.append(n)
            remaining.remove(n)
    return done


@pytest.mark.parametrize("seed", range(12))
def test_load_order_counts_parents_down_as_the_rounds_did(seed):
    import random

    from etl.core.mapping import topological_order

    rng = random.Random(seed)
    names = [f"t{i}" for i in range(rng.randint(1, 30))]
    outside = ["elsewhere"] if seed % 5 == 0 else []  # a parent that is not migrated
    pool = names + outside
    parents = {n: set(rng.sample(pool, rng.randint(0, min(3, len(pool))))) for n in names}
    for strict in (False, True):
        assert topological_order(names, parents, strict) == _rounds_reference(names, parents, strict)
    chain = [f"c{i}" for i in range(10_000)]  # each refers to the one before: linear, not cubic
    order = topological_order(chain, {n: {f"c{i - 1}"} if i else set() for i, n in enumerate(chain)})
    assert order == chain


# --- Locks: one transaction holds a lock on every table, index and sequence it creates -------------

from etl.core.locks import FIXED_LOCKS, LockCapacity, check_locks, locks_needed  # noqa: E402
from etl.errors import PlanError  # noqa: E402
from etl.postgres.target import ensure_metadata, read_lock_capacity  # noqa: E402


def _chain(tables: int) -> list[str]:
    """`tables` tables like the benchmark's: a key, text, an index, a foreign key to the one before."""
    script = []
    for i in range(tables):
        parent = f"REFERENCES w{i - 1}(id)" if i else ""
        script.append(
            f"CREATE TABLE w{i} (id INTEGER PRIMARY KEY, label TEXT NOT NULL, at DATETIME, up INTEGER {parent})"
        )
        script.append(f"CREATE INDEX w{i}_at ON w{i} (at)")
        script.append(f"INSERT INTO w{i} VALUES (1, 'a', '2024-01-02 03:04:05', NULL)")
    return script


def test_the_lock_estimate_bounds_the_locks_apply_holds_before_commit(migration, pg, pg_url):
    m = migration(_chain(12))
    ensure_metadata(pg_url)
    # The last statement before COMMIT records the run: a trigger there counts what the apply's
    # transaction holds by then (every lock is kept to the end of the transaction).
    pg.execute("CREATE SCHEMA probe")
    pg.execute("CREATE TABLE probe.peak (held int)")
    # One row of pg_locks per mode held; the lock table keeps one entry per object.
    pg.execute(
        "CREATE FUNCTION probe.count_locks() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "INSERT INTO probe.peak SELECT count(DISTINCT (locktype, database, relation, page, tuple, "
        "virtualxid, transactionid::text, classid, objid, objsubid)) FROM pg_locks "
        "WHERE pid = pg_backend_pid(); RETURN NEW; END $$"
    )
    pg.execute(
        "CREATE TRIGGER count_locks AFTER INSERT ON etl.runs FOR EACH ROW EXECUTE FUNCTION probe.count_locks()"
    )
    checked = m.check()
    plan = plan_for(checked)
    apply(checked, plan)
    ((held,),) = pg.execute("SELECT held FROM probe.peak").fetchall()
    estimate = locks_needed(plan)
    assert held <= estimate  # an upper bound
    assert estimate - held < FIXED_LOCKS  # ... that counts each table's objects as they are


def test_apply_refuses_a_plan_the_servers_lock_table_cannot_hold_before_changing_it(
    small_lock_table_url, tmp_path, tmp_sqlite
):
    import pg_server

    capacity = read_lock_capacity(small_lock_table_url)
    assert capacity == LockCapacity(16, 5, 0, 2)  # read from the server, not assumed
    assert capacity.slots == 168
    with psycopg.connect(small_lock_table_url, autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS locks")
        admin.execute("CREATE DATABASE locks")
    url = pg_server.url_with_dbname(small_lock_table_url, "locks")
    spec = tmp_path / "spec.yaml"

    def checked(tables: int):
        source = tmp_sqlite(_chain(tables), name=f"w{tables}.db")
        spec.write_text(f"version: 1\nsource:\n  sqlite: {source.name}\ntarget:\n  url: '{url}'\n")
        return check(spec, {})

    wide = checked(12)
    plan = plan_for(wide)
    assert locks_needed(plan) > capacity.slots
    with pytest.raises(PlanError) as refused:
        apply(wide, plan)
    assert str(refused.value) == (
        f"apply runs in one PostgreSQL transaction, which would hold about {locks_needed(plan)} locks "
        "(12 tables with their indexes, constraints, sequences and TOAST tables); the server's lock "
        "table holds about 168 (max_locks_per_transaction 16 x 7 server processes and prepared "
        "transactions, and half as many again in the memory reserved beside it): run ALTER SYSTEM SET "
        "max_locks_per_transaction = 64 and restart PostgreSQL, or split the spec's tables into specs "
        "of at most 7 tables each"
    )
    with psycopg.connect(url) as db:  # refused before anything changed: not even etl's own schema
        assert db.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname IN ('etl', 'public')"
        ).fetchone() == (1,)
        assert db.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == (0,)
    narrow = checked(3)
    plan = plan_for(narrow)
    check_locks(plan, capacity)  # fits: applies on the same server
    assert apply(narrow, plan).rows == {f"w{i}": 1 for i in range(3)}


def test_plan_says_apply_would_refuse_a_plan_the_servers_lock_table_cannot_hold(
    small_lock_table_url, tmp_path, tmp_sqlite
):
    import pg_server
    from typer.testing import CliRunner

    from etl.cli import app

    with psycopg.connect(small_lock_table_url, autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS plan_locks")
        admin.execute("CREATE DATABASE plan_locks")
    url = pg_server.url_with_dbname(small_lock_table_url, "plan_locks")

    def planned(tables: int):
        source = tmp_sqlite(_chain(tables), name=f"p{tables}.db")
        spec = tmp_path / f"p{tables}.yaml"
        spec.write_text(f"version: 1\nsource:\n  sqlite: {source.name}\ntarget:\n  url: '{url}'\n")
        return CliRunner().invoke(app, ["plan", str(spec)])

    wide = planned(12)
    assert wide.exit_code == 1
    assert "Plan: 12 tables to create" in wide.stdout  # the plan is shown, then why apply stops
    (line,) = wide.stderr.splitlines()
    assert line.startswith(
        "Error: apply would refuse this plan: apply runs in one PostgreSQL transaction, which would hold about "
    )
    assert line.endswith("or split the spec's tables into specs of at most 7 tables each")
    narrow = planned(3)
    assert narrow.exit_code == 0, narrow.stderr
    assert narrow.stderr == ""
