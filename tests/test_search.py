"""SQLite full-text search (FTS3/4/5) carried to PostgreSQL's: the rows an FTS table indexes
arrive (from its external content table, or read through the FTS table itself when it stores
them), and the spec's `search:` gives their table a generated tsvector column with a GIN index,
so that a word search finds the loaded rows and the rows inserted afterwards. The triggers apps
write to keep an FTS index in step are named as replaced by that column, not translated."""

from __future__ import annotations

import sqlite3

import pytest
import yaml

from etl.errors import SpecError

DOCS = """
CREATE TABLE docs (id INTEGER PRIMARY KEY, title TEXT NOT NULL, body TEXT, stars INTEGER);
CREATE VIRTUAL TABLE docs_fts USING fts5(title, body, content='docs', content_rowid='id');
CREATE TRIGGER docs_ai AFTER INSERT ON docs BEGIN
    INSERT INTO docs_fts(rowid, title, body) VALUES (new.id, new.title, new.body);
END;
CREATE TRIGGER docs_ad AFTER DELETE ON docs BEGIN
    INSERT INTO docs_fts(docs_fts, rowid, title, body) VALUES ('delete', old.id, old.title, old.body);
END;
INSERT INTO docs VALUES (1, 'Cats', 'the cat sat on the mat', 5);
INSERT INTO docs VALUES (2, 'Dogs', NULL, 3);
INSERT INTO docs VALUES (3, 'Birds', 'songs at dawn', NULL);
"""

SEARCHED = """
tables:
  docs:
    search: {columns: [title, body], config: simple}
"""


def _found(pg, table: str, query: str, column: str = "search", config: str = "simple") -> list[int]:
    return [
        r[0]
        for r in pg.execute(
            f'SELECT id FROM "{table}" WHERE "{column}" @@ to_tsquery(%s::regconfig, %s) ORDER BY id',
            (config, query),
        )
    ]


def test_external_content_fts_becomes_a_generated_search_column(migration, pg):
    m = migration(DOCS)
    m.apply(SEARCHED)

    assert [r[0] for r in pg.execute("SELECT id FROM docs ORDER BY id")] == [1, 2, 3]
    assert _found(pg, "docs", "cat") == [1]
    assert _found(pg, "docs", "dogs") == [2]  # a NULL body still leaves the title searchable
    assert _found(pg, "docs", "songs & dawn") == [3]
    # A row inserted in PostgreSQL is searchable at once: PostgreSQL computes the column.
    pg.execute("INSERT INTO docs (id, title, body) VALUES (4, 'Fish', 'a cat fish')")
    assert _found(pg, "docs", "cat") == [1, 4]
    (method,) = pg.execute(
        "SELECT am.amname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "JOIN pg_am am ON am.oid = i.relam WHERE i.relname = 'docs_search_idx'"
    ).fetchone()
    assert method == "gin"
    pg.execute("DELETE FROM docs WHERE id = 4")
    # Planned again, the target matches: the column and its index read back as they were made.
    assert not m.plan().has_changes


def test_the_fts_table_and_its_triggers_are_named_as_replaced_by_the_search_column(migration):
    m = migration(DOCS)
    plan = m.plan(SEARCHED)

    reasons = {x.name: x.reason for x in plan.left_out}
    assert "its search is the generated tsvector column 'search' of table 'docs'" in reasons["docs_fts"]
    assert "SQLite's tokenizer (unicode61) and PostgreSQL's 'simple' configuration" in reasons["docs_fts"]
    for trigger in ("docs_ai", "docs_ad"):
        assert reasons[trigger].startswith("FTS maintenance: it keeps the full-text index 'docs_fts'")
        assert "not translated, replaced" in reasons[trigger]
    # Without `search:`, the plan says what would create it.
    reasons = {x.name: x.reason for x in m.plan("").left_out}
    assert "`search: {columns: [...]}` on the table holding the rows" in reasons["docs_fts"]
    assert reasons["docs_ai"].startswith("FTS maintenance")


NOTES = """
CREATE VIRTUAL TABLE notes USING fts5(title, body, tokenize = 'porter unicode61');
INSERT INTO notes (rowid, title, body) VALUES (10, 'Running', 'she runs every morning');
INSERT INTO notes (rowid, title, body) VALUES (11, 'Walking', NULL);
INSERT INTO notes (rowid, title, body) VALUES (12, 'Resting', 'naps in the afternoon');
"""


def test_an_fts_table_storing_its_own_rows_migrates_through_a_query(migration, pg):
    m = migration(NOTES)
    m.apply(
        """
        tables:
          notes:
            query: SELECT rowid AS id, title, body FROM notes
            primary_key: [id]
            columns: {id: {type: bigint}, title: {type: text}, body: {type: text}}
            search: {columns: [title, body], config: english}
        """
    )

    rows = pg.execute("SELECT id, title, body FROM notes ORDER BY id").fetchall()
    assert rows == [
        (10, "Running", "she runs every morning"),
        (11, "Walking", None),
        (12, "Resting", "naps in the afternoon"),
    ]
    assert _found(pg, "notes", "run", config="english") == [10]  # stemmed, as porter does
    pg.execute("INSERT INTO notes (id, title) VALUES (13, 'Running late')")
    assert _found(pg, "notes", "run", config="english") == [10, 13]


def _has_fts4() -> bool:
    with sqlite3.connect(":memory:") as con:
        try:
            con.execute("CREATE VIRTUAL TABLE t USING fts4(a)")
        except sqlite3.OperationalError:
            return False
    return True


@pytest.mark.skipif(not _has_fts4(), reason="this sqlite3 module has no FTS4")
def test_init_writes_search_for_fts4_and_fts5_and_the_spec_applies(tmp_path, tmp_sqlite, pg_url, pg):
    from conftest import Migration

    from etl.init.infer import init_spec

    source = tmp_sqlite(
        DOCS
        + NOTES
        + """
        CREATE VIRTUAL TABLE letters USING fts4(sender, text);
        INSERT INTO letters (docid, sender, text) VALUES (7, 'Ada', 'dear Charles, the engine');
        CREATE VIRTUAL TABLE hashes USING fts5(word, content='');
        """
    )
    spec = tmp_path / "spec.yaml"
    result = init_spec(source, spec, target_url=pg_url)

    written = yaml.safe_load(spec.read_text())
    assert written["tables"]["docs"]["search"] == {
        "name": "search",
        "columns": ["title", "body"],
        "config": "simple",
    }
    assert written["tables"]["notes"]["query"] == 'SELECT rowid AS id, "title", "body" FROM "notes"'
    assert written["tables"]["notes"]["search"]["config"] == "english"
    assert written["tables"]["letters"]["search"]["columns"] == ["sender", "text"]
    assert "hashes" not in written["tables"]  # contentless: nothing to migrate, named
    messages = {f.table: f.message for f in result.findings}
    assert "do not split, fold or stem every word alike" in messages["docs_fts"]
    assert "contentless" in messages["hashes"]
    assert messages["docs_ai"].startswith("trigger: FTS maintenance")

    m = Migration(tmp_path, pg_url, source)
    m.apply()
    assert _found(pg, "docs", "cat") == [1]
    assert _found(pg, "notes", "morning", config="english") == [10]
    assert [
        r[0] for r in pg.execute("SELECT id FROM letters WHERE search @@ to_tsquery('simple', 'engine')")
    ] == [7]
    assert pg.execute("SELECT count(*) FROM notes").fetchone() == (3,)


def test_search_names_only_text_columns_of_the_table(tmp_sqlite, tmp_path):
    from conftest import Migration

    m = Migration(tmp_path, "postgresql://etl@127.0.0.1:1/unused", tmp_sqlite(DOCS))
    with pytest.raises(SpecError) as caught:
        m.check("tables:\n  docs:\n    search: {columns: [title, bdy, stars], name: body}\n")
    text = str(caught.value)
    assert "no column 'bdy' in table 'docs' (or it is excluded) (did you mean 'body'?)" in text
    assert "column 'stars' is not text: full-text search reads text columns only" in text
    assert "table 'docs' already has a column 'body': give the search column another `name`" in text


def test_a_sync_brings_new_rows_into_the_search_and_rollback_keeps_it(migration, pg):
    from etl.run.rollback import apply_rollback, plan_rollback

    m = migration(DOCS)
    m.apply(SEARCHED)
    m.change_source(
        "INSERT INTO docs VALUES (5, 'Cats again', 'a second cat', 1); UPDATE docs SET body = 'dawn chorus' WHERE id = 3;"
    )
    m.apply()

    assert _found(pg, "docs", "cat") == [1, 5]
    assert _found(pg, "docs", "chorus") == [3]
    assert not m.plan().has_changes
    apply_rollback(plan_rollback(m.url, "public"), m.url)
    assert _found(pg, "docs", "cat") == [1]
    assert _found(pg, "docs", "songs") == [3]
