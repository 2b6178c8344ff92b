"""Vector index files: one per role, the large exact store memory-mapped when opened."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .vector_backends import MEMORY_BUDGET, Config, faiss_module, stored_ids
from .vectors import MIN_TRAIN, VectorIndex

# Exact-store files at least this large are memory-mapped on load rather than read.
MMAP_BYTES = 64 << 20


def vector_writers(vectors: VectorIndex) -> dict[str, Callable[[Path], None]]:
    """Manifest role -> writer of that file: the exact store, and the approximate index if any."""
    faiss = faiss_module()
    out: dict[str, Callable[[Path], None]] = {
        "vectors.faiss": lambda p: faiss.write_index(vectors._exact, str(p))
    }
    if vectors._ann is not None:
        out["ann.faiss"] = lambda p: faiss.write_index(vectors._ann, str(p))
    return out


def open_vectors(exact: Path, ann: Path | None, config: Any) -> VectorIndex:
    """Load saved files; the exact store is memory-mapped when large (read on touch).

    ``config`` is the manifest's "vector_index" entry (None for indexes saved before it).
    Raises ValueError when the files disagree with it or with each other.
    """
    faiss = faiss_module()
    mapped = exact.stat().st_size >= MMAP_BYTES
    store = faiss.read_index(str(exact), faiss.IO_FLAG_MMAP_IFC if mapped else 0)
    settings = Config() if config is None else Config.from_json(config)
    budget = int(config.get("memory_budget", MEMORY_BUDGET)) if config else MEMORY_BUDGET
    approx = None
    if settings.backend != "flat" and ann is None and store.ntotal >= MIN_TRAIN:
        raise ValueError(f"the manifest names no approximate index for {settings.backend}")
    if ann is not None:
        approx = faiss.read_index(str(ann))
        ivf = faiss.extract_index_ivf(approx)
        if approx.ntotal != store.ntotal or ivf.nlist != settings.nlist:
            raise ValueError(
                f"{ann.name}: {approx.ntotal} vectors in {ivf.nlist} lists, expected "
                f"{store.ntotal} in {settings.nlist}"
            )
        ids = np.sort(stored_ids(ivf))
        if not np.array_equal(ids, np.sort(faiss.vector_to_array(store.id_map))):
            raise ValueError(f"{ann.name}: ids differ from the exact vectors' ids")
    vectors = VectorIndex(
        int(store.d),
        memory_budget=budget,
        _exact=store,
        _ann=approx,
        _config=settings,
        _mapped=mapped,
    )
    if mapped:
        vectors._source = (exact, exact.stat().st_size)
    return vectors
