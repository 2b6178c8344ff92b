"""bm25s's eager BM25 score matrix, built vectorised from flat per-passage term arrays."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

# Terms counted per step: bounds the temporaries to a few MB at any corpus size (the vocabulary
# sets a floor, since each step also holds a few arrays with one entry per term id).
_CHUNK = 1 << 18


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
    computes it one document at a time in Python; here documents are counted a slice at a time
    (linear C code), twice: once for each term's document count, which places each column,
    then again to write the entries into their columns. Besides the result, only one slice's
    counts are held at a time.
    """
    num_docs = len(offsets) - 1
    lengths = np.diff(offsets)
    indptr = np.zeros(vocab_size + 1, dtype=np.int64)
    if not len(flat):
        return {
            "data": np.zeros(0, dtype=np.float32),
            "indices": np.zeros(0, dtype=np.int32),
            "indptr": indptr,
            "num_docs": num_docs,
        }
    # The smallest count type that no passage can overflow.
    longest = int(lengths.max())
    count = np.uint8 if longest < 2**8 else np.uint16 if longest < 2**16 else np.uint32
    slices = _slices(offsets, max(_CHUNK, vocab_size))
    df = np.zeros(vocab_size, dtype=np.int64)
    for lo, hi in slices:
        df += np.diff(_counts(flat, offsets, lo, hi, vocab_size, count).indptr)
    np.cumsum(df, out=indptr[1:])
    # bm25s: float32 idf (0 for a term in no document), the length norm and tf part in float64
    # (a float32 array meets numpy float64 scalars), the product stored as float32.
    idf = lucene_idf(df, num_docs).astype(np.float32)
    norm = k1 * ((1 - b) + b * lengths.astype(np.float64) / lengths.mean())
    indices = np.empty(int(indptr[-1]), dtype=np.int32)
    data = np.empty(int(indptr[-1]), dtype=np.float32)
    filled = indptr[:-1].copy()  # where each column's next entry goes
    columns = np.arange(vocab_size)
    for lo, hi in slices:
        counts = _counts(flat, offsets, lo, hi, vocab_size, count)
        per_term = np.diff(counts.indptr)
        # A slice's documents come after those of every earlier slice in each column.
        at = np.repeat(filled - counts.indptr[:-1], per_term) + np.arange(len(counts.data))
        filled += per_term
        docs = counts.indices.astype(np.int64) + lo
        tf = counts.data.astype(np.float32).astype(np.float64)
        indices[at] = docs
        data[at] = idf[np.repeat(columns, per_term)] * (tf / (norm[docs] + tf))
    return {"data": data, "indices": indices, "indptr": indptr, "num_docs": num_docs}


def _slices(offsets: npt.NDArray[np.int64], terms: int) -> list[tuple[int, int]]:
    """Consecutive ranges of whole documents, each of about ``terms`` terms (or one document)."""
    starts = np.searchsorted(offsets, np.arange(0, offsets[-1], terms), side="right") - 1
    cuts = np.unique(np.concatenate([[0], starts, [len(offsets) - 1]]))
    return list(zip(cuts[:-1].tolist(), cuts[1:].tolist(), strict=True))


def _counts(
    flat: npt.NDArray[np.int32],
    offsets: npt.NDArray[np.int64],
    lo: int,
    hi: int,
    vocab_size: int,
    count: type[np.unsignedinteger[Any]],
) -> Any:
    """Documents lo..hi-1 as a CSC matrix (document - lo, term) -> count, rows in order within
    each column: their terms are a CSR matrix of ones, whose CSC form (a counting sort) holds
    each (document, term) as adjacent duplicates, summed in place."""
    import scipy.sparse as sp  # type: ignore[import-untyped]

    ones = np.ones(int(offsets[hi] - offsets[lo]), dtype=count)
    terms = flat[offsets[lo] : offsets[hi]]
    rows = sp.csr_matrix((ones, terms, offsets[lo : hi + 1] - offsets[lo]), (hi - lo, vocab_size))
    counts = rows.tocsc()
    counts.sum_duplicates()
    return counts
