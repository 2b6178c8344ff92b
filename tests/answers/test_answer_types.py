"""The kind of answer a question asks for, and whether a sentence holds one."""

from __future__ import annotations

from pathlib import Path

import pytest

from semsearch import Embedder, Index
from semsearch.answers.answer_types import answer_kind, kind_match

BUNDLED = Path(__file__).resolve().parents[2] / "indexes" / "news"

WHY = "Why did Afghan migrants die at the Iranian border?"


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        (WHY, "cause"),
        ("What caused the flooding in Karachi?", "cause"),
        ("How many Afghans were forced to return from Iran?", "number"),
        ("How much did the harbour wall cost?", "number"),
        ("When did the council approve the budget?", "time"),
        ("What year was the treaty signed?", "time"),
        ("Where did the migrants try to cross?", "place"),
        ("Who wrote to the Pakistani prime minister?", "person"),
        ("Whose letter reached Islamabad first?", "person"),
        ("What did the council approve?", None),
        ("Which country is set to print warnings on cigarettes?", None),
    ],
)
def test_answer_kind(question: str, kind: str | None) -> None:
    assert answer_kind(question) == kind


@pytest.mark.parametrize(
    ("question", "sentence", "expected"),
    [
        (WHY, "Three people who wanted to cross have died because of the cold weather.", 1.0),
        (WHY, "The migrants were part of a group that attempted to cross into Iran.", -1.0),
        ("How many Afghans returned?", "More than 1.8 million Afghans were forced to return.", 1.0),
        ("How many Afghans returned?", "Afghans returned in large numbers.", -1.0),
        # A number the question already holds is no answer to it.
        ("How many of the 12 ministers resigned in 2022?", "The 12 ministers met in 2022.", -1.0),
        ("When did the council meet?", "The council met on Monday.", 1.0),
        ("Where did they cross?", "They crossed near Kohsan at night.", 1.0),
        ("Who sent the letter?", "Russian President Vladimir Putin sent it.", 1.0),
        ("Who sent the letter?", "the letter was sent by courier.", -1.0),
        ("What did the council approve?", "It approved the budget.", 0.0),
    ],
)
def test_kind_match(question: str, sentence: str, expected: float) -> None:
    assert kind_match(answer_kind(question), question, sentence) == expected


def test_a_why_question_on_the_bundled_index_quotes_the_cause_first(embedder: Embedder) -> None:
    index = Index.load(BUNDLED, model=embedder)
    answer = index.ask(WHY)
    assert not answer.abstained
    assert "because of the cold weather" in answer.citations[0].quote
    for c in answer.citations:
        assert index.document(c.doc_id).text[c.start : c.end] == c.quote  # type: ignore[union-attr]
