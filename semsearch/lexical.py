"""Lexical BM25 over passages (bm25s): token ids kept per passage, the matrix rebuilt lazily."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .vectors import Ids

Scores = npt.NDArray[np.float32]

# bm25s's defaults (Lucene BM25, k1 1.5, b 0.75) with its splitter, English stopwords and the
# Snowball English stemmer: the setup whose SciFact score (0.687 nDCG@10) is published.
K1 = 1.5
B = 0.75
PROXIMITY_WINDOW = 10
"""Terms (after stopwords) a passage window spans for proximity: about half a sentence."""
_WORD = re.compile(r"(?u)\b\w\w+\b")


class Tokenizer:
    """Text -> stemmed terms, exactly as ``bm25s.tokenize(stopwords="en", stemmer=...)``."""

    def __init__(self) -> None:
        import Stemmer
        from bm25s.stopwords import STOPWORDS_EN

        self._stop = frozenset(STOPWORDS_EN)
        self._stemmer = Stemmer.Stemmer("english")
        # Stemming is the slow part; news repeats words, so each distinct word is stemmed once.
        self._stems: dict[str, str] = {}

    def terms(self, text: str) -> list[str]:
        words = [w for w in _WORD.findall(text.lower()) if w not in self._stop]
        new = [w for w in dict.fromkeys(words) if w not in self._stems]
        if new:
            self._stems.update(zip(new, self._stemmer.stemWords(new), strict=True))
        return [self._stems[w] for w in words]


class LexicalIndex:
    """BM25 over stored passages. Terms are stored per passage (ids into a growing vocabulary),
    because bm25s's matrix is static: it is rebuilt on the first search after a change."""

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}
        self._terms: dict[int, npt.NDArray[np.int32]] = {}
        self._tokenizer: Tokenizer | None = None
        self._bm25: Any = None
        self._order: Ids = np.zeros(0, dtype=np.int64)
        self._idf: npt.NDArray[np.float64] = np.zeros(0)

    @property
    def tokenizer(self) -> Tokenizer:
        if self._tokenizer is None:
            self._tokenizer = Tokenizer()
        return self._tokenizer

    def __len__(self) -> int:
        return len(self._terms)

    def ids(self) -> Ids:
        return np.asarray(sorted(self._terms), dtype=np.int64)

    def add(self, ids: Sequence[int], texts: Sequence[str]) -> None:
        for pid, text in zip(ids, texts, strict=True):
            terms = self.tokenizer.terms(text)
            for term in terms:
                self.vocab.setdefault(term, len(self.vocab))
            self._terms[int(pid)] = np.asarray([self.vocab[t] for t in terms], dtype=np.int32)
        self._bm25 = None

    def remove(self, ids: Sequence[int] | Ids) -> None:
        for pid in ids:
            self._terms.pop(int(pid), None)
        self._bm25 = None

    def _matrix(self) -> Any:
        """The bm25s retriever over the current passages, built now if anything changed."""
        if self._bm25 is None:
            import bm25s

            self._order = self.ids()
            retriever = bm25s.BM25(k1=K1, b=B)
            # An empty passage (only stopwords) has no terms; bm25s needs the length all the same.
            docs = [self._terms[int(pid)].tolist() for pid in self._order]
            retriever.scores = retriever.build_index_from_ids(
                unique_token_ids=list(range(len(self.vocab))),
                corpus_token_ids=docs,
                show_progress=False,
            )
            # Documents per term, from the matrix's term columns: Lucene's idf, as BM25 uses it.
            df = np.diff(np.asarray(retriever.scores["indptr"], dtype=np.float64))
            self._idf = np.log1p((len(self._order) - df + 0.5) / (df + 0.5))
            self._bm25 = retriever
        return self._bm25

    def query_terms(self, query: str) -> list[int]:
        return [self.vocab[t] for t in self.tokenizer.terms(query) if t in self.vocab]

    def scores(self, query: str) -> tuple[Ids, Scores]:
        """(passage ids, BM25 score of each for ``query``), over every passage."""
        if not self._terms:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        bm25 = self._matrix()
        terms = self.query_terms(query)
        if not terms:
            return self._order, np.zeros(len(self._order), dtype=np.float32)
        scores = bm25.get_scores_from_ids(terms)
        return self._order, np.asarray(scores, dtype=np.float32)

    def proximity(self, query: str, ids: Ids, *, window: int = PROXIMITY_WINDOW) -> Scores:
        """Per passage of ``ids``: the largest share of the query's IDF weight (each distinct
        query term counted once) that any ``window`` consecutive terms of the passage hold.

        1.0 means every query term occurs close together; BM25 alone cannot tell that from the
        same terms scattered over a long passage. A passage unknown here scores 0.
        """
        out = np.zeros(len(ids), dtype=np.float32)
        if not self._terms:
            return out
        self._matrix()
        words = set(self.tokenizer.terms(query))
        terms = np.asarray(sorted(self.vocab[w] for w in words if w in self.vocab), dtype=np.int32)
        weights = self._idf[terms]
        # A query term no passage holds is as rare as a term can be: it still counts in the
        # query's weight, so matching the other terms is not mistaken for matching them all.
        unseen = len(words) - len(terms)
        total = float(weights.sum()) + unseen * float(np.log1p((len(self._order) + 0.5) / 0.5))
        if not len(terms) or total <= 0:
            return out
        empty = np.zeros(0, dtype=np.int32)
        sequences = [self._terms.get(int(pid), empty) for pid in ids.tolist()]
        lengths = np.asarray([len(q) for q in sequences], dtype=np.int64)
        if not lengths.sum():
            return out
        flat = np.concatenate(sequences)
        # One pass over every candidate at once: each passage starts `window` positions after
        # the previous one ends, so that no window reaches into the next passage.
        starts = np.concatenate([[0], np.cumsum(lengths + window)[:-1]])
        owner = np.repeat(np.arange(len(sequences)), lengths)
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

    def to_bytes(self) -> bytes:
        order = self.ids()
        arrays = [self._terms[int(pid)] for pid in order]
        lengths = np.asarray([len(a) for a in arrays], dtype=np.int64)
        vocab = sorted(self.vocab, key=self.vocab.__getitem__)
        buffer = io.BytesIO()
        np.savez(
            buffer,
            ids=order,
            lengths=lengths,
            terms=np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int32),
            vocab=np.frombuffer(json.dumps(vocab, ensure_ascii=False).encode(), dtype=np.uint8),
        )
        return buffer.getvalue()

    def save(self, path: Path) -> None:
        path.write_bytes(self.to_bytes())

    def writers(self) -> dict[str, Callable[[Path], None]]:
        """Manifest role -> writer of that file (every role starts with "lexical")."""
        return {"lexical.npz": self.save}

    @classmethod
    def open(cls, files: Mapping[str, Path]) -> LexicalIndex:
        """Read the files ``writers`` wrote (role -> path); raises ValueError when they are bad."""
        return cls.load(files["lexical.npz"])

    @classmethod
    def load(cls, path: Path) -> LexicalIndex:
        """Read a saved index; raises ValueError when the file does not hold one."""
        with np.load(path, allow_pickle=False) as data:
            ids, lengths, terms = data["ids"], data["lengths"], data["terms"]
            vocab = json.loads(data["vocab"].tobytes().decode())
        if len(ids) != len(lengths) or int(lengths.sum()) != len(terms):
            raise ValueError("term counts do not add up")
        if len(terms) and (terms.min() < 0 or terms.max() >= len(vocab)):
            raise ValueError("term ids outside the vocabulary")
        index = cls()
        index.vocab = {term: i for i, term in enumerate(vocab)}
        bounds = np.concatenate([[0], np.cumsum(lengths)])
        index._terms = {
            int(pid): terms[bounds[i] : bounds[i + 1]].astype(np.int32) for i, pid in enumerate(ids)
        }
        return index


def indexed_text(title: str, text: str) -> str:
    """What BM25 indexes for a passage: its document's title (matches there count) and its text."""
    return f"{title}\n\n{text}" if title else text


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
