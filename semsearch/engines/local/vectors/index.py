"""Vector search keyed by 64-bit passage ids: an exact full-precision store plus, for large
corpora, an approximate FAISS index chosen by size and memory budget and tuned to a recall target.

The exact store (exact_store.py: a saved file read in place plus appended rows, spilled to a
temp file once large) is always kept: it answers ``reconstruct`` (reused embeddings, hybrid
cosines), re-scores approximate candidates, trains rebuilds without running the model again, and
serves filtered searches the approximate index cannot answer in full.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt

from ....embeddings.embedder import Vectors, query_threads
from ....errors import SemsearchError
from ....types import Ids
from . import exact_search
from .exact_store import ExactStore
from .ivf import (
    BACKENDS,
    MEMORY_BUDGET,
    Config,
    build,
    faiss_module,
    needs_rebuild,
    needs_retune,
    recall,
    sample_queries,
    tied_truth,
    tune,
)
from .mapped_ivf import MappedAnn

_faiss = faiss_module
# A pinned approximate backend is trained once this many vectors exist; exact before.
MIN_TRAIN = 256
_PAD = exact_search.PAD


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
        _store: ExactStore | None = None,
        _ann: Any = None,
        _mapped: MappedAnn | None = None,
        _config: Config | None = None,
    ) -> None:
        if backend != "auto" and backend not in BACKENDS:
            raise ValueError(f"unknown vector backend {backend!r}; choose from auto, {BACKENDS}")
        self.dimension = dimension
        self.memory_budget = memory_budget
        self._store = _store if _store is not None else ExactStore(dimension)
        self._ann = _ann
        self._mapped = _mapped  # when set, _ann is its index: mapped read-only from the file
        self.config = _config or Config(
            "flat" if backend == "auto" else backend, pinned=backend != "auto"
        )

    def __len__(self) -> int:
        return len(self._store)

    def ids(self) -> Ids:
        """Every stored id, in insertion order (id order after a save)."""
        return self._store.ids()

    # -- changes -------------------------------------------------------------------------------

    def add(self, ids: Ids, vectors: Vectors) -> None:
        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
        if not len(ids):
            return
        vecs = np.ascontiguousarray(vectors, dtype=np.float32)
        if not np.isfinite(vecs).all():
            bad = int((~np.isfinite(vecs).all(axis=1)).sum())
            raise SemsearchError(f"{bad} of {len(vecs)} vectors hold NaN or infinite values")
        keys = np.ascontiguousarray(ids, dtype=np.int64)
        self._own_ann()
        self._store.add(keys, vecs)
        try:
            if self._ann is not None:
                self._ann.add_with_ids(vecs, keys)
            self._review()
        except BaseException:
            # All or nothing: the caller's rollback only knows the ids of completed adds.
            self._store.remove(keys)
            if self._ann is not None:
                self._ann.remove_ids(_faiss().IDSelectorBatch(keys))
            raise

    def remove(self, ids: Ids) -> int:
        if not len(ids):
            return 0
        keys = np.ascontiguousarray(ids, dtype=np.int64)
        self._own_ann()
        removed = self._store.remove(keys)
        if self._ann is not None:
            self._ann.remove_ids(_faiss().IDSelectorBatch(keys))
        self._review()
        return removed

    def _own_ann(self) -> None:
        """Read a mapped approximate index into memory before it changes (see MappedAnn)."""
        if self._mapped is not None:
            self._ann, self._mapped = self._mapped.load(), None

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
        if self._mapped is not None:
            self._mapped.close()
            self._mapped = None
        if backend == "flat":
            self._ann, self.config = None, Config("flat", pinned=self.config.pinned)
            return
        if len(self) < MIN_TRAIN:
            self._ann, self.config = None, Config(backend, pinned=self.config.pinned)
            return
        # Rows read block by block, not a copy of the store, which would add the whole store to
        # peak memory. The exact store does not change during this call.
        self._ann = None  # the old structure is freed before the new one is trained
        ann, config = build(
            backend,
            self._store.rows(),
            self.ids(),
            budget=self.memory_budget,
            pinned=self.config.pinned,
        )
        self._ann = ann
        self.config = config
        self._tune()

    def _tune(self) -> None:
        """Set nprobe to meet the recall target on query-like probes, at the current size."""
        queries = sample_queries(self._store.rows(), 300, seed=0)
        truth = tied_truth(*self._exact_search(queries, 20, None, stream=True), 10)
        tuned = tune(self.config, self._ann_searcher(), queries, truth, 10)
        self._store.release()  # the candidates' pages that re-scoring touched
        self.config = replace(tuned, tuned_on=len(self))

    def all_vectors(self) -> npt.NDArray[np.float32]:
        """Every stored vector, in ``ids`` order (a copy)."""
        return self._store.take(self._store.alive_rows())

    def close(self) -> None:
        """Close the mapped FAISS file and the vectors' temporary file, if any."""
        if self._mapped is not None:
            self._mapped.close()
            self._mapped, self._ann = None, None
        self._store.close()

    # -- reading -------------------------------------------------------------------------------

    def reconstruct(self, ids: Ids) -> Vectors:
        return self._store.reconstruct(np.asarray(ids, dtype=np.int64))

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
        self, queries: Vectors, k: int, allowed: Ids | None, *, stream: bool = False
    ) -> tuple[npt.NDArray[np.float32], Ids]:
        # Filtering inside the search (not after it) still returns k hits when k qualify.
        return exact_search.search(self._store, queries, k, allowed=allowed, stream=stream)

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
        """Recall@k of ``search`` against exact search, on ``queries`` (real query vectors)
        or else fresh query-like probes drawn from the stored vectors."""
        if not len(self):
            return 1.0
        if queries is None:
            rng = np.random.default_rng(seed)
            rows = np.sort(rng.choice(len(self), size=min(3 * probes, len(self)), replace=False))
            queries = sample_queries(self._store.rows()[rows], probes, seed)
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        k = min(k, len(self))
        wide = self._exact_search(queries, min(2 * k, len(self)), None, stream=True)
        truth = tied_truth(*wide, k)
        found = np.concatenate([self.search(q[None, :], k)[1] for q in queries])
        return recall(found, truth)

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"backend": self.config.backend, "vectors": len(self)}
        if self.config.backend != "flat":
            info.update(self.config.to_json())
        info["memory_budget"] = self.memory_budget
        info["memory_mapped"] = self._store.mapped
        info["ann_mapped"] = self._mapped is not None
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
