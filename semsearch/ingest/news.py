"""What makes a scraped news page an article: furniture, headline, highlights, dateline, dates."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field

from ..types import Document
from .dates import (
    RELATIVE_DATE_RE,
    RELATIVE_UNIT_SECONDS,
    parse_absolute_date,
    resolve_relative,
    unreadable_date,
)

# The verb sites put before the date; it tells a furniture date line from a sentence that merely
# contains a date.
DATE_LINE_RE = re.compile(
    r"(?:(?P<verb>last updated|first published|updated|published|posted)(?:\s+on)?\s*:?\s*)?"
    r"(?P<when>.+?)",
    re.IGNORECASE,
)
# An unparseable "Updated ..." line is still furniture in a header, but only when short: a longer
# one is more likely a sentence ("Published in 1998, the book ...").
MAX_UNPARSED_DATE_CHARS = 40

# Whole-line page furniture: share bars, social buttons, teasers. A body paragraph consisting of
# exactly one of these is never article text.
FURNITURE_RE = re.compile(
    r"(?:short url|follow(?: us)?(?: on \w+)?|share(?: this(?: article| story)?| on \w+)?"
    r"|read more|read also|also read|advertisement|sponsored|print|e-?mail|copy link|tweet"
    r"|facebook|twitter|x|whatsapp|linkedin|telegram|reddit|pinterest|\d* ?comments?)\s*:?",
    re.IGNORECASE,
)

# Highlights are printed as bullet lines between the repeated headline and the body.
BULLET_RE = re.compile(r"\s*[\u2022\u25cf\u25aa\u25e6\u2023]\s*(?P<text>.*\S)")

# The header (headline, caption, Short Url/Updated/Follow, headline again) spans a handful of
# lines; looking further would let a body paragraph repeated later pose as a headline.
MAX_HEADER_LINES = 8
MAX_CAPTION_LINES = 2
MAX_HEADLINE_CHARS = 300

# "ISLAMABAD:", "NEW YORK —", "WASHINGTON (Reuters) -", "LOS ANGELES, Calif., April 24 (AP) —":
# an upper-case place, optional ", Region/date" parts, an optional agency, then a separator.
DATELINE_RE = re.compile(
    r"(?P<place>[A-Z][A-Z'\u2019.\-]+(?:[ /][A-Z][A-Z'\u2019.\-]+)*)"
    r"(?:,\s*[A-Z][A-Za-z.]*(?:\s+[A-Za-z0-9.]+){0,2}){0,2}"
    r"(?:\s*\([A-Za-z .&\-]{1,30}\))?"
    r"\s*(?::|\u2014|\u2013|--?)\s+\S"
)


@dataclass
class _DateLine:
    raw: str
    date: str | None
    approximate: bool
    unreadable: str | None = None
    """The date as written, when it looks like one (a digit in it) but is no real day."""
    seconds: int = 0
    """For a relative date: how long before the file's time."""


def _date_line(line: str, *, mtime: float | None, strict: bool) -> _DateLine | None:
    """Read a furniture date line; ``strict`` refuses unparseable "Updated ..." lines."""
    match = DATE_LINE_RE.fullmatch(line)
    if not match:
        return None
    when = match["when"]
    relative = RELATIVE_DATE_RE.fullmatch(when)
    if relative:
        count = relative["n"].lower()
        n = int(count) if count.isdigit() else 1
        if mtime is None:
            return _DateLine(line, None, False)
        seconds = n * RELATIVE_UNIT_SECONDS[relative["unit"].lower()]
        # The day is settled once the article's text is known (resolve_relative).
        return _DateLine(line, "", True, seconds=seconds)
    shaped, date = parse_absolute_date(when)
    if date is not None:
        return _DateLine(line, date, False)
    if strict:
        return None
    # "Updated 2024-13-45" or a bare "9999-99-99" under a headline is a date line all the same,
    # only not one that can be read; "Updated by our staff" is furniture without a date.
    if shaped or (match["verb"] and len(when) <= MAX_UNPARSED_DATE_CHARS):
        unreadable = when if shaped or any(c.isdigit() for c in when) else None
        return _DateLine(line, None, False, unreadable)
    return None


def _is_furniture(line: str) -> bool:
    return FURNITURE_RE.fullmatch(line) is not None


@dataclass
class _Header:
    start: int
    """Index (into the non-blank lines) of the headline."""
    end: int
    """Index just past the repeated headline."""
    title: str
    captions: list[str] = field(default_factory=list)
    dates: list[_DateLine] = field(default_factory=list)


def _match_header(lines: list[str], k: int, *, mtime: float | None) -> _Header | None:
    """The article header starting at non-blank line ``k``, if that is where one starts."""
    title = lines[k].strip()
    if (
        len(title) > MAX_HEADLINE_CHARS
        or _is_furniture(title)
        or BULLET_RE.fullmatch(title)
        or _date_line(title, mtime=mtime, strict=True)
    ):
        return None
    header = _Header(start=k, end=k, title=title)
    saw_furniture = False
    for j in range(k + 1, min(len(lines), k + 1 + MAX_HEADER_LINES)):
        line = lines[j].strip()
        if line == title:
            if not saw_furniture:
                return None
            header.end = j + 1
            return header
        date_line = _date_line(line, mtime=mtime, strict=False)
        if date_line is not None:
            header.dates.append(date_line)
            saw_furniture = True
        elif _is_furniture(line):
            saw_furniture = True
        elif len(header.captions) < MAX_CAPTION_LINES and not BULLET_RE.fullmatch(line):
            header.captions.append(line)
        else:
            return None
    return None


def _article(
    header: _Header, body_lines: list[str], *, source: str, mtime: float | None
) -> Document | None:
    highlights: list[str] = []
    position = 0
    while position < len(body_lines):
        bullet = BULLET_RE.fullmatch(body_lines[position])
        if not bullet:
            break
        highlights.append(bullet["text"])
        position += 1
    unwanted = {header.title, *header.captions}
    paragraphs: list[str] = []
    # Some sites print "Updated ..." below the headline or the highlights: furniture all the same.
    dates = list(header.dates)
    for line in body_lines[position:]:
        date_line = _date_line(line.strip(), mtime=mtime, strict=True)
        if date_line is not None:
            dates.append(date_line)
        elif line.strip() not in unwanted and not _is_furniture(line.strip()):
            paragraphs.append(line)
    if not paragraphs:
        return None
    dateline = DATELINE_RE.match(paragraphs[0])
    dated = next((d for d in dates if d.date is not None), None)
    chosen = dated or (dates[0] if dates else None)
    metadata: dict[str, str] = {}
    if chosen is not None:
        metadata["updated_raw"] = chosen.raw
    bad = next(((d.raw, d.unreadable) for d in dates if d.unreadable is not None), None)
    if dated is None and bad is not None:
        line, value = bad
        metadata["date_raw"] = value
        place = f"the line {line!r} under {header.title!r}"
        warnings.warn(unreadable_date(source, value, place), stacklevel=4)
    if header.captions:
        metadata["caption"] = " ".join(header.captions)
    text = "\n\n".join(paragraphs)
    date = dated.date if dated else None
    if dated is not None and dated.approximate and mtime is not None:
        date, metadata["date_basis"] = resolve_relative(dated.raw, dated.seconds, mtime, text)
    elif dated is not None:
        metadata["date_basis"] = f"the line {dated.raw!r}"
    return Document.create(
        text,
        title=header.title,
        source=source,
        date=date,
        date_approximate=dated.approximate if dated else False,
        dateline=dateline["place"] if dateline else None,
        highlights=highlights,
        metadata=metadata,
    )


def parse_news_page(text: str, *, source: str, mtime: float | None) -> list[Document]:
    """The articles of a scraped news page, in page order; [] when ``text`` is not such a page.

    ``mtime`` (the file's modification time, a UTC timestamp) resolves relative dates such as
    "Updated 9 sec ago"; without it those articles get no date.
    """
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    # Blank lines separate headers, highlights and paragraphs alike, so they carry no structure:
    # work on the non-blank lines, with trailing spaces gone (headline repeats differ in them).
    lines = [line.rstrip() for line in text.split("\n") if line.strip()]
    headers: list[_Header] = []
    k = 0
    while k < len(lines):
        header = _match_header(lines, k, mtime=mtime)
        if header is None:
            k += 1
        else:
            headers.append(header)
            k = header.end
    documents: list[Document] = []
    for index, header in enumerate(headers):
        stop = headers[index + 1].start if index + 1 < len(headers) else len(lines)
        document = _article(header, lines[header.end : stop], source=source, mtime=mtime)
        if document is not None:
            documents.append(document)
    return documents
