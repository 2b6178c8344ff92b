"""Child process for the crash tests: saves an index and dies at a chosen point of the save.

Usage: python crash_child.py DIR step N      die (os._exit) at the N-th file operation of a save
       python crash_child.py DIR loop        toggle one document and save, forever, until killed
"""

from __future__ import annotations

import os
import sys

from semsearch import Document, Index

TOGGLED = Document.create("A short story that comes and goes with every save.", id="toggled")


def _die_at(n: int) -> None:
    """Count the file operations a save makes and die at the n-th, as a kill -9 would."""
    count = 0

    def wrap(fn):  # type: ignore[no-untyped-def]
        def inner(*args, **kwargs):  # type: ignore[no-untyped-def]
            nonlocal count
            count += 1
            if count == n:
                os._exit(99)
            return fn(*args, **kwargs)

        return inner

    for name in ("fsync", "replace", "rename", "unlink", "open"):
        setattr(os, name, wrap(getattr(os, name)))


def main() -> None:
    directory, mode = sys.argv[1], sys.argv[2]
    index = Index.load(directory)
    if mode == "step":
        _die_at(int(sys.argv[3]))
        index.remove(next(d.id for d in index.documents()))
        index.save(directory)
        return
    while True:
        if TOGGLED.id in index:
            index.remove(TOGGLED.id)
        else:
            index.add([TOGGLED])
        index.save(directory)
        print("saved", flush=True)


if __name__ == "__main__":
    main()
