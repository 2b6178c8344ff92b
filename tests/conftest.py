"""Shared fixtures: one loaded model and one sample index per test session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# Model hubs are unreachable: anything that tries the network must fail at once, not hang.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest

from semsearch.embeddings.embedder import Embedder

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "samples" / "news" / "000_94129f04b1971983.txt"
# 2025-12-06 12:00 UTC: the second sample article says "Updated 9 sec ago".
SAMPLE_MTIME = 1765022400.0


@pytest.fixture(scope="session", autouse=True)
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh cache of ONNX exports per session (inherited by CLI subprocesses): every session
    exports the bundled model once, as a clean machine would, and never touches ~/.cache."""
    path = tmp_path_factory.mktemp("semsearch-cache")
    os.environ["SEMSEARCH_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The bundled model, loaded once for the whole session (Embedder shares loaded models)."""
    e = Embedder()
    _ = e.model
    return e


@pytest.fixture
def sample_file(tmp_path: Path) -> Path:
    """A copy of the scraped sample page with a known modification time."""
    target = tmp_path / "pages" / SAMPLE.name
    target.parent.mkdir()
    shutil.copy(SAMPLE, target)
    os.utime(target, (SAMPLE_MTIME, SAMPLE_MTIME))
    return target
