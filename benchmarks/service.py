"""``POST /search`` of ``semsearch serve`` against ``Index.search`` in process, at 1, 8 and 32
concurrent clients, and then with a writer adding articles through ``POST /documents``.

For each ``--index`` (a directory; it is copied first, since the writer changes it):

1. In process: ``Index.load`` of the copy, then 1, 8 and 32 threads each calling
   ``index.search(query, k=10)`` (hybrid, the default) back to back for ``--seconds``.
2. Over HTTP: ``semsearch serve --index COPY --port 0 --allow-writes --no-access-log`` in a
   process of its own, then 1, 8 and 32 client threads, each with its own keep-alive
   ``httpx.Client``, posting ``{"query": q, "k": 10}`` back to back for ``--seconds``.
3. Under a writer: 8 clients search as in 2 while one more thread posts one new article at a
   time to ``/documents`` (each add is embedded, saved atomically and published to readers
   before the next). Afterwards every added article must be found by ``GET /documents/{id}``.

A request is an error unless it answers 200 with ``k`` hits (or every passage, in an index of
fewer) for a search, or ``added: 1`` for a write. The clients run on the same machine as the
service and share its cores, so the HTTP figures include the cost of generating the load.
Queries are ``--queries`` (a BEIR ``queries.jsonl`` or one question per line), or else the
index's document titles and its passages' first sentences (up to 200 characters), cycled.

``--recency on|off`` sends every search with ``recency`` True or False (Index.search); by
default it is left out, so a query naming a recent time gets the prior and others do not.

Usage: python benchmarks/service.py --index indexes/news [--index DIR ...] [--seconds 10]
       [--queries FILE] [--recency on|off] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from semsearch import Index

LEVELS = (1, 8, 32)
WRITER_CLIENTS = 8
K = 10
QUERY_CHARS = 200
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_URL = re.compile(r"semsearch serve: (http://127\.0\.0\.1:\d+)")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def summary(latencies: list[float], errors: int, seconds: float) -> dict[str, Any]:
    ms = np.asarray(latencies) * 1000 if latencies else np.zeros(1)
    return {
        "requests": len(latencies),
        "errors": errors,
        "rps": len(latencies) / seconds,
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
    }


def drive(
    clients: int, seconds: float, request: Callable[[int, str], bool], queries: list[str]
) -> dict[str, Any]:
    """``clients`` threads calling ``request(client, query)`` back to back until ``seconds``
    have passed; each call's wall time, and how many returned False or raised."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    start = threading.Barrier(clients + 1)
    deadline = [0.0]

    def run(c: int) -> None:
        start.wait()
        i = c * 7919
        while True:
            query = queries[i % len(queries)]
            i += 1
            t = time.perf_counter()
            if t >= deadline[0]:
                return
            try:
                ok = request(c, query)
            except Exception as exc:  # counted, and the first few shown
                ok = False
                if errors[c] < 3:
                    log(f"    client {c}: {type(exc).__name__}: {exc}")
            latencies[c].append(time.perf_counter() - t)
            if not ok:
                errors[c] += 1

    threads = [threading.Thread(target=run, args=(c,), daemon=True) for c in range(clients)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    deadline[0] = began + seconds
    start.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    return summary([x for per in latencies for x in per], sum(errors), elapsed)


RECENCY: dict[str, bool] = {}
"""``recency`` for every search (``--recency``): empty, or {"recency": True or False}."""


def in_process(index: Index, queries: list[str], seconds: float) -> dict[str, Any]:
    expected = min(K, int(index.info()["passages"]))
    for q in queries[:20]:  # model, files and caches warm
        index.search(q, k=K, **RECENCY)

    def request(_client: int, query: str) -> bool:
        return len(index.search(query, k=K, **RECENCY)) >= expected

    out = {}
    for clients in LEVELS:
        out[str(clients)] = r = drive(clients, seconds, request, queries)
        log(f"  in process, {clients:>2} threads: {fmt(r)}")
    return out


@contextmanager
def serving(location: Path) -> Iterator[str]:
    """``semsearch serve`` over ``location`` on a free port of 127.0.0.1 until the block ends."""
    semsearch = str(Path(sys.executable).with_name("semsearch"))
    command = [semsearch, "serve", "--index", str(location), "--port", "0"]
    command += ["--allow-writes", "--no-access-log"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("SEMSEARCH_API_TOKEN", None)
    with tempfile.NamedTemporaryFile("w+", suffix=".log") as stderr:
        proc = subprocess.Popen(command, stderr=stderr, stdout=subprocess.DEVNULL, env=env)
        try:
            deadline = time.monotonic() + 300
            url = None
            while url is None:
                if proc.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"semsearch serve did not start:\n{Path(stderr.name).read_text()}")
                time.sleep(0.1)
                if match := _URL.search(Path(stderr.name).read_text()):
                    url = match.group(1)
            while httpx.get(f"{url}/health", timeout=30).status_code != 200:
                time.sleep(0.1)
            yield url
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
            tail = Path(stderr.name).read_text().strip().splitlines()[-3:]
            log("    serve: " + " | ".join(tail))


def searcher(url: str, clients: int) -> Callable[[int, str], bool]:
    sessions = [httpx.Client(base_url=url, timeout=120) for _ in range(clients)]
    expected = min(K, httpx.get(f"{url}/info", timeout=60).json()["passages"])

    def request(client: int, query: str) -> bool:
        body = {"query": query, "k": K, **RECENCY}
        response = sessions[client].post("/search", json=body)
        return response.status_code == 200 and len(response.json()["hits"]) >= expected

    return request


def over_http(location: Path, queries: list[str], seconds: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with serving(location) as url:
        warm = searcher(url, 1)
        for q in queries[:20]:
            warm(0, q)
        for clients in LEVELS:
            out[str(clients)] = r = drive(clients, seconds, searcher(url, clients), queries)
            log(f"  HTTP,       {clients:>2} clients: {fmt(r)}")
        out["writer"] = under_writer(url, queries, seconds)
    return out


def article(n: int) -> dict[str, str]:
    return {
        "id": f"bench-write-{n}",
        "title": f"Council report {n}",
        "source": "benchmark",
        "date": "2026-12-01",
        "text": (
            f"The city council published report number {n} on Monday. It lists the repairs "
            f"planned for the northern bridge and their cost. Work on stage {n} starts next "
            "spring, the council said, and the road stays open during the repairs."
        ),
    }


def under_writer(url: str, queries: list[str], seconds: float) -> dict[str, Any]:
    """``WRITER_CLIENTS`` searching while one thread adds one article at a time."""
    stop = threading.Event()
    writes: list[float] = []
    write_errors = [0]
    added: list[str] = []

    def write() -> None:
        with httpx.Client(base_url=url, timeout=300) as client:
            n = 0
            while not stop.is_set():
                body = article(n)
                t = time.perf_counter()
                response = client.post("/documents", json={"documents": [body]})
                writes.append(time.perf_counter() - t)
                if response.status_code == 200 and response.json()["added"] == 1:
                    added.append(body["id"])
                else:
                    write_errors[0] += 1
                    log(f"    write {n}: {response.status_code} {response.text[:200]}")
                n += 1

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    reads = drive(WRITER_CLIENTS, seconds, searcher(url, WRITER_CLIENTS), queries)
    stop.set()
    writer.join()
    with httpx.Client(base_url=url, timeout=60) as client:
        missing = [d for d in added if client.get(f"/documents/{d}").status_code != 200]
    result = {
        "readers": reads,
        "writes": summary(writes, write_errors[0], seconds),
        "added_missing": len(missing),
    }
    log(
        f"  HTTP, {WRITER_CLIENTS} clients + 1 writer: {fmt(reads)}; writes: {len(writes)} "
        f"(p50 {result['writes']['p50_ms']:.0f} ms, errors {write_errors[0]}), "
        f"added but not found: {len(missing)}"
    )
    return result


def fmt(r: dict[str, Any]) -> str:
    return (
        f"{r['rps']:7.1f} req/s, p50 {r['p50_ms']:6.1f} ms, p95 {r['p95_ms']:6.1f} ms, "
        f"errors {r['errors']} of {r['requests']}"
    )


def read_queries(path: Path | None, index: Index) -> list[str]:
    if path is None:  # titles, then each passage's first sentence
        found = [d.title for d in index.documents() if d.title]
        for doc in index.documents():
            found += [_SENTENCE.split(p.text.strip())[0] for p in index.passages(doc.id)]
        found = [q.strip() for q in found if 0 < len(q.strip()) <= QUERY_CHARS]
        return list(dict.fromkeys(found))[:300]
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if path.suffix == ".jsonl":
        return [json.loads(line)["text"] for line in lines]
    return lines


def table(results: dict[str, Any]) -> str:
    lines = [
        "| index | clients | in process: req/s, p50 / p95 ms | HTTP: req/s, p50 / p95 ms | "
        "HTTP errors |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.items():
        label = f"{name} ({r['passages']:,} passages)"
        for c in map(str, LEVELS):
            a, b = r["in_process"][c], r["http"][c]
            lines.append(
                f"| {label} | {c} | {a['rps']:.1f}, {a['p50_ms']:.1f} / {a['p95_ms']:.1f} | "
                f"{b['rps']:.1f}, {b['p50_ms']:.1f} / {b['p95_ms']:.1f} | "
                f"{b['errors']} of {b['requests']} |"
            )
        w = r["http"]["writer"]
        rd, wr = w["readers"], w["writes"]
        lines.append(
            f"| {label} | {WRITER_CLIENTS} + 1 writer | | {rd['rps']:.1f}, {rd['p50_ms']:.1f} / "
            f"{rd['p95_ms']:.1f} | reads {rd['errors']} of {rd['requests']}; writes "
            f"{wr['errors']} of {wr['requests']} (p50 {wr['p50_ms']:.0f} ms); added not found "
            f"{w['added_missing']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, action="append", required=True)
    parser.add_argument("--queries", type=Path, help="BEIR queries.jsonl or one per line")
    parser.add_argument("--seconds", type=float, default=10.0, help="per level")
    parser.add_argument("--recency", choices=["on", "off"], help="recency of every search")
    parser.add_argument("--json", action="store_true", help="JSON on stdout, table on stderr")
    args = parser.parse_args()
    if args.recency:
        RECENCY["recency"] = args.recency == "on"
    results: dict[str, Any] = {}
    for location in args.index:
        with tempfile.TemporaryDirectory(prefix="semsearch-bench-service-") as scratch:
            copy = Path(scratch) / location.name
            shutil.copytree(location, copy)
            index = Index.load(copy)
            queries = read_queries(args.queries, index)
            n = int(index.info()["passages"])
            log(
                f"{location}: {n:,} passages, {len(queries)} queries, load {os.getloadavg()[0]:.1f}"
            )
            results[str(location)] = {
                "passages": n,
                "queries": len(queries),
                "in_process": in_process(index, queries, args.seconds),
                "http": over_http(copy, queries, args.seconds),
            }
    text = table(results)
    if args.json:
        print(json.dumps(results, indent=2))
        log(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
