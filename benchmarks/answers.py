"""Answer quality of Index.ask on SQuAD v1.1 dev and the RealTime QA 2022 slice (not tests)."""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import string
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from cache import CACHE

from semsearch import Answer, Document, Index, IndexFormatError
from semsearch.answers import content_words
from semsearch.evaluate import squad_data
from semsearch.evaluate.rtqa import fold

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SQUAD = DATA / "squad-v1.1-dev" / "dev-v1.1.json"
RTQA = DATA / "realtimeqa-2022-dev-slice"
# Outside the repository: the index is rebuilt only when missing.
SQUAD_INDEX = CACHE / "squad-answers-index"
_NO_PUNCT = str.maketrans("", "", string.punctuation)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    doc_id: str  # the paragraph it was written about
    article: int
    answers: tuple[str, ...]


def load_squad(path: Path = SQUAD) -> tuple[list[Document], list[Question]]:
    """The 2,067 paragraphs as documents (title + paragraph) and the 10,570 questions, read by
    ``semsearch.evaluate.squad_data``; each question also knows its article (paragraph ids are
    "<article>-<paragraph>") and lists each distinct gold answer once."""
    docs, read = squad_data(path)
    questions = [
        Question(
            q.id, q.text, q.doc_id, int(q.doc_id.split("-")[0]), tuple(dict.fromkeys(q.answers))
        )
        for q in read
    ]
    return docs, questions


def squad_index(docs: list[Document], path: Path = SQUAD_INDEX) -> Index:
    """The SQuAD paragraph index, loaded from the cache or built once and saved there."""
    if (path / "manifest.json").is_file():
        try:
            return Index.load(path)
        except IndexFormatError as exc:  # saved by an older semsearch: rebuild
            log(str(exc))
    log(f"building the SQuAD index of {len(docs)} paragraphs into {path} ...")
    index = Index()
    index.add(docs)
    index.save(path)
    return index


def normalize(text: str) -> str:
    """SQuAD's answer normalisation: lower case, no punctuation, no articles, single spaces."""
    text = text.lower().translate(_NO_PUNCT)
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def contains(haystack: str, needles: Sequence[str]) -> bool:
    hay = f" {normalize(haystack)} "
    return any(f" {normalize(n)} " in hay for n in needles if normalize(n))


def squad_bench(index: Index, questions: list[Question], *, k: int) -> dict[str, Any]:
    """Answer quality over all questions and per half: "tune" (questions about even-numbered
    articles), on which answer weights may be chosen, and "held-out" (odd), on which they are
    reported."""
    t = time.perf_counter()
    answers = []
    for i in range(0, len(questions), 512):
        answers.extend(index.ask_many([q.text for q in questions[i : i + 512]], k=k))
        log(f"  squad: {len(answers)}/{len(questions)} asked, {time.perf_counter() - t:.0f} s")
    seconds = time.perf_counter() - t
    pairs = list(zip(answers, questions, strict=True))
    result = _squad_scores(pairs)
    result.update(k=k, seconds=round(seconds, 1))
    result["questions_per_second"] = round(len(questions) / seconds, 1)
    for half, parity in (("tune", 0), ("held-out", 1)):
        result[half] = _squad_scores([(a, q) for a, q in pairs if q.article % 2 == parity])
    return result


def _squad_scores(pairs: list[tuple[Answer, Question]]) -> dict[str, Any]:
    def share(values: list[bool]) -> float:
        return round(float(np.mean(values)), 4) if values else 0.0

    return {
        "questions": len(pairs),
        "first_citation_is_gold_paragraph": share(
            [bool(a.citations) and a.citations[0].doc_id == q.doc_id for a, q in pairs]
        ),
        "any_citation_is_gold_paragraph": share(
            [any(c.doc_id == q.doc_id for c in a.citations) for a, q in pairs]
        ),
        "answer_text_contains_gold_answer": share(
            [not a.abstained and contains(a.text, q.answers) for a, q in pairs]
        ),
        "abstained_on_answerable": share([a.abstained for a, _ in pairs]),
        "mean_citations": round(float(np.mean([len(a.citations) for a, _ in pairs])), 3),
        "retrieval_top1_is_gold_paragraph": share(
            [bool(a.passages) and a.passages[0].doc_id == q.doc_id for a, q in pairs]
        ),
    }


def _rtqa_week(week: str) -> tuple[list[Document], list[dict[str, Any]]]:
    qa = [json.loads(x) for x in (RTQA / f"{week}_qa.jsonl").read_text().splitlines() if x]
    gcs = {
        r["question_id"]: r["search_result"]
        for r in (json.loads(x) for x in (RTQA / f"{week}_gcs.jsonl").read_text().splitlines() if x)
    }
    docs: dict[str, Document] = {}
    for q in qa:
        q["articles"] = [r.get("text") or "" for r in gcs.get(q["question_id"], [])]
        for r in gcs.get(q["question_id"], []):
            text = (r.get("text") or "").strip()
            if not text:
                continue
            doc_id = hashlib.sha256(text.encode()).hexdigest()[:16]  # same text, one document
            date = (r.get("publish_date") or "")[:10] or None
            docs[doc_id] = Document(
                id=doc_id, text=text, title=r.get("title") or "", url=r.get("url"), date=date
            )
    return list(docs.values()), qa


def pick_choice(index: Index, answer: Answer, choices: Sequence[str]) -> int:
    """The choice best supported by the answer: its words in the cited sentences count most,
    then in the passages considered; embedding similarity to the answer breaks ties."""
    cited = content_words(" ".join(c.quote for c in answer.citations))
    passages = content_words(" ".join(h.text for h in answer.passages))
    vecs = index.embedder.encode([answer.text, *choices])
    scores = []
    for i, choice in enumerate(choices):
        words = content_words(choice) or {choice.lower()}
        scores.append(
            len(words & cited) / len(words)
            + 0.5 * len(words & passages) / len(words)
            + 0.1 * float(vecs[0] @ vecs[i + 1])
        )
    return int(np.argmax(scores))


def rtqa_bench(*, k: int) -> dict[str, Any]:
    """Per week and overall. Gold matching is case-, space- and typography-insensitive, as
    ``semsearch eval`` matches: "the Senate" in a quiz choice and "The Senate" at the start of
    an article's sentence are the same answer."""
    weeks = sorted(p.name.split("_")[0] for p in RTQA.glob("*_qa.jsonl"))
    rows = []
    t = time.perf_counter()
    for week in weeks:
        docs, qa = _rtqa_week(week)
        index = Index()  # in memory only: these articles must never be written anywhere
        index.add(docs)
        answers = index.ask_many([q["question_sentence"] for q in qa], k=k)
        for q, a in zip(qa, answers, strict=True):
            gold = int(q["answer"][0])
            choice = fold(q["choices"][gold])
            cited_ids = {c.passage_id for c in a.citations}
            cited = fold(" ".join(h.text for h in a.passages if h.passage_id in cited_ids))
            rows.append(
                {
                    "week": week,
                    "answerable": any(choice in fold(text) for text in q["articles"]),
                    "answerable_exact_case": any(
                        q["choices"][gold] in text for text in q["articles"]
                    ),
                    "cited_has_gold": choice in cited,
                    "passages_have_gold": any(choice in fold(h.text) for h in a.passages),
                    "picked_right": pick_choice(index, a, q["choices"]) == gold,
                    "abstained": a.abstained,
                }
            )
        log(f"  rtqa {week}: {len(docs)} articles, {len(qa)} questions")
    result: dict[str, Any] = {
        "weeks": {w: _rtqa_summary([r for r in rows if r["week"] == w]) for w in weeks}
    }
    result["all"] = _rtqa_summary(rows)
    result["seconds"] = round(time.perf_counter() - t, 1)
    return result


def _rtqa_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def share(subset: list[dict[str, Any]], key: str) -> float | None:
        return round(float(np.mean([r[key] for r in subset])), 4) if subset else None

    answerable = [r for r in rows if r["answerable"]]
    other = [r for r in rows if not r["answerable"]]
    return {
        "questions": len(rows),
        "answerable": len(answerable),
        "answerable_if_matched_case_sensitively": sum(r["answerable_exact_case"] for r in rows),
        "answerable_cited_passage_contains_gold_choice": share(answerable, "cited_has_gold"),
        "answerable_retrieved_passages_contain_gold_choice": share(
            answerable, "passages_have_gold"
        ),
        "answerable_choice_accuracy": share(answerable, "picked_right"),
        "all_choice_accuracy": share(rows, "picked_right"),
        "answerable_abstained": share(answerable, "abstained"),
        "unanswerable_abstained": share(other, "abstained"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-k", type=int, default=5, help="passages per question (Index.ask default)")
    parser.add_argument("--limit", type=int, help="ask only the first N SQuAD questions")
    parser.add_argument("--skip-squad", action="store_true")
    parser.add_argument("--skip-rtqa", action="store_true")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    if not args.skip_squad:
        docs, questions = load_squad()
        index = squad_index(docs)
        results["squad"] = squad_bench(index, questions[: args.limit], k=args.k)
        log(json.dumps(results["squad"], indent=2))
    if not args.skip_rtqa:
        results["realtimeqa"] = rtqa_bench(k=args.k)
        log(json.dumps(results["realtimeqa"], indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
