"""Adding documents: chunk, reuse or compute embeddings, write every part in one transaction."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .engines.local.lexical.index import indexed_text
from .errors import InputError
from .passages import chunk_texts, tokenize
from .types import Document, Passage

if TYPE_CHECKING:
    from .index import Index

# Passages embedded per model call: large enough for the model to sort by length and pad little,
# small enough that a streamed ingest of a huge JSONL file holds little in memory at once.
EMBED_BATCH = 1024
# Documents chunked together (their sentences tokenized in one call), at most this many or as
# many as make this many characters: a call has a fixed cost, and a large one uses every core.
CHUNK_GROUP = 256
CHUNK_GROUP_CHARS = 1 << 20

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
    if "\x00" in doc.text:
        # SQLite's text functions stop at a NUL, so the store would cut the passages after it.
        raise InputError(where, f"document {doc.id!r} holds a NUL character (U+0000)")


def chunk_document(index: Index, doc: Document) -> tuple[list[Passage], list[str]]:
    """Passages of ``doc`` and the texts the model embeds for them (title, blank line, text)."""
    return chunk_documents(index, [doc])[0]


def chunk_documents(index: Index, docs: list[Document]) -> list[tuple[list[Passage], list[str]]]:
    """:func:`chunk_document` of each document, with one tokenizer call for all the titles and
    one for all the sentences."""
    settings, tokenizer = index.settings, index.embedder.tokenizer
    titles = [doc.title.strip() if index.include_title else "" for doc in docs]
    budgets = [settings.max_tokens] * len(docs)
    titled = [i for i, title in enumerate(titles) if title]
    # A title may use a quarter of the budget at most; a longer one is cut for embedding.
    cap = max(1, settings.max_tokens // 4)
    for i, tokens in zip(titled, tokenize(tokenizer, [titles[i] for i in titled]), strict=True):
        if len(tokens) > cap:
            titles[i] = titles[i][: tokens.offsets[cap - 1][1]]
        budgets[i] = max(1, settings.max_tokens - min(len(tokens), cap))
    passage_lists = chunk_texts(
        [(doc.id, doc.text, budget) for doc, budget in zip(docs, budgets, strict=True)],
        tokenizer=tokenizer,
        settings=settings,
    )
    return [
        (passages, [f"{title}\n\n{p.text}" if title else p.text for p in passages])
        for title, passages in zip(titles, passage_lists, strict=True)
    ]


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
            batch = _Batches(index, counts, new_ids, old_ids, bar)
            for doc in documents:
                try:
                    check_document(doc)
                except Exception as error:
                    # Documents before a bad one are chunked first, so the error raised is the
                    # one adding them one at a time would raise.
                    batch.chunk_group()
                    raise error from None
                if doc.id in batch.unstored:
                    # Whether it is unchanged depends on the copy not stored yet: store it as
                    # adding one at a time would have by now.
                    batch.chunk_group()
                if store.same_document(doc):
                    counts["unchanged"] += 1
                    continue
                batch.take(doc)
            batch.chunk_group()
            _flush(index, batch.pending, counts, new_ids, old_ids, bar)
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


class _Batches:
    """Checked documents chunked in groups, then embedded and stored in batches of passages at
    exactly the documents where adding them one at a time would flush a batch."""

    def __init__(
        self, index: Index, counts: dict[str, int], new_ids: list[int], old_ids: list[int], bar: Any
    ) -> None:
        self.index, self.counts, self.bar = index, counts, bar
        self.new_ids, self.old_ids = new_ids, old_ids
        self.group: list[Document] = []
        self.group_chars = 0
        self.pending: Pending = []
        self.pending_passages = 0
        self.unstored: set[str] = set()
        """Ids of the documents in the group or pending: not in the store yet."""

    def take(self, doc: Document) -> None:
        self.group.append(doc)
        self.group_chars += len(doc.text)
        self.unstored.add(doc.id)
        if len(self.group) >= CHUNK_GROUP or self.group_chars >= CHUNK_GROUP_CHARS:
            self.chunk_group()

    def chunk_group(self) -> None:
        if not self.group:
            return
        chunks = chunk_documents(self.index, self.group)
        for doc, (passages, texts) in zip(self.group, chunks, strict=True):
            self.pending.append((doc, passages, texts))
            self.pending_passages += len(passages)
            if self.pending_passages >= EMBED_BATCH:
                _flush(self.index, self.pending, self.counts, self.new_ids, self.old_ids, self.bar)
                self.pending, self.pending_passages = [], 0
        self.group, self.group_chars = [], 0
        self.unstored = {doc.id for doc, _, _ in self.pending}


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
