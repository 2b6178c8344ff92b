"""Saved numpy files of an index part: read without pickle, large arrays memory-mapped, and a
bad file a ValueError that names it and what it should hold.

Headers are read here rather than by ``np.load``, whose header parser lets an untrusted file
raise whatever Python's tokenizer raises; each array's size is checked against the bytes that
hold it before anything is allocated or mapped.
"""

from __future__ import annotations

import math
import zipfile
import zlib
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from .untrusted import open_regular

# A header longer than this is not one numpy wrote for us (ours are 128 bytes).
_MAX_HEADER = 1 << 16


def read_header(f: IO[bytes]) -> tuple[tuple[int, ...], np.dtype[Any]]:
    """(shape, dtype) of the ``.npy`` stream ``f``, left at its first data byte; ValueError for
    anything but a C-ordered array of plain values."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(f, max_header_size=_MAX_HEADER)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(f, max_header_size=_MAX_HEADER)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except ValueError:
        raise
    except Exception as exc:  # numpy's parser of the header's Python literal raises anything
        raise ValueError(f"unreadable .npy header ({type(exc).__name__})") from None
    if fortran or dtype.hasobject or dtype.fields is not None:
        raise ValueError(f"not a plain C-ordered array ({dtype}, fortran order {fortran})")
    if not all(isinstance(s, int) and s >= 0 for s in shape):
        raise ValueError(f"bad shape {shape!r}")
    return tuple(shape), dtype


def _nbytes(shape: tuple[int, ...], dtype: np.dtype[Any]) -> int:
    return math.prod(shape) * dtype.itemsize


def read_npz(path: Path, what: str) -> dict[str, npt.NDArray[Any]]:
    """Every array of an ``.npz`` file, read into memory."""
    arrays: dict[str, npt.NDArray[Any]] = {}
    try:
        with open_regular(path) as f, zipfile.ZipFile(f) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    raise ValueError(f"unexpected member {info.filename!r}")
                with archive.open(info) as member:
                    shape, dtype = read_header(member)
                    size = _nbytes(shape, dtype)
                    if info.file_size != member.tell() + size:
                        raise ValueError(f"{info.filename}: size does not match its header")
                    array = np.empty(shape, dtype=dtype)
                    buffer, done = array.reshape(-1).view(np.uint8).data, 0
                    while done < size:
                        chunk = member.read(min(size - done, 16 << 20))
                        if not chunk:
                            raise ValueError(f"{info.filename}: shorter than its header says")
                        buffer[done : done + len(chunk)] = chunk
                        done += len(chunk)
                arrays[info.filename[: -len(".npy")]] = array
    except ValueError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise ValueError(f"{path}: not {what} ({exc})") from None
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError) as exc:
        # NotImplementedError: a zip member compressed by a method zipfile lacks.
        raise ValueError(f"{path}: not {what} ({exc})") from None
    return arrays


def _open_npy(path: Path, what: str) -> tuple[IO[bytes], tuple[int, ...], np.dtype[Any]]:
    """``path`` opened at its first data byte, its shape and dtype; its size is checked."""
    f = open_regular(path)
    try:
        try:
            shape, dtype = read_header(f)
        except ValueError as exc:
            raise ValueError(f"{path}: not {what} ({exc})") from None
        offset, size = f.tell(), f.seek(0, 2)
        if size != offset + _nbytes(shape, dtype):
            raise ValueError(f"{path}: {size} bytes, not {what} of shape {shape} ({dtype})")
        f.seek(offset)
    except BaseException:
        f.close()
        raise
    return f, shape, dtype


def read_npy(path: Path, what: str) -> npt.NDArray[Any]:
    """An ``.npy`` array read into memory."""
    f, shape, dtype = _open_npy(path, what)
    with f:
        return np.fromfile(f, dtype=dtype, count=math.prod(shape)).reshape(shape)


def read_mapped(path: Path, what: str) -> npt.NDArray[Any]:
    """An ``.npy`` array memory-mapped: pages are read when touched, never up front."""
    f, shape, dtype = _open_npy(path, what)
    with f:
        if not math.prod(shape):
            return np.zeros(shape, dtype=dtype)
        array = np.memmap(f, dtype=dtype, mode="r", offset=f.tell(), shape=shape)
    # The name the file was opened by (memmap records none for an open handle): readers of
    # the array's file go through open_regular with it again.
    array.filename = str(path)
    return array


def require(arrays: dict[str, Any], path: Path, *keys: str) -> list[Any]:
    """The arrays named ``keys``, in that order; a ValueError names the missing ones."""
    missing = [k for k in keys if k not in arrays]
    if missing:
        raise ValueError(f"{path}: missing arrays {', '.join(missing)}")
    return [arrays[k] for k in keys]
