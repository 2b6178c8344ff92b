"""BM25 over passage terms: the score matrix, term positions and their saved arrays."""

from __future__ import annotations

from .index import LexicalIndex

__all__ = ["LexicalIndex"]
