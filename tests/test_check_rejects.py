"""Rows a CHECK sets aside behave like every other reject: with on_error: reject the rows that
point at them (and theirs) are set aside too, naming the foreign key, as the children of a row
rejected at load are; the run commits and verification accounts for every row."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from etl.core.explain import plan_document, plan_lines
from etl.errors import DataError, EtlError

PLAN_SCHEMA = json.loads((Path(__file__).parent.parent / "schemas" / "etl-plan.schema.json").read_text())

# An order refused by its check (total < 0) has lines, and a line has notes; a category refused
# by its check has subcategories (a reference onto its own table), and theirs.
SHOP = """
CREATE TABLE orders (id INTEGER PRIMARY KEY, total REAL CHECK (total >= 0));
CREATE TABLE line (id INTEGER PRIMARY KEY, order_id INTEGER REFERENCES orders (id), qty INTEGER);
CREATE TABLE note (id INTEGER PRIMARY KEY, line_id INTEGER REFERENCES line (id), body TEXT);
PRAGMA ignore_check_constraints = 1;
INSERT INTO orders VALUES (1, 10), (2, -5), (3, 7);
INSERT INTO line VALUES (10, 1, 1), (20, 2, 2), (21, 2, 3), (30, 3, 4), (40, NULL, 5);
INSERT INTO note VALUES (100, 10, 'a'), (200, 20, 'b'), (201, 21, 'c'), (300, 30, 'd');
"""

CATEGORIES = """
CREATE TABLE category (
    id INTEGER PRIMARY KEY,
    parent_id INTEGER REFERENCES category (id),
    name TEXT CHECK (length(name) > 0)
);
PRAGMA ignore_check_constraints = 1;
INSERT INTO category VALUES (1, NULL, 'root'), (2, 1, ''), (3, 2, 'child'), (4, 3, 'grandchild'), (5, 1, 'ok');
"""


def test_the_children_and_grandchildren_of_a_row_a_check_sets_aside_follow_it(migration, pg):
    m = migration(SHOP)
    result = m.apply("on_error: reject\n")

    assert result.verified
    assert [(r["table"], r["key"], r["column"], r["reason"]) for r in result.rejects] == [
        (
            "orders",
            "id=2",
            "total",
            'column "total": violates check "orders_total_check" ("total" >= 0), found real -5.0',
        ),
        ("line", "id=20", None, 'foreign key (order_id) references no "orders" row with (id) = (2)'),
        ("line", "id=21", None, 'foreign key (order_id) references no "orders" row with (id) = (2)'),
        ("note", "id=200", None, 'foreign key (line_id) references no "line" row with (id) = (20)'),
        ("note", "id=201", None, 'foreign key (line_id) references no "line" row with (id) = (21)'),
    ]
    assert result.rejects[1]["row"]["qty"] == {"type": "integer", "text": "2"}
    assert result.rows == {"orders": 2, "line": 3, "note": 2}
    assert pg.execute("SELECT id FROM line ORDER BY id").fetchall() == [(10,), (30,), (40,)]
    assert pg.execute("SELECT id FROM note ORDER BY id").fetchall() == [(100,), (300,)]
    stored = pg.execute("SELECT source_table, row_key FROM etl.rejects ORDER BY id").fetchall()
    assert stored == [
        ("orders", "id=2"),
        ("line", "id=20"),
        ("line", "id=21"),
        ("note", "id=200"),
        ("note", "id=201"),
    ]
    # The foreign keys hold: PostgreSQL refuses a line of the order that was set aside.
    with pytest.raises(Exception, match="foreign key"), pg.transaction():
        pg.execute("INSERT INTO line VALUES (99, 2, 1)")


def test_a_self_reference_takes_every_descendant_along(migration, pg):
    m = migration(CATEGORIES)
    result = m.apply("on_error: reject\n")

    assert result.verified
    assert [(r["key"], r["reason"].split(",")[0]) for r in result.rejects] == [
        ("id=2", 'column "name": violates check "category_name_check" (length("name") > 0)'),
        ("id=3", 'foreign key (parent_id) references no "category" row with (id) = (2)'),
        ("id=4", 'foreign key (parent_id) references no "category" row with (id) = (3)'),
    ]
    assert pg.execute("SELECT id FROM category ORDER BY id").fetchall() == [(1,), (5,)]


def test_a_child_table_that_fails_names_the_parents_check(migration, pg):
    m = migration(SHOP)
    with pytest.raises(DataError) as caught:
        m.apply("tables:\n  orders: {on_error: reject}\n")
    message = str(caught.value)
    assert message.startswith(
        'table "line": 2 rows reference "orders" rows set aside (table "orders", row id=2: '
    )
    assert 'violates check "orders_total_check"' in message and "nothing was committed" in message
    assert pg.execute("SELECT count(*) FROM pg_tables WHERE tablename = 'orders'").fetchone() == (0,)


def test_children_set_aside_count_against_max_rejects(migration):
    m = migration(SHOP)
    with pytest.raises(EtlError, match='table "line": 2 rows rejected, more than max_rejects 1'):
        m.apply("on_error: reject\ntables:\n  line: {max_rejects: 1}\n")


def test_applied_again_nothing_changes_and_a_fixed_row_brings_its_children_in(migration, pg):
    m = migration(SHOP)
    m.apply("on_error: reject\n")
    # The row its check set aside is left out of the plan: nothing changes, nothing is rejected
    # again; its children stay aside (their parent is still missing in the target).
    again = m.apply("on_error: reject\n")
    assert again.verified and again.changes == {} and again.rejects == []
    assert pg.execute("SELECT id FROM line ORDER BY id").fetchall() == [(10,), (30,), (40,)]

    m.change_source("UPDATE orders SET total = 5 WHERE id = 2;")
    fixed = m.apply("on_error: reject\n")
    assert fixed.verified and fixed.rejects == [] and fixed.changes == {"orders": (1, 0, 0)}
    # A child's diff reads its parent as the target holds it when planned: each generation of
    # another table arrives with the apply after its parent's.
    assert m.apply("on_error: reject\n").changes == {"line": (2, 0, 0)}
    assert m.apply("on_error: reject\n").changes == {"note": (2, 0, 0)}
    assert pg.execute("SELECT id FROM note ORDER BY id").fetchall() == [(100,), (200,), (201,), (300,)]


def test_applied_again_a_self_references_descendants_stay_aside_until_fixed(migration, pg):
    m = migration(CATEGORIES)
    m.apply("on_error: reject\n")
    # The row its check refused stays out; its descendants are planned again (only the rows a
    # check refuses are recorded, so that a descendant arrives with its ancestor), and the sync
    # sets them aside again.
    again = m.apply("on_error: reject\n")
    assert again.verified and again.changes == {"category": (0, 0, 0)}
    assert [r["key"] for r in again.rejects] == ["id=3", "id=4"]
    assert 'references no "category" row with (id) = (2)' in again.rejects[0]["reason"]
    assert pg.execute("SELECT id FROM category ORDER BY id").fetchall() == [(1,), (5,)]

    m.change_source("UPDATE category SET name = 'fixed' WHERE id = 2;")
    fixed = m.apply("on_error: reject\n")
    assert fixed.verified and fixed.rejects == [] and fixed.changes == {"category": (3, 0, 0)}
    assert pg.execute("SELECT id FROM category ORDER BY id").fetchall() == [(1,), (2,), (3,), (4,), (5,)]


def test_rows_a_check_set_aside_stay_out_of_later_plans_until_fixed(migration, pg):
    m = migration(
        SHOP + "CREATE TABLE tag (id INTEGER PRIMARY KEY, name TEXT);\nINSERT INTO tag VALUES (1, 'a');\n"
    )
    first = m.apply("on_error: reject\n")
    assert [r["key"] for r in first.rejects if r["table"] == "orders"] == ["id=2"]

    plan = m.plan("on_error: reject\n")
    assert plan.steps == ()
    assert [(name, rows) for name, rows, _, _ in plan.set_aside] == [("orders", 1)]
    text = "\n".join(plan_lines(plan, "db"))
    assert '"orders": 1 rows set aside by checks at apply of ' in text
    document = plan_document(plan, "db")
    jsonschema.validate(document, PLAN_SCHEMA)
    assert [(s["table"], s["rows"]) for s in document["set_aside"]] == [("orders", 1)]

    again = m.apply("on_error: reject\n")
    assert again.verified and again.rejects == [] and again.changes == {}
    assert pg.execute("SELECT count(*) FROM etl.rejects").fetchone() == (5,)

    # Rows of the table changed otherwise still sync; the row set aside stays out.
    m.change_source("INSERT INTO orders VALUES (4, 1); UPDATE orders SET total = 11 WHERE id = 1;")
    changed = m.apply("on_error: reject\n")
    assert changed.verified and changed.rejects == [] and changed.changes == {"orders": (1, 1, 0)}
    assert pg.execute("SELECT id, total FROM orders ORDER BY id").fetchall() == [
        (1, 11.0),
        (3, 7.0),
        (4, 1.0),
    ]

    # Fixed in the source, the row has other values: it arrives, and no longer stays aside.
    m.change_source("UPDATE orders SET total = 5 WHERE id = 2;")
    assert m.plan("on_error: reject\n").set_aside == ()
    fixed = m.apply("on_error: reject\n")
    assert fixed.verified and fixed.rejects == [] and fixed.changes == {"orders": (1, 0, 0)}
    assert pg.execute("SELECT id FROM orders ORDER BY id").fetchall() == [(1,), (2,), (3,), (4,)]


def test_a_check_that_changes_lets_the_rows_it_set_aside_be_planned_again(migration, pg):
    m = migration(SHOP)
    m.apply("on_error: reject\n")
    looser = 'on_error: reject\ntables:\n  orders:\n    checks: [{name: orders_total_check, sql: "total >= -10"}]\n'
    # The apply that changes the check still leaves the row out (as planned), verified exactly.
    changed = m.apply(looser)
    assert changed.verified and changed.rejects == []
    assert m.plan(looser).set_aside == ()
    assert m.apply(looser).changes == {"orders": (1, 0, 0)}
    assert pg.execute("SELECT id FROM orders ORDER BY id").fetchall() == [(1,), (2,), (3,)]


def test_with_on_error_fail_the_rows_set_aside_are_planned_again_and_fail(migration):
    m = migration(SHOP)
    m.apply("on_error: reject\n")
    assert m.plan("on_error: fail\n").set_aside == ()
    with pytest.raises(DataError, match='violates check "orders_total_check"'):
        m.apply("on_error: fail\n")
