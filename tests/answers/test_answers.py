"""Index.ask and the default answerer: cited quotes with exact offsets, numbering, abstention."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semsearch import Answer, Citation, Document, Embedder, Filters, Hit, Index, InputError
from semsearch.answers.compose import NO_ANSWER, Candidate, compose, sentence_candidates
from semsearch.passages import ChunkSettings, WhitespaceTokenizer, chunk_text

MARKER = re.compile(r"\[(\d+)\]")

DOCS = [
    Document.create(
        "The central bank raised its main interest rate by half a percentage point on Tuesday, "
        "to 4.5%. Governor Ana Torres said inflation, at 9%, was far too high. Markets had "
        "expected a smaller rise. Mortgage lenders said they would pass the increase on.",
        title="Central bank raises rates",
        source="wire/economy.txt",
        date="2022-05-03",
    ),
    Document.create(
        "Heavy snow closed the mountain passes around Herat on Monday. Three shepherds were found "
        "dead near the village of Obe. Rescue teams used tractors to reach stranded families.",
        title="Snow in Herat",
        source="wire/weather.txt",
        date="2025-12-01",
    ),
    Document.create(
        "The football club signed the Brazilian striker Joao Silva for a record fee of 80 "
        "million euros. Fans gathered outside the stadium to celebrate. He will wear number nine.",
        title="Record transfer",
        source="sport/football.txt",
        date="2023-08-15",
    ),
    Document.create(
        "Scientists found water ice near the lunar south pole. A rover will drill into the crater "
        "floor next year. The ice could one day supply drinking water and rocket fuel.",
        title="Ice on the Moon",
        source="science/moon.txt",
        date="2024-02-10",
    ),
]


@pytest.fixture(scope="module")
def index(embedder: Embedder) -> Index:
    idx = Index(model=embedder)
    idx.add(DOCS)
    return idx


def check_answer(answer: Answer, texts: dict[str, str]) -> None:
    """The invariants every answer keeps, whatever the answerer."""
    numbers = [int(n) for n in MARKER.findall(answer.text)]
    assert numbers == [c.n for c in answer.citations] == list(range(1, len(numbers) + 1))
    by_id = {h.passage_id: h for h in answer.passages}
    for c in answer.citations:
        assert texts[c.doc_id][c.start : c.end] == c.quote
        hit = by_id[c.passage_id]
        assert hit.doc_id == c.doc_id and hit.start <= c.start < c.end <= hit.end
        assert (c.title, c.date, c.source, c.url) == (hit.title, hit.date, hit.source, hit.url)
    assert answer.abstained == (answer.text == NO_ANSWER)
    assert not (answer.abstained and answer.citations)
    assert 0.0 <= answer.confidence <= 1.0


def texts_of(index: Index) -> dict[str, str]:
    return {d.id: d.text for d in index.documents()}


def test_answer_quotes_the_right_sentence(index: Index) -> None:
    answer = index.ask("By how much did the central bank raise interest rates?")
    check_answer(answer, texts_of(index))
    assert not answer.abstained
    first = answer.citations[0]
    assert first.title == "Central bank raises rates"
    assert "half a percentage point" in first.quote
    assert answer.text.startswith(" ".join(first.quote.split()) + " [1]")
    assert 1 <= len(answer.citations) <= 3
    assert answer.passages[0].doc_id == first.doc_id


def test_abstains_when_the_articles_do_not_answer(index: Index) -> None:
    answer = index.ask("What is the recipe for lemon meringue pie?")
    check_answer(answer, texts_of(index))
    assert answer.abstained
    assert answer.text == NO_ANSWER and answer.citations == ()
    assert answer.passages  # the closest passages are still there to look at


def test_to_dict_shape(index: Index) -> None:
    answer = index.ask("Who did the football club sign?")
    data = json.loads(json.dumps(answer.to_dict()))
    assert list(data) == ["question", "answer", "abstained", "confidence", "citations", "passages"]
    assert data["citations"] and list(data["citations"][0]) == [
        "n",
        "doc_id",
        "title",
        "date",
        "source",
        "url",
        "passage_id",
        "start",
        "end",
        "quote",
    ]
    assert data["passages"][0] == answer.passages[0].to_dict()


def test_filters_limit_what_is_cited(index: Index) -> None:
    moon = next(d.id for d in DOCS if d.title == "Ice on the Moon")
    answer = index.ask("Who did the football club sign?", filters=Filters(doc_ids=[moon]))
    assert {h.doc_id for h in answer.passages} == {moon}
    assert all(c.doc_id == moon for c in answer.citations)
    answer = index.ask("Who did the football club sign?", filters=Filters(date_from="2025-01-01"))
    assert {h.title for h in answer.passages} == {"Snow in Herat"}


def test_ask_many_equals_ask(index: Index) -> None:
    questions = ["Where did snow close mountain passes?", "What did scientists find?"]
    # Batched encoding pads inputs together, which moves scores in the last float digits only.
    for many, one in zip(index.ask_many(questions), map(index.ask, questions), strict=True):
        assert (many.text, many.citations, many.abstained) == (
            one.text,
            one.citations,
            one.abstained,
        )
        assert many.confidence == pytest.approx(one.confidence, abs=1e-4)


def test_empty_question_and_empty_index(index: Index, embedder: Embedder) -> None:
    with pytest.raises(InputError, match="empty query"):
        index.ask("  ")
    answer = Index(model=embedder).ask("Anything?")
    assert answer.abstained and answer.passages == () and answer.confidence == 0.0


def test_custom_answerer_is_used(index: Index) -> None:
    class FirstSentence:
        def answer_many(
            self,
            index: Index,
            questions: Sequence[str],
            hits: Sequence[Sequence[Hit]],
            *,
            query_vectors: object = None,
        ) -> list[Answer]:
            return [
                compose(q, hs, sentence_candidates(hs)[:1], confidence=1.0)
                for q, hs in zip(questions, hits, strict=True)
            ]

    answer = index.ask("What did scientists find?", answerer=FirstSentence(), k=2)
    check_answer(answer, texts_of(index))
    assert len(answer.citations) == 1 and len(answer.passages) == 2


def test_each_question_is_embedded_once(
    index: Index, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The search's query vector feeds the sentence scores: no second encode of the question."""
    questions = ["What did scientists find?", "Who signed the striker?"]
    encoded: list[str] = []
    encode, encode_query = Embedder.encode, Embedder.encode_query

    def spy_encode(self: Embedder, texts: Sequence[str], **kwargs: object) -> object:
        encoded.extend(texts)
        return encode(self, texts, **kwargs)  # type: ignore[arg-type]

    def spy_encode_query(self: Embedder, text: str) -> object:
        encoded.append(text)
        return encode_query(self, text)

    monkeypatch.setattr(Embedder, "encode", spy_encode)
    monkeypatch.setattr(Embedder, "encode_query", spy_encode_query)
    for batch in ([questions[0]], questions):
        encoded.clear()
        answers = index.ask_many(batch, k=2)
        assert all(not a.abstained for a in answers)
        assert [t for t in encoded if t in questions] == batch


@settings(max_examples=15, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=60))
def test_any_question_keeps_the_invariants(index: Index, question: str) -> None:
    if not question.strip():
        return
    check_answer(index.ask(question), texts_of(index))


# -- compose, model-free: random texts, including ones that contain "[1]" themselves -----------

_WORDS = st.sampled_from(["rates", "snow", "[1]", "[[2]]", "fee", "ice", "é", "9%", "x" * 30])
_SENTENCE = st.lists(_WORDS, min_size=1, max_size=8).map(lambda ws: " ".join(ws) + ".")
_TEXT = st.lists(_SENTENCE, min_size=1, max_size=12).map(lambda ss: "  ".join(ss))


def _hits(doc: Document, max_tokens: int) -> list[Hit]:
    passages = chunk_text(
        doc.id, doc.text, tokenizer=WhitespaceTokenizer(), settings=ChunkSettings(max_tokens)
    )
    return [
        Hit(i + 1, 1.0, i, doc.id, p.ordinal, p.start, p.end, p.text, doc.title, None, "", None, {})
        for i, p in enumerate(passages)
    ]


@settings(max_examples=200, deadline=None)
@given(
    _TEXT,
    st.integers(min_value=1, max_value=20),
    st.lists(st.floats(0, 1), min_size=40, max_size=40),
)
def test_compose_keeps_the_invariants(text: str, max_tokens: int, scores: list[float]) -> None:
    doc = Document.create(text, title="t")
    hits = _hits(doc, max_tokens)
    cands = [
        Candidate(c.hit, c.start, c.end, s)
        for c, s in zip(sentence_candidates(hits), scores, strict=False)
    ]
    answer = compose("q?", hits, sorted(cands, key=lambda c: -c.score), confidence=0.5)
    check_answer(answer, {doc.id: doc.text})
    assert 1 <= len(answer.citations) <= 3
    for a in answer.citations:  # no two citations quote overlapping text
        for b in answer.citations:
            assert a is b or a.end <= b.start or b.end <= a.start


def test_citation_is_frozen() -> None:
    c = Citation(1, "d", "t", None, "s", None, 1, 0, 1, "x")
    with pytest.raises(AttributeError):
        c.n = 2  # type: ignore[misc]


def test_rare_question_words_weigh_more_than_common_ones() -> None:
    from semsearch.answers.sentence import _weighted_overlap

    question = {"harbour", "reopened", "valmora"}
    sentences = [
        {"harbour", "reopened", "monday"},  # the common words
        {"harbour", "valmora", "wall"},  # the rare name
        {"harbour", "reopened", "ships"},
        {"weather", "cold"},
    ]
    coverage = _weighted_overlap(question, sentences)
    assert coverage[1] > coverage[0] == coverage[2] > coverage[3] == 0.0
    assert all(0.0 <= c <= 1.0 for c in coverage)
    assert _weighted_overlap(set(), sentences) == [0.0] * 4
    assert _weighted_overlap(question, []) == []
