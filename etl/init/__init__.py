"""`etl init`: a spec written from the database itself (its schema and its data), and from a Prisma schema."""
