"""The records that flow through semsearch: Document, Passage, Hit and Filters."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from .errors import InputError

Ids = npt.NDArray[np.int64]
"""Passage ids (64-bit)."""
Matrix = npt.NDArray[np.float32]
"""Vectors, one row each (or one vector)."""
Scores = npt.NDArray[np.float32]
Span = tuple[int, int]
"""Character offsets ``(start, end)``."""


def stable_doc_id(source: str, title: str, text: str) -> str:
    """A document id derived from its content, stable across runs and machines."""
    digest = hashlib.sha256()
    for part in (source, title, text):
        digest.update(part.encode("utf-8", "surrogatepass"))
        # A separator byte that cannot occur in UTF-8 keeps ("ab", "c") and ("a", "bc") apart.
        digest.update(b"\xff")
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Document:
    """One article. ``text`` is the cleaned body; every offset in semsearch points into it."""

    id: str
    text: str
    title: str = ""
    source: str = ""
    url: str | None = None
    date: str | None = None
    """ISO 8601 date (``YYYY-MM-DD``) of publication or last update, if known."""
    date_approximate: bool = False
    """True when ``date`` was resolved from a relative phrase such as "Updated 9 sec ago"."""
    dateline: str | None = None
    highlights: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(
        cls,
        text: str,
        *,
        id: str | None = None,
        title: str = "",
        source: str = "",
        url: str | None = None,
        date: str | None = None,
        date_approximate: bool = False,
        dateline: str | None = None,
        highlights: tuple[str, ...] | list[str] = (),
        metadata: dict[str, Any] | None = None,
    ) -> Document:
        """Build a document, deriving a stable id from source, title and text when none is given."""
        return cls(
            id=id if id else stable_doc_id(source or (url or ""), title, text),
            text=text,
            title=title,
            source=source,
            url=url,
            date=date,
            date_approximate=date_approximate,
            dateline=dateline,
            highlights=tuple(highlights),
            metadata=dict(metadata or {}),
        )


@dataclass(frozen=True)
class Passage:
    """A run of whole sentences of a document: ``document.text[start:end] == text``."""

    doc_id: str
    ordinal: int
    start: int
    end: int
    text: str
    id: int = -1
    """The index's 64-bit passage id; -1 until the passage is stored in an index."""


@dataclass(frozen=True)
class Hit:
    """One search result: a passage, its score and what its document says about itself."""

    rank: int
    score: float
    passage_id: int
    doc_id: str
    ordinal: int
    start: int
    end: int
    text: str
    title: str
    date: str | None
    source: str
    url: str | None
    metadata: dict[str, Any]
    date_approximate: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return {
            "rank": self.rank,
            "score": self.score,
            "doc_id": self.doc_id,
            "passage_id": self.passage_id,
            "ordinal": self.ordinal,
            "title": self.title,
            "date": self.date,
            "date_approximate": self.date_approximate,
            "source": self.source,
            "url": self.url,
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "metadata": self.metadata,
        }


def _iso_date(value: str | dt.date | None, name: str) -> str | None:
    if value is None or (isinstance(value, str) and not value):
        return None
    if isinstance(value, dt.date):
        return value.isoformat()[:10]
    try:
        return dt.date.fromisoformat(value[:10]).isoformat()
    except (TypeError, ValueError):
        raise InputError(None, f"{name} must be a date as YYYY-MM-DD, got {value!r}") from None


@dataclass(frozen=True)
class Filters:
    """Which documents a search may return; None means no restriction.

    Dates are inclusive ISO dates (a document without a date fails any date filter); sources are
    exact sources or glob patterns; doc_ids limits the search to those documents.
    """

    date_from: str | dt.date | None = None
    date_to: str | dt.date | None = None
    sources: Sequence[str] | None = None
    doc_ids: Sequence[str] | None = None

    @property
    def empty(self) -> bool:
        """True when nothing is filtered."""
        return all(f is None for f in (self.date_from, self.date_to, self.sources, self.doc_ids))

    def checked(self) -> Filters:
        """The same filters with dates as ``YYYY-MM-DD`` strings and lists as tuples (hashable,
        so an engine can cache what they select); a bad date, or ``date_from`` after
        ``date_to`` (a range nothing falls in), is an ``InputError``."""
        date_from = _iso_date(self.date_from, "date_from")
        date_to = _iso_date(self.date_to, "date_to")
        if date_from is not None and date_to is not None and date_from > date_to:
            problem = f"date_from {date_from} is after date_to {date_to}: no date is in that range"
            raise InputError(None, problem)
        return Filters(
            date_from=date_from,
            date_to=date_to,
            sources=None if self.sources is None else tuple(self.sources),
            doc_ids=None if self.doc_ids is None else tuple(self.doc_ids),
        )
