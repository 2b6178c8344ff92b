"""The Milvus engine: an index kept by a Milvus server or in a Milvus Lite file."""

from __future__ import annotations

from .address import TOKEN_VARIABLE, Address, is_milvus
from .engine import MilvusEngine

__all__ = ["TOKEN_VARIABLE", "Address", "MilvusEngine", "is_milvus"]
