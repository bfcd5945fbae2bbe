"""Passwords never appear in anything etl prints, and only the password is masked: a password
that is also a common word ("postgres") leaves table names, values and the URL's scheme intact."""

from __future__ import annotations

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from typer.testing import CliRunner

from etl.cli import app
from etl.errors import TargetError
from etl.postgres.target import display_url, redact
from etl.run.executor import apply_plan

runner = CliRunner()


def with_password(url: str, password: str) -> str:
    """`url` (the test database) as a URL with `password`; the test server trusts any password."""
    params = conninfo_to_dict(url)
    host = params.get("host", "")
    assert not host.startswith("/"), "these tests need a TCP server"
    netloc = f"{params.get('user', 'postgres')}:{password}@{host}:{params.get('port', 5432)}"
    return f"postgresql://{netloc}/{params['dbname']}"


def test_a_common_password_masks_only_the_password_not_names_or_values(migration, pg_url):
    m = migration(
        "CREATE TABLE postgres_log (id INTEGER PRIMARY KEY, n INTEGER); INSERT INTO postgres_log VALUES (1, 'postgres');"
    )
    spec = m.write_spec()
    url = with_password(pg_url, "postgres")
    result = runner.invoke(app, ["apply", str(spec), "--target", url])
    assert result.exit_code == 1
    assert result.stderr == (
        'Error: table "postgres_log", row id=1: column "n": expected an integer, found text \'postgres\'\n'
    )
    shown = url.replace(":postgres@", ":***@")
    assert f"Applying {spec} to {shown} " in result.stdout
    assert '+ table "postgres_log"' not in result.stdout  # --yes-less, off a terminal: no create lines
    restart = [line for line in result.stdout.splitlines() if "starting over" in line]
    assert restart == [
        '  starting over: table "postgres_log" holds a value DuckDB\'s typed read cannot convert exactly; '
        "every value is read again through SQLite"
    ]
    assert ":postgres@" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    "url",
    [
        "postgresql:/alice:s3cr3t-pw@127.0.0.1/app",
        "postgresql//alice:s3cr3t-pw@127.0.0.1/app",
        "not a url s3cr3t-pw",
        "s3cr3t-pw@127.0.0.1/app user=alice",
        "postgresql://alice:s3cr3t-pw@127.0.0.1/app?nosuchoption=1",
    ],
)
@pytest.mark.parametrize("debug", [False, True])
def test_a_malformed_url_never_shows_its_password(migration, url, debug):
    m = migration("CREATE TABLE t (id INTEGER PRIMARY KEY);")
    spec = m.write_spec()
    for command in ("plan", "apply", "verify", "rollback"):
        args = (["--debug"] if debug else []) + [command, str(spec), "--target", url]
        result = runner.invoke(app, args)
        assert result.exit_code == 1, (command, result.stdout, result.stderr)
        assert "s3cr3t-pw" not in result.stdout + result.stderr, (command, result.stderr)
        if not debug:
            assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr


def test_a_conninfo_target_shows_its_password_masked(migration, pg_url, pg):
    m = migration("CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (1);")
    spec = m.write_spec()
    conninfo = make_conninfo(pg_url, password="s3cr3t pw'x")
    assert "password='s3cr3t pw\\'x'" in conninfo
    result = runner.invoke(app, ["apply", str(spec), "--target", conninfo])
    assert result.exit_code == 0, result.stderr
    assert "password=***" in result.stdout
    assert "s3cr3t" not in result.stdout + result.stderr
    assert pg.execute("SELECT count(*) FROM t").fetchone() == (1,)


@pytest.mark.parametrize(
    ("message", "shown"),
    [
        # DuckDB's postgres extension echoes the conninfo or the URL it was given
        (
            'IO Error: Unable to connect to Postgres at "host=db user=postgres password=postgres '
            'dbname=postgres_db": connection to server at "db", port 5432 failed',
            'IO Error: Unable to connect to Postgres at "host=db user=postgres password=*** '
            'dbname=postgres_db": connection to server at "db", port 5432 failed',
        ),
        (
            "Unable to connect to Postgres at \"host=db password='p w\\' x' dbname=app\"",
            'Unable to connect to Postgres at "host=db password=*** dbname=app"',
        ),
        (
            'Unable to connect to Postgres at "postgresql://postgres:postgres@db:5432/postgres"',
            'Unable to connect to Postgres at "postgresql://postgres:***@db:5432/postgres"',
        ),
        ("postgres://u:p w@db/app?sslmode=require", "postgres://u:***@db/app?sslmode=require"),
        (
            "postgresql://u@db/app?sslmode=require&password=pw",
            "postgresql://u@db/app?sslmode=require&password=***",
        ),
        ("PGPASSWORD=postgres psql -h db", "PGPASSWORD=*** psql -h db"),
        # the passphrase of the client's key (libpq's sslpassword) is a secret too
        ("host=db sslkey=k sslpassword=postgres", "host=db sslkey=k sslpassword=***"),
        ("postgresql://db/app?sslkey=k&sslpassword=postgres", "postgresql://db/app?sslkey=k&sslpassword=***"),
        # no password: nothing to mask
        ("postgresql://postgres@db:5432/postgres", "postgresql://postgres@db:5432/postgres"),
        ("invalid input 'postgres' for duckdb_extension_postgres_scanner", None),
    ],
)
def test_only_the_password_of_a_url_or_conninfo_is_masked(message, shown):
    assert redact(message, "postgresql://postgres:postgres@db/postgres") == (shown or message)


def test_display_url_masks_the_password_and_keeps_the_rest():
    assert (
        display_url("postgresql://postgres:postgres@db/postgres") == "postgresql://postgres:***@db/postgres"
    )
    assert display_url("host=db password=postgres dbname=postgres") == "host=db password=*** dbname=postgres"
    assert display_url("postgresql:/alice:pw@db/app") == "postgresql:***"
    assert display_url("not a url pw") == "***"


def test_duckdbs_echo_of_the_conninfo_keeps_the_password_masked(migration):
    """DuckDB's postgres extension repeats the whole conninfo when it cannot connect."""
    m = migration("CREATE TABLE postgres_log (id INTEGER PRIMARY KEY); INSERT INTO postgres_log VALUES (1);")
    m.write_spec()
    plan = m.plan()
    unreachable = "host=127.0.0.1 port=1 user=postgres dbname=postgres_app password=postgres"
    with pytest.raises(TargetError) as failure:
        apply_plan(plan, m.source, unreachable)
    message = str(failure.value)
    assert "host=127.0.0.1 port=1 user=postgres dbname=postgres_app password=***" in message
    assert "password=postgres" not in message
