"""Documents and passage offsets, kept in SQLite."""
