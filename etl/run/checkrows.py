"""The rows a CHECK constraint refuses, named as SQLite holds them.

A check is PostgreSQL's to evaluate (its expression is PostgreSQL's), so it runs on the rows as they
arrived in the target; each refused row is then matched to its source row by the verification
hash both sides already agree on (with a row number among equal hashes, for a table without a
key), which gives its key as SQLite quotes it and its raw values for the reject report. SQL's CHECK
reads NULL as passing: only rows for which the expression is false are refused.

A row a check refuses at an apply is recorded by that verification hash in etl.set_aside (its
table's records go when the table is loaded afresh or its checks change). A later plan reads the
hashes and leaves the source rows that carry one out of its row diff, and the sync out of the rows
it stages (RowDiff.set_aside, rowdiff.without_set_aside): neither is it planned as new again nor
set aside again. Verification stays exact without more: a sync computes the source's checksum
over the rows it staged from, which leave those rows out as the target does. A row fixed in the
source has other values, another hash, and arrives. Only the rows a check refuses are recorded,
not the rows set aside with them: those of other tables stay out through load's orphan test
(their parent is missing in the target), and a descendant through the table's own foreign key is
set aside again by each sync, so that it arrives with its ancestor once that is fixed."""

from __future__ import annotations

from psycopg import sql

from etl.core.mapping import TargetCheck, TargetForeignKey, TargetTable
from etl.errors import ValueProblem
from etl.run.load import checked_relation, row_key
from etl.run.verify import row_hash, target_relation


def refused_where(check: TargetCheck) -> sql.Composed:
    """PostgreSQL condition of the rows `check` refuses (false; NULL passes, as in a CHECK)."""
    return sql.SQL("NOT ({})").format(check.sql)


def staged_check_query(staged: sql.Composable, check: TargetCheck) -> sql.Composed:
    """PostgreSQL query: how many rows of `staged` (sync.staged_rows) `check` refuses, and how
    many of them are changed rows; no row when it refuses none."""
    return sql.SQL(
        "SELECT count(*) OVER () AS n, count(*) FILTER (WHERE etl_op = 'u') OVER () AS changed "
        "FROM {} WHERE {} LIMIT 1"
    ).format(staged, refused_where(check))


def orphan_where(schema: str, table: str, fk: TargetForeignKey) -> sql.Composed:
    """PostgreSQL condition on the rows of `table`: its foreign key `fk` is set and names no row
    of the parent (in a reference onto the table itself, the alias hides the table's own name,
    so the qualified columns are the outer row's)."""
    own = [sql.Identifier(schema, table, c) for c in fk.columns]
    set_ = sql.SQL(" AND ").join(sql.SQL("{} IS NOT NULL").format(c) for c in own)
    match = sql.SQL(" AND ").join(
        sql.SQL("etl_parent.{} = {}").format(sql.Identifier(r), c)
        for r, c in zip(fk.ref_columns, own, strict=True)
    )
    return sql.SQL("{} AND NOT EXISTS (SELECT 1 FROM {} AS etl_parent WHERE {})").format(
        set_, sql.Identifier(schema, fk.ref_table), match
    )


def staged_orphan_where(
    schema: str, table: str, fk: TargetForeignKey, staged: sql.Composable
) -> sql.Composed:
    """PostgreSQL condition on the rows of `staged` (sync.staged_rows, alias r): their foreign key
    `fk` onto their own table is set and names no row of the target's table nor a row still staged."""
    own = [sql.Identifier("r", c) for c in fk.columns]
    set_ = sql.SQL(" AND ").join(sql.SQL("{} IS NOT NULL").format(c) for c in own)
    in_target = sql.SQL(" AND ").join(
        sql.SQL("etl_parent.{} = {}").format(sql.Identifier(r), c)
        for r, c in zip(fk.ref_columns, own, strict=True)
    )
    refs = sql.SQL(", ").join(
        sql.SQL("{} AS {}").format(sql.Identifier(r), sql.Identifier(f"etl_ref{m}"))
        for m, r in enumerate(fk.ref_columns)
    )
    in_staged = sql.SQL(" AND ").join(
        sql.SQL("s.{} = {}").format(sql.Identifier(f"etl_ref{m}"), c) for m, c in enumerate(own)
    )
    return sql.SQL(
        "{} AND NOT EXISTS (SELECT 1 FROM {} AS etl_parent WHERE {}) "
        "AND NOT EXISTS (SELECT 1 FROM (SELECT {} FROM {}) AS s WHERE {})"
    ).format(set_, sql.Identifier(schema, table), in_target, refs, staged, in_staged)


def staged_count_query(staged: sql.Composable, where: sql.Composable) -> sql.Composed:
    """PostgreSQL query: how many rows of `staged` `where` picks, and how many of them are changed
    rows."""
    return sql.SQL(
        "SELECT count(*) AS n, count(*) FILTER (WHERE etl_op = 'u') AS changed FROM {} WHERE {}"
    ).format(staged, where)


def orphan_problem(table: TargetTable, fk: TargetForeignKey, key: str | None, shown: str) -> ValueProblem:
    """The ValueProblem of a row whose parent a check set aside, worded as load's orphans are."""
    columns, refs = ", ".join(fk.columns), ", ".join(fk.ref_columns)
    reason = f'foreign key ({columns}) references no "{fk.ref_table}" row with ({refs}) = ({shown})'
    return ValueProblem(table.source, key, None, reason, shown)


def refused_rows_query(
    schema: str,
    table: TargetTable,
    where: sql.Composable,
    relation: sql.Composable | None = None,
    limit: int | None = None,
) -> str:
    """DuckDB SQL: one row per row of the target (or of `relation`, rows shaped as the table's)
    that the PostgreSQL condition `where` picks (refused_where, orphan_where): (matched, key,
    hash, then each source value as storage class and bytes), in the source's order; `matched`
    is false for a row no source row accounts for."""
    source_hash, _ = row_hash(table, "source", "c")
    target_hash, _ = row_hash(table, "target", "")
    raw = "".join(f", t{i}, encode(v{i}) AS b{i}" for i in range(len(table.columns)))
    source = " UNION ALL ".join(
        f"SELECT {row_key(table)} AS key, {source_hash} AS h{raw} "
        f"FROM {checked_relation(schema, table, row_range)} WHERE problem IS NULL"
        for row_range in table.row_ranges or (None,)
    )
    refused = target_relation(schema, table, where=where, relation=relation)
    values = "".join(f", s.t{i}, s.b{i}" for i in range(len(table.columns)))
    query = (
        f"WITH s AS (SELECT *, row_number() OVER (PARTITION BY h ORDER BY o) AS n "
        f"FROM (SELECT row_number() OVER () AS o, * FROM ({source}))), "
        f"t AS (SELECT h, row_number() OVER (PARTITION BY h) AS n FROM (SELECT {target_hash} AS h FROM {refused})) "
        f"SELECT s.o IS NOT NULL, s.key, t.h{values} FROM t LEFT JOIN s USING (h, n) ORDER BY s.o NULLS LAST"
    )
    return query + (f" LIMIT {int(limit)}" if limit is not None else "")


def refused_problem(
    table: TargetTable, check: TargetCheck, key: str | None, shown: str | None
) -> ValueProblem:
    """The ValueProblem of a row `check` refuses; `shown`: its column's value as found, if the
    check belongs to one column."""
    expression = " ".join(check.sql.as_string(None).split())  # one line, as every reason is
    reason = f'violates check "{check.name}" ({expression})'
    column = check.column if shown is not None else None
    if column is not None:
        reason += f", found {shown}"
    return ValueProblem(table.source, key, column, reason, shown)
