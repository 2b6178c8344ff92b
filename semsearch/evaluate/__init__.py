"""Evaluation: retrieval on BEIR-format and SQuAD-format data (metrics by pytrec_eval, as
trec_eval computes them) and answers on SQuAD; news questions in the RealTime QA format are in
``rtqa``."""

from __future__ import annotations

import json
import re
import string
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..index import Index
from ..retrieval import Mode, encode_queries
from ..types import Document, Hit

# trec_eval measure -> the name we print. MRR@10 is trec_eval's reciprocal rank of a run cut
# at 10 documents (trec_eval's recip_rank has no cutoff of its own).
BEIR_METRICS = {"ndcg_cut_10": "nDCG@10", "recall_10": "Recall@10", "recall_100": "Recall@100"}
MRR = "MRR@10"
DOCS_PER_QUERY = 100
# Passages fetched per query to fill 100 documents: a long document has several passages.
PASSAGES_PER_QUERY = 300
QUERY_BATCH = 512


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    doc_id: str
    """The id of the paragraph the question was written from."""
    answers: tuple[str, ...]


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(str(path), f"invalid JSON: {exc.msg}", line=number) from None


def beir_corpus(directory: Path) -> Iterator[Document]:
    for record in _jsonl(directory / "corpus.jsonl"):
        yield Document(id=str(record["_id"]), title=record.get("title") or "", text=record["text"])


def beir_queries(directory: Path, *, split: str = "test") -> tuple[dict[str, str], Qrels]:
    """Queries that have judgements in ``qrels/<split>.tsv``, and those judgements."""
    path = directory / "qrels" / f"{split}.tsv"
    if not path.is_file():
        raise InputError(str(path), "no such qrels file (BEIR layout: qrels/<split>.tsv)")
    qrels: Qrels = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            parts = line.rstrip("\n").split("\t")
            if number == 1 and not parts[-1].lstrip("-").isdigit():
                continue  # the header
            if len(parts) != 3:
                raise InputError(str(path), "expected query-id, corpus-id, score", line=number)
            qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    texts = {str(r["_id"]): r["text"] for r in _jsonl(directory / "queries.jsonl")}
    return {q: texts[q] for q in qrels if q in texts}, qrels


def first_tokens(index: Index, docs: Iterable[Document]) -> Iterator[Document]:
    """Each document cut after the tokens one model input holds (title included), so that it
    makes one passage: what BEIR's published dense baselines embed (the model truncates title
    + text at ``max_seq_length``), unlike semsearch, which embeds every passage of a document."""
    limit = index.settings.max_tokens
    tokenizer = index.embedder.tokenizer
    for doc in docs:
        title = doc.title.strip() if index.include_title else ""
        # The title's share as chunking gives it (at most a quarter of the budget).
        used = min(len(tokenizer.token_spans([title])[0]), max(1, limit // 4)) if title else 0
        spans = tokenizer.token_spans([doc.text])[0]
        budget = max(1, limit - used)
        yield replace(doc, text=doc.text[: spans[budget - 1][1]]) if len(spans) > budget else doc


def squad_data(path: Path) -> tuple[list[Document], list[Question]]:
    """Each paragraph is a document (id "<article>-<paragraph>"), titled by its article."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    docs: list[Document] = []
    questions: list[Question] = []
    for a, article in enumerate(data):
        title = article["title"].replace("_", " ")
        for p, paragraph in enumerate(article["paragraphs"]):
            doc_id = f"{a}-{p}"
            docs.append(Document(id=doc_id, title=title, text=paragraph["context"]))
            for qa in paragraph["qas"]:
                answers = tuple(x["text"] for x in qa["answers"])
                questions.append(Question(qa["id"], qa["question"], doc_id, answers))
    return docs, questions


Qrels = dict[str, dict[str, int]]
Run = dict[str, dict[str, float]]


def doc_ranking(hits: Sequence[Hit], depth: int = DOCS_PER_QUERY) -> list[str]:
    """Documents in the order of their best passage."""
    return list(dict.fromkeys(h.doc_id for h in hits))[:depth]


def _as_run(rankings: dict[str, list[str]], depth: int) -> Run:
    # Scores from ranks, so trec_eval's sort (by score, ties by id) keeps our exact order.
    return {
        q: {d: float(depth - i) for i, d in enumerate(docs[:depth])} for q, docs in rankings.items()
    }


def beir_metrics(rankings: dict[str, list[str]], qrels: Qrels) -> dict[str, float]:
    """Mean nDCG@10, Recall@10, Recall@100 and MRR@10 over every judged query (an unanswered
    query scores 0: trec_eval alone would skip it)."""
    import pytrec_eval

    full = pytrec_eval.RelevanceEvaluator(qrels, set(BEIR_METRICS)).evaluate(
        _as_run(rankings, DOCS_PER_QUERY)
    )
    cut = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(_as_run(rankings, 10))
    out = {
        name: sum(full.get(q, {}).get(m, 0.0) for q in qrels) / len(qrels)
        for m, name in BEIR_METRICS.items()
    }
    out[MRR] = sum(cut.get(q, {}).get("recip_rank", 0.0) for q in qrels) / len(qrels)
    return out


def search_all(
    index: Index,
    texts: Sequence[str],
    *,
    k: int,
    modes: Sequence[Mode],
    clock: Clock | None = None,
    recency: bool | None = None,
) -> dict[Mode, list[list[Hit]]]:
    """Hits of every query per mode; the queries are embedded once, for all modes.
    ``recency`` is that of ``Index.search`` in hybrid mode (the others rank without it)."""
    clock = clock or Clock()
    vectors = None
    if any(m != "lexical" for m in modes):
        with clock.time("embed queries"):
            vectors = encode_queries(index.embedder, texts)
    out: dict[Mode, list[list[Hit]]] = {}
    for mode in modes:
        with clock.time("search"):
            out[mode] = index.search_many(
                texts,
                k=k,
                mode=mode,
                query_vectors=vectors,
                recency=recency if mode == "hybrid" else None,
            )
    return out


class Clock:
    """Seconds spent per named step, summed over calls."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def time(self, step: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            self.seconds[step] = self.seconds.get(step, 0.0) + elapsed


def evaluate_beir(
    index: Index,
    queries: dict[str, str],
    qrels: Qrels,
    *,
    modes: Sequence[Mode],
    clock: Clock | None = None,
    recency: bool | None = None,
) -> dict[str, dict[str, float]]:
    ids = list(queries)
    texts = [queries[q] for q in ids]
    hits = search_all(index, texts, k=PASSAGES_PER_QUERY, modes=modes, clock=clock, recency=recency)
    return {
        mode: beir_metrics({q: doc_ranking(h) for q, h in zip(ids, hits[mode], strict=True)}, qrels)
        for mode in modes
    }


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(c for c in text.lower() if c not in set(string.punctuation))
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def squad_f1(prediction: str, gold: str) -> float:
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = sum((Counter(pred) & Counter(ref)).values())
    if not common:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def evaluate_squad(
    index: Index,
    questions: Sequence[Question],
    *,
    modes: Sequence[Mode],
    answers: bool = False,
    clock: Clock | None = None,
    recency: bool | None = None,
) -> dict[str, dict[str, float]]:
    """R@1, R@5 and MRR@10 of the gold paragraph per mode; with ``answers`` (and Index.ask),
    the answer metrics of the default search."""
    out: dict[str, dict[str, float]] = {}
    n = len(questions)
    texts = [q.text for q in questions]
    hits = search_all(index, texts, k=10, modes=modes, clock=clock, recency=recency)
    for mode in modes:
        ranks = [
            next((i for i, d in enumerate(doc_ranking(h, 10), 1) if d == q.doc_id), 0)
            for q, h in zip(questions, hits[mode], strict=True)
        ]
        out[mode] = {
            "R@1": sum(r == 1 for r in ranks) / n,
            "R@5": sum(0 < r <= 5 for r in ranks) / n,
            "MRR@10": sum(1 / r for r in ranks if r) / n,
        }
    if answers:
        out["answers"] = answer_metrics(index, questions, recency=recency)
    return out


def answer_metrics(
    index: Index, questions: Sequence[Question], *, recency: bool | None = None
) -> dict[str, float]:
    """EM/F1 of the answer text, answers containing a gold answer, first citations on the gold
    paragraph, abstentions: through ``Index.ask`` (answers over the default search)."""
    totals: dict[str, float] = dict.fromkeys(("em", "f1", "contains", "cited", "abstained"), 0.0)
    answers = []
    for start in range(0, len(questions), QUERY_BATCH):
        answers.extend(
            index.ask_many(
                [q.text for q in questions[start : start + QUERY_BATCH]], k=5, recency=recency
            )
        )
    for q, answer in zip(questions, answers, strict=True):
        if answer.abstained:
            totals["abstained"] += 1
            continue
        text = answer.text
        totals["em"] += max(normalize_answer(text) == normalize_answer(g) for g in q.answers)
        totals["f1"] += max(squad_f1(text, g) for g in q.answers)
        totals["contains"] += any(normalize_answer(g) in normalize_answer(text) for g in q.answers)
        totals["cited"] += bool(answer.citations) and answer.citations[0].doc_id == q.doc_id
    n = len(questions)
    return {
        "EM": totals["em"] / n,
        "F1": totals["f1"] / n,
        "answer contains gold": totals["contains"] / n,
        "first citation on gold paragraph": totals["cited"] / n,
        "abstention rate": totals["abstained"] / n,
    }
