"""The Gradio demo: ``semsearch demo`` serves it; ``build`` and ``launch`` embed it elsewhere."""

from __future__ import annotations

from .app import build, launch
from .service import DemoIndex, close_index, open_index

__all__ = ["DemoIndex", "build", "close_index", "launch", "open_index"]
