"""News evaluation in the RealTime QA format: weekly quiz questions with choices, each with the
articles a web search found for it at the time (``YYYYMMDD_qa.jsonl`` and ``YYYYMMDD_gcs.jsonl``
in one folder, as the RealTime QA repository publishes them)."""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..index import Index
from ..retrieval import Mode
from ..types import Document
from . import Clock, _jsonl, search_all

QA_SUFFIX = "_qa.jsonl"
RESULTS_SUFFIX = "_gcs.jsonl"
K = 5


@dataclass(frozen=True)
class NewsQuestion:
    id: str
    text: str
    gold: str
    """The correct choice."""
    answerable: bool
    """Whether the correct choice occurs, as written, in an article of its week."""


@dataclass(frozen=True)
class Week:
    name: str
    documents: list[Document]
    """Every distinct article text found for the week's questions."""
    questions: list[NewsQuestion]


_TYPOGRAPHY = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-"})


def fold(text: str) -> str:
    """Case-, space- and typography-insensitive form, for finding a choice in a text: a quiz
    writes “Succession” where an article writes "Succession"."""
    text = unicodedata.normalize("NFKC", text).translate(_TYPOGRAPHY)
    return " ".join(text.casefold().split())


def is_realtimeqa(path: Path) -> bool:
    return path.is_dir() and any(path.glob(f"*{QA_SUFFIX}"))


def realtimeqa_weeks(directory: Path) -> list[Week]:
    """Every week of ``directory``, oldest first; a question file without its search results,
    or a record without the fields the format has, is an error naming the file and line."""
    weeks = []
    for qa_path in sorted(directory.glob(f"*{QA_SUFFIX}")):
        name = qa_path.name[: -len(QA_SUFFIX)]
        results_path = directory / f"{name}{RESULTS_SUFFIX}"
        if not results_path.is_file():
            raise InputError(str(qa_path), f"no {results_path.name} beside it (the articles)")
        weeks.append(_week(name, qa_path, results_path))
    return weeks


def first_questions(weeks: Sequence[Week], limit: int) -> list[Week]:
    """The weeks holding the first ``limit`` questions, in order (a week's articles stay whole)."""
    out = []
    for week in weeks:
        if limit <= 0:
            break
        out.append(Week(week.name, week.documents, week.questions[:limit]))
        limit -= len(week.questions)
    return out


def _field(record: dict[str, Any], key: str, kind: type, path: Path, line: int) -> Any:
    value = record.get(key)
    if not isinstance(value, kind):
        raise InputError(str(path), f"field {key!r} missing or not a {kind.__name__}", line=line)
    return value


def _week(name: str, qa_path: Path, results_path: Path) -> Week:
    found: dict[str, list[dict[str, Any]]] = {}
    for line, record in enumerate(_jsonl(results_path), start=1):
        qid = _field(record, "question_id", str, results_path, line)
        results = _field(record, "search_result", list, results_path, line)
        found[qid] = [r for r in results if isinstance(r, dict)]
    docs: dict[str, Document] = {}
    questions = []
    for line, record in enumerate(_jsonl(qa_path), start=1):
        qid = _field(record, "question_id", str, qa_path, line)
        text = _field(record, "question_sentence", str, qa_path, line)
        choices = _field(record, "choices", list, qa_path, line)
        answer = _field(record, "answer", list, qa_path, line)
        try:
            gold = str(choices[int(answer[0])])
        except (IndexError, ValueError, TypeError):
            raise InputError(
                str(qa_path), "field 'answer' does not name one of the choices", line=line
            ) from None
        articles = found.get(qid, [])
        for article in articles:
            body = str(article.get("text") or "").strip()
            if body:
                doc_id = hashlib.sha256(body.encode()).hexdigest()[:16]
                docs.setdefault(doc_id, _document(doc_id, body, article))
        answerable = any(fold(gold) in fold(str(a.get("text") or "")) for a in articles)
        questions.append(NewsQuestion(qid, text, gold, answerable))
    return Week(name, list(docs.values()), questions)


def _document(doc_id: str, text: str, article: dict[str, Any]) -> Document:
    date = str(article.get("publish_date") or "").replace("/", "-")[:10] or None
    return Document(
        id=doc_id,
        text=text,
        title=str(article.get("title") or ""),
        url=str(article.get("url") or "") or None,
        date=date if date and len(date) == 10 else None,
        source="realtimeqa",
    )


def evaluate_realtimeqa(
    weeks: Sequence[Week],
    index_of: Callable[[Week], Index],
    *,
    modes: Sequence[Mode],
    answers: bool = False,
    clock: Clock | None = None,
    recency: bool | None = None,
) -> dict[str, dict[str, float]]:
    """Share of questions whose top 5 passages hold the correct choice, per mode, over the
    answerable questions and over all; with ``answers``, how often ``Index.ask`` answers with
    it, cites it first, and abstains. Each week is searched in its own index; ``recency`` is
    that of ``Index.search``."""
    clock = clock or Clock()
    rows: dict[str, list[tuple[bool, bool]]] = {m: [] for m in modes}
    asked: list[tuple[NewsQuestion, str, str, bool]] = []
    for week in weeks:
        index = index_of(week)
        texts = [q.text for q in week.questions]
        hits = search_all(index, texts, k=K, modes=modes, clock=clock, recency=recency)
        for mode in modes:
            rows[mode] += [
                (q.answerable, any(fold(q.gold) in fold(h.text) for h in top))
                for q, top in zip(week.questions, hits[mode], strict=True)
            ]
        if answers:
            with clock.time("answer"):
                for q, answer in zip(
                    week.questions, index.ask_many(texts, k=K, recency=recency), strict=True
                ):
                    first = answer.citations[0].quote if answer.citations else ""
                    asked.append((q, answer.text, first, answer.abstained))
    out: dict[str, dict[str, float]] = {}
    for name, found in rows.items():
        sure = [hit for answerable, hit in found if answerable]
        out[name] = {
            f"answerable: gold in top {K}": _share(sure),
            f"all: gold in top {K}": _share([hit for _, hit in found]),
        }
    if answers:
        sure_asked = [a for a in asked if a[0].answerable]
        out["answers"] = {
            "answerable: answer contains gold": _share(
                [fold(q.gold) in fold(text) for q, text, _, _ in sure_asked]
            ),
            "answerable: first quote contains gold": _share(
                [fold(q.gold) in fold(first) for q, _, first, _ in sure_asked]
            ),
            "answerable: abstained": _share([gave_up for *_, gave_up in sure_asked]),
            "unanswerable: abstained": _share(
                [gave_up for q, *_, gave_up in asked if not q.answerable]
            ),
        }
    return out


def _share(flags: Sequence[bool]) -> float:
    return sum(flags) / len(flags) if flags else 0.0
