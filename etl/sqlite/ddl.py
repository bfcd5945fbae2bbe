"""Just enough of SQLite's SQL text to read what PRAGMAs do not tell: index expressions,
partial-index predicates and AUTOINCREMENT.

Quoted names and strings ('..', "..", `..`, [..]) are skipped as units, so a column called
"where" or a default of 'a,b' never confuses the splitting.
"""

from __future__ import annotations

import re
from functools import lru_cache

from etl.settings import Deferral

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


_TABLE_CONSTRAINT = re.compile(r"\s*(CONSTRAINT|PRIMARY|UNIQUE|CHECK|FOREIGN)\b", re.IGNORECASE)
_NAME_TOKEN = re.compile(r'\s*("(?:[^"]|"")*"|`(?:[^`]|``)*`|\[[^\]]*\]|\'(?:[^\']|\'\')*\'|[^\s(,]+)')


def table_parts(create_table_sql: str) -> list[str]:
    """The column definitions and table constraints of CREATE TABLE, one text each."""
    open_at = None
    bounds: list[int] = []
    for i, ch, depth in _scan(create_table_sql):
        if ch == "(" and depth == 1 and open_at is None:
            open_at = i
            bounds.append(i)
        elif ch == "," and depth == 1 and open_at is not None:
            bounds.append(i)
        elif ch == ")" and depth == 1 and open_at is not None:
            bounds.append(i)
            break
    return [create_table_sql[a + 1 : b].strip() for a, b in zip(bounds, bounds[1:], strict=False)]


def part_column(part: str) -> str | None:
    """The column a part of CREATE TABLE defines, or None for a table constraint."""
    if _TABLE_CONSTRAINT.match(part):
        return None
    match = _NAME_TOKEN.match(part)
    return unquote_identifier(match.group(1)) if match else None


def _parenthesized(part: str, open_at: int) -> tuple[str, int] | None:
    """The text inside the parentheses opening at `open_at`, and where they close."""
    opened = None
    for i, ch, depth in _scan(part):
        if i == open_at:
            opened = depth
        elif opened is not None and ch == ")" and depth == opened:
            return part[open_at + 1 : i].strip(), i
    return None


def _keyword_positions(part: str, pattern: str) -> list[re.Match[str]]:
    """Matches of `pattern` outside quotes, comments and parentheses of the part."""
    bare = strip_quoted(part)
    matches = list(re.finditer(pattern, bare, re.IGNORECASE))
    if not matches:
        return []  # most parts name no such keyword: no need to know the depth of every character
    # Quotes and comments are blanks in `bare`: the depth at a match counts its parentheses.
    return [m for m in matches if bare.count("(", 0, m.start()) == bare.count(")", 0, m.start())]


def part_checks(part: str) -> list[tuple[str | None, str]]:
    """The CHECK constraints of one part of CREATE TABLE: (name or None, SQLite expression)."""
    found = []
    for match in _keyword_positions(part, r"\bCHECK\s*\("):
        inside = _parenthesized(part, match.end() - 1)
        if inside is None:
            continue
        name = None
        constraints = list(re.finditer(r"\bCONSTRAINT\b", strip_quoted(part[: match.start()]), re.IGNORECASE))
        if constraints:
            token = _NAME_TOKEN.match(part, constraints[-1].end())
            if token and not part[token.end() : match.start()].strip():
                name = unquote_identifier(token.group(1))
        found.append((name, strip_comments(inside[0]).strip()))
    return found


def part_named_unique(part: str) -> tuple[str, tuple[str, ...]] | None:
    """A named UNIQUE constraint of one part of CREATE TABLE (`CONSTRAINT name UNIQUE (a, b)`, or
    `col type CONSTRAINT name UNIQUE`): its name and columns. SQLite's own index for it is named
    sqlite_autoindex_*, so the name lives only here."""
    for match in _keyword_positions(part, r"\bUNIQUE\b"):
        constraints = list(re.finditer(r"\bCONSTRAINT\b", strip_quoted(part[: match.start()]), re.IGNORECASE))
        token = _NAME_TOKEN.match(part, constraints[-1].end()) if constraints else None
        if not token or part[token.end() : match.start()].strip():
            continue
        column = part_column(part)
        if column is not None:
            return unquote_identifier(token.group(1)), (column,)
        opening = part.find("(", match.end())
        inside = (
            _parenthesized(part, opening)
            if opening >= 0 and not part[match.end() : opening].strip()
            else None
        )
        if inside is None:
            return None
        keys = [_NAME_TOKEN.match(key) for key in _split_commas(strip_comments(inside[0]))]
        if any(k is None for k in keys):
            return None
        return unquote_identifier(token.group(1)), tuple(unquote_identifier(k.group(1)) for k in keys if k)
    return None


def part_generated(part: str) -> tuple[str, bool] | None:
    """A generated column's SQLite expression, and whether it is STORED (else VIRTUAL)."""
    for match in _keyword_positions(part, r"\bAS\s*\("):
        inside = _parenthesized(part, match.end() - 1)
        if inside is None:
            continue
        rest = strip_quoted(part[inside[1] + 1 :])
        stored = re.match(r"\s*STORED\b", rest, re.IGNORECASE) is not None
        return strip_comments(inside[0]).strip(), stored
    return None


def part_collation(part: str) -> str | None:
    """The collation a column definition declares (`email TEXT COLLATE NOCASE`), in capitals;
    None for a table constraint or a column that declares none."""
    if part_column(part) is None:
        return None
    for match in _keyword_positions(part, r"\bCOLLATE\s+"):
        token = _NAME_TOKEN.match(part, match.end())
        if token:
            return unquote_identifier(token.group(1)).upper()
    return None


def part_foreign_key(part: str) -> tuple[tuple[str, ...], Deferral] | None:
    """The child columns of a part's REFERENCES clause and how it defers (SQLite, like PostgreSQL,
    defers only an INITIALLY DEFERRED key)."""
    refs = _keyword_positions(part, r"\bREFERENCES\b")
    if not refs:
        return None
    column = part_column(part)
    if column is not None:
        columns: tuple[str, ...] = (column,)
    else:
        fk = _keyword_positions(part, r"\bFOREIGN\s+KEY\s*\(")
        if not fk:
            return None
        inside = _parenthesized(part, fk[0].end() - 1)
        if inside is None:
            return None
        columns = tuple(unquote_identifier(c) for c in _split_commas(inside[0]))
    tail = strip_quoted(part[refs[0].end() :])
    if re.search(r"\bNOT\s+DEFERRABLE\b", tail, re.IGNORECASE):
        return columns, Deferral.NOT_DEFERRABLE
    if re.search(r"\bDEFERRABLE\s+INITIALLY\s+DEFERRED\b", tail, re.IGNORECASE):
        return columns, Deferral.INITIALLY_DEFERRED
    if re.search(r"\bDEFERRABLE\b", tail, re.IGNORECASE):
        return columns, Deferral.DEFERRABLE
    return columns, Deferral.NOT_DEFERRABLE


def _split_commas(text: str) -> list[str]:
    cuts = [i for i, ch, depth in _scan(text) if ch == "," and depth == 0]
    bounds = [-1, *cuts, len(text)]
    return [text[a + 1 : b].strip() for a, b in zip(bounds, bounds[1:], strict=False)]
