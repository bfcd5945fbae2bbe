"""Indexes in the spec: a key is a column, a column in descending order or under a SQLite
collation, or a SQLite expression; an index may be unique and partial. Each test migrates a SQLite
file into PostgreSQL and asserts what PostgreSQL then does (an insert it refuses, an index it
holds), and that an unchanged target plans nothing."""

from __future__ import annotations

import psycopg
import pytest
import yaml

from etl.core.explain import plan_lines
from etl.errors import SpecError
from etl.init.infer import init_spec

USERS = """
    CREATE TABLE "User" (id INTEGER PRIMARY KEY, email TEXT NOT NULL, name TEXT, score INTEGER,
                         deleted INTEGER NOT NULL DEFAULT 0);
    INSERT INTO "User" (email, name, score) VALUES ('a@X.com', 'Ada', 3);
"""


def index_definitions(pg: psycopg.Connection, table: str) -> dict[str, str]:
    """The table's indexes (not those behind constraints), as pg_indexes shows them."""
    rows = pg.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = %s "
        "AND indexname NOT IN (SELECT conname FROM pg_constraint) ORDER BY indexname",
        (table,),
    ).fetchall()
    return dict(rows)


def insert(pg: psycopg.Connection, **values) -> None:
    """One row into "User", committed (so the next insert sees it)."""
    names = ", ".join(f'"{k}"' for k in values)
    marks = ", ".join(["%s"] * len(values))
    with pg.transaction():
        pg.execute(f'INSERT INTO "User" ({names}) VALUES ({marks})', tuple(values.values()))  # type: ignore[arg-type]


def assert_refused(pg: psycopg.Connection, **values) -> None:
    with pytest.raises(psycopg.errors.UniqueViolation):
        insert(pg, **values)


def test_a_unique_index_on_a_spec_expression_refuses_what_it_compares_equal(migration, pg):
    migration(USERS).apply(
        """
        tables:
          User:
            indexes:
              - {name: User_email_lower_key, columns: [{expression: "lower(email)"}], unique: true}
        """
    )
    assert index_definitions(pg, "User") == {
        "User_email_lower_key": 'CREATE UNIQUE INDEX "User_email_lower_key" ON public."User" USING btree (lower((email COLLATE "C")))'
    }
    assert_refused(pg, id=2, email="A@x.com")
    # SQLite's lower() folds ASCII letters only: it holds 'é@x.com' beside 'É@x.com', and so does PostgreSQL.
    insert(pg, id=3, email="é@x.com")
    insert(pg, id=4, email="É@x.com")


def test_a_plain_index_on_an_expression_is_the_expression_postgresql_queries_write(migration, pg):
    """Not unique, the index refuses nothing: it is on lower(email) as PostgreSQL writes it, so a
    query's `WHERE lower(email) = ...` can use it."""
    migration(USERS).apply(
        """
        tables:
          User:
            indexes:
              - {name: User_email_lower, columns: [{expression: "lower(email)", order: desc}]}
        """
    )
    assert index_definitions(pg, "User") == {
        "User_email_lower": 'CREATE INDEX "User_email_lower" ON public."User" USING btree (lower(email) DESC)'
    }


def test_a_unique_index_under_nocase_refuses_the_same_name_in_other_ascii_case(migration, pg):
    migration(USERS).apply(
        """
        tables:
          User:
            indexes:
              - {name: User_name_key, columns: [{column: name, collate: nocase}], unique: true}
        """
    )
    assert_refused(pg, id=2, email="b@x.com", name="ADA")
    insert(pg, id=3, email="c@x.com", name="Adä")  # NOCASE folds ASCII letters only, as SQLite does
    insert(pg, id=4, email="d@x.com", name="ADÄ")


def test_a_descending_key_is_descending_in_postgresql(migration, pg):
    migration(USERS).apply(
        """
        tables:
          User:
            indexes:
              - {name: User_top, columns: [deleted, {column: score, order: desc, nulls: last}]}
        """
    )
    assert index_definitions(pg, "User") == {
        "User_top": 'CREATE INDEX "User_top" ON public."User" USING btree (deleted, score DESC NULLS LAST)'
    }


def test_a_partial_unique_index_allows_duplicates_outside_its_predicate(migration, pg):
    migration(USERS).apply(
        """
        tables:
          User:
            indexes:
              - {name: User_live_email_key, columns: [email], unique: true, where: "deleted = 0"}
        """
    )
    insert(pg, id=2, email="a@X.com", deleted=1)
    insert(pg, id=3, email="a@X.com", deleted=1)
    assert_refused(pg, id=4, email="a@X.com", deleted=0)


def test_an_unchanged_target_plans_nothing_and_a_changed_index_is_replaced(migration, pg):
    body = """
        tables:
          User:
            indexes:
              - {name: User_top, columns: [{column: score, order: desc}]}
              - {name: User_email_lower_key, columns: [{expression: "lower(email)"}], unique: true}
              - {name: User_name_key, columns: [{column: name, collate: nocase}], unique: true}
        """
    m = migration(USERS)
    m.apply(body)
    assert m.plan(body).steps == ()
    changed = m.plan(body.replace("order: desc", "order: asc"))
    index_steps = [(type(s).__name__, getattr(s, "name", None) or s.index.name) for s in changed.steps[1:]]
    assert type(changed.steps[0]).__name__ == "KeepForRollback"
    assert index_steps == [("DropIndex", "User_top"), ("CreateIndex", "User_top")]
    assert m.plan(body.replace("order: desc", "order: desc, nulls: last")).steps != ()


def test_a_typo_in_an_index_expression_is_one_line_naming_where_it_is_written(migration):
    m = migration(USERS)
    with pytest.raises(SpecError) as caught:
        m.check(
            """
            tables:
              User:
                indexes:
                  - {columns: [{expression: "lower(emial)"}], unique: true}
            """
        )
    assert str(caught.value) == (
        f"{m.spec_path}:10:33: tables.User.indexes[0].columns[0].expression: index expression lower(emial) "
        "cannot be translated to PostgreSQL: it uses 'emial', which is not a column of the table "
        "(did you mean 'email'?)"
    )


@pytest.mark.parametrize(
    ("key", "why"),
    [
        (
            '{expression: "substr(name, 1, 3)"}',
            "it calls substr(), which etl does not translate to PostgreSQL",
        ),
        ('{expression: "name) , (email"}', "not one SQLite expression"),
        ("{column: score, collate: nocase}", "collate nocase compares text, and column 'score' is not text"),
        ("{column: nope}", "an index uses column 'nope', which does not exist"),
        (
            '{column: email, expression: "lower(email)"}',
            "a `column` (with `order`, `nulls`, `collate`) or an",
        ),
        ("{order: desc}", "give one of them"),
        ("{colum: email}", "unknown key 'colum' (did you mean 'column'?)"),
    ],
)
def test_an_index_key_etl_cannot_write_exactly_is_refused(migration, key, why):
    with pytest.raises(SpecError) as caught:
        migration(USERS).check(f"tables:\n  User:\n    indexes:\n      - {{columns: [{key}]}}\n")
    assert why in str(caught.value)
    assert len(str(caught.value).splitlines()) == 1


def test_a_spec_listing_indexes_names_the_sqlite_indexes_it_leaves_out(migration):
    m = migration(USERS + 'CREATE INDEX "User_score" ON "User" (score DESC);')
    plan = m.plan("tables:\n  User:\n    indexes: []\n")
    assert [(o.kind, o.name, o.reason) for o in plan.left_out] == [
        ("index", "User_score", "not in the spec's indexes")
    ]
    assert (
        'index "User_score" of "User": not in the spec\'s indexes: CREATE INDEX "User_score" ("score" DESC)'
        in ("\n".join(plan_lines(plan, "t")))
    )


# --- etl init writes every SQLite index back exactly ------------------------------------------------

SCORES = """
    CREATE TABLE "User" (id INTEGER PRIMARY KEY, email TEXT NOT NULL, name TEXT, score INTEGER,
                         deleted INTEGER NOT NULL DEFAULT 0, nick TEXT COLLATE NOCASE);
    CREATE INDEX "User_score" ON "User" (deleted, score DESC);
    CREATE UNIQUE INDEX "User_email_lower" ON "User" (lower(email));
    CREATE UNIQUE INDEX "User_name_nocase" ON "User" (name COLLATE NOCASE);
    CREATE INDEX "User_nick" ON "User" (nick);
    CREATE UNIQUE INDEX "User_live_email" ON "User" (email) WHERE deleted = 0;
    -- SQLite's LIKE ignores ASCII case and PostgreSQL's does not: no exact equivalent.
    CREATE INDEX "User_a_names" ON "User" (name) WHERE name LIKE 'a%';
    INSERT INTO "User" (email, name, score, nick) VALUES ('a@X.com', 'Ada', 3, 'ada');
"""


def test_init_writes_each_index_exactly_and_the_target_holds_them(tmp_sqlite, tmp_path, pg_url, pg):
    from etl.pipeline import apply, check, plan_for

    db = tmp_sqlite(SCORES)
    spec = tmp_path / "spec.yaml"
    result = init_spec(db, spec)
    lines = [line.strip() for line in result.text.splitlines()]
    start = lines.index("indexes:")
    assert lines[start + 1 : start + 7] == [
        "- {name: User_score, columns: [deleted, {column: score, order: desc}]}",
        '- {name: User_email_lower, columns: [{expression: "lower(email)"}], unique: true}',
        "- {name: User_name_nocase, columns: [{column: name, collate: nocase}], unique: true}",
        "- {name: User_nick, columns: [{column: nick, collate: nocase}]}",
        '- {name: User_live_email, columns: [email], unique: true, where: "\\"deleted\\" = 0"}',
        "# !! index User_a_names: its WHERE clause (name LIKE 'a%') has no PostgreSQL equivalent; left out",
    ]
    assert yaml.safe_load(spec.read_text())["tables"]["User"]["indexes"][0] == {
        "name": "User_score",
        "columns": ["deleted", {"column": "score", "order": "desc"}],
    }

    checked = check(spec, {"DATABASE_URL": pg_url})
    plan = plan_for(checked)
    assert [(o.kind, o.name) for o in plan.left_out] == [("index", "User_a_names")]
    apply(checked, plan)
    assert index_definitions(pg, "User") == {
        "User_email_lower": 'CREATE UNIQUE INDEX "User_email_lower" ON public."User" USING btree (lower((email COLLATE "C")))',
        "User_live_email": 'CREATE UNIQUE INDEX "User_live_email" ON public."User" USING btree (email) WHERE (deleted = 0)',
        "User_name_nocase": 'CREATE UNIQUE INDEX "User_name_nocase" ON public."User" USING btree (lower((name COLLATE "C")))',
        "User_nick": 'CREATE INDEX "User_nick" ON public."User" USING btree (lower((nick COLLATE "C")))',
        "User_score": 'CREATE INDEX "User_score" ON public."User" USING btree (deleted, score DESC)',
    }
    assert_refused(pg, id=2, email="A@x.com")
    assert_refused(pg, id=3, email="b@x.com", name="ADA")
    assert plan_for(check(spec, {"DATABASE_URL": pg_url})).steps == ()


def test_init_keeps_a_nocase_unique_constraint_as_an_index_when_it_writes_the_unique_list(
    tmp_sqlite, tmp_path, pg_url, pg
):
    """A `unique` list replaces SQLite's constraints, and cannot hold `email COLLATE NOCASE`: init
    then writes that constraint into `indexes`, so PostgreSQL still refuses 'A@x.com' beside 'a@X.com'."""
    from etl.pipeline import apply, check, plan_for

    db = tmp_sqlite(
        """
        CREATE TABLE t (id INTEGER PRIMARY KEY, email TEXT COLLATE NOCASE UNIQUE, n INTEGER,
                        token BLOB COLLATE NOCASE UNIQUE);
        CREATE INDEX t_n ON t (n DESC);
        INSERT INTO t VALUES (1, 'a@X.com', 7, NULL);
        """
    )
    spec = tmp_path / "spec.yaml"
    init_spec(db, spec)
    table = yaml.safe_load(spec.read_text())["tables"]["t"]
    assert table["indexes"] == [
        {"name": "t_n", "columns": [{"column": "n", "order": "desc"}]},
        {"columns": [{"column": "email", "collate": "nocase"}], "unique": True},
    ]
    checked = check(spec, {"DATABASE_URL": pg_url})
    plan = plan_for(checked)
    assert [(o.kind, o.source_sql) for o in plan.left_out] == [
        ("unique constraint", 'UNIQUE ("token" COLLATE NOCASE)')
    ]
    apply(checked, plan)
    with pytest.raises(psycopg.errors.UniqueViolation), pg.transaction():
        pg.execute("INSERT INTO t (id, email) VALUES (2, 'A@x.com')")
    assert plan_for(check(spec, {"DATABASE_URL": pg_url})).steps == ()


def test_sqlite_indexes_carried_without_a_spec_list_plan_nothing_the_second_time(migration, pg):
    m = migration(
        SCORES.replace("""CREATE INDEX "User_a_names" ON "User" (name) WHERE name LIKE 'a%';""", "")
    )
    m.apply()
    assert set(index_definitions(pg, "User")) == {
        "User_email_lower",
        "User_live_email",
        "User_name_nocase",
        "User_nick",
        "User_score",
    }
    assert "score DESC" in index_definitions(pg, "User")["User_score"]
    assert m.plan().steps == ()


def test_hostile_column_names_in_index_keys_stay_names(migration, pg):
    m = migration(
        """
        CREATE TABLE t (id INTEGER PRIMARY KEY, "e""; DROP TABLE t; --" TEXT, "Sc ore" INTEGER);
        INSERT INTO t VALUES (1, 'a@X.com', 2);
        """
    )
    m.apply(
        """
        tables:
          t:
            indexes:
              - {name: t_e_key, columns: [{expression: 'lower("e""; DROP TABLE t; --")'}], unique: true}
              - {name: t_score, columns: [{column: Sc ore, order: desc}]}
        """
    )
    with pytest.raises(psycopg.errors.UniqueViolation), pg.transaction():
        pg.execute("""INSERT INTO t (id, "e""; DROP TABLE t; --") VALUES (2, 'A@x.com')""")
    assert 'USING btree ("Sc ore" DESC)' in index_definitions(pg, "t")["t_score"]
    assert m.plan().steps == ()
