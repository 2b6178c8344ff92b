"""Indexes saved by earlier semsearch versions still load, search alike, and upgrade on save."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from semsearch import Document, Embedder, Index
from semsearch.engines.local import manifest as mf

ROOT = Path(__file__).resolve().parents[3]
# The bundled sample index as format 3 saved it (one lexical.npz and one dedup.npz, no saved
# BM25 matrix or duplicate groups), kept byte for byte.
FORMAT3 = ROOT / "tests" / "data" / "index-format3"
# The bundled sample index as format 4 saved it (exact vectors in a FAISS IndexIDMap2 file,
# vectors.faiss), kept byte for byte.
FORMAT4 = ROOT / "tests" / "data" / "index-format4"
QUERIES = ["Afghan migrants crossing into Iran", "letters between Putin and Sharif", "UN warning"]


@pytest.fixture
def old_copy(tmp_path: Path) -> Path:
    target = tmp_path / "old"
    shutil.copytree(FORMAT3, target)
    return target


def test_format3_loads_and_searches_like_the_current_bundled_index(
    old_copy: Path, embedder: Embedder
) -> None:
    assert json.loads((old_copy / mf.MANIFEST).read_text())["format_version"] == 3
    old = Index.load(old_copy, model=embedder)
    new = Index.load(ROOT / "indexes" / "news", model=embedder)
    for query in QUERIES:
        for mode in ("dense", "lexical", "hybrid"):
            got = [(h.doc_id, h.start, h.end) for h in old.search(query, k=4, mode=mode)]
            want = [(h.doc_id, h.start, h.end) for h in new.search(query, k=4, mode=mode)]
            assert got == want, (query, mode)
    assert old.info()["duplicates"] == new.info()["duplicates"]


def test_format3_index_upgrades_on_save(old_copy: Path, embedder: Embedder) -> None:
    index = Index.load(old_copy, model=embedder)
    index.add(Document(id="extra", text="Flooding closed the coastal road for a second day."))
    index.save()
    manifest = json.loads((old_copy / mf.MANIFEST).read_text())
    assert manifest["format_version"] == mf.FORMAT_VERSION
    assert "lexical-bm25-data.npy" in manifest["files"]
    # Only the new generation's files remain: the old single-file parts were removed.
    assert sorted(p.name for p in old_copy.iterdir() if not p.name.startswith(".")) == sorted(
        [mf.MANIFEST, *(entry["name"] for entry in manifest["files"].values())]
    )
    again = Index.load(old_copy, model=embedder)
    assert again.search("coastal road flooding", k=1)[0].doc_id == "extra"


def test_format3_sha256_checksums_still_catch_a_changed_file(old_copy: Path) -> None:
    from semsearch import IndexFormatError

    store = next(old_copy.glob("store.*.sqlite"))
    data = bytearray(store.read_bytes())
    data[-1] ^= 0xFF
    store.write_bytes(bytes(data))
    with pytest.raises(IndexFormatError, match="checksum does not match"):
        Index.load(old_copy)


@pytest.fixture
def format4_copy(tmp_path: Path) -> Path:
    target = tmp_path / "old4"
    shutil.copytree(FORMAT4, target)
    return target


def test_format4_loads_and_searches_like_the_current_bundled_index(
    format4_copy: Path, embedder: Embedder
) -> None:
    manifest = json.loads((format4_copy / mf.MANIFEST).read_text())
    assert manifest["format_version"] == 4 and "vectors.faiss" in manifest["files"]
    old = Index.load(format4_copy, model=embedder)
    new = Index.load(ROOT / "indexes" / "news", model=embedder)
    assert (
        "vectors.npy" in json.loads((ROOT / "indexes" / "news" / mf.MANIFEST).read_text())["files"]
    )
    for query in QUERIES:
        for mode in ("dense", "lexical", "hybrid"):
            got = [(h.doc_id, h.start, h.end, h.score) for h in old.search(query, k=4, mode=mode)]
            want = [(h.doc_id, h.start, h.end, h.score) for h in new.search(query, k=4, mode=mode)]
            assert got == want, (query, mode)
    ids = old._engine.vectors.ids()
    np.testing.assert_array_equal(ids, new._engine.vectors.ids())
    np.testing.assert_array_equal(
        old._engine.vectors.reconstruct(ids), new._engine.vectors.reconstruct(ids)
    )


def test_format4_index_upgrades_on_save_and_its_faiss_file_is_not_written(
    format4_copy: Path, embedder: Embedder
) -> None:
    (faiss_file,) = format4_copy.glob("vectors.*.faiss")
    before = faiss_file.read_bytes()
    index = Index.load(format4_copy, model=embedder)
    index.add(Document(id="extra", text="Flooding closed the coastal road for a second day."))
    assert faiss_file.read_bytes() == before
    index.save()
    manifest = json.loads((format4_copy / mf.MANIFEST).read_text())
    assert manifest["format_version"] == mf.FORMAT_VERSION
    assert {"vectors.npy", "vectors-ids.npy"} <= set(manifest["files"])
    assert "vectors.faiss" not in manifest["files"] and not faiss_file.exists()
    again = Index.load(format4_copy, model=embedder)
    assert again.search("coastal road flooding", k=1)[0].doc_id == "extra"
    assert (
        len(again._engine.vectors) == len(index._engine.vectors) == manifest["counts"]["passages"]
    )
