"""The local engine: one directory of SQLite, numpy and FAISS files under a checked manifest."""
