"""The schema ledger: every schema object of the source, and where it went in the target.

`build_ledger` is pure. It holds three values side by side: the source's catalog, the spec's
desired schema (what etl carries, and what it leaves out with the reason the plan gives), and two
catalogs of PostgreSQL: `desired`, the spec's tables as PostgreSQL itself describes them, and
`actual`, the target as it is now. An object the spec carries is checked against `actual` in
PostgreSQL's own words, so a constraint dropped behind etl's back reads `missing in target`, not
what the plan once said. The same holds for a trigger the spec carries (its trigger and function)
and for an FTS table whose search the spec sets up (its generated tsvector column and GIN index).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from etl.core.mapping import (
    DesiredSchema,
    LeftOut,
    TargetTable,
    TargetTrigger,
    constraint_name,
    fit_name,
    fts_differences,
    target_name,
)
from etl.model import (
    Catalog,
    Column,
    Index,
    PgColumn,
    PgIndex,
    PgTable,
    SourceObject,
    Table,
    TargetCatalog,
)
from etl.settings import Deferral, Naming
from etl.specfile.sqltext import relations_read
from etl.sqlite.translate import TargetColumnRef, collation_of
from etl.sqlite.triggers import TableRef, translate_trigger


class Outcome(StrEnum):
    CARRIED = "carried"  # the same object, with the same behaviour
    TRANSLATED = "translated"  # the same behaviour in another PostgreSQL form (the entry's `form`)
    MATERIALIZED = "materialized"  # rows of a query or view, loaded as a table
    LEFT_OUT = "left out"  # not in the target, on purpose; the entry's `reason` says why
    MISSING = "missing in target"  # the spec carries it, and the target does not hold it (now)


@dataclass(frozen=True)
class LedgerEntry:
    kind: str  # table, column, primary key, unique constraint, foreign key, check, not null, ...
    table: str | None  # the source table it belongs to; None for views, triggers, virtual tables
    name: str  # the source's name for it: `table` or `table.object`
    outcome: Outcome
    target: str | None = None  # the target object: `table`, `table.column`, a constraint's name
    form: str | None = None  # its PostgreSQL form, as PostgreSQL describes it
    reason: str | None = None  # why, for anything but carried


# Every kind of entry (schemas/etl-verify.schema.json lists the same).
KINDS = (
    "table",
    "column",
    "not null",
    "default",
    "generated column",
    "primary key",
    "unique constraint",
    "collation",
    "index",
    "foreign key",
    "check",
    "view",
    "trigger",
    "virtual table",
    "shadow table",
)


def build_ledger(
    source: Catalog,
    mapping: DesiredSchema,
    desired: TargetCatalog,
    actual: TargetCatalog,
    naming: Naming = Naming.KEEP,
) -> tuple[LedgerEntry, ...]:
    """One entry per schema object of `source`, in source order, grouped by table."""
    by_source = {t.source: t for t in mapping.tables}
    entries: list[LedgerEntry] = []
    for table in source.tables:
        target = by_source.get(table.name)
        if table.query is not None:
            entries += _query_table(table, target, actual)
        elif target is None:
            entries.append(
                LedgerEntry(
                    "table",
                    table.name,
                    table.name,
                    Outcome.LEFT_OUT,
                    reason="left out by the spec's include/exclude: its rows and schema are not migrated",
                )
            )
        else:
            ledger = _TableLedger(table, target, mapping, desired, actual, naming)
            entries += ledger.entries()
    entries += _source_objects(source, mapping, desired, actual)
    return tuple(entries)


def ledger_counts(entries: Iterable[LedgerEntry]) -> dict[Outcome, int]:
    counts = dict.fromkeys(Outcome, 0)
    for entry in entries:
        counts[entry.outcome] += 1
    return counts


def _query_table(table: Table, target: TargetTable | None, actual: TargetCatalog) -> list[LedgerEntry]:
    if target is None:
        return []
    held = actual.table(target.name) is not None
    return [
        LedgerEntry(
            "table",
            None,
            table.name,
            Outcome.MATERIALIZED if held else Outcome.MISSING,
            target.name,
            form=table.query,
            reason="the spec's query: loaded as a table"
            if held
            else _missing("the spec loads this query as a table, and the target has no such table"),
        )
    ]


def _missing(what: str) -> str:
    return f"{what}; `etl apply` creates it again"


class _TableLedger:
    """The entries of one migrated table."""

    def __init__(
        self,
        table: Table,
        target: TargetTable,
        mapping: DesiredSchema,
        desired: TargetCatalog,
        actual: TargetCatalog,
        naming: Naming,
    ):
        self.table = table
        self.target = target
        self.naming = naming
        self.left_out = [o for o in mapping.left_out if o.table == table.name]
        self.want = desired.table(target.name) or PgTable(target.name, (), (), ())
        self.have = actual.table(target.name)
        self.columns = {
            c.conversion.column: c.name for c in target.columns if c.conversion.column is not None
        }
        self.claimed: set[str] = set()  # target indexes already matched to a source object

    def entry(self, kind: str, obj: str | None, outcome: Outcome, target: str | None = None, **more):
        name = f"{self.table.name}.{obj}" if obj else self.table.name
        return LedgerEntry(kind, self.table.name, name, outcome, target, **more)

    def entries(self) -> list[LedgerEntry]:
        out = [self.table_entry()]
        for column in self.table.columns:
            out += self.column_entries(column)
        out += self.primary_key_entries()
        out += self.index_entries()
        out += self.foreign_key_entries()
        out += self.check_entries()
        return out

    def table_entry(self) -> LedgerEntry:
        renamed = self.target.name != self.table.name
        if self.have is None:
            return self.entry(
                "table",
                None,
                Outcome.MISSING,
                self.target.name,
                reason=_missing("the target has no such table"),
            )
        return self.entry(
            "table",
            None,
            Outcome.TRANSLATED if renamed else Outcome.CARRIED,
            self.target.name,
            form=f"table {self.target.name}" if renamed else None,
            reason="renamed by the spec" if renamed else None,
        )

    # -- columns ------------------------------------------------------------------------------

    def column_entries(self, column: Column) -> list[LedgerEntry]:
        tname = self.columns.get(column.name)
        if tname is None:
            reason = "in the spec's exclude_columns: its values are not migrated"
            return [self.entry("column", column.name, Outcome.LEFT_OUT, reason=reason)]
        want = self.want.column(tname)
        have = self.have.column(tname) if self.have else None
        where = f"{self.target.name}.{tname}"
        out = [self.column_entry(column, tname, want, have)]
        if column.collation in _COLLATIONS:
            out.append(self.collation_entry(column, where))
        if not column.nullable and want is not None:
            out.append(self.not_null_entry(column, want, have, where))
        if column.generated is not None:
            out.append(self.generated_entry(column, want, have, where))
        elif column.default is not None and want is not None:
            out.append(self.default_entry(column, want, have, where))
        return out

    def column_entry(self, column: Column, tname: str, want: PgColumn | None, have: PgColumn | None):
        where = f"{self.target.name}.{tname}"
        form = want.type if want else None
        if have is None:
            reason = _missing("the target table has no such column")
            return self.entry("column", column.name, Outcome.MISSING, where, form=form, reason=reason)
        if want is not None and (have.enum or have.type) != (want.enum or want.type):
            reason = _missing(f"it is {have.enum or have.type} in the target, the spec makes it {want.type}")
            return self.entry("column", column.name, Outcome.MISSING, where, form=form, reason=reason)
        renamed = tname != column.name
        return self.entry(
            "column",
            column.name,
            Outcome.TRANSLATED if renamed else Outcome.CARRIED,
            where,
            form=form,
            reason="renamed by the spec" if renamed else None,
        )

    def collation_entry(self, column: Column, where: str) -> LedgerEntry:
        collation = column.collation or ""
        kept = any(
            (collation_of(k.expression or "") or ("",))[0] == column.name
            for ix in self.table.indexes
            for k in ix.keys
        )
        reason = (
            f"PostgreSQL has no {collation} collation: =, <, ORDER BY, GROUP BY and DISTINCT on the column "
            f"{_COLLATIONS[collation]} in PostgreSQL; queries that rely on it compare "
            f"{'lower(column)' if collation == 'NOCASE' else 'rtrim(column)'} instead"
        )
        if kept:
            reason += "; its indexes compare as SQLite's do (the collation entries below)"
        return self.entry("collation", column.name, Outcome.LEFT_OUT, where, reason=reason)

    def not_null_entry(self, column: Column, want: PgColumn, have: PgColumn | None, where: str):
        if want.nullable:
            reason = "the spec makes the column nullable (`nullable: true`)"
            return self.entry("not null", column.name, Outcome.LEFT_OUT, where, reason=reason)
        if have is None or have.nullable:
            reason = _missing("the target's column accepts NULL")
            return self.entry("not null", column.name, Outcome.MISSING, where, reason=reason)
        return self.entry("not null", column.name, Outcome.CARRIED, where)

    def default_entry(self, column: Column, want: PgColumn, have: PgColumn | None, where: str):
        source = column.default or ""
        if want.default is None:
            if _unparen(source).upper() == "NULL":
                return self.entry("default", column.name, Outcome.CARRIED, where, form="NULL")
            reason = (
                "numbered by an identity column instead"
                if want.identity
                else "the spec sets no default (`default: null`)"
            )
            return self.entry("default", column.name, Outcome.LEFT_OUT, where, reason=reason)
        if have is None or have.default != want.default:
            now = f"it is {have.default}" if have is not None and have.default else "the target has none"
            reason = _missing(f"{now}, the spec wants {want.default}")
            return self.entry(
                "default", column.name, Outcome.MISSING, where, form=want.default, reason=reason
            )
        # PostgreSQL prints a literal with its type ('anon'::text): the same value SQLite keeps.
        same = _unparen(source).lower() == _unparen(_CAST.sub("", want.default)).lower()
        return self.entry(
            "default",
            column.name,
            Outcome.CARRIED if same else Outcome.TRANSLATED,
            where,
            form=want.default,
            reason=None if same else f"SQLite DEFAULT {source}",
        )

    def generated_entry(self, column: Column, want: PgColumn | None, have: PgColumn | None, where: str):
        if want is None or not want.generated:
            found = self.left_out_item("generated column", column.name)
            reason = found.reason if found else "the spec loads the column's values instead"
            return self.entry("generated column", column.name, Outcome.LEFT_OUT, where, reason=reason)
        form = f"GENERATED ALWAYS AS ({want.default}) STORED"
        if have is None or not have.generated or have.default != want.default:
            reason = _missing("the target's column is not generated by that expression")
            return self.entry(
                "generated column", column.name, Outcome.MISSING, where, form=form, reason=reason
            )
        why = "VIRTUAL in SQLite: PostgreSQL 15 stores generated columns" if not column.stored else None
        return self.entry("generated column", column.name, Outcome.TRANSLATED, where, form=form, reason=why)

    # -- keys and indexes ---------------------------------------------------------------------

    def primary_key_entries(self) -> list[LedgerEntry]:
        if not self.table.primary_key:
            return []
        shown = ", ".join(self.table.primary_key)
        mapped = tuple(self.columns.get(c, "") for c in self.table.primary_key)
        if mapped != self.target.primary_key:
            reason = (
                f"the spec's primary_key ({', '.join(self.target.primary_key)}) replaces it"
                if self.target.primary_key
                else "the spec gives the table no primary key"
            )
            return [self.entry("primary key", f"({shown})", Outcome.LEFT_OUT, reason=reason)]
        want = self.want.primary_key
        have = self.have.primary_key if self.have else None
        name = want.name if want else self.target.primary_key_name
        if want is None or have != want:
            reason = _missing("the target's table has no such primary key")
            return [self.entry("primary key", f"({shown})", Outcome.MISSING, name, reason=reason)]
        identity = self.target.identity_column
        return [
            self.entry(
                "primary key",
                f"({shown})",
                Outcome.CARRIED,
                name,
                form=f"{identity} GENERATED BY DEFAULT AS IDENTITY" if identity else None,
            )
        ]

    def constraint(self, catalog_table: PgTable | None, kind: str, columns: tuple[str, ...]):
        if catalog_table is None:
            return None
        return next((c for c in catalog_table.constraints if c.kind == kind and c.columns == columns), None)

    def index_entries(self) -> list[LedgerEntry]:
        out: list[LedgerEntry] = []
        # Plain CREATE INDEX first: they claim their target index by name.
        plain = [ix for ix in self.table.indexes if not ix.is_constraint]
        constraints = [ix for ix in self.table.indexes if ix.is_constraint]
        for ix in plain:
            out += self.index_entry(ix)
        for ix in constraints:
            out += self.unique_entry(ix)
        return out

    def index_entry(self, ix: Index) -> list[LedgerEntry]:
        name = fit_name(target_name(ix.name, self.naming))
        want = next((i for i in self.want.indexes if i.name == name), None)
        if want is None:
            found = self.left_out_item("index", ix.name)
            reason = found.reason if found else "not in the spec's indexes"
            return [self.entry("index", ix.name, Outcome.LEFT_OUT, reason=reason)]
        self.claimed.add(name)
        outcome = Outcome.TRANSLATED if ix.has_expressions or ix.where else Outcome.CARRIED
        return [self.index_check("index", ix.name, outcome, want), *self.collations(ix, want)]

    def unique_entry(self, ix: Index) -> list[LedgerEntry]:
        shown = ", ".join(k.column or k.expression or "" for k in ix.keys)
        obj = ix.constraint_name or f"UNIQUE ({shown})"
        if not ix.has_expressions:
            mapped = tuple(self.columns.get(c, "") for c in ix.columns)
            want_c = self.constraint(self.want, "u", mapped)
            if want_c is None:
                found = self.left_out_item("unique constraint", "")
                reason = found.reason if found else "not in the spec's unique"
                return [self.entry("unique constraint", obj, Outcome.LEFT_OUT, reason=reason)]
            have_c = self.constraint(self.have, "u", mapped)
            if have_c != want_c:
                reason = _missing("the target's table has no such unique constraint")
                return [self.entry("unique constraint", obj, Outcome.MISSING, want_c.name, reason=reason)]
            return [self.entry("unique constraint", obj, Outcome.CARRIED, want_c.name)]
        # Under a collation: a unique index on what the collation compares.
        want = self.collated_index(ix)
        if want is None:
            found = self.left_out_item("unique constraint", "")
            reason = found.reason if found else "not in the spec's unique or indexes"
            return [self.entry("unique constraint", obj, Outcome.LEFT_OUT, reason=reason)]
        self.claimed.add(want.name)
        return [
            self.index_check(
                "unique constraint",
                obj,
                Outcome.TRANSLATED,
                want,
                "it compares under a collation: a unique index on what the collation compares",
            ),
            *self.collations(ix, want),
        ]

    def collated_index(self, ix: Index) -> PgIndex | None:
        """The desired unique index a collated UNIQUE constraint became: one no CREATE INDEX
        claimed, naming each of the constraint's columns."""
        wanted = [
            self.columns.get((collation_of(k.expression or "") or (k.column or "",))[0], "") for k in ix.keys
        ]
        for candidate in self.want.indexes:
            if candidate.name in self.claimed or not candidate.unique:
                continue
            if all(c and (c in candidate.definition) for c in wanted):
                return candidate
        return None

    def index_check(
        self, kind: str, obj: str, outcome: Outcome, want: PgIndex, why: str | None = None
    ) -> LedgerEntry:
        have = next((i for i in self.have.indexes if i.name == want.name), None) if self.have else None
        form = f"{'UNIQUE ' if want.unique else ''}INDEX {want.name} USING {want.definition}"
        if have != want:
            now = "has no such index" if have is None else f"defines it as {have.definition}"
            return self.entry(
                kind, obj, Outcome.MISSING, want.name, form=form, reason=_missing(f"the target {now}")
            )
        if outcome == Outcome.CARRIED:
            return self.entry(kind, obj, outcome, want.name, form=form)
        return self.entry(
            kind, obj, outcome, want.name, form=form, reason=why or "an expression or WHERE, translated"
        )

    def collations(self, ix: Index, want: PgIndex) -> list[LedgerEntry]:
        """A NOCASE or RTRIM key of an index: its behaviour is what the target's index compares."""
        out = []
        for key in ix.keys:
            collated = collation_of(key.expression or "")
            if collated is None or collated[1] == "BINARY":
                continue
            column, collation = collated
            target = self.columns.get(column)
            have = next((i for i in self.have.indexes if i.name == want.name), None) if self.have else None
            outcome = Outcome.TRANSLATED if have == want else Outcome.MISSING
            folded = 'lower(x COLLATE "C"): ASCII letters only' if collation == "NOCASE" else "rtrim(x, ' ')"
            out.append(
                self.entry(
                    "collation",
                    f"{column} COLLATE {collation}",
                    outcome,
                    f"{self.target.name}.{target}" if target else None,
                    form=f"index {want.name} compares {folded}, as SQLite's {collation} does",
                    reason="PostgreSQL has no such collation: the index compares what SQLite's does"
                    if outcome == Outcome.TRANSLATED
                    else _missing("the target lacks that index"),
                )
            )
        return out

    def foreign_key_entries(self) -> list[LedgerEntry]:
        out = []
        for fk in self.table.foreign_keys:
            obj = f"({', '.join(fk.columns)}) -> {fk.ref_table}({', '.join(fk.ref_columns)})"
            mapped = tuple(self.columns.get(c, "") for c in fk.columns)
            target = next(
                (f for f in self.target.foreign_keys if f.columns == mapped),
                None,
            )
            if target is None:
                reason = (
                    "not in the spec's foreign_keys (etl init leaves out a foreign key the rows break, "
                    "or one to a table that is not migrated)"
                )
                out.append(self.entry("foreign key", obj, Outcome.LEFT_OUT, reason=reason))
                continue
            want = next((c for c in self.want.constraints if c.name == target.name), None)
            have = (
                next((c for c in self.have.constraints if c.name == target.name), None) if self.have else None
            )
            deferral = Deferral(fk.deferrable)
            form = f"REFERENCES {target.ref_table}({', '.join(target.ref_columns)})" + (
                f" {deferral.value}" if deferral != Deferral.NOT_DEFERRABLE else ""
            )
            if want is None or have != want:
                now = "has no such foreign key" if have is None else "defines it otherwise"
                reason = _missing(f"the target {now}")
                out.append(
                    self.entry("foreign key", obj, Outcome.MISSING, target.name, form=form, reason=reason)
                )
                continue
            out.append(self.entry("foreign key", obj, Outcome.CARRIED, target.name, form=form))
        return out

    def check_entries(self) -> list[LedgerEntry]:
        out = []
        left = [o for o in self.left_out if o.kind == "check"]
        kept = list(self.target.checks)
        for check in self.table.checks:
            obj = check.name or f"CHECK ({check.expression})"
            found = next(
                (o for o in left if o.source_sql == check.expression and o.name == (check.name or "")), None
            )
            if found is not None:
                left.remove(found)
                out.append(self.entry("check", obj, Outcome.LEFT_OUT, reason=found.reason))
                continue
            # A named check is found by its name; the others in the order the spec lists them.
            own = fit_name(target_name(check.name, self.naming)) if check.name else None
            target = next((k for k in kept if k.name == own), None) or (kept[0] if kept else None)
            if target is not None:
                kept.remove(target)
            if target is None:
                out.append(self.entry("check", obj, Outcome.LEFT_OUT, reason="not in the spec's checks"))
                continue
            want = next((c for c in self.want.constraints if c.name == target.name and c.kind == "c"), None)
            have = (
                next((c for c in self.have.constraints if c.name == target.name and c.kind == "c"), None)
                if self.have
                else None
            )
            form = want.definition if want else target.sql.as_string(None)
            if want is None or have != want:
                now = "has no such check" if have is None else f"checks {have.definition}"
                reason = _missing(f"the target {now}")
                out.append(self.entry("check", obj, Outcome.MISSING, target.name, form=form, reason=reason))
                continue
            out.append(
                self.entry(
                    "check",
                    obj,
                    Outcome.TRANSLATED,
                    target.name,
                    form=form,
                    reason="SQLite expression translated",
                )
            )
        return out

    def left_out_item(self, kind: str, name: str, sql_part: str | None = None) -> LeftOut | None:
        return next(
            (
                o
                for o in self.left_out
                if o.kind == kind and o.name == name and (sql_part is None or sql_part in o.source_sql)
            ),
            None,
        )


def _source_objects(
    source: Catalog, mapping: DesiredSchema, desired: TargetCatalog, actual: TargetCatalog
) -> list[LedgerEntry]:
    """Views, triggers, virtual tables and their shadow tables."""
    out: list[LedgerEntry] = []
    left = {(o.kind, o.name): o for o in mapping.left_out if o.kind in ("view", "trigger", "virtual table")}
    views = {v.name: v for v in mapping.views}
    queries = {t.name: relations_read(t.query) for t in mapping.tables if t.query is not None}
    triggers = {t.name: t for t in mapping.triggers}
    searches = _searches(source, mapping)
    fts = {o.name for o in source.objects if o.kind == "virtual table" and (o.module or "").startswith("fts")}
    refs: dict[str, TableRef] | None = None
    for obj in source.objects:
        name = obj.name
        if obj.kind == "view" and obj.name in views:
            out.append(_view_entry(obj, views[obj.name].sql, desired, actual))
            continue
        if obj.kind == "view":
            reader = next(
                (t for t, reads in queries.items() if isinstance(reads, tuple) and obj.name in reads), None
            )
            if reader is not None:
                held = actual.table(reader) is not None
                out.append(
                    LedgerEntry(
                        "view",
                        None,
                        name,
                        Outcome.MATERIALIZED if held else Outcome.MISSING,
                        reader,
                        reason=f"its rows are loaded as table {reader} (the spec's query)"
                        if held
                        else _missing(f"the target has no table {reader}"),
                    )
                )
                continue
        if obj.kind == "trigger" and obj.name in triggers:
            out.append(_trigger_entry(obj, triggers[obj.name], desired, actual))
            continue
        if obj.kind == "virtual table" and obj.name in searches:
            out.append(_search_entry(obj, searches[obj.name], desired, actual))
        else:
            found = left.get((obj.kind, obj.name))
            reason = found.reason if found else f"a {obj.kind} is not migrated"
            if obj.kind == "trigger":
                if refs is None:  # built once, for the first trigger the spec leaves out
                    refs = _table_refs(source, mapping)
                reason = _trigger_left_out(obj, refs, fts, searches) or reason
            # listed with the database's own objects; a trigger's reason names its table
            out.append(LedgerEntry(obj.kind, None, name, Outcome.LEFT_OUT, reason=reason))
        for shadow in obj.shadows:
            out.append(
                LedgerEntry(
                    "shadow table",
                    None,
                    shadow,
                    Outcome.LEFT_OUT,
                    reason=f"a shadow table of the virtual table {obj.name} (its index, in SQLite's own "
                    "format): never copied",
                )
            )
    return out


def _view_entry(
    obj: SourceObject, spec_sql: str, desired: TargetCatalog, actual: TargetCatalog
) -> LedgerEntry:
    want, have = desired.view(obj.name), actual.view(obj.name)
    if have is None or (want is not None and have.definition != want.definition):
        reason = _missing(
            "the target has no such view" if have is None else "the target's view reads otherwise"
        )
        return LedgerEntry("view", None, obj.name, Outcome.MISSING, obj.name, reason=reason)
    form = want.definition.strip() if want else spec_sql
    return LedgerEntry(
        "view",
        None,
        obj.name,
        Outcome.TRANSLATED,
        obj.name,
        form=" ".join(form.split()),
        reason="the spec's PostgreSQL SELECT; its rows are compared with SQLite's",
    )


def _trigger_entry(
    obj: SourceObject, trigger: TargetTrigger, desired: TargetCatalog, actual: TargetCatalog
) -> LedgerEntry:
    """A trigger the spec carries: its PL/pgSQL trigger and function as the target holds them now."""
    where = f"{trigger.table}.{trigger.name}"
    want = desired.trigger(trigger.table, trigger.name)
    have = actual.trigger(trigger.table, trigger.name)
    if have is None or (want is not None and have.definition != want.definition):
        now = "has no such trigger" if have is None else "defines it otherwise (its trigger or function)"
        form = want.definition if want else None
        reason = _missing(f"the target {now}")
        return LedgerEntry("trigger", None, obj.name, Outcome.MISSING, where, form=form, reason=reason)
    return LedgerEntry(
        "trigger",
        None,
        obj.name,
        Outcome.TRANSLATED,
        where,
        form=have.definition,
        reason=f"the spec's PL/pgSQL trigger on {trigger.table}, in its own function {trigger.function}; "
        "like SQLite's, it does not fire again from within itself",
    )


@dataclass(frozen=True)
class _Search:
    """Where the spec carries an FTS table's search: a target table's generated tsvector column."""

    table: TargetTable
    query: bool  # the table is the spec's query reading the FTS table itself (its rows are there)


def _searches(source: Catalog, mapping: DesiredSchema) -> dict[str, _Search]:
    """Each FTS table of the source whose search a spec table's `search:` sets up: on its external
    content table, or on a `query:` table that reads the FTS table."""
    found: dict[str, _Search] = {}
    for obj in source.objects:
        if not (obj.kind == "virtual table" and (obj.module or "").startswith("fts")):
            continue
        for table in mapping.tables:
            if table.search is None:
                continue
            reads = relations_read(table.query) if table.query is not None else ()
            if table.query is None and obj.content and table.source == obj.content:
                found[obj.name] = _Search(table, query=False)
            elif isinstance(reads, tuple) and obj.name in reads:
                found[obj.name] = _Search(table, query=True)
    return found


def _search_entry(
    obj: SourceObject, search: _Search, desired: TargetCatalog, actual: TargetCatalog
) -> LedgerEntry:
    """An FTS table whose search is a generated tsvector column with a GIN index: both checked in
    the target as PostgreSQL describes them."""
    table = search.table
    column = table.search.name if table.search else ""
    index = fit_name(constraint_name(table.name, column, suffix="idx"))  # as the mapping names it
    want_t, have_t = desired.table(table.name), actual.table(table.name)
    want_c = want_t.column(column) if want_t else None
    have_c = have_t.column(column) if have_t else None
    want_i = next((i for i in want_t.indexes if i.name == index), None) if want_t else None
    have_i = next((i for i in have_t.indexes if i.name == index), None) if have_t else None
    where = f"{table.name}.{column}"
    generated = table.search.generated.as_string(None) if table.search and table.search.generated else ""
    form = (
        f"{column} tsvector GENERATED ALWAYS AS ({want_c.default if want_c else generated}) STORED; "
        f"INDEX {index} USING {want_i.definition if want_i else 'gin (' + column + ')'}"
    )
    problems = []
    if have_t is None:
        problems.append(f"the target has no table {table.name}")
    elif have_c is None or not have_c.generated or (want_c is not None and have_c != want_c):
        problems.append(f"the target's {where} is not that generated tsvector column")
    if have_t is not None and (have_i is None or (want_i is not None and have_i != want_i)):
        problems.append(f"the target has no such GIN index {index}")
    if problems:
        reason = _missing(" and ".join(problems))
        return LedgerEntry("virtual table", None, obj.name, Outcome.MISSING, where, form=form, reason=reason)
    if search.query:
        reason = (
            f"its rows are loaded as table {table.name} (the spec's query), its search is the generated "
            f"tsvector column {column} with a GIN index"
        )
    else:
        reason = (
            f"its search is the generated tsvector column {column} of {table.name}, the table holding "
            "its rows, with a GIN index"
        )
    return LedgerEntry(
        "virtual table",
        None,
        obj.name,
        Outcome.MATERIALIZED if search.query else Outcome.TRANSLATED,
        where,
        form=form,
        reason=f"{reason}; {fts_differences(obj)}",
    )


def _trigger_left_out(
    obj: SourceObject, refs: dict[str, TableRef], fts: set[str], searches: dict[str, _Search]
) -> str | None:
    """Why a trigger the spec does not carry is left out, where the ledger knows more than the
    plan: it maintains an FTS index the search column replaces, or why it does not translate."""
    if obj.writes and all(w in searches for w in obj.writes):
        columns = dict.fromkeys(
            f"{s.table.name}.{s.table.search.name}" for w in obj.writes if (s := searches[w]).table.search
        )
        return (
            f"FTS maintenance: it keeps {', '.join(repr(w) for w in obj.writes)} in step with "
            f'"{obj.table}"; replaced by the search column {", ".join(columns)} (a generated column: '
            "PostgreSQL computes it on every insert and update, with no trigger)"
        )
    if any(w in fts for w in obj.writes):
        return None  # the plan's own reason says what to do for an FTS table without a search
    translated = translate_trigger(obj.sql, refs)
    what = f'what it does on changes to "{obj.table}" does not happen in PostgreSQL'
    if translated.reason is not None:
        return (
            f"not translated: {translated.reason}; {what}; write it as a PL/pgSQL trigger under "
            "`triggers:` in the spec"
        )
    return (
        f"not in the spec's triggers (it translates exactly: `etl init` writes it there); {what} "
        "until the spec carries it"
    )


def _table_refs(source: Catalog, mapping: DesiredSchema) -> dict[str, TableRef]:
    """The tables the target gets, as the trigger translation reads them (by SQLite name)."""
    refs = {}
    for table in mapping.tables:
        if table.query is not None:
            continue
        columns = {
            c.conversion.column: TargetColumnRef(c.name, c.pg_type.kind)
            for c in table.columns
            if c.conversion.column is not None
        }
        found = source.table(table.source)
        refs[table.source] = TableRef(table.name, columns, found.primary_key if found else ())
    return refs


# What a column's comparisons become without its SQLite collation.
_COLLATIONS = {
    "NOCASE": "tell 'A' from 'a'",
    "RTRIM": "tell 'a ' from 'a'",
}

_CAST = re.compile(r"::[a-z ]+(\([0-9, ]+\))?$")


def _unparen(text: str) -> str:
    text = text.strip()
    while text.startswith("(") and text.endswith(")"):
        text = text[1:-1].strip()
    return text
