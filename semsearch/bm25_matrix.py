"""bm25s's eager BM25 score matrix, built vectorised from flat per-passage term arrays."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import numpy as np
import numpy.typing as npt

# Entries scored per step: bounds the float64 temporaries to a few tens of MB at any corpus size.
_CHUNK = 1 << 22


def lucene_idf(df: npt.NDArray[Any], num_docs: int) -> npt.NDArray[np.float64]:
    """Lucene's idf, ln(1 + (N - df + .5) / (df + .5)), per document frequency."""
    df = np.asarray(df, dtype=np.float64)
    return np.log1p((num_docs - df + 0.5) / (df + 0.5))


def build(
    flat: npt.NDArray[np.int32],
    offsets: npt.NDArray[np.int64],
    vocab_size: int,
    *,
    k1: float,
    b: float,
) -> dict[str, Any]:
    """The dict bm25s keeps in ``BM25.scores`` for documents ``flat[offsets[i]:offsets[i+1]]``.

    Same values and layout as ``BM25(method="lucene").build_index_from_ids``: a CSC matrix
    (documents x terms) whose entry is idf(t) * tf / (tf + k1 (1 - b + b |d| / avgdl)),
    float32 data, int32 row indices sorted within each term's column, int64 indptr. bm25s
    computes it one document at a time in Python; here the (document, term) counts come from
    one CSR -> CSC conversion and a duplicate sum, both linear in the number of terms.
    """
    import scipy.sparse as sp  # type: ignore[import-untyped]

    num_docs = len(offsets) - 1
    lengths = np.diff(offsets)
    if not len(flat):
        return {
            "data": np.zeros(0, dtype=np.float32),
            "indices": np.zeros(0, dtype=np.int32),
            "indptr": np.zeros(vocab_size + 1, dtype=np.int64),
            "num_docs": num_docs,
        }
    # The passages already are a CSR matrix (offsets, term ids) of ones; its CSC form counts each
    # (passage, term) as adjacent duplicates, summed in place. The smallest count type that no
    # passage can overflow keeps this at about a byte per term.
    longest = int(lengths.max())
    count = np.uint8 if longest < 2**8 else np.uint16 if longest < 2**16 else np.uint32
    ones = np.ones(len(flat), dtype=count)
    counts = sp.csr_matrix((ones, flat, offsets), shape=(num_docs, vocab_size)).tocsc()
    del ones
    counts.sum_duplicates()
    tf = counts.data.astype(np.float32)
    indices = counts.indices.astype(np.int32, copy=False)
    indptr = counts.indptr.astype(np.int64)
    df = np.diff(indptr)
    # bm25s: float32 idf (0 for a term in no document), the length norm and tf part in float64
    # (a float32 array meets numpy float64 scalars), the product stored as float32.
    idf = lucene_idf(df, num_docs).astype(np.float32)
    avg = lengths.mean()
    norm = k1 * ((1 - b) + b * lengths.astype(np.float64) / avg)
    data = tf  # overwritten in place, chunk by chunk of whole term columns
    cuts = np.unique(
        np.concatenate([np.searchsorted(indptr, np.arange(0, len(tf), _CHUNK)), [vocab_size]])
    )
    for lo, hi in pairwise(cuts):
        s, e = indptr[lo], indptr[hi]
        t = tf[s:e].astype(np.float64)
        tfc = t / (norm[indices[s:e]] + t)
        data[s:e] = np.repeat(idf[lo:hi], df[lo:hi]) * tfc
    return {"data": data, "indices": indices, "indptr": indptr, "num_docs": num_docs}
