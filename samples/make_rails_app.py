#!/usr/bin/env python3
"""Build a Rails app's SQLite database as Rails 7's SQLite adapter writes it (db/structure.sql):
`schema_migrations` and `ar_internal_metadata`, `integer PRIMARY KEY AUTOINCREMENT NOT NULL` ids,
`varchar`, `datetime(6)` holding UTC text, booleans as 1/0, `json`, `t.references` with
`CONSTRAINT "fk_rails_<hash>"` and `index_<table>_on_<column>`, Active Storage's tables, an
`add_check_constraint`, a partial index and a unique index on lower(email); a few rows.

Usage::

    python samples/make_rails_app.py OUT.db [--force]

The same call always gives the same file.
"""

from __future__ import annotations

import sqlite3
import sys
from contextlib import closing
from pathlib import Path

from sample_cli import build_main  # samples/, beside this script

SCHEMA = """
CREATE TABLE "schema_migrations" ("version" varchar NOT NULL PRIMARY KEY);
CREATE TABLE "ar_internal_metadata" ("key" varchar NOT NULL PRIMARY KEY, "value" varchar,
  "created_at" datetime(6) NOT NULL, "updated_at" datetime(6) NOT NULL);
CREATE TABLE "users" ("id" integer PRIMARY KEY AUTOINCREMENT NOT NULL, "email" varchar NOT NULL,
  "name" varchar, "admin" boolean DEFAULT 0 NOT NULL, "settings" json,
  "created_at" datetime(6) NOT NULL, "updated_at" datetime(6) NOT NULL);
CREATE UNIQUE INDEX "index_users_on_lower_email" ON "users" (lower("email"));
CREATE TABLE "posts" ("id" integer PRIMARY KEY AUTOINCREMENT NOT NULL, "user_id" integer NOT NULL,
  "title" varchar NOT NULL, "body" text, "price" decimal(10,2), "published_on" date,
  "status" integer DEFAULT 0 NOT NULL, "deleted_at" datetime(6),
  "created_at" datetime(6) NOT NULL, "updated_at" datetime(6) NOT NULL,
  CONSTRAINT "fk_rails_5b5ddfd518" FOREIGN KEY ("user_id") REFERENCES "users" ("id"),
  CONSTRAINT price_non_negative CHECK (price >= 0));
CREATE INDEX "index_posts_on_user_id" ON "posts" ("user_id");
CREATE INDEX "index_posts_on_published_on" ON "posts" ("published_on") WHERE deleted_at IS NULL;
CREATE TABLE "comments" ("id" integer PRIMARY KEY AUTOINCREMENT NOT NULL, "post_id" integer NOT NULL,
  "body" text NOT NULL, "created_at" datetime(6) NOT NULL, "updated_at" datetime(6) NOT NULL,
  CONSTRAINT "fk_rails_2fd19c0db7" FOREIGN KEY ("post_id") REFERENCES "posts" ("id") ON DELETE CASCADE);
CREATE INDEX "index_comments_on_post_id" ON "comments" ("post_id");
CREATE TABLE "active_storage_blobs" ("id" integer PRIMARY KEY AUTOINCREMENT NOT NULL, "key" varchar NOT NULL,
  "filename" varchar NOT NULL, "content_type" varchar, "metadata" text, "service_name" varchar NOT NULL,
  "byte_size" bigint NOT NULL, "checksum" varchar, "created_at" datetime(6) NOT NULL);
CREATE UNIQUE INDEX "index_active_storage_blobs_on_key" ON "active_storage_blobs" ("key");
CREATE TABLE "active_storage_attachments" ("id" integer PRIMARY KEY AUTOINCREMENT NOT NULL,
  "name" varchar NOT NULL, "record_type" varchar NOT NULL, "record_id" bigint NOT NULL,
  "blob_id" bigint NOT NULL, "created_at" datetime(6) NOT NULL,
  CONSTRAINT "fk_rails_c3b3935057" FOREIGN KEY ("blob_id") REFERENCES "active_storage_blobs" ("id"));
CREATE INDEX "index_active_storage_attachments_on_blob_id" ON "active_storage_attachments" ("blob_id");
CREATE UNIQUE INDEX "index_active_storage_attachments_uniqueness" ON "active_storage_attachments"
  ("record_type", "record_id", "name", "blob_id");
"""

ROWS = """
INSERT INTO "schema_migrations" (version) VALUES ('20250807100000'), ('20250807100100'), ('20250807100200');
INSERT INTO "ar_internal_metadata" VALUES
  ('environment', 'production', '2025-08-07 10:00:00.123456', '2025-08-07 10:00:00.123456');
INSERT INTO "users" VALUES
  (1, 'ana@example.com', 'Ana', 1, '{"theme": "dark", "langs": ["pt", "en"]}',
   '2025-03-30 01:30:00.000001', '2025-10-26 02:30:00.999999'),
  (2, 'bo@example.com', NULL, 0, NULL, '2025-08-07 10:00:00', '2025-08-07 10:00:00');
INSERT INTO "posts" VALUES
  (1, 1, 'Hello', 'First post', '12.34', '2025-08-07', 1, NULL, '2025-08-07 10:00:00.5', '2025-08-07 10:00:00.5'),
  (2, 1, 'Draft', NULL, 0, NULL, 0, '2025-08-09 09:00:00', '2025-08-08 10:00:00', '2025-08-09 09:00:00'),
  (3, 2, 'Later', NULL, NULL, NULL, 0, NULL, '2025-08-08 10:00:00', '2025-08-08 10:00:00');
INSERT INTO "comments" VALUES (1, 1, 'Nice', '2025-08-07 11:00:00', '2025-08-07 11:00:00');
INSERT INTO "comments" VALUES (2, 3, 'Gone', '2025-08-07 11:00:00', '2025-08-07 11:00:00');
DELETE FROM "comments" WHERE id = 2;
INSERT INTO "active_storage_blobs" VALUES (1, 'k1', 'cat.png', 'image/png', '{"identified":true}', 'local',
  1024, 'abc==', '2025-08-07 10:00:00');
INSERT INTO "active_storage_attachments" VALUES (1, 'avatar', 'User', 1, 1, '2025-08-07 10:00:00');
"""


def build_rails_app(path: str | Path) -> None:
    """Write the database to `path` (which must not exist)."""
    with closing(sqlite3.connect(path)) as con:
        con.executescript(SCHEMA + ROWS)
        con.commit()


def main() -> int:
    return build_main(build_rails_app, __doc__ or "")


if __name__ == "__main__":
    sys.exit(main())
