"""type_rules by declared type: `varchar(n)` keeps each column's declared length, and a rule takes
effect on a spec etl init wrote (init writes a column's `type` only where the data chose it)."""

from __future__ import annotations

import psycopg
import pytest
from typer.testing import CliRunner

from etl.cli import app
from etl.errors import DataError, SpecError
from etl.init.infer import init_spec
from etl.pipeline import apply, check, plan_for


def column_types(pg, table: str) -> dict[str, str]:
    rows = pg.execute(
        "SELECT column_name, format_type(atttypid, atttypmod) FROM information_schema.columns "
        "JOIN pg_attribute ON attrelid = to_regclass(quote_ident(table_name)) AND attname = column_name "
        "WHERE table_schema = 'public' AND table_name = %s",
        (table,),
    ).fetchall()
    return dict(rows)


VARCHARS = """
    CREATE TABLE person (id INTEGER PRIMARY KEY, name VARCHAR(5), code NVARCHAR( 3 ), note VARCHAR, bio TEXT);
    INSERT INTO person VALUES (1, 'Ada', 'abc', 'x', 'y');
"""
KEEP_LENGTHS = 'type_rules:\n  - {declared: "*VARCHAR*", type: "varchar(n)"}\n'


def test_varchar_n_keeps_each_declared_length_and_postgresql_enforces_it(migration, pg):
    result = migration(VARCHARS).apply(KEEP_LENGTHS)

    assert result.verified
    assert column_types(pg, "person") == {
        "id": "bigint",
        "name": "character varying(5)",
        "code": "character varying(3)",
        "note": "character varying",
        "bio": "text",
    }
    with pytest.raises(
        psycopg.errors.StringDataRightTruncation, match="value too long for type character varying\\(5\\)"
    ):
        pg.execute("INSERT INTO person (id, name) VALUES (2, 'Hopper')")


def test_a_value_longer_than_its_declared_length_fails_the_run_by_name(migration, pg):
    m = migration(VARCHARS + "INSERT INTO person VALUES (2, 'Hopper', 'abc', NULL, NULL);")

    with pytest.raises(DataError) as failure:
        m.apply(KEEP_LENGTHS)

    assert str(failure.value) == (
        'table "person", row id=2: column "name": longer than character varying(5) allows: text \'Hopper\''
    )
    assert pg.execute("SELECT to_regclass('public.person')").fetchone() == (None,)


def test_a_declared_length_postgresql_cannot_take_is_a_spec_mistake_at_the_column(migration):
    m = migration("CREATE TABLE t (id INTEGER PRIMARY KEY, s VARCHAR(0));")

    with pytest.raises(SpecError, match="declared type VARCHAR\\(0\\) gives length 0"):
        m.check(KEEP_LENGTHS)


def test_a_type_rule_added_to_an_init_written_spec_changes_the_columns_the_data_did_not_decide(
    tmp_sqlite, tmp_path, pg_url, pg
):
    db = tmp_sqlite(
        """
        CREATE TABLE item (id INTEGER PRIMARY KEY, qty INTEGER, code INTEGER, name VARCHAR(5));
        INSERT INTO item VALUES (1, 3, 7, 'pen'), (2, 4, 'A-7', 'ink');
        """
    )
    spec = tmp_path / "spec.yaml"
    init_spec(db, spec)
    text = spec.read_text(encoding="utf-8")
    assert "      qty: {}  # INTEGER -> bigint" in text
    assert "      code: {type: text}  # !! INTEGER; holds text that is not an integer" in text

    rules = 'type_rules:\n  - {declared: INTEGER, type: integer}\n  - {declared: "VARCHAR*", type: "varchar(n)"}\n'
    spec.write_text(text.replace("naming: keep\n", "naming: keep\n" + rules), encoding="utf-8")
    checked = check(spec, {"DATABASE_URL": pg_url})
    assert apply(checked, plan_for(checked)).verified

    # The rules apply where init left the type to them; the type the data chose stays.
    assert column_types(pg, "item") == {
        "id": "integer",
        "qty": "integer",
        "code": "text",
        "name": "character varying(5)",
    }
    assert pg.execute("SELECT code FROM item ORDER BY id").fetchall() == [("7",), ("A-7",)]


def test_validate_names_a_type_rule_that_every_column_it_matches_overrides(migration):
    m = migration("CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, b INTEGER, s TEXT);")
    spec = m.write_spec(
        """
        type_rules:
          - {declared: INTEGER, type: integer}
          - {declared: TEXT, type: "varchar(n)"}
        tables:
          t:
            columns:
              id: {type: bigint}
              a: {type: bigint}
              b: {type: bigint}
        """
    )

    result = CliRunner().invoke(app, ["validate", str(spec)])

    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[1:] == [
        f"Note: {spec}:8:5: type_rules[0] (INTEGER) changes no column: the 3 columns it matches "
        "each set their own `type` (remove that `type` to let the rule apply)"
    ]
