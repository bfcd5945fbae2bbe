"""Pure: Spec x Catalog -> the desired PostgreSQL schema (mapping) -> a Plan of immutable steps, and the plan in words.
No I/O here."""
