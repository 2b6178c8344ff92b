"""What both adapters' tests use: asyncio on a thread of its own, and a spy on Index.search."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest

from semsearch import Index

T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on a thread of its own, as in a script: an earlier test's event loop
    (the browser tests' Playwright) may be running on this one."""
    with ThreadPoolExecutor(1) as worker:
        return worker.submit(asyncio.run, coro).result()


class SearchSpy:
    """Stands in for ``index.search`` (until the test ends): records the thread each search
    runs on; with a ``barrier``, each search waits there first, so the searches it counts must
    be running at the same time (a broken barrier fails the search)."""

    def __init__(self, index: Index, monkeypatch: pytest.MonkeyPatch) -> None:
        self.threads: list[int] = []
        self.barrier: threading.Barrier | None = None
        self._search = index.search
        monkeypatch.setattr(index, "search", self)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.threads.append(threading.get_ident())
        if self.barrier is not None:
            self.barrier.wait()
        return self._search(*args, **kwargs)
