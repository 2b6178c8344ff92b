"""Choosing the vector index type and memory budget: through Index, saved, and from the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from semsearch import Document, Index
from semsearch.cli import cli
from semsearch.embeddings.embedder import Embedder
from semsearch.engines.local.vectors import ivf as vb
from semsearch.engines.local.vectors.index import VectorIndex

D = 32
N = 3000


def _vectors(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((30, D))
    x = centers[rng.integers(0, 30, n)] + 0.35 * rng.standard_normal((n, D))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_a_smaller_budget_rebuilds_from_stored_vectors_and_auto_returns() -> None:
    vecs = _vectors(N)
    ids = np.arange(10, 10 + N, dtype=np.int64)
    index = VectorIndex(D)
    index.add(ids, vecs)
    assert index.kind == "flat"
    # Exact float32 needs N * (4 D + 16) bytes; give it less, and 8-bit codes still fit.
    index.retarget(memory_budget=N * (4 * D + 16) - 1)
    assert index.kind == "ivf-sq8"
    assert index.memory_budget == N * (4 * D + 16) - 1
    # Rebuilt from the stored vectors: the exact copy is untouched, results stay exact-scored.
    np.testing.assert_array_equal(index.all_vectors(), vecs)
    assert index.check_recall(probes=50) >= vb.RECALL_TARGET
    index.retarget(backend="ivf-pq")
    assert (index.kind, index.config.pinned) == ("ivf-pq", True)
    index.retarget(backend="auto", memory_budget=vb.MEMORY_BUDGET)
    assert (index.kind, index.config.pinned) == ("flat", False)


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown vector index 'hnsw'"):
        Index(vector_index="hnsw")
    with pytest.raises(ValueError, match="memory budget must be positive"):
        Index(memory_budget=0)
    with pytest.raises(ValueError, match="memory budget must be positive"):
        VectorIndex(D).retarget(memory_budget=-5)


def test_index_options_survive_save_and_load(embedder: Embedder, tmp_path: Path) -> None:
    index = Index(model=embedder, vector_index="ivf-sq8", memory_budget=123_456_789)
    index.add(Document(id="a", text="The harbour reopened after the storm passed."))
    index.save(tmp_path / "ix")
    manifest = json.loads((tmp_path / "ix" / "manifest.json").read_text())
    assert manifest["vector_index"]["memory_budget"] == 123_456_789
    loaded = Index.load(tmp_path / "ix", model=embedder)
    assert loaded._engine.vectors.memory_budget == 123_456_789
    assert (loaded._engine.vectors.kind, loaded._engine.vectors.config.pinned) == ("ivf-sq8", True)
    calls = 0
    encode = embedder.encode

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        return encode(*args, **kwargs)

    embedder.encode = counting  # type: ignore[method-assign]
    try:
        loaded.configure_vectors(vector_index="auto")
    finally:
        del embedder.encode
    assert calls == 0, "changing the index type never runs the model"
    assert (loaded._engine.vectors.kind, loaded._engine.vectors.config.pinned) == ("flat", False)
    assert loaded.search("harbour storm", k=1)[0].doc_id == "a"


@pytest.mark.parametrize(
    ("given", "expected"),
    [("1000000", 1_000_000), ("512MB", 512 * 10**6), ("2GiB", 2 << 30), ("1.5 gb", 1_500_000_000)],
)
def test_cli_memory_budget_sizes(
    given: str, expected: int, sample_file: Path, tmp_path: Path
) -> None:
    target = tmp_path / "ix"
    result = CliRunner().invoke(
        cli, ["index", str(sample_file), "--index", str(target), "-q", "--memory-budget", given]
    )
    assert result.exit_code == 0, (result.stdout, result.stderr)
    info = json.loads(CliRunner().invoke(cli, ["info", "--index", str(target), "--json"]).stdout)
    assert info["vector_index"]["memory_budget"] == expected


@pytest.mark.parametrize("given", ["lots", "0", "12 parsecs", "-3GB"])
def test_cli_bad_memory_budget_is_a_usage_error(
    given: str, sample_file: Path, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        cli, ["index", str(sample_file), "--index", str(tmp_path / "ix"), "--memory-budget", given]
    )
    assert result.exit_code == 2
    assert "is not a size such as 512MB" in result.stderr
    assert not (tmp_path / "ix").exists()


def test_cli_vector_index_on_an_existing_index(sample_file: Path, tmp_path: Path) -> None:
    target = tmp_path / "ix"
    runner = CliRunner()
    assert (
        runner.invoke(cli, ["index", str(sample_file), "--index", str(target), "-q"]).exit_code == 0
    )
    result = runner.invoke(
        cli, ["index", str(sample_file), "--index", str(target), "-q", "--vector-index", "ivf-pq"]
    )
    assert result.exit_code == 0, result.stderr
    info = json.loads(runner.invoke(cli, ["info", "--index", str(target), "--json"]).stdout)
    assert info["index_type"] == "ivf-pq"
    assert info["vector_index"]["pinned"] is True


def test_nprobe_is_tuned_again_as_the_corpus_grows() -> None:
    vecs = _vectors(6000, seed=4)
    index = VectorIndex(D, backend="ivf-sq8")
    index.add(np.arange(1000, dtype=np.int64), vecs[:1000])
    assert (index.config.trained_on, index.config.tuned_on) == (1000, 1000)
    # Below the retune factor nothing changes; past it, nprobe is tuned at the new size
    # (retraining waits for RETRAIN_FACTOR).
    below = int(1000 * vb.RETUNE_FACTOR) - 10
    index.add(np.arange(1000, below, dtype=np.int64), vecs[1000:below])
    assert index.config.tuned_on == 1000
    index.add(np.arange(below, 3000, dtype=np.int64), vecs[below:3000])
    assert (index.config.trained_on, index.config.tuned_on) == (1000, 3000)
    assert (
        index.config.estimated_recall >= vb.TUNE_TARGET or index.config.nprobe == index.config.nlist
    )
    assert index.check_recall(probes=100) >= vb.RECALL_TARGET
    factor = vb.RETUNE_FACTOR
    assert vb.needs_retune(vb.Config("ivf-sq8", trained_on=1000), int(1000 * factor))
    assert not vb.needs_retune(vb.Config("ivf-sq8", trained_on=1000, tuned_on=1400), 1700)
    assert vb.needs_retune(vb.Config("ivf-sq8", trained_on=1000, tuned_on=1400), 1750)
    assert not vb.needs_retune(vb.Config("ivf-sq8", trained_on=1000, tuned_on=3000), 2500)
    assert vb.needs_retune(vb.Config("ivf-sq8", trained_on=1000, tuned_on=3000), 2400)
