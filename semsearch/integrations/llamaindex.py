"""A LlamaIndex retriever over a semsearch Index: ``SemsearchRetriever(index)``.

Needs ``llama-index-core`` (``pip install 'semsearch[llamaindex]'``).
"""

from __future__ import annotations

from typing import Any

from ..index import Index
from ..retrieval import Mode
from ..types import Filters, Hit
from . import METADATA_KEYS, hit_id, hit_metadata, missing, search_async

try:
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import (
        NodeRelationship,
        NodeWithScore,
        QueryBundle,
        RelatedNodeInfo,
        TextNode,
    )
except ImportError as exc:
    raise missing("llama-index-core", "llamaindex", exc) from exc

__all__ = ["EMBED_METADATA_KEYS", "LLM_METADATA_KEYS", "SemsearchRetriever", "to_node"]

LLM_METADATA_KEYS = ("title", "date", "source", "url")
"""The metadata a node shows an LLM, when not empty (the rest is excluded_llm_metadata_keys)."""
EMBED_METADATA_KEYS = ("title",)
"""The metadata a node embeds with its text, when not empty, as the index embeds
``title + passage`` (the rest is excluded_embed_metadata_keys)."""


def _hidden(metadata: dict[str, Any], shown: tuple[str, ...]) -> list[str]:
    return [key for key in METADATA_KEYS if key not in shown or metadata[key] in (None, "")]


def to_node(hit: Hit) -> NodeWithScore:
    """A hit as a LlamaIndex ``NodeWithScore``: a ``TextNode`` of the passage's text with its
    offsets (``start_char_idx``, ``end_char_idx``), the hit's fields as metadata
    (``semsearch.integrations.METADATA_KEYS``), id ``"DOC_ID:START-END"`` and its document as
    its source node (``node.ref_doc_id``), scored with the hit's score."""
    metadata = hit_metadata(hit)
    node = TextNode(
        id_=hit_id(hit),
        text=hit.text,
        metadata=metadata,
        start_char_idx=hit.start,
        end_char_idx=hit.end,
        relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=hit.doc_id)},
        excluded_llm_metadata_keys=_hidden(metadata, LLM_METADATA_KEYS),
        excluded_embed_metadata_keys=_hidden(metadata, EMBED_METADATA_KEYS),
    )
    return NodeWithScore(node=node, score=hit.score)


class SemsearchRetriever(BaseRetriever):
    """The ``k`` best passages of ``index`` for a query, as LlamaIndex nodes, best first.

    ``k``, ``filters``, ``mode`` and ``recency`` are those of ``Index.search`` (attributes:
    change them between calls); other keyword arguments go to LlamaIndex's ``BaseRetriever``
    (``callback_manager``, ``verbose``, ...).

    ``retrieve`` may be called from any thread, and from several at once; ``aretrieve`` runs
    the search in a worker thread, so the event loop is never blocked. Adding documents to the
    index while it is being searched is not safe: write when no search runs.
    """

    def __init__(
        self,
        index: Index,
        *,
        k: int = 5,
        filters: Filters | None = None,
        mode: Mode = "hybrid",
        recency: bool | None = None,
        **kwargs: Any,
    ) -> None:
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        super().__init__(**kwargs)
        self.index = index
        self.k = k
        self.filters = filters
        self.mode: Mode = mode
        self.recency = recency

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = self.index.search(
            query_bundle.query_str,
            k=self.k,
            filters=self.filters,
            mode=self.mode,
            recency=self.recency,
        )
        return [to_node(hit) for hit in hits]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = await search_async(
            self.index,
            query_bundle.query_str,
            k=self.k,
            filters=self.filters,
            mode=self.mode,
            recency=self.recency,
        )
        return [to_node(hit) for hit in hits]
