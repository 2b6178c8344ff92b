"""Documents and passage offsets, kept in SQLite."""

from __future__ import annotations

from .store import Store

__all__ = ["Store"]
