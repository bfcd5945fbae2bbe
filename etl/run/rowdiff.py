"""Row diffs, set-based in DuckDB: the source through the spec's conversions against the target
as it is, matched by primary key (tables without one: as multisets of rows).

Each side is reduced to (key, hash of the row's normalized values) — the normalization
verification uses — and the two are joined: a key only in the source is an insert, only in the
target a delete, in both with different hashes an update. `plan` counts; `apply` stages the rows
that differ in PostgreSQL and applies them with three set-based statements.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor, wait

import duckdb
from psycopg import sql

from etl.core.mapping import TargetColumn, TargetTable
from etl.core.plan import RowChange, RowDiff
from etl.duck import configure, quote_ident, quote_literal
from etl.model import PgTable
from etl.run.load import source_rows_query
from etl.run.session import TARGET_ALIAS
from etl.run.verify import (
    compared_value,
    digested,
    merged_ranges,
    range_batches,
    register_functions,
    row_hash,
    rows_in_ranges,
    target_relation,
)
from etl.settings import Mode


def keyed(table: TargetTable) -> bool:
    return bool(table.primary_key)


def _positions(table: TargetTable) -> dict[str, int]:
    return {c.name: i for i, c in enumerate(table.columns)}


def _norm(column: TargetColumn, expr: str, side: str, digest: bool = False) -> str:
    return compared_value(column, expr, side, exact_text=True, digest=digest) or expr


def _source_norms(table: TargetTable, prefix: str = "c") -> list[str]:
    return [_norm(c, f"{prefix}{i}", "source", digested(table, c)) for i, c in enumerate(table.columns)]


def _target_norms(table: TargetTable) -> list[str]:
    return [_norm(c, quote_ident(c.name), "target", digested(table, c)) for c in table.columns]


def _hash(norms: list[str]) -> str:
    return f"hash({', '.join(norms)})" if norms else "0"


def _key_items(table: TargetTable, norms: list[str]) -> str:
    position = _positions(table)
    return "".join(f", {norms[position[k]]} AS k{j}" for j, k in enumerate(table.primary_key))


def key_names(table: TargetTable) -> list[str]:
    """The columns matching a row of one side to the other: the key, or (no key) the row's hash
    and its occurrence number among equal rows."""
    return [f"k{j}" for j in range(len(table.primary_key))] if keyed(table) else ["h", "n"]


def key_join(table: TargetTable, left: str, right: str) -> str:
    return " AND ".join(f"{left}.{n} = {right}.{n}" for n in key_names(table))


def target_keys_sql(
    schema: str,
    table: TargetTable,
    current: PgTable | None = None,
    columns: bool = False,
    where: sql.Composable | None = None,
    rows: sql.Composable | None = None,
) -> str:
    """DuckDB SQL: the target's rows as key columns k0.., h (row hash) [, hs (per-column hashes)];
    without a key: h, n (occurrence of that hash) and etl_ctid (to delete one copy of a row).
    `rows`: a relation read instead of the whole table (target_select's `relation`)."""
    extra = () if keyed(table) else ("ctid::text AS etl_ctid",)
    relation = target_relation(schema, table, current, extra, where, rows)
    keep = "" if keyed(table) else "etl_ctid"
    if columns and not keyed(table):
        plain = [_norm(c, quote_ident(c.name), "target") for c in table.columns]
        keep += f", {_values_label(table, plain)} AS label"
    return _keyed_rows(table, _target_norms(table), relation, columns, keep)


def source_keys_sql(table: TargetTable, relation: str, columns: bool = False, keep: str = "") -> str:
    """DuckDB SQL over rows as source_rows_query yields them (c0..): h, k0.. (or n) [, hs] and
    `keep` (e.g. "*": the converted values themselves). Without a key, `columns` adds `label`:
    the row's values, which name it in `--show-rows`."""
    if columns and not keyed(table):
        plain = [_norm(c, f"c{i}", "source") for i, c in enumerate(table.columns)]
        keep = ", ".join(part for part in (keep, f"{_values_label(table, plain)} AS label") if part)
    return _keyed_rows(table, _source_norms(table), relation, columns, keep)


# A value in a row's label is cut here: the label names a row, it does not print a document.
_LABEL_VALUE_CHARS = 40


def _values_label(table: TargetTable, norms: list[str]) -> str:
    """DuckDB expression naming a row of a table without a key by its values, e.g.
    name='a', n=5, note=NULL (text quoted, as SQL writes it; long values cut with ...)."""
    quote, doubled = quote_literal("'"), quote_literal("''")
    parts = []
    for column, norm in zip(table.columns, norms, strict=True):
        text = f"CAST({norm} AS VARCHAR)"
        cut = (
            f"CASE WHEN length({text}) > {_LABEL_VALUE_CHARS} "
            f"THEN left({text}, {_LABEL_VALUE_CHARS}) || '...' ELSE {text} END"
        )
        if column.pg_type.kind not in ("integer", "float", "numeric", "boolean"):
            cut = f"{quote} || replace({cut}, {quote}, {doubled}) || {quote}"
        parts.append(f"{quote_literal(column.name + '=')} || coalesce({cut}, 'NULL')")
    return " || ', ' || ".join(parts) if parts else "''"


def _keyed_rows(table: TargetTable, norms: list[str], relation: str, columns: bool, keep: str) -> str:
    hs = f", [{', '.join(f'hash({n})' for n in norms)}] AS hs" if columns else ""
    kept = f", {keep}" if keep else ""
    if keyed(table):
        return f"SELECT {_hash(norms)} AS h{_key_items(table, norms)}{hs}{kept} FROM {relation}"
    return _numbered(f"SELECT {_hash(norms)} AS h{hs}{kept} FROM {relation}")


def without_set_aside(table: TargetTable, relation: str, hashes: tuple[int, ...]) -> str:
    """DuckDB relation: the source rows of `relation` (c0..) but those whose verification hash is
    among `hashes` (rows a check set aside at an earlier apply, RowDiff.set_aside)."""
    if not hashes:
        return relation
    vhash, _ = row_hash(table, "source", "c")
    listed = ", ".join(str(int(h)) for h in hashes)
    return f"(SELECT * FROM {relation} WHERE NOT list_contains([{listed}]::UBIGINT[], {vhash}))"


def set_aside_count(
    con: duckdb.DuckDBPyConnection, schema: str, table: TargetTable, hashes: tuple[int, ...]
) -> tuple[int, int]:
    """How many source rows of `table` have one of `hashes` (the rows a check set aside that stay
    aside: a row fixed since has another hash), and the sum of their hashes, which verification
    takes from the source's when it reads the whole table."""
    register_functions(con, (table,))
    vhash, _ = row_hash(table, "source", "c")
    listed = ", ".join(str(int(h)) for h in hashes)
    row = con.execute(
        f"SELECT count(*), coalesce(sum({vhash}::HUGEINT), 0) "
        f"FROM ({source_rows_query(schema, table, None)}) "
        f"WHERE list_contains([{listed}]::UBIGINT[], {vhash})"
    ).fetchone()
    assert row is not None  # an aggregate always yields one row
    return int(row[0]), int(row[1])


def _numbered(select: str) -> str:
    """The rows of `select` (with their hash h), each with its occurrence n among equal rows: a
    keyless table's rows are matched as (h, n)."""
    return f"SELECT *, row_number() OVER (PARTITION BY h) AS n FROM ({select})"


def diff_ranges(table: TargetTable) -> tuple[tuple[int, int] | None, ...]:
    """The source's row ranges a diff reads; occurrence numbers of a keyless table count over the
    whole table: one pass."""
    return (table.row_ranges or (None,)) if keyed(table) else (None,)


def _key_label(table: TargetTable, sides: tuple[str, ...] = ("s", "t")) -> str:
    """DuckDB expression naming a row by its key, e.g. id=5 or email='a@b.c' (text quoted, as
    SQL writes it), from whichever of `sides` has the row."""
    if not keyed(table):
        return "''"
    position = _positions(table)
    quote, doubled = quote_literal("'"), quote_literal("''")
    parts = []
    for j, k in enumerate(table.primary_key):
        value = f"CAST(coalesce({', '.join(f'{side}.k{j}' for side in sides)}) AS VARCHAR)"
        if table.columns[position[k]].pg_type.kind not in ("integer", "float", "numeric", "boolean"):
            value = f"{quote} || replace({value}, {quote}, {doubled}) || {quote}"
        parts.append(f"{quote_literal(k + '=')} || {value}")
    return " || ', ' || ".join(parts)


def _key_order(table: TargetTable, sides: tuple[str, ...] = ("s", "t")) -> str:
    if not keyed(table):
        return f"coalesce({', '.join(f'{side}.h' for side in sides)})"
    return ", ".join(
        f"coalesce({', '.join(f'{side}.k{j}' for side in sides)})" for j in range(len(table.primary_key))
    )


def watermark_sql(schema: str, table: TargetTable, prefix: str = "c") -> tuple[str, str]:
    """DuckDB SQL for the largest watermark value in the target, and the source's normalized
    watermark expression (over the converted columns {prefix}0, {prefix}1, ...)."""
    assert table.watermark is not None
    position = _positions(table)[table.watermark]
    column = table.columns[position]
    ident = sql.Identifier(column.name)
    as_text = column.pg_type.kind in ("json", "enum")
    query = sql.SQL("SELECT max({}){} AS {} FROM {}").format(
        ident, sql.SQL("::text" if as_text else ""), ident, sql.Identifier(schema, table.name)
    )
    # the watermark compares values (which is larger), never digests
    target = f"SELECT {_norm(column, quote_ident(column.name), 'target')} AS v FROM postgres_query({quote_literal(TARGET_ALIAS)}, {quote_literal(query.as_string(None))})"
    return target, _norm(column, f"{prefix}{position}", "source")


# mode: append. A row past the target's largest watermark is new. A row at that watermark, or
# without one, may be new too (written after the last apply at the same instant, say): it is
# matched against the target's rows at that watermark or without one, by key (no key: as
# multisets of rows), and inserted when the target lacks it.


def append_mark_statements(schema: str, table: TargetTable) -> tuple[list[str], str]:
    """DuckDB SQL creating etl_mark (v: the target's largest watermark, normalized) and
    etl_at_mark (the target's rows at that watermark or without one, as target_keys_sql names
    rows); and the source's watermark expression over the converted columns s.c0, s.c1, ..."""
    target, source_value = watermark_sql(schema, table, prefix="s.c")
    assert table.watermark is not None
    mark = sql.Identifier(table.watermark)
    at_mark = sql.SQL("{m} IS NULL OR {m} = (SELECT max({m}) FROM {t})").format(
        m=mark, t=sql.Identifier(schema, table.name)
    )
    statements = [
        f"CREATE OR REPLACE TEMP TABLE etl_mark AS {target}",
        f"CREATE OR REPLACE TEMP TABLE etl_at_mark AS {target_keys_sql(schema, table, where=at_mark)}",
    ]
    return statements, source_value


def append_marks(con: duckdb.DuckDBPyConnection, schema: str, table: TargetTable) -> str:
    """Run append_mark_statements; returns the source's watermark expression."""
    statements, source_value = append_mark_statements(schema, table)
    for statement in statements:
        con.execute(statement)
    return source_value


def past_mark(source_value: str) -> str:
    """Condition on s (source rows) and m (etl_mark): the row is past the target's watermark (when
    the target has none: the row has one)."""
    return f"({source_value} > m.v OR (m.v IS NULL AND {source_value} IS NOT NULL))"


def at_mark(source_value: str) -> str:
    """Condition on s and m: the row is at the target's watermark, or has none."""
    return f"({source_value} IS NULL OR {source_value} = m.v)"


def late_rows(table: TargetTable, candidates: str) -> str:
    """FROM clause: the rows of `candidates` (source rows at the mark, named as source_keys_sql
    names them) the target lacks."""
    return f"FROM {candidates} s ANTI JOIN etl_at_mark t ON {key_join(table, 's', 't')}"


def plan_diff(
    con: duckdb.DuckDBPyConnection,
    schema: str,
    table: TargetTable,
    current: PgTable,
    show_rows: int = 0,
    rowids: tuple[tuple[int, int], ...] = (),
    set_aside: tuple[int, ...] = (),
) -> RowDiff:
    """How the target's rows differ from the source's, counted without changing anything.
    `current`: the table as the target holds it (its schema may still differ from the spec's).
    `rowids`: compare only the rows in these inclusive rowid ranges, on the target the rows whose
    key (table.rowid_key, the source's rowid) lies in them (mode: sync). `set_aside`: hashes of
    source rows left out (RowDiff.set_aside)."""
    register_functions(con, (table,))
    if table.mode == Mode.APPEND:
        return _plan_append(con, schema, table, show_rows)
    columns = show_rows > 0
    if rowids and not columns:
        return _plan_in_parts(con, schema, table, current, rowids, set_aside)
    if rowids:
        _ranged_sides(con, schema, table, current, columns, rowids, set_aside)
    else:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE etl_t AS {target_keys_sql(schema, table, current, columns)}"
        )
        for i, row_range in enumerate(diff_ranges(table)):
            relation = without_set_aside(table, f"({source_rows_query(schema, table, row_range)})", set_aside)
            select = source_keys_sql(table, relation, columns)
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE etl_s AS {select}" if i == 0 else f"INSERT INTO etl_s {select}"
            )
    join = key_join(table, "s", "t")
    row = con.execute(
        "SELECT count(*) FILTER (WHERE t.h IS NULL), count(*) FILTER (WHERE s.h <> t.h), "
        "count(*) FILTER (WHERE s.h IS NULL), count(*) FILTER (WHERE s.h = t.h) "
        f"FROM etl_s s FULL OUTER JOIN etl_t t ON {join}"
    ).fetchone()
    assert row is not None  # an aggregate always yields one row
    inserts, updates, deletes, unchanged = (int(v) for v in row)
    if table.mode == Mode.UPSERT:
        deletes = 0
    samples: tuple[RowChange, ...] = ()
    if show_rows > 0:
        samples = _samples(con, table, show_rows)
    differing, range_sums = None, None
    if rowids:
        if inserts + updates + deletes <= MAX_DIFFERING_ROWS:
            _keep_differing(con, table)
            keys, kept_count, kept_total = _differing_kept(con)
            con.execute("DROP TABLE etl_d")
            differing, range_sums = merged_ranges(tuple(keys)), (kept_count, str(kept_total))
        else:
            range_sums = _range_sums(con)
    con.execute("DROP TABLE etl_s")
    con.execute("DROP TABLE etl_t")
    return RowDiff(
        inserts,
        updates,
        deletes,
        unchanged,
        samples,
        set_aside=set_aside,
        differing=differing,
        range_sums=range_sums,
    )


# The most differing rows of a diff by ranges whose rowids the plan keeps (RowDiff.differing):
# the sync then reads those rows alone, not every row in the changed ranges as the plan did.
MAX_DIFFERING_ROWS = 100_000


# Rowids a part of a diff by ranges spans at most (a range wider than that is a part alone): the
# rows of both sides are held while a part is compared, so a diff of many changed ranges holds
# memory in proportion to a part, not to all the rows it compares.
PART_ROWIDS = 250_000


def parts_of(rowids: tuple[tuple[int, int], ...], most: int) -> list[tuple[tuple[int, int], ...]]:
    """`rowids` merged and cut, in order, into parts spanning at most `most` rowids each (a wider
    range is a part alone)."""
    parts: list[list[tuple[int, int]]] = [[]]
    spanned = 0
    for low, high in merged_ranges(rowids):
        span = high - low + 1
        if parts[-1] and spanned + span > most:
            parts.append([])
            spanned = 0
        parts[-1].append((low, high))
        spanned += span
    return [tuple(part) for part in parts if part]


def _plan_in_parts(
    con: duckdb.DuckDBPyConnection,
    schema: str,
    table: TargetTable,
    current: PgTable,
    rowids: tuple[tuple[int, int], ...],
    set_aside: tuple[int, ...],
) -> RowDiff:
    """plan_diff of the rows in `rowids` (mode: sync), counted part by part (parts_of): the
    differing rows of each are kept in etl_d, one join of the two sides, from which the counts
    and, up to MAX_DIFFERING_ROWS in all, their rowids and the source's sums of them come."""
    inserts = updates = deletes = unchanged = count = total = 0
    differing_count = differing_total = 0
    differing: list[tuple[int, int]] | None = []
    for part in parts_of(rowids, PART_ROWIDS):
        _ranged_sides(con, schema, table, current, False, part, set_aside)
        _keep_differing(con, table)
        found = con.execute(
            "SELECT count(*) FILTER (WHERE op = 0), count(*) FILTER (WHERE op = 1), "
            "count(*) FILTER (WHERE op = 2) FROM etl_d"
        ).fetchone()
        part_count, part_total = _range_sums(con)
        assert found is not None  # an aggregate always yields one row
        inserted, updated, deleted = (int(v) for v in found)
        inserts, updates, deletes = inserts + inserted, updates + updated, deletes + deleted
        unchanged += part_count - inserted - updated
        count, total = count + part_count, total + int(part_total)
        if differing is not None and inserts + updates + deletes <= MAX_DIFFERING_ROWS:
            keys, kept_count, kept_total = _differing_kept(con)
            differing += keys
            differing_count, differing_total = differing_count + kept_count, differing_total + kept_total
        else:
            differing = None
        for name in ("etl_d", "etl_s", "etl_t"):
            con.execute(f"DROP TABLE {name}")
    return RowDiff(
        inserts,
        updates,
        deletes,
        unchanged,
        (),
        set_aside=set_aside,
        differing=None if differing is None else merged_ranges(tuple(differing)),
        range_sums=(count, str(total)) if differing is None else (differing_count, str(differing_total)),
    )


def _range_sums(con: duckdb.DuckDBPyConnection) -> tuple[int, str]:
    """The source's count and checksum (verification's, etl_s.vh) over the rows in the ranges."""
    row = con.execute("SELECT count(*), coalesce(sum(vh::HUGEINT), 0) FROM etl_s").fetchone()
    assert row is not None  # an aggregate always yields one row
    return int(row[0]), str(row[1])


def _keep_differing(con: duckdb.DuckDBPyConnection, table: TargetTable) -> None:
    """etl_d: the rows etl_s and etl_t disagree on (the key is the rowid): their key k, op (0:
    only in the source, 1: on both sides, 2: only in the target) and the source row's
    verification hash vh (NULL where the source lacks the row)."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE etl_d AS SELECT coalesce(s.k0, t.k0) AS k, "
        "CASE WHEN t.h IS NULL THEN 0 WHEN s.h IS NULL THEN 2 ELSE 1 END AS op, s.vh "
        f"FROM etl_s s FULL OUTER JOIN etl_t t ON {key_join(table, 's', 't')} WHERE s.h IS DISTINCT FROM t.h"
    )


def _differing_kept(con: duckdb.DuckDBPyConnection) -> tuple[list[tuple[int, int]], int, int]:
    """The rowid of each row in etl_d (as a range of one), and the source's count and checksum
    (vh) of those rows."""
    keys = [(int(k), int(k)) for (k,) in con.execute("SELECT k FROM etl_d").fetchall()]
    row = con.execute("SELECT count(vh), coalesce(sum(vh::HUGEINT), 0) FROM etl_d").fetchone()
    assert row is not None  # an aggregate always yields one row
    return keys, int(row[0]), int(row[1])


def _ranged_sides(
    con: duckdb.DuckDBPyConnection,
    schema: str,
    table: TargetTable,
    current: PgTable,
    columns: bool,
    rowids: tuple[tuple[int, int], ...],
    set_aside: tuple[int, ...] = (),
) -> None:
    """etl_s and etl_t: each side's rows in the rowid ranges `rowids` (the target's in one query,
    the source's a batch of ranges per query); etl_s.vh: each source row's verification hash."""
    assert table.rowid_key is not None and table.mode == Mode.SYNC
    rows = rows_in_ranges(schema, table, rowids)
    verified, _ = row_hash(table, "source", "c")
    sources = [
        source_keys_sql(
            table,
            without_set_aside(table, f"({source_rows_query(schema, table, rowids=batch)})", set_aside),
            columns,
            keep=f"{verified} AS vh",
        )
        for batch in range_batches(rowids, SOURCE_READERS)
    ]
    target = target_keys_sql(schema, table, current, columns, rows=rows)
    _read_both_sides(con, f"CREATE OR REPLACE TEMP TABLE etl_t AS {target}", sources)


# The source's batches of a diff by ranges are read on this many cursors at once, besides the
# target's side: each SQLite query runs on one thread, and converting its text values costs
# DuckDB more than SQLite's reading them.
SOURCE_READERS = max(1, os.cpu_count() or 1)


def _read_both_sides(con: duckdb.DuckDBPyConnection, target: str, sources: list[str]) -> None:
    """Run `target` (the statement making etl_t) on `con` while other cursors read the source's
    `sources` (selects of the same columns) in parallel into etl_s: a table of the shared
    in-memory database, which every cursor sees and may append to at once."""
    con.execute(f"CREATE OR REPLACE TABLE etl_s AS SELECT * FROM ({sources[0]}) LIMIT 0")
    readers = max(1, min(len(sources), SOURCE_READERS))
    with ThreadPoolExecutor(max_workers=readers) as pool:
        # Interleaved: neighbouring batches cost alike, so each reader gets an equal share.
        reading = [pool.submit(_read_into_sides, con, sources[n::readers]) for n in range(readers)]
        try:
            con.execute(target)
        finally:
            wait(reading)
    for future in reading:
        future.result()  # the first reader's error, as reading them in turn would raise one


def _read_into_sides(con: duckdb.DuckDBPyConnection, sources: list[str]) -> None:
    """Append the rows of `sources` to etl_s, on a cursor of its own."""
    with configure(con.cursor()) as cursor:
        for source in sources:
            cursor.execute(f"INSERT INTO etl_s {source}")


def _samples(con: duckdb.DuckDBPyConnection, table: TargetTable, limit: int) -> tuple[RowChange, ...]:
    join = key_join(table, "s", "t")
    ops = ["'insert'", "'update'"] + (["'delete'"] if table.mode == Mode.SYNC else [])
    label = _key_label(table) if keyed(table) else "coalesce(s.label, t.label)"
    # `limit` changes, taken in turn from each kind of change, each kind in key order.
    rows = con.execute(
        "SELECT op, label, shs, ths FROM (SELECT *, row_number() OVER (PARTITION BY op ORDER BY ord) AS nth FROM "
        f"(SELECT CASE WHEN t.h IS NULL THEN 'insert' WHEN s.h IS NULL THEN 'delete' "
        f"ELSE 'update' END AS op, {label} AS label, s.hs AS shs, t.hs AS ths, [{_key_order(table)}] AS ord "
        f"FROM etl_s s FULL OUTER JOIN etl_t t ON {join} WHERE s.h IS DISTINCT FROM t.h)) "
        f"WHERE op IN ({', '.join(ops)}) "
        f"ORDER BY nth, CASE op WHEN 'insert' THEN 0 WHEN 'update' THEN 1 ELSE 2 END LIMIT {int(limit)}"
    ).fetchall()
    rows.sort(key=lambda r: ("insert", "update", "delete").index(r[0]))  # stable: key order kept
    changes = []
    for op, key, source_hashes, target_hashes in rows:
        changed: tuple[str, ...] = ()
        if op == "update":
            changed = tuple(
                c.name for c, a, b in zip(table.columns, source_hashes, target_hashes, strict=True) if a != b
            )
        changes.append(RowChange(op, key, changed))
    return tuple(changes)


def _plan_append(con: duckdb.DuckDBPyConnection, schema: str, table: TargetTable, show_rows: int) -> RowDiff:
    source_value = append_marks(con, schema, table)
    mark = con.execute("SELECT CAST(v AS VARCHAR) FROM etl_mark").fetchone()
    norms = _source_norms(table, prefix="s.c")
    for i, row_range in enumerate(diff_ranges(table)):
        relation = f"({source_rows_query(schema, table, row_range)})"
        # A keyless table's rows at the mark match by hash: only theirs is computed (a jsonb
        # column's is a Python function's call).
        hashed = "" if keyed(table) else f", CASE WHEN {at_mark(source_value)} THEN {_hash(norms)} END AS h"
        select = (
            f"SELECT {past_mark(source_value)} AS new, {at_mark(source_value)} AS at_mark{hashed}"
            f"{_key_items(table, norms)} FROM {relation} AS s, etl_mark AS m"
        )
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE etl_s AS {select}" if i == 0 else f"INSERT INTO etl_s {select}"
        )
    candidates = "SELECT * FROM etl_s WHERE at_mark"
    candidates = f"({candidates if keyed(table) else _numbered(candidates)})"
    con.execute(f"CREATE OR REPLACE TEMP TABLE etl_late AS SELECT s.* {late_rows(table, candidates)}")
    row = con.execute("SELECT count(*) FILTER (WHERE new), count(*) FROM etl_s").fetchone()
    late = con.execute("SELECT count(*) FROM etl_late").fetchone()
    assert row is not None and late is not None  # aggregates always yield one row
    inserts, total = int(row[0]) + int(late[0]), int(row[1])
    samples: tuple[RowChange, ...] = ()
    if show_rows > 0 and keyed(table):
        keys = ", ".join(key_names(table))
        found = con.execute(
            f"SELECT {_key_label(table, ('s',))} FROM (SELECT {keys} FROM etl_s WHERE new "
            f"UNION ALL SELECT {keys} FROM etl_late) s ORDER BY {_key_order(table, ('s',))} LIMIT {int(show_rows)}"
        ).fetchall()
        samples = tuple(RowChange("insert", key) for (key,) in found)
    for name in ("etl_s", "etl_late", "etl_mark", "etl_at_mark"):
        con.execute(f"DROP TABLE {name}")
    return RowDiff(inserts, 0, 0, total - inserts, samples, mark[0] if mark else None)


def batchable(table: TargetTable) -> bool:
    """A table whose counts plan_diffs can take in one query with others: compared whole (one
    range) by key or by hash, not by watermark."""
    return table.mode != Mode.APPEND and len(diff_ranges(table)) == 1


def plan_diffs(
    con: duckdb.DuckDBPyConnection,
    schema: str,
    tables: list[tuple[TargetTable, PgTable]],
    set_aside: dict[str, tuple[int, ...]] | None = None,
) -> dict[str, RowDiff]:
    """plan_diff's counts (no rows shown) of several tables that are `batchable`, in one DuckDB
    query: a small table's diff costs a few round trips to both databases, more than its rows.
    Raises as plan_diff would; the caller then diffs each table alone, which names the table."""
    register_functions(con, (table for table, _ in tables))
    parts = []
    for number, (table, current) in enumerate(tables):
        hashes = (set_aside or {}).get(table.name, ())
        source = source_keys_sql(
            table, without_set_aside(table, f"({source_rows_query(schema, table, None)})", hashes)
        )
        target = target_keys_sql(schema, table, current)
        parts.append(
            f"SELECT {number} AS n, count(*) FILTER (WHERE t.h IS NULL) AS inserts, "
            "count(*) FILTER (WHERE s.h <> t.h) AS updates, count(*) FILTER (WHERE s.h IS NULL) AS deletes, "
            "count(*) FILTER (WHERE s.h = t.h) AS unchanged "
            f"FROM ({source}) s FULL OUTER JOIN ({target}) t ON {key_join(table, 's', 't')}"
        )
    found: dict[str, RowDiff] = {}
    for number, inserts, updates, deletes, unchanged in con.execute(" UNION ALL ".join(parts)).fetchall():
        table = tables[int(number)][0]
        deleted = 0 if table.mode == Mode.UPSERT else int(deletes)
        hashes = (set_aside or {}).get(table.name, ())
        found[table.name] = RowDiff(int(inserts), int(updates), deleted, int(unchanged), (), set_aside=hashes)
    return found
