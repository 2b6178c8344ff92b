"""Exact inner-product search over an ExactStore: FAISS's brute-force kernels run on each part's
rows in place (a filter's rows by index, without gathering them), the parts' top k merged."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ....types import Ids, Matrix
from .ivf import faiss_module

if TYPE_CHECKING:
    from .exact_store import ExactStore

Result = tuple[Matrix, Ids]
PAD = -np.finfo(np.float32).max
# Removed rows up to this many in a part are fetched past and dropped; more are skipped by index.
OVERFETCH = 256
# From this many queries a matrix product (gathered rows) beats per-query dot products by index.
BATCH = 20
# Rows scanned at once when scanning for build work (pages dropped after each block).
STREAM_ROWS = 1 << 16
GATHER_ROWS = 8192


def search(
    store: ExactStore, queries: Matrix, k: int, *, allowed: Ids | None = None, stream: bool = False
) -> Result:
    """Top ``k`` (scores, ids) per query, best first; padding is (PAD, -1).

    ``allowed`` restricts the ids considered. ``stream`` scans in blocks and drops the mapped
    pages of each from this process after it (build work over every row, not serving).
    """
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    best = _Best(len(queries), k)
    rows = None
    if allowed is not None:
        rows = store.find(_increasing(np.asarray(allowed, dtype=np.int64)))
        rows = _increasing(rows[rows >= 0])
    for start, part in store.parts():
        view = part.view()
        if not len(view):
            continue
        if rows is not None:
            local = rows[(rows >= start) & (rows < start + len(view))] - start
            if len(local):
                best.merge(*_by_rows(queries, view, local, k), start)
        else:
            step = STREAM_ROWS if stream else len(view)
            for s in range(0, len(view), step):
                block = view[s : s + step]
                dead = store.dead_in(start + s, start + s + len(block))
                best.merge(*_scan(queries, block, dead, k), start + s)
                if stream:
                    part.release(s, s + len(block))
        if stream:
            part.release()
    scores, found = best.result()
    ids = np.where(found >= 0, store.ids_at(np.maximum(found, 0)), -1).astype(np.int64)
    return scores, ids


def _increasing(values: Ids) -> Ids:
    """``values`` sorted without repeats (filters usually come so: then no copy is made)."""
    if len(values) < 2 or bool(np.all(values[1:] > values[:-1])):
        return values
    return np.unique(values)


def _scan(queries: Matrix, block: Matrix, dead: Ids, k: int) -> Result:
    """Top k of the rows of ``block`` not in ``dead`` (row numbers within the block)."""
    faiss = faiss_module()
    if not len(dead):
        return faiss.knn(queries, block, min(k, len(block)), metric=faiss.METRIC_INNER_PRODUCT)  # type: ignore[no-any-return]
    if len(dead) <= OVERFETCH:
        got = min(k + len(dead), len(block))
        scores, rows = faiss.knn(queries, block, got, metric=faiss.METRIC_INNER_PRODUCT)
        gone = np.isin(rows, dead)
        scores[gone], rows[gone] = PAD, -1
        # knn orders best first; a stable sort moves the dropped rows last and keeps the rest.
        order = np.argsort(gone, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(scores, order, 1), np.take_along_axis(rows, order, 1)
    live = np.setdiff1d(np.arange(len(block), dtype=np.int64), dead, assume_unique=True)
    return _by_rows(queries, block, live, k)


def _by_rows(queries: Matrix, view: Matrix, rows: Ids, k: int) -> Result:
    """Top k among ``rows`` of ``view`` (sorted, unique), read in place or gathered in chunks."""
    faiss = faiss_module()
    k = min(k, len(rows))
    if len(queries) < BATCH:
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        scores = np.empty((len(queries), k), dtype=np.float32)
        found = np.empty((len(queries), k), dtype=np.int64)
        ptr = faiss.swig_ptr
        faiss.knn_inner_products_by_idx(
            ptr(queries), ptr(view), ptr(rows), view.shape[1], len(queries), len(view),
            len(rows), k, ptr(scores), ptr(found), 0,
        )  # fmt: skip
        return scores, found
    best = _Best(len(queries), k)
    for s in range(0, len(rows), GATHER_ROWS):
        chunk = rows[s : s + GATHER_ROWS]
        scores, at = faiss.knn(
            queries, view[chunk], min(k, len(chunk)), metric=faiss.METRIC_INNER_PRODUCT
        )
        best.merge(scores, np.where(at >= 0, chunk[np.maximum(at, 0)], -1), 0)
    return best.result()


class _Best:
    """Running top k per query of (score, row) pairs met block by block."""

    def __init__(self, queries: int, k: int) -> None:
        self.k = k
        self.scores = np.full((queries, 0), PAD, dtype=np.float32)
        self.rows = np.full((queries, 0), -1, dtype=np.int64)

    def merge(self, scores: Matrix, rows: Ids, offset: int) -> None:
        rows = np.where(rows >= 0, rows + offset, -1)
        if not self.rows.shape[1]:
            self.scores, self.rows = scores[:, : self.k], rows[:, : self.k]
            return
        both_scores = np.concatenate([self.scores, scores], axis=1)
        both_rows = np.concatenate([self.rows, rows], axis=1)
        # Padding sorts last; equal scores keep the earlier (lower) row first.
        key = np.where(both_rows >= 0, -both_scores, np.inf)
        order = np.argsort(key, axis=1, kind="stable")[:, : self.k]
        self.scores = np.take_along_axis(both_scores, order, 1)
        self.rows = np.take_along_axis(both_rows, order, 1)

    def result(self) -> Result:
        short = self.k - self.rows.shape[1]
        scores = np.pad(self.scores, ((0, 0), (0, short)), constant_values=PAD)
        rows = np.pad(self.rows, ((0, 0), (0, short)), constant_values=-1)
        return np.ascontiguousarray(scores), np.ascontiguousarray(rows)
