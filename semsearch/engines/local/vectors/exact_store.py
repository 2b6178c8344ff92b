"""The exact full-precision vectors keyed by 64-bit passage ids, outside private memory once large.

Rows are a saved file read in place (the base: never written) followed by appended rows (the
tail: in memory while small, then a deleted temp file). Removed rows are masked until the next
save or compaction writes the live rows, in id order, to a new file. Index.add hands out ids in
increasing order, so row order is id order and an id is found by binary search; ids added out of
order still work, through a sorted copy made again after each change (slower).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from ....types import Ids, Matrix
from . import rows as vector_rows
from .rows import SPILL_BYTES, SavedRows, TailRows, write_npy_header

# Removed rows are compacted away once they are this share of the rows (and at least COMPACT_MIN).
COMPACT_SHARE = 0.25
COMPACT_MIN = 4096
# Rows copied at once when writing or streaming: 16k x 384 float32 is 24 MB.
CHUNK_ROWS = 16384


class ExactStore:
    """Full-precision vectors by id: append, remove, look up, gather and scan."""

    def __init__(
        self,
        dimension: int,
        *,
        spill_bytes: int = SPILL_BYTES,
        base: SavedRows | None = None,
        base_ids: Ids | None = None,
    ) -> None:
        self.dimension = dimension
        self.spill_bytes = spill_bytes
        self._tail = TailRows(dimension, spill_bytes=spill_bytes)
        self._set_base(
            base or SavedRows(np.zeros((0, dimension), np.float32)),
            np.zeros(0, np.int64) if base_ids is None else base_ids,
        )

    def _set_base(self, base: SavedRows, ids: Ids) -> None:
        if len(base) != len(ids) or base.view().shape[1:] != (self.dimension,):
            raise ValueError(f"{len(ids)} ids for vectors of shape {base.view().shape}")
        self._base = base
        self._reset(ids)

    def _reset(self, ids: Ids) -> None:
        """Every row live, ``ids`` the ids of the base's rows then the tail's."""
        self._ids: Ids = np.array(ids, dtype=np.int64)  # grows by doubling; valid up to _n
        self._n = len(ids)
        self._alive: npt.NDArray[np.bool_] | None = None  # None: no row removed
        self._dead = 0
        self._sorted = bool(np.all(self._ids[1:] > self._ids[:-1]))
        self._lookup: tuple[Ids, Ids] | None = None  # (sorted ids, rows) when not _sorted
        if not self._sorted and len(np.unique(self._ids)) != self._n:
            raise ValueError("duplicate vector ids")

    # -- size and ids ------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._n - self._dead

    @property
    def mapped(self) -> bool:
        """True when rows are read from a file mapping rather than held in memory."""
        return self._base.mapped or self._tail.spilled

    def alive_rows(self) -> Ids:
        """Row numbers of the stored (not removed) vectors, in row order."""
        if self._alive is None:
            return np.arange(self._n, dtype=np.int64)
        return np.flatnonzero(self._alive[: self._n]).astype(np.int64)

    def ids(self) -> Ids:
        """Every stored id, in insertion order (id order after a save or compaction)."""
        live: Ids = self._ids[: self._n]
        return live.copy() if self._alive is None else live[self._alive[: self._n]]

    def ids_at(self, rows: Ids) -> Ids:
        found: Ids = self._ids[rows]
        return found

    def dead_in(self, start: int, stop: int) -> Ids:
        """Removed rows among rows [start, stop), relative to start."""
        if self._alive is None:
            return np.zeros(0, dtype=np.int64)
        return np.flatnonzero(~self._alive[start:stop]).astype(np.int64)

    def find(self, ids: Ids) -> Ids:
        """The row of each id, -1 where it is not stored."""
        keys = np.asarray(ids, dtype=np.int64)
        if self._sorted:
            sorted_ids, rows = self._ids[: self._n], None
        else:
            if self._lookup is None:
                live = self.alive_rows()
                order = np.argsort(self._ids[live], kind="stable")
                self._lookup = (self._ids[live][order], live[order])
            sorted_ids, rows = self._lookup
        if not len(sorted_ids):
            return np.full(len(keys), -1, dtype=np.int64)
        at = np.minimum(np.searchsorted(sorted_ids, keys), len(sorted_ids) - 1)
        hit = sorted_ids[at] == keys
        found = at if rows is None else rows[at]
        if self._alive is not None:
            hit &= self._alive[found]
        return np.where(hit, found, -1).astype(np.int64)

    # -- changes ---------------------------------------------------------------------------

    def add(self, ids: Ids, vectors: Matrix) -> None:
        keys = np.ascontiguousarray(ids, dtype=np.int64)
        if len(keys) != len(vectors) or (len(keys) and np.shape(vectors)[1:] != (self.dimension,)):
            raise ValueError(f"{len(keys)} ids for vectors of shape {np.shape(vectors)}")
        if not len(keys):
            return
        increasing = bool(np.all(keys[1:] > keys[:-1]))
        follows = increasing and (self._n == 0 or keys[0] > self._ids[self._n - 1])
        if not follows:
            if len(np.unique(keys)) != len(keys) or (self.find(keys) >= 0).any():
                raise ValueError("vector ids already stored (or repeated)")
            self._sorted = False
        total = self._n + len(keys)
        if total > len(self._ids):
            self._ids = np.resize(self._ids, max(total, 2 * len(self._ids), 1024))
            if self._alive is not None:
                self._alive = np.resize(self._alive, len(self._ids))
        self._tail.append(np.asarray(vectors, dtype=np.float32))
        self._ids[self._n : total] = keys
        if self._alive is not None:
            self._alive[self._n : total] = True
        self._n, self._lookup = total, None

    def remove(self, ids: Ids) -> int:
        rows = self.find(np.unique(np.asarray(ids, dtype=np.int64)))
        rows = rows[rows >= 0]
        if not len(rows):
            return 0
        if self._alive is None:
            self._alive = np.ones(len(self._ids), dtype=bool)
        self._alive[rows] = False
        self._dead += len(rows)
        self._lookup = None
        if self._dead >= max(COMPACT_MIN, COMPACT_SHARE * self._n):
            self.compact()
        return len(rows)

    # -- reading ---------------------------------------------------------------------------

    def parts(self) -> Iterator[tuple[int, Any]]:
        """(first row, rows object) of the base and of the tail, each with view() and release()."""
        yield 0, self._base
        yield len(self._base), self._tail

    def take(self, rows: Ids) -> Matrix:
        """A copy of the vectors at ``rows``, in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((len(rows), self.dimension), dtype=np.float32)
        split = len(self._base)
        low = rows < split
        if low.all():
            return self._take_base(rows) if len(rows) else out
        if not low.any():
            return self._tail.take(rows - split)
        out[low] = self._take_base(rows[low])
        out[~low] = self._tail.take(rows[~low] - split)
        return out

    def _take_base(self, rows: Ids) -> Matrix:
        # A few rows (re-scoring a query's candidates) stay mapped, as serving wants them.
        if len(rows) <= vector_rows.PREAD_ROWS:
            taken: Matrix = self._base.view()[rows]
            return taken
        return vector_rows.gather(self._base.view(), rows, self._base.release)

    def reconstruct(self, ids: Ids) -> Matrix:
        rows = self.find(ids)
        if (rows < 0).any():
            missing = np.asarray(ids)[rows < 0][:5].tolist()
            raise KeyError(f"vector ids not stored: {missing}")
        return self.take(rows)

    def release(self) -> None:
        """Drop mapped pages from this process (after a scan or gather that build work made)."""
        self._base.release()
        self._tail.release()

    def ordered_rows(self) -> Ids:
        """Live rows in id order."""
        if self._sorted:
            return self.alive_rows()
        self.find(np.zeros(0, dtype=np.int64))  # makes the sorted copy
        assert self._lookup is not None
        return self._lookup[1]

    def chunks(self, rows: Ids, size: int = CHUNK_ROWS) -> Iterator[Matrix]:
        """The vectors at ``rows`` in chunks, mapped pages dropped after each: a contiguous run
        inside one part is a view, anything else a copy."""
        split = len(self._base)
        for s in range(0, len(rows), size):
            part = rows[s : s + size]
            first, last = int(part[0]), int(part[-1])
            if last - first == len(part) - 1 and (last < split or first >= split):
                owner, at = (self._base, 0) if last < split else (self._tail, split)
                yield owner.view()[first - at : last + 1 - at]
                owner.release(first - at, last + 1 - at)
            else:
                yield self.take(part)
                self.release()

    # -- saving and compaction -------------------------------------------------------------

    def write(self, path: Path) -> None:
        """Write the live vectors in id order as a float32 ``.npy`` file, then read from it:
        the removed rows and the tail's memory or temp file go (the file is never written
        again, the manifest's generations keep it as it is)."""
        rows = self.ordered_rows()
        with open(path, "wb") as f:
            self._write_rows(f, rows)
        saved = SavedRows.open(path, self.dimension)
        ids = self._ids[rows]
        self._tail.close()
        self._set_base(saved, ids)

    def _write_rows(self, f: BinaryIO, rows: Ids) -> None:
        write_npy_header(f, len(rows), self.dimension)
        for chunk in self.chunks(rows):
            f.write(np.ascontiguousarray(chunk).reshape(-1).view(np.uint8).data)

    def close(self) -> None:
        self._tail.close()

    def compact(self) -> None:
        """Copy the live rows, in id order, into a new tail (memory or temp file)."""
        rows = self.ordered_rows()
        ids = self._ids[rows]
        tail = TailRows(self.dimension, spill_bytes=self.spill_bytes)
        for chunk in self.chunks(rows):
            tail.append(chunk)
        self._tail.close()
        self._base = SavedRows(np.zeros((0, self.dimension), np.float32))
        self._tail = tail
        self._reset(ids)

    def rows(self) -> Rows:
        """The live vectors as a read-only matrix in ``ids`` order, read when indexed."""
        return Rows(self)


class Rows:
    """Indexing (slices, row numbers) gives a copy of those live vectors; the pages of file rows
    read are dropped from this process after each read, so build work over every row (training,
    filling an index) holds one block at a time, not the store."""

    def __init__(self, store: ExactStore) -> None:
        self._store = store
        self._rows = store.alive_rows()
        self.shape = (len(self._rows), store.dimension)

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, key: Any) -> Matrix:
        out = self._store.take(self._rows[key])
        self._store.release()
        return out
