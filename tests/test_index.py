"""Index: add/replace/remove, search against an exact oracle, filters, rollback, cache."""

from __future__ import annotations

import gc
import warnings
from collections.abc import Sequence
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
    SemsearchWarning,
)

DOCS = [
    Document.create(
        "The central bank raised interest rates by half a point on Tuesday. Inflation hit 9%.",
        title="Bank raises rates",
        source="wire/economy.txt",
        date="2022-05-03",
    ),
    Document.create(
        "Heavy snow closed mountain passes in Herat. Three shepherds were found dead.",
        title="Snow in Herat",
        source="wire/weather.txt",
        date="2025-12-01",
    ),
    Document.create(
        "The football club signed a striker from Brazil for a record fee. Fans celebrated.",
        title="Record transfer",
        source="sport/football.txt",
        date="2023-08-15",
    ),
    Document.create(
        "Scientists found water ice near the lunar south pole. A rover will drill next year.",
        title="Ice on the Moon",
        source="science/moon.txt",
        date="2024-02-10",
    ),
]


@pytest.fixture
def index(embedder: Embedder) -> Index:
    idx = Index(model=embedder)
    idx.add(DOCS)
    return idx


def _invariants(idx: Index) -> None:
    ids = idx._engine.store.passage_ids()
    assert len(idx._engine.vectors) == idx.passage_count == len(ids)
    assert sorted(idx._engine.vectors.ids().tolist()) == ids
    for doc in idx.documents():
        for p in idx.passages(doc.id):
            assert doc.text[p.start : p.end] == p.text


def test_each_document_found_first(index: Index) -> None:
    for query, title in [
        ("did the interest rate go up", "Bank raises rates"),
        ("people died in the cold in Afghanistan", "Snow in Herat"),
        ("soccer player transfer", "Record transfer"),
        ("frozen water on the moon", "Ice on the Moon"),
    ]:
        assert index.search(query, k=3)[0].title == title
    _invariants(index)


def test_hits_match_exact_numpy_oracle(index: Index, embedder: Embedder) -> None:
    query = "weather and deaths"
    ids = np.array(index._engine.store.passage_ids(), dtype=np.int64)
    matrix = index._engine.vectors.reconstruct(ids)
    q = embedder.encode_query(query)[0]
    scores = matrix @ q
    order = np.argsort(-scores)
    hits = index.search(query, k=len(ids), mode="dense")
    assert [h.passage_id for h in hits] == ids[order].tolist()
    np.testing.assert_allclose([h.score for h in hits], scores[order], rtol=1e-4, atol=1e-5)
    assert [h.rank for h in hits] == list(range(1, len(ids) + 1))


def test_hit_carries_document_fields_and_exact_span(index: Index) -> None:
    hit = index.search("lunar ice", k=1)[0]
    doc = index.document(hit.doc_id)
    assert doc.text[hit.start : hit.end] == hit.text
    assert (hit.title, hit.date, hit.source) == (
        "Ice on the Moon",
        "2024-02-10",
        "science/moon.txt",
    )
    assert "Ice on the Moon" not in hit.text  # the title is embedded, never part of the passage


def test_filters_still_return_k(embedder: Embedder) -> None:
    idx = Index(model=embedder)
    docs = [
        Document.create(
            f"Report number {i} about city council budgets.",
            source=f"s{i % 3}.txt",
            date=f"2024-01-{i + 1:02d}",
        )
        for i in range(20)
    ]
    idx.add(docs)
    hits = idx.search(
        "council budget", k=5, filters=Filters(date_from="2024-01-05", date_to="2024-01-15")
    )
    assert len(hits) == 5
    assert all("2024-01-05" <= (h.date or "") <= "2024-01-15" for h in hits)
    hits = idx.search("council budget", k=5, filters=Filters(sources=["s1.txt"]))
    assert len(hits) == 5 and {h.source for h in hits} == {"s1.txt"}
    hits = idx.search("council budget", k=5, filters=Filters(sources=["s[02].txt"]))
    assert len(hits) == 5 and {h.source for h in hits} <= {"s0.txt", "s2.txt"}
    hits = idx.search("council budget", k=10, filters=Filters(doc_ids=[docs[3].id, docs[4].id]))
    assert {h.doc_id for h in hits} == {docs[3].id, docs[4].id}
    assert idx.search("council budget", k=5, filters=Filters(date_from="2030-01-01")) == []
    with pytest.raises(InputError, match="YYYY-MM-DD"):
        idx.search("x", filters=Filters(date_from="last week"))


def test_readding_same_document_changes_nothing(index: Index) -> None:
    before = index._engine.store.passage_ids()
    report = index.add(DOCS)
    assert (report.unchanged, report.added, report.embedded) == (4, 0, 0)
    assert index._engine.store.passage_ids() == before


def test_replacing_a_document_reuses_unchanged_embeddings(embedder: Embedder) -> None:
    idx = Index(model=embedder, max_tokens=16)
    text = " ".join(f"Paragraph {i} tells a separate part of the story." for i in range(8))
    doc = Document.create(text, id="story", title="Story")
    first = idx.add([doc])
    assert first.embedded == first.passages > 2
    old_ids = set(idx._engine.store.passage_ids())
    changed = Document.create(text + " A late correction was added.", id="story", title="Story")
    second = idx.add([changed])
    assert second.replaced == 1 and len(idx) == 1
    assert second.embedded < second.passages, "unchanged passages keep their vectors"
    new_ids = set(idx._engine.store.passage_ids())
    assert not new_ids & old_ids and min(new_ids) > max(old_ids), "ids are never reused"
    _invariants(idx)
    # The reused vectors are the model's vectors for those texts, not stale or zero rows.
    p0 = idx.passages("story")[0]
    stored = idx._engine.vectors.reconstruct(np.array([p0.id]))[0]
    fresh = embedder.encode([f"Story\n\n{p0.text}"])[0]
    np.testing.assert_allclose(stored, fresh, atol=1e-5)


def test_a_new_version_with_the_same_text_asks_the_model_nothing(
    embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    idx = Index(model=embedder, max_tokens=16)
    text = " ".join(f"Paragraph {i} tells a separate part of the story." for i in range(4))
    idx.add([Document.create(text, id="story", title="Story", date="2026-01-02")])
    asked: list[list[str]] = []
    encode = embedder.encode
    monkeypatch.setattr(
        embedder, "encode", lambda texts, **kw: asked.append(texts) or encode(texts, **kw)
    )
    report = idx.add([Document.create(text, id="story", title="Story", date="2026-01-03")])
    assert (report.replaced, report.embedded) == (1, 0) and report.passages > 1
    assert asked == [], "every vector is reused, so the model is not called, not even with []"
    assert [d.date for d in idx.documents()] == ["2026-01-03"]
    _invariants(idx)


class QueryPrefixed(Embedder):
    """A model used as e5 is: queries carry a prefix, documents none."""

    def __init__(self) -> None:
        super().__init__()
        self.queries: list[str] = []

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        self.queries.extend(texts)
        return self.encode([f"query: {t}" for t in texts])

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode_queries([text])


def test_every_search_embeds_its_queries_as_queries() -> None:
    """One query or many, searched or asked: each goes through encode_queries, whose vectors
    the ranking uses (an asymmetric model's documents are never embedded as queries)."""
    model = QueryPrefixed()
    idx = Index(model=model)
    idx.add(DOCS)
    questions = ["Why did the bank raise interest rates?", "Where did it snow?"]
    hits = idx.search_many(questions, k=3)
    idx.search(questions[0], k=3)
    idx.ask_many(questions, k=3)
    assert model.queries == [*questions, questions[0], *questions]
    prefixed = Embedder.encode(model, [f"query: {q}" for q in questions])
    want = idx.search_many(questions, k=3, query_vectors=prefixed)
    assert [[(h.passage_id, h.score) for h in r] for r in hits] == [
        [(h.passage_id, h.score) for h in r] for r in want
    ]


def test_remove_and_ids_never_reused(index: Index) -> None:
    doc = DOCS[0]
    removed_ids = set(index._engine.store.passage_ids())
    assert index.remove(doc.id) >= 1
    assert doc.id not in index and len(index) == 3
    assert all(h.doc_id != doc.id for h in index.search("interest rates", k=10))
    index.add([doc])
    assert min(p.id for p in index.passages(doc.id)) > max(removed_ids)
    _invariants(index)


def test_remove_unknown_id_changes_nothing(index: Index) -> None:
    before = index._engine.store.passage_ids()
    with pytest.raises(SemsearchError, match="nope"):
        index.remove([DOCS[1].id, "nope"])
    assert index._engine.store.passage_ids() == before and DOCS[1].id in index


def test_failed_add_leaves_index_as_it_was(index: Index) -> None:
    before_ids = index._engine.store.passage_ids()
    before_hits = index.search("snow", k=4)
    new = Document.create("A fresh story about trains.", title="Trains")
    changed = Document.create("Totally different text now.", id=DOCS[1].id, title="Changed")
    bad = Document(id="bad", text="   ", source="broken.txt")
    with pytest.raises(InputError, match=r"broken\.txt"):
        index.add([new, changed, bad])
    assert index._engine.store.passage_ids() == before_ids
    assert new.id not in index and index.document(DOCS[1].id).title == "Snow in Herat"
    assert index.search("snow", k=4) == before_hits
    _invariants(index)


def test_duplicate_ids_in_one_call_keep_the_last(embedder: Embedder) -> None:
    idx = Index(model=embedder)
    idx.add([Document.create("First version.", id="x"), Document.create("Second version.", id="x")])
    assert len(idx) == 1 and idx.document("x").text == "Second version."
    _invariants(idx)


def test_query_validation(index: Index) -> None:
    with pytest.raises(InputError, match="empty query"):
        index.search("   ")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hits = index.search("rates " * 2000, k=2)
    assert hits and any(
        issubclass(w.category, SemsearchWarning) and "tokens" in str(w.message) for w in caught
    )
    with pytest.raises(InputError):
        index.search("x", k=0)


def test_search_many_equals_search(index: Index) -> None:
    queries = ["interest rates", "moon ice", "transfer fee"]
    many = index.search_many(queries, k=3)
    for q, hits in zip(queries, many, strict=True):
        single = index.search(q, k=3)
        assert [h.passage_id for h in hits] == [h.passage_id for h in single]
        np.testing.assert_allclose([h.score for h in hits], [h.score for h in single], atol=1e-4)


def test_lone_surrogate_refused(embedder: Embedder) -> None:
    with pytest.raises(InputError, match="Unicode"):
        Index(model=embedder).add([Document.create("bad \ud800 text", source="odd.jsonl")])


def test_nul_character_refused_and_index_unchanged(embedder: Embedder) -> None:
    index = Index(model=embedder)
    index.add(DOCS[:1])
    size = len(index)
    bad = Document.create("Before. x\x00y. After the NUL.", source="feed.jsonl")
    with pytest.raises(InputError, match=r"feed\.jsonl.*NUL"):
        index.add([DOCS[1], bad])
    assert len(index) == size and index.passages(DOCS[1].id) == []


def test_max_tokens_over_model_limit_refused(embedder: Embedder) -> None:
    with pytest.raises(ValueError, match="exceeds"):
        Index(model=embedder, max_tokens=4096).add(DOCS[:1])


def test_closing_releases_the_saved_files_and_refuses_further_use(
    index: Index, embedder: Embedder, tmp_path: Path
) -> None:
    index.save(tmp_path / "ix")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        with Index.load(tmp_path / "ix", model=embedder) as loaded:
            assert loaded.search("snow in the mountains", k=1)[0].doc_id == DOCS[1].id
        del loaded
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]

    reopened = Index.load(tmp_path / "ix", model=embedder)
    reopened.close()
    reopened.close()  # a second close does nothing
    assert reopened.location == str(tmp_path / "ix")
    for use in (lambda: reopened.search("snow"), lambda: len(reopened), reopened.save):
        with pytest.raises(SemsearchError, match=r"ix: the index is closed"):
            use()
    # Closing saves nothing and loses nothing saved.
    assert len(Index.load(tmp_path / "ix", model=embedder)) == len(DOCS)
