"""The DuckDB connection: extensions from the installed wheels, never downloaded; the command line
opens the first connection on another thread while it validates the spec."""

from __future__ import annotations

import pytest

from etl import duck
from etl.errors import EtlError


def _loaded(con) -> set[str]:
    rows = con.execute("SELECT extension_name FROM duckdb_extensions() WHERE loaded").fetchall()
    return {name for (name,) in rows}


def _settings(con) -> tuple[str, str, str]:
    row = con.execute(
        "SELECT current_setting('memory_limit'), current_setting('TimeZone'), "
        "current_setting('autoinstall_known_extensions')::VARCHAR"
    ).fetchone()
    return row


def test_a_preloaded_connection_is_the_same_as_a_direct_one(monkeypatch):
    monkeypatch.setattr(duck, "MEMORY_LIMIT_MB", 64)
    direct = duck.connect(largest_row=20 * 2**20)
    duck.preload()
    preloaded = duck.connect(largest_row=20 * 2**20)
    assert duck._preloaded is None  # taken: the next connect opens its own
    for con in (direct, preloaded):
        assert {"sqlite_scanner", "postgres_scanner"} <= _loaded(con)
        assert _settings(con) == _settings(direct)
    assert _settings(preloaded)[0] in ("121.0 MB", "115.3 MiB")  # 6 x 20 MB + 1: room for the record
    assert _settings(preloaded)[1] == "UTC"
    direct.close()
    preloaded.close()


def test_a_preload_that_fails_fails_where_the_connection_is_taken(monkeypatch):
    def missing(package: str, name: str):
        raise EtlError(f"DuckDB extension '{name}' is missing")

    monkeypatch.setattr(duck, "_extension_file", missing)
    duck.preload()
    with pytest.raises(EtlError, match="extension 'sqlite_scanner' is missing"):
        duck.connect()
    monkeypatch.undo()
    con = duck.connect()  # the failure is not kept for later connections
    assert {"sqlite_scanner", "postgres_scanner"} <= _loaded(con)
    con.close()


@pytest.mark.parametrize(
    ("argv", "preloads"),
    [
        (["etl", "apply", "--help"], True),
        (["etl", "--debug", "plan", "--help"], True),
        (["etl", "verify", "--help"], True),
        (["etl", "validate", "--help"], False),
        (["etl", "--help"], False),
    ],
)
def test_the_program_opens_duckdb_early_only_for_commands_that_read_through_it(monkeypatch, argv, preloads):
    from etl import launch

    monkeypatch.setattr(duck, "_preloaded", None)
    monkeypatch.setattr("sys.argv", argv)
    with pytest.raises(SystemExit) as exited:
        launch.main()
    assert exited.value.code == 0  # --help
    assert (duck._preloaded is not None) is preloads
    if preloads:
        duck.connect().close()  # take it: no connection is left for the next test
