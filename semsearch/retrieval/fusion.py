"""Fusion: one score per hybrid candidate from its dense, BM25 and proximity scores."""

from __future__ import annotations

from typing import Literal

import numpy as np

from ..types import Scores

Fusion = Literal["minmax", "zscore", "rrf", "max"]

FUSION: Fusion = "max"
# Shares of the fused score (the dense cosine has the rest, 0.5), chosen on half the SQuAD
# questions (benchmarks/retrieval.py --tune; the table is in benchmarks/README.md).
LEXICAL_WEIGHT = 0.15
PROXIMITY_WEIGHT = 0.35


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
