"""Recency: a prior for recent articles, for queries that ask about recent events.

"Which automaker recalled 2.9 million vehicles this week?" asks for this week's article, though
last year's recall may match its words as well. A hybrid search adds to each candidate's fused
score ``RECENCY_GAIN * exp(-age / days)``: ``age`` counts the days from the passage's article to
the newest article among the query's candidates (so a date filter moves "now" with it, and an
archive's last week counts as this week), ``days`` comes from what the query names (a week for
"this week", "yesterday" or "recently"; a month for "this month"; a year for "this year").
Undated articles get nothing. A query that names no recent time is left alone unless the caller
asks for recency: on an archive, a search for a topic must not favour last week's news.

The gain and the week were chosen on the first three weeks of the RealTime QA slice and reported
on the last three (benchmarks/news_fusion.py; the table is in benchmarks/README.md).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

import numpy as np

from ..types import Scores

RECENCY_GAIN = 0.3
RECENCY_DAYS = 7.0
"""The time constant when the query names no period, or when the caller asks for recency."""

_DAYS = "monday|tuesday|wednesday|thursday|friday|saturday|sunday"
_CUES: tuple[tuple[re.Pattern[str], float], ...] = (
    (
        re.compile(
            r"\b(today|tonight|yesterday|this (morning|afternoon|evening|week|weekend)"
            r"|(last|past) (week|weekend|few days)|recent|recently|latest|currently)\b"
            # A weekday names a day of this week in news style, except in a named day.
            rf"|(?<!black )(?<!good )(?<!cyber )(?<!super )\b({_DAYS})\b",
            re.IGNORECASE,
        ),
        RECENCY_DAYS,
    ),
    (re.compile(r"\b(this|past) month\b", re.IGNORECASE), 30.0),
    (re.compile(r"\b(this|past) year\b", re.IGNORECASE), 365.0),
)


def recent_days(query: str) -> float | None:
    """The time constant, in days, of the most recent period ``query`` names; None if it
    names none."""
    for pattern, days in _CUES:  # shortest period first
        if pattern.search(query):
            return days
    return None


def recency_window(query: str, recency: bool | None) -> float | None:
    """The time constant to rank ``query`` with: from its words when ``recency`` is None
    (automatic), always when True (a week unless the query names a period), never when False."""
    if recency is False:
        return None
    days = recent_days(query)
    return days if days is not None or recency is None else RECENCY_DAYS


def recency_boost(dates: Sequence[str | None], days: float) -> Scores:
    """What the prior adds to each candidate's fused score, from its article's date."""
    ordinals = np.array(
        [dt.date.fromisoformat(d).toordinal() if d else np.nan for d in dates], dtype=np.float64
    )
    if not np.isfinite(ordinals).any():
        return np.zeros(len(dates), np.float32)
    age = np.nanmax(ordinals) - ordinals
    return np.nan_to_num(RECENCY_GAIN * np.exp(-age / days)).astype(np.float32)
