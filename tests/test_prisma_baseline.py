"""Prisma's baseline and the many-to-many layout of the app's Prisma version, without node: what
`etl init --prisma` records and `etl apply` writes. (tests/test_prisma_in_sync.py has real Prisma
judge the same for Prisma 6; Prisma 5 cannot run here, so its layout is checked against the DDL
Prisma documents for it.)"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from pathlib import Path

import jsonschema
import psycopg
import pytest
from typer.testing import CliRunner

from etl.cli import app
from etl.init.prisma import prisma_version

runner = CliRunner()
PLAN_SCHEMA = Path(__file__).resolve().parent.parent / "schemas" / "etl-plan.schema.json"

# Prisma's own example of an implicit many-to-many relation (its "Upgrade to Prisma ORM 6" guide).
POST_TO_TAG = """\
generator client {
  provider = "prisma-client-js"
}

datasource db {
  provider = "sqlite"
  url      = env("DATABASE_URL")
}

model Post {
  id         Int    @id @default(autoincrement())
  title      String
  categories Tag[]
}

model Tag {
  id    Int    @id @default(autoincrement())
  name  String
  posts Post[]
}
"""
# ... and the SQLite tables Prisma makes of it (the same in Prisma 5 and 6).
POST_TO_TAG_SQLITE = """
CREATE TABLE "Post" ("id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, "title" TEXT NOT NULL);
CREATE TABLE "Tag" ("id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, "name" TEXT NOT NULL);
CREATE TABLE "_PostToTag" (
    "A" INTEGER NOT NULL, "B" INTEGER NOT NULL,
    CONSTRAINT "_PostToTag_A_fkey" FOREIGN KEY ("A") REFERENCES "Post" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "_PostToTag_B_fkey" FOREIGN KEY ("B") REFERENCES "Tag" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE UNIQUE INDEX "_PostToTag_AB_unique" ON "_PostToTag"("A", "B");
CREATE INDEX "_PostToTag_B_index" ON "_PostToTag"("B");
INSERT INTO "Post" VALUES (1, 'hello');
INSERT INTO "Tag" VALUES (1, 'news'), (2, 'prisma');
INSERT INTO "_PostToTag" VALUES (1, 1), (1, 2);
"""
# The relation table's PostgreSQL DDL before Prisma 6, as that guide shows it.
PRISMA_5_RELATION_TABLE = """\
-- CreateTable
CREATE TABLE "_PostToTag" (
    "A" INTEGER NOT NULL,
    "B" INTEGER NOT NULL
);

-- CreateIndex
CREATE UNIQUE INDEX "_PostToTag_AB_unique" ON "_PostToTag"("A", "B");

-- CreateIndex
CREATE INDEX "_PostToTag_B_index" ON "_PostToTag"("B");

-- AddForeignKey
ALTER TABLE "_PostToTag" ADD CONSTRAINT "_PostToTag_A_fkey" FOREIGN KEY ("A") REFERENCES "Post"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "_PostToTag" ADD CONSTRAINT "_PostToTag_B_fkey" FOREIGN KEY ("B") REFERENCES "Tag"("id") ON DELETE CASCADE ON UPDATE CASCADE;
"""


def app_project(root: Path, tmp_sqlite, package: dict | None) -> tuple[Path, Path]:
    """A Prisma app: prisma/schema.prisma, prisma/dev.db, and package.json (if given) in `root`."""
    (root / "prisma").mkdir()
    schema = root / "prisma" / "schema.prisma"
    schema.write_text(POST_TO_TAG)
    if package is not None:
        (root / "package.json").write_text(json.dumps(package))
    return schema, tmp_sqlite(POST_TO_TAG_SQLITE)


def relation_indexes(pg: psycopg.Connection) -> list[tuple]:
    return pg.execute(
        "SELECT i.relname, x.indisprimary, x.indisunique, pg_get_indexdef(x.indexrelid) "
        "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = '\"_PostToTag\"'::regclass ORDER BY i.relname"
    ).fetchall()


def test_a_prisma_5_app_gets_prisma_5s_relation_tables(tmp_path, tmp_sqlite, pg, pg_url):
    """package.json asks for Prisma 5: the spec says so and lays `_PostToTag` out as Prisma 5 did
    (a unique index on A, B and no primary key), the target holds exactly that, and the baseline
    holds the DDL Prisma documents for it."""
    schema, db = app_project(tmp_path, tmp_sqlite, {"devDependencies": {"prisma": "^5.22.0"}})
    spec = tmp_path / "spec.yaml"
    result = runner.invoke(
        app, ["init", str(db), "-o", str(spec), "--target", pg_url, "--prisma", str(schema)]
    )
    assert result.exit_code == 0, result.output
    text = spec.read_text()
    assert (
        "# Prisma 5's layout (" in text
        and "prisma ^5.22.0): a unique index on (A, B), no primary key" in text
    )
    assert "primary_key: []" in text

    result = runner.invoke(app, ["apply", str(spec), "--yes"])
    assert result.exit_code == 0, result.output
    assert relation_indexes(pg) == [
        (
            "_PostToTag_AB_unique",
            False,
            True,
            'CREATE UNIQUE INDEX "_PostToTag_AB_unique" ON public."_PostToTag" USING btree ("A", "B")',
        ),
        (
            "_PostToTag_B_index",
            False,
            False,
            'CREATE INDEX "_PostToTag_B_index" ON public."_PostToTag" USING btree ("B")',
        ),
    ]
    with pytest.raises(psycopg.errors.UniqueViolation):
        pg.execute('INSERT INTO "_PostToTag" VALUES (1, 2)')

    # Prisma lists every CREATE TABLE, then the indexes, then the foreign keys: the relation
    # table's statements are, in Prisma 5's words, the last of each kind.
    migration = (tmp_path / "prisma" / "migrations" / "0_init" / "migration.sql").read_text()
    statements = re.split(r"\n\n(?=-- )", migration.rstrip("\n"))
    documented = re.split(r"\n\n(?=-- )", PRISMA_5_RELATION_TABLE.rstrip("\n"))
    assert [s for s in statements if "_PostToTag" in s] == documented
    assert [s.split("\n")[0] for s in statements] == [
        "-- CreateSchema",
        *["-- CreateTable"] * 3,
        *["-- CreateIndex"] * 2,
        *["-- AddForeignKey"] * 2,
    ]


def test_a_prisma_6_app_gets_the_primary_key(tmp_path, tmp_sqlite, pg, pg_url):
    schema, db = app_project(tmp_path, tmp_sqlite, {"dependencies": {"@prisma/client": "6.19.3"}})
    spec = tmp_path / "spec.yaml"
    result = runner.invoke(
        app, ["init", str(db), "-o", str(spec), "--target", pg_url, "--prisma", str(schema)]
    )
    assert result.exit_code == 0, result.output
    assert "# Prisma 6's layout (" in spec.read_text()
    result = runner.invoke(app, ["apply", str(spec), "--yes"])
    assert result.exit_code == 0, result.output
    assert [(name, primary) for name, primary, _, _ in relation_indexes(pg)] == [
        ("_PostToTag_AB_pkey", True),
        ("_PostToTag_B_index", False),
    ]


def test_prisma_version_reads_the_installed_package_first_then_package_json(tmp_path):
    project = tmp_path / "app"
    (project / "prisma").mkdir(parents=True)
    schema = project / "prisma" / "schema.prisma"
    schema.write_text(POST_TO_TAG)
    assert prisma_version(schema)[0] == 6  # nothing says: Prisma 6
    (project / "package.json").write_text(json.dumps({"devDependencies": {"prisma": "~4.16.2"}}))
    assert prisma_version(schema) == (4, f"{project / 'package.json'}: prisma ~4.16.2")
    installed = project / "node_modules" / "prisma"
    installed.mkdir(parents=True)
    (installed / "package.json").write_text(json.dumps({"name": "prisma", "version": "5.22.0"}))
    assert prisma_version(schema) == (5, f"{installed / 'package.json'}: prisma 5")


def test_init_takes_the_version_from_the_command_line(tmp_path, tmp_sqlite):
    schema, db = app_project(tmp_path, tmp_sqlite, {"devDependencies": {"prisma": "^6.0.0"}})
    spec = tmp_path / "spec.yaml"
    result = runner.invoke(
        app, ["init", str(db), "-o", str(spec), "--prisma", str(schema), "--prisma-version", "5"]
    )
    assert result.exit_code == 0, result.output
    assert "# Prisma 5's layout (--prisma-version 5)" in spec.read_text()


def test_apply_refuses_a_spec_that_also_loads_the_sqlite_history(tmp_path, tmp_sqlite, pg_url):
    """With prisma:, `_prisma_migrations` is Prisma's PostgreSQL history: copying SQLite's into
    it is refused, with the fix."""
    schema, db = app_project(tmp_path, tmp_sqlite, None)
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"version: 1\nsource: {{sqlite: {db.name}}}\ntarget: {{url: '{pg_url}'}}\n"
        f"prisma: {{schema: prisma/schema.prisma}}\n"
    )
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE _prisma_migrations (id TEXT PRIMARY KEY, migration_name TEXT)")
    result = runner.invoke(app, ["plan", str(spec)])
    assert result.exit_code == 1
    assert "the spec loads _prisma_migrations from SQLite" in result.output
    assert "add _prisma_migrations to the spec's exclude" in result.output
    assert not (tmp_path / "prisma" / "migrations").exists()


def test_the_baseline_follows_the_spec_until_cut_over(tmp_path, tmp_sqlite, pg, pg_url):
    """Applied again after the spec changed the schema, the baseline is written again and its
    row's checksum follows; the plan says so first, in words and in JSON."""
    schema, db = app_project(tmp_path, tmp_sqlite, None)
    spec = tmp_path / "spec.yaml"
    init = ["init", str(db), "-o", str(spec), "--target", pg_url, "--prisma", str(schema), "--force"]
    assert runner.invoke(app, init).exit_code == 0
    assert runner.invoke(app, ["apply", str(spec), "--yes"]).exit_code == 0
    migration = tmp_path / "prisma" / "migrations" / "0_init" / "migration.sql"
    first = migration.read_text()
    assert "_PostToTag_AB_pkey" in first

    assert runner.invoke(app, [*init, "--prisma-version", "5"]).exit_code == 0
    plan = runner.invoke(app, ["plan", str(spec), "--json"])
    assert plan.exit_code == 0, plan.output
    document = json.loads(plan.stdout)
    jsonschema.validate(document, json.loads(PLAN_SCHEMA.read_text()))
    step = document["steps"][-1]
    assert step["action"] == "write_prisma_baseline"
    assert step["description"] == (
        f"~ Prisma baseline 0_init: {tmp_path / 'prisma' / 'migrations'}/0_init/migration.sql, "
        'its row in "public"."_prisma_migrations" (a new checksum)'
    )

    assert runner.invoke(app, ["apply", str(spec), "--yes"]).exit_code == 0
    second = migration.read_text()
    assert "_PostToTag_AB_unique" in second and "_PostToTag_AB_pkey" not in second
    rows = pg.execute("SELECT migration_name, checksum FROM _prisma_migrations").fetchall()
    assert rows == [("0_init", hashlib.sha256(second.encode()).hexdigest())]


def test_validate_names_a_prisma_schema_that_is_not_there(tmp_path, tmp_sqlite):
    db = tmp_sqlite("CREATE TABLE t (id INTEGER PRIMARY KEY);")
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"version: 1\nsource: {{sqlite: {db.name}}}\ntarget: {{url: 'postgresql://localhost/x'}}\n"
        "prisma:\n  schema: prisma/schema.prisma\n"
    )
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 1
    assert (
        f"spec.yaml:5:11: prisma.schema: '{tmp_path / 'prisma' / 'schema.prisma'}' does not exist; give the "
        "path of the app's schema.prisma, relative to the spec"
    ) in result.output
