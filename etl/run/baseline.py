"""What Prisma's baseline needs written (etl/core/prisma.py), found by reading the migrations
folder and the target's `_prisma_migrations`. Changes nothing."""

from __future__ import annotations

from pathlib import Path

import psycopg
from psycopg import sql

from etl.core.plan import WritePrismaBaseline
from etl.core.prisma import HISTORY_TABLE, LOCK_FILE, LOCK_TEXT, MIGRATION_FILE, MIGRATION_NAME, checksum
from etl.errors import PlanError, TargetError, first_line
from etl.postgres.target import connect, redact


def plan_prisma_baseline(
    migrations: Path, url: str, schema: str, migration: str
) -> WritePrismaBaseline | None:
    """The step that writes the baseline, or None when the folder and the row hold it already.
    A folder holding other migrations (the SQLite app's) is refused: etl never removes them."""
    files = _files_to_write(migrations, migration)
    create_history, record = _history_state(url, schema, migration)
    if not files and not record:
        return None
    return WritePrismaBaseline(schema, str(migrations), migration, files, record, create_history)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError(f"cannot read '{path}': {getattr(exc, 'strerror', None) or exc}") from exc


def _files_to_write(migrations: Path, migration: str) -> tuple[str, ...]:
    if migrations.exists() and not migrations.is_dir():
        raise PlanError(f"'{migrations}' (prisma.migrations) is not a folder; name a folder in the spec")
    others = sorted(
        p.name
        for p in (migrations.iterdir() if migrations.is_dir() else ())
        if p.is_dir() and p.name != MIGRATION_NAME
    )
    if others:
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        raise PlanError(
            f"'{migrations}' holds migrations etl did not write ({shown}): the SQLite app's history, which "
            f"does not apply to PostgreSQL; move the folder aside (mv {migrations} {migrations}-sqlite) and "
            "run again, or name another folder in the spec's prisma.migrations"
        )
    wanted = {MIGRATION_FILE: migration, LOCK_FILE: LOCK_TEXT}
    return tuple(name for name, text in wanted.items() if _read(migrations / name) != text)


def _history_state(url: str, schema: str, migration: str) -> tuple[bool, str]:
    """(whether `_prisma_migrations` is missing, what 0_init's row needs: insert, update or "")."""
    table = sql.Identifier(schema, HISTORY_TABLE)
    try:
        with connect(url) as conn:
            found = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table.as_string(None),)).fetchone()
            if not (found and found[0]):
                return True, "insert"
            rows = conn.execute(
                sql.SQL("SELECT migration_name, checksum FROM {} WHERE rolled_back_at IS NULL").format(table)
            ).fetchall()
    except psycopg.Error as exc:
        raise TargetError(f"reading {table.as_string(None)} failed: {redact(first_line(exc), url)}") from exc
    ours = [digest for name, digest in rows if name == MIGRATION_NAME]
    others = sorted({name for name, _ in rows if name != MIGRATION_NAME})
    if ours and ours[0] == checksum(migration):
        return False, ""
    if others:
        what = "after 0_init: the app has moved on with Prisma Migrate" if ours else "of another history"
        raise PlanError(
            f'"{schema}"."{HISTORY_TABLE}" holds migrations {what} ({", ".join(others[:3])}); etl does '
            "not rewrite Prisma's history: remove prisma: from the spec, or those rows from the table"
        )
    return False, "update" if ours else "insert"
