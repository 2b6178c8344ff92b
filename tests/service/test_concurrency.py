"""Concurrent readers while the service writes: no error, and no read sees half an add."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest
from serving import BATCH, MARK, Service, hammer

from semsearch import Index, SemsearchError, indexing

ServeFactory = Callable[..., AbstractContextManager[Service]]


def test_readers_never_see_half_an_add(service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    # An add writes its documents one at a time, embedding between them (as an add of more
    # than EMBED_BATCH passages does): a reader of the index being written would see some.
    monkeypatch.setattr(indexing, "EMBED_BATCH", 1)
    reads, wrong = hammer(service.url, service.url, batches=6)
    assert wrong == []
    assert reads >= 12  # the readers really ran during the writes
    with service.client() as client:
        hits = client.post("/search", json={"query": MARK, "k": 100, "mode": "lexical"}).json()
        assert len({h["doc_id"] for h in hits["hits"]}) == 6 * BATCH
        assert client.get("/documents/shared").json()["metadata"]["version"] == 5
    saved = Index.load(service.location)
    assert len(saved) == 2 + 6 * BATCH + 1


def test_a_failed_write_leaves_readers_and_the_saved_index_as_they_were(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    with service.client() as client:
        before = client.get("/info").json()

        def broken_save(self: Index, path: object = None) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(Index, "save", broken_save)
        body = {"documents": [{"id": "x", "text": "Snow fell on the pass at dawn."}]}
        failed = client.post("/documents", json=body)
        assert failed.status_code == 500
        assert failed.json()["error"] == "internal error (the service's log has the details)"
        assert "Traceback" not in failed.text
        assert client.get("/info").json() == before
        assert client.get("/documents/x").status_code == 404
        monkeypatch.undo()
        # The writer reopened the last save: the next write works, without the failed one.
        assert client.post("/documents", json=body).json()["added"] == 1
        assert client.get("/info").json()["documents"] == before["documents"] + 1


def test_a_superseded_snapshot_closes_when_its_last_read_ends(service: Service) -> None:
    served = service.served
    body = {"documents": [{"id": "x", "text": "Snow fell on the pass at dawn."}]}
    with service.client() as client, served.reading() as held:
        before = held.search("snow on the pass", k=3)
        assert client.post("/documents", json=body).json()["added"] == 1
        # The write published a new snapshot; the one being read stays open and unchanged.
        assert served.open_snapshots == 2
        assert held.search("snow on the pass", k=3) == before
        assert "x" not in {d.id for d in held.documents()}
    assert served.open_snapshots == 1
    with pytest.raises(SemsearchError, match="the index is closed"):
        held.search("snow on the pass")
    # With no read running, a write closes the snapshot it replaces at once.
    with served.reading() as current:
        assert "x" in {d.id for d in current.documents()}
    body = {"documents": [{"id": "y", "text": "Rain came to the valley by noon."}]}
    with service.client() as client:
        assert client.post("/documents", json=body).json()["added"] == 1
    assert served.open_snapshots == 1
    with pytest.raises(SemsearchError, match="the index is closed"):
        current.documents()
