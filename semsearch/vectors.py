"""FAISS behind a small interface: explicit 64-bit ids, add/remove/search, bytes in and out."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from .embeddings import Vectors

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
        out = np.empty((len(ids), self.dimension), dtype=np.float32)
        for row, i in enumerate(ids):
            out[row] = self._index.reconstruct(int(i))
        return out

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
        if allowed is None:
            scores, ids = self._index.search(queries, k)
        else:
            # Filtering inside the search (not after it) still returns k hits when k qualify.
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(allowed.astype(np.int64)))
            scores, ids = self._index.search(queries, k, params=params)
        return scores, ids

    def to_bytes(self) -> bytes:
        return bytes(_faiss().serialize_index(self._index))

    @classmethod
    def from_bytes(cls, data: bytes) -> VectorIndex:
        faiss = _faiss()
        index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        return cls(int(index.d), _index=index)
