"""Near-duplicate passages: MinHash signatures, banded candidates and duplicate groups."""

from __future__ import annotations

from .groups import Duplicates, duplicate_report

__all__ = ["Duplicates", "duplicate_report"]
