"""The ``semsearch`` command line: index, search, info and remove over a saved index directory."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click

from . import manifest as mf
from .errors import InputError, SemsearchError, SemsearchWarning, SkippedInputWarning

if TYPE_CHECKING:
    from .types import Hit

# Queries embedded per search_many call in batch mode: bounds memory for any size of query file.
QUERY_CHUNK = 256
# Passage text shown per hit in readable output; --json always carries the whole passage.
SNIPPET_CHARS = 300
BATCH_HIT_KEYS = ("rank", "score", "doc_id", "passage_id", "title", "start", "end", "text")


class CommandError(click.ClickException):
    """A failure reported as one ``error: ...`` line, never a traceback."""

    def __init__(self, message: str) -> None:
        # One line whatever the message holds: scripts read stderr line by line.
        super().__init__(" ".join(message.splitlines()))

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", file=file or sys.stderr)


class Interrupted(CommandError):
    """Ctrl-C: the conventional 128 + SIGINT status, so shells and scripts see an interrupt."""

    exit_code = 130


def _os_message(exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    return f"{exc.filename}: {reason}" if exc.filename else reason


class _Group(click.Group):
    """Maps semsearch's own errors, I/O errors and Ctrl-C to one-line messages and exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SemsearchError as exc:
            raise CommandError(str(exc)) from None
        except BrokenPipeError:
            raise  # click closes stdout quietly: `semsearch search ... | head` is no error
        except OSError as exc:
            raise CommandError(_os_message(exc)) from None
        except KeyboardInterrupt:
            raise Interrupted("interrupted") from None


@contextlib.contextmanager
def _warnings_to_stderr(skipped: list[str] | None = None) -> Iterator[None]:
    """Print each warning as it happens as one ``warning: ...`` line; count skipped files."""

    def show(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
        if skipped is not None and issubclass(category, SkippedInputWarning):
            skipped.append(str(message))
        click.echo(f"warning: {' '.join(str(message).splitlines())}", err=True)

    with warnings.catch_warnings():
        # Every skipped file must be reported, not only the first from each line of code.
        warnings.simplefilter("always", SemsearchWarning)
        warnings.showwarning = show
        yield


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        from . import __version__

        click.echo(f"semsearch {__version__}")
        ctx.exit()


def _check_date(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            raise click.BadParameter(f"{value!r} is not a date as YYYY-MM-DD") from None
    return value


INDEX_OPTION = click.option(
    "--index", "index_dir", required=True, type=click.Path(path_type=Path), help="Index directory."
)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the version and exit.",
)
def cli() -> None:
    """Semantic search over news articles.

    Exit status: 0 success, 1 error (one "error: ..." line on stderr), 2 usage error,
    130 interrupted.
    """


@cli.command("index")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@INDEX_OPTION
@click.option("--model", help="Embedding model (default: bundled all-MiniLM-L6-v2).")
@click.option(
    "--max-tokens",
    type=click.IntRange(min=1),
    help="Tokens per passage [default: all the model reads].",
)
@click.option(
    "--overlap",
    type=click.IntRange(min=0),
    help="Sentences a passage repeats from the one before [default: 0].",
)
@click.option("--include", multiple=True, metavar="GLOB", help="Only files matching (repeat).")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Skip files matching (repeat).")
@click.option("--strict", is_flag=True, help="Fail on a bad file in a directory, not skip it.")
@click.option(
    "--max-file-size",
    type=click.IntRange(min=1),
    metavar="BYTES",
    help="Largest file or JSONL line read [default: 20 MiB].",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary.")
def index_command(
    paths: tuple[Path, ...],
    index_dir: Path,
    model: str | None,
    max_tokens: int | None,
    overlap: int | None,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    strict: bool,
    max_file_size: int | None,
    quiet: bool,
) -> None:
    """Add the articles in PATHS (files or directories) to the index, creating it if needed.

    Documents already indexed are replaced, or kept as they are when unchanged. On any error
    the index on disk is left exactly as it was.
    """
    # Refuse an unwritable target before the slow part, not after minutes of embedding.
    if index_dir.exists() and not index_dir.is_dir():
        raise SemsearchError(f"{index_dir}: not a directory")
    if index_dir.exists():
        mf.check_writable(index_dir)
    elif not index_dir.parent.is_dir():
        raise SemsearchError(f"{index_dir.parent}: directory does not exist")
    elif not os.access(index_dir.parent, os.W_OK):
        raise SemsearchError(f"{index_dir.parent}: directory is read-only")

    from .articles import DEFAULT_MAX_FILE_BYTES, read_articles
    from .index import Index

    if (index_dir / mf.MANIFEST).is_file():
        index = Index.load(index_dir, model=model)
        stored = index.settings
        for name, given, have in (
            ("--max-tokens", max_tokens, stored.max_tokens),
            ("--overlap", overlap, stored.overlap),
        ):
            if given is not None and given != have:
                raise SemsearchError(
                    f"{index_dir}: index was built with {name} {have}; rebuild it to change it"
                )
    else:
        kwargs: dict[str, Any] = {} if model is None else {"model": model}
        index = Index(max_tokens=max_tokens, overlap=overlap or 0, **kwargs)
        _ = index.embedder.model  # fail on an unknown model before reading any article
        try:
            _ = index.settings  # checks --max-tokens against what the model reads
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--max-tokens") from None

    skipped: list[str] = []
    with _warnings_to_stderr(skipped):
        documents = read_articles(
            paths,
            include=include,
            exclude=exclude,
            strict=strict,
            max_file_bytes=max_file_size or DEFAULT_MAX_FILE_BYTES,
        )
        report = index.add(documents, progress=sys.stderr.isatty() and not quiet)
    total = report.added + report.replaced + report.unchanged
    if total == 0:
        # Saving would create an empty index (or rewrite an unchanged one): almost always a
        # wrong path or pattern, which deserves a failing exit status.
        raise SemsearchError(f"no documents found in {', '.join(map(str, paths))}")
    if report.added or report.replaced or not (index_dir / mf.MANIFEST).is_file():
        index.save(index_dir)  # not when nothing changed: the files on disk stay as they are
    if not quiet:
        line = (
            f"indexed {_plural(total, 'document')} ({report.added} new, {report.replaced} "
            f"replaced, {report.unchanged} unchanged), {_plural(report.passages, 'passage')} "
            f"({report.embedded} embedded) into {index_dir}"
        )
        if skipped:
            line += f"; skipped {_plural(len(skipped), 'file')}"
        click.echo(line, err=True)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


@cli.command("search")
@click.argument("query", required=False)
@INDEX_OPTION
@click.option(
    "-k", "k", type=click.IntRange(min=1), default=10, show_default=True, help="Hits per query."
)
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@click.option("--date-from", callback=_check_date, metavar="YYYY-MM-DD", help="Inclusive.")
@click.option("--date-to", callback=_check_date, metavar="YYYY-MM-DD", help="Inclusive.")
@click.option("--source", multiple=True, metavar="GLOB", help="Only these sources (repeat).")
@click.option(
    "--queries",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help='Batch mode: a JSONL file ("-" for stdin) of {"_id" or "id", "text"} per line.',
)
def search_command(
    query: str | None,
    index_dir: Path,
    k: int,
    as_json: bool,
    date_from: str | None,
    date_to: str | None,
    source: tuple[str, ...],
    queries: Path | None,
) -> None:
    """Find the K passages closest in meaning to QUERY, best first.

    Give either QUERY or --queries. Batch mode (--queries) always writes JSON Lines, one
    {"query_id", "hits"} object per query in input order, whether or not --json is given; a
    broken line in a query file fails the command before any search is run.
    """
    if (query is None) == (queries is None):
        raise click.UsageError("give either QUERY or --queries, not both or neither")
    if query is not None and not query.strip():
        raise InputError(None, "empty query")  # before loading the model, which takes seconds
    if queries is not None and str(queries) != "-":
        for _ in _read_queries(queries):  # validate the whole file first: no partial output
            pass

    from .index import Index

    index = Index.load(index_dir)
    filters: dict[str, Any] = {
        "date_from": date_from,
        "date_to": date_to,
        "sources": list(source) or None,
    }
    with _warnings_to_stderr():
        if query is not None:
            hits = index.search(query, k=k, **filters)
            if as_json:
                result = {"query": query, "hits": [hit.to_dict() for hit in hits]}
                click.echo(json.dumps(result, ensure_ascii=False, indent=2))
            else:
                _print_hits(hits)
            return
        assert queries is not None
        records = _read_queries(queries)
        while chunk := list(islice(records, QUERY_CHUNK)):
            results = index.search_many([text for _, text in chunk], k=k, **filters)
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
        click.echo(f"    {text}\n")


@cli.command("info")
@INDEX_OPTION
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
def info_command(index_dir: Path, as_json: bool) -> None:
    """Describe an index: model, counts, chunking and file sizes (without loading the model)."""
    from .index import Index

    info = Index.load(index_dir).info()
    # Index.load has verified the manifest and every file it names, so it can be trusted here.
    manifest = json.loads((index_dir / mf.MANIFEST).read_text(encoding="utf-8"))
    info["files"] = {
        role: {"name": entry["name"], "bytes": entry["bytes"]}
        for role, entry in sorted(manifest["files"].items())
    }
    info["bytes"] = sum(entry["bytes"] for entry in info["files"].values())
    if as_json:
        click.echo(json.dumps(info, ensure_ascii=False, indent=2))
        return
    for key, value in info.items():
        if key == "files":
            for role, entry in value.items():
                click.echo(f"file {role}: {entry['name']} ({entry['bytes']:,} bytes)")
        elif isinstance(value, dict):
            click.echo(f"{key}: " + ", ".join(f"{k}={json.dumps(v)}" for k, v in value.items()))
        else:
            click.echo(f"{key}: {value}")


@cli.command("remove")
@click.argument("doc_ids", nargs=-1, required=True)
@INDEX_OPTION
def remove_command(doc_ids: tuple[str, ...], index_dir: Path) -> None:
    """Remove the documents with ids DOC_IDS; an unknown id fails and changes nothing."""
    mf.check_writable(index_dir)
    from .index import Index

    index = Index.load(index_dir)
    passages = index.remove(doc_ids)
    index.save(index_dir)
    click.echo(
        f"removed {_plural(len(set(doc_ids)), 'document')} "
        f"({_plural(passages, 'passage')}) from {index_dir}",
        err=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: sys.argv[1:]); returns the exit status."""
    try:
        cli.main(args=None if argv is None else list(argv), prog_name="semsearch")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    return 0
