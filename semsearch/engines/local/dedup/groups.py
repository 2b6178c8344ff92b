"""Exact and near-duplicate passages: signatures kept per passage id, groups saved with them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ....types import Ids
from ...minhash import (
    BANDS,
    NUM_PERM,
    SHINGLE,
    THRESHOLD,
    BandIndex,
    Signatures,
    band_edges,
    join_groups,
    near_duplicate_rows,
    signature,
    signatures,
)
from ..arrays import read_mapped, read_npz, require

if TYPE_CHECKING:
    pass

__all__ = [
    "BANDS",
    "NUM_PERM",
    "SHINGLE",
    "THRESHOLD",
    "Duplicates",
    "duplicate_report",
    "near_duplicate_rows",
    "signature",
    "signatures",
]
GROUPS_ROLE = "dedup.npz"
_FIRST_ROWS = 1 << 18  # buffered signatures: 64 MB of address space, used as written
SIGNATURES_ROLE = "dedup-signatures.npy"


class Duplicates:
    """Signatures of every passage (one matrix, rows in id order) and their duplicate groups.

    Additions and removals are buffered and merged into the matrix when next read. Groups are
    saved, so a loaded index never recomputes them; passages added after them (with larger ids,
    as Index.add gives) are grouped against the rest incrementally, anything else regroups all.
    """

    def __init__(self) -> None:
        self._ids: Ids = np.zeros(0, dtype=np.int64)
        self._sigs: Signatures = np.zeros((0, NUM_PERM), dtype=np.uint32)
        self._room: tuple[Ids, Signatures] | None = None  # spare rows _ids and _sigs view
        # Buffered changes in call order: (sequence number, ids, their first row in _pending)
        # and id -> sequence number of its latest removal; a row survives unless removed after
        # it was added. Buffered signatures go into one matrix with spare rows, grown in place.
        self._added: list[tuple[int, Ids, int]] = []
        self._pending: Signatures = np.zeros((0, NUM_PERM), dtype=np.uint32)
        self._pending_used = 0
        self._removed: dict[int, int] = {}
        self._seq = 0
        self._groups: dict[int, int] | None = {}  # of the merged rows; None: not computed
        self._stored: tuple[Ids, Ids] | None = None  # groups as read from a file
        self._bands: BandIndex | None = None

    def __len__(self) -> int:
        self._merge()
        return len(self._ids)

    def ids(self) -> Ids:
        self._merge()
        return self._ids

    def add(self, ids: Sequence[int], texts: Sequence[str]) -> None:
        self.add_signatures(ids, signatures(texts))

    def add_signatures(self, ids: Sequence[int] | Ids, sigs: Signatures) -> None:
        """Add precomputed signatures (one row per id); an id already present is replaced."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        sigs = np.asarray(sigs, dtype=np.uint32)
        if sigs.shape != (len(ids), NUM_PERM):
            raise ValueError(f"signatures of shape {sigs.shape} for {len(ids)} ids")
        if len(ids):
            start = self._pending_used
            self._reserve(start + len(ids))
            self._pending[start : start + len(ids)] = sigs
            self._pending_used += len(ids)
            self._seq += 1
            self._added.append((self._seq, ids, start))

    def _reserve(self, rows: int, *, exact: bool = False) -> None:
        """Make the buffered signatures' matrix ``rows`` long (at least, unless ``exact``). It
        is resized in place: the allocator moves its pages instead of copying them, so growing
        never holds it twice, and growing often costs little, so its spare rows (zeroed, hence
        resident) are kept to a sixteenth. Nothing else ever refers to it; should numpy still
        refuse (a refcount it cannot trust), it is copied instead."""
        size = len(self._pending)
        if rows == size or (rows < size and not exact):
            return
        if size < _FIRST_ROWS and not exact:
            # Past malloc's largest heap request: mapped pages, which grow in place when
            # resized (a heap block is copied and leaves its old place behind); untouched
            # until written.
            grown = np.empty((max(rows, _FIRST_ROWS), NUM_PERM), dtype=np.uint32)
            grown[: self._pending_used] = self._pending[: self._pending_used]
            self._pending = grown
            return
        capacity = rows if exact else max(rows, size + size // 16)
        try:
            self._pending.resize((capacity, NUM_PERM), refcheck=True)
        except ValueError:
            grown = np.zeros((capacity, NUM_PERM), dtype=np.uint32)
            grown[: self._pending_used] = self._pending[: self._pending_used]
            self._pending = grown

    def remove(self, ids: Iterable[int] | Ids) -> None:
        self._seq += 1
        self._removed.update(dict.fromkeys(map(int, ids), self._seq))

    def _known(self) -> dict[int, int] | None:
        if self._groups is None and self._stored is not None:
            members, reps = self._stored
            self._groups = dict(zip(members.tolist(), reps.tolist(), strict=True))
        self._stored = None
        return self._groups

    def _merge(self) -> None:
        if not self._added and not self._removed:
            return
        ids = np.concatenate([i for _, i, _ in self._added] or [np.zeros(0, np.int64)])
        n = len(self._ids)
        if not self._removed and np.all(ids[1:] > ids[:-1]) and (not n or ids[0] > self._ids[-1]):
            sigs = self._pending[: self._pending_used]
            known = self._known()
            if known is not None and n and len(ids) <= max(1024, n // 8):
                self._groups = self._joined(known, ids, sigs)
            else:
                self._groups = self._bands = None
            if n:
                self._append(ids, sigs)
            else:  # a build: the buffered matrix becomes the index's, without a copy
                del sigs
                self._reserve(self._pending_used, exact=True)
                self._ids, self._sigs, self._room = ids, self._pending, None
                self._pending = np.zeros((0, NUM_PERM), dtype=np.uint32)
        else:
            self._rebuild()
            self._groups = self._stored = self._bands = None
        self._added, self._removed = [], {}
        self._pending, self._pending_used = self._pending[:0].copy(), 0

    def _joined(self, groups: dict[int, int], ids: Ids, sigs: Signatures) -> dict[int, int]:
        """``groups`` with rows ``ids`` (larger than every stored id) added: only the stored rows
        that may share a bucket with them are compared, which yields exactly the pairs a full
        computation would add (a bucket's smallest row is never a new one unless all are)."""
        if self._bands is None:
            self._bands = BandIndex(self._sigs)
        near = self._bands.sharing(sigs)
        new = np.zeros(len(near) + len(ids), dtype=bool)
        new[len(near) :] = True
        a, b = band_edges(np.concatenate([self._sigs[near], sigs]), new)
        self._bands.add(sigs, len(self._ids))
        known = np.concatenate([self._ids[near], ids])
        return join_groups(groups, known[a].tolist(), known[b].tolist())

    def _append(self, ids: Ids, sigs: Signatures) -> None:
        """Rows with larger ids go into spare rows: no copy of the matrix per merge."""
        n, m = len(self._ids), len(ids)
        if self._room is None or len(self._room[0]) < n + m:
            size = n + m + max(1024, (n + m) // 4)
            room = (np.empty(size, np.int64), np.empty((size, NUM_PERM), np.uint32))
            room[0][:n], room[1][:n] = self._ids, self._sigs
            self._room = room
        self._room[0][n : n + m], self._room[1][n : n + m] = ids, sigs
        self._ids, self._sigs = self._room[0][: n + m], self._room[1][: n + m]

    def _rebuild(self) -> None:
        ids = np.concatenate([self._ids, *(i for _, i, _ in self._added)])
        seq = np.concatenate(
            [np.zeros(len(self._ids), np.int64)]
            + [np.full(len(i), s, np.int64) for s, i, _ in self._added]
        )
        keep = np.ones(len(ids), dtype=bool)
        if self._removed:
            gone = np.fromiter(self._removed, np.int64, len(self._removed))
            when = np.fromiter(self._removed.values(), np.int64, len(self._removed))
            order = np.argsort(gone)
            gone, when = gone[order], when[order]
            pos = np.minimum(np.searchsorted(gone, ids), len(gone) - 1)
            keep = (gone[pos] != ids) | (when[pos] < seq)
        # Of rows with one id, the latest addition wins.
        order = np.lexsort((seq, ids))
        last = np.ones(len(order), dtype=bool)
        last[:-1] = ids[order[1:]] != ids[order[:-1]]
        rows = order[last & keep[order]]
        base = len(self._ids)
        sigs = np.empty((len(rows), NUM_PERM), dtype=np.uint32)
        old = rows < base
        sigs[old] = self._sigs[rows[old]]
        if not old.all():
            sigs[~old] = self._pending[rows[~old] - base]
        self._ids, self._sigs, self._room = ids[rows], sigs, None

    def groups(self) -> dict[int, int]:
        """Passage id -> the smallest id of its duplicate group, for passages that have one."""
        self._merge()
        if self._known() is None:
            rows, roots = near_duplicate_rows(self._sigs)
            members, reps = self._ids[rows].tolist(), self._ids[roots].tolist()
            self._groups = dict(zip(members, reps, strict=True))
        assert self._groups is not None
        return self._groups

    def exact(self, a: int, b: int) -> bool:
        self._merge()
        rows = np.searchsorted(self._ids, [a, b])
        return bool(np.array_equal(self._sigs[rows[0]], self._sigs[rows[1]]))

    # -- persistence: no pickle; the matrix is memory-mapped, since searches never read it -----

    def writers(self) -> dict[str, Callable[[Path], None]]:
        """Manifest role -> writer of that file (every role starts with "dedup")."""
        return {GROUPS_ROLE: self._write_groups, SIGNATURES_ROLE: self._write_signatures}

    def _write_groups(self, path: Path) -> None:
        groups = self.groups()  # computed here when stale: saving is where the cost belongs
        members = np.fromiter(groups, np.int64, len(groups))
        reps = np.fromiter(groups.values(), np.int64, len(groups))
        order = np.argsort(members)
        with open(path, "wb") as f:
            np.savez(f, ids=self.ids(), members=members[order], reps=reps[order])

    def _write_signatures(self, path: Path) -> None:
        self._merge()
        with open(path, "wb") as f:
            np.save(f, self._sigs, allow_pickle=False)

    @classmethod
    def open(cls, files: Mapping[str, Path]) -> Duplicates:
        """Read the files ``writers`` wrote (role -> path), or a format-3 "dedup.npz" holding
        ids and signatures (groups then computed when first read); ValueError when bad."""
        if GROUPS_ROLE not in files:
            raise ValueError(f"no {GROUPS_ROLE} among the duplicate files {sorted(files)}")
        path = files[GROUPS_ROLE]
        arrays = read_npz(path, "a duplicate-groups file")
        dups = cls()
        if "signatures" in arrays:
            ids, sigs = require(arrays, path, "ids", "signatures")
            stored = None
        else:
            ids, members, reps = require(arrays, path, "ids", "members", "reps")
            if SIGNATURES_ROLE not in files:
                raise ValueError(f"{path}: no {SIGNATURES_ROLE} beside it")
            sigs = read_mapped(files[SIGNATURES_ROLE], "a signature matrix")
            _check_groups(path, ids, members, reps)
            stored = (members, reps)
        _check_signatures(path, ids, sigs)
        dups._ids, dups._sigs = ids, sigs
        dups._groups, dups._stored = None, stored
        return dups


def _check_signatures(path: Path, ids: Any, sigs: Any) -> None:
    if ids.dtype != np.int64 or ids.ndim != 1 or np.any(np.diff(ids) <= 0):
        raise ValueError(f"{path}: passage ids are not increasing 64-bit integers")
    if sigs.dtype != np.uint32 or sigs.shape != (len(ids), NUM_PERM):
        raise ValueError(
            f"{path}: signatures of shape {sigs.shape} and type {sigs.dtype}, expected "
            f"({len(ids)}, {NUM_PERM}) uint32"
        )


def _check_groups(path: Path, ids: Ids, members: Any, reps: Any) -> None:
    if (
        members.dtype != np.int64
        or reps.dtype != np.int64
        or members.shape != reps.shape
        or members.ndim != 1
    ):
        raise ValueError(f"{path}: duplicate groups are not two equal 64-bit integer arrays")
    if np.any(np.diff(members) <= 0) or not np.isin(members, ids).all():
        raise ValueError(f"{path}: duplicate group members are not increasing passage ids")
    pos = np.minimum(np.searchsorted(members, reps), max(len(members) - 1, 0))
    if len(reps) and not (
        np.all(reps <= members) and np.all(members[pos] == reps) and np.all(reps[pos] == reps)
    ):
        raise ValueError(f"{path}: a duplicate group's representative is not its smallest member")
    if len(reps) and np.unique(reps, return_counts=True)[1].min() < 2:
        raise ValueError(f"{path}: a duplicate group has a single member")


def duplicate_report(dups: Duplicates, passage_docs: Iterable[tuple[int, str]]) -> dict[str, Any]:
    """Duplicate passages and articles, for ``info``, from (passage id, document id) pairs.

    Two articles are duplicates when each passage of one duplicates a passage of the other.
    """
    groups = dups.groups()
    reps = set(groups.values())
    by_doc: dict[str, set[int]] = {}
    for pid, doc_id in passage_docs:
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
