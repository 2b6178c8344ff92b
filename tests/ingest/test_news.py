"""Scraped news pages: article boundaries, furniture removal, highlights, datelines and dates."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from semsearch.ingest.dates import normalize_date
from semsearch.ingest.news import parse_news_page

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "news" / "000_94129f04b1971983.txt"
TITLES = [
    "Local media reports discreet exchange of letters between Russian president, Pakistani PM",
    "Three Afghan migrants die crossing into Iran as UN warns of new displacement toward Pakistan",
]
CAPTION = (
    "The combination of photos show Russian President Vladimir Putin, left, and Pakistani Prime "
    "Minister Shehbaz Sharif. (AFP photos/File)"
)
MTIME = dt.datetime(2025, 12, 20, 12, 0, tzinfo=dt.timezone.utc).timestamp()


@pytest.fixture(scope="module")
def sample() -> str:
    return SAMPLE.read_text(encoding="utf-8")


def test_sample_gives_two_articles(sample: str) -> None:
    docs = parse_news_page(sample, source="page.txt", mtime=MTIME)
    assert [d.title for d in docs] == TITLES
    assert [d.dateline for d in docs] == ["ISLAMABAD", "KABUL"]
    assert [len(d.highlights) for d in docs] == [2, 2]
    assert docs[0].highlights[0].startswith("Foreign ministry sources say")
    assert all(d.source == "page.txt" for d in docs)
    assert docs[0].text.startswith("ISLAMABAD: Russian President Vladimir Putin")
    assert docs[1].text.startswith("KABUL: Three Afghans died from exposure")
    assert docs[0].metadata["caption"] == CAPTION
    assert docs[0].id != docs[1].id


def test_dates_absolute_and_relative(sample: str) -> None:
    first, second = parse_news_page(sample, source="page.txt", mtime=MTIME)
    assert (first.date, first.date_approximate) == ("2022-04-24", False)
    assert first.metadata["updated_raw"] == "Updated 24 April 2022"
    assert (second.date, second.date_approximate) == ("2025-12-20", True)
    assert second.metadata["updated_raw"] == "Updated 9 sec ago"


def test_relative_date_without_mtime_is_unknown(sample: str) -> None:
    first, second = parse_news_page(sample, source="page.txt", mtime=None)
    assert first.date == "2022-04-24"
    assert (second.date, second.date_approximate) == (None, False)


def test_no_furniture_in_bodies(sample: str) -> None:
    for doc in parse_news_page(sample, source="page.txt", mtime=MTIME):
        paragraphs = doc.text.split("\n\n")
        for furniture in ("Short Url", "Follow", "Updated 24 April 2022", "Updated 9 sec ago"):
            assert furniture not in paragraphs
        assert not any(p.startswith(("Updated", "Short Url", "Follow")) for p in paragraphs)
        assert CAPTION not in doc.text
        assert not any(title in doc.text for title in TITLES)
        assert "\u2022" not in doc.text
        assert all(p and p == p.rstrip() for p in paragraphs)


def test_body_paragraphs_are_exact(sample: str) -> None:
    first, second = parse_news_page(sample, source="page.txt", mtime=MTIME)
    # Every body line of the page survives byte for byte, one paragraph each.
    assert len(first.text.split("\n\n")) == 7
    assert len(second.text.split("\n\n")) == 11
    for paragraph in first.text.split("\n\n") + second.text.split("\n\n"):
        assert paragraph in sample
    assert second.text.endswith("the UN World Food Program said Tuesday.")


def test_ids_are_stable(sample: str) -> None:
    again = parse_news_page(sample, source="page.txt", mtime=MTIME)
    assert [d.id for d in parse_news_page(sample, source="page.txt", mtime=MTIME)] == [
        d.id for d in again
    ]


def test_crlf_page(sample: str) -> None:
    docs = parse_news_page(sample.replace("\n", "\r\n"), source="p", mtime=MTIME)
    assert [d.title for d in docs] == TITLES
    assert "\r" not in docs[0].text


def test_date_below_the_headline() -> None:
    page = "Headline here\nShort Url\nFollow\nHeadline here\nUpdated 2 May 2023\n\nGAZA: Text."
    (doc,) = parse_news_page(page, source="p", mtime=None)
    assert (doc.date, doc.text) == ("2023-05-02", "GAZA: Text.")


def test_not_a_news_page() -> None:
    assert parse_news_page("", source="x", mtime=None) == []
    plain = "A title\n\nSome text about things.\n\nA title\n\nMore text."
    assert parse_news_page(plain, source="x", mtime=None) == []


PAGE = """Markets rally on rate hopes

Published April 24, 2022 12:30
Share
Follow

Markets rally on rate hopes

  \u2022 Stocks rose for a third day

{dateline} Stocks rose on Monday as investors bet on slower rate rises.

Advertisement

Read more

Markets rally on rate hopes

Analysts said the rally could fade.\u0020\u0020\t
"""


@pytest.mark.parametrize(
    ("dateline", "place"),
    [
        ("NEW YORK \u2014", "NEW YORK"),
        ("WASHINGTON (Reuters) -", "WASHINGTON"),
        ("LONDON, April 24 (Reuters) -", "LONDON"),
        ("RIYADH:", "RIYADH"),
        ("Stocks:", None),
    ],
)
def test_datelines_and_body_furniture(dateline: str, place: str | None) -> None:
    (doc,) = parse_news_page(PAGE.format(dateline=dateline), source="p", mtime=None)
    assert doc.dateline == place
    assert doc.date == "2022-04-24"
    assert doc.highlights == ("Stocks rose for a third day",)
    assert doc.text == (
        f"{dateline} Stocks rose on Monday as investors bet on slower rate rises.\n\n"
        "Analysts said the rally could fade."
    )


@pytest.mark.parametrize(
    ("phrase", "seconds"),
    [("Updated 3 hours ago", 3 * 3600), ("Updated 2 days ago", 2 * 86400), ("1 week ago", 604800)],
)
def test_relative_phrases(phrase: str, seconds: int) -> None:
    page = f"Headline here\n{phrase}\nFollow\nHeadline here\n\nCAIRO: Body text."
    (doc,) = parse_news_page(page, source="p", mtime=MTIME)
    expected = dt.datetime.fromtimestamp(MTIME - seconds, tz=dt.timezone.utc).date()
    assert doc.date == expected.isoformat()
    assert doc.date_approximate
    assert doc.metadata["updated_raw"] == phrase


@pytest.mark.parametrize(
    ("phrase", "iso"),
    [
        ("24 April 2022", "2022-04-24"),
        ("April 24, 2022 12:30", "2022-04-24"),
        ("Sun, Apr 24th 2022 at 9:05 pm GMT", "2022-04-24"),
        ("Sept. 3, 2021", "2021-09-03"),
        ("2022-04-24T10:00:00Z", "2022-04-24"),
        ("2022/06/12", "2022-06-12"),
        ("2022-06-12 10:00:00 UTC", "2022-06-12"),
        ("2022-06-12T10:00:00.123+05:30", "2022-06-12"),
        ("2022-06-12 was the day", None),
        ("Feb 30, 2022", None),
        ("24 April 2022 was a Sunday", None),
        ("yesterday", None),
    ],
)
def test_normalize_date(phrase: str, iso: str | None) -> None:
    assert normalize_date(phrase) == iso
