"""Searching an engine: query checks, dense/lexical/hybrid ranking, duplicate collapse, hits."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np

from ..embeddings import Embedder
from ..engines import ChangedDuringRead, Engine, Ranked
from ..errors import InputError, SemsearchWarning
from ..types import Filters, Hit, Matrix
from .fusion import fuse
from .recency import recency_boost, recency_window

if TYPE_CHECKING:
    from .rerank import Reranker

Mode = Literal["dense", "lexical", "hybrid"]
MODES: tuple[str, ...] = get_args(Mode)

DEPTH = 100
"""Candidates each ranker gives hybrid fusion: a passage outside both top-100s is not fused."""
READ_ATTEMPTS = 3
"""Rankings tried when a write removes rows a ranking found before they are read."""


def check_queries(queries: Sequence[str]) -> None:
    for q in queries:
        if not isinstance(q, str) or not q.strip():
            raise InputError(None, "empty query")


def encode_queries(embedder: Embedder, queries: Sequence[str]) -> Matrix:
    """Check queries and embed them: an empty one is refused, an over-long one is warned about."""
    check_queries(queries)
    limit = embedder.max_seq_length - embedder.special_tokens
    for q in queries:
        if len(q) > limit:  # cheap test first: no query under `limit` characters is too long
            n = len(embedder.tokenizer.token_spans([q])[0])
            if n > limit:
                message = f"query is {n} tokens long; the model reads only the first {limit}"
                warnings.warn(SemsearchWarning(message), stacklevel=4)
    return embedder.encode_queries(list(queries))


def _ranked(
    engine: Engine,
    queries: Sequence[str],
    qvecs: Matrix | None,
    n: int,
    mode: Mode,
    f: Filters,
    windows: Sequence[float | None],
) -> list[tuple[Ranked, bool]]:
    """Passages for each query best first, and whether more than these exist; ``windows`` are
    the queries' recency time constants (hybrid mode only; None: no recency prior)."""
    if mode == "lexical":
        return [(r, len(r.ids) >= n) for r in engine.lexical(queries, n, f)]
    assert qvecs is not None  # embedded by search() for every mode but lexical
    if mode == "dense":
        return [(r, len(r.ids) >= n) for r in engine.dense(qvecs, n, f)]
    out = []
    for query, days, (ids, dense, lexical, cut) in zip(
        queries, windows, engine.candidates(queries, qvecs, n, f), strict=True
    ):
        fused = fuse(dense, lexical, engine.proximity(query, ids))
        if days is not None and len(ids):
            fused = fused + recency_boost(engine.passage_dates(ids), days)
        order = np.lexsort((ids, -fused))
        out.append((Ranked(ids[order], fused[order]), cut))
    return out


def _collapse(engine: Engine, ranked: Ranked, want: int) -> Ranked:
    """Drop passages whose duplicate group already appears higher up; keep the first ``want``."""
    seen: set[int] = set()
    keep: list[int] = []
    for row, group in enumerate(engine.representatives(ranked.ids).tolist()):
        if group not in seen:
            seen.add(group)
            keep.append(row)
            if len(keep) == want:
                break
    return Ranked(ranked.ids[keep], ranked.scores[keep])


def search(
    engine: Engine,
    embedder: Embedder,
    queries: Sequence[str],
    *,
    k: int,
    mode: Mode,
    filters: Filters,
    reranker: Reranker | None = None,
    query_vectors: Matrix | None = None,
    recency: bool | None = None,
) -> list[list[Hit]]:
    """Top ``k`` hits per query in ``mode``, filtered inside the search, duplicates collapsed.

    ``recency`` favours recent articles (retrieval/recency.py): None for queries that name a
    recent time ("this week", "yesterday"), True for every query, False for none. It shapes the
    fused ranking, so it needs hybrid mode.

    ``query_vectors`` are the queries' embeddings when the caller already has them (one row per
    query, as ``encode_queries`` gives): answering reuses them instead of embedding twice.
    """
    if mode not in MODES:
        raise InputError(None, f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if recency and mode != "hybrid":
        raise InputError(None, f"recency needs mode 'hybrid', got {mode!r}")
    check_queries(queries)
    if query_vectors is not None and len(query_vectors) != len(queries):
        raise ValueError(f"{len(query_vectors)} query vectors for {len(queries)} queries")
    checked = filters.checked()  # a bad date fails even where nothing would be searched
    if not engine.searchable():
        return [[] for _ in queries]
    qvecs = query_vectors
    if qvecs is None and mode != "lexical":
        qvecs = encode_queries(embedder, queries)
    duplicates = engine.duplicate_count()
    want = k if reranker is None else max(k, reranker.depth)
    n = max(DEPTH, 2 * want) if mode == "hybrid" else want + min(duplicates, want) + 10
    windows = [recency_window(q, recency) if mode == "hybrid" else None for q in queries]
    first = _ranked(engine, queries, qvecs, n, mode, checked, windows)
    results = []
    for row, query in enumerate(queries):
        qvec = None if qvecs is None else qvecs[row : row + 1]
        candidates, window = first[row], windows[row : row + 1]
        for attempt in range(1, READ_ATTEMPTS + 1):
            try:
                hits = _hits(engine, query, qvec, candidates, n, want, mode, checked, window)
                break
            except ChangedDuringRead:
                # A write committed between the ranking and the reading of its rows (an
                # engine read live): rank again, against what is there now.
                if attempt == READ_ATTEMPTS:
                    raise
                candidates = _ranked(engine, [query], qvec, n, mode, checked, window)[0]
        if reranker is not None:
            hits = _rerank(reranker, query, hits)
        results.append(hits[:k])
    return results


def _hits(
    engine: Engine,
    query: str,
    qvec: Matrix | None,
    candidates: tuple[Ranked, bool],
    n: int,
    want: int,
    mode: Mode,
    filters: Filters,
    window: Sequence[float | None],
) -> list[Hit]:
    (ranked, more), depth = candidates, n
    while True:
        ranked = _collapse(engine, ranked, want)
        if len(ranked.ids) >= want or not more:
            break
        depth *= 4  # duplicates filled the first candidates: look deeper
        ranked, more = _ranked(engine, [query], qvec, depth, mode, filters, window)[0]
    return engine.hits(ranked)


def _rerank(reranker: Reranker, query: str, hits: list[Hit]) -> list[Hit]:
    scores = reranker.scores(query, [f"{h.title}\n\n{h.text}" if h.title else h.text for h in hits])
    order = sorted(range(len(hits)), key=lambda i: -scores[i])
    return [replace(hits[i], rank=r, score=scores[i]) for r, i in enumerate(order, start=1)]
