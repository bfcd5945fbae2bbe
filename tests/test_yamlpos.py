"""Tests for etl.yamlpos: positions, YAML traps, safety limits and schema problems."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from etl.errors import Location, SpecError, SpecProblem
from etl.specfile.yamlpos import MAX_ALIAS_EXPANSIONS, Document, load_yaml, load_yaml_file, schema_problems


def messages(text: str) -> list[str]:
    """The problems load_yaml reports for `text`, as the user sees them."""
    with pytest.raises(SpecError) as caught:
        load_yaml(text, "spec.yaml")
    return [str(p) for p in caught.value.problems]


def at(line: int, column: int) -> Location:
    return Location("spec.yaml", line, column)


# --- positions -----------------------------------------------------------------------------------

NESTED = """\
source: app.db
tables:
  User:
    columns:
      id: {type: integer, primary: true}
      email:
        type: text
    indexes:
      - columns: [email, id]
      - name: by_id
        columns:
          - id
"""


def test_positions_of_nested_keys_and_values_are_one_based() -> None:
    doc = load_yaml(NESTED, "spec.yaml")
    assert doc.location(("source",)) == at(1, 9)
    assert doc.location(("source",), key=True) == at(1, 1)
    assert doc.location(("tables", "User"), key=True) == at(3, 3)
    assert doc.location(("tables", "User", "columns", "email", "type")) == at(7, 15)
    assert doc.location(("tables", "User", "columns", "email", "type"), key=True) == at(7, 9)


def test_positions_inside_flow_mappings_and_lists() -> None:
    doc = load_yaml(NESTED, "spec.yaml")
    assert doc.location(("tables", "User", "columns", "id", "primary"), key=True) == at(5, 27)
    assert doc.location(("tables", "User", "columns", "id", "primary")) == at(5, 36)
    assert doc.location(("tables", "User", "indexes", 0)) == at(9, 9)
    assert doc.location(("tables", "User", "indexes", 0, "columns", 1)) == at(9, 26)
    assert doc.location(("tables", "User", "indexes", 1, "columns", 0)) == at(12, 13)


def test_missing_path_falls_back_to_nearest_existing_ancestor() -> None:
    doc = load_yaml(NESTED, "spec.yaml")
    assert doc.location(("tables", "User", "columns", "email", "nullable")) == at(7, 9)
    assert doc.location(("tables", "Nope", "columns"), key=True) == at(2, 1)
    assert doc.location(()) == at(1, 1)


def test_document_built_by_hand_has_no_locations() -> None:
    assert Document({"a": 1}, "spec.yaml").location(("a",)) is None


# --- YAML 1.1 traps ------------------------------------------------------------------------------


def test_yes_no_on_off_stay_strings_as_keys_and_values() -> None:
    doc = load_yaml("on: yes\nno: off\ny: n\nYES: On\n", "spec.yaml")
    assert doc.data == {"on": "yes", "no": "off", "y": "n", "YES": "On"}


def test_only_true_and_false_are_booleans() -> None:
    doc = load_yaml("a: [true, True, TRUE, false, False, FALSE, tRUE]\n", "spec.yaml")
    assert doc.data == {"a": [True, True, True, False, False, False, "tRUE"]}


def test_keys_are_the_literal_scalar_text() -> None:
    doc = load_yaml("1: a\nnull: b\n3.0: c\ntrue: d\n~: e\n'quoted': f\n", "spec.yaml")
    assert list(doc.data) == ["1", "null", "3.0", "true", "~", "quoted"]


def test_dates_and_times_stay_strings() -> None:
    doc = load_yaml("day: 2024-01-01\nat: 2024-01-01T10:00:00Z\nclock: 12:30:00\n", "spec.yaml")
    assert doc.data == {"day": "2024-01-01", "at": "2024-01-01T10:00:00Z", "clock": "12:30:00"}


def test_numbers_follow_yaml_1_2_core() -> None:
    doc = load_yaml(
        "a: 010\nb: 0x1F\nc: 0o17\nd: -5\ne: 1.5\nf: 1e3\ng: .inf\nh: -.inf\ni: .nan\nj: 1_000\nk: 0b11\n",
        "spec.yaml",
    )
    data = doc.data
    assert (data["a"], data["b"], data["c"], data["d"]) == (10, 31, 15, -5)
    assert (data["e"], data["f"], data["g"], data["h"]) == (1.5, 1000.0, math.inf, -math.inf)
    assert math.isnan(data["i"])
    assert (data["j"], data["k"]) == ("1_000", "0b11")  # YAML 1.1 only: strings in 1.2


def test_nulls_and_quoted_scalars() -> None:
    doc = load_yaml("a: ~\nb: null\nc: NULL\nd:\ne: '1'\nf: \"true\"\ng: 'null'\n", "spec.yaml")
    assert doc.data == {"a": None, "b": None, "c": None, "d": None, "e": "1", "f": "true", "g": "null"}


def test_explicit_core_tags_are_honoured_and_checked() -> None:
    assert load_yaml("a: !!str 12\nb: !!int '12'\n", "spec.yaml").data == {"a": "12", "b": 12}
    assert messages("a: !!int twelve\n") == ["spec.yaml:1:4: 'twelve' is not a valid !!int value"]


# --- duplicates, tags, aliases ------------------------------------------------------------------


def test_duplicate_key_is_reported_with_both_lines() -> None:
    assert messages("email: a\nname: b\nemail: c\n") == [
        "spec.yaml:3:1: duplicate key 'email' (first at line 1)"
    ]


def test_all_duplicate_keys_are_collected_including_nested_ones() -> None:
    text = "a: 1\nb:\n  c: 1\n  d: 2\n  c: 3\n  c: 4\nx: {k: 1, k: 2}\na: 2\n"
    assert messages(text) == [
        "spec.yaml:5:3: duplicate key 'c' (first at line 3)",
        "spec.yaml:6:3: duplicate key 'c' (first at line 3)",
        "spec.yaml:7:11: duplicate key 'k' (first at line 7)",
        "spec.yaml:8:1: duplicate key 'a' (first at line 1)",
    ]


def test_python_object_tag_is_rejected() -> None:
    only_plain = "(only plain YAML values are allowed)"
    assert messages("a: !!python/object:os.system {}\nb: !!python/name:os.system x\n") == [
        f"spec.yaml:1:4: unsupported YAML tag '!!python/object:os.system' {only_plain}",
        f"spec.yaml:2:4: unsupported YAML tag '!!python/name:os.system' {only_plain}",
    ]


def test_non_scalar_key_is_rejected() -> None:
    assert messages("? [a, b]\n: 1\n") == ["spec.yaml:1:3: a mapping key must be a plain string"]


def test_aliases_are_resolved() -> None:
    doc = load_yaml("base: &b {type: text}\nname: *b\n", "spec.yaml")
    assert doc.data == {"base": {"type": "text"}, "name": {"type": "text"}}
    assert doc.location(("name", "type")) == at(1, 17)  # where the aliased text was written


def test_merge_keys_merge_and_explicit_keys_win() -> None:
    text = "base: &b {type: text, null: true}\ncol:\n  <<: *b\n  type: int\n"
    doc = load_yaml(text, "spec.yaml")
    assert doc.data["col"] == {"type": "int", "null": True}
    assert doc.location(("col", "type")) == at(4, 9)


def test_alias_bomb_is_limited() -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    problems = messages("\n".join(lines) + "\n")
    assert len(problems) == 1
    assert problems[0].endswith(f"aliases expand too much (more than {MAX_ALIAS_EXPANSIONS} expansions)")


def test_recursive_alias_is_an_error() -> None:
    assert messages("a: &x [1, *x]\n") == [
        "spec.yaml:1:4: an alias refers to a node that contains it (recursive structures are not allowed)"
    ]


# --- syntax errors and files ---------------------------------------------------------------------


def test_syntax_error_has_the_location_pyyaml_reports() -> None:
    assert messages("tables:\n  User: 1\n  a: b: c\n") == [
        "spec.yaml:3:7: YAML syntax error: mapping values are not allowed here"
    ]


def test_tab_indentation_is_a_syntax_error() -> None:
    assert messages("tables:\n\tUser: 1\n") == [
        "spec.yaml:2:1: YAML syntax error: found character '\\t' that cannot start any token"
        " (use spaces, not tabs, for indentation)"
    ]


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n"])
def test_empty_file_is_reported(text: str) -> None:
    assert messages(text) == ["spec.yaml:1:1: the spec is empty"]


def test_several_documents_are_an_error() -> None:
    assert messages("a: 1\n---\nb: 2\n") == [
        "spec.yaml:2:1: the spec must be a single YAML document, but another one starts here"
    ]


def test_load_yaml_file_uses_the_path_as_file_name(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("\ufeffsource: app.db\n", encoding="utf-8")  # a BOM is tolerated
    doc = load_yaml_file(spec)
    assert doc.data == {"source": "app.db"}
    assert doc.location(("source",)) == Location(str(spec), 1, 9)


def test_missing_file_is_a_spec_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(SpecError) as caught:
        load_yaml_file(missing)
    assert str(caught.value) == f"cannot read spec file '{missing}': No such file or directory"


def test_invalid_utf8_file_points_at_the_bad_byte(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_bytes("source: app.db\nname: ñ".encode() + b"caf\xe9\n")
    with pytest.raises(SpecError) as caught:
        load_yaml_file(spec)
    assert str(caught.value) == f"{spec}:2:11: the file is not valid UTF-8 (byte 0xe9)"


# --- schema problems -----------------------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "required": ["source", "tables"],
    "additionalProperties": False,
    "properties": {
        "source": {"type": "string"},
        "naming": {"enum": ["keep", "lower", "snake"]},
        "tables": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "columns": {
                        "type": "object",
                        "additionalProperties": {
                            "type": "object",
                            "properties": {
                                "type": {"type": "string"},
                                "default": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                            },
                        },
                    },
                    "indexes": {
                        "type": "array",
                        "items": {"type": "object", "required": ["columns"]},
                    },
                },
            },
        },
    },
}


def problems(text: str) -> list[str]:
    return [str(p) for p in schema_problems(load_yaml(text, "spec.yaml"), SCHEMA)]


def test_unknown_key_points_at_the_key_with_did_you_mean() -> None:
    text = "source: a.db\ntables:\n  User:\n    colums: {}\n"
    assert problems(text) == ["spec.yaml:4:5: tables.User: unknown key 'colums' (did you mean 'columns'?)"]


def test_unknown_key_without_close_match_has_no_suggestion() -> None:
    text = "source: a.db\ntables: {}\nzzz: 1\n"
    assert problems(text) == ["spec.yaml:3:1: unknown key 'zzz'"]


def test_missing_required_keys_are_each_reported_once() -> None:
    text = "naming: keep\n"
    assert problems(text) == [
        "spec.yaml:1:1: missing required key 'source'",
        "spec.yaml:1:1: missing required key 'tables'",
    ]


def test_missing_required_key_in_a_list_item_points_at_the_item() -> None:
    text = "source: a.db\ntables:\n  User:\n    indexes:\n      - {name: x}\n"
    assert problems(text) == ["spec.yaml:5:9: tables.User.indexes[0]: missing required key 'columns'"]


def test_wrong_type_uses_human_type_names() -> None:
    text = "source: a.db\ntables:\n  User:\n    columns:\n      createdAt: {type: [a, b]}\n"
    assert problems(text) == [
        "spec.yaml:5:25: tables.User.columns.createdAt.type: expected a string, got a list"
    ]


def test_any_of_types_are_named_together() -> None:
    text = "source: a.db\ntables:\n  User:\n    columns:\n      n: {default: 1.5}\n"
    assert problems(text) == [
        "spec.yaml:5:20: tables.User.columns.n.default: expected a string or an integer, got a number"
    ]


def test_enum_lists_the_choices_and_suggests_one() -> None:
    text = "source: a.db\ntables: {}\nnaming: keeps\n"
    assert problems(text) == [
        "spec.yaml:3:9: naming: 'keeps' is not one of 'keep', 'lower', 'snake' (did you mean 'keep'?)"
    ]


def test_all_schema_problems_are_collected_in_file_order() -> None:
    text = "tables:\n  User:\n    colums: {}\n    indexes: [{}]\nnaming: 1\nsource: [x]\n"
    found = schema_problems(load_yaml(text, "spec.yaml"), SCHEMA)
    assert [p.location.line if p.location else 0 for p in found] == [3, 4, 5, 6]
    assert found[0] == SpecProblem(at(3, 5), "tables.User", "unknown key 'colums' (did you mean 'columns'?)")
    assert str(found[2]) == "spec.yaml:5:9: naming: 1 is not one of 'keep', 'lower', 'snake'"
