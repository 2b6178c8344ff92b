"""HTML -> Document: trafilatura's main text and metadata, pages nested too deep for libxml2's
default limit, and dates a page declares but that are no real day."""

from __future__ import annotations

import html as html_entities
import re
import warnings
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..types import Document
from .dates import normalize_date, parse_absolute_date, unreadable_date

# libxml2 builds at most 256 levels of elements (2048 with its XML_PARSE_HUGE option, lxml's
# huge_tree) and silently drops whatever is nested deeper. trafilatura parses with the default
# limit, so the text of a page wrapped in 300 <div>s is simply gone and the page "has no text".
DEFAULT_MAX_DEPTH = 256
HUGE_MAX_DEPTH = 2048
# Past even the huge limit, layout-only containers are dropped from the markup before parsing:
# block ones become line breaks, inline ones nothing (they sit inside words).
BLOCK_CONTAINER_RE = re.compile(r"</?(?:div|section|article|main|center)\b[^>]*>", re.IGNORECASE)
INLINE_CONTAINER_RE = re.compile(r"</?(?:span|font)\b[^>]*>", re.IGNORECASE)

# The <meta> tags in which pages declare when they were published or updated (by property, name
# or itemprop; compared lower-cased).
DATE_META_NAMES = frozenset(
    {
        "article:published_time",
        "article:modified_time",
        "og:published_time",
        "og:updated_time",
        "datepublished",
        "datemodified",
        "datecreated",
        "date",
        "pubdate",
        "publishdate",
        "publish_date",
        "publish-date",
        "publication_date",
        "dc.date",
        "dc.date.issued",
        "dcterms.date",
        "dcterms.created",
        "dcterms.issued",
        "dcterms.modified",
        "sailthru.date",
        "parsely-pub-date",
    }
)
META_RE = re.compile(r"<meta\b[^>]*>", re.IGNORECASE)
ATTRIBUTE_RE = re.compile(r"""([\w:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")


def html_document(html: str, *, path: str) -> Document:
    """The main text of an HTML page with its title, URL, date, author and site name."""
    fields = _extract(html)
    if fields is None:
        fields = _extract_deep(html)
    if fields is None:
        raise InputError(path, "no main text found in the HTML")
    text, title = fields["text"], fields["title"]
    metadata: dict[str, Any] = {"path": path}
    for key in ("author", "sitename", "description"):
        if fields.get(key):
            metadata[key] = fields[key]
    date = fields.get("date")
    date = normalize_date(date) if isinstance(date, str) else None
    declared = _meta_dates(html)
    # Written as a date but no real day ("2024-13-45"); a format semsearch does not know
    # ("20220424") is left to trafilatura, never called unreadable.
    bad = [meta for meta in declared if parse_absolute_date(meta[2]) == (True, None)]
    if bad:
        # htmldate makes a year of "2024-13-45" (2024-01-01): a declared date that is no day
        # leaves the page without a date, unless another declared date is fine.
        dated = date is not None and len(bad) < len(declared)
        date = date if dated else None
        key, name, value = bad[0]
        metadata["date_raw"] = value
        where = f'<meta {key}="{name}">'
        warnings.warn(unreadable_date(path, value, where, dated=dated), stacklevel=5)
    return Document.create(
        text,
        title=title or Path(path).stem,
        source=path,
        url=fields.get("url") or None,
        date=date,
        metadata=metadata,
    )


def _extract(page: Any) -> dict[str, Any] | None:
    """trafilatura's fields of a page (markup or a parsed tree), with ``text`` and ``title``
    cleaned; None when it finds no main text."""
    # Imported here: trafilatura (with lxml, htmldate, courlan) takes a quarter of a second to
    # import, which every user of semsearch would pay even without an HTML file in sight.
    import trafilatura

    result = trafilatura.bare_extraction(
        page, with_metadata=True, include_comments=False, include_images=False
    )
    if result is None:
        return None
    # trafilatura 1.x returns a dict, 2.x a Document object.
    fields: dict[str, Any] = result if isinstance(result, dict) else result.as_dict()
    text = (fields.get("text") or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    title = (fields.get("title") or "").strip()
    # trafilatura keeps the <h1> as the first line of the text; the headline is not body.
    first, _, rest = text.partition("\n")
    if title and first.strip() == title and rest.strip():
        text = rest.strip()
    if not text:
        return None
    return {**fields, "text": text, "title": title}


def _extract_deep(html: str) -> dict[str, Any] | None:
    """For a page in which trafilatura found nothing: when that is because the page nests
    deeper than libxml2's default limit, extract from a tree parsed without it (and, past even
    the raised limit, from the markup with its layout containers dropped)."""
    tree, depth = _parse_huge(html)
    if depth <= DEFAULT_MAX_DEPTH:
        return None  # trafilatura saw the whole page: it has no main text
    if depth >= HUGE_MAX_DEPTH:
        flat = INLINE_CONTAINER_RE.sub("", BLOCK_CONTAINER_RE.sub("\n", html))
        tree, depth = _parse_huge(flat)
    return _extract(tree)


def _parse_huge(html: str) -> tuple[Any, int]:
    """The page parsed as trafilatura parses it but with libxml2's huge limits, and its depth."""
    import lxml.etree  # type: ignore[import-untyped]  # no stubs; lxml comes with trafilatura
    import lxml.html  # type: ignore[import-untyped]

    parser = lxml.html.HTMLParser(
        collect_ids=False,
        default_doctype=False,
        encoding="utf-8",
        remove_comments=True,
        remove_pis=True,
        huge_tree=True,
    )
    # Bytes: lxml refuses a str that declares its own encoding; the text is decoded already.
    tree = lxml.html.fromstring(html.encode("utf-8", "surrogatepass"), parser=parser)
    depth = deepest = 0
    for event, _ in lxml.etree.iterwalk(tree, events=("start", "end")):
        depth += 1 if event == "start" else -1
        deepest = max(deepest, depth)
    return tree, deepest


def _meta_dates(html: str) -> list[tuple[str, str, str]]:
    """(attribute, name, content) of each date <meta> tag of the page, in page order."""
    found: list[tuple[str, str, str]] = []
    for tag in META_RE.finditer(html):
        attributes = {
            m[1].lower(): html_entities.unescape(m[2] or m[3] or m[4] or "")
            for m in ATTRIBUTE_RE.finditer(tag[0])
        }
        for key in ("property", "name", "itemprop"):
            name = attributes.get(key, "").strip()
            if name.lower() in DATE_META_NAMES and attributes.get("content", "").strip():
                found.append((key, name, attributes["content"].strip()))
                break
    return found
