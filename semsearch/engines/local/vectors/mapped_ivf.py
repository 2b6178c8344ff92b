"""A saved approximate FAISS index searched in place, its lists mapped from the file, and read
into memory before its first change."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from ..untrusted import handle_path, open_regular
from .ivf import faiss_module


class MappedAnn:
    """An IVF index opened with FAISS's ``IO_FLAG_MMAP``: only the coarse quantiser and the list
    sizes are read; codes and ids stay in the file and are paged in by the lists a search probes
    (page cache, shared and droppable, not the process's own memory).

    FAISS maps the lists read-only and aborts the whole process on a change to them, so the
    owner calls ``load`` before any change. The file is held open: a save copies its bytes
    (FAISS would write a reference to this file, not the lists), and ``load`` reads it,
    even after a later save has unlinked it.
    """

    def __init__(self, path: Path) -> None:
        faiss = faiss_module()
        self._file = open_regular(path)  # held while mapped
        try:
            self.index: Any = faiss.read_index(handle_path(self._file, path), faiss.IO_FLAG_MMAP)
        except BaseException:
            self._file.close()
            raise
        # Before each search FAISS would start threads to read ahead the lists it probes (for
        # lists on a slow disk): a thread start costs more than reading them from page cache.
        lists = faiss.downcast_InvertedLists(faiss.extract_index_ivf(self.index).invlists)
        lists.prefetch_nthread = 0

    def load(self) -> Any:
        """The same index, read into memory from the held file; this mapping is then closed."""
        faiss = faiss_module()
        self._file.seek(0)
        # Streamed from the file: deserialize_index would hold a second copy of it meanwhile.
        index = faiss.read_index(faiss.PyCallbackIOReader(self._file.read))
        self.close()
        return index

    def copy_to(self, path: Path) -> None:
        """Write the file as saved (the mapped index has not changed since: see ``load``)."""
        self._file.seek(0)
        with open(path, "wb") as out:
            shutil.copyfileobj(self._file, out, 1 << 20)

    def close(self) -> None:
        self.index = None  # FAISS unmaps the lists when the index is freed
        self._file.close()
