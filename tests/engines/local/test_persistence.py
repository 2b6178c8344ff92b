"""Saving and loading: round trips, checksums, consistency, model checks and crash safety."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from semsearch import (
    Document,
    Embedder,
    Index,
    IndexFormatError,
    ModelMismatchError,
    SemsearchError,
)
from semsearch.cli import cli
from semsearch.engines.local.vectors import rows as vector_rows
from semsearch.engines.local.vectors.index import VectorIndex

ROOT = Path(__file__).resolve().parents[3]
DOCS = [
    Document.create(
        f"Article {i}. " + "It reports on harbour shipping and port strikes. " * (i + 1),
        title=f"Port news {i}",
        source=f"port/{i}.txt",
        date=f"2024-03-{i + 1:02d}",
    )
    for i in range(6)
]


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    path = tmp_path_factory.mktemp("saved") / "index"
    idx = Index(model=embedder, max_tokens=24)
    idx.add(DOCS)
    idx.save(path)
    return path


TOPICS = ["harbour strikes", "wheat prices", "river floods", "chess finals", "rail fares"]
MANY = [
    Document.create(
        f"Dispatch {i} on {TOPICS[i % 5]}: item {i * 7919 % 1000} of the day's {TOPICS[i % 3]}.",
        title=f"Brief {i}",
        source=f"brief/{i}.txt",
    )
    for i in range(300)
]


@pytest.fixture(scope="module")
def saved_ivf(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    """An index of 300 one-passage briefs whose vectors are searched through IVF-SQ8."""
    path = tmp_path_factory.mktemp("saved_ivf") / "index"
    idx = Index(model=embedder)
    idx._engine.vectors = VectorIndex(embedder.dimension, backend="ivf-sq8")
    idx.add(MANY)
    assert idx._engine.vectors.kind == "ivf-sq8" and idx._engine.vectors._ann is not None
    idx.save(path)
    return path


@pytest.fixture
def copy(saved: Path, tmp_path: Path) -> Path:
    target = tmp_path / "index"
    shutil.copytree(saved, target)
    return target


def _snapshot(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file()}


def _state(path: Path) -> frozenset[str]:
    return frozenset(d.id for d in Index.load(path).documents())


def test_round_trip(saved: Path, embedder: Embedder) -> None:
    idx = Index.load(saved, model=embedder)
    assert {d.id for d in idx.documents()} == {d.id for d in DOCS}
    assert idx.document(DOCS[2].id) == DOCS[2]
    for doc in DOCS:
        for p in idx.passages(doc.id):
            assert doc.text[p.start : p.end] == p.text
    original = Index(model=embedder, max_tokens=24)
    original.add(DOCS)
    for q in ["dock workers strike", "Article 3"]:
        assert [(h.doc_id, h.start, h.end) for h in idx.search(q, k=5)] == [
            (h.doc_id, h.start, h.end) for h in original.search(q, k=5)
        ]
    info = idx.info()
    assert info["chunking"]["max_tokens"] == 24 and info["documents"] == 6


def test_manifest_records_what_loading_checks(saved: Path) -> None:
    manifest = json.loads((saved / "manifest.json").read_text())
    assert manifest["format_version"] == 5
    assert {"vectors.npy", "vectors-ids.npy"} <= set(manifest["files"])
    assert manifest["vector_index"]["backend"] == "flat" and manifest["index_type"] == "flat"
    model = manifest["model"]
    assert (model["name"], model["dimension"]) == ("sentence-transformers/all-MiniLM-L6-v2", 384)
    assert manifest["counts"]["documents"] == 6
    for entry in manifest["files"].values():
        assert (saved / entry["name"]).stat().st_size == entry["bytes"]
        assert len(entry["xxh3_128"]) == 32


def test_save_again_replaces_files_and_leaves_no_leftovers(copy: Path) -> None:
    idx = Index.load(copy)
    (copy / "notes.txt").write_text("a user's file stays")
    (copy / "vectors.1-2.faiss.tmp").write_bytes(b"leftover of a crashed save")
    idx.remove(DOCS[0].id)
    idx.save()
    names = {p.name for p in copy.iterdir()}
    assert names - {"manifest.json", ".semsearch.lock", "notes.txt"} == set(
        e["name"] for e in json.loads((copy / "manifest.json").read_text())["files"].values()
    )
    assert _state(copy) == {d.id for d in DOCS[1:]}


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda d, f: f["vectors.npy"].write_bytes(f["vectors.npy"].read_bytes()[:-100]),
            "truncated",
        ),
        (lambda d, f: _flip(f["store.sqlite"], 5000), "checksum"),
        (lambda d, f: _flip(f["vectors.npy"], 200), "checksum"),
        (lambda d, f: f["store.sqlite"].unlink(), "missing"),
        (lambda d, f: (d / "manifest.json").write_text("{not json"), "not a valid manifest"),
        (lambda d, f: (d / "manifest.json").unlink(), "no saved semsearch index"),
        (lambda d, f: _edit_manifest(d, format_version=99), "format version 99"),
        (lambda d, f: _edit_manifest(d, counts={"documents": 7, "passages": 1}), "inconsistent"),
    ],
    ids=[
        "truncated",
        "flipped-sqlite",
        "flipped-vectors",
        "missing-file",
        "bad-json",
        "no-manifest",
        "future-version",
        "counts",
    ],
)
def test_damage_is_detected_with_a_clear_message(copy: Path, damage, message: str) -> None:  # type: ignore[no-untyped-def]
    manifest = json.loads((copy / "manifest.json").read_text())
    files = {role: copy / e["name"] for role, e in manifest["files"].items()}
    damage(copy, files)
    with pytest.raises(IndexFormatError, match=message) as err:
        Index.load(copy)
    assert str(copy) in str(err.value)


def test_consistency_between_faiss_and_sqlite_is_checked(copy: Path, embedder: Embedder) -> None:
    # A store from one index beside vectors from another, with checksums made to match: only the
    # cross-check of ids can tell.
    other = Index(model=embedder, max_tokens=24)
    other.add(DOCS[:5])
    other.save(copy.parent / "other")
    theirs = json.loads((copy.parent / "other" / "manifest.json").read_text())
    ours = json.loads((copy / "manifest.json").read_text())
    for role in ("vectors.npy", "vectors-ids.npy"):
        shutil.copy(copy.parent / "other" / theirs["files"][role]["name"], copy)
        ours["files"][role] = theirs["files"][role]
    (copy / "manifest.json").write_text(json.dumps(ours))
    with pytest.raises(IndexFormatError, match="inconsistent"):
        Index.load(copy)


def test_other_model_refused(saved: Path) -> None:
    with pytest.raises(ModelMismatchError, match="all-MiniLM-L6-v2"):
        Index.load(saved, model="sentence-transformers/all-mpnet-base-v2")
    Index.load(saved, model="all-MiniLM-L6-v2")  # an alias of the bundled model is the same model


def test_missing_and_read_only_directories(tmp_path: Path, saved: Path) -> None:
    with pytest.raises(SemsearchError, match="does not exist"):
        Index.load(tmp_path / "nowhere")
    idx = Index.load(saved)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(SemsearchError, match="read-only"):
            idx.save(ro)
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


def test_no_pickle_in_the_package() -> None:
    for source in (ROOT / "semsearch").rglob("*.py"):
        text = source.read_text()
        assert "import pickle" not in text and "torch.load" not in text, source


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset % len(data)] ^= 0xFF
    path.write_bytes(bytes(data))


def _edit_manifest(directory: Path, **changes: object) -> None:
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest.update(changes)
    (directory / "manifest.json").write_text(json.dumps(manifest))


def _child(*args: str, **kw: object) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "crash_child.py"), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("which", ["saved", "saved_ivf"])
def test_crash_at_every_step_of_a_save_leaves_old_or_new(
    which: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    saved = request.getfixturevalue(which)
    target = tmp_path / "index"
    old = _state(saved)
    new: frozenset[str] | None = None
    outcomes = []
    for step in range(1, 200):
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(saved, target)
        proc = _child(str(target), "step", str(step))
        _, err = proc.communicate(timeout=120)
        state = _state(target)  # must load: never a broken index
        outcomes.append(state)
        if proc.returncode == 0:
            new = state
            break
        assert proc.returncode == 99, err
    assert new is not None and new != old, "the save finished within the steps tried"
    assert set(outcomes) <= {old, new}
    assert outcomes.count(old) >= 5, "kills landed before the commit point"
    assert outcomes.count(new) >= 2, "kills landed after the commit point too"


def test_kill_at_random_moments_of_repeated_saves(copy: Path) -> None:
    rng = random.Random(42)
    states = set()
    with_doc = None
    for _ in range(4):
        proc = _child(str(copy), "loop")
        assert proc.stdout is not None
        proc.stdout.readline()  # the first save is done: the model is loaded, saves are looping
        time.sleep(rng.uniform(0.2, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        state = _state(copy)
        states.add(state)
        idx = Index.load(copy)
        for doc in idx.documents():
            for p in idx.passages(doc.id):
                assert doc.text[p.start : p.end] == p.text
        with_doc = with_doc or ("toggled" in state)
    base = {d.id for d in DOCS}
    assert states <= {frozenset(base), frozenset(base | {"toggled"})}


# -- approximate (IVF) vector indexes ------------------------------------------------------------


def test_ivf_round_trip_keeps_type_settings_and_results(
    saved_ivf: Path, embedder: Embedder
) -> None:
    manifest = json.loads((saved_ivf / "manifest.json").read_text())
    assert manifest["index_type"] == "ivf-sq8" and "ann.faiss" in manifest["files"]
    settings = manifest["vector_index"]
    assert settings["pinned"] and 1 <= settings["nprobe"] <= settings["nlist"]
    idx = Index.load(saved_ivf, model=embedder)
    assert idx._engine.vectors.kind == "ivf-sq8"
    assert {
        **idx._engine.vectors.config.to_json(),
        "memory_budget": idx._engine.vectors.memory_budget,
    } == settings
    fresh = Index(model=embedder)
    fresh._engine.vectors = VectorIndex(embedder.dimension, backend="ivf-sq8")
    fresh.add(MANY)
    for q in ["wheat prices", "flooded river", "Dispatch 42"]:
        assert [h.passage_id for h in idx.search(q, k=5)] == [
            h.passage_id for h in fresh.search(q, k=5)
        ]
    result = CliRunner().invoke(
        cli, ["info", "--index", str(saved_ivf), "--json", "--check-recall"]
    )
    assert result.exit_code == 0, result.output
    described = json.loads(result.output)["vector_index"]
    assert described["backend"] == "ivf-sq8" and described["measured_recall"] >= 0.95
    ann_bytes = manifest["files"]["ann.faiss"]["bytes"]
    assert described["search_bytes_per_passage"] == round(ann_bytes / len(MANY), 1)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: _flip(f["ann.faiss"], 300), "checksum"),
        (lambda f: f["ann.faiss"].write_bytes(f["ann.faiss"].read_bytes()[:-50]), "truncated"),
    ],
    ids=["flipped", "truncated"],
)
def test_ivf_damage_is_detected(saved_ivf: Path, tmp_path: Path, damage, message: str) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "index"
    shutil.copytree(saved_ivf, target)
    manifest = json.loads((target / "manifest.json").read_text())
    damage({role: target / e["name"] for role, e in manifest["files"].items()})
    with pytest.raises(IndexFormatError, match=message):
        Index.load(target)


def test_ivf_from_another_index_is_refused(saved_ivf: Path, tmp_path: Path, embedder: Embedder):  # type: ignore[no-untyped-def]
    # The approximate index of another corpus, with checksums made to match: the id check says so.
    target = tmp_path / "index"
    shutil.copytree(saved_ivf, target)
    other = Index(model=embedder)
    other._engine.vectors = VectorIndex(embedder.dimension, backend="ivf-sq8")
    other.add(MANY[:280])
    other.save(tmp_path / "other")
    theirs = json.loads((tmp_path / "other" / "manifest.json").read_text())
    ours = json.loads((target / "manifest.json").read_text())
    shutil.copy(tmp_path / "other" / theirs["files"]["ann.faiss"]["name"], target)
    ours["files"]["ann.faiss"] = theirs["files"]["ann.faiss"]
    ours["vector_index"]["nlist"] = theirs["vector_index"]["nlist"]
    (target / "manifest.json").write_text(json.dumps(ours))
    with pytest.raises(IndexFormatError, match="ann"):
        Index.load(target)
    del ours["files"]["ann.faiss"]
    (target / "manifest.json").write_text(json.dumps(ours))
    with pytest.raises(IndexFormatError, match="no approximate index"):
        Index.load(target)


def test_memory_mapped_load_then_change_and_save(
    saved_ivf: Path, tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vector_rows, "MMAP_BYTES", 0)
    target = tmp_path / "index"
    shutil.copytree(saved_ivf, target)
    idx = Index.load(target, model=embedder)
    assert (
        idx._engine.vectors.describe()["memory_mapped"]
        and idx._engine.vectors.describe()["ann_mapped"]
    )
    (mapped,) = target.glob("vectors.*.npy")
    before = mapped.read_bytes()
    assert len(idx.search("wheat prices", k=3)) == 3
    # Changes go beside the mapped file (appended rows, removed rows masked), never into it;
    # the approximate index is read into memory first (FAISS aborts on a change to its map).
    report = idx.add([Document.create("Wheat prices fell again at the grain market.", id="new")])
    assert not idx._engine.vectors.describe()["ann_mapped"]
    idx.remove(MANY[0].id)
    assert report.embedded == 1 and mapped.read_bytes() == before
    assert idx.search("grain market wheat prices fell", k=1)[0].doc_id == "new"
    idx.save()
    # Mapped again, then changed after a save through another handle removed the mapped file:
    # the mapping still reads it.
    other = Index.load(target, model=embedder)
    assert (
        other._engine.vectors.describe()["memory_mapped"]
        and other._engine.vectors.describe()["ann_mapped"]
    )
    (mapped,) = target.glob("vectors.*.npy")
    (mapped_ann,) = target.glob("ann.*.faiss")
    idx.remove("new")
    idx.save()
    assert not mapped.exists() and not mapped_ann.exists()
    # Both mapped files were unlinked: the change still reads them through the open handles.
    other.remove(MANY[1].id)
    assert not other._engine.vectors.describe()["ann_mapped"]
    assert len(other._engine.vectors) == len(MANY) - 1
    assert other.search("grain market wheat prices fell", k=1)[0].doc_id == "new"
    other.save(tmp_path / "elsewhere")
    assert MANY[1].id not in Index.load(tmp_path / "elsewhere", model=embedder)
    idx.add([Document.create("Wheat prices fell again at the grain market.", id="new")])
    idx.save()
    again = Index.load(target, model=embedder)
    assert "new" in again and MANY[0].id not in again
    assert again._engine.vectors.kind == "ivf-sq8" and len(again._engine.vectors) == len(MANY)
    assert again.search("grain market wheat prices fell", k=1)[0].doc_id == "new"


def test_mapped_approximate_index_searches_and_saves_as_read_into_memory(
    saved_ivf: Path, tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_memory = Index.load(saved_ivf, model=embedder)
    assert not in_memory._engine.vectors.describe()["ann_mapped"]
    monkeypatch.setattr(vector_rows, "MMAP_BYTES", 0)
    target = tmp_path / "index"
    shutil.copytree(saved_ivf, target)
    idx = Index.load(target, model=embedder)
    assert idx._engine.vectors.describe()["ann_mapped"]
    queries = embedder.encode([d.text for d in MANY[::7]])
    for q in queries:
        # Approximate candidates only: the exact re-scoring would hide a difference in them.
        config = idx._engine.vectors.config
        mapped = idx._engine.vectors._ann_search(config, q[None, :], 10)[1]
        assert np.array_equal(
            mapped, in_memory._engine.vectors._ann_search(config, q[None, :], 10)[1]
        )
    (saved_ann,) = target.glob("ann.*.faiss")
    original = saved_ann.read_bytes()
    # Saved unchanged while mapped: the file's own bytes, copied (FAISS's writer would store a
    # reference to the mapped file instead), and still copied after that file is unlinked.
    idx.save()
    (copied,) = target.glob("ann.*.faiss")
    assert copied != saved_ann and not saved_ann.exists() and copied.read_bytes() == original
    idx.save(tmp_path / "elsewhere")
    (again,) = (tmp_path / "elsewhere").glob("ann.*.faiss")
    assert again.read_bytes() == original
    reopened = Index.load(tmp_path / "elsewhere", model=embedder)
    assert [h.doc_id for h in reopened.search("wheat prices", k=5)] == [
        h.doc_id for h in in_memory.search("wheat prices", k=5)
    ]
    # A rebuild drops the mapping without reading it.
    idx.configure_vectors(vector_index="ivf-pq")
    assert idx._engine.vectors.kind == "ivf-pq" and not idx._engine.vectors.describe()["ann_mapped"]


def test_crossing_the_size_threshold_rebuilds_without_the_model(
    tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from semsearch.engines.local.vectors import ivf as vector_backends

    monkeypatch.setattr(vector_backends, "FLAT_MAX", 280)
    monkeypatch.setattr(vector_backends, "FLAT_RETURN", 200)
    idx = Index(model=embedder)
    idx.add(MANY[:270])
    assert idx._engine.vectors.kind == "flat"
    ids = idx._engine.vectors.ids()
    stored = idx._engine.vectors.reconstruct(ids)
    calls: list[int] = []
    real_encode = embedder.encode

    def counting(texts: list[str], **kw: object) -> np.ndarray:
        calls.append(len(texts))
        return real_encode(texts, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(embedder, "encode", counting)
    report = idx.add(MANY[270:])
    assert idx._engine.vectors.kind == "ivf-sq8" and not idx._engine.vectors.config.pinned
    assert report.embedded == 30 and sum(calls) == 30, "only the new passages met the model"
    np.testing.assert_array_equal(idx._engine.vectors.reconstruct(ids), stored)
    idx.save(tmp_path / "grown")
    loaded = Index.load(tmp_path / "grown", model=embedder)
    assert loaded._engine.vectors.kind == "ivf-sq8"
    loaded.remove([d.id for d in MANY[:120]])  # 180 left: below FLAT_RETURN, exact again
    assert loaded._engine.vectors.kind == "flat"
    loaded.save()
    manifest = json.loads((tmp_path / "grown" / "manifest.json").read_text())
    assert manifest["index_type"] == "flat" and "ann.faiss" not in manifest["files"]
    assert not list((tmp_path / "grown").glob("ann.*"))
