"""The demo in a real browser: cited answers, search, uploads, abstention, and escaped text."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

Shot = Callable[[Page, str], None]
# Gradio's queue trips pandas deprecation warnings on every event: its business, not ours.
pytestmark = pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")

RUSSIA = "Local media reports discreet exchange of letters between Russian president, Pakistani PM"
AFGHAN = (
    "Three Afghan migrants die crossing into Iran as UN warns of new displacement toward Pakistan"
)
FERRY = "Ferry service to Holm Island resumes after winter storm"
FERRY_TEXT = f"""{FERRY}

TARVIK: The Northern Lights ferry carried 212 passengers from Tarvik to Holm Island on Monday,
the first crossing since a winter storm damaged the island's pier three weeks ago.
The harbour authority said repairs to the pier cost 1.4 million kroner and took 19 days.
Islanders had relied on a weekly supply flight while the ferry was suspended.
"""
# Every way an article could try to run code in the page, each setting a flag if it ran.
HOSTILE_TITLE = "Harbour <script>window.__xssTitle = 1</script> notice"
HOSTILE_TEXT = """The harbour master posted a notice about the quay.
<script>window.__xssScript = 1</script>
<img src="x" onerror="window.__xssImg = 1">
<a href="javascript:window.__xssLink = 1">the quay schedule</a>
The quay reopens to fishing boats at dawn on Friday, the harbour master wrote.
"""
FLAGS = ["__xssTitle", "__xssScript", "__xssImg", "__xssLink"]


def ask(page: Page, question: str) -> None:
    page.get_by_role("tab", name="Ask").click()
    page.fill("#question textarea", question)
    page.click("#ask-btn")
    expect(page.locator("#answer .answer[data-abstained]")).to_be_visible()


def check_cited(page: Page, title: str) -> None:
    """[1] is a link to its quote, highlighted inside the passage on a source card with the
    document's title, and the answer text contains the quote; clicking it brings the quote into
    view, marked as the target. Every [n] has its own highlighted quote, and a passage quoted
    several times is shown once, on one card."""
    expect(page.locator("#answer .answer")).to_have_attribute("data-abstained", "false")
    first = page.locator("#answer a.cite").first
    expect(first).to_have_text("[1]")
    mark = page.locator("#sources mark#src-1")
    card = page.locator("#sources .source", has=page.locator("mark#src-1"))
    expect(card.locator(".src-title")).to_have_text(title)
    quote = " ".join(mark.inner_text().split())
    answer_text = " ".join(page.locator("#answer p").first.inner_text().split())
    assert len(quote) > 20 and quote in answer_text
    first.click()
    assert page.evaluate("location.hash") == "#src-1"
    assert page.evaluate("document.getElementById('src-1').matches(':target')")
    expect(mark).to_be_in_viewport()

    links = page.locator("#answer a.cite")
    assert page.locator("#sources mark").count() == links.count()
    passages = page.locator("#sources .source blockquote.passage").all_inner_texts()
    assert len(passages) == len(set(passages)), "a passage is repeated across source cards"
    last = links.last
    n = last.get_attribute("data-n")
    last.click()
    assert page.evaluate(f"document.getElementById('src-{n}').matches(':target')")
    expect(page.locator(f"#sources mark#src-{n}")).to_be_in_viewport()


def add_articles(
    page: Page, *, files: Sequence[Path] = (), text: str = "", title: str = ""
) -> None:
    page.get_by_role("tab", name="Add articles").click()
    if files:
        page.set_input_files("#upload input[type=file]", [str(f) for f in files])
        for f in files:
            expect(page.locator("#upload").get_by_role("cell", name=f.name)).to_be_visible()
    page.fill("#paste-title textarea, #paste-title input", title)
    page.fill("#paste textarea", text)
    page.click("#add-btn")
    expect(page.locator("#add-status ul.report")).to_be_visible()


def test_home_page(page: Page, screenshot: Shot) -> None:
    expect(page.locator("#examples")).to_contain_text("What do the articles say about")
    screenshot(page, "01-home")
    page.get_by_role("tab", name="Index").click()
    expect(page.locator("#stats-table")).to_contain_text("Documents")
    screenshot(page, "02-index-statistics")


@pytest.mark.parametrize(
    ("question", "title", "word", "name"),
    [
        ("Did Putin and Shehbaz Sharif exchange letters?", RUSSIA, "letters", "03-answer-russia"),
        ("Why did the Afghan migrants die crossing into Iran?", AFGHAN, "cold", "04-answer-afghan"),
    ],
)
def test_answer_cites_each_sample_article(
    page: Page, screenshot: Shot, question: str, title: str, word: str, name: str
) -> None:
    ask(page, question)
    expect(page.locator("#answer")).to_contain_text(word)
    check_cited(page, title)
    screenshot(page, name)


def test_quotes_from_one_passage_share_its_card(page: Page, screenshot: Shot) -> None:
    ask(page, "Did Putin and Shehbaz Sharif exchange letters?")
    expect(page.locator("#answer a.cite")).to_have_count(2)
    card = page.locator("#sources .source")
    expect(card).to_have_count(1)  # both quotes come from the article's first passage
    expect(card.locator(".src-n")).to_have_text("[1] [2]")
    expect(card.locator("mark")).to_have_count(2)
    page.locator("#answer a.cite").nth(1).click()
    expect(page.locator("#sources mark#src-2")).to_be_in_viewport()
    screenshot(page, "03b-answer-clicked-citation")


def test_filters_restrict_answers_and_bad_dates_are_explained(page: Page, screenshot: Shot) -> None:
    page.get_by_text("Filters", exact=True).click()
    page.fill("#date-to input, #date-to textarea", "2000-01-01")
    ask(page, "Did Putin and Shehbaz Sharif exchange letters?")
    expect(page.locator("#answer .answer")).to_have_attribute("data-abstained", "true")
    expect(page.locator("#sources")).to_contain_text("No passages found")
    page.fill("#date-to input, #date-to textarea", "2022-12-31")
    ask(page, "Did Putin and Shehbaz Sharif exchange letters?")
    expect(page.locator("#answer .answer")).to_have_attribute("data-abstained", "false")
    page.fill("#date-to input, #date-to textarea", "end of April")
    page.click("#ask-btn")
    expect(page.get_by_text("'end of April' is not a date as YYYY-MM-DD")).to_be_visible()
    # The answer to the earlier question is gone: it must not pass for an answer to this one.
    expect(page.locator("#answer .refused")).to_contain_text("No answer")
    expect(page.locator("#sources .source")).to_have_count(0)
    page.wait_for_timeout(500)  # the message slides in
    screenshot(page, "10-filter-error")


def test_oversized_upload_is_refused_with_a_message(
    page: Page, screenshot: Shot, tmp_path: Path
) -> None:
    big = tmp_path / "huge.txt"
    big.write_bytes(b"word " * (11 * 1024 * 1024 // 5))
    page.get_by_role("tab", name="Add articles").click()
    page.set_input_files("#upload input[type=file]", [str(big)])
    expect(page.get_by_text(re.compile("exceed|too large|maximum", re.I)).first).to_be_visible()
    page.wait_for_timeout(500)
    screenshot(page, "11-upload-too-large")


def test_example_question_asks_it(page: Page) -> None:
    button = page.locator("#examples button").first
    shown = button.inner_text().strip()
    assert shown.endswith("?") and "..." not in shown  # shown whole, not cut short
    button.click()
    expect(page.locator("#question textarea")).to_have_value(shown)
    expect(page.locator("#answer .answer[data-abstained]")).to_be_visible()


def test_search_lists_passages_with_scores(page: Page, screenshot: Shot) -> None:
    page.get_by_role("tab", name="Search").click()
    page.fill("#search-query textarea", "letters between Putin and Sharif")
    page.click("#search-btn")
    first = page.locator("#search-results .hit").first
    expect(first.locator(".src-title")).to_have_text(RUSSIA)
    assert float(first.locator(".score").inner_text()) > 0
    assert page.locator("#search-results .hit").count() >= 2
    screenshot(page, "05-search")


def test_question_nobody_covers_abstains(page: Page, screenshot: Shot) -> None:
    ask(page, "Who won the 2022 football world cup?")
    answer = page.locator("#answer .answer")
    expect(answer).to_have_attribute("data-abstained", "true")
    expect(answer).to_contain_text("do not answer")
    expect(page.locator("#answer a.cite")).to_have_count(0)
    expect(page.locator("#sources")).to_contain_text("Closest passages")
    screenshot(page, "06-abstention")


def test_uploaded_article_is_answerable(page: Page, screenshot: Shot, tmp_path: Path) -> None:
    article = tmp_path / "ferry.txt"
    article.write_text(FERRY_TEXT, encoding="utf-8")
    add_articles(page, files=[article])
    expect(page.locator("#add-status")).to_contain_text("Articles: 1 added")
    expect(page.locator("#add-status")).to_contain_text(FERRY)
    # The form empties once the article is in, so a second click cannot add it again.
    expect(page.locator("#upload").get_by_role("cell", name="ferry.txt")).to_have_count(0)
    screenshot(page, "07-add-article")
    ask(page, "How many passengers did the Northern Lights ferry carry to Holm Island?")
    expect(page.locator("#answer")).to_contain_text("212 passengers")
    check_cited(page, FERRY)
    screenshot(page, "08-answer-uploaded")


def test_unsupported_upload_gets_a_clear_message(page: Page, tmp_path: Path) -> None:
    bad = tmp_path / "report.pdf"
    bad.write_bytes(b"%PDF-1.4 not an article")
    add_articles(page, files=[bad])
    expect(page.locator("#add-status")).to_contain_text("report.pdf: unsupported file type .pdf")


def test_markup_in_articles_shows_as_text_and_runs_nothing(page: Page, screenshot: Shot) -> None:
    add_articles(page, text=HOSTILE_TEXT, title=HOSTILE_TITLE)
    expect(page.locator("#add-status")).to_contain_text("Articles: 1 added")
    expect(page.locator("#add-status")).to_contain_text(HOSTILE_TITLE)
    expect(page.locator("#paste textarea")).to_have_value("")

    page.get_by_role("tab", name="Search").click()
    page.fill("#search-query textarea", "harbour master notice about the quay")
    page.click("#search-btn")
    hit = page.locator("#search-results .hit").first
    expect(hit.locator(".src-title")).to_have_text(HOSTILE_TITLE)
    expect(hit).to_contain_text("<script>window.__xssScript = 1</script>")
    expect(hit).to_contain_text('<img src="x" onerror="window.__xssImg = 1">')
    screenshot(page, "09-markup-shown-as-text")

    ask(page, "When does the quay reopen to fishing boats?")
    expect(page.locator("#sources")).to_contain_text(HOSTILE_TITLE)
    page.wait_for_timeout(500)  # give an onerror handler time to fire, if one were attached
    assert_nothing_ran(page)

    page.reload()  # statistics and example questions are rebuilt from the index on load
    expect(page.locator("#examples")).to_contain_text(HOSTILE_TITLE)  # as text
    page.get_by_role("tab", name="Index").click()
    expect(page.locator("#stats-table")).to_contain_text("pasted")
    assert_nothing_ran(page)


def assert_nothing_ran(page: Page) -> None:
    for flag in FLAGS:
        assert page.evaluate(f"typeof window.{flag}") == "undefined", flag
    assert page.locator("#search-results img, #sources img, #answer img").count() == 0
