"""Dates as articles write them: absolute dates in many styles, relative "9 sec ago" lines,
and the dates an article's text names, which bound a date read from a relative line."""

from __future__ import annotations

import datetime as dt
import re

from ..errors import SemsearchWarning

# Month names are matched by hand rather than with strptime("%B"), whose names follow the
# process locale: a server running under de_DE must still read "24 April 2022".
MONTHS: dict[str, int] = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}

# Sites print the same instant in many ways ("24 April 2022", "April 24, 2022 12:30",
# "Sun, Apr 24th 2022 at 9:05 pm GMT", "2022-04-24T10:00:00Z", "2022/04/24"). Only the calendar
# day is kept, so everything after it (time, zone) is matched loosely and ignored.
_WEEKDAY = r"(?:(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?,?\s+)?"
_TIME_TAIL = (
    r"(?:\s*(?:,|at|-|\||\u2014)?\s*\d{1,2}[:.]\d{2}(?::\d{2})?(?:\s*[ap]\.?m\.?)?)?"
    r"(?:\s*\(?(?:(?-i:[A-Z]{2,5})|[+-]\d{2}:?\d{2})\)?)?"
)
ABSOLUTE_DATE_RES: tuple[re.Pattern[str], ...] = tuple(
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        _WEEKDAY
        + r"(?P<d>\d{1,2})(?:st|nd|rd|th)?\s+(?P<m>[a-z]{3,9})\.?,?\s+(?P<y>\d{4})"
        + _TIME_TAIL,
        _WEEKDAY
        + r"(?P<m>[a-z]{3,9})\.?\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<y>\d{4})"
        + _TIME_TAIL,
        r"(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})"
        r"(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}:?\d{2}|(?-i:[A-Z]{2,5}))?)?",
    )
)

# "Updated 9 sec ago": the page was scraped some time after it was rendered, so the resolved
# day is only as good as the file's modification time, hence date_approximate.
RELATIVE_DATE_RE = re.compile(
    r"(?P<n>\d+|an?|one)\s+(?P<unit>sec|second|min|minute|hr|hour|day|week)s?\s+ago",
    re.IGNORECASE,
)
RELATIVE_UNIT_SECONDS: dict[str, int] = {
    "sec": 1,
    "second": 1,
    "min": 60,
    "minute": 60,
    "hr": 3600,
    "hour": 3600,
    "day": 86400,
    "week": 7 * 86400,
}


def normalize_date(value: str) -> str | None:
    """``YYYY-MM-DD`` for an absolute date ("24 April 2022", "2022/04/24", ...), else None."""
    return parse_absolute_date(value)[1]


def parse_absolute_date(value: str) -> tuple[bool, str | None]:
    """Whether ``value`` is written as an absolute date, and its ``YYYY-MM-DD`` when that is a
    real day ("2024-13-45" is written as one, but is none)."""
    value = value.strip()
    shaped = False
    for pattern in ABSOLUTE_DATE_RES:
        match = pattern.fullmatch(value)
        if not match:
            continue
        month_text = match["m"]
        month = int(month_text) if month_text.isdigit() else MONTHS.get(month_text.lower())
        if month is None:
            continue
        shaped = True
        try:
            return True, dt.date(int(match["y"]), month, int(match["d"])).isoformat()
        except ValueError:
            continue
    return shaped, None


def unreadable_date(
    where: str, value: object, place: str, *, dated: bool = False
) -> SemsearchWarning:
    """The warning for a date that cannot be read: ``where`` (file, and line) and ``place`` (the
    field or line holding it) name it; ``dated`` when the document has a date from elsewhere."""
    outcome = "its date is taken from elsewhere" if dated else "the document is kept without a date"
    return SemsearchWarning(f"{where}: unreadable date {value!r} in {place}; {outcome}")


# Dates an article's text names, as evidence of when it was written: a day ("24 April 2022",
# "April 24, 2022", "2022-04-24"), a month ("the end of November 2025"), or failing both a year
# ("in 2025"). Month names must be capitalised here, so that the verb "may" is no month.
_NAMES = "|".join(sorted({n.capitalize() for n in MONTHS}, key=len, reverse=True))
_YEAR = r"(?P<y>(?:19|20)\d{2})(?!\d)"
_NAMED_DAY_RES = (
    re.compile(rf"\b(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<m>{_NAMES})\.?,?\s+{_YEAR}"),
    re.compile(rf"\b(?P<m>{_NAMES})\.?\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?,\s*{_YEAR}"),
    re.compile(rf"(?<!\d){_YEAR}-(?P<m>\d{{2}})-(?P<d>\d{{2}})(?!\d)"),
)
_NAMED_MONTH_RE = re.compile(rf"\b(?P<m>{_NAMES})\.?,?\s+(?:of\s+)?{_YEAR}")
_NAMED_YEAR_RE = re.compile(rf"(?<![\d,.$€£]){_YEAR}(?![\d,.%]\d?)")
# A relative date ("Updated 9 sec ago") counted back from the file's time stands unless it falls
# this far after the latest date the article names: a scrape read months later says nothing of
# when the article was written, but an article about November is rarely more than a month old.
BOUND_SLACK_DAYS = 31


def latest_named_date(text: str) -> tuple[dt.date, str] | None:
    """The latest day the text names, as the last day of the period it names (a month: its
    last day), with the words that name it; years only when it names no day or month."""
    found: list[tuple[dt.date, str]] = []
    days: list[range] = []  # where days are named: "March 2024" in "3 March 2024" is no month
    for pattern in _NAMED_DAY_RES:
        for m in pattern.finditer(text):
            month = int(m["m"]) if m["m"].isdigit() else MONTHS[m["m"].lower()]
            try:
                found.append((dt.date(int(m["y"]), month, int(m["d"])), m.group()))
            except ValueError:
                continue
            days.append(range(m.start(), m.end()))
    for m in _NAMED_MONTH_RE.finditer(text):
        if any(m.start() in span for span in days):
            continue
        year, month = int(m["y"]), MONTHS[m["m"].lower()]
        following = dt.date(year + month // 12, month % 12 + 1, 1)
        found.append((following - dt.timedelta(days=1), m.group()))
    if not found:
        found = [(dt.date(int(m["y"]), 12, 31), m.group()) for m in _NAMED_YEAR_RE.finditer(text)]
    return max(found, key=lambda item: item[0]) if found else None


def resolve_relative(line: str, seconds: int, mtime: float, text: str) -> tuple[str, str]:
    """The day of a relative date line in an article (``seconds`` before the file's time, and
    never after the moment it is read), bounded by the dates its ``text`` names; with how it
    was derived, in words."""
    now = dt.datetime.now(dt.timezone.utc)
    stamp = dt.datetime.fromtimestamp(mtime, tz=dt.timezone.utc)
    counted = f"{line!r} counted back from the file's time ({stamp.date().isoformat()}"
    if stamp > now:
        counted += ", later than now: counted from now instead"
        stamp = now
    day = (stamp - dt.timedelta(seconds=seconds)).date()
    named = latest_named_date(text)
    if named is not None and (day - named[0]).days > BOUND_SLACK_DAYS:
        bound, words = named
        return bound.isoformat(), (
            f"the latest date the text names ({words!r}); {counted}) gives "
            f"{day.isoformat()}, {(day - bound).days} days later"
        )
    return day.isoformat(), f"{counted})"
