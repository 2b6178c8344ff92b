"""A LangChain retriever over a semsearch Index: ``SemsearchRetriever(index=index)``.

Needs ``langchain-core`` (``pip install 'semsearch[langchain]'``).
"""

from __future__ import annotations

from typing import Annotated

from ..index import Index
from ..retrieval import Mode
from ..types import Filters, Hit
from . import hit_id, hit_metadata, missing, search_async

try:
    from langchain_core.callbacks import (
        AsyncCallbackManagerForRetrieverRun,
        CallbackManagerForRetrieverRun,
    )
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever
    from pydantic import ConfigDict, Field, InstanceOf
except ImportError as exc:
    raise missing("langchain-core", "langchain", exc) from exc

__all__ = ["SemsearchRetriever", "to_document"]


def to_document(hit: Hit) -> Document:
    """A hit as a LangChain ``Document``: the passage's text, the hit's fields as metadata
    (``semsearch.integrations.METADATA_KEYS``) and ``id`` ``"DOC_ID:START-END"``."""
    return Document(page_content=hit.text, metadata=hit_metadata(hit), id=hit_id(hit))


class SemsearchRetriever(BaseRetriever):
    """The ``k`` best passages of ``index`` for a query, as LangChain ``Document``s, best first.

    ``k``, ``filters`` and ``mode`` are the defaults of ``Index.search``; a call may override
    any of them: ``retriever.invoke(query, k=3, filters=Filters(...))`` (keyword arguments of
    ``invoke``, ``ainvoke``, ``batch``, ``abatch`` and ``bind`` reach the search). ``recency``
    is that of ``Index.search`` too, set on the retriever.

    It may be called from any thread, and from several at once: ``batch`` searches its queries
    in LangChain's thread pool; ``ainvoke`` and ``abatch`` run each search in a worker thread,
    so the event loop is never blocked. Adding documents to the index while it is being
    searched is not safe: write when no search runs.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: Index
    """The index searched."""
    k: Annotated[int, Field(ge=1)] = 5
    """Passages returned per query."""
    filters: InstanceOf[Filters] | None = None
    """Which documents a search may return (None: all of them)."""
    mode: Mode = "hybrid"
    """``"hybrid"``, ``"dense"`` or ``"lexical"``: see ``Index.search``."""
    recency: bool | None = None
    """Favour recent articles: None for queries naming a recent time, True always, False never."""

    def _options(
        self, k: int | None, filters: Filters | None, mode: Mode | None
    ) -> tuple[int, Filters | None, Mode]:
        return (
            self.k if k is None else k,
            self.filters if filters is None else filters,
            self.mode if mode is None else mode,
        )

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        k: int | None = None,
        filters: Filters | None = None,
        mode: Mode | None = None,
        verbose: bool = False,  # read by invoke for its callbacks, then passed on here too
    ) -> list[Document]:
        k, filters, mode = self._options(k, filters, mode)
        hits = self.index.search(query, k=k, filters=filters, mode=mode, recency=self.recency)
        return [to_document(hit) for hit in hits]

    async def _aget_relevant_documents(
        self,
        query: str,
        *,
        run_manager: AsyncCallbackManagerForRetrieverRun,
        k: int | None = None,
        filters: Filters | None = None,
        mode: Mode | None = None,
        verbose: bool = False,  # read by invoke for its callbacks, then passed on here too
    ) -> list[Document]:
        k, filters, mode = self._options(k, filters, mode)
        hits = await search_async(
            self.index, query, k=k, filters=filters, mode=mode, recency=self.recency
        )
        return [to_document(hit) for hit in hits]
