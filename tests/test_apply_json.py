"""`etl apply --json`: the run's result as a document valid against schemas/etl-apply.schema.json,
its numbers those of the run, its run id the run's row in etl.runs."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from typer.testing import CliRunner

from etl.cli import app

SCHEMA = json.loads((Path(__file__).parent.parent / "schemas" / "etl-apply.schema.json").read_text())
runner = CliRunner()

SOURCE = """
CREATE TABLE author (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE book (id INTEGER PRIMARY KEY, author_id INTEGER REFERENCES author(id), pages INTEGER);
INSERT INTO author VALUES (1, 'Ada'), (2, 'Brian'), (3, 'Grace');
INSERT INTO book VALUES (1, 1, 100), (2, 2, 'many'), (3, 2, 300);
"""


def apply_json(spec: Path, *extra: str) -> dict:
    result = runner.invoke(app, ["apply", str(spec), "--json", *extra], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)  # stdout holds the document and nothing else
    jsonschema.validate(document, SCHEMA)
    assert result.stderr.startswith("Target: ")  # the person's lines went to stderr
    return document


def test_apply_json_reports_the_run_tables_rows_rejects_and_run_id(migration, pg):
    m = migration(SOURCE)
    spec = m.write_spec("tables:\n  book:\n    on_error: reject\n")
    document = apply_json(spec)
    assert document["committed"] is True and document["verified"] is True
    assert document["rows"] == {"inserted": 5, "updated": 0, "deleted": 0}
    assert [(t["table"], t["inserted"]) for t in document["tables"]] == [("author", 3), ("book", 2)]
    assert all(t["seconds"] >= 0 for t in document["tables"])
    assert document["rejects"]["count"] == 1 and document["rejects"]["by_source_table"] == {"book": 1}
    assert document["rejects"]["file"] == str(spec.with_name(spec.stem + ".rejects.jsonl"))
    assert document["phases"]["keys_and_indexes"] is not None
    runs = pg.execute("SELECT id, status FROM etl.runs ORDER BY id").fetchall()
    assert runs[-1] == (document["run_id"], "succeeded")

    m.change_source("UPDATE author SET name = 'Ada L.' WHERE id = 1; DELETE FROM book WHERE id = 3;")
    again = apply_json(spec, "--allow-destructive")
    assert again["rows"] == {"inserted": 0, "updated": 1, "deleted": 1}
    assert again["run_id"] > document["run_id"]
    assert pg.execute("SELECT max(id) FROM etl.runs").fetchone() == (again["run_id"],)

    unchanged = apply_json(spec)
    assert unchanged["committed"] is False and unchanged["run_id"] is None and unchanged["tables"] == []
