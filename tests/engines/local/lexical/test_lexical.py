"""BM25: same scores as bm25s and as a hand-computed Lucene BM25; saved without pickle."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from semsearch.engines.local.lexical.index import K1, B, LexicalIndex, Tokenizer, top_matches

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


def save(index: LexicalIndex, directory: Path) -> dict[str, Path]:
    """What the manifest does with ``writers``, minus the generation names."""
    files = {}
    for role, write in index.writers().items():
        files[role] = directory / role
        write(files[role])
    return files


def test_save_and_open_without_pickle_memory_mapped(tmp_path: Path) -> None:
    index = LexicalIndex()
    index.add([5, 7, 9], CORPUS[:3])
    files = save(index, tmp_path)
    assert all(role.startswith("lexical") for role in files)
    with np.load(files["lexical.npz"], allow_pickle=False) as data:
        assert sorted(data.files) == ["ids", "num_docs", "offsets", "params", "vocab"]
    loaded = LexicalIndex.open(files)
    assert loaded.ids().tolist() == [5, 7, 9]
    # The matrix was saved current: it is read, mapped, not rebuilt.
    assert isinstance(loaded._bm25.scores["data"], np.memmap)
    assert isinstance(loaded._flat, np.memmap)
    for query in ["cat", "stock markets", "zebra"]:
        assert np.array_equal(loaded.scores(query)[1], index.scores(query)[1])
        ids = np.asarray([5, 7, 9, 11])
        assert np.array_equal(loaded.proximity(query, ids), index.proximity(query, ids))
    # A loaded (mapped) index still changes and saves.
    loaded.add([11], CORPUS[3:4])
    loaded.remove([5])
    (tmp_path / "again").mkdir()
    again = LexicalIndex.open(save(loaded, tmp_path / "again"))
    assert again.ids().tolist() == [7, 9, 11]
    assert again.search("Vienna", 5)[0].tolist() == [11]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert len(LexicalIndex.open(save(LexicalIndex(), empty))) == 0


def format3(
    path: Path, ids: list[int], lengths: list[int], terms: list[int], vocab: list[str]
) -> None:
    """A format-3 index's lexical.npz, as that version wrote it."""
    np.savez(
        path,
        ids=np.asarray(ids, dtype=np.int64),
        lengths=np.asarray(lengths, dtype=np.int64),
        terms=np.asarray(terms, dtype=np.int32),
        vocab=np.frombuffer(json.dumps(vocab).encode(), dtype=np.uint8),
    )


def test_opens_a_format3_file_and_rebuilds_its_matrix(tmp_path: Path) -> None:
    index = LexicalIndex()
    index.add([2, 4, 6, 8, 10], CORPUS)
    encoded = [index.encode([t])[1].tolist() for t in CORPUS]
    path = tmp_path / "lexical.npz"
    format3(
        path,
        [2, 4, 6, 8, 10],
        [len(e) for e in encoded],
        [t for e in encoded for t in e],
        list(index.vocab),
    )
    loaded = LexicalIndex.open({"lexical.npz": path})
    assert loaded._bm25 is None and loaded.ids().tolist() == [2, 4, 6, 8, 10]
    for query in ["cat", "oil prices", "dog barked"]:
        assert np.array_equal(loaded.scores(query)[1], index.scores(query)[1])
    bad = tmp_path / "bad.npz"
    format3(bad, [1], [5], [0, 0], ["a"])
    with pytest.raises(ValueError, match="do not add up"):
        LexicalIndex.open({"lexical.npz": bad})


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
