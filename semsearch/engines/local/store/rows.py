"""Rows of the store: written from documents, and read back checked, since a saved store may
come from someone else. A row a save would not have written is one IndexFormatError naming the
store file, raised where it is read (``reads``)."""

from __future__ import annotations

import functools
import inspect
import json
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, ParamSpec, TypeVar

from ....errors import IndexFormatError
from ....types import Document

P = ParamSpec("P")
R = TypeVar("R")


def doc_row(doc: Document) -> tuple[Any, ...]:
    return (
        doc.id,
        doc.title,
        doc.text,
        doc.source,
        doc.url,
        doc.date,
        int(doc.date_approximate),
        doc.dateline,
        # Most documents have neither: json.dumps is a large share of a bulk insert.
        json.dumps(list(doc.highlights), ensure_ascii=False) if doc.highlights else "[]",
        json.dumps(doc.metadata, ensure_ascii=False, sort_keys=True, default=str)
        if doc.metadata
        else "{}",
    )


class BadRow(ValueError):
    """A stored row that a save would not have written (a store from someone else)."""


def json_column(raw: Any, kind: type, what: str) -> Any:
    try:
        value = json.loads(raw) if isinstance(raw, str) else None
    except (ValueError, RecursionError):
        value = None
    if not isinstance(value, kind):
        raise BadRow(f"{what} is not a JSON {kind.__name__}: {str(raw)[:40]!r}")
    return value


def text_column(value: Any, what: str, *, optional: bool = False) -> Any:
    if not (isinstance(value, str) or (optional and value is None)):
        raise BadRow(f"{what} is {type(value).__name__}, not text")
    return value


def row_doc(row: Sequence[Any]) -> Document:
    highlights = json_column(row[8], list, "highlights")
    if not all(isinstance(h, str) for h in highlights):
        raise BadRow("highlights are not a list of text")
    if type(row[6]) is not int:
        raise BadRow(f"date_approximate is {type(row[6]).__name__}, not an integer")
    return Document(
        id=text_column(row[0], "document id"),
        title=text_column(row[1], "title"),
        text=text_column(row[2], "text"),
        source=text_column(row[3], "source"),
        url=text_column(row[4], "url", optional=True),
        date=text_column(row[5], "date", optional=True),
        date_approximate=bool(row[6]),
        dateline=text_column(row[7], "dateline", optional=True),
        highlights=tuple(highlights),
        metadata=json_column(row[9], dict, "metadata"),
    )


def same(found: Any, wanted: Any, value: R) -> R:
    """``value``, once the row read for ``wanted`` turns out to be its row: a corrupt SQLite
    index can lead a lookup to another row than the one asked for."""
    if found != wanted:
        raise BadRow(f"a lookup of {wanted!r} found the row of {found!r}")
    return value


def span(pid: Any, start: Any, end: Any, length: Any) -> None:
    """A passage's offsets must lie within its document, in order."""
    if not all(type(v) is int for v in (start, end, length)) or not 0 <= start <= end <= length:
        raise BadRow(f"passage {pid} has offsets {start!r}:{end!r} in a text of {length!r}")


def reads(method: Callable[P, R]) -> Callable[P, R]:
    """A corrupt store (SQLite's errors, rows a save would not write) is one IndexFormatError
    naming the file, raised where the bad data is read."""

    def fail(store: Any, exc: Exception) -> IndexFormatError:
        where = store.path or "the index store"
        return IndexFormatError(f"{where}: corrupt store ({exc})")

    if inspect.isgeneratorfunction(method):

        @functools.wraps(method)
        def generator(*args: P.args, **kwargs: P.kwargs) -> Any:
            try:
                yield from method(*args, **kwargs)
            except (sqlite3.DatabaseError, BadRow) as exc:
                raise fail(args[0], exc) from None

        return generator

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except (sqlite3.DatabaseError, BadRow) as exc:
            raise fail(args[0], exc) from None

    return wrapper
