"""Enum types: declared in the spec (or taken from a Prisma schema by `etl init --prisma`), created
in the target schema, and every value checked against the labels."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from etl.core.explain import step_text
from etl.errors import DataError, SpecError
from etl.init.infer import init_spec

SOURCE = """
CREATE TABLE "User" (id INTEGER PRIMARY KEY, role TEXT NOT NULL DEFAULT 'USER');
INSERT INTO "User" (role) VALUES ('ADMIN'), ('USER'), ('USER');
"""

ENUM_SPEC = """
enums:
  Role: [USER, ADMIN]
tables:
  User:
    columns:
      role: {type: Role}
"""


def test_a_spec_enum_is_created_and_the_column_uses_it(migration, pg):
    m = migration(SOURCE)
    m.apply(ENUM_SPEC)
    assert pg.execute('SELECT enum_range(NULL::"Role")::text[]').fetchone() == (["USER", "ADMIN"],)
    assert pg.execute(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = '\"User\"'::regclass AND attname = 'role'"
    ).fetchone() == ('"Role"',)
    assert pg.execute('SELECT role::text FROM "User" ORDER BY id').fetchall() == [
        ("ADMIN",),
        ("USER",),
        ("USER",),
    ]
    # the default survives the conversion and is a label
    assert pg.execute('INSERT INTO "User" (id) VALUES (10) RETURNING role::text').fetchone() == ("USER",)


def test_a_value_that_is_not_a_label_is_named(migration, pg):
    m = migration(SOURCE + "INSERT INTO \"User\" (role) VALUES ('admin');")
    with pytest.raises(DataError) as failure:
        m.apply(ENUM_SPEC)
    assert str(failure.value) == (
        'table "User", row id=4: column "role": expected a label of enum Role (USER, ADMIN), found text \'admin\''
    )


def test_a_label_added_to_the_spec_replaces_the_type_and_keeps_rows_and_default(migration, pg):
    m = migration(SOURCE)
    m.apply(ENUM_SPEC)
    m.change_source("INSERT INTO \"User\" (role) VALUES ('GUEST')")
    m.write_spec(ENUM_SPEC.replace("[USER, ADMIN]", "[USER, ADMIN, GUEST]"))
    plan = m.plan()
    assert [step_text(s) for s in plan.steps][:2] == [
        '  keep a copy of "User" for etl rollback (rollback.retention: 1)',
        '~ enum type "public"."Role" (USER, ADMIN, GUEST): + GUEST',
    ]
    assert not plan.destructive_steps
    m.apply()
    assert pg.execute('SELECT enum_range(NULL::"Role")::text[]').fetchone() == (["USER", "ADMIN", "GUEST"],)
    assert pg.execute('SELECT role::text FROM "User" ORDER BY id').fetchall() == [
        ("ADMIN",),
        ("USER",),
        ("USER",),
        ("GUEST",),
    ]
    default = pg.execute(
        "SELECT column_default FROM information_schema.columns WHERE table_name = 'User' AND column_name = 'role'"
    ).fetchone()
    assert default == ("'USER'::\"Role\"",)
    assert not m.plan().has_changes


def test_a_label_removed_is_destructive_and_a_source_row_using_it_fails_the_plan(migration, pg):
    from etl.errors import DestructiveChangeRefused

    m = migration(SOURCE)
    m.apply(ENUM_SPEC)
    m.write_spec(ENUM_SPEC.replace("[USER, ADMIN]", "[USER]"))
    with pytest.raises(
        DataError,
        match=r"row id=1: column \"role\": expected a label of enum Role \(USER\), found text 'ADMIN'",
    ):
        m.plan()
    m.change_source("DELETE FROM \"User\" WHERE role = 'ADMIN'")
    with pytest.raises(DestructiveChangeRefused, match="--allow-destructive"):
        m.apply()
    m.apply(allow_destructive=True)
    assert pg.execute('SELECT enum_range(NULL::"Role")::text[]').fetchone() == (["USER"],)
    assert pg.execute('SELECT count(*) FROM "User"').fetchone() == (2,)


def test_quotes_in_an_enum_name_and_its_labels_load_and_are_named_in_messages(migration, pg):
    """The labels and the type's name go into the load query's messages as quoted literals: a
    quote in them once broke the query with a syntax error instead of naming the bad row. The
    messages are printf templates: a % in a label stays a %."""
    m = migration(
        """
        CREATE TABLE "User" (id INTEGER PRIMARY KEY, role TEXT);
        INSERT INTO "User" (role) VALUES ('it''s'), ('owner');
        """
    )
    spec = """
    enums:
      "Ro'le": ["it's", "owner's", "100%s"]
    tables:
      User:
        columns:
          role: {type: "Ro'le"}
    """
    with pytest.raises(
        DataError,
        match=r"row id=2: column \"role\": expected a label of enum Ro'le \(it's, owner's, 100%s\), found text 'owner'$",
    ):
        m.apply(spec)
    m.change_source("UPDATE \"User\" SET role = 'owner''s' WHERE id = 2")
    m.apply()
    assert pg.execute('SELECT id, role::text FROM "User" ORDER BY id').fetchall() == [
        (1, "it's"),
        (2, "owner's"),
    ]


def test_duplicate_labels_are_a_spec_error(migration):
    m = migration(SOURCE)
    m.write_spec("enums:\n  Role: [USER, USER]\n")
    with pytest.raises(
        SpecError, match=r"spec.yaml:7:9: enums.Role: \[.USER., .USER.\] has non-unique elements"
    ):
        from etl.run.validate import validate

        validate(m.spec_path, {})


PRISMA = """
datasource db {
  provider = "sqlite"
  url      = "file:./dev.db"
}

enum Role {
  USER
  ADMIN  @map("admin")
}

model User {
  id   Int  @id @default(autoincrement())
  role Role @default(USER)
}
"""


def build(tmp_path: Path, roles: list[str]) -> tuple[Path, Path]:
    db = tmp_path / "app.db"
    with closing(sqlite3.connect(db)) as con:
        con.execute(
            'CREATE TABLE "User" ("id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, "role" TEXT NOT NULL DEFAULT \'USER\')'
        )
        con.executemany('INSERT INTO "User" (role) VALUES (?)', [(r,) for r in roles])
        con.commit()
    prisma = tmp_path / "schema.prisma"
    prisma.write_text(PRISMA)
    return db, prisma


def test_init_with_prisma_writes_the_enum_and_apply_creates_it(tmp_path, migration, pg, pg_url):
    db, prisma = build(tmp_path, ["USER", "admin"])
    spec = tmp_path / "spec.yaml"
    result = init_spec(db, spec, target_url=pg_url, prisma_schema=prisma)
    text = spec.read_text()
    assert "enums:\n  Role: [USER, admin]\n" in text
    assert "role: {type: Role}" in text
    assert result.findings == []
    from etl.pipeline import apply, check, plan_for

    checked = check(spec, {})
    apply(checked, plan_for(checked))
    assert pg.execute('SELECT role::text FROM "User" ORDER BY id').fetchall() == [("USER",), ("admin",)]


def test_init_with_prisma_keeps_text_when_values_are_not_labels(tmp_path):
    db, prisma = build(tmp_path, ["USER", "SUPERUSER"])
    result = init_spec(db, tmp_path / "spec.yaml", prisma_schema=prisma)
    assert [str(f) for f in result.findings] == [
        "User.role: holds 1 values that are not labels of enum Role (e.g. 'SUPERUSER'); chose text"
    ]
    assert "role: {type: text}" in (tmp_path / "spec.yaml").read_text()
