"""Writes to a Milvus index: all or nothing, by hiding a write's rows until it commits.

Milvus has no transactions, so a write is made visible in one step of our own (see
``schema``): it takes a number, is listed as pending in the meta record (its rows are hidden),
inserts its rows and marks the rows it replaces as retired by it (still shown while it is
pending), and commits by leaving the pending list: one upsert of one row. The retired rows are
deleted after that. A write that fails deletes its rows and un-retires the old ones; one that
was killed is rolled back by the next writer once its lease has run out.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ...errors import InputError, ModelMismatchError
from ...types import Document, Matrix
from .. import minhash
from ..base import DocumentPassages, IndexSettings
from ..terms import indexed_text
from . import expressions as ex
from . import schema
from .collections import Collections

LEASE_SECONDS = 1800
"""A pending write untouched this long was abandoned (its process died) and is rolled back."""
INSERT_ROWS = 512
SEARCH_ROWS = 512
"""Query vectors per search request."""
NEIGHBOURS = 16
"""Nearest stored passages checked as near-duplicate candidates of each new one."""


def bind(engine: Collections, settings: IndexSettings) -> None:
    held = engine.settings
    if held is not None and (held.model, held.dimension) != (settings.model, settings.dimension):
        raise ModelMismatchError(
            f"{engine.location}: holds vectors of {held.model!r} (dimension {held.dimension}), "
            f"not {settings.model!r}"
        )
    with engine._errors():
        if held is None:
            schema.create(engine.client, engine.address.name, settings.dimension, "auto")
            engine.put_meta("state", _fresh_state())
        if held != settings or held is None:
            record = {
                "format_version": schema.FORMAT_VERSION,
                "vector_index": engine.vector_index,
                "index": {**settings.__dict__},
            }
            engine.put_meta("settings", record)
    engine._settings = settings


def rebuild_vector_index(engine: Collections) -> None:
    name = engine.names["passages"]
    with engine._errors():
        engine.client.release_collection(name)
        engine.client.drop_index(name, "vector")
        params = engine.client.prepare_index_params()
        params.add_index("vector", **schema.vector_index_params(engine.vector_index))
        engine.client.create_index(name, params)
        engine.client.load_collection(name)
    assert engine.settings is not None
    bind(engine, engine.settings)
    record = engine.meta("settings") or {}
    engine.put_meta("settings", {**record, "vector_index": engine.vector_index})


def _state(engine: Collections) -> dict[str, Any]:
    state = engine.meta("state")
    return state if state is not None else _fresh_state()


def _fresh_state() -> dict[str, Any]:
    return {"next_pid": 1, "next_row": 1, "next_txn": 1, "pending": {}}


class MilvusWriter:
    """The writes of one transaction (see the module's docstring)."""

    def __init__(self, engine: Collections, txn: int) -> None:
        self.engine, self.txn = engine, txn

    def _reading(self) -> str:
        """What this write reads: the committed rows, less those it has retired already."""
        return ex.both(engine_visible(self.engine), f"retired != {self.txn}")

    def unchanged(self, document: Document) -> bool:
        rows = self.engine.rows(
            "documents",
            ex.both(f"doc_id == {ex.quote(document.id)} and part == 0", self._reading()),
            ["hash"],
        )
        return bool(rows) and rows[0]["hash"] == _digest(document)

    def stored_vectors(self, keys: Sequence[str]) -> dict[str, Matrix]:
        wanted = list(dict.fromkeys(keys))
        rows = self.engine.rows_in("passages", "key", wanted, ["key", "vector"], self._reading())
        found = {r["key"]: np.asarray(r["vector"], dtype=np.float32) for r in rows}
        return {k: found[k] for k in wanted if k in found}

    def write(self, documents: Sequence[DocumentPassages], vectors: Matrix) -> int:
        engine = self.engine
        for entry in documents:
            _check_sizes(entry.document)
        with engine._errors():
            replaced = self._retire([e.document.id for e in documents])
            doc_rows: list[dict[str, Any]] = []
            passage_rows: list[dict[str, Any]] = []
            for entry in documents:
                doc = entry.document
                doc_rows.extend(schema.document_rows(doc, _digest(doc), self.txn))
                for p, key in zip(entry.passages, entry.keys, strict=True):
                    fits = schema.utf8_fits(p.text, schema.VARCHAR_BYTES)
                    terms = engine.tokenizer.terms(indexed_text(entry.title, p.text))
                    passage_rows.append(
                        {
                            "doc_id": doc.id,
                            "ordinal": p.ordinal,
                            "start": p.start,
                            "end": p.end,
                            "text": p.text if fits else "",
                            "terms": schema.clip_terms(terms),
                            "date": doc.date or "",
                            "source": doc.source,
                            "key": key,
                            "txn": self.txn,
                            "retired": 0,
                        }
                    )
            first_pid, first_row = _reserve(engine, self.txn, len(passage_rows), len(doc_rows))
            for i, row in enumerate(doc_rows):
                row["row"] = first_row + i
            for i, (row, vector) in enumerate(zip(passage_rows, vectors, strict=True)):
                row["pid"], row["vector"] = first_pid + i, vector.tolist()
            self._group([r["text"] or _slice(r, documents) for r in passage_rows], passage_rows)
            for part, rows in (("documents", doc_rows), ("passages", passage_rows)):
                for i in range(0, len(rows), INSERT_ROWS):
                    engine.client.insert(engine.names[part], rows[i : i + INSERT_ROWS])
        return replaced

    def _retire(self, doc_ids: Sequence[str]) -> int:
        """Mark the committed rows of these documents retired by this write; returns how many
        documents that replaces. Rows of an earlier document of the same id in this very write
        are deleted at once (nobody has seen them)."""
        engine = self.engine
        ids = list(dict.fromkeys(doc_ids))
        mine = ex.both(f"txn == {self.txn}", f"doc_id in {ex.strings(ids)}")
        for part in ("documents", "passages"):
            engine.client.delete(engine.names[part], filter=mine)
        return retire(engine, ids, self.txn, self._reading())

    def _group(self, texts: Sequence[str], rows: list[dict[str, Any]]) -> None:
        """Near-duplicate groups of new passages: each joins the group of a stored passage or
        an earlier new one it nearly copies (MinHash of word 3-shingles at the local engine's
        threshold). Stored candidates are each new passage's nearest vectors: a passage that
        nearly copies another embeds next to it, and a vector search is what Milvus indexes,
        where a lookup by LSH band key would scan every row."""
        if not rows:
            return
        sigs = minhash.signatures(texts)
        pids = [r["pid"] for r in rows]
        rows_, heads = minhash.near_duplicate_rows(sigs)
        label = {pids[i]: pids[j] for i, j in zip(rows_.tolist(), heads.tolist(), strict=True)}
        group: dict[int, int] = {}
        for row, sig, near in zip(rows, sigs, self._neighbours(rows), strict=True):
            matches = {
                s["dup_of"] or s["pid"]
                for s in near
                if np.count_nonzero(np.asarray(s["sig"], np.uint32) == sig) / minhash.NUM_PERM
                >= minhash.THRESHOLD
            }
            if matches:
                head = label.get(row["pid"], row["pid"])
                group[head] = min(matches | {group.get(head, min(matches))})
        for row, sig in zip(rows, sigs, strict=True):
            head = label.get(row["pid"], row["pid"])
            rep = group.get(head, head)
            row["dup_of"] = 0 if rep == row["pid"] else rep
            row["sig"] = sig.astype(np.int64).tolist()

    def _neighbours(self, rows: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        """Per new row, the stored passages nearest its vector, with their groups and
        signatures (this write's earlier batches count: they are hidden from others only)."""
        scope = f"({self._reading()}) or (txn == {self.txn})"
        out: list[list[dict[str, Any]]] = []
        for i in range(0, len(rows), SEARCH_ROWS):
            found = self.engine.client.search(
                self.engine.names["passages"],
                data=[r["vector"] for r in rows[i : i + SEARCH_ROWS]],
                anns_field="vector",
                limit=NEIGHBOURS,
                filter=scope,
                output_fields=["pid", "dup_of", "sig"],
                search_params={"metric_type": "IP"},
            )
            out.extend([h["entity"] for h in hits] for hits in found)
        return out


def engine_visible(engine: Collections) -> str:
    return ex.visible(engine.pending())


def retire(engine: Collections, doc_ids: Sequence[str], txn: int, reading: str) -> int:
    """Mark the rows of documents retired by ``txn``; returns how many documents were held."""
    held = engine.rows_in("documents", "doc_id", doc_ids, ["row", "doc_id"], reading)
    if not held:
        return 0
    _mark(engine, "documents", "row", [r["row"] for r in held], txn)
    docs = sorted({r["doc_id"] for r in held})
    passages = engine.rows_in("passages", "doc_id", docs, ["pid"], reading)
    _mark(engine, "passages", "pid", [r["pid"] for r in passages], txn)
    return len(docs)


def _mark(engine: Collections, part: str, key: str, ids: Sequence[Any], txn: int) -> None:
    rows = [{key: i, "retired": txn} for i in ids]
    for i in range(0, len(rows), INSERT_ROWS):
        engine.client.upsert(engine.names[part], rows[i : i + INSERT_ROWS], partial_update=True)


def _begin(engine: Collections) -> int:
    with engine._errors():
        _recover(engine)
        state = _state(engine)
        txn = int(state["next_txn"])
        state["next_txn"] = txn + 1
        state["pending"][str(txn)] = time.time()
        engine.put_meta("state", state)
    engine._groups.clear()
    return txn


def _reserve(engine: Collections, txn: int, passages: int, documents: int) -> tuple[int, int]:
    """Take passage ids and document row numbers for ``txn`` (and renew its lease)."""
    with engine._errors():
        state = _state(engine)
        first_pid, first_row = int(state["next_pid"]), int(state["next_row"])
        state["next_pid"], state["next_row"] = first_pid + passages, first_row + documents
        state["pending"][str(txn)] = time.time()
        engine.put_meta("state", state)
    return first_pid, first_row


def _end(engine: Collections, txn: int, *, committed: bool) -> None:
    """Commit (one upsert of the meta record), or roll back; then clean up either way."""
    with engine._errors():
        if not committed:
            for part in ("documents", "passages"):
                engine.client.delete(engine.names[part], filter=f"txn == {txn}")
            _unretire(engine, txn)
        state = _state(engine)
        state["pending"].pop(str(txn), None)
        engine.put_meta("state", state)
        if committed:
            for part in ("documents", "passages"):
                engine.client.delete(engine.names[part], filter=f"retired == {txn}")
    engine._groups.clear()


def _unretire(engine: Collections, txn: int) -> None:
    for part, key in schema.KEYS.items():
        rows = engine.rows(part, f"retired == {txn}", [key])
        for i in range(0, len(rows), INSERT_ROWS):
            chunk = [{key: r[key], "retired": 0} for r in rows[i : i + INSERT_ROWS]]
            engine.client.upsert(engine.names[part], chunk, partial_update=True)


def _recover(engine: Collections) -> None:
    """Roll back writes whose process died (lease run out), and finish deleting the rows that
    committed writes retired."""
    state = _state(engine)
    now = time.time()
    for txn, touched in list(state["pending"].items()):
        if now - float(touched) > LEASE_SECONDS:
            _end(engine, int(txn), committed=False)
    pending = [int(t) for t in _state(engine)["pending"]]
    done = "retired != 0" + (f" and retired not in {ex.numbers(pending)}" if pending else "")
    for part in ("documents", "passages"):
        engine.client.delete(engine.names[part], filter=done)


@contextlib.contextmanager
def transaction(engine: Collections, settings: IndexSettings) -> Iterator[MilvusWriter]:
    bind(engine, settings)
    txn = _begin(engine)
    try:
        yield MilvusWriter(engine, txn)
    except BaseException:
        _end(engine, txn, committed=False)
        raise
    _end(engine, txn, committed=True)


def remove(engine: Collections, doc_ids: Sequence[str]) -> int:
    if engine.settings is None:
        return 0
    txn = _begin(engine)
    try:
        with engine._errors():
            reading = ex.both(engine_visible(engine), f"retired != {txn}")
            ids = list(dict.fromkeys(doc_ids))
            removed = engine.count("passages", ex.both(f"doc_id in {ex.strings(ids)}", reading))
            retire(engine, ids, txn, reading)
    except BaseException:
        _end(engine, txn, committed=False)
        raise
    _end(engine, txn, committed=True)
    return removed


def duplicate_report(engine: Collections) -> dict[str, Any]:
    """Duplicate passages and articles, for ``info``, as the local engine reports them."""
    visible = engine_visible(engine)
    copies = engine.rows("passages", ex.both("dup_of != 0", visible), ["pid", "dup_of", "doc_id"])
    reps = sorted({r["dup_of"] for r in copies})
    originals = engine.rows_in("passages", "pid", reps, ["doc_id"])
    docs = sorted({r["doc_id"] for r in (*copies, *originals)})
    members = engine.rows_in(
        "passages", "doc_id", docs, ["pid", "dup_of", "doc_id", "text"], visible
    )
    group = {r["pid"]: r["dup_of"] or r["pid"] for r in members}
    text = {r["pid"]: r["text"] for r in members}
    by_doc: dict[str, set[int]] = {}
    for r in members:
        by_doc.setdefault(r["doc_id"], set()).add(group[r["pid"]])
    articles: dict[frozenset[int], list[str]] = {}
    for doc_id, keys in by_doc.items():
        articles.setdefault(frozenset(keys), []).append(doc_id)
    exact = dict.fromkeys(reps, True)
    for r in copies:
        if text.get(r["pid"]) != text.get(r["dup_of"]):
            exact[r["dup_of"]] = False
    return {
        "passage_groups": len(reps),
        "exact_passage_groups": sum(exact.values()),
        "duplicate_passages": len(copies),
        "article_groups": sorted(sorted(ids) for ids in articles.values() if len(ids) > 1),
    }


def _digest(doc: Document) -> str:
    return hashlib.sha256(schema.document_payload(doc).encode("utf-8", "surrogatepass")).hexdigest()


def _slice(row: Mapping[str, Any], documents: Sequence[DocumentPassages]) -> str:
    doc = next(e.document for e in documents if e.document.id == row["doc_id"])
    return doc.text[row["start"] : row["end"]]


def _check_sizes(doc: Document) -> None:
    """A field Milvus cannot hold is one clear error before anything is written."""
    for name, value, limit in (
        ("id", doc.id, schema.MAX_ID_BYTES),
        ("source", doc.source, schema.MAX_SOURCE_BYTES),
    ):
        if not schema.utf8_fits(value, limit):
            raise InputError(
                doc.source or None, f"document {name} is over {limit} bytes, too long for Milvus"
            )
    if doc.date is not None and len(doc.date) > 10:
        raise InputError(doc.source or None, f"date {doc.date!r} is not YYYY-MM-DD")
