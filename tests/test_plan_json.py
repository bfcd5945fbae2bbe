"""`etl plan --json` is a documented format: every document it prints is valid against
schemas/etl-plan.schema.json, and the schema knows every kind of step."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from typer.testing import CliRunner

from etl.cli import app
from etl.core import plan as plan_module
from etl.core.explain import action_name

SCHEMA = json.loads((Path(__file__).parent.parent / "schemas" / "etl-plan.schema.json").read_text())
runner = CliRunner()

SOURCE = """
CREATE TABLE author (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE book (id INTEGER PRIMARY KEY, author_id INTEGER REFERENCES author(id), title TEXT, at INTEGER);
CREATE TABLE log (line TEXT);
INSERT INTO author VALUES (1, 'Ada'), (2, 'Brian');
INSERT INTO book VALUES (1, 1, 'Notes', 10), (2, 2, 'C', 20);
INSERT INTO log VALUES ('a'), ('a');
"""

BODY = """
tables:
  book:
    mode: append
    watermark: at
"""


def plan_json(spec: Path, *extra: str) -> dict:
    result = runner.invoke(app, ["plan", str(spec), "--json", *extra], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    jsonschema.validate(document, SCHEMA)
    return document


def test_the_schema_names_every_kind_of_step():
    steps = [
        cls
        for cls in vars(plan_module).values()
        if isinstance(cls, type) and issubclass(cls, plan_module.Step) and cls is not plan_module.Step
    ]
    assert {action_name(cls.__new__(cls)) for cls in steps} == set(
        SCHEMA["definitions"]["step"]["properties"]["action"]["enum"]
    )


def test_plans_of_an_empty_a_changed_and_an_unchanged_target_are_valid_documents(migration, pg):
    m = migration(SOURCE)
    spec = m.write_spec(BODY)
    first = plan_json(spec)
    assert first["changes"] and first["summary"]["rows"] == {"insert": 6, "update": 0, "delete": 0}
    m.apply()

    m.change_source(
        "UPDATE author SET name = 'Ada L.' WHERE id = 1; INSERT INTO book VALUES (3, 1, 'More', 30);"
        "DELETE FROM log WHERE rowid = 1; ALTER TABLE author ADD COLUMN born INTEGER;"
    )
    changed = plan_json(spec, "--show-rows", "3")
    assert changed["destructive"]  # a row of log is deleted
    assert changed["summary"]["rows"] == {"insert": 1, "update": 1, "delete": 1}
    by_action = {(s["action"], s.get("table")): s for s in changed["steps"]}
    assert by_action[("sync_rows", "author")]["samples"] == [
        {"op": "update", "key": "id=1", "columns": ["name"]}
    ]
    assert by_action[("sync_rows", "book")]["watermark"] == {"column": "at", "value": "20"}
    assert by_action[("add_column", "author")]["description"] == '+ column "author"."born" bigint'

    m.apply(allow_destructive=True)
    unchanged = plan_json(spec)
    assert unchanged == {**unchanged, "changes": False, "destructive": False, "steps": []}
    assert unchanged["summary"]["text"] == "No changes. The target matches the spec."
