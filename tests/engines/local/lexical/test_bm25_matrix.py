"""The BM25 matrix builder, bit for bit against its earlier one-shot scipy build."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semsearch.engines.local.lexical import matrix as bm25_matrix
from semsearch.engines.local.lexical.index import K1, B


def one_shot(flat: np.ndarray, offsets: np.ndarray, vocab_size: int) -> dict[str, Any]:
    """The builder before it went a slice at a time (whole-corpus CSR -> CSC, duplicates summed),
    whose output the bm25s oracle tests checked: the new one must equal it exactly."""
    import scipy.sparse as sp  # type: ignore[import-untyped]

    num_docs, lengths = len(offsets) - 1, np.diff(offsets)
    if not len(flat):
        return {
            "data": np.zeros(0, dtype=np.float32),
            "indices": np.zeros(0, dtype=np.int32),
            "indptr": np.zeros(vocab_size + 1, dtype=np.int64),
            "num_docs": num_docs,
        }
    longest = int(lengths.max())
    count = np.uint8 if longest < 2**8 else np.uint16 if longest < 2**16 else np.uint32
    ones = np.ones(len(flat), dtype=count)
    counts = sp.csr_matrix((ones, flat, offsets), shape=(num_docs, vocab_size)).tocsc()
    counts.sum_duplicates()
    tf = counts.data.astype(np.float32)
    indices = counts.indices.astype(np.int32, copy=False)
    indptr = counts.indptr.astype(np.int64)
    df = np.diff(indptr)
    idf = bm25_matrix.lucene_idf(df, num_docs).astype(np.float32)
    norm = K1 * ((1 - B) + B * lengths.astype(np.float64) / lengths.mean())
    data = tf
    cuts = np.unique(
        np.concatenate([np.searchsorted(indptr, np.arange(0, len(tf), 7)), [vocab_size]])
    )
    for lo, hi in pairwise(cuts):
        s, e = indptr[lo], indptr[hi]
        t = tf[s:e].astype(np.float64)
        data[s:e] = np.repeat(idf[lo:hi], df[lo:hi]) * (t / (norm[indices[s:e]] + t))
    return {"data": data, "indices": indices, "indptr": indptr, "num_docs": num_docs}


def assert_identical(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert got["num_docs"] == want["num_docs"]
    for key in ("data", "indices", "indptr"):
        assert got[key].dtype == want[key].dtype, key
        assert got[key].tobytes() == want[key].tobytes(), key


def arrays(docs: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    flat = np.asarray([t for d in docs for t in d], dtype=np.int32)
    offsets = np.concatenate([[0], np.cumsum([len(d) for d in docs])]).astype(np.int64)
    return flat, offsets


@settings(max_examples=150, deadline=None)
@given(
    docs=st.lists(st.lists(st.integers(0, 30), max_size=40), min_size=1, max_size=60),
    extra_vocab=st.integers(0, 4),
    chunk=st.sampled_from([1, 2, 5, 17, 1 << 18]),
)
def test_equals_the_one_shot_build(docs: list[list[int]], extra_vocab: int, chunk: int) -> None:
    """Empty passages (first, last, all of them), terms in no passage, any slicing."""
    flat, offsets = arrays(docs)
    vocab = 31 + extra_vocab
    old, bm25_matrix._CHUNK = bm25_matrix._CHUNK, chunk
    try:
        got = bm25_matrix.build(flat, offsets, vocab, k1=K1, b=B)
    finally:
        bm25_matrix._CHUNK = old
    assert_identical(got, one_shot(flat, offsets, vocab))


@pytest.mark.parametrize(
    "docs",
    [
        [[0]],
        [[0], [0], [0, 0, 0], []],
        [[], [], [2, 2]],
        [[1] * 300 + [0], [1] * 5],
        [[3] * 70_000, [], [3, 1]],
    ],
    ids=["one-term", "single-term corpus", "leading empty", "byte counts", "two-byte counts"],
)
@pytest.mark.parametrize("chunk", [1, 3, 1 << 18])
def test_small_corpora_equal_the_one_shot_build(docs: list[list[int]], chunk: int) -> None:
    flat, offsets = arrays(docs)
    old, bm25_matrix._CHUNK = bm25_matrix._CHUNK, chunk
    try:
        got = bm25_matrix.build(flat, offsets, 4, k1=K1, b=B)
    finally:
        bm25_matrix._CHUNK = old
    assert_identical(got, one_shot(flat, offsets, 4))


def test_a_larger_random_corpus_equals_the_one_shot_build() -> None:
    """Zipf-like term ids over thousands of passages: many slices, long and empty passages."""
    rng = np.random.default_rng(7)
    lengths = rng.integers(0, 400, 5000)
    lengths[rng.integers(0, 5000, 200)] = 0
    flat = np.minimum(rng.zipf(1.3, int(lengths.sum())) - 1, 49_999).astype(np.int32)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    got = bm25_matrix.build(flat, offsets, 50_000, k1=K1, b=B)
    assert len(got["data"]) > 100_000  # several slices of 2**18 terms, then some
    assert_identical(got, one_shot(flat, offsets, 50_000))
