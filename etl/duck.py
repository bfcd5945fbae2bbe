"""The DuckDB side: a connection with the two extensions loaded from their wheels, and the one
audited place that quotes names and literals for DuckDB SQL."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import duckdb

from etl.errors import EtlError


def quote_ident(name: str) -> str:
    """A DuckDB identifier: always quoted, embedded quotes doubled (hostile names stay names)."""
    if "\x00" in name:
        raise EtlError(f"name {name!r} contains a NUL byte")
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """A DuckDB (and SQLite) string literal."""
    if "\x00" in value:
        raise EtlError(f"value {value!r} contains a NUL byte")
    return "'" + value.replace("'", "''") + "'"


def extension_file(package: str, name: str) -> Path:
    """The extension `name` for this DuckDB version, as the wheel `package` installed it."""
    import importlib

    module = importlib.import_module(package)
    version = duckdb.__version__
    path = Path(next(iter(module.__path__))) / "extensions" / f"v{version}" / f"{name}.duckdb_extension"
    if not path.is_file():
        raise EtlError(
            f"DuckDB extension '{name}' for DuckDB {version} is missing at {path}; "
            f"reinstall etl so that {package.replace('_', '-')}=={version} is installed"
        )
    return path


# DuckDB's own memory (temp tables, hash joins, sorts): beyond it, it spills to a directory of
# its own. Without a limit a large row diff holds memory in proportion to its rows; with it,
# memory stays flat and the diff is no slower. ETL_MEMORY_LIMIT_MB sets another.
MEMORY_LIMIT_MB = 160
MEMORY_LIMIT_VARIABLE = "ETL_MEMORY_LIMIT_MB"
# A single value cannot spill: the limit grows to this many times the source's largest record (a
# large BLOB needs an allocation larger than itself, and copies of it while converted and sent).
RECORD_COPIES = 6


_SPILL_PREFIX = "etl-duckdb-"


def spill_directory() -> str:
    """Where DuckDB spills: this process's own directory, which DuckDB creates only when it
    spills and removes when the connection closes (never the user's working directory)."""
    return os.path.join(tempfile.gettempdir(), f"{_SPILL_PREFIX}{os.getpid()}")


def remove_spill_directory() -> None:
    """Remove this process's spill directory: a connection that is never closed (one that lost
    PostgreSQL mid-transaction is kept alive, see executor._quarantine), an interrupted run or an
    early exit would otherwise leave its files behind."""
    shutil.rmtree(spill_directory(), ignore_errors=True)


def sweep_stale_spill_directories() -> list[str]:
    """Remove the spill directories of etl processes that are gone (killed with SIGKILL, or by the
    machine going down), and return them. A directory whose process is alive, or may be (another
    user's, which this process may not signal), is left alone."""
    removed: list[str] = []
    root = tempfile.gettempdir()
    try:
        names = os.listdir(root)
    except OSError:
        return removed
    for name in names:
        pid_text = name[len(_SPILL_PREFIX) :]
        if not name.startswith(_SPILL_PREFIX) or not pid_text.isdigit() or pid_text != str(int(pid_text)):
            continue
        pid = int(pid_text)
        if pid == os.getpid() or _alive(pid):
            continue
        path = os.path.join(root, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # exists, under another user; or a number no process can have: leave it
    return True


# The two extensions etl loads, and the pinned wheels (see pyproject.toml) that install them.
EXTENSIONS = (
    ("duckdb_extension_sqlite_scanner", "sqlite_scanner"),
    ("duckdb_extension_postgres_scanner", "postgres_scanner"),
)


def _with_extensions() -> duckdb.DuckDBPyConnection:
    # allow_unsigned_extensions: DuckDB would check each file's signature, reading every byte of
    # them every time a connection opens, which costs more than the rest of opening. It vouches
    # for nothing more than the pinned wheels pip installed them from, as the duckdb wheel itself
    # is, and etl loads no other file: no LOAD takes a path from a spec.
    con = duckdb.connect(
        config={
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "allow_unsigned_extensions": True,
            "temp_directory": spill_directory(),
        }
    )
    for package, name in EXTENSIONS:
        con.execute(f"LOAD {quote_literal(str(extension_file(package, name)))}")
    return con


def memory_limit_mb() -> int:
    """DuckDB's memory limit in MB: ETL_MEMORY_LIMIT_MB when set (at least 16), else MEMORY_LIMIT_MB."""
    text = os.environ.get(MEMORY_LIMIT_VARIABLE, "").strip()
    if not text:
        return MEMORY_LIMIT_MB
    if not text.isdigit() or int(text) < 16:
        raise EtlError(
            f"{MEMORY_LIMIT_VARIABLE}={text!r} is not a number of megabytes of at least 16: "
            f"set it to e.g. 400, or unset it for the default {MEMORY_LIMIT_MB}"
        )
    return int(text)


def connect(largest_row: int = 0) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with sqlite_scanner and postgres_scanner loaded from local files,
    its memory bounded (memory_limit_mb(), or room for RECORD_COPIES of `largest_row` bytes).

    autoinstall/autoload are switched off so DuckDB never reaches for the network.
    """
    limit_mb = max(memory_limit_mb(), RECORD_COPIES * largest_row // 2**20 + 1)
    con = _with_extensions()
    con.execute(f"SET memory_limit = {quote_literal(f'{limit_mb}MB')}")
    return configure(con)


def configure(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Per-connection settings every connection (cursors too) must have."""
    # Conversions of datetimes must not depend on the machine's time zone.
    con.execute("SET TimeZone = 'UTC'")
    return con


# What a failed DuckDB query raises. DuckDB's Python client raises UnicodeDecodeError instead of
# its own error when the message quotes a scanned value whose bytes are not UTF-8.
ERRORS = (duckdb.Error, UnicodeDecodeError)
