"""The desired target schema: what the source looks like through the spec.

`resolve(spec, source)` is pure: it reads no database and no environment. Every semantic mistake
(a table or column that does not exist, a name collision, a default or index it cannot translate,
a load order against the foreign keys) is collected with its place in the spec and raised once.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from psycopg import sql

from etl.duck import quote_ident
from etl.errors import Location, SpecError, SpecProblem
from etl.model import Catalog, Check, ForeignKey, Index, SourceObject, Table
from etl.pgtypes import PgType, default_pg_type
from etl.settings import Converter, Deferral, Mode, Naming, OnError, converter_applies
from etl.specfile.document import ColumnSpec, IndexKeySpec, IndexSpec, Spec, SqlDefault, TableSpec
from etl.specfile.sqltext import (
    SQLITE,
    beyond_the_row,
    one_expression_problem,
    one_select_problem,
    relations_read,
)
from etl.sqlite.convert import ValueConversion, integer_unit, keeps_zero_sign, loads_as_text
from etl.sqlite.translate import (
    TargetColumnRef,
    collated_column,
    translate_collated,
    translate_default,
    translate_expression,
    translate_index_key,
    translate_view,
    unknown_name,
    untranslated_part,
)

MAX_NAME_BYTES = 63  # PostgreSQL truncates longer identifiers silently; we never let it.
# Columns every PostgreSQL table has already: CREATE TABLE refuses a column of the same name.
SYSTEM_COLUMNS = frozenset({"xmin", "xmax", "cmin", "cmax", "ctid", "tableoid"})


@dataclass(frozen=True, slots=True)
class TargetColumn:
    name: str
    pg_type: PgType
    nullable: bool
    default: sql.Composable | None
    identity: bool
    conversion: ValueConversion
    serial: bool = False  # numbered by a sequence it owns, with a nextval() default (not an identity)
    # GENERATED ALWAYS AS (this) STORED: PostgreSQL computes the values, which are not loaded
    generated: sql.Composable | None = None


@dataclass(frozen=True, slots=True)
class TargetIndex:
    name: str
    keys: tuple[sql.Composable, ...]
    unique: bool = False
    where: sql.Composable | None = None
    method: str = "btree"  # the access method: btree, or gin for a full-text search column


@dataclass(frozen=True)
class TargetUnique:
    name: str
    columns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TargetForeignKey:
    name: str
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]
    on_delete: str
    on_update: str
    deferrable: Deferral = Deferral.NOT_DEFERRABLE


@dataclass(frozen=True)
class TargetCheck:
    name: str
    sql: sql.Composable  # PostgreSQL boolean expression over the target's columns
    column: str | None = None  # the target column whose definition holds it (a column constraint)


@dataclass(frozen=True)
class LeftOut:
    """A schema object of the source that the target does not get, and why: what etl plan names."""

    table: str | None  # the source table it belongs to; None for the database's own objects
    kind: str  # "check", "trigger", "view", "virtual table", ...
    name: str
    source_sql: str  # its SQLite text
    reason: str


@dataclass(frozen=True, slots=True)
class TargetTable:
    source: str  # SQLite table name
    name: str
    columns: tuple[TargetColumn, ...]
    primary_key: tuple[str, ...]
    primary_key_name: str
    uniques: tuple[TargetUnique, ...]
    indexes: tuple[TargetIndex, ...]
    foreign_keys: tuple[TargetForeignKey, ...]
    where: str | None  # SQLite condition on source rows
    key_sql: tuple[tuple[str, str], ...]  # (label, SQLite expression) naming a row in messages
    sequence_floor: int | None = None  # SQLite's sqlite_sequence value for AUTOINCREMENT tables
    rowid: str | None = None  # how SQLite names this table's rowid (None: WITHOUT ROWID)
    # The target's primary key when it is the source's rowid (its INTEGER PRIMARY KEY column,
    # copied unchanged into an integer column): a rowid range of the source is a key range here.
    rowid_key: str | None = None
    # Rowid ranges loaded one at a time, so a table of large values never has to pass through
    # DuckDB or one COPY message at once (PostgreSQL refuses messages over 1 GB). () = all at once.
    row_ranges: tuple[tuple[int, int], ...] = ()
    on_error: OnError = OnError.FAIL  # REJECT: rows that cannot arrive exactly are set aside
    # With on_error: reject, the foreign keys (by position) whose parent is loaded before this
    # table: a row pointing at no parent row is rejected too, checked against the loaded parent.
    orphan_checks: tuple[int, ...] = ()
    # ... and those onto the table itself: checked among the table's own rows, a rejected row's
    # children (and theirs) following it.
    self_checks: tuple[int, ...] = ()
    # DuckDB's type for each column in its own scan of the attached SQLite table, where a proof
    # run on the source found every value reads exactly that way (etl/run/typedscan.py); None: the
    # exact path, SQLite rendering every value.
    scan: tuple[str, ...] | None = None
    source_rows: int | None = None  # rows the source holds (after `where`), counted at plan time
    largest_row: int = 0  # bytes of the source's largest record, where the file is large (validate)
    max_rejects: int | str | None = None  # a count, "N%" of the table's rows, or no limit
    mode: Mode = Mode.SYNC  # how an existing target table is brought up to date
    watermark: str | None = None  # target column, for mode: append
    checks: tuple[TargetCheck, ...] = ()  # created once the rows are in
    query: str | None = None  # SQLite: the rows are this query's (`query:`), not the table `source`'s
    # The spec's `search:`: a generated tsvector column PostgreSQL computes from the loaded
    # columns. Not among `columns`, which are the source's: no value of it is read or compared.
    search: TargetColumn | None = None
    # How the integer unit of its `auto` datetime columns is measured, when it has any: the rows
    # read (the first table of its source's filter) and the columns measured over them (every
    # target table of the source's). With the source's rows, it decides the units (with_unit_recipes).
    unit_recipe: str = ""

    @property
    def sqlite_relation(self) -> str:
        """What SQLite reads the rows from: the source table, or the spec's query named as it."""
        if self.query is None:
            return quote_ident(self.source)
        return f"({self.query}) AS {quote_ident(self.source)}"

    def column(self, name: str) -> TargetColumn | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def loaded_columns(self) -> tuple[int, ...]:
        """Positions of the columns rows are written to: all but those PostgreSQL generates."""
        return tuple(i for i, c in enumerate(self.columns) if c.generated is None)

    @property
    def identity_column(self) -> str | None:
        return next((c.name for c in self.columns if c.identity), None)

    @property
    def sequence_column(self) -> str | None:
        """The column numbered by a sequence (identity or serial): it continues past the loaded ids."""
        return next((c.name for c in self.columns if c.identity or c.serial), None)


@dataclass(frozen=True)
class TargetView:
    """A view of the target: the spec's PostgreSQL query, and the relations it reads (the spec's
    tables and views, by target name)."""

    name: str
    sql: str
    reads: tuple[str, ...]
    where: str = ""  # where the spec writes its query (file:line:col: views.<name>.sql), for messages


@dataclass(frozen=True)
class TargetTrigger:
    """A trigger of the target: AFTER `event` ON `table` FOR EACH ROW [WHEN], running `body` in
    its own function (`function`), which never runs again from within itself."""

    name: str
    table: str  # target table name
    event: str  # insert | update | delete
    body: str  # PL/pgSQL statements
    function: str
    columns: tuple[str, ...] = ()  # UPDATE OF these target columns
    when: str | None = None


@dataclass(frozen=True)
class ShadowedRule:
    """A type rule that changes nothing: every column it matches sets its own `type`."""

    index: int  # in the spec's type_rules
    declared: str
    columns: int  # how many columns it matches
    location: Location | None = None


@dataclass(frozen=True)
class DesiredSchema:
    """The target schema as the spec wants it (what `resolve` makes of Spec x Catalog); the planner
    holds it against model.TargetCatalog, the target as it is."""

    schema: str
    tables: tuple[TargetTable, ...]  # in load order
    enums: tuple[tuple[str, tuple[str, ...]], ...] = ()  # enum types to create: name, labels
    retention: int = 1  # applies whose replaced tables are kept for etl rollback
    left_out: tuple[LeftOut, ...] = ()  # what of the source's schema the target does not get
    views: tuple[TargetView, ...] = ()  # in the order they can be created (a view after those it reads)
    shadowed_rules: tuple[ShadowedRule, ...] = ()  # type rules no column takes its type from
    triggers: tuple[TargetTrigger, ...] = ()  # created once the rows are in

    def table(self, name: str) -> TargetTable | None:
        return next((t for t in self.tables if t.name == name), None)


def target_name(name: str, naming: Naming) -> str:
    if naming == Naming.LOWER:
        return name.lower()
    if naming == Naming.SNAKE:
        spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
        spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", spaced)
        return re.sub(r"[\s\-]+", "_", spaced).lower()
    return name


def constraint_name(*parts: str, suffix: str) -> str:
    """Prisma's names (`User_pkey`, `Message_authorId_fkey`), shortened with a hash if too long."""
    name = "_".join((*parts, suffix))
    if len(name.encode()) <= MAX_NAME_BYTES:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    head = name.encode()[: MAX_NAME_BYTES - len(suffix) - 10].decode(errors="ignore")
    return f"{head}_{digest}_{suffix}"


def identity_sequence_name(table: str, column: str) -> str:
    """The name PostgreSQL gives an identity column's sequence when it is free: `<table>_<column>_seq`,
    the longer of the two parts shortened first to fit 63 bytes (its makeObjectName)."""
    first, second, label = table.encode(), column.encode(), b"seq"
    available = MAX_NAME_BYTES - len(label) - 2
    keep_first, keep_second = len(first), len(second)
    while keep_first + keep_second > available:
        if keep_first > keep_second:
            keep_first -= 1
        else:
            keep_second -= 1
    return "_".join(
        (first[:keep_first].decode(errors="ignore"), second[:keep_second].decode(errors="ignore"), "seq")
    )


def no_tables_reason(source: object, views: Iterable[str]) -> str:
    """What to tell a user whose source file holds no table (perhaps only views), and what to check."""
    names = ", ".join(views)
    only = f", only views ({names}), which are not migrated" if names else ""
    return (
        f"'{source}' holds no tables{only}: check the path (is it empty, or does the app keep its "
        "database elsewhere?)"
    )


def compared_every_time(table: TargetTable) -> str | None:
    """Why a plan compares the table's rows every time, never skipping it (or comparing it in
    some ranges only) by its source pages: its rows depend on more than its own source rows.
    None where they do not (with on_error: reject they do too: see etl/run/fingerprint.py)."""
    if table.query is not None:
        return "a query: table holds what its query reads"
    if table.where is not None and (why := beyond_the_row(table.where)) is not None:
        return f"its where: {why}"
    for column in table.columns:
        if column.conversion.column is None and (why := beyond_the_row(column.conversion.source_sql)):
            return f'the expression: of column "{column.name}" {why}'
    return None


def etl_trigger_function(trigger: str) -> str:
    """The name of the function etl makes for its trigger `trigger`."""
    return fit_name(f"etl_trigger_{trigger}")


def fit_name(name: str) -> str:
    """A name SQLite allowed but PostgreSQL would truncate, shortened with a hash to stay distinct."""
    if len(name.encode()) <= MAX_NAME_BYTES:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{name.encode()[: MAX_NAME_BYTES - 9].decode(errors='ignore')}_{digest}"


def ordered_key(part: sql.Composable, descending: bool, nulls: str | None = None) -> sql.Composable:
    """An index key with its order, and where its NULLs sort when that is not the order's default."""
    words = (["DESC"] if descending else []) + (
        [f"NULLS {nulls.upper()}"] if nulls in ("first", "last") else []
    )
    return sql.SQL(" ").join([part, *(sql.SQL(w) for w in words)]) if words else part


def source_index_text(ix: Index) -> str:
    """A SQLite index as its CREATE INDEX would say it, for naming it."""
    keys = ", ".join(
        ((k.expression or "") if k.column is None else quote_ident(k.column))
        + (" DESC" if k.descending else "")
        for k in ix.keys
    )
    where = f" WHERE {ix.where}" if ix.where else ""
    return f"CREATE {'UNIQUE ' if ix.unique else ''}INDEX {quote_ident(ix.name)} ({keys}){where}"


def _index_definition(ix: TargetIndex) -> tuple:
    return (
        tuple(k.as_string(None) for k in ix.keys),
        ix.unique,
        ix.where.as_string(None) if ix.where is not None else None,
    )


def source_object_left_out(obj: SourceObject, searched: dict[str, str] | None = None) -> LeftOut:
    """Why a view, trigger or virtual table of the source is not in the target, and what to do.
    `searched`: each FTS table whose search the target has, and where (`search:` on a table)."""
    searched = searched or {}
    if obj.kind == "view":
        translated = translate_view(obj.sql, obj.columns)
        why = f"its SQL does not translate exactly ({translated.reason})" if translated.reason else ""
        reason = (
            f"not in the spec's views{'; ' + why if why else ''}: write its PostgreSQL SELECT under views: "
            "to create it"
        )
    elif obj.kind == "trigger":
        reason = (
            f'triggers are not migrated: what it does on changes to "{obj.table}" does not happen in '
            "PostgreSQL; write it as a PL/pgSQL trigger"
        )
        fts = [w for w in obj.writes if w in searched]
        if obj.writes and len(fts) == len(obj.writes):
            maintained = (
                f"FTS maintenance: it keeps the full-text index {', '.join(repr(w) for w in fts)} in step"
            )
            if all(searched[w] for w in fts):
                reason = (
                    f'{maintained} with "{obj.table}"; not translated, replaced: '
                    + "; ".join(searched[w] for w in dict.fromkeys(fts))
                    + " (a generated column: PostgreSQL computes it on every insert and update)"
                )
            else:
                reason = (
                    f'{maintained} with "{obj.table}"; not translated: `search: {{columns: [...]}}` on '
                    "the table holding the rows creates a generated tsvector column, which needs no trigger"
                )
    else:
        shadows = f" nor its shadow tables ({', '.join(obj.shadows)})" if obj.shadows else ""
        reason = f"a {obj.module} virtual table is not migrated{shadows}"
        if obj.module and obj.module.startswith("fts"):
            if searched.get(obj.name):
                reason += f"; {searched[obj.name]}: {fts_differences(obj)}"
            else:
                if obj.content == "":
                    reason += (
                        "; it is contentless (content=''): SQLite keeps only the index, no rows, so "
                        "nothing is there to migrate"
                    )
                elif obj.content:
                    reason += f"; the rows it indexes are in '{obj.content}', which is migrated"
                elif obj.content is None:
                    reason += (
                        "; the rows it indexes live only inside it: load them as a table with "
                        f"tables: {{{obj.name}: {{query: {fts_query(obj)}}}}}"
                    )
                reason += (
                    "; in PostgreSQL, full-text search is a tsvector column with a GIN index: "
                    "`search: {columns: [...]}` on the table holding the rows creates one"
                )
    return LeftOut(obj.table, obj.kind, obj.name, obj.sql, reason)


def search_carried(table: str, column: str, query: bool) -> str:
    """Where an FTS table's search went: the wording plan and init share."""
    how = f"its rows are loaded by the query of table '{table}'; " if query else ""
    return (
        f"{how}its search is the generated tsvector column '{column}' of table '{table}', with a GIN "
        "index (search: in the spec)"
    )


def fts_config(obj: SourceObject) -> str:
    """The PostgreSQL text search configuration nearest an FTS table's tokenizer: english for
    porter (which stems English words), else simple (lowercased words, as unicode61 and ascii)."""
    return "english" if re.search(r"\bporter\b", obj.tokenize or "", re.IGNORECASE) else "simple"


def fts_differences(obj: SourceObject) -> str:
    """What differs between an FTS table's search and PostgreSQL's, said where init and plan name it."""
    tokenizer = obj.tokenize or "unicode61"
    return (
        f"SQLite's tokenizer ({tokenizer}) and PostgreSQL's '{fts_config(obj)}' configuration do not split, "
        "fold or stem every word alike (unicode61 removes diacritics, simple keeps them; porter and english "
        "stem differently), MATCH queries become @@ to_tsquery(...), and ts_rank does not rank as bm25 does"
    )


def fts_query(obj: SourceObject) -> str:
    """The SQLite SELECT that reads an FTS table's own rows, with its rowid as `id` (else `rowid`)."""
    key = "id" if "id" not in {c.lower() for c in obj.indexed} else "rowid"
    columns = ", ".join(quote_ident(c) for c in obj.columns)
    return f"SELECT rowid AS {key}, {columns} FROM {quote_ident(obj.name)}"


def check_name(table: str, check: Check, column: str | None, naming: Naming) -> str:
    """A check's target name: its own, or PostgreSQL's way, `<table>_<column>_check`."""
    if check.name:
        return fit_name(target_name(check.name, naming))
    return constraint_name(table, *((column,) if column else ()), suffix="check")


def _unique(wanted: str, taken: set[str]) -> str:
    """`wanted`, or numbered (`t_check1`, ...) as PostgreSQL does when a table already has it."""
    name, n = wanted, 1
    while name in taken:
        name = constraint_name(wanted.removesuffix("_check"), suffix=f"check{n}")
        n += 1
    taken.add(name)
    return name


def unique_check_names(table: str, checks: Iterable[tuple[Check, str | None]], naming: Naming) -> list[str]:
    """The target names of a table's checks (each with its target column), distinct."""
    taken: set[str] = set()
    return [_unique(check_name(table, check, column, naming), taken) for check, column in checks]


def _matches(name: str, globs: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, g) for g in globs)


MAX_VARCHAR_LENGTH = 10_485_760  # PostgreSQL's limit for varchar(n)


def _did_you_mean(word: str, choices) -> str:
    import difflib

    choices = list(choices)
    same_but_case = [c for c in choices if c.lower() == word.lower()]  # `ID` for `id`
    close = same_but_case or difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class _Resolver:
    def __init__(self, spec: Spec, source: Catalog):
        self.spec = spec
        self.source = source
        self.problems: list[SpecProblem] = []
        self.left_out: list[LeftOut] = []
        # Per type rule, for each column it matches: whether the column sets its own type.
        self.rule_matches: dict[int, list[bool]] = {}

    def problem(self, path: tuple[str | int, ...], message: str, key: bool = False) -> None:
        self.problems.append(self.spec.problem(path, message, key=key))

    # -- tables ---------------------------------------------------------------------------------

    def selected_tables(self) -> list[Table]:
        spec, names = self.spec, [t.name for t in self.source.tables]
        known = set(names)
        for i, glob in enumerate(spec.include):
            if not any(ch in glob for ch in "*?[") and glob not in known:
                self.problem(("include", i), self.no_table(glob))
        chosen = [
            t
            for t in self.source.tables
            if t.query is not None or _matches(t.name, spec.include) and not _matches(t.name, spec.exclude)
        ]
        if not chosen:
            # A plan with no tables would drop every table earlier applies loaded: a wrong path
            # or filter must never read as "the source is now empty".
            self.nothing_selected(names)
        chosen_names = {t.name for t in chosen}
        for name in spec.tables:
            if name not in known:
                self.problem(("tables", name), self.no_table(name), key=True)
            elif name not in chosen_names:
                self.problem(
                    ("tables", name),
                    f"table '{name}' is configured but left out by include/exclude",
                    key=True,
                )
        return chosen

    def nothing_selected(self, names: list[str]) -> None:
        spec = self.spec
        if not names:
            self.problem(
                ("source", "sqlite"),
                f"{no_tables_reason(spec.source, self.source.views)}; etl never plans to empty the target",
            )
            return
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        where = ("include",) if spec.locate("include") != spec.locate() else ("exclude",)
        every = "the only table" if len(names) == 1 else f"all {len(names)} tables"
        self.problem(
            where,
            f"include/exclude leave out {every} of '{spec.source}' ({shown}): "
            "check the globs (they match table names exactly, case included)",
        )

    def no_table(self, name: str) -> str:
        shadow_of = self.source.shadow_tables.get(name)
        if shadow_of is not None:
            return (
                f"'{name}' is a shadow table of the virtual table '{shadow_of}' (its index, in SQLite's own "
                "format): it is never copied"
            )
        if name in self.source.views:
            return f"'{name}' is a view in the source: list it under views: (not tables:) to create it"
        return f"no table '{name}' in the source{_did_you_mean(name, [t.name for t in self.source.tables])}"

    def resolve(self) -> DesiredSchema:
        chosen = self.selected_tables()
        names = {t.name: target_name(t.name, self.spec.naming) for t in chosen}
        for t in chosen:
            ts = self.spec.tables.get(t.name)
            if ts and ts.name:
                names[t.name] = ts.name
        seen: dict[str, str] = {}
        for source_name, name in names.items():
            if not name:
                self.problem(
                    ("tables", source_name), "PostgreSQL refuses an empty table name; rename it with `name:`"
                )
            if len(name.encode()) > MAX_NAME_BYTES:
                self.problem(
                    ("tables", source_name), f"target name '{name}' is longer than PostgreSQL's 63 bytes"
                )
            if name in seen:
                self.problem(
                    ("tables", source_name),
                    f"tables '{seen[name]}' and '{source_name}' would both become '{name}'; rename one with `name:`",
                )
            seen[name] = source_name
        for enum in self.spec.enums:
            if len(enum.encode()) > MAX_NAME_BYTES:
                self.problem(
                    ("enums", enum),
                    f"enum name '{enum}' is longer than PostgreSQL's 63 bytes; shorten it",
                    key=True,
                )
        searched = self.searched()
        self.left_out += [
            source_object_left_out(o, searched)
            for o in self.source.objects
            if not (o.kind == "view" and o.name in self.spec.views)
            and not (o.kind == "trigger" and o.name in self.spec.triggers)
        ]
        targets = {t.name: self.table(t, names) for t in chosen}
        self.check_relation_names(list(targets.values()))
        views = self.target_views(set(names.values()))
        triggers = self.target_triggers(names, targets)
        order = self.load_order(chosen)
        if self.problems:
            raise SpecError(self.problems)
        loaded: set[str] = set()
        tables = []
        for source_name in order:
            table = targets[source_name]
            if table.on_error == OnError.REJECT:
                checks = tuple(
                    i
                    for i, fk in enumerate(table.foreign_keys)
                    if fk.ref_table in loaded and fk.ref_table != table.name
                )
                own = tuple(i for i, fk in enumerate(table.foreign_keys) if fk.ref_table == table.name)
                table = replace(table, orphan_checks=checks, self_checks=own)
            loaded.add(table.name)
            tables.append(table)
        return DesiredSchema(
            schema=self.spec.target_schema,
            tables=tuple(tables),
            enums=tuple(self.spec.enums.items()),
            retention=self.spec.retention,
            left_out=tuple(self.left_out),
            views=views,
            shadowed_rules=self.shadowed_rules(),
            triggers=triggers,
        )

    def target_triggers(
        self, names: dict[str, str], targets: dict[str, TargetTable]
    ) -> tuple[TargetTrigger, ...]:
        """The spec's triggers, on the tables the target gets."""
        out = []
        for name, trigger in self.spec.triggers.items():
            at = ("triggers", name)
            if len(name.encode()) > MAX_NAME_BYTES:
                self.problem(at, f"trigger name '{name}' is longer than PostgreSQL's 63 bytes", key=True)
            table = targets.get(trigger.table)
            if table is None:
                self.problem(
                    (*at, "table"),
                    f"trigger '{name}' is on '{trigger.table}', which is not a migrated table"
                    f"{_did_you_mean(trigger.table, list(names))}",
                )
                continue
            columns = []
            for i, column in enumerate(trigger.columns):
                target = next((c for c in table.columns if c.conversion.column == column), None)
                if target is None:
                    self.problem((*at, "columns", i), f"no column '{column}' in table '{trigger.table}'")
                else:
                    columns.append(target.name)
            if trigger.columns and trigger.event != "update":
                self.problem((*at, "columns"), "columns (UPDATE OF) go with event: update only")
            function = etl_trigger_function(name)
            out.append(
                TargetTrigger(
                    name, table.name, trigger.event, trigger.body, function, tuple(columns), trigger.when
                )
            )
        return tuple(out)

    def searched(self) -> dict[str, str]:
        """Each FTS table of the source, and where a spec table's `search:` carries its search
        ("" where none does): on its external content table, or on a `query:` table reading it."""
        found: dict[str, str] = {}
        for obj in self.source.objects:
            if not (obj.kind == "virtual table" and (obj.module or "").startswith("fts")):
                continue
            found[obj.name] = ""
            for name, ts in self.spec.tables.items():
                if ts.search is None:
                    continue
                reads = relations_read(ts.query) if ts.query else ()
                if name == obj.content or (isinstance(reads, tuple) and obj.name in reads):
                    found[obj.name] = search_carried(
                        ts.name or target_name(name, self.spec.naming), ts.search.name, ts.query is not None
                    )
        return found

    def shadowed_rules(self) -> tuple[ShadowedRule, ...]:
        return tuple(
            ShadowedRule(i, self.spec.type_rules[i].declared, len(pins), self.spec.locate("type_rules", i))
            for i, pins in sorted(self.rule_matches.items())
            if all(pins)
        )

    def target_views(self, tables: set[str]) -> tuple[TargetView, ...]:
        """The spec's views, each after the views it reads; every mistake in them collected."""
        found: dict[str, TargetView] = {}
        for name, view in self.spec.views.items():
            at = ("views", name, "sql")
            if name not in self.source.views:
                self.problem(
                    ("views", name),
                    f"no view '{name}' in the source{_did_you_mean(name, self.source.views)}",
                    key=True,
                )
                continue
            if name in tables:
                self.problem(("views", name), f"a table of the target is named '{name}' too", key=True)
            bad = one_select_problem(view.sql)
            reads = None if bad else relations_read(view.sql)
            if bad or isinstance(reads, str):
                self.problem(at, f"view '{name}': {bad or 'etl cannot read the query: ' + str(reads)}")
                continue
            assert reads is not None
            unknown = [r for r in reads if r not in tables and r not in self.spec.views]
            if unknown:
                self.problem(
                    at,
                    f"view '{name}' reads '{unknown[0]}', which is neither a table nor a view of the "
                    "spec (renamed? write the target's names in the query)",
                )
                continue
            location = self.spec.locate(*at)
            where = f"{location}: views.{name}.sql" if location else f"views.{name}.sql"
            found[name] = TargetView(name, view.sql, reads, where)
        parents = {name: {r for r in v.reads if r in found} for name, v in found.items()}
        cyclic = _cyclic(list(found), parents)
        for name in cyclic:
            self.problem(("views", name), f"view '{name}' reads itself through other views", key=True)
        return tuple(found[n] for n in topological_order(list(found), parents) if n not in cyclic)

    def check_relation_names(self, tables: list[TargetTable]) -> None:
        """PostgreSQL keeps tables and indexes (those behind primary keys and unique constraints
        too) in one namespace per schema, and constraint names unique per table: a clash would
        only fail at apply, after the rows are loaded."""
        seen: dict[str, str] = {}
        for t in tables:
            base = ("tables", t.source)
            relations = [(t.name, f"table '{t.name}'")]
            if t.primary_key:
                relations.append((t.primary_key_name, f"the primary key of '{t.name}'"))
            relations += [
                (u.name, f"the unique constraint ({', '.join(u.columns)}) of '{t.name}'") for u in t.uniques
            ]
            relations += [(ix.name, f"index '{ix.name}' of '{t.name}'") for ix in t.indexes]
            if t.sequence_column:
                kind = "identity" if t.identity_column else "serial"
                relations.append(
                    (
                        identity_sequence_name(t.name, t.sequence_column),
                        f"the sequence PostgreSQL creates for {kind} column '{t.sequence_column}' of '{t.name}'",
                    )
                )
            for name, what in relations:
                if name in seen and seen[name] != what:
                    how = " with `name:`" if "sequence" in what or "sequence" in seen[name] else ""
                    self.problem(
                        base,
                        f"{seen[name]} and {what} would both be named '{name}' in PostgreSQL "
                        f"(one namespace per schema); rename one{how}",
                    )
                seen.setdefault(name, what)
            constraints = {t.primary_key_name} | {u.name for u in t.uniques} | {c.name for c in t.checks}
            for fk in t.foreign_keys:
                if fk.name in constraints:
                    self.problem(
                        base,
                        f"two constraints of '{t.name}' would both be named '{fk.name}'; "
                        "replace this table's `foreign_keys` with one of them",
                    )
                constraints.add(fk.name)

    def table(self, table: Table, table_names: dict[str, str]) -> TargetTable:
        ts = self.spec.tables.get(table.name) or TableSpec()
        base = ("tables", table.name)
        self.check_configured_columns(table, ts, base)
        pk_source = ts.primary_key if ts.primary_key is not None else table.primary_key
        columns, col_names, kinds = self.target_columns(table, ts, base, pk_source)
        tname = table_names[table.name]
        pk = (
            self.target_cols(
                ts,
                col_names,
                tuple(pk_source),
                (*base, "primary_key") if ts.primary_key is not None else base,
                "the primary key",
            )
            or ()
        )
        uniques = self.target_uniques(table, ts, base, tname, col_names)
        indexes = self.target_indexes(table, ts, base, tname, col_names, kinds)
        fks = self.target_foreign_keys(table, ts, base, tname, col_names, table_names)
        checks = self.target_checks(table, ts, tname, kinds)
        search = self.target_search(ts, base, tname, col_names, kinds, [c.name for c in columns])
        if search is not None:
            indexes.append(
                TargetIndex(
                    fit_name(constraint_name(tname, search.name, suffix="idx")),
                    (sql.Identifier(search.name),),
                    method="gin",
                )
            )

        # A column may itself be called rowid; SQLite then still answers to _rowid_ or oid.
        rowid = None
        if not table.without_rowid:
            rowid = next((n for n in ("rowid", "_rowid_", "oid") if table.column(n) is None), None)
        mode, watermark = self.mode_and_watermark(table, ts, base, col_names, pk)
        key_sql = tuple((c, quote_ident(c)) for c in pk_source if table.column(c)) or (
            ((rowid, rowid),) if rowid else ()
        )
        return TargetTable(
            source=table.name,
            name=tname,
            rowid_key=_rowid_key(table, columns, pk, rowid),
            columns=tuple(columns),
            primary_key=pk,
            primary_key_name=ts.primary_key_name or constraint_name(tname, suffix="pkey"),
            uniques=tuple(uniques),
            indexes=tuple(indexes),
            foreign_keys=tuple(fks),
            where=ts.where,
            rowid=rowid,
            on_error=ts.on_error or self.spec.on_error,
            max_rejects=ts.max_rejects if ts.max_rejects is not None else self.spec.max_rejects,
            mode=mode,
            watermark=watermark,
            key_sql=key_sql,
            sequence_floor=table.sequence if table.autoincrement else None,
            checks=tuple(checks),
            query=table.query,
            search=search,
        )

    def target_search(
        self,
        ts: TableSpec,
        base: tuple[str, ...],
        tname: str,
        col_names: dict[str, str],
        kinds: dict[str, TargetColumnRef],
        taken: list[str],
    ) -> TargetColumn | None:
        """The spec's `search:` as a generated tsvector column over the named text columns."""
        search = ts.search
        if search is None:
            return None
        at = (*base, "search")
        parts: list[sql.Composable] = []
        for i, column in enumerate(search.columns):
            ref = kinds.get(column)
            if ref is None:
                self.problem(
                    (*at, "columns", i),
                    f"no column '{column}' in table '{base[-1]}' (or it is excluded){_did_you_mean(column, list(col_names))}",
                )
            elif ref.kind != "text":
                self.problem(
                    (*at, "columns", i),
                    f"column '{column}' is not text: full-text search reads text columns only",
                )
            else:
                parts.append(sql.SQL("coalesce({}, '')").format(sql.Identifier(ref.name)))
        name = search.name
        if name in taken or name in SYSTEM_COLUMNS:
            self.problem(
                (*at, "name"),
                f"table '{tname}' already has a column '{name}': give the search column another `name`",
            )
        if len(name.encode()) > MAX_NAME_BYTES:
            self.problem((*at, "name"), f"column name '{name}' is longer than PostgreSQL's 63 bytes")
        if len(parts) != len(search.columns):
            return None
        document = sql.SQL(" || ' ' || ").join(parts)
        expression = sql.SQL("to_tsvector({}::regconfig, {})").format(sql.Literal(search.config), document)
        tsvector = PgType("tsvector")
        return TargetColumn(
            name=name,
            pg_type=tsvector,
            nullable=True,
            default=None,
            identity=False,
            conversion=ValueConversion("NULL", name, tsvector),
            generated=expression,
        )

    def target_checks(
        self, table: Table, ts: TableSpec, tname: str, kinds: dict[str, TargetColumnRef]
    ) -> list[TargetCheck]:
        """The spec's checks, or else the source's translated; a source check that does not
        translate, or that the spec's list leaves out, is named in the plan."""
        taken: set[str] = set()

        def unique_name(wanted: str) -> str:
            return _unique(wanted, taken)

        translated = [
            (check, translate_expression(check.expression, kinds, ascii_case=True)) for check in table.checks
        ]
        if ts.checks is not None:
            checks = [
                TargetCheck(unique_name(c.name or constraint_name(tname, suffix="check")), sql.SQL(c.sql))
                for c in ts.checks
            ]
            kept_names = {c.name for c in ts.checks if c.name}
            kept_sql = {c.sql for c in ts.checks}
            for check, pg in translated:
                kept = (check.name is not None and check.name in kept_names) or (
                    pg is not None and pg.as_string(None) in kept_sql
                )
                if not kept:
                    self.left_out.append(
                        LeftOut(
                            table.name,
                            "check",
                            check.name or "",
                            check.expression,
                            "not in the spec's checks",
                        )
                    )
            return checks
        checks = []
        for check, pg in translated:
            if pg is None:
                self.left_out.append(
                    LeftOut(
                        table.name,
                        "check",
                        check.name or "",
                        check.expression,
                        "has no exact PostgreSQL equivalent; write one into the table's checks, or leave it out",
                    )
                )
                continue
            column = kinds[check.column].name if check.column in kinds else None
            checks.append(
                TargetCheck(unique_name(check_name(tname, check, column, self.spec.naming)), pg, column)
            )
        return checks

    def check_configured_columns(self, table: Table, ts: TableSpec, base: tuple[str, ...]) -> None:
        """Every column the spec excludes or configures exists in the source (or is a new column
        with an expression), and none is both."""
        source_cols = [c.name for c in table.columns]
        for name in ts.exclude_columns:
            if name not in source_cols:
                self.problem(
                    (*base, "exclude_columns"),
                    f"no column '{name}' in table '{table.name}'{_did_you_mean(name, source_cols)}",
                )
        for name, cs in ts.columns.items():
            if name not in source_cols and cs.expression is None:
                self.problem(
                    (*base, "columns", name),
                    f"no column '{name}' in table '{table.name}'{_did_you_mean(name, source_cols)} (a new column needs an `expression`)",
                    key=True,
                )
            elif name in ts.exclude_columns:
                self.problem(
                    (*base, "columns", name),
                    f"column '{name}' is configured but also in exclude_columns",
                    key=True,
                )

    def target_columns(
        self, table: Table, ts: TableSpec, base: tuple[str, ...], pk_source: list[str] | tuple[str, ...]
    ) -> tuple[list[TargetColumn], dict[str, str], dict[str, TargetColumnRef]]:
        """The table's target columns (the source's, less the excluded ones, then the computed ones),
        each source column's target name, and the target name and type kind of each (for
        translating index expressions)."""
        source_cols = [c.name for c in table.columns]
        columns: list[TargetColumn] = []
        col_names: dict[str, str] = {}
        kinds: dict[str, TargetColumnRef] = {}
        included = [c for c in table.columns if c.name not in ts.exclude_columns]
        computed = [n for n, cs in ts.columns.items() if n not in source_cols and cs.expression]
        for name in [c.name for c in included] + computed:
            source_col = table.column(name)
            cs = ts.columns.get(name) or ColumnSpec()
            at = (*base, "columns", name)
            tname = self.column_name(name, cs, at, col_names)
            col_names[name] = tname
            declared = source_col.declared_type if source_col else ""
            pg_type, converter = self.column_type(declared, cs, at, computed=source_col is None)
            if pg_type is None:
                continue
            if applies := converter_applies(converter, pg_type.kind):
                if cs.converter:
                    self.problem(
                        (*at, "converter"),
                        f"converter '{converter}' applies to {applies} columns, not {pg_type.sql()}",
                    )
                converter = Converter.AUTO  # a type rule's convention means nothing for this type
            serial = cs.serial and cs.expression is None
            if cs.serial and (pg_type.kind != "integer" or pg_type.name == "oid"):
                self.problem(
                    (*at, "serial"),
                    f"serial is for smallint, integer and bigint columns, not {pg_type.sql()}",
                )
                serial = False
            if serial and cs.has_default and cs.default is not None:
                self.problem(
                    (*at, "default"), "a serial column takes its default from its sequence; remove `default`"
                )
            identity = (
                not serial
                and table.rowid_alias == name
                and pg_type.kind == "integer"
                and cs.expression is None
                and tuple(pk_source) == (name,)
            )
            nullable = (
                cs.nullable if cs.nullable is not None else (source_col.nullable if source_col else True)
            )
            if name in pk_source:
                if cs.nullable is True:
                    self.problem((*at, "nullable"), "a primary key column cannot be nullable in PostgreSQL")
                nullable = False
            default = self.column_default(
                source_col.default if source_col else None, cs, pg_type, at, table.name, name
            )
            source_sql = f"({cs.expression})" if cs.expression else quote_ident(name)
            columns.append(
                TargetColumn(
                    name=tname,
                    pg_type=pg_type,
                    nullable=nullable,
                    default=default,
                    identity=identity,
                    serial=serial,
                    conversion=ValueConversion(
                        source_sql,
                        tname,
                        pg_type,
                        converter,
                        nullable,
                        column=None if cs.expression else name,
                        signed_zeros=keeps_zero_sign(None if cs.expression else declared, pg_type),
                    ),
                )
            )
            kinds[name] = TargetColumnRef(tname, pg_type.kind)
        return self.generated_columns(table, ts, columns, kinds), col_names, kinds

    def generated_columns(
        self, table: Table, ts: TableSpec, columns: list[TargetColumn], kinds: dict[str, TargetColumnRef]
    ) -> list[TargetColumn]:
        """The columns, those SQLite generates generated by PostgreSQL too where the expression
        translates exactly; the others stay plain columns holding the loaded values, named."""
        by_target = {ref.name: source for source, ref in kinds.items()}
        staged = any(loads_as_text(c.pg_type) for c in columns)
        out = []
        for column in columns:
            source_col = table.column(by_target.get(column.name, ""))
            cs = ts.columns.get(source_col.name) if source_col else None
            if source_col is None or source_col.generated is None or (cs and cs.expression):
                out.append(column)
                continue
            expression = translate_expression(source_col.generated, kinds, ascii_case=True)
            # PostgreSQL cannot change the type of a column a generated column reads, which a
            # column loaded as text and converted afterwards needs.
            if expression is not None and not staged:
                out.append(replace(column, generated=expression, default=None, identity=False))
                continue
            why = (
                "a column of the table is loaded as text and converted by PostgreSQL"
                if expression is not None
                else "its expression has no exact PostgreSQL equivalent"
            )
            self.left_out.append(
                LeftOut(
                    table.name,
                    "generated column",
                    source_col.name,
                    source_col.generated,
                    f"{why}: a plain column holding the loaded values (new rows get none computed)",
                )
            )
            out.append(column)
        return out

    def column_name(
        self, name: str, cs: ColumnSpec, at: tuple[str | int, ...], col_names: dict[str, str]
    ) -> str:
        """The column's target name, with a problem if PostgreSQL would refuse it or another column
        of the table already has it."""
        tname = cs.name or target_name(name, self.spec.naming)
        if tname in col_names.values():
            other = next(k for k, v in col_names.items() if v == tname)
            self.problem(
                at, f"columns '{other}' and '{name}' would both become '{tname}'; rename one with `name:`"
            )
        if len(tname.encode()) > MAX_NAME_BYTES:
            self.problem(
                at,
                f"target column name '{tname}' is longer than PostgreSQL's 63 bytes; rename it with `name:`",
            )
        if not tname:
            self.problem(at, "PostgreSQL refuses an empty column name; rename it with `name:`")
        elif tname in SYSTEM_COLUMNS:
            became = "" if tname == name else f" would become '{tname}', which"
            self.problem(
                at,
                f"column '{name}'{became} is the name of a PostgreSQL system column; rename it with `name:`",
            )
        return tname

    def target_cols(
        self,
        ts: TableSpec,
        col_names: dict[str, str],
        cols: tuple[str, ...],
        path: tuple[str | int, ...],
        what: str,
    ) -> tuple[str, ...] | None:
        """The target names of a constraint's or index's source columns; None (with a problem for
        each) when some are excluded or do not exist."""
        missing = [c for c in cols if c not in col_names]
        for c in missing:
            why = "is excluded" if c in ts.exclude_columns else f"does not exist{_did_you_mean(c, col_names)}"
            self.problem(path, f"{what} uses column '{c}', which {why}")
        return None if missing else tuple(col_names[c] for c in cols)

    def target_uniques(
        self, table: Table, ts: TableSpec, base: tuple[str, ...], tname: str, col_names: dict[str, str]
    ) -> list[TargetUnique]:
        """The spec's unique constraints, or else the source's (those comparing with a collation
        cannot be translated)."""
        uniques = []
        if ts.unique is not None:
            for i, cols in enumerate(ts.unique):
                tc = self.target_cols(ts, col_names, cols, (*base, "unique", i), "a unique constraint")
                if tc:
                    uniques.append(TargetUnique(constraint_name(tname, *tc, suffix="key"), tc))
        else:
            for ix in table.indexes:
                if ix.is_constraint and ix.has_expressions:
                    continue  # a unique index on what the collation compares: see target_indexes
                if ix.is_constraint:
                    tc = self.target_cols(
                        ts, col_names, ix.columns, base, f"unique constraint on ({', '.join(ix.columns)})"
                    )
                    if tc:
                        own = ix.constraint_name and fit_name(
                            target_name(ix.constraint_name, self.spec.naming)
                        )
                        uniques.append(TargetUnique(own or constraint_name(tname, *tc, suffix="key"), tc))
        return uniques

    def target_indexes(
        self,
        table: Table,
        ts: TableSpec,
        base: tuple[str, ...],
        tname: str,
        col_names: dict[str, str],
        kinds: dict[str, TargetColumnRef],
    ) -> list[TargetIndex]:
        """The spec's indexes, or else the source's that are not constraints, translated."""
        indexes = []
        if ts.indexes is not None:
            for i, spec_ix in enumerate(ts.indexes):
                built = self.spec_index(spec_ix, ts, (*base, "indexes", i), tname, col_names, kinds)
                if built:
                    indexes.append(built)
            self.left_out += self.indexes_left_out(table, indexes, kinds)
        else:
            for ix in table.indexes:
                if not ix.is_constraint:
                    built = self.source_index(ix, table, kinds, col_names, base)
                    if built:
                        indexes.append(built)
        if ts.unique is not None:
            self.left_out += self.indexes_left_out(table, indexes, kinds, constraints=True)
        else:
            # A UNIQUE constraint (or primary key) comparing with a collation is a unique index
            # on what the collation compares: never weaker than SQLite's.
            for ix in table.indexes:
                if ix.is_constraint and ix.has_expressions:
                    if any(
                        k.column is None and translate_index_key(k.expression or "", kinds) is None
                        for k in ix.keys
                    ):
                        shown = ", ".join(k.column or k.expression or "?" for k in ix.keys)
                        self.problem(
                            base,
                            f"unique constraint on ({shown}) cannot be translated to PostgreSQL (it compares "
                            "with a collation PostgreSQL cannot express exactly for its type); replace this "
                            "table's `unique`",
                        )
                        continue
                    built = self.source_index(ix, table, kinds, col_names, base)
                    if built:
                        named = [k.column or collated_column(k.expression or "") or "expr" for k in ix.keys]
                        name = constraint_name(
                            tname, *(kinds[c].name if c in kinds else c for c in named), suffix="key"
                        )
                        indexes.append(replace(built, name=fit_name(name)))
        return indexes

    def target_foreign_keys(
        self,
        table: Table,
        ts: TableSpec,
        base: tuple[str, ...],
        tname: str,
        col_names: dict[str, str],
        table_names: dict[str, str],
    ) -> list[TargetForeignKey]:
        """The spec's foreign keys, or else the source's, each to a migrated table and columns."""
        fks = []
        source_fks: list[tuple[tuple[str | int, ...], ForeignKey]]
        if ts.foreign_keys is not None:
            source_fks = [
                (
                    ("foreign_keys", i),
                    ForeignKey(f.columns, f.ref_table, f.ref_columns, f.on_delete, f.on_update, f.deferrable),
                )
                for i, f in enumerate(ts.foreign_keys)
            ]
        else:
            source_fks = [((), fk) for fk in table.foreign_keys]
        for sub, fk in source_fks:
            path = (*base, *sub)
            tc = self.target_cols(ts, col_names, fk.columns, path, f"the foreign key to '{fk.ref_table}'")
            if fk.ref_table not in table_names:
                exists = self.source.table(fk.ref_table) is not None
                why = (
                    "is not migrated (include it, or replace this table's foreign_keys)"
                    if exists
                    else "does not exist in the source"
                    + _did_you_mean(fk.ref_table, [t.name for t in self.source.tables])
                )
                self.problem(
                    path,
                    f"foreign key ({', '.join(fk.columns)}) references table '{fk.ref_table}', which {why}",
                )
                continue
            parent = self.source.table(fk.ref_table)
            parent_spec = self.spec.tables.get(fk.ref_table) or TableSpec()
            parent_cols = {
                c.name: (parent_spec.columns.get(c.name) or ColumnSpec()).name
                or target_name(c.name, self.spec.naming)
                for c in (parent.columns if parent else ())
                if c.name not in parent_spec.exclude_columns
            }
            missing = [c for c in fk.ref_columns if c not in parent_cols]
            if missing:
                source_cols = [c.name for c in (parent.columns if parent else ())]
                why = (
                    "is not migrated (it is in exclude_columns)"
                    if missing[0] in source_cols
                    else f"does not exist{_did_you_mean(missing[0], source_cols)}"
                )
                self.problem(
                    path, f"foreign key references column '{missing[0]}' of '{fk.ref_table}', which {why}"
                )
                continue
            if tc:
                fks.append(
                    TargetForeignKey(
                        constraint_name(tname, *tc, suffix="fkey"),
                        tc,
                        table_names[fk.ref_table],
                        tuple(parent_cols[c] for c in fk.ref_columns),
                        fk.on_delete,
                        fk.on_update,
                        Deferral(fk.deferrable),
                    )
                )
        return fks

    def mode_and_watermark(
        self,
        table: Table,
        ts: TableSpec,
        base: tuple[str, ...],
        col_names: dict[str, str],
        pk: tuple[str, ...],
    ) -> tuple[Mode, str | None]:
        """The table's load mode and its watermark's target column: append needs a watermark,
        only append takes one, and upsert needs a primary key."""
        mode = ts.mode or self.spec.mode
        watermark = None
        if ts.watermark is not None:
            if ts.watermark not in col_names:
                self.problem(
                    (*base, "watermark"),
                    f"no migrated column '{ts.watermark}' in table '{table.name}'{_did_you_mean(ts.watermark, list(col_names))}",
                )
            else:
                watermark = col_names[ts.watermark]
            if mode != Mode.APPEND:
                self.problem((*base, "watermark"), f"a watermark applies to mode: append, not mode: {mode}")
        elif mode == Mode.APPEND:
            self.problem(
                (*base, "mode") if ts.mode else ("mode",),
                f"mode: append needs a `watermark` column for table '{table.name}' (e.g. its id or createdAt)",
            )
        if mode == Mode.UPSERT and not pk:
            self.problem(
                (*base, "mode") if ts.mode else ("mode",),
                f"mode: upsert matches rows by primary key, and table '{table.name}' has none"
                + (" (a query's table has the key its `primary_key` gives)" if table.query else "")
                + "; give it a `primary_key` or use mode: sync",
            )
        return mode, watermark

    def column_type(
        self, declared: str, cs: ColumnSpec, at, computed: bool
    ) -> tuple[PgType | None, Converter]:
        """The column's type and converter: its own settings first, then the first type rule
        matching its declared type, then the built-in default. A converter describes how the
        *data* is stored, so a rule's converter still applies when the column only changes the type."""
        normalized = " ".join(declared.upper().split())
        rule = None
        if not computed:
            index, rule = next(
                (
                    (i, r)
                    for i, r in enumerate(self.spec.type_rules)
                    if fnmatch.fnmatchcase(normalized, r.declared.upper())
                ),
                (None, None),
            )
            if index is not None and rule is not None:
                # A rule's converter still reads a column that only sets its type.
                own = cs.type is not None and (rule.converter is None or cs.converter is not None)
                self.rule_matches.setdefault(index, []).append(own)
        converter = cs.converter or (rule.converter if rule else None) or Converter.AUTO
        if cs.type is not None:
            return cs.type, converter
        if computed:
            self.problem(at, "a computed column needs a `type`", key=True)
            return None, Converter.AUTO
        if rule and rule.keeps_length:
            return self.declared_length_type(declared, rule.type, at), converter
        return (rule.type if rule else default_pg_type(declared)), converter

    def declared_length_type(self, declared: str, varchar: PgType, at) -> PgType:
        """varchar with the length the declared type gives (VARCHAR(255) -> varchar(255)); plain
        varchar, which holds any length, where it gives none."""
        length = re.search(r"\(\s*([0-9]+)\s*\)", declared)
        if length is None:
            return varchar
        n = int(length.group(1))
        if not 1 <= n <= MAX_VARCHAR_LENGTH:
            self.problem(
                at,
                f"declared type {declared} gives length {n}, and PostgreSQL's varchar(n) takes 1 to "
                f"{MAX_VARCHAR_LENGTH}; give the column a `type`",
                key=True,
            )
        return replace(varchar, modifiers=(min(max(n, 1), MAX_VARCHAR_LENGTH),))

    def column_default(
        self, source_default: str | None, cs: ColumnSpec, pg_type: PgType, at, table: str, column: str
    ):
        if cs.has_default:
            value = cs.default
            if value is None:
                return None
            if isinstance(value, SqlDefault):
                return sql.SQL(value.sql)
            if isinstance(value, bool):
                return (
                    sql.SQL("true" if value else "false")
                    if pg_type.kind == "boolean"
                    else sql.Literal(int(value))
                )
            return sql.Literal(value)
        if source_default is None:
            return None
        translated = translate_default(source_default, pg_type.kind)
        if translated is None:
            self.problem(
                at if column in (self.spec.tables.get(table) or TableSpec()).columns else ("tables", table),
                f"column '{column}': default {source_default} has no PostgreSQL equivalent for {pg_type.sql()}; "
                f"set tables.{table}.columns.{column}.default (null for none)",
            )
            return None
        return None if translated == sql.SQL("NULL") else translated

    def spec_index(
        self,
        spec_ix: IndexSpec,
        ts: TableSpec,
        at: tuple[str | int, ...],
        tname: str,
        col_names: dict[str, str],
        kinds: dict[str, TargetColumnRef],
    ) -> TargetIndex | None:
        """A spec's index: each key a column (in an order, under a collation) or a SQLite
        expression translated for PostgreSQL; None (with a problem for each key) when a key
        cannot be."""
        keys: list[sql.Composable] = []
        named: list[str] = []
        for j, key in enumerate(spec_ix.keys):
            path = (*at, "columns", j)
            if (key.column is None) == (key.expression is None) or (key.expression and key.collate):
                self.problem(
                    path,
                    "an index key is a `column` (with `order`, `nulls`, `collate`) or an `expression` "
                    "(with `order`, `nulls`; a collation is written inside it): give one of them",
                )
                continue
            if key.expression is not None:
                part = self.index_expression(key.expression, (*path, "expression"), ts, kinds, spec_ix.unique)
                named.append("expr")
            else:
                column = key.column or ""
                is_plain = key == IndexKeySpec(column=column)
                tc = self.target_cols(
                    ts, col_names, (column,), path if is_plain else (*path, "column"), "an index"
                )
                part = None
                if tc and column in kinds:
                    part = translate_collated(kinds[column], key.collate or "binary")
                    if part is None:
                        self.problem(
                            (*path, "collate"),
                            f"collate {key.collate} compares text, and column '{column}' is not text in "
                            "PostgreSQL; remove `collate`",
                        )
                elif tc:  # a column whose type did not resolve: reported there
                    part = sql.Identifier(tc[0])
                named.append(tc[0] if tc else column)
            if part is not None:
                keys.append(ordered_key(part, key.descending, key.nulls))
        if len(keys) != len(spec_ix.keys):
            return None
        if spec_ix.name and len(spec_ix.name.encode()) > MAX_NAME_BYTES:
            self.problem((*at, "name"), f"index name '{spec_ix.name}' is longer than PostgreSQL's 63 bytes")
        name = spec_ix.name or constraint_name(tname, *named, suffix="key" if spec_ix.unique else "idx")
        where = sql.SQL(spec_ix.where) if spec_ix.where else None
        return TargetIndex(name, tuple(keys), spec_ix.unique, where)

    def index_expression(
        self,
        text: str,
        at: tuple[str | int, ...],
        ts: TableSpec,
        kinds: dict[str, TargetColumnRef],
        unique: bool,
    ) -> sql.Composable | None:
        """An index key's SQLite expression, translated; None with a problem saying why not."""
        shape = one_expression_problem(text, SQLITE)
        if shape:
            self.problem(at, f"not one SQLite expression: {shape}")
            return None
        translated = translate_index_key(text, kinds, unique)
        if translated is None:
            unknown = unknown_name(text, kinds)
            if unknown in ts.exclude_columns:
                why = f"it uses column '{unknown}', which is excluded"
            elif unknown is not None:
                why = (
                    f"it uses '{unknown}', which is not a column of the table{_did_you_mean(unknown, kinds)}"
                )
            else:
                why = untranslated_part(text)
            self.problem(at, f"index expression {text} cannot be translated to PostgreSQL: {why}")
        return translated

    def indexes_left_out(
        self,
        table: Table,
        kept: list[TargetIndex],
        kinds: dict[str, TargetColumnRef],
        constraints: bool = False,
    ) -> list[LeftOut]:
        """The source's indexes (CREATE INDEX) that a spec's list of indexes does not hold, by
        name or by definition, or with `constraints` its unique constraints under a collation
        (which a spec's `unique` list cannot hold): named, never dropped in silence."""
        out = []
        names = {ix.name for ix in kept}
        definitions = {_index_definition(ix) for ix in kept}
        for ix in table.indexes:
            if ix.is_constraint != constraints or (constraints and not ix.has_expressions):
                continue
            built = self.source_index(ix, table, kinds, {c: r.name for c, r in kinds.items()}, None)
            if built is not None and _index_definition(built) in definitions:
                continue
            if constraints:
                keys = ", ".join(k.expression or quote_ident(k.column or "") for k in ix.keys)
                why = "not in the spec's unique or indexes"
                out.append(LeftOut(table.name, "unique constraint", "", f"UNIQUE ({keys})", why))
            elif fit_name(target_name(ix.name, self.spec.naming)) not in names:
                why = "not in the spec's indexes"
                out.append(LeftOut(table.name, "index", ix.name, source_index_text(ix), why))
        return out

    def source_index(
        self, ix: Index, table: Table, kinds: dict[str, TargetColumnRef], col_names: dict[str, str], base
    ) -> TargetIndex | None:
        """The SQLite index, translated; None when it cannot be (a problem says why, unless `base`
        is None: the caller only asks)."""
        keys: list[sql.Composable] = []
        for key in ix.keys:
            if key.column is not None:
                if key.column not in col_names:
                    if base is not None:
                        self.problem(
                            base,
                            f"index '{ix.name}' uses column '{key.column}', which is excluded; replace this table's `indexes`",
                        )
                    return None
                part: sql.Composable = sql.Identifier(col_names[key.column])
            else:
                translated = translate_index_key(key.expression or "", kinds, ix.unique)
                if translated is None:
                    if base is not None:
                        self.problem(
                            base,
                            f"index '{ix.name}' on expression {key.expression} cannot be translated to PostgreSQL; replace this table's `indexes`",
                        )
                    return None
                part = translated
            keys.append(ordered_key(part, key.descending))
        where = None
        if ix.where:
            where = translate_expression(ix.where, kinds)
            if where is None:
                if base is not None:
                    self.problem(
                        base,
                        f"partial index '{ix.name}' has a WHERE clause that cannot be translated ({ix.where}); replace this table's `indexes`",
                    )
                return None
        return TargetIndex(fit_name(target_name(ix.name, self.spec.naming)), tuple(keys), ix.unique, where)

    # -- load order -----------------------------------------------------------------------------

    def load_order(self, chosen: list[Table]) -> list[str]:
        names = [t.name for t in chosen]
        migrated = set(names)
        parents = {
            t.name: {
                fk.ref_table for fk in self.fks_of(t) if fk.ref_table in migrated and fk.ref_table != t.name
            }
            for t in chosen
        }
        if self.spec.load_order is None:
            return topological_order(names, parents)
        order = list(self.spec.load_order)
        listed = set(order)
        first_at: dict[str, int] = {}
        for i, name in enumerate(order):
            if name not in migrated:
                self.problem(
                    ("load_order", i), f"'{name}' is not a migrated table{_did_you_mean(name, names)}"
                )
            elif first_at.setdefault(name, i) != i:
                self.problem(("load_order", i), f"'{name}' is listed twice")
        for name in names:
            if name not in listed:
                self.problem(("load_order",), f"table '{name}' is missing from load_order")
        position = {n: i for i, n in reversed(list(enumerate(order)))}
        cyclic = _cyclic(names, parents)
        for i, name in enumerate(order):
            for parent in sorted(parents.get(name, ())):
                if parent in position and position[parent] > i and not (name in cyclic and parent in cyclic):
                    self.problem(
                        ("load_order", i),
                        f"'{name}' is loaded before '{parent}', which its foreign key references",
                    )
        return [n for n in order if n in migrated] if not self.problems else names

    def fks_of(self, table: Table):
        ts = self.spec.tables.get(table.name)
        if ts and ts.foreign_keys is not None:
            return ts.foreign_keys
        return table.foreign_keys


def _cyclic(names: list[str], parents: dict[str, set[str]]) -> set[str]:
    order = topological_order(names, parents, strict=True)
    return set(names) - set(order)


def topological_order(names: list[str], parents: dict[str, set[str]], strict: bool = False) -> list[str]:
    """Parents before children, keeping source order; tables on a cycle keep their source order
    (foreign keys are added after every row is loaded, so a cycle loads correctly).

    In rounds: each round takes, in source order, every table whose parents all came in earlier
    rounds; when none can come, the first remaining one (strict: stop there). Each table's
    parents are counted down as they come, so a chain of 10,000 tables costs 10,000 steps, not
    10,000 scans of the tables left."""
    position = {n: i for i, n in enumerate(names)}
    unmet = {n: len(parents[n]) for n in names}
    children: dict[str, list[str]] = {}
    for n in names:
        for parent in parents[n]:
            children.setdefault(parent, []).append(n)
    remaining = dict.fromkeys(names)
    done: list[str] = []
    ready = [n for n in names if unmet[n] == 0]
    while remaining:
        if not ready:
            if strict:
                return done
            ready = [next(iter(remaining))]
        for n in ready:
            done.append(n)
            del remaining[n]
        after: list[str] = []
        for n in ready:
            for child in children.get(n, ()):
                unmet[child] -= 1
                if unmet[child] == 0 and child in remaining:
                    after.append(child)
        ready = sorted(after, key=position.__getitem__)
    return done


def resolve(spec: Spec, source: Catalog) -> DesiredSchema:
    return with_unit_recipes(_Resolver(spec, source).resolve())


def datetime_columns_to_measure(mapping: DesiredSchema) -> dict[str, list[TargetColumn]]:
    """Per source table, the `auto` datetime columns whose integer unit depends on the data."""
    wanted: dict[str, list[TargetColumn]] = {}
    for table in mapping.tables:
        for column in table.columns:
            if measures_unit(column):
                wanted.setdefault(table.source, []).append(column)
    return wanted


def measures_unit(column: TargetColumn) -> bool:
    """An `auto` datetime column: its integer unit is decided from the integers it holds."""
    return (
        column.pg_type.kind in ("timestamp", "timestamptz", "date")
        and column.conversion.converter == Converter.AUTO
    )


def with_unit_recipes(mapping: DesiredSchema) -> DesiredSchema:
    """The mapping with each table's `unit_recipe`: what, besides its source's rows, decides the
    integer units of its source's `auto` datetime columns (see validate.measure). A table whose
    source table's rows are provably unchanged keeps its units while the recipe stays the same, so
    a re-sync needs no measuring of a table it skips."""
    wanted = datetime_columns_to_measure(mapping)
    first: dict[str, TargetTable] = {}
    for table in mapping.tables:
        first.setdefault(table.source, table)
    tables = []
    for table in mapping.tables:
        columns = wanted.get(table.source)
        if columns:
            measured = first[table.source]
            recipe = repr(
                (
                    measured.sqlite_relation,
                    measured.where,
                    [(c.name, c.conversion.source_sql) for c in columns],
                )
            )
            table = replace(table, unit_recipe=recipe)
        tables.append(table)
    return replace(mapping, tables=tuple(tables))


def with_integer_units(
    mapping: DesiredSchema, magnitudes: dict[tuple[str, str], tuple[int | None, int | None]]
) -> DesiredSchema:
    """The mapping with each measured `auto` datetime column's integer unit fixed for the column.

    `magnitudes` maps (source table, target column) to its smallest and largest absolute integer."""
    tables = []
    for table in mapping.tables:
        columns = []
        for column in table.columns:
            key = (table.source, column.name)
            if key in magnitudes:
                unit, mixed = integer_unit(*magnitudes[key])
                conversion = replace(column.conversion, integer_unit=unit, mixed_units=mixed)
                column = replace(column, conversion=conversion)
            columns.append(column)
        tables.append(replace(table, columns=tuple(columns)))
    return replace(mapping, tables=tuple(tables))


def zero_signs_to_measure(mapping: DesiredSchema, names: set[str] | None = None) -> list[TargetTable]:
    """The tables (those named, by target name; None: all) with a column whose -0.0 keeps its sign
    (ValueConversion.signed_zeros)."""
    return [
        t
        for t in mapping.tables
        if (names is None or t.name in names) and any(c.conversion.signed_zeros for c in t.columns)
    ]


def with_negative_zeros(
    mapping: DesiredSchema, runs: dict[str, dict[str, tuple[tuple[int, int], ...]]]
) -> DesiredSchema:
    """The mapping with the rowid ranges of each measured column's -0.0 values (by target table,
    then target column) in its conversion."""
    tables = []
    for table in mapping.tables:
        found = runs.get(table.name)
        if found:
            table = replace(
                table,
                columns=tuple(
                    replace(c, conversion=replace(c.conversion, negative_zeros=found[c.name]))
                    if found.get(c.name)
                    else c
                    for c in table.columns
                ),
            )
        tables.append(table)
    return replace(mapping, tables=tuple(tables))


def _rowid_key(
    table: Table, columns: list[TargetColumn], pk: tuple[str, ...], rowid: str | None
) -> str | None:
    """The target column holding the source's rowid unchanged, when it is the whole primary key."""
    alias = table.rowid_alias
    if rowid is None or alias is None or table.query is not None or len(pk) != 1:
        return None
    column = next((c for c in columns if c.name == pk[0]), None)
    if (
        column is None
        or column.conversion.column != alias
        or column.conversion.source_sql != quote_ident(alias)
        or column.pg_type.kind != "integer"
        or column.pg_type.name == "oid"
        or column.conversion.converter != Converter.AUTO
        or column.generated is not None
    ):
        return None
    return column.name


def with_row_ranges(
    mapping: DesiredSchema,
    ranges: dict[str, tuple[tuple[int, int], ...]],
    counts: dict[str, int] | None = None,
    largest: dict[str, int] | None = None,
) -> DesiredSchema:
    """The mapping with the rowid ranges each large source table is loaded in, row counts, and
    the size of each table's largest record."""
    counts, largest = counts or {}, largest or {}
    return replace(
        mapping,
        tables=tuple(
            replace(
                t,
                row_ranges=ranges.get(t.source, ()),
                source_rows=counts.get(t.source),
                largest_row=largest.get(t.source, 0),
            )
            for t in mapping.tables
        ),
    )
