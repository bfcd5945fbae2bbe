"""`etl init`: write a spec from the database itself, its schema and its data.

`choose_column` decides each column's target type and converter from the declared type, what the
profile found in the data, and (optionally) the Prisma schema; `render_spec` writes the YAML with
a comment wherever the data surprised it. Both are pure; `init_spec` does the I/O.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import EtlError
from .mapping import _topological, target_name
from .model import Catalog, Column, ForeignKey, Table
from .profile import ColumnProfile, TableProfile, profile_sqlite
from .source import introspect_sqlite
from .spec import SCHEMA_FILE
from .types import PgType, default_pg_type, parse_pg_type

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Plain words a YAML 1.1 reader (many editors) would not read as a string.
_YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}
_MAX_EXACT_DOUBLE_INT = 2**53


_PLAIN_VALUE = re.compile(r"^[A-Za-z_][A-Za-z0-9_ ()]*[A-Za-z0-9_)]$")


def yaml_value(text: str) -> str:
    """A scalar for a flow mapping ({type: ...}): plain when nothing in it has a YAML meaning."""
    if _PLAIN_VALUE.match(text) and text.lower() not in _YAML_WORDS:
        return text
    return json.dumps(text, ensure_ascii=False)


def yaml_str(text: str) -> str:
    """A YAML scalar that every YAML reader takes as exactly this string."""
    if _PLAIN_KEY.match(text) and text.lower() not in _YAML_WORDS:
        return text
    return json.dumps(text, ensure_ascii=False)


@dataclass(frozen=True)
class ColumnChoice:
    type: PgType
    converter: str | None = None
    note: str | None = None  # why, when the data surprised us
    surprise: bool = False


@dataclass(frozen=True)
class Finding:
    table: str
    column: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        return f"{where}: {self.message}"


def _n(count: int) -> str:
    return f"{count:,}"


def _datetime_converter(p: ColumnProfile) -> tuple[str, str | None, bool]:
    """The converter for a datetime column, a note on what was found, and whether it surprised."""
    kinds = {
        "epoch_seconds": p.epoch_seconds,
        "epoch_milliseconds": p.epoch_milliseconds,
        "epoch_microseconds": p.epoch_microseconds,
    }
    present = {k: v for k, v in kinds.items() if v}
    parts = [f"{_n(v)} {k.replace('_', ' ')}" for k, v in present.items()]
    if p.julian_reals:
        parts.append(f"{_n(p.julian_reals)} julian days")
    if p.iso_texts:
        parts.append(
            f"{_n(p.iso_texts)} ISO text" + (f" ({_n(p.iso_offsets)} with offsets)" if p.iso_offsets else "")
        )
    note = ", ".join(parts) if len(parts) > 1 else None
    if not present and p.julian_reals and p.reals == p.julian_reals:
        return "julian_day", note, False
    if not present:
        return "auto", note, False
    # One unit for the column, the largest present: integers of millisecond magnitude would be
    # the year 5138 or later as seconds, so smaller integers beside them are milliseconds near 1970.
    largest = list(present)[-1]
    if len(present) > 1:
        smaller = sum(v for k, v in present.items() if k != largest)
        return (
            largest,
            (
                f"{note}: read all as {largest.split('_')[1]}; the {smaller:,} smaller integers "
                f"are then within 3 years of 1970 (set another converter if they are not)"
            ),
            True,
        )
    return largest, note, False


def choose_column(
    column: Column, profile: ColumnProfile | None, prisma_type: str | None = None
) -> ColumnChoice:
    base = parse_pg_type(prisma_type) if prisma_type else default_pg_type(column.declared_type)
    if profile is None or profile.non_null == 0:
        converter = None
        return ColumnChoice(
            base, converter, "no values to profile" if profile is not None and profile.nulls else None
        )
    p = profile
    kind = base.kind
    text = parse_pg_type("text")

    if not column.declared_type.strip() and not prisma_type:
        return _untyped(p)

    if kind in ("timestamp", "timestamptz", "date"):
        other = p.texts - p.iso_texts
        if other or p.blobs:
            what = f"{_n(other)} text values that are not datetimes" if other else f"{_n(p.blobs)} blobs"
            return ColumnChoice(
                text,
                None,
                f"holds {what}; kept as text so nothing is lost (fix them, then set type: {base.sql()})",
                True,
            )
        converter, note, surprise = _datetime_converter(p)
        if prisma_type and p.integers:
            # Prisma's SQLite connector writes every DateTime as epoch milliseconds.
            converter, note, surprise = "epoch_milliseconds", note, False
        if p.reals and not p.julian_reals:
            converter, note, surprise = "auto", f"{_n(p.reals)} reals read as epoch seconds", True
        return ColumnChoice(base, converter if converter != "auto" or surprise else None, note, surprise)

    if kind == "integer":
        stray_texts = p.texts - p.integer_texts
        if stray_texts or p.blobs:
            what = (
                f"{_n(stray_texts)} text values that are not integers"
                if stray_texts
                else f"{_n(p.blobs)} blobs"
            )
            return ColumnChoice(text, None, f"holds {what}; chose text so nothing is lost", True)
        if p.reals:
            exact = max(abs(p.int_min or 0), abs(p.int_max or 0)) <= _MAX_EXACT_DOUBLE_INT
            chosen = parse_pg_type("double precision" if exact else "numeric")
            return ColumnChoice(
                chosen, None, f"holds {_n(p.reals)} non-integral reals; chose {chosen.sql()}", True
            )
        low, high = base.integer_range or (-(2**63), 2**63 - 1)
        if (p.int_min is not None and p.int_min < low) or (p.int_max is not None and p.int_max > high):
            return ColumnChoice(
                parse_pg_type("bigint"),
                None,
                f"values up to {p.int_max} do not fit {base.sql()}; chose bigint",
                True,
            )
        return ColumnChoice(base)

    if kind == "boolean":
        stray_texts = p.texts - p.boolean_texts
        out_of_range = (p.int_min is not None and p.int_min < 0) or (p.int_max is not None and p.int_max > 1)
        if stray_texts or p.blobs or p.reals:
            return ColumnChoice(text, None, "holds values other than 0/1/true/false; chose text", True)
        if out_of_range:
            return ColumnChoice(
                parse_pg_type("bigint"),
                None,
                f"holds integers from {p.int_min} to {p.int_max}, not just 0/1; chose bigint",
                True,
            )
        return ColumnChoice(base)

    if kind in ("float", "numeric"):
        stray_texts = p.texts - p.number_texts
        if stray_texts or p.blobs:
            return ColumnChoice(
                text,
                None,
                f"holds {_n(stray_texts or p.blobs)} values that are not numbers; chose text",
                True,
            )
        if kind == "float" and max(abs(p.int_min or 0), abs(p.int_max or 0)) > _MAX_EXACT_DOUBLE_INT:
            return ColumnChoice(
                parse_pg_type("numeric"),
                None,
                "holds integers beyond 2^53; chose numeric to keep them exact",
                True,
            )
        return ColumnChoice(base)

    if kind == "text" and p.blobs:
        return ColumnChoice(
            parse_pg_type("bytea"),
            None,
            f"holds {_n(p.blobs)} blobs beside text; chose bytea (text arrives as its UTF-8 bytes)",
            True,
        )
    if kind == "bytea" and (p.integers or p.reals):
        return ColumnChoice(
            text, None, "holds numbers beside blobs; chose text (blobs will be reported)", True
        )
    if kind == "json" and p.json_texts < p.texts:
        return ColumnChoice(
            text,
            None,
            f"{_n(p.texts - p.json_texts)} values are not JSON objects or arrays; chose text",
            True,
        )
    return ColumnChoice(base)


def _untyped(p: ColumnProfile) -> ColumnChoice:
    classes = [
        name
        for name, n in (("integers", p.integers), ("reals", p.reals), ("texts", p.texts), ("blobs", p.blobs))
        if n
    ]
    found = ", ".join(f"{getattr(p, c):,} {c}" for c in classes)
    if classes == ["integers"]:
        return ColumnChoice(parse_pg_type("bigint"), None, f"no declared type; holds {found}")
    if set(classes) <= {"integers", "reals"}:
        exact = max(abs(p.int_min or 0), abs(p.int_max or 0)) <= _MAX_EXACT_DOUBLE_INT
        return ColumnChoice(
            parse_pg_type("double precision" if exact else "numeric"),
            None,
            f"no declared type; holds {found}",
        )
    if classes == ["blobs"] or (set(classes) == {"texts", "blobs"}):
        return ColumnChoice(parse_pg_type("bytea"), None, f"no declared type; holds {found}")
    if "blobs" in classes:
        return ColumnChoice(
            parse_pg_type("text"), None, f"no declared type; holds {found}: blobs will be reported", True
        )
    return ColumnChoice(parse_pg_type("text"), None, f"no declared type; holds {found}")


@dataclass
class InitResult:
    text: str
    findings: list[Finding] = field(default_factory=list)
    tables: int = 0
    rows: int = 0


def render_spec(
    catalog: Catalog,
    profiles: dict[str, TableProfile],
    source_ref: str,
    schema_ref: str,
    target_url: str = "${DATABASE_URL}",
    naming: str = "keep",
    prisma_types: dict[tuple[str, str], str] | None = None,
    header: str = "",
) -> InitResult:
    prisma_types = prisma_types or {}
    result = InitResult(text="")
    names = [t.name for t in catalog.tables]
    parents = {
        t.name: {fk.ref_table for fk in t.foreign_keys if fk.ref_table in names and fk.ref_table != t.name}
        for t in catalog.tables
    }
    order = _topological(names, parents)
    lines = [f"# yaml-language-server: $schema={schema_ref}"]
    lines += [f"# {line}" if line else "#" for line in header.splitlines()]
    lines += [
        "version: 1",
        "",
        "source:",
        f"  sqlite: {yaml_str(source_ref)}",
        "",
        "target:",
        f"  url: {yaml_str(target_url) if not target_url.startswith('${') else target_url}",
        "  schema: public",
        "",
        f"naming: {naming}",
    ]
    if catalog.views:
        lines += [
            "",
            "# Views are not migrated (define them again in PostgreSQL): " + ", ".join(catalog.views),
        ]
    if not order:
        lines += ["", "# The database has no tables.", "load_order: []", "tables: {}"]
    else:
        lines += ["", "# Parents before children, from the foreign keys.", "load_order:"]
        lines += [f"  - {yaml_str(n)}" for n in order]
        lines += ["", "tables:"]
    for name in order:
        table = catalog.table(name)
        assert table is not None
        profile = profiles.get(name)
        lines += [""] + _render_table(table, profile, naming, prisma_types, result)
        result.tables += 1
        result.rows += profile.rows if profile else 0
    result.text = "\n".join(lines) + "\n"
    return result


def _describe_table(table: Table, profile: TableProfile | None) -> str:
    rows = f"{profile.rows:,} rows" if profile else "rows not profiled"
    key = f"primary key ({', '.join(table.primary_key)})" if table.primary_key else "no primary key"
    extra = []
    if table.without_rowid:
        extra.append("WITHOUT ROWID")
    if table.indexes:
        extra.append(f"{len(table.indexes)} indexes")
    if table.foreign_keys:
        extra.append("references " + ", ".join(sorted({fk.ref_table for fk in table.foreign_keys})))
    return "; ".join([rows, key, *extra])


def _fk_yaml(fk: ForeignKey) -> str:
    cols = ", ".join(yaml_str(c) for c in fk.columns)
    refs = ", ".join(yaml_str(c) for c in fk.ref_columns)
    return (
        f"      - {{columns: [{cols}], references: {{table: {yaml_str(fk.ref_table)}, columns: [{refs}]}}, "
        f"on_delete: {fk.on_delete.lower()}, on_update: {fk.on_update.lower()}}}"
    )


def _render_table(
    table: Table,
    profile: TableProfile | None,
    naming: str,
    prisma_types: dict[tuple[str, str], str],
    result: InitResult,
) -> list[str]:
    lines = [f"  # {_describe_table(table, profile)}", f"  {yaml_str(table.name)}:"]
    if naming != "keep" and target_name(table.name, naming) != table.name:
        lines.append(f"    name: {yaml_str(target_name(table.name, naming))}")
    if not table.primary_key:
        result.findings.append(Finding(table.name, None, "has no primary key; rows are loaded as they are"))
    lines.append("    columns:")
    for column in table.columns:
        choice = choose_column(
            column,
            profile.column(column.name) if profile else None,
            prisma_types.get((table.name, column.name)),
        )
        settings = [f"type: {yaml_value(choice.type.short())}"]
        if choice.converter:
            settings.append(f"converter: {choice.converter}")
        line = f"      {yaml_str(column.name)}: {{{', '.join(settings)}}}"
        declared = column.declared_type or "no declared type"
        comment = f"{declared}" + (f"; {choice.note}" if choice.note else "")
        lines.append(f"{line}  # {'!! ' if choice.surprise else ''}{comment}")
        if choice.surprise:
            result.findings.append(Finding(table.name, column.name, choice.note or ""))
    orphaned = {id(o.foreign_key): o for o in (profile.orphans if profile else ())}
    if orphaned:
        lines.append(
            "    # !! Foreign keys whose parent rows are missing are left out below; the rows load as they are."
        )
        lines.append("    foreign_keys:")
        for fk in table.foreign_keys:
            report = orphaned.get(id(fk))
            if report is None:
                lines.append(_fk_yaml(fk))
                continue
            what = (
                f"({', '.join(fk.columns)}) -> {fk.ref_table}: {report.rows:,} rows point at no "
                f"{fk.ref_table} (e.g. {'; '.join(report.samples)})"
            )
            lines.append(f"      # left out: {what}")
            lines.append("      #" + _fk_yaml(fk)[7:])
            result.findings.append(Finding(table.name, None, f"foreign key {what}; left out"))
    return lines


def init_spec(
    sqlite_path: str | os.PathLike[str],
    output: str | os.PathLike[str],
    target_url: str | None = None,
    naming: str = "keep",
    force: bool = False,
    sample_rows: int | None = None,
    prisma_schema: str | os.PathLike[str] | None = None,
) -> InitResult:
    source = Path(sqlite_path)
    out = Path(output)
    if out.exists() and not force:
        raise EtlError(f"'{out}' already exists; pass --force to overwrite it")
    catalog = introspect_sqlite(source)
    prisma_findings: list[Finding] = []
    prisma_types: dict[tuple[str, str], str] | None = None
    if prisma_schema is not None:
        from .prisma import read_prisma_file

        prisma_types, prisma_findings = prisma_column_types(read_prisma_file(prisma_schema), catalog)
    json_columns = frozenset(k for k, v in (prisma_types or {}).items() if v in ("json", "jsonb"))
    profiles = profile_sqlite(source, catalog, sample_rows, json_columns)
    out_dir = out.resolve().parent
    source_ref = os.path.relpath(source.resolve(), out_dir)
    schema_ref = os.path.relpath(SCHEMA_FILE, out_dir)
    sampled = f"a sample of {sample_rows:,} rows per table" if sample_rows else "every row"
    header = (
        f"Written by `etl init` from {source.name} ({sampled} profiled).\n"
        "Lines marked !! are where the data surprised etl init; each says what it chose.\n"
        "Check it with `etl validate`, then `etl plan` and `etl apply`."
    )
    result = render_spec(
        catalog,
        profiles,
        source_ref,
        schema_ref,
        target_url or "${DATABASE_URL}",
        naming,
        prisma_types,
        header,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(result.text, encoding="utf-8")
    tmp.replace(out)
    return result


# Prisma keeps its migration history in this table, with these PostgreSQL types.
_PRISMA_MIGRATIONS = {
    "id": "varchar(36)",
    "checksum": "varchar(64)",
    "finished_at": "timestamptz",
    "migration_name": "varchar(255)",
    "logs": "text",
    "rolled_back_at": "timestamptz",
    "started_at": "timestamptz",
    "applied_steps_count": "integer",
}


def prisma_column_types(schema, catalog: Catalog) -> tuple[dict[tuple[str, str], str], list[Finding]]:
    """(table, column) -> the PostgreSQL type Prisma's postgresql provider expects, from the
    Prisma schema; and what could not be matched."""
    from .prisma import postgres_type

    types: dict[tuple[str, str], str] = {}
    findings: list[Finding] = []
    for table in catalog.tables:
        if table.name == "_prisma_migrations":
            for column in table.columns:
                if column.name in _PRISMA_MIGRATIONS:
                    types[(table.name, column.name)] = _PRISMA_MIGRATIONS[column.name]
            continue
        model = schema.model_for_table(table.name)
        if model is None:
            findings.append(
                Finding(table.name, None, "has no model in the Prisma schema; types chosen from the data")
            )
            continue
        for column in table.columns:
            field = model.field_for_column(column.name)
            if field is None:
                findings.append(
                    Finding(table.name, column.name, f"has no field in Prisma model {model.name}")
                )
            elif schema.enum_named(field.type) is not None:
                findings.append(
                    Finding(
                        table.name,
                        column.name,
                        f"is Prisma enum {field.type}: migrated as text (etl does not create enum types yet)",
                    )
                )
                types[(table.name, column.name)] = "text"
            else:
                types[(table.name, column.name)] = postgres_type(field, schema)
    return types, findings
