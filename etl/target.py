"""The PostgreSQL side: connection URLs (and keeping passwords out of every message), and what
the target already holds."""

from __future__ import annotations

import re

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .errors import TargetError
from .planner import TargetState


def password_of(url: str) -> str | None:
    try:
        return conninfo_to_dict(url).get("password") or None  # type: ignore[return-value]
    except psycopg.ProgrammingError:
        match = re.search(r"://[^:/@]*:([^@]*)@", url)
        return match.group(1) if match else None


def redact(text: str, url: str | None) -> str:
    """`text` with the password of `url` (and any URL password at all) replaced by ***."""
    if url:
        secret = password_of(url)
        if secret:
            text = text.replace(secret, "***")
    text = re.sub(r"(postgres(?:ql)?://[^:/@\s]*:)[^@\s]*@", r"\1***@", text)
    return re.sub(r"(password\s*=\s*)('[^']*'|\S+)", r"\1***", text)


def display_url(url: str) -> str:
    return redact(url, url)


def libpq_conninfo(url: str) -> str:
    """The URL as libpq key=value text, the form DuckDB's ATTACH takes most reliably."""
    try:
        return make_conninfo(url)
    except psycopg.ProgrammingError as exc:
        raise TargetError(f"invalid PostgreSQL URL '{display_url(url)}': {redact(str(exc), url)}") from exc


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
