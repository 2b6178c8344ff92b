"""Searching: filters, dense, lexical and hybrid ranking, fusion, duplicate collapse, reranking."""

from __future__ import annotations

from ..types import Filters
from .fusion import fuse
from .search import DEPTH, MODES, Mode, check_queries, encode_queries, search

__all__ = ["DEPTH", "MODES", "Filters", "Mode", "check_queries", "encode_queries", "fuse", "search"]
