"""Search modes: dense, lexical and hybrid agree with their parts, filter, and stay consistent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from semsearch import (
    Document,
    Embedder,
    Filters,
    Index,
    InputError,
    SemsearchError,
)
from semsearch.engines.local.lexical.index import LexicalIndex
from semsearch.retrieval.search import MODES, Mode, fuse

DOCS = [
    Document(
        id="oil",
        title="Oil prices",
        text="Brent crude rose 4% after OPEC cut output.",
        source="wire/a",
        date="2024-01-02",
    ),
    Document(
        id="rain",
        title="Monsoon",
        text="Heavy rain flooded Karachi streets on Monday.",
        source="wire/b",
        date="2024-02-03",
    ),
    Document(
        id="vote",
        title="Election",
        text="Voters in Lahore queued for hours to cast ballots.",
        source="paper/c",
        date="2024-03-04",
    ),
    Document(
        id="zx9",
        title="Gadget",
        text="The ZX9 phone ships with a 7000 mAh battery.",
        source="paper/d",
        date="2024-04-05",
    ),
]


@pytest.fixture
def index(embedder: Embedder) -> Index:
    ix = Index(model=embedder)
    ix.add(DOCS)
    return ix


def test_every_mode_finds_the_obvious_document(index: Index) -> None:
    modes: tuple[Mode, ...] = ("dense", "lexical", "hybrid")
    assert set(modes) == set(MODES)
    for mode in modes:
        assert index.search("crude oil output cut", k=1, mode=mode)[0].doc_id == "oil", mode
    # A made-up product code: only exact terms find it, and hybrid keeps that.
    assert index.search("ZX9", k=1, mode="lexical")[0].doc_id == "zx9"
    assert index.search("ZX9", k=1)[0].doc_id == "zx9"


def test_hybrid_is_the_default_and_mode_is_checked(index: Index) -> None:
    query = "flooding in Pakistan"
    assert index.search(query, k=4) == index.search(query, k=4, mode="hybrid")
    with pytest.raises(InputError, match="mode must be one of"):
        index.search(query, mode="sparse")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="empty query"):
        index.search("  ", mode="lexical")


def test_filters_apply_in_every_mode_and_k_hits_come_back(index: Index) -> None:
    for mode in ("dense", "hybrid"):
        hits = index.search("crude oil", k=2, mode=mode, filters=Filters(sources=["paper/*"]))
        assert {h.doc_id for h in hits} == {"vote", "zx9"}, mode
        hits = index.search("crude oil", k=4, mode=mode, filters=Filters(date_from="2024-02-01"))
        assert len(hits) == 3 and "oil" not in {h.doc_id for h in hits}
    hits = index.search(
        "battery rain ballots", k=5, mode="lexical", filters=Filters(doc_ids=["rain", "zx9"])
    )
    assert {h.doc_id for h in hits} == {"rain", "zx9"}
    assert index.search("crude", k=3, mode="lexical", filters=Filters(sources=["paper/*"])) == []


def test_lexical_mode_equals_bm25_over_title_and_passage(index: Index) -> None:
    ref = LexicalIndex()
    passages = [p for d in DOCS for p in index.passages(d.id)]
    ref.add(
        [p.id for p in passages],
        [f"{index.document(p.doc_id).title}\n\n{p.text}" for p in passages],
    )
    ids, scores = ref.search("Karachi rain Monday voters", 10)
    hits = index.search("Karachi rain Monday voters", k=10, mode="lexical")
    assert [h.passage_id for h in hits] == ids.tolist()
    assert np.allclose([h.score for h in hits], scores)


def test_dense_mode_equals_exact_inner_product(index: Index, embedder: Embedder) -> None:
    passages = [p for d in DOCS for p in index.passages(d.id)]
    vecs = index._engine.vectors.reconstruct(np.asarray([p.id for p in passages]))
    q = embedder.encode_query("voting in Pakistan")[0]
    want = [passages[i].id for i in np.argsort(-(vecs @ q))]
    assert [h.passage_id for h in index.search("voting in Pakistan", k=4, mode="dense")] == want


def test_lexical_index_follows_add_replace_remove_and_rollback(index: Index) -> None:
    def lexical_ids() -> list[int]:
        return [int(i) for i in index._engine.bm25.ids()]

    def store_ids() -> list[int]:
        return index._engine.store.passage_ids()

    assert lexical_ids() == store_ids()
    index.add(Document(id="rain", title="Monsoon", text="Snow closed the Khunjerab pass."))
    assert lexical_ids() == store_ids()
    assert index.search("Khunjerab", k=1, mode="lexical")[0].doc_id == "rain"
    assert index.search("Karachi", k=3, mode="lexical") == []
    before = lexical_ids()
    with pytest.raises(InputError):
        index.add(
            [Document(id="new", text="Fresh text about Gwadar port."), Document(id="", text="x")]
        )
    assert lexical_ids() == before == store_ids()
    assert index.search("Gwadar", k=3, mode="lexical") == []
    index.remove(["zx9"])
    assert lexical_ids() == store_ids()
    assert index.search("ZX9", k=3, mode="lexical") == []


def test_lexical_saved_in_the_same_generation_and_verified(index: Index, tmp_path: Path) -> None:
    index.save(tmp_path)
    loaded = Index.load(tmp_path, model=index.embedder)
    assert loaded.search("ZX9 battery", k=2, mode="lexical") == index.search(
        "ZX9 battery", k=2, mode="lexical"
    )
    # A lexical part that disagrees with the store is refused by the save, before its commit.
    index._engine.bm25.remove(index._engine.bm25.ids()[:1])
    with pytest.raises(SemsearchError, match=r"lexical passage ids differ.*not saved"):
        index.save(tmp_path)
    assert Index.load(tmp_path, model=index.embedder).search("ZX9 battery", k=2, mode="lexical")


def test_hybrid_finds_what_each_signal_alone_misses(embedder: Embedder) -> None:
    filler = "Officials met on Monday about the budget, staff, fuel, fees, parking and cargo."
    ix = Index(model=embedder)
    ix.add(
        [
            *DOCS,
            # The same words in another order: equal BM25 (the tie goes to the earlier id).
            Document(id="apart", text=f"The runway opens in May. {filler} Flights go to Gwadar."),
            Document(
                id="together", text=f"Flights go to Gwadar. The runway opens in May. {filler}"
            ),
        ]
    )
    query = "Gwadar runway opens"
    lexical = ix.search(query, k=2, mode="lexical")
    assert [h.doc_id for h in lexical] == ["apart", "together"]
    assert lexical[0].score == pytest.approx(lexical[1].score)
    assert ix.search(query, k=1)[0].doc_id == "together"
    # No shared term: BM25 finds nothing, the hybrid still finds it through the embedding.
    assert ix.search("petrol costs", k=1, mode="lexical") == []
    assert ix.search("petrol costs", k=1)[0].doc_id == "oil"


def test_fusion_outranks_each_signal_alone() -> None:
    # Candidate 0 is the answer: the cosine prefers 1, BM25 prefers 2, and only candidate 0
    # holds all the query terms close together.
    dense = np.asarray([0.55, 0.60, 0.20], dtype=np.float32)
    lexical = np.asarray([9.0, 5.0, 10.0], dtype=np.float32)
    proximity = np.asarray([1.0, 0.3, 0.4], dtype=np.float32)
    assert np.argmax(dense) == 1 and np.argmax(lexical) == 2
    fused = fuse(dense, lexical, proximity)
    assert np.argmax(fused) == 0
    # Shares add up to one: a fused score is at most the best cosine could give.
    assert fuse(np.ones(1, np.float32), np.ones(1, np.float32), np.ones(1, np.float32))[0] == (
        pytest.approx(1.0)
    )


def test_fusion_normalises_each_signal() -> None:
    dense = np.asarray([0.9, 0.5, 0.1], dtype=np.float32)
    lexical = np.asarray([0.0, 30.0, 10.0], dtype=np.float32)
    for method in ("minmax", "zscore", "max", "rrf"):
        only_dense = fuse(dense, lexical, method=method, weight=0.0)
        only_lexical = fuse(dense, lexical, method=method, weight=1.0)
        assert np.argmax(only_dense) == 0 and np.argmax(only_lexical) == 1, method
    # Scaling BM25 (a longer query) changes no normalised fused score.
    assert np.allclose(fuse(dense, lexical, method="max"), fuse(dense, 3 * lexical, method="max"))
