"""SQLite views: `etl init` writes each view whose SQL translates exactly under `views:`, apply
creates it after the tables (views on views in order) and compares its rows with SQLite's before
it commits; a view that does not translate is named, in the spec and in the plan."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
import yaml

from etl.core.explain import plan_lines
from etl.core.plan import CreateView, DropView, SyncRows
from etl.errors import PlanError, SpecError, TargetError, VerificationFailed
from etl.init.infer import init_spec

SHOP = """
CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT NOT NULL, city TEXT);
CREATE TABLE "order" (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customer(id), amount INTEGER);
INSERT INTO customer VALUES (1, 'Ada', 'London'), (2, 'Grace', NULL), (3, 'Linus', 'Helsinki');
INSERT INTO "order" VALUES (10, 1, 30), (11, 1, 12), (12, 2, 7), (13, NULL, 5);
CREATE VIEW customer_totals AS
  SELECT c.id, c.name, count(o.id) AS orders, sum(o.amount) AS total
  FROM customer c LEFT JOIN "order" o ON o.customer_id = c.id GROUP BY c.id, c.name;
CREATE VIEW big_spenders AS SELECT name, total FROM customer_totals WHERE total > 20;
CREATE VIEW a_names AS SELECT name FROM customer WHERE name LIKE 'a%';
"""


def sqlite_rows(path: Path, query: str) -> list[tuple]:
    with closing(sqlite3.connect(path)) as con:
        return sorted(con.execute(query).fetchall(), key=repr)


def pg_rows(pg, query: str) -> list[tuple]:
    return sorted(pg.execute(query).fetchall(), key=repr)


@pytest.fixture
def shop(tmp_sqlite, tmp_path, pg_url):
    """The shop's SQLite file and a spec `etl init` wrote for it, aimed at the test's database."""
    source = tmp_sqlite(SHOP)
    spec = tmp_path / "spec.yaml"
    init_spec(source, spec, target_url=pg_url)
    return source, spec


def apply_spec(spec: Path, allow_destructive: bool = False):
    from etl.pipeline import apply, check, plan_for

    checked = check(spec, {})
    plan = plan_for(checked)
    return plan, apply(checked, plan, allow_destructive=allow_destructive)


def plan_of(spec: Path):
    from etl.pipeline import check, plan_for

    return plan_for(check(spec, {}))


def test_init_writes_translated_views_and_names_the_one_that_does_not_translate(shop):
    _, spec = shop
    text = spec.read_text()
    views = yaml.safe_load(text)["views"]
    assert list(views) == ["customer_totals", "big_spenders"]
    assert '"customer_totals"' in views["big_spenders"]["sql"]
    # LIKE ignores ASCII case in SQLite and not in PostgreSQL: named with its SQL, not guessed.
    assert "# !! view a_names: not created in PostgreSQL: its SQL does not translate exactly" in text
    assert "LIKE" in text.split("# !! view a_names")[1].splitlines()[0]
    assert "#      CREATE VIEW a_names AS SELECT name FROM customer WHERE name LIKE 'a%'" in text


def test_a_view_over_a_join_and_a_view_on_it_arrive_with_sqlites_rows(shop, pg):
    source, spec = shop
    plan, result = apply_spec(spec)
    created = [s.view.name for s in plan.steps if isinstance(s, CreateView)]
    assert created == ["customer_totals", "big_spenders"]  # a view after the view it reads
    assert result.verified
    assert pg_rows(pg, "SELECT * FROM customer_totals") == sqlite_rows(
        source, "SELECT * FROM customer_totals"
    )
    assert pg_rows(pg, "SELECT name, total FROM big_spenders") == [("Ada", 42)]
    kinds = dict(pg.execute("SELECT relname, relkind::text FROM pg_class WHERE relname LIKE '%s'").fetchall())
    assert kinds["customer_totals"] == "v" and kinds["big_spenders"] == "v"
    # The view is live: a row added in PostgreSQL shows in it, as it would have in SQLite.
    pg.execute('INSERT INTO "order" VALUES (14, 3, 100)')
    assert pg_rows(pg, "SELECT name FROM big_spenders") == [("Ada",), ("Linus",)]


def test_the_view_left_out_is_in_the_plan_and_a_second_plan_is_empty(shop):
    _, spec = shop
    plan, _ = apply_spec(spec)
    text = "\n".join(plan_lines(plan, "target"))
    assert '+ view "public"."customer_totals" reading "customer", "order"' in text
    assert "views: 2 to create, 0 to replace" in text
    assert 'view "a_names": not in the spec\'s views; its SQL does not translate exactly' in text
    again = plan_of(spec)
    assert not again.has_changes
    assert "No changes. The target matches the spec." in plan_lines(again, "target")


def test_a_changed_query_replaces_the_view_and_those_reading_it(shop, pg):
    _, spec = shop
    apply_spec(spec)
    doc = yaml.safe_load(spec.read_text())
    doc["views"]["customer_totals"]["sql"] = (
        'SELECT "c"."id", "c"."name", 0 AS "orders", 0 AS "total" FROM "customer" AS "c"'
    )
    spec.write_text(yaml.safe_dump(doc, sort_keys=False))
    plan = plan_of(spec)
    # Kept first: etl rollback restores the definitions the views had.
    assert [type(s).__name__ for s in plan.steps] == [
        "KeepForRollback",
        "DropView",
        "DropView",
        "CreateView",
        "CreateView",
    ]
    assert [s.name for s in plan.steps if isinstance(s, DropView)] == ["big_spenders", "customer_totals"]
    # The view's rows no longer equal SQLite's: verification refuses to commit, naming the view.
    with pytest.raises(
        VerificationFailed, match='view "customer_totals": the same number of rows but different'
    ):
        apply_spec(spec)
    assert pg_rows(pg, "SELECT name, total FROM big_spenders") == [("Ada", 42)]  # nothing committed


def test_a_view_whose_query_changes_with_its_rows_is_replaced(tmp_sqlite, tmp_path, pg_url, pg):
    source = tmp_sqlite(SHOP)
    spec = tmp_path / "spec.yaml"
    init_spec(source, spec, target_url=pg_url)
    apply_spec(spec)
    with closing(sqlite3.connect(source)) as con:
        con.executescript(
            "DROP VIEW big_spenders; CREATE VIEW big_spenders AS SELECT name, total FROM customer_totals WHERE total > 5;"
        )
    doc = yaml.safe_load(spec.read_text())
    doc["views"]["big_spenders"]["sql"] = doc["views"]["big_spenders"]["sql"].replace("> 20", "> 5")
    spec.write_text(yaml.safe_dump(doc, sort_keys=False))
    plan, result = apply_spec(spec)
    assert [type(s).__name__ for s in plan.steps] == ["KeepForRollback", "DropView", "CreateView"]
    assert result.verified
    assert pg_rows(pg, "SELECT name FROM big_spenders") == [("Ada",), ("Grace",)]
    assert pg_rows(pg, "SELECT name FROM big_spenders") == sqlite_rows(
        source, "SELECT name FROM big_spenders"
    )
    assert not plan_of(spec).has_changes


def test_a_table_change_under_a_view_drops_and_creates_the_view_again(shop, pg):
    _, spec = shop
    apply_spec(spec)
    doc = yaml.safe_load(spec.read_text())
    doc["tables"]["order"]["columns"]["amount"]["type"] = "numeric"
    spec.write_text(yaml.safe_dump(doc, sort_keys=False))
    plan, result = apply_spec(spec)
    names = [type(s).__name__ for s in plan.steps]
    assert names.index("DropView") < names.index("AlterColumnType") < names.index("CreateView")
    assert result.verified
    assert pg_rows(pg, "SELECT name, total FROM big_spenders") == [("Ada", 42)]
    assert not plan_of(spec).has_changes


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "SELECT 1; DROP TABLE customer",
            "views.customer_totals.sql: view 'customer_totals': `;` at character 9",
        ),
        (
            "DELETE FROM customer",
            "views.customer_totals.sql: view 'customer_totals': a query starts with SELECT",
        ),
        (
            'SELECT * FROM "client"',
            "views.customer_totals.sql: view 'customer_totals' reads 'client', which is neither",
        ),
    ],
)
def test_a_view_query_that_is_not_one_select_of_the_spec_is_a_spec_mistake(shop, query, message):
    _, spec = shop
    doc = yaml.safe_load(spec.read_text())
    doc["views"]["customer_totals"]["sql"] = query
    spec.write_text(yaml.safe_dump(doc, sort_keys=False))
    with pytest.raises(SpecError) as caught:
        plan_of(spec)
    assert message in str(caught.value)
    assert str(caught.value).startswith(f"{spec}:")


def test_a_query_postgresql_refuses_is_one_line_naming_where_the_spec_writes_it(shop, pg):
    _, spec = shop
    doc = yaml.safe_load(spec.read_text())
    doc["views"]["customer_totals"]["sql"] = 'SELECT "nope" FROM "customer"'
    spec.write_text(yaml.safe_dump(doc, sort_keys=False))
    with pytest.raises(TargetError) as caught:
        plan_of(spec)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{spec}:") and "views.customer_totals.sql: PostgreSQL refuses view" in message
    assert 'column "nope" does not exist' in message


def test_a_view_the_source_does_not_have_is_a_spec_mistake(shop):
    _, spec = shop
    doc = yaml.safe_load(spec.read_text())
    doc["views"]["customer_total"] = {"sql": 'SELECT 1 AS "x"'}
    spec.write_text(yaml.safe_dump(doc, sort_keys=False))
    with pytest.raises(
        SpecError, match="no view 'customer_total' in the source \\(did you mean 'customer_totals'\\?\\)"
    ):
        plan_of(spec)


def test_a_view_reading_a_renamed_table_is_named_not_written(tmp_sqlite, tmp_path, pg_url):
    source = tmp_sqlite(
        "CREATE TABLE MyItems (ItemId INTEGER PRIMARY KEY, Label TEXT);"
        "CREATE VIEW labels AS SELECT Label FROM MyItems;"
    )
    spec = tmp_path / "spec.yaml"
    init_spec(source, spec, target_url=pg_url, naming="snake")  # type: ignore[arg-type]
    text = spec.read_text()
    assert "views" not in (yaml.safe_load(text) or {})
    assert "# !! view labels: not created in PostgreSQL: it reads table 'MyItems', named 'my_items'" in text


def test_a_view_holding_a_value_postgresql_cannot_match_fails_the_apply(tmp_sqlite, migration):
    m = migration(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, b INTEGER);"
        "INSERT INTO t VALUES (1, 7, 2);"
        "CREATE VIEW halves AS SELECT id, a * b AS p FROM t;"
    )
    m.write_spec('views:\n  halves:\n    sql: SELECT "id", "a" + "b" AS "p" FROM "t"\n')
    with pytest.raises(
        VerificationFailed, match='view "halves": the same number of rows but different values'
    ):
        m.apply()


def test_etl_verify_compares_the_views_too(shop, pg):
    from etl.pipeline import check, verify

    _, spec = shop
    apply_spec(spec)
    assert verify(check(spec, {})).ok
    pg.execute('DELETE FROM "order" WHERE id = 13')  # not in any customer's total: the view is unchanged
    pg.execute('UPDATE "order" SET amount = 31 WHERE id = 10')
    found = verify(check(spec, {}))
    assert not found.ok
    assert {v.view for v in found.views if not v.ok} == {"customer_totals", "big_spenders"}


def test_rollback_after_an_apply_that_created_views_restores_the_tables(shop, pg):
    from etl.run.rollback import apply_rollback, plan_rollback

    source, spec = shop
    apply_spec(spec)
    with closing(sqlite3.connect(source)) as con:
        con.execute("INSERT INTO customer VALUES (4, 'Edsger', 'Austin')")
        con.commit()
    apply_spec(spec)
    assert pg_rows(pg, "SELECT count(*) FROM customer_totals") == [(4,)]
    url = pg.info.dsn
    apply_rollback(plan_rollback(url, "public"), url)
    assert pg_rows(pg, "SELECT name FROM customer") == [("Ada",), ("Grace",), ("Linus",)]
    # The views read the restored tables, and show their rows again.
    assert pg_rows(pg, "SELECT count(*) FROM customer_totals") == [(3,)]
    assert pg_rows(pg, "SELECT name, total FROM big_spenders") == [("Ada", 42)]


def test_rollback_of_the_apply_that_created_everything_leaves_no_view_behind(shop, pg):
    from etl.run.rollback import apply_rollback, plan_rollback

    _, spec = shop
    apply_spec(spec)
    apply_rollback(plan_rollback(pg.info.dsn, "public"), pg.info.dsn)
    left = pg.execute(
        "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v')"
    ).fetchall()
    assert left == []


def test_hostile_view_and_table_names_are_only_names(migration, pg):
    table = 'x"; DROP TABLE t; --'
    view = 'v"; DROP VIEW w; --'
    quoted_table, quoted_view = (name.replace('"', '""') for name in (table, view))
    m = migration(
        f'CREATE TABLE "{quoted_table}" (id INTEGER PRIMARY KEY, "it\'s" TEXT);'
        f"INSERT INTO \"{quoted_table}\" VALUES (1, 'a''b');"
        f'CREATE VIEW "{quoted_view}" AS SELECT "it\'s" FROM "{quoted_table}" WHERE id = 1;'
    )
    init_spec(m.source, m.spec_path, target_url=m.url)
    assert list(yaml.safe_load(m.spec_path.read_text())["views"]) == [view]
    from etl.pipeline import apply, check, plan_for

    checked = check(m.spec_path, {})
    assert apply(checked, plan_for(checked)).verified
    assert pg.execute(f'SELECT * FROM "{quoted_view}"').fetchall() == [("a'b",)]
    assert not plan_for(check(m.spec_path, {})).has_changes


def test_the_json_plan_names_each_view_step_and_validates(shop):
    import json

    import jsonschema

    from etl.core.explain import plan_document

    _, spec = shop
    document = plan_document(plan_of(spec), "target")
    schema = json.loads((Path(__file__).parent.parent / "schemas" / "etl-plan.schema.json").read_text())
    jsonschema.validate(document, schema)
    views = [(s["action"], s["view"]) for s in document["steps"] if "view" in s]
    assert views == [("create_view", "customer_totals"), ("create_view", "big_spenders")]
    assert document["summary"]["views"] == {"create": 2, "replace": 0, "drop": 0}


def test_tables_replaced_under_views_take_their_views_with_them_and_back(shop, pg):
    source, spec = shop
    doc = yaml.safe_load(spec.read_text())
    doc["mode"] = "replace"
    spec.write_text(yaml.safe_dump(doc, sort_keys=False))
    apply_spec(spec)
    with closing(sqlite3.connect(source)) as con:
        con.execute('INSERT INTO "order" VALUES (14, 3, 100)')
        con.commit()
    plan, result = apply_spec(spec, allow_destructive=True)
    names = [type(s).__name__ for s in plan.steps]
    assert names.index("DropView") < names.index("DropTables") < names.index("CreateView")
    assert result.verified
    assert pg_rows(pg, "SELECT name FROM big_spenders") == [("Ada",), ("Linus",)]
    assert not plan_of(spec).has_changes


# --- query: tables: a SQLite query loaded as a table (pgloader's MATERIALIZE VIEWS) ---------------

QUERY_TABLE = """
tables:
  totals:
    query: SELECT c.id, c.name, count(o.id) AS orders, sum(o.amount) AS total
      FROM customer c LEFT JOIN "order" o ON o.customer_id = c.id GROUP BY c.id
    primary_key: [id]
    columns:
      orders: {type: bigint}
      total: {type: bigint}
"""


def test_a_query_table_loads_the_rows_of_the_query(migration, pg):
    m = migration(SHOP)
    plan = m.plan(QUERY_TABLE)
    text = "\n".join(plan_lines(plan, "target"))
    assert '+ table "totals" (4 columns) <- 3 rows from a query' in text
    result = m.apply()
    assert result.verified
    assert pg_rows(pg, "SELECT * FROM totals") == sqlite_rows(
        m.source,
        'SELECT c.id, c.name, count(o.id), sum(o.amount) FROM customer c LEFT JOIN "order" o '
        "ON o.customer_id = c.id GROUP BY c.id",
    )
    types = dict(
        pg.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'totals'"
        ).fetchall()
    )
    assert types == {"id": "bigint", "name": "text", "orders": "bigint", "total": "bigint"}
    assert pg.execute("SELECT count(*) FROM customer").fetchone() == (3,)  # the source's tables too
    # A query table is synced like any other: a changed row of the query is updated by its key.
    m.change_source('UPDATE "order" SET amount = 13 WHERE id = 12')
    again = m.plan()
    synced = {s.table.name: s.diff.counts() for s in again.steps if isinstance(s, SyncRows)}
    assert synced == {"order": (0, 1, 0), "totals": (0, 1, 0)}
    m.apply()
    assert pg.execute("SELECT total FROM totals WHERE id = 2").fetchone() == (13,)
    assert not m.plan().has_changes


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("SELECT 1; DELETE FROM customer", "tables.totals.query: table 'totals': `;` at character 9"),
        (
            "SELECT nope FROM customer",
            "tables.totals.query: table 'totals': SQLite refuses the query: no such column: nope",
        ),
        ("SELECT * FROM customer", "tables.customer.query: 'customer' is a table or view of the source"),
        (
            "SELECT name FROM customer\n    mode: upsert",
            "table 'totals' has none (a query's table has the key its `primary_key` gives)",
        ),
    ],
)
def test_bad_sql_in_a_query_table_is_one_line_naming_where_the_spec_writes_it(migration, query, message):
    m = migration(SHOP)
    name = "customer" if "is a table" in message else "totals"
    with pytest.raises(SpecError) as caught:
        m.check(f"tables:\n  {name}:\n    query: {query}\n")
    lines = [line for line in str(caught.value).splitlines() if message in line]
    assert len(lines) == 1 and lines[0].startswith(f"{m.spec_path}:")


def test_etl_verify_lists_the_views_on_the_command_line(shop):
    from typer.testing import CliRunner

    from etl.cli import app

    _, spec = shop
    apply_spec(spec)
    result = CliRunner().invoke(app, ["verify", str(spec)])
    assert result.exit_code == 0, result.stderr
    assert (
        "view customer_totals" in result.stdout
        and "Verified: 2 tables and 2 views match the source." in result.stdout
    )


def test_a_view_removed_from_the_spec_is_dropped_and_the_plan_says_so(shop, pg):
    _, spec = shop
    apply_spec(spec)
    pg.execute("CREATE VIEW mine AS SELECT 1 AS one")  # the user's own: not etl's to drop
    pg.commit()
    doc = yaml.safe_load(spec.read_text())
    del doc["views"]["big_spenders"]
    spec.write_text(yaml.safe_dump(doc, sort_keys=False))

    plan = plan_of(spec)
    assert [(s.name, s.removed) for s in plan.steps if isinstance(s, DropView)] == [("big_spenders", True)]
    text = "\n".join(plan_lines(plan, "target"))
    assert '- view "public"."big_spenders": no longer in the spec; dropped (a view holds no rows)' in text
    assert "views: 0 to create, 0 to replace, 1 to drop." in text
    _, result = apply_spec(spec)
    assert result.verified
    views = {r[0] for r in pg.execute("SELECT viewname FROM pg_views WHERE schemaname = 'public'")}
    assert views == {"customer_totals", "mine"}
    assert not plan_of(spec).has_changes


def test_a_view_still_read_by_another_cannot_be_removed_alone(shop, pg):
    _, spec = shop
    apply_spec(spec)
    doc = yaml.safe_load(spec.read_text())
    del doc["views"]["customer_totals"]
    spec.write_text(yaml.safe_dump(doc, sort_keys=False))
    # The spec's own view reading it: a spec mistake, named where the spec writes it.
    with pytest.raises(SpecError, match="view 'big_spenders' reads 'customer_totals', which is neither"):
        plan_of(spec)

    del doc["views"]["big_spenders"]
    spec.write_text(yaml.safe_dump(doc, sort_keys=False))
    plan = plan_of(spec)
    # The reader goes first: PostgreSQL refuses to drop a view another one reads.
    assert [s.name for s in plan.steps if isinstance(s, DropView)] == ["big_spenders", "customer_totals"]
    apply_spec(spec)
    assert pg.execute("SELECT count(*) FROM pg_views WHERE schemaname = 'public'").fetchone() == (0,)


def test_a_view_of_the_users_reading_a_removed_view_is_named_at_plan_time(shop, pg):
    _, spec = shop
    apply_spec(spec)
    pg.execute("CREATE VIEW report AS SELECT name FROM big_spenders")
    pg.commit()
    doc = yaml.safe_load(spec.read_text())
    del doc["views"]["big_spenders"]
    spec.write_text(yaml.safe_dump(doc, sort_keys=False))
    with pytest.raises(PlanError, match='view "public"."report" reads view "big_spenders"'):
        plan_of(spec)


def test_rollback_restores_a_views_definition_from_before_the_apply(shop, pg):
    from etl.core.explain import rollback_lines
    from etl.run.rollback import apply_rollback, plan_rollback

    _, spec = shop
    apply_spec(spec)
    original = spec.read_text()
    doc = yaml.safe_load(original)
    doc["views"]["big_spenders"]["sql"] = 'SELECT "name", "total" FROM "customer_totals" WHERE "total" > 100'
    spec.write_text(yaml.safe_dump(doc, sort_keys=False))
    # The rows no longer equal SQLite's view: written without verification, as a user's own edit.
    from etl.pipeline import apply, check, plan_for

    checked = check(spec, {})
    apply(checked, plan_for(checked), verify=False)
    assert pg_rows(pg, "SELECT name FROM big_spenders") == []

    plan = plan_rollback(pg.info.dsn, "public")
    assert plan.restores == () and [name for name, _ in plan.views] == ["big_spenders"]
    lines = rollback_lines(plan)
    assert '~ view "public"."big_spenders": its definition before that apply restored' in lines
    assert lines[-1] == "Plan: 0 tables to restore, 1 view to restore."
    apply_rollback(plan, pg.info.dsn)
    assert pg_rows(pg, "SELECT name, total FROM big_spenders") == [("Ada", 42)]
    # The target is again what the first spec made.
    spec.write_text(original)
    assert not plan_of(spec).has_changes


def test_rollback_creates_again_a_view_the_apply_dropped_and_drops_one_it_created(shop, pg):
    from etl.run.rollback import apply_rollback, plan_rollback

    source, spec = shop
    apply_spec(spec)
    with closing(sqlite3.connect(source)) as con:
        con.execute("CREATE VIEW small_spenders AS SELECT name FROM customer_totals WHERE total < 20")
        con.commit()
    original = spec.read_text()
    doc = yaml.safe_load(original)
    del doc["views"]["big_spenders"]
    doc["views"]["small_spenders"] = {"sql": 'SELECT "name" FROM "customer_totals" WHERE "total" < 20'}
    spec.write_text(yaml.safe_dump(doc, sort_keys=False))
    apply_spec(spec)
    views = {r[0] for r in pg.execute("SELECT viewname FROM pg_views WHERE schemaname = 'public'")}
    assert views == {"customer_totals", "small_spenders"}

    apply_rollback(plan_rollback(pg.info.dsn, "public"), pg.info.dsn)
    views = {r[0] for r in pg.execute("SELECT viewname FROM pg_views WHERE schemaname = 'public'")}
    assert views == {"customer_totals", "big_spenders"}
    assert pg_rows(pg, "SELECT name, total FROM big_spenders") == [("Ada", 42)]
    spec.write_text(original)
    assert not plan_of(spec).has_changes
