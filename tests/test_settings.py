"""The spec's fixed-choice settings: the JSON Schemas list the allowed strings, etl.settings the
members the code decides by; they must not drift apart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from etl.settings import Converter, Deferral, ForeignKeyAction, Mode, Naming, OnError
from etl.specfile.document import DEFERRABLE, SCHEMA_FILE, read_spec, spec_schema

PLAN_SCHEMA_FILE = SCHEMA_FILE.parent / "etl-plan.schema.json"


@pytest.mark.parametrize(
    ("definition", "setting"),
    [("mode", Mode), ("on_error", OnError), ("converter", Converter), ("fk_action", ForeignKeyAction)],
)
def test_the_spec_schema_allows_exactly_the_settings_values(definition, setting):
    assert spec_schema()["definitions"][definition]["enum"] == [m.value.lower() for m in setting]


def test_the_spec_words_for_deferral_are_exactly_the_schemas_and_name_every_member():
    words = spec_schema()["definitions"]["table"]["properties"]["foreign_keys"]["items"]["properties"][
        "deferrable"
    ]
    assert list(DEFERRABLE) == words["enum"]
    assert sorted(DEFERRABLE.values()) == sorted(Deferral)


def test_the_spec_schema_allows_exactly_the_naming_policies():
    assert spec_schema()["properties"]["naming"]["enum"] == [m.value for m in Naming]


def test_the_plan_schema_lists_exactly_the_modes():
    plan_schema = json.loads(PLAN_SCHEMA_FILE.read_text(encoding="utf-8"))
    found = []

    def walk(node):
        if isinstance(node, dict):
            if "mode" in node.get("properties", {}):
                found.append(node["properties"]["mode"]["enum"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(plan_schema)
    assert found == [[m.value for m in Mode]]


def test_the_spec_reader_gives_members_that_print_as_written(tmp_path: Path):
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(
        "version: 1\n"
        "source: {sqlite: app.db}\n"
        "target: {url: postgresql://localhost/app}\n"
        "mode: upsert\n"
        "type_rules:\n"
        "  - {declared: DATETIME, type: timestamptz, converter: epoch_milliseconds}\n"
        "tables:\n"
        "  Event:\n"
        "    on_error: reject\n"
        "    columns:\n"
        "      at: {converter: julian_day}\n",
        encoding="utf-8",
    )
    spec, problems = read_spec(spec_file)
    assert problems == []
    assert spec is not None
    table = spec.tables["Event"]
    assert spec.mode is Mode.UPSERT
    assert spec.on_error is OnError.FAIL  # the default
    assert table.mode is None  # unset: the spec's default applies
    assert table.on_error is OnError.REJECT
    assert spec.type_rules[0].converter is Converter.EPOCH_MILLISECONDS
    assert table.columns["at"].converter is Converter.JULIAN_DAY
    # Plans, reports and written specs show the value, as the user wrote it.
    assert f"{spec.mode} {table.on_error}" == "upsert reject"
    assert json.dumps({"mode": spec.mode}) == '{"mode": "upsert"}'
