"""End to end on the founding sample page: clean articles in, exact passages, right hits out."""

from __future__ import annotations

from pathlib import Path

import pytest

from semsearch import Embedder, Index, read_articles

PUTIN = "Local media reports discreet exchange of letters between Russian president, Pakistani PM"
AFGHAN = (
    "Three Afghan migrants die crossing into Iran as UN warns of new displacement toward Pakistan"
)
# Lines of the scraped page that are furniture, not article text.
FURNITURE = ["Short Url", "Follow", "Updated", "AFP photos/File", "combination of photos"]


@pytest.fixture
def index(sample_file: Path, embedder: Embedder) -> Index:
    idx = Index(model=embedder)
    idx.add(read_articles(sample_file.parent))
    return idx


def test_two_clean_articles(index: Index) -> None:
    docs = {d.title: d for d in index.documents()}
    assert set(docs) == {PUTIN, AFGHAN}
    putin, afghan = docs[PUTIN], docs[AFGHAN]
    assert (putin.date, putin.date_approximate, putin.dateline) == (
        "2022-04-24",
        False,
        "ISLAMABAD",
    )
    # "Updated 9 sec ago", resolved against the file's modification time (2025-12-06 12:00 UTC).
    assert (afghan.date, afghan.date_approximate, afghan.dateline) == ("2025-12-06", True, "KABUL")
    assert len(putin.highlights) == len(afghan.highlights) == 2
    for doc in docs.values():
        passages = index.passages(doc.id)
        assert passages
        for p in passages:
            assert doc.text[p.start : p.end] == p.text
            for furniture in FURNITURE:
                assert furniture not in p.text
            assert doc.title not in p.text, "the repeated headline is furniture"


@pytest.mark.parametrize(
    ("question", "title"),
    [
        ("letters exchanged between Putin and Shehbaz Sharif", PUTIN),
        ("Why did Imran Khan blame his downfall on Moscow?", PUTIN),
        ("How did Afghans die trying to reach Iran?", AFGHAN),
        ("How many Afghans were forced to return from Iran?", AFGHAN),
    ],
)
def test_questions_find_their_article_first(index: Index, question: str, title: str) -> None:
    assert index.search(question, k=3)[0].title == title
