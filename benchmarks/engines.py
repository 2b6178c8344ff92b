"""The engines side by side on SciFact (5,183 abstracts): local, Milvus Lite embedded, and a
Milvus Lite server in another process; Milvus's own rankers against semsearch's fusion; Ray
indexing against the in-process path.

Usage: python benchmarks/engines.py [--cache DIR] [--ray-docs 2000] [--skip-ray]

The local SciFact index is built once into --cache (as benchmarks/retrieval.py does) and
copied into each Milvus engine with its stored vectors (the add throughput measured is that
copy: rows written per second with vectors given). Quality is nDCG@10 over the 300 test
queries in each mode; latency is one query at a time, k=10, after one warm-up query.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from cache import CACHE
from retrieval import DATA, load_or_build, log

from semsearch import Index, read_articles
from semsearch.engines import MilvusEngine, new_engine
from semsearch.evaluate import beir_corpus, beir_metrics, beir_queries, evaluate_beir
from semsearch.indexing import copy_documents
from semsearch.retrieval import Mode

MODES: tuple[Mode, ...] = ("dense", "lexical", "hybrid")


def start_server(data: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(data)]
    proc = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            break
        except OSError:
            time.sleep(0.2)
    return proc, f"milvus://127.0.0.1:{port}/scifact"


def latency(index: Index, texts: list[str], mode: Mode) -> dict[str, float]:
    index.search(texts[0], k=10, mode=mode)
    times = []
    for text in texts:
        start = time.perf_counter()
        index.search(text, k=10, mode=mode)
        times.append((time.perf_counter() - start) * 1000)
    return {
        "p50_ms": round(float(np.percentile(times, 50)), 1),
        "p95_ms": round(float(np.percentile(times, 95)), 1),
    }


def milvus_rankers(
    engine: MilvusEngine, index: Index, queries: dict[str, str], qrels: Any
) -> dict[str, float]:
    """nDCG@10 of Milvus's own hybrid_search with its RRF and weighted rankers."""
    from pymilvus import AnnSearchRequest, RRFRanker, WeightedRanker

    doc_of = {r["pid"]: r["doc_id"] for r in engine.rows("passages", "retired == 0", ["doc_id"])}
    ids = list(queries)
    vectors = index.embedder.encode_queries([queries[q] for q in ids])
    out = {}
    for name, ranker in (
        ("milvus rrf (k=60)", RRFRanker(60)),
        ("milvus weighted 0.5/0.5", WeightedRanker(0.5, 0.5)),
        ("milvus weighted 0.8/0.2", WeightedRanker(0.8, 0.2)),
    ):
        rankings = {}
        for q, vector in zip(ids, vectors, strict=True):
            terms = " ".join(engine.tokenizer.terms(queries[q])) or "none"
            requests = [
                AnnSearchRequest([vector.tolist()], "vector", {"metric_type": "IP"}, 100),
                AnnSearchRequest([terms], "sparse", {"metric_type": "BM25"}, 100),
            ]
            (hits,) = engine.client.hybrid_search(
                engine.names["passages"], requests, ranker, limit=100, output_fields=["pid"]
            )
            ranking: list[str] = []
            for h in hits:
                doc = doc_of[h["entity"]["pid"]]
                if doc not in ranking:
                    ranking.append(doc)
            rankings[q] = ranking[:100]
        out[name] = round(beir_metrics(rankings, qrels)["nDCG@10"], 4)
    return out


def ray_vs_local(docs: int, work: Path) -> dict[str, Any]:
    corpus = list(beir_corpus(DATA / "beir-scifact"))[:docs]
    path = work / "scifact-part.jsonl"
    with path.open("w", encoding="utf-8") as f:
        for d in corpus:
            f.write(json.dumps({"id": d.id, "title": d.title, "text": d.text}) + "\n")
    here = Index()
    _ = here.embedder.model
    start = time.perf_counter()
    report = here.add(read_articles([path]))
    local_s = time.perf_counter() - start
    on_ray = Index(model=here.embedder)
    start = time.perf_counter()
    ray_report = on_ray.add_with_ray([path], workers=2)
    ray_s = time.perf_counter() - start
    assert ray_report.passages == report.passages
    return {
        "documents": docs,
        "passages": report.passages,
        "in_process_s": round(local_s, 1),
        "ray_2_actors_s": round(ray_s, 1),
        "in_process_passages_per_s": round(report.passages / local_s, 1),
        "ray_passages_per_s": round(report.passages / ray_s, 1),
        "ray_overhead_s": round(ray_s - local_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--ray-docs", type=int, default=2000)
    parser.add_argument("--skip-ray", action="store_true")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    sf = DATA / "beir-scifact"
    local = load_or_build("scifact", beir_corpus(sf), args.cache)
    queries, qrels = beir_queries(sf)
    sample = list(queries.values())[:100]
    settings = local._index_settings()
    results: dict[str, Any] = {}
    work = Path(tempfile.mkdtemp(prefix="semsearch-engines-"))
    proc, server = start_server(work / "server")
    try:
        engines: dict[str, Any] = {
            "local": None,
            "milvus-lite": f"milvus://{work}/scifact.db",
            "milvus-lite-server": server,
        }
        for name, location in engines.items():
            row: dict[str, Any] = {}
            if location is None:
                index = local
            else:
                target = new_engine(location)
                start = time.perf_counter()
                _, passages = copy_documents(local._engine, target, settings)
                target.save(settings)
                seconds = time.perf_counter() - start
                row["add_rows_per_s"] = round(passages / seconds, 1)
                index = Index.load(location, model=local.embedder)
            quality = evaluate_beir(index, queries, qrels, modes=MODES)
            row["nDCG@10"] = {m: round(quality[m]["nDCG@10"], 4) for m in MODES}
            row["latency"] = {m: latency(index, sample, m) for m in MODES}
            if location is not None and name == "milvus-lite":
                engine = index._engine
                assert isinstance(engine, MilvusEngine)
                row["milvus rankers nDCG@10"] = milvus_rankers(engine, index, queries, qrels)
            results[name] = row
            log(f"{name}: {json.dumps(row)}")
    finally:
        proc.terminate()
        proc.wait(10)
    if not args.skip_ray:
        results["ray"] = ray_vs_local(args.ray_docs, work)
        log(f"ray: {json.dumps(results['ray'])}")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
