"""Every step kind of a plan has its wording in the explainer, and the steps carry none."""

from __future__ import annotations

import inspect

import pytest

from etl.core import plan
from etl.core.explain import Line, describe

STEP_KINDS = sorted(
    (
        cls
        for _, cls in inspect.getmembers(plan, inspect.isclass)
        if issubclass(cls, plan.Step) and cls is not plan.Step and cls.__module__ == plan.__name__
    ),
    key=lambda cls: cls.__name__,
)


def test_the_step_kinds_are_found() -> None:
    assert len(STEP_KINDS) >= 26
    assert {plan.CreateSchema, plan.LoadRows, plan.VerifyStep} <= set(STEP_KINDS)


@pytest.mark.parametrize("kind", STEP_KINDS, ids=lambda cls: cls.__name__)
def test_every_step_kind_has_wording(kind: type[plan.Step]) -> None:
    # Registered for the class itself: the fallback for plan.Step would fail at the first plan.
    assert describe.dispatch(kind) is not describe.dispatch(plan.Step), (
        f"explain.describe lacks {kind.__name__}"
    )


@pytest.mark.parametrize("kind", STEP_KINDS, ids=lambda cls: cls.__name__)
def test_no_step_carries_display_text(kind: type[plan.Step]) -> None:
    assert not hasattr(kind, "describe")


def test_an_unknown_step_kind_is_refused() -> None:
    class Unknown(plan.Step):
        pass

    with pytest.raises(TypeError, match="Unknown"):
        describe(Unknown())


def test_a_line_renders_its_marker_text_and_note() -> None:
    assert Line("+", 'schema "app"').render() == '+ schema "app"'
    assert Line("", "verify").render() == "  verify"
    assert Line("!", 'column "t"."c"', "destructive").render() == '! column "t"."c"  [destructive]'


def _table(name: str, columns: tuple[str, ...], rows: int | None, **extra) -> plan.TargetTable:
    """A table as the planner describes it, built as a literal: the explainer needs no database."""
    from etl.core.mapping import TargetColumn, TargetTable
    from etl.pgtypes import parse_pg_type
    from etl.settings import Converter
    from etl.sqlite.convert import ValueConversion

    pg = parse_pg_type("bigint")

    def column(c: str) -> TargetColumn:
        return TargetColumn(c, pg, True, None, False, ValueConversion(f'"{c}"', c, pg, Converter.AUTO, True))

    fields = (
        dict(
            primary_key=("id",),
            primary_key_name=f"{name}_pkey",
            uniques=(),
            indexes=(),
            foreign_keys=(),
            where=None,
            key_sql=(),
        )
        | extra
    )
    return TargetTable(name, name, tuple(column(c) for c in columns), source_rows=rows, **fields)  # type: ignore[arg-type]


def test_the_default_plan_has_one_line_per_created_table_and_verbose_every_step() -> None:
    from psycopg import sql as pgsql

    from etl.core.explain import plan_lines
    from etl.core.mapping import TargetForeignKey, TargetIndex

    author = _table("author", ("id",), 1)
    book = _table(
        "book",
        ("id", "author_id"),
        2,
        indexes=(
            TargetIndex("book_author", (pgsql.Identifier("author_id"),)),
            TargetIndex("book_b", (pgsql.Identifier("id"),)),
        ),
        foreign_keys=(
            TargetForeignKey("book_fk", ("author_id",), "author", ("id",), "CASCADE", "NO ACTION"),
        ),
    )
    steps = (
        plan.KeepForRollback("public", (), ("author", "book"), 1),
        plan.CreateTable("public", author),
        plan.CreateTable("public", book),
        plan.LoadRows("public", author),
        plan.LoadRows("public", book),
        plan.AddPrimaryKey("public", author),
        plan.AddPrimaryKey("public", book),
        plan.CreateIndex("public", "book", book.indexes[0]),
        plan.CreateIndex("public", "book", book.indexes[1]),
        plan.AddForeignKey("public", "book", book.foreign_keys[0]),
    )
    the_plan = plan.Plan(steps, "public")
    summary = "Plan: 2 tables to create, 0 to change; rows: 3 to insert, 0 to update, 0 to delete."
    assert plan_lines(the_plan, "db") == [
        'Target: db (schema "public")',
        '+ table "author" (1 column) <- 1 row',
        '+ table "book" (2 columns, 2 indexes, 1 foreign key) <- 2 rows',
        summary,
    ]
    assert plan_lines(the_plan, "db", list_creates=False) == ['Target: db (schema "public")', summary]
    verbose = plan_lines(the_plan, "db", verbose=True)
    assert len(verbose) == len(steps) + 2
    assert '  load 1 row from "author" -> "public"."author"' in verbose
    assert '+ primary key "book_pkey" (id)' in verbose
