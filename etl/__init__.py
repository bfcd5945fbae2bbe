"""etl: migrate a SQLite database into PostgreSQL, declaratively, with nothing lost."""

__version__ = "0.1.0"
