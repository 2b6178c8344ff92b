"""The local engine: one directory of SQLite, numpy and FAISS files under a checked manifest."""

from __future__ import annotations

from .engine import LocalEngine

__all__ = ["LocalEngine"]
