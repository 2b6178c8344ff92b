"""Shared fixtures: one loaded model and one sample index per test session."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
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


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Milvus Lite gRPC server in its own process on 127.0.0.1, reached over the network as a
    cluster is; yields its ``milvus://127.0.0.1:PORT`` base. Stopped with the session."""
    pytest.importorskip("milvus_lite")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = tmp_path_factory.mktemp("milvus-server")
    log = (data / "server.log").open("wb")
    command = [sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(data / "db")]
    proc = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port)], stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Milvus Lite server did not start: {data / 'server.log'}")
            time.sleep(0.2)
        yield f"milvus://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
