"""The demo's open index: loaded once per process, used from one worker thread, fed by uploads."""

from __future__ import annotations

import datetime as dt
import itertools
import re
import threading
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from .. import Document, Filters, Index, InputError, SemsearchError, read_articles, read_text
from ..engines import is_milvus

T = TypeVar("T")
Progress = Callable[[float, str], object]

UPLOAD_SUFFIXES = (".txt", ".md", ".html", ".htm", ".jsonl")
DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024
# Documents per Index.add call while ingesting: small enough for the progress bar to move.
ADD_BATCH = 8
EXAMPLES = 6
# Documents scanned for example questions: enough for variety, bounded for big indexes.
EXAMPLE_SCAN = 500

_TITLE_CUT = re.compile(r"\s+(?:as|amid|after)\s+|:\s+|\s+[—–-]\s+|;\s+")
_SAYS = re.compile(
    r"^(?P<who>[A-Z][\w’'.\- ]{1,60}?)\s+(?P<verb>says|said|say|warns|warned|warn)\b"
)
_AUX = {"says": "does", "warns": "does", "say": "do", "warn": "do", "said": "did", "warned": "did"}


@dataclass
class IngestReport:
    """What one add-articles submission did: per-file problems and what was added."""

    problems: list[str] = field(default_factory=list)
    added: int = 0
    replaced: int = 0
    unchanged: int = 0
    passages: int = 0
    titles: list[str] = field(default_factory=list)


def filters(
    date_from: str | None = None, date_to: str | None = None, sources: Sequence[str] | None = None
) -> Filters:
    """Search filters from form values: blanks mean no filter, dates must be YYYY-MM-DD."""
    out: dict[str, Any] = {}
    for name, value in (("date_from", date_from), ("date_to", date_to)):
        value = (value or "").strip()
        if value:
            try:
                dt.date.fromisoformat(value)
            except ValueError:
                raise InputError(None, f"{value!r} is not a date as YYYY-MM-DD") from None
            out[name] = value
    chosen = [s for s in (sources or []) if s and s.strip()]
    return Filters(**out, sources=chosen or None)


class DemoIndex:
    """An index opened for the demo. Every use runs on one worker thread: the index's SQLite
    connection belongs to the thread that opened it, and searches must not interleave with
    an ingest's writes."""

    def __init__(self, path: str | Path) -> None:
        self.path: Path | str = path if is_milvus(path) else Path(path)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="semsearch-demo")
        self._closed = False
        self._index: Index = self._run(Index.load, self.path)
        # Load the model now, not on the first question: that user would wait seconds.
        self._run(lambda: self._index.embedder.model)
        self._stats: dict[str, Any] | None = None

    def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._closed:
            raise SemsearchError(f"{self.path}: the index is closed")
        return self._worker.submit(fn, *args, **kwargs).result()

    def close(self) -> None:
        """Close the index on its own thread, once the work queued before is done."""
        if not self._closed:
            self._worker.submit(self._index.close).result()
            self._closed = True
        self._worker.shutdown(wait=True)

    # -- questions and searches -----------------------------------------------------------------

    def ask(self, question: str, *, k: int = 5, **filter_values: Any) -> dict[str, Any]:
        """``Index.ask`` as a JSON-ready dict: ``Answer.to_dict()``, passages without metadata."""
        answer = self._run(self._index.ask, question, k=int(k), filters=filters(**filter_values))
        result = answer.to_dict()
        result["passages"] = [_public(h) for h in result["passages"]]
        return result

    def search(self, query: str, *, k: int = 10, **filter_values: Any) -> dict[str, Any]:
        """``Index.search`` as ``{"query", "hits"}``, the same shape as ``semsearch search``."""
        hits = self._run(self._index.search, query, k=int(k), filters=filters(**filter_values))
        return {"query": query, "hits": [_public(h.to_dict()) for h in hits]}

    # -- what the index holds -------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counts, date range, sources and model; cached until the next ingest."""
        if self._stats is None:
            self._stats = self._run(self._compute_stats)
        return self._stats

    def _compute_stats(self) -> dict[str, Any]:
        info = self._index.info()
        dates = sorted((d.date, d.date_approximate) for d in self._index.documents() if d.date)
        sources = sorted({d.source for d in self._index.documents() if d.source})
        return {
            "documents": info["documents"],
            "passages": info["passages"],
            "model": info["model"],
            "path": self._index.location,
            "date_first": _shown_date(*dates[0]) if dates else None,
            "date_last": _shown_date(*dates[-1]) if dates else None,
            "sources": sources,
        }

    def examples(self, limit: int = EXAMPLES) -> list[str]:
        """Questions drawn from the newest documents' titles and highlights."""
        docs = self._run(lambda: list(itertools.islice(self._index.documents(), EXAMPLE_SCAN)))
        return example_questions(docs, limit)

    # -- adding articles ------------------------------------------------------------------------

    def ingest(
        self,
        files: Sequence[str | Path] = (),
        text: str = "",
        *,
        title: str = "",
        max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
        progress: Progress | None = None,
    ) -> IngestReport:
        """Read uploaded files and pasted text, add them, and save the index atomically.

        Files that cannot be read are reported and skipped; the rest are added. If adding or
        saving fails, the index is reopened from its last save, so nothing half-added remains.
        """
        report = IngestReport()
        docs: list[Document] = []
        tick = progress or (lambda _fraction, _desc: None)
        for i, file in enumerate(files):
            tick(0.3 * i / max(1, len(files)), f"Reading {Path(file).name}")
            docs.extend(_read_upload(Path(file), max_bytes, report.problems))
        if text.strip():
            size = len(text.encode("utf-8", "surrogatepass"))
            if size > max_bytes:
                report.problems.append(
                    f"pasted text: too large ({_mb(size)}; limit {_mb(max_bytes)})"
                )
            else:
                try:
                    docs.extend(read_text(text, source="pasted", title=title.strip() or None))
                except InputError as exc:
                    report.problems.append(str(exc))
        if not docs:
            if not files and not text.strip():
                report.problems.append("nothing to add: upload a file or paste an article")
            return report
        try:
            for start in range(0, len(docs), ADD_BATCH):
                tick(0.3 + 0.6 * start / len(docs), f"Embedding {start + 1}–{len(docs)}")
                batch = docs[start : start + ADD_BATCH]
                done = self._run(self._index.add, batch)
                report.added += done.added
                report.replaced += done.replaced
                report.unchanged += done.unchanged
                report.passages += done.passages
            tick(0.95, "Saving the index")
            self._run(self._index.save)
        except SemsearchError as exc:
            self._reopen()
            report.problems.append(f"nothing was added: {exc}")
            report.added = report.replaced = report.unchanged = report.passages = 0
            return report
        except BaseException:
            self._reopen()
            raise
        finally:
            self._stats = None
        report.titles = [d.title or "(untitled)" for d in docs]
        return report

    def _reopen(self) -> None:
        self._index = self._run(Index.load, self.path, model=self._index.embedder)


def _public(hit: dict[str, Any]) -> dict[str, Any]:
    """A hit without its document's metadata: that holds server file paths, and any dict with
    a "path" key is taken by gradio_client for a file to download."""
    return {key: value for key, value in hit.items() if key != "metadata"}


def _shown_date(date: str, approximate: bool) -> str:
    # An approximate date is the page's crawl or update date, not the article's: say so.
    return f"~{date} (approximate)" if approximate else date


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"


def _read_upload(path: Path, max_bytes: int, problems: list[str]) -> list[Document]:
    """Documents of one uploaded file, named by its file name (not the upload's temp path)."""
    name = path.name
    if path.suffix.lower() not in UPLOAD_SUFFIXES:
        kind = path.suffix or "(no extension)"
        problems.append(f"{name}: unsupported file type {kind}; use {', '.join(UPLOAD_SUFFIXES)}")
        return []
    size = path.stat().st_size
    if size > max_bytes:
        problems.append(f"{name}: file too large ({_mb(size)}; limit {_mb(max_bytes)})")
        return []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an encoding guess is no reason to refuse a file
            docs = list(read_articles(path, max_file_bytes=max_bytes))
    except InputError as exc:
        problems.append(str(exc).replace(str(path), name))
        return []
    # The temp path of the upload means nothing to a reader; the file name does.
    return [
        replace(
            d,
            source=f"upload/{name}",
            metadata={k: v for k, v in d.metadata.items() if k != "path"},
        )
        for d in docs
    ]


def example_questions(docs: Sequence[Document], limit: int = EXAMPLES) -> list[str]:
    """Questions about what the documents report, newest first: one per title, then what their
    highlights attribute to someone ("UNHCR says ..." -> "What does UNHCR say?")."""
    ordered = sorted(docs, key=lambda d: d.date or "", reverse=True)
    from_titles = [_title_question(d.title) for d in ordered if d.title.strip()]
    from_highlights = [q for d in ordered for h in d.highlights if (q := _says_question(h))]
    picked = list(dict.fromkeys(q for q in from_titles + from_highlights if q))
    return picked[:limit]


def _title_question(title: str) -> str:
    clause = _TITLE_CUT.split(" ".join(title.split()), maxsplit=1)[0].rstrip(".?!")
    return f"What do the articles say about “{clause}”?" if clause else ""


def _says_question(highlight: str) -> str | None:
    match = _SAYS.match(highlight.strip())
    if match is None:
        return None
    verb = match.group("verb")
    base = "say" if verb.startswith("sa") else "warn"
    return f"What {_AUX[verb]} {match.group('who')} {base}?"


_OPEN: dict[Path | str, DemoIndex] = {}
_OPEN_LOCK = threading.Lock()


def open_index(path: str | Path) -> DemoIndex:
    """The process's one DemoIndex for ``path``: the model and index load once per process."""
    key = _key(path)
    with _OPEN_LOCK:
        if key not in _OPEN:
            _OPEN[key] = DemoIndex(key)
        return _OPEN[key]


def close_index(path: str | Path) -> None:
    """Close the process's DemoIndex for ``path``, if open (``open_index`` loads it again)."""
    with _OPEN_LOCK:
        demo = _OPEN.pop(_key(path), None)
    if demo is not None:
        demo.close()


def _key(path: str | Path) -> str | Path:
    return path if is_milvus(path) else Path(path).resolve()
