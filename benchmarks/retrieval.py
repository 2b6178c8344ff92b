"""Retrieval quality per mode and the choice of hybrid fusion: SciFact, SQuAD, RealTime QA.

Usage: python benchmarks/retrieval.py [--cache DIR] [--tune] [--skip-rtqa | --only-rtqa]

SciFact and SQuAD indexes are built once into --cache (outside the repo) and reused. SciFact
dense is also measured as BEIR measures it (each document's first max_seq_length tokens only).
RealTime QA (evaluation only): per week, that week's articles are indexed in memory and each
question searched; reported is the share whose top 5 passages contain the gold choice. Only
vectors keyed by a hash of the text are cached (--cache/rtqa-WEEK-vectors.npz), never article text.
--tune scores every fusion method and weight from stored candidate scores (no re-embedding):
weights are chosen on half the SQuAD questions (even positions), then reported on the other
half and on SciFact, which tuning never sees.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from cache import CACHE

from semsearch import Embedder, Filters, Index
from semsearch.evaluate import (
    Clock,
    beir_corpus,
    beir_metrics,
    beir_queries,
    evaluate_beir,
    evaluate_squad,
    first_tokens,
    search_all,
    squad_data,
)
from semsearch.evaluate.rtqa import fold, realtimeqa_weeks
from semsearch.retrieval import DEPTH, Mode
from semsearch.retrieval.fusion import Fusion, fuse

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
METHODS: tuple[Fusion, ...] = ("minmax", "zscore", "max", "rrf")
WEIGHTS = [round(w, 2) for w in np.arange(0.05, 0.55, 0.05)]
PROXIMITY = [round(w, 2) for w in np.arange(0.0, 0.55, 0.05)]


class CachedEmbedder(Embedder):
    """The bundled model, answering from vectors embedded earlier (.npz of texts and vectors)."""

    def __init__(self, *caches: Path) -> None:
        super().__init__()
        self.known: dict[str, np.ndarray] = {}
        for path in caches:
            if path.is_file():
                with np.load(path, allow_pickle=False) as data:
                    self.known.update(zip(data["texts"].tolist(), data["vectors"], strict=True))

    def encode(self, texts: Any, *, progress: bool = False) -> Any:
        missing = [t for t in dict.fromkeys(texts) if t not in self.known]
        if missing:
            self.known.update(zip(missing, super().encode(missing), strict=True))
        return np.stack([self.known[t] for t in texts]).astype(np.float32)

    def encode_query(self, text: str) -> Any:
        return self.encode([text])


class HashedCache(Embedder):
    """The bundled model, remembering vectors by a hash of the text (no text is written)."""

    def __init__(self, path: Path) -> None:
        super().__init__(backend="onnx")  # torch's vectors (tested), embedded faster
        self.path = path
        self.known: dict[str, np.ndarray] = {}
        if path.is_file():
            with np.load(path, allow_pickle=False) as data:
                self.known.update(zip(data["keys"].tolist(), data["vectors"], strict=True))

    def encode(self, texts: Any, *, progress: bool = False) -> Any:
        keys = [self.cache_key(t) for t in texts]
        missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in self.known}
        if missing:
            fresh = super().encode(list(missing.values()), progress=progress)
            self.known.update(zip(missing, fresh, strict=True))
            keys_out = np.asarray(list(self.known), dtype=str)
            np.savez(self.path, keys=keys_out, vectors=np.stack(list(self.known.values())))
        return np.stack([self.known[k] for k in keys]).astype(np.float32)

    def encode_query(self, text: str) -> Any:
        return self.encode([text])


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_or_build(
    name: str, docs: Any, cache: Path, *, first: bool = False, model: Embedder | None = None
) -> Index:
    """The index of ``docs`` saved in ``cache``, built and saved first if it is not there;
    ``model`` [the bundled model, its vectors cached in ``cache``]."""
    cache.mkdir(parents=True, exist_ok=True)
    embedder = model or CachedEmbedder(
        cache / f"{name}-passages.npz", cache / f"{name}-queries.npz"
    )
    path = cache / (f"{name}-first-tokens-index" if first else f"{name}-index")
    if (path / "manifest.json").is_file():
        return Index.load(path, model=embedder)
    start = time.perf_counter()
    index = Index(model=embedder)
    index.add(first_tokens(index, docs) if first else docs)
    path.mkdir(parents=True, exist_ok=True)
    index.save(path)
    log(f"{name}: built in {time.perf_counter() - start:.1f}s")
    return index


Cands = tuple[list[str], Any, Any, Any]


def candidate_scores(index: Index, texts: list[str]) -> list[Cands]:
    """Per query: candidate documents (of each candidate passage), dense, BM25 and proximity
    scores."""
    engine = index._engine
    qvecs = index.embedder.encode_queries(texts)
    doc_of = dict(engine.store.passage_docs())
    out = []
    for row, text in enumerate(texts):
        ids, dense, lexical, _ = engine.candidates([text], qvecs[row : row + 1], DEPTH, Filters())[
            0
        ]
        proximity = engine.proximity(text, ids)
        out.append(([doc_of[i] for i in ids.tolist()], dense, lexical, proximity))
    return out


def ranking(cands: Cands, method: Fusion, weight: float, proximity: float) -> list[str]:
    docs, dense, lexical, near = cands
    fused = fuse(dense, lexical, near, method=method, weight=weight, proximity_weight=proximity)
    return list(dict.fromkeys(docs[i] for i in np.argsort(-fused, kind="stable")))


def tune(cache: Path, model: Callable[[str], Embedder] | None = None) -> dict[str, Any]:
    """Every fusion method and weight on SQuAD (halves) and SciFact; ``model`` gives the
    embedder of a dataset by name [the bundled model]."""
    sq_docs, questions = squad_data(DATA / "squad-v1.1-dev" / "dev-v1.1.json")
    sq_index = load_or_build("squad", sq_docs, cache, model=model("squad") if model else None)
    sq = candidate_scores(sq_index, [q.text for q in questions])
    sf_dir = DATA / "beir-scifact"
    queries, qrels = beir_queries(sf_dir)
    sf_model = model("scifact") if model else None
    sf_index = load_or_build("scifact", beir_corpus(sf_dir), cache, model=sf_model)
    sf = dict(zip(queries, candidate_scores(sf_index, list(queries.values())), strict=True))
    halves = {"tune": range(0, len(questions), 2), "held-out": range(1, len(questions), 2)}
    table: dict[str, Any] = {}
    for method in METHODS:
        for weight in WEIGHTS:
            for near in PROXIMITY:
                if weight + near > 0.9:
                    continue
                row: dict[str, float] = {}
                for half, rows in halves.items():
                    hits = [ranking(sq[i], method, weight, near)[:5] for i in rows]
                    gold = [questions[i].doc_id for i in rows]
                    pairs = list(zip(hits, gold, strict=True))
                    row[f"squad {half} R@1"] = float(np.mean([h[:1] == [g] for h, g in pairs]))
                    row[f"squad {half} R@5"] = float(np.mean([g in h for h, g in pairs]))
                runs = {q: ranking(c, method, weight, near) for q, c in sf.items()}
                row["scifact nDCG@10"] = beir_metrics(runs, qrels)["nDCG@10"]
                key = f"{method} lexical={weight} proximity={near}"
                table[key] = {k: round(float(v), 4) for k, v in row.items()}
    best = max(table, key=lambda key: table[key]["squad tune R@1"] + table[key]["squad tune R@5"])
    return {"best on squad tune half": best, "table": table}


RTQA = DATA / "realtimeqa-2022-dev-slice"
MODES: list[Mode] = ["dense", "lexical", "hybrid"]


def rtqa(
    cache: Path,
    *,
    k: int = 5,
    weeks: list[str] | None = None,
    model: Callable[[str], Embedder] | None = None,
) -> dict[str, Any]:
    """Share of questions whose top ``k`` passages contain the gold choice, per mode, overall
    and per week; ``model`` gives the embedder of a week by name [the bundled model]."""
    every_week = realtimeqa_weeks(RTQA)
    chosen = [w for w in every_week if weeks is None or w.name in weeks]
    rows: dict[str, dict[Mode, list[tuple[bool, bool]]]] = {}
    for week in chosen:
        # One cache per week, so that weeks can run in parallel processes.
        embedder = model(week.name) if model else None
        index = Index(model=embedder or HashedCache(cache / f"rtqa-{week.name}-vectors.npz"))
        index.add(week.documents)  # in memory only: the articles are never written
        hits = search_all(index, [q.text for q in week.questions], k=k, modes=MODES)
        rows[week.name] = {
            mode: [
                (q.answerable, any(fold(q.gold) in fold(h.text) for h in top))
                for q, top in zip(week.questions, hits[mode], strict=True)
            ]
            for mode in MODES
        }
        summary = json.dumps(_rtqa_summary(rows[week.name], k))
        log(f"rtqa {week.name}: {len(week.documents)} articles: {summary}")
    every = {mode: [r for week in rows.values() for r in week[mode]] for mode in MODES}
    return {"all": _rtqa_summary(every, k), **{w: _rtqa_summary(r, k) for w, r in rows.items()}}


def _rtqa_summary(rows: dict[Mode, list[tuple[bool, bool]]], k: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "questions": len(rows["hybrid"]),
        "answerable": sum(a for a, _ in rows["hybrid"]),
    }
    for mode, found in rows.items():
        sure = [hit for answerable, hit in found if answerable]
        out[mode] = {
            f"answerable: gold in top {k}": round(float(np.mean(sure)), 4) if sure else None,
            f"all: gold in top {k}": round(float(np.mean([hit for _, hit in found])), 4),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--tune", action="store_true")
    parser.add_argument("--skip-rtqa", action="store_true")
    parser.add_argument("--only-rtqa", action="store_true")
    parser.add_argument("--weeks", nargs="*", help="RealTime QA weeks (YYYYMMDD) [all]")
    args = parser.parse_args()
    if args.tune:
        print(json.dumps(tune(args.cache), indent=1))
        return
    if args.only_rtqa:
        print(json.dumps({"realtimeqa": rtqa(args.cache, weeks=args.weeks)}, indent=1))
        return
    sf_dir = DATA / "beir-scifact"
    queries, qrels = beir_queries(sf_dir)
    clock = Clock()
    sf_index = load_or_build("scifact", beir_corpus(sf_dir), args.cache)
    results: dict[str, Any] = {
        "scifact": evaluate_beir(sf_index, queries, qrels, modes=MODES, clock=clock)
    }
    log(f"scifact: {clock.seconds}")
    first = load_or_build("scifact", beir_corpus(sf_dir), args.cache, first=True)
    results["scifact"]["dense, first max_seq_length tokens per document (as BEIR)"] = evaluate_beir(
        first, queries, qrels, modes=["dense"]
    )["dense"]
    sq_docs, questions = squad_data(DATA / "squad-v1.1-dev" / "dev-v1.1.json")
    results["squad"] = evaluate_squad(
        load_or_build("squad", sq_docs, args.cache), questions, modes=MODES
    )
    log(json.dumps(results, indent=1))
    if not args.skip_rtqa:
        results["realtimeqa"] = rtqa(args.cache, weeks=args.weeks)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
