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


def _highlighted(passage: Mapping[str, Any] | None, citation: Mapping[str, Any]) -> str:
    """The passage around a quote, escaped, with the quote in <mark>."""
    quote = str(citation.get("quote", ""))
    if passage is None:
        return f"<mark>{_e(quote)}</mark>"
    text = str(passage.get("text", ""))
    at = int(citation.get("start", 0)) - int(passage.get("start", 0))
    if not (at >= 0 and text[at : at + len(quote)] == quote):
        at = text.find(quote)  # offsets disagree only if the passage was re-chunked since
    if at < 0:
        return f"<mark>{_e(quote)}</mark>"
    end = at + len(quote)
    return f"{_e(text[:at])}<mark>{_e(quote)}</mark>{_e(text[end:])}"


def sources_html(answer: Mapping[str, Any] | None) -> str:
    """One card per citation (title, date, source, passage with the quote marked); when the
    answer abstains, the closest passages instead."""
    if not answer:
        return ""
    passages = {p.get("passage_id"): p for p in answer.get("passages", [])}
    cards = []
    if answer.get("abstained"):
        for rank, hit in enumerate(answer.get("passages", []), start=1):
            cards.append(
                f'<div class="source nearby"><div class="src-head">{rank}. '
                f'<span class="src-title">{_e(hit.get("title") or "(untitled)")}</span> · '
                f"{_e(_date(hit))} · {_source(hit)}</div>"
                f'<blockquote class="passage">{_e(_snippet(hit.get("text", "")))}</blockquote>'
                "</div>"
            )
        head = "<h3>Closest passages</h3>" if cards else "<h3>No passages found</h3>"
        return f'<div class="sources">{head}{"".join(cards)}</div>'
    for c in answer.get("citations", []):
        n = int(c["n"])
        passage = passages.get(c.get("passage_id"))
        # A citation carries the date but not whether it is approximate; its passage does.
        dated = {**c, "date_approximate": bool(passage and passage.get("date_approximate"))}
        cards.append(
            f'<div class="source" id="src-{n}" data-n="{n}"><div class="src-head">'
            f'<span class="src-n">[{n}]</span> '
            f'<span class="src-title">{_e(c.get("title") or "(untitled)")}</span> · '
            f"{_e(_date(dated))} · {_source(c)}</div>"
            f'<blockquote class="passage">{_highlighted(passage, c)}'
            "</blockquote></div>"
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
        f'<span class="score" title="cosine similarity">{float(h["score"]):.3f}</span> '
        f'<span class="src-title">{_e(h.get("title") or "(untitled)")}</span> · '
        f"{_e(_date(h))} · {_source(h)} · <code>[{int(h['start'])}:{int(h['end'])}]</code>"
        f'</div><blockquote class="passage">{_e(_snippet(h.get("text", "")))}</blockquote></div>'
        for h in hits
    ]
    return f'<div class="hits">{"".join(rows)}</div>'


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
.source:target { border-color: var(--color-accent); box-shadow: 0 0 0 2px var(--color-accent); }
.src-head { font-size: .9rem; margin-bottom: .3rem; }
.src-title { font-weight: 600; }
.score { font-family: var(--font-mono); background: var(--background-fill-secondary);
  padding: 0 .3em; border-radius: 4px; }
blockquote.passage { margin: 0; padding-left: .8rem;
  border-left: 3px solid var(--border-color-primary); white-space: pre-wrap; line-height: 1.5; }
mark { background: #fde68a; color: inherit; padding: 0 .1em; }
table.stats th { text-align: left; padding-right: 1rem; vertical-align: top; }
ul.report li.error { color: #b91c1c; }
ul.report li.ok { color: #15803d; }
"""
