"""A search whose ranked rows are removed before they are read (a write committed meanwhile on
an engine read live) ranks again rather than failing, a bounded number of times."""

from __future__ import annotations

from typing import Any

import pytest

from semsearch import Document, Embedder, Index
from semsearch.engines import ChangedDuringRead
from semsearch.retrieval.search import READ_ATTEMPTS


def _index(embedder: Embedder) -> Index:
    index = Index(model=embedder)
    index.add(
        [
            Document.create("The council approved the library budget.", id="a"),
            Document.create("Snow closed the mountain pass at dawn.", id="b"),
        ]
    )
    return index


def test_a_read_that_races_a_write_ranks_again(
    embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = _index(embedder)
    engine: Any = index._engine
    real, calls = engine.hits, []

    def racing(ranked: Any) -> Any:
        calls.append(ranked)
        if len(calls) < READ_ATTEMPTS:
            raise ChangedDuringRead("passage 1 was removed meanwhile")
        return real(ranked)

    monkeypatch.setattr(engine, "hits", racing)
    hits = index.search("library budget", k=1)
    assert [h.doc_id for h in hits] == ["a"] and len(calls) == READ_ATTEMPTS


def test_a_read_that_keeps_racing_fails_with_the_engines_error(
    embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = _index(embedder)
    engine: Any = index._engine

    def always(ranked: Any) -> Any:
        raise ChangedDuringRead("passage 1 was removed meanwhile")

    monkeypatch.setattr(engine, "hits", always)
    with pytest.raises(ChangedDuringRead, match="removed meanwhile"):
        index.search("library budget", k=1)
