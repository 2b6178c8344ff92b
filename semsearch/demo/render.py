"""HTML for the demo: answers, sources, hits and statistics, with every article string escaped."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any
from urllib.parse import urlsplit

# Markers the answerer writes after each quote; only numbers that have a citation become links.
_MARKER = re.compile(r"\[(\d+)\]")
SNIPPET_CHARS = 600


def _e(value: object) -> str:
    """Escape for text and attribute values alike: articles may hold any markup."""
    return escape("" if value is None else str(value), quote=True)


def _safe_url(url: object) -> str | None:
    # An article's url is data from the article itself: a javascript: or data: url in an href
    # would run code on click, so only web links become links.
    if not isinstance(url, str):
        return None
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return None
    return url.strip() if scheme in ("http", "https") else None


def _date(item: Mapping[str, Any]) -> str:
    date = item.get("date")
    if not date:
        return "no date"
    return f"~{date} (approximate)" if item.get("date_approximate") else str(date)


def _basis(item: Mapping[str, Any]) -> str | None:
    """How an approximate date was derived, as its document's metadata says."""
    metadata = item.get("metadata") or {}
    basis = metadata.get("date_basis") if item.get("date_approximate") else None
    return str(basis) if basis else None


def _date_html(item: Mapping[str, Any]) -> str:
    """The date; an approximate one says how it was derived on hover."""
    basis = _basis(item)
    if basis is None:
        return _e(_date(item))
    return f'<span class="date-approximate" title="{_e(basis)}">{_e(_date(item))}</span>'


def _source(item: Mapping[str, Any]) -> str:
    source = item.get("source") or ""
    url = _safe_url(item.get("url"))
    if url is None:
        return f'<span class="src-name">{_e(source or "unknown source")}</span>'
    return (
        f'<a class="src-link" href="{_e(url)}" target="_blank" rel="noopener noreferrer">'
        f"{_e(source or url)}</a>"
    )


def answer_html(answer: Mapping[str, Any] | None) -> str:
    """The answer text with each ``[n]`` a link to its source card."""
    if not answer:
        return '<div class="answer empty">Ask a question about the indexed news.</div>'
    text = _e(answer.get("answer", ""))
    confidence = float(answer.get("confidence") or 0.0)
    if answer.get("abstained"):
        return (
            f'<div class="answer abstained" data-abstained="true"><p>{text}</p>'
            '<p class="note">The closest passages are listed below, without a quote.</p></div>'
        )
    numbers = {int(c["n"]) for c in answer.get("citations", [])}

    def link(match: re.Match[str]) -> str:
        n = int(match.group(1))
        if n not in numbers:
            return match.group(0)
        return f'<a class="cite" href="#src-{n}" data-n="{n}">[{n}]</a>'

    return (
        f'<div class="answer" data-abstained="false"><p>{_MARKER.sub(link, text)}</p>'
        f'<p class="note">confidence {confidence:.2f}</p></div>'
    )


def _marked(passage: Mapping[str, Any] | None, citations: Sequence[Mapping[str, Any]]) -> str:
    """The passage, escaped, with each citation's quote in a ``<mark id="src-n">`` followed by
    its number; a quote not found in the passage (or overlapping one already marked) is shown
    after it, so every ``[n]`` still has its target."""
    text = "" if passage is None else str(passage.get("text", ""))
    offset = 0 if passage is None else int(passage.get("start", 0))
    placed: list[tuple[int, int, Mapping[str, Any]]] = []
    apart: list[Mapping[str, Any]] = []
    for c in citations:
        quote = str(c.get("quote", ""))
        at = int(c.get("start", 0)) - offset
        if not (quote and at >= 0 and text[at : at + len(quote)] == quote):
            at = text.find(quote) if quote and text else -1  # re-chunked since: find it
        if at < 0 or any(at < e and s < at + len(quote) for s, e, _ in placed):
            apart.append(c)
        else:
            placed.append((at, at + len(quote), c))
    parts, pos = [], 0
    for s, e, c in sorted(placed, key=lambda p: p[0]):
        parts.append(_e(text[pos:s]) + _mark(c, text[s:e]))
        pos = e
    parts.append(_e(text[pos:]))
    body = f'<blockquote class="passage">{"".join(parts)}</blockquote>' if text else ""
    extra = "".join(
        f'<blockquote class="passage">{_mark(c, str(c.get("quote", "")))}</blockquote>'
        for c in apart
    )
    return body + extra


def _mark(citation: Mapping[str, Any], quote: str) -> str:
    n = int(citation["n"])
    return (
        f'<mark id="src-{n}" data-n="{n}">{_e(quote)}</mark>'
        f'<sup class="mark-n" aria-hidden="true">[{n}]</sup>'
    )


def sources_html(answer: Mapping[str, Any] | None) -> str:
    """One card per cited passage (title, date, source, the passage with each quote marked and
    numbered): quotes from the same passage share its card. When the answer abstains, the
    closest passages instead."""
    if not answer:
        return ""
    passages = {p.get("passage_id"): p for p in answer.get("passages", [])}
    cards = []
    if answer.get("abstained"):
        for rank, hit in enumerate(answer.get("passages", []), start=1):
            cards.append(
                f'<div class="source nearby"><div class="src-head">{rank}. '
                f'<span class="src-title">{_e(hit.get("title") or "(untitled)")}</span> · '
                f"{_date_html(hit)} · {_source(hit)}</div>"
                f'<blockquote class="passage">{_e(_snippet(hit.get("text", "")))}</blockquote>'
                "</div>"
            )
        head = "<h3>Closest passages</h3>" if cards else "<h3>No passages found</h3>"
        return f'<div class="sources">{head}{"".join(cards)}</div>'
    groups: dict[Any, list[Mapping[str, Any]]] = {}
    for c in answer.get("citations", []):
        groups.setdefault((c.get("doc_id"), c.get("passage_id")), []).append(c)
    for (_, passage_id), cited in groups.items():
        first = cited[0]
        passage = passages.get(passage_id)
        numbers = " ".join(f"[{int(c['n'])}]" for c in cited)
        # A citation carries the date but not whether it is approximate; its passage does.
        dated = {
            **first,
            "date_approximate": bool(passage and passage.get("date_approximate")),
            "metadata": (passage or {}).get("metadata") or {},
        }
        basis = _basis(dated)
        derived = f'<div class="date-basis">Date: {_e(basis)}</div>' if basis else ""
        cards.append(
            f'<div class="source" data-n="{" ".join(str(int(c["n"])) for c in cited)}">'
            f'<div class="src-head"><span class="src-n">{numbers}</span> '
            f'<span class="src-title">{_e(first.get("title") or "(untitled)")}</span> · '
            f"{_date_html(dated)} · {_source(first)}</div>"
            f"{_marked(passage, cited)}{derived}</div>"
        )
    return f'<div class="sources"><h3>Sources</h3>{"".join(cards)}</div>'


def _snippet(text: str) -> str:
    text = " ".join(str(text).split())
    if len(text) > SNIPPET_CHARS:
        text = text[:SNIPPET_CHARS].rsplit(" ", 1)[0] + " …"
    return text


def hits_html(result: Mapping[str, Any] | None) -> str:
    """Search results: rank, score, document and passage text."""
    if not result:
        return '<div class="hits empty">Search the indexed passages.</div>'
    hits: Sequence[Mapping[str, Any]] = result.get("hits", [])
    if not hits:
        return '<div class="hits empty">No passages match these filters.</div>'
    rows = [
        f'<div class="hit" data-rank="{int(h["rank"])}"><div class="src-head">'
        f'<span class="rank">{int(h["rank"])}.</span> '
        f'<span class="score" title="relevance score">{float(h["score"]):.3f}</span> '
        f'<span class="src-title">{_e(h.get("title") or "(untitled)")}</span> · '
        f"{_date_html(h)} · {_source(h)} · <code>[{int(h['start'])}:{int(h['end'])}]</code>"
        f'</div><blockquote class="passage">{_e(_snippet(h.get("text", "")))}</blockquote></div>'
        for h in hits
    ]
    return f'<div class="hits">{"".join(rows)}</div>'


def refused_html(what: str) -> str:
    """In place of an answer or results when the request was refused (the message says why)."""
    return (
        f'<div class="refused" data-refused="true">{_e(what)}: the request was refused; the '
        "message at the top right says why.</div>"
    )


def stats_html(stats: Mapping[str, Any]) -> str:
    """Index statistics as a small table."""
    first, last = stats.get("date_first"), stats.get("date_last")
    dates = f"{first} to {last}" if first else "none"
    sources = stats.get("sources", [])
    shown = ", ".join(_e(s) for s in sources[:20])
    if len(sources) > 20:
        shown += f", … ({len(sources) - 20} more)"
    rows = [
        ("Documents", f"{int(stats.get('documents', 0)):,}"),
        ("Passages", f"{int(stats.get('passages', 0)):,}"),
        ("Dates", _e(dates)),
        ("Sources", f"{len(sources):,}: {shown}" if sources else "none"),
        ("Model", _e(stats.get("model", ""))),
        ("Index directory", _e(stats.get("path", ""))),
    ]
    body = "".join(f"<tr><th>{name}</th><td>{value}</td></tr>" for name, value in rows)
    return f'<table class="stats" id="stats-table">{body}</table>'


def report_html(lines: Sequence[tuple[str, str]]) -> str:
    """The add-articles report: (kind, message) pairs, kind "ok" or "error"."""
    items = "".join(f'<li class="{_e(kind)}">{_e(message)}</li>' for kind, message in lines)
    return f'<ul class="report">{items}</ul>'


CSS = """
.answer p { font-size: 1.05rem; line-height: 1.6; }
.answer .note, .hits.empty, .answer.empty { color: var(--body-text-color-subdued);
  font-size: .9rem; }
.answer.abstained p:first-child { font-weight: 600; }
a.cite { font-weight: 600; text-decoration: none; padding: 0 .1em; }
.source, .hit { border: 1px solid var(--border-color-primary); border-radius: 8px;
  padding: .6rem .8rem; margin: .5rem 0; scroll-margin-top: 1rem; }
.source:has(mark:target) { border-color: var(--color-accent); }
mark:target { outline: 2px solid var(--color-accent); outline-offset: 1px; }
mark { scroll-margin-top: 4rem; }
sup.mark-n { font-size: .7rem; font-weight: 600; color: var(--color-accent); margin-left: .1em; }
.src-head { font-size: .9rem; margin-bottom: .3rem; }
.date-basis { font-size: .8rem; color: var(--body-text-color-subdued); margin-top: .3rem; }
.date-approximate { text-decoration: underline dotted; cursor: help; }
.src-title { font-weight: 600; }
.score { font-family: var(--font-mono); background: var(--background-fill-secondary);
  padding: 0 .3em; border-radius: 4px; }
blockquote.passage { margin: 0; padding-left: .8rem;
  border-left: 3px solid var(--border-color-primary); white-space: pre-wrap; line-height: 1.5; }
mark { background: #fde68a; color: inherit; padding: 0 .1em; }
table.stats th { text-align: left; padding-right: 1rem; vertical-align: top; }
#examples { gap: .3rem; }
.examples-label { font-size: .85rem; color: var(--body-text-color-subdued); margin: 0; }
.example-row { flex-wrap: wrap; gap: .4rem; }
.example-row button { flex: 0 1 auto !important; width: auto !important; max-width: 100%;
  white-space: normal; text-align: left; font-weight: normal; }
.refused { color: #b91c1c; font-size: .95rem; padding: .4rem 0; }
ul.report { list-style: none; padding-left: 0; }
ul.report li.error { color: #b91c1c; }
ul.report li.ok { color: #15803d; }
"""
