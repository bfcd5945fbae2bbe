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
