"""The DuckDB queries that move rows: SQLite's side of each row (every value as storage class and
lossless text, or DuckDB's own typed scan where it is proven exact), the conversions into the
target's types, the rows a load rejects, and the INSERT into the attached PostgreSQL table. Built
with duck.quote_ident/quote_literal, the one quoting helper for DuckDB SQL."""

from __future__ import annotations

import json

from etl.core.mapping import TargetForeignKey, TargetTable
from etl.duck import quote_ident, quote_literal
from etl.run.problem import problem_sql, raise_sql, template
from etl.run.session import SOURCE_ALIAS, TARGET_ALIAS
from etl.run.typedscan import typed_rows_query
from etl.settings import OnError
from etl.sqlite.convert import duck_expressions, invalid_utf8, sqlite_render
from etl.sqlite.pages import HIGHEST, LOWEST


def sqlite_select(
    table: TargetTable, row_range: tuple[int, int] | None = None, rowids: tuple[tuple[int, int], ...] = ()
) -> str:
    """The query SQLite runs: every value as (storage class, lossless text), plus the row's key.
    `rowids`: only the rows in these inclusive rowid ranges."""
    items = []
    for i, column in enumerate(table.columns):
        expr = column.conversion.source_sql
        negative = column.conversion.negative_zeros
        items.append(f"typeof({expr}) AS t{i}")
        items.append(
            f"{sqlite_render(expr, _any_range(table.rowid, negative) if negative and table.rowid else None)} AS v{i}"
        )
    for i, (_label, expr) in enumerate(table.key_sql):
        items.append(f"quote({expr}) AS k{i}")
    relation = _in_ranges(table, rowids) if rowids and table.rowid else table.sqlite_relation
    query = f"SELECT {', '.join(items)} FROM {relation}"
    conditions = [f"({table.where})"] if table.where else []
    if row_range is not None and table.rowid:
        conditions.append(f"{table.rowid} BETWEEN {int(row_range[0])} AND {int(row_range[1])}")
    if conditions:
        query += " WHERE " + " AND ".join(conditions)
    return query


def _in_ranges(table: TargetTable, ranges: tuple[tuple[int, int], ...]) -> str:
    """SQLite relation: the rows of the table whose rowid lies in one of `ranges`, named as the
    table, with its rowid as a column of that name (so that the query reads it as it reads the
    table). The ranges are one JSON array, read by json_each and joined to the table: SQLite
    seeks each range through the rowid and reads its rows in order, with a plan made in constant
    time whatever the number of ranges (a condition of N ranges takes time growing faster than
    N), and DuckDB binds one short query. SQLite flattens the subquery into the query. Every name
    in it is qualified, so none of the table's columns clashes with json_each's."""
    assert table.rowid is not None and table.query is None
    data = json.dumps([[int(low), int(high)] for low, high in ranges], separators=(",", ":"))
    rowid, name = table.rowid, quote_ident(table.source)
    return (
        f"(SELECT etl_t.*, etl_t.{rowid} AS {rowid} FROM json_each({quote_literal(data)}) AS etl_j "
        f"JOIN {name} AS etl_t ON etl_t.{rowid} BETWEEN etl_j.value ->> 0 AND etl_j.value ->> 1) AS {name}"
    )


def _any_range(rowid: str, ranges: tuple[tuple[int, int], ...]) -> str:
    """SQLite condition: the rowid lies in one of `ranges`, as ORs nested in halves: SQLite limits
    an expression's depth, not the terms of an OR, and seeks each range through the rowid."""
    if len(ranges) == 1:
        # An end at the smallest or largest rowid there can be is open.
        low, high = ranges[0]
        bounds = [f"{rowid} >= {int(low)}"] if low > LOWEST else []
        bounds += [f"{rowid} <= {int(high)}"] if high < HIGHEST else []
        return f"({' AND '.join(bounds) or '1'})"
    half = len(ranges) // 2
    return f"({_any_range(rowid, ranges[:half])} OR {_any_range(rowid, ranges[half:])})"


def row_key(table: TargetTable) -> str:
    """DuckDB expression of the current row's key, e.g. `id='ck1'`; NULL for a table without one."""
    if not table.key_sql:
        return "NULL"
    parts = []
    for i, (label, _expr) in enumerate(table.key_sql):
        # A key that is not valid UTF-8 is shown as hex: the message must stay printable.
        # k is SQLite's quote() of the key: for text, '...' around the bytes (27 in hex).
        hexed = f"hex(encode(k{i}))"
        key = (
            f"CASE WHEN {invalid_utf8(f'k{i}')} "
            f"THEN 'X''' || substr({hexed}, 3, length({hexed}) - 4) || '''' ELSE k{i} END"
        )
        parts.append(f"{quote_literal(label + '=')} || {key}")
    return " || ', ' || ".join(parts)


def checked_relation(
    schema: str,
    table: TargetTable,
    row_range: tuple[int, int] | None,
    rowids: tuple[tuple[int, int], ...] = (),
) -> str:
    """DuckDB relation of the table's rows: converted values c0.., raw storage class and text
    t0../v0.., the key k0.., each column's reason template why0.. (convert.DuckExpressions), and
    `problem` (NULL, or why the row cannot arrive exactly)."""
    values, reasons, problems = [], [], []
    for i, column in enumerate(table.columns):
        t, v = f"t{i}", f"v{i}"
        exprs = duck_expressions(column.conversion, t, v, named=f"c{i}")  # the reasons read c{i}
        values.append(exprs.value)
        reasons.append(f"{exprs.reason} AS why{i}")
        if not column.nullable:
            not_null = quote_literal("is NULL, but the target column is NOT NULL")
            problems.append(problem_sql(column.name, not_null, when=f"{t} = 'null'"))
        problems.append(problem_sql(column.name, f"why{i}", exprs.found))  # found once, here
    inner = ", ".join(f"{value} AS c{i}" for i, value in enumerate(values))
    keys = "".join(f", k{i}" for i in range(len(table.key_sql)))
    raw = ", ".join(f"t{i}, v{i}" for i in range(len(values)))
    source = f"sqlite_query({quote_literal(SOURCE_ALIAS)}, {quote_literal(sqlite_select(table, row_range, rowids))})"
    rows = f"(SELECT {inner}, {raw}{keys} FROM {source}) AS x"
    joins, flags = _orphan_joins(schema, table, problems)
    problem = f"COALESCE({', '.join(problems)})" if problems else "NULL"
    why = "".join(f", {r}" for r in reasons)
    checked = (
        f"(SELECT *, {problem} AS problem FROM (SELECT *{why} FROM (SELECT x.*{flags} FROM {rows}{joins})))"
    )
    if table.self_checks and not table.row_ranges:
        return _self_checked(table, checked)
    return checked


def _self_checked(table: TargetTable, checked: str) -> str:
    """`checked` with rows whose foreign key onto the table itself matches none of its rows that
    arrive (recursively: the children of a rejected row follow it) marked as a problem."""
    position = {c.name: i for i, c in enumerate(table.columns)}
    ctes, marks = [], []
    for n, index in enumerate(table.self_checks):
        fk = table.foreign_keys[index]
        child = [f"c{position[c]}" for c in fk.columns]
        parent = [f"c{position[c]}" for c in fk.ref_columns]
        bad = f"etl_bad{n}"
        set_ = " AND ".join(f"r.{c} IS NOT NULL" for c in child)
        on_parent = " AND ".join(f"p.{p} = r.{c}" for p, c in zip(parent, child, strict=True))
        on_bad = " AND ".join(f"b.k{m} = r.{c}" for m, c in enumerate(child))
        keys = ", ".join(f"r.{p} AS k{m}" for m, p in enumerate(parent))
        ctes.append(
            f"{bad} AS (SELECT {keys} FROM etl_checked r WHERE r.problem IS NULL AND {set_} AND NOT EXISTS "
            f"(SELECT 1 FROM etl_checked p WHERE p.problem IS NULL AND {on_parent}) "
            f"UNION SELECT {keys} FROM etl_checked r JOIN {bad} b ON {on_bad} WHERE r.problem IS NULL)"
        )
        is_bad = " AND ".join(f"b.k{m} = etl_checked.{p}" for m, p in enumerate(parent))
        shown = " || ', ' || ".join(f"CAST({c} AS VARCHAR)" for c in child)
        missing = f"EXISTS (SELECT 1 FROM {bad} b WHERE {is_bad})"
        marks.append(problem_sql(None, _orphan_reason(fk, table.name), shown, when=missing))
    return (
        f"(WITH RECURSIVE etl_checked AS MATERIALIZED {checked}, {', '.join(ctes)} "
        f"SELECT * REPLACE (COALESCE(problem, {', '.join(marks)}) AS problem) FROM etl_checked)"
    )


def _orphan_joins(schema: str, table: TargetTable, problems: list[str]) -> tuple[str, str]:
    """LEFT JOINs against the parents already loaded in this transaction, for on_error: reject:
    a row whose foreign key matches no parent row becomes a problem (appended to `problems`)."""
    position = {c.name: i for i, c in enumerate(table.columns)}
    joins, flags = "", ""
    for n, index in enumerate(table.orphan_checks):
        fk = table.foreign_keys[index]
        alias = f"p{n}"
        parent = f"{TARGET_ALIAS}.{quote_ident(schema)}.{quote_ident(fk.ref_table)}"
        refs = ", ".join(f"{quote_ident(rc)} AS r{m}" for m, rc in enumerate(fk.ref_columns))
        on = " AND ".join(f"x.c{position[cc]} = {alias}.r{m}" for m, cc in enumerate(fk.columns))
        joins += f" LEFT JOIN (SELECT DISTINCT {refs}, true AS present FROM {parent}) AS {alias} ON {on}"
        flags += f", {alias}.present AS fk{n}"
        set_ = " AND ".join(f"c{position[cc]} IS NOT NULL" for cc in fk.columns)
        shown = " || ', ' || ".join(f"CAST(c{position[cc]} AS VARCHAR)" for cc in fk.columns)
        reason = _orphan_reason(fk, fk.ref_table)
        problems.append(problem_sql(None, reason, shown, when=f"{set_} AND fk{n} IS NULL"))
    return joins, flags


def _orphan_reason(fk: TargetForeignKey, parent: str) -> str:
    """DuckDB literal: the reason template of a row whose foreign key names no `parent` row."""
    columns, refs = ", ".join(fk.columns), ", ".join(fk.ref_columns)
    return quote_literal(
        template(f'foreign key ({columns}) references no "{parent}" row with ({refs}) = (', ")")
    )


def source_rows_query(
    schema: str,
    table: TargetTable,
    row_range: tuple[int, int] | None = None,
    loaded: bool = False,
    into_postgres: bool = False,
    rowids: tuple[tuple[int, int], ...] = (),
) -> str:
    """DuckDB SQL yielding the table's rows as they must arrive (columns c0, c1, ...); `rowids`: only
    those in these rowid ranges. A row that
    cannot arrive exactly raises, naming it; with on_error: reject it is left out instead.
    A table proven to read exactly through DuckDB's own scan reads through it (etl/run/typedscan.py);
    `loaded`: rows this query has just loaded, whose typed read need not look for problems again;
    `into_postgres`: rows written straight to the target, which checks some values itself."""
    if table.scan is not None and row_range is None and not rowids:
        return typed_rows_query(SOURCE_ALIAS, table, checked=not loaded, into_postgres=into_postgres)
    names = [f"c{i}" for i in range(len(table.columns))]
    relation = checked_relation(schema, table, row_range, rowids)
    if table.on_error == OnError.REJECT:
        return f"SELECT {', '.join(names)}\nFROM {relation} WHERE problem IS NULL"
    if names:
        # The check rides on a column that is written: a generated one is not, and would go unread.
        g = table.loaded_columns[0] if table.loaded_columns else 0
        raised = raise_sql(table.source, row_key(table), "problem")
        names[g] = f"CASE WHEN problem IS NULL THEN c{g} ELSE {raised} END AS c{g}"
    return f"SELECT {', '.join(names)}\nFROM {relation}"


def rejects_query(schema: str, table: TargetTable, row_range: tuple[int, int] | None = None) -> str:
    """The rows that cannot arrive exactly: key, problem (problem.value_problem reads them), and
    each raw value as (storage class, bytes)."""
    raw = ", ".join(f"t{i}, encode(v{i})" for i in range(len(table.columns)))
    return (
        f"SELECT {row_key(table)} AS key, CAST(problem AS VARCHAR){', ' + raw if raw else ''}\n"
        f"FROM {checked_relation(schema, table, row_range)} WHERE problem IS NOT NULL"
    )


def insert_query(schema: str, table: TargetTable, rows_sql: str) -> str:
    """DuckDB SQL writing the rows of `rows_sql` (one column per target column) to PostgreSQL."""
    target = f"{TARGET_ALIAS}.{quote_ident(schema)}.{quote_ident(table.name)}"
    loaded = table.loaded_columns
    columns = ", ".join(quote_ident(table.columns[i].name) for i in loaded)
    if len(loaded) < len(table.columns):  # PostgreSQL computes the generated ones
        rows_sql = f"SELECT {', '.join(f'c{i}' for i in loaded)} FROM ({rows_sql})"
    return f"INSERT INTO {target} ({columns})\n{rows_sql}"


def load_query(schema: str, table: TargetTable, row_range: tuple[int, int] | None = None) -> str:
    """DuckDB SQL that converts every row and writes it to PostgreSQL, or raises naming the first
    row that cannot arrive exactly."""
    return insert_query(schema, table, source_rows_query(schema, table, row_range, into_postgres=True))
