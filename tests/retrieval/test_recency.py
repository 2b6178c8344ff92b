"""Recency: queries that name a recent time favour recent articles, and only those, unless the
caller asks; the prior is what retrieval/recency.py says it is."""

from __future__ import annotations

import math

import numpy as np
import pytest

from semsearch import Document, Embedder, Index, InputError
from semsearch.retrieval.recency import (
    RECENCY_DAYS,
    RECENCY_GAIN,
    recency_boost,
    recency_window,
    recent_days,
)

TEXT = (
    "Acme Motors recalled 2.9 million vehicles over a faulty seat belt sensor, the company said. "
    "Owners will be told by letter and dealers will replace the part free of charge."
)


@pytest.mark.parametrize(
    ("query", "days"),
    [
        ("Which automaker recalled 2.9 million vehicles this week?", RECENCY_DAYS),
        ("Who resigned yesterday?", RECENCY_DAYS),
        ("What did the court rule on Tuesday?", RECENCY_DAYS),
        ("Yellowstone reopened Wednesday. Why was it closed?", RECENCY_DAYS),
        ("What is the latest on the strike?", RECENCY_DAYS),
        ("Which films opened this month?", 30.0),
        ("Who leads the league this year?", 365.0),
        ("What did the minister say this week about prices this year?", RECENCY_DAYS),
        ("Which automaker recalled 2.9 million vehicles?", None),
        ("How much did shoppers spend on Black Friday?", None),
        ("What happened on Super Tuesday in 2016?", None),
    ],
)
def test_the_window_comes_from_the_period_the_query_names(query: str, days: float | None) -> None:
    assert recent_days(query) == days
    assert recency_window(query, None) == days
    assert recency_window(query, False) is None
    assert recency_window(query, True) == (RECENCY_DAYS if days is None else days)


def test_the_boost_decays_from_the_newest_candidate() -> None:
    boost = recency_boost(["2022-07-15", "2022-07-08", None, "2022-06-15"], 7.0)
    want = [RECENCY_GAIN, RECENCY_GAIN * math.exp(-1), 0.0, RECENCY_GAIN * math.exp(-30 / 7)]
    np.testing.assert_allclose(boost, want, rtol=1e-6)
    assert recency_boost([None, None], 7.0).tolist() == [0.0, 0.0]
    assert recency_boost([], 7.0).shape == (0,)


NEW = (
    "Acme Motors recalled 2.9 million cars because a seat belt sensor can fail. Letters go out "
    "to owners next month, and dealers will fit a new sensor."
)


@pytest.fixture(scope="module")
def recalls(embedder: Embedder) -> Index:
    """Two reports of a recall: last year's matches the query's words better."""
    index = Index(model=embedder)
    index.add(
        [
            Document(
                id="old", title="Acme recalls 2.9 million vehicles", text=TEXT, date="2021-07-01"
            ),
            Document(id="new", title="Acme", text=NEW, date="2022-07-14"),
            Document(
                id="other",
                title="Harbour",
                text="The harbour reopened after the storm.",
                date="2022-07-15",
            ),
        ]
    )
    return index


QUESTION = "Which automaker recalled 2.9 million vehicles"


def first(index: Index, query: str, **options: object) -> str:
    return index.search(query, k=3, **options)[0].doc_id  # type: ignore[arg-type]


def test_a_query_naming_this_week_gets_this_weeks_article(recalls: Index) -> None:
    assert first(recalls, QUESTION + "?") == "old"  # on words alone
    assert first(recalls, QUESTION + " this week?") == "new"
    assert first(recalls, QUESTION + " this week?", recency=False) == "old"
    assert first(recalls, QUESTION + "?", recency=True) == "new"


def test_the_prior_adds_to_the_fused_score_and_nothing_else(recalls: Index) -> None:
    plain = {h.doc_id: h.score for h in recalls.search(QUESTION + "?", k=3)}
    boosted = {h.doc_id: h.score for h in recalls.search(QUESTION + "?", k=3, recency=True)}
    # "new" is a day before the newest candidate ("other"), "old" over a year.
    assert boosted["new"] - plain["new"] == pytest.approx(RECENCY_GAIN * math.exp(-1 / 7), abs=1e-5)
    assert boosted["other"] - plain["other"] == pytest.approx(RECENCY_GAIN, abs=1e-5)
    assert boosted["old"] - plain["old"] == pytest.approx(0.0, abs=1e-5)


def test_a_date_filter_moves_now_with_it(recalls: Index) -> None:
    from semsearch import Filters

    hits = recalls.search(QUESTION + "?", k=3, recency=True, filters=Filters(date_to="2021-12-31"))
    assert [h.doc_id for h in hits] == ["old"]
    plain = recalls.search(QUESTION + "?", k=3, filters=Filters(date_to="2021-12-31"))
    assert hits[0].score - plain[0].score == pytest.approx(RECENCY_GAIN, abs=1e-5)


def test_undated_articles_rank_on_their_words(embedder: Embedder) -> None:
    index = Index(model=embedder)
    index.add([Document(id="a", text=TEXT), Document(id="b", text="The harbour reopened.")])
    plain = index.search(QUESTION + " this week?", k=2, recency=False)
    auto = index.search(QUESTION + " this week?", k=2)
    assert [(h.doc_id, h.score) for h in auto] == [(h.doc_id, h.score) for h in plain]


@pytest.mark.parametrize("mode", ["dense", "lexical"])
def test_recency_needs_hybrid_mode(recalls: Index, mode: str) -> None:
    with pytest.raises(InputError, match="recency needs mode 'hybrid'"):
        recalls.search(QUESTION, mode=mode, recency=True)  # type: ignore[arg-type]
    # Automatic recency leaves a single-signal mode alone.
    assert recalls.search(QUESTION + " this week?", mode=mode)


def test_ask_uses_the_same_prior(recalls: Index) -> None:
    # From the one best passage: this week's with the prior, last year's without.
    answer = recalls.ask(QUESTION + " this week?", k=1)
    assert answer.citations and {c.doc_id for c in answer.citations} == {"new"}
    answer = recalls.ask(QUESTION + " this week?", k=1, recency=False)
    assert answer.citations and {c.doc_id for c in answer.citations} == {"old"}
