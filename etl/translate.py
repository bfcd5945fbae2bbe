"""Translate the small SQLite expressions found in schemas (partial-index predicates, index
expressions, column defaults) into PostgreSQL, as psycopg `sql.Composable`s.

Only a safe subset is translated: column names, literals, comparison and boolean operators, and a
few functions both databases share. Anything else returns None, and the caller reports it: a
predicate is never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from psycopg import sql

from .sqlitesql import unquote_identifier

_TOKEN_RE = re.compile(
    r"""\s+|'(?:[^']|'')*'|"(?:[^"]|"")*"|`(?:[^`]|``)*`|\[[^\]]*\]|[A-Za-z_][A-Za-z0-9_$]*|
        [xX]'[0-9a-fA-F]*'|[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+|
        ==|!=|<>|<=|>=|\|\||[=<>(),+\-*/%]""",
    re.VERBOSE,
)
_KEYWORDS = {"AND", "OR", "NOT", "IS", "NULL", "IN", "LIKE", "BETWEEN", "TRUE", "FALSE"}
_FUNCTIONS = {"lower": "lower", "upper": "upper", "length": "length", "abs": "abs", "coalesce": "coalesce"}


@dataclass(frozen=True)
class TargetColumnRef:
    name: str  # target column name
    kind: str  # PgType.kind of the target column


def tokenize(text: str) -> list[str] | None:
    tokens = []
    pos = 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if not match:
            return None
        if not match.group(0).isspace():
            tokens.append(match.group(0))
        pos = match.end()
    return tokens


def translate_expression(text: str, columns: dict[str, TargetColumnRef]) -> sql.Composable | None:
    """`columns` maps SQLite column names (matched case-insensitively, as SQLite does)."""
    tokens = tokenize(text)
    if tokens is None:
        return None
    by_lower = {name.lower(): ref for name, ref in columns.items()}
    parts: list[sql.Composable] = []
    kinds: list[str | None] = []  # the column kind for identifier parts, to fix boolean literals
    for i, tok in enumerate(tokens):
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        upper = tok.upper()
        if (
            tok[0] in '"`['
            or (tok[0].isalpha() or tok[0] == "_")
            and not (tok[0] in "xX" and tok[1:2] == "'")
        ):
            name = unquote_identifier(tok)
            if tok[0] not in '"`[' and upper in _KEYWORDS:
                parts.append(sql.SQL(upper))
                kinds.append(None)
            elif tok[0] not in '"`[' and nxt == "(" and tok.lower() in _FUNCTIONS:
                parts.append(sql.SQL(_FUNCTIONS[tok.lower()]))
                kinds.append(None)
            elif name.lower() in by_lower:
                ref = by_lower[name.lower()]
                parts.append(sql.Identifier(ref.name))
                kinds.append(ref.kind)
            else:
                return None
        elif tok.startswith("'"):
            parts.append(sql.Literal(tok[1:-1].replace("''", "'")))
            kinds.append(None)
        elif tok[0] in "xX":
            return None  # blob literals in predicates: not worth guessing
        elif tok[0].isdigit() or tok[0] == ".":
            # `flag = 1` on a column that became boolean must compare with true/false.
            if (
                tok in ("0", "1")
                and len(parts) >= 2
                and kinds[-2] == "boolean"
                and tokens[i - 1] in ("=", "==", "!=", "<>")
            ):
                parts.append(sql.SQL("true" if tok == "1" else "false"))
            else:
                parts.append(sql.SQL(tok))
            kinds.append(None)
        else:
            parts.append(sql.SQL({"==": "=", "!=": "<>"}.get(tok, tok)))
            kinds.append(None)
    return sql.SQL(" ").join(parts)


_NOW_DEFAULTS = {
    "current_timestamp": "CURRENT_TIMESTAMP",
    "datetime('now')": "CURRENT_TIMESTAMP",
    "current_date": "CURRENT_DATE",
    "date('now')": "CURRENT_DATE",
    "current_time": "CURRENT_TIME",
    "time('now')": "CURRENT_TIME",
}


def translate_default(text: str, kind: str) -> sql.Composable | None:
    """A SQLite column default as a PostgreSQL default for a column of `kind`, or None if unknown.

    Returns sql.SQL("NULL") for an explicit NULL default.
    """
    stripped = text.strip()
    while stripped.startswith("(") and stripped.endswith(")"):
        stripped = stripped[1:-1].strip()
    key = re.sub(r"\s+", "", stripped.lower()).replace('"', "'")
    if key in _NOW_DEFAULTS:
        now = _NOW_DEFAULTS[key]
        if kind in ("timestamp", "timestamptz") and now == "CURRENT_TIMESTAMP":
            return sql.SQL(now)
        if kind == "date" and now in ("CURRENT_DATE", "CURRENT_TIMESTAMP"):
            return sql.SQL("CURRENT_DATE")
        if kind == "time" and now == "CURRENT_TIME":
            return sql.SQL("LOCALTIME")
        if kind == "text":
            # SQLite's CURRENT_TIMESTAMP default writes UTC text 'YYYY-MM-DD HH:MM:SS'.
            formats = {
                "CURRENT_TIMESTAMP": "YYYY-MM-DD HH24:MI:SS",
                "CURRENT_DATE": "YYYY-MM-DD",
                "CURRENT_TIME": "HH24:MI:SS",
            }
            return sql.SQL("to_char(now() AT TIME ZONE 'UTC', {})").format(sql.Literal(formats[now]))
        return None
    if key == "null":
        return sql.SQL("NULL")
    if key in ("true", "false"):
        if kind == "boolean":
            return sql.SQL(key)
        if kind in ("integer", "float", "numeric"):
            return sql.SQL("1" if key == "true" else "0")
        return None
    if re.fullmatch(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?", stripped):
        if kind == "boolean":
            return sql.SQL({"0": "false", "1": "true"}[stripped]) if stripped in ("0", "1") else None
        if kind in ("integer", "float", "numeric"):
            if kind == "integer" and not re.fullmatch(r"[+-]?[0-9]+", stripped):
                return None
            return sql.SQL(stripped.lstrip("+"))
        if kind in ("text", "json", "other"):
            return sql.Literal(stripped)
        return None
    if len(stripped) >= 2 and stripped[0] == "'" and stripped[-1] == "'":
        value = stripped[1:-1].replace("''", "'")
        if kind == "boolean":
            mapped = {"true": "true", "false": "false", "1": "true", "0": "false", "t": "true", "f": "false"}
            return sql.SQL(mapped[value.lower()]) if value.lower() in mapped else None
        if kind == "bytea":
            return sql.Literal(value.encode("utf-8"))
        return sql.Literal(value)
    if re.fullmatch(r"[xX]'([0-9a-fA-F]{2})*'", stripped) and kind == "bytea":
        return sql.Literal(bytes.fromhex(stripped[2:-1]))
    return None
