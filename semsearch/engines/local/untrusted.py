"""Reading the files of an index directory as untrusted data.

An index directory may come from someone else (a shared archive, a download), so none of its
files is trusted: each is opened without following a symbolic link and must be a regular file
(a link could point anywhere outside the directory; a FIFO would block), and JSON is parsed with
bounds on its size and depth, and no NaN or infinite numbers where numbers are counts.
Libraries that open files by name (SQLite, FAISS) are handed the already-opened file through
``/proc/self/fd``, so they read the same checked file.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import stat
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
_PROC_FD = Path("/proc/self/fd")
# JSON strings, skipped when counting the depth of brackets.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def open_regular(path: Path) -> BinaryIO:
    """``path`` opened for reading, refusing a symbolic link or anything but a regular file
    (ValueError naming it)."""
    try:
        fd = os.open(path, _FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            msg = f"{path}: is a symbolic link; index files must be regular files"
            raise ValueError(msg) from None
        raise ValueError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ValueError(f"{path}: not a regular file; index files must be regular files")
        os.set_blocking(fd, True)
        return open(fd, "rb", closefd=True)
    except BaseException:
        os.close(fd)
        raise


def handle_path(f: BinaryIO, path: Path) -> str:
    """A name that opens the same file as the open handle ``f``, for libraries that open files
    by name: ``/proc/self/fd/N`` where the system has it, else ``path`` itself."""
    if _PROC_FD.is_dir():
        return str(_PROC_FD / str(f.fileno()))
    return str(path)


def json_depth(raw: bytes) -> int:
    """How deeply the arrays and objects of a JSON text nest (brackets inside strings do not
    count)."""
    codes = np.frombuffer(_STRING.sub(b"", raw), dtype=np.uint8)
    if not len(codes):
        return 0
    steps = np.isin(codes, (ord("["), ord("{"))).astype(np.int64)
    steps -= np.isin(codes, (ord("]"), ord("}")))
    return int(np.cumsum(steps).max(initial=0))


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number a manifest may hold")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def parse_json(raw: bytes, where: str, *, max_depth: int) -> Any:
    """Parse JSON that must be finite numbers and no deeper than ``max_depth``; ValueError
    naming ``where`` otherwise."""
    depth = json_depth(raw)
    if depth > max_depth:
        raise ValueError(f"{where}: JSON nested {depth} deep (at most {max_depth})")
    try:
        return json.loads(raw, parse_constant=_no_constant, parse_float=_finite)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and bad UTF-8 are ValueErrors
        raise ValueError(f"{where}: not valid JSON ({exc})") from None


def read_json(path: Path, *, max_bytes: int, max_depth: int) -> Any:
    """A JSON file of at most ``max_bytes``, opened as ``open_regular`` does."""
    with open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        if size > max_bytes:
            raise ValueError(f"{path}: {size} bytes, more than the {max_bytes} allowed")
        raw = f.read(max_bytes + 1)
    return parse_json(raw, str(path), max_depth=max_depth)
