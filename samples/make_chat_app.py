#!/usr/bin/env python3
"""Build a sample chat-app SQLite database, as a Prisma app would have written it.

The result looks like the SQLite file of an app that uses Prisma's native
``sqlite`` provider, after ``prisma migrate deploy`` and a few months of use:

* 22 app tables plus ``_prisma_migrations``, created with the DDL that Prisma
  Migrate writes for ``samples/chat_app.prisma``, migration by migration;
* values stored the way Prisma's SQLite connector stores them: DateTime as
  INTEGER milliseconds since the epoch, Boolean as 0/1, BigInt as INTEGER,
  Bytes as BLOB, Json as JSON text, Decimal as whatever SQLite's NUMERIC
  affinity makes of it (REAL, or INTEGER for whole numbers);
* the awkward values real data has: timestamps written as text by SQLite's
  CURRENT_TIMESTAMP default, BigInts above 2**53, empty strings next to NULLs,
  empty BLOBs, emoji and right-to-left text, a foreign-key cycle, ...

Usage::

    python samples/make_chat_app.py OUT.db [--users N] [--messages M] [--seed S] [--force]

Or from Python: ``build_chat_app(path, users=50, messages=2000, seed=1)``
returns the number of rows in every table.

The same arguments always give the same database: every random choice comes
from ``random.Random(seed)`` and every timestamp from a fixed base instant.
"""

import argparse
import contextlib
import datetime
import hashlib
import json
import os
import random
import sqlite3
import sys

DEFAULT_USERS = 50
DEFAULT_MESSAGES = 2_000
DEFAULT_SEED = 1

# Every timestamp is derived from this instant, never from the wall clock.
BASE_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z
DAY_MS = 86_400_000

# Timeline of the app's life, in days after BASE_MS.
SIGNUP_DAYS = 30  # users sign up during the first month
SETUP_END_DAY = 45  # devices, sessions, contacts and conversations by then
MESSAGE_DAYS = 180  # then messages flow for half a year

# Messages are generated and inserted in batches of this size, so memory stays
# flat however many messages are asked for.
MESSAGE_BATCH = 10_000

# Prisma >= 6.2 declares Json fields as JSONB on SQLite (a type name that gives
# the column NUMERIC affinity) and stores plain JSON text in them. This sample
# declares them TEXT; set "JSONB" to get exactly the DDL Prisma 6.19 writes.
JSON_COLUMN_TYPE = "TEXT"

INT64_MAX = 9_223_372_036_854_775_807
# 2**53 + 1: the first integer a JavaScript number (an IEEE double) cannot hold.
FIRST_UNSAFE_INTEGER = 9_007_199_254_740_993


# ---------------------------------------------------------------------------
# Schema: the SQL Prisma Migrate writes for samples/chat_app.prisma
# ---------------------------------------------------------------------------

# Created by Prisma's migration engine itself, before the first migration.
# Note the lowercase `current_timestamp` default.
PRISMA_MIGRATIONS_DDL = """\
CREATE TABLE "_prisma_migrations" (
    "id"                    TEXT PRIMARY KEY NOT NULL,
    "checksum"              TEXT NOT NULL,
    "finished_at"           DATETIME,
    "migration_name"        TEXT NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        DATETIME,
    "started_at"            DATETIME NOT NULL DEFAULT current_timestamp,
    "applied_steps_count"   INTEGER UNSIGNED NOT NULL DEFAULT 0
);"""

TABLES = {
    "User": """\
CREATE TABLE "User" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "email" TEXT NOT NULL,
    "username" TEXT NOT NULL,
    "displayName" TEXT,
    "phoneNumber" TEXT,
    "isActive" BOOLEAN NOT NULL DEFAULT true,
    "isBot" BOOLEAN NOT NULL DEFAULT false,
    "lastSeenAt" DATETIME,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL
);""",
    "Profile": """\
CREATE TABLE "Profile" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "userId" TEXT NOT NULL,
    "bio" TEXT,
    "avatarUrl" TEXT,
    "statusEmoji" TEXT,
    "website" TEXT,
    "birthday" DATETIME,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL,
    CONSTRAINT "Profile_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);""",
    "Session": """\
CREATE TABLE "Session" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "userId" TEXT NOT NULL,
    "tokenHash" TEXT NOT NULL,
    "userAgent" TEXT,
    "ipAddress" TEXT,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expiresAt" DATETIME NOT NULL,
    "revokedAt" DATETIME,
    CONSTRAINT "Session_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);""",
    "Device": """\
CREATE TABLE "Device" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "userId" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "platform" TEXT NOT NULL,
    "registrationId" INTEGER NOT NULL,
    "lastLatitude" REAL,
    "lastLongitude" REAL,
    "lastActiveAt" DATETIME,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "Device_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);""",
    "UserSettings": f"""\
CREATE TABLE "UserSettings" (
    "userId" TEXT NOT NULL PRIMARY KEY,
    "theme" TEXT NOT NULL DEFAULT 'system',
    "language" TEXT NOT NULL DEFAULT 'en',
    "notificationsEnabled" BOOLEAN NOT NULL DEFAULT true,
    "storageQuotaBytes" BIGINT NOT NULL DEFAULT 1073741824,
    "preferences" {JSON_COLUMN_TYPE} NOT NULL,
    "updatedAt" DATETIME NOT NULL,
    CONSTRAINT "UserSettings_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);""",
    "IdentityKey": """\
CREATE TABLE "IdentityKey" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "deviceId" TEXT NOT NULL,
    "publicKey" BLOB NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "IdentityKey_deviceId_fkey" FOREIGN KEY ("deviceId") REFERENCES "Device" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);""",
    "SignedPreKey": """\
CREATE TABLE "SignedPreKey" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "deviceId" TEXT NOT NULL,
    "keyId" INTEGER NOT NULL,
    "publicKey" BLOB NOT NULL,
    "signature" BLOB NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "SignedPreKey_deviceId_fkey" FOREIGN KEY ("deviceId") REFERENCES "Device" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);""",
    "OneTimePreKey": """\
CREATE TABLE "OneTimePreKey" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "deviceId" TEXT NOT NULL,
    "keyId" INTEGER NOT NULL,
    "publicKey" BLOB NOT NULL,
    "consumedAt" DATETIME,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "OneTimePreKey_deviceId_fkey" FOREIGN KEY ("deviceId") REFERENCES "Device" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);""",
    "Conversation": """\
CREATE TABLE "Conversation" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "kind" TEXT NOT NULL DEFAULT 'DIRECT',
    "title" TEXT,
    "description" TEXT,
    "avatar" BLOB,
    "createdById" TEXT NOT NULL,
    "lastMessageId" TEXT,
    "lastSequence" BIGINT NOT NULL DEFAULT 0,
    "isArchived" BOOLEAN NOT NULL DEFAULT false,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL,
    CONSTRAINT "Conversation_createdById_fkey" FOREIGN KEY ("createdById") REFERENCES "User" ("id") ON DELETE RESTRICT ON UPDATE CASCADE,
    CONSTRAINT "Conversation_lastMessageId_fkey" FOREIGN KEY ("lastMessageId") REFERENCES "Message" ("id") ON DELETE SET NULL ON UPDATE CASCADE
);""",
    "ConversationParticipant": """\
CREATE TABLE "ConversationParticipant" (
    "conversationId" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "role" TEXT NOT NULL DEFAULT 'MEMBER',
    "nickname" TEXT,
    "joinedAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "lastReadAt" DATETIME,
    "isMuted" BOOLEAN NOT NULL DEFAULT false,

    PRIMARY KEY ("conversationId", "userId"),
    CONSTRAINT "ConversationParticipant_conversationId_fkey" FOREIGN KEY ("conversationId") REFERENCES "Conversation" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "ConversationParticipant_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);""",
    "Message": """\
CREATE TABLE "Message" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "conversationId" TEXT NOT NULL,
    "senderId" TEXT NOT NULL,
    "replyToId" TEXT,
    "kind" TEXT NOT NULL DEFAULT 'TEXT',
    "body" TEXT,
    "sequence" BIGINT NOT NULL,
    "amount" DECIMAL,
    "currency" TEXT,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "editedAt" DATETIME,
    "deletedAt" DATETIME,
    CONSTRAINT "Message_conversationId_fkey" FOREIGN KEY ("conversationId") REFERENCES "Conversation" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "Message_senderId_fkey" FOREIGN KEY ("senderId") REFERENCES "User" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "Message_replyToId_fkey" FOREIGN KEY ("replyToId") REFERENCES "Message" ("id") ON DELETE SET NULL ON UPDATE CASCADE
);""",
    "MessageAttachment": """\
CREATE TABLE "MessageAttachment" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "messageId" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "fileName" TEXT NOT NULL,
    "mimeType" TEXT NOT NULL,
    "sizeBytes" BIGINT NOT NULL,
    "width" INTEGER,
    "height" INTEGER,
    "durationSeconds" REAL,
    "encryptionKey" BLOB NOT NULL,
    "thumbnail" BLOB,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "MessageAttachment_messageId_fkey" FOREIGN KEY ("messageId") REFERENCES "Message" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);""",
    "MessageReaction": """\
CREATE TABLE "MessageReaction" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "messageId" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "emoji" TEXT NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "MessageReaction_messageId_fkey" FOREIGN KEY ("messageId") REFERENCES "Message" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "MessageReaction_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);""",
    "MessageReceipt": """\
CREATE TABLE "MessageReceipt" (
    "messageId" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "deliveredAt" DATETIME NOT NULL,
    "readAt" DATETIME,

    PRIMARY KEY ("messageId", "userId"),
    CONSTRAINT "MessageReceipt_messageId_fkey" FOREIGN KEY ("messageId") REFERENCES "Message" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "MessageReceipt_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);""",
    "MessageEdit": """\
CREATE TABLE "MessageEdit" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "messageId" TEXT NOT NULL,
    "editorId" TEXT NOT NULL,
    "previousBody" TEXT NOT NULL,
    "editedAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "MessageEdit_messageId_fkey" FOREIGN KEY ("messageId") REFERENCES "Message" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "MessageEdit_editorId_fkey" FOREIGN KEY ("editorId") REFERENCES "User" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);""",
    "PinnedMessage": """\
CREATE TABLE "PinnedMessage" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "conversationId" TEXT NOT NULL,
    "messageId" TEXT NOT NULL,
    "pinnedById" TEXT,
    "pinnedAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "PinnedMessage_conversationId_fkey" FOREIGN KEY ("conversationId") REFERENCES "Conversation" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "PinnedMessage_messageId_fkey" FOREIGN KEY ("messageId") REFERENCES "Message" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "PinnedMessage_pinnedById_fkey" FOREIGN KEY ("pinnedById") REFERENCES "User" ("id") ON DELETE SET NULL ON UPDATE CASCADE
);""",
    "Invite": """\
CREATE TABLE "Invite" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "code" TEXT NOT NULL,
    "conversationId" TEXT NOT NULL,
    "createdById" TEXT NOT NULL,
    "maxUses" INTEGER,
    "useCount" INTEGER NOT NULL DEFAULT 0,
    "expiresAt" DATETIME,
    "isRevoked" BOOLEAN NOT NULL DEFAULT false,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "Invite_conversationId_fkey" FOREIGN KEY ("conversationId") REFERENCES "Conversation" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "Invite_createdById_fkey" FOREIGN KEY ("createdById") REFERENCES "User" ("id") ON DELETE RESTRICT ON UPDATE CASCADE
);""",
    "Contact": """\
CREATE TABLE "Contact" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "ownerId" TEXT NOT NULL,
    "contactId" TEXT NOT NULL,
    "alias" TEXT,
    "isFavorite" BOOLEAN NOT NULL DEFAULT false,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "Contact_ownerId_fkey" FOREIGN KEY ("ownerId") REFERENCES "User" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "Contact_contactId_fkey" FOREIGN KEY ("contactId") REFERENCES "User" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);""",
    "Block": """\
CREATE TABLE "Block" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "blockerId" TEXT NOT NULL,
    "blockedId" TEXT NOT NULL,
    "reason" TEXT,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "Block_blockerId_fkey" FOREIGN KEY ("blockerId") REFERENCES "User" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "Block_blockedId_fkey" FOREIGN KEY ("blockedId") REFERENCES "User" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);""",
    # Prisma renders every `Int @id` as INTEGER PRIMARY KEY AUTOINCREMENT. The
    # team edited this migration by hand (`prisma migrate dev --create-only`)
    # to drop AUTOINCREMENT: the id is then a plain alias of SQLite's rowid,
    # and no sqlite_sequence row tracks it.
    "Notification": f"""\
-- Edited by hand: no AUTOINCREMENT, ids are plain rowids.
CREATE TABLE "Notification" (
    "id" INTEGER NOT NULL PRIMARY KEY,
    "userId" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "payload" {JSON_COLUMN_TYPE} NOT NULL,
    "messageId" TEXT,
    "readAt" DATETIME,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "Notification_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "Notification_messageId_fkey" FOREIGN KEY ("messageId") REFERENCES "Message" ("id") ON DELETE SET NULL ON UPDATE CASCADE
);""",
    "push_subscriptions": """\
CREATE TABLE "push_subscriptions" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "user_id" TEXT NOT NULL,
    "device_id" TEXT,
    "endpoint" TEXT NOT NULL,
    "p256dh" BLOB NOT NULL,
    "auth" BLOB NOT NULL,
    "expires_at" DATETIME,
    "created_at" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "push_subscriptions_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "User" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "push_subscriptions_device_id_fkey" FOREIGN KEY ("device_id") REFERENCES "Device" ("id") ON DELETE SET NULL ON UPDATE CASCADE
);""",
    "AuditLog": f"""\
CREATE TABLE "AuditLog" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "actorId" TEXT,
    "action" TEXT NOT NULL,
    "targetType" TEXT,
    "targetId" TEXT,
    "details" {JSON_COLUMN_TYPE},
    "ipAddress" TEXT,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "AuditLog_actorId_fkey" FOREIGN KEY ("actorId") REFERENCES "User" ("id") ON DELETE SET NULL ON UPDATE CASCADE
);""",
}

INDEXES = {
    "User": (
        'CREATE UNIQUE INDEX "User_email_key" ON "User"("email");',
        'CREATE UNIQUE INDEX "User_username_key" ON "User"("username");',
        'CREATE UNIQUE INDEX "User_phoneNumber_key" ON "User"("phoneNumber");',
    ),
    "Profile": ('CREATE UNIQUE INDEX "Profile_userId_key" ON "Profile"("userId");',),
    "Session": (
        'CREATE UNIQUE INDEX "Session_tokenHash_key" ON "Session"("tokenHash");',
        'CREATE INDEX "Session_userId_idx" ON "Session"("userId");',
        'CREATE INDEX "Session_expiresAt_idx" ON "Session"("expiresAt");',
    ),
    "Device": ('CREATE UNIQUE INDEX "Device_userId_name_key" ON "Device"("userId", "name");',),
    "IdentityKey": ('CREATE UNIQUE INDEX "IdentityKey_deviceId_key" ON "IdentityKey"("deviceId");',),
    "SignedPreKey": (
        'CREATE UNIQUE INDEX "SignedPreKey_deviceId_keyId_key" ON "SignedPreKey"("deviceId", "keyId");',
    ),
    "OneTimePreKey": (
        'CREATE UNIQUE INDEX "OneTimePreKey_deviceId_keyId_key" ON "OneTimePreKey"("deviceId", "keyId");',
    ),
    "Conversation": (
        'CREATE UNIQUE INDEX "Conversation_lastMessageId_key" ON "Conversation"("lastMessageId");',
        'CREATE INDEX "Conversation_updatedAt_idx" ON "Conversation"("updatedAt");',
        'CREATE INDEX "Conversation_createdById_idx" ON "Conversation"("createdById");',
    ),
    "ConversationParticipant": (
        'CREATE INDEX "ConversationParticipant_userId_idx" ON "ConversationParticipant"("userId");',
    ),
    "Message": (
        'CREATE INDEX "Message_conversationId_createdAt_idx" ON "Message"("conversationId", "createdAt");',
        'CREATE INDEX "Message_senderId_idx" ON "Message"("senderId");',
        'CREATE INDEX "Message_replyToId_idx" ON "Message"("replyToId");',
        'CREATE UNIQUE INDEX "Message_conversationId_sequence_key" ON "Message"("conversationId", "sequence");',
    ),
    "MessageAttachment": (
        'CREATE INDEX "MessageAttachment_messageId_idx" ON "MessageAttachment"("messageId");',
    ),
    "MessageReaction": (
        'CREATE INDEX "MessageReaction_userId_idx" ON "MessageReaction"("userId");',
        'CREATE UNIQUE INDEX "MessageReaction_messageId_userId_emoji_key" '
        'ON "MessageReaction"("messageId", "userId", "emoji");',
    ),
    "MessageReceipt": (
        'CREATE INDEX "MessageReceipt_userId_readAt_idx" ON "MessageReceipt"("userId", "readAt");',
    ),
    "MessageEdit": (
        'CREATE INDEX "MessageEdit_messageId_editedAt_idx" ON "MessageEdit"("messageId", "editedAt");',
    ),
    "PinnedMessage": (
        'CREATE UNIQUE INDEX "PinnedMessage_conversationId_messageId_key" '
        'ON "PinnedMessage"("conversationId", "messageId");',
    ),
    "Invite": (
        'CREATE UNIQUE INDEX "Invite_code_key" ON "Invite"("code");',
        'CREATE INDEX "Invite_conversationId_idx" ON "Invite"("conversationId");',
    ),
    "Contact": (
        'CREATE INDEX "Contact_contactId_idx" ON "Contact"("contactId");',
        'CREATE UNIQUE INDEX "Contact_ownerId_contactId_key" ON "Contact"("ownerId", "contactId");',
    ),
    "Block": (
        'CREATE INDEX "Block_blockedId_idx" ON "Block"("blockedId");',
        'CREATE UNIQUE INDEX "Block_blockerId_blockedId_key" ON "Block"("blockerId", "blockedId");',
    ),
    "Notification": (
        'CREATE INDEX "Notification_userId_readAt_idx" ON "Notification"("userId", "readAt");',
        'CREATE INDEX "Notification_messageId_idx" ON "Notification"("messageId");',
    ),
    "push_subscriptions": (
        'CREATE UNIQUE INDEX "push_subscriptions_endpoint_key" ON "push_subscriptions"("endpoint");',
        'CREATE INDEX "push_subscriptions_user_id_idx" ON "push_subscriptions"("user_id");',
    ),
    "AuditLog": (
        'CREATE INDEX "AuditLog_actorId_createdAt_idx" ON "AuditLog"("actorId", "createdAt");',
        'CREATE INDEX "AuditLog_targetType_targetId_idx" ON "AuditLog"("targetType", "targetId");',
    ),
}

# fmt: off
# The app grew over three migrations; each creates the tables listed, in
# schema order, exactly as `prisma migrate dev` lays out a migration.sql.
MIGRATIONS = (
    (
        "20241202093000_init",
        (
            "User", "Profile", "Session", "Device", "UserSettings", "Conversation",
            "ConversationParticipant", "Message", "MessageAttachment", "MessageReaction",
            "MessageReceipt", "Invite", "Contact", "Block", "Notification", "AuditLog",
        ),
    ),
    ("20241209141500_e2ee_keys", ("IdentityKey", "SignedPreKey", "OneTimePreKey")),
    ("20241216101500_pins_edits_push", ("MessageEdit", "PinnedMessage", "push_subscriptions")),
)
# fmt: on


def migration_sql(tables):
    """The migration.sql Prisma writes to create `tables`: tables first, then indexes."""
    blocks = [f"-- CreateTable\n{TABLES[t]}" for t in tables]
    blocks += [f"-- CreateIndex\n{index}" for t in tables for index in INDEXES.get(t, ())]
    return "\n\n".join(blocks) + "\n"


# ---------------------------------------------------------------------------
# Pools of values. Deliberately awkward: emoji (some made of several code
# points), CJK, right-to-left scripts, combining marks, quotes, backslashes.
# ---------------------------------------------------------------------------

# fmt: off
DISPLAY_NAMES = (
    "Alice", "Bob", "Chloé", "Dmitri Ivanov", "Ólafur", "王小明", "佐藤 花子", "김민준",
    "مريم الحسن", "יעל כהן", "Zoe\u0308 Martin",  # ë as e + COMBINING DIAERESIS
    "Nguyễn Văn An", "Ævar", "Seán O'Brien", "Renée", "Jürgen Groß", "Ἀριστοτέλης",
    "👩‍💻 Priya", "Kwame Mensah", "Saoirse", "ﷺ", "Mx. Robin 🏳️‍🌈",
)
HANDLES = (
    "alice", "bob", "chloe", "dmitri", "olafur", "xiaoming", "hanako", "minjun", "maryam",
    "yael", "zoe", "an", "aevar", "sean", "renee", "juergen", "aristotle", "priya", "kwame",
    "saoirse", "sam", "robin",
)
BIOS = (
    "Coffee first. ☕",
    "It's \"complicated\" — see C:\\Users\\me\\bio.txt",
    "Building things at night 🌙",
    "東京在住のエンジニア",
    "أحب القراءة والسفر",
    "",
    "Line one\nLine two",
    "100% not a bot",
)
MESSAGE_BODIES = (
    "hey!",
    "Are we still on for lunch?",
    "lol 😂",
    "👍",
    "I'll be there in 5",
    "It's in C:\\Users\\bob\\Desktop\\notes.txt — don't ask",
    "今日は寿司を食べました 🍣",
    "你好，世界",
    "مرحبا، كيف حالك؟",
    "שלום! מה שלומך?",
    "Zoe\u0308 said the cafe\u0301 was closed",  # combining marks, not precomposed
    "👨‍👩‍👧‍👦 family dinner at 7",
    "🇯🇵 ✈️ 🇺🇸",
    "Line one\nLine two\n\tindented",
    'SELECT * FROM "User"; -- just kidding',
    "50% off?! 🤯",
    "ok",
    "Can you send me the deck before the call?",
    "Sure, give me a sec",
    "Happy birthday!!! 🎂🎉",
    "नमस्ते, कैसे हो?",
    "Ça marche, à demain !",
    "Привет! Как дела?",
    "Did you see the game last night?",
    "brb",
    "Thanks, that's perfect 🙏",
    "The build is green again ✅",
    "Let me check and get back to you",
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 20,
)
PREVIOUS_BODIES = ("teh build is green", "on my way", "Are we stil on for lunch?", "see you at 6", "👍👍")
EMOJIS = ("👍", "❤️", "😂", "🎉", "😮", "😢", "🙏", "🔥", "👍🏽", "🏳️‍🌈", "👨‍👩‍👧‍👦", "+1")
GROUP_TITLES = (
    "Weekend hike 🥾", "Family 👨‍👩‍👧", "Book club 📚", "プロジェクトX", "فريق العمل", "Lunch crew",
    "O'Reilly fans", "Back\\slash & co", "Ops on-call 🚨", "Пятничный чат",
)
ALIASES = ("Mom", "Boss 👔", "Dr. Who", "Jo (work)", "لينا", "大哥", "", "Zoe\u0308")
DEVICE_MODELS = (
    ("iPhone 15 Pro", "ios"), ("iPad mini", "ios"), ("Pixel 8", "android"), ("Galaxy S24", "android"),
    ("Firefox on Linux", "web"), ("Chrome on Windows", "web"), ("MacBook Air", "desktop"),
    ("José's ThinkPad", "desktop"),
)
USER_AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15",
    "ChatApp/3.2.1 (Android 14; Pixel 8)",
    "ChatApp/3.2.0 (iOS 17.5; iPhone15,3)",
    None,
)
LANGUAGES = ("en", "fr", "ja", "ar", "he", "zh-Hans", "pt-BR", "de")
TIMEZONES = ("Europe/Paris", "Asia/Tokyo", "America/New_York", "Asia/Kolkata", "America/St_Johns")
ATTACHMENTS = {
    # kind: ((file name, MIME type), ...)
    "IMAGE": (("IMG_0042.HEIC", "image/heic"), ("photo.jpg", "image/jpeg"),
              ("Screenshot 2025-03-01 at 10.00.00.png", "image/png"), ("猫.jpg", "image/jpeg")),
    "FILE": (("report Q1.pdf", "application/pdf"), ("Bob's notes.txt", "text/plain"),
             ("archive.tar.gz", "application/gzip"), ("C:\\temp\\data.csv", "text/csv")),
    "VOICE": (("voice-message.m4a", "audio/mp4"),),
}
# Decimal amounts as the app sends them; SQLite's NUMERIC affinity stores '19.99'
# as REAL 19.99 and '20.00' as INTEGER 20.
PAYMENT_AMOUNTS = ("19.99", "20.00", "0.10", "1234.50", "5", "0.01", "99999.99")
CURRENCIES = ("USD", "EUR", "JPY", "GBP")
# fmt: on


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------

_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_B36_PAIRS = tuple(a + b for a in _B36 for b in _B36)  # two base-36 digits at a time


def base36(n, width):
    """`n` in lowercase base 36, zero-padded to `width` (an even number) digits."""
    digits = []
    for _ in range(width // 2):
        n, pair = divmod(n, 1296)
        digits.append(_B36_PAIRS[pair])
    return "".join(reversed(digits))


class CuidFactory:
    """Ids shaped like Prisma's @default(cuid()): 25 characters of base 36.

    Layout as in cuid v1: 'c', creation time in ms (8), a counter (4), a host
    fingerprint (4), random (8). Embedding the row's own creation time keeps
    ids roughly in time order, as real cuids are.
    """

    def __init__(self, rng, seed):
        self._rng = rng
        self._counter = 0
        self._fingerprint = hashlib.sha256(f"chat-app:{seed}".encode()).hexdigest()[:4]

    def __call__(self, ms):
        self._counter = (self._counter + 1) % 1_679_616  # 36**4
        return (
            "c"
            + base36(ms, 8)
            + base36(self._counter, 4)
            + self._fingerprint
            + base36(self._rng.getrandbits(41), 8)  # 2**41 < 36**8
        )


def uuid4(rng):
    """A version-4 UUID string drawn from `rng` (the uuid module would use os.urandom)."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def sqlite_timestamp_text(ms):
    """What SQLite's CURRENT_TIMESTAMP would have written at instant `ms`."""
    return datetime.datetime.fromtimestamp(ms // 1000, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


def epoch_ms(year, month, day):
    return int(datetime.datetime(year, month, day, tzinfo=datetime.UTC).timestamp()) * 1000


def to_json(value):
    """JSON text as Prisma writes it (JavaScript's JSON.stringify: compact, raw UTF-8)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def insert_sql(table, columns):
    """INSERT for `table`; `columns` is a space-separated list of column names."""
    names = columns.split()
    quoted = ", ".join(f'"{name}"' for name in names)
    return f'INSERT INTO "{table}" ({quoted}) VALUES ({", ".join("?" * len(names))})'


INSERT = {
    "User": insert_sql(
        "User",
        "id email username displayName phoneNumber isActive isBot lastSeenAt createdAt updatedAt",
    ),
    "Profile": insert_sql(
        "Profile", "id userId bio avatarUrl statusEmoji website birthday createdAt updatedAt"
    ),
    "UserSettings": insert_sql(
        "UserSettings",
        "userId theme language notificationsEnabled storageQuotaBytes preferences updatedAt",
    ),
    "Session": insert_sql("Session", "id userId tokenHash userAgent ipAddress createdAt expiresAt revokedAt"),
    "Device": insert_sql(
        "Device",
        "id userId name platform registrationId lastLatitude lastLongitude lastActiveAt createdAt",
    ),
    "IdentityKey": insert_sql("IdentityKey", "id deviceId publicKey createdAt"),
    "SignedPreKey": insert_sql("SignedPreKey", "id deviceId keyId publicKey signature createdAt"),
    # No id: SQLite assigns it (AUTOINCREMENT), as it does for a Prisma app.
    "OneTimePreKey": insert_sql("OneTimePreKey", "deviceId keyId publicKey consumedAt createdAt"),
    "Contact": insert_sql("Contact", "id ownerId contactId alias isFavorite createdAt"),
    "Block": insert_sql("Block", "id blockerId blockedId reason createdAt"),
    "Conversation": insert_sql(
        "Conversation",
        "id kind title description avatar createdById lastMessageId lastSequence isArchived"
        " createdAt updatedAt",
    ),
    "ConversationParticipant": insert_sql(
        "ConversationParticipant", "conversationId userId role nickname joinedAt lastReadAt isMuted"
    ),
    "Invite": insert_sql(
        "Invite",
        "id code conversationId createdById maxUses useCount expiresAt isRevoked createdAt",
    ),
    "push_subscriptions": insert_sql(
        "push_subscriptions", "id user_id device_id endpoint p256dh auth expires_at created_at"
    ),
    "Message": insert_sql(
        "Message",
        "id conversationId senderId replyToId kind body sequence amount currency createdAt"
        " editedAt deletedAt",
    ),
    "MessageAttachment": insert_sql(
        "MessageAttachment",
        "id messageId kind fileName mimeType sizeBytes width height durationSeconds encryptionKey"
        " thumbnail createdAt",
    ),
    "MessageReaction": insert_sql("MessageReaction", "id messageId userId emoji createdAt"),
    "MessageReceipt": insert_sql("MessageReceipt", "messageId userId deliveredAt readAt"),
    "MessageEdit": insert_sql("MessageEdit", "id messageId editorId previousBody editedAt"),
    "PinnedMessage": insert_sql("PinnedMessage", "id conversationId messageId pinnedById pinnedAt"),
    # No id: the rowid alias is assigned by SQLite.
    "Notification": insert_sql("Notification", "userId type payload messageId readAt createdAt"),
    "AuditLog": insert_sql("AuditLog", "actorId action targetType targetId details ipAddress createdAt"),
    "_prisma_migrations": insert_sql(
        "_prisma_migrations",
        "id checksum finished_at migration_name logs rolled_back_at started_at applied_steps_count",
    ),
}


class MessageBatch:
    """Rows for one batch of messages and everything hanging off them."""

    TABLES = (
        "Message",
        "MessageAttachment",
        "MessageReaction",
        "MessageReceipt",
        "MessageEdit",
        "PinnedMessage",
        "Notification",
        "AuditLog",
    )

    def __init__(self):
        self.rows = {table: [] for table in self.TABLES}

    def flush(self, db):
        # Messages first: a Prisma app inserts a message before its children.
        for table in self.TABLES:
            db.executemany(INSERT[table], self.rows[table])


# ---------------------------------------------------------------------------
# The builder
# ---------------------------------------------------------------------------


class ChatAppBuilder:
    """Fills an empty database, table by table, in the order the app lived.

    Each `insert_*` method writes one table (or a table and its close
    dependents) and remembers what later tables need to point back at.
    """

    def __init__(self, db, users, messages, seed):
        self.db = db
        self.rng = random.Random(seed)
        self.cuid = CuidFactory(self.rng, seed)
        self.n_users = users
        self.n_messages = messages
        # users, by index
        self.user_ids = []
        self.user_created = []  # epoch ms (also for users whose createdAt is stored as text)
        # devices: (id, user index, platform, created ms)
        self.devices = []
        # conversations, by index
        self.conv_ids = []
        self.conv_members = []  # list of user indices; the creator first
        self.conv_is_group = []
        self.conv_created = []  # epoch ms
        self.conv_titles = []
        self.conv_seq = []  # last message sequence number
        self.conv_last_message = []  # (id, created ms) of the last message, or None
        self.conv_cum_weights = []  # for picking which conversation a message goes to
        # AuditLog rows written before the messages, sorted by time before insert
        self.early_audit = []

    # -- helpers -------------------------------------------------------------

    def pick(self, values):
        return values[int(self.rng.random() * len(values))]

    def chance(self, probability):
        return self.rng.random() < probability

    def ms_between(self, start_ms, end_ms):
        """A random instant in [start, end), with (almost always) non-zero milliseconds."""
        return start_ms + int(self.rng.random() * max(1, end_ms - start_ms))

    def day(self, n):
        return BASE_MS + n * DAY_MS

    def audit(self, actor, action, target_type, target_id, details, ms, ip=None):
        details_json = None if details is None else to_json(details)
        return (actor, action, target_type, target_id, details_json, ip, ms)

    def ip_address(self):
        if self.chance(0.3):
            return f"2001:db8:{self.rng.getrandbits(16):x}::{self.rng.getrandbits(16):x}"
        return f"203.0.113.{self.rng.randrange(1, 255)}"

    # -- schema ----------------------------------------------------------------

    def create_schema(self):
        """Create _prisma_migrations, then apply each migration and record it, as Prisma does.

        The migration engine sets started_at and finished_at itself, and like
        any DateTime on SQLite they are stored as epoch milliseconds: the
        column's `current_timestamp` default is never used.
        """
        self.db.execute(PRISMA_MIGRATIONS_DDL)
        clock = epoch_ms(2024, 12, 2) + 9 * 3_600_000
        for name, tables in MIGRATIONS:
            sql = migration_sql(tables)
            checksum = hashlib.sha256(sql.encode()).hexdigest()  # sha256 of migration.sql
            if name.endswith("_pins_edits_push"):
                clock = self.record_failed_attempt(name, checksum, clock)
            self.db.executescript(sql)
            finished = clock + self.rng.randrange(20, 400)
            self.db.execute(
                INSERT["_prisma_migrations"],
                (uuid4(self.rng), checksum, finished, name, None, None, clock, 1),
            )
            clock += 7 * DAY_MS + self.rng.randrange(DAY_MS)

    def record_failed_attempt(self, name, checksum, clock):
        """A first deploy of `name` that failed and was marked rolled back.

        After `prisma migrate resolve --rolled-back`, the failed row stays and
        the retry gets a second row with the same migration_name.
        """
        logs = (
            "Error: P3018\n\nA migration failed to apply. New migrations cannot be applied "
            "before the error is recovered from.\n\nMigration name: " + name + "\n\n"
            "Database error code: 5\n\nDatabase error:\ndatabase is locked"
        )
        rolled_back = clock + 3_600_000 + self.rng.randrange(1000)
        self.db.execute(
            INSERT["_prisma_migrations"], (uuid4(self.rng), checksum, None, name, logs, rolled_back, clock, 0)
        )
        return rolled_back + 600_000 + self.rng.randrange(1000)

    # -- accounts --------------------------------------------------------------

    def insert_users(self):
        rows = []
        signup_span = SIGNUP_DAYS * DAY_MS
        for i in range(self.n_users):
            created = BASE_MS + i * signup_span // self.n_users + self.rng.randrange(60_000, 3_600_000)
            user_id = self.cuid(created)
            self.user_ids.append(user_id)
            self.user_created.append(created)
            handle = f"{self.pick(HANDLES)}{i}"
            rows.append(
                (
                    user_id,
                    f"{handle}@example.com",
                    handle,
                    self.display_name(i),
                    f"+1555{i:07d}" if self.chance(0.4) else None,
                    not self.chance(0.03),  # isActive
                    i == 2,  # isBot: user 2 is the app's bot
                    self.ms_between(self.day(SETUP_END_DAY), self.day(SETUP_END_DAY + MESSAGE_DAYS))
                    if self.chance(0.85)
                    else None,
                    self.created_at_value(created, force_text=(i == 1)),
                    created + self.rng.randrange(0, 60 * DAY_MS),
                )
            )
            self.early_audit.append(
                self.audit(
                    user_id,
                    "user.signup",
                    "User",
                    user_id,
                    {"method": self.pick(("email", "phone", "invite")), "locale": self.pick(LANGUAGES)},
                    created,
                    self.ip_address(),
                )
            )
        self.db.executemany(INSERT["User"], rows)

    def display_name(self, i):
        if i == 2:
            return "Chat Bot 🤖"
        if i == 1:
            return ""  # an empty display name, not a missing one
        return None if self.chance(0.1) else self.pick(DISPLAY_NAMES)

    def created_at_value(self, ms, force_text=False):
        """Prisma writes epoch ms. Rows inserted by raw SQL (a seed script, an
        admin tool) that left createdAt to the column's DEFAULT CURRENT_TIMESTAMP
        hold text instead; about 5% of rows here look like that."""
        if force_text or self.chance(0.05):
            return sqlite_timestamp_text(ms)
        return ms

    def insert_profiles(self):
        rows = []
        for i, user_id in enumerate(self.user_ids):
            if i > 3 and self.chance(0.1):
                continue  # Profile is optional (User.profile Profile?)
            created = self.user_created[i] + self.rng.randrange(1000, 600_000)
            rows.append(
                (
                    self.cuid(created),
                    user_id,
                    self.pick(BIOS) if self.chance(0.8) else None,
                    f"https://cdn.example.com/avatars/{user_id}.png" if self.chance(0.6) else None,
                    self.pick(EMOJIS) if self.chance(0.3) else None,
                    self.pick(("https://bücher.example/", "https://example.com/~me", None)),
                    self.birthday(i),
                    created,
                    created + self.rng.randrange(0, 30 * DAY_MS),
                )
            )
        self.db.executemany(INSERT["Profile"], rows)

    def birthday(self, i):
        """Midnight UTC; birthdays before 1970 are negative epoch milliseconds."""
        if i == 0:
            return epoch_ms(1969, 7, 20)
        if self.chance(0.3):
            return None
        return epoch_ms(self.rng.randrange(1950, 2007), self.rng.randrange(1, 13), self.rng.randrange(1, 29))

    def insert_settings(self):
        rows = []
        for i, user_id in enumerate(self.user_ids):
            rows.append(
                (
                    user_id,
                    self.pick(("system", "light", "dark")),
                    self.pick(LANGUAGES),
                    not self.chance(0.1),
                    self.storage_quota(i),
                    self.preferences(i),
                    self.user_created[i] + self.rng.randrange(0, 40 * DAY_MS),
                )
            )
        self.db.executemany(INSERT["UserSettings"], rows)

    def storage_quota(self, i):
        if i in (0, 2):
            return INT64_MAX  # "unlimited" for the admin and the bot
        if self.chance(0.1):
            return 10 * 1024**3  # premium: 10 GiB, above 2**32
        return 1024**3  # the column default

    def preferences(self, i):
        if i == 2:
            return "{}"
        return to_json(
            {
                "notifications": {
                    "directMessages": True,
                    "groups": self.chance(0.7),
                    "quietHours": {
                        "enabled": self.chance(0.3),
                        "start": "22:00",
                        "end": "07:00",
                        "timeZone": self.pick(TIMEZONES),
                    },
                },
                "privacy": {
                    "readReceipts": self.chance(0.8),
                    "lastSeen": self.pick(("everyone", "contacts", "nobody")),
                },
                "chat": {
                    "fontScale": self.pick((0.9, 1, 1.25)),
                    "enterToSends": self.chance(0.5),
                    "quickReactions": self.rng.sample(EMOJIS, 3),
                },
                "signature": self.pick((None, "— envoyé de mon 📱", "Отправлено с телефона", "")),
            }
        )

    def insert_sessions(self):
        rows = []
        for i, user_id in enumerate(self.user_ids):
            for n in range(self.rng.randrange(1, 4)):
                created = self.ms_between(self.user_created[i], self.day(SETUP_END_DAY))
                ip = self.ip_address()
                user_agent = self.pick(USER_AGENTS)
                token = f"{i}:{n}:{self.rng.getrandbits(128)}".encode()
                rows.append(
                    (
                        self.cuid(created),
                        user_id,
                        hashlib.sha256(token).hexdigest(),
                        user_agent,
                        ip,
                        self.created_at_value(created, force_text=(i == 0 and n == 0)),
                        created + 30 * DAY_MS,
                        created + self.rng.randrange(DAY_MS, 20 * DAY_MS) if self.chance(0.2) else None,
                    )
                )
                self.early_audit.append(
                    self.audit(
                        user_id,
                        "session.create",
                        "Session",
                        rows[-1][0],
                        {
                            "userAgent": user_agent,
                            "geo": {
                                "country": self.pick(("FR", "JP", "US", "IN")),
                                "city": self.pick(("Paris", "東京", "New York")),
                            },
                        },
                        created,
                        ip,
                    )
                )
        self.db.executemany(INSERT["Session"], rows)

    # -- devices and end-to-end encryption keys --------------------------------

    def insert_devices(self):
        rows = []
        for i, user_id in enumerate(self.user_ids):
            count = 2 if self.chance(0.4) else 1
            for name, platform in self.rng.sample(DEVICE_MODELS, count):
                created = self.ms_between(self.user_created[i], self.day(SETUP_END_DAY))
                device_id = self.cuid(created)
                latitude, longitude = self.location(len(self.devices))
                rows.append(
                    (
                        device_id,
                        user_id,
                        name,
                        platform,
                        self.rng.randrange(1, 16_380),
                        latitude,
                        longitude,
                        self.ms_between(created, self.day(SETUP_END_DAY + MESSAGE_DAYS)),
                        created,
                    )
                )
                self.devices.append((device_id, i, platform, created))
        self.db.executemany(INSERT["Device"], rows)

    def location(self, device_index):
        if device_index == 0:
            return 0.1 + 0.2, 2.3522  # latitude 0.30000000000000004, not 0.3
        if self.chance(0.25):
            return None, None
        return self.rng.uniform(-90, 90), self.rng.uniform(-180, 180)

    def insert_device_keys(self):
        identity, signed, one_time = [], [], []
        for n, (device_id, _user, _platform, created) in enumerate(self.devices):
            identity.append((self.cuid(created), device_id, self.identity_key(n), created))
            for key_id in range(1, self.rng.randrange(2, 4)):
                signed.append(
                    (
                        self.cuid(created),
                        device_id,
                        key_id,
                        self.rng.randbytes(32),
                        self.rng.randbytes(64),
                        created + key_id * DAY_MS,
                    )
                )
            for key_id in range(100, 105):
                consumed = self.ms_between(created, self.day(SETUP_END_DAY)) if self.chance(0.3) else None
                one_time.append((device_id, key_id, self.rng.randbytes(32), consumed, created))
        self.db.executemany(INSERT["IdentityKey"], identity)
        self.db.executemany(INSERT["SignedPreKey"], signed)
        self.db.executemany(INSERT["OneTimePreKey"], one_time)

    def identity_key(self, device_index):
        """32 random bytes; the first device's key starts with 0x00 and ends with 0xff."""
        if device_index == 0:
            return b"\x00" + self.rng.randbytes(30) + b"\xff"
        return self.rng.randbytes(32)

    def purge_consumed_prekeys(self):
        """The server deletes one-time prekeys it has handed out. Deleting the
        newest row too leaves sqlite_sequence ahead of max(id), as in a live
        database: the next key gets an id that was never seen in the table."""
        self.db.execute(
            'DELETE FROM "OneTimePreKey" WHERE ("consumedAt" IS NOT NULL AND "id" % 2 = 0)'
            ' OR "id" = (SELECT max("id") FROM "OneTimePreKey")'
        )

    # -- social graph ----------------------------------------------------------

    def insert_contacts_and_blocks(self):
        contacts, notifications = [], []
        for i, user_id in enumerate(self.user_ids):
            others = [j for j in self.rng.sample(range(self.n_users), min(self.n_users, 6)) if j != i]
            for j in others[: self.rng.randrange(0, 6)]:
                created = self.ms_between(self.day(SIGNUP_DAYS), self.day(SETUP_END_DAY))
                contacts.append(
                    (
                        self.cuid(created),
                        user_id,
                        self.user_ids[j],
                        self.pick(ALIASES) if self.chance(0.2) else None,
                        self.chance(0.1),
                        created,
                    )
                )
                if self.chance(0.5):
                    payload = {"type": "contact.added", "by": {"id": user_id, "displayName": None}}
                    notifications.append(
                        (
                            self.user_ids[j],
                            "CONTACT_ADDED",
                            to_json(payload),
                            None,
                            created + 5_000 if self.chance(0.7) else None,
                            created,
                        )
                    )
        self.db.executemany(INSERT["Contact"], contacts)
        self.db.executemany(INSERT["Notification"], notifications)

        blocks, seen = [], set()
        for _ in range(self.n_users // 10 + 1):
            blocker, blocked = self.rng.sample(range(self.n_users), 2)
            if (blocker, blocked) in seen:
                continue
            seen.add((blocker, blocked))
            created = self.ms_between(self.day(SIGNUP_DAYS), self.day(SETUP_END_DAY))
            blocks.append(
                (
                    self.cuid(created),
                    self.user_ids[blocker],
                    self.user_ids[blocked],
                    self.pick(("spam", "harassment", None, "It's personal \\o/")),
                    created,
                )
            )
        self.db.executemany(INSERT["Block"], blocks)

    # -- conversations ---------------------------------------------------------

    def insert_conversations(self):
        """Group chats and one-to-one chats, with their participants.

        Conversation 0 is "General", a group with everyone in it. Its history
        was imported from the previous chat server, whose sequence numbers were
        64-bit snowflakes: they start at 2**53 + 1, past what a JavaScript
        number holds exactly.
        """
        plans = [(list(range(self.n_users)), True)]  # (members, is_group); the creator first
        plans += [(list(pair), False) for pair in self.direct_pairs()]
        plans += [(self.group_members(), True) for _ in range(self.n_users // 5)]

        conversations, participants = [], []
        for c, (members, is_group) in enumerate(plans):
            created = self.ms_between(self.day(SIGNUP_DAYS), self.day(SETUP_END_DAY))
            conv_id = self.cuid(created)
            sequence = FIRST_UNSAFE_INTEGER - 1 if c == 0 else 0
            conversations.append(self.conversation_row(c, conv_id, members[0], is_group, sequence, created))
            participants += self.participant_rows(conv_id, members, is_group, created)
            self.conv_ids.append(conv_id)
            self.conv_members.append(members)
            self.conv_is_group.append(is_group)
            self.conv_created.append(created)
            self.conv_titles.append(conversations[-1][2])
            self.conv_seq.append(sequence)
            self.conv_last_message.append(None)
        self.db.executemany(INSERT["Conversation"], conversations)
        self.db.executemany(INSERT["ConversationParticipant"], participants)
        self.set_traffic_weights()

    def direct_pairs(self):
        """Distinct pairs of users who chat one to one: about 3 pairs per 4 users."""
        wanted = min(self.n_users * (self.n_users - 1) // 2, max(1, self.n_users * 3 // 4))
        pairs, seen = [], set()
        while len(pairs) < wanted:
            a, b = self.rng.sample(range(self.n_users), 2)
            if (min(a, b), max(a, b)) not in seen:
                seen.add((min(a, b), max(a, b)))
                pairs.append((a, b))
        return pairs

    def group_members(self):
        size = self.rng.randrange(3, min(self.n_users, 30) + 1) if self.n_users > 3 else self.n_users
        return self.rng.sample(range(self.n_users), size)

    def conversation_row(self, c, conv_id, creator, is_group, sequence, created):
        if not is_group:
            title = description = avatar = None
        else:
            title = "General 💬" if c == 0 else ("" if self.chance(0.1) else self.pick(GROUP_TITLES))
            description = self.pick(BIOS) if self.chance(0.5) else None
            avatar = b"\x89PNG\r\n\x1a\n" + self.rng.randbytes(24) if self.chance(0.3) else None
        # lastMessageId, lastSequence and updatedAt are set once the messages exist.
        return (
            conv_id,
            "GROUP" if is_group else "DIRECT",
            title,
            description,
            avatar,
            self.user_ids[creator],
            None,
            sequence,
            self.chance(0.05),
            created,
            created,
        )

    def participant_rows(self, conv_id, members, is_group, created):
        rows = []
        for k, user in enumerate(members):
            if not is_group:
                role = "MEMBER"
            else:
                role = "OWNER" if k == 0 else ("ADMIN" if self.chance(0.1) else "MEMBER")
            rows.append(
                (
                    conv_id,
                    self.user_ids[user],
                    role,
                    self.pick(ALIASES) if self.chance(0.05) else None,
                    created if k == 0 else created + self.rng.randrange(1000, DAY_MS),
                    self.ms_between(self.day(SETUP_END_DAY), self.day(SETUP_END_DAY + MESSAGE_DAYS))
                    if self.chance(0.7)
                    else None,
                    self.chance(0.1),
                )
            )
        return rows

    def set_traffic_weights(self):
        """A few conversations carry most messages (Zipf-like); General the most."""
        ranks = list(range(1, len(self.conv_ids)))
        self.rng.shuffle(ranks)
        total = 0.0
        for rank in [0, *ranks]:
            total += 1.0 / (rank + 1)
            self.conv_cum_weights.append(total)

    def insert_invites(self):
        rows, codes = [], set()
        for c, conv_id in enumerate(self.conv_ids):
            if not self.conv_is_group[c]:
                continue
            for _ in range(self.rng.randrange(0, 3)):
                code = base36(self.rng.getrandbits(41), 8)
                if code in codes:
                    continue
                codes.add(code)
                created = self.ms_between(self.conv_created[c], self.day(SETUP_END_DAY))
                max_uses = self.pick((None, 1, 10, 100))
                rows.append(
                    (
                        self.cuid(created),
                        code,
                        conv_id,
                        self.user_ids[self.pick(self.conv_members[c])],
                        max_uses,
                        self.rng.randrange(0, (max_uses or 50) + 1),
                        created + 7 * DAY_MS if self.chance(0.5) else None,
                        self.chance(0.1),
                        created,
                    )
                )
        self.db.executemany(INSERT["Invite"], rows)

    def insert_push_subscriptions(self):
        """Web push subscriptions of browser and desktop devices."""
        rows = []
        for n, (device_id, user, platform, created) in enumerate(self.devices):
            if platform not in ("web", "desktop"):
                continue
            subscribed = created + self.rng.randrange(1000, DAY_MS)
            rows.append(
                (
                    self.cuid(subscribed),
                    self.user_ids[user],
                    # The first one outlived its device: ON DELETE SET NULL emptied device_id.
                    None if not rows else device_id,
                    f"https://fcm.googleapis.com/fcm/send/{base36(self.rng.getrandbits(41), 8)}-{n}",
                    b"\x04" + self.rng.randbytes(64),  # an uncompressed P-256 public key
                    self.rng.randbytes(16),
                    subscribed + 90 * DAY_MS if self.chance(0.2) else None,
                    subscribed,
                )
            )
        self.db.executemany(INSERT["push_subscriptions"], rows)

    def insert_early_audit_log(self):
        """Sign-ups and logins, in time order so AuditLog ids follow time."""
        self.early_audit.sort(key=lambda row: row[-1])
        self.db.executemany(INSERT["AuditLog"], self.early_audit)
        self.early_audit.clear()

    # -- messages --------------------------------------------------------------

    def insert_messages(self):
        """Messages and their children, in batches, in time order.

        Message i is sent during the i-th slice of the messaging period, so time
        only moves forward and every reply points at an earlier message.
        """
        start = self.day(SETUP_END_DAY)
        slice_ms = MESSAGE_DAYS * DAY_MS // max(1, self.n_messages)
        conversations = range(len(self.conv_ids))
        for first in range(0, self.n_messages, MESSAGE_BATCH):
            count = min(MESSAGE_BATCH, self.n_messages - first)
            batch = MessageBatch()
            picks = self.rng.choices(conversations, cum_weights=self.conv_cum_weights, k=count)
            for i, conv in enumerate(picks, first):
                self.add_message(batch, conv, start + i * slice_ms + int(self.rng.random() * slice_ms))
            batch.flush(self.db)

    def add_message(self, batch, conv, ms):
        members = self.conv_members[conv]
        sender = self.pick(members)
        message_id = self.cuid(ms)
        self.conv_seq[conv] += 1
        previous = self.conv_last_message[conv]
        reply_to = previous[0] if previous and self.chance(0.08) else None
        kind, body, amount, currency = self.message_content()

        edited = deleted = None
        fate = self.rng.random()
        if fate < 0.01:  # deleted for everyone: the row stays, the text goes
            body, deleted = None, ms + self.rng.randrange(1000, DAY_MS)
            batch.rows["AuditLog"].append(
                self.audit(
                    self.user_ids[sender],
                    "message.delete",
                    "Message",
                    message_id,
                    {
                        "conversationId": self.conv_ids[conv],
                        "sequence": str(self.conv_seq[conv]),
                        "reason": None,
                        "client": {"name": "ChatApp", "version": [3, 2, 1]},
                    },
                    deleted,
                )
            )
        elif fate < 0.03 and kind == "TEXT":
            edited = self.add_edits(batch, message_id, sender, ms)

        batch.rows["Message"].append(
            (
                message_id,
                self.conv_ids[conv],
                self.user_ids[sender],
                reply_to,
                kind,
                body,
                self.conv_seq[conv],
                amount,
                currency,
                ms,
                edited,
                deleted,
            )
        )
        self.conv_last_message[conv] = (message_id, ms)

        recipient = self.add_receipt(batch, message_id, members, sender, ms)
        if self.chance(0.04):
            self.add_notification(batch, conv, message_id, body, recipient, ms)
        if deleted is not None:
            return
        if kind in ATTACHMENTS:
            self.add_attachments(batch, message_id, kind, ms)
        if self.chance(0.2):
            self.add_reactions(batch, message_id, members, ms)
        if self.chance(0.002):
            self.add_pin(batch, conv, message_id, ms)

    def message_content(self):
        """(kind, body, amount, currency) of a new message."""
        r = self.rng.random()
        if r < 0.93:
            return "TEXT", self.pick(MESSAGE_BODIES), None, None
        if r < 0.995:
            kind = "IMAGE" if r < 0.96 else ("FILE" if r < 0.98 else "VOICE")
            # No caption is '' from the mobile apps but NULL from the web app.
            caption = self.rng.random()
            body = "" if caption < 0.3 else (None if caption < 0.6 else self.pick(MESSAGE_BODIES))
            return kind, body, None, None
        return "PAYMENT", "💸", self.pick(PAYMENT_AMOUNTS), self.pick(CURRENCIES)

    def add_edits(self, batch, message_id, editor, ms):
        """One or two earlier versions of the text; returns when it was last edited."""
        edited = ms
        for _ in range(self.rng.randrange(1, 3)):
            edited += self.rng.randrange(5_000, 3_600_000)
            batch.rows["MessageEdit"].append(
                (self.cuid(edited), message_id, self.user_ids[editor], self.pick(PREVIOUS_BODIES), edited)
            )
        return edited

    def add_receipt(self, batch, message_id, members, sender, ms):
        """Delivery (and usually read) receipt of one other member; returns who."""
        recipient = sender
        while recipient == sender:
            recipient = self.pick(members)
        delivered = ms + self.rng.randrange(50, 60_000)
        read = delivered + self.rng.randrange(0, 3_600_000) if self.chance(0.8) else None
        batch.rows["MessageReceipt"].append((message_id, self.user_ids[recipient], delivered, read))
        return recipient

    def add_notification(self, batch, conv, message_id, body, recipient, ms):
        is_group = self.conv_is_group[conv]
        payload = {
            "conversation": {"id": self.conv_ids[conv], "title": self.conv_titles[conv]},
            "messageId": message_id,
            "preview": None if body is None else body[:40],
            "badge": self.rng.randrange(1, 120),
        }
        batch.rows["Notification"].append(
            (
                self.user_ids[recipient],
                "MENTION" if is_group else "DIRECT_MESSAGE",
                to_json(payload),
                message_id,
                ms + self.rng.randrange(60_000, DAY_MS) if self.chance(0.6) else None,
                ms + 200,
            )
        )

    def add_attachments(self, batch, message_id, kind, ms):
        for _ in range(2 if kind == "IMAGE" and self.chance(0.2) else 1):
            file_name, mime_type = self.pick(ATTACHMENTS[kind])
            width = height = duration = thumbnail = None
            if kind == "IMAGE":
                width, height = self.pick(((4032, 3024), (1170, 2532), (800, 600)))
                size = self.rng.randrange(50_000, 8_000_000)
                thumbnail = self.thumbnail()
            elif kind == "VOICE":
                duration = round(self.rng.uniform(0.5, 120.0), 3)
                size = int(duration * 16_000)
            else:
                size = self.rng.randrange(1, 5 * 1024**3)  # up to 5 GiB: past 2**32
            batch.rows["MessageAttachment"].append(
                (
                    self.cuid(ms),
                    message_id,
                    kind,
                    file_name,
                    mime_type,
                    size,
                    width,
                    height,
                    duration,
                    self.rng.randbytes(32),  # per-file encryption key
                    thumbnail,
                    ms,
                )
            )

    def thumbnail(self):
        r = self.rng.random()
        if r < 0.1:
            return b""  # thumbnailing failed: an empty BLOB, not NULL
        if r < 0.3:
            return None  # not generated yet
        return b"\xff\xd8\xff\xe0" + self.rng.randbytes(28)  # starts like a JPEG

    def add_reactions(self, batch, message_id, members, ms):
        reactors = self.rng.sample(members, min(len(members), self.rng.randrange(1, 4)))
        for n, user in enumerate(reactors):
            # Now and then one person reacts with two different emoji.
            emojis = self.rng.sample(EMOJIS, 2) if n == 0 and self.chance(0.1) else (self.pick(EMOJIS),)
            for emoji in emojis:
                created = ms + self.rng.randrange(1000, DAY_MS)
                batch.rows["MessageReaction"].append(
                    (self.cuid(created), message_id, self.user_ids[user], emoji, created)
                )

    def add_pin(self, batch, conv, message_id, ms):
        pinned = ms + self.rng.randrange(60_000, 7 * DAY_MS)
        # A NULL pinnedById is a pin whose author has since deleted their account.
        pinned_by = None if self.chance(0.2) else self.user_ids[self.pick(self.conv_members[conv])]
        batch.rows["PinnedMessage"].append(
            (self.cuid(pinned), self.conv_ids[conv], message_id, pinned_by, pinned)
        )

    def finish_conversations(self):
        """Point each conversation at its last message: this closes the
        Conversation -> Message -> Conversation foreign-key cycle."""
        rows = [
            (last[0], self.conv_seq[c], last[1], self.conv_ids[c])
            for c, last in enumerate(self.conv_last_message)
            if last is not None
        ]
        self.db.executemany(
            'UPDATE "Conversation" SET "lastMessageId" = ?, "lastSequence" = ?, "updatedAt" = ? '
            'WHERE "id" = ?',
            rows,
        )

    def purge_read_notifications(self):
        """A nightly job deleted some read notifications: gaps in the rowids."""
        deleted = self.db.execute(
            'DELETE FROM "Notification" WHERE "readAt" IS NOT NULL AND "id" % 3 = 0'
        ).rowcount
        self.db.execute(
            INSERT["AuditLog"],
            self.audit(
                None,
                "retention.purge",
                "Notification",
                None,
                {"deleted": deleted, "rule": {"readOlderThanDays": 30}},
                self.day(SETUP_END_DAY + MESSAGE_DAYS) + 3_600_000,
            ),
        )

    # -- everything ------------------------------------------------------------

    def build(self):
        self.create_schema()  # one transaction per migration, as Prisma applies them
        self.db.execute("BEGIN")
        self.insert_users()
        self.insert_profiles()
        self.insert_settings()
        self.insert_sessions()
        self.insert_devices()
        self.insert_device_keys()
        self.insert_contacts_and_blocks()
        self.insert_conversations()
        self.insert_invites()
        self.insert_push_subscriptions()
        self.insert_early_audit_log()
        self.insert_messages()
        self.finish_conversations()
        self.purge_consumed_prekeys()
        self.purge_read_notifications()
        self.db.execute("COMMIT")


# ---------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------


def build_chat_app(
    path: str | os.PathLike[str],
    users: int = DEFAULT_USERS,
    messages: int = DEFAULT_MESSAGES,
    seed: int = DEFAULT_SEED,
    *,
    force: bool = False,
) -> dict[str, int]:
    """Build the sample database at `path` and return {table name: row count}.

    Raises FileExistsError if `path` exists and `force` is false, ValueError for
    fewer than 2 users or a negative number of messages. The file appears only
    once complete: it is built next to `path` and renamed into place.
    """
    if users < 2:
        raise ValueError("users must be at least 2")
    if messages < 0:
        raise ValueError("messages must not be negative")
    path = os.fspath(path)
    if os.path.lexists(path) and not force:
        raise FileExistsError(f"{path} already exists (use --force to overwrite it)")

    partial = path + ".partial"
    remove_database(partial)
    try:
        db = sqlite3.connect(partial, isolation_level=None)  # transactions are explicit
        try:
            configure_for_bulk_load(db)
            ChatAppBuilder(db, users, messages, seed).build()
            counts = row_counts(db)
        finally:
            db.close()
    except BaseException:
        remove_database(partial)
        raise
    # Also drop any -wal or -journal left by an old database at `path`: SQLite
    # would apply it to the new file.
    remove_database(path)
    os.replace(partial, path)
    return counts


def configure_for_bulk_load(db):
    """Nothing needs protecting while the file is built: no rollback journal,
    no fsync. Both settings last only as long as this connection, so the file
    keeps the default rollback-journal mode any app opening it would see."""
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-65536")  # 64 MiB of page cache for the index updates


def remove_database(path):
    for suffix in ("", "-journal", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path + suffix)


def row_counts(db):
    tables = [
        name
        for (name,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name <> 'sqlite_sequence' ORDER BY rowid"
        )
    ]
    return {table: db.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] for table in tables}


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Build a sample chat-app SQLite database shaped like one written by Prisma."
    )
    parser.add_argument("out", help="path of the SQLite file to create")
    parser.add_argument(
        "--users",
        type=int,
        default=DEFAULT_USERS,
        help=f"number of users, at least 2 (default {DEFAULT_USERS})",
    )
    parser.add_argument(
        "--messages",
        type=int,
        default=DEFAULT_MESSAGES,
        help=f"number of messages (default {DEFAULT_MESSAGES})",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help=f"random seed; the same seed gives the same database (default {DEFAULT_SEED})",
    )
    parser.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    parser.add_argument("--quiet", action="store_true", help="print only the summary line, not each table")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        counts = build_chat_app(args.out, args.users, args.messages, args.seed, force=args.force)
    except (FileExistsError, ValueError) as exc:
        print(f"make_chat_app: error: {exc}", file=sys.stderr)
        return 1
    width = max(map(len, counts))
    for table, count in counts.items() if not args.quiet else ():
        print(f"{table:<{width}}  {count:>10,}")
    print(f"wrote {args.out}: {len(counts)} tables, {sum(counts.values()):,} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
