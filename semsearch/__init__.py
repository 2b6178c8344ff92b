"""semsearch: semantic search and cited answers over news articles, with exact offsets."""

from __future__ import annotations

from .answers import (
    Answer,
    Answerer,
    Citation,
    CrossEncoderAnswerer,
    ExtractiveReader,
    SentenceAnswerer,
)
from .embeddings.embedder import DEFAULT_MODEL, Embedder
from .errors import (
    IndexFormatError,
    InputError,
    ModelMismatchError,
    SemsearchError,
    SemsearchWarning,
    SkippedInputWarning,
)
from .index import AddReport, Index
from .ingest.files import read_articles, read_text
from .types import Document, Filters, Hit, Passage

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MODEL",
    "AddReport",
    "Answer",
    "Answerer",
    "Citation",
    "CrossEncoderAnswerer",
    "Document",
    "Embedder",
    "ExtractiveReader",
    "Filters",
    "Hit",
    "Index",
    "IndexFormatError",
    "InputError",
    "ModelMismatchError",
    "Passage",
    "SemsearchError",
    "SemsearchWarning",
    "SentenceAnswerer",
    "SkippedInputWarning",
    "__version__",
    "read_articles",
    "read_text",
]
