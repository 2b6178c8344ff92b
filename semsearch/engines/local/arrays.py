"""Saved numpy files of an index part: read without pickle, large arrays memory-mapped, and a
bad file a ValueError that names it and what it should hold."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt


def read_npz(path: Path, what: str) -> dict[str, npt.NDArray[Any]]:
    """Every array of an ``.npz`` file, read into memory."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise ValueError(f"{path}: not {what} ({exc})") from None


def read_mapped(path: Path, what: str) -> npt.NDArray[Any]:
    """An ``.npy`` array memory-mapped: pages are read when touched, never up front."""
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(f"{path}: not {what} ({exc})") from None
    if not isinstance(array, np.ndarray):
        raise ValueError(f"{path}: not {what}")
    return array


def require(arrays: dict[str, Any], path: Path, *keys: str) -> list[Any]:
    """The arrays named ``keys``, in that order; a ValueError names the missing ones."""
    missing = [k for k in keys if k not in arrays]
    if missing:
        raise ValueError(f"{path}: missing arrays {', '.join(missing)}")
    return [arrays[k] for k in keys]
