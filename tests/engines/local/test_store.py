"""The SQLite store: a loaded store reads its file in place and copies it only to write."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from semsearch import Document, Embedder, Index
from semsearch.engines.local.store.store import Store
from semsearch.types import Passage

TOPICS = ["harbour strike", "wheat harvest", "river flood", "chess final"]
DOCS = [
    Document(id=f"d{i}", title=f"Title {i}", text=f"A report on the {t} today.", source="s")
    for i, t in enumerate(TOPICS)
]


def _store(docs: list[Document] = DOCS) -> Store:
    store = Store()
    with store.transaction():
        for n, doc in enumerate(docs):
            store.put_document(doc)
            passage = Passage(doc.id, 0, 0, 10, doc.text[:10], id=n + 1)
            store.put_passages([passage], [f"key{n}"])
    return store


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    path = tmp_path / "a folder #1 ?x=%20 ü" / "store.sqlite"  # read through a file: URI
    path.parent.mkdir()
    _store().save(path)
    return path


def test_loaded_store_reads_in_place_until_written(saved: Path, tmp_path: Path) -> None:
    digest = _digest(saved)
    store = Store.load(saved)
    assert store.read_only
    assert store.counts() == (4, 4) and store.document("d2") == DOCS[2]
    assert [h.text for h in store.hits([3, 1], [0.5, 0.4])] == [
        DOCS[2].text[:10],
        DOCS[0].text[:10],
    ]
    with store.transaction():  # a transaction that writes nothing copies nothing
        assert store.has_document("d1")
    assert store.read_only
    store.save(tmp_path / "copy.sqlite")  # unchanged: the very bytes
    assert _digest(tmp_path / "copy.sqlite") == digest
    assert store.delete_document("d1") == [2]
    assert not store.read_only and store.counts() == (3, 3)
    assert _digest(saved) == digest  # the saved file never changes
    assert Store.load(saved).counts() == (4, 4)


def test_rollback_after_the_copy_restores_the_loaded_state(saved: Path) -> None:
    store = Store.load(saved)
    with pytest.raises(KeyError), store.transaction():
        store.delete_document("d0")
        store.put_document(Document(id="new", title="", text="New text.", source="s"))
        assert store.counts() == (4, 3)
        raise KeyError("boom")
    assert not store.read_only
    assert store.counts() == (4, 4) and store.has_document("d0") and not store.has_document("new")
    with store.transaction():
        store.put_document(Document(id="new", title="", text="New text.", source="s"))
    assert store.counts() == (5, 4)


def test_documents_can_feed_writes_to_the_same_loaded_store(saved: Path) -> None:
    store = Store.load(saved)
    with store.transaction():
        for doc in store.documents():  # the first write copies the store mid-iteration
            store.put_document(Document(id=doc.id + "-copy", title="", text=doc.text, source="t"))
    assert store.counts() == (8, 4)


def test_save_still_works_after_the_loaded_file_is_deleted(saved: Path, tmp_path: Path) -> None:
    digest = _digest(saved)
    store = Store.load(saved)
    saved.unlink()  # what the next save of an index does to the generation we read
    store.save(tmp_path / "again.sqlite")
    assert _digest(tmp_path / "again.sqlite") == digest
    assert store.document("d3") == DOCS[3]
    with store.transaction():
        store.delete_document("d3")
    assert store.counts() == (3, 3)


def test_bad_files_are_refused(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"not a database at all" * 100)
    with pytest.raises(sqlite3.DatabaseError):
        Store.load(garbage)
    empty = tmp_path / "empty.sqlite"
    sqlite3.connect(empty).execute("CREATE TABLE other (x)").connection.close()
    with pytest.raises(ValueError, match="not a semsearch store"):
        Store.load(empty)


def test_nested_transactions_are_refused() -> None:
    store = _store()
    with pytest.raises(RuntimeError, match="already open"), store.transaction():  # noqa: SIM117
        with store.transaction():
            pass


def test_index_loaded_saved_twice_then_searched_added_and_removed(
    tmp_path: Path, embedder: Embedder
) -> None:
    index = Index(model=embedder)
    index.add(DOCS)
    index.save(tmp_path / "a")
    loaded = Index.load(tmp_path / "a", model=embedder)
    assert loaded._engine.store.read_only
    loaded.save()  # the generation the store reads is deleted here...
    loaded.save(tmp_path / "b")  # ...and its bytes are copied after that
    assert loaded._engine.store.read_only
    assert loaded.search("river flood", k=1, mode="lexical")[0].doc_id == "d2"
    loaded.add(Document(id="x", title="Extra", text="A completely new story.", source="s"))
    loaded.remove("d0")
    assert not loaded._engine.store.read_only
    loaded.save()  # to b, where the last save went
    changed = Index.load(tmp_path / "b", model=embedder)
    assert sorted(d.id for d in changed.documents()) == ["d1", "d2", "d3", "x"]
    assert changed.search("completely new", k=1, mode="lexical")[0].doc_id == "x"
    assert list(Index.load(tmp_path / "a", model=embedder).documents()) == DOCS


def _sqlite_temp_files() -> int:
    """Open files of this process that are SQLite temporary files (created then unlinked)."""
    fds = Path("/proc/self/fd")
    links = []
    for fd in fds.iterdir():
        try:
            links.append(str(fd.readlink()))
        except OSError:
            continue
    return sum("etilqs_" in link and link.endswith("(deleted)") for link in links)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux /proc")
def test_a_large_store_spills_to_a_temporary_file(
    monkeypatch: pytest.MonkeyPatch, saved: Path, tmp_path: Path
) -> None:
    from semsearch.engines.local.store import database as store_file

    monkeypatch.setattr(store_file, "CACHE_KIB", 256)
    before = _sqlite_temp_files()
    text = "Words of a long article. " * 200  # 5 kB a document, 2 MB in all
    docs = [Document(id=f"big{i}", title="", text=text, source="s") for i in range(400)]
    store = _store(docs)
    assert _sqlite_temp_files() > before  # past its cache, the scratch database is a file
    with pytest.raises(KeyError), store.transaction():
        for doc in docs[:300]:
            store.delete_document(doc.id)
        raise KeyError("boom")
    assert store.counts() == (400, 400)
    store.save(tmp_path / "big.sqlite")
    loaded = Store.load(tmp_path / "big.sqlite")
    assert loaded.counts() == (400, 400) and loaded.document("big399") == docs[399]
    with loaded.transaction():  # the copy made by the first write spills the same way
        loaded.delete_document("big0")
    assert loaded.counts() == (399, 399)
    # A small store stays in memory: no temporary file for a handful of documents.
    small_before = _sqlite_temp_files()
    _store()
    assert _sqlite_temp_files() == small_before
