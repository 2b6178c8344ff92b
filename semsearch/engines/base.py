"""The engine interface: everything an Index stores and searches, with no engine's own types.

An engine keeps documents, their passages' offsets, one vector per passage, the passages' BM25
terms and their near-duplicate groups, and answers the primitive searches that
``semsearch.retrieval`` fuses into ranked hits. Calls come in batches (many queries, many
documents), filters arrive as data (``semsearch.Filters``, never as id lists), and an engine
may keep its data in a local directory or in a remote database.

Writes go through ``Engine.writer``: a context manager whose body either completes, and
every document written in it becomes visible together, or raises, and the engine is left as it
was (``Index.add`` is all or nothing on every engine).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from ..errors import SemsearchError
from ..types import Document, Filters, Hit, Ids, Matrix, Passage, Scores


class ChangedDuringRead(SemsearchError):
    """Rows a read found were removed before it read them, by a write that committed meanwhile
    (on an engine read live, such as Milvus, where several clients share one index): reading
    again gives a consistent answer."""


@dataclass(frozen=True)
class IndexSettings:
    """What an engine's vectors and passages were made with; checked when it is opened."""

    model: str
    """The embedding model's name (``DEFAULT_MODEL`` for the bundled one)."""
    backend: str
    """The embedding runtime that made the vectors: torch, onnx or onnx-int8."""
    dimension: int
    max_tokens: int
    overlap: int
    include_title: bool

    def chunking(self) -> dict[str, Any]:
        return {
            "max_tokens": self.max_tokens,
            "overlap": self.overlap,
            "include_title": self.include_title,
        }


@dataclass(frozen=True)
class DocumentPassages:
    """One document to write, with its passages (ids not assigned yet) and what they index."""

    document: Document
    passages: Sequence[Passage]
    keys: Sequence[str]
    """One content key per passage: the hash of the text its vector embeds (for reuse)."""
    title: str
    """The title as indexed beside each passage's text for BM25; empty when titles are not."""


class Ranked(NamedTuple):
    """Passage ids best first and their scores (aligned)."""

    ids: Ids
    scores: Scores


class Candidates(NamedTuple):
    """The union of one query's dense and lexical top ``n``, with both scores of each."""

    ids: Ids
    dense: Scores
    """Cosine of each candidate with the query (also of those only BM25 found)."""
    lexical: Scores
    """BM25 score of each candidate (0 for one sharing no term with the query)."""
    cut: bool
    """Whether either list was cut at ``n`` (more candidates exist)."""


class EngineWriter(Protocol):
    """The writes of one transaction; see ``Engine.writer``."""

    def unchanged(self, document: Document) -> bool:
        """Whether the engine holds exactly this document already (text and metadata)."""
        ...

    def stored_vectors(self, keys: Sequence[str]) -> Mapping[str, Matrix]:
        """Stored vectors (1-d rows) by content key, for the keys the engine knows: a passage
        whose embedded text is unchanged reuses its vector instead of being embedded again."""
        ...

    def write(self, documents: Sequence[DocumentPassages], vectors: Matrix) -> int:
        """Store documents with their passages, one vector row per passage in order, replacing
        any stored document of the same id; returns how many were replaced."""
        ...


class Engine(Protocol):
    """Where an index's documents, passages, vectors and terms are kept and searched."""

    @property
    def location(self) -> str | None:
        """Where the engine keeps its data (a directory, a URI); None before the first save."""
        ...

    @property
    def settings(self) -> IndexSettings | None:
        """What the stored data was made with; None for an engine that holds none yet."""
        ...

    # -- contents ----------------------------------------------------------------------------

    def counts(self) -> tuple[int, int]:
        """Documents and passages held."""
        ...

    def searchable(self) -> bool:
        """Whether a search can find anything (False only when certainly not); cheaper than
        ``counts`` on an engine where counting reads every row."""
        ...

    def has_documents(self, doc_ids: Sequence[str]) -> list[bool]: ...

    def document(self, doc_id: str) -> Document | None: ...

    def documents(self) -> Iterator[Document]: ...

    def passages(self, doc_id: str) -> list[Passage]:
        """A document's passages in order, with their ids."""
        ...

    def hits(self, ranked: Ranked) -> list[Hit]:
        """Hits for ranked passage ids, in that order, texts sliced from their documents."""
        ...

    def passage_vectors(self, ids: Ids) -> Matrix:
        """The stored vectors of passage ids, one row each."""
        ...

    def passage_keys(self, ids: Ids) -> list[str]:
        """The content key of each passage (``DocumentPassages.keys``), in order."""
        ...

    def passage_dates(self, ids: Ids) -> list[str | None]:
        """The date (ISO) of each passage's document, in order; None if undated or unknown."""
        ...

    def duplicate_count(self) -> int:
        """Passages with a near-duplicate held (bounds how far a search looks past them)."""
        ...

    def representatives(self, ids: Ids) -> Ids:
        """Each passage's near-duplicate group, named by one member (its own id when it has
        no near-duplicate): passages of one group share the same value."""
        ...

    # -- search primitives (batches; filters as data, applied inside the search) ---------------

    def dense(self, query_vectors: Matrix, n: int, filters: Filters) -> list[Ranked]:
        """The ``n`` passages nearest each query vector among those passing ``filters``."""
        ...

    def lexical(self, queries: Sequence[str], n: int, filters: Filters) -> list[Ranked]:
        """The ``n`` best BM25 matches of each query among those passing ``filters``."""
        ...

    def candidates(
        self, queries: Sequence[str], query_vectors: Matrix, n: int, filters: Filters
    ) -> list[Candidates]:
        """Hybrid candidates of each query, for fusion."""
        ...

    def proximity(self, query: str, ids: Ids) -> Scores | None:
        """How closely each passage holds the query's terms together, in [0, 1]; None when
        the engine keeps no term positions (fusion then goes without)."""
        ...

    # -- changes -----------------------------------------------------------------------------

    def writer(self, settings: IndexSettings) -> AbstractContextManager[EngineWriter]:
        """A transaction writing data made with ``settings``: all of it or none of it."""
        ...

    def remove(self, doc_ids: Sequence[str]) -> int:
        """Remove documents (every id must be held); returns passages removed."""
        ...

    def configure_vectors(
        self, *, vector_index: str | None = None, memory_budget: int | None = None
    ) -> None:
        """Choose the engine's vector index type and memory budget; None keeps the current."""
        ...

    def save(self, settings: IndexSettings, location: str | None = None) -> str:
        """Make every change durable (at ``location`` if given) and return where it is."""
        ...

    def close(self) -> None:
        """Release the files or connection the engine holds; nothing may use it afterwards."""
        ...

    def info(self, *, files: bool = False, check_recall: bool = False) -> dict[str, Any]:
        """What the engine holds and how (counts, vector index, duplicates; with ``files``,
        the files or collections and their sizes; with ``check_recall``, measured recall)."""
        ...


class ClosedEngine:
    """What a closed index's engine becomes: its location stays, every other use is one clear
    error, and closing again does nothing."""

    def __init__(self, location: str | None) -> None:
        self.location = location

    def close(self) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        raise SemsearchError(f"{self.location or 'this index'}: the index is closed")
