"""Storage engines: where documents, passages, vectors and BM25 terms are kept and searched.

An engine is named by its location: today a directory, opened by the local engine.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import SemsearchError
from .base import (
    Candidates,
    DocumentPassages,
    Engine,
    EngineWriter,
    IndexSettings,
    Ranked,
)
from .local import LocalEngine
from .local import manifest as _manifest

__all__ = [
    "Candidates",
    "DocumentPassages",
    "Engine",
    "EngineWriter",
    "IndexSettings",
    "LocalEngine",
    "Ranked",
    "check_writable",
    "exists",
    "new_engine",
    "open_engine",
]


def new_engine(*, vector_index: str = "auto", memory_budget: int | None = None) -> Engine:
    """An empty engine; its location is given when it is first saved."""
    return LocalEngine(vector_index=vector_index, memory_budget=memory_budget)


def open_engine(location: str | Path) -> Engine:
    """Open the saved index at ``location``, verifying what it reads."""
    return LocalEngine.open(Path(location))


def exists(location: str | Path) -> bool:
    """Whether an index has been saved at ``location``."""
    return (Path(location) / _manifest.MANIFEST).is_file()


def check_writable(location: str | Path) -> None:
    """Refuse, with one clear error, a location an index cannot be saved to (before any slow
    work such as embedding)."""
    target = Path(location)
    if target.exists() and not target.is_dir():
        raise SemsearchError(f"{target}: not a directory")
    if target.exists():
        _manifest.check_writable(target)
    elif not target.parent.is_dir():
        raise SemsearchError(f"{target.parent}: directory does not exist")
    elif not os.access(target.parent, os.W_OK):
        raise SemsearchError(f"{target.parent}: directory is read-only")
