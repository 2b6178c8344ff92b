"""The ask command: a cited answer to one question, or a plain statement that there is none."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..errors import InputError
from .base import (
    INDEX_OPTION,
    LOAD_MODEL_OPTION,
    RECENCY_OPTION,
    _warnings_to_stderr,
    cli,
    filter_options,
)

if TYPE_CHECKING:
    from ..answers.compose import Answer
    from ..types import Filters

CITATION_KEYS = ("n", "doc_id", "title", "passage_id", "start", "end", "quote")


@cli.command("ask")
@click.argument("question")
@INDEX_OPTION
@LOAD_MODEL_OPTION
@click.option(
    "-k",
    "k",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Passages to answer from.",
)
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@filter_options
@RECENCY_OPTION
def ask_command(
    question: str,
    index_dir: Path,
    k: int,
    as_json: bool,
    filters: Filters,
    recency: bool | None,
    model: str | None,
) -> None:
    """Answer QUESTION with quotes from the indexed articles, each cited as [n].

    When the articles do not answer it, says so (and, with --json, "abstained" is true).
    """
    if not question.strip():
        raise InputError(None, "empty question")  # before loading the model, which takes seconds

    from ..index import Index

    index = Index.load(index_dir, model=model)
    with _warnings_to_stderr():
        answer = index.ask(question, k=k, filters=filters, recency=recency)
    if as_json:
        out = {
            "question": answer.question,
            "answer": answer.text,
            "abstained": answer.abstained,
            "confidence": round(answer.confidence, 4),
            "citations": [
                {key: c.to_dict()[key] for key in CITATION_KEYS} for c in answer.citations
            ],
        }
        click.echo(json.dumps(out, ensure_ascii=False, indent=2))
    else:
        _print_answer(answer)


def _print_answer(answer: Answer) -> None:
    click.echo(textwrap.fill(answer.text, width=100))
    if answer.abstained:
        if answer.passages:
            click.echo("\nClosest passages:")
            for hit in answer.passages:
                click.echo(f"  - {hit.title or '(untitled)'} [{hit.start}:{hit.end}]")
        return
    click.echo(f"\nSources (confidence {answer.confidence:.2f}):")
    for c in answer.citations:
        click.echo(f"[{c.n}] {c.title or '(untitled)'}")
        click.echo(f"    {c.date or 'no date'}  {c.source}  [{c.start}:{c.end}]")
