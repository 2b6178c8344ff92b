"""Indexing over a Ray cluster: Ray Data reads, chunks and embeds; the driver writes.

Files are read by Ray tasks, and their documents chunked and embedded by a pool of Ray actors
that each load the model once (on a GPU when the cluster has them). The embedded documents
stream back to this process, which writes them into the engine in one transaction: the index
ends with every document or, on any error, as it was. Ray retries a failed task and restarts a
failed actor, so one lost worker costs its batch again, not the run.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..embeddings import Embedder
from ..engines import DocumentPassages, Engine, IndexSettings
from ..errors import InputError, SemsearchError, SkippedInputWarning
from ..indexing import AddReport, check_document, chunk_documents
from ..ingest.files import DEFAULT_MAX_FILE_BYTES, list_inputs, read_articles
from ..passages import ChunkSettings
from ..types import Document, Passage

RETRIES = 3
"""Times Ray retries a failed read task or restarts a failed embedding actor."""
EMBED_BATCH = 64
"""Documents an actor chunks and embeds per call."""
FAIL_ONCE = "SEMSEARCH_TEST_RAY_FAIL_ONCE"
"""For the tests: a file path; the first embedding actor to find it missing creates it and
exits, as a worker whose machine died would (Ray must restart it and redo its batch)."""


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None
    """A Ray cluster (``ray://HOST:10001`` or ``HOST:6379``); None or "auto" starts or joins a
    local Ray."""
    workers: int | None = None
    """Embedding actors; default: one per CPU (or per GPU) of the cluster."""


def add_files(
    engine: Engine,
    embedder: Embedder,
    settings: IndexSettings,
    chunking: ChunkSettings,
    paths: Sequence[str | os.PathLike[str]],
    *,
    options: RayOptions = RayOptions(),
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    strict: bool = False,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    progress: bool = False,
) -> AddReport:
    """``Index.add(read_articles(paths))``, with reading and embedding done on Ray."""
    try:
        import ray
    except ImportError:
        raise SemsearchError('indexing on Ray needs ray: pip install "semsearch[ray]"') from None
    files = list_inputs(paths, include=include, exclude=exclude)
    started = _connect(ray, options.address)
    try:
        quiet = logging.getLogger("ray.data")
        if quiet.level == logging.NOTSET:
            quiet.setLevel(logging.WARNING)  # its per-run INFO lines; the driver has its own bar
        with warnings.catch_warnings():
            # Ray's notes on its own deprecations and on small inputs not filling every actor.
            warnings.simplefilter("ignore")
            ds = _dataset(
                ray,
                files,
                embedder,
                chunking,
                settings.include_title,
                options,
                strict,
                max_file_bytes,
            )
        return _write(engine, settings, _rows(ray, ds), progress)
    finally:
        if started:
            ray.shutdown()


def _connect(ray: Any, address: str | None) -> bool:
    """Join the cluster at ``address``, or start a local Ray on 127.0.0.1; returns whether this
    call started it (and must stop it)."""
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": logging.WARNING,
    }
    if address in (None, "auto", "local"):
        # A local Ray listens on loopback only, never on the machine's other addresses.
        kwargs["_node_ip_address"] = "127.0.0.1"
        address = None
    try:
        ray.init(address=address, **kwargs)
    except Exception as exc:
        raise SemsearchError(f"cannot start or join Ray at {address or 'local'}: {exc}") from None
    return True


def _rows(ray: Any, ds: Any) -> Iterator[dict[str, Any]]:
    """The embedded documents as they stream back; a task that failed after its retries is
    one clear error (the write it feeds then rolls back)."""
    try:
        for batch in ds.iter_batches(batch_size=EMBED_BATCH, batch_format="pandas"):
            yield from batch.to_dict("records")
    except ray.exceptions.RayError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise SemsearchError(f"indexing on Ray failed: {reason}") from None


def _dataset(
    ray: Any,
    files: list[tuple[str, bool]],
    embedder: Embedder,
    chunking: ChunkSettings,
    include_title: bool,
    options: RayOptions,
    strict: bool,
    max_file_bytes: int,
) -> Any:
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # documents are written in read order
    context.enable_progress_bars = False  # the driver shows one bar of its own
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    cpus = float(resources.get("CPU", 1))
    workers = options.workers or max(1, gpus or int(cpus))
    # Reading takes half a CPU, so that the embedding actors never hold every CPU while the
    # reads they wait for cannot be scheduled; the actors share what is left.
    read_cpus = min(0.5, cpus / 4)
    actor_cpus = 0 if gpus else max(0.1, (cpus - read_cpus) / workers)
    items = [{"path": path, "explicit": explicit} for path, explicit in files]
    ds = ray.data.from_items(items, override_num_blocks=max(1, min(len(items), 4 * workers)))
    ds = ds.flat_map(
        _read,
        fn_kwargs={"strict": strict, "max_file_bytes": max_file_bytes},
        num_cpus=read_cpus,
        max_retries=RETRIES,
    )
    ds = ds.map_batches(
        _Embed,
        fn_constructor_kwargs={
            "model": embedder.name,
            "backend": embedder.backend,
            "chunking": (chunking.max_tokens, chunking.overlap),
            "include_title": include_title,
        },
        batch_size=EMBED_BATCH,
        batch_format="pandas",
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_gpus=1 if gpus else 0,
        num_cpus=actor_cpus,
        max_restarts=RETRIES,
        max_task_retries=RETRIES,
    )
    return ds


def _read(item: dict[str, Any], *, strict: bool, max_file_bytes: int) -> list[dict[str, Any]]:
    """The documents of one file as rows, or one row naming its problem."""
    path = str(item["path"])
    try:
        docs = list(read_articles([path], strict=True, max_file_bytes=max_file_bytes))
    except InputError as exc:
        fatal = strict or bool(item["explicit"])
        return [{"doc": "", "problem": str(exc), "fatal": fatal}]
    return [{"doc": json.dumps(dataclasses.asdict(d)), "problem": "", "fatal": False} for d in docs]


class _Embed:
    """A Ray actor: loads the model once, then chunks and embeds batches of documents."""

    def __init__(
        self, model: str, backend: str, chunking: tuple[int, int], include_title: bool
    ) -> None:
        self.embedder = Embedder(model, backend=backend)  # type: ignore[arg-type]
        self.chunking = ChunkSettings(max_tokens=chunking[0], overlap=chunking[1])
        self.include_title = include_title

    def __call__(self, batch: Any) -> Any:
        marker = os.environ.get(FAIL_ONCE)
        if marker and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)
        rows = batch.to_dict("records")
        docs = [_document(r["doc"]) for r in rows if r["doc"]]
        chunks = chunk_documents(
            docs,
            tokenizer=self.embedder.tokenizer,
            settings=self.chunking,
            include_title=self.include_title,
        )
        texts = [t for _, ts in chunks for t in ts]
        vectors = self.embedder.encode(texts)
        out, at = [], 0
        pieces = iter(chunks)
        for r in rows:
            if not r["doc"]:
                out.append({**r, "passages": "", "keys": "", "vectors": b""})
                continue
            passages, ts = next(pieces)
            block = vectors[at : at + len(ts)]
            at += len(ts)
            out.append(
                {
                    **r,
                    "passages": json.dumps([[p.ordinal, p.start, p.end] for p in passages]),
                    "keys": json.dumps([self.embedder.cache_key(t) for t in ts]),
                    "vectors": np.ascontiguousarray(block, dtype=np.float32).tobytes(),
                }
            )
        import pandas as pd

        return pd.DataFrame(out)


def _document(payload: str) -> Document:
    fields = json.loads(payload)
    return Document(**{**fields, "highlights": tuple(fields["highlights"])})


def _write(
    engine: Engine, settings: IndexSettings, rows: Iterator[dict[str, Any]], progress: bool
) -> AddReport:
    counts = {"added": 0, "replaced": 0, "unchanged": 0, "passages": 0, "embedded": 0}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(unit="doc", desc="indexing on Ray", leave=False)
    try:
        with engine.writer(settings) as writer:
            entries: list[DocumentPassages] = []
            blocks: list[np.ndarray] = []

            def flush() -> None:
                if entries:
                    replaced = writer.write(entries, np.concatenate(blocks))
                    counts["replaced"] += replaced
                    counts["added"] += len(entries) - replaced
                    entries.clear()
                    blocks.clear()

            for row in rows:
                if row["problem"]:
                    if row["fatal"]:
                        raise InputError(None, row["problem"])
                    warnings.warn(SkippedInputWarning(row["problem"]), stacklevel=2)
                    continue
                doc = _document(row["doc"])
                check_document(doc)
                if any(e.document.id == doc.id for e in entries):
                    flush()  # a later copy of a document replaces the earlier one, in order
                if writer.unchanged(doc):
                    counts["unchanged"] += 1
                    continue
                spans = json.loads(row["passages"])
                passages = [Passage(doc.id, o, a, b, doc.text[a:b]) for o, a, b in spans]
                vectors = np.frombuffer(row["vectors"], dtype=np.float32)
                blocks.append(vectors.reshape(len(passages), settings.dimension))
                title = doc.title if settings.include_title else ""
                entries.append(DocumentPassages(doc, passages, json.loads(row["keys"]), title))
                counts["passages"] += len(passages)
                counts["embedded"] += len(passages)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(passages=counts["passages"])
                if len(entries) >= EMBED_BATCH:
                    flush()
            flush()
    finally:
        if bar is not None:
            bar.close()
    return AddReport(**counts)
