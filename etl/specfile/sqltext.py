"""Is a spec's SQL text one expression, and nothing more?

Spec fields that hold SQL (a table's `where`, a column's `expression`, an index's `where`, a
`default: {sql: ...}`) are pasted into statements etl writes. A parser asked about the text inside
such a statement cannot tell one expression from text that closes the statement's parenthesis or
ends it: `true) OR (true` and `1; DROP TABLE x` both parse once embedded. So the text is first
read token by token, the way the database's lexer reads it (strings, quoted identifiers, dollar
quotes), and refused when, outside those, it holds a `;`, a comment, a parenthesis that closes
more than it opened or leaves one open, or a top-level comma. What is left is one expression as
far as its shape goes; the database's own parser then judges its grammar.
"""

from __future__ import annotations

import re

POSTGRESQL = "postgresql"
SQLITE = "sqlite"

# An identifier's letters: ASCII letters, `_`, and any character beyond ASCII. "Beyond ASCII" is
# spelled as the negation [^\x00-\x7f]: the same characters as the range \u0080-\U0010ffff, which
# re takes milliseconds to compile, on every command's start.
_START = r"(?:[A-Za-z_]|[^\x00-\x7f])"
# PostgreSQL's dollar-quote opening: $$ or $tag$ (a tag is an identifier without `$`).
_DOLLAR_TAG = re.compile(rf"\$(?:{_START}(?:[A-Za-z0-9_]|[^\x00-\x7f])*)?\$")
_WORD = re.compile(rf"{_START}(?:[A-Za-z0-9_$]|[^\x00-\x7f])*")


def one_expression_problem(text: str, dialect: str) -> str | None:
    """Why `text` is not a single SQL expression in `dialect` (POSTGRESQL or SQLITE), or None."""
    opened: list[tuple[str, int]] = []  # open brackets and where each opened
    closing = {"(": ")", "[": "]"}
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        at = f"at character {i + 1}"
        if ch == "'":
            end = _quoted_end(text, i, "'")
            if end < 0:
                return f"a string opened {at} is never closed"
            i = end
            continue
        if ch == '"' or (dialect == SQLITE and ch == "`"):
            end = _quoted_end(text, i, ch)
            if end < 0:
                return f"a quoted name opened {at} is never closed"
            i = end
            continue
        if ch == "[" and dialect == SQLITE:  # SQLite's [quoted name]
            end = text.find("]", i + 1)
            if end < 0:
                return f"a quoted name opened {at} is never closed"
            i = end + 1
            continue
        if ch == "$" and dialect == POSTGRESQL:
            tag = _DOLLAR_TAG.match(text, i)
            if tag:
                end = text.find(tag.group(), tag.end())
                if end < 0:
                    return f"a dollar-quoted string opened {at} is never closed"
                i = end + len(tag.group())
                continue
        if _WORD.match(ch):
            word = _WORD.match(text, i)
            assert word is not None
            i = word.end()
            # E'...' (PostgreSQL): a string in which a backslash escapes the next character.
            if dialect == POSTGRESQL and word.group() in ("E", "e") and text.startswith("'", i):
                end = _quoted_end(text, i, "'", backslash=True)
                if end < 0:
                    return f"a string opened {at} is never closed"
                i = end
            continue
        if text.startswith("--", i) or text.startswith("/*", i):
            return f"a comment starts {at}: write the expression without comments"
        if ch == ";":
            return f"`;` {at} ends a statement: write one expression, not statements"
        if ch in closing or (ch == "[" and dialect == POSTGRESQL):
            opened.append((ch, i))
        elif ch in (")", "]"):
            if not opened or closing[opened[-1][0]] != ch:
                return f"`{ch}` {at} closes a bracket that was not opened in the expression"
            opened.pop()
        elif ch == "," and not opened:
            return f"`,` {at} separates two expressions: write one"
        i += 1
    if opened:
        ch, start = opened[-1]
        return f"`{ch}` at character {start + 1} is never closed"
    if not text.strip():
        return "the expression is empty"
    return None


def _quoted_end(text: str, start: int, quote: str, backslash: bool = False) -> int:
    """The index just past the quoted text starting at `start` (a doubled quote stands for one),
    or -1 when it is not closed."""
    i = start + 1
    while i < len(text):
        ch = text[i]
        if backslash and ch == "\\":
            i += 2
            continue
        if ch == quote:
            if text.startswith(quote, i + 1):
                i += 2
                continue
            return i + 1
        i += 1
    return -1


def one_select_problem(text: str, dialect: str = POSTGRESQL) -> str | None:
    """Why `text` is not one SELECT statement (a view's query in PostgreSQL, a `query:` table's
    in SQLite), or None. It goes into `CREATE VIEW ... AS <text>` or `FROM (<text>)`, which admit
    only a query; read token by token as above, it may hold no `;` and no comment, so that it
    cannot end that statement and start another."""
    problem = one_expression_problem(text, dialect)
    if problem is not None and not problem.startswith("`,`"):
        return problem.replace("the expression", "the query").replace("one expression", "one SELECT")
    # Top-level commas separate a SELECT's columns: checked again without them.
    problem = one_expression_problem(_without_top_level_commas(text), dialect)
    if problem is not None:
        return problem.replace("the expression", "the query").replace("one expression", "one SELECT")
    first = _WORD.match(text.lstrip().lstrip("("))
    if first is None or first.group().upper() not in ("SELECT", "WITH", "VALUES", "TABLE"):
        return "a query starts with SELECT (or WITH, VALUES, TABLE)"
    return None


def _without_top_level_commas(text: str) -> str:
    """`text` with the commas outside brackets, strings and quoted names made spaces."""
    out = list(text)
    depth, i, n = 0, 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "'\"":
            end = _quoted_end(text, i, ch)
            i = n if end < 0 else end
            continue
        if ch == "$":
            tag = _DOLLAR_TAG.match(text, i)
            if tag:
                end = text.find(tag.group(), tag.end())
                i = n if end < 0 else end + len(tag.group())
                continue
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0:
            out[i] = " "
        i += 1
    return "".join(out)


def relations_read(text: str) -> tuple[str, ...] | str:
    """The unqualified relations a PostgreSQL query reads (its own WITH names apart), in order of
    appearance; or, when the query cannot be read, why."""
    import sqlglot
    from sqlglot import exp

    try:
        query = sqlglot.parse_one(text, read="postgres")
    except sqlglot.errors.SqlglotError as exc:
        return str(exc).splitlines()[0]
    ctes = {cte.alias for cte in query.find_all(exp.CTE)}
    names = [t.name for t in query.find_all(exp.Table) if not t.db and t.name not in ctes]
    return tuple(dict.fromkeys(names))


# SQLite's date and time functions read the clock for 'now', given as an argument, left out, or
# held by the value passed: only their arguments' text, not the rows, would tell.
_CLOCK_FUNCTIONS = frozenset({"date", "time", "datetime", "julianday", "unixepoch", "strftime", "timediff"})
_CLOCK_WORDS = frozenset({"current_date", "current_time", "current_timestamp"})
_RANDOM_FUNCTIONS = frozenset({"random", "randomblob"})
_STATE_FUNCTIONS = frozenset(
    {"changes", "total_changes", "last_insert_rowid", "sqlite_version", "sqlite_source_id", "sqlite_offset"}
)


def beyond_the_row(text: str) -> str | None:
    """What a SQLite expression (a `where:`, a column's `expression:`) reads besides the values of
    the row it is evaluated on, or None: other rows or tables (a subquery), the clock, chance, or
    the connection's state. Such an expression's result can change while the table's own rows
    stay as they are. Quoted names are names, whatever they spell."""
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "'\"`":
            end = _quoted_end(text, i, ch)
            i = n if end < 0 else end
            continue
        if ch == "[":
            end = text.find("]", i + 1)
            i = n if end < 0 else end + 1
            continue
        word = _WORD.match(text, i)
        if word is None:
            i += 1
            continue
        i = word.end()
        name = word.group().lower()
        called = text[i:].lstrip().startswith("(")
        if name == "select":
            return "reads other rows (a subquery)"
        if name in _CLOCK_WORDS or (called and name in _CLOCK_FUNCTIONS):
            return f"may read the clock ({word.group()})"
        if called and name in _RANDOM_FUNCTIONS:
            return f"is random ({word.group()})"
        if called and name in _STATE_FUNCTIONS:
            return f"reads the connection's state ({word.group()})"
    return None
