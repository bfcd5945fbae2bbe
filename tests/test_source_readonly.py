"""The SQLite source is read, never written: not the file, not its WAL, not while an app has it open."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from etl.errors import SourceError
from etl.sqlite.catalog import introspect_sqlite


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "absent"


def files_of(db: Path) -> dict[str, str]:
    return {suffix: digest(Path(str(db) + suffix)) for suffix in ("", "-wal", "-shm")}


def test_apply_leaves_the_source_files_byte_for_byte_unchanged(migration, pg):
    m = migration("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'a'), (2, 'b');")
    before = files_of(m.source)
    mtime = m.source.stat().st_mtime_ns
    m.apply()
    assert files_of(m.source) == before
    assert m.source.stat().st_mtime_ns == mtime
    assert pg.execute("SELECT count(*) FROM t").fetchone() == (2,)


def test_a_wal_database_open_in_an_app_is_read_with_its_committed_rows_and_not_modified(migration, pg):
    m = migration("PRAGMA journal_mode=WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);")
    app = sqlite3.connect(m.source)  # the app keeps its connection open during the migration
    try:
        app.execute("PRAGMA wal_autocheckpoint=0")  # keep the rows in the WAL, as a busy app would
        app.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"row {i}") for i in range(1, 101)])
        app.commit()
        app.execute("BEGIN")
        app.execute("INSERT INTO t VALUES (1000, 'uncommitted')")  # an open write transaction
        before = files_of(m.source)
        assert before["-wal"] != "absent"
        m.apply()
        after = files_of(m.source)
        # The database and its WAL are untouched. The -shm file is SQLite's shared-memory index,
        # in which every reader (the app's own too) records its read marks: reading a live WAL
        # database safely means taking part in that protocol.
        assert (after[""], after["-wal"]) == (before[""], before["-wal"])
        app.rollback()
    finally:
        app.close()
    assert pg.execute("SELECT count(*), max(id) FROM t").fetchone() == (100, 100)


def test_a_file_that_is_not_sqlite_is_one_clear_error(tmp_path):
    bogus = tmp_path / "app.db"
    bogus.write_text("this is not a database, just text" * 100)
    with pytest.raises(SourceError, match=r"is not a SQLite database$"):
        introspect_sqlite(bogus)


def test_a_missing_file_is_one_clear_error(tmp_path):
    with pytest.raises(SourceError, match=r"^SQLite file '.*nope.db' does not exist$"):
        introspect_sqlite(tmp_path / "nope.db")


def test_a_stamp_of_the_source_changes_with_each_commit_and_with_nothing_else(tmp_path):
    """In rollback journal mode a commit moves the header's change counter; in WAL mode the
    header stays and the WAL and its index move. Reading changes neither stamp."""
    from etl.sqlite.catalog import open_sqlite, source_stamp

    for mode in ("DELETE", "WAL"):
        db = tmp_path / f"{mode}.db"
        app = sqlite3.connect(db)  # open throughout, as an app's would be: the WAL stays
        try:
            app.execute(f"PRAGMA journal_mode={mode}")
            app.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
            app.commit()
            stamps = [source_stamp(db)]
            with open_sqlite(db) as reader:
                assert reader.execute("SELECT count(*) FROM t").fetchone() == (0,)
            stamps.append(source_stamp(db))
            for i in range(3):  # in WAL mode, without a checkpoint the database file stays as it is
                app.execute("INSERT INTO t VALUES (?, 'x')", (i,))
                app.commit()
                stamps.append(source_stamp(db))
        finally:
            app.close()
        assert stamps[0] == stamps[1], mode
        assert len(set(stamps[1:])) == 4, mode
