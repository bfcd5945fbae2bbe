"""A spec file: YAML with positions -> JSON Schema -> frozen Spec objects.

Every mistake found at any stage is collected with its file:line:col and raised once.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from .errors import Location, SpecError, SpecProblem
from .types import PgType, UnknownType, parse_pg_type
from .yamlpos import Document, dotted, load_yaml_file, schema_problems

SCHEMA_FILE = Path(__file__).resolve().parent / "schemas" / "etl-spec.schema.json"
SCHEMA_MODELINE = "# yaml-language-server: $schema="


@cache
def spec_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class SqlDefault:
    """A default given as a PostgreSQL expression (`default: {sql: now()}`)."""

    sql: str


# A spec default: a literal value, a SQL expression, or None for "no default".
DefaultValue = str | int | float | bool | SqlDefault | None


@dataclass(frozen=True)
class ColumnSpec:
    name: str | None = None
    type: PgType | None = None
    converter: str | None = None
    expression: str | None = None
    nullable: bool | None = None
    has_default: bool = False  # False: keep the source's default
    default: DefaultValue = None


@dataclass(frozen=True)
class IndexSpec:
    columns: tuple[str, ...]
    name: str | None = None
    unique: bool = False
    where: str | None = None


@dataclass(frozen=True)
class ForeignKeySpec:
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]
    on_delete: str = "NO ACTION"
    on_update: str = "NO ACTION"


@dataclass(frozen=True)
class TableSpec:
    name: str | None = None
    where: str | None = None
    exclude_columns: tuple[str, ...] = ()
    primary_key: tuple[str, ...] | None = None
    columns: Mapping[str, ColumnSpec] = field(default_factory=dict)
    unique: tuple[tuple[str, ...], ...] | None = None
    indexes: tuple[IndexSpec, ...] | None = None
    foreign_keys: tuple[ForeignKeySpec, ...] | None = None


@dataclass(frozen=True)
class TypeRule:
    declared: str
    type: PgType
    converter: str | None = None


@dataclass(frozen=True)
class Spec:
    file: Path
    source: Path  # resolved against the spec's folder
    target_url: str  # environment already interpolated
    target_schema: str = "public"
    naming: str = "keep"
    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()
    type_rules: tuple[TypeRule, ...] = ()
    load_order: tuple[str, ...] | None = None
    tables: Mapping[str, TableSpec] = field(default_factory=dict)
    document: Document | None = field(default=None, compare=False, repr=False)

    def locate(self, *path: str | int, key: bool = False) -> Location | None:
        return self.document.location(path, key=key) if self.document else None

    def problem(self, path: tuple[str | int, ...], message: str, key: bool = False) -> SpecProblem:
        return SpecProblem(self.locate(*path, key=key), dotted(path), message)


_ENV_RE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def interpolate_env(text: str, environ: Mapping[str, str]) -> tuple[str, list[str]]:
    """Replace ${VAR} and ${VAR:-default}; `$$` is a literal `$`. Returns the text and unset names."""
    missing: list[str] = []

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, fallback = match.group(1), match.group(2)
        value = environ.get(name)
        if value:
            return value
        if fallback is not None:
            return fallback
        missing.append(name)
        return ""

    return _ENV_RE.sub(substitute, text), missing


def load_spec(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Spec:
    """Read and check a spec file; raise SpecError listing every problem found."""
    doc = load_yaml_file(path)
    problems = schema_problems(doc, spec_schema())
    if problems:
        raise SpecError(problems)
    spec = _build(doc, Path(path), os.environ if environ is None else environ)
    return spec


def _build(doc: Document, file: Path, environ: Mapping[str, str]) -> Spec:
    data = doc.data
    problems: list[SpecProblem] = []

    def problem(path: tuple[str | int, ...], message: str, key: bool = False) -> None:
        problems.append(SpecProblem(doc.location(path, key=key), dotted(path), message))

    def pg_type(path: tuple[str | int, ...], text: str) -> PgType | None:
        try:
            return parse_pg_type(text)
        except UnknownType as exc:
            problem(path, str(exc))
            return None

    url, missing = interpolate_env(data["target"]["url"], environ)
    for name in missing:
        problem(
            ("target", "url"),
            f"environment variable '{name}' is not set (set it, or give a fallback: ${{{name}:-...}})",
        )
    rules = []
    for i, rule in enumerate(data.get("type_rules", [])):
        t = pg_type(("type_rules", i, "type"), rule["type"])
        if t is not None:
            rules.append(TypeRule(rule["declared"], t, rule.get("converter")))

    tables: dict[str, TableSpec] = {}
    for table_name, raw in (data.get("tables") or {}).items():
        base = ("tables", table_name)
        columns: dict[str, ColumnSpec] = {}
        for column_name, c in (raw.get("columns") or {}).items():
            at = (*base, "columns", column_name)
            default = c.get("default")
            if isinstance(default, dict):
                default = SqlDefault(default["sql"])
            columns[column_name] = ColumnSpec(
                name=c.get("name"),
                type=pg_type((*at, "type"), c["type"]) if "type" in c else None,
                converter=c.get("converter"),
                expression=c.get("expression"),
                nullable=c.get("nullable"),
                has_default="default" in c,
                default=default,
            )
        indexes = raw.get("indexes")
        fks = raw.get("foreign_keys")
        tables[table_name] = TableSpec(
            name=raw.get("name"),
            where=raw.get("where"),
            exclude_columns=tuple(raw.get("exclude_columns", ())),
            primary_key=tuple(raw["primary_key"]) if "primary_key" in raw else None,
            columns=columns,
            unique=tuple(tuple(u) for u in raw["unique"]) if "unique" in raw else None,
            indexes=None
            if indexes is None
            else tuple(
                IndexSpec(tuple(ix["columns"]), ix.get("name"), ix.get("unique", False), ix.get("where"))
                for ix in indexes
            ),
            foreign_keys=None
            if fks is None
            else tuple(
                ForeignKeySpec(
                    tuple(fk["columns"]),
                    fk["references"]["table"],
                    tuple(fk["references"]["columns"]),
                    fk.get("on_delete", "no action").upper(),
                    fk.get("on_update", "no action").upper(),
                )
                for fk in fks
            ),
        )
    if problems:
        raise SpecError(problems)
    load_order = data.get("load_order")
    return Spec(
        file=file,
        source=(file.parent / data["source"]["sqlite"]),
        target_url=url,
        target_schema=data["target"].get("schema", "public"),
        naming=data.get("naming", "keep"),
        include=tuple(data.get("include", ("*",))),
        exclude=tuple(data.get("exclude", ())),
        type_rules=tuple(rules),
        load_order=tuple(load_order) if load_order is not None else None,
        tables=tables,
        document=doc,
    )
