"""Repeated re-syncs of a source that changes at random, checked against the source row by row.

A seeded run builds a SQLite source (a rowid table of many leaf pages whose rows vary in size and
spill onto overflow pages, a second INTEGER PRIMARY KEY table, tables keyed by other than the
rowid, a WITHOUT ROWID table, a small one), writes its spec with `etl init` and applies it. Each
round then changes the source at random (updates of the same and of another size, inserts,
deletes of rows and of runs of rows, a rowid changed, bulk updates, VACUUM, a write held in the
-wal file, or nothing), and sometimes the target behind etl's back, and applies again; some
applies are disturbed by a write to either side after their plan or while they run, and are
followed by an undisturbed one. After every undisturbed apply each target table
must hold exactly its source table's rows, read with sqlite3 and psycopg here, not by etl's own
verification; a plan made first must count what the rows read here differ by. The machinery
under test skips tables whose pages are unchanged and compares changed rowid tables only in the
ranges whose leaf pages changed (tests/test_resync.py, etl/sqlite/pages.py): a bug there leaves
a changed row unsynced, which this comparison finds."""

from __future__ import annotations

import random
import sqlite3
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from typer.testing import CliRunner

from etl.cli import app
from etl.core.plan import DeleteRows, SyncRows
from etl.errors import EtlError
from etl.pipeline import apply, check, plan_for

runner = CliRunner()

SEEDS = (11, 23, 37)
ROUNDS = 10

ITEMS = 20_000  # a few hundred leaf pages: many ranges
EVENTS = 3_000  # a few dozen leaf pages: ranges, until deletes leave fewer than MIN_RANGES
CODES = 1_500
RANKS = 1_500
TAGS = 300

SCHEMA = """
CREATE TABLE items (id INTEGER PRIMARY KEY, title TEXT NOT NULL, qty INTEGER, price REAL,
                    note TEXT, payload BLOB);
CREATE TABLE events (event_id INTEGER PRIMARY KEY, kind TEXT NOT NULL, amount INTEGER);
CREATE TABLE codes (code TEXT PRIMARY KEY, n INTEGER, label TEXT);
CREATE TABLE ranks (x INTEGER PRIMARY KEY DESC, label TEXT NOT NULL);
CREATE TABLE tags (name TEXT PRIMARY KEY, n INTEGER) WITHOUT ROWID;
CREATE TABLE settings (id INTEGER PRIMARY KEY, k TEXT, v TEXT);
"""

# Each table's key and columns, in order; the key is the first column.
COLUMNS = {
    "items": ("id", "title", "qty", "price", "note", "payload"),
    "events": ("event_id", "kind", "amount"),
    "codes": ("code", "n", "label"),
    "ranks": ("x", "label"),
    "tags": ("name", "n"),
    "settings": ("id", "k", "v"),
}
TABLES = tuple(COLUMNS)

LETTERS = "abcdefghijklmnopqrstuvwxyz ABCXYZ0123456789-_éßø€ж"


def text(rng: random.Random, low: int, high: int) -> str:
    return "".join(rng.choice(LETTERS) for _ in range(rng.randint(low, high)))


def payload(rng: random.Random) -> bytes | None:
    """NULL, a few bytes, or (about one row in fifty) a value of a few kB: on overflow pages."""
    roll = rng.random()
    if roll < 0.2:
        return None
    if roll < 0.98:
        return rng.randbytes(rng.randint(0, 24))
    return rng.randbytes(rng.randint(3_000, 9_000))


def item(rng: random.Random, key: int) -> tuple:
    return (
        key,
        text(rng, 0, 80),
        rng.choice([rng.randint(-1000, 1000), rng.randint(-(2**62), 2**62)]),
        rng.uniform(-1e6, 1e6) if rng.random() < 0.9 else float(rng.randint(-5, 5)),
        None if rng.random() < 0.5 else text(rng, 0, 30),
        payload(rng),
    )


def event(rng: random.Random, key: int) -> tuple:
    return (key, text(rng, 1, 30), rng.randint(-(10**9), 10**9))


def code_row(rng: random.Random) -> tuple:
    return (f"c-{rng.randrange(10**7):07d}-{text(rng, 0, 6)}", rng.randint(-50, 50), text(rng, 0, 40))


def build_source(path: Path, rng: random.Random) -> None:
    with closing(sqlite3.connect(path)) as con:
        con.executescript(SCHEMA)
        con.executemany(
            "INSERT INTO items VALUES (?, ?, ?, ?, ?, ?)", [item(rng, i) for i in range(1, ITEMS + 1)]
        )
        keys, key = [], 0
        for _ in range(EVENTS):
            key += rng.randint(1, 5)  # gaps between keys
            keys.append(key)
        con.executemany("INSERT INTO events VALUES (?, ?, ?)", [event(rng, k) for k in keys])
        con.executemany("INSERT OR IGNORE INTO codes VALUES (?, ?, ?)", [code_row(rng) for _ in range(CODES)])
        # `x` is not the rowid: the rowids come in the order rows are inserted, the keys at random
        ranks = rng.sample(range(-10 * RANKS, 10 * RANKS), RANKS)
        con.executemany("INSERT INTO ranks VALUES (?, ?)", [(x, text(rng, 1, 20)) for x in ranks])
        con.executemany(
            "INSERT OR IGNORE INTO tags VALUES (?, ?)",
            [(text(rng, 1, 12), rng.randint(0, 9)) for _ in range(TAGS)],
        )
        con.executemany(
            "INSERT INTO settings VALUES (?, ?, ?)", [(i, f"k{i}", text(rng, 0, 10)) for i in range(1, 6)]
        )
        con.commit()


# --- reading both sides -------------------------------------------------------------------------


def normal(value: Any) -> Any:
    """A value as both sides give it: memoryview as bytes, every other kind as it is."""
    if isinstance(value, memoryview | bytearray):
        return bytes(value)
    return value


def source_rows(path: Path, table: str) -> dict[Any, tuple]:
    columns = ", ".join(f'"{c}"' for c in COLUMNS[table])
    with closing(sqlite3.connect(path)) as con:
        return {row[0]: tuple(map(normal, row)) for row in con.execute(f'SELECT {columns} FROM "{table}"')}


def target_rows(pg: psycopg.Connection[Any], table: str) -> dict[Any, tuple]:
    query = sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(map(sql.Identifier, COLUMNS[table])), sql.Identifier("public", table)
    )
    return {row[0]: tuple(map(normal, row)) for row in pg.execute(query)}


def differences(source: dict[Any, tuple], target: dict[Any, tuple]) -> tuple[list, list, list]:
    """The keys only the source holds, those whose rows differ, and those only the target holds."""
    inserts = sorted(k for k in source if k not in target)
    updates = sorted(k for k in source if k in target and source[k] != target[k])
    deletes = sorted(k for k in target if k not in source)
    return inserts, updates, deletes


def shown_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, str) and len(value) > 40:
        return f"{value[:20]}...<{len(value)} characters>"
    return value


def shown(row: tuple | None) -> str:
    text = repr(row)
    return text if len(text) <= 160 else text[:160] + "..."


# --- one run: the source, its changes, and what is checked ------------------------------------------


@dataclass
class Run:
    seed: int
    source: Path
    spec: Path
    pg: psycopg.Connection[Any]
    rng: random.Random
    log: list[str] = field(default_factory=list)
    round: int = 0
    seen: Counter = field(default_factory=Counter)  # paths the plans took: skipped, ranged, full
    wal: bool = False  # the source is in WAL mode
    held: sqlite3.Connection | None = None  # a connection whose writes stay in the -wal file

    def release(self) -> None:
        """Close the connection holding writes in the -wal file: SQLite checkpoints them."""
        if self.held is not None:
            self.held.close()
            self.held = None
            self.note("source: the -wal file checkpointed")

    def note(self, what: str) -> None:
        self.log.append(f"round {self.round}: {what}")

    def context(self) -> str:
        return f"seed {self.seed}, round {self.round}; changes so far:\n  " + "\n  ".join(self.log)

    def change_source(self, statement: str, params: tuple | list = ()) -> None:
        with closing(sqlite3.connect(self.source)) as con:
            cursor = con.execute(statement, params)
            con.commit()
        shown_params = [shown_value(p) for p in params]
        self.note(f"source: {statement} {shown_params} ({cursor.rowcount} rows)")

    def change_target(self, statement: sql.Composable, params: tuple = ()) -> None:
        cursor = self.pg.execute(statement, params)
        self.note(f"target: {statement.as_string(self.pg)} {list(params)} ({cursor.rowcount} rows)")

    def keys(self, table: str) -> list:
        with closing(sqlite3.connect(self.source)) as con:
            return [k for (k,) in con.execute(f'SELECT "{COLUMNS[table][0]}" FROM "{table}" ORDER BY 1')]

    def free_key(self, table: str, keys: list[int]) -> int:
        """An integer key no row holds: past the last, before the first (negative too), or in a gap."""
        taken = set(keys)
        while True:
            where = self.rng.random()
            if where < 0.4:
                key = (keys[-1] if keys else 0) + self.rng.randint(1, 50)
            elif where < 0.55:
                key = (keys[0] if keys else 0) - self.rng.randint(1, 50)
            else:
                key = self.rng.randint(keys[0], keys[-1]) if keys else 1
            if key not in taken:
                return key


# --- changes to the source ------------------------------------------------------------------------


def update_same_size(run: Run) -> None:
    """A value replaced by one of the same length: the row keeps its size, its leaf its layout."""
    table = run.rng.choice(["items", "items", "events", "codes", "ranks", "tags", "settings"])
    key = run.rng.choice(run.keys(table))
    column = {
        "items": "title",
        "events": "kind",
        "codes": "label",
        "ranks": "label",
        "tags": "n",
        "settings": "v",
    }
    name = column[table]
    with closing(sqlite3.connect(run.source)) as con:
        (old,) = con.execute(
            f'SELECT "{name}" FROM "{table}" WHERE "{COLUMNS[table][0]}" = ?', (key,)
        ).fetchone()
    if isinstance(old, str):
        new: Any = "".join(run.rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in old)
    else:
        new = (old + 1) % 10
    run.change_source(f'UPDATE "{table}" SET "{name}" = ? WHERE "{COLUMNS[table][0]}" = ?', (new, key))


def update_resized(run: Run) -> None:
    """Rows of items given values of other sizes: a leaf may split or merge, a value move onto or
    off overflow pages."""
    keys = run.keys("items")
    for key in run.rng.sample(keys, run.rng.randint(1, 5)):
        column, value = run.rng.choice(
            [
                ("title", text(run.rng, 0, 400)),
                ("note", None if run.rng.random() < 0.3 else text(run.rng, 0, 200)),
                ("payload", payload(run.rng)),
                ("payload", run.rng.randbytes(run.rng.randint(3_000, 12_000))),
                ("qty", run.rng.randint(-(2**63), 2**63 - 1)),
                ("price", run.rng.uniform(-1e300, 1e300)),
            ]
        )
        run.change_source(f'UPDATE items SET "{column}" = ? WHERE id = ?', (value, key))


def update_overflow_only(run: Run) -> None:
    """One byte near the end of a large value: only an overflow page changes, not its leaf."""
    with closing(sqlite3.connect(run.source)) as con:
        rows = con.execute("SELECT id, payload FROM items WHERE length(payload) > 2500").fetchall()
    if not rows:
        return update_resized(run)
    key, value = run.rng.choice(rows)
    at = len(value) - run.rng.randint(1, 500)
    changed = value[:at] + bytes([(value[at] + 1) % 256]) + value[at + 1 :]
    run.change_source("UPDATE items SET payload = ? WHERE id = ?", (changed, key))


def new_row(run: Run, table: str) -> tuple:
    """A row for `table` under a key no row holds (or, for a text key, likely holds)."""
    rng = run.rng
    if table == "codes":
        return code_row(rng)
    if table == "tags":
        return (text(rng, 1, 12), rng.randint(0, 9))
    key = run.free_key(table, run.keys(table))
    if table == "items":
        return item(rng, key)
    if table == "events":
        return event(rng, key)
    if table == "ranks":
        return (key, text(rng, 1, 20))
    return (key, text(rng, 0, 5), text(rng, 0, 10))


def insert_rows(run: Run) -> None:
    """Rows inserted anywhere: past the last key, before the first, in a gap between keys."""
    table = run.rng.choice(["items", "items", "events", "codes", "ranks", "tags", "settings"])
    for _ in range(run.rng.randint(1, 6)):
        row = new_row(run, table)
        marks = ", ".join("?" * len(row))
        run.change_source(f'INSERT OR IGNORE INTO "{table}" VALUES ({marks})', row)


def insert_at_end(run: Run) -> None:
    """Rows appended past the last rowid, as an app adds them: they fall in the last range."""
    table = run.rng.choice(["items", "events"])
    last = run.keys(table)[-1]
    make = item if table == "items" else event
    rows = [make(run.rng, last + i) for i in range(1, run.rng.randint(2, 300))]
    marks = ", ".join("?" * len(rows[0]))
    with closing(sqlite3.connect(run.source)) as con:
        con.executemany(f'INSERT INTO "{table}" VALUES ({marks})', rows)
        con.commit()
    run.note(f"source: {len(rows)} rows inserted into {table} after key {last}")


def delete_one(run: Run) -> None:
    table = run.rng.choice(["items", "items", "events", "codes", "ranks", "tags", "settings"])
    key = run.rng.choice(run.keys(table))
    run.change_source(f'DELETE FROM "{table}" WHERE "{COLUMNS[table][0]}" = ?', (key,))


def delete_run(run: Run) -> None:
    """A contiguous run of keys: whole leaf pages may be freed, their neighbours merged."""
    table = run.rng.choice(["items", "items", "events", "codes", "ranks"])
    keys = run.keys(table)
    length = run.rng.choice([2, 10, 60, 400, 1500]) if table != "events" else run.rng.choice([5, 100, 1200])
    start = run.rng.randrange(len(keys))
    low, high = keys[start], keys[min(start + length, len(keys) - 1)]
    run.change_source(f'DELETE FROM "{table}" WHERE "{COLUMNS[table][0]}" BETWEEN ? AND ?', (low, high))


def change_rowid(run: Run) -> None:
    """A row moved to another rowid: it leaves one range and enters another (in `ranks`, whose
    key is not the rowid, its key changes and its rowid stays)."""
    table = run.rng.choice(["items", "items", "events", "ranks"])
    keys = run.keys(table)
    old, new = run.rng.choice(keys), run.free_key(table, keys)
    run.change_source(
        f'UPDATE "{table}" SET "{COLUMNS[table][0]}" = ? WHERE "{COLUMNS[table][0]}" = ?', (new, old)
    )


def bulk_update(run: Run) -> None:
    """Many rows at once, some of them grown: many leaves change, several split."""
    table = run.rng.choice(["items", "items", "events"])
    step, rest = run.rng.choice([3, 7, 50, 200]), run.rng.randrange(3)
    if table == "items":
        change = run.rng.choice(
            ["qty = qty + 1", "title = title || 'xy'", "note = NULL", "price = price / 3"]
        )
        run.change_source(f"UPDATE items SET {change} WHERE id % ? = ?", (step, rest))
    else:
        run.change_source("UPDATE events SET amount = amount - 7 WHERE event_id % ? = ?", (step, rest))


def change_and_revert(run: Run) -> None:
    """A row changed, then given its old values back: the pages may read as before."""
    key = run.rng.choice(run.keys("items"))
    with closing(sqlite3.connect(run.source)) as con:
        (old,) = con.execute("SELECT title FROM items WHERE id = ?", (key,)).fetchone()
    run.change_source("UPDATE items SET title = ? WHERE id = ?", (old + "-changed", key))
    run.change_source("UPDATE items SET title = ? WHERE id = ?", (old, key))


def held_in_wal(run: Run) -> None:
    """A write committed to the -wal file only, its connection held open through the apply: the
    file's pages are not the rows (the source is in WAL mode in some runs)."""
    if not run.wal or run.held is not None:
        return update_same_size(run)
    run.held = sqlite3.connect(run.source)
    run.held.execute("PRAGMA wal_autocheckpoint = 0")
    key = run.rng.choice(run.keys("events"))
    run.held.execute("UPDATE events SET amount = amount + 3 WHERE event_id = ?", (key,))
    run.held.commit()
    run.note(f"source: UPDATE events SET amount = amount + 3 WHERE event_id = {key}, held in the -wal file")


def vacuum(run: Run) -> None:
    """The file rewritten: every table's pages may move."""
    with closing(sqlite3.connect(run.source)) as con:
        con.execute("VACUUM")
    run.note("source: VACUUM")


SOURCE_CHANGES: list[tuple[Callable[[Run], None], int]] = [
    (update_same_size, 6),
    (update_resized, 5),
    (update_overflow_only, 2),
    (insert_rows, 4),
    (insert_at_end, 2),
    (delete_one, 4),
    (delete_run, 3),
    (change_rowid, 3),
    (bulk_update, 2),
    (vacuum, 1),
    (change_and_revert, 1),
    (held_in_wal, 1),
]


def change_target(run: Run) -> None:
    """A row of the target changed, deleted or added behind etl's back."""
    table = run.rng.choice(["items", "items", "events", "codes", "settings"])
    name = sql.Identifier("public", table)
    key = sql.Identifier(COLUMNS[table][0])
    keys = sorted(k for (k,) in run.pg.execute(sql.SQL("SELECT {} FROM {}").format(key, name)))
    some = run.rng.choice(keys)
    kind = run.rng.choice(["update", "delete", "insert"])
    if kind == "delete":
        run.change_target(sql.SQL("DELETE FROM {} WHERE {} = %s").format(name, key), (some,))
    elif kind == "update":
        column = sql.Identifier(
            {"items": "title", "events": "amount", "codes": "label", "settings": "v"}[table]
        )
        grown = sql.SQL("{} + 1" if table == "events" else "{} || 'z'").format(column)
        run.change_target(
            sql.SQL("UPDATE {} SET {} = {} WHERE {} = %s").format(name, column, grown, key), (some,)
        )
    elif table == "codes":
        run.change_target(sql.SQL("INSERT INTO {} VALUES (%s, 1, 'extra')").format(name), ("zz-extra",))
    else:
        high = keys[-1]
        values = {
            "items": "(%s, 'extra', 1, 1.5, NULL, NULL)",
            "events": "(%s, 'extra', 1)",
            "settings": "(%s, 'k', 'v')",
        }
        run.change_target(sql.SQL("INSERT INTO {} VALUES " + values[table]).format(name), (high + 1,))


# --- the checks -----------------------------------------------------------------------------------


def counted(plan, table: str) -> tuple[int, int, int]:
    """(insert, update, delete) the plan counted for a table."""
    inserts = updates = deletes = 0
    for step in plan.steps:
        if isinstance(step, SyncRows) and step.table.name == table:
            inserts, updates = step.diff.insert, step.diff.update
        if isinstance(step, DeleteRows) and step.table.name == table:
            deletes = step.count
    return inserts, updates, deletes


def expected_changes(run: Run) -> dict[str, tuple[list, list, list]]:
    return {t: differences(source_rows(run.source, t), target_rows(run.pg, t)) for t in TABLES}


def assert_target_equals_source(run: Run) -> None:
    for table in TABLES:
        source, target = source_rows(run.source, table), target_rows(run.pg, table)
        if source == target:
            continue
        inserts, updates, deletes = differences(source, target)
        lines = [
            f"{table}: after apply, missing in target {inserts[:5]}, differing {updates[:5]}, extra {deletes[:5]}"
        ]
        for key in (inserts + updates + deletes)[:3]:
            lines.append(f"  key {key!r}: source {shown(source.get(key))}, target {shown(target.get(key))}")
        pytest.fail("\n".join(lines) + "\n" + run.context())


def assert_plan_counts(run: Run, plan, expected: dict[str, tuple[list, list, list]]) -> None:
    skipped = {name for name, _ in plan.skipped}
    ranged = {name: (changed, total) for name, changed, total, _ in plan.ranged}
    for table in TABLES:
        truth = tuple(len(keys) for keys in expected[table])
        if table in skipped:
            run.seen["skipped"] += 1
        elif table in ranged:
            run.seen["ranged"] += 1
        else:
            run.seen["full"] += 1
        assert counted(plan, table) == truth, (
            f"{table}: the plan counts (insert, update, delete) {counted(plan, table)}, the rows differ by "
            f"{truth} (first keys {[keys[:3] for keys in expected[table]]}); "
            f"skipped: {table in skipped}, ranges: {ranged.get(table)}\n{run.context()}"
        )


def some_source_changes(run: Run, most: int = 4) -> None:
    changes = [f for f, _ in SOURCE_CHANGES]
    weights = [w for _, w in SOURCE_CHANGES]
    for change in run.rng.choices(changes, weights, k=run.rng.randint(1, most)):
        change(run)


def apply_round(run: Run, how: str | None = None) -> None:
    """Plan (as apply or as `etl plan` does) and apply, or apply through the CLI; the plan must
    count what the rows differ by, the apply change as much."""
    expected = expected_changes(run)
    how = how or run.rng.choice(["plan", "lazy plan", "cli"])
    run.note(f"apply ({how})")
    if how == "cli":
        result = runner.invoke(
            app, ["apply", str(run.spec), "--yes", "--allow-destructive"], catch_exceptions=False
        )
        assert result.exit_code == 0, f"{result.stdout}\n{result.stderr}\n{run.context()}"
        return
    checked = check(run.spec, {}, sizes_later=how == "lazy plan")
    plan = plan_for(checked)
    assert_plan_counts(run, plan, expected)
    result = apply(checked, plan, allow_destructive=True)
    assert result.verified, run.context()
    for table in TABLES:
        truth = tuple(len(keys) for keys in expected[table])
        assert result.changes.get(table, (0, 0, 0)) == truth, (
            f"{table}: apply changed {result.changes.get(table)}, the rows differed by {truth}\n{run.context()}"
        )


def disturbed_apply(run: Run) -> None:
    """The source or the target written after the plan was made, or while the apply runs (an app
    that keeps writing): the apply may refuse or sync what it read, but must not record as synced
    what it did not sync. The next apply, undisturbed, must leave the target equal to the source."""
    checked = check(run.spec, {}, sizes_later=run.rng.random() < 0.5)
    plan = plan_for(checked)
    side = run.rng.choice(["source", "target"])
    when = run.rng.choice(["after the plan", "while applying"])
    run.note(f"apply disturbed: {side} written {when}")

    def write() -> None:
        try:
            if side == "source":
                some_source_changes(run, most=2)
            else:
                change_target(run)
        except (sqlite3.OperationalError, psycopg.errors.LockNotAvailable) as exc:  # the apply holds a lock
            run.note(f"  write refused: {type(exc).__name__}: {exc}")

    written: list = []

    def on_event(event) -> None:
        if when == "while applying" and event.phase == "done" and not written:
            written.append(event)
            run.note(f"  after {type(event.step).__name__} done:")
            write()

    if when == "after the plan":
        write()
    try:
        apply(checked, plan, allow_destructive=True, on_event=on_event)
        run.note("  disturbed apply committed")
    except EtlError as exc:
        run.note(f"  disturbed apply refused: {type(exc).__name__}: {str(exc)[:120]}")
    apply_round(run, run.rng.choice(["plan", "lazy plan"]))


@pytest.mark.parametrize(("seed", "wal"), [(seed, seed == SEEDS[-1]) for seed in SEEDS])
def test_repeated_resyncs_of_random_changes_leave_the_target_equal_to_the_source(tmp_path, pg_url, seed, wal):
    rng = random.Random(seed)
    source = tmp_path / "src.db"
    build_source(source, rng)
    if wal:
        with closing(sqlite3.connect(source)) as con:
            con.execute("PRAGMA journal_mode = WAL")
    spec = tmp_path / "spec.yaml"
    made = runner.invoke(
        app, ["init", str(source), "-o", str(spec), "--target", pg_url], catch_exceptions=False
    )
    assert made.exit_code == 0, made.stderr
    with psycopg.connect(pg_url, autocommit=True) as pg:
        # A write while an apply runs waits for no lock the apply holds: it is refused.
        pg.execute("SET lock_timeout = '500ms'")
        run = Run(seed, source, spec, pg, rng, wal=wal)
        checked = check(spec, {})
        assert apply(checked, plan_for(checked)).verified
        assert_target_equals_source(run)
        # Each run takes these changes at least once, each in a round of its own, beside the others.
        sure = [vacuum, change_rowid, update_overflow_only, bulk_update] + ([held_in_wal] if wal else [])
        at = dict(zip(rng.sample(range(1, ROUNDS + 1), len(sure)), sure, strict=True))
        try:
            for number in range(1, ROUNDS + 1):
                run.round = number
                if number in at:
                    at[number](run)
                if rng.random() < 0.1:
                    run.note("no change" if number not in at else "no other change")
                else:
                    some_source_changes(run)
                if rng.random() < 0.25:
                    change_target(run)
                if rng.random() < 0.3:
                    disturbed_apply(run)
                else:
                    apply_round(run)
                assert_target_equals_source(run)
                run.release()
        finally:
            run.release()
    # The rounds took the paths under test: tables skipped, and tables compared in ranges.
    assert run.seen["skipped"] > 0 and run.seen["ranged"] > 0, (run.seen, run.context())
