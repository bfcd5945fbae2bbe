"""The `etl` program's entry point. Commands that read through DuckDB start opening its connection
first, on another thread (loading the two extensions checks their signatures over 75 MB: 0.15 s),
while Python imports the rest of etl (0.25 s)."""

from __future__ import annotations

import sys

_READ_THROUGH_DUCKDB = frozenset({"plan", "apply", "verify"})


def main() -> None:
    command = next((a for a in sys.argv[1:] if not a.startswith("-")), None)
    if command in _READ_THROUGH_DUCKDB:
        from . import duck

        duck.preload()
    from .cli import main as run

    run()
