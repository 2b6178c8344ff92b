"""The service's request and response bodies: pydantic models, published in its OpenAPI schema."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..types import Filters, Hit

MAX_K = 100
"""The most hits one request returns."""
MAX_OFFSET = 1000
"""The deepest page: ``offset + k`` may not pass it."""
MAX_QUERY_CHARS = 2000
MAX_DOCUMENTS = 10_000
"""Articles and files in one ``POST /documents``."""

Mode = Literal["hybrid", "dense", "lexical"]


RECENCY = (
    "Favour recent articles (hybrid mode): null for a query that names a recent time"
    ' ("this week", "yesterday"), true for every query, false never.'
)


class _Request(BaseModel):
    # A misspelt field is an error, not silently ignored.
    model_config = ConfigDict(extra="forbid")


class FiltersIn(_Request):
    """Which documents may be returned; a missing field restricts nothing."""

    date_from: dt.date | None = Field(default=None, description="Inclusive, YYYY-MM-DD.")
    date_to: dt.date | None = Field(default=None, description="Inclusive, YYYY-MM-DD.")
    sources: list[str] | None = Field(
        default=None, max_length=1000, description="Exact sources or glob patterns."
    )
    doc_ids: list[str] | None = Field(default=None, max_length=MAX_DOCUMENTS)

    def to_filters(self) -> Filters:
        return Filters(
            date_from=self.date_from,
            date_to=self.date_to,
            sources=self.sources,
            doc_ids=self.doc_ids,
        ).checked()


class SearchRequest(_Request):
    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    k: int = Field(default=10, ge=1, le=MAX_K, description="Hits per page.")
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET, description="Hits skipped (paging).")
    mode: Mode = "hybrid"
    filters: FiltersIn = Field(default_factory=lambda: FiltersIn())
    recency: bool | None = Field(default=None, description=RECENCY)


class AskRequest(_Request):
    question: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    k: int = Field(default=5, ge=1, le=MAX_K, description="Passages the answer is drawn from.")
    filters: FiltersIn = Field(default_factory=lambda: FiltersIn())
    recency: bool | None = Field(default=None, description=RECENCY)


class HitOut(BaseModel):
    """One passage found: ``GET /documents/{doc_id}`` text ``[start:end]`` is ``text``."""

    rank: int
    score: float
    doc_id: str
    passage_id: int
    ordinal: int
    title: str
    date: str | None
    date_approximate: bool
    source: str
    url: str | None
    start: int
    end: int
    text: str
    metadata: dict[str, Any]

    @classmethod
    def of(cls, hit: Hit) -> HitOut:
        return cls(**hit.to_dict())


class SearchResponse(BaseModel):
    query: str
    mode: Mode
    offset: int
    hits: list[HitOut]
    next_offset: int | None = Field(
        description="The offset of the next page, or null when this page is the last."
    )


class CitationOut(BaseModel):
    n: int
    doc_id: str
    title: str
    date: str | None
    source: str
    url: str | None
    passage_id: int
    start: int
    end: int
    quote: str


class AnswerResponse(BaseModel):
    question: str
    answer: str
    abstained: bool
    confidence: float
    citations: list[CitationOut]
    passages: list[HitOut]


class PassageOut(BaseModel):
    id: int
    ordinal: int
    start: int
    end: int
    text: str


class DocumentOut(BaseModel):
    id: str
    title: str
    text: str
    source: str
    url: str | None
    date: str | None
    date_approximate: bool
    dateline: str | None
    highlights: list[str]
    metadata: dict[str, Any]
    passages: list[PassageOut]


class ArticleIn(_Request):
    """One article, as a line of a JSONL file holds it."""

    text: str = Field(min_length=1)
    id: str | None = Field(
        default=None, min_length=1, description="Derived from the content if absent."
    )
    title: str = ""
    source: str = "api"
    url: str | None = None
    date: str | None = Field(default=None, description="ISO 8601 date or date-time.")
    date_approximate: bool = False
    dateline: str | None = None
    highlights: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)


class FileIn(_Request):
    """A file's content, read as ``semsearch index`` reads a file of that name."""

    name: str = Field(min_length=1, max_length=255, description="Its suffix picks the reader.")
    content: str


class AddRequest(_Request):
    documents: list[ArticleIn] = Field(default_factory=list, max_length=MAX_DOCUMENTS)
    files: list[FileIn] = Field(default_factory=list, max_length=MAX_DOCUMENTS)


class AddResponse(BaseModel):
    added: int
    replaced: int
    unchanged: int
    passages: int
    embedded: int
    doc_ids: list[str] = Field(description="The documents read, in order.")
    warnings: list[str]


class RemoveResponse(BaseModel):
    doc_id: str
    passages_removed: int


class InfoResponse(BaseModel):
    location: str | None
    model: str
    backend: str
    documents: int
    passages: int
    writes: bool = Field(description="Whether this service accepts writes.")
    details: dict[str, Any] = Field(description="Everything else `semsearch info` reports.")


class HealthResponse(BaseModel):
    status: Literal["ok"]
    version: str


class ErrorResponse(BaseModel):
    """Every error: its HTTP status and one message saying what was wrong."""

    status: int
    error: str
