"""The DuckDB connection: extensions from the installed wheels, never downloaded."""

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


def test_a_connection_has_the_extensions_a_bounded_memory_and_utc(monkeypatch):
    monkeypatch.setenv("ETL_MEMORY_LIMIT_MB", "64")
    small, large = duck.connect(), duck.connect(largest_row=20 * 2**20)
    for con in (small, large):
        assert {"sqlite_scanner", "postgres_scanner"} <= _loaded(con)
        assert _settings(con)[1:] == ("UTC", "false")
    assert _settings(small)[0] in ("64.0 MB", "61.0 MiB")
    assert _settings(large)[0] in ("121.0 MB", "115.3 MiB")  # 6 x 20 MB + 1: room for the record
    small.close()
    large.close()


def test_a_missing_extension_is_named_with_the_wheel_that_brings_it():
    # `email` is a package without DuckDB extensions: as the scanner's wheel would be if a file were lost.
    with pytest.raises(
        EtlError, match=r"DuckDB extension 'sqlite_scanner' for DuckDB 1\.5\.5 is missing at .*email"
    ):
        duck.extension_file("email", "sqlite_scanner")


def test_the_installed_wheels_hold_both_extensions():
    for package, name in duck.EXTENSIONS:
        assert duck.extension_file(package, name).is_file()


@pytest.mark.parametrize("value", ["lots", "8", "-1"])
def test_a_memory_limit_that_is_not_a_number_of_megabytes_is_refused_by_name(monkeypatch, value):
    monkeypatch.setenv("ETL_MEMORY_LIMIT_MB", value)
    with pytest.raises(EtlError, match=rf"^ETL_MEMORY_LIMIT_MB='{value}' is not a number of megabytes"):
        duck.connect()
