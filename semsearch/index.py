"""Index: passages, vectors and documents kept in step; add, remove, search, save and load."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import manifest as mf
from .dedup import Duplicates, duplicate_report
from .embeddings import DEFAULT_MODEL, Embedder, canonical_model_name
from .errors import (
    IndexFormatError,
    InputError,
    ModelMismatchError,
    SemsearchError,
)
from .lexical import LexicalIndex, indexed_text
from .passages import ChunkSettings, chunk_text
from .rerank import Reranker
from .retrieval import Filters, Mode, Parts, run_search
from .store import Store
from .types import Document, Hit, Passage
from .vectors import VectorIndex

if TYPE_CHECKING:
    from .answers import Answer, Answerer

# Passages embedded per model call: large enough for the model to sort by length and pad little,
# small enough that a streamed ingest of a huge JSONL file holds little in memory at once.
_EMBED_BATCH = 1024


@dataclass(frozen=True)
class AddReport:
    """What one call of :meth:`Index.add` did."""

    added: int = 0
    replaced: int = 0
    unchanged: int = 0
    passages: int = 0
    embedded: int = 0
    """Passages whose vectors came from the model; the rest reused stored vectors."""


def _check_document(doc: Document) -> None:
    where = doc.source or doc.id or "document"
    if not isinstance(doc.id, str) or not doc.id:
        raise InputError(where, "document has no id")
    if not isinstance(doc.text, str) or not doc.text.strip():
        raise InputError(where, f"document {doc.id!r} has no text")
    try:
        (doc.text + doc.title).encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(
            where, f"document {doc.id!r} holds invalid Unicode (a lone surrogate)"
        ) from None


class Index:
    """A searchable collection of documents, saved to and loaded from a directory."""

    def __init__(
        self,
        *,
        model: str | Embedder = DEFAULT_MODEL,
        max_tokens: int | None = None,
        overlap: int = 0,
        include_title: bool = True,
    ) -> None:
        self.embedder = model if isinstance(model, Embedder) else Embedder(model)
        self._requested_tokens = max_tokens
        self._overlap = overlap
        self.include_title = include_title
        self._settings: ChunkSettings | None = None
        self._vectors: VectorIndex | None = None
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
            self._vectors = VectorIndex(self.embedder.dimension)
        return self._vectors

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

    def _embed_text(self, doc: Document, passage_text: str, title: str) -> str:
        return f"{title}\n\n{passage_text}" if title else passage_text

    def _chunk(self, doc: Document) -> tuple[list[Passage], list[str]]:
        """Passages of ``doc`` and the texts the model embeds for them."""
        settings = self.settings
        title = doc.title.strip() if self.include_title else ""
        budget = settings.max_tokens
        if title:
            spans = self.embedder.tokenizer.token_spans([title])[0]
            # A title may use a quarter of the budget at most; a longer one is cut for embedding.
            cap = max(1, settings.max_tokens // 4)
            if len(spans) > cap:
                title = title[: spans[cap - 1][1]]
            budget = max(1, settings.max_tokens - min(len(spans), cap))
        passages = chunk_text(
            doc.id,
            doc.text,
            tokenizer=self.embedder.tokenizer,
            settings=settings,
            max_tokens=budget,
        )
        return passages, [self._embed_text(doc, p.text, title) for p in passages]

    def add(self, documents: Iterable[Document] | Document, *, progress: bool = False) -> AddReport:
        """Add documents; a document whose id is present replaces it. All or nothing: if any
        document fails, the index is left exactly as it was."""
        if isinstance(documents, Document):
            documents = [documents]
        counts = {"added": 0, "replaced": 0, "unchanged": 0, "passages": 0, "embedded": 0}
        new_ids: list[int] = []
        old_ids: list[int] = []
        db = self._store.db
        bar = _progress(progress)
        db.execute("BEGIN")
        try:
            pending: list[tuple[Document, list[Passage], list[str]]] = []
            pending_passages = 0
            for doc in documents:
                _check_document(doc)
                if self._store.same_document(doc):
                    counts["unchanged"] += 1
                    continue
                passages, texts = self._chunk(doc)
                pending.append((doc, passages, texts))
                pending_passages += len(passages)
                if pending_passages >= _EMBED_BATCH:
                    self._flush(pending, counts, new_ids, old_ids, bar)
                    pending, pending_passages = [], 0
            self._flush(pending, counts, new_ids, old_ids, bar)
        except BaseException:
            db.execute("ROLLBACK")
            self.vectors.remove(np.asarray(new_ids, dtype=np.int64))
            self._lexical.remove(new_ids)
            self._dups.remove(new_ids)
            raise
        finally:
            if bar is not None:
                bar.close()
        db.execute("COMMIT")
        # Replaced passages leave FAISS only now: until the commit they were the rollback state
        # and the source of reused embeddings.
        self.vectors.remove(np.asarray(old_ids, dtype=np.int64))
        self._lexical.remove(old_ids)
        self._dups.remove(old_ids)
        return AddReport(**counts)

    def _flush(
        self,
        pending: list[tuple[Document, list[Passage], list[str]]],
        counts: dict[str, int],
        new_ids: list[int],
        old_ids: list[int],
        bar: Any,
    ) -> None:
        if not pending:
            return
        keys = [self.embedder.cache_key(t) for _, _, texts in pending for t in texts]
        texts = [t for _, _, ts in pending for t in ts]
        # Reuse stored vectors of identical texts (looked up before replaced rows are deleted).
        known = self._store.ids_for_keys(keys)
        missing: dict[str, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key not in known:
                missing.setdefault(key, text)
        vectors = np.empty((len(keys), self.vectors.dimension), dtype=np.float32)
        fresh = dict(zip(missing, self.embedder.encode(list(missing.values())), strict=True))
        reused_ids = np.asarray([known[k] for k in keys if k in known], dtype=np.int64)
        reused = dict(
            zip((k for k in keys if k in known), self.vectors.reconstruct(reused_ids), strict=True)
        )
        for row, key in enumerate(keys):
            vectors[row] = fresh[key] if key in fresh else reused[key]
        ids: list[int] = []
        lexical_texts: list[str] = []
        passage_texts: list[str] = []
        for doc, passages, doc_texts in pending:
            if self._store.has_document(doc.id):
                old_ids.extend(self._store.delete_document(doc.id))
                counts["replaced"] += 1
            else:
                counts["added"] += 1
            stored = [
                Passage(p.doc_id, p.ordinal, p.start, p.end, p.text, id=self._next_id + i)
                for i, p in enumerate(passages)
            ]
            self._next_id += len(passages)
            self._store.put_document(doc)
            self._store.put_passages(stored, [self.embedder.cache_key(t) for t in doc_texts])
            ids.extend(p.id for p in stored)
            title = doc.title if self.include_title else ""
            lexical_texts.extend(indexed_text(title, p.text) for p in stored)
            passage_texts.extend(p.text for p in stored)
        id_array = np.asarray(ids, dtype=np.int64)
        self.vectors.add(id_array, vectors)
        new_ids.extend(ids)
        # After new_ids: a failure part-way through these is rolled back like the vectors.
        self._lexical.add(ids, lexical_texts)
        self._dups.add(ids, passage_texts)
        counts["passages"] += len(ids)
        counts["embedded"] += len(missing)
        if bar is not None:
            bar.update(len(ids))

    def remove(self, doc_ids: str | Iterable[str]) -> int:
        """Remove documents by id; returns passages removed. Unknown ids fail before any change."""
        ids = [doc_ids] if isinstance(doc_ids, str) else list(doc_ids)
        unknown = [d for d in ids if not self._store.has_document(d)]
        if unknown:
            raise SemsearchError(
                f"no document with id {', '.join(map(repr, unknown))} in the index"
            )
        db = self._store.db
        db.execute("BEGIN")
        removed: list[int] = []
        for doc_id in dict.fromkeys(ids):
            removed.extend(self._store.delete_document(doc_id))
        db.execute("COMMIT")
        self._lexical.remove(removed)
        self._dups.remove(removed)
        return self.vectors.remove(np.asarray(removed, dtype=np.int64))

    # -- searching -----------------------------------------------------------------------------

    def search(
        self,
        query: str,
        *,
        k: int = 10,
        date_from: str | dt.date | None = None,
        date_to: str | dt.date | None = None,
        sources: Sequence[str] | None = None,
        doc_ids: Sequence[str] | None = None,
        mode: Mode = "hybrid",
        reranker: Reranker | None = None,
    ) -> list[Hit]:
        """The ``k`` passages that best match ``query``, best first, among those passing the
        filters; a passage duplicating a better-ranked one (same or near-same text) is left out.

        ``mode`` is "dense" (embeddings), "lexical" (BM25) or "hybrid" (both, fused; the best
        on every benchmark we measured). ``date_from``/``date_to`` are inclusive ISO dates
        (documents without a date fail a date filter); ``sources`` are exact sources or glob
        patterns; ``doc_ids`` limits to documents. Filtering happens inside the search, so ``k``
        hits come back whenever ``k`` qualify (in lexical mode: ``k`` sharing a query term).
        ``reranker`` reorders the fused candidates with a cross-encoder.
        """
        return self.search_many(
            [query],
            k=k,
            date_from=date_from,
            date_to=date_to,
            sources=sources,
            doc_ids=doc_ids,
            mode=mode,
            reranker=reranker,
        )[0]

    def search_many(
        self,
        queries: Sequence[str],
        *,
        k: int = 10,
        date_from: str | dt.date | None = None,
        date_to: str | dt.date | None = None,
        sources: Sequence[str] | None = None,
        doc_ids: Sequence[str] | None = None,
        mode: Mode = "hybrid",
        reranker: Reranker | None = None,
    ) -> list[list[Hit]]:
        """:meth:`search` for many queries at once, embedded in batches."""
        if k < 1:
            raise InputError(None, f"k must be at least 1, got {k}")
        queries = list(queries)
        if not queries:
            return []
        parts = Parts(self._store, self.vectors, self._lexical, self._dups, self.embedder)
        filters = Filters(date_from=date_from, date_to=date_to, sources=sources, doc_ids=doc_ids)
        return run_search(parts, queries, k=k, mode=mode, filters=filters, reranker=reranker)

    def ask(
        self,
        question: str,
        *,
        k: int = 5,
        date_from: str | dt.date | None = None,
        date_to: str | dt.date | None = None,
        sources: Sequence[str] | None = None,
        doc_ids: Sequence[str] | None = None,
        answerer: Answerer | None = None,
    ) -> Answer:
        """Answer ``question`` from the ``k`` best passages with cited quotes, or abstain.

        Filters are those of :meth:`search`; ``answerer`` defaults to the model-free
        :class:`~semsearch.answers.SentenceAnswerer`.
        """
        return self.ask_many(
            [question],
            k=k,
            date_from=date_from,
            date_to=date_to,
            sources=sources,
            doc_ids=doc_ids,
            answerer=answerer,
        )[0]

    def ask_many(
        self,
        questions: Sequence[str],
        *,
        k: int = 5,
        date_from: str | dt.date | None = None,
        date_to: str | dt.date | None = None,
        sources: Sequence[str] | None = None,
        doc_ids: Sequence[str] | None = None,
        answerer: Answerer | None = None,
    ) -> list[Answer]:
        """:meth:`ask` for many questions, retrieved and embedded in batches."""
        from .answers import ask_many

        return ask_many(
            self,
            questions,
            k=k,
            answerer=answerer,
            date_from=date_from,
            date_to=date_to,
            sources=sources,
            doc_ids=doc_ids,
        )

    # -- persistence ---------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        docs, passages = self._store.counts()
        settings = self._settings
        return {
            "path": None if self.path is None else str(self.path),
            "format_version": mf.FORMAT_VERSION,
            "model": self.embedder.name,
            "dimension": None if self._vectors is None else self._vectors.dimension,
            "index_type": VectorIndex.kind,
            "documents": docs,
            "passages": passages,
            "vectors": 0 if self._vectors is None else len(self._vectors),
            "chunking": None
            if settings is None
            else {
                "max_tokens": settings.max_tokens,
                "overlap": settings.overlap,
                "include_title": self.include_title,
            },
            "next_id": self._next_id,
            "duplicates": duplicate_report(self._dups, self._store),
        }

    def save(self, path: str | Path | None = None) -> Path:
        """Save atomically: a crash at any moment leaves the previous save loadable and intact."""
        target = Path(path) if path is not None else self.path
        if target is None:
            raise SemsearchError("this index has no directory yet: pass save(path)")
        if not target.exists() and target.parent.is_dir():
            target.mkdir()
        mf.check_writable(target)
        settings, vectors = self.settings, self.vectors
        docs, passages = self._store.counts()
        manifest = {
            "model": {"name": self.embedder.name, "dimension": vectors.dimension},
            "index_type": VectorIndex.kind,
            "chunking": {
                "max_tokens": settings.max_tokens,
                "overlap": settings.overlap,
                "include_title": self.include_title,
            },
            "counts": {"documents": docs, "passages": passages},
            "next_id": self._next_id,
        }
        data = vectors.to_bytes()
        writers = {
            "vectors.faiss": lambda p: _write_bytes(p, data),
            "store.sqlite": self._store.save,
            "lexical.npz": self._lexical.save,
            "dedup.npz": self._dups.save,
        }
        try:
            with mf.locked(target):
                mf.write_generation(target, writers, manifest)
        except OSError as exc:
            raise SemsearchError(
                f"{target}: cannot save the index ({exc.strerror or exc})"
            ) from None
        self.path = target
        return target

    @classmethod
    def load(cls, path: str | Path, *, model: str | Embedder | None = None) -> Index:
        """Open a saved index, verifying every file before trusting any of it."""
        directory = Path(path)
        manifest = mf.read_manifest(directory)
        try:
            built_with = str(manifest["model"]["name"])
            dimension = int(manifest["model"]["dimension"])
            chunking = manifest["chunking"]
            counts = manifest["counts"]
            next_id = int(manifest["next_id"])
        except (KeyError, TypeError, ValueError):
            raise IndexFormatError(
                f"{directory / mf.MANIFEST}: not a valid manifest (missing fields)"
            ) from None
        if model is not None:
            wanted = model.name if isinstance(model, Embedder) else canonical_model_name(model)
            if wanted != built_with:
                raise ModelMismatchError(
                    f"{directory}: index was built with model {built_with!r}, not {wanted!r}; "
                    "rebuild it to change models"
                )
        index = cls(
            model=model if isinstance(model, Embedder) else Embedder(built_with),
            max_tokens=int(chunking["max_tokens"]),
            overlap=int(chunking["overlap"]),
            include_title=bool(chunking["include_title"]),
        )
        index._settings = ChunkSettings(
            max_tokens=int(chunking["max_tokens"]), overlap=int(chunking["overlap"])
        )
        vec_path = mf.file_path(directory, manifest, "vectors.faiss")
        try:
            index._vectors = VectorIndex.from_bytes(vec_path.read_bytes())
            index._store = Store.load(mf.file_path(directory, manifest, "store.sqlite"))
            index._lexical = LexicalIndex.load(mf.file_path(directory, manifest, "lexical.npz"))
            index._dups = Duplicates.load(mf.file_path(directory, manifest, "dedup.npz"))
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
    problems = []
    if vectors.dimension != dimension:
        problems.append(f"vectors have dimension {vectors.dimension}, manifest says {dimension}")
    if (docs, passages) != (counts.get("documents"), counts.get("passages")):
        problems.append(
            f"store holds {docs} documents / {passages} passages, manifest says {counts}"
        )
    if len(vectors) != passages:
        problems.append(f"{len(vectors)} vectors for {passages} passages")
    elif not np.array_equal(
        np.sort(vectors.ids()), np.asarray(index._store.passage_ids(), dtype=np.int64)
    ):
        problems.append("vector ids differ from passage ids")
    for name, part in (("lexical", index._lexical), ("duplicate", index._dups)):
        if not np.array_equal(part.ids(), np.asarray(index._store.passage_ids(), dtype=np.int64)):
            problems.append(f"{name} passage ids differ from the store's")
    if problems:
        raise IndexFormatError(f"{directory}: inconsistent index: {'; '.join(problems)}")


def _write_bytes(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def _progress(enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(unit="passage", desc="indexing", leave=False)
