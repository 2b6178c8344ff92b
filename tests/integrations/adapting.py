"""What both adapters' tests use: a small library of articles, asyncio on a thread of its own,
and a spy on Index.search."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest

from semsearch import Document, Index

T = TypeVar("T")

DOCS = [
    Document.create(
        "The city council met on Monday evening. It approved the budget for the new library "
        "by seven votes to two. Construction of the library starts in June and should take "
        "two years. The mayor said the old reading room will close once the new one opens.",
        title="Council approves library budget",
        source="wire/council.txt",
        date="2024-05-06",
    ),
    Document.create(
        "The new library will hold a million books on six floors. Its reading rooms open next "
        "spring, a year before the children's wing. The architect said the budget is tight but "
        "enough for solar panels on the roof. Readers asked for longer opening hours.",
        title="What the new library will hold",
        source="paper/library.txt",
        date="2023-02-01",
    ),
    Document.create(
        "Heavy rain flooded the streets of the port on Tuesday. Schools closed for the day and "
        "ferries stayed in the harbour. Forecasters expect more rain before the weekend.",
        title="Rain floods the port",
        source="wire/rain.txt",
        date="2024-03-12",
    ),
]
QUERY = "budget of the new library"


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
