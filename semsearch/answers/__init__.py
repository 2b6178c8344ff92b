"""Answering: cited answers made of exact quotes from the retrieved passages, or an abstention."""

from __future__ import annotations

from .compose import (
    NO_ANSWER,
    Answer,
    AnswerContext,
    Answerer,
    Candidate,
    Citation,
    abstention,
    compose,
    content_words,
    sentence_candidates,
)
from .models import CrossEncoderAnswerer, ExtractiveReader
from .sentence import ABSTAIN_BELOW, SentenceAnswerer

__all__ = [
    "ABSTAIN_BELOW",
    "NO_ANSWER",
    "Answer",
    "AnswerContext",
    "Answerer",
    "Candidate",
    "Citation",
    "CrossEncoderAnswerer",
    "ExtractiveReader",
    "SentenceAnswerer",
    "abstention",
    "compose",
    "content_words",
    "sentence_candidates",
]
