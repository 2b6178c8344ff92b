"""Embedding: the bundled model or any sentence-transformers model, on torch, ONNX or int8."""

from __future__ import annotations

from .embedder import BACKENDS, DEFAULT_MODEL, Backend, Embedder

__all__ = ["BACKENDS", "DEFAULT_MODEL", "Backend", "Embedder"]
