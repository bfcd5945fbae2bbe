"""PostgreSQL type names, and the type a SQLite declared type becomes by default."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

# Canonical name -> the kind of value it holds (which decides how a value is converted).
# Canonical names are those PostgreSQL's format_type() prints.
_TYPES: dict[str, str] = {
    "smallint": "integer",
    "integer": "integer",
    "bigint": "integer",
    "real": "float",
    "double precision": "float",
    "numeric": "numeric",
    "boolean": "boolean",
    "text": "text",
    "character varying": "text",
    "character": "text",
    "citext": "text",
    "bytea": "bytea",
    "date": "date",
    "time without time zone": "time",
    "time with time zone": "timetz",
    "timestamp without time zone": "timestamp",
    "timestamp with time zone": "timestamptz",
    "interval": "other",
    "json": "json",
    "jsonb": "json",
    "uuid": "uuid",
    "inet": "other",
    "cidr": "other",
    "macaddr": "other",
    "macaddr8": "other",
    "money": "other",
    "xml": "other",
    "tsvector": "other",
    "point": "other",
    "oid": "integer",
}

_ALIASES = {
    "int": "integer",
    "int4": "integer",
    "int2": "smallint",
    "int8": "bigint",
    "float4": "real",
    "float8": "double precision",
    "double": "double precision",
    "decimal": "numeric",
    "bool": "boolean",
    "varchar": "character varying",
    "char": "character",
    "bpchar": "character",
    "time": "time without time zone",
    "timetz": "time with time zone",
    "timestamp": "timestamp without time zone",
    "timestamptz": "timestamp with time zone",
    "serial": "integer",
    "bigserial": "bigint",
    "smallserial": "smallint",
}

# Types whose modifiers are a precision/length, and how many they take.
_MODIFIERS = {
    "numeric": 2,
    "character varying": 1,
    "character": 1,
    "time without time zone": 1,
    "time with time zone": 1,
    "timestamp without time zone": 1,
    "timestamp with time zone": 1,
    "interval": 1,
}

_INTEGER_RANGE = {
    "smallint": (-(2**15), 2**15 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "bigint": (-(2**63), 2**63 - 1),
    "oid": (0, 2**32 - 1),
}


class UnknownType(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class PgType:
    name: str  # canonical, e.g. "timestamp without time zone"; an enum's own name
    modifiers: tuple[int, ...] = ()
    array: bool = False
    labels: tuple[str, ...] | None = None  # an enum type the spec defines: its labels

    @property
    def kind(self) -> str:
        if self.labels is not None:
            return "enum"
        return "array" if self.array else _TYPES[self.name]

    @property
    def integer_range(self) -> tuple[int, int] | None:
        return _INTEGER_RANGE.get(self.name)

    def sql(self) -> str:
        """The type as DDL text; safe to splice because it is rebuilt from a known name.
        (An enum's name is a user's identifier: render.type_sql quotes and qualifies it.)"""
        mods = f"({','.join(str(m) for m in self.modifiers)})" if self.modifiers else ""
        name = self.name
        if mods and name.endswith((" without time zone", " with time zone")):
            head, _, tail = name.partition(" with")
            text = f"{head}{mods} with{tail}"
        else:
            text = f"{name}{mods}"
        return text + ("[]" if self.array else "")

    def short(self) -> str:
        """The everyday spelling (timestamptz(3), varchar(20)), as people write it in a spec."""
        if self.labels is not None:
            return self.name
        short = {
            "timestamp without time zone": "timestamp",
            "timestamp with time zone": "timestamptz",
            "time without time zone": "time",
            "time with time zone": "timetz",
            "character varying": "varchar",
            "character": "char",
        }.get(self.name, self.name)
        mods = f"({','.join(str(m) for m in self.modifiers)})" if self.modifiers else ""
        return short + mods + ("[]" if self.array else "")

    def __str__(self) -> str:
        return self.sql()


_TYPE_RE = re.compile(
    r"^\s*([a-z][a-z0-9_ ]*?)\s*(?:\(\s*([0-9\s,]*)\s*\))?\s*((?:with|without)\s+time\s+zone)?\s*(\[\])?\s*$"
)


def parse_pg_type(text: str) -> PgType:
    """Parse a PostgreSQL type name as a user writes it; raise UnknownType with a suggestion."""
    match = _TYPE_RE.match(text.lower())
    if not match:
        raise UnknownType(f"'{text}' is not a PostgreSQL type")
    base, mods_text, tz, array = match.groups()
    base = re.sub(r"\s+", " ", base)
    if tz:
        base = base + " " + " ".join(tz.split())
    base = _ALIASES.get(base, base)
    if base in ("time", "timestamp"):
        base = _ALIASES[base]
    if base == "time zone":
        raise UnknownType(f"'{text}' is not a PostgreSQL type")
    if base not in _TYPES:
        known = sorted(set(_TYPES) | set(_ALIASES))
        close = difflib.get_close_matches(base, known, n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise UnknownType(f"'{text}' is not a PostgreSQL type{hint}")
    modifiers = tuple(int(m) for m in mods_text.replace(" ", "").split(",")) if mods_text else ()
    allowed = _MODIFIERS.get(base, 0)
    if base == "double precision" and modifiers:
        allowed = 0
    if len(modifiers) > allowed:
        raise UnknownType(f"'{text}': {base} takes at most {allowed} modifier(s)")
    if base == "numeric" and modifiers:
        precision = modifiers[0]
        scale = modifiers[1] if len(modifiers) > 1 else 0
        if not 1 <= precision <= 1000 or not 0 <= scale <= precision:
            raise UnknownType(f"'{text}': numeric precision must be 1..1000 and scale 0..precision")
    if base.startswith(("time", "timestamp")) and modifiers and modifiers[0] > 6:
        raise UnknownType(f"'{text}': fractional seconds precision must be 0..6")
    return PgType(base, modifiers, bool(array))


def sqlite_affinity(declared: str) -> str:
    """SQLite's own rules (datatype3.html, 3.1) for the affinity of a declared type."""
    upper = declared.upper()
    if "INT" in upper:
        return "INTEGER"
    if any(s in upper for s in ("CHAR", "CLOB", "TEXT")):
        return "TEXT"
    if upper == "" or "BLOB" in upper:
        return "BLOB"
    if any(s in upper for s in ("REAL", "FLOA", "DOUB")):
        return "REAL"
    return "NUMERIC"


# Declared type name (first word, upper case) -> default PostgreSQL type.
_BY_DECLARED = {
    "BOOLEAN": "boolean",
    "BOOL": "boolean",
    "DATETIME": "timestamp with time zone",
    "TIMESTAMP": "timestamp with time zone",
    "TIMESTAMPTZ": "timestamp with time zone",
    "DATE": "date",
    "TIME": "time without time zone",
    "JSON": "jsonb",
    "JSONB": "jsonb",
    "UUID": "uuid",
    "SMALLINT": "smallint",
    "TINYINT": "smallint",
    "INT2": "smallint",
    "TEXT": "text",
    "CLOB": "text",
}
_BY_AFFINITY = {
    "INTEGER": "bigint",
    "TEXT": "text",
    "BLOB": "bytea",
    "REAL": "double precision",
    "NUMERIC": "numeric",
}


def default_pg_type(declared: str) -> PgType:
    """What a column declared as `declared` in SQLite becomes when no rule says otherwise.

    Integers become bigint because SQLite stores every INTEGER in 64 bits; sized text types
    become text because SQLite never enforced their length; NUMERIC(p,s) keeps p and s;
    a column with no declared type becomes text (numbers arrive as their exact digits).
    """
    if not declared.strip():
        return parse_pg_type("text")  # untyped columns hold anything; text takes numbers exactly
    words = re.findall(r"[A-Za-z0-9_]+", declared.upper())
    first = words[0] if words else ""
    if first in _BY_DECLARED:
        return parse_pg_type(_BY_DECLARED[first])
    affinity = sqlite_affinity(declared)
    if affinity == "NUMERIC" and first in ("NUMERIC", "DECIMAL"):
        mods = re.search(r"\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)", declared)
        if mods:
            precision = int(mods.group(1))
            scale = int(mods.group(2) or 0)
            if 1 <= precision <= 1000 and scale <= precision:
                return PgType("numeric", (precision, scale))
    return parse_pg_type(_BY_AFFINITY[affinity])


_INTEGER_WIDTH = {"smallint": 2, "integer": 4, "bigint": 8}


def narrows(old_text: str, new: PgType) -> bool:
    """Whether some value of the old type could change or fail in the new one."""
    try:
        old = parse_pg_type(old_text)
    except Exception:  # a type etl does not know (a domain, another schema's enum): assume the worst
        return True
    if old.array != new.array:
        return True
    if old.name == new.name:
        if not new.modifiers:
            return False
        if not old.modifiers:
            return True
        if new.name == "numeric":
            (p1, s1), (p2, s2) = (old.modifiers + (0,))[:2], (new.modifiers + (0,))[:2]
            return s2 < s1 or p2 - s2 < p1 - s1
        return new.modifiers[0] < old.modifiers[0]
    if old.name in _INTEGER_WIDTH and new.name in _INTEGER_WIDTH:
        return _INTEGER_WIDTH[new.name] < _INTEGER_WIDTH[old.name]
    if old.name in _INTEGER_WIDTH and new.name == "numeric":
        return bool(new.modifiers) and (new.modifiers + (0,))[0] - (new.modifiers + (0,))[1] < 19
    if old.name in ("character varying", "character") and new.name == "text":
        return False
    if old.name == "real" and new.name == "double precision":
        return False
    return not (old.name == "text" and new.name == "character varying" and not new.modifiers)
