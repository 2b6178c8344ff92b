"""Vector index checked against an exact numpy oracle, through adds, removes and filters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from semsearch.engines.local.vectors.files import open_vectors, vector_writers
from semsearch.engines.local.vectors.index import VectorIndex


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _oracle(store: dict[int, np.ndarray], q: np.ndarray, k: int, allowed=None):  # type: ignore[no-untyped-def]
    ids = np.array(sorted(i for i in store if allowed is None or i in allowed), dtype=np.int64)
    mat = np.stack([store[i] for i in ids])
    scores = mat @ q
    order = np.argsort(-scores, kind="stable")[:k]
    return ids[order], scores[order]


@pytest.mark.parametrize("seed", range(5))
def test_matches_exact_numpy_search_through_adds_and_removes(seed: int) -> None:
    rng = np.random.default_rng(seed)
    d = 32
    index = VectorIndex(d)
    store: dict[int, np.ndarray] = {}
    next_id = 1 << 40  # 64-bit ids, well past 32 bits
    for _ in range(6):
        n = int(rng.integers(50, 300))
        vecs = _unit(rng, n, d)
        ids = np.arange(next_id, next_id + n, dtype=np.int64)
        next_id += n
        index.add(ids, vecs)
        store.update(zip(ids.tolist(), vecs, strict=True))
        drop = rng.choice(np.array(sorted(store)), size=len(store) // 5, replace=False)
        assert index.remove(drop) == len(drop)
        for i in drop.tolist():
            del store[i]
        assert len(index) == len(store)
        assert sorted(index.ids().tolist()) == sorted(store)
        queries = _unit(rng, 5, d)
        scores, got = index.search(queries, 10)
        for q, s_row, id_row in zip(queries, scores, got, strict=True):
            want_ids, want_scores = _oracle(store, q, 10)
            np.testing.assert_allclose(s_row, want_scores, rtol=1e-5, atol=1e-5)
            # Random continuous vectors do not tie: the same ids in the same order.
            assert id_row.tolist() == want_ids.tolist()


def test_filtered_search_returns_k_when_k_qualify() -> None:
    rng = np.random.default_rng(7)
    index = VectorIndex(16)
    vecs = _unit(rng, 1000, 16)
    ids = np.arange(1000, dtype=np.int64) + 5
    index.add(ids, vecs)
    store = dict(zip(ids.tolist(), vecs, strict=True))
    allowed = ids[::37]
    q = _unit(rng, 1, 16)
    scores, got = index.search(q, 10, allowed=allowed)
    want_ids, want_scores = _oracle(store, q[0], 10, set(allowed.tolist()))
    assert (got[0] >= 0).sum() == 10
    assert got[0].tolist() == want_ids.tolist()
    np.testing.assert_allclose(scores[0], want_scores, rtol=1e-5)


def test_fewer_qualifying_than_k_pads_with_minus_one() -> None:
    index = VectorIndex(4)
    index.add(np.array([10, 11, 12]), np.eye(4, dtype=np.float32)[:3])
    _, got = index.search(np.eye(4, dtype=np.float32)[:1], 5, allowed=np.array([11]))
    assert got[0][got[0] >= 0].tolist() == [11]


def test_file_round_trip_and_reconstruct(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    index = VectorIndex(8)
    vecs = _unit(rng, 20, 8)
    index.add(np.arange(100, 120), vecs)
    writers = vector_writers(index)
    assert set(writers) == {"vectors.npy", "vectors-ids.npy"}
    for role, write in writers.items():
        write(tmp_path / role)
    files = {role: tmp_path / role for role in writers}
    copy = open_vectors(files, None, index.config.to_json())
    assert copy.ids().tolist() == list(range(100, 120))
    np.testing.assert_array_equal(copy.reconstruct(np.array([105, 119])), vecs[[5, 19]])


def test_mismatched_lengths_refused() -> None:
    with pytest.raises(ValueError):
        VectorIndex(4).add(np.array([1, 2]), np.zeros((3, 4), dtype=np.float32))
