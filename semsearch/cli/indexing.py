"""Commands that change or describe an index: index, info, remove."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import click

from .. import engines
from ..errors import SemsearchError
from .base import (
    INDEX_OPTION,
    LOAD_MODEL_OPTION,
    IndexLocation,
    _plural,
    _warnings_to_stderr,
    cli,
    shown,
)

# Duplicate article groups printed by ``info`` (``--json`` gives them all).
ARTICLE_GROUPS_SHOWN = 10

if TYPE_CHECKING:
    from ..embeddings.embedder import Backend
    from ..index import Index


class ByteSize(click.ParamType):  # type: ignore[type-arg]  # generic from click 8.5 only
    """A size in bytes: a plain number or one with a unit (KB, MB, GB; KiB, MiB, GiB)."""

    name = "size"
    units: ClassVar[dict[str, int]] = {
        **{"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12},
        **{"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40},
    }

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(value))
        unit = match and self.units.get(match.group(2).lower())
        if not match or unit is None or float(match.group(1)) * unit < 1:
            self.fail(f"{value!r} is not a size such as 512MB, 2GiB or 1000000", param, ctx)
        return int(float(match.group(1)) * unit)


@cli.command("index")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@INDEX_OPTION
@click.option("--model", help="Embedding model (default: bundled all-MiniLM-L6-v2).")
@click.option(
    "--backend",
    type=click.Choice(["torch", "onnx", "onnx-int8"]),
    help="Embedding runtime; onnx-int8 is faster with slightly different vectors "
    "[default: onnx for the bundled model, else torch; int8 if the index was built with it].",
)
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
@click.option(
    "--vector-index",
    type=click.Choice(["auto", "flat", "ivf-sq8", "ivf-pq"]),
    help="FAISS index type; auto chooses by corpus size and memory budget, and changes type "
    "as the corpus grows [default: auto, or what the index was set to].",
)
@click.option(
    "--memory-budget",
    type=ByteSize(),
    metavar="SIZE",
    help="Memory the vector search structure may use, e.g. 2GB or 512MiB; auto picks the "
    "most accurate type that fits [default: 4GiB, or what the index was set to].",
)
@click.option(
    "--ray",
    "ray_address",
    is_flag=False,
    flag_value="auto",
    default=None,
    metavar="[ADDRESS]",
    help="Read, chunk and embed on a Ray cluster (ray://HOST:10001 or HOST:6379); alone, "
    "or with auto, on a local Ray. Needs the [ray] extra.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary.")
def index_command(
    paths: tuple[Path, ...],
    index_dir: Path | str,
    model: str | None,
    backend: Backend | None,
    max_tokens: int | None,
    overlap: int | None,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    strict: bool,
    max_file_size: int | None,
    vector_index: str | None,
    memory_budget: int | None,
    ray_address: str | None,
    quiet: bool,
) -> None:
    """Add the articles in PATHS (files or directories) to the index, creating it if needed.

    Documents already indexed are replaced, or kept as they are when unchanged. On any error
    the index on disk is left exactly as it was.
    """
    # Refuse an unwritable target before the slow part, not after minutes of embedding.
    engines.check_writable(index_dir)

    from ..index import Index
    from ..ingest.files import DEFAULT_MAX_FILE_BYTES, read_articles

    existed = engines.exists(index_dir)
    if existed:
        index = Index.load(index_dir, model=model, backend=backend)
        stored = index.settings
        for name, given, have in (
            ("--max-tokens", max_tokens, stored.max_tokens),
            ("--overlap", overlap, stored.overlap),
        ):
            if given is not None and given != have:
                raise SemsearchError(
                    f"{shown(index_dir)}: index was built with {name} {have}; "
                    "rebuild it to change it"
                )
    else:
        kwargs: dict[str, Any] = {} if model is None else {"model": model}
        if isinstance(index_dir, str):
            kwargs["engine"] = index_dir  # a Milvus address
        index = Index(max_tokens=max_tokens, overlap=overlap or 0, backend=backend, **kwargs)
        _ = index.embedder.model  # fail on an unknown model before reading any article
        try:
            _ = index.settings  # checks --max-tokens against what the model reads
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--max-tokens") from None

    retargeted = vector_index is not None or memory_budget is not None
    if retargeted:
        index.configure_vectors(vector_index=vector_index, memory_budget=memory_budget)

    skipped: list[str] = []
    with _warnings_to_stderr(skipped):
        reading: dict[str, Any] = {
            "include": include,
            "exclude": exclude,
            "strict": strict,
            "max_file_bytes": max_file_size or DEFAULT_MAX_FILE_BYTES,
        }
        shown_progress = sys.stderr.isatty() and not quiet
        if ray_address is not None:
            report = index.add_with_ray(
                paths, address=ray_address, progress=shown_progress, **reading
            )
        else:
            report = index.add(read_articles(paths, **reading), progress=shown_progress)
    total = report.added + report.replaced + report.unchanged
    if total == 0:
        # Saving would create an empty index (or rewrite an unchanged one): almost always a
        # wrong path or pattern, which deserves a failing exit status.
        raise SemsearchError(f"no documents found in {', '.join(map(str, paths))}")
    if report.added or report.replaced or retargeted or not existed:
        index.save(index_dir)  # not when nothing changed: the files on disk stay as they are
        _prepare_search_backend(index)
    if not quiet:
        line = (
            f"indexed {_plural(total, 'document')} ({report.added} new, {report.replaced} "
            f"replaced, {report.unchanged} unchanged), {_plural(report.passages, 'passage')} "
            f"({report.embedded} embedded) into {shown(index_dir)}"
        )
        if skipped:
            line += f"; skipped {_plural(len(skipped), 'file')}"
        click.echo(line, err=True)


def _prepare_search_backend(index: Index) -> None:
    """Export the model for the backend that will search this index, if it is not the one that
    built it (torch builds, ONNX searches): torch is loaded now, so exporting costs a few
    seconds once, and every later `semsearch search` starts without torch."""
    from ..embeddings.embedder import Embedder, loading_backend

    wanted = loading_backend(index.embedder.name, index.embedder.backend)
    if wanted != index.embedder.backend:
        _ = Embedder(index.embedder.name, backend=wanted).model


@cli.command("info")
@INDEX_OPTION
@LOAD_MODEL_OPTION
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@click.option(
    "--check-recall",
    is_flag=True,
    help="Measure recall@10 of vector search against exact search (query-like probes).",
)
def info_command(index_dir: Path, as_json: bool, check_recall: bool, model: str | None) -> None:
    """Describe an index: model, counts, chunking, vector index and file sizes (without
    loading the model)."""
    from ..index import Index

    index = Index.load(index_dir, model=model)
    info = index.info(files=True, check_recall=check_recall)
    if as_json:
        click.echo(json.dumps(info, ensure_ascii=False, indent=2))
        return
    for key, value in info.items():
        if key == "files":
            for role, entry in value.items():
                click.echo(f"file {role}: {entry['name']} ({entry['bytes']:,} bytes)")
        elif key == "duplicates":
            # A news archive has tens of thousands of duplicate groups: a sample, and the count.
            groups = value["article_groups"]
            shown = {**value, "article_groups": groups[:ARTICLE_GROUPS_SHOWN]}
            line = ", ".join(f"{k}={json.dumps(v)}" for k, v in shown.items())
            if len(groups) > ARTICLE_GROUPS_SHOWN:
                line += f" (+{len(groups) - ARTICLE_GROUPS_SHOWN:,} more; --json lists all)"
            click.echo(f"{key}: {line}")
        elif isinstance(value, dict):
            click.echo(f"{key}: " + ", ".join(f"{k}={json.dumps(v)}" for k, v in value.items()))
        else:
            click.echo(f"{key}: {value}")


@cli.command("remove")
@click.argument("doc_ids", nargs=-1, required=True)
@INDEX_OPTION
@LOAD_MODEL_OPTION
def remove_command(doc_ids: tuple[str, ...], index_dir: Path, model: str | None) -> None:
    """Remove the documents with ids DOC_IDS; an unknown id fails and changes nothing."""
    engines.check_writable(index_dir)
    from ..index import Index

    index = Index.load(index_dir, model=model)
    passages = index.remove(doc_ids)
    index.save(index_dir)
    click.echo(
        f"removed {_plural(len(set(doc_ids)), 'document')} "
        f"({_plural(passages, 'passage')}) from {shown(index_dir)}",
        err=True,
    )


@cli.command("copy")
@click.argument("source", type=IndexLocation())
@click.argument("target", type=IndexLocation())
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary.")
def copy_command(source: Path | str, target: Path | str, quiet: bool) -> None:
    """Copy the index at SOURCE to TARGET (directories or Milvus addresses): documents,
    passages and their stored vectors, embedding nothing. TARGET may be new, or an index built
    with the same model (documents of the same id are replaced); on any error it is left as
    it was."""
    from ..indexing import copy_documents

    if shown(source) == shown(target) or (
        isinstance(source, Path) and isinstance(target, Path) and _same(source, target)
    ):
        raise SemsearchError(f"{shown(target)}: the source and the target are one index")
    engines.check_writable(target)
    src = engines.open_engine(source)
    settings = src.settings
    if settings is None:
        raise SemsearchError(f"{shown(source)}: holds no index settings")
    dst = (
        engines.open_engine(target)
        if engines.exists(target)
        else engines.new_engine(target if isinstance(target, str) else None)
    )
    documents, passages = copy_documents(
        src, dst, settings, progress=sys.stderr.isatty() and not quiet
    )
    dst.save(settings, str(target))
    if not quiet:
        click.echo(
            f"copied {_plural(documents, 'document')} ({_plural(passages, 'passage')}) "
            f"from {shown(source)} to {shown(target)}",
            err=True,
        )


def _same(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve()
