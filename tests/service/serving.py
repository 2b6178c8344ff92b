"""A live service: uvicorn on 127.0.0.1 (a free port) in a thread of this process, over an
index, sharing the session's loaded model; stopped when the block ends."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from semsearch.embeddings.embedder import Embedder
from semsearch.service import ServedIndex, create_app

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "indexes" / "news"


@dataclass
class Service:
    url: str
    served: ServedIndex
    location: Path | str

    def client(self, token: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=120, **kwargs)


@contextlib.contextmanager
def running(location: Path | str, embedder: Embedder, **options: Any) -> Iterator[Service]:
    """``create_app`` over ``location`` served by uvicorn on 127.0.0.1 until the block ends."""
    served = ServedIndex(location, model=embedder)
    app = create_app(served, **options)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield Service(f"http://127.0.0.1:{port}", served, location)
    finally:
        server.should_exit = True
        thread.join(30)
        served.close()
        listener.close()


BATCH = 3
MARK = "zephyrine"
"""A word only the writer's articles hold: a lexical search for it finds exactly them."""


def batch_body(n: int) -> dict[str, Any]:
    """Batch ``n``: three new articles (source ``batch-n``) and the ``shared`` article
    replaced by its version ``n``."""
    articles = [
        {
            "id": f"b{n}-{i}",
            "text": f"Report {i} of batch {n}. The {MARK} committee met again on day {n}.",
            "source": f"batch-{n}",
        }
        for i in range(BATCH)
    ]
    shared = {
        "id": "shared",
        "text": f"Notice version {n}. The shared notice was revised for the {n}th time.",
        "metadata": {"version": n},
    }
    return {"documents": [*articles, shared]}


def check_read(client: httpx.Client) -> list[str]:
    """One reader's pass; returns what it saw wrong (torn or failed reads)."""
    wrong: list[str] = []
    found = client.post("/search", json={"query": MARK, "k": 100, "mode": "lexical"})
    if found.status_code != 200:
        return [f"search: {found.status_code} {found.text[:200]}"]
    per_batch: dict[str, set[str]] = {}
    for hit in found.json()["hits"]:
        per_batch.setdefault(hit["source"], set()).add(hit["doc_id"])
    wrong += [f"{s}: {len(ids)} of {BATCH}" for s, ids in per_batch.items() if len(ids) != BATCH]
    shared = client.get("/documents/shared")
    if shared.status_code == 404:
        return wrong
    if shared.status_code != 200:
        return [*wrong, f"document: {shared.status_code} {shared.text[:200]}"]
    doc = shared.json()
    if f"version {doc['metadata'].get('version')}." not in doc["text"]:
        wrong.append(f"shared: metadata {doc['metadata']} with text {doc['text'][:30]!r}")
    for passage in doc["passages"]:
        if doc["text"][passage["start"] : passage["end"]] != passage["text"]:
            wrong.append(f"shared: passage {passage} is not its text's span")
    return wrong


def hammer(
    read_url: str, write_url: str, *, batches: int, readers: int = 3, token: str | None = None
) -> tuple[int, list[str]]:
    """``readers`` threads read ``read_url`` while ``batches`` writes go to ``write_url``;
    returns the reads made and everything that went wrong."""
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    stop = threading.Event()
    reads = [0] * readers
    wrong: list[str] = []

    def read(slot: int) -> None:
        with httpx.Client(base_url=read_url, headers=headers, timeout=120) as client:
            while not stop.is_set():
                wrong.extend(check_read(client))
                reads[slot] += 1

    threads = [threading.Thread(target=read, args=(i,)) for i in range(readers)]
    for thread in threads:
        thread.start()
    try:
        with httpx.Client(base_url=write_url, headers=headers, timeout=300) as writer:
            for n in range(batches):
                response = writer.post("/documents", json=batch_body(n))
                if response.status_code != 200:
                    wrong.append(f"write {n}: {response.status_code} {response.text[:200]}")
                time.sleep(0.05)
    finally:
        time.sleep(0.3)  # reads after the last write
        stop.set()
        for thread in threads:
            thread.join(120)
    return sum(reads), wrong
