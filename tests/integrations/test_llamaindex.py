"""The LlamaIndex retriever, driven through LlamaIndex's own calls: retrieve, aretrieve and a
query engine get the index's hits as scored TextNodes with exact offsets."""

from __future__ import annotations

import asyncio
import importlib
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest

pytest.importorskip("llama_index.core")

from adapting import DOCS as LIBRARY
from adapting import QUERY, SearchSpy, run_async
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode

from semsearch import Embedder, Filters, Index, InputError
from semsearch.integrations import METADATA_KEYS
from semsearch.integrations.llamaindex import SemsearchRetriever

DOCS = [replace(LIBRARY[0], url="https://example.com/council"), *LIBRARY[1:]]
QUERY_BUNDLE = QueryBundle(QUERY)


@pytest.fixture(scope="module")
def index(embedder: Embedder) -> Index:
    # Short passages: every document has several, so offsets are not all 0.
    built = Index(model=embedder, max_tokens=32)
    built.add(DOCS)
    return built


def _text_node(result: NodeWithScore) -> TextNode:
    assert isinstance(result.node, TextNode)
    return result.node


def _exact(index: Index, results: list[NodeWithScore]) -> None:
    assert results
    for result in results:
        node = _text_node(result)
        meta = node.metadata
        assert list(meta) == list(METADATA_KEYS)
        assert (node.start_char_idx, node.end_char_idx) == (meta["start"], meta["end"])
        assert node.source_node is not None
        assert node.source_node.node_id == node.ref_doc_id == meta["doc_id"]
        assert index.document(meta["doc_id"]).text[meta["start"] : meta["end"]] == node.text
        assert node.node_id == f"{meta['doc_id']}:{meta['start']}-{meta['end']}"
        assert result.score == meta["score"]


def _same_as_search(results: list[NodeWithScore], index: Index, query: str, **options: Any) -> None:
    hits = index.search(query, **options)
    assert [(r.node.metadata["passage_id"], _text_node(r).text) for r in results] == [
        (h.passage_id, h.text) for h in hits
    ]
    assert [r.score for r in results] == [h.score for h in hits]


def test_retrieve_returns_the_index_hits_as_scored_nodes(index: Index) -> None:
    retriever = SemsearchRetriever(index)
    results = retriever.retrieve(QUERY)
    assert len(results) == 5
    _same_as_search(results, index, QUERY, k=5)
    _exact(index, results)
    assert any(_text_node(r).start_char_idx for r in results)
    bundled = retriever.retrieve(QUERY_BUNDLE)
    assert [(r.node.node_id, r.score) for r in bundled] == [
        (r.node.node_id, r.score) for r in results
    ]


def test_k_filters_and_mode(index: Index) -> None:
    retriever = SemsearchRetriever(index, k=2, mode="lexical")
    _same_as_search(retriever.retrieve(QUERY), index, QUERY, k=2, mode="lexical")
    retriever.k, retriever.mode = 4, "dense"
    _same_as_search(retriever.retrieve(QUERY), index, QUERY, k=4, mode="dense")

    retriever.k = 10
    unfiltered = {r.node.metadata["source"] for r in retriever.retrieve(QUERY)}
    assert "paper/library.txt" in unfiltered
    retriever.filters = Filters(date_from="2024-01-01")
    dated = retriever.retrieve(QUERY)
    _exact(index, dated)
    assert "paper/library.txt" not in {r.node.metadata["source"] for r in dated}
    assert all(r.node.metadata["date"] >= "2024-01-01" for r in dated)

    wire = SemsearchRetriever(index, k=10, filters=Filters(sources=["wire/c*"])).retrieve(QUERY)
    assert wire and {r.node.metadata["source"] for r in wire} == {"wire/council.txt"}
    assert wire[0].node.metadata["url"] == "https://example.com/council"

    with pytest.raises(ValueError):
        SemsearchRetriever(index, k=0)
    with pytest.raises(InputError):
        SemsearchRetriever(index).retrieve(" ")


def test_recency_reaches_the_search(index: Index) -> None:
    retriever = SemsearchRetriever(index, k=3, recency=True)
    _same_as_search(retriever.retrieve(QUERY), index, QUERY, k=3, recency=True)
    retriever.recency = False
    _same_as_search(retriever.retrieve(QUERY), index, QUERY, k=3, recency=False)
    assert (
        run_async(retriever.aretrieve(QUERY))[0].score
        == index.search(QUERY, recency=False)[0].score
    )


def test_metadata_shown_to_an_llm_and_to_an_embedder(index: Index) -> None:
    council = SemsearchRetriever(index, k=1, filters=Filters(sources=["wire/council.txt"]))
    node = _text_node(council.retrieve(QUERY)[0])
    llm = node.get_content(MetadataMode.LLM)
    assert llm.endswith(node.text)
    header = llm[: -len(node.text)]
    for shown in ("title: Council approves library budget", "date: 2024-05-06", "url: https"):
        assert shown in header
    for hidden in ("passage_id", "doc_id", "start", "score", "metadata"):
        assert f"{hidden}:" not in header
    embedded = node.get_content(MetadataMode.EMBED)
    assert embedded[: -len(node.text)].strip() == "title: Council approves library budget"
    # A document without a url shows no "url: None".
    library = SemsearchRetriever(index, k=1, filters=Filters(sources=["paper/*"]))
    assert "url:" not in library.retrieve(QUERY)[0].node.get_content(MetadataMode.LLM)


def test_aretrieve_matches_retrieve_with_the_search_off_the_loop(
    index: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    retriever = SemsearchRetriever(index, k=3)
    loop_thread: list[int] = []
    spy = SearchSpy(index, monkeypatch)
    # Both searches must be running at once (the barrier): the loop is not blocked.
    spy.barrier = threading.Barrier(2, timeout=30)

    async def run() -> list[list[NodeWithScore]]:
        loop_thread.append(threading.get_ident())
        return list(
            await asyncio.gather(retriever.aretrieve(QUERY), retriever.aretrieve(QUERY_BUNDLE))
        )

    by_text, by_bundle = run_async(run())
    # Every search (the model and the lookup) ran in a worker thread, never on the loop's.
    assert len(spy.threads) == 2 and loop_thread[0] not in spy.threads
    monkeypatch.undo()
    _same_as_search(by_text, index, QUERY, k=3)
    _same_as_search(by_bundle, index, QUERY, k=3)
    _exact(index, by_text)


def test_retrieve_from_several_threads_at_once(index: Index) -> None:
    retriever = SemsearchRetriever(index, k=3)
    queries = [QUERY, "flooded streets", "solar panels on the roof"] * 2
    expected = [retriever.retrieve(query) for query in queries]
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(retriever.retrieve, queries))
    assert [[(r.node.node_id, r.score) for r in each] for each in results] == [
        [(r.node.node_id, r.score) for r in each] for each in expected
    ]


def test_a_query_engine_answers_from_the_retrieved_nodes(index: Index) -> None:
    retriever = SemsearchRetriever(index, k=2)
    engine = RetrieverQueryEngine.from_args(retriever, llm=MockLLM())
    response = engine.query(QUERY)
    expected = [r.node.node_id for r in retriever.retrieve(QUERY)]
    assert [r.node.node_id for r in response.source_nodes] == expected
    _exact(index, response.source_nodes)
    # MockLLM echoes its prompt: the passages reached it.
    assert _text_node(response.source_nodes[0]).text in str(response)


def test_without_llama_index_the_import_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [m for m in sys.modules if m == "llama_index" or m.startswith("llama_index.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "semsearch.integrations.llamaindex")
    with pytest.raises(ImportError, match=r"pip install 'semsearch\[llamaindex\]'"):
        importlib.import_module("semsearch.integrations.llamaindex")
