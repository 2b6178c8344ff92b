"""Passages: exact offsets as a property, whole sentences, token budgets, overlap."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from semsearch.embeddings.embedder import Embedder
from semsearch.passages import ChunkSettings, WhitespaceTokenizer, chunk_text, split_sentences
from semsearch.types import Passage

SENTENCES = [
    "Putin and Sharif exchanged letters.",
    "Mr. Khan blamed the vote on a plot!",
    "Was it—really—about Moscow?",
    "Ünïcödé «quotes» and “curly” ones… 😀 too.",
    "Three Afghans died in Herat, the official said.",
    "数字 1.8 million returned.",
    "a",
]
# Odd whitespace between sentences: tabs, CRLF, blank lines, non-breaking and wide spaces.
GAPS = [" ", "  ", "\n", "\n\n", "\r\n", "\t", "\u00a0", " \n \n ", "\u3000", ""]

texts = st.lists(
    st.tuples(
        st.one_of(st.sampled_from(SENTENCES), st.text(min_size=0, max_size=40)),
        st.sampled_from(GAPS),
    ),
    max_size=30,
).map(lambda parts: "".join(s + g for s, g in parts))


def _check(text: str, passages: list[Passage]) -> None:
    covered = [False] * len(text)
    previous_start = -1
    for ordinal, p in enumerate(passages):
        assert p.ordinal == ordinal
        assert text[p.start : p.end] == p.text
        assert p.text == p.text.strip() and p.text
        assert p.start > previous_start, "passages go forward"
        previous_start = p.start
        for i in range(p.start, p.end):
            covered[i] = True
    # No non-space character of the document is left out of every passage.
    missing = [c for c, hit in zip(text, covered, strict=True) if not hit and not c.isspace()]
    assert not missing


@settings(max_examples=300, deadline=None)
@given(text=texts, budget=st.integers(1, 40), overlap=st.integers(0, 4))
def test_offsets_exact_whitespace_tokens(text: str, budget: int, overlap: int) -> None:
    tok = WhitespaceTokenizer()
    passages = chunk_text("d", text, tokenizer=tok, settings=ChunkSettings(budget, overlap))
    _check(text, passages)
    for p in passages:
        assert len(tok.token_spans([p.text])[0]) <= budget


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=texts, budget=st.integers(1, 60), overlap=st.integers(0, 3))
def test_offsets_exact_model_tokens(
    embedder: Embedder, text: str, budget: int, overlap: int
) -> None:
    tok = embedder.tokenizer
    passages = chunk_text("d", text, tokenizer=tok, settings=ChunkSettings(budget, overlap))
    _check(text, passages)
    for p in passages:
        # Packing counts tokens per sentence; WordPiece splits at spaces, so sums are exact
        # up to a token where a cut lands inside a word.
        assert len(tok.token_spans([p.text])[0]) <= budget + 1


def test_sentences_are_whole_and_ordered() -> None:
    text = "Mr. Smith went to Washington. He said hello.\n\nKABUL: Three died. “Go,” he said."
    spans = split_sentences(text)
    assert [text[a:b] for a, b in spans] == [
        "Mr. Smith went to Washington.",
        "He said hello.",
        "KABUL: Three died.",
        "“Go,” he said.",
    ]


def test_hard_wrapped_lines_stay_one_sentence() -> None:
    text = "This sentence was wrapped\nat seventy columns by an editor.\nA second one."
    spans = split_sentences(text)
    assert [text[a:b] for a, b in spans] == [
        "This sentence was wrapped\nat seventy columns by an editor.",
        "A second one.",
    ]


def test_long_sentence_cut_at_token_boundaries(embedder: Embedder) -> None:
    words = " ".join(f"word{i}" for i in range(400)) + "."
    passages = chunk_text(
        "d", words, tokenizer=embedder.tokenizer, settings=ChunkSettings(max_tokens=50)
    )
    assert len(passages) > 1
    for p in passages:
        assert words[p.start : p.end] == p.text
        assert len(embedder.tokenizer.token_spans([p.text])[0]) <= 50
        # Cuts land where a word starts, never inside "word123" (three WordPiece tokens).
        assert p.start == 0 or words[p.start - 1] == " "


def test_overlap_repeats_sentences_and_always_advances() -> None:
    text = " ".join(f"Sentence number {i} is here." for i in range(20))
    tok = WhitespaceTokenizer()
    plain = chunk_text("d", text, tokenizer=tok, settings=ChunkSettings(20, 0))
    over = chunk_text("d", text, tokenizer=tok, settings=ChunkSettings(20, 2))
    assert len(over) > len(plain)
    for a, b in itertools.pairwise(over):
        assert b.start < a.end, "consecutive passages share the overlap"
        assert b.end > a.end, "every passage brings new text"


def test_empty_and_blank_text_give_no_passages() -> None:
    tok = WhitespaceTokenizer()
    assert chunk_text("d", "", tokenizer=tok, settings=ChunkSettings(10)) == []
    assert chunk_text("d", " \n\t ", tokenizer=tok, settings=ChunkSettings(10)) == []


@pytest.mark.parametrize("bad", [{"max_tokens": 0}, {"max_tokens": 10, "overlap": -1}])
def test_settings_refuse_nonsense(bad: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        ChunkSettings(**bad)
