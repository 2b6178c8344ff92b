"""The default answerer: sentences of the retrieved passages scored by a fitted logistic model."""

from __future__ import annotations

import math
import threading
from collections import Counter, OrderedDict
from collections.abc import Sequence

import numpy as np

from ..types import Hit, Matrix
from .answer_types import answer_kind, kind_match
from .compose import (
    Answer,
    AnswerContext,
    Candidate,
    abstention,
    compose,
    content_words,
    sentence_candidates,
)

# Two logistic models over the rows of SentenceAnswerer.features(), both fitted on SQuAD v1.1
# dev (k=5, hybrid retrieval).
#
# Whether to answer: the best sentence's probability under _WEIGHTS/_BIAS ("this sentence holds
# a gold answer", benchmarks/calibrate_abstention.py), against ABSTAIN_BELOW, the threshold of
# best abstention F1 on 12 articles asked of their own paragraphs (2,921 questions) and 12
# others asked of those paragraphs (2,396). The seventh weight (answer kind,
# answer_types.kind_match) is the coefficient a refit of all seven gives it; the other six stay,
# since the full refit lost answers (benchmarks/README.md, "The answer-kind feature"). On 24
# held-out articles: abstention precision 0.944, recall 0.941. It ignores the eighth feature.
FEATURES = 8
_WEIGHTS = np.array([5.762, -1.003, 3.404, 1.148, 3.469, 1.354, 0.197, 0.0], dtype=np.float32)
_BIAS = -10.609
ABSTAIN_BELOW = 0.13
# Which sentences answer, best first: _RANK_WEIGHTS/_RANK_BIAS, a listwise fit (each question's
# sentences compete for holding the answer) on the questions about even-numbered articles, its
# probabilities calibrated on them too (benchmarks/fit_answerer.py). A second or third sentence
# joins the answer only if it is at least EXTRA_RATIO as likely as the best: the ratio at which
# answers hold no more citations than with the pointwise model's order. On the odd-numbered
# articles' questions, answers holding a gold answer 0.817 -> 0.835, first quotes holding one
# 0.749 -> 0.771, first citations on the gold paragraph 0.845 -> 0.854.
_RANK_WEIGHTS = np.array([1.803, 0.825, 0.558, 0.952, 0.823, 0.005, 0.256, 1.98], np.float32)
_RANK_BIAS = -3.596
EXTRA_RATIO = 0.85


class SentenceAnswerer:
    """The default answerer: no model but the index's embedder.

    Each sentence of the retrieved passages is scored over its embedding similarity to the
    question, its passage's similarity, the question's content words it and its passage share
    (plainly, and weighted by how rare each word is among the candidates), its passage's rank,
    its length and whether it holds the kind of answer asked for. When no sentence is at least
    ``threshold`` likely to hold the answer, the answerer abstains; otherwise the answer is the
    best one to three sentences, by a second model fitted to put the answering sentence first.
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
        # Sentence vectors by (model, text): questions about the same articles reuse them instead
        # of embedding the same sentences again.
        self._cache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        # The demo answers from several threads with one shared answerer.
        self._lock = threading.Lock()

    def answer_many(
        self,
        context: AnswerContext,
        questions: Sequence[str],
        hits: Sequence[Sequence[Hit]],
        *,
        query_vectors: Matrix | None = None,
    ) -> list[Answer]:
        features = self.features(context, questions, hits, query_vectors=query_vectors)
        return [
            self._decide(question, hs, cands, feats)
            for question, hs, (cands, feats) in zip(questions, hits, features, strict=True)
        ]

    def _decide(
        self,
        question: str,
        hits: Sequence[Hit],
        cands: list[Candidate],
        feats: np.ndarray,
        ranking: tuple[np.ndarray, float, float] = (_RANK_WEIGHTS, _RANK_BIAS, EXTRA_RATIO),
    ) -> Answer:
        """The answer from the candidates' feature rows: abstain by the confidence model, else
        quote by ``ranking`` (weights, bias, extra ratio; benchmarks/fit_answerer.py tries
        others)."""
        if not cands:
            return abstention(question, hits, 0.0)
        confidence = float(_sigmoid(feats @ _WEIGHTS + _BIAS).max())
        if confidence < self.threshold:
            return abstention(question, hits, confidence)
        weights, bias, ratio = ranking
        probs = _sigmoid(feats @ weights + bias)
        order = np.argsort(-probs, kind="stable")
        cut = ratio * float(probs[order[0]])
        ranked = [
            Candidate(cands[i].hit, cands[i].start, cands[i].end, float(probs[i]))
            for i in order
            if probs[i] >= cut
        ]
        return compose(question, hits, ranked, confidence=confidence, limit=self.max_sentences)

    def features(
        self,
        context: AnswerContext,
        questions: Sequence[str],
        hits: Sequence[Sequence[Hit]],
        *,
        query_vectors: Matrix | None = None,
    ) -> list[tuple[list[Candidate], np.ndarray]]:
        """Per question: its sentence candidates and one feature row per candidate."""
        cands = [sentence_candidates(hs) for hs in hits]
        texts = list(dict.fromkeys(c.quote for cs in cands for c in cs))
        sent = self._sentence_vectors(context, texts)
        qvec = query_vectors
        if qvec is None:
            qvec = context.embed(list(questions))
        elif len(qvec) != len(questions):
            raise ValueError(f"{len(qvec)} query vectors for {len(questions)} questions")
        pids = sorted({h.passage_id for hs in hits for h in hs})
        pvec = dict(
            zip(pids, context.passage_vectors(np.asarray(pids, dtype=np.int64)), strict=True)
        )
        out = []
        for q, question, hs, cs in zip(qvec, questions, hits, cands, strict=True):
            qwords = content_words(question)
            kind = answer_kind(question)
            passage_words = {h.passage_id: content_words(f"{h.title} {h.text}") for h in hs}
            words = [content_words(c.quote) for c in cs]
            coverage = _weighted_overlap(qwords, words)
            rows = np.zeros((len(cs), FEATURES), dtype=np.float32)
            for i, c in enumerate(cs):
                rows[i] = (
                    float(sent[c.quote] @ q),
                    float(pvec[c.hit.passage_id] @ q),
                    _overlap(qwords, words[i]),
                    _overlap(qwords, passage_words[c.hit.passage_id]),
                    1.0 / c.hit.rank,
                    math.log1p(len(c.quote)) / 6.0,
                    kind_match(kind, question, c.quote),
                    coverage[i],
                )
            out.append((cs, rows))
        return out

    def _sentence_vectors(
        self, context: AnswerContext, texts: Sequence[str]
    ) -> dict[str, np.ndarray]:
        name = context.model_name
        with self._lock:
            missing = [t for t in texts if (name, t) not in self._cache]
            fresh = dict(zip(missing, context.embed(missing), strict=True))
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


def _sigmoid(margin: np.ndarray) -> np.ndarray:
    # Clipped: exp of a large margin overflows float32 (a warning, and 0 or 1 anyway).
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(margin, -60.0, 60.0))))


def _overlap(question_words: set[str], words: set[str]) -> float:
    return len(question_words & words) / len(question_words) if question_words else 0.0


def _weighted_overlap(question_words: set[str], sentences: Sequence[set[str]]) -> list[float]:
    """Per sentence: the share of the question's words it holds, each word weighted by how few
    of the candidate sentences hold it (idf over the candidates: log(1 + n / df), a word none
    holds counting as half a sentence's), so a rare name the question asks about counts more
    than a word every candidate repeats."""
    n = len(sentences)
    df = Counter(w for words in sentences for w in words & question_words)
    idf = {w: math.log(1 + n / df.get(w, 0.5)) for w in question_words}
    total = sum(idf.values())
    if not total:
        return [0.0] * n
    return [sum(idf[w] for w in question_words & words) / total for words in sentences]
