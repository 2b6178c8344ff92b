"""Exact and near-duplicate passages: MinHash (datasketch) of word shingles, LSH-banded groups."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .vectors import Ids

if TYPE_CHECKING:
    from .store import Store

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


def signature(text: str) -> Signatures:
    """MinHash of the lower-cased word 3-shingles of ``text`` (exact copies: equal signatures)."""
    from datasketch import MinHash

    words = _WORD.findall(text.lower())
    shingles = {" ".join(words[i : i + SHINGLE]) for i in range(max(1, len(words) - SHINGLE + 1))}
    minhash = MinHash(num_perm=NUM_PERM, seed=1)
    minhash.update_batch([s.encode() for s in shingles])
    # datasketch keeps values below 2**32 in uint64: uint32 halves the file without loss.
    return np.asarray(minhash.hashvalues, dtype=np.uint32)


class Duplicates:
    """Signatures of every passage; duplicate groups computed on demand after a change."""

    def __init__(self) -> None:
        self._sigs: dict[int, Signatures] = {}
        self._groups: dict[int, int] | None = None

    def __len__(self) -> int:
        return len(self._sigs)

    def ids(self) -> Ids:
        return np.asarray(sorted(self._sigs), dtype=np.int64)

    def add(self, ids: Sequence[int], texts: Sequence[str]) -> None:
        for pid, text in zip(ids, texts, strict=True):
            self._sigs[int(pid)] = signature(text)
        self._groups = None

    def remove(self, ids: Sequence[int] | Ids) -> None:
        for pid in ids:
            self._sigs.pop(int(pid), None)
        self._groups = None

    def groups(self) -> dict[int, int]:
        """Passage id -> the smallest id of its duplicate group, for passages that have one."""
        if self._groups is None:
            self._groups = self._compute()
        return self._groups

    def _compute(self) -> dict[int, int]:
        ids = self.ids()
        if len(ids) < 2:
            return {}
        sigs = np.stack([self._sigs[int(i)] for i in ids])
        parent = np.arange(len(ids))

        def root(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = int(parent[i])
            return i

        rows = NUM_PERM // BANDS
        for band in range(BANDS):
            keys = np.ascontiguousarray(sigs[:, band * rows : (band + 1) * rows])
            _, bucket, counts = np.unique(
                keys.view(np.dtype((np.void, keys.dtype.itemsize * rows))).ravel(),
                return_inverse=True,
                return_counts=True,
            )
            shared = np.flatnonzero(counts[bucket] > 1)
            # Each bucket member is checked against the bucket's first member only: linear in
            # the bucket's size even when boilerplate fills one bucket with thousands of rows.
            first: dict[int, int] = {}
            for row in shared.tolist():
                head = first.setdefault(int(bucket[row]), row)
                if head != row and np.mean(sigs[row] == sigs[head]) >= THRESHOLD:
                    a, b = root(row), root(head)
                    if a != b:
                        parent[max(a, b)] = min(a, b)
        roots = np.asarray([root(i) for i in range(len(ids))])
        grouped = np.flatnonzero(np.bincount(roots, minlength=len(ids))[roots] > 1)
        return {int(ids[i]): int(ids[roots[i]]) for i in grouped}

    def exact(self, a: int, b: int) -> bool:
        return bool(np.array_equal(self._sigs[a], self._sigs[b]))

    # -- persistence: one uint32 matrix, no pickle ---------------------------------------------

    def save(self, path: Path) -> None:
        ids = self.ids()
        sigs = (
            np.stack([self._sigs[int(i)] for i in ids])
            if len(ids)
            else np.zeros((0, NUM_PERM), dtype=np.uint32)
        )
        buffer = io.BytesIO()
        np.savez(buffer, ids=ids, signatures=sigs)
        path.write_bytes(buffer.getvalue())

    def writers(self) -> dict[str, Callable[[Path], None]]:
        """Manifest role -> writer of that file (every role starts with "dedup")."""
        return {"dedup.npz": self.save}

    @classmethod
    def open(cls, files: Mapping[str, Path]) -> Duplicates:
        """Read the files ``writers`` wrote (role -> path); raises ValueError when they are bad."""
        return cls.load(files["dedup.npz"])

    @classmethod
    def load(cls, path: Path) -> Duplicates:
        """Read saved signatures; raises ValueError when the file does not hold them."""
        with np.load(path, allow_pickle=False) as data:
            ids, sigs = data["ids"], data["signatures"]
        if sigs.shape != (len(ids), NUM_PERM) or sigs.dtype != np.uint32:
            raise ValueError(f"signatures of shape {sigs.shape}, expected ({len(ids)}, {NUM_PERM})")
        dups = cls()
        dups._sigs = {int(pid): sigs[i] for i, pid in enumerate(ids)}
        return dups


def duplicate_report(dups: Duplicates, store: Store) -> dict[str, Any]:
    """Duplicate passages and articles, for ``info``.

    Two articles are duplicates when each passage of one duplicates a passage of the other.
    """
    groups = dups.groups()
    reps = set(groups.values())
    by_doc: dict[str, set[int]] = {}
    for pid, doc_id in store.db.execute("SELECT id, doc_id FROM passages ORDER BY id"):
        by_doc.setdefault(doc_id, set()).add(groups.get(pid, pid))
    articles: dict[frozenset[int], list[str]] = {}
    for doc_id, keys in by_doc.items():
        if keys & reps:
            articles.setdefault(frozenset(keys), []).append(doc_id)
    members = sorted(ids for ids in articles.values() if len(ids) > 1)
    exact = dict.fromkeys(reps, True)
    for pid, rep in groups.items():
        if pid != rep and not dups.exact(pid, rep):
            exact[rep] = False
    return {
        "passage_groups": len(reps),
        "exact_passage_groups": sum(exact.values()),
        "duplicate_passages": len(groups) - len(reps),
        "article_groups": members,
    }
