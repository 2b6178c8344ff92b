"""Approximate FAISS backends, chosen by name or by corpus size and memory budget; recall tuning."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

import numpy as np

from ....types import Ids, Matrix


class RowSource(Protocol):
    """Stored vectors read by slice or row numbers (a copy each time): exact_store.Rows."""

    shape: tuple[int, int]

    def __len__(self) -> int: ...

    def __getitem__(self, key: Any, /) -> Matrix: ...


# Exact search up to here: a single-thread scan of 100k x 384 takes about 7 ms, inside the
# 10 ms budget for the vector part of a query, and exact results need no tuning.
FLAT_MAX = 100_000
# Back to exact only well below FLAT_MAX, so a corpus hovering at the line is not rebuilt on
# every add and remove.
FLAT_RETURN = 80_000
# Default memory budget of the search structure (the full-precision copy is memory-mapped).
MEMORY_BUDGET = 4 << 30
# An IVF index is retrained when the corpus is this many times larger (or smaller) than at
# training: its list count then no longer fits the corpus.
RETRAIN_FACTOR = 4
# nprobe is tuned again (no retraining) when the corpus is this many times the tuned size:
# recall at a fixed nprobe falls as the corpus grows.
RETUNE_FACTOR = 1.25
RECALL_TARGET = 0.95
# Tuning aims above the target: the estimate comes from 300 probes (another set of 300 may read
# 0.01 apart), and recall falls as the corpus grows until the next tuning.
TUNE_TARGET = 0.975
# Approximate candidates re-scored with full-precision vectors, per hit wanted.
RERANK = 4
BACKENDS = ("flat", "ivf-sq8", "ivf-pq")


def faiss_module() -> Any:
    # Imported on use so that commands which never touch vectors stay quick to start.
    import faiss

    return faiss


@dataclass(frozen=True)
class Config:
    """How the approximate structure was built and is searched (saved in the manifest)."""

    backend: str = "flat"
    nlist: int = 0
    pq_m: int = 0
    pq_bits: int = 0
    nprobe: int = 0
    rerank: int = RERANK
    trained_on: int = 0
    estimated_recall: float = 1.0
    pinned: bool = False
    """Chosen by name: kept as the corpus grows (only retrained), never switched."""
    tuned_on: int = 0
    """Vectors held when nprobe was last tuned (0: at training, for indexes saved before)."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> Config:
        """Settings read from a manifest, checked as data: a ValueError for anything a save
        would not have written."""
        if not isinstance(data, dict) or not any(data.get("backend") == b for b in BACKENDS):
            raise ValueError(f"unknown vector index settings {data!r}")
        values = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key, value in values.items():
            if key == "backend":
                continue
            if key == "pinned":
                ok = isinstance(value, bool)
            elif key == "estimated_recall":
                ok = type(value) in (int, float) and 0 <= value <= 1
            else:
                ok = type(value) is int and 0 <= value <= _SETTING_MAX[key]
            if not ok:
                raise ValueError(f"vector index setting {key} = {value!r} is not valid")
        config = cls(**values)
        # A chosen type is not trained until MIN_TRAIN vectors exist: no lists before that.
        trained = config.trained_on > 0
        if config.backend != "flat" and trained and (config.nlist < 1 or config.nprobe < 1):
            raise ValueError(f"vector index settings without lists or probes {data!r}")
        return config


# The largest value each integer setting may hold in a manifest (far above any real index).
_SETTING_MAX = {
    "nlist": 1 << 24,
    "pq_m": 1 << 16,
    "pq_bits": 16,
    "nprobe": 1 << 24,
    "rerank": 1 << 16,
    "trained_on": 1 << 62,
    "tuned_on": 1 << 62,
}


def choose(n: int, dimension: int, *, budget: int = MEMORY_BUDGET, current: str = "flat") -> str:
    """The backend for ``n`` vectors: exact while fast and affordable, then IVF with 8-bit
    scalar codes (d + 8 bytes a vector), then product codes when even those do not fit."""
    limit = FLAT_RETURN if current != "flat" else FLAT_MAX
    if n <= limit and n * (4 * dimension + 16) <= budget:
        return "flat"
    if n * (dimension + 8) * 1.1 <= budget:
        return "ivf-sq8"
    return "ivf-pq"


def needs_rebuild(config: Config, n: int, dimension: int, budget: int) -> str | None:
    """The backend to rebuild to, or None when ``config`` still suits ``n`` vectors."""
    if config.pinned:
        wanted = config.backend
    else:
        wanted = choose(n, dimension, budget=budget, current=config.backend)
    if wanted != config.backend:
        return wanted
    if wanted == "flat":
        return None
    grown = n > RETRAIN_FACTOR * max(config.trained_on, 1)
    shrunk = config.trained_on > RETRAIN_FACTOR * max(n, 1) and n >= 1000
    return wanted if grown or shrunk else None


def needs_retune(config: Config, n: int) -> bool:
    """True once the corpus is RETUNE_FACTOR times the size nprobe was tuned at (or smaller):
    lists fill up as it grows, and a probe count tuned at 400k lost recall by a million."""
    tuned = max(config.tuned_on or config.trained_on, 1)
    return n >= RETUNE_FACTOR * tuned or tuned >= RETUNE_FACTOR * max(n, 1)


def nlist_for(n: int) -> int:
    """About 2 sqrt(n) inverted lists, a power of two: ~500 vectors a list at a million."""
    return int(max(8, min(65536, 2 ** round(math.log2(max(2.0 * math.sqrt(n), 1.0))))))


def pq_m_for(n: int, dimension: int, budget: int) -> int:
    """Most product-quantiser bytes per vector that fit the budget (a divisor of dimension,
    at least 8 unless the dimension is smaller: fewer codes lose too much to re-rank from)."""
    room = budget / max(n, 1) / 1.1 - 8
    smallest = min(8, dimension)
    divisors = [m for m in range(smallest, min(dimension, 96) + 1) if dimension % m == 0]
    fitting = [m for m in divisors if m <= room]
    return max(fitting) if fitting else min(divisors, default=dimension)


def stored_ids(ivf: Any) -> Ids:
    """Every id held in the inverted lists of ``ivf``."""
    faiss = faiss_module()
    lists = ivf.invlists
    parts = []
    for number in range(ivf.nlist):
        size = lists.list_size(number)
        if size:
            parts.append(np.array(faiss.rev_swig_ptr(lists.get_ids(number), size), np.int64))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def build(
    backend: str, vectors: RowSource | Matrix, ids: Ids, *, budget: int, pinned: bool, seed: int = 0
) -> tuple[Any, Config]:
    """Train and fill an approximate index over ``vectors`` (untuned: nprobe 1)."""
    faiss = faiss_module()
    n, d = vectors.shape
    nlist = min(nlist_for(n), max(1, n // 39))
    rng = np.random.default_rng(seed)
    if n > 40 * nlist:
        sample = vectors[np.sort(rng.choice(n, size=40 * nlist, replace=False))]
    else:
        sample = vectors[:]
    sample = np.ascontiguousarray(sample, dtype=np.float32)
    quantizer = faiss.IndexFlatIP(d)
    pq_m = pq_bits = 0
    if backend == "ivf-sq8":
        ivf = faiss.IndexIVFScalarQuantizer(
            quantizer, d, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
        )
    elif backend == "ivf-pq":
        pq_m = pq_m_for(n, d, budget)
        # 8-bit codebooks need about 39 x 256 training vectors; small corpora get 4 bits.
        pq_bits = 8 if len(sample) >= 39 * 256 else 4
        ivf = faiss.IndexIVFPQ(quantizer, d, nlist, pq_m, pq_bits, faiss.METRIC_INNER_PRODUCT)
    else:
        raise ValueError(f"unknown vector backend {backend!r}; choose from {', '.join(BACKENDS)}")
    ivf.cp.niter = 10  # k-means converges well enough for list assignment; it dominates build
    ivf.cp.seed = seed
    ivf.train(sample)
    del sample
    # Ids go straight into the inverted lists: an IndexIDMap around IVF loses track of them
    # on removal (it renumbers, IVF does not).
    # Blocks of 16k rows: each is a copy (24 MB at 384 dimensions) read from the exact store.
    index = ivf
    for s in range(0, n, 16384):
        index.add_with_ids(
            np.ascontiguousarray(vectors[s : s + 16384], dtype=np.float32),
            np.ascontiguousarray(ids[s : s + 16384], dtype=np.int64),
        )
    config = Config(backend, nlist, pq_m, pq_bits, 1, RERANK, n, 0.0, pinned)
    return index, config


Searcher = Callable[[Config, Matrix, int], Ids]


def sample_queries(vectors: RowSource | Matrix, count: int, seed: int) -> Matrix:
    """Query-like probes: the normalised sum of three random stored vectors.

    Real questions sit between topics rather than on a passage: on SciFact (passages plus
    noise, 100k), IVF recall@10 of such probes tracked that of the real test questions within
    0.02 at every nprobe, where passages plus isotropic noise overstated it by up to 0.2.
    """
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(vectors), size=(3, count))
    summed = vectors[picks[0]] + vectors[picks[1]] + vectors[picks[2]]
    norms = np.maximum(np.linalg.norm(summed, axis=1, keepdims=True), 1e-12)
    return np.ascontiguousarray(summed / norms, dtype=np.float32)


# Scores this close are one score: exact search and re-scoring sum in different orders.
TIE = 1e-6


def tied_truth(scores: Matrix, ids: Ids, k: int) -> Ids:
    """Truth for recall@k from an exact search for more than ``k`` (width ``w``).

    Duplicate passages share one vector, so which of several equal-scoring ids makes the top
    ``k`` is arbitrary, and counting the other one as a miss would read as lost recall that
    tuning chases by probing every list. Each row is returned as the
    ids scoring above the k-th (then -1 up to column ``k``), followed by every id tied with
    the k-th, any of which fills the remaining places (then -1 up to ``w``)."""
    if ids.shape[1] <= k:
        return ids
    kth = scores[:, k - 1 : k]
    valid = ids >= 0
    tied = valid & (np.abs(scores - kth) <= TIE)
    above = valid & ~tied
    above[:, k:] = False
    out = np.full((len(ids), ids.shape[1] + k), -1, dtype=np.int64)
    for row in range(len(ids)):
        must, ties = ids[row][above[row]], ids[row][tied[row]]
        out[row, : len(must)] = must
        out[row, k : k + len(ties)] = ties
    return out


def recall(found: Ids, truth: Ids) -> float:
    """Share of the true top k found (k: the width of ``found``). ``truth`` is k ids a row, or
    ``tied_truth``'s form, where any tied id fills the places the ids above leave."""
    k = found.shape[1]
    hits = wanted = 0
    for f, t in zip(found, truth, strict=True):
        got = set(f[f >= 0].tolist())
        must, ties = t[:k][t[:k] >= 0], t[k:][t[k:] >= 0]
        slots = min(k - len(must), len(ties))
        hits += len(got & set(must.tolist())) + min(slots, len(got & set(ties.tolist())))
        wanted += len(must) + slots
    return hits / max(wanted, 1)


def tune(config: Config, search: Searcher, queries: Matrix, truth: Ids, k: int) -> Config:
    """Smallest nprobe on the ladder 1, 2, 3, 4, 6, 8, 12, ... whose recall@k against exact
    search meets TUNE_TARGET: the half steps cost less search time than doubling past it."""
    nprobe = 1
    while True:
        trial = replace(config, nprobe=nprobe)
        measured = recall(search(trial, queries, k), truth)
        if measured >= TUNE_TARGET or nprobe >= config.nlist:
            return replace(trial, estimated_recall=round(measured, 4))
        # Half the largest power of two in nprobe: from 2^j to 1.5 * 2^j, then on to 2^(j+1).
        nprobe = min(config.nlist, nprobe + max(1, (1 << (nprobe.bit_length() - 1)) // 2))
