"""ONNX backends: a sentence-transformers model exported once with torch, cached, run without it."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SemsearchError
from ..types import Matrix

Vectors = Matrix

# Part of every export's cache key: bump it when the exported graph or quantisation changes.
EXPORT_VERSION = 1
FP32_FILE, INT8_FILE, META_FILE, TOKENIZER_FILE = (
    "model.onnx",
    "model-int8.onnx",
    "meta.json",
    "tokenizer.json",
)
# An export is trusted only if it reproduces the torch model on these (short, padded, truncated).
_CHECK_TEXTS = ["Hi.", "Putin and Sharif exchanged letters.", "word " * 400]
_CHECK_MIN_COSINE = 0.9999


class ExportCacheError(SemsearchError):
    """The export cache cannot be written (read-only home, full disk)."""


def cache_root() -> Path:
    """$SEMSEARCH_CACHE, else $XDG_CACHE_HOME/semsearch, else ~/.cache/semsearch."""
    if env := os.environ.get("SEMSEARCH_CACHE"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "semsearch"


def export_dir(name: str, source: str) -> Path:
    """Where the export of ``name`` (loaded from ``source``) is cached. A local model folder's
    file sizes and times are part of the key, so changed weights get a new export."""
    ident = [name, str(EXPORT_VERSION)]
    folder = Path(source)
    if folder.is_dir():
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                stat = path.stat()
                ident.append(f"{path.relative_to(folder)}:{stat.st_size}:{stat.st_mtime_ns}")
    digest = hashlib.sha256("\n".join(ident).encode()).hexdigest()[:16]
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[-60:]
    return cache_root() / "onnx" / f"{slug}-{digest}"


def model_file(directory: Path, *, quantized: bool) -> Path:
    return directory / (INT8_FILE if quantized else FP32_FILE)


def is_exported(directory: Path, *, quantized: bool) -> bool:
    # The model file is written last: once it exists, the meta and tokenizer files do too.
    return model_file(directory, quantized=quantized).is_file()


def ensure_export(directory: Path, load_torch_model: Callable[[], Any], *, quantized: bool) -> None:
    """Export (and quantise) unless cached. Needs torch; one process at a time per model."""
    if is_exported(directory, quantized=quantized):
        return
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with _locked(directory):
            if not is_exported(directory, quantized=False):
                _export_fp32(load_torch_model(), directory)
            if quantized and not is_exported(directory, quantized=True):
                _quantize(directory)
    except OSError as exc:
        raise ExportCacheError(f"{directory}: cannot write the ONNX export ({exc})") from None


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # no flock (Windows): concurrent exports then both write, atomically
        yield
        return
    with open(directory / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _atomic(target: Path) -> Iterator[Path]:
    """A temporary path next to ``target``, renamed onto it (after fsync) only on success."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide a shared cache from other users
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _check_supported(model: Any) -> None:
    """Only Transformer -> mean Pooling [-> Normalize] pipelines: that is what the graph does."""
    kinds = [type(module).__name__ for module in model]
    pooling = model[1].get_config_dict() if len(kinds) > 1 else {}
    mean = pooling.get("pooling_mode") == "mean" or pooling.get("pooling_mode_mean_tokens")
    if kinds[:2] != ["Transformer", "Pooling"] or kinds[2:] not in ([], ["Normalize"]) or not mean:
        raise SemsearchError(
            f"the ONNX backends support Transformer + mean pooling models only, not {kinds}"
        )
    if getattr(model[0], "do_lower_case", False):
        raise SemsearchError("the ONNX backends do not support do_lower_case models")


def _export_fp32(model: Any, directory: Path) -> None:
    import torch

    _check_supported(model)
    hf_tokenizer = model.tokenizer
    inputs = [n for n in hf_tokenizer.model_input_names if n != "attention_mask"]
    inputs.append("attention_mask")
    meta = {
        "dimension": int(model.get_embedding_dimension()),
        "max_seq_length": int(model.max_seq_length),
        "special_tokens": len(hf_tokenizer("", add_special_tokens=True)["input_ids"]),
        "inputs": inputs,
        "pad_id": int(hf_tokenizer.pad_token_id or 0),
    }

    class MeanPooled(torch.nn.Module):
        def __init__(self, encoder: Any) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, *tensors: Any) -> Any:
            named = dict(zip(inputs, tensors, strict=True))
            tokens = self.encoder(**named).last_hidden_state
            mask = named["attention_mask"].unsqueeze(-1).to(tokens.dtype)
            pooled = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    sample = hf_tokenizer(_CHECK_TEXTS[:2], padding=True, return_tensors="pt")
    with _atomic(directory / TOKENIZER_FILE) as tmp:
        hf_tokenizer.backend_tokenizer.save(str(tmp))
    with _atomic(directory / META_FILE) as tmp:
        tmp.write_text(json.dumps(meta, indent=1))
    with _atomic(directory / FP32_FILE) as tmp, torch.no_grad(), warnings.catch_warnings():
        # The TorchScript exporter works with torch 2.13 and needs no onnxscript; its
        # deprecation and tracer warnings are about code paths this graph does not take.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            MeanPooled(model[0].auto_model).eval(),
            tuple(sample[n] for n in inputs),
            str(tmp),
            input_names=inputs,
            output_names=["embedding"],
            dynamic_axes={
                **{n: {0: "batch", 1: "tokens"} for n in inputs},
                "embedding": {0: "batch"},
            },
            opset_version=17,
            dynamo=False,
        )
        # Checked before it is renamed into place: a wrong export must never be cached.
        got = OnnxModel(directory, model_path=tmp).encode(_CHECK_TEXTS, batch_size=2)
        want = model.encode(_CHECK_TEXTS, normalize_embeddings=True, convert_to_numpy=True)
        cosine = float((got * want).sum(axis=1).min())
        if cosine < _CHECK_MIN_COSINE:
            raise SemsearchError(f"the ONNX export differs from the model (cosine {cosine:.5f})")


def _quantize(directory: Path) -> None:
    """Dynamic int8: MatMul weights per output channel (per tensor loses far more: measured
    cosine to fp32 0.93 per tensor, 0.994 per channel); activations quantised on the fly."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    # quantize_dynamic logs a root-logger hint about shape pre-processing, which dynamic
    # MatMul quantisation does not need.
    logging.disable(logging.WARNING)
    with contextlib.ExitStack() as stack:
        stack.callback(logging.disable, logging.NOTSET)
        tmp = stack.enter_context(_atomic(directory / INT8_FILE))
        quantize_dynamic(
            directory / FP32_FILE,
            tmp,
            op_types_to_quantize=["MatMul"],
            per_channel=True,
            weight_type=QuantType.QInt8,
        )


class OnnxModel:
    """An exported model run by onnxruntime with the model's own tokenizer: no torch."""

    def __init__(self, directory: Path, *, quantized: bool = False, model_path: Path | None = None):
        from tokenizers import Tokenizer

        self._path = model_path or model_file(directory, quantized=quantized)
        self._cache_optimized = model_path is None  # not for an export still being checked
        meta = json.loads((directory / META_FILE).read_text())
        self.dimension = int(meta["dimension"])
        self.max_seq_length = int(meta["max_seq_length"])
        self.special_tokens = int(meta["special_tokens"])
        self._inputs: list[str] = list(meta["inputs"])
        self._pad_id = int(meta["pad_id"])
        self._tokenizer = Tokenizer.from_file(str(directory / TOKENIZER_FILE))
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        self._truncating = Tokenizer.from_file(str(directory / TOKENIZER_FILE))
        self._truncating.no_padding()
        self._truncating.enable_truncation(self.max_seq_length)
        self._sessions: dict[int, Any] = {}

    def _session(self, threads: int) -> Any:
        # Threads are fixed when a session is made: one session per thread count in use.
        if threads not in self._sessions:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            # Optimising the graph takes half of a session's start (0.25 of 0.5 s): the optimised
            # graph is cached next to the export, per onnxruntime version, and loaded as is.
            optimized = self._path.with_suffix(f".ort{ort.__version__}.onnx")
            if optimized.is_file():
                options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
                self._sessions[threads] = ort.InferenceSession(
                    str(optimized), options, providers=["CPUExecutionProvider"]
                )
                return self._sessions[threads]
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
            tmp = optimized.with_name(f".{optimized.name}.{os.getpid()}.tmp")
            if self._cache_optimized and os.access(optimized.parent, os.W_OK):
                options.optimized_model_filepath = str(tmp)
            try:
                self._sessions[threads] = ort.InferenceSession(
                    str(self._path), options, providers=["CPUExecutionProvider"]
                )
                if self._cache_optimized and tmp.is_file() and tmp.stat().st_size > 0:
                    os.chmod(tmp, 0o644)
                    os.replace(tmp, optimized)
            except OSError:
                pass  # a read-only cache: the next start optimises again
            finally:
                with contextlib.suppress(OSError):
                    tmp.unlink()
        return self._sessions[threads]

    def token_spans(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """Character spans of each text's tokens, without special tokens."""
        # Offsets already are lists of int pairs: converting each token again is not needed.
        return [e.offsets for e in self.encodings(texts)]

    def encodings(self, texts: Sequence[str]) -> list[Any]:
        """The ``tokenizers.Encoding`` of each text, without special tokens."""
        return list(self._tokenizer.encode_batch(list(texts), add_special_tokens=False))

    def encode(
        self, texts: Sequence[str], *, batch_size: int, threads: int = 1, progress: bool = False
    ) -> Vectors:
        """Normalised vectors; texts are sorted by token count so each batch pads little."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        encodings = self._truncating.encode_batch(list(texts))
        order = np.argsort([len(e.ids) for e in encodings], kind="stable")
        session = self._session(threads)
        starts: Iterable[int] = range(0, len(texts), batch_size)
        if progress:
            from tqdm import tqdm

            starts = tqdm(starts, desc="Batches", unit="batch")
        for start in starts:
            rows = order[start : start + batch_size]
            batch = [encodings[i] for i in rows]
            width = max(len(e.ids) for e in batch)
            feed = {name: np.zeros((len(batch), width), dtype=np.int64) for name in self._inputs}
            feed["input_ids"].fill(self._pad_id)
            for r, e in enumerate(batch):
                n = len(e.ids)
                feed["input_ids"][r, :n] = e.ids
                feed["attention_mask"][r, :n] = e.attention_mask
                if "token_type_ids" in feed:
                    feed["token_type_ids"][r, :n] = e.type_ids
            out[rows] = session.run(None, feed)[0]
        return out
