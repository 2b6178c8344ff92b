"""Lexical BM25 over passages (bm25s): term ids in flat arrays, the matrix rebuilt on change."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ....types import Ids, Scores
from ...terms import K1, PROXIMITY_WINDOW, WORD, B, Tokenizer
from . import files as lexical_files
from . import matrix as bm25_matrix

Terms = npt.NDArray[np.int32]

# Joins lowercased texts so one regex pass tokenises a batch: uppercase, so never a word of theirs.
_SEP = "QQSEPQQ"
_BATCH = 4096
_FIRST_TAIL = 1 << 24  # int32 terms: 64 MB of address space, used as written


class LexicalIndex:
    """BM25 over stored passages, kept as sorted passage ids, offsets and one flat array of
    term ids (into a growing vocabulary). Additions and removals are queued and merged once,
    before the next read; bm25s's matrix is static, so a change rebuilds it at the next search."""

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}
        self._ids: Ids = np.zeros(0, dtype=np.int64)
        self._offsets: npt.NDArray[np.int64] = np.zeros(1, dtype=np.int64)
        self._flat: Terms = np.zeros(0, dtype=np.int32)
        # (ids, lengths, (start, stop) in _tail) per add; (ids, None, None) per remove: in call
        # order. Queued terms go into one array with spare room, grown in place (_reserve).
        self._queue: list[tuple[Ids, Any, Any]] = []
        self._tail: Terms = np.zeros(0, dtype=np.int32)
        self._tail_used = 0
        self._tokenizer: Tokenizer | None = None
        # Word -> term id (-1: stopword, -2: the batch separator), so a word is stemmed once.
        self._codes: dict[str, int] = {_SEP: -2}
        self._bm25: Any = None
        self._idf: npt.NDArray[np.float64] = np.zeros(0)

    @property
    def tokenizer(self) -> Tokenizer:
        if self._tokenizer is None:
            self._tokenizer = Tokenizer()
        return self._tokenizer

    def __len__(self) -> int:
        return len(self.ids())

    def ids(self) -> Ids:
        self._merge()
        return self._ids

    def add(self, ids: Sequence[int] | Ids, texts: Sequence[str]) -> None:
        """Index ``texts`` under ``ids`` (an id already here is replaced)."""
        pids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if len(pids) != len(texts):
            raise ValueError(f"{len(pids)} passage ids for {len(texts)} texts")
        lengths, terms = self.encode(texts)
        start, stop = self._tail_used, self._tail_used + len(terms)
        self._reserve(stop)
        self._tail[start:stop] = terms
        self._tail_used = stop
        self._queue.append((pids, lengths, (start, stop)))
        self._bm25 = None

    def remove(self, ids: Sequence[int] | Ids) -> None:
        pids = np.array(ids, dtype=np.int64).reshape(-1)
        if len(pids):  # Index.add removes nothing after each call that replaced nothing
            self._queue.append((pids, None, None))
            self._bm25 = None

    def encode(self, texts: Sequence[str]) -> tuple[npt.NDArray[np.int64], Terms]:
        """(terms per text, their ids in one array): ``tokenizer.terms`` of each, in bulk."""
        codes, lengths, parts = self._codes, [], []
        for s in range(0, len(texts), _BATCH):
            batch = texts[s : s + _BATCH]
            words = WORD.findall(f" {_SEP} ".join(t.lower() for t in batch))
            found = np.fromiter(map(codes.get, words, repeat(-3)), np.int32, count=len(words))
            unknown = np.flatnonzero(found == -3)
            if len(unknown):  # words never seen: stemmed once, then known for good
                self._learn(list(dict.fromkeys(words[i] for i in unknown.tolist())))
                found[unknown] = [codes[words[i]] for i in unknown.tolist()]
            keep = found >= 0
            text_of = np.cumsum(found == -2)
            lengths.append(np.bincount(text_of[keep], minlength=len(batch)))
            parts.append(found[keep])
        if not parts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32)
        return np.concatenate(lengths).astype(np.int64), np.concatenate(parts)

    def _learn(self, words: list[str]) -> None:
        stop = self.tokenizer.stopwords
        kept = [w for w in words if w not in stop]
        self._codes.update((w, -1) for w in words if w in stop)
        for word, stem in zip(kept, self.tokenizer.stemmer.stemWords(kept), strict=True):
            self._codes[word] = self.vocab.setdefault(stem, len(self.vocab))

    def _merge(self) -> None:
        """Apply the queued additions and removals: the last operation on an id decides."""
        if not self._queue:
            return
        if self._appends_only():
            self._append()
            return
        adds = [(i, n, self._tail[slice(*at)]) for i, n, at in self._queue if n is not None]
        n_base = len(self._ids)
        events = np.concatenate([self._ids, *(i for i, _, _ in self._queue)])
        # Row of each event among the base rows, then the added ones; -1 for a removal.
        source, row = [np.arange(n_base)], n_base
        for pids, lengths, _ in self._queue:
            if lengths is None:
                source.append(np.full(len(pids), -1))
            else:
                source.append(np.arange(row, row + len(pids)))
                row += len(pids)
        order = np.argsort(events, kind="stable")
        ids = events[order]
        last = np.ones(len(ids), dtype=bool)  # the last event of each id
        last[:-1] = ids[1:] != ids[:-1]
        rows = np.concatenate(source)[order[last]]
        win = rows >= 0
        rows = rows[win]
        lengths = np.concatenate([np.diff(self._offsets), *(n for _, n, _ in adds)])
        offsets = np.concatenate([[0], np.cumsum(lengths[rows])]).astype(np.int64)
        flat = _take(self._flat, [t for _, _, t in adds], lengths, rows)
        # Assigned together, once all is computed: a failure above leaves the index as it was.
        self._ids, self._offsets, self._flat = ids[last][win], offsets, flat
        self._queue, self._tail, self._tail_used = [], self._tail[:0].copy(), 0

    def _appends_only(self) -> bool:
        """Whether the queue only adds passages whose ids exceed every earlier one (as Index.add
        does), so that merging is appending."""
        last = self._ids[-1] if len(self._ids) else -(2**63)
        for pids, lengths, _ in self._queue:
            if not len(pids):
                continue
            if lengths is None or pids[0] <= last or (np.diff(pids) <= 0).any():
                return False
            last = pids[-1]
        return True

    def _append(self) -> None:
        """Merge by appending the queued terms to the flat array. Into an empty index (a build),
        the queued terms become the flat array: a large index is never held twice."""
        adds = [(i, n) for i, n, _ in self._queue if n is not None and len(i)]
        if not adds:  # only removals of nothing, as after an Index.add that changed nothing
            self._queue = []
            return
        ids = np.concatenate([self._ids, *(i for i, _ in adds)])
        ends = np.cumsum(np.concatenate([np.zeros(0, np.int64), *(n for _, n in adds)]))
        offsets = np.concatenate([self._offsets, self._offsets[-1] + ends])
        if len(self._flat) and not self._tail_used:
            flat = self._flat
        elif len(self._flat):
            flat = np.concatenate([self._flat, self._tail[: self._tail_used]])
        else:
            self._reserve(self._tail_used, exact=True)
            flat = self._tail
        self._ids, self._offsets, self._flat = ids, offsets, flat
        self._queue, self._tail, self._tail_used = [], self._tail[:0].copy(), 0

    def _reserve(self, size: int, *, exact: bool = False) -> None:
        """Make the queued terms' array ``size`` long (at least, unless ``exact``). It is resized
        in place: the allocator moves its pages instead of copying them, so growing never holds
        it twice, and growing often costs little, so its spare part (zeroed, hence resident) is
        kept to a sixteenth. Nothing else ever refers to it; should numpy still refuse (a
        refcount it cannot trust), it is copied instead."""
        length = len(self._tail)
        if size == length or (size < length and not exact):
            return
        if length < _FIRST_TAIL and not exact:
            # Past malloc's largest heap request: mapped pages, which grow in place when
            # resized (a heap block is copied and leaves its old place behind); untouched
            # until written.
            grown = np.empty(max(size, _FIRST_TAIL), dtype=np.int32)
            grown[: self._tail_used] = self._tail[: self._tail_used]
            self._tail = grown
            return
        capacity = size if exact else max(size, length + length // 16)
        try:
            self._tail.resize(capacity, refcheck=True)
        except ValueError:
            grown = np.zeros(capacity, dtype=np.int32)
            grown[: self._tail_used] = self._tail[: self._tail_used]
            self._tail = grown

    def _matrix(self) -> Any:
        """The bm25s retriever over the current passages, built now if anything changed."""
        self._merge()
        if self._bm25 is None:
            scores = bm25_matrix.build(self._flat, self._offsets, len(self.vocab), k1=K1, b=B)
            self._install(scores)
        return self._bm25

    def _install(self, scores: dict[str, Any]) -> None:
        import bm25s

        retriever = bm25s.BM25(k1=K1, b=B)
        retriever.scores = scores
        retriever.nonoccurrence_array = None  # what build_index_from_ids sets for Lucene BM25
        # Documents per term, from the matrix's term columns: Lucene's idf, as BM25 uses it.
        self._idf = bm25_matrix.lucene_idf(np.diff(scores["indptr"]), len(self._ids))
        self._bm25 = retriever

    def query_terms(self, query: str) -> list[int]:
        return [self.vocab[t] for t in self.tokenizer.terms(query) if t in self.vocab]

    def scores(self, query: str) -> tuple[Ids, Scores]:
        """(passage ids, BM25 score of each for ``query``), over every passage."""
        bm25 = self._matrix()
        if not len(self._ids):
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        terms = self.query_terms(query)
        if not terms:
            return self._ids, np.zeros(len(self._ids), dtype=np.float32)
        return self._ids, np.asarray(bm25.get_scores_from_ids(terms), dtype=np.float32)

    def proximity(self, query: str, ids: Ids, *, window: int = PROXIMITY_WINDOW) -> Scores:
        """Per passage of ``ids``: the largest share of the query's IDF weight (each distinct
        query term counted once) that any ``window`` consecutive terms of the passage hold.

        1.0 means every query term occurs close together; BM25 alone cannot tell that from the
        same terms scattered over a long passage. A passage unknown here scores 0.
        """
        out = np.zeros(len(ids), dtype=np.float32)
        self._matrix()
        if not len(self._ids):
            return out
        words = set(self.tokenizer.terms(query))
        terms = np.asarray(sorted(self.vocab[w] for w in words if w in self.vocab), dtype=np.int32)
        weights = self._idf[terms]
        # A query term no passage holds is as rare as a term can be: it still counts in the
        # query's weight, so matching the other terms is not mistaken for matching them all.
        unseen = len(words) - len(terms)
        total = float(weights.sum()) + unseen * float(np.log1p((len(self._ids) + 0.5) / 0.5))
        if not len(terms) or total <= 0:
            return out
        ids = np.asarray(ids, dtype=np.int64)
        at = np.minimum(np.searchsorted(self._ids, ids), len(self._ids) - 1)
        known = self._ids[at] == ids
        lengths = np.where(known, self._offsets[at + 1] - self._offsets[at], 0)
        if not lengths.sum():
            return out
        flat = self._flat[_ragged(self._offsets[at], lengths)]
        # One pass over every candidate at once: each passage starts `window` positions after
        # the previous one ends, so that no window reaches into the next passage.
        starts = np.concatenate([[0], np.cumsum(lengths + window)[:-1]])
        owner = np.repeat(np.arange(len(ids)), lengths)
        position = np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        hit = np.flatnonzero(np.isin(flat, terms))
        if not len(hit):
            return out
        pos = starts[owner[hit]] + position[hit]
        # Running count of each query term over the matches: the window starting at match a
        # (positions pos[a] .. pos[a] + window - 1) holds the terms whose count grows in it.
        counts = np.zeros((len(hit) + 1, len(terms)), dtype=np.int32)
        counts[np.arange(1, len(hit) + 1), np.searchsorted(terms, flat[hit])] = 1
        counts = counts.cumsum(axis=0)
        ends = np.searchsorted(pos, pos + window)
        share = ((counts[ends] - counts[:-1]) > 0) @ weights / total
        np.maximum.at(out, owner[hit], share.astype(np.float32))
        return out

    def search(self, query: str, k: int, *, allowed: Ids | None = None) -> tuple[Ids, Scores]:
        """Top ``k`` passages that share a term with ``query``, best first (ties by id)."""
        return top_matches(*self.scores(query), k, allowed=allowed)

    # -- persistence: numpy arrays and a JSON vocabulary, no pickle -----------------------------

    def writers(self) -> dict[str, Callable[[Path], None]]:
        """Manifest role -> writer of that file (every role starts with "lexical"). A stale
        matrix is built by the first writer of its arrays: saving is where that cost belongs,
        not the first query, and the other parts' writers then run without it in memory."""
        self._merge()
        return lexical_files.writers(
            list(self.vocab),
            self._ids,
            self._offsets,
            self._flat,
            lambda: self._matrix().scores,
            (K1, B),
        )

    @classmethod
    def open(cls, files: Mapping[str, Path]) -> LexicalIndex:
        """Read the files ``writers`` wrote (role -> path); large arrays are memory-mapped.
        Raises ValueError when they are bad."""
        saved = lexical_files.read(files)
        index = cls()
        index.vocab = {term: i for i, term in enumerate(saved.vocab)}
        index._ids, index._offsets, index._flat = saved.ids, saved.offsets, saved.terms
        if saved.matrix is not None and saved.params == (K1, B):
            index._install(saved.matrix)
        return index


def _ragged(starts: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64]) -> npt.NDArray[Any]:
    """Positions starts[i] .. starts[i] + lengths[i] - 1 of every i, one after the other."""
    shift = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    positions: npt.NDArray[np.int64] = np.arange(int(lengths.sum()), dtype=np.int64) + shift
    return positions


def _take(base: Terms, added: list[Terms], lengths: npt.NDArray[np.int64], rows: Any) -> Terms:
    """Terms of ``rows`` (numbered over the base's rows, then the added ones), in that order."""
    if np.array_equal(rows, np.arange(len(lengths))):  # nothing dropped, nothing reordered
        nonempty = [part for part in (base, *added) if len(part)]
        return nonempty[0] if len(nonempty) == 1 else np.concatenate([base, *added])
    if np.all(np.diff(rows) > 0):
        # Rows dropped (removed or replaced), the rest in order: masks, no index arrays.
        keep = np.zeros(len(lengths), dtype=bool)
        keep[rows] = True
        mask = np.repeat(keep, lengths)
        n_terms = len(base)
        tail = np.concatenate(added)[mask[n_terms:]] if added else base[:0]
        kept: Terms = np.concatenate([base[mask[:n_terms]], tail])
        return kept
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    terms: Terms = np.concatenate([base, *added])[_ragged(offsets[rows], lengths[rows])]
    return terms


def top_matches(
    ids: Ids, scores: Scores, k: int, *, allowed: Ids | None = None
) -> tuple[Ids, Scores]:
    """The ``k`` best of (ids, scores) with a positive score, best first (ties by id)."""
    keep = scores > 0
    if allowed is not None:
        keep &= np.isin(ids, allowed)
    ids, scores = ids[keep], scores[keep]
    if len(ids) > k:
        part = np.argpartition(-scores, k - 1)[:k]
        ids, scores = ids[part], scores[part]
    order = np.lexsort((ids, -scores))
    return ids[order], scores[order]
