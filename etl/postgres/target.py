"""The PostgreSQL side: connection URLs (and keeping passwords out of every message), and what
the target already holds."""

from __future__ import annotations

import re

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from etl.core.locks import LockCapacity
from etl.core.plan import TargetState
from etl.errors import TargetError, first_line
from etl.postgres.metadata import (
    METADATA_SCHEMA,
    METADATA_TABLES,
    metadata_ddl,
    metadata_lock_sql,
    metadata_upgrades,
)

# Only the password's place in a URL or a libpq conninfo is masked: replacing the password's text
# everywhere turns a common password such as "postgres" into *** inside table names, values and
# the URL's scheme. The patterns follow libpq's own parsing: in a URL the password runs from the
# first ":" of the user info to the first "@" (no "/" before it, spaces allowed); in a conninfo a
# value is 'single quoted' with backslash escapes, or runs to the next space.
_URL_PASSWORD = re.compile(r"(\bpostgres(?:ql)?://[^:/@\n]*:)[^/@\n]*(?=@)")
_QUERY_PASSWORD = re.compile(r"([?&](?:ssl)?password=)[^&#\s]*")
_CONNINFO_PASSWORD = re.compile(
    r"(?<![?&\w])((?:PG|ssl)?password\s*=\s*)(?:'(?:[^'\\]|\\.)*'|(?:[^\s\\]|\\.)+)", re.IGNORECASE
)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


def _parses(url: str) -> bool:
    try:
        conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return False
    return True


def _mask_passwords(text: str) -> str:
    text = _URL_PASSWORD.sub(r"\1***", text)
    text = _QUERY_PASSWORD.sub(r"\1***", text)
    return _CONNINFO_PASSWORD.sub(r"\1***", text)


def redact(text: str, url: str | None) -> str:
    """`text` with the password of every PostgreSQL URL or conninfo in it replaced by ***, and
    `url` itself masked wherever it appears if libpq cannot parse it (where its password is is
    then unknown)."""
    if url and not _parses(url):
        text = text.replace(url, display_url(url))
        # libpq's message quotes the part of the text it could not read: any part may be the password.
        text = re.sub(r'"([^"]+)"', lambda m: '"***"' if m.group(1) in url else m.group(0), text)
    return _mask_passwords(text)


def holds_password(url: str) -> bool:
    """Whether the URL or conninfo carries a password (one libpq cannot parse is refused)."""
    try:
        return bool(conninfo_to_dict(url).get("password"))
    except psycopg.ProgrammingError as exc:
        raise TargetError(
            f"invalid PostgreSQL URL '{display_url(url)}': {redact(str(exc).strip(), url)} "
            "(write postgresql://user:password@host:port/dbname, or libpq's key=value pairs)"
        ) from exc


def display_url(url: str) -> str:
    """The URL as it may be shown: its password masked; a URL libpq cannot parse shows only its
    scheme, since its password could be anywhere in it."""
    if _parses(url):
        return _mask_passwords(url)
    scheme = _SCHEME.match(url)
    return (scheme.group(0) if scheme else "") + "***"


def libpq_conninfo(url: str) -> str:
    """The URL as libpq key=value text, the form DuckDB's ATTACH takes most reliably."""
    try:
        return make_conninfo(url)
    except psycopg.ProgrammingError as exc:
        raise TargetError(
            f"invalid PostgreSQL URL '{display_url(url)}': {redact(str(exc).strip(), url)}"
        ) from exc


def connect(url: str) -> psycopg.Connection:
    try:
        return psycopg.connect(url, connect_timeout=10, autocommit=True)
    except psycopg.Error as exc:
        message = redact(first_line(exc), url)
        raise TargetError(
            f"cannot connect to PostgreSQL at {display_url(url)}: {message}"
            " (give the right URL with --target URL or in the spec's target.url)"
        ) from exc


def read_target_state(url: str, schema: str) -> TargetState:
    with connect(url) as conn:
        exists = (
            conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone() is not None
        )
        rows = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'f')",
            (schema,),
        ).fetchall()
        enums = conn.execute(
            "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
            "WHERE n.nspname = %s AND t.typtype = 'e'",
            (schema,),
        ).fetchall()
    return TargetState(
        schema_exists=exists, tables=frozenset(r[0] for r in rows), enums=frozenset(r[0] for r in enums)
    )


def read_lock_capacity(url: str) -> LockCapacity:
    """The target server's settings that size its shared lock table."""
    with connect(url) as conn:
        # The processes PostgreSQL counts besides connections (MaxBackends): autovacuum workers and
        # their launcher, background workers, WAL senders.
        row = conn.execute(
            "SELECT current_setting('max_locks_per_transaction')::int, "
            "current_setting('max_connections')::int, current_setting('max_prepared_transactions')::int, "
            "current_setting('autovacuum_max_workers')::int + 1 + current_setting('max_worker_processes')::int "
            "+ current_setting('max_wal_senders')::int"
        ).fetchone()
    assert row is not None
    return LockCapacity(*row)


# What every apply does to etl's metadata: reads and records its runs (SELECT, INSERT), stages
# synced rows in tables of its own (CREATE), marks rolled-back copies and drops expired ones.
_METADATA_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")


def metadata_privileges_missing(conn: psycopg.Connection) -> list[str]:
    """The privileges the connected role lacks on etl's metadata schema and its tables, as GRANT
    would spell them ('CREATE ON SCHEMA etl', 'INSERT ON TABLE etl.runs'); none while they do not
    exist yet (creating them is checked by doing it)."""
    row = conn.execute(
        "SELECT has_schema_privilege(oid, 'USAGE'), has_schema_privilege(oid, 'CREATE') "
        "FROM pg_namespace WHERE nspname = %s",
        (METADATA_SCHEMA,),
    ).fetchone()
    if row is None:
        return []
    privileges = zip(("USAGE", "CREATE"), row, strict=True)
    missing = [f"{p} ON SCHEMA {METADATA_SCHEMA}" for p, held in privileges if not held]
    if not row[0]:
        return missing  # without USAGE PostgreSQL does not even say whether its tables exist
    for table in METADATA_TABLES:
        name = f"{METADATA_SCHEMA}.{table}"
        exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()
        if exists and exists[0]:
            held = conn.execute(
                "SELECT " + ", ".join(["has_table_privilege(%s, %s)"] * len(_METADATA_PRIVILEGES)),
                [v for p in _METADATA_PRIVILEGES for v in (name, p)],
            ).fetchone()
            lacked = [p for p, ok in zip(_METADATA_PRIVILEGES, held or (), strict=True) if not ok]
            if lacked:
                missing.append(f"{', '.join(lacked)} ON TABLE {name}")
    return missing


def _current_role(conn: psycopg.Connection) -> str:
    role = conn.execute("SELECT current_user").fetchone()
    return str(role[0]) if role else "?"


def metadata_privileges_error(conn: psycopg.Connection, missing: list[str]) -> TargetError:
    from psycopg import sql

    name = _current_role(conn)
    grantee = sql.Identifier(name).as_string(conn)
    grants = "; ".join(f"GRANT {privilege} TO {grantee}" for privilege in missing)
    return TargetError(
        f'role "{name}" lacks privileges on schema "{METADATA_SCHEMA}", where etl records its runs '
        f'({"; ".join(missing)}); nothing was changed: as the owner of schema "{METADATA_SCHEMA}" run '
        f"{grants}; or apply as a role that has them"
    )


def ensure_metadata(url: str) -> None:
    """Create etl's metadata schema and tables where they are missing, and commit them, before an
    apply's own transaction begins; then check the role may use them.

    Under a database-wide advisory lock: two first applies into two schemas of one database would
    otherwise both create them, and the later to commit would fail after its whole load (PostgreSQL's
    IF NOT EXISTS does not see a creation that is not committed yet). Only what is missing is created:
    CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the schema exists."""
    from psycopg import sql

    with connect(url) as conn:
        try:
            with conn.transaction():
                conn.execute(metadata_lock_sql())
                missing = metadata_privileges_missing(conn)
                if missing:
                    raise metadata_privileges_error(conn, missing)
                schema, *tables = metadata_ddl()
                names = (METADATA_SCHEMA, *(f"{METADATA_SCHEMA}.{t}" for t in METADATA_TABLES))
                present = conn.execute(
                    "SELECT to_regnamespace(%s) IS NOT NULL, "
                    + ", ".join(["to_regclass(%s) IS NOT NULL"] * len(METADATA_TABLES)),
                    names,
                ).fetchone()
                assert present is not None
                for statement, exists in zip([schema, *tables], present, strict=True):
                    if not exists:
                        conn.execute(statement)
                for upgrade in metadata_upgrades():
                    conn.execute(upgrade)
        except psycopg.errors.InsufficientPrivilege as exc:
            name = _current_role(conn)
            create = sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(
                sql.Identifier(METADATA_SCHEMA), sql.Identifier(name)
            )
            raise TargetError(
                f'role "{name}" may not create schema "{METADATA_SCHEMA}", where etl records its runs '
                f"({redact(first_line(exc), url)}); nothing was changed: as a superuser or "
                f"the database's owner run {create.as_string(conn)}; or apply as a role that may create "
                "schemas in this database"
            ) from exc
        except psycopg.Error as exc:
            message = redact(first_line(exc), url)
            raise TargetError(f'cannot create etl\'s metadata schema "{METADATA_SCHEMA}": {message}') from exc
