"""BM25: same scores as bm25s and as a hand-computed Lucene BM25; saved without pickle."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from semsearch.lexical import K1, B, LexicalIndex, Tokenizer, top_matches

CORPUS = [
    "The cat sat on the mat.",
    "Dogs and cats are friends; the dog barked.",
    "Stock markets fell sharply on Monday as oil prices rose.",
    "Oil exporters met in Vienna to discuss prices.",
    "the and of",  # only stopwords: no terms at all
]


def lucene_bm25(docs: list[list[str]], query: list[str]) -> list[float]:
    """Lucene's BM25, written out from the formula: idf = ln(1 + (N - df + .5) / (df + .5)),
    times tf / (tf + k1 (1 - b + b |d| / avgdl)); Lucene 8+ drops the constant (k1 + 1)."""
    n = len(docs)
    avg = sum(len(d) for d in docs) / n
    scores = []
    for doc in docs:
        score = 0.0
        for term in query:
            df = sum(term in d for d in docs)
            tf = doc.count(term)
            if tf:
                idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
                score += idf * tf / (tf + K1 * (1 - B + B * len(doc) / avg))
        scores.append(score)
    return scores


def test_scores_match_hand_computed_lucene_bm25() -> None:
    index = LexicalIndex()
    index.add(range(10, 10 + len(CORPUS)), CORPUS)
    tok = Tokenizer()
    docs = [tok.terms(t) for t in CORPUS]
    for query in ["cat on a mat", "oil prices", "dog", "barking dogs and cats"]:
        ids, scores = index.scores(query)
        assert ids.tolist() == list(range(10, 15))
        want = lucene_bm25(docs, [t for t in tok.terms(query)])
        assert np.allclose(scores, want, rtol=1e-5), query


def test_scores_match_bm25s_itself() -> None:
    import bm25s
    import Stemmer

    texts = CORPUS[:4] * 3 + ["Vienna hosts oil talks", "A cat and a dog"]
    index = LexicalIndex()
    index.add(range(len(texts)), texts)
    stemmer = Stemmer.Stemmer("english")
    ref = bm25s.BM25()
    ref.index(bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False))
    for query in ["oil prices in Vienna", "cats", "markets fell"]:
        tokens = bm25s.tokenize([query], stopwords="en", stemmer=stemmer, return_ids=False)[0]
        assert np.allclose(index.scores(query)[1], ref.get_scores(tokens), rtol=1e-6)


def test_search_returns_matches_only_best_first_and_respects_allowed() -> None:
    index = LexicalIndex()
    index.add([1, 2, 3, 4], CORPUS[:4])
    ids, scores = index.search("oil prices", 10)
    assert ids.tolist() == [4, 3] or ids.tolist() == [3, 4]
    assert list(scores) == sorted(scores, reverse=True)
    assert index.search("oil prices", 1)[0].tolist() == ids[:1].tolist()
    assert index.search("oil", 10, allowed=np.asarray([3]))[0].tolist() == [3]
    assert len(index.search("zebra", 10)[0]) == 0
    assert len(index.search("the", 10)[0]) == 0  # a stopword matches nothing


def test_add_and_remove_rebuild_the_matrix() -> None:
    index = LexicalIndex()
    index.add([1, 2], CORPUS[:2])
    assert index.search("oil", 5)[0].tolist() == []
    index.add([3], CORPUS[2:3])
    assert index.search("oil", 5)[0].tolist() == [3]
    index.remove([3])
    assert index.search("oil", 5)[0].tolist() == []
    assert index.ids().tolist() == [1, 2]


def test_save_and_load_without_pickle(tmp_path: Path) -> None:
    index = LexicalIndex()
    index.add([5, 7, 9], CORPUS[:3])
    path = tmp_path / "lexical.npz"
    index.save(path)
    with np.load(path, allow_pickle=False) as data:
        assert sorted(data.files) == ["ids", "lengths", "terms", "vocab"]
    loaded = LexicalIndex.load(path)
    assert loaded.ids().tolist() == [5, 7, 9]
    for query in ["cat", "stock markets"]:
        assert np.array_equal(loaded.scores(query)[1], index.scores(query)[1])
    empty = LexicalIndex()
    empty.save(path)
    assert len(LexicalIndex.load(path)) == 0


def test_load_refuses_inconsistent_arrays(tmp_path: Path) -> None:
    path = tmp_path / "bad.npz"
    np.savez(
        path,
        ids=np.asarray([1]),
        lengths=np.asarray([5]),
        terms=np.zeros(2, np.int32),
        vocab=np.frombuffer(b'["a"]', dtype=np.uint8),
    )
    with pytest.raises(ValueError, match="do not add up"):
        LexicalIndex.load(path)


def test_top_matches_breaks_ties_by_id() -> None:
    ids = np.asarray([9, 3, 5], dtype=np.int64)
    scores = np.asarray([1.0, 1.0, 0.0], dtype=np.float32)
    assert top_matches(ids, scores, 5)[0].tolist() == [3, 9]


def brute_proximity(docs: list[list[str]], doc: list[str], query: list[str], window: int) -> float:
    """The definition, written out: the best window's share of the query's Lucene idf, each
    distinct query term once; a term in no document has df 0."""
    n = len(docs)

    def idf(term: str) -> float:
        df = sum(term in d for d in docs)
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    terms = set(query)
    total = sum(idf(t) for t in terms)
    best = 0.0
    for start in range(max(len(doc), 1)):
        inside = set(doc[start : start + window]) & terms
        best = max(best, sum(idf(t) for t in inside))
    return best / total if total else 0.0


def test_proximity_matches_its_definition() -> None:
    texts = [
        "Oil prices rose in Vienna as exporters met.",
        "Oil exporters met. The talks were long and the hotel was cold and the food was poor "
        "and nobody agreed on anything at all. Prices in Vienna rose later.",
        "Vienna hosts many meetings.",
        "Cats and dogs",
    ]
    index = LexicalIndex()
    index.add([1, 2, 3, 4], texts)
    tok = Tokenizer()
    docs = [tok.terms(t) for t in texts]
    for query in ["oil prices Vienna", "exporters met in Vienna", "cats", "oil zebra", "the"]:
        for window in (3, 10):
            got = index.proximity(query, np.asarray([1, 2, 3, 4, 99]), window=window)
            want = [brute_proximity(docs, d, tok.terms(query), window) for d in docs]
            assert np.allclose(got[:4], want, atol=1e-6), (query, window)
            assert got[4] == 0.0  # not in the index
    # All terms together beats the same terms spread over a long passage.
    together, spread = index.proximity("oil prices Vienna", np.asarray([1, 2]))
    assert together == pytest.approx(1.0) and spread < 0.8
    # A query term no passage holds keeps the others from counting as a full match.
    assert index.proximity("oil zebra", np.asarray([1]))[0] < 0.5
