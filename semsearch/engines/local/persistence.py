"""Saving and opening the local engine's directory: one manifest generation, verified on open."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...embeddings import BACKENDS
from ...errors import IndexFormatError, SemsearchError
from ..base import IndexSettings
from . import manifest
from .dedup import Duplicates
from .lexical import LexicalIndex
from .store import Store
from .vectors import VectorIndex
from .vectors.files import open_vectors, vector_writers


@dataclass
class Parts:
    """The four parts of a local index and the next passage id to hand out."""

    store: Store
    vectors: VectorIndex
    lexical: LexicalIndex
    duplicates: Duplicates
    next_id: int


def save(target: Path, parts: Parts, settings: IndexSettings) -> dict[str, Any]:
    """Write every part as a new generation, then switch the manifest to it atomically; returns
    the manifest written."""
    if not target.exists() and target.parent.is_dir():
        target.mkdir()
    manifest.check_writable(target)
    vectors = parts.vectors
    docs, passages = parts.store.counts()
    written = {
        "model": {
            "name": settings.model,
            "dimension": vectors.dimension,
            "backend": settings.backend,
        },
        "index_type": vectors.config.backend,
        "vector_index": {**vectors.config.to_json(), "memory_budget": vectors.memory_budget},
        "chunking": settings.chunking(),
        "counts": {"documents": docs, "passages": passages},
        "next_id": parts.next_id,
    }
    writers = {
        **vector_writers(vectors),
        "store.sqlite": parts.store.save,
        **parts.lexical.writers(),
        **parts.duplicates.writers(),
    }
    # The parts must agree before anything is written, and the store as written must hold what
    # it held in memory, before the commit: otherwise the save fails and the previous stays.
    try:
        _check_consistent(parts, target, vectors.dimension, written["counts"])
    except IndexFormatError as exc:
        raise SemsearchError(f"{exc}; not saved, the saved index is unchanged") from None

    def verify(files: dict[str, Path]) -> None:
        path = files["store.sqlite"]
        try:
            saved = Store.load(path)
        except (ValueError, sqlite3.Error) as exc:
            raise SemsearchError(f"{path}: store unreadable as written ({exc})") from None
        try:
            same = saved.counts() == (docs, passages)
        finally:
            saved.close()
        if not same:
            raise SemsearchError(
                f"{path}: the store as written differs from the index in memory; not saved, "
                "the saved index is unchanged"
            )

    try:
        with manifest.locked(target):
            return manifest.write_generation(target, writers, written, verify)
    except OSError as exc:
        raise SemsearchError(f"{target}: cannot save the index ({exc.strerror or exc})") from None


def open_directory(directory: Path) -> tuple[Parts, IndexSettings, dict[str, Any]]:
    """Open a saved index, verifying every file before trusting any of it; returns its parts,
    the settings it was built with and its manifest."""
    saved = manifest.read_manifest(directory)
    settings = _settings(directory, saved)
    counts = saved["counts"]
    files = saved["files"]
    try:
        ann = manifest.file_path(directory, saved, "ann.faiss") if "ann.faiss" in files else None
        parts = Parts(
            vectors=open_vectors(
                manifest.part_files(directory, saved, "vectors"), ann, saved.get("vector_index")
            ),
            store=Store.load(manifest.file_path(directory, saved, "store.sqlite")),
            lexical=LexicalIndex.open(manifest.part_files(directory, saved, "lexical")),
            duplicates=Duplicates.open(manifest.part_files(directory, saved, "dedup")),
            next_id=int(saved["next_id"]),
        )
    except (RuntimeError, OSError, sqlite3.Error, ValueError, KeyError) as exc:
        # FAISS reports a bad file as RuntimeError; SQLite as sqlite3.Error.
        raise IndexFormatError(f"{directory}: cannot read the index files ({exc})") from None
    _check_consistent(parts, directory, settings.dimension, counts)
    return parts, settings, saved


def _settings(directory: Path, saved: dict[str, Any]) -> IndexSettings:
    """The settings a manifest records, checked as data (types and bounds)."""
    where = directory / manifest.MANIFEST

    def field(value: Any, name: str, check: Callable[[Any], bool]) -> Any:
        if not check(value):
            raise IndexFormatError(f"{where}: not a valid manifest ({name} = {value!r})")
        return value

    def number(low: int, high: int) -> Callable[[Any], bool]:
        return lambda v: type(v) is int and low <= v <= high

    model, chunking = saved.get("model"), saved.get("chunking")
    if not isinstance(model, dict) or not isinstance(chunking, dict):
        raise IndexFormatError(f"{where}: not a valid manifest (missing fields)")
    # Indexes of format 2 carry no backend: they were all built with torch.
    backend = field(model.get("backend", "torch"), "model.backend", lambda v: v in BACKENDS)
    settings = IndexSettings(
        model=field(model.get("name"), "model.name", lambda v: isinstance(v, str) and v != ""),
        dimension=field(model.get("dimension"), "model.dimension", number(1, 1 << 16)),
        backend=backend,
        max_tokens=field(chunking.get("max_tokens"), "chunking.max_tokens", number(1, 1 << 20)),
        overlap=field(chunking.get("overlap"), "chunking.overlap", number(0, 1 << 20)),
        include_title=field(
            chunking.get("include_title"), "chunking.include_title", lambda v: type(v) is bool
        ),
    )
    field(saved.get("next_id"), "next_id", number(1, 1 << 62))
    field(
        saved.get("counts"),
        "counts",
        lambda v: isinstance(v, dict) and all(number(0, 1 << 62)(c) for c in v.values()),
    )
    return settings


def _check_consistent(parts: Parts, directory: Path, dimension: int, counts: Any) -> None:
    """FAISS, SQLite and the manifest must tell the same story, id for id."""
    vectors = parts.vectors
    docs, passages = parts.store.counts()
    stored_ids = np.asarray(parts.store.passage_ids(), dtype=np.int64)
    problems = []
    if vectors.dimension != dimension:
        problems.append(f"vectors have dimension {vectors.dimension}, manifest says {dimension}")
    if (docs, passages) != (counts.get("documents"), counts.get("passages")):
        problems.append(
            f"store holds {docs} documents / {passages} passages, manifest says {counts}"
        )
    if len(vectors) != passages:
        problems.append(f"{len(vectors)} vectors for {passages} passages")
    elif not np.array_equal(np.sort(vectors.ids()), stored_ids):
        problems.append("vector ids differ from passage ids")
    for name, part in (("lexical", parts.lexical), ("duplicate", parts.duplicates)):
        if not np.array_equal(part.ids(), stored_ids):
            problems.append(f"{name} passage ids differ from the store's")
    if problems:
        raise IndexFormatError(f"{directory}: inconsistent index: {'; '.join(problems)}")
