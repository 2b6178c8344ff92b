"""Text as every engine indexes it: BM25 terms (bm25s's tokenizer) of a title and passage."""

from __future__ import annotations

import re

# bm25s's defaults (Lucene BM25, k1 1.5, b 0.75) with its splitter, English stopwords and the
# Snowball English stemmer: the setup whose SciFact score (0.687 nDCG@10) is published.
K1 = 1.5
B = 0.75
# bm25s's r"(?u)\b\w\w+\b", without the boundary checks: a greedy run of two or more word
# characters can only start and end at a word boundary, so the matches are the same, found faster.
WORD = re.compile(r"\w\w+")
PROXIMITY_WINDOW = 10
"""Terms (after stopwords) a window spans for proximity, in every engine: about half a sentence."""


class Tokenizer:
    """Text -> stemmed terms, exactly as ``bm25s.tokenize(stopwords="en", stemmer=...)``."""

    def __init__(self) -> None:
        import Stemmer
        from bm25s.stopwords import STOPWORDS_EN

        self.stopwords = frozenset(STOPWORDS_EN)
        self.stemmer = Stemmer.Stemmer("english")
        # Stemming is the slow part; news repeats words, so each distinct word is stemmed once.
        self._stems: dict[str, str] = {}

    def terms(self, text: str) -> list[str]:
        words = [w for w in WORD.findall(text.lower()) if w not in self.stopwords]
        new = [w for w in dict.fromkeys(words) if w not in self._stems]
        if new:
            self._stems.update(zip(new, self.stemmer.stemWords(new), strict=True))
        return [self._stems[w] for w in words]


def indexed_text(title: str, text: str) -> str:
    """What BM25 indexes for a passage: its document's title (matches there count) and its text."""
    return f"{title}\n\n{text}" if title else text
