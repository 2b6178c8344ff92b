"""Fixtures: a live service per test over a fresh copy of the bundled index (see serving.py)."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from serving import BUNDLED, Service, running

from semsearch.embeddings.embedder import Embedder


@pytest.fixture
def index_copy(tmp_path: Path) -> Path:
    target = tmp_path / "news"
    shutil.copytree(BUNDLED, target)
    return target


@pytest.fixture
def serve(
    index_copy: Path, embedder: Embedder
) -> Iterator[Callable[..., contextlib.AbstractContextManager[Service]]]:
    """``serve(**create_app options)``: a running service over a fresh copy of the bundled
    index, as a context manager."""

    def start(**options: Any) -> contextlib.AbstractContextManager[Service]:
        return running(index_copy, embedder, **options)

    yield start


@pytest.fixture
def service(serve: Callable[..., contextlib.AbstractContextManager[Service]]) -> Iterator[Service]:
    """A running service that accepts writes (no token)."""
    with serve(allow_writes=True) as running_service:
        yield running_service
