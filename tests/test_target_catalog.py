"""The target's catalog, read back, says exactly what apply created from the mapping: the
ground a schema diff stands on (an unchanged target must diff to nothing)."""

from __future__ import annotations

import shutil
from pathlib import Path

from make_chat_app import build_chat_app

from etl.pipeline import apply, check, plan_for
from etl.postgres.catalog import read_target_catalog

ROOT = Path(__file__).resolve().parent.parent


def test_an_applied_mapping_reads_back_identically(tmp_path, pg, pg_url, migration):
    (tmp_path / "specs").mkdir()
    (tmp_path / "samples").mkdir()
    spec = tmp_path / "specs" / "chat_app.yaml"
    shutil.copy(ROOT / "specs" / "chat_app.yaml", spec)
    build_chat_app(tmp_path / "samples" / "chat_app.db", users=10, messages=50, seed=3)

    checked = check(spec, {"DATABASE_URL": pg_url})
    mapping = checked.mapping
    apply(checked, plan_for(checked))

    catalog = read_target_catalog(pg, "public")
    assert catalog.exists
    assert sorted(t.name for t in catalog.tables) == sorted(t.name for t in mapping.tables)
    for table in mapping.tables:
        found = catalog.table(table.name)
        assert found is not None
        assert [c.name for c in found.columns] == [c.name for c in table.columns]
        for column in table.columns:
            pg_column = found.column(column.name)
            assert pg_column is not None
            assert pg_column.type == column.pg_type.sql(), (table.name, column.name)
            assert pg_column.nullable == column.nullable, (table.name, column.name)
            assert pg_column.identity == column.identity, (table.name, column.name)
        primary_key = found.primary_key
        assert primary_key is not None
        assert (primary_key.name, primary_key.columns) == (table.primary_key_name, table.primary_key)
        assert {(c.name, c.columns) for c in found.constraints if c.kind == "u"} == {
            (u.name, u.columns) for u in table.uniques
        }
        assert {
            (c.name, c.columns, c.ref_table, c.ref_columns, c.on_delete, c.on_update)
            for c in found.constraints
            if c.kind == "f"
        } == {
            (f.name, f.columns, f.ref_table, f.ref_columns, f.on_delete, f.on_update)
            for f in table.foreign_keys
        }
        assert {i.name for i in found.indexes} == {i.name for i in table.indexes}


def test_a_missing_schema_reads_as_not_existing(pg):
    catalog = read_target_catalog(pg, "no_such_schema")
    assert not catalog.exists and catalog.tables == ()


def test_enums_read_back_with_their_labels_in_order(migration, pg):
    m = migration("CREATE TABLE u (id INTEGER PRIMARY KEY, role TEXT); INSERT INTO u VALUES (1, 'B');")
    m.apply("enums:\n  Role: [B, A]\ntables:\n  u:\n    columns:\n      role: {type: Role}\n")
    catalog = read_target_catalog(pg, "public")
    assert catalog.enums == (("Role", ("B", "A")),)
    column = catalog.table("u").column("role")
    assert column is not None and column.type == '"Role"'
