"""Indexing throughput (library vs a hand-written baseline) and search latency of semsearch."""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from semsearch import Document, Embedder, Index, read_articles
from semsearch.engines.terms import indexed_text
from semsearch.indexing import chunk_documents
from semsearch.types import Passage

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "beir-scifact"
OVERHEAD_TARGET = 0.10  # library time / baseline time - 1
P50_TARGET_MS = 30.0
Chunked = list[tuple[Document, list[Passage], list[str]]]
# Search latency and its parts, timed one after the other for every query.
PARTS = {
    "search": "index.search, end to end",
    "encode": "  encode query",
    "faiss": "  FAISS search",
    "read_hits": "  read hits (SQLite)",
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def stats(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    p50, p95 = np.percentile(a, [50, 95])
    return {"p50": float(p50), "p95": float(p95), "mean": float(a.mean())}


def machine() -> dict[str, Any]:
    import sentence_transformers
    import torch

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu_count": os.cpu_count(),
        "usable_cores": usable,
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "torch_threads": torch.get_num_threads(),
        "query_threads": int(os.environ.get("SEMSEARCH_QUERY_THREADS", "1")),
        "faiss_omp_threads": faiss.omp_get_max_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        **{m.__name__: m.__version__ for m in (torch, sentence_transformers, faiss, np)},
    }


def chunk(embedder: Embedder, docs: list[Document]) -> Chunked:
    """Passages and embedded texts exactly as Index.add builds them (same defaults, same code)."""
    probe = Index(model=embedder)
    chunks = chunk_documents(
        docs, tokenizer=embedder.tokenizer, settings=probe.settings, include_title=True
    )
    return [(doc, passages, texts) for doc, (passages, texts) in zip(docs, chunks, strict=True)]


def timed(embedder: Embedder, seconds: list[float]) -> Embedder:
    """``embedder`` whose encode() adds its wall time to ``seconds[0]``: what the library
    spends outside the model is then measured, not inferred."""
    encode = embedder.encode

    def timed_encode(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return encode(*args, **kwargs)
        finally:
            seconds[0] += time.perf_counter() - t0

    copy = Embedder.__new__(Embedder)
    copy.__dict__.update(embedder.__dict__)
    copy.encode = timed_encode  # type: ignore[method-assign]
    return copy


def bench_indexing(
    embedder: Embedder, docs: list[Document], repeats: int
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    texts = [t for _, _, ts in chunk(embedder, docs) for t in ts]
    model = embedder.model
    tokens = [len(ids) for ids in model.tokenizer(texts, add_special_tokens=False)["input_ids"]]
    model.encode(texts[:32], batch_size=32, normalize_embeddings=True, show_progress_bar=False)
    keys = sorted(embedder.cache_key(t) for t in texts)
    runs: dict[str, list[float]] = {"library": [], "baseline": []}
    cpu: dict[str, list[float]] = {"library": [], "baseline": []}
    outside_model: list[float] = []  # library seconds spent outside Embedder.encode
    embedded, vectors = 0, np.empty(0)
    for r in range(repeats):
        for side in ("library", "baseline") if r % 2 == 0 else ("baseline", "library"):
            gc.collect()
            in_model = [0.0]
            t0, c0 = time.perf_counter(), time.process_time()
            if side == "library":
                index = Index(model=timed(embedder, in_model))
                embedded = index.add(docs).embedded
            else:
                vectors = model.encode(
                    texts, batch_size=32, normalize_embeddings=True, show_progress_bar=False
                )
                faiss.IndexFlatIP(vectors.shape[1]).add(vectors)
            runs[side].append(time.perf_counter() - t0)
            cpu[side].append(time.process_time() - c0)
            if side == "library":
                outside_model.append(runs[side][-1] - in_model[0])
            log(f"  run {r + 1}/{repeats} {side}: {runs[side][-1]:.2f} s")
            if side == "library" and keys != sorted(
                k for (k,) in index._engine.store.db.execute("SELECT embed_key FROM passages")
            ):
                sys.exit("the baseline texts differ from the texts the library embedded")
    lib_s, base_s = runs["library"], runs["baseline"]
    lib, base = float(np.median(lib_s)), float(np.median(base_s))
    result = {
        "documents": len(docs),
        "passages": len(texts),
        "embedded_by_library": embedded,
        "mean_tokens_per_passage": float(np.mean(tokens)),
        "max_tokens_per_passage": int(max(tokens)),
        "library_s": lib_s,
        "baseline_s": base_s,
        "library_passages_per_s": len(texts) / lib,
        "baseline_passages_per_s": len(texts) / base,
        "overhead": lib / base - 1,
        "overhead_best": min(lib_s) / min(base_s) - 1,
        "overhead_cpu": float(np.median(cpu["library"]) / np.median(cpu["baseline"]) - 1),
        "pair_overheads": [a / b - 1 for a, b in zip(lib_s, base_s, strict=True)],
        "library_cpu_s": cpu["library"],
        "baseline_cpu_s": cpu["baseline"],
        "outside_model_s": outside_model,
        "outside_model_share": float(np.median(outside_model)) / lib,
    }
    return result, dict(zip(texts, vectors, strict=True))


def reused_vectors(path: Path, texts: list[str]) -> dict[str, np.ndarray]:
    """Vectors a saved index holds for ``texts``, matched by embedding key (model and text)."""
    saved = Index.load(path)
    by_key = {saved.embedder.cache_key(t): t for t in texts}
    ids = saved._engine.store.ids_for_keys(list(by_key))
    vectors = saved._engine.vectors.reconstruct(np.asarray(list(ids.values()), dtype=np.int64))
    log(f"  reusing {len(ids):,} of {len(by_key):,} distinct passage vectors from {path}")
    return {by_key[key]: vec for key, vec in zip(ids, vectors, strict=True)}


def build_search_index(
    embedder: Embedder, base: Chunked, known: dict[str, np.ndarray], n: int, sigma: float, seed: int
) -> tuple[Index, dict[str, Any]]:
    """A real Index of ``n`` passages built without the model: SciFact documents cycled as copies
    ``<id>~<copy>`` (real text and metadata in SQLite), each passage's vector its text's real
    embedding plus N(0, sigma^2) noise per dimension, renormalised: near-duplicates, as in news,
    not uniform noise. Keys are marked synthetic so no later add reuses a noisy vector."""
    texts = [t for _, _, ts in base for t in ts]
    missing = list(dict.fromkeys(t for t in texts if t not in known))
    t0 = time.perf_counter()
    known = {**known, **dict(zip(missing, embedder.encode(missing), strict=True))}
    embed_s = time.perf_counter() - t0
    real = np.stack([known[t] for t in texts])
    t0 = time.perf_counter()
    index = Index(model=embedder)
    # The local engine's parts are written directly (no model, no near-duplicate groups).
    engine = index._engine
    engine._bind(index._index_settings())
    store, db = engine.store, engine.store.db
    ids = np.arange(engine.next_id, engine.next_id + n, dtype=np.int64)  # assigned in order
    rows = np.empty(n, dtype=np.int64)  # row of `real` behind each passage
    starts = np.cumsum([0, *(len(ps) for _, ps, _ in base)])  # first row of each document
    done, j = 0, 0
    # BM25 gets every passage, as Index.add gives it; near-duplicate groups are left empty, since
    # the cycled copies here would all collapse into one group, which real news does not do.
    lexical_ids: list[int] = []
    lexical_texts: list[str] = []
    db.execute("BEGIN")
    while done < n:
        copy, i = divmod(j, len(base))
        doc, passages, doc_texts = base[i]
        take, doc_id = min(len(passages), n - done), f"{doc.id}~{copy}"
        stored = [
            dataclasses.replace(p, doc_id=doc_id, id=int(ids[done + o]))
            for o, p in enumerate(passages[:take])
        ]
        store.put_document(dataclasses.replace(doc, id=doc_id))
        keys = [embedder.cache_key(f"{t}\x00synthetic copy {copy}") for t in doc_texts[:take]]
        store.put_passages(stored, keys)
        lexical_ids.extend(p.id for p in stored)
        lexical_texts.extend(indexed_text(doc.title, p.text) for p in stored)
        rows[done : done + take] = starts[i] + np.arange(take)
        done, j = done + take, j + 1
    engine.next_id += n
    db.execute("COMMIT")
    engine.bm25.add(lexical_ids, lexical_texts)
    rng = np.random.default_rng(seed)
    for s in range(0, n, 10_000):
        block = real[rows[s : s + 10_000]]
        block = block + sigma * rng.standard_normal(block.shape, dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        engine.vectors.add(ids[s : s + 10_000], block)
    build_s = time.perf_counter() - t0
    if len(engine.vectors) != index.passage_count or not np.array_equal(
        np.sort(engine.vectors.ids()), np.asarray(store.passage_ids(), dtype=np.int64)
    ):
        sys.exit(f"broken index: {len(engine.vectors)} vectors, {index.passage_count} passages")
    info = {
        "passages": index.passage_count,
        "documents": len(index),
        "real_passages": len(texts),
        "embedded_for_search": len(missing),
        "embed_s": embed_s,
        "build_s": build_s,
        "sigma": sigma,
    }
    return index, info


def bench_search(index: Index, queries: list[str], warmup: int, k: int) -> dict[str, Any]:
    for q in queries[:warmup]:
        index.search(q, k=k)
    times: dict[str, list[float]] = {name: [] for name in PARTS}
    agree = 0
    for q in queries:  # the parts are timed right after the whole, under the same load
        t = [time.perf_counter()]
        hits = index.search(q, k=k)
        t.append(time.perf_counter())
        vec = index.embedder.encode_query(q)
        t.append(time.perf_counter())
        scores, ids = index._engine.vectors.search(vec, k)
        t.append(time.perf_counter())
        index._engine.store.hits(ids[0].tolist(), scores[0].tolist())
        t.append(time.perf_counter())
        for name, seconds in zip(times, np.diff(t), strict=True):
            times[name].append(float(seconds) * 1000)
        if len(hits) != k or not all(h.text for h in hits):
            sys.exit(f"search returned {len(hits)} hits, or hits without text, for {q!r}")
        agree += [h.passage_id for h in hits] == ids[0].tolist()
    result: dict[str, Any] = {name: stats(ms) for name, ms in times.items()}
    return {**result, "queries": len(queries), "warmup": warmup, "k": k, "same_hits": agree}


def indexing_report(ix: dict[str, Any]) -> list[str]:
    ok = "PASS" if ix["overhead"] < OVERHEAD_TARGET else "FAIL"
    lines = [
        f"1. Indexing: {ix['documents']} SciFact documents -> {ix['passages']} passages "
        f"({ix['embedded_by_library']} distinct texts embedded by the library; both sides torch)",
        f"   tokens per passage: mean {ix['mean_tokens_per_passage']:.1f}, max "
        f"{ix['max_tokens_per_passage']} (embedded text, title included, special tokens not)",
    ]
    for key, label in (("library", "Index().add, end to end"), ("baseline", "encode + FlatIP")):
        runs = ", ".join(f"{t:.2f}" for t in ix[f"{key}_s"])
        rate = ix[f"{key}_passages_per_s"]
        lines.append(f"   {key:8} {label:24} {rate:7.1f} passages/s  (runs: {runs} s)")
    pairs = ", ".join(f"{o:+.1%}" for o in ix["pair_overheads"])
    lines.append(
        f"   overhead, medians (library / baseline - 1): {ix['overhead']:+.1%}  "
        f"target < {OVERHEAD_TARGET:.0%}: {ok}  (run pairs: {pairs})"
    )
    lines.append(
        f"   overhead of the fastest runs {ix['overhead_best']:+.1%}; of median CPU time "
        f"{ix['overhead_cpu']:+.1%}; library time outside the model (chunking, tokenising, "
        f"keys, SQLite, BM25, MinHash, FAISS): {ix['outside_model_share']:.1%} of its median"
    )
    return lines


def report(res: dict[str, Any]) -> str:
    m = res["machine"]
    lines = [
        f"Machine: {m['cpu_count']} cores ({m['usable_cores']} usable), 1-min load "
        f"{m['load_avg_1m']} -> {res['load_avg_end']}; torch threads {m['torch_threads']} "
        f"(single queries {m['query_threads']}), faiss omp threads {m['faiss_omp_threads']}",
        f"Versions: python {m['python']}, torch {m['torch']}, sentence-transformers "
        f"{m['sentence_transformers']}, faiss {m['faiss']}, numpy {m['numpy']}\n",
    ]
    if "indexing" in res:
        lines += indexing_report(res["indexing"])
    if "search" in res:
        b, s = res["search_index"], res["search"]
        ok = "PASS" if s["search"]["p50"] < P50_TARGET_MS else "FAIL"
        lines += [
            f"\n2. Search: {b['passages']:,} passages in {b['documents']:,} documents, built "
            f"without the model: cycled SciFact ({b.get('backend', 'torch')} backend for queries)",
            "   documents (real text and metadata in SQLite), vectors = real embeddings of "
            f"{b['real_passages']:,} passages",
            f"   + N(0, {b['sigma']}^2) noise, renormalised ({b['embedded_for_search']} embedded "
            f"for this in {b['embed_s']:.1f} s; built in {b['build_s']:.1f} s);",
            "   invariant len(engine.vectors) == index.passage_count (and same ids): OK",
            f"   {s['queries']} SciFact queries one at a time, k={s['k']}, after {s['warmup']} "
            f"warm-up ({s['same_hits']} gave the same hits as the parts)",
            f"   {'ms':26}{'p50':>8}{'p95':>8}{'mean':>8}",
        ]
        for key, label in PARTS.items():
            t = s[key]
            lines.append(f"   {label:26}{t['p50']:8.2f}{t['p95']:8.2f}{t['mean']:8.2f}")
        lines.append(f"   p50 target < {P50_TARGET_MS:.0f} ms: {ok}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DATA, help="BEIR SciFact directory")
    parser.add_argument("--docs", type=int, default=1000, help="documents indexed in step 1")
    parser.add_argument("--repeats", type=int, default=2, help="library/baseline run pairs")
    parser.add_argument("--passages", type=int, default=100_000, help="search index size")
    parser.add_argument("--base-docs", type=int, default=0, help="seed docs (0: all)")
    parser.add_argument("--sigma", type=float, default=0.02, help="noise per dimension")
    parser.add_argument("--queries", type=int, default=300, help="timed queries (at most 300)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed queries first")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-search", action="store_true", help="run step 1 only")
    parser.add_argument(
        "--reuse",
        type=Path,
        help="a saved index of the same corpus (semsearch index corpus.jsonl): step 2 takes the "
        "real embeddings it holds instead of running the model on every passage again",
    )
    parser.add_argument("--skip-indexing", action="store_true", help="run step 2 only")
    parser.add_argument("--json", action="store_true", help="JSON on stdout, report on stderr")
    args = parser.parse_args()

    docs = list(read_articles(args.data / "corpus.jsonl"))
    with open(args.data / "queries.jsonl", encoding="utf-8") as f:
        queries = [json.loads(line)["text"] for line in f if line.strip()][: args.queries]
    embedder = Embedder(backend="torch")  # the baseline is sentence-transformers' own encode
    embedder.model  # noqa: B018 - loaded before anything is timed
    res: dict[str, Any] = {"args": vars(args), "machine": machine()}
    res["targets"] = {"overhead": OVERHEAD_TARGET, "search_p50_ms": P50_TARGET_MS}
    known: dict[str, np.ndarray] = {}
    if not args.skip_indexing:
        log(f"step 1: indexing {args.docs} documents, {args.repeats} x library and baseline")
        res["indexing"], known = bench_indexing(embedder, docs[: args.docs], args.repeats)
    if not args.skip_search:
        # Searches run as a user's would: with the default backend (ONNX for the bundled
        # model, same vectors as torch), not the torch model step 1 compares against.
        searcher = Embedder()
        log(f"step 2: building a {args.passages:,}-passage index ({searcher.backend} backend)")
        base = chunk(searcher, docs[: args.base_docs or len(docs)])
        if args.reuse:
            known = {**reused_vectors(args.reuse, [t for _, _, ts in base for t in ts]), **known}
        index, res["search_index"] = build_search_index(
            searcher, base, known, args.passages, args.sigma, args.seed
        )
        res["search_index"]["backend"] = searcher.backend
        log(f"step 2: timing {len(queries)} queries")
        res["search"] = bench_search(index, queries, args.warmup, k=10)
    res["load_avg_end"] = round(os.getloadavg()[0], 2)
    text = report(res)
    if args.json:
        log(text)
        print(json.dumps(res, indent=2, default=str))
    else:
        print(text)


if __name__ == "__main__":
    main()
