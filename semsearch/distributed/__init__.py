"""Indexing spread over a cluster: Ray Data reads and embeds, the engine stores (``[ray]``)."""

from __future__ import annotations

from .ray_indexing import RayOptions, add_files

__all__ = ["RayOptions", "add_files"]
