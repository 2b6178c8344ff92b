"""The eval command: retrieval metrics on BEIR, SQuAD or RealTime QA data, per search mode."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..errors import SemsearchError
from .base import RECENCY_OPTION, cli

if TYPE_CHECKING:
    from ..embeddings.embedder import Backend
    from ..evaluate import Clock
    from ..index import Index


def _modes(_ctx: click.Context, _param: click.Parameter, value: str) -> list[str]:
    from ..retrieval.search import MODES

    modes = [m.strip() for m in value.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise click.BadParameter(f"expected a comma-separated list of {', '.join(MODES)}")
    return list(dict.fromkeys(modes))


@cli.command("eval")
@click.argument("data", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--index",
    "index_dir",
    type=click.Path(path_type=Path),
    help="Index of the corpus: reused when it exists, else built and saved there "
    "(RealTime QA: one index per week, DIR/YYYYMMDD) [default: built in memory].",
)
@click.option("--split", default="test", show_default=True, help="BEIR qrels split.")
@click.option(
    "--modes",
    callback=_modes,
    default="hybrid",
    show_default=True,
    help="Comma-separated search modes to compare: dense, lexical, hybrid.",
)
@click.option(
    "--first-tokens",
    is_flag=True,
    help="Index only the first passage-sized piece of each document (the first max_seq_length "
    "tokens), as BEIR's published dense baselines do; --index must then name an index built so.",
)
@click.option(
    "--backend",
    type=click.Choice(["torch", "onnx", "onnx-int8"]),
    help="Embedding runtime of a built index (a reused one keeps its own) "
    "[default: onnx for the bundled model, else torch].",
)
@click.option(
    "--answers", is_flag=True, help="SQuAD and RealTime QA: also score answers (Index.ask)."
)
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N queries.")
@RECENCY_OPTION
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
def eval_command(
    data: Path,
    index_dir: Path | None,
    split: str,
    modes: list[Any],
    first_tokens: bool,
    backend: Backend | None,
    answers: bool,
    limit: int | None,
    recency: bool | None,
    as_json: bool,
) -> None:
    """Measure search quality on DATA: a BEIR folder (corpus.jsonl, queries.jsonl,
    qrels/SPLIT.tsv) for nDCG@10, Recall@10, Recall@100 and MRR@10; a SQuAD-format .json file
    for Recall@1/@5 of each question's own paragraph; or a RealTime QA folder (YYYYMMDD_qa.jsonl
    and YYYYMMDD_gcs.jsonl per week) for how often the top 5 passages hold the correct choice,
    each week searched in an index of its own articles. --answers adds answer quality.
    """
    from .. import evaluate as ev
    from ..evaluate import rtqa as rt

    start = time.perf_counter()
    clock = ev.Clock()
    results: dict[str, Any]
    extra: dict[str, Any] = {}
    if rt.is_realtimeqa(data):
        weeks = rt.realtimeqa_weeks(data)
        if limit is not None:
            weeks = rt.first_questions(weeks, limit)

        def index_of(week: rt.Week) -> Index:
            with clock.time("index build or load"):
                where = None if index_dir is None else index_dir / week.name
                return _build_or_load(where, lambda: week.documents, first_tokens, backend, clock)

        results = rt.evaluate_realtimeqa(
            weeks, index_of, modes=modes, answers=answers, clock=clock, recency=recency
        )
        count = sum(len(w.questions) for w in weeks)
        extra["weeks"] = len(weeks)
    elif data.is_dir():
        queries, qrels = ev.beir_queries(data, split=split)
        if limit is not None:
            queries = dict(list(queries.items())[:limit])
            qrels = {q: qrels[q] for q in queries}
        with clock.time("index build or load"):
            index = _build_or_load(
                index_dir, lambda: ev.beir_corpus(data), first_tokens, backend, clock
            )
        results = ev.evaluate_beir(index, queries, qrels, modes=modes, clock=clock, recency=recency)
        count = len(queries)
    else:
        docs, questions = ev.squad_data(data)
        questions = questions[:limit] if limit is not None else questions
        with clock.time("index build or load"):
            index = _build_or_load(index_dir, lambda: docs, first_tokens, backend, clock)
        results = ev.evaluate_squad(
            index, questions, modes=modes, answers=answers, clock=clock, recency=recency
        )
        count = len(questions)
    seconds = {"total": time.perf_counter() - start, **clock.seconds}
    # Embedding happens inside the index build (passages) and before the searches (queries).
    seconds["other"] = seconds["total"] - sum(
        v for k, v in clock.seconds.items() if k != "index build or load"
    )
    if as_json:
        rounded = {k: round(v, 1) for k, v in seconds.items()}
        report = {"data": str(data), "queries": count, **extra, "seconds": rounded, **results}
        click.echo(json.dumps(report, indent=2))
        return
    _print_table(results)
    parts = ", ".join(f"{k} {v:.1f}" for k, v in seconds.items() if k != "total")
    click.echo(f"{count} queries, {seconds['total']:.1f} s ({parts})", err=True)


def _build_or_load(
    index_dir: Path | None,
    documents: Any,
    first_tokens: bool,
    backend: Backend | None,
    clock: Clock,
) -> Index:
    from .. import engines
    from ..evaluate import first_tokens as cut
    from ..index import Index

    if index_dir is not None and engines.exists(index_dir):
        return Index.load(index_dir)
    if index_dir is not None:
        if index_dir.exists() and any(index_dir.iterdir()):
            raise SemsearchError(f"{index_dir}: not an index and not empty")
        index_dir.mkdir(parents=True, exist_ok=True)
    index = Index(backend=backend)
    docs = documents()
    encode = index.embedder.encode

    def timed(texts: Any, *, progress: bool = False) -> Any:
        with clock.time("embed passages"):
            return encode(texts, progress=progress)

    index.embedder.encode = timed  # type: ignore[method-assign]
    try:
        index.add(cut(index, docs) if first_tokens else docs, progress=sys.stderr.isatty())
    finally:
        del index.embedder.encode  # back to the class's method

    if index_dir is not None:
        index.save(index_dir)
    return index


def _print_table(results: dict[str, dict[str, float]]) -> None:
    metrics = list(dict.fromkeys(m for row in results.values() for m in row))
    width = max(len(m) for m in metrics) + 2
    click.echo("mode".ljust(10) + "".join(m.rjust(width) for m in metrics))
    for mode, row in results.items():
        cells = "".join((f"{row[m]:.4f}" if m in row else "-").rjust(width) for m in metrics)
        click.echo(mode.ljust(10) + cells)
