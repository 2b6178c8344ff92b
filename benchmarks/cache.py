"""Where the benchmarks keep what they download, build or embed once: SEMSEARCH_BENCH_CACHE,
or ~/.cache/semsearch-bench (datasets' passages and vectors, built indexes)."""

from __future__ import annotations

import os
from pathlib import Path

CACHE = Path(os.environ.get("SEMSEARCH_BENCH_CACHE", Path.home() / ".cache" / "semsearch-bench"))
