"""Fuzzing the loader: mutated copies of small saved indexes, checksums recomputed, must either
load and answer with exact spans or fail with one SemsearchError; never another exception, a
hang, or a file opened outside the index directory.

SEMSEARCH_FUZZ_CASES sets the number of cases (default 500) and SEMSEARCH_FUZZ_SEED the seed.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any, ClassVar

import pytest
from fuzzing import mutate

from semsearch import Document, Embedder, Index, SemsearchError
from semsearch.engines.local.vectors.index import VectorIndex

CASES = int(os.environ.get("SEMSEARCH_FUZZ_CASES", "500"))
SEED = int(os.environ.get("SEMSEARCH_FUZZ_SEED", "20261207"))
SECONDS_PER_CASE = 30

DOCS = [
    Document.create(
        f"Article {i}. Dock workers in the harbour went on strike over pay. "
        + "Shipping was delayed for days, the port authority said. " * (i + 1),
        title=f"Port news {i}",
        source=f"port/{i}.txt",
        date=f"2024-03-{i + 1:02d}",
        metadata={"desk": "ports", "n": i},
        highlights=(f"Strike day {i}",),
    )
    for i in range(5)
]
BRIEFS = [
    Document.create(
        f"Brief {i} on harbour strikes, wheat prices and river floods: item {i * 7919 % 997}.",
        title=f"Brief {i}",
        source=f"brief/{i}.txt",
    )
    for i in range(260)
]


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> list[Path]:
    """Two saved indexes: exact vectors over a few articles, and IVF-SQ8 (an ann.faiss file)."""
    flat = tmp_path_factory.mktemp("fuzz-flat") / "index"
    index = Index(model=embedder, max_tokens=24)
    index.add(DOCS)
    index.save(flat)
    ivf = tmp_path_factory.mktemp("fuzz-ivf") / "index"
    index = Index(model=embedder)
    index._engine.vectors = VectorIndex(embedder.dimension, backend="ivf-sq8")
    index.add(BRIEFS[:200] + DOCS)
    index.save(ivf)
    return [flat, ivf]


class _Opens:
    """Paths opened from Python while armed (audit hooks cannot be removed: one per session)."""

    armed = False
    seen: ClassVar[list[str]] = []

    @classmethod
    def hook(cls, event: str, args: tuple[Any, ...]) -> None:
        if not cls.armed or not args:
            return
        if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            cls.seen.append(os.fsdecode(args[0]))
        elif event == "sqlite3.connect" and args[0] not in ("", ":memory:"):
            cls.seen.append(str(args[0]).removeprefix("file://").split("?")[0])


sys.addaudithook(_Opens.hook)


def _timeout(signum: int, frame: FrameType | None) -> None:
    raise TimeoutError(f"a case took more than {SECONDS_PER_CASE} s")


def _use(path: Path, embedder: Embedder) -> None:
    """What a user does with a loaded index, checking every span it returns."""
    index = Index.load(path, model=embedder)
    for mode in ("hybrid", "dense", "lexical"):
        for hit in index.search("harbour strike pay", k=4, mode=mode):  # type: ignore[arg-type]
            doc = index.document(hit.doc_id)
            assert doc is not None, f"hit of unknown document {hit.doc_id!r}"
            assert doc.text[hit.start : hit.end] == hit.text, "a hit whose span is not its text"
    for doc in index.documents():
        for passage in index.passages(doc.id):
            assert doc.text[passage.start : passage.end] == passage.text
    answer = index.ask("Why did the dock workers strike?")
    for quote in answer.citations:
        doc = index.document(quote.doc_id)
        assert doc is not None and doc.text[quote.start : quote.end] == quote.quote


def _allowed(opened: str, directory: Path) -> bool:
    """A Python-level open is allowed inside the index directory (lexically: a link there is
    refused by the loader itself) or through an open handle (/proc/self/fd)."""
    path = Path(os.path.abspath(opened))
    return path.parent == directory or path.parent == Path("/proc/self/fd")


def test_mutated_indexes_load_or_fail_with_one_error(
    bases: list[Path], embedder: Embedder, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    for base in bases:
        _use(base, embedder)  # unmutated, it works (and everything it imports is loaded)
    outcomes = {"worked": 0, "refused": 0}
    previous = signal.signal(signal.SIGALRM, _timeout)
    try:
        for case in range(CASES):
            base = bases[case % len(bases)]
            work = tmp_path / f"case-{case}"
            directory = work / "index"
            outside = work / "outside"
            outside.mkdir(parents=True)
            shutil.copytree(base, directory)
            said = mutate(directory, rng, outside)
            _Opens.seen = []
            _Opens.armed = True
            signal.alarm(SECONDS_PER_CASE)
            try:
                _use(directory, embedder)
                outcomes["worked"] += 1
            except SemsearchError as exc:
                assert "Traceback" not in str(exc)
                outcomes["refused"] += 1
            except Exception as exc:
                pytest.fail(f"case {case} ({'; '.join(said)}): {type(exc).__name__}: {exc}")
            finally:
                signal.alarm(0)
                _Opens.armed = False
            outside_opens = [p for p in _Opens.seen if not _allowed(p, directory)]
            assert not outside_opens, f"case {case} ({'; '.join(said)}) opened {outside_opens}"
            shutil.rmtree(work)
    finally:
        signal.signal(signal.SIGALRM, previous)
    # Both outcomes occur: the mutations reach the checks and do not all break the index.
    assert outcomes["worked"] and outcomes["refused"], outcomes
    print(f"fuzz: {CASES} cases, seed {SEED}: {outcomes}")
