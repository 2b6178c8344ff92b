"""LocalEngine: the four local parts (SQLite store, vectors, BM25, duplicates) kept in step."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import IndexFormatError, ModelMismatchError, SemsearchError
from ...types import Document, Filters, Hit, Ids, Matrix, Passage, Scores
from ..base import Candidates, IndexSettings, Ranked
from . import manifest, persistence
from .dedup import Duplicates, duplicate_report
from .lexical import LexicalIndex
from .lexical.index import top_matches
from .store import Store
from .vectors import VectorIndex
from .vectors.ivf import BACKENDS as VECTOR_INDEX_TYPES
from .writer import LocalWriter


class LocalEngine:
    """One directory: documents in SQLite, exact vectors in numpy files with an approximate
    FAISS index beside them when the corpus is large, BM25 arrays and MinHash duplicate groups,
    all named by one checksummed manifest that each save replaces atomically."""

    def __init__(self, *, vector_index: str = "auto", memory_budget: int | None = None) -> None:
        self.store = Store()
        self.bm25 = LexicalIndex()
        self.duplicates = Duplicates()
        self.vectors: VectorIndex | None = None
        """Created with the first write (its dimension is the model's), or opened."""
        self.next_id = 1
        self.path: Path | None = None
        self._settings: IndexSettings | None = None
        self._manifest: dict[str, Any] | None = None
        self._vector_options: dict[str, Any] = {}
        self._changes = 0
        self._allowed_cache: tuple[tuple[Filters, int], Ids] | None = None
        self.configure_vectors(vector_index=vector_index, memory_budget=memory_budget)

    @classmethod
    def open(cls, directory: str | Path) -> LocalEngine:
        """Open a saved index directory, verifying every file before trusting any of it."""
        directory = Path(directory)
        parts, settings, saved = persistence.open_directory(directory)
        engine = cls()
        engine.store, engine.vectors = parts.store, parts.vectors
        engine.bm25, engine.duplicates = parts.lexical, parts.duplicates
        engine.next_id, engine.path = parts.next_id, directory
        engine._settings, engine._manifest = settings, saved
        return engine

    @property
    def location(self) -> str | None:
        return None if self.path is None else str(self.path)

    @property
    def settings(self) -> IndexSettings | None:
        return self._settings

    # -- contents ----------------------------------------------------------------------------

    def counts(self) -> tuple[int, int]:
        return self.store.counts()

    def searchable(self) -> bool:
        return self.store.counts()[1] > 0

    def has_documents(self, doc_ids: Sequence[str]) -> list[bool]:
        return [self.store.has_document(d) for d in doc_ids]

    def document(self, doc_id: str) -> Document | None:
        return self.store.document(doc_id)

    def documents(self) -> Iterator[Document]:
        return self.store.documents()

    def passages(self, doc_id: str) -> list[Passage]:
        return self.store.passages(doc_id)

    def hits(self, ranked: Ranked) -> list[Hit]:
        return self.store.hits(ranked.ids.tolist(), ranked.scores.tolist())

    def passage_vectors(self, ids: Ids) -> Matrix:
        if self.vectors is None:
            if len(ids):
                raise KeyError(f"no passage {int(ids[0])} in the index")
            return np.zeros((0, 0), np.float32)
        return self.vectors.reconstruct(np.asarray(ids, dtype=np.int64))

    def passage_keys(self, ids: Ids) -> list[str]:
        return self.store.keys_of(ids.tolist())

    def passage_dates(self, ids: Ids) -> list[str | None]:
        return self.store.dates_of(ids.tolist())

    def duplicate_count(self) -> int:
        return len(self.duplicates.groups())

    def representatives(self, ids: Ids) -> Ids:
        groups = self.duplicates.groups()
        return np.asarray([groups.get(i, i) for i in ids.tolist()], dtype=np.int64)

    # -- search primitives -------------------------------------------------------------------

    def _allowed(self, filters: Filters) -> Ids | None:
        """Passage ids that pass ``filters`` (None when nothing is filtered), by SQL on the
        store; the last answer is kept until the next change, as a query's deeper rounds and
        a batch's queries ask again."""
        if filters.empty:
            return None
        key = (filters, self._changes)
        if self._allowed_cache is not None and self._allowed_cache[0] == key:
            return self._allowed_cache[1]
        f = filters.checked()
        allowed = self.store.filter_ids(
            date_from=f.date_from if isinstance(f.date_from, str) else None,
            date_to=f.date_to if isinstance(f.date_to, str) else None,
            sources=None if f.sources is None else list(f.sources),
            doc_ids=None if f.doc_ids is None else list(f.doc_ids),
        )
        with contextlib.suppress(TypeError):  # filters holding lists are not hashable
            hash(key)
            self._allowed_cache = (key, allowed)
        return allowed

    def _searchable(self, filters: Filters) -> tuple[VectorIndex, Ids | None] | None:
        allowed = self._allowed(filters)
        if self.vectors is None or not len(self.vectors):
            return None
        if allowed is not None and not len(allowed):
            return None
        return self.vectors, allowed

    def dense(self, query_vectors: Matrix, n: int, filters: Filters) -> list[Ranked]:
        found = self._searchable(filters)
        if found is None:
            return [_empty() for _ in query_vectors]
        vectors, allowed = found
        if not np.isfinite(query_vectors).all():
            raise SemsearchError("query vectors hold NaN or infinite values")
        scores, ids = vectors.search(query_vectors, n, allowed=allowed)
        keep = ids >= 0
        self._finite(scores[keep], "vectors", "ann")
        return [Ranked(i[k], s[k]) for i, s, k in zip(ids, scores, keep, strict=True)]

    def lexical(self, queries: Sequence[str], n: int, filters: Filters) -> list[Ranked]:
        found = self._searchable(filters)
        if found is None:
            return [_empty() for _ in queries]
        allowed = found[1]
        ranked = [Ranked(*self.bm25.search(q, n, allowed=allowed)) for q in queries]
        for r in ranked:
            self._finite(r.scores, "lexical")
        return ranked

    def candidates(
        self, queries: Sequence[str], query_vectors: Matrix, n: int, filters: Filters
    ) -> list[Candidates]:
        found = self._searchable(filters)
        if found is None:
            return [Candidates(*_empty(), np.zeros(0, np.float32), False) for _ in queries]
        vectors, allowed = found
        dense = self.dense(query_vectors, n, filters)
        out = []
        for query, qvec, (dense_ids, dense_scores) in zip(
            queries, query_vectors, dense, strict=True
        ):
            all_ids, all_lex = self.bm25.scores(query)
            lex_ids, _ = top_matches(all_ids, all_lex, n, allowed=allowed)
            union = np.union1d(dense_ids, lex_ids).astype(np.int64)
            cosine = dict(zip(dense_ids.tolist(), dense_scores.tolist(), strict=True))
            missing = np.asarray([i for i in union.tolist() if i not in cosine], dtype=np.int64)
            if len(missing):
                # Cosines of BM25-only candidates: their stored vectors, not another index scan.
                cosines = vectors.reconstruct(missing) @ qvec
                self._finite(cosines, "vectors", "ann")  # dense's own were checked in dense()
                cosine.update(zip(missing.tolist(), cosines.tolist(), strict=True))
            # A passage BM25 does not know scores 0, rather than indexing past its arrays' end.
            pos = np.minimum(np.searchsorted(all_ids, union), max(len(all_ids) - 1, 0))
            known = (
                (pos < len(all_ids)) & (all_ids[pos] == union)
                if len(all_ids)
                else np.zeros(len(union), bool)
            )
            lexical = np.where(known, all_lex[pos] if len(all_ids) else 0.0, 0.0)
            self._finite(lexical, "lexical")
            out.append(
                Candidates(
                    union,
                    np.asarray([cosine[i] for i in union.tolist()], np.float32),
                    lexical.astype(np.float32),
                    len(dense_ids) >= n or len(lex_ids) >= n,
                )
            )
        return out

    def _finite(self, scores: Any, *parts: str) -> None:
        """A NaN or infinite score can only come from a corrupt saved file (vectors are checked
        finite when added, queries before they are searched): an error naming its files."""
        if np.isfinite(scores).all():
            return
        saved = self._manifest["files"] if self.path and self._manifest else {}
        files = [str(self.path / e["name"]) for p in parts for _, e in manifest.roles_of(saved, p)]
        raise IndexFormatError(
            f"{', '.join(sorted(files)) or parts[0]}: NaN or infinite scores at search; the "
            "saved files are corrupt"
        )

    def proximity(self, query: str, ids: Ids) -> Scores | None:
        return self.bm25.proximity(query, ids)

    # -- changes -----------------------------------------------------------------------------

    def _bind(self, settings: IndexSettings) -> VectorIndex:
        """The vector index for data made with ``settings``, created on the first write."""
        held = self._settings
        if held is not None and (held.model, held.dimension) != (
            settings.model,
            settings.dimension,
        ):
            raise ModelMismatchError(
                f"{self.location or 'index'}: holds vectors of {held.model!r} "
                f"(dimension {held.dimension}), not {settings.model!r}"
            )
        if self.vectors is None:
            self.vectors = VectorIndex(settings.dimension, **self._vector_options)
        self._settings = settings
        return self.vectors

    @contextlib.contextmanager
    def writer(self, settings: IndexSettings) -> Iterator[LocalWriter]:
        """One SQLite transaction; the other parts are rolled back by hand. Replaced passages
        leave the vectors, BM25 and duplicates only after the commit: until then they are the
        rollback state and the source of reused vectors."""
        writer = LocalWriter(self, self._bind(settings))
        try:
            with self.store.transaction():
                yield writer
        except BaseException:
            self._drop(writer.new_ids)
            raise
        finally:
            self._changes += 1
        self._drop(writer.old_ids)

    def _drop(self, ids: list[int]) -> None:
        if self.vectors is not None:
            self.vectors.remove(np.asarray(ids, dtype=np.int64))
        self.bm25.remove(ids)
        self.duplicates.remove(ids)

    def remove(self, doc_ids: Sequence[str]) -> int:
        removed: list[int] = []
        self._changes += 1
        with self.store.transaction():
            for doc_id in dict.fromkeys(doc_ids):
                removed.extend(self.store.delete_document(doc_id))
        self.bm25.remove(removed)
        self.duplicates.remove(removed)
        if self.vectors is None:
            return 0
        return self.vectors.remove(np.asarray(removed, dtype=np.int64))

    def configure_vectors(
        self, *, vector_index: str | None = None, memory_budget: int | None = None
    ) -> None:
        """Choose the FAISS index type (``auto``: by corpus size; or flat, ivf-sq8, ivf-pq) and
        the memory budget in bytes that ``auto`` keeps the search structure within. A built
        index that no longer fits is rebuilt now from its stored vectors, never re-embedded."""
        if vector_index not in (None, "auto", *VECTOR_INDEX_TYPES):
            raise ValueError(
                f"unknown vector index {vector_index!r}; choose from auto, "
                f"{', '.join(VECTOR_INDEX_TYPES)}"
            )
        if memory_budget is not None and memory_budget <= 0:
            raise ValueError(f"memory budget must be positive, got {memory_budget}")
        if vector_index is not None:
            self._vector_options["backend"] = vector_index
        if memory_budget is not None:
            self._vector_options["memory_budget"] = memory_budget
        if self.vectors is not None:
            self.vectors.retarget(backend=vector_index, memory_budget=memory_budget)

    # -- persistence -------------------------------------------------------------------------

    def close(self) -> None:
        """Close the saved files read in place and the temporary ones; the engine is done."""
        self.store.close()
        if self.vectors is not None:
            self.vectors.close()

    def save(self, settings: IndexSettings, location: str | None = None) -> str:
        target = Path(location) if location is not None else self.path
        if target is None:
            raise SemsearchError("this index has no directory yet: pass save(path)")
        parts = persistence.Parts(
            self.store, self._bind(settings), self.bm25, self.duplicates, self.next_id
        )
        self._manifest = persistence.save(target, parts, settings)
        self.path = target
        return str(target)

    def info(self, *, files: bool = False, check_recall: bool = False) -> dict[str, Any]:
        docs, passages = self.store.counts()
        vectors = self.vectors
        info: dict[str, Any] = {
            "path": self.location,
            "format_version": manifest.FORMAT_VERSION,
            "dimension": None if vectors is None else vectors.dimension,
            "index_type": "flat" if vectors is None else vectors.config.backend,
            "documents": docs,
            "passages": passages,
            "vectors": 0 if vectors is None else len(vectors),
            "next_id": self.next_id,
            "dates": self.store.date_summary(),
            "duplicates": duplicate_report(self.duplicates, self.store.passage_docs()),
        }
        if files:
            info.update(self._files(check_recall))
        return info

    def _files(self, check_recall: bool) -> dict[str, Any]:
        """The saved generation's files, and what a search reads of them per passage."""
        entries = {} if self._manifest is None else self._manifest["files"]
        listed = {
            role: {"name": entry["name"], "bytes": entry["bytes"]}
            for role, entry in sorted(entries.items())
        }
        out: dict[str, Any] = {
            "files": listed,
            "bytes": sum(e["bytes"] for e in listed.values()),
        }
        if self.vectors is None:
            return out
        described = self.vectors.describe()
        out["index_type"] = described["backend"]
        # What a search reads: the approximate index when there is one, else the exact vectors
        # (always on disk too, for re-scoring, reuse and rebuilds).
        exact = sum(e["bytes"] for _, e in manifest.roles_of(listed, "vectors"))
        searched = listed["ann.faiss"]["bytes"] if "ann.faiss" in listed else exact
        count = max(len(self.vectors), 1)
        described["search_bytes_per_passage"] = round(searched / count, 1)
        described["exact_bytes_per_passage"] = round(exact / count, 1)
        described["estimated_recall"] = (
            1.0 if described["backend"] == "flat" else described["estimated_recall"]
        )
        if check_recall:
            described["measured_recall"] = round(self.vectors.check_recall(), 4)
        out["vector_index"] = described
        return out


def _empty() -> Ranked:
    return Ranked(np.zeros(0, np.int64), np.zeros(0, np.float32))
