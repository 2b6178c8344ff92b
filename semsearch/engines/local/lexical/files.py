"""The files of a saved BM25 index: a small npz and large npy arrays, memory-mapped when read."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..arrays import read_mapped, read_npz, require
from ..untrusted import open_regular

MAIN = "lexical.npz"
"""Vocabulary (JSON), passage ids, term offsets, k1/b and the matrix's document count."""
ARRAYS: dict[str, tuple[str, type[np.generic]]] = {
    "terms": ("lexical-terms.npy", np.int32),
    "data": ("lexical-bm25-data.npy", np.float32),
    "indices": ("lexical-bm25-indices.npy", np.int32),
    "indptr": ("lexical-bm25-indptr.npy", np.int64),
}
_F3 = ("ids", "lengths", "terms", "vocab")
_BLOCK = 1 << 20  # elements read per step when checking a memory-mapped array (a few MB)


@dataclass(frozen=True)
class Saved:
    vocab: list[str]
    ids: npt.NDArray[np.int64]
    offsets: npt.NDArray[np.int64]
    terms: npt.NDArray[np.int32]
    matrix: dict[str, Any] | None  # None: a format-3 file, whose matrix is rebuilt when needed
    params: tuple[float, float] | None


def writers(
    vocab: list[str],
    ids: npt.NDArray[np.int64],
    offsets: npt.NDArray[np.int64],
    terms: npt.NDArray[np.int32],
    matrix: Callable[[], dict[str, Any]],
    params: tuple[float, float],
) -> dict[str, Callable[[Path], None]]:
    """Role -> writer, for the manifest. ``vocab`` is in term id order; ``matrix`` gives the
    BM25 matrix of these passages, called when its arrays are written."""

    def main(path: Path) -> None:
        with open(path, "wb") as f:  # a file object: np.savez would append ".npz" to a path
            np.savez(
                f,
                vocab=np.frombuffer(json.dumps(vocab, ensure_ascii=False).encode(), np.uint8),
                ids=np.asarray(ids, dtype=np.int64),
                offsets=np.asarray(offsets, dtype=np.int64),
                params=np.asarray(params, dtype=np.float64),
                num_docs=np.asarray(len(ids), dtype=np.int64),
            )

    def array(key: str) -> Callable[[Path], None]:
        def write(path: Path) -> None:
            values = terms if key == "terms" else matrix()[key]
            with open(path, "wb") as f:
                np.save(f, values, allow_pickle=False)

        return write

    return {MAIN: main, **{role: array(key) for key, (role, _) in ARRAYS.items()}}


def read(files: Mapping[str, Path]) -> Saved:
    """Read and check what ``writers`` wrote, or a format-3 index's single lexical.npz."""
    if MAIN not in files:
        raise ValueError(f"no {MAIN} among the lexical files")
    path = files[MAIN]
    npz = read_npz(path, "a saved BM25 index")
    if "lengths" in npz:  # format 3: ids, lengths, terms, vocab in this one file
        return _format3(dict(zip(_F3, require(npz, path, *_F3), strict=True)))
    keys = ("vocab", "ids", "offsets", "params", "num_docs")
    main = dict(zip(keys, require(npz, path, *keys), strict=True))
    arrays: dict[str, npt.NDArray[Any]] = {}
    for key, (role, dtype) in ARRAYS.items():
        if role not in files:
            raise ValueError(f"{MAIN} lists no {role}")
        arrays[key] = _load(files[role], dtype)
    vocab = _vocab(main["vocab"])
    ids, offsets = main["ids"], main["offsets"]
    _check_terms(vocab, ids, offsets, arrays["terms"])
    params = main["params"]
    if params.shape != (2,) or params.dtype != np.float64 or int(main["num_docs"]) != len(ids):
        raise ValueError(f"{MAIN}: bad BM25 parameters or document count")
    matrix: dict[str, Any] = {k: arrays[k] for k in ("data", "indices", "indptr")}
    _check_matrix(matrix, len(vocab), len(ids))
    matrix["num_docs"] = len(ids)
    k1, b = (float(x) for x in params)
    return Saved(vocab, ids, offsets, arrays["terms"], matrix, (k1, b))


def _format3(npz: dict[str, npt.NDArray[Any]]) -> Saved:
    vocab, lengths = _vocab(npz["vocab"]), npz["lengths"]
    if lengths.ndim != 1 or lengths.dtype.kind not in "iu" or (lengths < 0).any():
        raise ValueError("bad term counts")
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    if len(npz["ids"]) != len(lengths) or int(offsets[-1]) != len(npz["terms"]):
        raise ValueError("term counts do not add up")
    ids, terms = npz["ids"].astype(np.int64), npz["terms"].astype(np.int32)
    _check_terms(vocab, ids, offsets, terms)
    return Saved(vocab, ids, offsets, terms, None, None)


def _load(path: Path, dtype: type[np.generic]) -> npt.NDArray[Any]:
    array = read_mapped(path, "a numpy array file")
    if array.ndim != 1 or array.dtype != dtype:
        raise ValueError(f"{path.name}: expected a 1-D {np.dtype(dtype).name} array")
    return array


def _vocab(raw: npt.NDArray[Any]) -> list[str]:
    try:
        vocab = json.loads(raw.tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError):
        vocab = None
    if not isinstance(vocab, list) or not all(isinstance(t, str) for t in vocab):
        raise ValueError("vocabulary is not a JSON list of terms")
    if len(set(vocab)) != len(vocab):
        raise ValueError("vocabulary repeats a term")
    return vocab


def _check_terms(
    vocab: list[str], ids: npt.NDArray[Any], offsets: npt.NDArray[Any], terms: npt.NDArray[Any]
) -> None:
    if ids.ndim != 1 or ids.dtype != np.int64 or (len(ids) > 1 and (np.diff(ids) <= 0).any()):
        raise ValueError("passage ids are not sorted unique int64")
    if offsets.dtype != np.int64 or offsets.shape != (len(ids) + 1,) or offsets[0] != 0:
        raise ValueError("term offsets do not match the passage ids")
    if (np.diff(offsets) < 0).any() or offsets[-1] != len(terms):
        raise ValueError("term counts do not add up")
    low, high = _bounds(terms)
    if low < 0 or high >= len(vocab):
        raise ValueError("term ids outside the vocabulary")


def _check_matrix(matrix: dict[str, npt.NDArray[Any]], n_terms: int, n_docs: int) -> None:
    data, indices, indptr = matrix["data"], matrix["indices"], matrix["indptr"]
    if len(indices) != len(data) or len(indptr) != n_terms + 1:
        raise ValueError("BM25 matrix shapes do not match the vocabulary")
    if indptr[0] != 0 or indptr[-1] != len(data) or (np.diff(indptr) < 0).any():
        raise ValueError("BM25 matrix column pointers are not monotone up to its size")
    low, high = _bounds(indices)
    if low < 0 or high >= n_docs:
        raise ValueError("BM25 matrix rows outside the passages")


def _bounds(values: npt.NDArray[Any]) -> tuple[int, int]:
    """(min, max) of a 1-D array ((0, -1) if empty). A memory-mapped one is read through its
    file in blocks, so that checking it leaves none of it resident in this process."""
    if not len(values):
        return 0, -1
    if not isinstance(values, np.memmap) or values.filename is None:
        return int(values.min()), int(values.max())
    low, high = np.iinfo(values.dtype).max, np.iinfo(values.dtype).min
    with open_regular(Path(values.filename)) as f:
        f.seek(values.offset)
        for start in range(0, len(values), _BLOCK):
            block = np.fromfile(f, dtype=values.dtype, count=min(_BLOCK, len(values) - start))
            if len(block) < min(_BLOCK, len(values) - start):
                raise ValueError(f"{Path(values.filename).name}: shorter than its header says")
            low, high = min(low, int(block.min())), max(high, int(block.max()))
    return int(low), int(high)
