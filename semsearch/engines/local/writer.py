"""The writes of one LocalEngine transaction: documents and passages into the store, vectors,
BM25 terms and duplicate signatures beside them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from ...types import Document, Matrix, Passage
from ..base import DocumentPassages
from ..terms import indexed_text
from .dedup import Duplicates
from .lexical import LexicalIndex
from .store import Store
from .vectors import VectorIndex


class Parts(Protocol):
    """What a write changes of a LocalEngine: its parts, and the next passage id to give."""

    store: Store
    bm25: LexicalIndex
    duplicates: Duplicates
    next_id: int


class LocalWriter:
    """The writes of one ``LocalEngine.writer`` transaction."""

    def __init__(self, engine: Parts, vectors: VectorIndex) -> None:
        self.engine, self.vectors = engine, vectors
        self.new_ids: list[int] = []
        self.old_ids: list[int] = []

    def unchanged(self, document: Document) -> bool:
        return self.engine.store.same_document(document)

    def stored_vectors(self, keys: Sequence[str]) -> dict[str, Matrix]:
        known = self.engine.store.ids_for_keys(keys)
        found = list(known)
        rows = self.vectors.reconstruct(np.asarray([known[k] for k in found], np.int64))
        return dict(zip(found, rows, strict=True))

    def write(self, documents: Sequence[DocumentPassages], vectors: Matrix) -> int:
        engine, store = self.engine, self.engine.store
        replaced = 0
        ids: list[int] = []
        lexical_texts: list[str] = []
        passage_texts: list[str] = []
        for entry in documents:
            doc = entry.document
            if store.has_document(doc.id):
                self.old_ids.extend(store.delete_document(doc.id))
                replaced += 1
            first = engine.next_id
            stored = [
                Passage(p.doc_id, p.ordinal, p.start, p.end, p.text, id=first + i)
                for i, p in enumerate(entry.passages)
            ]
            engine.next_id += len(stored)
            store.put_document(doc)
            store.put_passages(stored, entry.keys)
            ids.extend(p.id for p in stored)
            lexical_texts.extend(indexed_text(entry.title, p.text) for p in stored)
            passage_texts.extend(p.text for p in stored)
        self.vectors.add(np.asarray(ids, dtype=np.int64), vectors)
        self.new_ids.extend(ids)
        # After new_ids: a failure part-way through these is rolled back like the vectors.
        engine.bm25.add(ids, lexical_texts)
        engine.duplicates.add(ids, passage_texts)
        return replaced
