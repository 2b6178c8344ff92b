"""The engine contract: one suite every engine passes, with no model (vectors are given).

Each engine is reached through a fixture that makes an empty one and reopens a saved one; the
suite talks to the Engine interface only, so a second engine runs it unchanged.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from semsearch import Document, Filters, Passage
from semsearch.engines import (
    DocumentPassages,
    Engine,
    IndexSettings,
    LocalEngine,
    new_engine,
    open_engine,
)
from semsearch.engines.milvus.address import Address, close
from semsearch.engines.milvus.schema import names
from semsearch.passages import split_sentences

DIM = 8
SETTINGS = IndexSettings(
    model="contract/test-model",
    backend="torch",
    dimension=DIM,
    max_tokens=64,
    overlap=0,
    include_title=True,
)
TEXTS = {
    "harbour": "The harbour reopened on Monday. Ships queued at the gates. Dockers cheered.",
    "storm": "A storm closed the coastal road. Floods reached the old town by night.",
    "budget": "The city budget grew by four percent. Schools get most of the new money.",
    "copy": "The harbour reopened on Monday. Ships queued at the gates. Dockers cheered.",
}
DATES = {"harbour": "2024-03-01", "storm": "2024-03-05", "budget": "2024-04-10", "copy": None}
SOURCES = {"harbour": "port/a.txt", "storm": "weather/b.txt", "budget": "city/c.txt"}


class Engines:
    """How to make and reopen one kind of engine."""

    def __init__(self, make: Callable[[], Engine], reopen: Callable[[Engine], Engine]) -> None:
        self.make, self.reopen = make, reopen


ENGINES = ["local", "milvus-lite", "milvus-server", "milvus-real"]
"""milvus-real is a Milvus server of your own, named by SEMSEARCH_MILVUS_URI (for example
milvus://127.0.0.1:19530): each test writes its own collections there and drops them."""


@pytest.fixture(params=ENGINES)
def engines(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engines]:
    """Each engine empty, and reopened after its save as a new process would: the local one
    from its directory, Milvus Lite from its file with a new client, a Milvus server through
    a new connection."""
    if request.param == "local":
        counter = iter(range(1000))

        def reopen(engine: Engine) -> Engine:
            location = engine.save(SETTINGS, str(tmp_path / f"ix{next(counter)}"))
            return LocalEngine.open(location)

        yield Engines(LocalEngine, reopen)
        return
    pytest.importorskip("milvus_lite")
    name = "contract_" + re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[:60]
    if request.param == "milvus-lite":
        location = f"milvus://{tmp_path / 'contract.db'}"
    elif request.param == "milvus-server":
        location = f"{request.getfixturevalue('milvus_server')}/{name}"
    else:
        base = os.environ.get("SEMSEARCH_MILVUS_URI")
        if not base:
            pytest.skip("SEMSEARCH_MILVUS_URI names no Milvus server")
        location = f"{base.rstrip('/')}/{name}"
    address = Address.parse(location)
    drop(address)

    def reopen_milvus(engine: Engine) -> Engine:
        engine.save(SETTINGS)
        close(address)
        return open_engine(location)

    yield Engines(lambda: new_engine(location), reopen_milvus)
    drop(address)
    close(address)


def drop(address: Address) -> None:
    """Drop a test index's collections (on a server they outlive the test)."""
    client = address.client()
    for collection in names(address.name).values():
        if client.has_collection(collection):
            client.drop_collection(collection)


def vector_of(text: str) -> np.ndarray:
    """A deterministic unit vector per text: equal texts share a vector, as with a model."""
    seed = int.from_bytes(text.encode("utf-8")[:8].ljust(8, b"\0"), "little") ^ len(text)
    rng = np.random.default_rng(seed)
    v = rng.standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def entry(doc_id: str, text: str | None = None) -> tuple[DocumentPassages, np.ndarray]:
    text = TEXTS[doc_id] if text is None else text
    doc = Document(
        id=doc_id,
        text=text,
        title=doc_id.title(),
        source=SOURCES.get(doc_id, "other/d.txt"),
        date=DATES.get(doc_id),
    )
    passages = [
        Passage(doc_id, i, a, b, text[a:b]) for i, (a, b) in enumerate(split_sentences(text))
    ]
    keys = [f"key:{p.text}" for p in passages]
    vectors = np.stack([vector_of(p.text) for p in passages])
    return DocumentPassages(doc, passages, keys, doc.title), vectors


def write(engine: Engine, *doc_ids: str) -> int:
    entries = [entry(d) for d in doc_ids]
    with engine.writer(SETTINGS) as writer:
        return writer.write([e for e, _ in entries], np.concatenate([v for _, v in entries]))


def all_passages(engine: Engine) -> list[Passage]:
    return [p for doc in engine.documents() for p in engine.passages(doc.id)]


def test_written_passages_slice_their_documents(engines: Engines) -> None:
    engine = engines.make()
    write(engine, "harbour", "storm", "budget")
    for current in (engine, engines.reopen(engine)):
        assert current.counts() == (3, 7)
        for doc in current.documents():
            for p in current.passages(doc.id):
                assert doc.text[p.start : p.end] == p.text and p.id >= 0
        ids = np.asarray([p.id for p in all_passages(current)], np.int64)
        ranked = current.dense(current.passage_vectors(ids[:1]), 3, Filters())[0]
        for hit in current.hits(ranked):
            doc = current.document(hit.doc_id)
            assert doc is not None and doc.text[hit.start : hit.end] == hit.text


def test_dense_equals_an_exact_numpy_search(engines: Engines) -> None:
    engine = engines.make()
    write(engine, "harbour", "storm", "budget")
    passages = all_passages(engine)
    ids = np.asarray([p.id for p in passages], np.int64)
    matrix = np.stack([vector_of(p.text) for p in passages])
    np.testing.assert_allclose(engine.passage_vectors(ids), matrix, atol=1e-6)
    queries = np.stack([vector_of("query one"), vector_of("query two")])
    for query, ranked in zip(queries, engine.dense(queries, 4, Filters()), strict=True):
        truth = ids[np.argsort(-(matrix @ query), kind="stable")[:4]]
        assert ranked.ids.tolist() == truth.tolist()
        np.testing.assert_allclose(ranked.scores, np.sort(matrix @ query)[::-1][:4], atol=1e-5)


def test_filters_apply_inside_the_search(engines: Engines) -> None:
    engine = engines.make()
    write(engine, "harbour", "storm", "budget", "copy")
    query = vector_of("anything")[None, :]
    by_doc = {p.id: p.doc_id for p in all_passages(engine)}
    cases: list[tuple[Filters, set[str]]] = [
        (Filters(date_from="2024-03-02"), {"storm", "budget"}),
        (Filters(date_to="2024-03-31"), {"harbour", "storm"}),
        (Filters(sources=["weather/*"]), {"storm"}),
        (Filters(doc_ids=["budget", "copy"]), {"budget", "copy"}),
        (Filters(doc_ids=[]), set()),
    ]
    for filters, docs in cases:
        want = sum(1 for d in by_doc.values() if d in docs)
        (ranked,) = engine.dense(query, 100, filters.checked())
        assert {by_doc[i] for i in ranked.ids.tolist()} == docs
        assert len(ranked.ids) == want  # every qualifying passage, not a filtered top-n
        (ranked,) = engine.lexical(["harbour storm budget money"], 100, filters.checked())
        assert {by_doc[i] for i in ranked.ids.tolist()} <= docs


def test_passage_dates_are_their_documents_dates(engines: Engines) -> None:
    engine = engines.make()
    write(engine, "harbour", "budget", "copy")
    passages = all_passages(engine)
    ids = np.asarray([p.id for p in passages] + [10_000], np.int64)
    want = [DATES[p.doc_id] for p in passages] + [None]  # an unknown id has no date
    for current in (engine, engines.reopen(engine)):
        assert current.passage_dates(ids) == want
        assert current.passage_dates(np.zeros(0, np.int64)) == []


def test_lexical_finds_only_passages_sharing_a_term(engines: Engines) -> None:
    engine = engines.make()
    write(engine, "harbour", "storm", "budget")
    texts = {p.id: p.text for p in all_passages(engine)}
    (ranked,) = engine.lexical(["floods"], 10, Filters())
    assert [texts[i] for i in ranked.ids.tolist()] == ["Floods reached the old town by night."]
    (nothing,) = engine.lexical(["zebra"], 10, Filters())
    assert len(nothing.ids) == 0


def test_candidates_join_both_lists_with_both_scores(engines: Engines) -> None:
    engine = engines.make()
    write(engine, "harbour", "storm", "budget")
    query = vector_of("question about money")
    (cands,) = engine.candidates(["school money"], query[None, :], 2, Filters())
    (dense,) = engine.dense(query[None, :], 2, Filters())
    (lexical,) = engine.lexical(["school money"], 2, Filters())
    assert set(cands.ids.tolist()) == set(dense.ids.tolist()) | set(lexical.ids.tolist())
    np.testing.assert_allclose(cands.dense, engine.passage_vectors(cands.ids) @ query, atol=1e-5)
    lexical_of = dict(zip(lexical.ids.tolist(), lexical.scores.tolist(), strict=True))
    for pid, score in zip(cands.ids.tolist(), cands.lexical.tolist(), strict=True):
        assert score == pytest.approx(lexical_of.get(pid, score))
    assert cands.cut


def test_replace_and_remove_keep_every_part_in_step(engines: Engines) -> None:
    engine = engines.make()
    write(engine, "harbour", "storm")
    before = {p.id for p in engine.passages("storm")}
    changed, vectors = entry("storm", "The storm passed. The road reopened at dawn.")
    with engine.writer(SETTINGS) as writer:
        assert writer.stored_vectors(["key:The storm passed.", changed.keys[1]]) == {}
        assert writer.write([changed], vectors) == 1
    after = {p.id for p in engine.passages("storm")}
    assert engine.counts() == (2, 5) and not before & after
    query = vector_of("The storm passed.")[None, :]
    assert engine.dense(query, 1, Filters())[0].ids.tolist() == [min(after)]
    assert engine.remove(["storm"]) == 2
    assert engine.counts() == (1, 3) and engine.has_documents(["storm", "harbour"]) == [False, True]
    reopened = engines.reopen(engine)
    assert reopened.counts() == (1, 3)
    assert not set(reopened.dense(query, 10, Filters())[0].ids.tolist()) & after


def test_a_failed_write_leaves_the_engine_as_it_was(engines: Engines) -> None:
    engine = engines.make()
    write(engine, "harbour")
    query = vector_of("Ships queued at the gates.")[None, :]
    state = (engine.counts(), engine.dense(query, 5, Filters())[0].ids.tolist())
    storm, vectors = entry("storm")
    replaced, replaced_vectors = entry("harbour", "Only this sentence now.")
    with pytest.raises(RuntimeError), engine.writer(SETTINGS) as writer:
        writer.write([storm], vectors)
        writer.write([replaced], replaced_vectors)
        raise RuntimeError("failed in the middle")
    assert (engine.counts(), engine.dense(query, 5, Filters())[0].ids.tolist()) == state
    assert engine.lexical(["floods"], 5, Filters())[0].ids.tolist() == []
    harbour = engine.document("harbour")
    assert harbour is not None and harbour.text == TEXTS["harbour"]
    assert engines.reopen(engine).counts() == state[0]


def test_stored_vectors_are_found_by_key(engines: Engines) -> None:
    engine = engines.make()
    write(engine, "harbour")
    with engine.writer(SETTINGS) as writer:
        found = writer.stored_vectors(["key:Dockers cheered.", "key:unknown"])
        assert writer.unchanged(entry("harbour")[0].document)
        assert not writer.unchanged(entry("harbour", "Other text.")[0].document)
    assert list(found) == ["key:Dockers cheered."]
    np.testing.assert_allclose(found["key:Dockers cheered."], vector_of("Dockers cheered."))


def test_duplicate_passages_form_one_group(engines: Engines) -> None:
    engine = engines.make()
    write(engine, "harbour", "storm", "copy")
    reopened = engines.reopen(engine)
    passages = all_passages(reopened)
    ids = np.asarray([p.id for p in passages], np.int64)
    groups = dict(zip(ids.tolist(), reopened.representatives(ids).tolist(), strict=True))
    by_text: dict[str, set[int]] = {}
    for p in passages:
        by_text.setdefault(p.text, set()).add(groups[p.id])
    assert all(len(reps) == 1 for reps in by_text.values())  # equal texts share a group
    assert len(set(groups.values())) == 5  # harbour's 3 texts (held twice) and storm's 2
    storm = [p.id for p in reopened.passages("storm")]
    assert [groups[i] for i in storm] == storm  # no near-duplicate: its own group
    assert reopened.duplicate_count() >= 3  # at least copy's passages, each a copy


def test_info_counts_what_is_held(engines: Engines) -> None:
    engine = engines.make()
    write(engine, "harbour", "copy")
    info = engines.reopen(engine).info(files=True)
    assert (info["documents"], info["passages"], info["vectors"]) == (2, 6, 6)
    assert [sorted(g) for g in info["duplicates"]["article_groups"]] == [["copy", "harbour"]]


def test_info_gives_the_range_of_dates(engines: Engines) -> None:
    engine = engines.make()
    write(engine, "budget", "copy", "harbour", "storm")
    engine.remove(["budget"])  # the latest date leaves with it
    dates = engines.reopen(engine).info()["dates"]
    want = {"dated": 2, "undated": 1, "first": "2024-03-01", "last": "2024-03-05"}
    assert {k: dates[k] for k in want} == want
    # Milvus keeps whether a date is approximate only in each document's record.
    assert dates["approximate"] == (0 if isinstance(engine, LocalEngine) else None)


def test_a_copy_written_later_joins_its_group(engines: Engines) -> None:
    engine = engines.make()
    write(engine, "harbour", "storm")
    write(engine, "copy")
    copies = [p.id for p in engine.passages("copy")]
    originals = [p.id for p in engine.passages("harbour")]
    reps = engine.representatives(np.asarray(copies, np.int64)).tolist()
    assert reps == engine.representatives(np.asarray(originals, np.int64)).tolist()
    assert reps == originals  # the stored passages head their groups


PROXIMITY_TEXTS = {
    "close": "Floods reached the old town by night after the storm.",
    "apart": "The storm began in the north. Roads were closed and trains were late. "
    "Many days later, floods came to a town in the south.",
    "other": "The town council met to discuss the budget for schools and roads.",
}


def test_proximity_agrees_with_the_local_engine(engines: Engines) -> None:
    """How closely each passage holds the query's terms, against the local engine as oracle
    (Milvus estimates the IDFs from its BM25 scores; the local engine knows them)."""
    engine, oracle = engines.make(), LocalEngine()
    for target in (engine, oracle):
        entries = [entry(d, t) for d, t in PROXIMITY_TEXTS.items()]
        with target.writer(SETTINGS) as writer:
            writer.write([e for e, _ in entries], np.concatenate([v for _, v in entries]))
    key = {(p.doc_id, p.ordinal): p.id for p in all_passages(oracle)}
    passages = all_passages(engine)
    ids = np.asarray([p.id for p in passages], np.int64)
    same = np.asarray([key[p.doc_id, p.ordinal] for p in passages], np.int64)
    for query in ("storm floods town", "budget schools", "floods", "zebra storm"):
        scores = engine.proximity(query, ids)
        assert scores is not None
        np.testing.assert_allclose(scores, oracle.proximity(query, same), atol=0.02)
    close = [i for i, p in enumerate(passages) if p.doc_id == "close"]
    assert scores[close[0]] > 0  # zebra is unknown: a share, never all of the weight


def test_closing_an_engine_leaves_another_on_the_same_data_working(engines: Engines) -> None:
    engine = engines.make()
    write(engine, "harbour", "storm")
    first = engines.reopen(engine)
    second = engines.reopen(first)
    first.close()
    assert second.counts() == (2, len(all_passages(second)))
    found = second.dense(vector_of(TEXTS["storm"].split(". ")[0] + ".")[None], 1, Filters())
    assert [p.doc_id for p in second.hits(found[0])] == ["storm"]
