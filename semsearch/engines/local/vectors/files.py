"""Vector index files: the exact vectors as a float32 ``.npy`` file plus their ids (format 5, read
in place when large), or the FAISS exact index of formats 2-4; the approximate index if any."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..arrays import read_npy
from ..untrusted import handle_path, open_regular
from . import rows as vector_rows
from .exact_store import ExactStore
from .index import MIN_TRAIN, VectorIndex
from .ivf import MEMORY_BUDGET, Config, faiss_module, stored_ids
from .mapped_ivf import MappedAnn
from .rows import SavedRows

VECTORS_ROLE = "vectors.npy"
IDS_ROLE = "vectors-ids.npy"
LEGACY_ROLE = "vectors.faiss"


def vector_writers(vectors: VectorIndex) -> dict[str, Callable[[Path], None]]:
    """Manifest role -> writer of that file: the exact vectors and ids, the approximate index.

    Vectors are written in id order, so the ids file is the sorted ids, whichever is written
    first (the vectors' writer leaves the store reading from its file: see ExactStore.write).
    """
    faiss = faiss_module()
    out: dict[str, Callable[[Path], None]] = {
        VECTORS_ROLE: vectors._store.write,
        IDS_ROLE: lambda p: _write_ids(np.sort(vectors._store.ids()), p),
    }
    if vectors._mapped is not None:
        out["ann.faiss"] = vectors._mapped.copy_to
    elif vectors._ann is not None:
        out["ann.faiss"] = lambda p: faiss.write_index(vectors._ann, str(p))
    return out


def _write_ids(ids: np.ndarray, path: Path) -> None:
    with open(path, "wb") as f:
        np.save(f, np.ascontiguousarray(ids, dtype=np.int64), allow_pickle=False)


def open_vectors(files: dict[str, Path], ann: Path | None, config: Any) -> VectorIndex:
    """Load saved files (roles as the manifest names them); large vector files are mapped.

    ``config`` is the manifest's "vector_index" entry (None for indexes saved before it).
    Raises ValueError, naming the file, when the files disagree with it or with each other.
    """
    faiss = faiss_module()
    if LEGACY_ROLE in files:
        store = _legacy_store(files[LEGACY_ROLE])
    elif VECTORS_ROLE in files and IDS_ROLE in files:
        store = _store(files[VECTORS_ROLE], files[IDS_ROLE])
    else:
        raise ValueError(f"the manifest names no exact vector files (has {sorted(files)})")
    settings = Config() if config is None else Config.from_json(config)
    budget = config.get("memory_budget", MEMORY_BUDGET) if config else MEMORY_BUDGET
    if type(budget) is not int or not 0 < budget <= 1 << 60:
        raise ValueError(f"vector index setting memory_budget = {budget!r} is not valid")
    if settings.backend != "flat" and ann is None and len(store) >= MIN_TRAIN:
        raise ValueError(f"the manifest names no approximate index for {settings.backend}")
    if ann is None:
        return VectorIndex(store.dimension, memory_budget=budget, _store=store, _config=settings)
    # A large one is searched in place, as the exact vectors are: opening reads little of it.
    with open_regular(ann) as f:
        size = os.fstat(f.fileno()).st_size
        mapped = MappedAnn(ann) if size >= vector_rows.MMAP_BYTES else None
        approx = mapped.index if mapped is not None else faiss.read_index(handle_path(f, ann))
    try:
        ivf = faiss.extract_index_ivf(approx)
        if approx.ntotal != len(store) or ivf.nlist != settings.nlist:
            raise ValueError(
                f"{ann.name}: {approx.ntotal} vectors in {ivf.nlist} lists, expected "
                f"{len(store)} in {settings.nlist}"
            )
        if not np.array_equal(np.sort(stored_ids(ivf)), np.sort(store.ids())):
            raise ValueError(f"{ann.name}: ids differ from the exact vectors' ids")
    except BaseException:
        if mapped is not None:
            mapped.close()
        raise
    return VectorIndex(
        store.dimension,
        memory_budget=budget,
        _store=store,
        _ann=approx,
        _mapped=mapped,
        _config=settings,
    )


def _store(vectors: Path, ids_file: Path) -> ExactStore:
    rows = SavedRows.open(vectors)
    ids = read_npy(ids_file, "a numpy array of passage ids")
    if ids.dtype != np.int64 or ids.shape != (len(rows),):
        raise ValueError(
            f"{ids_file}: {ids.dtype} ids of shape {ids.shape}, expected int64 of "
            f"shape ({len(rows)},) for {vectors.name}"
        )
    if not np.all(ids[1:] > ids[:-1]):
        raise ValueError(f"{ids_file}: ids are not strictly increasing")
    return ExactStore(rows.view().shape[1], base=rows, base_ids=ids)


def _legacy_store(path: Path) -> ExactStore:
    """The IndexIDMap2(IndexFlatIP) of formats 2-4, its vectors viewed in place (mapped when
    large, as FAISS reads them), never copied."""
    faiss = faiss_module()
    with open_regular(path) as f:
        mapped = os.fstat(f.fileno()).st_size >= vector_rows.MMAP_BYTES
        index = faiss.read_index(handle_path(f, path), faiss.IO_FLAG_MMAP_IFC if mapped else 0)
    try:
        inner = faiss.downcast_index(index.index)
        ids = np.asarray(faiss.vector_to_array(index.id_map), dtype=np.int64)
    except AttributeError:
        raise ValueError(f"{path}: not an exact vector index ({type(index).__name__})") from None
    if not isinstance(inner, faiss.IndexFlatIP):
        raise ValueError(f"{path}: not an exact inner-product index ({type(inner).__name__})")
    n, d = int(index.ntotal), int(index.d)
    if len(ids) != n:
        raise ValueError(f"{path}: {len(ids)} ids for {n} vectors")
    if n:
        flat = faiss.rev_swig_ptr(inner.get_xb(), n * d)
        matrix = np.asarray(flat, dtype=np.float32).reshape(n, d)
    else:
        matrix = np.zeros((0, d), dtype=np.float32)
    matrix.flags.writeable = False
    rows = SavedRows(matrix, owner=index, mapped=mapped)
    try:
        return ExactStore(d, base=rows, base_ids=ids)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
