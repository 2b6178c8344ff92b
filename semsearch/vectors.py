"""FAISS behind a small interface: explicit 64-bit ids, add/remove/search, bytes in and out."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from .embeddings import Vectors, query_threads

Ids = npt.NDArray[np.int64]


def _faiss() -> Any:
    # Imported on use so that commands which never touch vectors stay quick to start.
    import faiss

    return faiss


class VectorIndex:
    """Exact inner-product search over normalised vectors, keyed by our passage ids."""

    kind = "flat-ip"

    def __init__(self, dimension: int, *, _index: Any = None) -> None:
        faiss = _faiss()
        self.dimension = dimension
        # IDMap2 keeps the id -> vector map, so stored vectors can be read back (reconstruct) to
        # reuse embeddings of unchanged passages instead of running the model again.
        self._index = (
            _index if _index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        )

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def ids(self) -> Ids:
        """Every stored id, in insertion order."""
        return np.asarray(_faiss().vector_to_array(self._index.id_map), dtype=np.int64)

    def add(self, ids: Ids, vectors: Vectors) -> None:
        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
        if len(ids):
            vecs = np.ascontiguousarray(vectors, dtype=np.float32)
            self._index.add_with_ids(vecs, np.ascontiguousarray(ids, dtype=np.int64))

    def remove(self, ids: Ids) -> int:
        if not len(ids):
            return 0
        selector = _faiss().IDSelectorBatch(np.ascontiguousarray(ids, dtype=np.int64))
        return int(self._index.remove_ids(selector))

    def reconstruct(self, ids: Ids) -> Vectors:
        if not len(ids):
            return np.zeros((0, self.dimension), dtype=np.float32)
        keys = np.ascontiguousarray(ids, dtype=np.int64)
        return np.asarray(self._index.reconstruct_batch(keys), dtype=np.float32)

    def search(
        self, queries: Vectors, k: int, *, allowed: Ids | None = None
    ) -> tuple[npt.NDArray[np.float32], Ids]:
        """Top ``k`` (scores, ids) per query row; ``allowed`` restricts the ids considered.

        Rows have fewer than ``k`` entries only when fewer than ``k`` vectors qualify; padding
        that FAISS returns (id -1) is removed by the caller via ``ids >= 0``.
        """
        faiss = _faiss()
        k = max(1, min(k, len(self)))
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        params = None
        if allowed is not None:
            # Filtering inside the search (not after it) still returns k hits when k qualify.
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(allowed.astype(np.int64)))
        if len(queries) != 1:
            return self._index.search(queries, k, params=params)  # type: ignore[no-any-return]
        before = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(query_threads())
        try:
            return self._index.search(queries, k, params=params)  # type: ignore[no-any-return]
        finally:
            faiss.omp_set_num_threads(before)

    def to_bytes(self) -> bytes:
        return bytes(_faiss().serialize_index(self._index))

    @classmethod
    def from_bytes(cls, data: bytes) -> VectorIndex:
        faiss = _faiss()
        index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        return cls(int(index.d), _index=index)
