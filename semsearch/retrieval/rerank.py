"""Optional cross-encoder reranking of fused candidates, by model name or local path."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import SemsearchError

DEPTH = 50
"""Candidates a cross-encoder reads per query: it costs a model call per (query, passage)."""


class Reranker:
    """Scores (query, passage) pairs with a sentence-transformers ``CrossEncoder``.

    No cross-encoder ships offline: a name such as "cross-encoder/ms-marco-MiniLM-L-6-v2" needs
    a model hub or a local copy. The model loads on first use.
    """

    def __init__(self, model: str, *, depth: int = DEPTH, batch_size: int = 32) -> None:
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        self.name = model
        self.depth = depth
        self.batch_size = batch_size
        self._model: Any = None

    @property
    def model(self) -> Any:
        if self._model is None:
            from sentence_transformers import CrossEncoder

            try:
                self._model = CrossEncoder(self.name, device="cpu")
            except (OSError, ValueError) as exc:
                raise SemsearchError(f"cannot load reranker {self.name!r}: {exc}") from None
        return self._model

    def scores(self, query: str, passages: Sequence[str]) -> list[float]:
        """One relevance score per passage (higher is better)."""
        if not passages:
            return []
        raw = self.model.predict(
            [(query, p) for p in passages], batch_size=self.batch_size, show_progress_bar=False
        )
        return [float(s) for s in raw]
