"""SQLite triggers of the simple, common shapes as PostgreSQL trigger parts (timing, event, WHEN
and a PL/pgSQL body), where the translation is exact; otherwise why not.

Translated: FOR EACH ROW triggers, AFTER INSERT, UPDATE [OF columns] or DELETE, with an optional
WHEN, whose body is UPDATE ... SET ... WHERE, INSERT INTO ... (columns) VALUES (...) and DELETE
FROM ... WHERE statements over tables the target gets, each expression translated exactly
(etl/sqlite/translate.py; NEW.col and OLD.col become PL/pgSQL's). BEFORE triggers are left out:
SQLite leaves undefined what happens when one changes the row being written, and its RAISE()
(IGNORE, FAIL, ROLLBACK) has no exact PostgreSQL counterpart. That SQLite does not fire a trigger
from within itself (recursive_triggers is off by default) the target keeps with a guard in the
function etl wraps the body in (etl/postgres/ddl.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from psycopg import sql

from etl.sqlite.ddl import strip_quoted, unquote_identifier
from etl.sqlite.translate import TargetColumnRef, translate_default, translate_expression

_NAME = r'(?:"(?:[^"]|"")*"|`(?:[^`]|``)*`|\[[^\]]*\]|[\w$]+)'
_HEADER = re.compile(
    rf"\s*CREATE\s+(?:TEMP\s+|TEMPORARY\s+)?TRIGGER\s+(?:IF\s+NOT\s+EXISTS\s+)?(?:{_NAME}\s*\.\s*)?{_NAME}\s+"
    r"(?:(BEFORE|AFTER|INSTEAD\s+OF)\s+)?(INSERT|DELETE|UPDATE(?:\s+OF\s+(.*?))?)\s+ON\s+"
    rf"({_NAME})\s+(FOR\s+EACH\s+ROW\s+)?(?:WHEN\s+(.*?)\s+)?BEGIN\b(.*)\bEND\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)


@dataclass(frozen=True)
class TableRef:
    """A table the target gets: its name there, and its columns by SQLite name."""

    name: str
    columns: dict[str, TargetColumnRef]
    key: tuple[str, ...] = ()  # its primary key (SQLite names)


@dataclass(frozen=True)
class TriggerTranslation:
    table: str = ""  # the source table it is on
    timing: str = ""  # "after"
    event: str = ""  # "insert" | "update" | "delete"
    columns: tuple[str, ...] = ()  # UPDATE OF these (source column names)
    when: str | None = None  # PostgreSQL boolean expression over NEW and OLD
    body: str = ""  # PL/pgSQL statements, each ending in `;`
    reason: str | None = None  # why it does not translate exactly; None when it does


def _fold(name: str) -> str:
    return name.lower() if name.isascii() else name


def _refused(why: str) -> TriggerTranslation:
    return TriggerTranslation(reason=why)


def _split_top(text: str, separator: str) -> list[str]:
    """`text` split at each `separator` (one character) outside quotes and parentheses."""
    blanked = strip_quoted(text)
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(blanked):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == separator and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def _keyword_at(text: str, keyword: str) -> int | None:
    """Where `keyword` first stands on its own outside quotes and parentheses."""
    blanked = strip_quoted(text)
    depth = 0
    for i, ch in enumerate(blanked):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if (
            depth == 0
            and re.match(rf"\b{keyword}\b", blanked[i:], re.IGNORECASE)
            and (i == 0 or not (blanked[i - 1].isalnum() or blanked[i - 1] in "_$"))
        ):
            return i
    return None


def translate_trigger(create_sql: str, tables: dict[str, TableRef]) -> TriggerTranslation:
    """The trigger's PostgreSQL parts, or why it has no exact translation. `tables`: the tables
    the target gets, by SQLite name."""
    header = _HEADER.match(create_sql)
    if header is None:
        return _refused("etl does not read this form of CREATE TRIGGER")
    timing, event, of, table, _each, when, body = header.groups()
    timing = re.sub(r"\s+", " ", (timing or "BEFORE").upper())
    if timing != "AFTER":
        return _refused(
            f"it is a {timing} trigger (etl translates AFTER triggers: SQLite leaves undefined what a "
            "BEFORE trigger that changes the row being written does, and its RAISE(IGNORE/FAIL/ROLLBACK) "
            "has no exact PostgreSQL counterpart)"
        )
    by_fold = {_fold(name): (name, ref) for name, ref in tables.items()}
    found = by_fold.get(_fold(unquote_identifier(table)))
    if found is None:
        return _refused(f"it is on '{unquote_identifier(table)}', which the target does not get")
    source, on = found
    event = event.split()[0].lower()
    columns: tuple[str, ...] = ()
    if of:
        named = [unquote_identifier(c) for c in _split_top(of, ",")]
        known = {_fold(c): c for c in on.columns}
        if any(_fold(c) not in known for c in named):
            return _refused("its UPDATE OF names a column the target does not get")
        columns = tuple(known[_fold(c)] for c in named)
    row = on.columns
    pg_when = None
    if when:
        translated = translate_expression(when, {}, ascii_case=True, row=row)
        if translated is None:
            return _refused(f"its WHEN ({when.strip()}) has no exact PostgreSQL equivalent")
        pg_when = translated.as_string(None)
    statements = [s for s in _split_top(body, ";") if s]
    if not statements:
        return _refused("its body is empty")
    pg_statements = []
    for statement in statements:
        own = _own_table_problem(statement, source, on)
        if own is not None:
            return _refused(own)
        translated_statement = _statement(statement, by_fold, row)
        if isinstance(translated_statement, str):
            return _refused(translated_statement)
        pg_statements.append(translated_statement.as_string(None) + ";")
    return TriggerTranslation(source, "after", event, columns, pg_when, " ".join(pg_statements))


def _own_table_problem(statement: str, source: str, on: TableRef) -> str | None:
    """A statement writing to the trigger's own table must change only the row just written
    (UPDATE ... WHERE key = NEW.key): SQLite runs the trigger between the rows of a statement,
    PostgreSQL after them all, and only then can a write to other rows of the table differ."""
    for pattern in (_UPDATE, _INSERT, _DELETE):
        match = pattern.match(statement)
        if match is None or _fold(unquote_identifier(match.group(1))) != _fold(source):
            continue
        if pattern is _UPDATE and len(on.key) == 1:
            rest = match.group(2)
            at = _keyword_at(rest, "WHERE")
            key = re.escape(on.key[0])
            same = rf'\s*"?{key}"?\s*==?\s*NEW\s*\.\s*"?{key}"?\s*'
            if at is not None and re.fullmatch(same, rest[at + 5 :], re.IGNORECASE):
                return None
        return (
            "it writes to its own table beyond the row just written (only UPDATE ... WHERE key = NEW.key "
            "is exact: SQLite runs the trigger between the rows of a statement, PostgreSQL after them)"
        )
    return None


_UPDATE = re.compile(rf"UPDATE\s+({_NAME})\s+SET\s+(.*)$", re.IGNORECASE | re.DOTALL)
_INSERT = re.compile(
    rf"INSERT\s+INTO\s+({_NAME})\s*\((.*?)\)\s*VALUES\s*\((.*)\)\s*$", re.IGNORECASE | re.DOTALL
)
_DELETE = re.compile(rf"DELETE\s+FROM\s+({_NAME})\s+WHERE\s+(.*)$", re.IGNORECASE | re.DOTALL)


def _statement(
    text: str, tables: dict[str, tuple[str, TableRef]], row: dict[str, TargetColumnRef]
) -> sql.Composable | str:
    """One statement of the body in PostgreSQL, or why not."""
    for pattern in (_UPDATE, _INSERT, _DELETE):
        match = pattern.match(text)
        if match is not None:
            break
    else:
        return f"its statement `{text.strip()}` is not an UPDATE ... SET, INSERT ... VALUES or DELETE ... WHERE etl translates"
    found = tables.get(_fold(unquote_identifier(match.group(1))))
    if found is None:
        return f"it writes to '{unquote_identifier(match.group(1))}', which the target does not get"
    written = found[1]
    target = sql.Identifier(written.name)

    def expression(part: str) -> sql.Composable | None:
        return translate_expression(part, written.columns, ascii_case=True, row=row)

    def value(column: TargetColumnRef, part: str) -> sql.Composable | None:
        # A value the column receives may also be one its default could be (datetime('now'), ...).
        return translate_expression(part, written.columns, ascii_case=True, row=row) or translate_default(
            part, column.kind
        )

    if pattern is _DELETE:
        where = expression(match.group(2))
        if where is None:
            return f"its WHERE ({match.group(2).strip()}) has no exact PostgreSQL equivalent"
        return sql.SQL("DELETE FROM {} WHERE {}").format(target, where)
    by_fold = {_fold(c): ref for c, ref in written.columns.items()}
    if pattern is _INSERT:
        names = [unquote_identifier(c) for c in _split_top(match.group(2), ",")]
        values = _split_top(match.group(3), ",")
        if len(names) != len(values) or any(_fold(n) not in by_fold for n in names):
            return "its INSERT names columns the target does not get, or more values than columns"
        refs = [by_fold[_fold(n)] for n in names]
        pg_values = [value(ref, v) for ref, v in zip(refs, values, strict=True)]
        if any(v is None for v in pg_values):
            return f"a value of its INSERT ({match.group(3).strip()}) has no exact PostgreSQL equivalent"
        return sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            target,
            sql.SQL(", ").join(sql.Identifier(r.name) for r in refs),
            sql.SQL(", ").join(v for v in pg_values if v is not None),
        )
    rest = match.group(2)
    at = _keyword_at(rest, "WHERE")
    assignments, where_text = (rest[:at], rest[at + 5 :]) if at is not None else (rest, None)
    sets = []
    for assignment in _split_top(assignments, ","):
        column, equals, assigned = assignment.partition("=")
        ref = by_fold.get(_fold(unquote_identifier(column.strip())))
        if not equals or ref is None:
            return f"its SET {assignment} names a column the target does not get"
        pg = value(ref, assigned.strip())
        if pg is None:
            return f"its SET {assignment} has no exact PostgreSQL equivalent"
        sets.append(sql.SQL("{} = {}").format(sql.Identifier(ref.name), pg))
    statement = sql.SQL("UPDATE {} SET {}").format(target, sql.SQL(", ").join(sets))
    if where_text is not None:
        where = expression(where_text)
        if where is None:
            return f"its WHERE ({where_text.strip()}) has no exact PostgreSQL equivalent"
        statement = sql.SQL("{} WHERE {}").format(statement, where)
    return statement
