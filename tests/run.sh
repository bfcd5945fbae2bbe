#!/usr/bin/env sh
# Run the test suite on a fresh clone: makes .venv, installs etl with its test extras, runs pytest.
# Prisma: installed when npm is there; its tests are skipped without it (failed with $ETL_REQUIRE_PRISMA).
# PostgreSQL: $ETL_TEST_DSN if set, else a server on 127.0.0.1:5432, else an embedded one (see tests/conftest.py).
set -eu
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
# Prisma (for tests/test_prisma_in_sync.py) goes to ~/.cache/etl-prisma, once per pinned version.
if command -v npm >/dev/null 2>&1; then
    .venv/bin/python tests/fix_prisma.py install
fi
.venv/bin/ruff check etl tests samples bench
.venv/bin/mypy etl
.venv/bin/python -m pytest "$@"
