"""A spec file: YAML with positions -> JSON Schema -> frozen Spec objects.

Every mistake found at any stage is collected with its file:line:col and raised once.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from etl.errors import Location, SpecProblem
from etl.pgtypes import PgType, UnknownType, parse_pg_type
from etl.settings import Converter, Deferral, ForeignKeyAction, Mode, Naming, OnError, converter_applies
from etl.specfile.yamlpos import Document, dotted, load_yaml_file, schema_problems

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schemas" / "etl-spec.schema.json"


@cache
def spec_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class SqlDefault:
    """A default given as a PostgreSQL expression (`default: {sql: now()}`)."""

    sql: str


# A spec default: a literal value, a SQL expression, or None for "no default".
DefaultValue = str | int | float | bool | SqlDefault | None


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    name: str | None = None
    type: PgType | None = None
    converter: Converter | None = None
    expression: str | None = None
    nullable: bool | None = None
    serial: bool = False  # numbered by a sequence of its own (serial), not an identity
    has_default: bool = False  # False: keep the source's default
    default: DefaultValue = None


@dataclass(frozen=True, slots=True)
class IndexKeySpec:
    """One key of a spec's index: a source column (in an order, under a SQLite collation) or a
    SQLite expression over source columns."""

    column: str | None = None
    expression: str | None = None  # SQLite, translated to PostgreSQL by the mapping
    descending: bool = False
    nulls: str | None = None  # "first" | "last" | None: PostgreSQL's default for the order
    collate: str | None = None  # "binary" | "nocase" | "rtrim", with a column only


@dataclass(frozen=True, slots=True)
class IndexSpec:
    keys: tuple[IndexKeySpec, ...]
    name: str | None = None
    unique: bool = False
    where: str | None = None  # PostgreSQL, over target column names

    @property
    def columns(self) -> tuple[str, ...]:
        """The source columns the index names as columns (not those inside expressions)."""
        return tuple(k.column for k in self.keys if k.column is not None)


def _index_key(raw: str | dict) -> IndexKeySpec:
    if isinstance(raw, str):
        return IndexKeySpec(column=raw)
    return IndexKeySpec(
        column=raw.get("column"),
        expression=raw.get("expression"),
        descending=raw.get("order") == "desc",
        nulls=raw.get("nulls"),
        collate=raw.get("collate"),
    )


@dataclass(frozen=True, slots=True)
class ForeignKeySpec:
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]
    on_delete: ForeignKeyAction = ForeignKeyAction.NO_ACTION
    on_update: ForeignKeyAction = ForeignKeyAction.NO_ACTION
    deferrable: Deferral = Deferral.NOT_DEFERRABLE


@dataclass(frozen=True)
class CheckSpec:
    sql: str  # PostgreSQL, over target column names
    name: str | None = None


# The spec's words for how a foreign key defers, as PostgreSQL's DDL says it.
DEFERRABLE = {
    "not deferrable": Deferral.NOT_DEFERRABLE,
    "deferrable": Deferral.DEFERRABLE,
    "initially deferred": Deferral.INITIALLY_DEFERRED,
}


@dataclass(frozen=True)
class SearchSpec:
    """PostgreSQL full-text search on a table: a generated tsvector column over source columns,
    with a GIN index."""

    columns: tuple[str, ...]  # source column names
    name: str = "search"  # the tsvector column's target name
    config: str = "simple"  # PostgreSQL text search configuration


@dataclass(frozen=True, slots=True)
class TableSpec:
    name: str | None = None
    where: str | None = None
    mode: Mode | None = None  # None: the spec's default
    watermark: str | None = None  # source column, for mode: append
    on_error: OnError | None = None  # None: the spec's default
    max_rejects: int | str | None = None
    exclude_columns: tuple[str, ...] = ()
    primary_key: tuple[str, ...] | None = None
    primary_key_name: str | None = None
    columns: Mapping[str, ColumnSpec] = field(default_factory=dict)
    unique: tuple[tuple[str, ...], ...] | None = None
    indexes: tuple[IndexSpec, ...] | None = None
    foreign_keys: tuple[ForeignKeySpec, ...] | None = None
    checks: tuple[CheckSpec, ...] | None = None
    query: str | None = None  # SQLite: the table's rows are this query's, not a source table's
    search: SearchSpec | None = None


@dataclass(frozen=True)
class TriggerSpec:
    """A PostgreSQL trigger: AFTER `event` ON `table` FOR EACH ROW [WHEN ...], running `body`."""

    table: str  # source table name
    event: str  # insert | update | delete
    body: str  # PL/pgSQL statements over the target's names, NEW and OLD
    columns: tuple[str, ...] = ()  # UPDATE OF these source columns
    when: str | None = None  # PostgreSQL boolean expression over NEW and OLD


@dataclass(frozen=True)
class ViewSpec:
    sql: str  # one PostgreSQL SELECT over the target's tables and views


@dataclass(frozen=True)
class TypeRule:
    declared: str
    type: PgType
    converter: Converter | None = None
    # `type: varchar(n)`: each column keeps the length its declared type gives (VARCHAR(255)).
    keeps_length: bool = False


# A type rule's `varchar(n)`, with the letter n: the length comes from each column's declared type.
_DECLARED_LENGTH = re.compile(r"\s*(varchar|character varying)\s*\(\s*n\s*\)\s*", re.IGNORECASE)


@dataclass(frozen=True)
class PrismaProject:
    """The app's Prisma project (`prisma:`): apply writes its baseline for the postgresql provider."""

    schema: Path  # schema.prisma, resolved against the spec's folder
    migrations: Path  # the migrations folder, resolved likewise


@dataclass(frozen=True)
class Spec:
    file: Path
    source: Path  # resolved against the spec's folder
    target_url: str  # environment already interpolated
    target_schema: str = "public"
    naming: Naming = Naming.KEEP
    mode: Mode = Mode.SYNC
    retention: int = 1  # applies whose replaced tables are kept for etl rollback
    on_error: OnError = OnError.FAIL
    max_rejects: int | str | None = None
    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()
    type_rules: tuple[TypeRule, ...] = ()
    enums: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    load_order: tuple[str, ...] | None = None
    tables: Mapping[str, TableSpec] = field(default_factory=dict)
    views: Mapping[str, ViewSpec] = field(default_factory=dict)  # source view -> its PostgreSQL
    triggers: Mapping[str, TriggerSpec] = field(default_factory=dict)  # trigger name -> its PostgreSQL
    prisma: PrismaProject | None = None
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


def read_spec(
    path: str | os.PathLike[str], environ: Mapping[str, str] | None = None, target_url: str | None = None
) -> tuple[Spec | None, list[SpecProblem]]:
    """The spec and its problems. Parts that break the schema are left out of the Spec (so the
    rest can still be checked against the source and every mistake is reported in one run);
    the Spec is None only when too little is left to build one. `target_url` (from --target)
    replaces target.url, whose variables are then not needed."""
    doc = load_yaml_file(path)
    problems = schema_problems(doc, spec_schema())
    data = _without_invalid_parts(doc.data, spec_schema()) if problems else doc.data
    if data is None:
        return None, problems
    spec, build_problems = _build(
        doc, data, Path(path), os.environ if environ is None else environ, target_url
    )
    return spec, problems + build_problems


def _without_invalid_parts(data: Any, schema: dict[str, Any]) -> Any:
    import copy

    import jsonschema

    data = copy.deepcopy(data)
    validator = jsonschema.Draft7Validator(schema)
    for _ in range(10):
        errors = list(validator.iter_errors(data))
        if not errors:
            return data
        for error in errors:
            path = list(error.absolute_path)
            if error.validator == "additionalProperties" and isinstance(error.instance, dict):
                allowed = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
                for name in [k for k in error.instance if k not in allowed]:
                    error.instance.pop(name, None)
                continue
            # Drop the nearest enclosing mapping entry (list positions must stay as written,
            # because later problems are located by their path in the document).
            while path and not isinstance(_get(data, path[:-1]), dict):
                path = path[:-1]
            if not path or len(path) == 1 and path[0] in ("version", "source", "target"):
                return None
            parent = _get(data, path[:-1])
            if isinstance(parent, dict):
                parent.pop(path[-1], None)
    return None


def _get(data: Any, path: list[Any]) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


S = TypeVar("S", bound=StrEnum)


def _optional(setting: type[S], value: str | None) -> S | None:
    """The setting's member for a value the JSON Schema has already checked; None when unset."""
    return None if value is None else setting(value)


# Reads a type name from the spec (an enum of the spec or a PostgreSQL type); None, with a
# problem at the path, when it is neither.
_TypeReader = Callable[[tuple[str | int, ...], str], PgType | None]


def _build(
    doc: Document, data: Any, file: Path, environ: Mapping[str, str], target_url: str | None = None
) -> tuple[Spec, list[SpecProblem]]:
    """The Spec and the problems found building it. A setting with a problem (an unknown type, say)
    is left unset, so the rest of the spec can still be checked against the source."""
    problems: list[SpecProblem] = []

    def problem(path: tuple[str | int, ...], message: str, key: bool = False) -> None:
        problems.append(SpecProblem(doc.location(path, key=key), dotted(path), message))

    enums = {name: tuple(labels) for name, labels in (data.get("enums") or {}).items()}

    def pg_type(path: tuple[str | int, ...], text: str) -> PgType | None:
        if text in enums:
            return PgType(text, labels=enums[text])
        try:
            return parse_pg_type(text)
        except UnknownType as exc:
            problem(path, str(exc))
            return None

    url, missing = (target_url, []) if target_url else interpolate_env(data["target"]["url"], environ)
    for name in missing:
        problem(
            ("target", "url"),
            f"environment variable '{name}' is not set (set it, e.g. export {name}=..., "
            f"or give the whole URL with --target URL, or a fallback: ${{{name}:-...}})",
        )
    rules = _type_rules(data, pg_type, problem)
    tables = {
        table_name: _table_spec(raw, ("tables", table_name), pg_type)
        for table_name, raw in (data.get("tables") or {}).items()
    }
    load_order = data.get("load_order")
    spec = Spec(
        file=file,
        source=(file.parent / data["source"]["sqlite"]),
        target_url=url,
        target_schema=data["target"].get("schema", "public"),
        naming=Naming(data.get("naming", Naming.KEEP)),
        mode=Mode(data.get("mode", Mode.SYNC)),
        retention=(data.get("rollback") or {}).get("retention", 1),
        on_error=OnError(data.get("on_error", OnError.FAIL)),
        max_rejects=data.get("max_rejects"),
        include=tuple(data.get("include", ("*",))),
        exclude=tuple(data.get("exclude", ())),
        type_rules=tuple(rules),
        enums=enums,
        load_order=tuple(load_order) if load_order is not None else None,
        tables=tables,
        views={name: ViewSpec(raw["sql"]) for name, raw in (data.get("views") or {}).items()},
        triggers={
            name: TriggerSpec(
                raw["table"], raw["event"], raw["body"], tuple(raw.get("columns", ())), raw.get("when")
            )
            for name, raw in (data.get("triggers") or {}).items()
        },
        prisma=_prisma_project(data.get("prisma"), file.parent),
        document=doc,
    )
    return spec, problems


def _prisma_project(raw: Any, folder: Path) -> PrismaProject | None:
    if raw is None:
        return None
    schema = folder / raw["schema"]
    migrations = folder / raw["migrations"] if "migrations" in raw else schema.parent / "migrations"
    return PrismaProject(schema, migrations)


def _type_rules(
    data: Any, pg_type: _TypeReader, problem: Callable[[tuple[str | int, ...], str], None]
) -> list[TypeRule]:
    """The spec's type rules whose type is known; a converter only for the types it reads."""
    rules = []
    for i, rule in enumerate(data.get("type_rules", [])):
        keeps_length = _DECLARED_LENGTH.fullmatch(rule["type"]) is not None
        t = pg_type(("type_rules", i, "type"), "varchar" if keeps_length else rule["type"])
        converter = _optional(Converter, rule.get("converter"))
        if t is not None and converter and (applies := converter_applies(converter, t.kind)):
            problem(
                ("type_rules", i, "converter"),
                f"converter '{converter}' applies to {applies} types, not {t.sql()}",
            )
        if t is not None:
            rules.append(TypeRule(rule["declared"], t, converter, keeps_length))
    return rules


def _table_spec(raw: Any, base: tuple[str, ...], pg_type: _TypeReader) -> TableSpec:
    """One table's settings, its columns' types read by `pg_type`."""
    columns: dict[str, ColumnSpec] = {}
    for column_name, c in (raw.get("columns") or {}).items():
        at = (*base, "columns", column_name)
        default = c.get("default")
        if isinstance(default, dict):
            default = SqlDefault(default["sql"])
        columns[column_name] = ColumnSpec(
            name=c.get("name"),
            type=pg_type((*at, "type"), c["type"]) if "type" in c else None,
            converter=_optional(Converter, c.get("converter")),
            expression=c.get("expression"),
            nullable=c.get("nullable"),
            serial=c.get("serial", False),
            has_default="default" in c,
            default=default,
        )
    indexes = raw.get("indexes")
    fks = raw.get("foreign_keys")
    checks = raw.get("checks")
    return TableSpec(
        name=raw.get("name"),
        where=raw.get("where"),
        mode=_optional(Mode, raw.get("mode")),
        watermark=raw.get("watermark"),
        on_error=_optional(OnError, raw.get("on_error")),
        max_rejects=raw.get("max_rejects"),
        exclude_columns=tuple(raw.get("exclude_columns", ())),
        primary_key=tuple(raw["primary_key"]) if "primary_key" in raw else None,
        primary_key_name=raw.get("primary_key_name"),
        columns=columns,
        unique=tuple(tuple(u) for u in raw["unique"]) if "unique" in raw else None,
        indexes=None
        if indexes is None
        else tuple(
            IndexSpec(
                tuple(_index_key(k) for k in ix["columns"]),
                ix.get("name"),
                ix.get("unique", False),
                ix.get("where"),
            )
            for ix in indexes
        ),
        foreign_keys=None
        if fks is None
        else tuple(
            ForeignKeySpec(
                tuple(fk["columns"]),
                fk["references"]["table"],
                tuple(fk["references"]["columns"]),
                ForeignKeyAction(fk.get("on_delete", "no action").upper()),
                ForeignKeyAction(fk.get("on_update", "no action").upper()),
                DEFERRABLE[fk.get("deferrable", "not deferrable")],
            )
            for fk in fks
        ),
        checks=None if checks is None else tuple(CheckSpec(c["sql"], c.get("name")) for c in checks),
        query=raw.get("query"),
        search=_search(raw.get("search")),
    )


def _search(raw: dict[str, Any] | None) -> SearchSpec | None:
    if raw is None:
        return None
    return SearchSpec(tuple(raw["columns"]), raw.get("name", "search"), raw.get("config", "simple"))
