"""Vector search keyed by 64-bit passage ids: an exact full-precision store plus, for large
corpora, an approximate FAISS index chosen by size and memory budget and tuned to a recall target.

The exact store (``IndexIDMap2(IndexFlatIP)``) is always kept: it answers ``reconstruct`` (reused
embeddings, hybrid cosines), re-scores approximate candidates, trains rebuilds without running the
model again, and serves filtered searches the approximate index cannot answer in full.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .embeddings import Vectors, query_threads
from .vector_backends import (
    BACKENDS,
    MEMORY_BUDGET,
    Config,
    build,
    faiss_module,
    needs_rebuild,
    needs_retune,
    recall,
    sample_queries,
    tune,
)

Ids = npt.NDArray[np.int64]
_faiss = faiss_module
# A pinned approximate backend is trained once this many vectors exist; exact before.
MIN_TRAIN = 256
_PAD = -np.finfo(np.float32).max


class _Kind:
    """``VectorIndex.kind`` is the default backend; ``instance.kind`` its current one."""

    def __get__(self, obj: VectorIndex | None, owner: type) -> str:
        return "flat" if obj is None else obj.config.backend


class VectorIndex:
    """Inner-product search over normalised vectors, keyed by our passage ids."""

    kind = _Kind()

    def __init__(
        self,
        dimension: int,
        *,
        backend: str = "auto",
        memory_budget: int = MEMORY_BUDGET,
        _exact: Any = None,
        _ann: Any = None,
        _config: Config | None = None,
        _mapped: bool = False,
    ) -> None:
        faiss = _faiss()
        if backend != "auto" and backend not in BACKENDS:
            raise ValueError(f"unknown vector backend {backend!r}; choose from auto, {BACKENDS}")
        self.dimension = dimension
        self.memory_budget = memory_budget
        self._exact = (
            _exact if _exact is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        )
        self._ann = _ann
        self._mapped = _mapped  # FAISS aborts the process on a write to a mapped index
        self._source: tuple[Path, int] | None = None  # the mapped file and its size
        self.config = _config or Config(
            "flat" if backend == "auto" else backend, pinned=backend != "auto"
        )

    def __len__(self) -> int:
        return int(self._exact.ntotal)

    def ids(self) -> Ids:
        """Every stored id, in insertion order."""
        return np.asarray(_faiss().vector_to_array(self._exact.id_map), dtype=np.int64)

    # -- changes -------------------------------------------------------------------------------

    def add(self, ids: Ids, vectors: Vectors) -> None:
        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
        if not len(ids):
            return
        self._writable()
        vecs = np.ascontiguousarray(vectors, dtype=np.float32)
        keys = np.ascontiguousarray(ids, dtype=np.int64)
        self._exact.add_with_ids(vecs, keys)
        if self._ann is not None:
            self._ann.add_with_ids(vecs, keys)
        self._review()

    def remove(self, ids: Ids) -> int:
        if not len(ids):
            return 0
        self._writable()
        selector = _faiss().IDSelectorBatch(np.ascontiguousarray(ids, dtype=np.int64))
        removed = int(self._exact.remove_ids(selector))
        if self._ann is not None:
            self._ann.remove_ids(selector)
        self._review()
        return removed

    def _writable(self) -> None:
        if not self._mapped:
            return
        # A private in-memory copy: the mapped file belongs to a saved generation. Reading the
        # file again is about 6x faster than serialising the mapped index (2.4 s against 15 s
        # for a million vectors); generation files are never rewritten, so while the file is
        # there with its size it is the one mapped. Otherwise (a later save removed it) copy.
        faiss = _faiss()
        path, size = self._source or (None, -1)
        try:
            same = path is not None and path.stat().st_size == size
        except OSError:
            same = False
        if same:
            self._exact = faiss.read_index(str(path))
        else:
            self._exact = faiss.deserialize_index(faiss.serialize_index(self._exact))
        self._mapped, self._source = False, None

    def retarget(self, *, backend: str | None = None, memory_budget: int | None = None) -> None:
        """Choose the index type by size (``auto``) or by name, within ``memory_budget`` bytes
        (``None``: as now), and rebuild from the stored vectors if the structure no longer fits."""
        if backend not in (None, "auto", *BACKENDS):
            raise ValueError(f"unknown vector backend {backend!r}; choose from auto, {BACKENDS}")
        if memory_budget is not None:
            if memory_budget <= 0:
                raise ValueError(f"memory budget must be positive, got {memory_budget}")
            self.memory_budget = memory_budget
        if backend is not None:
            self.config = replace(self.config, pinned=backend != "auto")
        if backend not in (None, "auto", self.config.backend):
            self.rebuild(backend)
        else:
            self._review()

    def _review(self) -> None:
        """Rebuild when the corpus has outgrown (or shrunk below) the current structure."""
        target = needs_rebuild(self.config, len(self), self.dimension, self.memory_budget)
        if target is None and self._ann is None and self.config.backend != "flat":
            target = self.config.backend if len(self) >= MIN_TRAIN else None
        if target is not None:
            self.rebuild(target)
        elif self._ann is not None and needs_retune(self.config, len(self)):
            self._tune()

    def rebuild(self, backend: str) -> None:
        """Rebuild the approximate part as ``backend`` from the stored vectors (no model)."""
        if backend == "flat":
            self._ann, self.config = None, Config("flat", pinned=self.config.pinned)
            return
        if len(self) < MIN_TRAIN:
            self._ann, self.config = None, Config(backend, pinned=self.config.pinned)
            return
        # A view of the stored vectors, not a copy: at a million that copy was 1.5 GB of peak
        # memory. It stays valid for this call, which never changes the exact store.
        vectors = self._stored_view()
        self._ann = None  # the old structure is freed before the new one is trained
        ann, config = build(
            backend,
            vectors,
            self.ids(),
            budget=self.memory_budget,
            pinned=self.config.pinned,
        )
        self._ann = ann
        self.config = config
        del vectors
        self._tune()

    def _tune(self) -> None:
        """Set nprobe to meet the recall target on query-like probes, at the current size."""
        queries = sample_queries(self._stored_view(), 300, seed=0)
        truth = self._exact_search(queries, 10, None)[1]
        tuned = tune(self.config, self._ann_searcher(), queries, truth, 10)
        self.config = replace(tuned, tuned_on=len(self))

    def all_vectors(self) -> npt.NDArray[np.float32]:
        """Every stored vector, in :meth:`ids` order (a copy)."""
        copied: npt.NDArray[np.float32] = self._stored_view().copy()
        return copied

    def _stored_view(self) -> npt.NDArray[np.float32]:
        """The exact store's vectors in place (read-only use; invalid after any change)."""
        faiss = _faiss()
        inner = faiss.downcast_index(self._exact.index)
        n = len(self)
        if not n:
            return np.zeros((0, self.dimension), dtype=np.float32)
        flat = faiss.rev_swig_ptr(inner.get_xb(), n * self.dimension)
        view: npt.NDArray[np.float32] = np.asarray(flat, dtype=np.float32)
        return view.reshape(n, self.dimension)

    # -- reading -------------------------------------------------------------------------------

    def reconstruct(self, ids: Ids) -> Vectors:
        if not len(ids):
            return np.zeros((0, self.dimension), dtype=np.float32)
        keys = np.ascontiguousarray(ids, dtype=np.int64)
        return np.asarray(self._exact.reconstruct_batch(keys), dtype=np.float32)

    def search(
        self, queries: Vectors, k: int, *, allowed: Ids | None = None
    ) -> tuple[npt.NDArray[np.float32], Ids]:
        """Top ``k`` (scores, ids) per query row; ``allowed`` restricts the ids considered.

        Rows have fewer than ``k`` entries only when fewer than ``k`` vectors qualify; padding
        (id -1) is removed by the caller via ``ids >= 0``.
        """
        k = max(1, min(k, len(self)))
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        with _threads(len(queries)):
            if self._ann is None:
                return self._exact_search(queries, k, allowed)
            if allowed is None:
                return self._ann_search(self.config, queries, k)
            share = len(allowed) / max(len(self), 1)
            if share < 0.02:
                # Few qualify: the lists probed would hold almost none of them.
                return self._exact_search(queries, k, allowed)
            # Probe as many more lists as the filter is selective, to meet as many candidates.
            probes = min(self.config.nlist, math.ceil(self.config.nprobe / share))
            sel = _faiss().IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
            scores, ids = self._ann_search(replace(self.config, nprobe=probes), queries, k, sel)
            short = (ids >= 0).sum(axis=1) < min(k, len(allowed))
            if short.any():
                # Filters keep returning k hits when k qualify: the exact store has them all.
                fill = self._exact_search(queries[short], k, allowed)
                scores[short], ids[short] = fill
            return scores, ids

    def _exact_search(
        self, queries: Vectors, k: int, allowed: Ids | None
    ) -> tuple[npt.NDArray[np.float32], Ids]:
        faiss = _faiss()
        params = None
        if allowed is not None:
            # Filtering inside the search (not after it) still returns k hits when k qualify.
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(allowed.astype(np.int64)))
        return self._exact.search(queries, k, params=params)  # type: ignore[no-any-return]

    def _ann_search(
        self, config: Config, queries: Vectors, k: int, sel: Any = None
    ) -> tuple[npt.NDArray[np.float32], Ids]:
        """Approximate candidates (``rerank`` per hit), re-scored with full-precision vectors."""
        faiss = _faiss()
        params = faiss.SearchParametersIVF()
        params.nprobe = int(config.nprobe)
        if sel is not None:
            params.sel = sel
        _, found = self._ann.search(queries, max(k, k * config.rerank), params=params)
        scores = np.full((len(queries), k), _PAD, dtype=np.float32)
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        known = np.unique(found[found >= 0])
        stored = self.reconstruct(known)
        for row, (query, cand) in enumerate(zip(queries, found, strict=True)):
            cand = cand[cand >= 0]
            exact = stored[np.searchsorted(known, cand)] @ query
            order = np.argsort(-exact, kind="stable")[:k]
            scores[row, : len(order)] = exact[order]
            ids[row, : len(order)] = cand[order]
        return scores, ids

    def _ann_searcher(self) -> Callable[[Config, Vectors, int], Ids]:
        return lambda config, queries, k: self._ann_search(config, queries, k)[1]

    def check_recall(
        self, *, probes: int = 300, k: int = 10, seed: int = 1, queries: Vectors | None = None
    ) -> float:
        """Recall@k of :meth:`search` against exact search, on ``queries`` (real query vectors)
        or else fresh query-like probes drawn from the stored vectors."""
        if not len(self):
            return 1.0
        if queries is None:
            rng = np.random.default_rng(seed)
            rows = np.sort(rng.choice(len(self), size=min(3 * probes, len(self)), replace=False))
            queries = sample_queries(self._stored_view()[rows], probes, seed)
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        k = min(k, len(self))
        truth = self._exact_search(queries, k, None)[1]
        found = np.concatenate([self.search(q[None, :], k)[1] for q in queries])
        return recall(found, truth)

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"backend": self.config.backend, "vectors": len(self)}
        if self.config.backend != "flat":
            info.update(self.config.to_json())
        info["memory_budget"] = self.memory_budget
        info["memory_mapped"] = self._mapped
        return info


@contextlib.contextmanager
def _threads(queries: int) -> Iterator[None]:
    """Single queries run FAISS on ``query_threads()`` threads; batches on all of them."""
    if queries != 1:
        yield
        return
    faiss = _faiss()
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(query_threads())
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)
