"""Saving and loading an index directory: one manifest generation, verified before it is used."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ...embeddings.embedder import (
    BACKENDS,
    Backend,
    Embedder,
    canonical_model_name,
    loading_backend,
    precision_of,
)
from ...errors import IndexFormatError, ModelMismatchError, SemsearchError
from ...passages import ChunkSettings
from . import manifest as mf
from .dedup.groups import Duplicates
from .lexical.index import LexicalIndex
from .store.store import Store
from .vectors.files import open_vectors, vector_writers

if TYPE_CHECKING:
    from ...index import Index


def chunking(index: Index) -> dict[str, Any]:
    settings = index.settings
    return {
        "max_tokens": settings.max_tokens,
        "overlap": settings.overlap,
        "include_title": index.include_title,
    }


def save_index(index: Index, target: Path) -> None:
    """Write every part as a new generation, then switch the manifest to it atomically."""
    if not target.exists() and target.parent.is_dir():
        target.mkdir()
    mf.check_writable(target)
    vectors = index.vectors
    docs, passages = index._store.counts()
    manifest = {
        "model": {
            "name": index.embedder.name,
            "dimension": vectors.dimension,
            "backend": index.embedder.backend,
        },
        "index_type": vectors.kind,
        "vector_index": {**vectors.config.to_json(), "memory_budget": vectors.memory_budget},
        "chunking": chunking(index),
        "counts": {"documents": docs, "passages": passages},
        "next_id": index._next_id,
    }
    writers = {
        **vector_writers(vectors),
        "store.sqlite": index._store.save,
        **index._lexical.writers(),
        **index._dups.writers(),
    }
    try:
        with mf.locked(target):
            mf.write_generation(target, writers, manifest)
    except OSError as exc:
        raise SemsearchError(f"{target}: cannot save the index ({exc.strerror or exc})") from None


def load_index(
    cls: type[Index],
    directory: Path,
    model: str | Embedder | None,
    backend: Backend | None = None,
) -> Index:
    """Open a saved index, verifying every file before trusting any of it."""
    manifest = mf.read_manifest(directory)
    try:
        built_with = str(manifest["model"]["name"])
        dimension = int(manifest["model"]["dimension"])
        # Indexes saved before backends existed were all built with torch.
        built_backend = str(manifest["model"].get("backend", "torch"))
        settings = ChunkSettings(
            max_tokens=int(manifest["chunking"]["max_tokens"]),
            overlap=int(manifest["chunking"]["overlap"]),
        )
        include_title = bool(manifest["chunking"]["include_title"])
        counts = manifest["counts"]
        next_id = int(manifest["next_id"])
    except (KeyError, TypeError, ValueError):
        raise IndexFormatError(
            f"{directory / mf.MANIFEST}: not a valid manifest (missing fields)"
        ) from None
    if built_backend not in BACKENDS:
        raise IndexFormatError(f"{directory / mf.MANIFEST}: unknown backend {built_backend!r}")
    if model is not None:
        wanted = model.name if isinstance(model, Embedder) else canonical_model_name(model)
        if wanted != built_with:
            raise ModelMismatchError(
                f"{directory}: index was built with model {built_with!r}, not {wanted!r}; "
                "rebuild it to change models"
            )
    if isinstance(model, Embedder):
        embedder = model
    else:
        chosen = backend or loading_backend(built_with, built_backend)
        embedder = Embedder(built_with, backend=chosen)
    if embedder.precision != precision_of(built_backend):
        raise ModelMismatchError(
            f"{directory}: index was built with the {built_backend} backend, whose vectors "
            f"differ from the {embedder.backend} backend's; rebuild it to change backends"
        )
    index = cls(
        model=embedder,
        max_tokens=settings.max_tokens,
        overlap=settings.overlap,
        include_title=include_title,
    )
    index._settings = settings
    files = manifest["files"]
    try:
        ann = mf.file_path(directory, manifest, "ann.faiss") if "ann.faiss" in files else None
        index._vectors = open_vectors(
            mf.part_files(directory, manifest, "vectors"), ann, manifest.get("vector_index")
        )
        index._store = Store.load(mf.file_path(directory, manifest, "store.sqlite"))
        index._lexical = LexicalIndex.open(mf.part_files(directory, manifest, "lexical"))
        index._dups = Duplicates.open(mf.part_files(directory, manifest, "dedup"))
    except (RuntimeError, OSError, sqlite3.Error, ValueError, KeyError) as exc:
        # FAISS reports a bad file as RuntimeError; SQLite as sqlite3.Error.
        raise IndexFormatError(f"{directory}: cannot read the index files ({exc})") from None
    _check_consistent(index, directory, dimension, counts)
    index._next_id = next_id
    index.path = directory
    return index


def _check_consistent(
    index: Index, directory: Path, dimension: int, counts: dict[str, Any]
) -> None:
    """FAISS, SQLite and the manifest must tell the same story, id for id."""
    vectors = index.vectors
    docs, passages = index._store.counts()
    stored_ids = np.asarray(index._store.passage_ids(), dtype=np.int64)
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
    for name, part in (("lexical", index._lexical), ("duplicate", index._dups)):
        if not np.array_equal(part.ids(), stored_ids):
            problems.append(f"{name} passage ids differ from the store's")
    if problems:
        raise IndexFormatError(f"{directory}: inconsistent index: {'; '.join(problems)}")
