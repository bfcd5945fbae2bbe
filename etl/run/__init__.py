"""Running against both databases through one DuckDB session: observe, validate, load, sync, verify, apply, rollback."""
