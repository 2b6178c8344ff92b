"""Retrieval quality per mode and the choice of hybrid fusion, on SciFact and SQuAD (shared/data).

Usage: python benchmarks/retrieval.py [--cache DIR] [--tune]

Indexes are built once into --cache (outside the repo; the data is evaluation-only) and reused.
--tune scores every fusion method and weight from stored candidate scores (no re-embedding):
weights are chosen on half the SQuAD questions (even positions), then reported on the other
half and on SciFact, which tuning never sees.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from semsearch import Embedder, Index
from semsearch import retrieval as rt
from semsearch.evaluate import (
    beir_corpus,
    beir_metrics,
    beir_queries,
    evaluate_beir,
    evaluate_squad,
    squad_data,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
METHODS: tuple[rt.Fusion, ...] = ("minmax", "zscore", "max", "rrf")
WEIGHTS = [round(w, 2) for w in np.arange(0.1, 0.95, 0.05)]


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


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_or_build(name: str, docs: Any, cache: Path) -> Index:
    embedder = CachedEmbedder(cache / f"{name}-passages.npz", cache / f"{name}-queries.npz")
    path = cache / f"{name}-index"
    if (path / "manifest.json").is_file():
        return Index.load(path, model=embedder)
    start = time.perf_counter()
    index = Index(model=embedder)
    index.add(docs)
    path.mkdir(exist_ok=True)
    index.save(path)
    log(f"{name}: built in {time.perf_counter() - start:.1f}s")
    return index


def candidate_scores(index: Index, texts: list[str]) -> list[tuple[list[str], Any, Any]]:
    """Per query: candidate documents (of each candidate passage), dense and BM25 scores."""
    parts = rt.Parts(index._store, index.vectors, index._lexical, index._dups, index.embedder)
    qvecs = index.embedder.encode(texts)
    doc_of = dict(index._store.db.execute("SELECT id, doc_id FROM passages").fetchall())
    out = []
    for row, text in enumerate(texts):
        ids, dense, lexical, _ = rt.candidates(parts, text, qvecs[row : row + 1], rt.DEPTH, None)
        out.append(([doc_of[i] for i in ids.tolist()], dense, lexical))
    return out


def ranking(cands: tuple[list[str], Any, Any], method: rt.Fusion, weight: float) -> list[str]:
    docs, dense, lexical = cands
    fused = rt.fuse(dense, lexical, method=method, weight=weight)
    return list(dict.fromkeys(docs[i] for i in np.argsort(-fused, kind="stable")))


def tune(cache: Path) -> dict[str, Any]:
    sq_docs, questions = squad_data(DATA / "squad-v1.1-dev" / "dev-v1.1.json")
    sq = candidate_scores(load_or_build("squad", sq_docs, cache), [q.text for q in questions])
    sf_dir = DATA / "beir-scifact"
    queries, qrels = beir_queries(sf_dir)
    sf_index = load_or_build("scifact", beir_corpus(sf_dir), cache)
    sf = dict(zip(queries, candidate_scores(sf_index, list(queries.values())), strict=True))
    halves = {"tune": range(0, len(questions), 2), "held-out": range(1, len(questions), 2)}
    table: dict[str, Any] = {}
    for method in METHODS:
        for weight in WEIGHTS:
            row: dict[str, float] = {}
            for half, rows in halves.items():
                hits = [ranking(sq[i], method, weight)[:5] for i in rows]
                gold = [questions[i].doc_id for i in rows]
                pairs = list(zip(hits, gold, strict=True))
                row[f"squad {half} R@1"] = np.mean([h[:1] == [g] for h, g in pairs])
                row[f"squad {half} R@5"] = np.mean([g in h for h, g in pairs])
            runs = {q: ranking(c, method, weight) for q, c in sf.items()}
            row["scifact nDCG@10"] = beir_metrics(runs, qrels)["nDCG@10"]
            table[f"{method} w={weight}"] = {k: round(float(v), 4) for k, v in row.items()}
    best = max(table, key=lambda key: table[key]["squad tune R@1"] + table[key]["squad tune R@5"])
    return {"best on squad tune half": best, "table": table}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("/work/cache"))
    parser.add_argument("--tune", action="store_true")
    args = parser.parse_args()
    if args.tune:
        print(json.dumps(tune(args.cache), indent=1))
        return
    modes: list[rt.Mode] = ["dense", "lexical", "hybrid"]
    sf_dir = DATA / "beir-scifact"
    queries, qrels = beir_queries(sf_dir)
    results = {
        "scifact": evaluate_beir(
            load_or_build("scifact", beir_corpus(sf_dir), args.cache), queries, qrels, modes=modes
        )
    }
    sq_docs, questions = squad_data(DATA / "squad-v1.1-dev" / "dev-v1.1.json")
    results["squad"] = evaluate_squad(
        load_or_build("squad", sq_docs, args.cache), questions, modes=modes
    )
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
