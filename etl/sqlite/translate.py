"""Translate the small SQLite expressions found in schemas (partial-index predicates, index
expressions, column defaults) into PostgreSQL, as psycopg `sql.Composable`s.

Only a safe subset is translated: column names, literals, comparison and boolean operators, and a
few functions both databases share. Anything else returns None, and the caller reports it: a
predicate is never guessed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from psycopg import sql

from etl.sqlite.ddl import _scan, unquote_identifier

# Order matters: a blob literal X'00' before names (else `X` reads as a name), hex integers
# before decimal ones (else 0x1F reads as 0 and a name).
_TOKEN_RE = re.compile(
    r"""\s+|'(?:[^']|'')*'|"(?:[^"]|"")*"|`(?:[^`]|``)*`|\[[^\]]*\]|[xX]'[0-9a-fA-F]*'|
        0[xX][0-9a-fA-F]+|[^\W\d][\w$]*|[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?|
        ==|!=|<>|<=|>=|\|\||[=<>(),+\-*/%.]""",
    re.VERBOSE,
)
# Keywords that mean the same in both databases. Not LIKE: SQLite's LIKE ignores the case of
# ASCII letters and PostgreSQL's does not, so `email LIKE 'a%'` would cover other rows.
_KEYWORDS = {"AND", "OR", "NOT", "IS", "NULL", "IN", "BETWEEN", "TRUE", "FALSE", "ISNULL", "NOTNULL"}
_FUNCTIONS = {
    "lower": "lower",
    "upper": "upper",
    "length": "length",
    "abs": "abs",
    "coalesce": "coalesce",
    "ifnull": "coalesce",
}
_COMPARISONS = {"=", "==", "!=", "<>"}


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


def _is_name(tok: str) -> bool:
    return tok[0] in '"`[' or tok[0] == "_" or (tok[0].isalpha() and tok[1:2] != "'")


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _fold(name: str) -> str:
    """SQLite matches names ignoring the case of ASCII letters only."""
    return name.translate(_ASCII_LOWER)


def _closing(tokens: list[str], open_at: int) -> int | None:
    """Where the parenthesis opening at `open_at` closes."""
    depth = 0
    for j in range(open_at, len(tokens)):
        depth += {"(": 1, ")": -1}.get(tokens[j], 0)
        if depth == 0:
            return j
    return None


def translate_expression(
    text: str,
    columns: dict[str, TargetColumnRef],
    ascii_case: bool = False,
    row: dict[str, TargetColumnRef] | None = None,
) -> sql.Composable | None:
    """`columns` maps SQLite column names (matched case-insensitively, as SQLite does).

    `ascii_case`: lower() and upper() change ASCII letters only, as SQLite's do (PostgreSQL's, under
    a UTF-8 collation, change every letter): for expressions whose values must equal SQLite's, such
    as checks and generated columns.

    `row`: in a trigger, the columns of its table, which NEW.col and OLD.col name (PL/pgSQL's
    NEW."col" and OLD."col"); a boolean one is refused, as its comparisons with 0 and 1 would be."""
    tokens = tokenize(text)
    if not tokens:
        return None
    collate_before: set[int] = set()  # closing parentheses of lower() and upper(), with ascii_case
    by_lower = {_fold(name): ref for name, ref in columns.items()}
    row_by_lower = {_fold(name): ref for name, ref in (row or {}).items()}
    upper = [t.upper() if _is_name(t) and t[0] not in '"`[' else t for t in tokens]

    def kind_at(i: int) -> str | None:
        """The target column kind of token i, if it is a column."""
        if 0 <= i < len(tokens) and _is_name(tokens[i]) and upper[i] not in _KEYWORDS:
            ref = by_lower.get(_fold(unquote_identifier(tokens[i])))
            return ref.kind if ref else None
        return None

    def compared_with_boolean(i: int) -> bool:
        """Is the literal at i one side of `=`, `<>` or IS [NOT] whose other side is a boolean column?"""
        before = i - 1
        if before >= 1 and upper[before] == "NOT" and upper[before - 1] == "IS":
            before -= 1
        if (
            before >= 1
            and (tokens[before] in _COMPARISONS or upper[before] == "IS")
            and kind_at(before - 1) == "boolean"
        ):
            return True
        after = i + 1
        if after < len(tokens) and (tokens[after] in _COMPARISONS or upper[after] == "IS"):
            after += 2 if upper[after] == "IS" and upper[after + 1 : after + 2] == ["NOT"] else 1
            return kind_at(after) == "boolean"
        return False

    parts: list[str | sql.Composable] = []  # str: punctuation and operators, kept tight or spaced
    skip: set[int] = set()
    for i, tok in enumerate(tokens):
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        if i in skip:
            continue
        if nxt == "." or tok == ".":
            if row is None or upper[i] not in ("NEW", "OLD") or i + 2 >= len(tokens):
                return None
            field = row_by_lower.get(_fold(unquote_identifier(tokens[i + 2])))
            if field is None or field.kind == "boolean" or not _is_name(tokens[i + 2]):
                return None
            parts.append(sql.SQL(upper[i] + ".{}").format(sql.Identifier(field.name)))
            skip.update((i + 1, i + 2))
            continue
        if _is_name(tok):
            if tok[0] not in '"`[' and upper[i] in _KEYWORDS:
                negated = upper[i + 1 : i + 2] == ["NOT"]
                operand = (
                    upper[i + 2 if negated else i + 1] if i + (2 if negated else 1) < len(tokens) else ""
                )
                if upper[i] == "IS" and operand not in ("NULL", "TRUE", "FALSE"):
                    # PostgreSQL's IS takes only NULL, TRUE or FALSE; SQLite's IS compares any values.
                    parts.append(sql.SQL("IS DISTINCT FROM" if negated else "IS NOT DISTINCT FROM"))
                    if negated:
                        skip.add(i + 1)
                else:
                    parts.append(sql.SQL(upper[i]))
            elif tok[0] not in '"`[' and nxt == "(" and tok.lower() == "json_valid":
                # A json or jsonb column holds only valid JSON (the load parses every value), so
                # json_valid(x) is whether x is there: 1, or 0 for NULL as SQLite answers. On a
                # text column PostgreSQL 15 has no test that answers false rather than raising.
                ref = by_lower.get(_fold(unquote_identifier(tokens[i + 2]))) if i + 3 < len(tokens) else None
                if ref is None or ref.kind != "json" or tokens[i + 3] != ")":
                    return None
                parts.append(sql.SQL("({} IS NOT NULL)").format(sql.Identifier(ref.name)))
                skip.update((i + 1, i + 2, i + 3))
            elif tok[0] not in '"`[' and nxt == "(" and tok.lower() in _FUNCTIONS:
                if ascii_case and tok.lower() in ("lower", "upper"):
                    close = _closing(tokens, i + 1)
                    if close is None:
                        return None
                    collate_before.add(close)
                parts.append(sql.SQL(_FUNCTIONS[tok.lower()]))
            elif (ref := by_lower.get(_fold(unquote_identifier(tok)))) is not None:
                parts.append(sql.Identifier(ref.name))
            else:
                return None  # an unknown name or function: never guessed
        elif tok.startswith("'"):
            parts.append(sql.Literal(tok[1:-1].replace("''", "'")))
        elif tok[0] in "xX" or tok[:2].lower() == "0x":
            return None  # blob and hex literals in predicates: not worth guessing
        elif tok[0].isdigit() or tok[0] == ".":
            if compared_with_boolean(i):
                # `flag = 1` on a column that became boolean must compare with true/false.
                if tok not in ("0", "1"):
                    return None
                parts.append(sql.SQL("true" if tok == "1" else "false"))
            else:
                parts.append(sql.SQL(tok))
        else:
            if i in collate_before:
                parts.append(sql.SQL('COLLATE "C"'))
            parts.append({"==": "=", "!=": "<>"}.get(tok, tok))
    return _join(parts)


_COLLATED = re.compile(
    r'\s*("(?:[^"]|"")*"|`(?:[^`]|``)*`|\[[^\]]*\]|[^\W\d][\w$]*)\s+COLLATE\s+"?(NOCASE|RTRIM|BINARY)"?\s*',
    re.IGNORECASE,
)


def collated_column(text: str) -> str | None:
    """The column of an index key `col COLLATE x`, as written (unquoted)."""
    collated = _COLLATED.fullmatch(text)
    return unquote_identifier(collated.group(1)) if collated else None


def collation_of(text: str) -> tuple[str, str] | None:
    """(column as written, unquoted; collation in capitals) of an index key `col COLLATE x`."""
    collated = _COLLATED.fullmatch(text)
    return (unquote_identifier(collated.group(1)), collated.group(2).upper()) if collated else None


def translate_index_key(
    text: str, columns: dict[str, TargetColumnRef], unique: bool = False
) -> sql.Composable | None:
    """An index key SQLite wrote as an expression, for PostgreSQL (see translate_collated). In a
    unique index, lower() and upper() change ASCII letters only, as SQLite's do, so the index
    refuses exactly what SQLite's refuses (`lower("email" COLLATE "C")`); in another, they are
    PostgreSQL's own, the expression an app's queries write and the planner matches."""
    collated = collation_of(text)
    if collated is None:
        translated = translate_expression(text, columns, ascii_case=unique)
        return None if translated is None else sql.SQL("({})").format(translated)
    ref = {_fold(k): v for k, v in columns.items()}.get(_fold(collated[0]))
    return None if ref is None else translate_collated(ref, collated[1])


def translate_collated(ref: TargetColumnRef, collation: str) -> sql.Composable | None:
    """A column as an index key under a SQLite collation (NOCASE, RTRIM, BINARY). A text column
    becomes what the collation compares, so a unique index refuses exactly the values SQLite's
    does: NOCASE `lower(col COLLATE "C")` (ASCII letters only, as SQLite folds them), RTRIM
    `rtrim(col, ' ')`, BINARY the column itself. None for another kind of column, whose values
    the collation would not compare as SQLite does."""
    name = sql.Identifier(ref.name)
    if collation.upper() == "BINARY":
        return name
    if ref.kind != "text":
        return None
    if collation.upper() == "NOCASE":
        return sql.SQL('lower({} COLLATE "C")').format(name)
    if collation.upper() == "RTRIM":
        return sql.SQL("rtrim({}, ' ')").format(name)
    return None


def unknown_name(text: str, columns: dict[str, TargetColumnRef]) -> str | None:
    """The first name in `text` that is neither a column, a keyword nor a function call."""
    tokens = tokenize(text) or []
    known = {_fold(name) for name in columns}
    for i, tok in enumerate(tokens):
        if not _is_name(tok) or (tok[0] not in '"`[' and tok.upper() in _KEYWORDS):
            continue
        if (
            not (tokens[i + 1 : i + 2] == ["("] and tok[0] not in '"`[')
            and _fold(unquote_identifier(tok)) not in known
        ):
            return unquote_identifier(tok)
    return None


def untranslated_part(text: str) -> str:
    """Why translate_expression refuses `text` that names only columns: the first function it
    does not translate, or what it does translate."""
    tokens = tokenize(text) or []
    for i, tok in enumerate(tokens):
        calls = _is_name(tok) and tok[0] not in '"`[' and tokens[i + 1 : i + 2] == ["("]
        if calls and tok.lower() not in _FUNCTIONS and tok.lower() != "json_valid":
            return f"it calls {tok}(), which etl does not translate to PostgreSQL"
    return (
        "etl translates column names, literals, comparisons, arithmetic and "
        f"{', '.join(sorted(_FUNCTIONS))}, and nothing else"
    )


def _join(parts: list[str | sql.Composable]) -> sql.Composable:
    """Parts separated by spaces, except inside parentheses and before commas: `lower("email")`."""
    out: list[sql.Composable] = []
    previous: str | sql.Composable | None = None
    for part in parts:
        tight = part in (")", ",") or previous == "(" or (part == "(" and _is_function(previous))
        if out and not tight:
            out.append(sql.SQL(" "))
        out.append(sql.SQL(part) if isinstance(part, str) else part)
        previous = part
    return sql.Composed(out)


def _is_function(part: str | sql.Composable | None) -> bool:
    return isinstance(part, sql.SQL) and part.as_string(None) in _FUNCTIONS.values()


_NOW_DEFAULTS = {
    "current_timestamp": "CURRENT_TIMESTAMP",
    "datetime('now')": "CURRENT_TIMESTAMP",
    "current_date": "CURRENT_DATE",
    "date('now')": "CURRENT_DATE",
    "current_time": "CURRENT_TIME",
    "time('now')": "CURRENT_TIME",
}
# SQLite's "now" is UTC, and the loaded values of timestamp (without time zone), date and time
# columns are UTC wall-clock values; PostgreSQL's CURRENT_DATE, LOCALTIME, ... follow the session's
# time zone instead, so new rows would not match old ones.
_UTC_NOW = "(CURRENT_TIMESTAMP AT TIME ZONE 'UTC')"
_STRING_RE = re.compile(r"'(?:[^']|'')*'")
_NUMBER_RE = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
_INTEGER_RE = re.compile(r"[+-]?[0-9]+")
_DATE_RE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_TIME_RE = r"[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?"
_TZ_RE = r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)"
_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}")


def _unwrap(text: str) -> str:
    """The text without parentheses that enclose all of it: `((1))` -> `1`, but `(1) + (2)` stays."""
    text = text.strip()
    while text.startswith("(") and text.endswith(")"):
        closes = [i for i, ch, depth in _scan(text) if ch == ")" and depth == 1]
        if closes != [len(text) - 1]:
            break
        text = text[1:-1].strip()
    return text


def translate_default(text: str, kind: str) -> sql.Composable | None:
    """A SQLite column default as a PostgreSQL default for a column of `kind`, or None if unknown.

    Returns sql.SQL("NULL") for an explicit NULL default.
    """
    stripped = _unwrap(text)
    key = re.sub(r"\s+", "", stripped.lower()).replace('"', "'")
    moment = _moment_default(stripped, kind)
    if moment is not None:
        return moment
    if key in _NOW_DEFAULTS:
        now = _NOW_DEFAULTS[key]
        if kind == "timestamptz" and now == "CURRENT_TIMESTAMP":
            return sql.SQL(now)
        if kind == "timestamp" and now == "CURRENT_TIMESTAMP":
            return sql.SQL(_UTC_NOW)
        if kind == "date" and now in ("CURRENT_DATE", "CURRENT_TIMESTAMP"):
            return sql.SQL(f"({_UTC_NOW}::date)")
        if kind == "time" and now == "CURRENT_TIME":
            return sql.SQL(f"({_UTC_NOW}::time)")
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
    if _NUMBER_RE.fullmatch(stripped):
        if kind == "boolean":
            return sql.SQL({"0": "false", "1": "true"}[stripped]) if stripped in ("0", "1") else None
        if kind in ("integer", "float", "numeric"):
            if kind == "integer" and not _INTEGER_RE.fullmatch(stripped):
                return None
            return sql.SQL(stripped.lstrip("+"))
        if kind in ("text", "json", "other"):
            return sql.Literal(stripped)
        return None
    if _STRING_RE.fullmatch(stripped):  # exactly one string literal, not 'a' || 'b'
        return _string_default(stripped[1:-1].replace("''", "'"), kind)
    if re.fullmatch(r'"(?:[^"]|"")*"', stripped):
        # A default names no column, so SQLite reads a double-quoted word as a string: DEFAULT "".
        return _string_default(stripped[1:-1].replace('""', '"'), kind)
    if re.fullmatch(r"[xX]'([0-9a-fA-F]{2})*'", stripped) and kind == "bytea":
        return sql.Literal(bytes.fromhex(stripped[2:-1]))
    return None


# strftime formats of "now" (case matters: %S is seconds, %s the epoch), and to_char()'s for them.
_MILLIS_NOW = {
    "%Y-%m-%d %H:%M:%f": "YYYY-MM-DD HH24:MI:SS.MS",
    "%Y-%m-%dT%H:%M:%fZ": 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"',
}
_STRFTIME_NOW = re.compile(r"strftime\(\s*'([^']*)'\s*,\s*'now'\s*\)", re.IGNORECASE)
_TODAY = {"current_date", "date('now')"}


def _moment_default(text: str, kind: str) -> sql.Composable | None:
    """Defaults that take the current moment at a precision PostgreSQL's CURRENT_TIMESTAMP must be
    cut to (seconds, milliseconds, days), for the column kinds whose values stay exact."""
    utc = "(CURRENT_TIMESTAMP AT TIME ZONE 'UTC')"
    formatted = _STRFTIME_NOW.fullmatch(text)
    form = formatted.group(1) if formatted else None
    key = re.sub(r"\s+", "", text.lower())
    if form == "%s" or key in ("unixepoch()", "unixepoch('now')"):
        # SQLite's %s is whole seconds (text, which an INTEGER or REAL column stores as a number).
        epoch = "floor(extract(epoch FROM CURRENT_TIMESTAMP))::bigint"
        cut = {
            "integer": f"({epoch})",
            "float": f"({epoch}::double precision)",
            "numeric": f"({epoch}::numeric)",
            "text": f"({epoch}::text)",
            "timestamptz": "date_trunc('second', CURRENT_TIMESTAMP)",
            "timestamp": f"date_trunc('second', {utc})",
        }
        return sql.SQL(cut[kind]) if kind in cut else None
    if form in _MILLIS_NOW:
        cut = {
            "timestamptz": "date_trunc('milliseconds', CURRENT_TIMESTAMP)",
            "timestamp": f"date_trunc('milliseconds', {utc})",
        }
        if kind == "text":
            return sql.SQL("to_char({}, {})").format(sql.SQL(utc), sql.Literal(_MILLIS_NOW[form]))
        return sql.SQL(cut[kind]) if kind in cut else None
    if key in _TODAY and kind in ("timestamp", "timestamptz"):
        # 'YYYY-MM-DD' in a datetime column reads as midnight UTC.
        midnight = f"({utc}::date::timestamp)"
        return sql.SQL(midnight if kind == "timestamp" else f"({midnight} AT TIME ZONE 'UTC')")
    return None


def _string_default(value: str, kind: str) -> sql.Composable | None:
    """A string literal default, when the column's type can hold exactly that value."""
    if kind == "boolean":
        mapped = {"true": "true", "false": "false", "1": "true", "0": "false", "t": "true", "f": "false"}
        return sql.SQL(mapped[value.lower()]) if value.lower() in mapped else None
    if kind == "bytea":
        return sql.Literal(value.encode("utf-8"))
    if kind == "integer":
        return sql.SQL(value.lstrip("+")) if _INTEGER_RE.fullmatch(value) else None
    if kind in ("float", "numeric"):
        return sql.SQL(value.lstrip("+")) if _NUMBER_RE.fullmatch(value) else None
    if kind == "uuid":
        return sql.Literal(value) if _UUID_RE.fullmatch(value) else None
    if kind == "json":
        try:
            json.loads(value)
        except ValueError:
            return None
        return sql.Literal(value)
    if kind == "date":
        return sql.Literal(value) if re.fullmatch(_DATE_RE, value) else None
    if kind == "time":
        return sql.Literal(value) if re.fullmatch(_TIME_RE, value) else None
    if kind in ("timestamp", "timestamptz"):
        match = re.fullmatch(f"(?P<local>{_DATE_RE}([T ]{_TIME_RE})?) ?(?P<tz>{_TZ_RE})?", value)
        if not match:
            return None  # 'now', 'today', ... would be frozen at CREATE TABLE time by PostgreSQL
        if kind == "timestamptz" and not match.group("tz"):
            # Loaded text without an offset is read as UTC; PostgreSQL would use the session's zone.
            return sql.SQL("(TIMESTAMP {} AT TIME ZONE 'UTC')").format(sql.Literal(match.group("local")))
        return sql.Literal(value)
    return sql.Literal(value)


# -- views ----------------------------------------------------------------------------------------

# What a view may be built of for its PostgreSQL translation to return the same rows: relational
# structure, equality, arithmetic without division, and functions both databases compute alike.
# Not LIKE/GLOB (case), lower/upper (SQLite folds ASCII letters only), ordering comparisons of
# text, min/max and ORDER BY (PostgreSQL orders text by its collation, SQLite by bytes), `/` and
# avg (integer or real arithmetic in SQLite, numeric in PostgreSQL), CAST, substr and date
# functions (each database has its own rules). Anything else names the view instead.
_VIEW_NODES = (
    *("Select", "Union", "Intersect", "Except", "From", "Join", "Where", "Group", "Having"),
    *("Column", "Identifier", "Table", "TableAlias", "Alias", "Star", "Literal", "Null", "Boolean"),
    *("Paren", "EQ", "NEQ", "And", "Or", "Not", "Is", "In", "Exists", "Subquery", "With", "CTE"),
    *("Case", "If", "Coalesce", "Count", "Sum", "Length", "Abs", "Add", "Sub", "Mul", "Neg", "DPipe"),
    *("Distinct", "Tuple"),
)
_ORDERING = ("GT", "GTE", "LT", "LTE", "Between")


@dataclass(frozen=True)
class ViewTranslation:
    """A view's SELECT in PostgreSQL (over the same table and column names), or why there is none."""

    sql: str | None
    reason: str | None = None


def translate_view(create_sql: str, columns: tuple[str, ...]) -> ViewTranslation:
    """The SELECT of SQLite's `CREATE VIEW ...` statement in PostgreSQL, its output columns named
    as SQLite names them (`columns`), when every part of it computes the same rows in both."""
    import sqlglot
    from sqlglot import exp

    try:
        create = sqlglot.parse_one(create_sql, read="sqlite")
    except sqlglot.errors.SqlglotError as exc:
        return ViewTranslation(None, f"etl cannot read its SQL ({str(exc).splitlines()[0]})")
    select = create.expression if isinstance(create, exp.Create) else None
    if not isinstance(select, exp.Query):
        return ViewTranslation(None, "etl cannot read its SQL as one SELECT")
    allowed = tuple(getattr(exp, name) for name in _VIEW_NODES)
    for node in select.walk():
        name = type(node).__name__
        if name in _ORDERING:
            if not any(isinstance(a, exp.Literal) and not a.is_string for a in node.args.values()):
                return ViewTranslation(None, _not_exact(node, "compares in an order that is not numeric"))
        elif not isinstance(node, allowed) or isinstance(node, exp.Anonymous):
            return ViewTranslation(None, _not_exact(node, "is computed differently in PostgreSQL"))
    first = select
    while isinstance(first, exp.SetOperation):
        first = first.this
    if isinstance(first, exp.Select) and not any(isinstance(e, exp.Star) for e in first.expressions):
        if len(first.expressions) != len(columns):
            return ViewTranslation(None, "etl cannot match its columns to the SQL")
        first.set(
            "expressions", [_named(e, name) for e, name in zip(first.expressions, columns, strict=True)]
        )
    return ViewTranslation(select.sql(dialect="postgres", identify=True))


def _not_exact(node, why: str) -> str:
    text = node.sql(dialect="sqlite")
    shown = text if len(text) <= 60 else text[:57] + "..."
    return f"`{shown}` {why}"


def _named(expression, name: str):
    from sqlglot import exp

    inner = expression.this if isinstance(expression, exp.Alias) else expression
    if isinstance(inner, exp.Column) and inner.name == name:
        return inner
    return exp.alias_(inner, name, quoted=True)
