"""The LangChain retriever, driven through LangChain's own calls: invoke, batch, ainvoke,
abatch, bind and LCEL chains return the index's hits as Documents with exact offsets."""

from __future__ import annotations

import importlib
import sys
import threading
from typing import Any

import pytest

pytest.importorskip("langchain_core")

from adapting import DOCS, QUERY, SearchSpy, run_async
from langchain_core.documents import Document as LCDocument
from langchain_core.runnables import (
    RunnableLambda,
    RunnableParallel,
    RunnablePassthrough,
)
from pydantic import ValidationError

from semsearch import Embedder, Filters, Index, InputError
from semsearch.integrations import METADATA_KEYS
from semsearch.integrations.langchain import SemsearchRetriever


@pytest.fixture(scope="module")
def index(embedder: Embedder) -> Index:
    # Short passages: every document has several, so offsets are not all 0.
    built = Index(model=embedder, max_tokens=32)
    built.add(DOCS)
    return built


def _exact(index: Index, docs: list[LCDocument]) -> None:
    assert docs
    for doc in docs:
        meta = doc.metadata
        assert list(meta) == list(METADATA_KEYS)
        text = index.document(meta["doc_id"]).text
        assert text[meta["start"] : meta["end"]] == doc.page_content
        assert doc.id == f"{meta['doc_id']}:{meta['start']}-{meta['end']}"


def _same_as_search(docs: list[LCDocument], index: Index, query: str, **options: Any) -> None:
    hits = index.search(query, **options)
    assert [(d.metadata["passage_id"], d.page_content) for d in docs] == [
        (h.passage_id, h.text) for h in hits
    ]
    assert [d.metadata["score"] for d in docs] == [h.score for h in hits]
    assert [d.metadata["rank"] for d in docs] == list(range(1, len(hits) + 1))


def test_invoke_returns_the_index_hits_as_documents(index: Index) -> None:
    docs = SemsearchRetriever(index=index).invoke(QUERY)
    _same_as_search(docs, index, QUERY, k=5)
    assert len(docs) == 5
    _exact(index, docs)
    assert any(d.metadata["start"] > 0 for d in docs)
    first = docs[0].metadata
    doc = index.document(first["doc_id"])
    assert (first["title"], first["date"], first["source"]) == (doc.title, doc.date, doc.source)
    assert first["date_approximate"] is False and first["url"] is None
    assert first["metadata"] == doc.metadata


def test_k_filters_and_mode_as_fields_and_per_call(index: Index) -> None:
    retriever = SemsearchRetriever(index=index, k=2, mode="lexical")
    _same_as_search(retriever.invoke(QUERY), index, QUERY, k=2, mode="lexical")
    _same_as_search(retriever.invoke(QUERY, k=4, mode="dense"), index, QUERY, k=4, mode="dense")

    unfiltered = {d.metadata["source"] for d in retriever.invoke(QUERY, k=10)}
    assert "paper/library.txt" in unfiltered
    wire = retriever.invoke(QUERY, k=10, filters=Filters(sources=["wire/*"]))
    assert wire and {d.metadata["source"] for d in wire} <= {"wire/council.txt", "wire/rain.txt"}
    _exact(index, wire)

    dated = SemsearchRetriever(index=index, k=10, filters=Filters(date_from="2024-01-01"))
    found = dated.invoke(QUERY)
    assert found and all(d.metadata["date"] >= "2024-01-01" for d in found)
    assert "paper/library.txt" not in {d.metadata["source"] for d in found}
    everything = dated.invoke(QUERY, filters=Filters())  # empty Filters lift the field's filter
    assert "paper/library.txt" in {d.metadata["source"] for d in everything}


def test_recency_reaches_the_search(index: Index) -> None:
    for recency in (True, False, None):
        retriever = SemsearchRetriever(index=index, k=3, recency=recency)
        _same_as_search(retriever.invoke(QUERY), index, QUERY, k=3, recency=recency)
    favoured = SemsearchRetriever(index=index, k=3, recency=True).invoke(QUERY)
    plain = SemsearchRetriever(index=index, k=3, recency=False).invoke(QUERY)
    assert [d.metadata["score"] for d in favoured] != [d.metadata["score"] for d in plain]


def test_fields_are_validated(index: Index) -> None:
    with pytest.raises(ValidationError):
        SemsearchRetriever(index=index, k=0)
    with pytest.raises(ValidationError):
        SemsearchRetriever(index=index, mode="fuzzy")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        SemsearchRetriever(index="build/news")  # type: ignore[arg-type]
    with pytest.raises(InputError):
        SemsearchRetriever(index=index).invoke("   ")
    # LangChain passes every keyword of invoke on: a misspelt option fails, verbose is LangChain's.
    with pytest.raises(TypeError, match="filter"):
        SemsearchRetriever(index=index).invoke(QUERY, filter=Filters(sources=["wire/*"]))
    assert len(SemsearchRetriever(index=index, k=2).invoke(QUERY, verbose=True)) == 2


def test_batch_searches_every_query(index: Index) -> None:
    retriever = SemsearchRetriever(index=index, k=3)
    queries = [QUERY, "flooded streets", "solar panels on the roof"]
    results = retriever.batch(queries)
    assert len(results) == 3
    assert results == [retriever.invoke(query) for query in queries]
    for query, docs in zip(queries, results, strict=True):
        _same_as_search(docs, index, query, k=3)
        _exact(index, docs)
    narrow = retriever.batch(queries, k=1, filters=Filters(sources=["wire/rain.txt"]))
    assert [len(docs) for docs in narrow] == [1, 1, 1]
    assert {docs[0].metadata["source"] for docs in narrow} == {"wire/rain.txt"}

    mixed = retriever.batch([QUERY, " "], return_exceptions=True)
    assert isinstance(mixed[1], InputError) and mixed[0] == retriever.invoke(QUERY)
    with pytest.raises(InputError):
        retriever.batch([QUERY, " "])
    completed = dict(retriever.batch_as_completed(queries))
    assert [completed[i] for i in range(3)] == results


def test_batch_searches_concurrently_in_langchains_thread_pool(
    index: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    retriever = SemsearchRetriever(index=index, k=3)
    queries = [QUERY, "flooded streets", "solar panels on the roof"]
    expected = [retriever.invoke(query) for query in queries]
    spy = SearchSpy(index, monkeypatch)
    spy.barrier = threading.Barrier(len(queries), timeout=30)
    results = retriever.batch(queries)
    # All three searches were running at once (the barrier), none on this thread.
    assert len(spy.threads) == 3 and threading.get_ident() not in spy.threads
    assert results == expected
    spy.barrier = threading.Barrier(2, timeout=30)
    mixed = retriever.batch([QUERY, " "], return_exceptions=True)
    assert mixed[0] == expected[0] and isinstance(mixed[1], InputError)


def test_ainvoke_and_abatch_search_off_the_event_loop(
    index: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    retriever = SemsearchRetriever(index=index, k=3)
    queries = [QUERY, "flooded streets"]
    loop_thread: list[int] = []
    spy = SearchSpy(index, monkeypatch)

    async def run() -> tuple[list[LCDocument], list[list[LCDocument]], list[LCDocument]]:
        loop_thread.append(threading.get_ident())
        one = await retriever.ainvoke(QUERY)
        # Both searches must be running at once (the barrier): the loop is not blocked.
        spy.barrier = threading.Barrier(len(queries), timeout=30)
        many = await retriever.abatch(queries)
        spy.barrier = None
        lexical = await retriever.ainvoke(QUERY, mode="lexical", k=2)
        return one, many, lexical

    one, many, lexical = run_async(run())
    # Every search (the model and the lookup) ran in a worker thread, never on the loop's.
    assert len(spy.threads) == 4
    assert loop_thread[0] not in spy.threads
    monkeypatch.undo()
    _same_as_search(one, index, QUERY, k=3)
    _exact(index, one)
    for query, docs in zip(queries, many, strict=True):
        _same_as_search(docs, index, query, k=3)
    _same_as_search(lexical, index, QUERY, k=2, mode="lexical")


def test_composes_in_lcel_chains(index: Index) -> None:
    retriever = SemsearchRetriever(index=index, k=2)

    def cite(docs: list[LCDocument]) -> str:
        return " | ".join(f"{d.metadata['title']} [{d.metadata['start']}:]" for d in docs)

    chain = retriever | RunnableLambda(cite)
    hits = index.search(QUERY, k=2)
    assert chain.invoke(QUERY) == " | ".join(f"{h.title} [{h.start}:]" for h in hits)
    assert chain.batch([QUERY, QUERY]) == [chain.invoke(QUERY)] * 2
    assert run_async(chain.ainvoke(QUERY)) == chain.invoke(QUERY)

    one = retriever.bind(k=1) | RunnableLambda(lambda docs: docs[0].page_content)
    assert one.invoke(QUERY) == hits[0].text

    # A step may call the retriever itself.
    context = RunnableLambda(lambda q: {"context": retriever.invoke(q), "question": q})
    built = (context | RunnableLambda(lambda x: (len(x["context"]), x["question"]))).invoke(QUERY)
    assert built == (2, QUERY)

    # The usual RAG dict, async.
    parallel = RunnableParallel(context=retriever, question=RunnablePassthrough())
    out = run_async(parallel.ainvoke(QUERY))
    assert out["question"] == QUERY
    _same_as_search(out["context"], index, QUERY, k=2)


def test_sync_parallel_step(index: Index) -> None:
    # Sync, RunnableParallel runs its steps in LangChain's thread pool.
    retriever = SemsearchRetriever(index=index, k=2)
    parallel = RunnableParallel(context=retriever, question=RunnablePassthrough())
    out = parallel.invoke(QUERY)
    assert out["question"] == QUERY
    _same_as_search(out["context"], index, QUERY, k=2)
    queries = [QUERY, "flooded streets"]
    for query, each in zip(queries, parallel.batch(queries), strict=True):
        assert each["question"] == query
        _same_as_search(each["context"], index, query, k=2)


def test_without_langchain_the_import_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [m for m in sys.modules if m == "langchain_core" or m.startswith("langchain_")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "semsearch.integrations.langchain")
    with pytest.raises(ImportError, match=r"pip install 'semsearch\[langchain\]'"):
        importlib.import_module("semsearch.integrations.langchain")
