"""The articles of a ``POST /documents`` body, read and checked as the command line reads files."""

from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import replace
from pathlib import Path

from ..errors import InputError
from ..indexing import check_document
from ..ingest import read_articles
from ..ingest.dates import normalize_date
from ..ingest.paths import SUPPORTED_SUFFIXES
from ..types import Document, stable_doc_id
from .models import AddRequest, ArticleIn, FileIn


def read_request(body: AddRequest) -> tuple[list[Document], list[str]]:
    """The documents of ``body`` in order (its articles, then its files' documents) and the
    warnings reading them gave; an ``InputError`` naming the field or file for anything that
    cannot be added, before anything is."""
    if not body.documents and not body.files:
        raise InputError(None, "nothing to add: give documents or files")
    docs = [_article(article, f"documents[{i}]") for i, article in enumerate(body.documents)]
    said: list[str] = []
    names = [_file_name(file, f"files[{i}]") for i, file in enumerate(body.files)]
    if body.files:
        with tempfile.TemporaryDirectory(prefix="semsearch-upload-") as folder:
            for i, (file, name) in enumerate(zip(body.files, names, strict=True)):
                docs.extend(_read_file(Path(folder) / str(i), name, file.content, said))
    for doc in docs:
        check_document(doc)
    return docs, said


def _article(article: ArticleIn, field: str) -> Document:
    date = None
    if article.date is not None:
        date = normalize_date(article.date[:10] if "T" in article.date else article.date)
        if date is None:
            raise InputError(field, f"date: {article.date!r} is not a date (YYYY-MM-DD)")
    text = article.text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        raise InputError(field, "text: empty")
    return Document.create(
        text,
        id=article.id,
        title=article.title,
        source=article.source,
        url=article.url,
        date=date,
        date_approximate=article.date_approximate,
        dateline=article.dateline,
        highlights=article.highlights,
        metadata=article.metadata,
    )


def _file_name(file: FileIn, field: str) -> str:
    name = file.name
    if name != os.path.basename(name) or name in (".", "..") or "\x00" in name:
        raise InputError(field, f"name: {name!r} is not a file name (no folders)")
    if Path(name).suffix.lower() not in SUPPORTED_SUFFIXES:
        supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise InputError(name, f"unsupported file type; use one of {supported}")
    return name


def _read_file(folder: Path, name: str, content: str, said: list[str]) -> list[Document]:
    """The documents of one file, named by its own name, not the temporary path it is read
    from (which means nothing to the client)."""
    folder.mkdir()
    path = folder / name
    try:
        path.write_text(content, encoding="utf-8", errors="surrogatepass")
    except UnicodeEncodeError:
        raise InputError(name, "holds invalid Unicode (a lone surrogate)") from None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            docs = list(read_articles(path))
    except InputError as exc:
        raise InputError(name, str(exc.problem), line=exc.line) from None
    said.extend(str(w.message).replace(str(path), name) for w in caught)
    return [_renamed(d, str(path), name) for d in docs]


def _renamed(doc: Document, path: str, name: str) -> Document:
    """``doc`` with ``name`` for its source; an id derived from the temporary path is derived
    again from the name, so the same file posted twice is the same document (unchanged)."""
    derived = doc.id == stable_doc_id(doc.source or (doc.url or ""), doc.title, doc.text)
    return replace(
        doc,
        id=stable_doc_id(name, doc.title, doc.text) if derived else doc.id,
        source=name,
        metadata={**{k: v for k, v in doc.metadata.items() if k != "path"}, "file": name},
    )
