"""Passage vectors: exact rows in numpy files and an approximate FAISS index sized to fit."""

from __future__ import annotations

from .index import VectorIndex

__all__ = ["VectorIndex"]
