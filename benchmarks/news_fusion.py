"""Hybrid fusion for news: static weights against query-dependent ones, chosen on tuning halves
and reported on held-out halves of RealTime QA, SQuAD and SciFact.

Usage: python benchmarks/news_fusion.py [--cache DIR] [--weeks DIR] [--bm25 K1 B] [--json]

Every candidate set is computed once (dense cosines, BM25 and proximity of the passages either
ranker puts in its top 100, as Index.search fuses them); each variant then only re-fuses.

Splits: RealTime QA by week (tuning: the first three weeks, held out: the last three), the
answerable questions only, a hit being a top-5 passage holding the correct choice; SQuAD by
question (tuning: even positions, held out: odd), gold paragraph at rank 1 and within 5;
SciFact by query (tuning: even, held out: odd), nDCG@10. Near-duplicate collapse is left out of
the re-fused rankings (it changes no figure here by more than noise: these corpora have few).

Variants (each a function of the candidates' three score arrays):
  static W/P        the default's form: 0.5+ of dense, W of BM25/max, P of proximity
  adaptive A-B      W and P scaled by c = clip((m - A) / (B - A), 0, 1), m the query's best
                    proximity among its candidates: a question that copies an article's wording
                    (SQuAD) keeps the lexical signals; a paraphrase (news quizzes) leans on dense
  confident G       W and P scaled by clip(1 + G * (BM25's margin - dense's margin), 0, 2), a
                    margin being (first - second) / (first - median) of that side's scores:
                    the side whose top candidate stands out gets more say
  + article S       each passage's fused score plus S times the best fused score among the
                    candidates of its own article
  + recency G/T     plus G * exp(-age / T), the age in days of the passage's article before the
                    newest candidate's article (no change for undated articles: SQuAD, SciFact);
                    "cued" only for queries naming a recent time, as Index.search does by
                    default (T then the period they name), "all" for every query
  + title T         plus T times the cosine of the query to the passage's article title alone
  + prf M/E/B       pseudo-relevance feedback on the BM25 side: the E terms of the best M fused
                    passages with the highest tf * idf (not in the query) score the candidates
                    by BM25 too, and B times that is added to their BM25 score
  + title BM25 T    plus T times the BM25 score of the passage's article title in an index of
                    the titles alone (a field of its own, as BM25F weighs one), over its top
  + cap C           at most C passages of one article in the top 5 (the rest move down)
  + dense prf M/R   pseudo-relevance feedback on the dense side (Rocchio): the query vector plus
                    R times the mean vector of the best M passages of the default fusion
                    (before recency), normalised, gives the candidates' cosines in place of the
                    query's own
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
from cache import CACHE
from retrieval import RTQA, HashedCache, load_or_build, log

from semsearch import Filters, Index
from semsearch.engines.local.lexical import index as lexical_index
from semsearch.engines.terms import K1, B
from semsearch.evaluate import beir_corpus, beir_metrics, beir_queries, squad_data
from semsearch.evaluate.rtqa import fold, realtimeqa_weeks
from semsearch.retrieval import DEPTH
from semsearch.retrieval.fusion import LEXICAL_WEIGHT, PROXIMITY_WEIGHT
from semsearch.retrieval.recency import RECENCY_GAIN, recency_boost, recent_days

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TUNE_WEEKS = 3
# ids, cosines, BM25, proximity, each candidate's article and date, the query's recency period,
# the BM25 scores of the query's feedback terms per (M, E), the query's cosine to each
# candidate's title, its title's BM25 score over the titles' own index (divided by the top), and
# the candidates' cosines to the dense feedback query per (M, R), and the query's cosine to each
# candidate in a static word-embedding model (WordLlama, when installed; zeros otherwise)
Cand = tuple[
    list[int],
    np.ndarray,
    np.ndarray,
    np.ndarray,
    list[str],
    list[str | None],
    float | None,
    dict[tuple[int, int], np.ndarray],
    np.ndarray,
    np.ndarray,
    dict[tuple[int, float], np.ndarray],
    np.ndarray,
]
FEEDBACK = ((1, 10), (3, 10), (5, 20))
DENSE_FEEDBACK = tuple((m, r) for m in (1, 2, 3, 5) for r in (0.1, 0.25, 0.5, 1.0))
Fuser = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def candidates(index: Index, texts: list[str]) -> list[Cand]:
    engine = index._engine
    doc_of = dict(engine.store.passage_docs())
    dates = {d.id: d.date for d in index.documents()}
    indexed = {  # what BM25 indexes of each passage: title and text
        p.id: f"{d.title}\n\n{p.text}" if d.title else p.text
        for d in index.documents()
        for p in index.passages(d.id)
    }
    vectors = index.embedder.encode_queries(texts)
    titles = {d.id: d.title for d in index.documents() if d.title}
    title_vectors = dict(zip(titles, index.embedder.encode(list(titles.values())), strict=True))
    title_bm25 = _title_scorer(index, titles)
    stored = engine._searchable(Filters())
    out = []
    for row, text in enumerate(texts):
        ids, dense, lexical, _ = engine.candidates(
            [text], vectors[row : row + 1], DEPTH, Filters()
        )[0]
        near = engine.proximity(text, ids)
        near = np.zeros_like(dense) if near is None else near
        docs = [doc_of[i] for i in ids.tolist()]
        first = np.argsort(-static(LEXICAL_WEIGHT, PROXIMITY_WEIGHT)(dense, lexical, near))
        feedback = {
            (m, e): _feedback(engine.bm25, text, [int(ids[i]) for i in first[:m]], indexed, e, ids)
            for m, e in FEEDBACK
        }
        passage_vectors = stored[0].reconstruct(ids) if stored is not None else None
        dense_feedback = {}
        for m, r in DENSE_FEEDBACK:
            if passage_vectors is None or not len(ids):
                dense_feedback[m, r] = dense
                continue
            query = vectors[row] + r * passage_vectors[first[:m]].mean(axis=0)
            query = query / (float(np.linalg.norm(query)) or 1.0)
            dense_feedback[m, r] = np.asarray(passage_vectors @ query, np.float32)
        out.append(
            (
                ids.tolist(),
                dense,
                lexical,
                near,
                docs,
                [dates[d] for d in docs],
                recent_days(text),
                feedback,
                np.array(
                    [float(title_vectors[d] @ vectors[row]) if d in titles else 0.0 for d in docs]
                ),
                title_bm25(text, docs),
                dense_feedback,
            )
        )
    return _with_static(out, texts, indexed)


def _with_static(out: list[Any], texts: list[str], indexed: dict[int, str]) -> list[Cand]:
    """Each candidate set with the query's cosine to every candidate in WordLlama's static
    embeddings (256-d, a bag of token vectors): a third, cheap signal beside MiniLM and BM25."""
    try:
        from wordllama import WordLlama  # type: ignore[import-not-found]
    except ImportError:
        return [(*c, np.zeros(len(c[0]), np.float32)) for c in out]
    import wordllama

    model = WordLlama.load(cache_dir=Path(wordllama.__file__).parent)
    wanted = sorted({i for c in out for i in c[0]})
    where = {i: row for row, i in enumerate(wanted)}
    passages = model.embed([indexed[i] for i in wanted], norm=True) if wanted else None
    queries = model.embed(texts, norm=True)
    return [
        (*c, np.asarray(passages[[where[i] for i in c[0]]] @ queries[q], np.float32))
        if passages is not None and c[0]
        else (*c, np.zeros(len(c[0]), np.float32))
        for q, c in enumerate(out)
    ]


def _title_scorer(index: Index, titles: dict[str, str]) -> Callable[[str, list[str]], np.ndarray]:
    """Scores candidates' articles by BM25 of their title alone, in an index of the titles."""
    tokens = index._engine.bm25.tokenizer
    distinct = sorted(set(titles.values()))
    where = {t: i for i, t in enumerate(distinct)}
    model = bm25s.BM25(k1=K1, b=B)
    model.index([tokens.terms(t) for t in distinct], show_progress=False)

    def score(query: str, docs: list[str]) -> np.ndarray:
        terms = [t for t in tokens.terms(query) if t in model.vocab_dict]
        per_title = model.get_scores(terms) if terms and distinct else np.zeros(len(distinct))
        s = np.array([per_title[where[titles[d]]] if d in titles else 0.0 for d in docs])
        return np.asarray(s / (float(s.max(initial=0.0)) or 1.0), np.float32)

    return score


def _feedback(
    bm25: Any, query: str, best: list[int], indexed: dict[int, str], e: int, ids: np.ndarray
) -> np.ndarray:
    """BM25 scores of the candidates ``ids`` for the ``e`` terms of the ``best`` passages with
    the highest tf * idf that the query does not hold."""
    tokens, known = bm25.tokenizer, bm25.vocab
    asked = set(tokens.terms(query))
    tf = collections.Counter(
        t for p in best for t in tokens.terms(indexed[p]) if t not in asked and t in known
    )
    terms = sorted(tf, key=lambda t: (-tf[t] * bm25._idf[known[t]], t))[:e]
    if not terms:
        return np.zeros(len(ids), np.float32)
    scores = np.asarray(bm25._matrix().get_scores_from_ids([known[t] for t in terms]), np.float32)
    return scores[np.searchsorted(bm25._ids, ids)]


def static(weight: float, near: float) -> Fuser:
    def fuse(dense: np.ndarray, lexical: np.ndarray, proximity: np.ndarray) -> np.ndarray:
        top = float(lexical.max(initial=0.0)) or 1.0
        return (1 - weight - near) * dense + weight * lexical / top + near * proximity

    return fuse


def adaptive(low: float, high: float, weight: float, near: float) -> Fuser:
    def fuse(dense: np.ndarray, lexical: np.ndarray, proximity: np.ndarray) -> np.ndarray:
        best = float(proximity.max(initial=0.0))
        c = min(1.0, max(0.0, (best - low) / (high - low)))
        return static(weight * c, near * c)(dense, lexical, proximity)

    return fuse


def _margin(scores: np.ndarray) -> float:
    """How far the top score stands out: (first - second) / (first - median), in [0, 1]."""
    if len(scores) < 2:
        return 0.0
    top2 = np.sort(scores)[-2:]
    spread = float(top2[1] - np.median(scores))
    return float(top2[1] - top2[0]) / spread if spread > 0 else 0.0


def confident(gain: float, weight: float, near: float) -> Fuser:
    """The lexical shares scaled by clip(1 + gain * (BM25's margin - dense's margin), 0, 2):
    the side whose top candidate stands out more gets more say."""

    def fuse(dense: np.ndarray, lexical: np.ndarray, proximity: np.ndarray) -> np.ndarray:
        c = min(2.0, max(0.0, 1.0 + gain * (_margin(lexical) - _margin(dense))))
        c = min(c, 0.99 / (weight + near))
        return static(weight * c, near * c)(dense, lexical, proximity)

    return fuse


def order(
    cand: Cand,
    fuse: Fuser,
    article: float = 0.0,
    recency: tuple[str, float, float | None] | None = None,
    prf: tuple[int, int, float] | None = None,
    title: float = 0.0,
    title_bm25: float = 0.0,
    cap: int | None = None,
    dense_prf: tuple[int, float] | None = None,
    static_share: float = 0.0,
) -> list[int]:
    """Passage ids best first; ``article`` adds that share of the best score among the
    candidates of the passage's own article (an article that answers lifts all its passages);
    ``recency`` ("cued" or "all", G, T) adds G * exp(-age / T) (T None: the query's own period,
    else a week), age in days before the newest candidate's article; ``prf`` (M, E, B) adds B
    times the feedback terms' BM25 to the BM25 scores; ``title`` adds that times the query's
    cosine to the article's title, ``title_bm25`` that times its title's BM25 score; ``cap``
    keeps at most that many passages of one article in the top 5; ``dense_prf`` (M, R) takes
    the cosines to the query moved R times the mean of the best M passages; ``static_share``
    adds that times the WordLlama cosine."""
    ids, dense, lexical, near, docs, dates, cue, feedback, titled, title_lexical, moved, wl = cand
    if dense_prf is not None:
        dense = moved[dense_prf]
    if prf is not None:
        lexical = lexical + prf[2] * feedback[prf[0], prf[1]]
    fused = fuse(dense, lexical, near) + title * titled + title_bm25 * title_lexical
    fused = fused + static_share * wl
    if recency is not None:
        which, gain, days = recency
        window = days or cue or 7.0
        if which == "all" or cue is not None:
            fused = fused + recency_boost(dates, window) * (gain / RECENCY_GAIN)
    if article:
        best: dict[str, float] = {}
        for doc, score in zip(docs, fused.tolist(), strict=True):
            best[doc] = max(best.get(doc, -1e9), score)
        fused = fused + article * np.array([best[d] for d in docs], dtype=np.float32)
    ranked = np.argsort(-fused, kind="stable").tolist()
    if cap is not None:
        top: list[int] = []
        for i in ranked:
            if len(top) < 5 and sum(docs[j] == docs[i] for j in top) < cap:
                top.append(i)
        ranked = top + [i for i in ranked if i not in top]
    return [ids[i] for i in ranked]


class Data:
    def __init__(self, cache: Path, weeks: Path | None) -> None:
        sq_docs, questions = squad_data(DATA / "squad-v1.1-dev" / "dev-v1.1.json")
        squad = load_or_build("squad", sq_docs, cache)
        self.sq_doc = dict(squad._engine.store.passage_docs())
        self.sq = candidates(squad, [q.text for q in questions])
        self.sq_gold = [q.doc_id for q in questions]
        sf_dir = DATA / "beir-scifact"
        queries, self.qrels = beir_queries(sf_dir)
        scifact = load_or_build("scifact", beir_corpus(sf_dir), cache)
        self.sf_doc = dict(scifact._engine.store.passage_docs())
        self.sf_ids = list(queries)
        self.sf = candidates(scifact, list(queries.values()))
        self.rt: list[tuple[str, list[Cand], list[str], dict[int, str]]] = []
        for week in realtimeqa_weeks(RTQA):
            if weeks is not None and (weeks / week.name / "manifest.json").is_file():
                index = Index.load(weeks / week.name)  # semsearch eval --index WEEKS
            else:
                index = Index(model=HashedCache(cache / f"rtqa-{week.name}-vectors.npz"))
                index.add(week.documents)  # in memory only
            texts = {p.id: fold(p.text) for d in week.documents for p in index.passages(d.id)}
            sure = [q for q in week.questions if q.answerable]
            self.rt.append(
                (
                    week.name,
                    candidates(index, [q.text for q in sure]),
                    [fold(q.gold) for q in sure],
                    texts,
                )
            )
            log(f"  rtqa {week.name}: {len(sure)} answerable")

    def score(
        self,
        fuse: Fuser,
        article: float = 0.0,
        recency: tuple[str, float, float | None] | None = None,
        prf: tuple[int, int, float] | None = None,
        title: float = 0.0,
        title_bm25: float = 0.0,
        cap: int | None = None,
        dense_prf: tuple[int, float] | None = None,
        static_share: float = 0.0,
    ) -> dict[str, float]:
        def ranked(c: Cand) -> list[int]:
            return order(
                c, fuse, article, recency, prf, title, title_bm25, cap, dense_prf, static_share
            )

        out: dict[str, float] = {}
        for half, weeks in (("tune", self.rt[:TUNE_WEEKS]), ("held-out", self.rt[TUNE_WEEKS:])):
            hits = [
                any(gold in texts[p] for p in ranked(c)[:5])
                for _, cands, golds, texts in weeks
                for c, gold in zip(cands, golds, strict=True)
            ]
            out[f"rtqa {half} top-5"] = float(np.mean(hits))
        for half, start in (("tune", 0), ("held-out", 1)):
            ranks = []
            for i in range(start, len(self.sq), 2):
                docs = list(dict.fromkeys(self.sq_doc[p] for p in ranked(self.sq[i])))
                ranks.append(docs.index(self.sq_gold[i]) + 1 if self.sq_gold[i] in docs else 0)
            out[f"squad {half} R@1"] = float(np.mean([r == 1 for r in ranks]))
            out[f"squad {half} R@5"] = float(np.mean([0 < r <= 5 for r in ranks]))
            runs = {
                self.sf_ids[i]: list(dict.fromkeys(self.sf_doc[p] for p in ranked(self.sf[i])))
                for i in range(start, len(self.sf), 2)
            }
            out[f"scifact {half} nDCG@10"] = beir_metrics(
                runs, {q: self.qrels[q] for q in runs if q in self.qrels}
            )["nDCG@10"]
        return {k: round(v, 4) for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument(
        "--weeks", type=Path, help="RealTime QA week indexes saved by semsearch eval --index"
    )
    parser.add_argument(
        "--bm25",
        nargs=2,
        type=float,
        metavar=("K1", "B"),
        help="BM25 parameters: saved indexes score their stored terms with these on load",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.bm25:
        lexical_index.K1, lexical_index.B = args.bm25
    data = Data(args.cache, args.weeks)
    variants: dict[str, tuple[Fuser, float]] = {
        "dense": (static(0.0, 0.0), 0.0),
        "lexical only": (static(1.0, 0.0), 0.0),
        f"default: static {LEXICAL_WEIGHT}/{PROXIMITY_WEIGHT}": (
            static(LEXICAL_WEIGHT, PROXIMITY_WEIGHT),
            0.0,
        ),
    }
    for w in (0.05, 0.1, 0.15, 0.2):
        for p in (0.0, 0.1, 0.2, 0.35):
            variants[f"static {w}/{p}"] = (static(w, p), 0.0)
    for low in (0.2, 0.4, 0.6):
        for high in (0.6, 0.8, 1.0):
            if high > low:
                fuse = adaptive(low, high, LEXICAL_WEIGHT, PROXIMITY_WEIGHT)
                variants[f"adaptive {low}-{high}"] = (fuse, 0.0)
    for gain in (0.25, 0.5, 1.0, 2.0):
        fuse = confident(gain, LEXICAL_WEIGHT, PROXIMITY_WEIGHT)
        variants[f"confident {gain}"] = (fuse, 0.0)
    for share in (0.1, 0.2, 0.3, 0.5, 1.0):
        variants[f"default + article {share}"] = (static(LEXICAL_WEIGHT, PROXIMITY_WEIGHT), share)
        variants[f"dense + article {share}"] = (static(0.0, 0.0), share)
        variants[f"static 0.15/0.1 + article {share}"] = (static(0.15, 0.1), share)
    table = {name: data.score(fuse, share) for name, (fuse, share) in variants.items()}
    default = static(LEXICAL_WEIGHT, PROXIMITY_WEIGHT)
    for which in ("all", "cued"):
        for gain in (0.1, 0.2, 0.3, 0.5):
            for days in (7.0, 14.0, 30.0):
                name = f"default + recency {which} {gain}/{days:g}d"
                table[name] = data.score(default, 0.0, (which, gain, days))
            name = f"default + recency {which} {gain}/period named"
            table[name] = data.score(default, 0.0, (which, gain, None))
    for weight in (0.05, 0.1, 0.2, 0.3):
        table[f"default + recency cued + title {weight}"] = data.score(
            default, 0.0, ("cued", RECENCY_GAIN, None), title=weight
        )
    cued = ("cued", RECENCY_GAIN, None)
    for weight in (0.025, 0.05, 0.1, 0.2):
        name = f"default + recency cued + title BM25 {weight}"
        table[name] = data.score(default, 0.0, cued, title_bm25=weight)
    for cap in (1, 2, 3):
        table[f"default + recency cued + cap {cap}"] = data.score(default, 0.0, cued, cap=cap)
    for m, e in FEEDBACK:
        for beta in (0.1, 0.2, 0.35, 0.5):
            table[f"default + prf {m}/{e}/{beta}"] = data.score(default, prf=(m, e, beta))
            table[f"default + recency cued + prf {m}/{e}/{beta}"] = data.score(
                default, 0.0, ("cued", RECENCY_GAIN, None), (m, e, beta)
            )
    for gain in (0.25, 0.5, 1.0, 2.0):
        fuse = confident(gain, LEXICAL_WEIGHT, PROXIMITY_WEIGHT)
        table[f"confident {gain} + recency cued"] = data.score(fuse, 0.0, cued)
    for m, r in DENSE_FEEDBACK:
        name = f"default + recency cued + dense prf {m}/{r}"
        table[name] = data.score(default, 0.0, cued, dense_prf=(m, r))
    static_shares = (0.05, 0.1, 0.2, 0.3) if importlib.util.find_spec("wordllama") else ()
    for share in static_shares:  # rows only where `pip install wordllama` was run
        name = f"default + recency cued + wordllama {share}"
        table[name] = data.score(default, 0.0, cued, static_share=share)
        name = f"default + recency cued + dense prf 1/1.0 + wordllama {share}"
        table[name] = data.score(default, 0.0, cued, dense_prf=(1, 1.0), static_share=share)
    if args.json:
        print(json.dumps(table, indent=1))
        return
    columns = list(next(iter(table.values())))
    print("| variant | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for name, row in table.items():
        print(f"| {name} | " + " | ".join(f"{row[c]:.4f}" for c in columns) + " |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
