"""Proximity over Milvus candidates: how closely a passage holds the query's terms together.

The local engine keeps term positions and exact IDFs; Milvus keeps neither where a client can
read them. What it does keep is each passage's BM25 terms in order (the ``terms`` field) and
BM25 scores. So the positions come from the candidates' stored terms, and each query term's
IDF from Milvus's own single-term BM25 scores of the candidates that hold it: a score is
``idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / avgdl))``, where tf and length are
read off the stored terms, and the one unknown shared by every score, avgdl, is the value
that makes each term's IDF agree best across its candidates. The share is then the local
engine's: the largest part of the query's IDF weight that any ``window`` consecutive terms
of a passage hold.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

from ...types import Scores
from ..terms import K1, PROXIMITY_WINDOW, B


def estimate_idf(
    scores: Mapping[str, Mapping[int, float]], terms: Mapping[int, Sequence[str]]
) -> dict[str, float]:
    """Each query term's IDF from its BM25 scores per candidate (term -> pid -> score) and
    the candidates' stored terms; a term no candidate holds is left out."""
    counted = {pid: (Counter(held), len(held)) for pid, held in terms.items()}
    samples: list[tuple[str, float, int, int]] = []  # (term, score, tf, length)
    for term, by_pid in scores.items():
        for pid, score in by_pid.items():
            held = counted.get(pid)
            if held is not None and held[0][term] and score > 0:
                samples.append((term, score, held[0][term], held[1]))
    if not samples:
        return {}
    names = [s[0] for s in samples]
    found = np.asarray([s[1] for s in samples], dtype=np.float64)
    tfs = np.asarray([s[2] for s in samples], dtype=np.float64)
    length = np.asarray([s[3] for s in samples], dtype=np.float64)
    masks = {t: np.asarray([n == t for n in names]) for t in dict.fromkeys(names)}
    best: tuple[float, dict[str, float]] | None = None
    mean = float(length.mean())
    for avgdl in mean * np.geomspace(0.25, 4.0, 41):
        logs = np.log(found * (tfs + K1 * (1 - B + B * length / avgdl)) / (tfs * (K1 + 1)))
        spread, idf = 0.0, {}
        for term, mask in masks.items():
            mine = logs[mask]
            spread += float(((mine - mine.mean()) ** 2).sum())
            idf[term] = float(np.exp(np.median(mine)))
        if best is None or spread < best[0] - 1e-12:
            best = (spread, idf)
    assert best is not None
    return best[1]


def shares(
    query_terms: Sequence[str],
    idf: Mapping[str, float],
    passages: Sequence[Sequence[str] | None],
    unseen_idf: float,
    *,
    window: int = PROXIMITY_WINDOW,
) -> Scores:
    """Per passage (its stored terms in order; None if unknown): the largest share of the
    query's IDF weight, each distinct term once, that ``window`` consecutive terms hold. A
    query term no candidate holds weighs ``unseen_idf``, as rare as a term can be."""
    out = np.zeros(len(passages), dtype=np.float32)
    words = set(query_terms)
    weights = {w: idf[w] for w in words if w in idf}
    total = sum(weights.values()) + (len(words) - len(weights)) * unseen_idf
    if not weights or total <= 0:
        return out
    for row, held in enumerate(passages):
        if not held:
            continue
        hits = [(i, t) for i, t in enumerate(held) if t in weights]
        best = 0.0
        for a, (start, _) in enumerate(hits):
            inside = set()
            for i, t in hits[a:]:
                if i >= start + window:
                    break
                inside.add(t)
            best = max(best, sum(weights[t] for t in inside))
        out[row] = best / total
    return out
