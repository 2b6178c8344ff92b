"""The search command: one query, or a JSONL file of queries in batch mode."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    from ..types import Filters, Hit

# Queries embedded per search_many call in batch mode: bounds memory for any size of query file.
QUERY_CHUNK = 256
# Passage text shown per hit in readable output; --json always carries the whole passage.
SNIPPET_CHARS = 300
BATCH_HIT_KEYS = ("rank", "score", "doc_id", "passage_id", "title", "start", "end", "text")


@cli.command("search")
@click.argument("query", required=False)
@INDEX_OPTION
@LOAD_MODEL_OPTION
@click.option(
    "-k", "k", type=click.IntRange(min=1), default=10, show_default=True, help="Hits per query."
)
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@filter_options
@click.option(
    "--queries",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help='Batch mode: a JSONL file ("-" for stdin) of {"_id" or "id", "text"} per line.',
)
@click.option(
    "--mode",
    type=click.Choice(["hybrid", "dense", "lexical"]),
    default="hybrid",
    show_default=True,
    help="Embeddings, BM25, or both fused.",
)
@RECENCY_OPTION
@click.option("--rerank", metavar="MODEL", help="Rerank with this cross-encoder (downloads it).")
def search_command(
    query: str | None,
    index_dir: Path | str,
    k: int,
    as_json: bool,
    filters: Filters,
    queries: Path | None,
    mode: str,
    recency: bool | None,
    rerank: str | None,
    model: str | None,
) -> None:
    """Find the K passages that best match QUERY, best first.

    Give either QUERY or --queries. Batch mode (--queries) always writes JSON Lines, one
    {"query_id", "hits"} object per query in input order, whether or not --json is given; a
    broken line in a query file fails the command before any search is run.
    """
    if (query is None) == (queries is None):
        raise click.UsageError("give either QUERY or --queries, not both or neither")
    if query is not None and not query.strip():
        raise InputError(None, "empty query")  # before loading the model, which takes seconds
    if recency and mode != "hybrid":
        raise InputError(None, f"--recency needs --mode hybrid, got --mode {mode}")
    if queries is not None and str(queries) != "-":
        for _ in _read_queries(queries):  # validate the whole file first: no partial output
            pass

    from ..index import Index

    index = Index.load(index_dir, model=model)
    options: dict[str, Any] = {"filters": filters, "mode": mode, "recency": recency}
    if rerank is not None:
        from ..retrieval.rerank import Reranker

        options["reranker"] = Reranker(rerank)
    with _warnings_to_stderr():
        if query is not None:
            hits = index.search(query, k=k, **options)
            if as_json:
                result = {"query": query, "hits": [hit.to_dict() for hit in hits]}
                click.echo(json.dumps(result, ensure_ascii=False, indent=2))
            else:
                _print_hits(hits)
            return
        assert queries is not None
        records = _read_queries(queries)
        while chunk := list(islice(records, QUERY_CHUNK)):
            results = index.search_many([text for _, text in chunk], k=k, **options)
            for (query_id, _), hits in zip(chunk, results, strict=True):
                out = [{key: hit.to_dict()[key] for key in BATCH_HIT_KEYS} for hit in hits]
                click.echo(json.dumps({"query_id": query_id, "hits": out}, ensure_ascii=False))


def _read_queries(path: Path) -> Iterator[tuple[str, str]]:
    """(id, text) of each non-blank line of a JSONL query file, lazily."""
    name = "<stdin>" if str(path) == "-" else str(path)
    # Bytes, decoded line by line: a text stream decodes ahead in blocks and could not say
    # which line holds a bad byte.
    seen = False
    with click.open_file(str(path), "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError:
                raise InputError(name, "not UTF-8 text", line=number) from None
            if line.strip():
                seen = True
                yield _parse_query(line, name, number)
    if not seen:
        raise InputError(name, "no queries (empty file)")


def _parse_query(line: str, name: str, number: int) -> tuple[str, str]:
    try:
        record = json.loads(line.rstrip("\r\n"))  # a column past the newline would mislead
    except json.JSONDecodeError as exc:
        raise InputError(
            name, f"invalid JSON: {exc.msg} (column {exc.colno})", line=number
        ) from None
    if not isinstance(record, dict):
        raise InputError(name, "expected a JSON object", line=number)
    query_id = record.get("_id", record.get("id"))
    if query_id is None or isinstance(query_id, (dict, list)):
        raise InputError(name, 'no query id: expected "_id" or "id"', line=number)
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise InputError(name, 'no query: expected a non-empty string in "text"', line=number)
    return str(query_id), text


def _print_hits(hits: Sequence[Hit]) -> None:
    if not hits:
        click.echo("no results")
    for hit in hits:
        text = " ".join(hit.text.split())
        if len(text) > SNIPPET_CHARS:
            text = text[:SNIPPET_CHARS].rsplit(" ", 1)[0] + " …"
        click.echo(f"{hit.rank:>2}. {hit.score:.3f}  {hit.title or '(untitled)'}")
        date = hit.date or "no date"
        if hit.date and hit.date_approximate:
            date = f"~{date} (approximate)"
        click.echo(f"    {date}  {hit.source}  [{hit.start}:{hit.end}]")
        if hit.date and hit.date_approximate and hit.metadata.get("date_basis"):
            click.echo(f"    date from: {hit.metadata['date_basis']}")
        click.echo(f"    {text}\n")
