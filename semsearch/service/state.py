"""The served index: concurrent readers on a snapshot, one writer thread that saves and swaps."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from ..embeddings import Embedder
from ..engines import is_milvus
from ..index import Index

T = TypeVar("T")


class ServedIndex:
    """An index opened for the service.

    Readers take ``with reading() as index:``: an Index nothing writes to, so any number of
    requests search it at once and each sees one state from start to end. Writes run one at a
    time on a thread of their own, on a second Index: the write, then the save (atomic, as
    every save is), and then, for a directory, a fresh snapshot loaded from what was saved
    replaces the old one. Requests already running finish on the old snapshot, whose files stay
    readable through their open handles; the last of them to finish closes it, so a service
    that writes often holds the files of at most the snapshots still being read. A Milvus
    index is read where it lives: its writes stay hidden from every search until they commit,
    so its snapshot is the live index.
    """

    def __init__(self, location: str | Path, *, model: str | Embedder | None = None) -> None:
        self.location: str | Path = location if is_milvus(location) else Path(location)
        self._snapshot = Index.load(self.location, model=model)
        self.embedder = self._snapshot.embedder
        # The model loads now, not on the first request: that client would wait seconds.
        _ = self.embedder.model
        self._writer: Index | None = None
        self._writes = ThreadPoolExecutor(max_workers=1, thread_name_prefix="semsearch-write")
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._readers: dict[Index, int] = {}  # snapshot (hashed by identity) -> reads running

    @property
    def local(self) -> bool:
        return not is_milvus(self.location)

    @contextmanager
    def reading(self) -> Iterator[Index]:
        """The index a read uses, from its first call to its last; it stays open until the
        block ends, though a write publishes a newer one meanwhile."""
        with self._lock:
            index = self._snapshot
            self._readers[index] = self._readers.get(index, 0) + 1
        try:
            yield index
        finally:
            with self._lock:
                reads = self._readers.pop(index) - 1
                if reads:
                    self._readers[index] = reads
                superseded = not reads and index is not self._snapshot
            if superseded:
                index.close()

    @property
    def open_snapshots(self) -> int:
        """How many snapshots are open: the current one and the superseded ones still read."""
        with self._lock:
            return 1 + sum(index is not self._snapshot for index in self._readers)

    def write(self, change: Callable[[Index], T]) -> T:
        """Run ``change`` on the writing index, save, and publish the result to readers. If it
        raises, nothing is published and the writing index is opened again from the last save
        (so no half-applied change survives in memory either)."""
        if self._closed.is_set():
            raise RuntimeError("the service is shutting down")
        return self._writes.submit(self._write, change).result()

    def _write(self, change: Callable[[Index], T]) -> T:
        if self._writer is None:
            self._writer = Index.load(self.location, model=self.embedder)
        try:
            result = change(self._writer)
            self._writer.save()
        except BaseException:
            self._writer = None
            raise
        if self.local:
            fresh = Index.load(self.location, model=self.embedder)
            with self._lock:
                old, self._snapshot = self._snapshot, fresh
                idle = old not in self._readers
            if idle:
                old.close()
        return result

    def close(self) -> None:
        """Wait for a running write to finish, refuse new ones, and close both indexes (the
        server calls this once no request is running)."""
        self._closed.set()
        self._writes.shutdown(wait=True)
        if self._writer is not None:
            self._writer.close()
        self._snapshot.close()
