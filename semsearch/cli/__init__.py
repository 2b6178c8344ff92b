"""The ``semsearch`` command line: one module per group of commands, registered on import."""

from __future__ import annotations

from collections.abc import Sequence

from . import answering, demo, evaluation, indexing, searching, serve
from .base import cli

__all__ = ["answering", "cli", "demo", "evaluation", "indexing", "main", "searching", "serve"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: sys.argv[1:]); returns the exit status."""
    try:
        cli.main(args=None if argv is None else list(argv), prog_name="semsearch")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    return 0
