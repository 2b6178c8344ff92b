"""Retrieval: query checks, filters, dense/lexical/hybrid ranking, duplicate collapse, hits."""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np
import numpy.typing as npt

from ..embeddings.embedder import Embedder, Vectors
from ..engines.local.lexical.index import top_matches
from ..engines.local.store.store import Store
from ..engines.local.vectors.index import Ids, VectorIndex
from ..errors import InputError, SemsearchWarning
from ..types import Hit

if TYPE_CHECKING:
    from ..engines.local.dedup.groups import Duplicates
    from ..engines.local.lexical.index import LexicalIndex
    from .rerank import Reranker

Mode = Literal["dense", "lexical", "hybrid"]
MODES: tuple[str, ...] = get_args(Mode)
Scores = npt.NDArray[np.float32]
Ranked = tuple[Ids, Scores]
Fusion = Literal["minmax", "zscore", "rrf", "max"]

DEPTH = 100
"""Candidates each ranker gives hybrid fusion: a passage outside both top-100s is not fused."""
FUSION: Fusion = "max"
# Shares of the fused score (the dense cosine has the rest, 0.5), chosen on half the SQuAD
# questions (benchmarks/retrieval.py --tune): see the README's "Search modes" section.
LEXICAL_WEIGHT = 0.15
PROXIMITY_WEIGHT = 0.35


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


def check_queries(queries: Sequence[str]) -> None:
    for q in queries:
        if not isinstance(q, str) or not q.strip():
            raise InputError(None, "empty query")


def encode_queries(embedder: Embedder, queries: Sequence[str]) -> Vectors:
    """Check queries and embed them: an empty one is refused, an over-long one is warned about."""
    check_queries(queries)
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


@dataclass(frozen=True)
class Parts:
    """What a search reads: the store, both indexes, duplicate groups and the embedder."""

    store: Store
    vectors: VectorIndex
    lexical: LexicalIndex
    duplicates: Duplicates
    embedder: Embedder


def fuse(
    dense: Scores,
    lexical: Scores,
    proximity: Scores | None = None,
    *,
    method: Fusion = FUSION,
    weight: float = LEXICAL_WEIGHT,
    proximity_weight: float = PROXIMITY_WEIGHT,
) -> Scores:
    """One score per candidate from its dense, BM25 and proximity scores (aligned arrays).

    BM25 scores are unbounded and vary by query, cosines do not: each is normalised over the
    query's candidates before a weighted sum; "rrf" uses ranks instead (1 / (61 + rank)).
    Proximity (LexicalIndex.proximity) is already a share in [0, 1]. The dense signal gets
    ``1 - weight - proximity_weight``; without proximity scores, ``1 - weight``.
    """
    signals = [dense, lexical]
    shares = [1 - weight, weight]
    if proximity is not None:
        signals.append(proximity)
        shares = [1 - weight - proximity_weight, weight, proximity_weight]
    if method == "rrf":
        ranks = [np.argsort(np.argsort(-s, kind="stable"), kind="stable") for s in signals]
        return np.asarray(sum(w / (61 + r) for w, r in zip(shares, ranks, strict=True)), np.float32)
    if method == "max":
        top = float(lexical.max(initial=0.0)) or 1.0
        normed = [dense, lexical / top]
    else:
        norm = _minmax if method == "minmax" else _zscore
        normed = [norm(dense), norm(lexical)]
    if proximity is not None:
        normed.append(proximity)
    return np.asarray(sum(w * s for w, s in zip(shares, normed, strict=True)), dtype=np.float32)


def _minmax(s: Scores) -> Scores:
    low, high = float(s.min(initial=0.0)), float(s.max(initial=0.0))
    return (s - low) / (high - low) if high > low else np.zeros_like(s)


def _zscore(s: Scores) -> Scores:
    std = float(s.std()) if len(s) else 0.0
    return (s - s.mean()) / std if std > 0 else np.zeros_like(s)


def candidates(
    parts: Parts, query: str, qvec: Vectors | None, n: int, allowed: Ids | None
) -> tuple[Ids, Scores, Scores, bool]:
    """Hybrid candidates: the union of the dense and BM25 top ``n``, with both scores of each.

    The last value tells whether either list was cut at ``n`` (more candidates exist).
    """
    assert qvec is not None
    scores, ids = parts.vectors.search(qvec, n, allowed=allowed)
    keep = ids[0] >= 0
    dense_ids, dense_scores = ids[0][keep], scores[0][keep]
    all_ids, all_lex = parts.lexical.scores(query)
    lex_ids, _ = top_matches(all_ids, all_lex, n, allowed=allowed)
    union = np.union1d(dense_ids, lex_ids).astype(np.int64)
    dense = dict(zip(dense_ids.tolist(), dense_scores.tolist(), strict=True))
    missing = np.asarray([i for i in union.tolist() if i not in dense], dtype=np.int64)
    if len(missing):
        # Cosines of BM25-only candidates: their stored vectors, not another index scan.
        cosines = parts.vectors.reconstruct(missing) @ qvec[0]
        dense.update(zip(missing.tolist(), cosines.tolist(), strict=True))
    # A passage BM25 does not know scores 0, rather than indexing past the end of its arrays.
    pos = np.minimum(np.searchsorted(all_ids, union), max(len(all_ids) - 1, 0))
    known = (
        (pos < len(all_ids)) & (all_ids[pos] == union)
        if len(all_ids)
        else np.zeros(len(union), bool)
    )
    lexical = np.where(known, all_lex[pos] if len(all_ids) else 0.0, 0.0).astype(np.float32)
    cut = len(dense_ids) >= n or len(lex_ids) >= n
    return union, np.asarray([dense[i] for i in union.tolist()], np.float32), lexical, cut


def _ranked(
    parts: Parts, query: str, qvec: Vectors | None, n: int, mode: Mode, allowed: Ids | None
) -> tuple[Ranked, bool]:
    """Passages for one query best first, and whether more than these exist."""
    if mode == "lexical":
        ids, scores = parts.lexical.search(query, n, allowed=allowed)
        return (ids, scores), len(ids) >= n
    if mode == "dense":
        assert qvec is not None
        raw_scores, raw_ids = parts.vectors.search(qvec, n, allowed=allowed)
        keep = raw_ids[0] >= 0
        return (raw_ids[0][keep], raw_scores[0][keep]), int(keep.sum()) >= n
    ids, dense, lexical, cut = candidates(parts, query, qvec, n, allowed)
    fused = fuse(dense, lexical, parts.lexical.proximity(query, ids))
    order = np.lexsort((ids, -fused))
    return (ids[order], fused[order]), cut


def _collapse(ranked: Ranked, groups: dict[int, int], want: int) -> Ranked:
    """Drop passages whose duplicate group already appears higher up; keep the first ``want``."""
    seen: set[int] = set()
    keep: list[int] = []
    for row, pid in enumerate(ranked[0].tolist()):
        group = groups.get(pid, pid)
        if group not in seen:
            seen.add(group)
            keep.append(row)
            if len(keep) == want:
                break
    return ranked[0][keep], ranked[1][keep]


def run_search(
    parts: Parts,
    queries: Sequence[str],
    *,
    k: int,
    mode: Mode,
    filters: Filters,
    reranker: Reranker | None = None,
    query_vectors: Vectors | None = None,
) -> list[list[Hit]]:
    """Top ``k`` hits per query in ``mode``, filtered inside the search, duplicates collapsed.

    ``query_vectors`` are the queries' embeddings when the caller already has them (one row per
    query, as ``encode_queries`` gives): answering reuses them instead of embedding twice.
    """
    if mode not in MODES:
        raise InputError(None, f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    check_queries(queries)
    if query_vectors is not None and len(query_vectors) != len(queries):
        raise ValueError(f"{len(query_vectors)} query vectors for {len(queries)} queries")
    empty: list[list[Hit]] = [[] for _ in queries]
    allowed = filters.allowed(parts.store)
    if len(parts.vectors) == 0 or (allowed is not None and not len(allowed)):
        return empty
    qvecs = query_vectors
    if qvecs is None and mode != "lexical":
        qvecs = encode_queries(parts.embedder, queries)
    groups = parts.duplicates.groups()
    want = k if reranker is None else max(k, reranker.depth)
    results = []
    for row, query in enumerate(queries):
        qvec = None if qvecs is None else qvecs[row : row + 1]
        n = max(DEPTH, 2 * want) if mode == "hybrid" else want + min(len(groups), want) + 10
        while True:
            ranked, more = _ranked(parts, query, qvec, n, mode, allowed)
            ranked = _collapse(ranked, groups, want)
            if len(ranked[0]) >= want or not more:
                break
            n *= 4  # duplicates filled the first candidates: look deeper
        hits = parts.store.hits(ranked[0].tolist(), ranked[1].tolist())
        if reranker is not None:
            hits = _rerank(reranker, query, hits)
        results.append(hits[:k])
    return results


def _rerank(reranker: Reranker, query: str, hits: list[Hit]) -> list[Hit]:
    scores = reranker.scores(query, [f"{h.title}\n\n{h.text}" if h.title else h.text for h in hits])
    order = sorted(range(len(hits)), key=lambda i: -scores[i])
    return [replace(hits[i], rank=r, score=scores[i]) for r, i in enumerate(order, start=1)]
