"""What `etl validate` tells a user about a spec with mistakes.

Every mistake is reported at once, each as `file:line:col: setting: message`, with a suggestion
when one is close. Validation reads the SQLite source (read-only) but never connects to the
target, so these tests need no PostgreSQL. The full error texts are snapshots
(tests/__snapshots__/test_spec_validation.ambr), so reviewers read exactly what users will.
"""

from __future__ import annotations

import json
import sqlite3
import textwrap
from contextlib import closing
from pathlib import Path

import pytest

from etl.errors import SpecError
from etl.run.validate import Validated, validate

SOURCE = """
CREATE TABLE "User" (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    score INTEGER,
    "on" TEXT,
    "no" TEXT,
    "yes" TEXT
);
CREATE TABLE "Post" (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    "authorId" TEXT NOT NULL REFERENCES "User"(id),
    title TEXT
);
CREATE TABLE "Comment" (id INTEGER PRIMARY KEY, "postId" INTEGER REFERENCES "Post"(id), body TEXT);
CREATE VIEW "PostTitles" AS SELECT title FROM "Post";
"""


@pytest.fixture
def spec_dir(tmp_path: Path) -> Path:
    """A folder holding the SQLite source `app.db`, where each test writes its `spec.yaml`."""
    with closing(sqlite3.connect(tmp_path / "app.db")) as con:
        con.executescript(SOURCE)
    return tmp_path


def check(spec_dir: Path, text: str, environ: dict[str, str] | None = None) -> Validated:
    path = spec_dir / "spec.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return validate(path, environ or {})


def problems(spec_dir: Path, text: str, environ: dict[str, str] | None = None) -> str:
    """The error text for the spec `text` (its first line is line 1), with paths made short."""
    with pytest.raises(SpecError) as caught:
        check(spec_dir, text, environ)
    return str(caught.value).replace(str(spec_dir / "spec.yaml"), "spec.yaml").replace(str(spec_dir), "<dir>")


def lines(text: str) -> list[str]:
    return text.splitlines()


# --- a good spec -----------------------------------------------------------------------------------


def test_a_good_spec_validates_without_a_target_database(spec_dir):
    checked = check(
        spec_dir,
        """
        version: 1
        source: {sqlite: app.db}
        target: {url: "postgresql://etl@db.invalid:5432/app"}
        """,
    )

    assert [t.name for t in checked.mapping.tables] == ["User", "Post", "Comment"]


def test_a_checked_spec_lets_go_of_its_yaml_positions(spec_dir):
    # They locate a spec's problems, and a checked spec has none; kept, they would hold several
    # objects per line of the spec through the whole plan and apply (thousands of tables' worth).
    checked = check(
        spec_dir,
        """
        version: 1
        source: {sqlite: app.db}
        target: {url: "postgresql://etl@db.invalid:5432/app"}
        tables:
          User: {columns: {score: {type: bigint}}}
        """,
    )

    assert checked.spec.document is None
    assert checked.spec.tables["User"].columns["score"].type is not None


def test_columns_named_on_no_and_yes_stay_strings(spec_dir):
    """YAML 1.1 would read these keys as booleans; a spec reads them as the names they are."""
    checked = check(
        spec_dir,
        """
        version: 1
        source: {sqlite: app.db}
        target: {url: "postgresql://etl@db.invalid/app"}
        tables:
          User:
            columns:
              on: {name: is_on}
              no: {name: number}
              yes: {type: varchar(3)}
        """,
    )

    user = checked.mapping.table("User")
    assert user is not None
    assert [c.name for c in user.columns] == ["id", "email", "createdAt", "score", "is_on", "number", "yes"]
    assert str(user.column("yes").pg_type) == "character varying(3)"  # type: ignore[union-attr]


# --- all at once -----------------------------------------------------------------------------------


def test_five_different_mistakes_give_five_problems_each_with_its_place(spec_dir, snapshot):
    text = problems(
        spec_dir,
        """
        version: 1
        source: {sqlite: app.db}
        target: {url: "postgresql://etl@db.invalid/app"}
        nameing: snake
        tables:
          Usr: {}
          User:
            columns:
              score: {converter: iso}
            where: "scor > 1"
            indexes:
              - {columns: [email], where: "email = = 'x'"}
        """,
    )

    assert text == snapshot
    assert lines(text) == [
        "spec.yaml:4:1: unknown key 'nameing' (did you mean 'naming'?)",
        "spec.yaml:6:3: tables.Usr: no table 'Usr' in the source (did you mean 'User'?)",
        "spec.yaml:9:26: tables.User.columns.score.converter: converter 'iso' applies to timestamp and date columns, not bigint",
        "spec.yaml:10:12: tables.User.where: SQLite cannot run this expression: no such column: scor",
        'spec.yaml:12:35: tables.User.indexes[0].where: not a valid PostgreSQL expression: syntax error at or near "="',
    ]


def test_a_bad_type_or_an_unset_variable_does_not_hide_the_other_mistakes(spec_dir):
    text = problems(
        spec_dir,
        """
        version: 1
        source: {sqlite: app.db}
        target: {url: "postgresql://etl:${PGPASSWORD}@db.invalid/app"}
        tables:
          Usr: {}
          User:
            columns:
              createdAt: {type: timestampz}
            where: "scor > 1"
        """,
    )

    assert lines(text) == [
        "spec.yaml:3:15: target.url: environment variable 'PGPASSWORD' is not set (set it, e.g. export PGPASSWORD=..., or give the whole URL with --target URL, or a fallback: ${PGPASSWORD:-...})",
        "spec.yaml:5:3: tables.Usr: no table 'Usr' in the source (did you mean 'User'?)",
        "spec.yaml:8:25: tables.User.columns.createdAt.type: 'timestampz' is not a PostgreSQL type (did you mean 'timestamptz'?)",
        "spec.yaml:9:12: tables.User.where: SQLite cannot run this expression: no such column: scor",
    ]


def test_schema_mistakes_are_all_reported_with_suggestions(spec_dir, snapshot):
    text = problems(
        spec_dir,
        """
        version: 1
        source: {sqlite: app.db}
        target: {url: "postgresql://etl@db.invalid/app", shema: app}
        naming: camel
        tabels: {}
        tables:
          User:
            exclude_column: [score]
            columns:
              email: {typ: text, nullable: "no"}
              score: {converter: unix}
        """,
    )

    assert "unknown key 'tabels' (did you mean 'tables'?)" in text
    assert "unknown key 'shema' (did you mean 'schema'?)" in text
    assert "unknown key 'exclude_column' (did you mean 'exclude_columns'?)" in text
    assert "unknown key 'typ' (did you mean 'type'?)" in text
    assert len(lines(text)) == 7
    assert text == snapshot


def test_duplicate_keys_are_mistakes_not_silently_overwritten(spec_dir, snapshot):
    text = problems(
        spec_dir,
        """
        version: 1
        source: {sqlite: app.db}
        target: {url: "postgresql://etl@db.invalid/app"}
        tables:
          User:
            columns:
              email: {type: text}
              email: {type: citext}
          User: {}
        """,
    )

    assert text == snapshot
    assert lines(text) == [
        "spec.yaml:8:7: duplicate key 'email' (first at line 7)",
        "spec.yaml:9:3: duplicate key 'User' (first at line 5)",
    ]


# --- against the source ----------------------------------------------------------------------------


def test_a_missing_source_file(spec_dir):
    text = problems(
        spec_dir,
        """
        version: 1
        source: {sqlite: missing.db}
        target: {url: "postgresql://etl@db.invalid/app"}
        """,
    )

    assert text == "spec.yaml:2:18: source.sqlite: SQLite file '<dir>/missing.db' does not exist"


def test_tables_and_columns_that_do_not_exist_in_the_source(spec_dir, snapshot):
    text = problems(
        spec_dir,
        """
        version: 1
        source: {sqlite: app.db}
        target: {url: "postgresql://etl@db.invalid/app"}
        include: [User, Post, Comment, Coment]
        tables:
          Posts: {}
          PostTitles: {}
          User:
            exclude_columns: [scroe]
            columns:
              emial: {type: text}
              createdAt: {converter: iso}
            primary_key: [ID]
          Comment:
            foreign_keys:
              - {columns: [postId], references: {table: Post, columns: [uid]}}
              - {columns: [postId], references: {table: Posts, columns: [id]}}
        """,
    )

    assert "no table 'Coment' in the source (did you mean 'Comment'?)" in text
    assert "no table 'Posts' in the source (did you mean 'Post'?)" in text
    assert "'PostTitles' is a view in the source: list it under views: (not tables:) to create it" in text
    assert "no column 'scroe' in table 'User' (did you mean 'score'?)" in text
    assert "no column 'emial' in table 'User' (did you mean 'email'?)" in text
    assert text == snapshot


def test_wrong_postgresql_types_get_a_suggestion(spec_dir, snapshot):
    text = problems(
        spec_dir,
        """
        version: 1
        source: {sqlite: app.db}
        target: {url: "postgresql://etl@db.invalid/app"}
        type_rules:
          - {declared: "VARCHAR*", type: "varchr(10)"}
        tables:
          User:
            columns:
              createdAt: {type: timestampz}
              email: {type: "numeric(2000)"}
              score: {type: "integer(4)"}
        """,
    )

    assert text == snapshot
    assert "'timestampz' is not a PostgreSQL type (did you mean 'timestamptz'?)" in text
    assert "'varchr(10)' is not a PostgreSQL type (did you mean 'varchar'?)" in text


def test_a_converter_applies_to_datetime_columns_only(spec_dir, snapshot):
    text = problems(
        spec_dir,
        """
        version: 1
        source: {sqlite: app.db}
        target: {url: "postgresql://etl@db.invalid/app"}
        tables:
          User:
            columns:
              createdAt: {converter: epoch_milliseconds}  # DATETIME: fine
              score: {converter: epoch_seconds}
              email: {type: date, converter: iso}  # a date: fine
        """,
    )

    assert text == snapshot
    assert (
        "tables.User.columns.score.converter: converter 'epoch_seconds' applies to timestamp and date columns, not bigint"
        in text
    )


def test_sqlite_expressions_are_checked_by_sqlite(spec_dir, snapshot):
    text = problems(
        spec_dir,
        """
        version: 1
        source: {sqlite: app.db}
        target: {url: "postgresql://etl@db.invalid/app"}
        tables:
          User:
            where: "scor > 1"
            columns:
              initial: {expression: "substr(email, 1", type: text}
          Post:
            where: "title = 'a'; DROP TABLE User"
        """,
    )

    assert "SQLite cannot run this expression: no such column: scor" in text
    assert text == snapshot


def test_postgresql_expressions_are_checked_against_postgresql_grammar(spec_dir, snapshot):
    text = problems(
        spec_dir,
        """
        version: 1
        source: {sqlite: app.db}
        target: {url: "postgresql://etl@db.invalid/app"}
        tables:
          User:
            indexes:
              - {columns: [email], unique: true, where: "score >> AND"}
            columns:
              createdAt: {default: {sql: "now("}}
        """,
    )

    assert text == snapshot
    assert len(lines(text)) == 2


# --- the environment -------------------------------------------------------------------------------

URL_SPEC = """
version: 1
source: {sqlite: app.db}
target: {url: "postgresql://${PGUSER}:${PGPASSWORD}@${PGHOST:-localhost}:${PGPORT:-5432}/app$$"}
"""


def test_an_unset_variable_in_the_target_url_is_a_mistake(spec_dir, snapshot):
    text = problems(spec_dir, URL_SPEC, {"PGUSER": "etl"})

    assert text == snapshot
    assert lines(text) == [
        "spec.yaml:3:15: target.url: environment variable 'PGPASSWORD' is not set (set it, e.g. export PGPASSWORD=..., or give the whole URL with --target URL, or a fallback: ${PGPASSWORD:-...})"
    ]


def test_variables_fall_back_to_their_default(spec_dir):
    checked = check(spec_dir, URL_SPEC, {"PGUSER": "etl", "PGPASSWORD": "s3cret", "PGPORT": "6543"})

    assert checked.spec.target_url == "postgresql://etl:s3cret@localhost:6543/app$"


def test_an_empty_variable_counts_as_unset(spec_dir):
    text = problems(spec_dir, URL_SPEC, {"PGUSER": "etl", "PGPASSWORD": ""})

    assert "environment variable 'PGPASSWORD' is not set" in text


# --- load order ------------------------------------------------------------------------------------


def test_load_order_problems(spec_dir, snapshot):
    text = problems(
        spec_dir,
        """
        version: 1
        source: {sqlite: app.db}
        target: {url: "postgresql://etl@db.invalid/app"}
        load_order: [Comment, Post, Users, Post]
        """,
    )

    assert text == snapshot
    assert "'Users' is not a migrated table (did you mean 'User'?)" in text
    assert "'Post' is listed twice" in text
    assert "table 'User' is missing from load_order" in text
    assert "'Comment' is loaded before 'Post', which its foreign key references" in text


def test_a_type_rule_with_a_converter_for_a_type_that_is_not_a_datetime_is_reported(spec_dir):
    text = problems(
        spec_dir,
        """
        version: 1
        source: {sqlite: app.db}
        target: {url: "postgresql://etl@db.invalid/app"}
        type_rules:
          - {declared: TEXT, type: text, converter: iso}
        """,
    )
    assert lines(text) == [
        "spec.yaml:5:45: type_rules[0].converter: converter 'iso' applies to timestamp and date types, not text",
    ]


# --- SQL fields hold one expression, nothing more --------------------------------------------------
# A table's `where` and a column's `expression` are SQLite; an index's `where` and a
# `default: {sql: ...}` are PostgreSQL, run as the target role. Each is pasted into a statement etl
# writes, so text that ends that statement, hides a comment or closes its parenthesis is refused.

HOSTILE_POSTGRESQL = {
    "stacked statement": (
        "v IS NOT NULL; SELECT setval('other.s', 999999)",
        "`;` at character 14 ends a statement",
    ),
    "closing parenthesis": ("true) OR (true", "`)` at character 5 closes a bracket that was not opened"),
    "line comment": ("1 -- comment", "a comment starts at character 3"),
    "block comment": ("1 /* x */", "a comment starts at character 3"),
    "unclosed string": ("'a;b", "a string opened at character 1 is never closed"),
    "unclosed name": ('"a;b', "a quoted name opened at character 1 is never closed"),
    "unclosed dollar quote": ("$$;", "a dollar-quoted string opened at character 1 is never closed"),
    "escaped quote then statement": ("E'\\'; DROP TABLE x", "a string opened at character 1 is never closed"),
    "two expressions": ("1, 2", "`,` at character 2 separates two expressions"),
    "open parenthesis": ("(1", "`(` at character 1 is never closed"),
}


@pytest.mark.parametrize("text, why", HOSTILE_POSTGRESQL.values(), ids=HOSTILE_POSTGRESQL.keys())
def test_a_postgresql_field_that_is_not_one_expression_is_refused_where_it_is_written(spec_dir, text, why):
    index_where, default_sql = problems(
        spec_dir,
        f"""
        version: 1
        source: {{sqlite: app.db}}
        target: {{url: "postgresql://etl@db.invalid/app"}}
        tables:
          User:
            indexes:
              - columns: [email]
                where: {json.dumps(text)}
            columns:
              score: {{default: {{sql: {json.dumps(text)}}}}}
        """,
    ).splitlines()

    assert index_where.startswith(
        "spec.yaml:8:16: tables.User.indexes[0].where: not one PostgreSQL expression: "
    )
    assert default_sql.startswith(
        "spec.yaml:10:30: tables.User.columns.score.default.sql: not one PostgreSQL expression: "
    )
    assert why in index_where and why in default_sql


HOSTILE_SQLITE = {
    "stacked statement": ("score > 1; DELETE FROM Post", "`;` at character 10 ends a statement"),
    "closing parenthesis": ("true) OR (true", "`)` at character 5 closes a bracket that was not opened"),
    "line comment": ("1 -- ) OR (1", "a comment starts at character 3"),
    "block comment": ("1 /* x */", "a comment starts at character 3"),
    "unclosed string": ("'a;b", "a string opened at character 1 is never closed"),
    "unclosed bracket name": ("[a;b", "a quoted name opened at character 1 is never closed"),
    "two expressions": ("1, 2", "`,` at character 2 separates two expressions"),
}


@pytest.mark.parametrize("text, why", HOSTILE_SQLITE.values(), ids=HOSTILE_SQLITE.keys())
def test_a_sqlite_field_that_is_not_one_expression_is_refused_where_it_is_written(spec_dir, text, why):
    table_where, expression = problems(
        spec_dir,
        f"""
        version: 1
        source: {{sqlite: app.db}}
        target: {{url: "postgresql://etl@db.invalid/app"}}
        tables:
          User:
            where: {json.dumps(text)}
            columns:
              extra: {{expression: {json.dumps(text)}, type: text}}
        """,
    ).splitlines()

    assert table_where.startswith("spec.yaml:6:12: tables.User.where: not one SQLite expression: ")
    assert expression.startswith(
        "spec.yaml:8:27: tables.User.columns.extra.expression: not one SQLite expression: "
    )
    assert why in table_where and why in expression


def test_sql_fields_that_are_one_expression_validate(spec_dir):
    """Semicolons and dashes inside strings, quoted names and dollar quotes are not statements;
    a function call is one expression (and runs as the target role, like any default)."""
    checked = check(
        spec_dir,
        """
        version: 1
        source: {sqlite: app.db}
        target: {url: "postgresql://etl@db.invalid/app"}
        tables:
          User:
            where: "email <> 'a;b -- c' AND \\"on\\" IS NOT [no] AND (score IN (1, 2) OR score IS NULL)"
            indexes:
              - {columns: [email], where: "email <> 'a;b' AND email <> $$;$$ AND email <> $t$)$t$"}
              - {columns: [score], where: "pg_sleep(0) IS NULL AND email <> E'\\\\'' AND \\"score\\" > 0"}
            columns:
              score: {default: {sql: "length('--;/*')"}}
              email: {default: {sql: "ARRAY['a', 'b'][1]"}}
              initial: {expression: "substr(email, 1, 1) || ';'", type: text}
        """,
    )

    user = checked.mapping.table("User")
    assert user is not None and len(user.indexes) == 2


def test_a_stacked_statement_in_an_index_predicate_never_reaches_postgresql(migration, pg):
    """The reported attack: an index's `where` that moves a sequence of another schema."""
    pg.execute("CREATE SCHEMA other")
    pg.execute("CREATE SEQUENCE other.s")
    m = migration("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);")

    with pytest.raises(
        SpecError, match=r"spec.yaml:\d+:\d+: tables.t.indexes\[0\].where: not one PostgreSQL"
    ):
        m.apply(
            """
            tables:
              t:
                indexes:
                  - {columns: [v], where: "v IS NOT NULL; SELECT setval('other.s', 999999)"}
            """
        )

    assert pg.execute("SELECT last_value, is_called FROM other.s").fetchone() == (1, False)
    assert pg.execute("SELECT count(*) FROM pg_tables WHERE tablename = 't'").fetchone() == (0,)


# --- names PostgreSQL or etl would refuse at apply -------------------------------------------------


@pytest.mark.parametrize(
    "schema, message",
    [
        ("etl", "schema 'etl' is where etl keeps its own records; migrate into another schema"),
        (
            "etl_history_20261203",
            "schema 'etl_history_20261203' is where etl keeps its own records; migrate into another schema",
        ),
        ("pg_app", "PostgreSQL reserves schema names starting with pg_ ('pg_app'); choose another"),
        ("s" * 64, f"schema name '{'s' * 64}' is longer than PostgreSQL's 63 bytes; shorten it"),
    ],
    ids=["etl", "etl_history", "pg_", "64 bytes"],
)
def test_a_target_schema_apply_would_refuse_is_a_mistake(spec_dir, schema, message):
    text = problems(
        spec_dir,
        f"""
        version: 1
        source: {{sqlite: app.db}}
        target: {{url: "postgresql://etl@db.invalid/app", schema: {schema}}}
        """,
    )

    assert text == f"spec.yaml:3:58: target.schema: {message}"


def test_names_postgresql_would_refuse_or_truncate_are_mistakes(spec_dir, snapshot):
    """System columns (also when naming: lower makes them), empty names, a table named like the
    sequence PostgreSQL creates for another table's identity column, an enum name over 63 bytes."""
    with closing(sqlite3.connect(spec_dir / "app.db")) as con:
        con.executescript(
            """
            CREATE TABLE "Odd" ("XMin" TEXT, ctid TEXT, "" TEXT, "TableOID" TEXT, ok TEXT);
            CREATE TABLE "Post_id_seq" (n INTEGER);
            CREATE TABLE "" (n INTEGER);
            """
        )
    text = problems(
        spec_dir,
        f"""
        version: 1
        source: {{sqlite: app.db}}
        target: {{url: "postgresql://etl@db.invalid/app"}}
        naming: lower
        enums:
          {"e" * 64}: [a, b]
        tables:
          Odd:
            columns:
              TableOID: {{name: table_oid}}
        """,
    )

    assert text == snapshot
    assert "column 'XMin' would become 'xmin', which is the name of a PostgreSQL system column" in text
    assert "column 'ctid' is the name of a PostgreSQL system column; rename it with `name:`" in text
    assert "PostgreSQL refuses an empty column name; rename it with `name:`" in text
    assert "'post_id_seq'" in text and "rename one with `name:`" in text
    assert "TableOID" not in text  # renamed by its `name:`
    assert "tables['']: PostgreSQL refuses an empty table name; rename it with `name:`" in text
    assert len(lines(text)) == 6


def test_a_table_renamed_away_from_an_identity_sequence_name_validates(spec_dir):
    with closing(sqlite3.connect(spec_dir / "app.db")) as con:
        con.execute('CREATE TABLE "Post_id_seq" (n INTEGER)')

    checked = check(
        spec_dir,
        """
        version: 1
        source: {sqlite: app.db}
        target: {url: "postgresql://etl@db.invalid/app"}
        tables:
          Post_id_seq: {name: post_numbers}
        """,
    )

    assert checked.mapping.table("post_numbers") is not None
