"""Reading Prisma schemas, and the PostgreSQL types Prisma's postgresql provider gives each field."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from etl.errors import EtlError
from etl.init.prisma import (
    PrismaIndex,
    PrismaRelation,
    PrismaSchema,
    PrismaSchemaError,
    implicit_many_to_many,
    is_autoincrement,
    parse_prisma,
    postgres_type,
    prisma_order,
    read_prisma_file,
)
from etl.pgtypes import PgType, parse_pg_type

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "chat_app.prisma"


def parse(text: str) -> PrismaSchema:
    return parse_prisma(dedent(text))


def column_types(text: str, model: str = "T") -> dict[str, str]:
    schema = parse(text)
    found = schema.model_named(model)
    assert found is not None
    return {f.name: postgres_type(f, schema) for f in found.columns}


def type_table(schema: PrismaSchema) -> str:
    """`Model.field -> column : type`, one line per column, aligned; `null`/`serial` flags after."""
    rows = []
    for model in schema.models:
        for field in model.columns:
            flags = " null" * field.optional + " serial" * is_autoincrement(field)
            rows.append((f"{model.name}.{field.name}", field.column, postgres_type(field, schema) + flags))
    left = max(len(r[0]) for r in rows)
    mid = max(len(r[1]) for r in rows)
    return "\n".join(f"{a:<{left}} -> {b:<{mid}} : {c}" for a, b, c in rows) + "\n"


# ----------------------------------------------------------------------------------------------
# The sample schema
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample() -> PrismaSchema:
    return read_prisma_file(SAMPLE)


def test_sample_has_every_model_with_its_table_and_primary_key(sample):
    assert sample.provider == "sqlite"
    assert sample.enums == ()
    assert {m.name: (m.table, m.id_fields) for m in sample.models} == {
        "User": ("User", ("id",)),
        "Profile": ("Profile", ("id",)),
        "Session": ("Session", ("id",)),
        "Device": ("Device", ("id",)),
        "UserSettings": ("UserSettings", ("userId",)),
        "IdentityKey": ("IdentityKey", ("id",)),
        "SignedPreKey": ("SignedPreKey", ("id",)),
        "OneTimePreKey": ("OneTimePreKey", ("id",)),
        "Conversation": ("Conversation", ("id",)),
        "ConversationParticipant": ("ConversationParticipant", ("conversationId", "userId")),
        "Message": ("Message", ("id",)),
        "MessageAttachment": ("MessageAttachment", ("id",)),
        "MessageReaction": ("MessageReaction", ("id",)),
        "MessageReceipt": ("MessageReceipt", ("messageId", "userId")),
        "MessageEdit": ("MessageEdit", ("id",)),
        "PinnedMessage": ("PinnedMessage", ("id",)),
        "Invite": ("Invite", ("id",)),
        "Contact": ("Contact", ("id",)),
        "Block": ("Block", ("id",)),
        "Notification": ("Notification", ("id",)),
        "PushSubscription": ("push_subscriptions", ("id",)),
        "AuditLog": ("AuditLog", ("id",)),
    }
    assert [m.line for m in sample.models][:3] == [33, 66, 80]
    assert not any(m.is_view for m in sample.models)


def test_sample_maps_columns_and_keeps_relation_fields_out_of_them(sample):
    push = sample.model_for_table("push_subscriptions")
    assert push is not None and push.name == "PushSubscription"
    assert [f.column for f in push.columns] == [
        "id",
        "user_id",
        "device_id",
        "endpoint",
        "p256dh",
        "auth",
        "expires_at",
        "created_at",
    ]
    assert [(f.name, f.type, f.optional) for f in push.fields if f.is_relation] == [
        ("user", "User", False),
        ("device", "Device", True),
    ]
    assert push.field_for_column("user_id") == push.field("userId")
    assert push.indexes == (PrismaIndex(("userId",), None, None, 404),)

    user = sample.model_named("User")
    assert user is not None
    assert len(user.columns) == 10
    assert len([f for f in user.fields if f.is_relation]) == 19
    sessions = user.field("sessions")
    assert sessions is not None and sessions.list and sessions.is_relation and sessions.relation is None
    contacts = user.field("contactOf")
    assert contacts is not None and contacts.relation == PrismaRelation(
        "ContactTarget", (), (), None, None, None
    )
    assert [u.fields for u in user.uniques] == [("email",), ("username",), ("phoneNumber",)]
    with pytest.raises(ValueError, match="relation field"):
        postgres_type(sessions, sample)


def test_sample_relations_keys_and_defaults(sample):
    conversation = sample.model_named("Conversation")
    assert conversation is not None
    last = conversation.field("lastMessage")
    assert last is not None
    assert last.relation == PrismaRelation(
        "LastMessage", ("lastMessageId",), ("id",), "SetNull", "Cascade", None
    )
    assert [i.fields for i in conversation.indexes] == [("updatedAt",), ("createdById",)]
    message = sample.model_named("Message")
    assert message is not None
    assert [u.fields for u in message.uniques] == [("conversationId", "sequence")]
    assert [i.fields for i in message.indexes] == [
        ("conversationId", "createdAt"),
        ("senderId",),
        ("replyToId",),
    ]
    user = sample.model_named("User")
    assert user is not None
    defaults = {f.name: f.default for f in user.columns if f.default is not None}
    assert defaults == {"id": "cuid()", "isActive": "true", "isBot": "false", "createdAt": "now()"}
    updated = user.field("updatedAt")
    assert updated is not None and updated.updated_at and updated.default is None
    settings = sample.model_named("UserSettings")
    assert settings is not None
    theme = settings.field("theme")
    assert theme is not None and theme.default == '"system"'
    serial = [f"{m.name}.{f.name}" for m in sample.models for f in m.columns if is_autoincrement(f)]
    assert serial == ["OneTimePreKey.id", "Notification.id", "AuditLog.id"]


def test_sample_type_table(sample, snapshot):
    assert type_table(sample) == snapshot


def test_model_for_table_is_exact_then_case_insensitive(sample):
    assert sample.model_for_table("User") is sample.model_named("User")
    assert sample.model_for_table("user") is sample.model_named("User")
    assert sample.model_for_table("PUSH_SUBSCRIPTIONS") is sample.model_named("PushSubscription")
    assert sample.model_for_table("PushSubscription") is None  # the model is stored in push_subscriptions
    assert sample.model_for_table("nope") is None
    twins = parse(
        """
        model A {
          id Int @id
          @@map("ab")
        }
        model B {
          id Int @id
          @@map("AB")
        }
        """
    )
    assert twins.model_for_table("ab").name == "A"
    assert twins.model_for_table("AB").name == "B"
    assert twins.model_for_table("Ab") is None  # two tables match but neither exactly: no guess


# ----------------------------------------------------------------------------------------------
# Type mapping
# ----------------------------------------------------------------------------------------------

SCALARS = """
model T {
  s  String   @id
  b  Boolean
  i  Int
  bi BigInt
  f  Float
  d  Decimal
  dt DateTime
  j  Json
  by Bytes
  u  Unsupported("circle")
}
"""


def test_scalar_types_map_to_prismas_postgresql_defaults():
    assert column_types(SCALARS) == {
        "s": "text",
        "b": "boolean",
        "i": "integer",
        "bi": "bigint",
        "f": "double precision",
        "d": "decimal(65,30)",
        "dt": "timestamp(3)",
        "j": "jsonb",
        "by": "bytea",
        "u": "circle",
    }


def test_lists_are_arrays_and_optional_is_recorded():
    schema = parse(
        """
        model T {
          id   Int      @id
          tags String[]
          nums Int[]    @default([])
          at   DateTime[]
          note String?
        }
        """
    )
    model = schema.model_named("T")
    types = {f.name: (postgres_type(f, schema), f.list, f.optional) for f in model.columns}
    assert types == {
        "id": ("integer", False, False),
        "tags": ("text[]", True, False),
        "nums": ("integer[]", True, False),
        "at": ("timestamp(3)[]", True, False),
        "note": ("text", False, True),
    }
    assert model.field("nums").default == "[]"


NATIVE = """
model T {
  id   String   @id @db.Uuid
  a    String   @db.Text
  b    String   @db.VarChar(255)
  b0   String   @db.VarChar
  c    String   @db.Char(10)
  d    Int      @db.SmallInt
  e    Int      @db.Integer
  f    BigInt   @db.BigInt
  g    Float    @db.Real
  h    Float    @db.DoublePrecision
  i    Decimal  @db.Decimal(10, 2)
  i0   Decimal  @db.Decimal
  j    Decimal  @db.Money
  k    DateTime @db.Timestamp(6)
  k0   DateTime @db.Timestamp
  l    DateTime @db.Timestamptz(3)
  m    DateTime @db.Date
  n    DateTime @db.Time(4)
  o    DateTime @db.Timetz(2)
  p    Json     @db.Json
  q    Json     @db.JsonB
  r    Bytes    @db.ByteA
  s    Boolean  @db.Boolean
  t    String   @db.Inet
  u    String   @db.Xml
  v    String   @db.Bit(1)
  w    String   @db.VarBit(8)
  x    Int      @db.Oid
  y    String   @db.Citext
  z    String[] @db.VarChar(20)
}
"""

NATIVE_TYPES = {
    "id": "uuid",
    "a": "text",
    "b": "varchar(255)",
    "b0": "varchar",
    "c": "char(10)",
    "d": "smallint",
    "e": "integer",
    "f": "bigint",
    "g": "real",
    "h": "double precision",
    "i": "decimal(10,2)",
    "i0": "decimal",
    "j": "money",
    "k": "timestamp(6)",
    "k0": "timestamp",
    "l": "timestamptz(3)",
    "m": "date",
    "n": "time(4)",
    "o": "timetz(2)",
    "p": "json",
    "q": "jsonb",
    "r": "bytea",
    "s": "boolean",
    "t": "inet",
    "u": "xml",
    "v": "bit(1)",
    "w": "varbit(8)",
    "x": "oid",
    "y": "citext",
    "z": "varchar(20)[]",
}


def test_native_types_map_to_their_postgresql_types():
    assert column_types(NATIVE) == NATIVE_TYPES
    model = parse(NATIVE).model_named("T")
    assert model.field("i").native_type == "Decimal(10,2)"
    assert model.field("b").native_type == "VarChar(255)"
    assert model.field("a").native_type == "Text"
    assert model.field("s").native_type == "Boolean"


def test_native_types_follow_the_datasource_name():
    schema = parse(
        """
        datasource pg {
          provider = "postgresql"
          url      = env("DATABASE_URL")
        }
        model T {
          id String @id @pg.Uuid
          v  String @pg.VarChar(3)
        }
        """
    )
    assert schema.provider == "postgresql"
    assert column_types_of(schema) == {"id": "uuid", "v": "varchar(3)"}


def column_types_of(schema: PrismaSchema, model: str = "T") -> dict[str, str]:
    found = schema.model_named(model)
    assert found is not None
    return {f.name: postgres_type(f, schema) for f in found.columns}


def test_every_type_etl_can_create_reads_back_as_the_same_postgresql_type():
    """The type text is meant for etl.types.parse_pg_type (bit/varbit/enums/Unsupported aside)."""
    canonical = {
        "timestamp(3)": PgType("timestamp without time zone", (3,)),
        "decimal(65,30)": PgType("numeric", (65, 30)),
        "timestamptz(3)": PgType("timestamp with time zone", (3,)),
        "varchar(20)[]": PgType("character varying", (20,), array=True),
        "timetz(2)": PgType("time with time zone", (2,)),
        "char(10)": PgType("character", (10,)),
    }
    texts = {*column_types(SCALARS).values(), *NATIVE_TYPES.values()} - {"circle", "bit(1)", "varbit(8)"}
    parsed = {text: parse_pg_type(text) for text in texts}
    for text, want in canonical.items():
        assert parsed[text] == want


def test_autoincrement_is_serial_like_only_on_int_and_bigint():
    schema = parse(
        """
        model T {
          id    Int    @id @default(autoincrement())
          big   BigInt @default( autoincrement( ) )
          small Int    @db.SmallInt @default(autoincrement())
          plain Int    @default(0)
          s     String @default("autoincrement()")
        }
        """
    )
    model = schema.model_named("T")
    assert {f.name: is_autoincrement(f) for f in model.columns} == {
        "id": True,
        "big": True,
        "small": True,
        "plain": False,
        "s": False,
    }
    assert {f.name: postgres_type(f, schema) for f in model.columns}["big"] == "bigint"


def test_enums_with_mapped_names_and_values():
    schema = parse(
        """
        enum Role {
          ADMIN  @map("admin")
          MEMBER @map("member")
          GUEST
          @@map("user_role")
        }
        enum Plain {
          A
          B
        }
        model T {
          id    Int    @id
          role  Role   @default(MEMBER)
          roles Role[]
          p     Plain?
        }
        """
    )
    role = schema.enum_named("Role")
    assert role is not None
    assert (role.name, role.db_name, role.values, role.names) == (
        "Role",
        "user_role",
        ("admin", "member", "GUEST"),
        ("ADMIN", "MEMBER", "GUEST"),
    )
    assert role.label("MEMBER") == "member" and role.label("nope") is None
    assert schema.enum_named("Plain").db_name == "Plain"
    assert column_types_of(schema) == {
        "id": "integer",
        "role": "user_role",
        "roles": "user_role[]",
        "p": "Plain",
    }
    model = schema.model_named("T")
    assert model.field("role").default == "MEMBER"
    assert not model.field("role").is_relation


# ----------------------------------------------------------------------------------------------
# Syntax
# ----------------------------------------------------------------------------------------------


def test_tricky_strings_comments_and_nested_arguments():
    schema = parse(
        r"""
        /// Documentation comment { not a brace
        generator client {
          provider        = "prisma-client-js"
          previewFeatures = ["views", "multiSchema"]
        }
        /* a block comment
           model Fake {
        */
        datasource db {
          provider = "postgresql" // trailing comment
          url      = env("DATABASE_URL")
        }
        model T { // comment after the brace
          id  String @id @default(dbgenerated("gen_random_uuid()")) @db.Uuid
          a   String @default("a)b")
          b   String @default("@map(\"x\") // not a comment") @map("b col")
          c   String /* inline */ @default("}") @unique(map: "T_c_uq")
          d   Int    @default(-1)
          e   Float  @default(1.5e3)
          f   Json   @default("{\"k\": [1, 2]}")
          g   String @default(uuid(7))
          multi String @default(
            "spans lines"
          )
          @@index([a(sort: Desc), b(ops: raw("text_pattern_ops")), c], type: BTree, map: "T_abc_idx")
          @@unique(fields: [d, e], name: "de", map: "T_de_key")
          @@unique([
            f,
            g, // trailing comma next
          ])
          @@map("t") @@schema("public")
        }
        """
    )
    assert schema.provider == "postgresql"
    model = schema.models[0]
    assert (model.name, model.table, model.schema) == ("T", "t", "public")
    defaults = {f.name: f.default for f in model.fields}
    assert defaults == {
        "id": 'dbgenerated("gen_random_uuid()")',
        "a": '"a)b"',
        "b": r'"@map(\"x\") // not a comment"',
        "c": '"}"',
        "d": "-1",
        "e": "1.5e3",
        "f": r'"{\"k\": [1, 2]}"',
        "g": "uuid(7)",
        "multi": '"spans lines"',
    }
    assert model.field("b").column == "b col"
    assert model.field("multi").line == 23
    assert model.uniques == (
        PrismaIndex(("c",), None, "T_c_uq", 18),
        PrismaIndex(("d", "e"), "de", "T_de_key", 27),
        PrismaIndex(("f", "g"), None, None, 28),
    )
    assert model.indexes == (PrismaIndex(("a", "b", "c"), None, "T_abc_idx", 26, descending=("a",)),)


def test_ids_relations_views_ignored_and_composite_types():
    schema = parse(
        """
        model Post {
          authorId  Int
          slug      String
          author    Author  @relation("Writes", fields: [authorId], references: [id], onDelete: Cascade, map: "fk")
          legacy    Legacy? @relation(fields: [legacyId], references: [key])
          legacyId  Int?
          secret    String  @ignore
          updatedAt DateTime @updatedAt

          @@id([authorId, slug], name: "pk", map: "Post_pk")
        }
        model Author {
          id    Int    @id(map: "author_pk") @default(autoincrement())
          posts Post[] @relation("Writes")
        }
        model Legacy {
          key   Int    @id
          posts Post[]
          @@ignore
        }
        view Stats {
          authorId Int @unique
          posts    Int
        }
        type Address {
          street String
        }
        """
    )
    assert [m.name for m in schema.models] == ["Post", "Author", "Stats"]
    post = schema.model_named("Post")
    assert [f.name for f in post.fields] == ["authorId", "slug", "author", "legacy", "legacyId", "updatedAt"]
    assert post.primary_key == PrismaIndex(("authorId", "slug"), "pk", "Post_pk", 11)
    assert post.field("author").relation == PrismaRelation(
        "Writes", ("authorId",), ("id",), "Cascade", None, "fk"
    )
    assert post.field("legacy").is_relation  # a relation to an ignored model is still no column
    assert post.field("updatedAt").updated_at
    author = schema.model_named("Author")
    assert author.primary_key == PrismaIndex(("id",), None, "author_pk", 14)
    assert author.field("id").is_id
    stats = schema.model_named("Stats")
    assert stats.is_view and stats.primary_key is None and stats.field("authorId").is_unique
    assert schema.model_for_table("Legacy") is None


def test_read_prisma_file_reports_missing_unreadable_and_non_utf8_files(tmp_path):
    with pytest.raises(PrismaSchemaError) as err:
        read_prisma_file(tmp_path / "missing.prisma")
    assert str(err.value) == f"{tmp_path / 'missing.prisma'}: no such Prisma schema file"
    with pytest.raises(PrismaSchemaError) as err:
        read_prisma_file(tmp_path)
    assert str(err.value) == f"{tmp_path}: is a directory, not a Prisma schema file"
    bad = tmp_path / "bad.prisma"
    bad.write_bytes(b'model T {\n  id String @id @default("caf\xe9")\n}\n')
    with pytest.raises(PrismaSchemaError) as err:
        read_prisma_file(bad)
    assert str(err.value) == f"{bad}:2:30: not UTF-8 text (byte 0xe9); save the schema as UTF-8"
    assert isinstance(err.value, EtlError)
    good = tmp_path / "good.prisma"
    good.write_bytes('\ufeffmodel T {\r\n  id String @id @default("café")\r\n}\r\n'.encode())
    assert read_prisma_file(good).models[0].field("id").default == '"café"'


# ----------------------------------------------------------------------------------------------
# Errors: each says where (file:line:col) and what
# ----------------------------------------------------------------------------------------------

ERRORS = [
    (
        "modle User {\n  id Int @id\n}\n",
        "schema.prisma:1:1: unknown block 'modle' (did you mean 'model'?)",
    ),
    (
        "model User {\n  id Int @id\n",
        "schema.prisma:1:12: the '{' of model User is never closed",
    ),
    (
        "model User {\n  id Int @id\n\nenum Role {\n  A\n}\n",
        "schema.prisma:1:12: the '{' of model User is never closed (enum Role starts at line 4)",
    ),
    ("model User {\n}\n", "schema.prisma:1:7: model User has no fields"),
    ("view V {\n  // only a comment\n}\n", "schema.prisma:1:6: view V has no fields"),
    ("enum Role {\n}\n", "schema.prisma:1:6: enum Role has no values"),
    ("model A {\n  id Int @id\n}\n}\n", "schema.prisma:4:1: '}' closes no block"),
    (
        "model A {\n  id Int @id @default(autoincrement()\n}\n",
        "schema.prisma:2:22: '(' is never closed",
    ),
    (
        "model A {\n  id Int @id\n  @@index([id)\n}\n",
        "schema.prisma:3:14: '[' at line 3:11 is closed by ')'",
    ),
    (
        'model A {\n  id String @id @default("abc)\n}\n',
        "schema.prisma:2:26: string is never closed (a '\"' is missing on this line)",
    ),
    ("/* open\nmodel A {\n", "schema.prisma:1:1: '/*' comment is never closed"),
    ("model A {\n  id Int @id $\n}\n", "schema.prisma:2:14: unexpected character '$'"),
    ("model A {\n  id\n}\n", "schema.prisma:2:5: expected the type of field 'id', found the end of the line"),
    ("model A {\n  id Int @id 5\n}\n", "schema.prisma:2:14: unexpected '5'; expected the end of the line"),
    (
        "model A\n{\n  id Int @id\n}\n",
        "schema.prisma:1:8: expected '{' after model A, found the end of the line",
    ),
    (
        "model A {\n  id Strng @id\n}\n",
        "schema.prisma:2:6: field 'id': unknown type 'Strng' (did you mean 'String'?)",
    ),
    (
        "model A {\n  id Int @id\n  id String\n}\n",
        "schema.prisma:3:3: model A: field 'id' is already defined at line 2",
    ),
    (
        "model A {\n  id Int @id\n}\nenum A {\n  X\n}\n",
        "schema.prisma:4:6: 'A' is already defined (model at line 1)",
    ),
    (
        "model A {\n  id Int\n  @@id([id, nme])\n}\n",
        "schema.prisma:3:13: model A has no field 'nme'",
    ),
    (
        "model A {\n  a Int @id\n  b Int @id\n}\n",
        "schema.prisma:3:3: model A has more than one @id field; use @@id([a, b])",
    ),
    (
        "model A {\n  a Int @id\n  @@id([a])\n}\n",
        "schema.prisma:3:3: model A already has a primary key (@id at line 2)",
    ),
    (
        "model A {\n  id Int @id\n  @@map(42)\n}\n",
        "schema.prisma:3:9: @@map: 'name' must be a string, found '42'",
    ),
    (
        "model A {\n  id String @id @db.VarChar(0)\n}\n",
        "schema.prisma:2:17: field 'id': @db.VarChar: the length must be at least 1",
    ),
    (
        "model A {\n  id Int @id @db.VarChar(10)\n}\n",
        "schema.prisma:2:14: field 'id': @db.VarChar is for String fields, not Int",
    ),
    (
        "model A {\n  id DateTime @id @db.Timestamptz(7)\n}\n",
        "schema.prisma:2:19: field 'id': @db.Timestamptz: the precision of fractional seconds must be 0 to 6",
    ),
    (
        "model A {\n  id Decimal @id @db.Decimal(10)\n}\n",
        "schema.prisma:2:18: field 'id': @db.Decimal takes 0 or 2 arguments, not 1",
    ),
    (
        "model A {\n  id String @id @db.Varchar(10)\n}\n",
        "schema.prisma:2:17: field 'id': @db.Varchar is not a native type of Prisma's postgresql provider"
        " (did you mean 'VarChar'?)",
    ),
    (
        'datasource pg {\n  provider = "postgresql"\n}\nmodel A {\n  id String @id @db.Uuid\n}\n',
        "schema.prisma:5:17: field 'id': '@db.Uuid' does not name the datasource (native types are written @pg.Uuid)",
    ),
    (
        "model A {\n  id Int @id\n  b  B  @relation(fields: [bId], references: [id])\n}\n"
        "model B {\n  id Int @id\n  a A[]\n}\n",
        "schema.prisma:3:28: model A has no field 'bId'",
    ),
    (
        "model A {\n  id Int @id\n  bId Int\n  b  B  @relation(fields: [bId], references: [key])\n}\n"
        "model B {\n  id Int @id\n  a A[]\n}\n",
        "schema.prisma:4:47: model B has no field 'key'",
    ),
    (
        "type Address {\n  street String\n}\nmodel A {\n  id Int @id\n  home Address\n}\n",
        "schema.prisma:6:8: field 'home': composite type 'Address' exists only for MongoDB",
    ),
    (
        "model A {\n  id String[]? @id\n}\n",
        "schema.prisma:2:14: field 'id': a list cannot be optional ('[]?')",
    ),
    (
        "model A {\n  id Int @id @default\n}\n",
        "schema.prisma:2:14: field 'id': @default needs a value, like @default(0)",
    ),
    (
        'enum Role {\n  A\n  B @map("b")\n  A\n}\n',
        "schema.prisma:4:3: enum Role: value 'A' is already defined at line 2",
    ),
]


@pytest.mark.parametrize(("text", "message"), ERRORS, ids=[m.split(": ", 1)[1][:40] for _, m in ERRORS])
def test_errors_name_the_line_and_column(text, message):
    with pytest.raises(PrismaSchemaError) as err:
        parse_prisma(text)
    assert str(err.value) == message
    assert err.value.location is not None


def test_errors_name_the_file_given():
    with pytest.raises(PrismaSchemaError, match=r"^prisma/app\.prisma:2:1: unknown block 'modl'"):
        parse_prisma("\nmodl A {\n}\n", "prisma/app.prisma")


# ----------------------------------------------------------------------------------------------
# Attribute forms real projects use, and implicit many-to-many tables
# ----------------------------------------------------------------------------------------------


def test_a_single_field_may_be_given_without_brackets():
    schema = parse(
        """
        model T {
          id     Int @id
          userId Int
          code   Int
          @@index(userId)
          @@unique(fields: code, map: "t_code")
        }
        """
    )
    model = schema.model_named("T")
    assert model is not None
    assert [ix.fields for ix in model.indexes] == [("userId",)]
    assert [(u.fields, u.map) for u in model.uniques] == [(("code",), "t_code")]


def test_an_unknown_field_without_brackets_is_still_an_error():
    with pytest.raises(PrismaSchemaError, match=r"schema.prisma:5:11: model T has no field 'usr'"):
        parse(
            """
            model T {
              id     Int @id
              userId Int
              @@index(usr)
            }
            """
        )


def test_implicit_many_to_many_tables_are_named_as_prisma_names_them():
    schema = parse(
        """
        model User {
          id        Int     @id
          roles     Role[]
          followers User[]  @relation("Follows")
          following User[]  @relation("Follows")
          posts     Post[]
          mentor    User?   @relation("Mentoring", fields: [mentorId], references: [id])
          mentorId  Int?
          mentees   User[]  @relation("Mentoring")
        }
        model Role {
          id    String @id
          users User[]
        }
        model Post {
          id       Int  @id
          authorId Int
          author   User @relation(fields: [authorId], references: [id])
        }
        """
    )
    found = {(j.table, j.a.name, j.b.name) for j in implicit_many_to_many(schema)}
    # A is the model whose name sorts first; one-to-many relations (posts, mentees) have no table.
    assert found == {("_RoleToUser", "Role", "User"), ("_Follows", "User", "User")}


def test_sort_desc_is_read_for_indexes_uniques_and_field_attributes():
    schema = parse(
        """
        model Score {
          id      Int    @id(sort: Desc)
          slug    String @unique(sort: Desc)
          boardId Int
          points  Int    @map("pts")
          player  String

          @@unique([boardId, player(sort: Asc)])
          @@index([boardId, points(sort: Desc, length: 4)], map: "Score_best_idx")
        }
        """
    )
    model = schema.models[0]
    assert model.primary_key is not None and model.primary_key.descending == ("id",)
    assert [ix.descending for ix in model.uniques] == [("slug",), ()]
    assert model.indexes[0].descending == ("points",)
    # Prisma's DDL order knows each key's order, by column name.
    assert prisma_order(schema).indexes["Score"] == (
        (("slug", True),),
        (("boardId", False), ("pts", True)),
        (("boardId", False), ("player", False)),
    )
