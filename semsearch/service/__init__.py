"""The HTTP service (``semsearch serve``): FastAPI routes over one served index, which readers
search on a snapshot while a single writer adds, saves and publishes. Needs the ``[service]``
extra (FastAPI and uvicorn)."""

from __future__ import annotations

from .app import DEFAULT_MAX_REQUEST_BYTES, create_app
from .state import ServedIndex

__all__ = ["DEFAULT_MAX_REQUEST_BYTES", "ServedIndex", "create_app"]
