"""MilvusEngine: an index kept in three Milvus collections, searched by Milvus itself."""

from __future__ import annotations

import contextlib
import fnmatch
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ...errors import SemsearchError
from ...types import Document, Filters, Hit, Ids, Matrix, Passage, Scores
from ..base import Candidates, ChangedDuringRead, IndexSettings, Ranked
from . import expressions as ex
from . import proximity, schema, writer
from .address import Address, close, is_milvus
from .collections import IN_LIST, QUERY_ROWS, Collections


class MilvusEngine(Collections):
    """Documents, passages, vectors and BM25 terms in Milvus (a server, or Milvus Lite on a
    local file), with semsearch's fusion and duplicate collapse over what Milvus returns."""

    @classmethod
    def open(cls, location: str) -> MilvusEngine:
        engine = cls(Address.parse(location))
        if engine._settings is None:
            raise SemsearchError(f"{engine.address.display}: no semsearch index there")
        return engine

    # -- contents ----------------------------------------------------------------------------

    def counts(self) -> tuple[int, int]:
        visible = self._visible()
        return self.count("documents", ex.both("part == 0", visible)), self.count(
            "passages", visible
        )

    def searchable(self) -> bool:
        # A Milvus search over no rows returns none: asking is cheaper than counting them.
        return self._settings is not None

    def has_documents(self, doc_ids: Sequence[str]) -> list[bool]:
        found = {
            r["doc_id"]
            for r in self.rows_in("documents", "doc_id", doc_ids, ["doc_id"], self._first())
        }
        return [d in found for d in doc_ids]

    def _first(self) -> str:
        return ex.both("part == 0", self._visible())

    def document(self, doc_id: str) -> Document | None:
        docs = self._documents([doc_id], self._visible())
        return docs.get(doc_id)

    def _documents(self, doc_ids: Sequence[str], visible: str) -> dict[str, Document]:
        rows = self.rows_in("documents", "doc_id", doc_ids, ["doc_id", "part", "chunk"], visible)
        by_doc: dict[str, list[tuple[int, str]]] = {}
        for r in rows:
            by_doc.setdefault(r["doc_id"], []).append((r["part"], r["chunk"]))
        return {
            d: schema.document_from_chunks(self.location, (c for _, c in sorted(parts)))
            for d, parts in by_doc.items()
        }

    def documents(self) -> Iterator[Document]:
        visible = self._visible()
        ids = sorted(r["doc_id"] for r in self.rows("documents", self._first(), ["doc_id"]))
        for i in range(0, len(ids), 256):
            chunk = ids[i : i + 256]
            found = self._documents(chunk, visible)
            yield from (found[d] for d in chunk if d in found)

    def passages(self, doc_id: str) -> list[Passage]:
        fields = ["pid", "doc_id", "ordinal", "start", "end", "text"]
        expr = ex.both(f"doc_id == {ex.quote(doc_id)}", self._visible())
        rows = sorted(self.rows("passages", expr, fields), key=lambda r: r["ordinal"])
        doc = self.document(doc_id) if any(_unstored(r) for r in rows) else None
        return [
            Passage(
                r["doc_id"],
                r["ordinal"],
                r["start"],
                r["end"],
                _text(r, doc),
                id=r["pid"],
            )
            for r in rows
        ]

    def hits(self, ranked: Ranked) -> list[Hit]:
        ids = ranked.ids.tolist()
        fields = ["pid", "doc_id", "ordinal", "start", "end", "text"]
        by_id = {r["pid"]: r for r in self.rows_in("passages", "pid", ids, fields)}
        doc_ids = list(dict.fromkeys(by_id[i]["doc_id"] for i in ids if i in by_id))
        heads = self._heads(doc_ids)
        whole: dict[str, Document] = {}
        hits = []
        for rank, (pid, score) in enumerate(zip(ids, ranked.scores.tolist(), strict=True), 1):
            if pid not in by_id:
                # Ranked, then removed by a write that committed before the rows were read.
                raise ChangedDuringRead(f"{self.location}: passage {pid} was removed meanwhile")
            r = by_id[pid]
            f = heads.get(r["doc_id"])
            if f is None or _unstored(r):
                if r["doc_id"] not in whole:
                    doc = self.document(r["doc_id"])
                    if doc is None:
                        raise ChangedDuringRead(f"{self.location}: passage {pid} has no document")
                    whole[r["doc_id"]] = doc
                f = schema.document_fields(whole[r["doc_id"]])
            hits.append(
                Hit(
                    rank=rank,
                    score=float(score),
                    passage_id=pid,
                    doc_id=r["doc_id"],
                    ordinal=r["ordinal"],
                    start=r["start"],
                    end=r["end"],
                    text=_text(r, whole.get(r["doc_id"])),
                    title=f["title"],
                    date=f["date"],
                    source=f["source"],
                    url=f["url"],
                    metadata=f["metadata"],
                    date_approximate=f["date_approximate"],
                )
            )
        return hits

    def _heads(self, doc_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Documents' fields from their first chunks (those whose fields fit in one)."""
        rows = self.rows_in("documents", "doc_id", doc_ids, ["doc_id", "chunk"], self._first())
        out = {}
        for r in rows:
            fields = schema.fields_of(self.location, r["chunk"])
            if fields is not None:
                out[r["doc_id"]] = fields
        return out

    def passage_vectors(self, ids: Ids) -> Matrix:
        wanted = np.asarray(ids, dtype=np.int64).tolist()
        rows = {r["pid"]: r["vector"] for r in self.rows_in("passages", "pid", wanted, ["vector"])}
        missing = [i for i in wanted if i not in rows]
        if missing:
            raise KeyError(f"no passage {missing[0]} in the index")
        dim = 0 if self._settings is None else self._settings.dimension
        return np.asarray([rows[i] for i in wanted], dtype=np.float32).reshape(len(wanted), dim)

    def passage_dates(self, ids: Ids) -> list[str | None]:
        rows = self.rows_in("passages", "pid", ids.tolist(), ["date"])
        dates = {r["pid"]: r["date"] or None for r in rows}
        return [dates.get(i) for i in ids.tolist()]

    def passage_keys(self, ids: Ids) -> list[str]:
        wanted = ids.tolist()
        found = {r["pid"]: r["key"] for r in self.rows_in("passages", "pid", wanted, ["key"])}
        missing = [i for i in wanted if i not in found]
        if missing:
            raise KeyError(f"no passage {missing[0]} in the index")
        return [found[i] for i in wanted]

    def duplicate_count(self) -> int:
        return self.count("passages", ex.both("dup_of != 0", self._visible()))

    def representatives(self, ids: Ids) -> Ids:
        wanted = ids.tolist()
        missing = [i for i in wanted if i not in self._groups]
        if missing:
            rows = self.rows_in("passages", "pid", missing, ["pid", "dup_of"])
            self._remember(rows)
        return np.asarray([self._groups.get(i, i) for i in wanted], dtype=np.int64)

    # -- search primitives -------------------------------------------------------------------

    def _where(self, filters: Filters) -> str | None:
        """The expression a search filters by (visibility and ``filters``), or None when no
        passage can pass."""
        f = filters.checked()
        globs = ex.inexact_globs(f.sources)
        exact = self._matching_sources(globs) if globs else None
        expr = ex.filter_expression(f, exact)
        return None if expr is None else ex.both(expr, self._visible())

    def _matching_sources(self, globs: Sequence[str]) -> list[str]:
        """The held sources that glob patterns match (for those LIKE cannot express)."""
        found: set[str] = set()
        for glob in globs:
            like, _ = ex.like_pattern(glob)
            expr = ex.both(f"source like {ex.quote(like)}", self._first())
            for r in self.rows("documents", expr, ["source"]):
                if fnmatch.fnmatchcase(r["source"], glob):
                    found.add(r["source"])
        return sorted(found)

    def _search(self, data: list[Any], field: str, n: int, expr: str) -> list[Ranked]:
        limit = min(n, QUERY_ROWS)
        with self._errors():
            results = self.client.search(
                self.names["passages"],
                data=data,
                anns_field=field,
                limit=limit,
                filter=expr,
                output_fields=["pid", "dup_of"],
                search_params={"metric_type": "BM25" if field == "sparse" else "IP"},
            )
        out = []
        for hits in results:
            self._remember([h["entity"] for h in hits])
            ids = np.asarray([h["entity"]["pid"] for h in hits], dtype=np.int64)
            # Milvus Lite reports BM25 scores negated; a server reports them as they are.
            scores = [abs(h["distance"]) if field == "sparse" else h["distance"] for h in hits]
            out.append(Ranked(ids, np.asarray(scores, dtype=np.float32)))
        return out

    def dense(self, query_vectors: Matrix, n: int, filters: Filters) -> list[Ranked]:
        expr = self._where(filters)
        if expr is None or self._settings is None or not len(query_vectors):
            return [_empty() for _ in query_vectors]
        return self._search([v.tolist() for v in query_vectors], "vector", n, expr)

    def lexical(self, queries: Sequence[str], n: int, filters: Filters) -> list[Ranked]:
        expr = self._where(filters)
        return self._lexical(queries, n, expr)

    def _lexical(self, queries: Sequence[str], n: int, expr: str | None) -> list[Ranked]:
        if expr is None or self._settings is None:
            return [_empty() for _ in queries]
        terms = [" ".join(self.tokenizer.terms(q)) for q in queries]
        asked = [i for i, t in enumerate(terms) if t]
        found = self._search([terms[i] for i in asked], "sparse", n, expr) if asked else []
        out = [_empty() for _ in queries]
        for i, ranked in zip(asked, found, strict=True):
            out[i] = ranked
        return out

    def candidates(
        self, queries: Sequence[str], query_vectors: Matrix, n: int, filters: Filters
    ) -> list[Candidates]:
        expr = self._where(filters)
        if expr is None or self._settings is None:
            return [Candidates(*_empty(), np.zeros(0, np.float32), False) for _ in queries]
        dense = self._search([v.tolist() for v in query_vectors], "vector", n, expr)
        lexical = self._lexical(queries, n, expr)
        out = []
        for query, qvec, d, lx in zip(queries, query_vectors, dense, lexical, strict=True):
            union = np.union1d(d.ids, lx.ids).astype(np.int64)
            cosine = dict(zip(d.ids.tolist(), d.scores.tolist(), strict=True))
            bm25 = dict(zip(lx.ids.tolist(), lx.scores.tolist(), strict=True))
            only_lexical = [i for i in union.tolist() if i not in cosine]
            if only_lexical:
                vectors = self.passage_vectors(np.asarray(only_lexical, np.int64))
                cosine.update(zip(only_lexical, (vectors @ qvec).tolist(), strict=True))
            only_dense = [i for i in union.tolist() if i not in bm25]
            if only_dense:
                # BM25 scores of the passages only the dense search found: the same BM25
                # search, restricted to them (one sharing no term with the query scores 0).
                within = ex.both(f"pid in {ex.numbers(only_dense)}", expr)
                (extra,) = self._lexical([query], len(only_dense), within)
                bm25.update(zip(extra.ids.tolist(), extra.scores.tolist(), strict=True))
            out.append(
                Candidates(
                    union,
                    np.asarray([cosine[i] for i in union.tolist()], np.float32),
                    np.asarray([bm25.get(i, 0.0) for i in union.tolist()], np.float32),
                    len(d.ids) >= n or len(lx.ids) >= n,
                )
            )
        return out

    def proximity(self, query: str, ids: Ids) -> Scores | None:
        """As the local engine's, from the candidates' stored terms and IDFs estimated from
        Milvus's BM25 scores (see ``proximity``): three requests per query."""
        words = list(dict.fromkeys(self.tokenizer.terms(query)))
        pids = [int(i) for i in ids]
        if not words or not pids or self._settings is None:
            return np.zeros(len(pids), dtype=np.float32)
        stored = {
            r["pid"]: r["terms"].split() for r in self.rows_in("passages", "pid", pids, ["terms"])
        }
        scores: dict[str, dict[int, float]] = {w: {} for w in words}
        with self._errors():
            for i in range(0, len(pids), IN_LIST):
                chunk = pids[i : i + IN_LIST]
                found = self.client.search(
                    self.names["passages"],
                    data=words,
                    anns_field="sparse",
                    limit=len(chunk),
                    filter=f"pid in {ex.numbers(chunk)}",
                    output_fields=["pid"],
                    search_params={"metric_type": "BM25"},
                )
                for word, hits in zip(words, found, strict=True):
                    scores[word].update((h["entity"]["pid"], abs(h["distance"])) for h in hits)
        idf = proximity.estimate_idf(scores, stored)
        passages = max(int((self.meta("state") or {}).get("next_pid", 1)) - 1, len(stored))
        unseen = float(np.log1p((passages + 0.5) / 0.5))
        return proximity.shares(words, idf, [stored.get(p) for p in pids], unseen)

    # -- changes -----------------------------------------------------------------------------

    def writer(
        self, settings: IndexSettings
    ) -> contextlib.AbstractContextManager[writer.MilvusWriter]:
        return writer.transaction(self, settings)

    def remove(self, doc_ids: Sequence[str]) -> int:
        return writer.remove(self, doc_ids)

    def bind(self, settings: IndexSettings) -> None:
        """Create the collections for data made with ``settings`` (on the first write), or
        check that the data held was made with the same model."""
        writer.bind(self, settings)

    def configure_vectors(
        self, *, vector_index: str | None = None, memory_budget: int | None = None
    ) -> None:
        """Choose Milvus's vector index (auto: Milvus's AUTOINDEX; flat, ivf-sq8, ivf-pq).
        Milvus sizes its own memory, so a memory budget is refused."""
        if memory_budget is not None:
            raise SemsearchError(
                f"{self.location}: a memory budget applies to the local engine; "
                "a Milvus server manages its own memory"
            )
        if vector_index is None or vector_index == self.vector_index:
            return
        if vector_index not in schema.VECTOR_INDEX_TYPES:
            raise ValueError(
                f"unknown vector index {vector_index!r}; choose from "
                f"{', '.join(schema.VECTOR_INDEX_TYPES)}"
            )
        self.vector_index = vector_index
        if self._settings is not None:
            writer.rebuild_vector_index(self)

    def save(self, settings: IndexSettings, location: str | None = None) -> str:
        """Flush the collections (each write committed already). A Milvus index is kept where
        it is: saving it anywhere else is refused."""
        elsewhere = location is not None and (
            not is_milvus(location) or Address.parse(location).display != self.location
        )
        if elsewhere:
            raise SemsearchError(
                f"{self.location}: a Milvus index is kept where it is and cannot be saved "
                f"to {location}"
            )
        self.bind(settings)
        with self._errors():
            for name in self.names.values():
                self.client.flush(name)
        return self.location

    def close(self) -> None:
        """Close this process's client of the address (another index on it reconnects)."""
        close(self.address)

    def info(self, *, files: bool = False, check_recall: bool = False) -> dict[str, Any]:
        docs, passages = self.counts()
        info: dict[str, Any] = {
            "path": self.location,
            "format_version": schema.FORMAT_VERSION,
            "dimension": None if self._settings is None else self._settings.dimension,
            "index_type": self.vector_index,
            "documents": docs,
            "passages": passages,
            "vectors": passages,
            "engine": "milvus-lite" if self.address.embedded else "milvus",
            "pending_writes": len(self.pending()),
            "dates": self.date_summary(docs),
            "duplicates": writer.duplicate_report(self),
        }
        if files:
            info["collections"] = {
                name: self.count(part, "") if self._settings is not None else 0
                for part, name in self.names.items()
            }
        return info


def _unstored(row: dict[str, Any]) -> bool:
    """A passage too long for a VARCHAR keeps its text only in its document."""
    return not row["text"] and row["end"] > row["start"]


def _text(row: dict[str, Any], doc: Document | None) -> str:
    if _unstored(row):
        assert doc is not None
        return doc.text[row["start"] : row["end"]]
    return str(row["text"])


def _empty() -> Ranked:
    return Ranked(np.zeros(0, np.int64), np.zeros(0, np.float32))
