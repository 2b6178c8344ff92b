"""Sentence offsets from blingfire's C function equal those of blingfire's own Python wrapper."""

from __future__ import annotations

import ctypes
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import blingfire
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semsearch import passages
from semsearch.passages import _blingfire_sentences, _lines, split_sentences

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data"

# Sentence-ish text in many scripts: punctuation and spaces so blingfire finds several sentences,
# multi-byte characters (accents, combining marks, CJK, emoji, ZWJ sequences) so byte and character
# offsets differ, and newlines, tabs and odd spaces so lines split in every way _lines can.
PIECES = [
    "Mr. Smith went to Washington.",
    "Ünïcödé «quotes» and “curly” ones… too!",
    "e\u0301 a\u0300\u0316 combining.",
    "数字 1.8 million returned。",
    "他说：“好。”",
    "😀 👩‍👩‍👧 🇫🇷 emoji?",
    "Dr. Who? No.",
    "\u200b\ufeff",
    "(a) b.",
    "U.S. troops left.",
]
ALPHABET = st.characters(codec="utf-8", categories=["L", "M", "N", "P", "S", "Z", "Cc", "Cf", "Co"])
texts = st.lists(
    st.one_of(
        st.sampled_from(PIECES),
        st.text(alphabet=ALPHABET, max_size=30),
        st.sampled_from([" ", "  ", "\n", "\n\n", "\r\n", "\t", "\u00a0", "\u3000", ". ", "! "]),
    ),
    max_size=40,
).map("".join)


def _reference(line: str) -> list[tuple[int, int]]:
    return list(blingfire.text_to_sentences_and_offsets(line)[1])


def _assert_same(text: str) -> None:
    for a, b in _lines(text):
        line = text[a:b]
        assert _blingfire_sentences(line) == _reference(line), line


def _reference_split(text: str) -> list[tuple[int, int]]:
    """split_sentences as it was, with offsets from blingfire's wrapper."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(passages, "_blingfire_sentences", _reference)
        return split_sentences(text)


@settings(max_examples=800, deadline=None)
@given(text=texts)
def test_same_offsets_as_wrapper_for_every_line(text: str) -> None:
    _assert_same(text)
    # Whole texts too, though split_sentences never passes newlines across a blank line.
    if text:
        assert _blingfire_sentences(text) == _reference(text)


@settings(max_examples=300, deadline=None)
@given(text=texts)
def test_same_sentences_as_with_wrapper(text: str) -> None:
    assert split_sentences(text) == _reference_split(text)
    for a, b in split_sentences(text):
        assert text[a:b] == text[a:b].strip() and text[a:b]


def _sample_texts() -> Iterator[str]:
    for path in sorted((REPO / "samples").rglob("*")):
        if path.is_file() and path.suffix in {".txt", ".json", ".jsonl", ".md", ".html"}:
            yield path.read_text(encoding="utf-8", errors="replace")


def _scifact(limit: int) -> Iterator[str]:
    path = DATA / "beir-scifact" / "corpus.jsonl"
    if not path.is_file():
        pytest.skip(f"{path} not readable")
    with path.open(encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i >= limit:
                break
            record = json.loads(line)
            yield record["title"]
            yield record["text"]


def _squad() -> Iterator[str]:
    path = DATA / "squad-v1.1-dev" / "dev-v1.1.json"
    if not path.is_file():
        pytest.skip(f"{path} not readable")
    for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
        for paragraph in article["paragraphs"]:
            yield paragraph["context"]


@pytest.mark.parametrize(
    "source", [_sample_texts, lambda: _scifact(2000), _squad], ids=["samples", "scifact", "squad"]
)
def test_same_offsets_on_real_text(source: Any) -> None:
    count = 0
    for text in source():
        _assert_same(text)
        count += 1
    assert count > 0


# The wrapper's edge cases, driven by a stand-in C function that writes chosen offsets: offsets
# out of order, inside a multi-byte character, past the end, a failing call, too many newlines.
@settings(max_examples=500, deadline=None)
@given(
    line=st.text(alphabet=ALPHABET, min_size=1, max_size=12) | st.sampled_from(PIECES),
    data=st.data(),
    shuffle=st.booleans(),
    extra_newlines=st.integers(-1, 2),
    nul_at=st.none() | st.integers(0, 8),
    status=st.sampled_from(["ok", "failed", "overflow"]),
)
def test_same_result_for_any_c_output(
    line: str,
    data: st.DataObject,
    shuffle: bool,
    extra_newlines: int,
    nul_at: int | None,
    status: str,
) -> None:
    n_bytes = len(line.encode("utf-8"))
    bounds = data.draw(st.lists(st.integers(-1, n_bytes + 1), max_size=10))
    # Sorted bounds give well-formed sentences (end inclusive, so the next start is end + 1),
    # unsorted ones give offsets out of order.
    if not shuffle:
        bounds = sorted(bounds)
    pairs = [(a, b - 1) for a, b in zip(bounds[::2], bounds[1::2], strict=False)]

    def fake(line_bytes: Any, size: Any, out: Any, starts: Any, ends: Any, capacity: Any) -> int:
        # Like the C function, writes within the capacity it is given: the buffers passed may be
        # larger (semsearch reuses them, zeroed, from line to line).
        buffer, start_array, end_array = out._obj, starts._obj, ends._obj
        for i, (a, b) in enumerate(pairs[: capacity.value]):
            start_array[i], end_array[i] = a, b
        text = b"\n".join(b"s" for _ in range(max(1, len(pairs) + extra_newlines)))
        if nul_at is not None:  # the wrapper counts sentences only up to the first NUL byte
            text = text[:nul_at] + b"\0" + text[nul_at:]
        text = text[: max(0, capacity.value - 1)]
        ctypes.memmove(buffer, text, len(text))
        if status == "failed":
            return -1
        return capacity.value + 1 if status == "overflow" else len(text)

    def run(function: Any) -> tuple[str, object]:
        try:
            return "ok", function(line)
        except Exception as error:  # the wrapper's own assertion, compared by type
            return "error", type(error)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(blingfire.blingfire, "TextToSentencesWithOffsets", fake)
        mp.setattr(passages, "_TEXT_TO_SENTENCES_WITH_OFFSETS", fake)
        assert run(_blingfire_sentences) == run(_reference)


@settings(max_examples=300, deadline=None)
@given(text=texts)
def test_real_output_never_needs_the_wrapper(text: str) -> None:
    # The wrapper is only a stand-in for outputs it would reject; real lines take the fast path.
    def refuse(line: str) -> object:
        raise AssertionError(f"fell back to the wrapper for {line!r}")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(blingfire, "text_to_sentences_and_offsets", refuse)
        for a, b in _lines(text):
            _blingfire_sentences(text[a:b])
