"""Abstention quality of the default answerer on SQuAD, held out, beside a pointwise refit.

Four disjoint groups of 12 articles: a group's own questions asked of its paragraphs are
answerable, another group's are not. "shipped" is the default answerer (its constants come from
benchmarks/fit_answerer.py) on groups 2 and 3; the logistic refit of "this sentence holds a
gold answer" on groups 0 and 1, with the threshold of best abstention F1, is shown for
comparison.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from answers import Question, contains, load_squad, log, squad_index

from semsearch import Document, Filters, Index
from semsearch.answers import SentenceAnswerer
from semsearch.answers import sentence as answers_module
from semsearch.retrieval.search import encode_queries

QueryCache = dict[str, np.ndarray]


def load_query_cache(path: Path, index: Index, sample: list[str]) -> QueryCache:
    """Question vectors saved earlier (npz: texts, vectors), checked against fresh encodes of
    ``sample`` so that vectors from another model cannot slip in."""
    with np.load(path, allow_pickle=False) as z:
        cache = dict(zip(z["texts"].tolist(), z["vectors"], strict=True))
    probe = [q for q in sample if q in cache][:8]
    fresh = index.embedder.encode_queries(probe)
    worst = min((float(fresh[i] @ cache[q]) for i, q in enumerate(probe)), default=0.0)
    if worst < 0.999:
        raise SystemExit(f"{path}: vectors disagree with the model (cosine {worst:.4f})")
    log(f"query vectors from {path}: {len(cache)} (checked on {len(probe)})")
    return cache


def squad_setup(
    query_cache: Path | None,
) -> tuple[list[Document], list[Question], Index, QueryCache]:
    """The SQuAD dev articles and questions, their index, and the question vectors saved in
    ``query_cache`` (checked against the model) or none."""
    docs, questions = load_squad()
    index = squad_index(docs)
    cache: QueryCache = {}
    if query_cache:
        cache = load_query_cache(query_cache, index, [q.text for q in questions[:50]])
    return docs, questions, index, cache


def query_vectors(index: Index, texts: list[str], cache: QueryCache) -> np.ndarray:
    if all(t in cache for t in texts):
        return np.stack([cache[t] for t in texts]).astype(np.float32)
    return encode_queries(index.embedder, texts)


def split_features(
    index: Index,
    answerable: list[Question],
    unanswerable: list[Question],
    doc_ids: list[str],
    k: int,
    cache: QueryCache,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Candidate features and labels, and per candidate its question row and answerability.

    The index is restricted to ``doc_ids`` (one group of articles) by the search filter, which is
    exact: it gives the same hits as an index holding only those articles.
    """
    questions = answerable + unanswerable
    answerer = SentenceAnswerer()
    feats, labels, owner = [], [], []
    for i in range(0, len(questions), 512):
        batch = questions[i : i + 512]
        texts = [q.text for q in batch]
        vectors = query_vectors(index, texts, cache)  # once, for the search and the scores
        hits = index.search_many(
            texts, k=k, filters=Filters(doc_ids=doc_ids), query_vectors=vectors
        )
        features = answerer.features(index.answer_context(), texts, hits, query_vectors=vectors)
        for j, (q, (cands, rows)) in enumerate(zip(batch, features, strict=True)):
            for c, row in zip(cands, rows, strict=True):
                feats.append(row)
                labels.append(c.hit.doc_id == q.doc_id and contains(c.quote, q.answers))
                owner.append(i + j)
        log(f"  features: {min(i + 512, len(questions))}/{len(questions)} questions")
    is_answerable = np.array([True] * len(answerable) + [False] * len(unanswerable))
    return np.array(feats), np.array(labels), np.array(owner), is_answerable


def best_per_question(probs: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    best = np.zeros(n)
    np.maximum.at(best, owner, probs)
    return best


def abstention_quality(
    best: np.ndarray, answerable: np.ndarray, threshold: float
) -> dict[str, Any]:
    abstain = best < threshold
    tp = int(np.sum(abstain & ~answerable))
    precision = tp / max(int(abstain.sum()), 1)
    recall = tp / max(int((~answerable).sum()), 1)
    f1 = 2 * precision * recall / max(precision + recall, 1e-9)
    return {
        "threshold": round(threshold, 3),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "abstained_on_answerable": round(float(abstain[answerable].mean()), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-k", type=int, default=5)
    parser.add_argument(
        "--query-cache",
        type=Path,
        help="npz (texts, vectors) of SQuAD question vectors (CACHE/squad-queries.npz)",
    )
    args = parser.parse_args()
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

    docs, questions, index, cache = squad_setup(args.query_cache)
    # Four disjoint groups of 12 articles: fit on groups 0 (index, answerable) and 1
    # (unanswerable), hold out groups 2 and 3 the same way, so nothing is reused.
    group = {q.article: q.article % 4 for q in questions}
    by_group = [[q for q in questions if group[q.article] == g] for g in range(4)]
    docs_of = [[d.id for d in docs if int(d.id.split("-")[0]) % 4 == g] for g in range(4)]
    fit = split_features(index, by_group[0], by_group[1], docs_of[0], args.k, cache)
    held = split_features(index, by_group[2], by_group[3], docs_of[2], args.k, cache)

    model = LogisticRegression(C=1.0, max_iter=1000).fit(fit[0], fit[1])
    weights, bias = model.coef_[0], float(model.intercept_[0])

    def best(split: tuple[np.ndarray, ...], w: np.ndarray = weights, b: float = bias) -> np.ndarray:
        feats, _, owner, answerable = split
        probs = 1.0 / (1.0 + np.exp(-(feats @ w + b)))
        return best_per_question(probs, owner, len(answerable))

    fit_best, held_best = best(fit), best(held)
    grid = np.round(np.arange(0.01, 0.9, 0.01), 2)
    scored = [abstention_quality(fit_best, fit[3], float(t)) for t in grid]
    chosen = max(scored, key=lambda r: r["f1"])["threshold"]
    report = {
        "fit_questions": {"answerable": len(by_group[0]), "unanswerable": len(by_group[1])},
        "held_out_questions": {"answerable": len(by_group[2]), "unanswerable": len(by_group[3])},
        "weights": [round(float(w), 3) for w in weights],
        "bias": round(bias, 3),
        "threshold": chosen,
        "fit": abstention_quality(fit_best, fit[3], chosen),
        "held_out": abstention_quality(held_best, held[3], chosen),
        # What the answerer in semsearch/answers/sentence.py uses, on the same held-out questions.
        "shipped": {
            "weights": [round(float(w), 3) for w in answers_module._WEIGHTS],
            "bias": answers_module._BIAS,
            "threshold": answers_module.ABSTAIN_BELOW,
            "held_out": abstention_quality(
                best(held, answers_module._WEIGHTS, answers_module._BIAS),
                held[3],
                answers_module.ABSTAIN_BELOW,
            ),
        },
        "held_out_curve": [
            abstention_quality(held_best, held[3], t) for t in (0.05, 0.1, 0.2, 0.3, 0.4, 0.5)
        ],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
