"""Just enough of SQLite's SQL text to read what PRAGMAs do not tell: index expressions,
partial-index predicates and AUTOINCREMENT.

Quoted names and strings ('..', "..", `..`, [..]) are skipped as units, so a column called
"where" or a default of 'a,b' never confuses the splitting.
"""

from __future__ import annotations

import re
from functools import lru_cache

_QUOTES = {"'": "'", '"': '"', "`": "`", "[": "]"}


def _skipped(sql: str, i: int) -> tuple[int, str] | None:
    """If a quoted string/name or a comment starts at `i`: where it ends, and which it is."""
    ch = sql[i]
    if ch in _QUOTES:
        close = _QUOTES[ch]
        j = i + 1
        while j < len(sql):
            if sql[j] == close:
                if close != "]" and j + 1 < len(sql) and sql[j + 1] == close:
                    j += 2
                    continue
                break
            j += 1
        return j + 1, "quoted"
    if sql.startswith("--", i):
        end = sql.find("\n", i)
        return (len(sql) if end < 0 else end), "comment"
    if sql.startswith("/*", i):
        end = sql.find("*/", i + 2)
        return (len(sql) if end < 0 else end + 2), "comment"
    return None


def _scan(sql: str):
    """Yield (index, char, depth) for characters outside quotes and comments."""
    depth = 0
    i = 0
    while i < len(sql):
        skipped = _skipped(sql, i)
        if skipped:
            i = skipped[0]
            continue
        ch = sql[i]
        if ch == "(":
            depth += 1
        yield i, ch, depth
        if ch == ")":
            depth -= 1
        i += 1


@lru_cache(maxsize=4096)  # a table's DDL is searched for several keywords, by init twice over
def strip_quoted(sql: str) -> str:
    """The SQL with every quoted string or name and every comment blanked out: safe to search for
    keywords. Blanking keeps the length, so a position found in the result is a position in `sql`."""
    if not any(mark in sql for mark in ("'", '"', "`", "[", "--", "/*")):
        return sql  # nothing to blank
    kept = [" "] * len(sql)
    for i, ch, _depth in _scan(sql):
        kept[i] = ch
    return "".join(kept)


def strip_comments(sql: str) -> str:
    """The SQL with each comment replaced by a space (quoted text is kept as it is)."""
    out = []
    i = 0
    while i < len(sql):
        skipped = _skipped(sql, i)
        if skipped:
            end, kind = skipped
            out.append(sql[i:end] if kind == "quoted" else " ")
            i = end
        else:
            out.append(sql[i])
            i += 1
    return "".join(out)


def has_autoincrement(create_table_sql: str) -> bool:
    return re.search(r"\bAUTOINCREMENT\b", strip_quoted(create_table_sql), re.IGNORECASE) is not None


def index_parts(create_index_sql: str) -> tuple[list[str], str | None]:
    """The key list of CREATE INDEX, one SQL text per key, and the WHERE predicate if any."""
    open_at = close_at = None
    commas: list[int] = []
    for i, ch, depth in _scan(create_index_sql):
        if ch == "(" and depth == 1 and open_at is None:
            open_at = i
        elif ch == "," and depth == 1 and open_at is not None and close_at is None:
            commas.append(i)
        elif ch == ")" and depth == 1 and open_at is not None and close_at is None:
            close_at = i
    if open_at is None or close_at is None:
        return [], None
    bounds = [open_at, *commas, close_at]
    keys = [
        strip_comments(create_index_sql[a + 1 : b]).strip() for a, b in zip(bounds, bounds[1:], strict=False)
    ]
    rest = create_index_sql[close_at + 1 :]
    match = re.search(r"\bWHERE\b", strip_quoted(rest), re.IGNORECASE)
    where = strip_comments(rest[match.end() :]).strip().rstrip(";").strip() if match else None
    return keys, where or None


def unquote_identifier(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] in _QUOTES and text[-1] == _QUOTES[text[0]]:
        inner = text[1:-1]
        return inner if text[0] == "[" else inner.replace(text[0] * 2, text[0])
    return text
