"""Load a YAML spec as plain Python data while remembering where every key and value was written.

PyYAML's own loaders cannot do this and have traps that bite spec files, so the text is only
*composed* (parsed into nodes that carry positions) and the nodes are turned into data here:

- Scalars follow the YAML 1.2 core schema: only true/True/TRUE/false/False/FALSE are booleans,
  so `yes`, `no`, `on`, `off` stay strings; `2024-01-01` stays a string (no timestamps);
  `010` is the integer 10; `0x1F` and `0o17` are integers; `.inf`, `.nan`, `1e3` are floats.
- Mapping keys are always the literal text of a scalar (`on:` is "on", `1:` is "1").
- Duplicate keys are errors (PyYAML silently keeps the last one).
- Only the core tags (!!str, !!int, !!float, !!bool, !!null, !!seq, !!map) are accepted, so
  nothing like `!!python/object` can ever be constructed.
- Anchors and aliases are resolved, but at most MAX_ALIAS_EXPANSIONS times ("billion laughs").
- Merge keys (`<<: *defaults` or `<<: [*a, *b]`) are supported: keys written in the mapping win,
  then earlier merged mappings win over later ones, as in the YAML 1.1 merge-key spec.

Every problem found is collected and raised together as one SpecError.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard

import jsonschema
import yaml
from jsonschema.exceptions import ValidationError, best_match
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from etl.errors import Location, SpecError, SpecProblem

MAX_ALIAS_EXPANSIONS = 10_000
RECURSIVE = "an alias refers to a node that contains it (recursive structures are not allowed)"

Path = tuple[str | int, ...]

_CORE = "tag:yaml.org,2002:"
# YAML 1.2 core schema, in the order a plain scalar is tried.
_IMPLICIT: list[tuple[str, re.Pattern[str]]] = [
    ("null", re.compile(r"~|null|Null|NULL|")),
    ("bool", re.compile(r"true|True|TRUE|false|False|FALSE")),
    ("int", re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")),
    ("float", re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")),
    ("float", re.compile(r"[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)")),
]
# What an explicitly tagged scalar (`!!int "12"`) must look like.
_PATTERNS: dict[str, list[re.Pattern[str]]] = {"str": [re.compile(r".*", re.DOTALL)]}
for _name, _pattern in _IMPLICIT:
    _PATTERNS.setdefault(_name, []).append(_pattern)


def _is_core_scalar(node: Node) -> TypeGuard[ScalarNode]:
    return isinstance(node, ScalarNode) and node.tag.startswith(_CORE) and node.tag[len(_CORE) :] in _PATTERNS


def _resolve(kind: type, value: Any, implicit: tuple[bool, bool]) -> str | None:
    if kind is ScalarNode and implicit[0]:  # plain (unquoted, untagged) scalar
        for name, pattern in _IMPLICIT:
            if pattern.fullmatch(value):
                return _CORE + name
    return None


class _Loader(yaml.BaseLoader):
    """Only ever used to compose nodes; BaseLoader's constructor is never called."""

    def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
        return _resolve(kind, value, implicit) or str(super().resolve(kind, value, implicit))


# libyaml composes the same nodes with the same marks many times faster (a spec of 1,000 tables
# is 20,000 lines); a document it refuses is parsed again by the Python loader, whose messages
# the syntax errors are worded from.
_FastLoader: type | None = None
if yaml.__with_libyaml__:

    class _CLoader(yaml.CBaseLoader):  # type: ignore[name-defined,misc]
        def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
            return _resolve(kind, value, implicit) or str(super().resolve(kind, value, implicit))

    _FastLoader = _CLoader


@dataclass(frozen=True)
class Document:
    data: Any
    file: str
    # path -> (where the value starts, where its key starts if it has one)
    positions: Mapping[Path, tuple[Location, Location | None]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def location(self, path: Iterable[str | int], key: bool = False) -> Location | None:
        """Where the value at `path` starts (or its key, with key=True). For a path that does not
        exist (e.g. a missing required property), the location of the nearest existing ancestor."""
        current = tuple(path)
        while True:
            if current in self.positions:
                value_at, key_at = self.positions[current]
                return key_at if key and key_at else value_at
            if not current:
                return None
            current = current[:-1]


class _TooManyAliases(Exception):
    pass


class _Builder:
    """Turns composed nodes into plain data, recording positions and collecting problems."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[SpecProblem] = []
        self.positions: dict[Path, tuple[Location, Location | None]] = {}
        self.built: set[int] = set()  # nodes seen before: seeing one again means an alias
        self.active: set[int] = set()  # nodes being built: seeing one again means a cycle
        self.expansions = 0

    def at(self, node: Node) -> Location:
        return Location(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def problem(self, node: Node, message: str) -> None:
        self.problems.append(SpecProblem(self.at(node), "", message))

    def visit(self, node: Node) -> None:
        if id(node) in self.built:
            self.expansions += 1
            if self.expansions > MAX_ALIAS_EXPANSIONS:
                raise _TooManyAliases(node)
        self.built.add(id(node))

    def build(self, node: Node, path: Path, key_at: Location | None = None) -> Any:
        self.positions[path] = (self.at(node), key_at)
        if id(node) in self.active:
            self.problem(node, RECURSIVE)
            return None
        self.visit(node)
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode) and node.tag == _CORE + "seq":
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            if isinstance(node, MappingNode) and node.tag == _CORE + "map":
                return {
                    name: self.build(value, (*path, name), self.at(key))
                    for name, (key, value) in self.pairs(node).items()
                }
            if _is_core_scalar(node):
                return self.scalar(node)
            tag = node.tag.replace(_CORE, "!!")
            self.problem(node, f"unsupported YAML tag '{tag}' (only plain YAML values are allowed)")
            return None
        finally:
            self.active.discard(id(node))

    def scalar(self, node: ScalarNode) -> Any:
        kind, text = node.tag[len(_CORE) :], node.value
        if not any(pattern.fullmatch(text) for pattern in _PATTERNS[kind]):
            self.problem(node, f"{text!r} is not a valid !!{kind} value")
            return None
        if kind == "null":
            return None
        if kind == "bool":
            return text.lower() == "true"
        if kind == "int":
            base = {"0x": 16, "0o": 8}.get(text[:2], 10)
            return int(text[2:] if base != 10 else text, base)
        if kind == "float":  # ".inf" -> "inf": the spelling Python's float() accepts
            return float(text.replace(".", "") if text.lower().endswith((".inf", ".nan")) else text)
        return text

    def pairs(self, node: MappingNode) -> dict[str, tuple[Node, Node]]:
        """The key and value nodes of a mapping by key text, with merge keys applied."""
        explicit: dict[str, tuple[Node, Node]] = {}
        merged: dict[str, tuple[Node, Node]] = {}
        for key, value in node.value:
            if not _is_core_scalar(key):
                self.problem(key, "a mapping key must be a plain string")
            # A plain scalar's style: None from PyYAML, "" from libyaml.
            elif key.value == "<<" and not key.style and key.tag == _CORE + "str":
                for name, pair in self.merged(value).items():
                    merged.setdefault(name, pair)  # earlier sources win
            elif key.value in explicit:
                first = explicit[key.value][0].start_mark.line + 1
                self.problem(key, f"duplicate key {key.value!r} (first at line {first})")
            else:
                explicit[key.value] = (key, value)
        # Explicit keys win over merged ones; merged keys not written explicitly come after them.
        return explicit | {name: pair for name, pair in merged.items() if name not in explicit}

    def merged(self, value: Node) -> dict[str, tuple[Node, Node]]:
        """The pairs a merge key `<<: *a` or `<<: [*a, *b]` brings in, earlier mappings first."""
        result: dict[str, tuple[Node, Node]] = {}
        for source in value.value if isinstance(value, SequenceNode) else [value]:
            if not isinstance(source, MappingNode) or source.tag != _CORE + "map":
                self.problem(source, "a merge key '<<' needs a mapping or a list of mappings")
            elif id(source) in self.active:
                self.problem(source, RECURSIVE)
            else:
                self.visit(source)
                self.active.add(id(source))
                for name, pair in self.pairs(source).items():
                    result.setdefault(name, pair)
                self.active.discard(id(source))
        return result


def _syntax_problem(error: yaml.YAMLError, text: str, file: str) -> SpecProblem:
    if isinstance(error, yaml.reader.ReaderError):  # a character YAML forbids; only an offset is known
        before = text[: error.position]
        line, column = before.count("\n") + 1, error.position - (before.rfind("\n") + 1) + 1
        char = error.character if isinstance(error.character, str) else chr(error.character)
        return SpecProblem(
            Location(file, line, column), "", f"YAML syntax error: character {char!r} is not allowed"
        )
    assert isinstance(error, yaml.MarkedYAMLError)
    mark = error.problem_mark or error.context_mark
    message = str(error.problem)
    if error.context == "expected a single document in the stream":
        message = "the spec must be a single YAML document, but another one starts here"
    elif error.problem == "second occurrence" and error.context and error.context_mark:
        anchor = error.context.split(";")[0]
        message = f"YAML syntax error: {anchor} (first at line {error.context_mark.line + 1})"
    else:
        message = f"YAML syntax error: {message}"
        if "'\\t'" in message:
            message += " (use spaces, not tabs, for indentation)"
    return SpecProblem(Location(file, mark.line + 1, mark.column + 1) if mark else None, "", message)


def _compose(text: str, fast: bool) -> Node | None:
    """The document's nodes (nothing is constructed), through libyaml where it accepts the text
    (and `fast` allows it)."""
    if fast and _FastLoader is not None:
        try:
            return yaml.compose(text, Loader=_FastLoader)  # type: ignore[no-any-return]
        except (yaml.YAMLError, RecursionError):
            pass  # parsed again below, for the Python loader's wording and positions
    return yaml.compose(text, Loader=_Loader)  # type: ignore[no-any-return]


def load_yaml(text: str, file: str, fast: bool = True) -> Document:
    """Parse a spec; raises SpecError listing every problem found. `fast=False`: through PyYAML's
    Python loader alone, which libyaml must agree with."""
    try:
        root = _compose(text, fast)
    except yaml.YAMLError as error:
        raise SpecError([_syntax_problem(error, text, file)]) from None
    except RecursionError:
        raise SpecError([SpecProblem(Location(file, 1, 1), "", "the spec is nested too deeply")]) from None
    if root is None or (isinstance(root, ScalarNode) and root.tag == _CORE + "null"):
        raise SpecError([SpecProblem(Location(file, 1, 1), "", "the spec is empty")])
    builder = _Builder(file)
    try:
        data = builder.build(root, ())
    except _TooManyAliases as stop:
        node = stop.args[0]
        builder.problem(node, f"aliases expand too much (more than {MAX_ALIAS_EXPANSIONS} expansions)")
    except RecursionError:
        builder.problems.append(SpecProblem(Location(file, 1, 1), "", "the spec is nested too deeply"))
    if builder.problems:
        raise SpecError(list(dict.fromkeys(builder.problems)))  # an aliased mistake is reported once
    return Document(data, file, builder.positions)


def load_yaml_file(path: str | os.PathLike[str]) -> Document:
    file = os.fspath(path)
    try:
        with open(file, "rb") as handle:
            raw = handle.read()
    except OSError as error:
        reason = error.strerror or str(error)
        raise SpecError([SpecProblem(None, "", f"cannot read spec file {file!r}: {reason}")]) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        before = raw[: error.start]
        line_start = before.rfind(b"\n") + 1  # count the column in characters, not bytes
        line, column = before.count(b"\n") + 1, len(raw[line_start : error.start].decode()) + 1
        message = f"the file is not valid UTF-8 (byte 0x{raw[error.start]:02x})"
        raise SpecError([SpecProblem(Location(file, line, column), "", message)]) from None
    return load_yaml(text, file)


# --- validation against a JSON schema -------------------------------------------------------------

_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}


# bool before int: True is an int to Python but not to the user.
_KINDS: list[tuple[type, str]] = [
    (bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"),
    (dict, "object"), (list, "array"), (type(None), "null"),
]  # fmt: skip


def _kind(value: Any) -> str:
    return next((_TYPE_NAMES[name] for kind, name in _KINDS if isinstance(value, kind)), type(value).__name__)


def _show(value: Any) -> str:
    """A value as the user would write it in YAML."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    return repr(value)


def dotted(path: Iterable[str | int]) -> str:
    """("tables", "User", "indexes", 0) -> "tables.User.indexes[0]"."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not part or any(c in part for c in ".[]"):  # would be ambiguous when dotted
            out += f"[{part!r}]"
        else:
            out += f".{part}" if out else part
    return out


def _did_you_mean(word: Any, choices: Iterable[Any]) -> str:
    strings = [c for c in choices if isinstance(c, str)]
    match = difflib.get_close_matches(word, strings, n=1) if isinstance(word, str) else []
    return f" (did you mean {match[0]!r}?)" if match else ""


def _problems(doc: Document, error: ValidationError) -> Iterator[SpecProblem]:
    if error.validator in ("anyOf", "oneOf") and error.context:
        if all(sub.validator == "type" and not sub.relative_path for sub in error.context):
            # Every alternative only disagreed about the type: name all accepted types at once.
            yield _type_problem(
                doc, error, [t for sub in error.context for t in _as_list(sub.validator_value)]
            )
            return
        # best_match descends into the alternative that fits the value best (e.g. the one whose
        # type matches); it returns the error itself when no alternative stands out.
        best = best_match([error])
        if best is not error:
            yield from _problems(doc, best)
            return
    path = tuple(error.absolute_path)
    schema, instance = error.schema if isinstance(error.schema, dict) else {}, error.instance
    expected: Any = error.validator_value
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        allowed = list(schema.get("properties", {}))
        patterns = list(schema.get("patternProperties", {}))
        for name in instance:
            if name not in allowed and not any(re.search(p, name) for p in patterns):
                message = f"unknown key {name!r}{_did_you_mean(name, allowed)}"
                yield SpecProblem(doc.location((*path, name), key=True), dotted(path), message)
    elif error.validator == "required" and isinstance(instance, dict):
        for name in expected:
            if name not in instance:  # point at the key of the mapping that lacks it, not its first child
                message = f"missing required key {name!r}"
                yield SpecProblem(doc.location(path, key=True), dotted(path), message)
    elif error.validator == "enum":
        options = ", ".join(_show(v) for v in expected)
        message = f"{_show(instance)} is not one of {options}{_did_you_mean(instance, expected)}"
        yield SpecProblem(doc.location(path), dotted(path), message)
    elif error.validator == "type":
        yield _type_problem(doc, error, _as_list(expected))
    else:
        yield SpecProblem(doc.location(path), dotted(path), error.message)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _type_problem(doc: Document, error: ValidationError, wanted: list[str]) -> SpecProblem:
    path = tuple(error.absolute_path)
    names = " or ".join(dict.fromkeys(_TYPE_NAMES.get(t, t) for t in wanted))
    return SpecProblem(doc.location(path), dotted(path), f"expected {names}, got {_kind(error.instance)}")


def schema_problems(doc: Document, schema: dict[str, Any]) -> list[SpecProblem]:
    """Every way `doc.data` breaks `schema` (JSON Schema draft 7), located in the YAML text."""
    validator = jsonschema.Draft7Validator(schema)
    problems = [p for error in validator.iter_errors(doc.data) for p in _problems(doc, error)]
    unique = dict.fromkeys(problems)  # e.g. one `required` error per missing key, each listing all
    return sorted(unique, key=lambda p: (p.location.line, p.location.column) if p.location else (0, 0))
