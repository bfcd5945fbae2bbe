"""The documentation says what the code does: the spec reference is written from the JSON Schema,
every key in it is described with an example, and README names every command and option."""

import re
import shlex
from pathlib import Path

import jsonschema
import typer.main

from etl.cli import app
from etl.specfile.document import spec_schema
from etl.specfile.reference import spec_keys, spec_reference

ROOT = Path(__file__).resolve().parent.parent


def test_the_spec_reference_is_what_the_schema_says():
    written = (ROOT / "docs" / "spec.md").read_text(encoding="utf-8")
    assert written == spec_reference(), "regenerate it: python -m etl.specfile.reference > docs/spec.md"


def test_every_spec_key_is_described_with_an_example():
    reference = spec_reference()
    sections = reference.split("\n## ")[1:]
    assert len(sections) >= 45  # every key of the schema, nested ones included
    undocumented = [s.splitlines()[0] for s in sections if s.split("\n")[2].strip() == ""]
    without_example = [s.splitlines()[0] for s in sections if "```yaml" not in s]
    assert undocumented == []
    assert without_example == []


def test_the_reference_covers_keys_a_user_writes_deep_in_a_spec():
    reference = spec_reference()
    for key in (
        "tables.<table>.columns.<column>.converter",
        "tables.<table>.foreign_keys[].on_delete",
        "tables.<table>.indexes[].where",
        "type_rules[].declared",
        "rollback.retention",
    ):
        assert f"## `{key}`" in reference, key


def test_every_command_and_option_is_named_in_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    command = typer.main.get_command(app)
    missing: list[str] = []
    for name, sub in command.commands.items():  # type: ignore[attr-defined]
        if f"etl {name}" not in readme:
            missing.append(f"etl {name}")
        for param in sub.params:
            missing += [f"etl {name} {o}" for o in param.opts if o.startswith("--") and o not in readme]
    missing += [o for p in command.params for o in p.opts if o.startswith("--") and o not in readme]
    assert missing == []


def test_every_example_is_valid_where_it_stands():
    definitions = spec_schema()["definitions"]
    invalid = []
    for path, node in spec_keys():
        for example in node.get("examples", []):
            errors = jsonschema.Draft7Validator({**node, "definitions": definitions}).iter_errors(example)
            invalid += [f"{path}: {e.message}" for e in errors]
    assert invalid == []


def test_every_example_in_help_is_a_valid_invocation():
    """Each command's --help ends with examples; each parses (command, options, arguments)."""
    command = typer.main.get_command(app)
    checked = 0
    for name, sub in command.commands.items():  # type: ignore[attr-defined]
        examples = [
            line.strip() for line in (sub.epilog or "").splitlines() if line.strip().startswith("etl ")
        ]
        assert examples, f"etl {name} --help shows no example"
        for example in examples:
            words = shlex.split(example.split(" > ")[0].split(" | ")[0])
            assert words[:2] == ["etl", name], example
            sub.make_context(name, words[2:])  # raises on an unknown option or a missing argument
            checked += 1
    assert checked >= 14


# README writes placeholders in capitals and optional parts in brackets, alternatives with |.
_PLACEHOLDERS = {"N": "1", "URL": "postgresql://localhost/app", "DIR": "."}


def _readme_invocations() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("etl "):
                lines.append(line)
    return lines


def _one_form(line: str) -> list[str]:
    """A README line with every optional part given, the first of each set of alternatives."""
    line = re.sub(r"\[([^\]]*)\]", lambda m: m.group(1).split(" | ")[0], line)
    return [_PLACEHOLDERS.get(w, w.split("|")[0]) for w in shlex.split(line)]


def test_every_etl_command_readme_shows_is_a_valid_invocation():
    command = typer.main.get_command(app)
    invocations = _readme_invocations()
    assert len(invocations) >= 20
    top_level = {o for p in command.params for o in p.opts}
    for line in invocations:
        words = _one_form(line)[1:]
        if words[0].startswith("-"):
            assert set(words) <= top_level, line
            continue
        assert words[0] in command.commands, line  # type: ignore[attr-defined]
        command.commands[words[0]].make_context(words[0], words[1:])  # type: ignore[attr-defined]


def test_a_newcomer_finds_how_to_migrate_their_own_app_on_the_first_screen():
    """README is a guide: within its first screen (40 lines), what etl is and the commands that
    migrate one's own app, from `etl init` to `etl apply`."""
    first_screen = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()[:40]
    text = "\n".join(first_screen)
    assert "## Migrate your own app" in text
    commands = [line.split("#")[0].strip() for line in first_screen if line.startswith("etl ")]
    assert [c.split()[1] for c in commands][:4] == ["init", "validate", "plan", "apply"], commands
