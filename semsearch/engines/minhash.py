"""MinHash signatures of word shingles and the near-duplicate groups their LSH bands find."""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ..types import Ids

# 64 permutations in 16 bands of 4 rows: pairs at Jaccard 0.8 share a band with probability
# 1 - (1 - 0.8**4)**16 > 0.999, pairs at 0.3 only 12% of the time (and are then verified).
NUM_PERM = 64
BANDS = 16
THRESHOLD = 0.8
"""Estimated Jaccard similarity of word 3-shingles from which two passages count as one text:
syndicated copies differ by a dateline, a byline or a changed word, which keeps them far above
0.8, while distinct stories on one topic share few 3-word runs."""
SHINGLE = 3
_WORD = re.compile(r"\w+")
Signatures = npt.NDArray[np.uint32]
_BLOCK = 1 << 17  # rows compared at once: bounds the temporaries of a verification pass


@functools.cache
def _permutations() -> tuple[Signatures, Signatures]:
    """datasketch's "affine32" MinHash parameters for seed 1 (the signatures its 2.x computes),
    fixed here so that saved signatures never change with the installed datasketch version."""
    gen = np.random.RandomState(1)
    a = gen.randint(0, 1 << 31, NUM_PERM, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, NUM_PERM, dtype=np.uint32)
    return a, b


def _fmix32(h: Signatures) -> Signatures:
    """The MurmurHash3 finalizer datasketch applies to each SHA-1 hash (uint32 arithmetic wraps)."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    mixed: Signatures = h ^ (h >> np.uint32(16))
    return mixed


def _shingles(text: str) -> set[str]:
    words = _WORD.findall(text.lower())
    return {" ".join(words[i : i + SHINGLE]) for i in range(max(1, len(words) - SHINGLE + 1))}


def signatures(texts: Sequence[str]) -> Signatures:
    """MinHash of the lower-cased word 3-shingles of each text, one row per text (exact copies:
    equal rows). Vectorised over all shingles of many texts: no per-text hashing object."""
    out = np.empty((len(texts), NUM_PERM), dtype=np.uint32)
    a, b = _permutations()
    sha1 = hashlib.sha1
    for s in range(0, len(texts), 512):
        shingles = [_shingles(text) for text in texts[s : s + 512]]
        # Never empty: a text without words is one "" shingle, so no segment below is empty.
        counts = [len(x) for x in shingles]
        digests = b"".join([sha1(x.encode()).digest() for sh in shingles for x in sh])
        # The first 4 of each 20-byte SHA-1 digest, little-endian (datasketch's sha1_hash32).
        hashes = _fmix32(np.frombuffer(digests, dtype="<u4")[::5].astype(np.uint32))
        # One row per permutation: reducing along rows is several times faster than columns.
        permuted = a[:, None] * hashes[None, :] + b[:, None]
        starts = np.cumsum([0, *counts[:-1]])
        out[s : s + len(counts)] = np.minimum.reduceat(permuted, starts, axis=1).T
    return out


def signature(text: str) -> Signatures:
    """MinHash of one text (see ``signatures``)."""
    row: Signatures = signatures([text])[0]
    return row


def _components(a: Ids, b: Ids, n: int) -> Ids:
    """Smallest row of each row's connected component, for edges ``a[i] -- b[i]``."""
    label = np.arange(n, dtype=np.int64)
    while True:
        la, lb = label[a], label[b]
        if np.array_equal(la, lb):
            return label
        low = np.minimum(la, lb)
        # Hook both roots onto the smaller one, then jump pointers until every label is a root.
        np.minimum.at(label, la, low)
        np.minimum.at(label, lb, low)
        while True:
            jumped = label[label]
            if np.array_equal(jumped, label):
                break
            label = jumped


def _band(sigs: Signatures, band: int) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    """One band's four values per row as two 64-bit keys, and a 64-bit mix of them."""
    width = NUM_PERM // BANDS
    keys = np.ascontiguousarray(sigs[:, band * width : (band + 1) * width]).view(np.uint64)
    return keys, keys[:, 0] * np.uint64(0x9E3779B97F4A7C15) ^ keys[:, 1]


def band_edges(sigs: Signatures, new: npt.NDArray[np.bool_] | None = None) -> tuple[Ids, Ids]:
    """Pairs of rows found to be near-duplicates: (member, smallest row of its bucket).

    Rows sharing one band's four values fall in one bucket; each member is checked against the
    bucket's smallest row only (linear even when boilerplate fills one bucket with thousands of
    rows). With ``new``, only buckets holding a row marked new are checked.
    """
    edges_a: list[Ids] = [np.zeros(0, np.int64)]
    edges_b: list[Ids] = [np.zeros(0, np.int64)]
    for band in range(BANDS):
        keys, mixed = _band(sigs, band)
        # Only rows whose 64-bit mix of the band repeats can share a bucket: sorting the mixes
        # alone is far cheaper than sorting 16-byte keys, which is then done for those rows only.
        ordered = np.sort(mixed)
        repeated = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
        if not len(repeated):
            continue
        found = np.minimum(np.searchsorted(repeated, mixed), len(repeated) - 1)
        candidates = np.flatnonzero(repeated[found] == mixed)
        order = candidates[np.lexsort((keys[candidates, 1], keys[candidates, 0]))]
        sorted_keys = keys[order]
        same = np.all(sorted_keys[1:] == sorted_keys[:-1], axis=1)
        if not same.any():
            continue
        start = np.concatenate([[True], ~same])
        run_starts = np.flatnonzero(start)
        run = np.cumsum(start) - 1
        heads = np.minimum.reduceat(order, run_starts)[run]
        pick = order != heads
        if new is not None:
            pick &= np.maximum.reduceat(new[order], run_starts)[run]
        members, heads = order[pick], heads[pick]
        for s in range(0, len(members), _BLOCK):
            m, h = members[s : s + _BLOCK], heads[s : s + _BLOCK]
            agree = np.count_nonzero(sigs[m] == sigs[h], axis=1) / NUM_PERM >= THRESHOLD
            edges_a.append(m[agree])
            edges_b.append(h[agree])
    return np.concatenate(edges_a), np.concatenate(edges_b)


def near_duplicate_rows(sigs: Signatures) -> tuple[Ids, Ids]:
    """Rows that have a near-duplicate, and the smallest row of each one's group (checked pairs
    of ``band_edges`` join groups transitively)."""
    n = len(sigs)
    a, b = band_edges(sigs) if n > 1 else (np.zeros(0, np.int64), np.zeros(0, np.int64))
    if not len(a):
        return a, b
    label = _components(a, b, n)
    grouped = np.flatnonzero(np.bincount(label, minlength=n)[label] > 1)
    return grouped, label[grouped]


def join_groups(groups: dict[int, int], a: list[int], b: list[int]) -> dict[int, int]:
    """``groups`` (id -> smallest id of its group) with pairs ``a[i] -- b[i]`` joined in."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        while x in parent:
            x = parent[x]
        return x

    for x, y in zip(a, b, strict=True):
        rx, ry = find(groups.get(x, x)), find(groups.get(y, y))
        if rx != ry:
            parent[max(rx, ry)] = min(rx, ry)
    if not parent:
        return groups
    joined = {m: find(r) if r in parent else r for m, r in groups.items()}
    for x in (*a, *b):
        joined[x] = find(groups.get(x, x))
    return joined


class BandIndex:
    """Each band's mixes of a matrix's rows, sorted: the rows that may share a bucket with a
    few new rows are found by binary search instead of a pass over the whole matrix. Mixes are
    folded to 32 bits (12 bytes a row and band with the row numbers): rarer collisions would
    not pay for the memory, since every candidate is checked against the full band anyway."""

    def __init__(self, sigs: Signatures) -> None:
        self.mixes: list[npt.NDArray[np.uint32]] = []
        self.rows: list[npt.NDArray[np.signedinteger[Any]]] = []  # int32 while rows fit
        for band in range(BANDS):
            mixed = _folded(sigs, band)
            order = np.argsort(mixed)
            self.mixes.append(mixed[order])
            self.rows.append(order.astype(np.int32) if len(order) < 2**31 else order)

    def add(self, sigs: Signatures, first_row: int) -> None:
        rows = np.arange(first_row, first_row + len(sigs))
        for band in range(BANDS):
            mixed = _folded(sigs, band)
            at = np.searchsorted(self.mixes[band], mixed)
            self.mixes[band] = np.insert(self.mixes[band], at, mixed)
            self.rows[band] = np.insert(self.rows[band], at, rows.astype(self.rows[band].dtype))

    def sharing(self, sigs: Signatures) -> Ids:
        """Indexed rows whose mix of some band equals that of a row of ``sigs`` (a superset of
        the rows sharing a bucket with one: mixes may collide; band_edges compares keys)."""
        found: list[npt.NDArray[np.signedinteger[Any]]] = [np.zeros(0, np.int64)]
        for band in range(BANDS):
            mixed = _folded(sigs, band)
            lo = np.searchsorted(self.mixes[band], mixed, side="left")
            hi = np.searchsorted(self.mixes[band], mixed, side="right")
            found.extend(self.rows[band][a:b] for a, b in zip(lo, hi, strict=True) if b > a)
        return np.unique(np.concatenate(found)).astype(np.int64)


def _folded(sigs: Signatures, band: int) -> npt.NDArray[np.uint32]:
    """A band's 64-bit mix folded to 32 bits, each half xored in: all four values count."""
    mixed = _band(sigs, band)[1]
    folded: npt.NDArray[np.uint32] = ((mixed >> np.uint64(32)) ^ mixed).astype(np.uint32)
    return folded
