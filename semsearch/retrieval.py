"""Retrieval: query checks, filters, and ranked hits from the vectors and the store."""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from .embeddings import Embedder, Vectors
from .errors import InputError, SemsearchWarning
from .store import Store
from .types import Hit
from .vectors import Ids, VectorIndex


def _iso_date(value: str | dt.date | None, name: str) -> str | None:
    if value is None or (isinstance(value, str) and not value):
        return None
    if isinstance(value, dt.date):
        return value.isoformat()[:10]
    try:
        return dt.date.fromisoformat(value[:10]).isoformat()
    except ValueError:
        raise InputError(None, f"{name} must be a date as YYYY-MM-DD, got {value!r}") from None


@dataclass(frozen=True)
class Filters:
    """Which documents a search may return; None means no restriction.

    Dates are inclusive ISO dates (a document without a date fails any date filter); sources are
    exact sources or glob patterns; doc_ids limits the search to those documents.
    """

    date_from: str | dt.date | None = None
    date_to: str | dt.date | None = None
    sources: Sequence[str] | None = None
    doc_ids: Sequence[str] | None = None

    def allowed(self, store: Store) -> Ids | None:
        """Passage ids that pass, or None when nothing is filtered."""
        if all(f is None for f in (self.date_from, self.date_to, self.sources, self.doc_ids)):
            return None
        return store.filter_ids(
            date_from=_iso_date(self.date_from, "date_from"),
            date_to=_iso_date(self.date_to, "date_to"),
            sources=None if self.sources is None else list(self.sources),
            doc_ids=None if self.doc_ids is None else list(self.doc_ids),
        )


def encode_queries(embedder: Embedder, queries: Sequence[str]) -> Vectors:
    """Check queries and embed them: an empty one is refused, an over-long one is warned about."""
    for q in queries:
        if not isinstance(q, str) or not q.strip():
            raise InputError(None, "empty query")
    limit = embedder.max_seq_length - embedder.special_tokens
    for q in queries:
        if len(q) > limit:  # cheap test first: no query under `limit` characters is too long
            n = len(embedder.tokenizer.token_spans([q])[0])
            if n > limit:
                message = f"query is {n} tokens long; the model reads only the first {limit}"
                warnings.warn(SemsearchWarning(message), stacklevel=4)
    if len(queries) == 1:
        return embedder.encode_query(queries[0])
    return embedder.encode(list(queries))


def dense_search(
    store: Store, vectors: VectorIndex, queries: Vectors, *, k: int, filters: Filters
) -> list[list[Hit]]:
    """Top ``k`` hits per query row by inner product, filtered inside the vector search."""
    empty: list[list[Hit]] = [[] for _ in range(len(queries))]
    if len(vectors) == 0:
        return empty
    allowed = filters.allowed(store)
    if allowed is not None and not len(allowed):
        return empty
    scores, ids = vectors.search(queries, k, allowed=allowed)
    results = []
    for row_scores, row_ids in zip(scores, ids, strict=True):
        keep = row_ids >= 0
        results.append(store.hits(row_ids[keep].tolist(), row_scores[keep].tolist()))
    return results
