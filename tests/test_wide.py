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
from etl.pipeline import apply, plan_for
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
