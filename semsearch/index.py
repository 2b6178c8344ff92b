"""Index: passages, vectors and documents kept in step; add, remove, search, save and load."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .embeddings.embedder import DEFAULT_MODEL, Backend, Embedder, Vectors
from .engines.local import manifest as mf
from .engines.local.dedup.groups import Duplicates, duplicate_report
from .engines.local.lexical.index import LexicalIndex
from .engines.local.persistence import chunking, load_index, save_index
from .engines.local.store.store import Store
from .engines.local.vectors.index import VectorIndex
from .engines.local.vectors.ivf import BACKENDS as VECTOR_BACKENDS
from .errors import InputError, SemsearchError
from .indexing import AddReport, add_documents
from .passages import ChunkSettings
from .retrieval.search import Filters, Mode, Parts, run_search
from .types import Document, Hit, Passage

if TYPE_CHECKING:
    from .answers.compose import Answer, Answerer
    from .retrieval.rerank import Reranker

__all__ = ["AddReport", "Index"]


class Index:
    """A searchable collection of documents, saved to and loaded from a directory."""

    def __init__(
        self,
        *,
        model: str | Embedder = DEFAULT_MODEL,
        backend: Backend | None = None,
        max_tokens: int | None = None,
        overlap: int = 0,
        include_title: bool = True,
        vector_index: str = "auto",
        memory_budget: int | None = None,
    ) -> None:
        if isinstance(model, Embedder):
            if backend is not None and backend != model.backend:
                raise ValueError(
                    f"backend {backend!r} differs from the embedder's {model.backend!r}"
                )
            self.embedder = model
        else:
            self.embedder = Embedder(model, backend=backend)
        self._requested_tokens = max_tokens
        self._overlap = overlap
        self.include_title = include_title
        self._settings: ChunkSettings | None = None
        self._vectors: VectorIndex | None = None
        self._vector_options: dict[str, Any] = {}
        self.configure_vectors(vector_index=vector_index, memory_budget=memory_budget)
        self._store = Store()
        self._lexical = LexicalIndex()
        self._dups = Duplicates()
        self._next_id = 1
        self.path: Path | None = None
        if overlap < 0:
            raise ValueError(f"overlap must be 0 or more, got {overlap}")

    # -- configuration resolved from the model on first use ---------------------------------------

    @property
    def settings(self) -> ChunkSettings:
        if self._settings is None:
            limit = self.embedder.max_seq_length - self.embedder.special_tokens
            tokens = self._requested_tokens or limit
            if tokens > limit:
                raise ValueError(
                    f"max_tokens {tokens} exceeds the {limit} tokens {self.embedder.name} reads"
                )
            self._settings = ChunkSettings(max_tokens=tokens, overlap=self._overlap)
        return self._settings

    @property
    def vectors(self) -> VectorIndex:
        if self._vectors is None:
            self._vectors = VectorIndex(self.embedder.dimension, **self._vector_options)
        return self._vectors

    def configure_vectors(
        self, *, vector_index: str | None = None, memory_budget: int | None = None
    ) -> None:
        """Choose the FAISS index type (``auto``: by corpus size; or flat, ivf-sq8, ivf-pq) and
        the memory budget in bytes that ``auto`` keeps the search structure within; ``None``
        keeps the current setting. A built index that no longer fits is rebuilt now from its
        stored vectors, never re-embedded."""
        if vector_index not in (None, "auto", *VECTOR_BACKENDS):
            raise ValueError(
                f"unknown vector index {vector_index!r}; choose from auto, "
                f"{', '.join(VECTOR_BACKENDS)}"
            )
        if memory_budget is not None and memory_budget <= 0:
            raise ValueError(f"memory budget must be positive, got {memory_budget}")
        if vector_index is not None:
            self._vector_options["backend"] = vector_index
        if memory_budget is not None:
            self._vector_options["memory_budget"] = memory_budget
        if self._vectors is not None:
            self._vectors.retarget(backend=vector_index, memory_budget=memory_budget)

    # -- reading -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._store.counts()[0]

    @property
    def passage_count(self) -> int:
        return self._store.counts()[1]

    def __contains__(self, doc_id: object) -> bool:
        return isinstance(doc_id, str) and self._store.has_document(doc_id)

    def document(self, doc_id: str) -> Document:
        doc = self._store.document(doc_id)
        if doc is None:
            raise KeyError(doc_id)
        return doc

    def documents(self) -> Iterator[Document]:
        return self._store.documents()

    def passages(self, doc_id: str) -> list[Passage]:
        return self._store.passages(doc_id)

    # -- writing -------------------------------------------------------------------------------

    def add(self, documents: Iterable[Document] | Document, *, progress: bool = False) -> AddReport:
        """Add documents; a document whose id is present replaces it. All or nothing: if any
        document fails, the index is left exactly as it was."""
        return add_documents(
            self, [documents] if isinstance(documents, Document) else documents, progress=progress
        )

    def remove(self, doc_ids: str | Iterable[str]) -> int:
        """Remove documents by id; returns passages removed. Unknown ids fail before any change."""
        ids = [doc_ids] if isinstance(doc_ids, str) else list(doc_ids)
        unknown = [d for d in ids if not self._store.has_document(d)]
        if unknown:
            raise SemsearchError(
                f"no document with id {', '.join(map(repr, unknown))} in the index"
            )
        removed: list[int] = []
        with self._store.transaction():
            for doc_id in dict.fromkeys(ids):
                removed.extend(self._store.delete_document(doc_id))
        self._lexical.remove(removed)
        self._dups.remove(removed)
        return self.vectors.remove(np.asarray(removed, dtype=np.int64))

    # -- searching -----------------------------------------------------------------------------

    def search(
        self,
        query: str,
        *,
        k: int = 10,
        filters: Filters | None = None,
        mode: Mode = "hybrid",
        reranker: Reranker | None = None,
    ) -> list[Hit]:
        """The ``k`` passages that best match ``query``, best first, among those passing
        ``filters``; a passage duplicating a better-ranked one (same or near-same text) is left
        out.

        ``mode`` is "dense" (embeddings), "lexical" (BM25) or "hybrid" (both, fused; the best
        on every benchmark we measured). Filtering happens inside the search, so ``k`` hits come
        back whenever ``k`` qualify (in lexical mode: ``k`` sharing a query term). ``reranker``
        reorders the fused candidates with a cross-encoder.
        """
        return self.search_many([query], k=k, filters=filters, mode=mode, reranker=reranker)[0]

    def search_many(
        self,
        queries: Sequence[str],
        *,
        k: int = 10,
        filters: Filters | None = None,
        mode: Mode = "hybrid",
        reranker: Reranker | None = None,
        query_vectors: Vectors | None = None,
    ) -> list[list[Hit]]:
        """:meth:`search` for many queries at once, embedded in batches (or given as
        ``query_vectors``, one row per query, to reuse embeddings the caller already has)."""
        if k < 1:
            raise InputError(None, f"k must be at least 1, got {k}")
        queries = list(queries)
        if not queries:
            return []
        parts = Parts(self._store, self.vectors, self._lexical, self._dups, self.embedder)
        return run_search(
            parts,
            queries,
            k=k,
            mode=mode,
            filters=filters or Filters(),
            reranker=reranker,
            query_vectors=query_vectors,
        )

    def ask(
        self,
        question: str,
        *,
        k: int = 5,
        filters: Filters | None = None,
        answerer: Answerer | None = None,
    ) -> Answer:
        """Answer ``question`` from the ``k`` best passages with cited quotes, or abstain.

        ``filters`` are those of :meth:`search`; ``answerer`` defaults to the model-free
        :class:`~semsearch.answers.SentenceAnswerer`.
        """
        return self.ask_many([question], k=k, filters=filters, answerer=answerer)[0]

    def ask_many(
        self,
        questions: Sequence[str],
        *,
        k: int = 5,
        filters: Filters | None = None,
        answerer: Answerer | None = None,
    ) -> list[Answer]:
        """:meth:`ask` for many questions, retrieved and embedded in batches."""
        from .answers.compose import ask_many

        return ask_many(self, questions, k=k, filters=filters, answerer=answerer)

    # -- persistence ---------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        docs, passages = self._store.counts()
        return {
            "path": None if self.path is None else str(self.path),
            "format_version": mf.FORMAT_VERSION,
            "model": self.embedder.name,
            "backend": self.embedder.backend,
            "dimension": None if self._vectors is None else self._vectors.dimension,
            "index_type": VectorIndex.kind if self._vectors is None else self._vectors.kind,
            "documents": docs,
            "passages": passages,
            "vectors": 0 if self._vectors is None else len(self._vectors),
            "chunking": None if self._settings is None else chunking(self),
            "next_id": self._next_id,
            "duplicates": duplicate_report(self._dups, self._store),
        }

    def save(self, path: str | Path | None = None) -> Path:
        """Save atomically: a crash at any moment leaves the previous save loadable and intact."""
        target = Path(path) if path is not None else self.path
        if target is None:
            raise SemsearchError("this index has no directory yet: pass save(path)")
        save_index(self, target)
        self.path = target
        return target

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        model: str | Embedder | None = None,
        backend: Backend | None = None,
    ) -> Index:
        """Open a saved index, verifying every file before trusting any of it; ``model``, when
        given, must be the model the index was built with. ``backend`` defaults to int8 for an
        index built with int8, else to the bundled model's ONNX export (no torch: a fast start)
        or the backend the index was built with; it must give vectors of the same precision."""
        return load_index(cls, Path(path), model, backend)
