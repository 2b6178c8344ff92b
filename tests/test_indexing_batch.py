"""Index.add chunks documents in groups with the results of chunking them one at a time."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from semsearch import indexing
from semsearch.embeddings.embedder import Embedder
from semsearch.errors import InputError
from semsearch.index import Index
from semsearch.indexing import AddReport
from semsearch.passages import chunk_text
from semsearch.types import Document

WORDS = ["Putin", "letters", "Ünïcödé", "«quotes»", "数字", "1.8", "😀", "Mr.", "vote", "plot!"]
# No NUL: Index.add refuses it (the store could not keep the text after it).
UNICODE = st.characters(codec="utf-8", exclude_characters="\x00")
prose = st.lists(
    st.one_of(st.sampled_from(WORDS), st.sampled_from([". ", "\n\n", "\n", " "]), st.text(UNICODE)),
    max_size=40,
).map(" ".join)
documents = st.lists(
    st.builds(
        Document,
        # Few ids, so that documents replace each other, in and across groups and batches.
        id=st.sampled_from(["a", "b", "c", "d", "e"]),
        text=prose.filter(str.strip),
        title=st.one_of(st.just(""), st.sampled_from(WORDS), prose),
    ),
    max_size=12,
)


def _add(
    embedder: Embedder, docs: list[Document], *, group: int, batch: int, **options: Any
) -> tuple[AddReport, list[list[str]], list[tuple[Any, ...]], Index]:
    """Index.add with the given group and batch sizes: its report, the texts given to the model
    call by call, and every stored passage with its embedding key."""
    calls: list[list[str]] = []

    def encode(texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        calls.append(list(texts))
        rng = np.random.default_rng(len(calls))
        vectors = rng.standard_normal((len(texts), embedder.dimension)).astype(np.float32)
        unit: np.ndarray = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        return unit

    index = Index(model=embedder, **options)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(indexing, "CHUNK_GROUP", group)
        mp.setattr(indexing, "EMBED_BATCH", batch)
        mp.setattr(embedder, "encode", encode)
        report = index.add(docs)
    rows = index._engine.store.db.execute(
        'SELECT id, doc_id, ordinal, start, "end", embed_key FROM passages ORDER BY id'
    ).fetchall()
    return report, calls, [tuple(r) for r in rows], index


def _expected(index: Index, doc: Document) -> tuple[list[Any], list[str]]:
    """Chunking one document as it always was: title cut to a quarter of the budget at a token
    end, the rest of the budget to chunk_text."""
    tokenizer, max_tokens = index.embedder.tokenizer, index.settings.max_tokens
    title, budget = (doc.title.strip() if index.include_title else ""), max_tokens
    if title:
        spans = tokenizer.token_spans([title])[0]
        cap = max(1, max_tokens // 4)
        title = title[: spans[cap - 1][1]] if len(spans) > cap else title
        budget = max(1, max_tokens - min(len(spans), cap))
    result = chunk_text(
        doc.id, doc.text, tokenizer=tokenizer, settings=index.settings, max_tokens=budget
    )
    return result, [f"{title}\n\n{p.text}" if title else p.text for p in result]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    docs=documents,
    group=st.integers(2, 5),
    batch=st.integers(1, 8),
    max_tokens=st.integers(2, 40),
    overlap=st.integers(0, 2),
    include_title=st.booleans(),
)
def test_groups_change_nothing(
    embedder: Embedder,
    docs: list[Document],
    group: int,
    batch: int,
    max_tokens: int,
    overlap: int,
    include_title: bool,
) -> None:
    options = {"max_tokens": max_tokens, "overlap": overlap, "include_title": include_title}
    # A group of one is the loop as it was: check, compare, chunk, flush, document by document.
    one = _add(embedder, docs, group=1, batch=batch, **options)
    grouped = _add(embedder, docs, group=group, batch=batch, **options)
    assert grouped[:3] == one[:3], "same report, same model calls, same stored passages"

    index = grouped[3]
    latest = {doc.id: doc for doc in docs}
    for doc_id, doc in latest.items():
        expected, texts = _expected(index, doc)
        # Stored rows, not Store.passages: SQLite's substr ends a text at a NUL character.
        rows = [r for r in grouped[2] if r[1] == doc_id]
        assert [r[2:5] for r in rows] == [(p.ordinal, p.start, p.end) for p in expected]
        assert all(doc.text[p.start : p.end] == p.text for p in expected)
        assert [r[5] for r in rows] == [index.embedder.cache_key(t) for t in texts]


@pytest.mark.parametrize("group", [1, 2, 5])
def test_the_last_version_of_a_document_is_kept(embedder: Embedder, group: int) -> None:
    # The fourth version equals the stored first one, the fifth the second one still pending:
    # each is compared with the latest version, never with an older one.
    texts = ["Putin", "Putin Putin", "Putin Putin", "Putin", "Putin Putin"]
    docs = [Document(id="a", text=t) for t in texts]
    report, _, rows, index = _add(embedder, docs, group=group, batch=2, max_tokens=2)
    assert index.document("a").text == "Putin Putin"
    assert [r[3:5] for r in rows] == [(0, 11)]
    assert (report.added, report.replaced, report.unchanged) == (1, 3, 1)


def test_a_bad_document_mid_group_adds_nothing(embedder: Embedder) -> None:
    good = [Document(id=f"g{i}", text=f"Sentence {i}. Another one.", title="T") for i in range(5)]
    index = Index(model=embedder)
    with pytest.raises(InputError, match="document 'bad' has no text"):
        index.add([*good, Document(id="bad", text="  "), *good])
    assert index._engine.store.counts()[0] == 0
    assert index.add(good).added == 5


def test_documents_are_read_as_they_are_needed(embedder: Embedder) -> None:
    # A huge stream is never read far ahead: the first model call comes after at most one
    # batch of passages and one group of documents.
    read = 0
    read_at_first_call: list[int] = []

    def stream() -> Iterator[Document]:
        nonlocal read
        for i in itertools.count():
            if i == 3 * indexing.EMBED_BATCH:
                return
            read += 1
            yield Document(id=str(i), text=f"Short article number {i}.")

    def encode(texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        read_at_first_call.append(read)
        return np.full((len(texts), embedder.dimension), embedder.dimension**-0.5, np.float32)

    index = Index(model=embedder)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(embedder, "encode", encode)
        report = index.add(stream())
    assert report.added == report.passages == 3 * indexing.EMBED_BATCH
    assert read_at_first_call[0] <= indexing.EMBED_BATCH + indexing.CHUNK_GROUP
