"""Adding documents: check, chunk, reuse or compute embeddings, write in one engine transaction."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .embeddings import Embedder
from .engines import DocumentPassages, Engine, EngineWriter, IndexSettings
from .errors import InputError
from .passages import ChunkSettings, Tokenizer, chunk_texts, tokenize
from .types import Document, Passage

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
    """What one call of ``Index.add`` did."""

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


def chunk_documents(
    docs: list[Document], *, tokenizer: Tokenizer, settings: ChunkSettings, include_title: bool
) -> list[tuple[list[Passage], list[str]]]:
    """Passages of each document and the texts the model embeds for them (title, blank line,
    text), with one tokenizer call for all the titles and one for all the sentences."""
    titles = [doc.title.strip() if include_title else "" for doc in docs]
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


@dataclass
class _Counts:
    added: int = 0
    replaced: int = 0
    unchanged: int = 0
    passages: int = 0
    embedded: int = 0


def add_documents(
    engine: Engine,
    embedder: Embedder,
    settings: IndexSettings,
    documents: Iterable[Document],
    *,
    progress: bool = False,
) -> AddReport:
    """See ``Index.add``: all or nothing, in one engine transaction."""
    counts = _Counts()
    bar = _progress(progress)
    try:
        with engine.writer(settings) as writer:
            batch = _Batches(writer, embedder, settings, counts, bar)
            for doc in documents:
                try:
                    check_document(doc)
                except Exception as error:
                    # Documents before a bad one are chunked first, so the error raised is the
                    # one adding them one at a time would raise.
                    batch.chunk_group()
                    raise error from None
                if doc.id in batch.unstored:
                    # Whether it is unchanged depends on the copy not stored yet: chunk the
                    # group, as adding one at a time would have by now, and if that copy is
                    # still pending, write it, so that the comparison is with the latest one.
                    batch.chunk_group()
                    if doc.id in batch.unstored:
                        batch.flush()
                if writer.unchanged(doc):
                    counts.unchanged += 1
                    continue
                batch.take(doc)
            batch.chunk_group()
            batch.flush()
    finally:
        if bar is not None:
            bar.close()
    return AddReport(**vars(counts))


class _Batches:
    """Checked documents chunked in groups, then embedded and written in batches of passages at
    exactly the documents where adding them one at a time would flush a batch."""

    def __init__(
        self,
        writer: EngineWriter,
        embedder: Embedder,
        settings: IndexSettings,
        counts: _Counts,
        bar: Any,
    ) -> None:
        self.writer, self.embedder, self.counts, self.bar = writer, embedder, counts, bar
        self.chunking = ChunkSettings(max_tokens=settings.max_tokens, overlap=settings.overlap)
        self.include_title, self.dimension = settings.include_title, settings.dimension
        self.group: list[Document] = []
        self.group_chars = 0
        self.pending: Pending = []
        self.pending_passages = 0
        self.unstored: set[str] = set()
        """Ids of the documents in the group or pending: not in the engine yet."""

    def take(self, doc: Document) -> None:
        self.group.append(doc)
        self.group_chars += len(doc.text)
        self.unstored.add(doc.id)
        if len(self.group) >= CHUNK_GROUP or self.group_chars >= CHUNK_GROUP_CHARS:
            self.chunk_group()

    def chunk_group(self) -> None:
        if not self.group:
            return
        chunks = chunk_documents(
            self.group,
            tokenizer=self.embedder.tokenizer,
            settings=self.chunking,
            include_title=self.include_title,
        )
        for doc, (passages, texts) in zip(self.group, chunks, strict=True):
            self.pending.append((doc, passages, texts))
            self.pending_passages += len(passages)
            if self.pending_passages >= EMBED_BATCH:
                self.flush()
        self.group, self.group_chars = [], 0
        self.unstored = {doc.id for doc, _, _ in self.pending}

    def flush(self) -> None:
        if not self.pending:
            return
        doc_keys = [[self.embedder.cache_key(t) for t in texts] for _, _, texts in self.pending]
        vectors, embedded = self._vectors(
            [k for ks in doc_keys for k in ks], [t for _, _, ts in self.pending for t in ts]
        )
        entries = [
            DocumentPassages(doc, passages, keys, doc.title if self.include_title else "")
            for (doc, passages, _), keys in zip(self.pending, doc_keys, strict=True)
        ]
        replaced = self.writer.write(entries, vectors)
        written = sum(len(e.passages) for e in entries)
        self.counts.replaced += replaced
        self.counts.added += len(entries) - replaced
        self.counts.passages += written
        self.counts.embedded += embedded
        self.pending, self.pending_passages = [], 0
        self.unstored = {doc.id for doc in self.group}
        if self.bar is not None:
            self.bar.update(written)

    def _vectors(self, keys: list[str], texts: list[str]) -> tuple[np.ndarray, int]:
        """One vector per text: stored vectors of identical texts are reused (looked up before
        replaced passages are deleted), the rest come from the model. Also returns how many
        did."""
        known = self.writer.stored_vectors(keys)
        missing: dict[str, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key not in known:
                missing.setdefault(key, text)
        fresh = (  # a custom embedder need not accept an empty list
            dict(zip(missing, self.embedder.encode(list(missing.values())), strict=True))
            if missing
            else {}
        )
        vectors = np.empty((len(keys), self.dimension), dtype=np.float32)
        for row, key in enumerate(keys):
            vectors[row] = fresh[key] if key in fresh else known[key]
        return vectors, len(missing)


COPY_BATCH = 256
"""Documents read from the source and written to the target at a time."""


def copy_documents(
    source: Engine, target: Engine, settings: IndexSettings, *, progress: bool = False
) -> tuple[int, int]:
    """Copy every document with its passages, stored vectors and content keys from one engine
    to another, in one transaction of the target (all or nothing), embedding nothing; returns
    the documents and passages copied. A document the target holds under the same id is
    replaced."""
    documents = passages = 0
    bar = _progress(progress, "copying")
    try:
        with target.writer(settings) as writer:
            batch: list[Document] = []
            for doc in source.documents():
                batch.append(doc)
                if len(batch) >= COPY_BATCH:
                    passages += _copy_batch(source, writer, settings, batch, bar)
                    documents, batch = documents + len(batch), []
            passages += _copy_batch(source, writer, settings, batch, bar)
            documents += len(batch)
    finally:
        if bar is not None:
            bar.close()
    return documents, passages


def _copy_batch(
    source: Engine, writer: EngineWriter, settings: IndexSettings, docs: list[Document], bar: Any
) -> int:
    if not docs:
        return 0
    entries = []
    for doc in docs:
        held = source.passages(doc.id)
        ids = np.asarray([p.id for p in held], dtype=np.int64)
        unsaved = [Passage(p.doc_id, p.ordinal, p.start, p.end, p.text) for p in held]
        title = doc.title if settings.include_title else ""
        entries.append((DocumentPassages(doc, unsaved, source.passage_keys(ids), title), ids))
    all_ids = np.concatenate([ids for _, ids in entries])
    vectors = source.passage_vectors(all_ids).reshape(len(all_ids), settings.dimension)
    writer.write([e for e, _ in entries], vectors)
    if bar is not None:
        bar.update(len(all_ids))
    return len(all_ids)


def _progress(enabled: bool, desc: str = "indexing") -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(unit="passage", desc=desc, leave=False)
