"""Everything that knows SQLite: its catalog, its SQL text, its data's profile, its values and expressions
in PostgreSQL terms. A second source database would get a sibling folder with the same parts."""
