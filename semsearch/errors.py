"""Exceptions and warnings: every message names the file (and line) and the problem."""

from __future__ import annotations

from pathlib import Path


class SemsearchError(Exception):
    """Base class of every error semsearch raises on purpose."""


class InputError(SemsearchError):
    """An input file (or query) that semsearch refuses, with where and why."""

    def __init__(self, path: str | Path | None, problem: str, *, line: int | None = None) -> None:
        self.path = None if path is None else str(path)
        self.line = line
        self.problem = problem
        if self.path is None:
            super().__init__(problem)
            return
        where = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{where}: {problem}")


class IndexFormatError(SemsearchError):
    """A saved index that cannot be loaded: missing, truncated, tampered or inconsistent."""


class ModelMismatchError(SemsearchError):
    """An index opened with a different embedding model than the one that built it."""


class SemsearchWarning(UserWarning):
    """Something semsearch did on your behalf that you may want to know about."""


class SkippedInputWarning(SemsearchWarning):
    """A file was skipped while reading a directory (non-strict mode)."""
