"""Cited answers: Answer and Citation, the Answerer interface and what answerers share."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..passages import split_sentences
from ..types import Document, Hit, Ids, Matrix

NO_ANSWER = "The indexed articles do not answer this question."

_WORD = re.compile(r"\w+")
# A literal "[3]" inside a quoted sentence would read as a citation marker in the answer text.
_MARKER_LIKE = re.compile(r"\[(?=\d+\])")
_STOPWORD_TEXT = """
a an the of in on at to for from by with about as into over after before between and or but not
no is are was were be been being am do does did done has have had having it its this that these
those there their they them he she his her him we our you your i me my what which who whom whose
when where why how much many one s t can could would should will may might must shall than then
so such also other some any all each both more most very
"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


@dataclass(frozen=True)
class Citation:
    """One numbered source of an answer: ``quote == document.text[start:end]``."""

    n: int
    doc_id: str
    title: str
    date: str | None
    source: str
    url: str | None
    passage_id: int
    start: int
    end: int
    quote: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "doc_id": self.doc_id,
            "title": self.title,
            "date": self.date,
            "source": self.source,
            "url": self.url,
            "passage_id": self.passage_id,
            "start": self.start,
            "end": self.end,
            "quote": self.quote,
        }


@dataclass(frozen=True)
class Answer:
    """An answer made of quotes, each followed by ``[n]``, or an abstention."""

    question: str
    text: str
    citations: tuple[Citation, ...]
    confidence: float
    abstained: bool
    passages: tuple[Hit, ...]
    """The passages considered, best first (also when abstaining)."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "question": self.question,
            "answer": self.text,
            "abstained": self.abstained,
            "confidence": self.confidence,
            "citations": [c.to_dict() for c in self.citations],
            "passages": [h.to_dict() for h in self.passages],
        }


@dataclass(frozen=True)
class AnswerContext:
    """What an answerer may use of the index it answers from (never the index itself)."""

    model_name: str
    """The name of the index's embedding model (a cache key for embeddings)."""
    embed: Callable[[Sequence[str]], Matrix]
    """Embeds texts with the index's model, one row each."""
    passage_vectors: Callable[[Ids], Matrix]
    """The stored vectors of passage ids, one row each."""
    document: Callable[[str], Document | None]
    """A document by id (its full text, to read around a passage), or None."""


class Answerer(Protocol):
    """Turns questions and the passages retrieved for each into answers.

    ``context`` gives what the answerer may need of the index (its embedder, stored passage
    vectors, documents). ``query_vectors``, when given, are the questions' embeddings by the
    index's embedder (one row per question), already computed for the search: an answerer that
    needs them uses these rather than embedding the questions again.
    """

    def answer_many(
        self,
        context: AnswerContext,
        questions: Sequence[str],
        hits: Sequence[Sequence[Hit]],
        *,
        query_vectors: Matrix | None = None,
    ) -> list[Answer]: ...


@dataclass(frozen=True)
class Candidate:
    """A span of a retrieved passage that may go into an answer; offsets are document offsets."""

    hit: Hit
    start: int
    end: int
    score: float

    @property
    def quote(self) -> str:
        # A hit's text is its document's text[hit.start:hit.end], so this slice is the document's.
        return self.hit.text[self.start - self.hit.start : self.end - self.hit.start]


def content_words(text: str) -> set[str]:
    """Lower-cased words minus stopwords, cut to 6 characters: a crude stemmer that lets
    "elected"/"election" or "president"/"presidency" meet."""
    return {w[:6] for w in _WORD.findall(text.lower()) if w not in _STOPWORDS}


def sentence_candidates(hits: Sequence[Hit]) -> list[Candidate]:
    """Every sentence of every hit, in document offsets, with a score of 0."""
    return [
        Candidate(hit, hit.start + a, hit.start + b, 0.0)
        for hit in hits
        for a, b in split_sentences(hit.text)
    ]


def abstention(question: str, hits: Sequence[Hit], confidence: float) -> Answer:
    return Answer(question, NO_ANSWER, (), confidence, True, tuple(hits))


def compose(
    question: str,
    hits: Sequence[Hit],
    candidates: Sequence[Candidate],
    *,
    confidence: float,
    limit: int = 3,
) -> Answer:
    """An answer from the best candidates (best first), skipping any redundant with one taken."""
    chosen: list[Candidate] = []
    words: list[set[str]] = []
    for cand in candidates:
        if len(chosen) >= limit:
            break
        cw = content_words(cand.quote)
        if not cand.quote.strip() or any(
            _redundant(cand, cw, c, w) for c, w in zip(chosen, words, strict=True)
        ):
            continue
        chosen.append(cand)
        words.append(cw)
    if not chosen:
        return abstention(question, hits, confidence)
    citations = tuple(
        Citation(
            n=n,
            doc_id=c.hit.doc_id,
            title=c.hit.title,
            date=c.hit.date,
            source=c.hit.source,
            url=c.hit.url,
            passage_id=c.hit.passage_id,
            start=c.start,
            end=c.end,
            quote=c.quote,
        )
        for n, c in enumerate(chosen, start=1)
    )
    text = " ".join(
        f"{_MARKER_LIKE.sub('(', ' '.join(c.quote.split()))} [{c.n}]" for c in citations
    )
    return Answer(question, text, citations, confidence, False, tuple(hits))


def _redundant(a: Candidate, a_words: set[str], b: Candidate, b_words: set[str]) -> bool:
    if a.hit.doc_id == b.hit.doc_id and a.start < b.end and b.start < a.end:
        return True  # the same text reached through overlapping passages
    union = a_words | b_words
    return bool(union) and len(a_words & b_words) / len(union) >= 0.5
