"""Dates from evidence: a relative "Updated … ago" counted back from the file's time, bounded by
the dates the article names and never later than the moment it is read."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semsearch import Index, read_articles
from semsearch.ingest.dates import BOUND_SLACK_DAYS, latest_named_date
from semsearch.ingest.news import parse_news_page

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "news" / "000_94129f04b1971983.txt"
UTC = dt.timezone.utc


def _stamp(*ymd: int) -> float:
    return dt.datetime(*ymd, 12, 0, tzinfo=UTC).timestamp()


def _page(body: str, when: str = "Updated 2 hours ago") -> str:
    return f"Harbour wall approved\n{when}\nFollow\nHarbour wall approved\n\nCAIRO: {body}\n"


def test_a_checkout_a_year_later_keeps_the_sample_in_the_month_its_text_names() -> None:
    text = SAMPLE.read_text(encoding="utf-8")
    _, second = parse_news_page(text, source="page.txt", mtime=_stamp(2026, 6, 1))
    # "between January and the end of November 2025": the file's time says nothing of 2025.
    assert (second.date, second.date_approximate) == ("2025-11-30", True)
    basis = second.metadata["date_basis"]
    assert basis.startswith("the latest date the text names ('November 2025')")
    counted = "'Updated 9 sec ago' counted back from the file's time (2026-06-01) gives 2026-06-01"
    assert counted in basis


def test_a_file_time_close_to_what_the_text_names_stands() -> None:
    text = SAMPLE.read_text(encoding="utf-8")
    _, second = parse_news_page(text, source="page.txt", mtime=_stamp(2025, 12, 20))
    assert (second.date, second.date_approximate) == ("2025-12-20", True)
    assert second.metadata["date_basis"] == (
        "'Updated 9 sec ago' counted back from the file's time (2025-12-20)"
    )


def test_an_absolute_date_line_is_its_own_basis() -> None:
    (doc,) = parse_news_page(
        _page("The council met.", "Updated 24 April 2022"), source="p", mtime=None
    )
    assert (doc.date, doc.date_approximate) == ("2022-04-24", False)
    assert doc.metadata["date_basis"] == "the line 'Updated 24 April 2022'"


def test_a_file_time_in_the_future_counts_from_now() -> None:
    future = (dt.datetime.now(UTC) + dt.timedelta(days=400)).timestamp()
    (doc,) = parse_news_page(_page("The council met on Monday."), source="p", mtime=future)
    assert doc.date is not None
    assert dt.date.fromisoformat(doc.date) <= dt.datetime.now(UTC).date()
    assert "later than now: counted from now instead" in doc.metadata["date_basis"]


def test_a_later_date_in_the_text_does_not_move_the_date() -> None:
    # An article may name the future ("the vote in March 2031"): the file's time stands.
    body = "The vote is planned for March 2031, the council said."
    (doc,) = parse_news_page(_page(body), source="p", mtime=_stamp(2026, 1, 10))
    assert doc.date == "2026-01-10"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("on 3 March 2024 and 2023-05-01", ("2024-03-03", "3 March 2024")),
        ("April 24, 2022 and Feb. 2021", ("2022-04-24", "April 24, 2022")),
        ("until the end of November 2025", ("2025-11-30", "November 2025")),
        ("the February 2024 floods", ("2024-02-29", "February 2024")),
        ("In December 2025 it rained", ("2025-12-31", "December 2025")),
        ("they may 2025 go, in 2019", ("2025-12-31", "2025")),  # "may" is no month
        ("between 2019 and 2021", ("2021-12-31", "2021")),
        ("the 31 February 2024 report", ("2024-02-29", "February 2024")),  # no such day
        ("it cost $2024 and 2,015 people came", None),
        ("no dates here", None),
    ],
)
def test_latest_named_date(text: str, expected: tuple[str, str] | None) -> None:
    found = latest_named_date(text)
    assert (None if found is None else (found[0].isoformat(), found[1])) == expected


def test_years_count_only_when_no_day_or_month_is_named() -> None:
    found = latest_named_date("In 2030 the plan ends; it was agreed on 4 May 2024.")
    assert found is not None and found[0] == dt.date(2024, 5, 4)


@settings(max_examples=60, deadline=None)
@given(
    days=st.integers(min_value=-3000, max_value=3000),
    named=st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2035, 12, 31)),
)
def test_the_date_is_never_after_now_nor_far_after_what_the_text_names(
    days: int, named: dt.date
) -> None:
    mtime = (dt.datetime.now(UTC) + dt.timedelta(days=days)).timestamp()
    body = f"The harbour report of {named.day} {named.strftime('%B')} {named.year} was read."
    (doc,) = parse_news_page(_page(body), source="p", mtime=mtime)
    assert doc.date is not None and doc.date_approximate
    date = dt.date.fromisoformat(doc.date)
    assert date <= dt.datetime.now(UTC).date()
    assert (date - named).days <= BOUND_SLACK_DAYS


def test_info_counts_dated_and_approximate_documents(tmp_path: Path, embedder: object) -> None:
    page = tmp_path / "page.txt"
    page.write_text(SAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    os.utime(page, (_stamp(2026, 6, 1), _stamp(2026, 6, 1)))
    index = Index(model=embedder)  # type: ignore[arg-type]
    index.add(read_articles(page))
    assert index.info()["dates"] == {
        "dated": 2,
        "approximate": 1,
        "undated": 0,
        "first": "2022-04-24",
        "last": "2025-11-30",
    }
