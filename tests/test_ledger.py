"""The schema ledger of `etl verify`: every schema object of the source and where it went
(carried, translated, materialized, left out with the reason), checked against the target's
catalog as it is now: an object dropped behind etl's back reads `missing in target`, exit 1."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from etl.cli import app
from etl.core.ledger import KINDS, Outcome
from etl.pipeline import ledger

runner = CliRunner()
SCHEMA = json.loads((Path(__file__).parent.parent / "schemas" / "etl-verify.schema.json").read_text())

SOURCE = """
CREATE TABLE author (
  id INTEGER PRIMARY KEY,
  email TEXT NOT NULL COLLATE NOCASE UNIQUE,
  name TEXT NOT NULL DEFAULT 'anon',
  joined TEXT DEFAULT CURRENT_DATE,
  secret TEXT,
  twice INTEGER GENERATED ALWAYS AS (id * 2) VIRTUAL
);
CREATE TABLE book (
  id INTEGER PRIMARY KEY,
  author_id INTEGER NOT NULL REFERENCES author(id) DEFERRABLE INITIALLY DEFERRED,
  title TEXT NOT NULL,
  price NUMERIC CHECK (price >= 0),
  pages INTEGER,
  copies INTEGER,
  stock INTEGER GENERATED ALWAYS AS (copies * 2) VIRTUAL,
  CONSTRAINT sane_pages CHECK (pages BETWEEN 1 AND 10000)
);
CREATE INDEX book_title ON book (title DESC);
CREATE INDEX book_cheap ON book (price) WHERE price < 10;
CREATE UNIQUE INDEX book_lower_title ON book (lower(title));
CREATE TABLE audit (id INTEGER PRIMARY KEY, what TEXT);
CREATE VIEW cheap_books AS SELECT id, title FROM book WHERE price < 10;
CREATE VIEW long_books AS SELECT id, title FROM book WHERE pages > 500;
CREATE TRIGGER book_audit AFTER INSERT ON book BEGIN INSERT INTO audit (what) VALUES ('book'); END;
CREATE VIRTUAL TABLE book_fts USING fts5(title, content='book', content_rowid='id');
INSERT INTO author (id, email, name, joined, secret) VALUES (1, 'a@x.com', 'Ada', '2020-01-01', 's'), (2, 'b@x.com', 'Bo', NULL, NULL);
INSERT INTO book (id, author_id, title, price, pages, copies) VALUES (1, 1, 'Zed', 5, 100, 3), (2, 2, 'Ant', 20, 900, 1);
"""

SPEC = """
exclude: [audit]
tables:
  author:
    exclude_columns: [secret]
  long_reads:
    query: SELECT id, title FROM long_books
    primary_key: [id]
    columns:
      id: {type: integer}
      title: {type: text}
views:
  cheap_books:
    sql: SELECT id, title FROM book WHERE price < 10
"""


@pytest.fixture
def loaded(migration):
    m = migration(SOURCE)
    m.apply(SPEC)
    return m


def verify(m, *extra: str):
    return runner.invoke(app, ["verify", str(m.spec_path), *extra])


def entry(entries, kind: str, name: str):
    found = [e for e in entries if e.kind == kind and e.name == name]
    assert len(found) == 1, (kind, name, [(e.kind, e.name) for e in entries])
    return found[0]


def test_each_outcome_is_named_for_its_object(loaded):
    entries = ledger(loaded.check())
    outcome = {(e.kind, e.name): e.outcome.value for e in entries}
    assert outcome[("table", "author")] == "carried"
    assert outcome[("column", "author.email")] == "carried"
    assert outcome[("not null", "author.name")] == "carried"
    assert outcome[("default", "author.name")] == "carried"
    assert outcome[("default", "author.joined")] == "translated"
    assert outcome[("primary key", "book.(id)")] == "carried"
    assert outcome[("unique constraint", 'author.UNIQUE ("email" COLLATE NOCASE)')] == "translated"
    assert outcome[("collation", "author.email COLLATE NOCASE")] == "translated"
    assert outcome[("index", "book.book_title")] == "carried"
    assert outcome[("index", "book.book_cheap")] == "translated"
    assert outcome[("index", "book.book_lower_title")] == "translated"
    assert outcome[("foreign key", "book.(author_id) -> author(id)")] == "carried"
    assert outcome[("check", "book.CHECK (price >= 0)")] == "translated"
    assert outcome[("check", "book.sane_pages")] == "translated"
    assert outcome[("generated column", "author.twice")] == "translated"
    assert outcome[("generated column", "book.stock")] == "left out"
    assert outcome[("view", "cheap_books")] == "translated"
    assert outcome[("view", "long_books")] == "materialized"
    assert outcome[("table", "long_reads")] == "materialized"
    assert outcome[("trigger", "book_audit")] == "left out"
    assert outcome[("virtual table", "book_fts")] == "left out"
    assert outcome[("shadow table", "book_fts_data")] == "left out"
    assert "missing in target" not in outcome.values()


def test_forms_are_postgresql_s_own_words(loaded):
    entries = ledger(loaded.check())
    assert entry(entries, "foreign key", "book.(author_id) -> author(id)").form == (
        "REFERENCES author(id) DEFERRABLE INITIALLY DEFERRED"
    )
    assert entry(entries, "check", "book.CHECK (price >= 0)").form == "CHECK (price >= 0::numeric)"
    assert entry(entries, "default", "author.joined").form == (
        "to_char((now() AT TIME ZONE 'UTC'::text), 'YYYY-MM-DD'::text)"
    )
    collated = entry(entries, "unique constraint", 'author.UNIQUE ("email" COLLATE NOCASE)')
    assert collated.form == 'UNIQUE INDEX author_email_key USING btree (lower(email COLLATE "C"))'
    twice = entry(entries, "generated column", "author.twice")
    assert twice.form == "GENERATED ALWAYS AS ((id * 2)) STORED"
    assert twice.reason and "VIRTUAL" in twice.reason
    stock = entry(entries, "generated column", "book.stock")
    assert stock.reason == (
        "a column of the table is loaded as text and converted by PostgreSQL: a plain column holding "
        "the loaded values (new rows get none computed)"
    )


def test_excluded_tables_and_columns_and_unmigrated_objects_say_why(loaded):
    entries = ledger(loaded.check())
    assert entry(entries, "table", "audit").reason == (
        "left out by the spec's include/exclude: its rows and schema are not migrated"
    )
    assert entry(entries, "column", "author.secret").reason == (
        "in the spec's exclude_columns: its values are not migrated"
    )
    nocase = entry(entries, "collation", "author.email")
    assert nocase.outcome.value == "left out"
    assert nocase.reason and nocase.reason.startswith(
        "PostgreSQL has no NOCASE collation: =, <, ORDER BY, GROUP BY and DISTINCT on the column "
        "tell 'A' from 'a' in PostgreSQL"
    )
    trigger = entry(entries, "trigger", "book_audit")
    assert trigger.reason == (
        "not translated: it writes to 'audit', which the target does not get; what it does on changes "
        'to "book" does not happen in PostgreSQL; write it as a PL/pgSQL trigger under `triggers:` in '
        "the spec"
    )
    fts = entry(entries, "virtual table", "book_fts")
    assert fts.reason and "tsvector column with a GIN index" in fts.reason
    assert all(e.reason for e in entries if e.outcome.value != "carried")


def test_a_check_dropped_behind_etls_back_is_missing_and_verify_fails(loaded, pg):
    pg.execute("ALTER TABLE book DROP CONSTRAINT book_price_check")
    pg.execute("ALTER TABLE book ALTER COLUMN title DROP NOT NULL")
    pg.execute("DROP INDEX book_cheap")
    result = verify(loaded)
    assert result.exit_code == 1
    assert "  missing in target check             CHECK (price >= 0) -> book_price_check" in result.stdout
    assert "Schema ledger: " in result.stdout and "3 missing in target." in result.stdout
    assert result.stderr.startswith(
        "Error: 3 schema objects the spec carries are missing in the target (not null book.title; "
        "index book.book_cheap; check book.CHECK (price >= 0)): run `etl apply` to create them again"
    )
    # and the behaviour is back after apply
    loaded.apply()
    assert verify(loaded).exit_code == 0


def test_a_foreign_key_made_immediate_is_missing(loaded, pg):
    pg.execute("ALTER TABLE book ALTER CONSTRAINT book_author_id_fkey NOT DEFERRABLE")
    entries = ledger(loaded.check())
    fk = entry(entries, "foreign key", "book.(author_id) -> author(id)")
    assert fk.outcome.value == "missing in target"
    assert fk.reason == "the target defines it otherwise; `etl apply` creates it again"


def test_verify_prints_the_ledger_grouped_by_table_with_a_summary(loaded):
    result = verify(loaded)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert 'table "author"' in lines and 'table "book"' in lines
    assert (
        "  left out          column            secret: in the spec's exclude_columns: its values are not migrated"
        in lines
    )
    summary = next(line for line in lines if line.startswith("Schema ledger: "))
    assert summary.endswith(", 0 missing in target.")
    assert lines[-1] == "Verified: 3 tables and 1 view match the source."


def test_verify_json_has_the_ledger_and_validates(loaded, pg):
    result = verify(loaded, "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    jsonschema.validate(document, SCHEMA)
    kinds = {e["kind"] for e in document["ledger"]}
    assert {"table", "column", "check", "foreign key", "index", "view", "trigger"} <= kinds
    pg.execute("ALTER TABLE book DROP CONSTRAINT sane_pages")
    result = verify(loaded, "--json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    jsonschema.validate(document, SCHEMA)
    assert document["ok"] is False
    assert [e["source"] for e in document["ledger"] if e["outcome"] == "missing in target"] == [
        "book.sane_pages"
    ]


def test_a_spec_that_renames_and_drops_a_check_is_accounted_for(migration):
    m = migration(
        """
        CREATE TABLE item (id INTEGER PRIMARY KEY, qty INTEGER CHECK (qty > 0), price INTEGER,
          CONSTRAINT cheap CHECK (price < 100));
        INSERT INTO item VALUES (1, 2, 50);
        """
    )
    m.apply(
        """
        tables:
          item:
            name: items
            columns:
              qty: {name: quantity}
            checks:
              - {name: cheap, sql: price < 100}
        """
    )
    entries = ledger(m.check())
    assert entry(entries, "table", "item").outcome.value == "translated"
    assert entry(entries, "table", "item").target == "items"
    assert entry(entries, "column", "item.qty").target == "items.quantity"
    assert entry(entries, "check", "item.cheap").outcome.value == "translated"
    dropped = entry(entries, "check", "item.CHECK (qty > 0)")
    assert (dropped.outcome.value, dropped.reason) == ("left out", "not in the spec's checks")


def test_the_verify_schema_names_every_kind_and_outcome():
    entry_schema = SCHEMA["properties"]["ledger"]["items"]["properties"]
    assert entry_schema["kind"]["enum"] == list(KINDS)
    assert entry_schema["outcome"]["enum"] == [o.value for o in Outcome]


# --- triggers and search columns --------------------------------------------------------------

TRIGGERS = """
CREATE TABLE doc (id INTEGER PRIMARY KEY, title TEXT NOT NULL, edits INTEGER NOT NULL DEFAULT 0);
CREATE TABLE audit (id INTEGER PRIMARY KEY, doc_id INTEGER, action TEXT);
CREATE TRIGGER doc_touch AFTER UPDATE OF title ON doc FOR EACH ROW BEGIN
    UPDATE doc SET edits = edits + 1 WHERE id = new.id;
END;
CREATE TRIGGER doc_added AFTER INSERT ON doc BEGIN
    INSERT INTO audit (doc_id, action) VALUES (new.id, 'insert');
END;
CREATE TRIGGER doc_guard BEFORE DELETE ON doc BEGIN
    SELECT RAISE(ABORT, 'locked') WHERE old.title = 'locked';
END;
INSERT INTO doc (id, title) VALUES (1, 'first');
"""

# doc_touch as `etl init` writes it; doc_added, which translates too, removed from the spec.
TRIGGERS_SPEC = """
triggers:
  doc_touch:
    table: doc
    event: update
    columns: [title]
    body: 'UPDATE "doc" SET "edits" = "edits" + 1 WHERE "id" = NEW."id";'
"""


@pytest.fixture
def with_triggers(migration):
    m = migration(TRIGGERS)
    m.apply(TRIGGERS_SPEC)
    return m


def test_a_trigger_the_spec_carries_is_translated_in_the_target_s_own_words(with_triggers):
    touch = entry(ledger(with_triggers.check()), "trigger", "doc_touch")
    assert touch.outcome == Outcome.TRANSLATED
    assert touch.target == "doc.doc_touch"
    assert touch.form and touch.form.startswith(
        "CREATE TRIGGER doc_touch AFTER UPDATE OF title ON doc FOR EACH ROW "
        "EXECUTE FUNCTION etl_trigger_doc_touch()"
    )
    assert 'UPDATE "doc" SET "edits" = "edits" + 1 WHERE "id" = NEW."id";' in touch.form
    assert verify(with_triggers).exit_code == 0


def test_a_trigger_dropped_behind_etls_back_is_missing_and_verify_fails(with_triggers, pg):
    pg.execute("DROP TRIGGER doc_touch ON doc")
    touch = entry(ledger(with_triggers.check()), "trigger", "doc_touch")
    assert (touch.outcome, touch.reason) == (
        Outcome.MISSING,
        "the target has no such trigger; `etl apply` creates it again",
    )
    result = verify(with_triggers)
    assert result.exit_code == 1
    assert "(trigger doc_touch)" in result.stderr
    with_triggers.apply()
    assert verify(with_triggers).exit_code == 0


def test_a_trigger_whose_function_was_rewritten_is_missing(with_triggers, pg):
    pg.execute(
        "CREATE OR REPLACE FUNCTION etl_trigger_doc_touch() RETURNS trigger LANGUAGE plpgsql "
        "AS 'BEGIN RETURN NULL; END'"
    )
    touch = entry(ledger(with_triggers.check()), "trigger", "doc_touch")
    assert touch.outcome == Outcome.MISSING
    assert touch.reason == (
        "the target defines it otherwise (its trigger or function); `etl apply` creates it again"
    )


def test_triggers_left_out_say_whether_they_translate(with_triggers):
    entries = ledger(with_triggers.check())
    guard = entry(entries, "trigger", "doc_guard")
    assert guard.outcome == Outcome.LEFT_OUT
    assert guard.reason and guard.reason.startswith("not translated: it is a BEFORE trigger")
    added = entry(entries, "trigger", "doc_added")
    assert (added.outcome, added.reason) == (
        Outcome.LEFT_OUT,
        "not in the spec's triggers (it translates exactly: `etl init` writes it there); what it does "
        'on changes to "doc" does not happen in PostgreSQL until the spec carries it',
    )


DOCS = """
CREATE TABLE docs (id INTEGER PRIMARY KEY, title TEXT NOT NULL, body TEXT);
CREATE VIRTUAL TABLE docs_fts USING fts5(title, body, content='docs', content_rowid='id');
CREATE TRIGGER docs_ai AFTER INSERT ON docs BEGIN
    INSERT INTO docs_fts(rowid, title, body) VALUES (new.id, new.title, new.body);
END;
CREATE VIRTUAL TABLE notes USING fts5(title, body);
INSERT INTO docs VALUES (1, 'Cats', 'the cat sat');
INSERT INTO notes (rowid, title, body) VALUES (10, 'Running', 'every morning');
"""

DOCS_SPEC = """
tables:
  docs:
    search: {columns: [title, body], config: simple}
  notes_rows:
    query: SELECT rowid AS id, title, body FROM notes
    primary_key: [id]
    columns: {id: {type: bigint}, title: {type: text}, body: {type: text}}
    search: {columns: [title, body], config: simple}
"""


@pytest.fixture
def searched(migration):
    m = migration(DOCS)
    m.apply(DOCS_SPEC)
    return m


def test_an_fts_table_is_translated_into_its_search_column_and_gin_index(searched):
    entries = ledger(searched.check())
    fts = entry(entries, "virtual table", "docs_fts")
    assert (fts.outcome, fts.target) == (Outcome.TRANSLATED, "docs.search")
    assert fts.form == (
        "search tsvector GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, ((COALESCE(title, ''::text) "
        "|| ' '::text) || COALESCE(body, ''::text)))) STORED; INDEX docs_search_idx USING gin (search)"
    )
    assert fts.reason and fts.reason.startswith(
        "its search is the generated tsvector column search of docs, the table holding its rows, with a "
        "GIN index; SQLite's tokenizer (unicode61)"
    )
    trigger = entry(entries, "trigger", "docs_ai")
    assert trigger.outcome == Outcome.LEFT_OUT
    assert trigger.reason and "replaced by the search column docs.search" in trigger.reason
    notes = entry(entries, "virtual table", "notes")
    assert (notes.outcome, notes.target) == (Outcome.MATERIALIZED, "notes_rows.search")
    assert notes.reason and notes.reason.startswith(
        "its rows are loaded as table notes_rows (the spec's query), its search is the generated "
        "tsvector column search with a GIN index"
    )
    shadows = [e for e in entries if e.kind == "shadow table"]
    assert shadows and {e.outcome for e in shadows} == {Outcome.LEFT_OUT}
    assert verify(searched).exit_code == 0


def test_a_search_index_or_column_dropped_behind_etls_back_is_missing(searched, pg):
    pg.execute("DROP INDEX docs_search_idx")
    pg.execute("ALTER TABLE notes_rows DROP COLUMN search")
    entries = ledger(searched.check())
    docs = entry(entries, "virtual table", "docs_fts")
    assert (docs.outcome, docs.reason) == (
        Outcome.MISSING,
        "the target has no such GIN index docs_search_idx; `etl apply` creates it again",
    )
    notes = entry(entries, "virtual table", "notes")
    assert notes.outcome == Outcome.MISSING
    assert notes.reason and notes.reason.startswith(
        "the target's notes_rows.search is not that generated tsvector column"
    )
    result = verify(searched)
    assert result.exit_code == 1
    assert "virtual table docs_fts" in result.stderr and "virtual table notes" in result.stderr


# --- verify's text: the exceptions by default, every entry with --verbose -----------------------


def test_verify_lists_only_what_is_not_carried_unless_verbose(loaded):
    everything = json.loads(verify(loaded, "--json").stdout)["ledger"]
    carried = sum(1 for e in everything if e["outcome"] == "carried")
    assert carried > 0

    short = verify(loaded).stdout.splitlines()
    assert not any(line.startswith("  carried ") for line in short)
    assert 'table "book"' in short
    assert (
        "  translated        check             sane_pages -> sane_pages [CHECK (pages >= 1 AND pages <= 10000)]: "
        "SQLite expression translated"
    ) in short
    assert f"({carried} carried entries not listed: --verbose lists every entry.)" in short

    full = verify(loaded, "--verbose").stdout.splitlines()
    listed = [line for line in full if line.startswith("  ") and not line.startswith("    ")]
    assert len(listed) == len(everything)
    assert "  carried           column            email [text]" in full
    assert not any("not listed" in line for line in full)
    summary = [line for line in full if line.startswith("Schema ledger: ")]
    assert summary == [line for line in short if line.startswith("Schema ledger: ")]


def test_what_init_writes_for_triggers_and_search_verifies_with_nothing_missing(tmp_path, tmp_sqlite, pg_url):
    source = tmp_sqlite(TRIGGERS + DOCS)
    spec = tmp_path / "init.yaml"
    result = runner.invoke(app, ["init", str(source), "-o", str(spec), "--target", pg_url])
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["apply", str(spec), "--yes"]).exit_code == 0
    result = runner.invoke(app, ["verify", str(spec), "--json"])
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    jsonschema.validate(document, SCHEMA)
    outcome = {(e["kind"], e["source"]): e["outcome"] for e in document["ledger"]}
    assert outcome[("trigger", "doc_touch")] == "translated"
    assert outcome[("trigger", "doc_added")] == "translated"
    assert outcome[("trigger", "doc_guard")] == "left out"
    assert outcome[("virtual table", "docs_fts")] == "translated"
    assert outcome[("trigger", "docs_ai")] == "left out"
    assert outcome[("virtual table", "notes")] == "materialized"
    assert "missing in target" not in outcome.values()
