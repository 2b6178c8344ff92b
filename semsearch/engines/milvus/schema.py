"""The three collections of a Milvus index (passages, documents, meta) and how rows are made.

Every row carries ``txn``, the write that made it, and ``retired``, the write that replaced or
removed it (0 while it is current). A search sees a row when its write has committed and no
committed write retired it (``visible``); a write commits by taking its number off the meta
record's pending list, one upsert, so all its rows appear, and the rows it retired disappear,
together.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ...errors import IndexFormatError
from ...types import Document
from ..terms import K1, B

if TYPE_CHECKING:
    from pymilvus import MilvusClient

FORMAT_VERSION = 1
"""Version of the collections' layout; an index of another version is refused on open."""
VARCHAR_BYTES = 65_535
"""The longest VARCHAR Milvus stores, in bytes."""
CHUNK_CHARS = VARCHAR_BYTES // 4
"""Characters of document text per documents row: at most 4 UTF-8 bytes each, so they fit."""
MAX_ID_BYTES = 1024
MAX_SOURCE_BYTES = 8192
SIGNATURE = 64
KEYS = {"passages": "pid", "documents": "row"}
"""Each collection's primary key: int64 numbers from the meta record's counters."""
PAD = "pad"
"""Milvus requires a vector field in every collection: documents and meta carry a tiny one."""


def names(prefix: str) -> dict[str, str]:
    return {part: f"{prefix}_{part}" for part in ("passages", "documents", "meta")}


def create(client: MilvusClient, prefix: str, dimension: int, index_type: str) -> None:
    """Create whichever of the index's collections do not exist yet."""
    from pymilvus import DataType, Function, FunctionType

    made = names(prefix)
    if not client.has_collection(made["passages"]):
        s = client.create_schema(auto_id=False, enable_dynamic_field=False)
        s.add_field("pid", DataType.INT64, is_primary=True)
        s.add_field("doc_id", DataType.VARCHAR, max_length=MAX_ID_BYTES)
        s.add_field("ordinal", DataType.INT64)
        s.add_field("start", DataType.INT64)
        s.add_field("end", DataType.INT64)
        s.add_field("text", DataType.VARCHAR, max_length=VARCHAR_BYTES)
        # BM25 reads our own stemmed terms, so that Milvus Lite (which has no stemmer) and a
        # Milvus server rank alike, and as the local engine does.
        s.add_field(
            "terms",
            DataType.VARCHAR,
            max_length=VARCHAR_BYTES,
            enable_analyzer=True,
            analyzer_params={"tokenizer": "standard"},
        )
        s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        s.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
        s.add_field("date", DataType.VARCHAR, max_length=10)
        s.add_field("source", DataType.VARCHAR, max_length=MAX_SOURCE_BYTES)
        s.add_field("key", DataType.VARCHAR, max_length=128)
        s.add_field("dup_of", DataType.INT64)
        s.add_field("sig", DataType.ARRAY, element_type=DataType.INT64, max_capacity=SIGNATURE)
        s.add_field("txn", DataType.INT64)
        s.add_field("retired", DataType.INT64)
        s.add_function(
            Function(
                name="bm25",
                function_type=FunctionType.BM25,
                input_field_names=["terms"],
                output_field_names=["sparse"],
            )
        )
        params = client.prepare_index_params()
        params.add_index("vector", **vector_index_params(index_type))
        params.add_index(
            "sparse",
            index_type="SPARSE_INVERTED_INDEX",
            metric_type="BM25",
            params={"bm25_k1": K1, "bm25_b": B},
        )
        client.create_collection(
            made["passages"], schema=s, index_params=params, consistency_level="Strong"
        )
    if not client.has_collection(made["documents"]):
        s = client.create_schema(auto_id=False, enable_dynamic_field=False)
        s.add_field("row", DataType.INT64, is_primary=True)
        s.add_field("doc_id", DataType.VARCHAR, max_length=MAX_ID_BYTES)
        s.add_field("part", DataType.INT64)
        s.add_field("parts", DataType.INT64)
        s.add_field("hash", DataType.VARCHAR, max_length=64)
        s.add_field("source", DataType.VARCHAR, max_length=MAX_SOURCE_BYTES)
        s.add_field("chunk", DataType.VARCHAR, max_length=VARCHAR_BYTES)
        s.add_field("txn", DataType.INT64)
        s.add_field("retired", DataType.INT64)
        s.add_field(PAD, DataType.FLOAT_VECTOR, dim=2)
        _create_padded(client, made["documents"], s)
    if not client.has_collection(made["meta"]):
        s = client.create_schema(auto_id=False, enable_dynamic_field=False)
        s.add_field("key", DataType.VARCHAR, is_primary=True, max_length=64)
        s.add_field("value", DataType.VARCHAR, max_length=VARCHAR_BYTES)
        s.add_field(PAD, DataType.FLOAT_VECTOR, dim=2)
        _create_padded(client, made["meta"], s)


def _create_padded(client: MilvusClient, name: str, schema: Any) -> None:
    params = client.prepare_index_params()
    params.add_index(PAD, index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=params, consistency_level="Strong")


VECTOR_INDEX_TYPES = {"auto": "AUTOINDEX", "flat": "FLAT", "ivf-sq8": "IVF_SQ8", "ivf-pq": "IVF_PQ"}


def vector_index_params(index_type: str) -> dict[str, Any]:
    params: dict[str, Any] = {"index_type": VECTOR_INDEX_TYPES[index_type], "metric_type": "IP"}
    if index_type in ("ivf-sq8", "ivf-pq"):
        params["params"] = {"nlist": 1024} | ({"m": 16} if index_type == "ivf-pq" else {})
    return params


# -- documents as rows -------------------------------------------------------------------------


def document_fields(doc: Document) -> dict[str, Any]:
    return {
        "id": doc.id,
        "title": doc.title,
        "source": doc.source,
        "url": doc.url,
        "date": doc.date,
        "date_approximate": doc.date_approximate,
        "dateline": doc.dateline,
        "highlights": list(doc.highlights),
        "metadata": doc.metadata,
    }


def document_payload(doc: Document) -> str:
    """A document as one string: its fields as a JSON line, then its text (JSON escapes every
    newline, so the first one ends the fields)."""
    return json.dumps(document_fields(doc), ensure_ascii=False, sort_keys=True) + "\n" + doc.text


def document_rows(doc: Document, digest: str, txn: int) -> list[dict[str, Any]]:
    """The documents rows of one document: its payload cut into VARCHAR-sized chunks (their
    ``row`` numbers are given when they are written)."""
    payload = document_payload(doc)
    chunks = [payload[i : i + CHUNK_CHARS] for i in range(0, len(payload), CHUNK_CHARS)]
    return [
        {
            "doc_id": doc.id,
            "source": doc.source,
            "part": part,
            "parts": len(chunks),
            "hash": digest,
            "chunk": chunk,
            "txn": txn,
            "retired": 0,
            PAD: [0.0, 0.0],
        }
        for part, chunk in enumerate(chunks)
    ]


def fields_of(location: str, first_chunk: str) -> dict[str, Any] | None:
    """A document's fields from its first chunk, or None when they run past it."""
    line, newline, _ = first_chunk.partition("\n")
    if not newline:
        return None
    return _loads(location, line)


def document_from_chunks(location: str, chunks: Iterable[str]) -> Document:
    line, _, text = "".join(chunks).partition("\n")
    f = _loads(location, line)
    return Document(
        id=f["id"],
        text=text,
        title=f["title"],
        source=f["source"],
        url=f["url"],
        date=f["date"],
        date_approximate=f["date_approximate"],
        dateline=f["dateline"],
        highlights=tuple(f["highlights"]),
        metadata=f["metadata"],
    )


def _loads(location: str, line: str) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except ValueError:
        value = None
    if not isinstance(value, dict) or "id" not in value:
        raise IndexFormatError(f"{location}: a stored document's fields are not readable")
    return value


def utf8_fits(text: str, limit: int) -> bool:
    return len(text) * 4 <= limit or len(text.encode("utf-8", "surrogatepass")) <= limit


def clip_terms(terms: Sequence[str]) -> str:
    """Terms joined by spaces, cut at a term boundary to fit one VARCHAR."""
    joined = " ".join(terms)
    if utf8_fits(joined, VARCHAR_BYTES):
        return joined
    encoded = joined.encode("utf-8")[:VARCHAR_BYTES]
    return encoded.decode("utf-8", "ignore").rsplit(" ", 1)[0]
