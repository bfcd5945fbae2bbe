"""The target: connection URLs, its catalog, DDL for plan steps, and etl's own tables (runs, rejects, history)."""
