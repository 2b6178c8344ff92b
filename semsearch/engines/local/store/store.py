"""SQLite store of documents and passages; passage text is never stored, only its offsets."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ....types import Document, Hit, Ids, Passage
from .database import Database
from .rows import BadRow, doc_row, json_column, reads, row_doc, same, span, text_column

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    source TEXT NOT NULL,
    url TEXT,
    date TEXT,
    date_approximate INTEGER NOT NULL,
    dateline TEXT,
    highlights TEXT NOT NULL,
    metadata TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS passages (
    id INTEGER PRIMARY KEY,
    doc_id TEXT NOT NULL REFERENCES documents(id),
    ordinal INTEGER NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    embed_key TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS passages_doc ON passages(doc_id);
CREATE INDEX IF NOT EXISTS passages_key ON passages(embed_key);
CREATE INDEX IF NOT EXISTS documents_date ON documents(date);
CREATE INDEX IF NOT EXISTS documents_source ON documents(source);
"""

_DOC_COLUMNS = (
    "id, title, text, source, url, date, date_approximate, dateline, highlights, metadata"
)
_SELECT_DOC = f"SELECT {_DOC_COLUMNS} FROM documents WHERE id = ?"
# A passage's text is a slice of its document (SQLite substr counts code points, as Python does).
_PASSAGE_TEXT = 'substr(d.text, p.start + 1, p."end" - p.start)'
_JOIN = "FROM passages p JOIN documents d ON d.id = p.doc_id"


class Store:
    """Documents and passages in one SQLite database.

    A loaded store reads its saved file in place, read-only, and is copied into a scratch
    database (in memory while small, then a temporary file) only on its first write (see
    ``.database.Database``): opening a large index costs no copy of it.
    """

    def __init__(self, database: Database | None = None, *, path: Path | None = None) -> None:
        self._database = database or Database(_SCHEMA)
        self.path = path
        """The saved file this store was loaded from, named in its errors."""

    @property
    def db(self) -> sqlite3.Connection:
        """The connection to read from; writes go through the methods and ``transaction``."""
        return self._database.db

    @property
    def read_only(self) -> bool:
        """True while the store reads its saved file in place (no write since ``load``)."""
        return self._database.read_only

    @classmethod
    def load(cls, path: Path) -> Store:
        """Open a saved database read-only in place; raises ValueError when it is not ours."""
        return cls(Database.open(path, _SCHEMA), path=path)

    def close(self) -> None:
        self._database.close()

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """Every write inside commits together, or none does if the block raises."""
        return self._database.transaction()

    def save(self, path: Path) -> None:
        """Write a complete copy of the database to ``path`` (the caller makes it atomic)."""
        self._database.save(path)

    def _writable(self) -> sqlite3.Connection:
        return self._database.writable()

    # -- documents -----------------------------------------------------------------------------

    @reads
    def has_document(self, doc_id: str) -> bool:
        return (
            self.db.execute("SELECT 1 FROM documents WHERE id = ?", (doc_id,)).fetchone()
            is not None
        )

    @reads
    def document(self, doc_id: str) -> Document | None:
        row = self.db.execute(_SELECT_DOC, (doc_id,)).fetchone()
        if row is None:
            return None
        doc = row_doc(row)
        return same(doc.id, doc_id, doc)

    @reads
    def documents(self) -> Iterator[Document]:
        for row in self.db.execute(f"SELECT {_DOC_COLUMNS} FROM documents ORDER BY rowid"):
            yield row_doc(row)

    def put_document(self, doc: Document) -> None:
        self.put_documents([doc])

    @reads
    def put_documents(self, docs: Iterable[Document]) -> None:
        """Insert or replace documents (their passages are put apart)."""
        self._writable().executemany(
            f"INSERT OR REPLACE INTO documents ({_DOC_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
            map(doc_row, docs),
        )

    @reads
    def delete_document(self, doc_id: str) -> list[int]:
        """Delete a document and its passages; returns the ids of the passages removed."""
        ids = self.passage_ids(doc_id)
        db = self._writable()
        db.execute("DELETE FROM passages WHERE doc_id = ?", (doc_id,))
        db.execute("DELETE FROM documents WHERE id = ?", (doc_id,))
        return ids

    @reads
    def same_document(self, doc: Document) -> bool:
        """True when ``doc`` is stored exactly as given (re-adding it changes nothing)."""
        row = self.db.execute(_SELECT_DOC, (doc.id,)).fetchone()
        return row is not None and tuple(row) == doc_row(doc)

    # -- passages ------------------------------------------------------------------------------

    @reads
    def put_passages(self, passages: Iterable[Passage], keys: Iterable[str]) -> None:
        self._writable().executemany(
            'INSERT INTO passages (id, doc_id, ordinal, start, "end", embed_key)'
            " VALUES (?,?,?,?,?,?)",
            (
                (p.id, p.doc_id, p.ordinal, p.start, p.end, k)
                for p, k in zip(passages, keys, strict=True)
            ),
        )

    @reads
    def passage_ids(self, doc_id: str | None = None) -> list[int]:
        if doc_id is None:
            return [r[0] for r in self.db.execute("SELECT id FROM passages ORDER BY id")]
        rows = self.db.execute(
            "SELECT id FROM passages WHERE doc_id = ? ORDER BY ordinal", (doc_id,)
        )
        return [r[0] for r in rows]

    @reads
    def passage_docs(self) -> Iterator[tuple[int, str]]:
        """(passage id, document id) of every passage, in id order."""
        yield from self.db.execute("SELECT id, doc_id FROM passages ORDER BY id")

    @reads
    def passages(self, doc_id: str) -> list[Passage]:
        rows = self.db.execute(
            f'SELECT p.id, p.ordinal, p.start, p."end", {_PASSAGE_TEXT}, length(d.text),'
            f" p.doc_id, d.id {_JOIN} WHERE p.doc_id = ? ORDER BY p.ordinal",
            (doc_id,),
        )
        passages = []
        for r in rows:
            span(r[0], r[2], r[3], r[5])
            same(r[6], doc_id, None)
            same(r[7], doc_id, None)
            passages.append(Passage(doc_id, r[1], r[2], r[3], r[4], id=r[0]))
        return passages

    @reads
    def keys_of(self, ids: Sequence[int]) -> list[str]:
        """The embedding key of each passage id, in order (a KeyError for an unknown id)."""
        found: dict[int, str] = {}
        for i in range(0, len(ids), 500):
            part = list(ids[i : i + 500])
            marks = ",".join("?" * len(part))
            found.update(
                self.db.execute(f"SELECT id, embed_key FROM passages WHERE id IN ({marks})", part)
            )
        missing = [i for i in ids if i not in found]
        if missing:
            raise KeyError(f"no passage {missing[0]} in the index")
        return [found[i] for i in ids]

    @reads
    def dates_of(self, ids: Sequence[int]) -> list[str | None]:
        """The date of each passage's document, in order (None: undated or no such passage)."""
        found: dict[int, str | None] = {}
        for i in range(0, len(ids), 500):
            part = list(ids[i : i + 500])
            marks = ",".join("?" * len(part))
            rows = self.db.execute(f"SELECT p.id, d.date {_JOIN} WHERE p.id IN ({marks})", part)
            found.update((pid, text_column(day, "date", optional=True)) for pid, day in rows)
        return [found.get(i) for i in ids]

    @reads
    def ids_for_keys(self, keys: Iterable[str]) -> dict[str, int]:
        """One stored passage id per embedding key that some stored passage already has."""
        found: dict[str, int] = {}
        unique = list(dict.fromkeys(keys))
        for i in range(0, len(unique), 500):
            part = unique[i : i + 500]
            marks = ",".join("?" * len(part))
            for key, pid in self.db.execute(
                "SELECT embed_key, min(id) FROM passages"
                f" WHERE embed_key IN ({marks}) GROUP BY embed_key",
                part,
            ):
                found[key] = pid
        return found

    @reads
    def counts(self) -> tuple[int, int]:
        docs = self.db.execute("SELECT count(*) FROM documents").fetchone()[0]
        passages = self.db.execute("SELECT count(*) FROM passages").fetchone()[0]
        return int(docs), int(passages)

    @reads
    def date_summary(self) -> dict[str, Any]:
        """How many documents have a date, how many of those are approximate, and the range."""
        dated, approximate, undated, first, last = self.db.execute(
            "SELECT count(date), coalesce(sum(date IS NOT NULL AND date_approximate), 0),"
            " count(*) - count(date), min(date), max(date) FROM documents"
        ).fetchone()
        return {
            "dated": dated,
            "approximate": approximate,
            "undated": undated,
            "first": first,
            "last": last,
        }

    @reads
    def filter_ids(
        self,
        *,
        date_from: str | None = None,
        date_to: str | None = None,
        sources: Sequence[str] | None = None,
        doc_ids: Sequence[str] | None = None,
    ) -> Ids:
        """Passage ids of the documents that pass every given filter."""
        where: list[str] = []
        args: list[Any] = []
        if date_from is not None:
            where.append("d.date >= ?")
            args.append(date_from)
        if date_to is not None:
            where.append("d.date <= ?")
            args.append(date_to)
        if sources is not None:
            # GLOB lets users filter by folder or site ("*/arabnews/*"); plain names match exactly.
            where.append(
                "(" + " OR ".join("d.source GLOB ?" for _ in sources) + ")" if sources else "0"
            )
            args.extend(sources)
        if doc_ids is not None:
            where.append(f"d.id IN ({','.join('?' * len(doc_ids))})" if doc_ids else "0")
            args.extend(doc_ids)
        sql = f"SELECT p.id {_JOIN}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        return np.fromiter((r[0] for r in self.db.execute(sql, args)), dtype=np.int64)

    @reads
    def hits(self, ids: Sequence[int], scores: Sequence[float]) -> list[Hit]:
        """Hits for passage ids in rank order, with their text sliced from the document."""
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(
            f'SELECT p.id, p.doc_id, p.ordinal, p.start, p."end", {_PASSAGE_TEXT},'
            f" d.title, d.date, d.source, d.url, d.metadata, d.date_approximate, length(d.text),"
            f" d.id {_JOIN}"
            f" WHERE p.id IN ({marks})",
            list(ids),
        ).fetchall()
        by_id = {r[0]: r for r in rows}
        hits: list[Hit] = []
        for pid, score in zip(ids, scores, strict=True):
            r = by_id.get(pid)
            if r is None:
                continue
            span(r[0], r[3], r[4], r[12])
            same(r[13], r[1], None)
            if type(r[2]) is not int:
                raise BadRow(f"passage {r[0]} has ordinal {r[2]!r}")
            hits.append(
                Hit(
                    rank=len(hits) + 1,
                    score=float(score),
                    passage_id=r[0],
                    doc_id=r[1],
                    ordinal=r[2],
                    start=r[3],
                    end=r[4],
                    text=text_column(r[5], "passage text"),
                    title=text_column(r[6], "title"),
                    date=text_column(r[7], "date", optional=True),
                    source=text_column(r[8], "source"),
                    url=text_column(r[9], "url", optional=True),
                    metadata=json_column(r[10], dict, "metadata"),
                    date_approximate=bool(r[11]),
                )
            )
        return hits
