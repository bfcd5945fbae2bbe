"""Read a Prisma schema, and say which PostgreSQL types Prisma's `postgresql` provider expects.

`etl init app.db --prisma schema.prisma` uses this so that, after the migration, an app switched to
the postgresql provider finds exactly the tables, columns and types Prisma would have created.

Pure: no database access. The parser reads the whole Prisma schema language as far as a relational
schema needs it (comments, `datasource`, `generator`, `model`, `view`, `enum`, composite `type`
blocks, field and block attributes with any nesting of arguments) and checks what decides the
result: every field type is known, every field named by an attribute exists, native types suit
their field. Every mistake is a `PrismaSchemaError` reading `schema.prisma:LINE:COL: what is wrong`.

What is read and what is left out:
  * Comments: `//` and `///` (documentation), and `/* ... */` blocks, also across lines.
  * Columns in error messages count characters (a tab is one), from 1.
  * `@ignore` fields and `@@ignore` models are left out, as if absent (their names still count
    when other fields refer to them).
  * Composite `type` blocks (MongoDB only) are skipped; a model field of such a type is an error.
  * Index details other than the fields, names and `sort: Desc` (`length:`, `type: Hash`, `ops:`)
    and attributes etl has no use for (`@@fulltext`, `@shardKey`, ...) are accepted and dropped:
    the sqlite provider refuses `type:` and `ops:` (PostgreSQL's only), and `length:` is MySQL's.
  * Native types (`@db.X`) are checked against the postgresql provider's list, whatever the
    schema's provider is: etl always migrates to PostgreSQL.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from etl.core.prisma import PrismaOrder
from etl.errors import EtlError, Location

__all__ = [
    "PrismaEnum",
    "PrismaField",
    "PrismaIndex",
    "PrismaJoinTable",
    "PrismaModel",
    "PrismaRelation",
    "PrismaSchema",
    "PrismaSchemaError",
    "implicit_many_to_many",
    "is_autoincrement",
    "parse_prisma",
    "postgres_type",
    "prisma_order",
    "prisma_version",
    "read_prisma_file",
]


class PrismaSchemaError(EtlError):
    """A Prisma schema cannot be read, or says something Prisma itself would reject."""

    def __init__(self, message: str, location: Location | None = None):
        self.message = message
        self.location = location
        super().__init__(f"{location}: {message}" if location else message)


# ----------------------------------------------------------------------------------------------
# The result
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PrismaRelation:
    """`@relation(...)` on a relation field. `fields`/`references` are empty on the side without them."""

    name: str | None
    fields: tuple[str, ...]
    references: tuple[str, ...]
    on_delete: str | None  # Cascade, Restrict, NoAction, SetNull, SetDefault
    on_update: str | None
    map: str | None


@dataclass(frozen=True)
class PrismaField:
    name: str  # the field's name in the model
    column: str  # database column: @map("...") or the field name (meaningless for a relation field)
    type: str  # scalar (String, Int, ...), enum or model name, or `Unsupported("...")` as written
    optional: bool  # `?`
    list: bool  # `[]`
    is_relation: bool  # the type is another model: no column of its own
    native_type: str | None  # @db.VarChar(255) -> "VarChar(255)"; @db.Decimal(10, 2) -> "Decimal(10,2)"
    default: str | None  # the raw @default(...) argument: "autoincrement()", "now()", "\"x\"", ...
    is_id: bool  # field-level @id
    is_unique: bool  # field-level @unique
    updated_at: bool  # @updatedAt
    line: int
    relation: PrismaRelation | None = None  # @relation(...), on relation fields only


@dataclass(frozen=True)
class PrismaIndex:
    """A primary key, unique constraint or index: its fields (by field name) and optional names."""

    fields: tuple[str, ...]
    name: str | None  # `name:`, the name Prisma Client uses
    map: str | None  # `map:`, the constraint/index name in the database
    line: int
    descending: tuple[str, ...] = ()  # the fields it sorts descending: `field(sort: Desc)`


@dataclass(frozen=True)
class PrismaModel:
    name: str
    table: str  # @@map("...") or the model name
    fields: tuple[PrismaField, ...]  # in schema order, relation fields included
    primary_key: PrismaIndex | None  # from @id or @@id([...])
    uniques: tuple[PrismaIndex, ...]  # @unique and @@unique, in schema order
    indexes: tuple[PrismaIndex, ...]  # @@index
    line: int
    is_view: bool = False  # declared with `view`
    schema: str | None = None  # @@schema("...") (multiSchema)

    @property
    def id_fields(self) -> tuple[str, ...]:
        return self.primary_key.fields if self.primary_key else ()

    @property
    def columns(self) -> tuple[PrismaField, ...]:
        """The fields that are columns of the table (every field but the relation fields)."""
        return tuple(f for f in self.fields if not f.is_relation)

    def field(self, name: str) -> PrismaField | None:
        return next((f for f in self.fields if f.name == name), None)

    def field_for_column(self, column: str) -> PrismaField | None:
        return next((f for f in self.columns if f.column == column), None)


@dataclass(frozen=True)
class PrismaEnum:
    name: str
    db_name: str  # @@map("...") or the name: the PostgreSQL enum type's name
    values: tuple[str, ...]  # the labels in the database: each value's @map("...") or its name
    names: tuple[str, ...]  # the values as Prisma names them (parallel to `values`)
    line: int
    schema: str | None = None

    def label(self, name: str) -> str | None:
        """The database label of the value Prisma calls `name` (e.g. in `@default(ADMIN)`)."""
        return dict(zip(self.names, self.values, strict=True)).get(name)


@dataclass(frozen=True)
class PrismaSchema:
    models: tuple[PrismaModel, ...]  # models and views, in schema order, @@ignore'd ones left out
    enums: tuple[PrismaEnum, ...]
    provider: str | None  # the datasource's provider: "sqlite", "postgresql", ...

    def model_for_table(self, table: str) -> PrismaModel | None:
        """The model stored in `table`; an exact match, else the only case-insensitive one."""
        for model in self.models:
            if model.table == table:
                return model
        folded = [m for m in self.models if m.table.lower() == table.lower()]
        return folded[0] if len(folded) == 1 else None

    def model_named(self, name: str) -> PrismaModel | None:
        return next((m for m in self.models if m.name == name), None)

    def enum_named(self, name: str) -> PrismaEnum | None:
        return next((e for e in self.enums if e.name == name), None)


@dataclass(frozen=True)
class PrismaJoinTable:
    """The table of an implicit many-to-many relation (list fields on both sides, no `fields:`):
    `_AToB`, or `_<relation name>`. Column A refers to the id of the model whose name sorts first,
    B to the other's."""

    table: str
    a: PrismaModel
    b: PrismaModel


def implicit_many_to_many(schema: PrismaSchema) -> tuple[PrismaJoinTable, ...]:
    """Every implicit many-to-many relation's join table, once each, in schema order."""
    found: dict[str, PrismaJoinTable] = {}
    for model in schema.models:
        for field in model.fields:
            other = schema.model_named(field.type)
            if not (field.is_relation and field.list and other) or (field.relation and field.relation.fields):
                continue
            name = field.relation.name if field.relation else None
            back = [
                f
                for f in other.fields
                if f is not field
                and f.is_relation
                and f.list
                and f.type == model.name
                and (f.relation.name if f.relation else None) == name
            ]
            if back:
                a, b = sorted((model, other), key=lambda m: m.name)
                table = f"_{name or a.name + 'To' + b.name}"
                found.setdefault(table, PrismaJoinTable(table, a, b))
    return tuple(found.values())


# ----------------------------------------------------------------------------------------------
# PostgreSQL types
# ----------------------------------------------------------------------------------------------

# Prisma scalar -> the type the postgresql provider gives it without a native type attribute.
_SCALAR_TYPES: dict[str, str] = {
    "String": "text",
    "Boolean": "boolean",
    "Int": "integer",
    "BigInt": "bigint",
    "Float": "double precision",
    "Decimal": "decimal(65,30)",
    "DateTime": "timestamp(3)",
    "Json": "jsonb",
    "Bytes": "bytea",
}


@dataclass(frozen=True)
class _Native:
    scalars: frozenset[str]  # field types it may annotate
    arity: tuple[int, ...]  # allowed numbers of arguments
    sql: str  # PostgreSQL name; arguments are appended as written


def _native(scalar: str, sql: str, *arity: int) -> _Native:
    return _Native(frozenset({scalar}), arity or (0,), sql)


# The postgresql provider's native types (@db.X).
_NATIVE_TYPES: dict[str, _Native] = {
    "Text": _native("String", "text"),
    "VarChar": _native("String", "varchar", 0, 1),
    "Char": _native("String", "char", 0, 1),
    "Bit": _native("String", "bit", 0, 1),
    "VarBit": _native("String", "varbit", 0, 1),
    "Uuid": _native("String", "uuid"),
    "Xml": _native("String", "xml"),
    "Inet": _native("String", "inet"),
    "Citext": _native("String", "citext"),
    "Boolean": _native("Boolean", "boolean"),
    "SmallInt": _native("Int", "smallint"),
    "Integer": _native("Int", "integer"),
    "Oid": _native("Int", "oid"),
    "BigInt": _native("BigInt", "bigint"),
    "Real": _native("Float", "real"),
    "DoublePrecision": _native("Float", "double precision"),
    "Decimal": _native("Decimal", "decimal", 0, 2),
    "Money": _native("Decimal", "money"),
    "Timestamp": _native("DateTime", "timestamp", 0, 1),
    "Timestamptz": _native("DateTime", "timestamptz", 0, 1),
    "Date": _native("DateTime", "date"),
    "Time": _native("DateTime", "time", 0, 1),
    "Timetz": _native("DateTime", "timetz", 0, 1),
    "Json": _native("Json", "json"),
    "JsonB": _native("Json", "jsonb"),
    "ByteA": _native("Bytes", "bytea"),
}

_NATIVE_RE = re.compile(r"^(\w+)(?:\(([^)]*)\))?$")
_UNSUPPORTED_RE = re.compile(r'^Unsupported\("(.*)"\)$', re.S)


def postgres_type(field: PrismaField, schema: PrismaSchema) -> str:
    """The PostgreSQL type Prisma's postgresql provider gives `field`'s column.

    Scalars and native types give text `etl.types.parse_pg_type` reads ("timestamp(3)",
    "decimal(65,30)", "varchar(255)", "text[]"), except @db.Bit/@db.VarBit ("bit(1)",
    "varbit"). An enum gives its type name (`PrismaEnum.db_name`, unquoted; find the enum with
    `schema.enum_named(field.type)`), `Unsupported("circle")` gives "circle". A list appends "[]".
    A relation field has no column: asking for its type is a ValueError.
    """
    if field.is_relation:
        raise ValueError(f"field '{field.name}' is a relation field: it has no column")
    if field.native_type is not None:
        match = _NATIVE_RE.match(field.native_type)
        if match is None or match.group(1) not in _NATIVE_TYPES:
            raise ValueError(f"field '{field.name}': '{field.native_type}' is not a native type")
        base = _NATIVE_TYPES[match.group(1)].sql
        if match.group(2):
            base += f"({match.group(2)})"
    elif field.type in _SCALAR_TYPES:
        base = _SCALAR_TYPES[field.type]
    elif unsupported := _UNSUPPORTED_RE.match(field.type):
        base = unsupported.group(1)
    elif enum := schema.enum_named(field.type):
        base = enum.db_name
    else:
        raise ValueError(f"field '{field.name}': type '{field.type}' is not in the schema")
    return base + "[]" if field.list else base


def is_autoincrement(field: PrismaField) -> bool:
    """`Int`/`BigInt` with `@default(autoincrement())`: Prisma makes the column SERIAL/BIGSERIAL."""
    return (
        field.type in ("Int", "BigInt")
        and not field.list
        and field.default is not None
        and re.sub(r"\s+", "", field.default) == "autoincrement()"
    )


# ----------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------


def read_prisma_file(path: str | Path) -> PrismaSchema:
    """Read and parse a schema file; a missing, unreadable or non-UTF-8 file is a PrismaSchemaError."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PrismaSchemaError(f"{path}: no such Prisma schema file") from None
    except IsADirectoryError:
        raise PrismaSchemaError(f"{path}: is a directory, not a Prisma schema file") from None
    except OSError as exc:
        raise PrismaSchemaError(f"{path}: cannot read the Prisma schema ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start].decode("utf-8", errors="replace")
        line = before.count("\n") + 1
        col = len(before) - (before.rfind("\n") + 1) + 1
        raise PrismaSchemaError(
            f"not UTF-8 text (byte 0x{data[exc.start]:02x}); save the schema as UTF-8",
            Location(str(path), line, col),
        ) from None
    return parse_prisma(text, str(path))


def parse_prisma(text: str, file: str = "schema.prisma") -> PrismaSchema:
    """Parse Prisma schema text; `file` only names it in error messages."""
    if text.startswith("\ufeff"):
        text = text[1:]
    tokens = _Lexer(text, file).tokens()
    blocks = _Parser(tokens, file).blocks()
    return _Builder(blocks, text, file).schema()


# ----------------------------------------------------------------------------------------------
# Lexer: identifiers, strings, numbers, punctuation and line ends (none inside ( ) or [ ]).
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tok:
    kind: str  # "ident", "string", "number", "punct", "newline", "eof"
    text: str  # name, unescaped string value, number, punctuation
    start: int  # offsets into the text
    end: int
    line: int
    col: int

    def is_punct(self, *chars: str) -> bool:
        return self.kind == "punct" and self.text in chars

    def describe(self) -> str:
        if self.kind == "newline":
            return "the end of the line"
        if self.kind == "eof":
            return "the end of the file"
        if self.kind == "string":
            return f'"{self.text}"'
        return f"'{self.text}'"


_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER_RE = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", '"': '"', "\\": "\\", "'": "'", "/": "/"}
_OPENERS = {"(": ")", "[": "]"}


class _Lexer:
    def __init__(self, text: str, file: str):
        self.text = text
        self.file = file
        self.pos = 0
        self.line = 1
        self.line_start = 0
        self.out: list[_Tok] = []
        self.open: list[_Tok] = []  # unclosed ( and [

    def error(self, message: str, line: int, col: int) -> PrismaSchemaError:
        return PrismaSchemaError(message, Location(self.file, line, col))

    def col(self, pos: int | None = None) -> int:
        return (self.pos if pos is None else pos) - self.line_start + 1

    def emit(self, kind: str, text: str, start: int, end: int, line: int, col: int) -> _Tok:
        tok = _Tok(kind, text, start, end, line, col)
        self.out.append(tok)
        return tok

    def newline(self, start: int, line: int, col: int) -> None:
        if not self.open and (not self.out or self.out[-1].kind != "newline"):
            self.emit("newline", "\n", start, start + 1, line, col)

    def tokens(self) -> list[_Tok]:
        text = self.text
        while self.pos < len(text):
            ch = text[self.pos]
            start, line, col = self.pos, self.line, self.col()
            if ch == "\n":
                self.newline(start, line, col)
                self.pos += 1
                self.line += 1
                self.line_start = self.pos
            elif ch in " \t\r\f\v":
                self.pos += 1
            elif text.startswith("//", self.pos):
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            elif text.startswith("/*", self.pos):
                self.block_comment(start, line, col)
            elif ch == '"':
                self.string(start, line, col)
            elif ch.isdigit() or (ch == "-" and text[self.pos + 1 : self.pos + 2].isdigit()):
                match = _NUMBER_RE.match(text, self.pos)
                assert match is not None
                self.pos = match.end()
                self.emit("number", match.group(), start, self.pos, line, col)
            elif match := _IDENT_RE.match(text, self.pos):
                self.pos = match.end()
                self.emit("ident", match.group(), start, self.pos, line, col)
            elif text.startswith("@@", self.pos):
                self.pos += 2
                self.emit("punct", "@@", start, self.pos, line, col)
            elif ch in "{}()[],:=?@.":
                self.pos += 1
                tok = self.emit("punct", ch, start, self.pos, line, col)
                self.bracket(tok)
            else:
                raise self.error(f"unexpected character {ch!r}", line, col)
        if self.open:
            tok = self.open[-1]
            raise self.error(f"'{tok.text}' is never closed", tok.line, tok.col)
        self.emit("eof", "", len(text), len(text), self.line, self.col())
        return self.out

    def bracket(self, tok: _Tok) -> None:
        if tok.text in _OPENERS:
            self.open.append(tok)
        elif tok.text in (")", "]"):
            if not self.open:
                raise self.error(f"'{tok.text}' closes nothing", tok.line, tok.col)
            opener = self.open.pop()
            if _OPENERS[opener.text] != tok.text:
                raise self.error(
                    f"'{opener.text}' at line {opener.line}:{opener.col} is closed by '{tok.text}'",
                    tok.line,
                    tok.col,
                )
        elif tok.text in "{}" and self.open:
            opener = self.open[-1]
            raise self.error(f"'{opener.text}' is never closed", opener.line, opener.col)

    def block_comment(self, start: int, line: int, col: int) -> None:
        end = self.text.find("*/", self.pos + 2)
        if end < 0:
            raise self.error("'/*' comment is never closed", line, col)
        body = self.text[self.pos : end + 2]
        self.pos = end + 2
        if "\n" in body:
            self.newline(start, line, col)
            self.line += body.count("\n")
            self.line_start = start + body.rfind("\n") + 1

    def string(self, start: int, line: int, col: int) -> None:
        text = self.text
        i = self.pos + 1
        value: list[str] = []
        while True:
            if i >= len(text) or text[i] == "\n":
                raise self.error("string is never closed (a '\"' is missing on this line)", line, col)
            ch = text[i]
            if ch == '"':
                break
            if ch == "\\" and i + 1 < len(text) and text[i + 1] != "\n":
                nxt = text[i + 1]
                hex4 = text[i + 2 : i + 6]
                if nxt == "u" and re.fullmatch(r"[0-9A-Fa-f]{4}", hex4):
                    value.append(chr(int(hex4, 16)))
                    i += 6
                    continue
                value.append(_ESCAPES.get(nxt, "\\" + nxt))
                i += 2
                continue
            value.append(ch)
            i += 1
        self.pos = i + 1
        self.emit("string", "".join(value), start, self.pos, line, col)


# ----------------------------------------------------------------------------------------------
# Parser: blocks of lines; each line a field, an enum value, a block attribute or a setting.
# ----------------------------------------------------------------------------------------------

_BLOCK_KEYWORDS = ("datasource", "generator", "model", "view", "enum", "type")


@dataclass
class _Value:
    kind: str  # "string", "number", "ident", "call", "list"
    text: str  # string value, number, name, function name; "" for a list
    args: list[_Arg]  # call arguments or list items (items have no name)
    tok: _Tok  # first token
    end: int  # offset just past the value


@dataclass
class _Arg:
    name: str | None
    value: _Value
    tok: _Tok  # first token of the argument (its name, if named)


@dataclass
class _Attr:
    name: str  # "id", "default", "db.VarChar", ...
    args: list[_Arg]
    tok: _Tok  # the '@' or '@@'
    block: bool  # '@@'


@dataclass
class _Entry:
    """A field (type set), an enum value (type None) or a setting `key = value` (setting set)."""

    name: _Tok
    type_name: str | None = None
    type_tok: _Tok | None = None
    optional: bool = False
    is_list: bool = False
    attrs: list[_Attr] | None = None
    setting: _Value | None = None


@dataclass
class _Block:
    keyword: _Tok
    name: _Tok
    brace: _Tok
    entries: list[_Entry]
    attrs: list[_Attr]


class _Parser:
    def __init__(self, tokens: list[_Tok], file: str):
        self.toks = tokens
        self.file = file
        self.i = 0

    def error(self, tok: _Tok, message: str) -> PrismaSchemaError:
        return PrismaSchemaError(message, Location(self.file, tok.line, tok.col))

    def peek(self, ahead: int = 0) -> _Tok:
        return self.toks[min(self.i + ahead, len(self.toks) - 1)]

    def next(self) -> _Tok:
        tok = self.peek()
        self.i = min(self.i + 1, len(self.toks) - 1)
        return tok

    def expect_punct(self, char: str, what: str) -> _Tok:
        tok = self.next()
        if not tok.is_punct(char):
            raise self.error(tok, f"expected '{char}' {what}, found {tok.describe()}")
        return tok

    def blocks(self) -> list[_Block]:
        out: list[_Block] = []
        while True:
            tok = self.next()
            if tok.kind == "newline":
                continue
            if tok.kind == "eof":
                return out
            if tok.is_punct("}"):
                raise self.error(tok, "'}' closes no block")
            if tok.kind != "ident":
                raise self.error(
                    tok, f"expected a block ({', '.join(_BLOCK_KEYWORDS)}), found {tok.describe()}"
                )
            if tok.text not in _BLOCK_KEYWORDS:
                raise self.error(tok, f"unknown block '{tok.text}'{_hint(tok.text, _BLOCK_KEYWORDS)}")
            out.append(self.block(tok))

    def block(self, keyword: _Tok) -> _Block:
        name = self.next()
        if name.kind != "ident":
            raise self.error(name, f"expected the {keyword.text}'s name, found {name.describe()}")
        brace = self.expect_punct("{", f"after {keyword.text} {name.text}")
        block = _Block(keyword, name, brace, [], [])
        while True:
            tok = self.peek()
            if tok.kind == "newline":
                self.next()
                continue
            if tok.kind == "eof":
                raise self.error(brace, f"the '{{' of {keyword.text} {name.text} is never closed")
            if tok.is_punct("}"):
                self.next()
                return block
            next_block = tok.kind == "ident" and tok.text in _BLOCK_KEYWORDS and self.peek(1).kind == "ident"
            if next_block and self.peek(2).is_punct("{"):
                raise self.error(
                    brace,
                    f"the '{{' of {keyword.text} {name.text} is never closed "
                    f"({tok.text} {self.peek(1).text} starts at line {tok.line})",
                )
            if tok.is_punct("@@") and keyword.text in ("model", "view", "enum", "type"):
                while self.peek().is_punct("@@"):
                    block.attrs.append(self.attribute())
            elif tok.kind != "ident":
                raise self.error(tok, f"expected a {_entry_word(keyword.text)}, found {tok.describe()}")
            elif keyword.text in ("datasource", "generator"):
                block.entries.append(self.setting())
            elif keyword.text == "enum":
                block.entries.append(_Entry(self.next(), attrs=self.attributes()))
            else:
                block.entries.append(self.field())
            end = self.peek()
            if end.kind not in ("newline", "eof") and not end.is_punct("}"):
                raise self.error(end, f"unexpected {end.describe()}; expected the end of the line")

    def setting(self) -> _Entry:
        key = self.next()
        self.expect_punct("=", f"after '{key.text}'")
        return _Entry(key, setting=self.value())

    def field(self) -> _Entry:
        name = self.next()
        type_tok = self.next()
        if type_tok.kind != "ident":
            raise self.error(
                type_tok, f"expected the type of field '{name.text}', found {type_tok.describe()}"
            )
        type_name = type_tok.text
        if type_name == "Unsupported" and self.peek().is_punct("("):
            self.next()
            args, _ = self.arguments()
            if len(args) != 1 or args[0].name or args[0].value.kind != "string":
                raise self.error(type_tok, 'Unsupported takes one string, like Unsupported("circle")')
            type_name = f'Unsupported("{args[0].value.text}")'
        entry = _Entry(name, type_name, type_tok)
        if self.peek().is_punct("["):
            self.next()
            self.expect_punct("]", "to make a list type")
            entry.is_list = True
        if self.peek().is_punct("?"):
            question = self.next()
            if entry.is_list:
                raise self.error(question, f"field '{name.text}': a list cannot be optional ('[]?')")
            entry.optional = True
        entry.attrs = self.attributes()
        return entry

    def attributes(self) -> list[_Attr]:
        attrs: list[_Attr] = []
        while self.peek().is_punct("@"):
            attrs.append(self.attribute())
        return attrs

    def attribute(self) -> _Attr:
        at = self.next()
        name_tok = self.next()
        if name_tok.kind != "ident":
            raise self.error(
                name_tok, f"expected an attribute name after '{at.text}', found {name_tok.describe()}"
            )
        name = name_tok.text
        while self.peek().is_punct(".") and self.peek(1).kind == "ident":
            self.next()
            name += "." + self.next().text
        args: list[_Arg] = []
        if self.peek().is_punct("("):
            self.next()
            args, _ = self.arguments()
        return _Attr(name, args, at, at.text == "@@")

    def arguments(self) -> tuple[list[_Arg], _Tok]:
        """After '(': arguments up to and including the ')'."""
        args: list[_Arg] = []
        while True:
            if self.peek().is_punct(")"):
                return args, self.next()
            first = self.peek()
            name = None
            if first.kind == "ident" and self.peek(1).is_punct(":"):
                name = first.text
                self.i += 2
            args.append(_Arg(name, self.value(), first))
            sep = self.next()
            if sep.is_punct(")"):
                return args, sep
            if not sep.is_punct(","):
                raise self.error(sep, f"expected ',' or ')', found {sep.describe()}")

    def value(self) -> _Value:
        tok = self.next()
        if tok.kind in ("string", "number"):
            return _Value(tok.kind, tok.text, [], tok, tok.end)
        if tok.kind == "ident":
            name = tok.text
            while self.peek().is_punct(".") and self.peek(1).kind == "ident":
                self.next()
                name += "." + self.next().text
            if self.peek().is_punct("("):
                self.next()
                args, close = self.arguments()
                return _Value("call", name, args, tok, close.end)
            return _Value("ident", name, [], tok, self.toks[self.i - 1].end)
        if tok.is_punct("["):
            items: list[_Arg] = []
            while True:
                if self.peek().is_punct("]"):
                    return _Value("list", "", items, tok, self.next().end)
                first = self.peek()
                items.append(_Arg(None, self.value(), first))
                sep = self.next()
                if sep.is_punct("]"):
                    return _Value("list", "", items, tok, sep.end)
                if not sep.is_punct(","):
                    raise self.error(sep, f"expected ',' or ']', found {sep.describe()}")
        raise self.error(tok, f"expected a value, found {tok.describe()}")


def _entry_word(keyword: str) -> str:
    return {"enum": "value", "datasource": "setting", "generator": "setting"}.get(keyword, "field")


def _hint(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


# ----------------------------------------------------------------------------------------------
# Builder: blocks -> PrismaSchema, with the checks that decide the result.
# ----------------------------------------------------------------------------------------------


class _Builder:
    def __init__(self, blocks: list[_Block], source: str, file: str):
        self.blocks = blocks
        self.source = source
        self.file = file
        self.datasource = next((b for b in blocks if b.keyword.text == "datasource"), None)
        self.native_prefix = (self.datasource.name.text if self.datasource else "db") + "."
        self.models = {b.name.text: b for b in blocks if b.keyword.text in ("model", "view")}
        self.enums = {b.name.text: b for b in blocks if b.keyword.text == "enum"}
        self.composites = {b.name.text for b in blocks if b.keyword.text == "type"}

    def error(self, tok: _Tok, message: str) -> PrismaSchemaError:
        return PrismaSchemaError(message, Location(self.file, tok.line, tok.col))

    def schema(self) -> PrismaSchema:
        seen: dict[str, _Block] = {}
        for block in self.blocks:
            key = block.name.text if block.keyword.text in ("model", "view", "enum", "type") else None
            if key is None:
                continue
            if key in seen:
                first = seen[key]
                raise self.error(
                    block.name, f"'{key}' is already defined ({first.keyword.text} at line {first.name.line})"
                )
            if key in _SCALAR_TYPES or key == "Unsupported":
                raise self.error(
                    block.name, f"'{key}' is a Prisma scalar type; a {block.keyword.text} cannot use it"
                )
            seen[key] = block
        provider = None
        if self.datasource:
            setting = next((e.setting for e in self.datasource.entries if e.name.text == "provider"), None)
            if setting is not None:
                provider = setting.text if setting.kind == "string" else self.raw(setting)
        models = []
        enums = []
        for block in self.blocks:
            if block.keyword.text in ("model", "view"):
                model = self.model(block)
                if model is not None:
                    models.append(model)
            elif block.keyword.text == "enum":
                enums.append(self.enum(block))
        return PrismaSchema(tuple(models), tuple(enums), provider)

    # -- helpers over attribute arguments

    def raw(self, value: _Value) -> str:
        return self.source[value.tok.start : value.end]

    def arg(self, attr: _Attr, name: str, positional: int | None = None) -> _Value | None:
        """The argument called `name`, or else the `positional`-th unnamed one."""
        for arg in attr.args:
            if arg.name == name:
                return arg.value
        if positional is not None:
            unnamed = [a.value for a in attr.args if a.name is None]
            if len(unnamed) > positional:
                return unnamed[positional]
        return None

    def string_arg(self, attr: _Attr, name: str, positional: int | None = None) -> str | None:
        value = self.arg(attr, name, positional)
        if value is None:
            return None
        if value.kind != "string":
            raise self.error(
                value.tok, f"{_at(attr)}: '{name}' must be a string, found {value.tok.describe()}"
            )
        return value.text

    def required_string(self, attr: _Attr) -> str:
        value = self.string_arg(attr, "name", 0)
        if value is None:
            raise self.error(attr.tok, f'{_at(attr)} needs a name, like {_at(attr)}("name")')
        return value

    def field_list(self, attr: _Attr, name: str, known: dict[str, _Entry], model: str) -> tuple[str, ...]:
        value = self.arg(attr, name, 0)
        # Prisma also takes a single field without brackets: @@index(userId).
        items = [value] if value is not None and value.kind == "ident" else None
        if value is None or (value.kind != "list" and items is None):
            tok = value.tok if value else attr.tok
            raise self.error(tok, f"{_at(attr)}: '{name}' must be a list of fields, like [a, b]")
        if items is None:
            items = [item.value for item in value.args]
        names = []
        for item_value in items:
            if item_value.kind not in ("ident", "call"):
                raise self.error(
                    item_value.tok, f"{_at(attr)}: expected a field name, found {item_value.tok.describe()}"
                )
            field = item_value.text
            if field not in known:
                raise self.error(item_value.tok, f"{model} has no field '{field}'{_hint(field, known)}")
            names.append(field)
        if not names:
            raise self.error(value.tok, f"{_at(attr)}: the list of fields is empty")
        return tuple(names)

    def descending(self, attr: _Attr, field: str | None = None) -> tuple[str, ...]:
        """The fields `attr` sorts descending: `[a, b(sort: Desc)]` in its field list, or, for a
        field's own @id or @unique, `sort: Desc` on the attribute (`field` is then its name)."""
        if field is not None:
            sort = self.arg(attr, "sort")
            return (field,) if sort is not None and sort.text == "Desc" else ()
        value = self.arg(attr, "fields", 0)
        if value is None or value.kind != "list":
            return ()
        return tuple(
            item.value.text
            for item in value.args
            if item.value.kind == "call"
            and any(a.name == "sort" and a.value.text == "Desc" for a in item.value.args)
        )

    # -- blocks

    def model(self, block: _Block) -> PrismaModel | None:
        kind, model_name = block.keyword.text, block.name.text
        what = f"{kind} {model_name}"
        if not block.entries:
            raise self.error(block.name, f"{what} has no fields")
        known: dict[str, _Entry] = {}
        for entry in block.entries:
            if entry.name.text in known:
                first = known[entry.name.text]
                raise self.error(
                    entry.name,
                    f"{what}: field '{entry.name.text}' is already defined at line {first.name.line}",
                )
            known[entry.name.text] = entry

        fields: list[PrismaField] = []
        primary: PrismaIndex | None = None
        id_attr: _Attr | None = None
        uniques: list[PrismaIndex] = []
        indexes: list[PrismaIndex] = []
        for entry in block.entries:
            field, own = self.field(entry, what, known)
            if field is None:
                continue
            fields.append(field)
            if field.is_id:
                if primary is not None:
                    raise self.error(
                        entry.name,
                        f"{what} has more than one @id field; use @@id([{primary.fields[0]}, {field.name}])",
                    )
                primary = own["id"]
            if field.is_unique:
                uniques.append(own["unique"])

        table, schema, ignored = model_name, None, False
        for attr in block.attrs:
            line = attr.tok.line
            if attr.name == "id":
                if primary is not None:
                    raise self.error(
                        attr.tok, f"{what} already has a primary key (@id at line {primary.line})"
                    )
                if id_attr is not None:
                    raise self.error(attr.tok, f"{what} has more than one @@id")
                id_attr = attr
                primary = PrismaIndex(
                    self.field_list(attr, "fields", known, what),
                    self.string_arg(attr, "name"),
                    self.string_arg(attr, "map"),
                    line,
                    self.descending(attr),
                )
            elif attr.name in ("unique", "index"):
                index = PrismaIndex(
                    self.field_list(attr, "fields", known, what),
                    self.string_arg(attr, "name"),
                    self.string_arg(attr, "map"),
                    line,
                    self.descending(attr),
                )
                (uniques if attr.name == "unique" else indexes).append(index)
            elif attr.name == "map":
                table = self.required_string(attr)
            elif attr.name == "schema":
                schema = self.required_string(attr)
            elif attr.name == "ignore":
                ignored = True
        if ignored:
            return None
        return PrismaModel(
            name=model_name,
            table=table,
            fields=tuple(fields),
            primary_key=primary,
            uniques=tuple(uniques),
            indexes=tuple(indexes),
            line=block.keyword.line,
            is_view=kind == "view",
            schema=schema,
        )

    def field(
        self, entry: _Entry, what: str, known: dict[str, _Entry]
    ) -> tuple[PrismaField | None, dict[str, PrismaIndex]]:
        name = entry.name.text
        type_name = entry.type_name or ""
        type_tok = entry.type_tok or entry.name
        is_relation = type_name in self.models
        if type_name in self.composites:
            raise self.error(
                type_tok, f"field '{name}': composite type '{type_name}' exists only for MongoDB"
            )
        known_type = type_name in _SCALAR_TYPES or type_name in self.enums or is_relation
        if not known_type and not type_name.startswith("Unsupported("):
            choices = [*_SCALAR_TYPES, *self.enums, *self.models]
            raise self.error(
                type_tok, f"field '{name}': unknown type '{type_name}'{_hint(type_name, choices)}"
            )
        column, native, default, relation = name, None, None, None
        is_id = is_unique = updated_at = ignored = False
        indexes: dict[str, PrismaIndex] = {}
        for attr in entry.attrs or []:
            if attr.name == "id":
                is_id = True
                indexes["id"] = PrismaIndex(
                    (name,), None, self.string_arg(attr, "map"), entry.name.line, self.descending(attr, name)
                )
            elif attr.name == "unique":
                is_unique = True
                indexes["unique"] = PrismaIndex(
                    (name,), None, self.string_arg(attr, "map"), entry.name.line, self.descending(attr, name)
                )
            elif attr.name == "default":
                value = self.arg(attr, "value", 0)
                if value is None:
                    raise self.error(attr.tok, f"field '{name}': @default needs a value, like @default(0)")
                default = self.raw(value)
            elif attr.name == "map":
                column = self.required_string(attr)
            elif attr.name == "updatedAt":
                updated_at = True
            elif attr.name == "ignore":
                ignored = True
            elif attr.name == "relation":
                if not is_relation:
                    raise self.error(
                        attr.tok, f"field '{name}': @relation is only for fields whose type is a model"
                    )
                relation = self.relation(attr, what, known, type_name)
            elif "." in attr.name:
                native = self.native_type(attr, name, type_name)
        field = PrismaField(
            name=name,
            column=column,
            type=type_name,
            optional=entry.optional,
            list=entry.is_list,
            is_relation=is_relation,
            native_type=native,
            default=default,
            is_id=is_id,
            is_unique=is_unique,
            updated_at=updated_at,
            line=entry.name.line,
            relation=relation,
        )
        return (None if ignored else field), indexes

    def relation(self, attr: _Attr, what: str, known: dict[str, _Entry], target: str) -> PrismaRelation:
        fields: tuple[str, ...] = ()
        references: tuple[str, ...] = ()
        if self.arg(attr, "fields") is not None:
            fields = self.field_list(attr, "fields", known, what)
        if self.arg(attr, "references") is not None:
            target_block = self.models[target]
            target_known = {e.name.text: e for e in target_block.entries}
            target_what = f"{target_block.keyword.text} {target}"
            references = self.field_list(attr, "references", target_known, target_what)
        if len(fields) != len(references):
            raise self.error(attr.tok, "@relation: 'fields' and 'references' must list as many fields each")
        actions = {}
        for key in ("onDelete", "onUpdate"):
            value = self.arg(attr, key)
            if value is not None and value.kind != "ident":
                raise self.error(value.tok, f"@relation: '{key}' must be an action like Cascade")
            actions[key] = value.text if value else None
        return PrismaRelation(
            name=self.string_arg(attr, "name", 0),
            fields=fields,
            references=references,
            on_delete=actions["onDelete"],
            on_update=actions["onUpdate"],
            map=self.string_arg(attr, "map"),
        )

    def native_type(self, attr: _Attr, field: str, type_name: str) -> str:
        prefix, _, native = attr.name.rpartition(".")
        if prefix + "." != self.native_prefix:
            raise self.error(
                attr.tok,
                f"field '{field}': '@{attr.name}' does not name the datasource "
                f"(native types are written @{self.native_prefix}{native})",
            )
        spec = _NATIVE_TYPES.get(native)
        if spec is None:
            raise self.error(
                attr.tok,
                f"field '{field}': @{attr.name} is not a native type of Prisma's postgresql provider"
                f"{_hint(native, _NATIVE_TYPES)}",
            )
        if type_name not in spec.scalars:
            allowed = " or ".join(sorted(spec.scalars))
            raise self.error(
                attr.tok, f"field '{field}': @{attr.name} is for {allowed} fields, not {type_name}"
            )
        if len(attr.args) not in spec.arity:
            counts = " or ".join(str(n) for n in spec.arity)
            raise self.error(
                attr.tok, f"field '{field}': @{attr.name} takes {counts} arguments, not {len(attr.args)}"
            )
        numbers: list[int] = []
        for arg in attr.args:
            if arg.name is not None or arg.value.kind != "number" or not arg.value.text.isdigit():
                raise self.error(arg.tok, f"field '{field}': @{attr.name} takes whole numbers")
            numbers.append(int(arg.value.text))
        problem = _native_args_problem(native, numbers)
        if problem:
            raise self.error(attr.tok, f"field '{field}': @{attr.name}: {problem}")
        return native + (f"({','.join(map(str, numbers))})" if numbers else "")

    def enum(self, block: _Block) -> PrismaEnum:
        if not block.entries:
            raise self.error(block.name, f"enum {block.name.text} has no values")
        names: list[str] = []
        values: list[str] = []
        lines: dict[str, int] = {}
        for entry in block.entries:
            name = entry.name.text
            if name in lines:
                raise self.error(
                    entry.name,
                    f"enum {block.name.text}: value '{name}' is already defined at line {lines[name]}",
                )
            lines[name] = entry.name.line
            label = name
            for attr in entry.attrs or []:
                if attr.name == "map":
                    label = self.required_string(attr)
            names.append(name)
            values.append(label)
        db_name, schema = block.name.text, None
        for attr in block.attrs:
            if attr.name == "map":
                db_name = self.required_string(attr)
            elif attr.name == "schema":
                schema = self.required_string(attr)
        return PrismaEnum(block.name.text, db_name, tuple(values), tuple(names), block.keyword.line, schema)


def _native_args_problem(native: str, numbers: list[int]) -> str | None:
    if not numbers:
        return None
    if native in ("VarChar", "Char", "Bit", "VarBit") and numbers[0] < 1:
        return "the length must be at least 1"
    if native in ("Timestamp", "Timestamptz", "Time", "Timetz") and numbers[0] > 6:
        return "the precision of fractional seconds must be 0 to 6"
    if native == "Decimal":
        precision, scale = numbers
        if not 1 <= precision <= 1000 or scale > precision:
            return "the precision must be 1 to 1000 and the scale at most the precision"
    return None


def _at(attr: _Attr) -> str:
    return ("@@" if attr.block else "@") + attr.name


# ----------------------------------------------------------------------------------------------
# The order of Prisma's own DDL
# ----------------------------------------------------------------------------------------------


def prisma_order(schema: PrismaSchema) -> PrismaOrder:
    """The order `prisma migrate diff` lists tables, enums, indexes and foreign keys in: models in
    schema order, then implicit many-to-many tables; indexes as the model declares them (field
    attributes, then @@index, then @@unique); foreign keys in the order of their relation fields.
    A many-to-many table's unique index on (A, B) is Prisma 5's layout (Prisma 6 makes it the
    primary key)."""
    tables: list[str] = []
    indexes: dict[str, tuple[tuple[tuple[str, bool], ...], ...]] = {}
    foreign_keys: dict[str, tuple[tuple[str, ...], ...]] = {}
    for model in schema.models:
        if model.is_view:
            continue
        tables.append(model.table)

        def columns(names: tuple[str, ...], model: PrismaModel = model) -> tuple[str, ...]:
            return tuple(f.column if (f := model.field(n)) else n for n in names)

        def keys(ix: PrismaIndex) -> tuple[tuple[str, bool], ...]:
            return tuple(zip(columns(ix.fields), (n in ix.descending for n in ix.fields), strict=True))

        # Prisma's own order: field attributes (@unique), then @@index, then @@unique.
        own = [(f.name,) for f in model.fields if f.is_unique]
        fields = [ix for ix in model.uniques if ix.fields in own]
        blocks = [ix for ix in model.uniques if ix not in fields]
        declared = [*fields, *model.indexes, *blocks]
        indexes[model.table] = tuple(keys(ix) for ix in declared)
        foreign_keys[model.table] = tuple(
            columns(f.relation.fields) for f in model.fields if f.relation and f.relation.fields
        )
    for join in implicit_many_to_many(schema):
        tables.append(join.table)
        indexes[join.table] = ((("A", False), ("B", False)), (("B", False),))
        foreign_keys[join.table] = (("A",), ("B",))
    return PrismaOrder(tuple(tables), tuple(e.db_name for e in schema.enums), indexes, foreign_keys)


# ----------------------------------------------------------------------------------------------
# Which Prisma the app uses
# ----------------------------------------------------------------------------------------------

PRISMA_LAYOUT_DEFAULT = 6
_MAJOR_RE = re.compile(r"(\d+)")


def _major(version: object) -> int | None:
    """The major version a package.json entry names: "6.19.3", "^5.22.0", "~4.16", ">=5 <6"."""
    if not isinstance(version, str):
        return None
    match = _MAJOR_RE.search(version)
    return int(match.group(1)) if match else None


def prisma_version(schema_file: str | Path) -> tuple[int, str]:
    """The major version of Prisma the app whose schema this is uses, and where it was read: the
    installed package (node_modules/prisma/package.json) in the schema's folder or one above it,
    else the version package.json asks for (prisma or @prisma/client); else Prisma 6."""
    import json

    folders = [Path(schema_file).resolve().parent, *list(Path(schema_file).resolve().parents)[1:3]]
    for folder in folders:
        installed = folder / "node_modules" / "prisma" / "package.json"
        try:
            major = _major(json.loads(installed.read_text(encoding="utf-8")).get("version"))
        except (OSError, ValueError, AttributeError):
            major = None
        if major is not None:
            return major, f"{installed}: prisma {major}"
    for folder in folders:
        manifest = folder / "package.json"
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for section in ("dependencies", "devDependencies"):
            wanted = data.get(section) if isinstance(data, dict) else None
            for package in ("prisma", "@prisma/client"):
                version = wanted.get(package) if isinstance(wanted, dict) else None
                if (major := _major(version)) is not None:
                    return major, f"{manifest}: {package} {version}"
    return PRISMA_LAYOUT_DEFAULT, f"no package.json names Prisma's version: Prisma {PRISMA_LAYOUT_DEFAULT}"
