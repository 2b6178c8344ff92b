"""Adding documents: chunk, reuse or compute embeddings, write every part in one transaction."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InputError
from .lexical import indexed_text
from .passages import chunk_text
from .types import Document, Passage

if TYPE_CHECKING:
    from .index import Index

# Passages embedded per model call: large enough for the model to sort by length and pad little,
# small enough that a streamed ingest of a huge JSONL file holds little in memory at once.
EMBED_BATCH = 1024

Pending = list[tuple[Document, list[Passage], list[str]]]


@dataclass(frozen=True)
class AddReport:
    """What one call of :meth:`Index.add` did."""

    added: int = 0
    replaced: int = 0
    unchanged: int = 0
    passages: int = 0
    embedded: int = 0
    """Passages whose vectors came from the model; the rest reused stored vectors."""


def check_document(doc: Document) -> None:
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


def chunk_document(index: Index, doc: Document) -> tuple[list[Passage], list[str]]:
    """Passages of ``doc`` and the texts the model embeds for them (title, blank line, text)."""
    settings, tokenizer = index.settings, index.embedder.tokenizer
    title = doc.title.strip() if index.include_title else ""
    budget = settings.max_tokens
    if title:
        spans = tokenizer.token_spans([title])[0]
        # A title may use a quarter of the budget at most; a longer one is cut for embedding.
        cap = max(1, settings.max_tokens // 4)
        if len(spans) > cap:
            title = title[: spans[cap - 1][1]]
        budget = max(1, settings.max_tokens - min(len(spans), cap))
    passages = chunk_text(
        doc.id, doc.text, tokenizer=tokenizer, settings=settings, max_tokens=budget
    )
    return passages, [f"{title}\n\n{p.text}" if title else p.text for p in passages]


def add_documents(
    index: Index, documents: Iterable[Document], *, progress: bool = False
) -> AddReport:
    """See :meth:`Index.add`: all or nothing, replaced passages leave only after the commit."""
    counts = {"added": 0, "replaced": 0, "unchanged": 0, "passages": 0, "embedded": 0}
    new_ids: list[int] = []
    old_ids: list[int] = []
    store = index._store
    bar = _progress(progress)
    try:
        with store.transaction():
            pending: Pending = []
            pending_passages = 0
            for doc in documents:
                check_document(doc)
                if store.same_document(doc):
                    counts["unchanged"] += 1
                    continue
                passages, texts = chunk_document(index, doc)
                pending.append((doc, passages, texts))
                pending_passages += len(passages)
                if pending_passages >= EMBED_BATCH:
                    _flush(index, pending, counts, new_ids, old_ids, bar)
                    pending, pending_passages = [], 0
            _flush(index, pending, counts, new_ids, old_ids, bar)
    except BaseException:
        _drop(index, new_ids)
        raise
    finally:
        if bar is not None:
            bar.close()
    # Replaced passages leave FAISS only now: until the commit they were the rollback state
    # and the source of reused embeddings.
    _drop(index, old_ids)
    return AddReport(**counts)


def _drop(index: Index, ids: list[int]) -> None:
    """Remove passage ids from the vector, BM25 and duplicate parts (the store is done apart)."""
    index.vectors.remove(np.asarray(ids, dtype=np.int64))
    index._lexical.remove(ids)
    index._dups.remove(ids)


def _vectors_for(index: Index, keys: list[str], texts: list[str]) -> tuple[np.ndarray, int]:
    """One vector per text: stored vectors of identical texts are reused (looked up before
    replaced rows are deleted), the rest come from the model. Also returns how many did."""
    known = index._store.ids_for_keys(keys)
    missing: dict[str, str] = {}
    for key, text in zip(keys, texts, strict=True):
        if key not in known:
            missing.setdefault(key, text)
    fresh = dict(zip(missing, index.embedder.encode(list(missing.values())), strict=True))
    reused_keys = [k for k in keys if k in known]
    stored = index.vectors.reconstruct(np.asarray([known[k] for k in reused_keys], np.int64))
    reused = dict(zip(reused_keys, stored, strict=True))
    vectors = np.empty((len(keys), index.vectors.dimension), dtype=np.float32)
    for row, key in enumerate(keys):
        vectors[row] = fresh[key] if key in fresh else reused[key]
    return vectors, len(missing)


def _flush(
    index: Index,
    pending: Pending,
    counts: dict[str, int],
    new_ids: list[int],
    old_ids: list[int],
    bar: Any,
) -> None:
    if not pending:
        return
    store, embedder = index._store, index.embedder
    doc_keys = [[embedder.cache_key(t) for t in texts] for _, _, texts in pending]
    vectors, embedded = _vectors_for(
        index, [k for ks in doc_keys for k in ks], [t for _, _, ts in pending for t in ts]
    )
    ids: list[int] = []
    lexical_texts: list[str] = []
    passage_texts: list[str] = []
    for (doc, passages, _), keys in zip(pending, doc_keys, strict=True):
        if store.has_document(doc.id):
            old_ids.extend(store.delete_document(doc.id))
            counts["replaced"] += 1
        else:
            counts["added"] += 1
        first = index._next_id
        stored = [
            Passage(p.doc_id, p.ordinal, p.start, p.end, p.text, id=first + i)
            for i, p in enumerate(passages)
        ]
        index._next_id += len(passages)
        store.put_document(doc)
        store.put_passages(stored, keys)
        ids.extend(p.id for p in stored)
        title = doc.title if index.include_title else ""
        lexical_texts.extend(indexed_text(title, p.text) for p in stored)
        passage_texts.extend(p.text for p in stored)
    index.vectors.add(np.asarray(ids, dtype=np.int64), vectors)
    new_ids.extend(ids)
    # After new_ids: a failure part-way through these is rolled back like the vectors.
    index._lexical.add(ids, lexical_texts)
    index._dups.add(ids, passage_texts)
    counts["passages"] += len(ids)
    counts["embedded"] += embedded
    if bar is not None:
        bar.update(len(ids))


def _progress(enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(unit="passage", desc="indexing", leave=False)
