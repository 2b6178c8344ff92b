"""Finding input files: directory walks that skip what is no regular file, and opening a
file without ever waiting on it."""

from __future__ import annotations

import fnmatch
import os
import stat
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from ..errors import InputError, SkippedInputWarning

TEXT_SUFFIXES = frozenset({".txt", ".text", ".md", ".markdown"})
HTML_SUFFIXES = frozenset({".html", ".htm"})
JSONL_SUFFIXES = frozenset({".jsonl"})
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | JSONL_SUFFIXES


def walk(root: str, *, include: Sequence[str], exclude: Sequence[str]) -> Iterator[str]:
    """The files under ``root`` to read, in sorted order, hidden entries left out; a wanted name
    that is a FIFO, socket or device is skipped with one SkippedInputWarning saying what it is."""
    for dirpath, dirnames, filenames in os.walk(root):
        # Sorting in place also fixes the order os.walk descends in.
        dirnames[:] = sorted(name for name in dirnames if not name.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            full = os.path.join(dirpath, name)
            relative = Path(os.path.relpath(full, root)).as_posix()
            if include:
                wanted = any(fnmatch.fnmatch(relative, pattern) for pattern in include)
            else:
                wanted = Path(name).suffix.lower() in SUPPORTED_SUFFIXES
            if not wanted or any(fnmatch.fnmatch(relative, pattern) for pattern in exclude):
                continue
            try:
                mode = os.stat(full).st_mode
            except OSError:
                mode = stat.S_IFREG  # a dangling link: reading it names the problem
            if stat.S_ISREG(mode):
                yield full
            else:
                # Even under strict: a pipe or socket is no article file, and must not hang
                # the walk, wherever it comes from (read_articles or list_inputs for Ray).
                problem = f"{full}: is {kind(mode)}, not a regular file"
                warnings.warn(SkippedInputWarning(problem), stacklevel=3)


def kind(mode: int) -> str:
    """What a file that is not a regular file is, for messages."""
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "a special file"


def named_path_error(path: str) -> InputError:
    """The error for a named path that is neither a regular file nor a directory."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        if os.path.lexists(path):
            return InputError(path, "is a broken symbolic link")
        return InputError(path, "no such file or directory")
    return InputError(path, f"is {kind(mode)}, not a regular file or directory")


def _nonblocking(path: str, flags: int) -> int:
    return os.open(path, flags | getattr(os, "O_NONBLOCK", 0))


def open_input(path: str) -> tuple[BinaryIO, os.stat_result]:
    """``path`` opened for reading, and its stat, never waiting: O_NONBLOCK makes opening a
    FIFO return at once, and the check on the opened handle refuses anything but a regular file
    (so a file swapped for a pipe after it was listed cannot hang the read either)."""
    try:
        handle = open(path, "rb", opener=_nonblocking)  # noqa: SIM115  # returned open
    except OSError as exc:
        try:
            mode = os.stat(path).st_mode
        except OSError:
            mode = stat.S_IFREG
        if not stat.S_ISREG(mode):  # a socket cannot be opened at all (ENXIO)
            raise InputError(path, f"is {kind(mode)}, not a regular file") from None
        raise InputError(path, f"cannot read: {exc.strerror or exc}") from exc
    try:
        status = os.fstat(handle.fileno())
        if not stat.S_ISREG(status.st_mode):
            raise InputError(path, f"is {kind(status.st_mode)}, not a regular file")
    except BaseException:
        handle.close()
        raise
    return handle, status
