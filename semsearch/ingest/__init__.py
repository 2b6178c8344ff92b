"""Reading articles: text, Markdown, scraped news pages, HTML, JSONL and directories of them."""

from __future__ import annotations

from .files import DEFAULT_MAX_FILE_BYTES, read_articles, read_text

__all__ = ["DEFAULT_MAX_FILE_BYTES", "read_articles", "read_text"]
