"""etl's own tables in the target database, in schema `etl`: its runs (etl.runs), the rows they
rejected (etl.rejects), what they kept for rollback (etl.history), the spec's tables as
PostgreSQL describes them (etl.desired, which spares the next plan a scratch schema) and the
state each table was left in (etl.fingerprints); the SQL that creates them,
upgrades them and records into them. Pure: statements only. At the bottom of the package: it
imports nothing of etl, so that every module that reads or writes these tables can import it."""

from __future__ import annotations

import json

from psycopg import sql

METADATA_SCHEMA = "etl"  # where etl keeps its own records in the target database
METADATA_TABLES = ("runs", "rejects", "history", "desired", "fingerprints", "set_aside")

RUNS = sql.Identifier(METADATA_SCHEMA, "runs")
REJECTS = sql.Identifier(METADATA_SCHEMA, "rejects")
HISTORY = sql.Identifier(METADATA_SCHEMA, "history")
DESIRED = sql.Identifier(METADATA_SCHEMA, "desired")
FINGERPRINTS = sql.Identifier(METADATA_SCHEMA, "fingerprints")
SET_ASIDE = sql.Identifier(METADATA_SCHEMA, "set_aside")


def metadata_ddl() -> list[sql.Composed]:
    """etl's own tables (its runs, the rows they rejected, what they kept for rollback); created if
    missing. The schema first, then METADATA_TABLES in their order; metadata_upgrades() adds what
    later versions record to tables made before them."""
    return [
        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(METADATA_SCHEMA)),
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} ("
            "id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
            "target_schema text NOT NULL, spec text, spec_sha256 text, "
            "started_at timestamptz NOT NULL, finished_at timestamptz NOT NULL, "
            "status text NOT NULL CHECK (status IN ('succeeded', 'failed')), "
            "rows jsonb, error text)"
        ).format(RUNS),
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} ("
            "id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, run_started_at timestamptz NOT NULL, "
            "target_schema text NOT NULL, source_table text NOT NULL, row_key text, reason text NOT NULL, "
            "row jsonb NOT NULL, column_name text, value text)"
        ).format(REJECTS),
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} ("
            "id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, run_started_at timestamptz NOT NULL, "
            "target_schema text NOT NULL, table_name text NOT NULL, "
            "kept_in text, "  # the schema holding the copy; NULL: the run created the table
            "rows bigint, foreign_keys jsonb NOT NULL DEFAULT '[]', enum_columns jsonb NOT NULL DEFAULT '[]', "
            "sequences jsonb NOT NULL DEFAULT '[]', restored_at timestamptz, "
            # A view the run dropped or created: its definition before the run (NULL: it had none).
            "is_view boolean NOT NULL DEFAULT false, view_definition text, "
            # The table's triggers before the run: rollback's copy holds none (see history.py).
            "triggers jsonb NOT NULL DEFAULT '[]', "
            # The key columns of a copy of only the rows the run changed; NULL: a whole copy.
            "key_columns jsonb)"
        ).format(HISTORY),
        # The spec's tables as PostgreSQL describes them, per target schema: what the last apply
        # made, keyed by everything that decides it (see observe.desired_key).
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (target_schema text PRIMARY KEY, key text NOT NULL, "
            "recorded_at timestamptz NOT NULL, catalog jsonb NOT NULL)"
        ).format(DESIRED),
        # One row per table an apply left equal to the source (see record_fingerprint_sql).
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} ("
            "target_schema text NOT NULL, table_name text NOT NULL, applied_at timestamptz NOT NULL, "
            "desired text NOT NULL, source text NOT NULL, relfilenode oid NOT NULL, columns text NOT NULL, "
            "xmins jsonb NOT NULL, rows bigint NOT NULL, oldest_xid bigint NOT NULL, ranges bytea, units jsonb, "
            "PRIMARY KEY (target_schema, table_name))"
        ).format(FINGERPRINTS),
        # The source rows a check set aside at apply, by verification hash: later plans leave
        # them out until their values change (see record_set_aside_sql).
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (target_schema text NOT NULL, table_name text NOT NULL, "
            "hash text NOT NULL, recorded_at timestamptz NOT NULL, PRIMARY KEY (target_schema, table_name, hash))"
        ).format(SET_ASIDE),
    ]


def metadata_upgrades() -> list[sql.Composed]:
    """Columns a later version of etl records, added to metadata tables made before it: etl.history
    and etl.rejects as earlier versions made them gain the columns this one records."""
    return [
        _add_column_sql(HISTORY, "sequences", sql.SQL("jsonb NOT NULL DEFAULT '[]'")),
        _add_column_sql(HISTORY, "is_view", sql.SQL("boolean NOT NULL DEFAULT false")),
        _add_column_sql(HISTORY, "view_definition", sql.SQL("text")),
        _add_column_sql(HISTORY, "triggers", sql.SQL("jsonb NOT NULL DEFAULT '[]'")),
        _add_column_sql(HISTORY, "key_columns", sql.SQL("jsonb")),
        _add_column_sql(REJECTS, "column_name", sql.SQL("text")),
        _add_column_sql(REJECTS, "value", sql.SQL("text")),
        _add_column_sql(FINGERPRINTS, "ranges", sql.SQL("bytea")),
        _add_column_sql(FINGERPRINTS, "units", sql.SQL("jsonb")),
    ]


def _add_column_sql(table: sql.Identifier, column: str, definition: sql.Composable) -> sql.Composed:
    """Add a column a later version records to an etl.history made before it (its rows then
    record nothing there). Only when missing: ALTER TABLE locks the table to everyone until the
    apply commits, even when IF NOT EXISTS finds the column."""
    body = sql.SQL(
        "BEGIN IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = {}::regclass AND attname = {} "
        "AND NOT attisdropped) THEN ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}; END IF; END"
    ).format(
        sql.Literal(table.as_string(None)), sql.Literal(column), table, sql.Identifier(column), definition
    )
    return sql.SQL("DO {}").format(sql.Literal(body.as_string(None)))


def metadata_lock_sql() -> sql.Composed:
    """Wait for the database-wide advisory lock under which etl creates its metadata schema and
    tables: PostgreSQL's IF NOT EXISTS does not make two concurrent creations safe (the later one
    fails on a unique index of the catalog)."""
    return sql.SQL("SELECT pg_advisory_xact_lock(hashtext({}))").format(sql.Literal("etl metadata"))


def record_run_sql(
    schema: str,
    spec: str | None,
    spec_sha256: str | None,
    started_at: str,
    finished_at: str,
    status: str,
    rows: dict[str, int],
    error: str | None,
) -> sql.Composed:
    return sql.SQL(
        "INSERT INTO {} (target_schema, spec, spec_sha256, started_at, finished_at, status, rows, error) "
        "VALUES ({}, {}, {}, {}, {}, {}, {}::jsonb, {})"
    ).format(
        RUNS,
        *(
            sql.Literal(v)
            for v in (schema, spec, spec_sha256, started_at, finished_at, status, json.dumps(rows), error)
        ),
    )


def record_rejects_sql(
    started_at: str, schema: str, rows: list[tuple[str, str | None, str, str, str | None, str | None]]
) -> sql.Composed:
    """One INSERT into etl.rejects for (table, key, reason, row as JSON text, column, value) tuples."""
    values = sql.SQL(", ").join(
        sql.SQL("({}, {}, {}, {}, {}, {}::jsonb, {}, {})").format(
            *(sql.Literal(v) for v in (started_at, schema, *row))
        )
        for row in rows
    )
    return sql.SQL(
        "INSERT INTO {} (run_started_at, target_schema, source_table, row_key, reason, row, column_name, value) "
        "VALUES {}"
    ).format(REJECTS, values)


# The desired catalog goes to PostgreSQL in parts of this many characters: one statement holding
# a catalog of thousands of tables is copied several times over on its way (DuckDB's parser, libpq's
# buffer), all at once.
DESIRED_PART_CHARS = 256 * 1024
# Where the parts are gathered: a setting local to apply's transaction, which any role may set.
_DESIRED_PARTS = "etl.desired_catalog"


def record_desired_sql(schema: str, key: str, recorded_at: str, document: str) -> list[sql.Composed]:
    """Record (replacing the schema's earlier record) the desired catalog made under `key`, given
    as the JSON text `document` (etl.model.catalog_json): its parts gathered in a setting of the
    transaction, then written in one row, then the setting emptied. Statements to run in order."""
    setting = sql.Literal(_DESIRED_PARTS)
    gathered = sql.SQL("current_setting({})").format(setting)
    parts = [document[i : i + DESIRED_PART_CHARS] for i in range(0, len(document), DESIRED_PART_CHARS)]
    statements = [
        sql.SQL("SELECT set_config({}, {}, true)").format(
            setting, sql.SQL("{} || {}").format(gathered, sql.Literal(part)) if i else sql.Literal(part)
        )
        for i, part in enumerate(parts or [""])
    ]
    statements.append(
        sql.SQL(
            "INSERT INTO {} (target_schema, key, recorded_at, catalog) VALUES ({}, {}, {}, {}::jsonb) "
            "ON CONFLICT (target_schema) DO UPDATE SET key = EXCLUDED.key, recorded_at = EXCLUDED.recorded_at, "
            "catalog = EXCLUDED.catalog"
        ).format(DESIRED, *(sql.Literal(v) for v in (schema, key, recorded_at)), gathered)
    )
    statements.append(sql.SQL("SELECT set_config({}, '', true)").format(setting))
    return statements


def last_desired_sql(schema: str) -> sql.Composed:
    """The desired catalog last recorded for `schema`, whatever its key (no row when there is none):
    what the last apply that recorded one made, its views among it. As JSON text (see
    etl.model.catalog_from_json)."""
    return sql.SQL("SELECT catalog::text FROM {} WHERE target_schema = {}").format(
        DESIRED, sql.Literal(schema)
    )


def recorded_desired_sql(schema: str, key: str) -> sql.Composed:
    """The desired catalog recorded for `schema` under `key` (no row when there is none), as JSON
    text (see etl.model.catalog_from_json)."""
    return sql.SQL("SELECT catalog::text FROM {} WHERE target_schema = {} AND key = {}").format(
        DESIRED, sql.Literal(schema), sql.Literal(key)
    )


# etl.fingerprints: the state an apply left a table in, equal to the source, so that a later plan
# may skip comparing its rows while neither side has changed since (etl/run/fingerprint.py). The
# source side is a digest of the SQLite table's pages; the target side is what PostgreSQL changes
# whenever a table's rows or columns change:
# - xmins: each transaction id the rows carry, with its count. A row inserted or updated by anyone
#   but that apply carries a new xmin, a row deleted lowers a count. Freezing keeps a row's xmin
#   (PostgreSQL >= 9.4 sets a flag instead of overwriting it), and rows DuckDB's writer inserts in
#   a subtransaction carry that subtransaction's id, which the map records as it finds it.
# - relfilenode: TRUNCATE, VACUUM FULL, CLUSTER and a rewriting ALTER TABLE give the table a new
#   file (a rewrite that keeps xmins and rows is still no proof of anything: compared in full).
# - columns: pg_attribute's rows (a column dropped and added again with a default leaves the
#   rows and their xmins alone) and the labels of enum types the columns use (a renamed label
#   changes values without touching the table).
# - oldest_xid: transaction ids are 32 bits and wrap around; a later transaction could carry one
#   of the recorded ids again only once 2^32 ids have passed since the oldest of them, so a check
#   more than 2^31 ids later proves nothing.

_XID_WRAP = 4294967296  # 2^32


def _regclass(schema: str, table: str) -> sql.Composed:
    return sql.SQL("{}::regclass").format(sql.Literal(sql.Identifier(schema, table).as_string(None)))


def _columns_state(schema: str, table: str) -> sql.Composed:
    return sql.SQL(
        "(SELECT md5(string_agg(row(a.attnum, a.attname, a.atttypid, a.atttypmod, a.attisdropped, "
        "a.atthasmissing, a.attmissingval::text, a.attgenerated, "
        "(SELECT array_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = a.atttypid)"
        ")::text, ';' ORDER BY a.attnum)) FROM pg_attribute a WHERE a.attrelid = {} AND a.attnum > 0)"
    ).format(_regclass(schema, table))


def _xmin_counts(schema: str, table: str) -> sql.Composed:
    """(x: a transaction id as text, n: rows carrying it) of every row of the table."""
    return sql.SQL("SELECT xmin::text AS x, count(*) AS n FROM {} GROUP BY xmin").format(
        sql.Identifier(schema, table)
    )


def _own_xmin(rows: int) -> sql.Composed:
    """(x, n) of a table whose `rows` rows were all written by the current transaction, without
    reading them: its own transaction id. Were a row to carry another (written in a
    subtransaction), the record would differ from every later reading of the table, which a plan
    then compares in full: the record can be wrong only towards comparing more."""
    return sql.SQL(
        "SELECT (txid_current() % {wrap})::text AS x, {rows}::bigint AS n WHERE {rows} > 0"
    ).format(wrap=sql.Literal(_XID_WRAP), rows=sql.Literal(rows))


# Where an apply stages the ranges of leaf pages it records (table name, PageRanges.to_bytes()):
# a temporary table of the apply's own PostgreSQL session, gone at COMMIT. DuckDB copies them in
# as bound values (binary COPY); in the recording statement's text they would be a literal of
# twice their size that DuckDB, the DO block batching statements and PostgreSQL each parse.
# A table's ranges go in parts of STAGED_PART_BYTES, numbered from 0: DuckDB holds several
# copies of a bound value while it sends it, and a large table's ranges are megabytes.
STAGED_RANGES = "etl_ranges"
STAGED_PART_BYTES = 1 << 18


def stage_ranges_sql() -> sql.Composed:
    """The temporary table record_fingerprint_sql(ranged=True) reads a table's ranges from:
    (table name, part number, the part's bytes)."""
    return sql.SQL(
        "CREATE TEMP TABLE {} (table_name text, part integer, ranges bytea NOT NULL, "
        "PRIMARY KEY (table_name, part)) ON COMMIT DROP"
    ).format(sql.Identifier(STAGED_RANGES))


def staged_parts(ranges: bytes) -> list[tuple[int, bytes]]:
    """(part number, bytes) of each part of a table's ranges as stage_ranges_sql's table holds them."""
    return [
        (number, ranges[at : at + STAGED_PART_BYTES])
        for number, at in enumerate(range(0, len(ranges), STAGED_PART_BYTES))
    ]


# Where an apply that writes a table only in some rows keeps, before it writes, the transaction
# ids of the table's other rows (etl.fingerprints' xmins less those of the rows it will write):
# it records the table's xmins from them and the rows it wrote, not from a scan of every row.
KEPT_XMINS = "etl_xmins_kept"


def keep_xmins_sql(schema: str, tables: list[tuple[str, sql.Composable]]) -> list[sql.Composed]:
    """Keep in KEPT_XMINS, for each (table, written), the xmins recorded of the table less those of
    `written`: a relation (x: a transaction id as text, n: rows) of the table's rows the apply
    may write. Run after the table is locked and proven as recorded (unchanged_since_sql)."""
    if not tables:
        return []
    kept = sql.Identifier("pg_temp", KEPT_XMINS)
    return [
        sql.SQL("CREATE TEMP TABLE {} (table_name text, x text, n bigint) ON COMMIT DROP").format(
            sql.Identifier(KEPT_XMINS)
        ),
        *(
            sql.SQL(
                "INSERT INTO {kept} SELECT {table}, d.x, sum(d.n) FROM ("
                "SELECT e.key, e.value::bigint FROM {fingerprints} f, jsonb_each_text(f.xmins) e "
                "WHERE f.target_schema = {schema} AND f.table_name = {table} "
                "UNION ALL SELECT w.x, -w.n FROM ({written}) w) AS d (x, n) GROUP BY d.x"
            ).format(
                kept=kept,
                table=sql.Literal(table),
                fingerprints=FINGERPRINTS,
                schema=sql.Literal(schema),
                written=written,
            )
            for table, written in tables
        ),
    ]


def record_fingerprint_sql(
    schema: str,
    table: str,
    applied_at: str,
    desired: str,
    source: str,
    ranged: bool = False,
    written: sql.Composable | None = None,
    units: str | None = None,
    created_rows: int | None = None,
) -> sql.Composed:
    """Record, inside the apply's transaction and after its writes, the table's state as the apply
    leaves it (its rows verified equal to the source whose pages' digest is `source`; with
    `ranged`, its ranges of leaf pages, etl/sqlite/pages.py PageRanges, as stage_ranges_sql's table
    holds them for it: bound values, never statement text). `written`: the xmins (x, n) of the
    only rows the apply wrote, as keep_xmins_sql kept the others' before it wrote; None: every
    row's are read. `created_rows`: the table was created in the apply's transaction and holds
    this many rows (as verification counted them), each carrying the transaction's own id, so
    none is read. `units`: JSON of the integer units of its `auto` datetime columns, recorded
    with its ranges (fingerprint.UnitRecord)."""
    xmins: sql.Composable = _xmin_counts(schema, table)
    if created_rows is not None:
        xmins = _own_xmin(created_rows)
    elif written is not None:
        xmins = sql.SQL(
            "SELECT d.x, sum(d.n)::bigint AS n FROM (SELECT k.x, k.n FROM {} k WHERE k.table_name = {} "
            "UNION ALL SELECT w.x, w.n FROM ({}) w) AS d GROUP BY d.x HAVING sum(d.n) <> 0"
        ).format(sql.Identifier("pg_temp", KEPT_XMINS), sql.Literal(table), written)
    recorded_ranges: sql.Composable = sql.SQL("NULL::bytea")
    if ranged:
        recorded_ranges = sql.SQL(
            "(SELECT string_agg(r.ranges, ''::bytea ORDER BY r.part) FROM {} r WHERE r.table_name = {})"
        ).format(sql.Identifier("pg_temp", STAGED_RANGES), sql.Literal(table))
    return sql.SQL(
        "INSERT INTO {fingerprints} (target_schema, table_name, applied_at, desired, source, relfilenode, "
        "columns, xmins, rows, oldest_xid, ranges, units) "
        "SELECT {schema}, {table}, {applied_at}, {desired}, {source}, pg_relation_filenode({reg}), {columns}, "
        "coalesce(jsonb_object_agg(s.x, s.n), '{{}}'::jsonb), coalesce(sum(s.n), 0), "
        "txid_current() - coalesce(max(((txid_current() % {wrap}) - s.x::bigint + {wrap}) % {wrap}), 0), {ranges}, "
        "{units}::jsonb "
        "FROM ({xmins}) s "
        "ON CONFLICT (target_schema, table_name) DO UPDATE SET applied_at = EXCLUDED.applied_at, "
        "desired = EXCLUDED.desired, source = EXCLUDED.source, relfilenode = EXCLUDED.relfilenode, "
        "columns = EXCLUDED.columns, xmins = EXCLUDED.xmins, rows = EXCLUDED.rows, oldest_xid = EXCLUDED.oldest_xid, "
        "ranges = EXCLUDED.ranges, units = EXCLUDED.units"
    ).format(
        fingerprints=FINGERPRINTS,
        schema=sql.Literal(schema),
        table=sql.Literal(table),
        applied_at=sql.Literal(applied_at),
        desired=sql.Literal(desired),
        source=sql.Literal(source),
        reg=_regclass(schema, table),
        columns=_columns_state(schema, table),
        wrap=sql.Literal(_XID_WRAP),
        xmins=xmins,
        ranges=recorded_ranges,
        units=sql.Literal(units),
    )


def recorded_ranges_sql(schema: str, tables: list[str]) -> sql.Composed:
    """(table name, ranges, units) recorded of these tables, for those that have statistics (no row
    for a table without either: its ranges are read through its key's index only when PostgreSQL
    knows the table, see fingerprint.analyze_sql)."""
    return sql.SQL(
        "SELECT f.table_name, f.ranges, f.units FROM {} f JOIN pg_class c "
        "ON c.oid = to_regclass(quote_ident(f.target_schema) || '.' || quote_ident(f.table_name)) "
        "WHERE f.target_schema = {} AND f.table_name = ANY({}) AND f.ranges IS NOT NULL AND c.reltuples >= 0"
    ).format(FINGERPRINTS, sql.Literal(schema), sql.Literal(tables))


def forget_fingerprints_sql(schema: str, tables: list[str]) -> sql.Composed:
    """Forget what applies recorded of these tables (their rows change and are not verified)."""
    return sql.SQL("DELETE FROM {} WHERE target_schema = {} AND table_name = ANY({})").format(
        FINGERPRINTS, sql.Literal(schema), sql.Literal(tables)
    )


def unchanged_since_sql(schema: str, table: str, desired: str) -> sql.Composed:
    """One row (the table's name, the apply's time in UTC, the rows it left, the digest of the
    source's pages it recorded) if the table is as the last apply that recorded it left it, with
    the same spec for it; no row otherwise. The caller compares the source's pages. Several such
    queries joined by UNION ALL check many tables in one round trip."""
    return sql.SQL(
        "(SELECT f.table_name, to_char(f.applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC', "
        "f.rows, f.source "
        "FROM {fingerprints} f WHERE f.target_schema = {schema} AND f.table_name = {table} "
        "AND f.desired = {desired} "
        "AND f.relfilenode = pg_relation_filenode({reg}) AND f.columns = {columns} "
        "AND txid_snapshot_xmax(txid_current_snapshot()) - f.oldest_xid < {half} "
        "AND f.xmins = (SELECT coalesce(jsonb_object_agg(s.x, s.n), '{{}}'::jsonb) FROM ({xmins}) s))"
    ).format(
        fingerprints=FINGERPRINTS,
        schema=sql.Literal(schema),
        table=sql.Literal(table),
        desired=sql.Literal(desired),
        reg=_regclass(schema, table),
        columns=_columns_state(schema, table),
        half=sql.Literal(_XID_WRAP // 2),
        xmins=_xmin_counts(schema, table),
    )


# etl.set_aside: the source rows a CHECK refused at an apply with on_error: reject, by the hash
# verification computes of a source row (a row whose values change gets a new hash and arrives).
# A later plan leaves them out of its row diff and a sync out of its staged rows, so they are
# neither "to insert" again nor set aside again at each apply; verification reads the same rows.


def record_set_aside_sql(schema: str, table: str, hashes: list[int], recorded_at: str) -> sql.Composed:
    """Record, in the apply's transaction, the hashes of source rows a check of `table` refused."""
    values = sql.SQL(", ").join(
        sql.SQL("({}, {}, {}, {})").format(*(sql.Literal(v) for v in (schema, table, str(h), recorded_at)))
        for h in sorted(set(hashes))
    )
    return sql.SQL(
        "INSERT INTO {} (target_schema, table_name, hash, recorded_at) VALUES {} "
        "ON CONFLICT (target_schema, table_name, hash) DO UPDATE SET recorded_at = EXCLUDED.recorded_at"
    ).format(SET_ASIDE, values)


def forget_set_aside_sql(schema: str, tables: list[str]) -> sql.Composed:
    """Forget the rows set aside of tables loaded afresh (their checks run on every row again)."""
    return sql.SQL("DELETE FROM {} WHERE target_schema = {} AND table_name = ANY({})").format(
        SET_ASIDE, sql.Literal(schema), sql.Literal(tables)
    )


def recorded_set_aside_sql(schema: str) -> sql.Composed:
    """(table, hash, time of the latest apply that recorded one, in UTC) of each row set aside."""
    return sql.SQL(
        "SELECT table_name, hash, to_char(max(recorded_at) OVER (PARTITION BY table_name) AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD HH24:MI:SS') || ' UTC' FROM {} WHERE target_schema = {} ORDER BY table_name, hash"
    ).format(SET_ASIDE, sql.Literal(schema))
