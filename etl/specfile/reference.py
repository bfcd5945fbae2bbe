"""The spec reference (docs/spec.md), written from the JSON Schema itself so the two cannot drift:
every key with where it goes, what it accepts, its default, its description and an example.

Regenerate with `python -m etl.specfile.reference > docs/spec.md`; tests/test_docs.py fails when
the file and the schema disagree."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from etl.specfile.document import spec_schema

_INTRO = """\
# The spec reference

A spec is a YAML file that says how one SQLite database becomes a PostgreSQL schema. `etl init`
writes one from the database; `etl validate` checks one and points at `file:line:col` for every
mistake. This page is generated from the spec's JSON Schema (`schemas/etl-spec.schema.json`),
which editors with a YAML language server also read.

A small spec:

```yaml
version: 1
source: {sqlite: app.db}
target: {url: "${DATABASE_URL}", schema: public}
tables:
  User:
    columns:
      createdAt: {type: timestamp(3), converter: epoch_milliseconds}
  Session: {where: "expires_at > strftime('%s','now')"}
exclude: [_prisma_migrations]
```
"""


def spec_reference(schema: dict[str, Any] | None = None) -> str:
    """The reference as Markdown: one section per key, in the order the schema lists them."""
    lines = [_INTRO]
    for path, node in spec_keys(schema):
        lines += _section(path, node)
    return "\n".join(lines).rstrip("\n") + "\n"


def spec_keys(schema: dict[str, Any] | None = None) -> list[tuple[str, dict]]:
    """(dotted path, schema with references followed) of every key a spec can hold."""
    schema = schema or spec_schema()
    return list(_keys(schema, schema, ""))


def _resolve(root: dict, node: dict) -> dict:
    """`node` with its $ref followed; its own description and examples win over the target's."""
    ref = node.get("$ref")
    if not ref:
        return node
    target = root["definitions"][ref.rsplit("/", 1)[-1]]
    return {**_resolve(root, target), **{k: v for k, v in node.items() if k != "$ref"}}


def _keys(root: dict, node: dict, prefix: str) -> Iterator[tuple[str, dict]]:
    """(dotted path, schema) of every key under `node`, parents before children; `<name>` stands
    for a key the user chooses (a table or a column) and `[]` for an item of a list."""
    node = _resolve(root, node)
    for name, child in node.get("properties", {}).items():
        path = f"{prefix}.{name}" if prefix else name
        child = _resolve(root, child)
        yield path, child
        yield from _children(root, child, path)


def _children(root: dict, node: dict, path: str) -> Iterator[tuple[str, dict]]:
    if "properties" in node:
        yield from _keys(root, node, path)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        extra = _resolve(root, extra)
        placeholder = (
            "<column>" if path.endswith("columns") else "<table>" if path.endswith("tables") else "<name>"
        )
        if "properties" in extra:
            yield from _keys(root, extra, f"{path}.{placeholder}")
    items = node.get("items")
    if isinstance(items, dict):
        items = _resolve(root, items)
        # A list whose items are a name or a mapping (an index's columns): the mapping's keys.
        for option in [items, *(_resolve(root, o) for o in items.get("oneOf", ()))]:
            if "properties" in option:
                yield from _keys(root, option, f"{path}[]")


def _accepts(node: dict) -> str:
    if "const" in node:
        return f"`{json.dumps(node['const'])}`"
    if "enum" in node:
        return "one of " + ", ".join(f"`{v}`" for v in node["enum"])
    if "oneOf" in node:
        return " or ".join(_accepts(option) for option in node["oneOf"])
    kind = node.get("type", "object")
    if isinstance(kind, list):
        return " or ".join(kind)
    if kind == "array":
        items = node.get("items", {})
        inner = items.get("type", "object") if isinstance(items, dict) else "value"
        if isinstance(items, dict) and "oneOf" in items:
            return "list of " + " or ".join(f"{o.get('type', 'object')}s" for o in items["oneOf"])
        return f"list of {inner}s" if inner != "array" else "list of lists"
    if kind == "string" and "pattern" in node:
        return f"string matching `{node['pattern']}`"
    if kind == "object" and isinstance(node.get("additionalProperties"), dict) and "properties" not in node:
        return "mapping of names to settings"
    return kind


def _section(path: str, node: dict) -> list[str]:
    lines = [f"## `{path}`", "", node.get("description", ""), ""]
    facts = [f"Accepts: {_accepts(node)}."]
    if "default" in node:
        facts.append(f"Default: `{json.dumps(node['default'])}`.")
    lines += [" ".join(facts), ""]
    for example in node.get("examples", []):
        lines += ["```yaml", _yaml_example(path, example), "```", ""]
    return lines


def _yaml_example(path: str, value: Any) -> str:
    """`value` under its key path, in YAML flow style, e.g. `tables: {User: {where: ...}}`."""
    text = json.dumps(value, ensure_ascii=False)
    parts = [p for p in path.replace("[]", "").split(".")]
    names = {"<table>": "User", "<column>": "email", "<name>": "name"}
    for part in reversed(parts[1:]):
        key = names.get(part, part)
        text = f"{{{key}: {text}}}"
    return f"{names.get(parts[0], parts[0])}: {text}"


if __name__ == "__main__":
    print(spec_reference(), end="")
