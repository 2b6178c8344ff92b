"""Answerers that need a downloaded model: a cross-encoder sentence ranker, an extractive reader."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import SemsearchError
from ..types import Hit, Matrix
from .compose import Answer, AnswerContext, Candidate, abstention, compose, sentence_candidates


class CrossEncoderAnswerer:
    """Scores every sentence of the retrieved passages with a cross-encoder, by model name.

    No cross-encoder ships offline (a name such as "cross-encoder/ms-marco-MiniLM-L-6-v2" needs
    a model hub or a local copy). ``min_score`` is in the model's own score units (a probability
    for sentence-transformers cross-encoders with one label) and is not calibrated here: the
    default answerer's threshold was fitted on data this model cannot be run on offline.
    """

    def __init__(
        self,
        model: str,
        *,
        min_score: float = 0.5,
        max_sentences: int = 3,
        extra_ratio: float = 0.5,
        batch_size: int = 32,
    ) -> None:
        from ..retrieval.rerank import Reranker

        self.reranker = Reranker(model, batch_size=batch_size)
        self.min_score = min_score
        self.max_sentences = max_sentences
        self.extra_ratio = extra_ratio

    def answer_many(
        self,
        context: AnswerContext,
        questions: Sequence[str],
        hits: Sequence[Sequence[Hit]],
        *,
        query_vectors: Matrix | None = None,  # unused: these models read the question text
    ) -> list[Answer]:
        answers = []
        for question, hs in zip(questions, hits, strict=True):
            cands = sentence_candidates(hs)
            scores = self.reranker.scores(question, [c.quote for c in cands])
            ranked = sorted(
                (Candidate(c.hit, c.start, c.end, s) for c, s in zip(cands, scores, strict=True)),
                key=lambda c: -c.score,
            )
            best = ranked[0].score if ranked else 0.0
            if best < self.min_score:
                answers.append(abstention(question, hs, best))
                continue
            # Scores may be logits (negative) or probabilities: the cut keeps the same meaning,
            # "not far below the best", measured from the threshold up.
            cut = self.min_score + self.extra_ratio * (best - self.min_score)
            keep = [c for c in ranked if c.score >= cut]
            answers.append(compose(question, hs, keep, confidence=best, limit=self.max_sentences))
        return answers


class ExtractiveReader:
    """Reads the retrieved passages with an ``AutoModelForQuestionAnswering`` model by name.

    Passages longer than ``max_length`` tokens are read in windows overlapping by ``stride``
    tokens. The answer is the most probable span, quoted with its exact document offsets. With a
    SQuAD 2.0 model, the reader abstains when every window prefers "no answer"; with any model,
    when the best span's probability is below ``min_confidence``.
    """

    def __init__(
        self,
        model: str,
        *,
        max_length: int = 384,
        stride: int = 128,
        max_answer_tokens: int = 30,
        min_confidence: float = 0.0,
        batch_size: int = 16,
    ) -> None:
        if not 0 <= stride < max_length:
            raise ValueError(f"stride must be in [0, max_length), got {stride}")
        self.name = model
        self.max_length = max_length
        self.stride = stride
        self.max_answer_tokens = max_answer_tokens
        self.min_confidence = min_confidence
        self.batch_size = batch_size
        self._loaded: tuple[Any, Any] | None = None

    def _load(self) -> tuple[Any, Any]:
        if self._loaded is None:
            from transformers import AutoModelForQuestionAnswering, AutoTokenizer

            try:
                tokenizer = AutoTokenizer.from_pretrained(self.name)
                model = AutoModelForQuestionAnswering.from_pretrained(self.name)
            except (OSError, ValueError) as exc:
                raise SemsearchError(f"cannot load reader {self.name!r}: {exc}") from None
            if not tokenizer.is_fast:
                # Only fast tokenizers give the character offsets that map spans back to text.
                raise SemsearchError(f"reader {self.name!r} has no fast tokenizer")
            model.eval()
            self._loaded = (tokenizer, model)
        return self._loaded

    def answer_many(
        self,
        context: AnswerContext,
        questions: Sequence[str],
        hits: Sequence[Sequence[Hit]],
        *,
        query_vectors: Matrix | None = None,  # unused: these models read the question text
    ) -> list[Answer]:
        answers = []
        for question, hs in zip(questions, hits, strict=True):
            span, prob, prefers_null = self._read(question, hs)
            if span is None or prefers_null or prob < self.min_confidence:
                answers.append(abstention(question, hs, prob))
            else:
                answers.append(compose(question, hs, [span], confidence=prob, limit=1))
        return answers

    def _read(self, question: str, hits: Sequence[Hit]) -> tuple[Candidate | None, float, bool]:
        """The best span over every window of every passage, its probability within its window,
        and whether every window scored "no answer" ([CLS]) above its best span."""
        if not hits:
            return None, 0.0, False
        import torch

        tokenizer, model = self._load()
        enc = tokenizer(
            [question] * len(hits),
            [h.text for h in hits],
            truncation="only_second",
            max_length=self.max_length,
            stride=self.stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            padding=True,
            return_tensors="pt",
        )
        owners = enc.pop("overflow_to_sample_mapping").tolist()
        offsets = enc.pop("offset_mapping").tolist()
        starts, ends = [], []
        with torch.inference_mode():
            for i in range(0, len(owners), self.batch_size):
                out = model(**{key: value[i : i + self.batch_size] for key, value in enc.items()})
                starts.append(out.start_logits.float().numpy())
                ends.append(out.end_logits.float().numpy())
        start_logits, end_logits = np.concatenate(starts), np.concatenate(ends)
        best: tuple[float, float, Candidate] | None = None
        all_null = True
        for w, owner in enumerate(owners):
            context = np.array([s == 1 for s in enc.sequence_ids(w)])
            if not context.any():
                continue
            found = self._best_span(start_logits[w], end_logits[w], context)
            if found is None:
                continue
            i, j, score = found
            null = float(start_logits[w][0] + end_logits[w][0])
            all_null = all_null and null > score
            hit = hits[owner]
            a, b = offsets[w][i][0], offsets[w][j][1]
            prob = float(
                _softmax(start_logits[w], context)[i] * _softmax(end_logits[w], context)[j]
            )
            cand = Candidate(hit, hit.start + a, hit.start + b, prob)
            if cand.quote.strip() and (best is None or prob > best[0]):
                best = (prob, score, cand)
        if best is None:
            return None, 0.0, False
        return best[2], best[0], all_null

    def _best_span(
        self, start: np.ndarray, end: np.ndarray, context: np.ndarray
    ) -> tuple[int, int, float] | None:
        """Token indices (i <= j, both in the passage, at most max_answer_tokens apart)."""
        s = np.where(context, start, -np.inf)
        e = np.where(context, end, -np.inf)
        scores = s[:, None] + e[None, :]
        n = len(s)
        rows, cols = np.indices((n, n))
        scores[(cols < rows) | (cols - rows >= self.max_answer_tokens)] = -np.inf
        flat = int(np.argmax(scores))
        i, j = divmod(flat, n)
        if not np.isfinite(scores[i, j]):
            return None
        return i, j, float(scores[i, j])


def _softmax(logits: np.ndarray, mask: np.ndarray) -> np.ndarray:
    x = np.where(mask, logits, -np.inf)
    x = np.exp(x - x.max())
    return np.asarray(x / x.sum())
