"""The public sample databases (samples/make_*.py: Chinook, a Northwind-style database, a Django
app's and a Rails app's), each moved as a new user would: `etl init`, `etl apply`, `etl verify
--json`. Every schema object's ledger entry is accounted for: nothing the spec carries is missing,
and everything left out says why. docs/ledgers.md reports what each ledger says."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import jsonschema
import pytest
from make_chinook import build_chinook  # samples/, on sys.path via conftest
from make_django_app import build_django_app
from make_northwind import build_northwind
from make_rails_app import build_rails_app
from typer.testing import CliRunner

from etl.cli import app

SCHEMA = json.loads((Path(__file__).parent.parent / "schemas" / "etl-verify.schema.json").read_text())
BUILDERS = {
    "chinook": build_chinook,
    "northwind": build_northwind,
    "rails_app": build_rails_app,
    "django_app": build_django_app,
}
runner = CliRunner()


def moved(name: str, tmp_path: Path, pg_url: str) -> dict:
    """The sample built, init'd, applied; verify's JSON document."""
    db, spec = tmp_path / f"{name}.db", tmp_path / f"{name}.yaml"
    BUILDERS[name](db)
    result = runner.invoke(app, ["init", str(db), "-o", str(spec), "--target", pg_url])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["apply", str(spec), "--yes"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["verify", str(spec), "--json"])
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    jsonschema.validate(document, SCHEMA)
    return document


@pytest.mark.parametrize("name", list(BUILDERS))
def test_each_sample_moves_with_nothing_missing_and_every_left_out_named(name, tmp_path, pg_url):
    document = moved(name, tmp_path, pg_url)
    assert document["ok"] is True
    ledger = document["ledger"]
    outcomes = Counter(e["outcome"] for e in ledger)
    assert outcomes["missing in target"] == 0
    assert all(e["reason"] for e in ledger if e["outcome"] != "carried")
    # every table of the source is in the ledger, and every migrated one is checked row by row
    tables = {e["source"] for e in ledger if e["kind"] == "table"}
    assert {t["table"] for t in document["tables"]} <= tables
    assert outcomes["carried"] > 0


def test_northwind_s_views_that_do_not_translate_are_left_out_with_why(tmp_path, pg_url):
    ledger = moved("northwind", tmp_path, pg_url)["ledger"]
    views = {e["source"]: (e["outcome"], e["reason"] or "") for e in ledger if e["kind"] == "view"}
    assert views["Current Product List"][0] == "translated"
    outcome, reason = views["Order Subtotals"]
    assert outcome == "left out"
    assert "is computed differently in PostgreSQL" in reason
    checks = [e for e in ledger if e["kind"] == "check"]
    assert [e["outcome"] for e in checks] == ["translated"] * 8
