"""The exact vector store against a numpy oracle: adds, removals, spills to a temp file,
compaction, ids out of order, saved files (format 5 and the FAISS file of formats 2-4)."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

from semsearch.engines.local.vectors import exact_search, exact_store
from semsearch.engines.local.vectors import rows as vector_rows
from semsearch.engines.local.vectors.exact_store import ExactStore
from semsearch.engines.local.vectors.files import open_vectors, vector_writers
from semsearch.engines.local.vectors.index import VectorIndex

D = 16


def _unit(rng: np.random.Generator, n: int, d: int = D) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


class Oracle:
    """Exact search by numpy over a dict of id -> vector."""

    def __init__(self) -> None:
        self.store: dict[int, np.ndarray] = {}

    def search(self, q: np.ndarray, k: int, allowed=None):  # type: ignore[no-untyped-def]
        keep = sorted(i for i in self.store if allowed is None or i in allowed)
        ids = np.array(keep, dtype=np.int64)
        if not len(ids):
            return ids, np.zeros(0, np.float32)
        scores = np.stack([self.store[i] for i in keep]) @ q
        order = np.argsort(-scores, kind="stable")[:k]
        return ids[order], scores[order]


def _agree(store: ExactStore, oracle: Oracle, rng: np.random.Generator, k: int = 10) -> None:
    assert len(store) == len(oracle.store)
    assert sorted(store.ids().tolist()) == sorted(oracle.store)
    queries = _unit(rng, 3)
    known = np.array(sorted(oracle.store), dtype=np.int64)
    allowed = rng.choice(known, size=max(1, len(known) // 7), replace=False) if len(known) else None
    for filt in (None, allowed):
        for stream in (False, True):
            scores, got = exact_search.search(store, queries, k, allowed=filt, stream=stream)
            wanted = None if filt is None else set(filt.tolist())
            for q, s_row, id_row in zip(queries, scores, got, strict=True):
                want_ids, want_scores = oracle.search(q, k, wanted)
                # Random continuous vectors do not tie: the same ids in the same order.
                assert id_row[id_row >= 0].tolist() == want_ids.tolist()
                np.testing.assert_allclose(s_row[: len(want_ids)], want_scores, atol=1e-5)
                assert (s_row[len(want_ids) :] == exact_search.PAD).all()
    # A batch of queries (matrix products over gathered rows) gives the same answers.
    batch = _unit(rng, exact_search.BATCH + 1)
    got = exact_search.search(store, batch, k, allowed=allowed)[1]
    wanted = None if allowed is None else set(allowed.tolist())
    for q, id_row in zip(batch, got, strict=True):
        assert id_row[id_row >= 0].tolist() == oracle.search(q, k, wanted)[0].tolist()
    some = rng.choice(known, size=min(20, len(known)), replace=False)
    for ids in (some, some[:3]):  # read from a spilled tail (pread), or through its mapping
        np.testing.assert_array_equal(
            store.reconstruct(ids), np.stack([oracle.store[i] for i in ids.tolist()])
        )


@pytest.mark.parametrize("spill_rows", [10**9, 100, 7])
@pytest.mark.parametrize("seed", range(3))
def test_matches_numpy_through_adds_removes_and_spills(
    spill_rows: int, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exact_store, "COMPACT_MIN", 150)
    monkeypatch.setattr(exact_search, "OVERFETCH", 20)  # both ways of skipping removed rows
    monkeypatch.setattr(vector_rows, "PREAD_ROWS", 10)
    monkeypatch.setattr(vector_rows, "GATHER_ROWS", 3)  # large gathers in several chunks
    rng = np.random.default_rng(seed)
    store = ExactStore(D, spill_bytes=spill_rows * D * 4)
    oracle = Oracle()
    next_id = 1 << 40
    compacted = False
    for _ in range(8):
        n = int(rng.integers(1, 200))
        vecs = _unit(rng, n)
        ids = np.arange(next_id, next_id + n, dtype=np.int64) * 3  # gaps between ids
        next_id += n
        store.add(ids, vecs)
        oracle.store.update(zip(ids.tolist(), vecs, strict=True))
        drop = rng.choice(np.array(sorted(oracle.store)), size=len(oracle.store) // 6)
        dead_before = store._dead
        assert store.remove(np.concatenate([drop, [7, -1]])) == len(set(drop.tolist()))
        compacted |= store._dead < dead_before + len(set(drop.tolist()))
        for i in set(drop.tolist()):
            del oracle.store[i]
        _agree(store, oracle, rng)
    assert store._tail.spilled == (spill_rows < 1000)
    assert compacted, "removals crossed the compaction threshold at least once"


def test_spilled_rows_leave_private_memory() -> None:
    rng = np.random.default_rng(1)
    store = ExactStore(D, spill_bytes=64 * D * 4)
    store.add(np.arange(50), _unit(rng, 50))
    assert not store._tail.spilled and store._tail._memory.nbytes >= 50 * D * 4
    store.add(np.arange(50, 300), _unit(rng, 250))
    assert store._tail.spilled and store._tail._memory.nbytes == 0 and store.mapped
    assert store._tail._file is not None
    # The temp file has no name: it goes with the process, whatever happens to it.
    assert not Path(f"/proc/self/fd/{store._tail._file.fileno()}").resolve().exists()


def test_ids_out_of_order_still_work_and_duplicates_are_refused() -> None:
    rng = np.random.default_rng(2)
    store, oracle = ExactStore(D, spill_bytes=40 * D * 4), Oracle()
    for ids in ([50, 60, 70], [10, 20], [65, 5, 100], list(range(200, 260))):
        vecs = _unit(rng, len(ids))
        store.add(np.array(ids), vecs)
        oracle.store.update(zip(ids, vecs, strict=True))
    assert not store._sorted
    _agree(store, oracle, rng, k=5)
    for bad in ([20], [1000, 1000], [300, 60]):
        with pytest.raises(ValueError, match="already stored"):
            store.add(np.array(bad), _unit(rng, len(bad)))
    assert store.remove(np.array([60, 5])) == 2
    del oracle.store[60], oracle.store[5]
    vec = _unit(rng, 1)
    store.add(np.array([60]), vec)  # a removed id may come back
    oracle.store[60] = vec[0]
    _agree(store, oracle, rng, k=5)
    store.compact()  # rows in id order again: binary search on the ids themselves
    assert store._sorted and store.ids().tolist() == sorted(oracle.store)
    _agree(store, oracle, rng, k=5)


def test_rows_view_reads_live_rows_in_id_order() -> None:
    rng = np.random.default_rng(4)
    store = ExactStore(D, spill_bytes=30 * D * 4)
    vecs = _unit(rng, 100)
    store.add(np.arange(100), vecs)
    store.remove(np.arange(0, 100, 3))
    live = np.array([i for i in range(100) if i % 3], dtype=np.int64)
    rows = store.rows()
    assert rows.shape == (len(live), D) and len(rows) == len(live)
    np.testing.assert_array_equal(rows[5:40], vecs[live[5:40]])
    np.testing.assert_array_equal(rows[np.array([0, 60, 3])], vecs[live[[0, 60, 3]]])
    with pytest.raises(KeyError, match="not stored"):
        store.reconstruct(np.array([3]))


def _save(index: VectorIndex, folder: Path) -> dict[str, Path]:
    folder.mkdir(exist_ok=True)
    files = {}
    for role, write in vector_writers(index).items():
        write(folder / role)
        files[role] = folder / role
    return files


@pytest.mark.parametrize("mmap_bytes", [0, 1 << 30])
def test_saved_files_load_in_place_and_are_never_written(
    tmp_path: Path, mmap_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vector_rows, "MMAP_BYTES", mmap_bytes)
    rng = np.random.default_rng(5)
    index = VectorIndex(D, _store=ExactStore(D, spill_bytes=50 * D * 4))
    oracle = Oracle()
    vecs = _unit(rng, 300)
    index.add(np.arange(1, 301), vecs)
    oracle.store.update(zip(range(1, 301), vecs, strict=True))
    index.remove(np.arange(1, 301, 4))
    for i in range(1, 301, 4):
        del oracle.store[i]
    files = _save(index, tmp_path / "a")
    assert set(files) == {"vectors.npy", "vectors-ids.npy"}
    saved = np.load(files["vectors.npy"])
    assert saved.dtype == np.float32 and saved.shape == (len(oracle.store), D)
    np.testing.assert_array_equal(np.load(files["vectors-ids.npy"]), sorted(oracle.store))
    # The saving store now reads the file it wrote: removed rows and its temp file are gone.
    assert index._store._dead == 0 and not index._store._tail.spilled
    _agree(index._store, oracle, rng)

    loaded = open_vectors(files, None, index.config.to_json())
    assert loaded.describe()["memory_mapped"] == (mmap_bytes == 0)
    before = files["vectors.npy"].read_bytes()
    more = _unit(rng, 120)
    loaded.add(np.arange(400, 520), more)
    oracle.store.update(zip(range(400, 520), more, strict=True))
    loaded.remove(np.array([2, 3, 450]))
    for i in (2, 3, 450):
        del oracle.store[i]
    _agree(loaded._store, oracle, rng)
    again = _save(loaded, tmp_path / "b")
    assert files["vectors.npy"].read_bytes() == before, "a loaded file is never written"
    _agree(loaded._store, oracle, rng)
    _agree(open_vectors(again, None, loaded.config.to_json())._store, oracle, rng)


def test_faiss_files_of_formats_2_to_4_load_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(6)
    vecs = _unit(rng, 200)
    ids = np.arange(200, dtype=np.int64) * 5 + 11
    old = faiss.IndexIDMap2(faiss.IndexFlatIP(D))
    old.add_with_ids(vecs, ids)
    old.remove_ids(faiss.IDSelectorBatch(ids[::9]))
    path = tmp_path / "vectors.faiss"
    faiss.write_index(old, str(path))
    before = path.read_bytes()
    removed = set(ids[::9].tolist())
    oracle = Oracle()
    oracle.store.update((i, v) for i, v in zip(ids.tolist(), vecs, strict=True) if i not in removed)
    for mmap_bytes in (0, 1 << 30):
        monkeypatch.setattr(vector_rows, "MMAP_BYTES", mmap_bytes)
        loaded = open_vectors({"vectors.faiss": path}, None, None)
        assert loaded.describe()["memory_mapped"] == (mmap_bytes == 0)
        _agree(loaded._store, oracle, rng)
        loaded.add(np.array([5000]), vecs[:1])
        oracle.store[5000] = vecs[0]
        _agree(loaded._store, oracle, rng)
        del oracle.store[5000]
        assert path.read_bytes() == before


def _write_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, array)


@pytest.mark.parametrize(
    ("vectors", "ids", "message"),
    [
        (np.zeros((3, D), np.float64), np.arange(3), "expected little-endian float32"),
        (np.zeros((3, D, 1), np.float32), np.arange(3), "shape"),
        (np.zeros((3, D), np.float32), np.arange(4), r"vectors-ids.npy: int64 ids of shape \(4,\)"),
        (np.zeros((3, D), np.float32), np.array([1, 3, 3]), "not strictly increasing"),
        (np.zeros((3, D), np.float32), np.arange(3, dtype=np.int32), "int32 ids"),
    ],
)
def test_bad_saved_files_are_refused_naming_the_file(
    tmp_path: Path, vectors: np.ndarray, ids: np.ndarray, message: str
) -> None:
    files = {
        "vectors.npy": tmp_path / "vectors.npy",
        "vectors-ids.npy": tmp_path / "vectors-ids.npy",
    }
    _write_npy(files["vectors.npy"], vectors)
    _write_npy(files["vectors-ids.npy"], ids)
    with pytest.raises(ValueError, match=message) as err:
        open_vectors(files, None, None)
    assert str(tmp_path) in str(err.value)


def test_truncated_vector_file_is_refused(tmp_path: Path) -> None:
    files = {
        "vectors.npy": tmp_path / "vectors.npy",
        "vectors-ids.npy": tmp_path / "vectors-ids.npy",
    }
    _write_npy(files["vectors.npy"], np.zeros((3, D), np.float32))
    _write_npy(files["vectors-ids.npy"], np.arange(3))
    files["vectors.npy"].write_bytes(files["vectors.npy"].read_bytes()[:-4])
    with pytest.raises(ValueError, match=r"vectors\.npy: .* bytes, expected"):
        open_vectors(files, None, None)


def test_gather_reads_in_chunks_and_drops_each_chunks_pages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(vector_rows, "GATHER_ROWS", 4)
    view = np.arange(40 * D, dtype=np.float32).reshape(40, D)
    rows = np.array([30, 2, 2, 17, 39, 0, 5, 21, 8, 11], dtype=np.int64)  # unsorted, repeated
    released: list[tuple[int, int]] = []
    got = vector_rows.gather(view, rows, lambda a, b: released.append((a, b)))
    np.testing.assert_array_equal(got, view[rows])
    assert released == [(2, 31), (0, 40), (8, 12)]
