"""Files -> Document: plain text and markdown, scraped news pages, HTML, JSON Lines, directories."""

from __future__ import annotations

import codecs
import json
import os
import re
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import charset_normalizer

from ..errors import InputError, SemsearchWarning, SkippedInputWarning
from ..types import Document
from .dates import normalize_date, unreadable_date
from .html import html_document
from .news import parse_news_page
from .paths import (
    HTML_SUFFIXES,
    JSONL_SUFFIXES,
    SUPPORTED_SUFFIXES,
    named_path_error,
    open_input,
    walk,
)

# Whole-file formats are held in memory (and trafilatura builds a tree several times the size),
# so one stray multi-gigabyte dump must not take the process down. JSONL is streamed instead and
# the limit bounds a single line.
DEFAULT_MAX_FILE_BYTES = 20 * 1024 * 1024

# JSONL field names, first match wins: "_id" is BEIR's corpus format, "body"/"content" and
# "published"/"publish_date" are what news dumps (RealTime QA among them) call text and date.
ID_KEYS = ("id", "_id")
TEXT_KEYS = ("text", "body", "content")
DATE_KEYS = ("date", "published", "publish_date")

# UTF-16/32 text legitimately holds NUL bytes; only its byte-order mark tells it from binary.
WIDE_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)

# charset_normalizer often ranks cp1250 or cp775 level with cp1252 on English text (their chaos
# scores tie). Windows-1252 is what undeclared Western text on the web is (the WHATWG Encoding
# standard reads even "latin1" labels as it), so among equally clean guesses it is preferred.
PREFERRED_LEGACY_ENCODING = "cp1252"

# A first line counts as the title when it is a markdown heading, or a short line set apart by a
# blank line that does not end like a sentence; anything else is the start of the text.
MARKDOWN_HEADING_RE = re.compile(r"#{1,6}\s+(?P<title>.+?)\s*#*")
SETEXT_UNDERLINE_RE = re.compile(r"(?:=+|-+)\s*")
MAX_TITLE_CHARS = 150
SENTENCE_END = (".", ",", ";", ":")


def read_articles(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    strict: bool = False,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> Iterator[Document]:
    """Stream the documents held in files and directories, lazily and in a stable order.

    Directories are walked recursively (hidden entries skipped); ``include``/``exclude`` are
    fnmatch patterns on the path relative to the directory (default: every supported type). A
    walked file that cannot be read is skipped with a SkippedInputWarning unless ``strict``;
    a file named explicitly always raises InputError. A walked FIFO, socket or device is always
    skipped with a SkippedInputWarning, and no file is ever waited on: a pipe swapped in for a
    file after the walk listed it is refused, not read. A JSONL file is streamed, so when its
    line N is bad the documents of lines before N have already been yielded (Index.add then
    rolls back the whole call); in a non-strict directory walk such a file is checked first and
    skipped whole.
    """
    if max_file_bytes < 1:
        raise ValueError(f"max_file_bytes must be positive, got {max_file_bytes}")
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    for given in paths:
        path = os.fspath(given)
        if os.path.isdir(path):
            for file in walk(path, include=include, exclude=exclude):
                try:
                    if not strict and Path(file).suffix.lower() in JSONL_SUFFIXES:
                        # A skipped file is skipped whole: check every line before yielding
                        # any, so a bad line N never leaves lines 1..N-1 half-ingested.
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            for _ in _read_file(file, max_file_bytes=max_file_bytes):
                                pass
                    yield from _read_file(file, max_file_bytes=max_file_bytes)
                except InputError as err:
                    if strict:
                        raise
                    warnings.warn(SkippedInputWarning(str(err)), stacklevel=2)
        elif os.path.isfile(path):
            yield from _read_file(path, max_file_bytes=max_file_bytes)
        else:
            raise named_path_error(path)


def list_inputs(
    paths: Iterable[str | os.PathLike[str]],
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> list[tuple[str, bool]]:
    """The files ``read_articles`` would read, in its order, each with whether it was named
    explicitly (an explicit file that cannot be read is an error even when not strict)."""
    out: list[tuple[str, bool]] = []
    for given in paths:
        path = os.fspath(given)
        if os.path.isdir(path):
            out.extend((file, False) for file in walk(path, include=include, exclude=exclude))
        elif os.path.isfile(path):
            out.append((path, True))
        else:
            raise named_path_error(path)
    return out


def read_text(
    text: str, *, source: str = "pasted", title: str | None = None, mtime: float | None = None
) -> list[Document]:
    """The documents in pasted text: its articles if it is a scraped news page, else one document.

    ``title`` names the plain document (by default its first line when that is a heading); it
    is not used when the text turns out to be a news page, whose articles carry their own.
    """
    text = _normalize_newlines(text.lstrip("\ufeff")).strip()
    if not text:
        raise InputError(source, "empty text")
    documents = parse_news_page(text, source=source, mtime=mtime)
    if documents:
        return documents
    body = text
    if title is None:
        heading, body = _split_title(text)
        title = heading or ""
    return [Document.create(body, title=title, source=source)]


def _read_file(path: str, *, max_file_bytes: int) -> Iterator[Document]:
    suffix = Path(path).suffix.lower()
    if suffix in JSONL_SUFFIXES:
        yield from _jsonl_documents(path, max_line_bytes=max_file_bytes)
        return
    if suffix not in SUPPORTED_SUFFIXES:
        supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise InputError(path, f"unsupported file type {suffix or '(none)'!r}; use {supported}")
    handle, status = open_input(path)
    try:
        with handle:
            if status.st_size > max_file_bytes:
                raise _too_large(path, status.st_size, max_file_bytes)
            # Read one byte past the limit: the file may have grown since fstat.
            data = handle.read(max_file_bytes + 1)
    except OSError as exc:
        raise InputError(path, f"cannot read: {exc.strerror or exc}") from exc
    if len(data) > max_file_bytes:
        raise _too_large(path, len(data), max_file_bytes)
    text = _normalize_newlines(_decode(data, path))
    if suffix in HTML_SUFFIXES:
        yield html_document(text, path=path)
        return
    articles = parse_news_page(text, source=path, mtime=status.st_mtime)
    if articles:
        for article in articles:
            yield replace(article, metadata={**article.metadata, "path": path})
        return
    title, body = _split_title(text.strip())
    yield Document.create(
        body, title=title or Path(path).stem, source=path, metadata={"path": path}
    )


def _too_large(path: str, size: int, limit: int) -> InputError:
    return InputError(path, f"file too large: {size:,} bytes, over the limit of {limit:,} bytes")


def _decode(data: bytes, path: str) -> str:
    """Text of a whole file: UTF-8 (BOM dropped), else charset_normalizer's guess with a warning."""
    if not data.strip():
        raise InputError(path, "empty file")
    if (b"\x00" in data and not data.startswith(WIDE_BOMS)) or charset_normalizer.is_binary(data):
        raise InputError(path, "binary file, not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text, encoding = _decode_legacy(data, path)
        warnings.warn(SemsearchWarning(f"{path}: not UTF-8; read as {encoding}"), stacklevel=4)
    if not text.strip():
        raise InputError(path, "empty file")
    return text


def _decode_legacy(data: bytes, path: str, *, line: int | None = None) -> tuple[str, str]:
    matches = charset_normalizer.from_bytes(data)
    best = matches.best()
    if best is None:
        raise InputError(path, "binary file, not text", line=line)
    for match in matches:
        if match.chaos <= best.chaos and PREFERRED_LEGACY_ENCODING in match.could_be_from_charset:
            return data.decode(PREFERRED_LEGACY_ENCODING), PREFERRED_LEGACY_ENCODING
    return str(best), best.encoding


def _normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _split_title(text: str) -> tuple[str | None, str]:
    """(title, rest) when the stripped ``text`` opens with a heading, else (None, text)."""
    first, _, rest = text.partition("\n")
    first = first.strip()
    second, _, after_second = rest.partition("\n")
    heading = MARKDOWN_HEADING_RE.fullmatch(first)
    if heading:
        title: str | None = heading["title"]
    elif first and SETEXT_UNDERLINE_RE.fullmatch(second):
        title, rest = first, after_second
    elif not second.strip() and not first.endswith(SENTENCE_END):
        title = first
    else:
        title = None
    rest = rest.strip()
    if title is None or len(title) > MAX_TITLE_CHARS or not rest:
        return None, text
    return title, rest


def _jsonl_documents(path: str, *, max_line_bytes: int) -> Iterator[Document]:
    warned = False
    seen_any = False
    handle, _ = open_input(path)
    try:
        with handle:
            # readline with a cap keeps memory bounded even for a file without newlines.
            lines = iter(lambda: handle.readline(max_line_bytes + 1), b"")
            for number, raw in enumerate(lines, start=1):
                if len(raw) > max_line_bytes:
                    message = f"line too long: over the limit of {max_line_bytes:,} bytes"
                    raise InputError(path, message, line=number)
                if not raw.strip():
                    continue
                if b"\x00" in raw:
                    raise InputError(path, "binary file, not text", line=number)
                try:
                    line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
                except UnicodeDecodeError:
                    line, encoding = _decode_legacy(raw, path, line=number)
                    if not warned:
                        warning = SemsearchWarning(f"{path}: not UTF-8; read as {encoding}")
                        warnings.warn(warning, stacklevel=4)
                        warned = True
                seen_any = True
                yield _jsonl_document(line, path=path, number=number)
    except OSError as exc:
        raise InputError(path, f"cannot read: {exc.strerror or exc}") from exc
    if not seen_any:
        raise InputError(path, "empty file")


def _jsonl_document(line: str, *, path: str, number: int) -> Document:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(
            path, f"invalid JSON: {exc.msg} (column {exc.colno})", line=number
        ) from exc
    if not isinstance(record, dict):
        problem = f"expected a JSON object, got {type(record).__name__}"
        raise InputError(path, problem, line=number)
    text_key = next(
        (k for k in TEXT_KEYS if isinstance(record.get(k), str) and record[k].strip()), None
    )
    if text_key is None:
        problem = f"no text: expected a non-empty string in {', '.join(repr(k) for k in TEXT_KEYS)}"
        raise InputError(path, problem, line=number)
    id_key = next((k for k in ID_KEYS if record.get(k) is not None), None)
    date_key = next((k for k in DATE_KEYS if record.get(k) is not None), None)
    used = {text_key, id_key, date_key, "title", "url"}
    metadata: dict[str, Any] = {}
    nested = record.get("metadata")
    if isinstance(nested, dict):
        # BEIR corpora nest their extra fields; flattening keeps filters one level deep.
        used.add("metadata")
        metadata.update(nested)
    metadata.update((key, value) for key, value in record.items() if key not in used)
    metadata.update(path=path, line=number)
    date: str | None = None
    if date_key is not None:
        raw_date = record[date_key]
        date = normalize_date(raw_date) if isinstance(raw_date, str) else None
        if date is None:
            metadata["date_raw"] = raw_date
            place = f"the {date_key!r} field"
            warnings.warn(unreadable_date(f"{path}:{number}", raw_date, place), stacklevel=5)
    title, url = record.get("title"), record.get("url")
    return Document.create(
        _normalize_newlines(record[text_key]).strip(),
        id=str(record[id_key]) if id_key is not None else None,
        title="" if title is None else str(title),
        source=path,
        url=None if url is None else str(url),
        date=date,
        metadata=metadata,
    )
