"""Fit how the default answerer orders sentences on SQuAD v1.1 dev: chosen on a tuning half,
reported on the held-out half.

Usage: python benchmarks/fit_answerer.py [-k 5] [--query-cache NPZ]

Halves by article: questions about even-numbered articles tune, odd ones are held out. Whether
to answer at all stays with the confidence model and threshold of calibrate_abstention.py; this
fits the model that picks and orders the quotes (_RANK_WEIGHTS, _RANK_BIAS, EXTRA_RATIO):
1. Weights: a listwise fit on the tuning half (the full index, k passages per question, hybrid
   search, as Index.ask runs): softmax over each question's candidate sentences, maximising the
   probability of those that hold a gold answer in the gold paragraph (questions with no such
   candidate are left out), from the confidence model's weights, with a small L2 penalty.
2. Probability: a logistic fit of "the best candidate holds the answer" on its score, on the
   tuning half.
3. Extra sentences: the smallest share of the best sentence's probability (from 0.5 in steps
   of 0.05) that a second or third must reach at which the tuning half's answers hold no more
   citations on average than with the confidence model's order and the shipped share.

Prints a JSON report: the fitted constants, and the answer quality on each half of the shipped
answerer, of the fitted one, and of the confidence model ordering the quotes too.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from answers import Question, contains, log
from calibrate_abstention import QueryCache, query_vectors, squad_setup

from semsearch import Index
from semsearch.answers import SentenceAnswerer
from semsearch.answers import sentence as shipped
from semsearch.answers.compose import Candidate

Row = tuple[Question, list[Any], list[Candidate], np.ndarray]
Ranker = tuple[np.ndarray, float, float]  # weights, bias, extra ratio


def features(index: Index, questions: list[Question], k: int, cache: QueryCache) -> list[Row]:
    answerer = SentenceAnswerer()
    out: list[Row] = []
    for i in range(0, len(questions), 512):
        batch = questions[i : i + 512]
        texts = [q.text for q in batch]
        vectors = query_vectors(index, texts, cache)
        hits = index.search_many(texts, k=k, query_vectors=vectors)
        found = answerer.features(index.answer_context(), texts, hits, query_vectors=vectors)
        out.extend(
            (q, hs, cands, rows) for q, hs, (cands, rows) in zip(batch, hits, found, strict=True)
        )
        log(f"  features: {len(out)}/{len(questions)} questions")
    return out


def labels(q: Question, cands: list[Candidate]) -> np.ndarray:
    return np.array([c.hit.doc_id == q.doc_id and contains(c.quote, q.answers) for c in cands])


def listwise(rows: list[Row], init: np.ndarray, steps: int = 300, l2: float = 1e-3) -> np.ndarray:
    import torch

    groups = [(r, labels(q, c)) for q, _, c, r in rows if len(c)]
    groups = [(r, y) for r, y in groups if y.any()]
    x = torch.tensor(np.concatenate([r for r, _ in groups]))
    y = torch.tensor(np.concatenate([y for _, y in groups]), dtype=torch.float32)
    seg = torch.cat([torch.full((len(r),), i) for i, (r, _) in enumerate(groups)])
    n = len(groups)
    w = torch.tensor(init, dtype=torch.float32, requires_grad=True)
    opt = torch.optim.Adam([w], lr=0.05)
    for _ in range(steps):
        opt.zero_grad()
        s = x @ w
        top = torch.zeros(n).scatter_reduce(0, seg, s, reduce="amax", include_self=False)
        e = torch.exp(s - top.detach()[seg])
        total = torch.zeros(n).index_add(0, seg, e)
        good = torch.zeros(n).index_add(0, seg, e * y)
        loss = -(torch.log(good + 1e-12) - torch.log(total)).mean() + l2 * (w**2).sum()
        loss.backward()
        opt.step()
    return w.detach().numpy()


def calibration(rows: list[Row], w: np.ndarray) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

    best, right = [], []
    for q, _, cands, r in rows:
        if cands:
            s = r @ w
            j = int(np.argmax(s))
            best.append(s[j])
            right.append(bool(labels(q, [cands[j]])[0]))
    model = LogisticRegression().fit(np.array(best)[:, None], np.array(right))
    return float(model.coef_[0, 0]), float(model.intercept_[0])


def answer(row: Row, rank: Ranker) -> Any:
    """What SentenceAnswerer.answer_many answers with ``rank`` ordering the quotes."""
    q, hits, cands, rows = row
    return SentenceAnswerer()._decide(q.text, hits, cands, rows, rank)


def quality(rows: list[Row], rank: Ranker) -> dict[str, float]:
    got = [(row[0], answer(row, rank)) for row in rows]
    ok = [(q, a) for q, a in got if not a.abstained]

    def share(n: int) -> float:
        return round(n / len(got), 4)

    return {
        "questions": len(got),
        "answer_text_contains_gold_answer": share(sum(contains(a.text, q.answers) for q, a in ok)),
        "first_citation_is_gold_paragraph": share(
            sum(a.citations[0].doc_id == q.doc_id for q, a in ok)
        ),
        "first_quote_contains_gold_answer": share(
            sum(contains(a.citations[0].quote, q.answers) for q, a in ok)
        ),
        "abstained": share(len(got) - len(ok)),
        "mean_citations": round(sum(len(a.citations) for _, a in ok) / max(len(ok), 1), 3),
        "mean_answer_characters": round(sum(len(a.text) for _, a in ok) / max(len(ok), 1), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-k", type=int, default=5)
    parser.add_argument("--query-cache", type=Path, help="npz (texts, vectors) of SQuAD questions")
    args = parser.parse_args()
    _, questions, index, cache = squad_setup(args.query_cache)
    rows = features(index, questions, args.k, cache)
    tune = [r for r in rows if r[0].article % 2 == 0]
    held = [r for r in rows if r[0].article % 2 == 1]

    w = listwise(tune, shipped._WEIGHTS.astype(np.float32))
    scale, bias = calibration(tune, w)
    weights = (scale * w).astype(np.float32)
    # The confidence model ordering the quotes too, with the share it was shipped with (0.5).
    pointwise: Ranker = (shipped._WEIGHTS, shipped._BIAS, 0.5)
    limit = quality(tune, pointwise)["mean_citations"]
    ratio = 0.95
    for r in np.round(np.arange(0.5, 0.96, 0.05), 2):
        if quality(tune, (weights, bias, float(r)))["mean_citations"] <= limit:
            ratio = float(r)
            break
    report: dict[str, Any] = {
        "halves": {"tune": len(tune), "held-out": len(held)},
        "fitted": {
            "weights": [round(float(x), 3) for x in weights],
            "bias": round(bias, 3),
            "extra_ratio": ratio,
        },
    }
    rankers: dict[str, Ranker] = {
        "shipped": (shipped._RANK_WEIGHTS, shipped._RANK_BIAS, shipped.EXTRA_RATIO),
        "fitted": (weights, bias, ratio),
        "confidence model's order": pointwise,
    }
    for name, rank in rankers.items():
        report[name] = {
            **report.get(name, {}),
            "tune": quality(tune, rank),
            "held-out": quality(held, rank),
            "all": quality(rows, rank),
        }
        log(f"{name}: {json.dumps(report[name])}")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
