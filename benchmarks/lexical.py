"""BM25 at scale: add, matrix build, save, open and first query for N passages, each phase timed.

Passages are real SciFact passages (title + text, CACHE/scifact-passages.npz) cycled to N;
queries are the 300 SciFact test questions. The build and the query phase run in their own
processes, so each peak memory (ru_maxrss) is that phase's alone. ``--module`` takes another
implementation of LexicalIndex (a .py file, e.g. an older lexical.py) for before/after figures;
one without ``writers`` is saved with ``save(path)`` into a single lexical.npz.

Usage: nice -n 10 python benchmarks/lexical.py --passages 1000000 [--module FILE] [--json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from cache import CACHE


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def module(args: argparse.Namespace) -> Any:
    if args.module is None:
        from semsearch.engines.local.lexical import index as lexical

        return lexical
    spec = importlib.util.spec_from_file_location("lexical_under_test", args.module)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def queries() -> list[str]:
    return [str(t) for t in np.load(CACHE / "scifact-queries.npz")["texts"]]


def phase_build(args: argparse.Namespace) -> dict[str, Any]:
    lexical = module(args)
    texts = [str(t) for t in np.load(CACHE / "scifact-passages.npz")["texts"]]
    cycled = [texts[i % len(texts)] for i in range(args.passages)]
    index = lexical.LexicalIndex()
    t0 = time.perf_counter()
    index.add(range(1, args.passages + 1), cycled)
    index.ids()  # queued additions merged
    add_s = time.perf_counter() - t0
    del cycled
    t1 = time.perf_counter()
    index.search(queries()[0], 10)
    first_s = time.perf_counter() - t1
    target = args.workdir
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    t2 = time.perf_counter()
    if hasattr(index, "writers"):
        for role, write in index.writers().items():
            write(target / role)
    else:
        index.save(target / "lexical.npz")
    save_s = time.perf_counter() - t2
    return {
        "add_s": add_s,
        "first_query_s": first_s,  # includes building the matrix
        "save_s": save_s,
        "bytes": {p.name: p.stat().st_size for p in sorted(target.iterdir())},
        "peak_mb": peak_mb(),
    }


def phase_query(args: argparse.Namespace) -> dict[str, Any]:
    lexical = module(args)
    files = {p.name: p for p in args.workdir.iterdir()}
    t0 = time.perf_counter()
    index = lexical.LexicalIndex.open(files)
    open_s = time.perf_counter() - t0
    texts = queries()
    times = []
    for i, query in enumerate(texts[:100]):
        t = time.perf_counter()
        # What a hybrid query asks of BM25: every score, then proximity of the best 100.
        best, _ = lexical.top_matches(*index.scores(query), 100)
        index.proximity(query, np.sort(best))
        times.append(time.perf_counter() - t)
        if i == 0:
            first_s = times[0]
    peak = peak_mb()
    # One more passage, as a news update brings: the add itself, then the search that merges it
    # and rebuilds the matrix (bm25s's is static; every idf and length norm changes).
    t1 = time.perf_counter()
    index.add([10**12], [texts[0]])
    add_one_s = time.perf_counter() - t1
    t2 = time.perf_counter()
    index.search(texts[1], 10)
    return {
        "open_s": open_s,
        "first_query_s": first_s,
        "query_ms_p50": float(np.percentile(np.asarray(times[1:]) * 1000, 50)),
        "peak_mb": peak,
        "add_one_s": add_one_s,
        "query_after_add_s": time.perf_counter() - t2,
        "peak_after_add_mb": peak_mb(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=100_000)
    parser.add_argument("--module", type=Path, help="a lexical.py to measure instead of ours")
    parser.add_argument("--workdir", type=Path, default=CACHE / "lexical-bench")
    parser.add_argument("--phase", choices=["build", "query"])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.phase:
        phase = phase_build if args.phase == "build" else phase_query
        print(json.dumps(phase(args)))
        return
    results = {}
    for name in ("build", "query"):
        command = [sys.executable, __file__, "--phase", name, "--passages", str(args.passages)]
        command += ["--workdir", str(args.workdir)]
        if args.module:
            command += ["--module", str(args.module)]
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        results[name] = json.loads(done.stdout)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    b, q = results["build"], results["query"]
    print(f"BM25, {args.passages:,} passages ({args.module or 'semsearch.engines.local.lexical'})")
    print(f"  add {b['add_s']:.1f} s; first query (builds the matrix) {b['first_query_s']:.1f} s")
    print(
        f"  save {b['save_s']:.1f} s, {sum(b['bytes'].values()) / 2**20:.0f} MiB; build peak "
        f"{b['peak_mb']:.0f} MB"
    )
    print(
        f"  open {q['open_s']:.2f} s; first query after open {q['first_query_s']:.2f} s; "
        f"then p50 {q['query_ms_p50']:.0f} ms; query peak {q['peak_mb']:.0f} MB"
    )
    print(
        f"  add one passage {q['add_one_s']:.3f} s; next query {q['query_after_add_s']:.1f} s; "
        f"peak then {q['peak_after_add_mb']:.0f} MB"
    )


if __name__ == "__main__":
    main()
