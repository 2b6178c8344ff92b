"""ONNX backends: the fp32 export reproduces torch, int8 is kept apart, exports are cached."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from semsearch import (
    Embedder,
    Index,
    ModelMismatchError,
    SemsearchError,
    SemsearchWarning,
    read_articles,
)
from semsearch.embeddings.embedder import batch_threads
from semsearch.embeddings.onnx import FP32_FILE, INT8_FILE, OnnxModel, cache_root, export_dir

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "indexes" / "news"
QUERIES = [
    "Putin Sharif letters",
    "Why did Afghan migrants die at the Iranian border?",
    "UN warns of displacement toward Pakistan",
    "bilateral relations",
]


@pytest.fixture(scope="module")
def torch_embedder() -> Embedder:
    e = Embedder(backend="torch")
    _ = e.model
    return e


@pytest.fixture(scope="module")
def onnx(torch_embedder: Embedder) -> Embedder:
    e = Embedder(backend="onnx")
    _ = e.model  # exports with the session's torch model (already loaded) on first use
    return e


@pytest.fixture(scope="module")
def int8(torch_embedder: Embedder) -> Embedder:
    e = Embedder(backend="onnx-int8")
    _ = e.model
    return e


@pytest.fixture(scope="module")
def texts() -> list[str]:
    index = Index.load(BUNDLED, backend="torch")
    passages = [p.text for d in index.documents() for p in index.passages(d.id)]
    return [*passages, *QUERIES, "x", "word " * 600]  # one past the 256 tokens the model reads


def test_fp32_export_reproduces_torch(
    torch_embedder: Embedder, onnx: Embedder, texts: list[str]
) -> None:
    embedder = torch_embedder
    want, got = embedder.encode(texts), onnx.encode(texts)
    assert got.shape == want.shape and got.dtype == np.float32
    assert float((got * want).sum(axis=1).min()) > 0.9999
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    for text, row in zip(texts, want, strict=True):  # one query at a time, on one thread
        assert float(onnx.encode_query(text)[0] @ row) > 0.9999
    assert (onnx.dimension, onnx.max_seq_length, onnx.special_tokens) == (
        embedder.dimension,
        embedder.max_seq_length,
        embedder.special_tokens,
    )
    assert onnx.tokenizer.token_spans(texts) == embedder.tokenizer.token_spans(texts)


def test_length_sorted_batches_keep_input_order(onnx: Embedder, texts: list[str]) -> None:
    # Batches hold texts of similar length, whatever the input order; rows come back in it.
    forward = onnx.encode(texts)
    backward = onnx.encode(texts[::-1])[::-1]
    assert np.allclose(forward, backward, atol=1e-5)
    assert np.allclose(onnx.encode(texts[:1]), forward[:1], atol=1e-5)


def test_bundled_index_searches_alike_with_onnx_and_torch(onnx: Embedder) -> None:
    fast = Index.load(BUNDLED)
    assert fast.embedder.backend == "onnx"  # the default for the bundled model: no torch
    slow = Index.load(BUNDLED, backend="torch")
    for query in QUERIES:
        a = fast.search(query, k=5, mode="dense")
        b = slow.search(query, k=5, mode="dense")
        assert [h.passage_id for h in a] == [h.passage_id for h in b]
        assert np.allclose([h.score for h in a], [h.score for h in b], atol=1e-4)


def test_int8_is_close_but_never_mixed_with_fp32(
    torch_embedder: Embedder, int8: Embedder, texts: list[str], sample_file: Path, tmp_path: Path
) -> None:
    embedder = torch_embedder
    cosines = (int8.encode(texts) * embedder.encode(texts)).sum(axis=1)
    assert cosines.min() > 0.97 and cosines.max() < 0.99999  # quantised: close, not equal
    assert int8.precision == "int8" and embedder.precision == "fp32"
    assert int8.cache_key("text") != embedder.cache_key("text")
    assert Embedder(backend="onnx").cache_key("text") == embedder.cache_key("text")

    index = Index(backend="onnx-int8")
    index.add(read_articles(sample_file.parent))
    index.save(tmp_path / "int8")
    manifest = json.loads((tmp_path / "int8" / "manifest.json").read_text())
    assert manifest["model"]["backend"] == "onnx-int8"
    loaded = Index.load(tmp_path / "int8")
    assert loaded.embedder.backend == "onnx-int8"
    assert loaded.search("Putin Sharif letters", k=1)[0].title.startswith("Local media reports")
    for backend in ("torch", "onnx"):
        with pytest.raises(ModelMismatchError, match="onnx-int8 backend"):
            Index.load(tmp_path / "int8", backend=backend)  # type: ignore[arg-type]
    with pytest.raises(ModelMismatchError, match="backend"):
        Index.load(BUNDLED, backend="onnx-int8")


def test_exports_are_cached_outside_the_repository(
    onnx: Embedder, int8: Embedder, onnx_cache: Path
) -> None:
    assert cache_root() == onnx_cache
    directory = export_dir(onnx.name, str(onnx._source))
    assert directory.parent.parent == onnx_cache
    files = sorted(p.name for p in directory.iterdir())
    assert FP32_FILE in files and INT8_FILE in files
    assert not [name for name in files if name.endswith(".tmp")]  # renamed into place
    before = (directory / FP32_FILE).stat().st_mtime_ns
    _ = Embedder(backend="onnx").model
    assert (directory / FP32_FILE).stat().st_mtime_ns == before
    # Sessions after the first load the graph optimised by the first: same vectors.
    texts = ["Putin and Sharif exchanged letters.", "word " * 300]
    first = onnx.encode(texts)
    assert [p.name for p in directory.iterdir() if p.name.startswith("model.ort")]
    again = OnnxModel(directory).encode(texts, batch_size=2)
    assert np.allclose(again, first, atol=1e-6)


def test_default_backend_is_onnx_for_the_bundled_model_only(tmp_path: Path) -> None:
    assert Embedder().backend == "onnx" and Index().embedder.backend == "onnx"
    assert Embedder("all-MiniLM-L6-v2").backend == "onnx"
    assert Embedder(str(tmp_path)).backend == "torch"  # a model of one's own: no export tried


def test_unwritable_cache_falls_back_to_torch_for_fp32_only(
    torch_embedder: Embedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import semsearch.embeddings.embedder as embeddings

    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    monkeypatch.setenv("SEMSEARCH_CACHE", str(blocked))
    # Only the torch model stays loaded, so the ONNX backends must look for their export.
    monkeypatch.setattr(
        embeddings, "_LOADED", {k: v for k, v in embeddings._LOADED.items() if k[1] == "cpu"}
    )
    fallback = Embedder(backend="onnx")
    with pytest.warns(SemsearchWarning, match="cannot write the ONNX export.*using torch"):
        vec = fallback.encode_query("Putin Sharif letters")
    assert float(vec[0] @ torch_embedder.encode_query("Putin Sharif letters")[0]) > 0.9999
    with pytest.raises(SemsearchError, match="cannot write the ONNX export"):
        _ = Embedder(backend="onnx-int8").model


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="backend must be one of"):
        Embedder(backend="tensorrt")  # type: ignore[arg-type]


def test_batch_threads_follow_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEMSEARCH_THREADS", "3")
    assert batch_threads() == 3
    monkeypatch.delenv("SEMSEARCH_THREADS")
    assert batch_threads() == len(os.sched_getaffinity(0))


def test_cli_search_on_the_bundled_index_never_imports_torch(onnx: Embedder) -> None:
    # The export exists (fixture): a search must then start without torch or transformers.
    code = (
        "import sys; from semsearch.cli import main; "
        f"status = main(['search', 'Putin Sharif letters', '--index', {str(BUNDLED)!r}]); "
        "heavy = sorted(m for m in ('torch', 'transformers', 'sentence_transformers') "
        "if m in sys.modules); print('heavy:', heavy); sys.exit(status)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "Local media reports discreet exchange of letters" in done.stdout
    assert "heavy: []" in done.stdout


def test_cli_index_with_int8_backend(sample_file: Path, tmp_path: Path, int8: Embedder) -> None:
    from click.testing import CliRunner

    from semsearch.cli import cli

    target = tmp_path / "idx"
    runner = CliRunner()
    done = runner.invoke(cli, ["index", str(sample_file.parent), "--index", str(target), "-q"])
    assert done.exit_code == 0, done.output
    done = runner.invoke(
        cli, ["index", str(sample_file.parent), "--index", str(target), "--backend", "onnx-int8"]
    )
    assert done.exit_code == 1 and "onnx-int8 backend" in done.output
    int8_dir = tmp_path / "idx8"
    args = ["index", str(sample_file.parent), "--index", str(int8_dir), "--backend", "onnx-int8"]
    done = runner.invoke(cli, [*args, "-q"])
    assert done.exit_code == 0, done.output
    assert json.loads((int8_dir / "manifest.json").read_text())["model"]["backend"] == "onnx-int8"
    done = runner.invoke(
        cli, ["search", "Putin Sharif letters", "--index", str(int8_dir), "-k", "1"]
    )
    assert done.exit_code == 0 and "Local media reports" in done.output
