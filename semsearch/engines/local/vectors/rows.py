"""Rows of float32 vectors held outside private memory once large: a saved file read in place
(``SavedRows``, never written) and appended rows spilled to a deleted temp file (``TailRows``).

Scans read file rows through read-only shared mappings and may drop the pages they touched from
the process (``release``): they stay in the page cache, shared with the kernel, instead of
counting as this process's memory until the kernel reclaims them.
"""

from __future__ import annotations

import mmap
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from ....types import Matrix
from ..arrays import read_header
from ..untrusted import open_regular

# Saved vector files at least this large are memory-mapped on load rather than read.
MMAP_BYTES = 64 << 20
# Appended rows stay in memory up to this many bytes (about 22k of 384 dimensions), then move to
# a deleted temp file: past that, a build holds them in the page cache, not in its own memory.
SPILL_BYTES = 32 << 20
# Gathers of up to this many rows from the temp file read them (pread), mapping no pages; from a
# saved file they read through its mapping, which serving keeps.
PREAD_ROWS = 4096
# Larger gathers go through the mapping this many rows at a time, dropping the pages each chunk
# touched: every row read faults in the 64 KB around it, so a gather of rows spread over a
# large file would otherwise hold far more file pages than the rows it reads.
GATHER_ROWS = 1024
_PAGE = mmap.PAGESIZE


def gather(
    view: Matrix, rows: npt.NDArray[np.int64], release: Callable[[int, int], None]
) -> Matrix:
    """A copy of ``view[rows]``, read in chunks, ``release(first, last + 1)`` after each."""
    out = np.empty((len(rows), view.shape[1]), dtype=np.float32)
    for s in range(0, len(rows), GATHER_ROWS):
        part = rows[s : s + GATHER_ROWS]
        out[s : s + len(part)] = view[part]
        release(int(part.min()), int(part.max()) + 1)
    return out


def _drop_pages(mapping: mmap.mmap | None, start: int, stop: int) -> None:
    """Unmap the pages of bytes [start, stop) from this process (their data stays in the file)."""
    if mapping is None or stop <= start:
        return
    first = start - start % _PAGE
    mapping.madvise(mmap.MADV_DONTNEED, first, min(stop, len(mapping)) - first)


class SavedRows:
    """Rows of a saved file (or of an index read from one): read-only, never changed."""

    def __init__(
        self,
        matrix: Matrix,
        *,
        mapping: mmap.mmap | None = None,
        offset: int = 0,
        owner: Any = None,
        mapped: bool = False,
    ) -> None:
        self._matrix = matrix
        self._mapping = mapping
        self._offset = offset
        self._owner = owner  # keeps the memory of a FAISS index viewed in place alive
        self.mapped = mapping is not None or mapped

    def __len__(self) -> int:
        return len(self._matrix)

    def view(self) -> Matrix:
        return self._matrix

    def release(self, start: int = 0, stop: int | None = None) -> None:
        """Drop the mapped pages of rows [start, stop) from this process's memory."""
        row = self._matrix.shape[1] * 4
        stop = len(self) if stop is None else stop
        _drop_pages(self._mapping, self._offset + start * row, self._offset + stop * row)

    @classmethod
    def open(cls, path: Path, dimension: int | None = None) -> SavedRows:
        """Read an ``.npy`` file of float32 rows, memory-mapped when large; checks what it reads."""
        with open_regular(path) as f:
            shape, offset = _npy_header(f, path)
            if len(shape) != 2 or (dimension is not None and shape[1] != dimension):
                want = f"(n, {dimension})" if dimension is not None else "(n, d)"
                raise ValueError(f"{path}: vectors of shape {shape}, expected {want}")
            n, d = shape
            size = os.fstat(f.fileno()).st_size
            if size != offset + n * d * 4:
                raise ValueError(f"{path}: {size} bytes, expected {offset + n * d * 4} for {shape}")
            if n == 0 or size < MMAP_BYTES:
                f.seek(offset)
                data = np.fromfile(f, dtype=np.float32, count=n * d).reshape(n, d)
                # Read whole anyway, so checked whole; a mapped file's rows are checked as
                # they are scored (a search names the file on a NaN or infinite score).
                if not np.isfinite(data).all():
                    raise ValueError(f"{path}: vectors hold NaN or infinite values")
                return cls(data)
            mapping = mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ)
        matrix = np.frombuffer(mapping, np.float32, n * d, offset).reshape(n, d)
        return cls(matrix, mapping=mapping, offset=offset)


def _npy_header(f: BinaryIO, path: Path) -> tuple[tuple[int, ...], int]:
    try:
        shape, dtype = read_header(f)
    except ValueError as exc:
        raise ValueError(f"{path}: not a numpy array file ({exc})") from None
    if dtype != np.dtype("<f4"):
        raise ValueError(f"{path}: vectors stored as {dtype}, expected little-endian float32")
    return shape, f.tell()


def write_npy_header(f: BinaryIO, rows: int, dimension: int) -> None:
    header = {"descr": "<f4", "fortran_order": False, "shape": (rows, dimension)}
    np.lib.format.write_array_header_1_0(f, header)


class TailRows:
    """Appended rows: a growing array in memory up to ``spill_bytes``, after that a deleted temp
    file written with pwrite and read through a shared mapping (kept in the page cache)."""

    def __init__(self, dimension: int, *, spill_bytes: int = SPILL_BYTES) -> None:
        self.dimension = dimension
        self.spill_bytes = spill_bytes
        self._rows = 0
        self._memory: Matrix = np.empty((0, dimension), dtype=np.float32)
        self._file: BinaryIO | None = None
        self._capacity = 0  # rows the temp file is sized for
        self._mapping: mmap.mmap | None = None

    def __len__(self) -> int:
        return self._rows

    @property
    def spilled(self) -> bool:
        return self._file is not None

    def append(self, block: Matrix) -> None:
        if not len(block):
            return
        block = np.ascontiguousarray(block, dtype=np.float32)
        total = self._rows + len(block)
        if self._file is None and total * self.dimension * 4 > self.spill_bytes:
            self._spill()
        if self._file is None:
            if total > len(self._memory):
                # Doubling: a copy at each growth, never more than spill_bytes in all.
                grown = np.empty(
                    (max(total, 2 * len(self._memory), 64), self.dimension), np.float32
                )
                grown[: self._rows] = self._memory[: self._rows]
                self._memory = grown
            self._memory[self._rows : total] = block
        else:
            self._write(block, self._rows)
        self._rows = total

    def _spill(self) -> None:
        # Held open for the store's life (closed by close()): the file has no name from the start.
        self._file = tempfile.TemporaryFile(prefix="semsearch-vectors-")  # noqa: SIM115
        held = self._memory[: self._rows]
        self._memory = np.empty((0, self.dimension), dtype=np.float32)
        self._write(held, 0)

    def _write(self, block: Matrix, at: int) -> None:
        assert self._file is not None
        if not len(block):
            return
        fd, row = self._file.fileno(), self.dimension * 4
        if at + len(block) > self._capacity:
            # The file grows ahead of the rows (sparse until written), so that the mapping is
            # made again only when the size doubles.
            self._capacity = max(at + len(block), 2 * self._capacity)
            os.ftruncate(fd, self._capacity * row)
        data, offset = block.reshape(-1).view(np.uint8).data, at * row
        while len(data):
            written = os.pwrite(fd, data, offset)
            data, offset = data[written:], offset + written

    def view(self) -> Matrix:
        """Every row (a view: valid as long as it is referenced, rows appended later excluded)."""
        if self._file is None:
            return self._memory[: self._rows]
        size = self._capacity * self.dimension * 4
        if self._mapping is None or len(self._mapping) < size:
            # The previous mapping stays valid for views still referencing it.
            self._mapping = mmap.mmap(self._file.fileno(), size, access=mmap.ACCESS_READ)
        count = self._rows * self.dimension
        return np.frombuffer(self._mapping, np.float32, count).reshape(self._rows, self.dimension)

    def take(self, rows: npt.NDArray[np.int64]) -> Matrix:
        """A copy of ``rows``. From the temp file, a few rows are read (re-scoring, reused
        embeddings: mapping them would fault in 64 KB around each and keep it in this
        process); many go through the mapping, whose pages are dropped after."""
        if self._file is None:
            taken: Matrix = self._memory[rows]
            return taken
        if len(rows) > PREAD_ROWS:
            return gather(self.view(), rows, self.release)
        out = np.empty((len(rows), self.dimension), dtype=np.float32)
        fd, size = self._file.fileno(), self.dimension * 4
        for i, row in enumerate(rows.tolist()):
            if os.preadv(fd, [out[i]], row * size) != size:
                raise OSError(f"short read of row {row} from the vectors' temp file")
        return out

    def release(self, start: int = 0, stop: int | None = None) -> None:
        row = self.dimension * 4
        stop = self._rows if stop is None else stop
        _drop_pages(self._mapping, start * row, stop * row)

    def close(self) -> None:
        """Forget every row; the temp file goes once no view references its mapping."""
        if self._file is not None:
            self._file.close()
        self._file, self._mapping, self._capacity, self._rows = None, None, 0, 0
        self._memory = np.empty((0, self.dimension), dtype=np.float32)
