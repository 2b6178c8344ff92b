"""The default answerer: sentences of the retrieved passages scored by a fitted logistic model."""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
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

# Logistic weights over the rows of SentenceAnswerer.features() and the abstention threshold on
# the best sentence's probability, fitted by benchmarks/calibrate_abstention.py on SQuAD v1.1 dev
# (k=5, hybrid retrieval): label "sentence holds a gold answer", threshold maximising abstention
# F1 on 12 articles asked of their own paragraphs (2,921 questions) and 12 others asked of
# those paragraphs (2,396). On 24 held-out articles (2,476 answerable, 2,777 unanswerable):
# abstention precision 0.937, recall 0.946; abstained on 7.2% of answerable questions. The
# seventh weight (answer kind, answer_types.kind_match) is the coefficient a refit of all seven
# gives it; the other six stay, since the full refit lost answers (benchmarks/README.md, "The
# answer-kind feature"): held out, precision 0.944 and recall 0.941.
_WEIGHTS = np.array([5.762, -1.003, 3.404, 1.148, 3.469, 1.354, 0.197], dtype=np.float32)
_BIAS = -10.609
ABSTAIN_BELOW = 0.13
# A second or third sentence joins the answer only if it is nearly as likely as the best one.
EXTRA_RATIO = 0.5


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
        answers = []
        features = self.features(context, questions, hits, query_vectors=query_vectors)
        for question, hs, (cands, feats) in zip(questions, hits, features, strict=True):
            if not cands:
                answers.append(abstention(question, hs, 0.0))
                continue
            # Clipped: exp of a large margin overflows float32 (a warning, and 0 or 1 anyway).
            probs = 1.0 / (1.0 + np.exp(-np.clip(feats @ _WEIGHTS + _BIAS, -60.0, 60.0)))
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
            rows = np.zeros((len(cs), len(_WEIGHTS)), dtype=np.float32)
            for i, c in enumerate(cs):
                rows[i] = (
                    float(sent[c.quote] @ q),
                    float(pvec[c.hit.passage_id] @ q),
                    _overlap(qwords, content_words(c.quote)),
                    _overlap(qwords, passage_words[c.hit.passage_id]),
                    1.0 / c.hit.rank,
                    math.log1p(len(c.quote)) / 6.0,
                    kind_match(kind, question, c.quote),
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


def _overlap(question_words: set[str], words: set[str]) -> float:
    return len(question_words & words) / len(question_words) if question_words else 0.0
