"""Document text -> passages of whole sentences within a token budget, with exact offsets."""

from __future__ import annotations

import ctypes
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import blingfire

from .types import Passage, Span

_Ints = ctypes.Array[ctypes.c_int32]


class Tokenizer(Protocol):
    """What chunking needs of a tokenizer: the character span of every token of each text.

    A tokenizer may also have ``encodings(texts)``, giving each text's ``TokenSpans``:
    chunking then makes the spans of only the texts it cuts (the model's tokenizer does).
    """

    def token_spans(self, texts: Sequence[str]) -> list[list[Span]]: ...


class TokenSpans(Protocol):
    """The tokens of one text: their number, and their character spans when asked for."""

    def __len__(self) -> int: ...

    @property
    def offsets(self) -> list[Span]: ...


class WhitespaceTokenizer:
    """Tokens are runs of non-space characters: a model-free tokenizer for tests and tools."""

    _TOKEN = re.compile(r"\S+")

    def token_spans(self, texts: Sequence[str]) -> list[list[Span]]:
        return [[m.span() for m in self._TOKEN.finditer(t)] for t in texts]


@dataclass(frozen=True)
class ChunkSettings:
    """How documents are cut into passages; stored in the manifest of every saved index."""

    max_tokens: int
    overlap: int = 0
    """Number of sentences each passage repeats from the end of the previous one."""

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {self.max_tokens}")
        if self.overlap < 0:
            raise ValueError(f"overlap must be 0 or more, got {self.overlap}")


# Blank lines always end a sentence. A single newline ends one only when the line before closes a
# sentence (or the next line is a bullet): hard-wrapped prose must not be cut mid-sentence, while
# news bodies that put one paragraph per line must not glue paragraphs together.
_BLOCK_BREAK = re.compile(r"\n[ \t\r\f\v]*\n\s*")
_LINE_END_CLOSES = re.compile(r"""[.!?:;…"'”’»)\]]\s*$""")
_BULLET = re.compile(r"\s*[•\-*–—·▪●]\s")


def _trim(text: str, start: int, end: int) -> Span | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


def _lines(text: str) -> list[Span]:
    """Spans of text that no sentence may cross."""
    spans: list[Span] = []
    block_start = 0
    for m in _BLOCK_BREAK.finditer(text):
        spans.extend(_split_block(text, block_start, m.start()))
        block_start = m.end()
    spans.extend(_split_block(text, block_start, len(text)))
    return spans


def _split_block(text: str, start: int, end: int) -> list[Span]:
    spans: list[Span] = []
    piece_start = start
    pos = text.find("\n", start, end)
    while pos != -1:
        before = text[piece_start:pos]
        if _LINE_END_CLOSES.search(before) or _BULLET.match(text, pos + 1, end):
            spans.append((piece_start, pos))
            piece_start = pos + 1
        pos = text.find("\n", pos + 1, end)
    spans.append((piece_start, end))
    return [s for s in (_trim(text, a, b) for a, b in spans) if s is not None]


# blingfire's own wrapper maps UTF-8 byte offsets to character offsets with a Python loop over
# every byte; the C function is called directly and the offsets mapped with numpy.
_TEXT_TO_SENTENCES_WITH_OFFSETS = blingfire.blingfire.TextToSentencesWithOffsets


# Making zeroed ctypes buffers costs as much as the C call itself: each thread keeps one set for
# lines up to this size and zeroes the part a call uses (larger lines get their own).
_REUSED_SIZE = 1 << 16
_held = threading.local()


def _buffers(size: int) -> tuple[ctypes.Array[ctypes.c_char], _Ints, _Ints]:
    """Zeroed output, start and end buffers of at least ``size`` elements."""
    if size > _REUSED_SIZE:
        return (
            ctypes.create_string_buffer(size),
            (ctypes.c_int32 * size)(),
            (ctypes.c_int32 * size)(),
        )
    held: tuple[ctypes.Array[ctypes.c_char], _Ints, _Ints] | None = getattr(_held, "buffers", None)
    if held is None:
        held = (
            ctypes.create_string_buffer(_REUSED_SIZE),
            (ctypes.c_int32 * _REUSED_SIZE)(),
            (ctypes.c_int32 * _REUSED_SIZE)(),
        )
        _held.buffers = held
        return held
    out, starts, ends = held
    ctypes.memset(out, 0, size)
    ctypes.memset(starts, 0, 4 * size)
    ctypes.memset(ends, 0, 4 * size)
    return held


def _blingfire_sentences(line: str) -> list[Span]:
    """``blingfire.text_to_sentences_and_offsets(line)[1]``, exactly, but without its byte loop."""
    data = line.encode("utf-8")
    size = len(data) * 2  # the wrapper's buffer sizes, so the C function behaves identically
    out, starts, ends = _buffers(size)
    written = _TEXT_TO_SENTENCES_WITH_OFFSETS(
        ctypes.c_char_p(data),
        ctypes.c_int(len(data)),
        ctypes.byref(out),
        ctypes.byref(starts),
        ctypes.byref(ends),
        ctypes.c_int(size),
    )
    if written == -1 or written > size:
        return []
    # What ``out.value`` gives for a buffer of exactly ``size`` bytes.
    text = ctypes.string_at(out, size).partition(b"\0")[0]
    count = text.count(b"\n") + 1
    # Ends are inclusive, so an end maps to the character that starts at the byte after it. The
    # wrapper maps offsets in order while each lands on a character start at or after the previous
    # one; the first that does not stops the mapping, and one missing final end becomes len(line).
    ascii_only = len(data) == len(line)
    mapped: list[int] = []
    byte_pos = char_pos = 0
    for start, end in zip(starts[:count], ends[:count], strict=True):
        for target in (start, end + 1):
            if not byte_pos <= target < len(data) or (data[target] & 0xC0) == 0x80:
                break
            if not ascii_only:
                char_pos += len(data[byte_pos:target].decode("utf-8"))
            byte_pos = target
            mapped.append(target if ascii_only else char_pos)
        else:
            continue
        break
    if len(mapped) == 2 * count - 1:
        mapped.append(len(line))
    if len(mapped) != 2 * count:
        # The wrapper fails its own assertion here; let it raise exactly what it raises.
        return list(blingfire.text_to_sentences_and_offsets(line)[1])
    return list(zip(mapped[::2], mapped[1::2], strict=True))


def split_sentences(text: str) -> list[Span]:
    """Character spans of the sentences of ``text``, in order, trimmed of surrounding space."""
    sentences: list[Span] = []
    for line_start, line_end in _lines(text):
        line = text[line_start:line_end]
        offsets = _blingfire_sentences(line)
        cursor = 0
        # blingfire's offsets are trusted only while they stay in order and inside the line; the
        # remainder falls back to one sentence, so no character is ever lost.
        for a, b in offsets:
            if a < cursor or b > len(line) or b <= a:
                break
            if a > cursor:
                gap = _trim(line, cursor, a)
                if gap is not None:
                    sentences.append((line_start + gap[0], line_start + gap[1]))
            span = _trim(line, a, b)
            if span is not None:
                sentences.append((line_start + span[0], line_start + span[1]))
            cursor = b
        rest = _trim(line, cursor, len(line))
        if rest is not None:
            sentences.append((line_start + rest[0], line_start + rest[1]))
    return sentences


class _Spans:
    """Spans already made, seen as ``TokenSpans``."""

    __slots__ = ("offsets",)

    def __init__(self, offsets: list[Span]) -> None:
        self.offsets = offsets

    def __len__(self) -> int:
        return len(self.offsets)


def tokenize(tokenizer: Tokenizer, texts: Sequence[str]) -> Sequence[TokenSpans]:
    """The tokens of each text, from one call of the tokenizer. ``tokenizer.encodings`` is used
    where there is one, since making every token's span a Python pair is costly and chunking
    needs the spans of few sentences (those over budget) and few titles."""
    if not texts:
        return []
    encodings: Callable[[Sequence[str]], Sequence[TokenSpans]] | None = getattr(
        tokenizer, "encodings", None
    )
    if encodings is not None:
        return encodings(texts)
    return [_Spans(spans) for spans in tokenizer.token_spans(texts)]


def _units(
    text: str, sentences: list[Span], token_lists: Sequence[TokenSpans], max_tokens: int
) -> list[tuple[int, int, int]]:
    """Sentences as (start, end, tokens), with any sentence over budget cut at token boundaries."""
    units: list[tuple[int, int, int]] = []
    for (a, b), tokenized in zip(sentences, token_lists, strict=True):
        if len(tokenized) <= max_tokens:
            units.append((a, b, max(len(tokenized), 1)))
            continue
        tokens = tokenized.offsets
        i = 0
        while i < len(tokens):
            cut = min(i + max_tokens, len(tokens))
            if cut < len(tokens):
                # Prefer cutting where a word starts, so no word is split between passages;
                # only a single word longer than the budget is cut inside.
                for j in range(cut, i, -1):
                    if tokens[j][0] > tokens[j - 1][1]:
                        cut = j
                        break
            # A piece runs to the start of the next piece's first token, so text between tokens
            # (spaces, characters the tokenizer drops) stays covered.
            piece_start = a if i == 0 else a + tokens[i][0]
            piece_end = b if cut >= len(tokens) else a + tokens[cut][0]
            span = _trim(text, piece_start, piece_end)
            if span is not None:
                units.append((span[0], span[1], cut - i))
            i = cut
    return units


def chunk_text(
    doc_id: str,
    text: str,
    *,
    tokenizer: Tokenizer,
    settings: ChunkSettings,
    max_tokens: int | None = None,
) -> list[Passage]:
    """Pack the sentences of ``text`` into passages of at most ``max_tokens`` tokens.

    ``max_tokens`` overrides ``settings.max_tokens`` for one document (to leave room for its title).
    """
    return chunk_texts([(doc_id, text, max_tokens)], tokenizer=tokenizer, settings=settings)[0]


def chunk_texts(
    items: Sequence[tuple[str, str, int | None]], *, tokenizer: Tokenizer, settings: ChunkSettings
) -> list[list[Passage]]:
    """``chunk_text`` of many ``(doc_id, text, max_tokens)`` items, with the same results.

    The sentences of every text are tokenized in one call: a call has a fixed cost, and the
    model's tokenizer spreads a large one over the cores.
    """
    sentence_lists = [split_sentences(text) for _, text, _ in items]
    pieces = [
        text[a:b]
        for (_, text, _), spans in zip(items, sentence_lists, strict=True)
        for a, b in spans
    ]
    tokenized = tokenize(tokenizer, pieces)
    if len(tokenized) != len(pieces):
        raise ValueError(f"tokenizer gave {len(tokenized)} results for {len(pieces)} texts")
    results: list[list[Passage]] = []
    first = 0
    for (doc_id, text, max_tokens), sentences in zip(items, sentence_lists, strict=True):
        budget = max(1, max_tokens if max_tokens is not None else settings.max_tokens)
        units = _units(text, sentences, tokenized[first : first + len(sentences)], budget)
        first += len(sentences)
        results.append(_pack(doc_id, text, units, budget, settings))
    return results


def _pack(
    doc_id: str, text: str, units: list[tuple[int, int, int]], budget: int, settings: ChunkSettings
) -> list[Passage]:
    """Consecutive units as passages of at most ``budget`` tokens, ``settings.overlap`` apart."""
    passages: list[Passage] = []
    i = 0
    while i < len(units):
        j = i
        used = 0
        while j < len(units) and (j == i or used + units[j][2] <= budget):
            used += units[j][2]
            j += 1
        start, end = units[i][0], units[j - 1][1]
        passages.append(Passage(doc_id, len(passages), start, end, text[start:end]))
        if j >= len(units):
            break
        # Step back `overlap` sentences, always moving forward, and shed overlap that would leave
        # no room for the next new sentence (a passage must never repeat only old text).
        i = max(i + 1, j - settings.overlap)
        while i < j and sum(u[2] for u in units[i:j]) + units[j][2] > budget:
            i += 1
    return passages
