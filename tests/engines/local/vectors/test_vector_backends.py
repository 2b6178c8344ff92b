"""Every vector index type against an exact numpy oracle: recall, filters, rebuilds, choice."""

from __future__ import annotations

import numpy as np
import pytest

from semsearch.engines.local.vectors import ivf as vb
from semsearch.engines.local.vectors.index import VectorIndex

D = 32
# Small enough that product codes are 16 bytes (quick to train), large enough for the rest.
BUDGET = int(6000 * (16 + 8) * 1.1) + 1


def _clustered(rng: np.random.Generator, n: int, centers: np.ndarray) -> np.ndarray:
    """Topic-like data: points near a few dozen centres, as passage embeddings are."""
    x = centers[rng.integers(0, len(centers), n)] + 0.35 * rng.standard_normal((n, D))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _oracle(ids: np.ndarray, mat: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    return ids[np.argsort(-(mat @ q), kind="stable")[:k]]


def _recall(index: VectorIndex, store: dict[int, np.ndarray], queries: np.ndarray, allowed=None):  # type: ignore[no-untyped-def]
    keep = sorted(i for i in store if allowed is None or i in set(allowed.tolist()))
    ids = np.array(keep, dtype=np.int64)
    mat = np.stack([store[i] for i in keep])
    hits = wanted = 0
    for q in queries:
        scores, got = index.search(q[None, :], 10, allowed=allowed)
        want = _oracle(ids, mat, q, 10)
        valid = got[0] >= 0
        assert valid.sum() == min(10, len(keep)), "k hits whenever k qualify"
        # Returned scores are exact cosines of the returned ids, whatever the index type.
        np.testing.assert_allclose(
            scores[0][valid], [store[i] @ q for i in got[0][valid]], rtol=1e-4, atol=1e-5
        )
        hits += len(set(got[0][valid].tolist()) & set(want.tolist()))
        wanted += len(want)
    return hits / wanted


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    centers = rng.standard_normal((40, D))
    vecs = _clustered(rng, 6000, centers)
    queries = vb.sample_queries(_clustered(rng, 600, centers), 60, seed=5)
    return vecs, queries


@pytest.mark.parametrize("backend", ["flat", "ivf-sq8", "ivf-pq"])
def test_each_type_meets_its_recall_target_through_adds_and_removes(
    backend: str, data: tuple[np.ndarray, np.ndarray]
) -> None:
    vecs, queries = data
    rng = np.random.default_rng(3)
    index = VectorIndex(D, backend=backend, memory_budget=BUDGET)
    store: dict[int, np.ndarray] = {}
    base = 1 << 40  # 64-bit ids
    for start in range(0, 6000, 2000):
        ids = np.arange(base + start, base + start + 2000, dtype=np.int64)
        index.add(ids, vecs[start : start + 2000])
        store.update(zip(ids.tolist(), vecs[start : start + 2000], strict=True))
        drop = rng.choice(np.array(sorted(store)), size=300, replace=False)
        assert index.remove(drop) == 300
        for i in drop.tolist():
            del store[i]
        assert index.kind == backend and sorted(index.ids().tolist()) == sorted(store)
        target = 1.0 if backend == "flat" else vb.RECALL_TARGET
        assert _recall(index, store, queries) >= target
    if backend != "flat":
        assert index.config.nprobe < index.config.nlist, "tuning stopped short of a full scan"
        assert index.config.estimated_recall >= vb.TUNE_TARGET
        assert index.check_recall() >= vb.RECALL_TARGET
    # Reuse and re-scoring read the exact vectors back, bit for bit, in every type.
    some = np.array(sorted(store)[:50], dtype=np.int64)
    np.testing.assert_array_equal(index.reconstruct(some), np.stack([store[i] for i in some]))


@pytest.mark.parametrize("backend", ["flat", "ivf-sq8", "ivf-pq"])
@pytest.mark.parametrize("every", [3, 97, 2500])
def test_filters_return_k_when_k_qualify(
    backend: str, every: int, data: tuple[np.ndarray, np.ndarray]
) -> None:
    vecs, queries = data
    index = VectorIndex(D, backend=backend, memory_budget=BUDGET)
    ids = np.arange(len(vecs), dtype=np.int64) * 7 + 1
    index.add(ids, vecs)
    store = dict(zip(ids.tolist(), vecs, strict=True))
    # Every third id (approximate search with a selector), every 97th (too few for the probed
    # lists: exact), and 3 ids (fewer than k: all of them, padded).
    allowed = ids[::every]
    got = _recall(index, store, queries[:20], allowed)
    assert got >= (1.0 if backend == "flat" or every > 3 else vb.RECALL_TARGET)


def test_auto_moves_to_ivf_past_the_threshold_and_back(
    monkeypatch: pytest.MonkeyPatch, data: tuple[np.ndarray, np.ndarray]
) -> None:
    monkeypatch.setattr(vb, "FLAT_MAX", 1100)
    monkeypatch.setattr(vb, "FLAT_RETURN", 800)
    vecs, queries = data
    index = VectorIndex(D)
    ids = np.arange(len(vecs), dtype=np.int64)
    index.add(ids[:1100], vecs[:1100])
    assert index.kind == "flat"
    index.add(ids[1100:1200], vecs[1100:1200])
    assert index.kind == "ivf-sq8" and index.config.trained_on == 1200
    index.add(ids[1200:], vecs[1200:])  # 6000 > 4 x 1200: retrained for the larger corpus
    assert index.config.trained_on == 6000
    store = dict(zip(ids.tolist(), vecs, strict=True))
    assert _recall(index, store, queries) >= vb.RECALL_TARGET
    index.remove(ids[1000:])
    assert index.kind == "ivf-sq8"  # between FLAT_RETURN and FLAT_MAX: kept, no flapping
    index.remove(ids[700:1000])
    assert index.kind == "flat" and index._ann is None
    np.testing.assert_array_equal(index.reconstruct(ids[:700]), vecs[:700])


def test_choice_follows_size_and_memory_budget() -> None:
    assert vb.choose(50_000, 384) == "flat"
    assert vb.choose(1_000_000, 384) == "ivf-sq8"
    # Exact vectors of 50k passages do not fit 40 MB: 8-bit codes do.
    assert vb.choose(50_000, 384, budget=40 << 20) == "ivf-sq8"
    assert vb.choose(1_000_000, 384, budget=200 << 20) == "ivf-pq"
    m = vb.pq_m_for(1_000_000, 384, 200 << 20)
    assert 384 % m == 0 and (m + 8) * 1.1 * 1_000_000 <= 200 << 20
    assert vb.pq_m_for(1_000_000, 384, 10 << 20) == 8  # nothing fits: the smallest useful code
    assert vb.nlist_for(1_000_000) == 2048 and vb.nlist_for(10_000) == 256


def test_unknown_backend_and_bad_settings_refused() -> None:
    with pytest.raises(ValueError, match="unknown vector backend"):
        VectorIndex(D, backend="hnsw-42")
    with pytest.raises(ValueError):
        vb.Config.from_json({"backend": "ivf-sq8", "nlist": 0, "nprobe": 0, "trained_on": 5000})
    # Chosen but not yet trained (fewer than MIN_TRAIN vectors): no lists is right then.
    assert vb.Config.from_json({"backend": "ivf-sq8", "pinned": True}).nlist == 0
    with pytest.raises(ValueError):
        vb.Config.from_json({"backend": "lsh"})


def test_recall_counts_an_equal_scoring_duplicate_as_found() -> None:
    # Ids 1 and 2 hold the same vector (duplicate passages share one embedding): either makes
    # the top 2 with id 0, and a search returning the other is not a miss.
    scores = np.array([[0.9, 0.5, 0.5, 0.4]], dtype=np.float32)
    ids = np.array([[0, 1, 2, 3]], dtype=np.int64)
    truth = vb.tied_truth(scores, ids, 2)
    assert truth.tolist() == [[0, -1, 1, 2, -1, -1]]  # 0 above the 2nd, then the ties
    assert vb.recall(np.array([[0, 2]]), truth) == 1.0
    assert vb.recall(np.array([[0, 3]]), truth) == 0.5  # a lower score is still a miss
    assert vb.recall(np.array([[1, 2]]), truth) == 0.5  # ties never count past k


def test_tuning_is_not_fooled_by_duplicate_vectors() -> None:
    # A search that always returns the other of two tied ids meets any recall target at the
    # first nprobe; scored against the plain top k it would have been pushed to every list.
    scores = np.tile(np.array([0.9, 0.5, 0.5, 0.4], dtype=np.float32), (5, 1))
    ids = np.tile(np.array([0, 1, 2, 3], dtype=np.int64), (5, 1))
    config = vb.Config("ivf-sq8", 64, 0, 0, 1, 4, 1000, 0.0, False)

    def other_tie(trial: vb.Config, queries: np.ndarray, k: int) -> np.ndarray:
        return np.tile(np.array([0, 2], dtype=np.int64), (len(queries), 1))

    queries = np.zeros((5, D), dtype=np.float32)
    tuned = vb.tune(config, other_tie, queries, vb.tied_truth(scores, ids, 2), 2)
    assert tuned.nprobe == 1 and tuned.estimated_recall == 1.0
    assert vb.tune(config, other_tie, queries, ids[:, :2], 2).nprobe == 64


def test_tuning_climbs_half_steps_to_the_smallest_nprobe_meeting_the_target() -> None:
    truth = np.arange(10, dtype=np.int64)[None, :]
    tried: list[int] = []

    def search(config: vb.Config, queries: np.ndarray, k: int) -> np.ndarray:
        tried.append(config.nprobe)
        hits = 10 if config.nprobe >= 40 else 9  # recall 1.0 from 40 lists probed, else 0.9
        found = np.full((1, k), -1, dtype=np.int64)
        found[0, :hits] = np.arange(hits)
        return found

    queries = np.zeros((1, 4), dtype=np.float32)
    tuned = vb.tune(vb.Config("ivf-sq8", nlist=1024), search, queries, truth, 10)
    assert tried == [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48]
    assert tuned.nprobe == 48 and tuned.estimated_recall == 1.0
    tried.clear()
    # Never past the number of lists, even when the target is out of reach.
    capped = vb.tune(vb.Config("ivf-sq8", nlist=20), search, queries, truth, 10)
    assert tried == [1, 2, 3, 4, 6, 8, 12, 16, 20] and capped.nprobe == 20
    assert capped.estimated_recall == 0.9
