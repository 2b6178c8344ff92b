"""Adapters to RAG frameworks: ``semsearch.integrations.langchain`` (a LangChain retriever) and
``semsearch.integrations.llamaindex`` (a LlamaIndex retriever). Each imports its framework only
when it is itself imported, so this package imports no framework; what they share (the
metadata a passage carries and the async search) lives here.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..index import Index
from ..retrieval import Mode
from ..types import Filters, Hit

METADATA_KEYS = (
    "doc_id",
    "passage_id",
    "title",
    "date",
    "date_approximate",
    "url",
    "source",
    "start",
    "end",
    "score",
    "rank",
    "ordinal",
    "metadata",
)
"""The metadata of every item an adapter returns, in this order."""


def hit_metadata(hit: Hit) -> dict[str, Any]:
    """A hit as framework metadata: its fields (``METADATA_KEYS``) without the text, the
    document's own metadata (a copy) under ``"metadata"``."""
    return {
        "doc_id": hit.doc_id,
        "passage_id": hit.passage_id,
        "title": hit.title,
        "date": hit.date,
        "date_approximate": hit.date_approximate,
        "url": hit.url,
        "source": hit.source,
        "start": hit.start,
        "end": hit.end,
        "score": hit.score,
        "rank": hit.rank,
        "ordinal": hit.ordinal,
        "metadata": dict(hit.metadata),
    }


def hit_id(hit: Hit) -> str:
    """``"DOC_ID:START-END"``: names the exact span, the same in any index of the same
    articles chunked the same way (passage ids are numbered by each index)."""
    return f"{hit.doc_id}:{hit.start}-{hit.end}"


async def search_async(
    index: Index,
    query: str,
    *,
    k: int,
    filters: Filters | None,
    mode: Mode,
    recency: bool | None = None,
) -> list[Hit]:
    """``index.search`` for a coroutine: the whole search (embedding the query and looking it
    up in the index) runs in a worker thread (``asyncio.to_thread``), so the event loop runs on
    meanwhile and concurrent calls search at the same time."""
    return await asyncio.to_thread(
        index.search, query, k=k, filters=filters, mode=mode, recency=recency
    )


def missing(framework: str, extra: str, error: ImportError) -> ImportError:
    """The error raised when an adapter's framework is not installed."""
    message = (
        f"semsearch.integrations.{extra} needs {framework} ({error.name or error} is missing): "
        f"pip install 'semsearch[{extra}]'"
    )
    return ImportError(message, name=error.name)
