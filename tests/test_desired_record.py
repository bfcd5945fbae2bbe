"""apply records the spec's tables as PostgreSQL describes them (etl.desired), keyed by everything
that decides them, so that the next plan compares the target against that record instead of
creating every table again in a scratch schema. The record must say exactly what the scratch
schema would, and must never hide a change: of the spec, of the target, or of itself."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import psycopg
import pytest
from make_chat_app import build_chat_app

from etl.model import catalog_document, catalog_from_document, catalog_from_json, catalog_json
from etl.pipeline import apply, check, plan_for
from etl.postgres import metadata
from etl.postgres.catalog import read_target_catalog
from etl.postgres.metadata import DESIRED_PART_CHARS, record_desired_sql
from etl.run.observe import desired_catalog, desired_key, recorded_desired

ROOT = Path(__file__).resolve().parent.parent

SOURCE = """
CREATE TABLE author (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT DEFAULT 'anon');
CREATE TABLE book (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    author_id INTEGER NOT NULL REFERENCES author(id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    price NUMERIC CHECK (price >= 0),
    published DATETIME
);
CREATE INDEX book_title ON book(title);
CREATE UNIQUE INDEX book_author_title ON book(author_id, title) WHERE price IS NOT NULL;
INSERT INTO author VALUES (1, 'a@example.com', 'A'), (2, 'b@example.com', NULL);
INSERT INTO book VALUES (1, 1, 'One', 9.5, '2024-01-02 03:04:05'), (2, 2, 'Two', NULL, NULL);
"""


def _recorded_and_scratch(url: str, checked) -> tuple:
    with psycopg.connect(url, autocommit=True) as conn:
        key = desired_key(conn, checked.mapping)
        return recorded_desired(conn, checked.mapping, key), desired_catalog(conn, checked.mapping, url)


def test_the_record_an_apply_makes_is_what_the_scratch_schema_says(migration, pg_url):
    m = migration(SOURCE)
    m.apply()
    recorded, scratch = _recorded_and_scratch(pg_url, m.check())
    assert recorded is not None
    assert recorded == scratch


def test_the_record_of_the_chat_app_is_what_the_scratch_schema_says(tmp_path, pg_url):
    (tmp_path / "specs").mkdir()
    (tmp_path / "samples").mkdir()
    spec = tmp_path / "specs" / "chat_app.yaml"
    shutil.copy(ROOT / "specs" / "chat_app.yaml", spec)
    build_chat_app(tmp_path / "samples" / "chat_app.db", users=5, messages=20, seed=3)
    checked = check(spec, {"DATABASE_URL": pg_url})
    apply(checked, plan_for(checked))
    recorded, scratch = _recorded_and_scratch(pg_url, checked)
    assert recorded is not None and len(recorded.tables) == len(checked.mapping.tables)
    assert recorded == scratch


def test_a_plan_after_an_apply_reads_the_record_and_has_nothing_to_record(migration):
    m = migration(SOURCE)
    first = m.plan()
    assert first.desired is not None  # nothing recorded yet: apply will record
    m.apply()
    again = m.plan()
    assert not again.has_changes
    assert again.desired is None  # read from the record: nothing to record again


def test_a_target_changed_behind_etls_back_still_shows_in_the_plan(migration, pg):
    m = migration(SOURCE)
    m.apply()
    pg.execute("DROP INDEX book_title")
    pg.execute("ALTER TABLE book ALTER COLUMN title DROP NOT NULL")
    plan = m.plan()
    assert plan.desired is None  # the record was read
    assert plan.has_changes
    m.apply()
    assert pg.execute("SELECT count(*) FROM pg_indexes WHERE indexname = 'book_title'").fetchone() == (1,)
    assert pg.execute(
        "SELECT is_nullable FROM information_schema.columns WHERE table_name = 'book' AND column_name = 'title'"
    ).fetchone() == ("NO",)


def test_a_changed_spec_does_not_read_the_record_of_the_old_one(migration, pg):
    m = migration(SOURCE)
    m.apply()
    plan = m.plan("tables:\n  book:\n    columns:\n      title: {type: varchar(200)}\n")
    assert plan.desired is not None  # another key: the scratch schema decides
    assert plan.has_changes
    m.apply("tables:\n  book:\n    columns:\n      title: {type: varchar(200)}\n", allow_destructive=True)
    assert pg.execute(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'book'::regclass "
        "AND attname = 'title'"
    ).fetchone() == ("character varying(200)",)
    assert m.plan().desired is None and not m.plan().has_changes


def test_a_damaged_record_is_ignored_and_the_scratch_schema_decides(migration, pg):
    m = migration(SOURCE)
    m.apply()
    pg.execute("""UPDATE etl.desired SET catalog = '{"class": "NoSuchThing"}'""")
    plan = m.plan()
    assert plan.desired is not None and not plan.has_changes


def test_a_catalog_survives_its_json_document_exactly(migration, pg):
    m = migration(SOURCE)
    m.apply()
    catalog = read_target_catalog(pg, "public")
    assert catalog_from_document(catalog_document(catalog)) == catalog


def test_the_recorded_text_is_the_documents_and_reads_back_exactly(migration, pg):
    # catalog_json writes one object at a time instead of building the whole document first: the
    # text must be the document's, so that records made either way read back the same.
    m = migration(SOURCE)
    m.apply()
    catalog = read_target_catalog(pg, "public")
    text = catalog_json(catalog)
    assert text == json.dumps(catalog_document(catalog))
    assert catalog_from_json(text) == catalog
    (recorded,) = pg.execute("SELECT catalog::text FROM etl.desired").fetchone()
    assert catalog_from_json(recorded).tables == catalog.tables


def test_a_json_text_that_is_not_a_catalog_is_refused():
    for text in ('{"class": "NoSuchThing"}', '{"tables": []}', "[1, 2]", "{", '{"class": "PgColumn"}'):
        with pytest.raises(ValueError):
            catalog_from_json(text)


def test_a_large_record_goes_in_parts_no_statement_holding_it_whole():
    document = json.dumps({"class": "TargetCatalog", "note": "x" * (2 * DESIRED_PART_CHARS + 10)})
    statements = [s.as_string(None) for s in record_desired_sql("public", "k", "2026-01-01", document)]
    assert len(statements) == 3 + 2  # three parts, the row, the setting emptied
    assert max(len(s) for s in statements) < DESIRED_PART_CHARS + 200


def test_a_record_sent_in_many_parts_reads_back_as_the_scratch_schema_says(migration, pg_url, monkeypatch):
    monkeypatch.setattr(metadata, "DESIRED_PART_CHARS", 97)  # a part ends inside names and escapes
    m = migration(SOURCE)
    m.apply()
    recorded, scratch = _recorded_and_scratch(pg_url, m.check())
    assert recorded is not None
    assert recorded == scratch
