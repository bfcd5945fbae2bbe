"""Why a source row cannot arrive exactly, as DuckDB computes it and as etl reports it.

The load queries compute, per row, a `problem`: NULL, or a JSON object naming the column (NULL for
a problem of the whole row, such as a foreign key), the reason as a printf template, and the value
as found. A row that fails the run raises it through DuckDB's error(), with the table and key; a
rejected row is read with it. Both become the same errors.ValueProblem, so a failure and a reject
say the same thing the same way."""

from __future__ import annotations

import json
import re

from etl.duck import quote_literal
from etl.errors import ValueProblem

# The key of the object error() raises: what tells a value problem from any other DuckDB error.
_MARK = "etl_value_problem"


def template(before: str, after: str = "") -> str:
    """A reason's printf template with the value between `before` and `after`; a % of theirs escaped."""
    return before.replace("%", "%%") + "%s" + after.replace("%", "%%")


def problem_sql(column: str | None, reason: str, value: str | None = None, when: str | None = None) -> str:
    """DuckDB expression of one problem: NULL, or the JSON object of (column, reason, value).
    `reason`: DuckDB expression of the printf template (NULL when fine, unless `when` decides);
    `value`: DuckDB expression describing the value, computed only for a row with the problem."""
    named = quote_literal(column) if column is not None else "NULL"
    shown = value if value is not None else "NULL"
    condition = when if when is not None else f"({reason}) IS NOT NULL"
    return (
        f"CASE WHEN {condition} THEN json_object('column', {named}, 'reason', {reason}, 'value', {shown}) END"
    )


def raise_sql(table: str, key: str, problem: str) -> str:
    """DuckDB expression raising `problem` (a JSON object) for the row of `table` whose key is the
    DuckDB expression `key` (NULL for a table without one)."""
    found = f"json_object('table', {quote_literal(table)}, 'key', {key}, 'problem', {problem})"
    return f"error(json_object({quote_literal(_MARK)}, {found}))"


def value_problem(table: str, key: str | None, problem: str) -> ValueProblem:
    """The ValueProblem of a row read back with its `problem` (the JSON text problem_sql made)."""
    return _value_problem(table, key, json.loads(problem))


def _value_problem(table: str, key: str | None, found: dict) -> ValueProblem:
    value = found["value"]
    # printf's %s and %% only: what template() and convert's reasons write. The reason is one line
    # (a line break in the value shown as \n); `value` keeps it as found.
    shown = _one_line(value or "")
    reason = re.sub(r"%(.)", lambda m: shown if m.group(1) == "s" else m.group(1), found["reason"])
    return ValueProblem(table=table, key=key, column=found["column"], reason=reason, value=value)


def _one_line(text: str) -> str:
    r"""`text` with its control characters written as escapes: \n, \r, \t, else \xNN."""
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
    return re.sub(r"[\x00-\x1f\x7f]", lambda m: named.get(m.group(), f"\\x{ord(m.group()):02x}"), text)


def raised_value_problem(exc: BaseException) -> ValueProblem | None:
    """The ValueProblem DuckDB's error() raised (raise_sql), or None for any other error. Read from
    the error's own text: its JSON keeps the value's spaces and line breaks as they are."""
    text = str(exc)
    start = text.find("{" + json.dumps(_MARK))
    if start < 0:
        return None
    try:
        found, _end = json.JSONDecoder().raw_decode(text, start)
    except ValueError:
        return None
    row = found[_MARK]
    return _value_problem(row["table"], row["key"], row["problem"])
