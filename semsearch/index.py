"""Index: the facade that ties reading, chunking, embedding, an engine, search and answers."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .answers import Answer, AnswerContext, Answerer, SentenceAnswerer
from .embeddings import DEFAULT_MODEL, Backend, Embedder
from .embeddings.embedder import embedder_for
from .engines import ClosedEngine, Engine, IndexSettings, is_milvus, new_engine, open_engine
from .errors import InputError, SemsearchError
from .indexing import AddReport, add_documents
from .ingest import DEFAULT_MAX_FILE_BYTES
from .passages import ChunkSettings
from .retrieval import Mode, encode_queries, search
from .types import Document, Filters, Hit, Matrix, Passage

if TYPE_CHECKING:
    from .retrieval.rerank import Reranker

__all__ = ["AddReport", "Index"]

QUESTION_BATCH = 256
"""Questions retrieved and answered together by ``Index.ask_many`` (bounds memory)."""

_DEFAULT_ANSWERER = SentenceAnswerer()
"""Shared by every Index: its sentence-vector cache serves questions about the same articles."""


class Index:
    """A searchable collection of documents, kept by a storage engine: by default a directory
    it is saved to and loaded from; with ``engine="milvus://HOST:PORT/NAME"`` (a Milvus server)
    or ``engine="milvus:PATH.db"`` (Milvus Lite), Milvus collections written as documents are
    added."""

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
        engine: str | None = None,
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
        self._engine: Engine = new_engine(
            engine, vector_index=vector_index, memory_budget=memory_budget
        )
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
    def path(self) -> Path | None:
        """The directory the index was loaded from or last saved to (None for Milvus)."""
        location = self._engine.location
        return None if location is None or is_milvus(location) else Path(location)

    @property
    def location(self) -> str | None:
        """Where the index is kept: its directory, or its Milvus address (without secrets)."""
        return self._engine.location

    def _index_settings(self) -> IndexSettings:
        stored = self._engine.settings
        return IndexSettings(
            model=self.embedder.name,
            backend=self.embedder.backend,
            dimension=self.embedder.dimension if stored is None else stored.dimension,
            max_tokens=self.settings.max_tokens,
            overlap=self.settings.overlap,
            include_title=self.include_title,
        )

    def configure_vectors(
        self, *, vector_index: str | None = None, memory_budget: int | None = None
    ) -> None:
        """Choose the FAISS index type (``auto``: by corpus size; or flat, ivf-sq8, ivf-pq) and
        the memory budget in bytes that ``auto`` keeps the search structure within; ``None``
        keeps the current setting. A built index that no longer fits is rebuilt now from its
        stored vectors, never re-embedded."""
        self._engine.configure_vectors(vector_index=vector_index, memory_budget=memory_budget)

    # -- reading -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._engine.counts()[0]

    @property
    def passage_count(self) -> int:
        return self._engine.counts()[1]

    def __contains__(self, doc_id: object) -> bool:
        return isinstance(doc_id, str) and self._engine.has_documents([doc_id])[0]

    def document(self, doc_id: str) -> Document:
        doc = self._engine.document(doc_id)
        if doc is None:
            raise KeyError(doc_id)
        return doc

    def documents(self) -> Iterator[Document]:
        return self._engine.documents()

    def passages(self, doc_id: str) -> list[Passage]:
        return self._engine.passages(doc_id)

    # -- writing -------------------------------------------------------------------------------

    def add(self, documents: Iterable[Document] | Document, *, progress: bool = False) -> AddReport:
        """Add documents; a document whose id is present replaces it. All or nothing: if any
        document fails, the index is left exactly as it was."""
        docs = [documents] if isinstance(documents, Document) else documents
        return add_documents(
            self._engine, self.embedder, self._index_settings(), docs, progress=progress
        )

    def add_with_ray(
        self,
        paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        *,
        address: str | None = None,
        workers: int | None = None,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        strict: bool = False,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        progress: bool = False,
    ) -> AddReport:
        """``add(read_articles(paths, ...))`` with the files read, chunked and embedded on a
        Ray cluster (``address``; None or "auto" starts a local Ray) by ``workers`` actors
        that load the model once each; documents stream back and are written here, all or
        nothing. Needs the ``[ray]`` extra."""
        from .distributed import RayOptions, add_files

        given = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        return add_files(
            self._engine,
            self.embedder,
            self._index_settings(),
            self.settings,
            given,
            options=RayOptions(address=address, workers=workers),
            include=include,
            exclude=exclude,
            strict=strict,
            max_file_bytes=max_file_bytes,
            progress=progress,
        )

    def remove(self, doc_ids: str | Iterable[str]) -> int:
        """Remove documents by id; returns passages removed. Unknown ids fail before any change."""
        ids = [doc_ids] if isinstance(doc_ids, str) else list(doc_ids)
        held = self._engine.has_documents(ids)
        unknown = [d for d, found in zip(ids, held, strict=True) if not found]
        if unknown:
            raise SemsearchError(
                f"no document with id {', '.join(map(repr, unknown))} in the index"
            )
        return self._engine.remove(ids)

    # -- searching -----------------------------------------------------------------------------

    def search(
        self,
        query: str,
        *,
        k: int = 10,
        filters: Filters | None = None,
        mode: Mode = "hybrid",
        reranker: Reranker | None = None,
        recency: bool | None = None,
    ) -> list[Hit]:
        """The ``k`` passages that best match ``query``, best first, among those passing
        ``filters``; a passage duplicating a better-ranked one (same or near-same text) is left
        out.

        ``mode`` is "dense" (embeddings), "lexical" (BM25) or "hybrid" (both, fused; the best
        on every benchmark we measured). Filtering happens inside the search, so ``k`` hits come
        back whenever ``k`` qualify (in lexical mode: ``k`` sharing a query term). ``reranker``
        reorders the fused candidates with a cross-encoder. ``recency`` favours recent articles
        in hybrid mode: by default (None) for a query that names a recent time ("this week",
        "yesterday", "recently"), with True for every query, with False never.
        """
        return self.search_many(
            [query], k=k, filters=filters, mode=mode, reranker=reranker, recency=recency
        )[0]

    def search_many(
        self,
        queries: Sequence[str],
        *,
        k: int = 10,
        filters: Filters | None = None,
        mode: Mode = "hybrid",
        reranker: Reranker | None = None,
        query_vectors: Matrix | None = None,
        recency: bool | None = None,
    ) -> list[list[Hit]]:
        """``search`` for many queries at once, embedded in batches (or given as
        ``query_vectors``, one row per query, to reuse embeddings the caller already has)."""
        if k < 1:
            raise InputError(None, f"k must be at least 1, got {k}")
        queries = list(queries)
        if not queries:
            return []
        return search(
            self._engine,
            self.embedder,
            queries,
            k=k,
            mode=mode,
            filters=filters or Filters(),
            reranker=reranker,
            query_vectors=query_vectors,
            recency=recency,
        )

    def ask(
        self,
        question: str,
        *,
        k: int = 5,
        filters: Filters | None = None,
        answerer: Answerer | None = None,
        recency: bool | None = None,
    ) -> Answer:
        """Answer ``question`` from the ``k`` best passages with cited quotes, or abstain.

        ``filters`` and ``recency`` are those of ``search``; ``answerer`` defaults to the
        model-free ``semsearch.SentenceAnswerer``.
        """
        return self.ask_many([question], k=k, filters=filters, answerer=answerer, recency=recency)[
            0
        ]

    def ask_many(
        self,
        questions: Sequence[str],
        *,
        k: int = 5,
        filters: Filters | None = None,
        answerer: Answerer | None = None,
        recency: bool | None = None,
    ) -> list[Answer]:
        """``ask`` for many questions, retrieved and embedded in batches."""
        questions = list(questions)
        answers: list[Answer] = []
        context = self.answer_context()
        for i in range(0, len(questions), QUESTION_BATCH):
            batch = questions[i : i + QUESTION_BATCH]
            # Embedded once: the search and the answerer both use these vectors.
            vectors = encode_queries(self.embedder, batch)
            hits = self.search_many(
                batch, k=k, filters=filters, query_vectors=vectors, recency=recency
            )
            chosen = answerer or _DEFAULT_ANSWERER
            answers.extend(chosen.answer_many(context, batch, hits, query_vectors=vectors))
        return answers

    def answer_context(self) -> AnswerContext:
        """What an ``semsearch.Answerer`` may use of this index: its embedder, stored
        passage vectors and documents."""
        embedder = self.embedder
        return AnswerContext(
            model_name=embedder.name,
            embed=lambda texts: embedder.encode(list(texts)),
            passage_vectors=self._engine.passage_vectors,
            document=self._engine.document,
        )

    # -- persistence ---------------------------------------------------------------------------

    def info(self, *, files: bool = False, check_recall: bool = False) -> dict[str, Any]:
        """What the index holds and how: model, counts, chunking, vector index, duplicates.
        ``files`` adds the saved files and their sizes; ``check_recall`` measures recall@10 of
        the vector search against exact search."""
        info = self._engine.info(files=files, check_recall=check_recall)
        head: dict[str, Any] = {k: info.pop(k) for k in ("path", "format_version") if k in info}
        body: dict[str, Any] = {
            k: info.pop(k)
            for k in ("dimension", "index_type", "documents", "passages", "vectors")
            if k in info
        }
        chunking = None
        if self._settings is not None:
            chunking = {
                "max_tokens": self._settings.max_tokens,
                "overlap": self._settings.overlap,
                "include_title": self.include_title,
            }
        return {
            **head,
            "model": self.embedder.name,
            "backend": self.embedder.backend,
            **body,
            "chunking": chunking,
            **info,
        }

    def save(self, path: str | Path | None = None) -> Path | str:
        """Save atomically: a crash at any moment leaves the previous save loadable and intact.
        A Milvus index is written as documents are added; saving flushes it where it is (and
        returns its address)."""
        if path is None and self._engine.location is None:
            raise SemsearchError("this index has no directory yet: pass save(path)")
        location = None if path is None else str(path)
        saved = self._engine.save(self._index_settings(), location)
        return saved if is_milvus(saved) else Path(saved)

    def close(self) -> None:
        """Release the index's open files (a Milvus index: this process's connection to it);
        using it afterwards is an error. Closing saves nothing. ``with Index.load(path) as
        index:`` closes it when the block ends."""
        engine, self._engine = self._engine, ClosedEngine(self._engine.location)
        engine.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        model: str | Embedder | None = None,
        backend: Backend | None = None,
    ) -> Index:
        """Open a saved index (a directory, or a ``milvus:`` address), verifying what it reads
        before trusting any of it; ``model``, when given, must be the model the index was
        built with. ``backend`` defaults to int8 for an index built with int8, else to the
        bundled model's ONNX export (no torch: a fast start) or the backend the index was built
        with; it must give vectors of the same precision."""
        engine = open_engine(path)
        path = engine.location or path  # errors name a Milvus address without its secrets
        built = engine.settings
        if built is None:
            raise SemsearchError(f"{path}: holds no index settings")
        embedder = embedder_for(built.model, built.backend, str(path), model, backend)
        index = cls(
            model=embedder,
            max_tokens=built.max_tokens,
            overlap=built.overlap,
            include_title=built.include_title,
        )
        index._settings = ChunkSettings(max_tokens=built.max_tokens, overlap=built.overlap)
        index._engine = engine
        return index
