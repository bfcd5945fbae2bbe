"""What apply keeps for `etl rollback`, as SQL: before it changes a table, a copy of it (rows,
columns, defaults, keys, indexes and their names) goes to a schema of the run, `etl_history_<time>`;
`etl.history` records it, with the foreign keys the copy cannot hold (they would tie it to live
tables), the enum columns it keeps as text (so the live enum types stay free to change) and the
state of the table's sequences (a sequence may be past the largest id, e.g. SQLite's AUTOINCREMENT)
and its triggers with their functions (the copy has none, and the run may drop, change or re-create
them). Rollback moves the copy back.

A keyed table whose rows only a sync changes is kept by its changes instead (`changes_copy_statements`):
the copy holds, for each row the sync updates or deletes, its version before the run, and for each row
it inserts, its key, with a first column `etl_op` saying which ('u', 'd', 'i'); the sync fills it from
its staging table before it writes (etl/run/sync.py). Rollback then puts those rows back in the live
table rather than replacing it. Pure: statements and queries only."""

from __future__ import annotations

import re

from psycopg import sql

from etl.postgres.metadata import HISTORY

HISTORY_SCHEMA_PREFIX = "etl_history_"


def history_schema(started_at: str) -> str:
    """The schema holding what the run that started at `started_at` (ISO text) replaced."""
    return HISTORY_SCHEMA_PREFIX + re.sub(r"\D", "", started_at)[:20]


def _regclass(schema: str, table: str) -> sql.Composable:
    return sql.Literal(sql.Identifier(schema, table).as_string(None))


def keep_statements(schema: str, table: str, kept_in: str) -> list[sql.Composable]:
    """Copy `schema.table` into `kept_in`: columns, defaults, identity and CHECKs (LIKE), then the
    rows; keys and indexes follow (index_statements), built once rather than row by row."""
    return [
        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(kept_in)),
        sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL EXCLUDING INDEXES)").format(
            sql.Identifier(kept_in, table), sql.Identifier(schema, table)
        ),
        _copy_rows_sql(sql.Identifier(schema, table), sql.Identifier(kept_in, table)),
    ]


def changes_copy_statements(
    schema: str, table: str, kept_in: str, change_column: str
) -> list[sql.Composable]:
    """An empty copy of `schema.table`'s columns (types only: no constraint, default or identity,
    so a row of the copy may hold just a key) behind a first column `change_column`, which the
    sync fills with the rows it changes."""
    return [
        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(kept_in)),
        sql.SQL("CREATE TABLE {} AS SELECT NULL::text AS {}, t.* FROM {} AS t WITH NO DATA").format(
            sql.Identifier(kept_in, table), sql.Identifier(change_column), sql.Identifier(schema, table)
        ),
    ]


def _copy_rows_sql(source: sql.Identifier, copy: sql.Identifier) -> sql.Composed:
    """INSERT the rows of `source` into `copy`, naming every column but the generated ones (which
    PostgreSQL refuses values for and computes again): one DO block, since the list is the
    catalog's."""
    body = sql.SQL(
        "DECLARE cols text; BEGIN "
        "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO cols FROM pg_attribute "
        "WHERE attrelid = {}::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = ''; "
        "EXECUTE format('INSERT INTO %s (%s) SELECT %s FROM %s', {}, cols, cols, {}); END"
    ).format(
        sql.Literal(source.as_string(None)),
        sql.Literal(copy.as_string(None)),
        sql.Literal(source.as_string(None)),
    )
    return sql.SQL("DO {}").format(sql.Literal(body.as_string(None)))


def indexes_query(schema: str, table: str) -> sql.Composed:
    """PostgreSQL: (name, constraint definition or NULL, index definition, the definition's head up
    to USING) of the table's keys and indexes."""
    return sql.SQL(
        "SELECT i.relname::text, pg_get_constraintdef(k.oid), pg_get_indexdef(x.indexrelid), "
        "'CREATE ' || CASE WHEN x.indisunique THEN 'UNIQUE ' ELSE '' END || 'INDEX ' || quote_ident(i.relname) "
        "|| ' ON ' || quote_ident(n.nspname) || '.' || quote_ident(t.relname) || ' USING ', k.conname::text "
        "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
        "JOIN pg_namespace n ON n.oid = t.relnamespace "
        # A foreign key onto the table itself has the key's index as its conindid too: it is no
        # index of the table's, and the copy must not hold it (it would point at the live table).
        "LEFT JOIN pg_constraint k ON k.conindid = x.indexrelid AND k.conrelid = x.indrelid "
        "AND k.contype IN ('p', 'u', 'x') "
        "WHERE x.indrelid = {}::regclass ORDER BY k.contype = 'p' DESC, i.relname"
    ).format(_regclass(schema, table))


def index_statements(kept_in: str, table: str, indexes: list[tuple]) -> list[sql.Composable]:
    """The original's keys and indexes on the copy, under the original names. Definitions are
    PostgreSQL's own text (pg_get_constraintdef, pg_get_indexdef), pointed at the copy."""
    statements: list[sql.Composable] = []
    for name, constraint_def, index_def, head, constraint in indexes:
        if constraint is not None:
            statements.append(
                sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                    sql.Identifier(kept_in, table), sql.Identifier(constraint), sql.SQL(constraint_def)
                )
            )
            continue
        if not index_def.startswith(head):
            raise ValueError(f"unexpected index definition for {name!r}: {index_def!r}")
        statements.append(
            sql.SQL("CREATE {}INDEX {} ON {} USING {}").format(
                sql.SQL("UNIQUE " if head.startswith("CREATE UNIQUE") else ""),
                sql.Identifier(name),
                sql.Identifier(kept_in, table),
                sql.SQL(index_def[len(head) :]),
            )
        )
    return statements


def enum_columns_query(kept_in: str, table: str) -> sql.Composed:
    """PostgreSQL: (column, enum type name, default text) of the copy's enum columns."""
    return sql.SQL(
        "SELECT a.attname::text, t.typname::text, pg_get_expr(d.adbin, d.adrelid) "
        "FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
        "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
        "WHERE a.attrelid = {}::regclass AND a.attnum > 0 AND NOT a.attisdropped AND t.typtype = 'e'"
    ).format(_regclass(kept_in, table))


def enum_to_text_statements(
    kept_in: str, table: str, columns: list[tuple[str, str, str | None]]
) -> list[sql.Composable]:
    statements: list[sql.Composable] = []
    for column, _enum, _default in columns:
        statements.append(
            sql.SQL("ALTER TABLE {} ALTER COLUMN {} DROP DEFAULT").format(
                sql.Identifier(kept_in, table), sql.Identifier(column)
            )
        )
        statements.append(
            sql.SQL("ALTER TABLE {} ALTER COLUMN {} TYPE text").format(
                sql.Identifier(kept_in, table), sql.Identifier(column)
            )
        )
    return statements


def serial_sequences_query(schema: str, table: str) -> sql.Composed:
    """PostgreSQL: (column, sequence name, type, start, increment, min, max, cache, cycle) of the
    table's serial columns: not identities, with a default that takes values from a sequence the
    column owns."""
    return sql.SQL(
        "SELECT a.attname::text, c.relname::text, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, "
        "s.seqmin, s.seqmax, s.seqcache, s.seqcycle FROM pg_attribute a "
        "JOIN pg_class c ON c.oid = pg_get_serial_sequence({}, a.attname)::regclass "
        "JOIN pg_sequence s ON s.seqrelid = c.oid "
        "WHERE a.attrelid = {}::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attidentity = '' "
        "ORDER BY a.attnum"
    ).format(_regclass(schema, table), _regclass(schema, table))


def serial_sequence_statements(kept_in: str, table: str, sequences: list[tuple]) -> list[sql.Composable]:
    """The copy's serial columns take their values from sequences of their own, under the
    original names: LIKE copies the default, which names the live table's sequence, and the copy
    would then depend on it (dropping the live table would fail). Rollback moves them back with
    the copy."""
    statements: list[sql.Composable] = []
    for column, name, data_type, start, increment, minimum, maximum, cache, cycle in sequences:
        statements.append(
            sql.SQL(
                "CREATE SEQUENCE {} AS {} INCREMENT BY {} MINVALUE {} MAXVALUE {} START WITH {} CACHE {} {} "
                "OWNED BY {}"
            ).format(
                sql.Identifier(kept_in, name),
                sql.SQL(data_type),  # PostgreSQL's own text (format_type) of a sequence's integer type
                *(sql.Literal(int(v)) for v in (increment, minimum, maximum, start, cache)),
                sql.SQL("CYCLE" if cycle else "NO CYCLE"),
                sql.Identifier(kept_in, table, column),
            )
        )
        statements.append(
            sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET DEFAULT nextval({}::regclass)").format(
                sql.Identifier(kept_in, table),
                sql.Identifier(column),
                sql.Literal(sql.Identifier(kept_in, name).as_string(None)),
            )
        )
    return statements


def sequences_query(schema: str, table: str) -> sql.Composed:
    """PostgreSQL: (column, sequence schema, sequence name) of the table's columns that take
    their values from a sequence (identity or serial)."""
    return sql.SQL(
        "SELECT a.attname::text, n.nspname::text, c.relname::text FROM pg_attribute a "
        "JOIN pg_class c ON c.oid = pg_get_serial_sequence({}, a.attname)::regclass "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE a.attrelid = {}::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"
    ).format(_regclass(schema, table), _regclass(schema, table))


def sequence_state_query(schema: str, sequence: str) -> sql.Composed:
    """PostgreSQL: (last_value, is_called) of a sequence."""
    return sql.SQL("SELECT last_value, is_called FROM {}").format(sql.Identifier(schema, sequence))


def foreign_keys_query(schema: str, table: str, referencing: bool = False) -> sql.Composed:
    """PostgreSQL: (table, constraint name, definition) of the foreign keys the table holds, or
    (`referencing`) of those in other tables that reference it."""
    side = "k.confrelid" if referencing else "k.conrelid"
    extra = sql.SQL(" AND k.conrelid <> k.confrelid") if referencing else sql.SQL("")
    return sql.SQL(
        "SELECT n.nspname::text, c.relname::text, k.conname::text, pg_get_constraintdef(k.oid) "
        "FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE k.contype = 'f' AND {} = {}::regclass{}"
    ).format(sql.SQL(side), _regclass(schema, table), extra)


def triggers_query(schema: str, table: str) -> sql.Composed:
    """PostgreSQL: (name, definition, function, function's definition) of the table's own triggers
    (not those PostgreSQL makes for foreign keys), as pg_get_triggerdef and pg_get_functiondef print
    them; the function's definition is NULL for one of PostgreSQL's own (pg_catalog's), which
    nothing can change."""
    return sql.SQL(
        "SELECT t.tgname::text, pg_get_triggerdef(t.oid), t.tgfoid::regprocedure::text, "
        "CASE WHEN p.pronamespace <> 'pg_catalog'::regnamespace THEN pg_get_functiondef(p.oid) END "
        "FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid "
        "WHERE t.tgrelid = {}::regclass AND NOT t.tgisinternal ORDER BY t.tgname"
    ).format(_regclass(schema, table))


def function_definition_query(function: str) -> sql.Composed:
    """PostgreSQL: one row, the definition of `function` (a signature as regprocedure prints it)
    as pg_get_functiondef prints it now, or NULL when there is no such function."""
    return sql.SQL(
        "SELECT CASE WHEN to_regprocedure({f}) IS NOT NULL THEN pg_get_functiondef(to_regprocedure({f})) END"
    ).format(f=sql.Literal(function))


def dependent_views_query(schema: str, tables: list[str]) -> sql.Composed:
    """PostgreSQL: (view name, definition, depth) of the views of `schema` that read any of
    `tables`, directly (depth 1) or through other views; the definition as pg_get_viewdef prints
    it with the schema as the search path (the caller sets it)."""
    regclasses = sql.SQL(", ").join(sql.SQL("{}::regclass").format(_regclass(schema, t)) for t in tables)
    return sql.SQL(
        "WITH RECURSIVE reader(oid, depth) AS ("
        "  SELECT r.ev_class, 1 FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid "
        "  WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid IN ({}) AND r.ev_class <> d.refobjid "
        "  UNION "
        "  SELECT r.ev_class, reader.depth + 1 FROM reader JOIN pg_depend d ON d.refobjid = reader.oid "
        "  JOIN pg_rewrite r ON r.oid = d.objid "
        "  WHERE d.classid = 'pg_rewrite'::regclass AND r.ev_class <> d.refobjid AND reader.depth < 100) "
        "SELECT c.relname::text, pg_get_viewdef(c.oid), max(reader.depth) FROM reader "
        "JOIN pg_class c ON c.oid = reader.oid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind = 'v' AND n.nspname = {} GROUP BY c.oid, c.relname ORDER BY 3, 1"
    ).format(regclasses, sql.Literal(schema))


def record_statement(
    started_at: str,
    schema: str,
    table: str,
    kept_in: str | None,
    foreign_keys: str,
    enum_columns: str,
    sequences: str = "[]",
    triggers: str = "[]",
    key_columns: str | None = None,
) -> sql.Composed:
    """The row of etl.history recording what the run keeps of `table`; `key_columns` (a JSON
    list): the copy holds only the rows the run changes (its rows are counted at rollback)."""
    rows = (
        sql.SQL("(SELECT count(*) FROM {})").format(sql.Identifier(kept_in, table))
        if kept_in and key_columns is None
        else sql.SQL("NULL")
    )
    return sql.SQL(
        "INSERT INTO {} (run_started_at, target_schema, table_name, kept_in, rows, foreign_keys, enum_columns, "
        "sequences, triggers, key_columns) "
        "VALUES ({}, {}, {}, {}, {}, {}::jsonb, {}::jsonb, {}::jsonb, {}::jsonb, {}::jsonb)"
    ).format(
        HISTORY,
        sql.Literal(started_at),
        sql.Literal(schema),
        sql.Literal(table),
        sql.Literal(kept_in),
        rows,
        sql.Literal(foreign_keys),
        sql.Literal(enum_columns),
        sql.Literal(sequences),
        sql.Literal(triggers),
        sql.Literal(key_columns),
    )


def record_view_statement(started_at: str, schema: str, view: str, existed: bool) -> sql.Composed:
    """Record a view the run drops or creates, with its definition as PostgreSQL prints it now
    (read before the run drops it), or NULL when it does not exist yet: rollback restores the one
    and drops the other."""
    definition = (
        sql.SQL("pg_get_viewdef({}::regclass)").format(_regclass(schema, view))
        if existed
        else sql.SQL("NULL")
    )
    return sql.SQL(
        "INSERT INTO {} (run_started_at, target_schema, table_name, is_view, view_definition) "
        "VALUES ({}, {}, {}, true, {})"
    ).format(HISTORY, sql.Literal(started_at), sql.Literal(schema), sql.Literal(view), definition)


def expired_query(schema: str, retention: int) -> sql.Composed:
    """PostgreSQL: the history schemas of this target schema beyond the newest `retention` runs."""
    return sql.SQL(
        "SELECT DISTINCT kept_in FROM {} WHERE target_schema = {} AND kept_in IS NOT NULL AND run_started_at NOT IN "
        "(SELECT DISTINCT run_started_at FROM {} WHERE target_schema = {} ORDER BY run_started_at DESC LIMIT {})"
    ).format(HISTORY, sql.Literal(schema), HISTORY, sql.Literal(schema), sql.Literal(retention))


def expire_statements(schema: str, kept_in: list[str], retention: int) -> list[sql.Composable]:
    statements: list[sql.Composable] = [
        sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)) for name in kept_in
    ]
    statements.append(
        sql.SQL(
            "DELETE FROM {} WHERE target_schema = {} AND run_started_at NOT IN "
            "(SELECT DISTINCT run_started_at FROM {} WHERE target_schema = {} ORDER BY run_started_at DESC LIMIT {})"
        ).format(HISTORY, sql.Literal(schema), HISTORY, sql.Literal(schema), sql.Literal(retention))
    )
    return statements


def view_readers_query(schema: str, view: str) -> sql.Composed:
    """PostgreSQL: (schema, name) of each view that reads `schema.view` directly."""
    return sql.SQL(
        "SELECT DISTINCT n.nspname::text, c.relname::text FROM pg_depend d "
        "JOIN pg_rewrite r ON r.oid = d.objid JOIN pg_class c ON c.oid = r.ev_class "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = {}::regclass AND r.ev_class <> d.refobjid "
        "ORDER BY 1, 2"
    ).format(_regclass(schema, view))
