"""Django itself judges `etl init` + `etl apply`: after the move to PostgreSQL, a Django app that
points DATABASES at PostgreSQL finds its migrations applied, its models unchanged, and every row
as it wrote it on SQLite.

The project (tests/django: auth, contenttypes and a `shop` app with CharField, unique, ForeignKey,
ManyToManyField, JSONField, DateTimeField with USE_TZ, DateField, BooleanField,
PositiveIntegerField, DecimalField, UUIDField, AutoField and BigAutoField ids, unique_together, and
Meta.indexes with a descending field and a condition) is migrated and filled through the ORM on
SQLite, moved by etl with the spec edits README's "Moving a Django app" shows, and then checked
by Django on PostgreSQL: `migrate --check`, `makemigrations --check`, the ORM reading every row
back equal, creating, updating and deleting in every model, and a later migration. Its schema is
compared with the one Django's own `migrate` makes on an empty PostgreSQL database; the
differences that remain are the ones README lists, each normalized below by its own function.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from etl.cli import app

PROJECT = Path(__file__).resolve().parent / "django"


def django(project: Path, *args: str, url: str | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m django ARGS` (or `python orm.py ARGS`) in the project, on SQLite or on `url`."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "settings", "PYTHONPATH": str(project)}
    env.pop("ETL_DJANGO_DATABASE_URL", None)
    if url:
        env["ETL_DJANGO_DATABASE_URL"] = url
    command = [sys.executable, *(args if args[0] == "orm.py" else ("-m", "django", *args))]
    return subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=300)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{result.args}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture
def project(tmp_path) -> Path:
    """The Django project, migrated and filled through the ORM on SQLite (app.sqlite3)."""
    site = tmp_path / "site"
    shutil.copytree(PROJECT, site, ignore=shutil.ignore_patterns("__pycache__", "app.sqlite3", "migrations"))
    ok(django(site, "makemigrations", "shop"))
    ok(django(site, "migrate"))
    ok(django(site, "orm.py", "fill"))
    return site


# The spec edits README's "Moving a Django app" shows: a UUIDField is char(32) in SQLite and `uuid`
# in PostgreSQL (Django then binds uuid values, which a text column refuses to compare with), and a
# DecimalField's digits (Django's SQLite DDL says `decimal` alone) are the model's.
SPEC_EDITS = [
    (r"(\w+): \{[^}\n]*\}  # (?:!! )?char\(32\)[^\n]*", r"\1: {type: uuid}  # char(32): a UUIDField"),
    (r"price: \{[^}\n]*\}  # decimal[^\n]*", 'price: {type: "numeric(10,2)"}  # DecimalField(10, 2)'),
]


def readme_sql() -> str:
    """The SQL README's "Moving a Django app" runs after the last apply."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Moving a Django app", 1)[1].split("\n## ", 1)[0]
    return section.split("```sql\n", 1)[1].split("```", 1)[0]


def move(project: Path, target: str) -> str:
    """README's way: `etl init` with its spec edits, `etl apply`, then its SQL; returns the spec's text."""
    runner = CliRunner()
    spec = project / "spec.yaml"
    result = runner.invoke(app, ["init", str(project / "app.sqlite3"), "-o", str(spec), "--target", target])
    assert result.exit_code == 0, result.output
    text = spec.read_text(encoding="utf-8")
    for old, new in SPEC_EDITS:
        text, edits = re.subn(old, new, text)
        assert edits, f"etl init no longer writes {old!r}: update README's Django section"
    spec.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["apply", str(spec), "--yes"])
    assert result.exit_code == 0, result.output
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute(readme_sql())  # type: ignore[call-overload]
    return text


def sqlite_counters(db: Path) -> dict[str, int]:
    """SQLite's AUTOINCREMENT counter of each table: the id it would give the next row, less one."""
    with closing(sqlite3.connect(db)) as con:
        return dict(con.execute("SELECT name, seq FROM sqlite_sequence").fetchall())


def test_django_finds_its_app_unchanged_after_the_move(project, two_databases):
    target, _ = two_databases
    before = json.loads(ok(django(project, "orm.py", "read")))
    counters = sqlite_counters(project / "app.sqlite3")
    move(project, target)

    assert "No planned migration operations." in ok(
        django(project, "migrate", "--check", "--plan", url=target)
    )
    assert "No changes detected" in ok(django(project, "makemigrations", "--check", "--dry-run", url=target))
    after = json.loads(ok(django(project, "orm.py", "read", url=target)))
    assert after == before
    assert len(after) == 13 and all(after[m] for m in ("shop.Product", "shop.Review", "auth.User"))

    created = json.loads(ok(django(project, "orm.py", "change", url=target)))
    tables = {
        "auth.Group": "auth_group",
        "auth.Group_permissions": "auth_group_permissions",
        "auth.Permission": "auth_permission",
        "auth.User": "auth_user",
        "auth.User_groups": "auth_user_groups",
        "auth.User_user_permissions": "auth_user_user_permissions",
        "contenttypes.ContentType": "django_content_type",
        "migrations.Migration": "django_migrations",
        "shop.Category": "shop_category",
        "shop.Product": "shop_product",
        "shop.Product_tags": "shop_product_tags",
        "shop.Review": "shop_review",
        "shop.Tag": "shop_tag",
    }
    # Each new row gets the id SQLite would have given it: past the largest id, and past the
    # counter where a row was deleted (shop_tag's "gone").
    assert created == {model: counters.get(table, 0) + 1 for model, table in tables.items()}
    assert counters["shop_tag"] > max(row["id"][1] for row in before["shop.Tag"])


def test_a_later_migration_runs_on_the_moved_database(project, two_databases):
    """Django's schema editor changes etl's tables as it changes its own: a new column, a longer
    CharField, an index removed, a unique_together dropped (README's SQL made it Django's UNIQUE
    constraint), a foreign key constraint dropped (found by its column, not its name), a
    UniqueConstraint and a CheckConstraint dropped by their names, and a field removed."""
    target, _ = two_databases
    move(project, target)
    models = project / "shop" / "models.py"
    text = models.read_text(encoding="utf-8")
    text = text.replace("max_length=200", "max_length=300")
    text = text.replace('        unique_together = [("product", "author")]\n', "        pass\n")
    text = text.replace('            models.Index(fields=["-created_at"], name="product_newest_idx"),\n', "")
    text = text.replace(
        "    body = models.TextField(blank=True)\n",
        "    title = models.CharField(max_length=80, default='')\n",
    )
    text = text.replace(
        "    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)\n",
        "    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, db_constraint=False)\n",
    )
    for constraint in (
        '        constraints = [models.UniqueConstraint(fields=["parent", "name"], name="category_name_per_parent")]\n',
        "        constraints = [\n"
        '            models.CheckConstraint(condition=models.Q(stars__lte=5), name="review_stars_at_most_5")\n'
        "        ]\n",
    ):
        assert constraint in text
        text = text.replace(constraint, "        pass\n")
    models.write_text(text, encoding="utf-8")
    ok(django(project, "makemigrations", "shop", url=target))
    ok(django(project, "migrate", url=target))
    assert "No changes detected" in ok(django(project, "makemigrations", "--check", "--dry-run", url=target))
    with psycopg.connect(target) as conn:
        columns = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'shop_review'"
        ).fetchall()
        assert ("title", "character varying") in columns and "body" not in dict(columns)
        constraints = conn.execute(
            "SELECT contype, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'shop_review'::regclass AND contype IN ('u', 'f') ORDER BY 2"
        ).fetchall()
        assert constraints == [
            ("f", "FOREIGN KEY (product_id) REFERENCES shop_product(id) DEFERRABLE INITIALLY DEFERRED")
        ]
        left = conn.execute(
            "SELECT conname FROM pg_constraint WHERE conname IN "
            "('category_name_per_parent', 'review_stars_at_most_5', 'shop_review_stars_check')"
        ).fetchall()
        assert left == [("shop_review_stars_check",)]
        name_type = conn.execute(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = 'shop_product'::regclass AND attname = 'name'"
        ).fetchone()
        assert name_type == ("character varying(300)",)


# --- Comparing with the schema Django's own `migrate` makes on PostgreSQL ----------------------------


SCHEMA_FACTS = """
SELECT 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
       || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
       || coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '')
       || CASE a.attidentity WHEN 'd' THEN ' GENERATED BY DEFAULT AS IDENTITY'
                             WHEN 'a' THEN ' GENERATED ALWAYS AS IDENTITY' ELSE '' END
       || coalesce(' sequence ' || pg_get_serial_sequence(format('%I', c.relname), a.attname), '')
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'constraint ' || c.relname || ' ' || CASE WHEN k.contype = 'f' THEN '' ELSE k.conname || ' ' END
       || pg_get_constraintdef(k.oid)
FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public'
UNION ALL
SELECT 'index ' || pg_get_indexdef(i.indexrelid)
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conindid = i.indexrelid)
"""


def schema_facts(url: str) -> set[str]:
    """The public schema as one line per column, constraint and index (column order aside: SQLite
    keeps the order in which Django's SQLite migrations rebuilt a table, e.g. auth_user's
    first_name last). Foreign keys are compared without their names: Django's SQLite DDL declares
    them inline, unnamed, and Django finds them by their columns."""
    with psycopg.connect(url) as conn:
        return {row[0] for row in conn.execute(SCHEMA_FACTS)}


# What differs, each a row of README's table in "Moving a Django app".


def wider_types(fact: str) -> str:
    """etl makes SQLite's `integer` a bigint (SQLite's integers are 64-bit) and `varchar(n)` text
    (SQLite never enforced lengths; Django checks max_length itself)."""
    fact = re.sub(r" integer\b", " bigint", fact)
    return re.sub(r" character varying\(\d+\)", " text", fact)


def without_like_index(fact: str) -> str | None:
    """Django adds `<name>_like` indexes (varchar_pattern_ops) for LIKE 'x%' under a non-C
    collation beside each unique or indexed CharField on PostgreSQL; SQLite has none to carry."""
    return None if fact.startswith("index ") and fact.endswith("varchar_pattern_ops)") else fact


def without_always_true_check(fact: str) -> str | None:
    """JSONField's SQLite CHECK (JSON_VALID(x) OR x IS NULL) becomes (x IS NOT NULL) OR x IS NULL
    on jsonb, whose type keeps values valid JSON: always true. Django makes no such check."""
    return None if re.search(r"CHECK \(\(\((\w+) IS NOT NULL\) OR \(\1 IS NULL\)\)\)$", fact) else fact


def normalized(facts: set[str]) -> list[str]:
    out = set()
    for fact in facts:
        step: str | None = wider_types(fact)
        for drop in (without_like_index, without_always_true_check):
            step = drop(step) if step is not None else None
        if step is not None:
            out.add(step)
    return sorted(out)


def test_the_schema_is_djangos_own_but_for_the_differences_readme_lists(project, two_databases):
    target, reference = two_databases
    move(project, target)
    ok(django(project, "migrate", url=reference))
    ours, theirs = schema_facts(target), schema_facts(reference)
    assert ours != theirs  # the normalizations below are each needed, not decoration
    assert normalized(ours) == normalized(theirs), "\n".join(
        difflib.unified_diff(normalized(theirs), normalized(ours), "django", "etl", lineterm="")
    )
    # Each normalization is needed for what README says it is.
    only_django = theirs - ours
    assert any(f.endswith("varchar_pattern_ops)") for f in only_django)
    assert any(" character varying(" in f for f in only_django)
    assert (
        "column shop_category.id integer NOT NULL GENERATED BY DEFAULT AS IDENTITY sequence public.shop_category_id_seq"
        in only_django
    )
