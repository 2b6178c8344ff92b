"""semsearch: semantic search and cited answers over news articles, with exact offsets."""

from __future__ import annotations

from .articles import read_articles, read_text
from .embeddings import DEFAULT_MODEL, Embedder
from .errors import (
    IndexFormatError,
    InputError,
    ModelMismatchError,
    SemsearchError,
    SemsearchWarning,
    SkippedInputWarning,
)
from .index import AddReport, Index
from .types import Document, Hit, Passage

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MODEL",
    "AddReport",
    "Document",
    "Embedder",
    "Hit",
    "Index",
    "IndexFormatError",
    "InputError",
    "ModelMismatchError",
    "Passage",
    "SemsearchError",
    "SemsearchWarning",
    "SkippedInputWarning",
    "__version__",
    "read_articles",
    "read_text",
]
