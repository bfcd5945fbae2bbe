"""The PostgreSQL side: connection URLs (and keeping passwords out of every message), and what
the target already holds."""

from __future__ import annotations

import re

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .errors import TargetError
from .planner import TargetState

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
        message = redact(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, url)
        raise TargetError(f"cannot connect to PostgreSQL at {display_url(url)}: {message}") from exc


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
