"""Storage engines: where documents, passages, vectors and BM25 terms are kept and searched.

An engine is named by its location: a directory (the local engine) or a ``milvus:`` address
(the Milvus engine: ``milvus://HOST:PORT/NAME`` for a server, ``milvus:PATH.db`` for Milvus Lite).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import SemsearchError
from .base import (
    Candidates,
    ChangedDuringRead,
    ClosedEngine,
    DocumentPassages,
    Engine,
    EngineWriter,
    IndexSettings,
    Ranked,
)
from .local import LocalEngine
from .local import manifest as _manifest
from .milvus import Address, MilvusEngine, is_milvus

__all__ = [
    "Candidates",
    "ChangedDuringRead",
    "ClosedEngine",
    "DocumentPassages",
    "Engine",
    "EngineWriter",
    "IndexSettings",
    "LocalEngine",
    "MilvusEngine",
    "Ranked",
    "check_writable",
    "exists",
    "is_milvus",
    "new_engine",
    "open_engine",
]


def new_engine(
    location: str | Path | None = None,
    *,
    vector_index: str = "auto",
    memory_budget: int | None = None,
) -> Engine:
    """An empty engine: local (its directory is given when it is first saved) unless
    ``location`` is a ``milvus:`` address, whose collections are created on the first write."""
    if location is not None and is_milvus(location):
        engine = MilvusEngine(Address.parse(str(location)), vector_index=vector_index)
        if memory_budget is not None:
            engine.configure_vectors(memory_budget=memory_budget)
        if engine.settings is not None:
            raise SemsearchError(f"{engine.location}: an index exists there already; load it")
        return engine
    return LocalEngine(vector_index=vector_index, memory_budget=memory_budget)


def open_engine(location: str | Path) -> Engine:
    """Open the saved index at ``location``, verifying what it reads."""
    if is_milvus(location):
        return MilvusEngine.open(str(location))
    return LocalEngine.open(Path(location))


def exists(location: str | Path) -> bool:
    """Whether an index has been saved at ``location``."""
    if is_milvus(location):
        return MilvusEngine(Address.parse(str(location))).settings is not None
    return (Path(location) / _manifest.MANIFEST).is_file()


def check_writable(location: str | Path) -> None:
    """Refuse, with one clear error, a location an index cannot be saved to (before any slow
    work such as embedding)."""
    if is_milvus(location):
        MilvusEngine(Address.parse(str(location)))  # connects: an unreachable server fails now
        return
    target = Path(location)
    if target.exists() and not target.is_dir():
        raise SemsearchError(f"{target}: not a directory")
    if target.exists():
        _manifest.check_writable(target)
    elif not target.parent.is_dir():
        raise SemsearchError(f"{target.parent}: directory does not exist")
    elif not os.access(target.parent, os.W_OK):
        raise SemsearchError(f"{target.parent}: directory is read-only")
