"""Cited answers: Answer and Citation, the Answerer interface and the default sentence answerer."""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..embeddings.embedder import Vectors
from ..passages import split_sentences
from ..retrieval.search import encode_queries
from ..types import Hit

if TYPE_CHECKING:
    from ..index import Index
    from ..retrieval.search import Filters

NO_ANSWER = "The indexed articles do not answer this question."

# Logistic weights over the rows of SentenceAnswerer.features() and the abstention threshold on
# the best sentence's probability, fitted by benchmarks/calibrate_abstention.py on SQuAD v1.1 dev
# (k=5, hybrid retrieval): label "sentence holds a gold answer", threshold maximising abstention
# F1 on 12 articles asked of their own paragraphs (2,921 questions) and 12 others asked of
# those paragraphs (2,396). On 24 held-out articles (2,476 answerable, 2,777 unanswerable):
# abstention precision 0.937, recall 0.946; abstained on 7.2% of answerable questions.
_WEIGHTS = np.array([5.762, -1.003, 3.404, 1.148, 3.469, 1.354], dtype=np.float32)
_BIAS = -10.609
ABSTAIN_BELOW = 0.13
# A second or third sentence joins the answer only if it is nearly as likely as the best one.
EXTRA_RATIO = 0.5

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


class Answerer(Protocol):
    """Turns questions and the passages retrieved for each into answers.

    ``query_vectors``, when given, are the questions' embeddings by the index's embedder (one row
    per question), already computed for the search: an answerer that needs them uses these
    rather than embedding the questions again.
    """

    def answer_many(
        self,
        index: Index,
        questions: Sequence[str],
        hits: Sequence[Sequence[Hit]],
        *,
        query_vectors: Vectors | None = None,
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


class SentenceAnswerer:
    """The default answerer: no model but the index's embedder.

    Each sentence of the retrieved passages is scored by a logistic model over its embedding
    similarity to the question, its passage's similarity, the question's content words it and its
    passage share, and its passage's rank. The answer is the best one to three sentences; when
    the best is less likely than ``threshold`` to hold the answer, the answerer abstains.
    """

    def __init__(
        self,
        *,
        threshold: float = ABSTAIN_BELOW,
        max_sentences: int = 3,
        cache_size: int = 20_000,
    ) -> None:
        self.threshold = threshold
        self.max_sentences = max_sentences
        # Sentence vectors by (model, text): questions about the same articles reuse them, which
        # turns a benchmark of 10,000 questions from hours of encoding into minutes.
        self._cache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        # The demo answers from several threads with one shared answerer.
        self._lock = threading.Lock()

    def answer_many(
        self,
        index: Index,
        questions: Sequence[str],
        hits: Sequence[Sequence[Hit]],
        *,
        query_vectors: Vectors | None = None,
    ) -> list[Answer]:
        answers = []
        features = self.features(index, questions, hits, query_vectors=query_vectors)
        for question, hs, (cands, feats) in zip(questions, hits, features, strict=True):
            if not cands:
                answers.append(abstention(question, hs, 0.0))
                continue
            probs = 1.0 / (1.0 + np.exp(-(feats @ _WEIGHTS + _BIAS)))
            order = np.argsort(-probs, kind="stable")
            best = float(probs[order[0]])
            if best < self.threshold:
                answers.append(abstention(question, hs, best))
                continue
            cut = max(self.threshold, EXTRA_RATIO * best)
            ranked = [
                Candidate(cands[i].hit, cands[i].start, cands[i].end, float(probs[i]))
                for i in order
                if probs[i] >= cut
            ]
            answers.append(compose(question, hs, ranked, confidence=best, limit=self.max_sentences))
        return answers

    def features(
        self,
        index: Index,
        questions: Sequence[str],
        hits: Sequence[Sequence[Hit]],
        *,
        query_vectors: Vectors | None = None,
    ) -> list[tuple[list[Candidate], np.ndarray]]:
        """Per question: its sentence candidates and one feature row per candidate."""
        cands = [sentence_candidates(hs) for hs in hits]
        texts = list(dict.fromkeys(c.quote for cs in cands for c in cs))
        sent = self._sentence_vectors(index, texts)
        qvec = query_vectors
        if qvec is None:
            qvec = index.embedder.encode(list(questions))
        elif len(qvec) != len(questions):
            raise ValueError(f"{len(qvec)} query vectors for {len(questions)} questions")
        pids = sorted({h.passage_id for hs in hits for h in hs})
        pvec = dict(
            zip(pids, index.vectors.reconstruct(np.asarray(pids, dtype=np.int64)), strict=True)
        )
        out = []
        for q, question, hs, cs in zip(qvec, questions, hits, cands, strict=True):
            qwords = content_words(question)
            context = {h.passage_id: content_words(f"{h.title} {h.text}") for h in hs}
            rows = np.zeros((len(cs), len(_WEIGHTS)), dtype=np.float32)
            for i, c in enumerate(cs):
                rows[i] = (
                    float(sent[c.quote] @ q),
                    float(pvec[c.hit.passage_id] @ q),
                    _overlap(qwords, content_words(c.quote)),
                    _overlap(qwords, context[c.hit.passage_id]),
                    1.0 / c.hit.rank,
                    math.log1p(len(c.quote)) / 6.0,
                )
            out.append((cs, rows))
        return out

    def _sentence_vectors(self, index: Index, texts: Sequence[str]) -> dict[str, np.ndarray]:
        name = index.embedder.name
        with self._lock:
            missing = [t for t in texts if (name, t) not in self._cache]
            fresh = dict(zip(missing, index.embedder.encode(missing), strict=True))
            found = {}
            for t in texts:
                key = (name, t)
                if t in fresh:
                    self._cache[key] = fresh[t]
                else:
                    self._cache.move_to_end(key)
                found[t] = self._cache[key]
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return found


def _overlap(question_words: set[str], words: set[str]) -> float:
    return len(question_words & words) / len(question_words) if question_words else 0.0


_DEFAULT = SentenceAnswerer()


def ask_many(
    index: Index,
    questions: Sequence[str],
    *,
    k: int,
    filters: Filters | None = None,
    answerer: Answerer | None = None,
) -> list[Answer]:
    """Retrieve ``k`` passages per question and answer from them (see :meth:`Index.ask`)."""
    questions = list(questions)
    answers: list[Answer] = []
    for i in range(0, len(questions), 256):  # bounds memory for any number of questions
        batch = questions[i : i + 256]
        # Embedded once: the search and the answerer both use these vectors.
        vectors = encode_queries(index.embedder, batch)
        hits = index.search_many(batch, k=k, filters=filters, query_vectors=vectors)
        answers.extend(
            (answerer or _DEFAULT).answer_many(index, batch, hits, query_vectors=vectors)
        )
    return answers
