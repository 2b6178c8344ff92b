"""IDFs recovered from BM25 scores, and window shares, as the local engine computes them."""

from __future__ import annotations

import numpy as np

from semsearch.engines.local.lexical import LexicalIndex
from semsearch.engines.milvus.proximity import estimate_idf, shares
from semsearch.engines.terms import K1, B


def test_idf_is_recovered_from_bm25_scores_without_knowing_avgdl() -> None:
    rng = np.random.default_rng(7)
    vocabulary = [f"w{i}" for i in range(40)]
    passages = {pid: list(rng.choice(vocabulary, size=rng.integers(5, 60))) for pid in range(80)}
    avgdl = float(np.mean([len(t) for t in passages.values()])) * 1.3
    idf = {"w1": 2.5, "w2": 0.7, "w3": 1.6}
    scores: dict[str, dict[int, float]] = {t: {} for t in idf}
    for pid, held in passages.items():
        for term, weight in idf.items():
            tf = held.count(term)
            if tf:
                norm = tf + K1 * (1 - B + B * len(held) / avgdl)
                scores[term][pid] = weight * tf * (K1 + 1) / norm
    found = estimate_idf(scores, passages)
    assert set(found) == set(idf)
    for term, weight in idf.items():
        assert abs(found[term] - weight) < 0.02 * weight, term


def test_shares_equal_the_local_proximity_given_its_idf() -> None:
    texts = [
        "floods reached the old town after the storm",
        "the storm began in the north and many days later floods came to a town",
        "council met about school budgets",
        "storm storm storm",
    ]
    local = LexicalIndex()
    local.add(list(range(len(texts))), texts)
    ids = np.arange(len(texts), dtype=np.int64)
    local._matrix()
    idf = {term: float(local._idf[i]) for term, i in local.vocab.items()}
    stored = [local.tokenizer.terms(t) for t in texts]
    for query in ("storm floods town", "budget", "storm zebra"):
        words = local.tokenizer.terms(query)
        unseen = float(np.log1p((len(texts) + 0.5) / 0.5))
        np.testing.assert_allclose(
            shares(words, idf, stored, unseen), local.proximity(query, ids), atol=1e-6
        )
