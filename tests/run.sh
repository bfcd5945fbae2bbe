#!/usr/bin/env sh
# Run the test suite on a fresh clone: makes .venv, installs etl with its test extras, runs pytest.
# PostgreSQL: $ETL_TEST_DSN if set, else a server on 127.0.0.1:5432, else an embedded one (see tests/conftest.py).
set -eu
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
.venv/bin/ruff check etl tests samples bench
.venv/bin/mypy etl
.venv/bin/python -m pytest "$@"
