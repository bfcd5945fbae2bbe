"""Prisma itself judges `etl init --prisma` + `etl apply`: after the move to PostgreSQL, an app that
switches its schema's provider from "sqlite" to "postgresql" finds exactly its schema.

For each Prisma schema (samples/chat_app.prisma and tests/prisma/schemas/*.prisma, modelled on public
projects): the SQLite database is built from Prisma's own SQLite DDL and filled as Prisma's sqlite
connector stores values; etl migrates it; then `prisma db push` (dry, tests/prisma/prisma.config.ts)
must find nothing to change, `pg_dump --schema-only` of the result must equal that of a database
made by Prisma's own PostgreSQL DDL, and Prisma Client must read every row back and create, update
and delete a row in every model.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fix_prisma import Prisma, prisma_home
from typer.testing import CliRunner
from typer.testing import Result as CliResult

from etl.cli import app
from etl.init.prisma import PrismaField, PrismaModel, PrismaSchema, read_prisma_file

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = [
    ROOT / "samples" / "chat_app.prisma",
    *sorted((ROOT / "tests" / "prisma" / "schemas").glob("*.prisma")),
]
ROWS = 3  # per model: enough for NULLs, several parents and unique values
EPOCH_MS = 1_754_560_800_000  # 2025-08-07 10:00:00 UTC, as Prisma's sqlite connector stores DateTime


@pytest.fixture(scope="session")
def prisma() -> Prisma:
    home = prisma_home()
    if shutil.which("node") is None or not (home / "node_modules" / "prisma" / "build" / "index.js").exists():
        why = f"node, or Prisma in {home}, is missing (install both: see tests/fix_prisma.py)"
        if os.environ.get("ETL_REQUIRE_PRISMA"):
            pytest.fail(why)
        pytest.skip(why)
    return Prisma(home)


# --- Filling a SQLite database as Prisma's sqlite connector does -------------------------------------


def implicit_many_to_many(schema: PrismaSchema) -> list[tuple[str, PrismaModel, PrismaModel]]:
    """Prisma's join tables `_AToB` (or `_<relation name>`): column A refers to the model whose
    name sorts first, B to the other."""
    tables = {}
    for model in schema.models:
        for field in model.fields:
            other = schema.model_named(field.type)
            if not (field.is_relation and field.list and other):
                continue
            back = [
                f
                for f in other.fields
                if f is not field and f.is_relation and f.type == model.name and f.list
            ]
            name = field.relation.name if field.relation and field.relation.name else None
            back = [f for f in back if (f.relation.name if f.relation else None) == name]
            if not back or (field.relation and field.relation.fields):
                continue
            a, b = sorted((model, other), key=lambda m: m.name)
            tables[f"_{name or a.name + 'To' + b.name}"] = (a, b)
    return [(table, a, b) for table, (a, b) in tables.items()]


def scalar_value(field: PrismaField, schema: PrismaSchema, i: int) -> Any:
    """Row i's value for a column that is no foreign key, stored as Prisma's sqlite connector
    stores it."""
    if field.optional and i == ROWS - 1:
        return None
    if enum := schema.enum_named(field.type):
        return enum.values[i % len(enum.values)]
    match field.type:
        case "String":
            return f"{field.name}-{i}"
        case "Int":
            return i + 1
        case "BigInt":
            return 2**40 + i
        case "Float":
            return i + 0.25
        case "Decimal":
            return f"{i}.50"
        case "Boolean":
            return i % 2
        case "DateTime":
            return EPOCH_MS + i * 86_400_000
        case "Json":
            return json.dumps({"row": i, "tags": ["a", "b"]})
        case "Bytes":
            return bytes([i, 0, 255])
    raise AssertionError(f"no test value for {field.type}")


def foreign_key_fields(model: PrismaModel) -> set[str]:
    return {name for f in model.fields if f.relation for name in f.relation.fields}


def fill(db: Path, schema: PrismaSchema) -> None:
    """ROWS rows per model, row i of a child pointing at row i of its parents (row 0 of a model
    pointing at itself)."""
    rows: dict[str, list[dict[str, Any]]] = {}
    building: set[str] = set()

    def row_values(model: PrismaModel, i: int) -> dict[str, Any]:
        values = {f.name: scalar_value(f, schema, i) for f in model.columns}
        for field in model.fields:
            relation = field.relation
            if not (relation and relation.fields):
                continue
            parent = schema.model_named(field.type)
            assert parent is not None
            optional = all(model.field(own).optional for own in relation.fields)  # type: ignore[union-attr]
            for own, ref in zip(relation.fields, relation.references, strict=True):
                if optional and (i == ROWS - 1 or parent.name in building):
                    values[own] = None  # also where relations go round in a circle
                elif parent.name == model.name:
                    values[own] = values[ref]
                elif ref not in foreign_key_fields(parent):  # known without building the parent
                    values[own] = scalar_value(parent.field(ref), schema, i)  # type: ignore[arg-type]
                else:
                    values[own] = parent_row(parent, i)[ref]
        return values

    def parent_row(model: PrismaModel, i: int) -> dict[str, Any]:
        if model.name not in rows:
            assert model.name not in building, f"required relations go round in a circle at {model.name}"
            building.add(model.name)
            rows[model.name] = [row_values(model, j) for j in range(ROWS)]
            building.discard(model.name)
        return rows[model.name][i]

    with closing(sqlite3.connect(db)) as con:
        for model in schema.models:
            parent_row(model, 0)
        for model in schema.models:
            columns = [f.column for f in model.columns]
            marks = ", ".join("?" for _ in columns)
            names = ", ".join(f'"{c}"' for c in columns)
            con.executemany(
                f'INSERT INTO "{model.table}" ({names}) VALUES ({marks})',
                [[row[f.name] for f in model.columns] for row in rows[model.name]],
            )
        for table, a, b in implicit_many_to_many(schema):
            pairs = [(rows[a.name][i][a.id_fields[0]], rows[b.name][i][b.id_fields[0]]) for i in range(ROWS)]
            con.executemany(f'INSERT INTO "{table}" ("A", "B") VALUES (?, ?)', pairs)
        con.commit()


def client_models(schema: PrismaSchema) -> dict[str, Any]:
    """What tests/prisma/client_check.cjs needs to know of the models (see there)."""
    models = []
    for model in schema.models:
        unique = {name for index in model.uniques for name in index.fields}
        models.append(
            {
                "name": model.name,
                "key": list(model.id_fields or model.uniques[0].fields),
                "fields": [
                    {
                        "name": f.name,
                        "type": f.type,
                        "enum": schema.enum_named(f.type) is not None,
                        "required": not f.optional,
                        "default": f.default is not None,
                        "updatedAt": f.updated_at,
                        "unique": f.name in unique,
                    }
                    for f in model.columns
                ],
                "relations": [
                    {"model": f.type, "from": list(f.relation.fields), "to": list(f.relation.references)}
                    for f in model.fields
                    if f.relation and f.relation.fields
                ],
            }
        )
    return {"models": models, "enums": {e.name: list(e.names) for e in schema.enums}}


# --- Comparing ---------------------------------------------------------------------------------------


def schema_dump(url: str, *tables: str) -> list[str]:
    """`pg_dump --schema-only` of the public schema (or of `tables`), without comments, SET lines,
    blank lines and Prisma's migration history (compared on its own)."""
    only = [f"--table=public.{t}" for t in tables] or [
        "--schema=public",
        "--exclude-table=public._prisma_migrations",
    ]
    dump = subprocess.run(
        ["pg_dump", "--schema-only", *only, "--no-owner", "--no-privileges", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [
        line
        for line in dump.splitlines()
        if line.strip()
        and not line.startswith(("--", "SET ", "SELECT pg_catalog.set_config", "\\restrict", "\\unrestrict"))
    ]


def with_provider(schema: Path, provider: str, into: Path) -> Path:
    text = re.sub(r'provider\s*=\s*"sqlite"', f'provider = "{provider}"', schema.read_text(encoding="utf-8"))
    into.write_text(text, encoding="utf-8")
    return into


def prisma_project(schema_file: Path, tmp_path: Path) -> Path:
    """The app's Prisma project: its schema.prisma (still the sqlite provider) in prisma/."""
    project = tmp_path / "prisma"
    project.mkdir(exist_ok=True)
    shutil.copy(schema_file, project / "schema.prisma")
    return project


def migrate(source: Path, project: Path, url: str, tmp_path: Path) -> CliResult:
    """etl init --prisma + etl apply; the apply's result."""
    runner = CliRunner()
    spec = tmp_path / "spec.yaml"
    result = runner.invoke(
        app,
        ["init", str(source), "-o", str(spec), "--target", url, "--prisma", str(project / "schema.prisma")],
    )
    assert result.exit_code == 0, result.output
    return runner.invoke(app, ["apply", str(spec), "--yes"])


def printed_script(printed: str) -> str:
    """The script `prisma migrate diff --script` prints: the CLI adds a line end of its own."""
    assert printed.endswith(";\n\n"), printed[-40:]
    return printed[:-1]


@pytest.mark.parametrize("schema_file", SCHEMAS, ids=[p.stem for p in SCHEMAS])
def test_prisma_finds_its_own_schema_after_the_move(schema_file, prisma, two_databases, tmp_path):
    target, reference = two_databases
    schema = read_prisma_file(schema_file)
    assert schema.provider == "sqlite"
    source = tmp_path / "app.db"
    with closing(sqlite3.connect(source)) as con:
        con.executescript(prisma.ddl(reference, schema_file))
    fill(source, schema)
    project = prisma_project(schema_file, tmp_path)
    result = migrate(source, project, target, tmp_path)
    assert result.exit_code == 0, result.output

    postgresql = with_provider(schema_file, "postgresql", tmp_path / "postgresql.prisma")
    assert prisma.push_statements(target, postgresql) == []

    prisma_ddl = printed_script(prisma.ddl(reference, postgresql))
    # The baseline etl wrote is, byte for byte, the migration Prisma itself would write.
    assert (project / "migrations" / "0_init" / "migration.sql").read_text(encoding="utf-8") == prisma_ddl
    with psycopg.connect(reference, autocommit=True) as conn:
        conn.execute(prisma_ddl)  # type: ignore[call-overload]
    ours, theirs = schema_dump(target), schema_dump(reference)
    assert ours == theirs, "\n".join(difflib.unified_diff(theirs, ours, "prisma", "etl", lineterm=""))

    report = prisma.client_check(target, postgresql, client_models(schema))
    assert report == {
        "rows": {m.name: ROWS for m in schema.models},
        "changed": [m.name for m in schema.models],
    }


# Prisma's migration history in a SQLite app: it must not follow the app to PostgreSQL.
SQLITE_HISTORY = """
CREATE TABLE "_prisma_migrations" (
    "id" TEXT PRIMARY KEY NOT NULL, "checksum" TEXT NOT NULL, "finished_at" DATETIME,
    "migration_name" TEXT NOT NULL, "logs" TEXT, "rolled_back_at" DATETIME,
    "started_at" DATETIME NOT NULL DEFAULT current_timestamp, "applied_steps_count" INTEGER UNSIGNED NOT NULL DEFAULT 0
);
INSERT INTO "_prisma_migrations" VALUES
    ('3f0c', 'e3b0c442', 1754560800000, '20250807100000_init', NULL, NULL, 1754560800000, 1);
"""
HISTORY_ROW = (
    "SELECT checksum, finished_at = started_at, migration_name, logs, rolled_back_at, "
    "applied_steps_count, length(id) FROM _prisma_migrations"
)


def test_prisma_migrate_status_is_up_to_date_after_the_baseline(prisma, two_databases, tmp_path):
    """The move as README.md tells it, with the SQLite app's migrations in prisma/migrations: etl
    refuses to write over them and says how to move them aside; once they are, etl init --prisma +
    etl apply write the baseline (0_init, the lock file, the history row `prisma migrate resolve`
    would insert), and after switching providers Prisma finds the database up to date, and the
    next `prisma migrate dev` starts clean: Prisma's diff from the migrations to the schema is
    empty. Applying again changes nothing."""
    schema_file = ROOT / "tests" / "prisma" / "schemas" / "shop.prisma"
    target, scratch = two_databases
    source = tmp_path / "app.db"
    with closing(sqlite3.connect(source)) as con:
        con.executescript(prisma.ddl(scratch, schema_file) + SQLITE_HISTORY)
    fill(source, read_prisma_file(schema_file))
    project = prisma_project(schema_file, tmp_path)
    sqlite_era = project / "migrations" / "20250807100000_init"
    sqlite_era.mkdir(parents=True)
    (sqlite_era / "migration.sql").write_text("CREATE TABLE x (id INTEGER);\n")
    (project / "migrations" / "migration_lock.toml").write_text('provider = "sqlite"\n')

    refused = migrate(source, project, target, tmp_path)
    assert refused.exit_code == 1
    assert "holds migrations etl did not write (20250807100000_init)" in refused.output
    assert f"mv {project / 'migrations'} {project / 'migrations'}-sqlite" in refused.output
    with psycopg.connect(target) as conn:
        assert conn.execute("SELECT to_regclass('public.customers')").fetchone() == (None,)
    (project / "migrations").rename(project / "migrations-sqlite")  # as the error says

    spec = tmp_path / "spec.yaml"
    result = CliRunner().invoke(app, ["apply", str(spec), "--yes"])
    assert result.exit_code == 0, result.output
    migrations = project / "migrations"
    migration = (migrations / "0_init" / "migration.sql").read_bytes()
    assert (migrations / "migration_lock.toml").read_text() == (
        "# Please do not edit this file manually\n"
        "# It should be added in your version-control system (e.g., Git)\n"
        'provider = "postgresql"\n'
    )
    assert sorted(p.name for p in migrations.iterdir()) == ["0_init", "migration_lock.toml"]

    postgresql = with_provider(project / "schema.prisma", "postgresql", project / "schema.prisma")
    status = prisma.run(target, "migrate", "status", "--schema", postgresql, last=re.compile("up to date"))
    assert "Database schema is up to date!" in status
    # `prisma migrate dev`'s own question, asked without a migration to write (adapter mode):
    # the migrations replayed on a shadow database against the schema.
    diff = prisma.run(
        target,
        "migrate",
        "diff",
        "--from-migrations",
        migrations,
        "--to-schema-datamodel",
        postgresql,
        "--script",
        "--exit-code",
    )
    assert diff.strip() == "-- This is an empty migration."

    # The history holds the baseline alone, as Prisma's own `migrate resolve --applied 0_init`
    # writes it: same table, same row (its checksum the SHA-256 of migration.sql).
    with psycopg.connect(target) as conn:
        ours = conn.execute(HISTORY_ROW).fetchall()
    resolved = tmp_path / "resolved"
    shutil.copytree(migrations, resolved / "migrations")
    shutil.copy(postgresql, resolved / "schema.prisma")
    prisma.run(
        scratch,
        "migrate",
        "resolve",
        "--applied",
        "0_init",
        "--schema",
        resolved / "schema.prisma",
        last=re.compile("marked as applied"),
    )
    with psycopg.connect(scratch) as conn:
        theirs = conn.execute(HISTORY_ROW).fetchall()
    assert ours == theirs == [(hashlib.sha256(migration).hexdigest(), True, "0_init", "", None, 0, 36)]
    assert schema_dump(target, "_prisma_migrations") == schema_dump(scratch, "_prisma_migrations")

    again = CliRunner().invoke(app, ["apply", str(spec), "--yes"])
    assert again.exit_code == 0, again.output
    assert "No changes. The target matches the spec." in again.output
    assert (migrations / "0_init" / "migration.sql").read_bytes() == migration
    with psycopg.connect(target) as conn:
        assert conn.execute("SELECT count(*) FROM _prisma_migrations").fetchone() == (1,)


def test_an_index_sqlite_sorts_otherwise_than_the_schema_arrives_as_the_schema_sorts_it(
    prisma, two_databases, tmp_path
):
    """A SQLite database whose index was built ascending (by an older schema, or by hand) while
    the schema says `sort: Desc`: etl init follows the schema, says so, and Prisma on PostgreSQL
    finds its own index."""
    schema_file = ROOT / "tests" / "prisma" / "schemas" / "leaderboard.prisma"
    target, scratch = two_databases
    source = tmp_path / "app.db"
    with closing(sqlite3.connect(source)) as con:
        con.executescript(prisma.ddl(scratch, schema_file))
        con.executescript(
            'DROP INDEX "Score_recent_idx"; CREATE INDEX "Score_recent_idx" ON "Score" ("postedAt");'
            'DROP INDEX "Board_slug_key"; CREATE UNIQUE INDEX "Board_slug_key" ON "Board" ("slug");'
        )
    fill(source, read_prisma_file(schema_file))
    project = prisma_project(schema_file, tmp_path)
    result = migrate(source, project, target, tmp_path)
    assert result.exit_code == 0, result.output

    spec = (tmp_path / "spec.yaml").read_text(encoding="utf-8")
    assert "# !! index Score_recent_idx: the Prisma schema sorts it (postedAt desc)" in spec
    assert "columns: [{column: postedAt, order: desc}]" in spec
    assert "columns: [{column: slug, order: desc}], unique: true" in spec
    postgresql = with_provider(schema_file, "postgresql", tmp_path / "postgresql.prisma")
    assert prisma.push_statements(target, postgresql) == []
    with psycopg.connect(target) as conn:
        (definition,) = conn.execute("SELECT pg_get_indexdef('\"Score_recent_idx\"'::regclass)").fetchone()
    assert definition.endswith('("postedAt" DESC)')
