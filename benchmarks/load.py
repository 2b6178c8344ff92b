"""Time ``Index.load`` of a saved index: every check loading makes (manifest, checksums of every
file, numpy headers, the store's schema, ids of every part), warm page cache.

Usage: python benchmarks/load.py INDEX_DIR [--runs 7] [--json]

The index of ``scale.py --phase build --passages 1000000`` is the one the load-time target is
measured on (WORKDIR/semsearch).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("index", type=Path)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from semsearch import Index

    Index.load(args.index)  # warms the page cache and the imports; not timed
    times = []
    for _ in range(args.runs):
        gc.collect()
        start = time.perf_counter()
        index = Index.load(args.index)
        times.append(time.perf_counter() - start)
        del index
    result = {
        "index": str(args.index),
        "runs_s": [round(t, 3) for t in times],
        "median_s": round(statistics.median(times), 3),
        "load_average": os.getloadavg()[0],
    }
    print(json.dumps(result) if args.json else f"load median {result['median_s']} s: {result}")


if __name__ == "__main__":
    main()
