"""The benchmark's SQLite databases: built once per size and seed, deterministic, cached by file name.

* clean: ``users`` (rows/10) and ``events`` (rows), ISO-text datetimes, 0/1 booleans, 16-byte BLOBs,
  a foreign key and an index on (user_id, happened_at): the values every tool can move.
* shop: ``customers`` (rows/20), ``orders`` (rows/4) and ``order_lines`` (rows): the same kind of
  clean data with another schema: ISO-text dates, REAL amounts, an integer quantity, two foreign
  keys and one single-column index.
* chat: the chat-app sample of ``samples/make_chat_app.py`` (Prisma's epoch-millisecond datetimes).
* blobs: one table of large BLOBs (100 rows of 16 MB by default).
* wide: many small tables (10 rows each: integer key, text, datetime, one index, a foreign key to
  the table before): the fixed cost per table, not per row.
"""

from __future__ import annotations

import hashlib
import os
import random
import sqlite3
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMA_VERSION = 1  # bump when a builder changes, so cached files are not reused
BATCH = 10_000
BASE_TIME = datetime(2024, 1, 1)
YEAR_SECONDS = 365 * 86_400
EVENT_KINDS = ("click", "view", "purchase", "signup", "logout", "search", "share", "comment")

CLEAN_TABLES = (
    """CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    email TEXT UNIQUE,
    name TEXT,
    created_at DATETIME,
    is_active BOOLEAN,
    score REAL,
    avatar BLOB
)""",
    """CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    kind TEXT,
    payload TEXT,
    amount REAL,
    happened_at DATETIME,
    flag BOOLEAN,
    checksum BLOB
)""",
)
CLEAN_INDEX = "CREATE INDEX events_user_id_happened_at_idx ON events (user_id, happened_at)"
SHOP_TABLES = (
    """CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL,
    name TEXT NOT NULL,
    country TEXT,
    signed_up DATE
)""",
    """CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    ordered_at DATETIME NOT NULL,
    status TEXT NOT NULL,
    total REAL
)""",
    """CREATE TABLE order_lines (
    id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL REFERENCES orders(id),
    sku TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    unit_price REAL NOT NULL,
    note TEXT
)""",
)
SHOP_INDEX = "CREATE INDEX order_lines_order_id_idx ON order_lines (order_id)"
COUNTRIES = ("DE", "FR", "NL", "SE", "US", "JP", "BR", "IN")
ORDER_STATUSES = ("paid", "shipped", "delivered", "returned")
BLOBS_DDL = "CREATE TABLE blobs (id INTEGER PRIMARY KEY, name TEXT NOT NULL, data BLOB NOT NULL)"


@dataclass(frozen=True)
class Dataset:
    """A built SQLite file and how to change 0.1% of its biggest table (for `etl plan`)."""

    name: str
    path: Path
    big_table: str
    mutation: str  # a SQLite UPDATE that changes about 0.1% of big_table's rows
    size: int | None = None  # the --rows it was built for (clean, shop)

    @property
    def label(self) -> str:
        """The name, and the size when there is one: how reports and target databases tell runs apart."""
        return self.name if self.size is None else f"{self.name} {self.size:,}"

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size


# --- building --------------------------------------------------------------------------------------


def _build_atomically(path: Path, rebuild: bool, build: Callable[[sqlite3.Connection], None]) -> None:
    """Run ``build`` on a fresh file next to ``path`` and rename it into place; keep a cached ``path``."""
    if path.exists() and not rebuild:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    db = sqlite3.connect(partial, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode = OFF")
        db.execute("PRAGMA synchronous = OFF")
        db.execute("BEGIN")
        build(db)
        db.execute("COMMIT")
    finally:
        db.close()
    os.replace(partial, path)


def _iso(seconds: float) -> str:
    return (BASE_TIME + timedelta(seconds=int(seconds))).strftime("%Y-%m-%d %H:%M:%S")


def _digest(kind: str, key: int) -> bytes:
    return hashlib.md5(f"{kind}:{key}".encode()).digest()  # 16 bytes, deterministic


def _user_rows(count: int, rng: random.Random) -> Iterator[tuple]:
    for i in range(1, count + 1):
        yield (
            i,
            f"user{i}@example.com",
            f"User {i}",
            _iso(rng.random() * YEAR_SECONDS),
            int(rng.random() < 0.9),
            round(rng.random() * 1000, 3),
            _digest("avatar", i),
        )


def _event_rows(count: int, users: int, rng: random.Random) -> Iterator[tuple]:
    for i in range(1, count + 1):
        kind = EVENT_KINDS[i % len(EVENT_KINDS)]
        yield (
            i,
            rng.randint(1, users),
            kind,
            f'{{"event": {i}, "kind": "{kind}", "page": "/p/{i % 997}", "ref": "r{rng.randint(0, 99999)}"}}',
            round(rng.random() * 500, 2),
            _iso(rng.random() * YEAR_SECONDS),
            int(i % 3 == 0),
            _digest("event", i),
        )


def _insert(db: sqlite3.Connection, table: str, columns: int, rows: Iterator[tuple]) -> None:
    sql = f"INSERT INTO {table} VALUES ({', '.join('?' * columns)})"
    batch: list[tuple] = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            db.executemany(sql, batch)
            batch.clear()
    if batch:
        db.executemany(sql, batch)


def clean(workdir: Path, rows: int, seed: int, rebuild: bool) -> Dataset:
    """``events`` with ``rows`` rows and ``users`` with rows/10."""
    path = workdir / f"clean-v{SCHEMA_VERSION}-{rows}-s{seed}.db"
    users = max(1, rows // 10)

    def build(db: sqlite3.Connection) -> None:
        rng = random.Random(seed)
        for statement in CLEAN_TABLES:
            db.execute(statement)
        _insert(db, "users", 7, _user_rows(users, rng))
        _insert(db, "events", 8, _event_rows(rows, users, rng))
        db.execute(CLEAN_INDEX)  # after the rows: built once, not maintained row by row

    _build_atomically(path, rebuild, build)
    return Dataset("clean", path, "events", "UPDATE events SET amount = amount + 1 WHERE id % 1000 = 0", rows)


def _customer_rows(count: int, rng: random.Random) -> Iterator[tuple]:
    for i in range(1, count + 1):
        signed_up = (BASE_TIME + timedelta(days=rng.randrange(365))).strftime("%Y-%m-%d")
        yield (i, f"customer{i}@example.com", f"Customer {i}", COUNTRIES[i % len(COUNTRIES)], signed_up)


def _order_rows(count: int, customers: int, rng: random.Random) -> Iterator[tuple]:
    for i in range(1, count + 1):
        status = ORDER_STATUSES[i % len(ORDER_STATUSES)]
        yield (
            i,
            rng.randint(1, customers),
            _iso(rng.random() * YEAR_SECONDS),
            status,
            round(rng.random() * 900, 2),
        )


def _order_line_rows(count: int, orders: int, rng: random.Random) -> Iterator[tuple]:
    for i in range(1, count + 1):
        note = None if i % 5 else f"gift wrap, line {i}"
        yield (
            i,
            rng.randint(1, orders),
            f"SKU-{rng.randint(0, 49_999):05d}",
            rng.randint(1, 9),
            round(rng.random() * 120, 2),
            note,
        )


def shop(workdir: Path, rows: int, seed: int, rebuild: bool) -> Dataset:
    """``order_lines`` with ``rows`` rows, ``orders`` with rows/4 and ``customers`` with rows/20."""
    path = workdir / f"shop-v{SCHEMA_VERSION}-{rows}-s{seed}.db"
    customers, orders = max(1, rows // 20), max(1, rows // 4)

    def build(db: sqlite3.Connection) -> None:
        rng = random.Random(seed)
        for statement in SHOP_TABLES:
            db.execute(statement)
        _insert(db, "customers", 5, _customer_rows(customers, rng))
        _insert(db, "orders", 5, _order_rows(orders, customers, rng))
        _insert(db, "order_lines", 6, _order_line_rows(rows, orders, rng))
        db.execute(SHOP_INDEX)

    _build_atomically(path, rebuild, build)
    return Dataset(
        "shop",
        path,
        "order_lines",
        "UPDATE order_lines SET quantity = quantity + 1 WHERE id % 1000 = 0",
        rows,
    )


def blobs(workdir: Path, count: int, megabytes: int, seed: int, rebuild: bool) -> Dataset:
    """``count`` rows, each with a BLOB of ``megabytes`` MB of random (incompressible) bytes."""
    path = workdir / f"blobs-v{SCHEMA_VERSION}-{count}x{megabytes}mb-s{seed}.db"

    def build(db: sqlite3.Connection) -> None:
        db.execute(BLOBS_DDL)
        for i in range(1, count + 1):  # one row at a time: memory stays at one blob
            data = random.Random(seed * 1_000_003 + i).randbytes(megabytes << 20)
            db.execute("INSERT INTO blobs VALUES (?, ?, ?)", (i, f"blob-{i}", data))

    _build_atomically(path, rebuild, build)
    return Dataset("blobs", path, "blobs", "UPDATE blobs SET name = name || '!' WHERE id % 1000 = 0")


def chat(workdir: Path, messages: int, users: int, seed: int, rebuild: bool) -> Dataset:
    """The chat-app sample (samples/make_chat_app.py) with ``messages`` messages."""
    path = workdir / f"chat-{messages}m-{users}u-s{seed}.db"
    if rebuild or not path.exists():
        sys.path.insert(0, str(REPO_ROOT / "samples"))
        from make_chat_app import build_chat_app

        build_chat_app(path, users=users, messages=messages, seed=seed, force=True)
    return Dataset(
        "chat",
        path,
        "Message",
        "UPDATE \"Message\" SET body = coalesce(body, '') || ' (edited)' WHERE rowid % 1000 = 0",
    )


def wide(workdir: Path, tables: int, rows: int, seed: int, rebuild: bool) -> Dataset:
    """``tables`` tables ``t00001``... of ``rows`` rows each; each but the first refers to the one before."""
    path = workdir / f"wide-v{SCHEMA_VERSION}-{tables}x{rows}-s{seed}.db"

    def build(db: sqlite3.Connection) -> None:
        rng = random.Random(seed)
        for t in range(1, tables + 1):
            name, before = f"t{t:05d}", f"t{t - 1:05d}"
            parent = f", parent_id INTEGER REFERENCES {before}(id)" if t > 1 else ", parent_id INTEGER"
            db.execute(
                f"CREATE TABLE {name} (id INTEGER PRIMARY KEY, label TEXT NOT NULL, "
                f"created_at DATETIME{parent})"
            )
            db.execute(f"CREATE INDEX {name}_created_at_idx ON {name} (created_at)")
            db.executemany(
                f"INSERT INTO {name} VALUES (?, ?, ?, ?)",
                [
                    (i, f"{name} row {i}", _iso(rng.random() * YEAR_SECONDS), i if t > 1 else None)
                    for i in range(1, rows + 1)
                ],
            )

    _build_atomically(path, rebuild, build)
    first = "t00001"
    return Dataset("wide", path, first, f"UPDATE {first} SET label = label || '!' WHERE id = 1")


# --- reading back ----------------------------------------------------------------------------------


def open_read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


def table_names(db: sqlite3.Connection) -> list[str]:
    return [
        name
        for (name,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
            "ORDER BY rowid"
        )
    ]


def quote(name: str) -> str:
    """A double-quoted identifier (the same rules in SQLite, DuckDB and PostgreSQL)."""
    return '"' + name.replace('"', '""') + '"'


def row_counts(path: Path) -> dict[str, int]:
    db = open_read_only(path)
    try:
        return {t: db.execute(f"SELECT count(*) FROM {quote(t)}").fetchone()[0] for t in table_names(db)}
    finally:
        db.close()
