"""What kind of answer a question asks for, and whether a sentence holds one: a cause for "why",
a number for "how many", a time for "when", a place for "where", a person for "who"."""

from __future__ import annotations

import re

_CAUSE = re.compile(
    r"\b(?:because|due to|as a result|caused|causing|owing to|blamed|after|amid|since|"
    r"so that|in order to|led to|following|from (?:the )?(?:cold|heat|exposure|injur))",
    re.IGNORECASE,
)
_NUMBER = re.compile(
    r"\b(?:\d[\d,.]*|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|dozens?|"
    r"hundreds?|thousands?|millions?|billions?)\b",
    re.IGNORECASE,
)
_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_TIME = re.compile(
    rf"\b(?:(?:1[5-9]|20)\d{{2}}|{_MONTHS}|Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|"
    r"Sunday|yesterday|today|tomorrow|tonight|last (?:week|month|year)|next (?:week|month|year)|"
    r"\d{1,2}(?:st|nd|rd|th)? century)\b"
)
# A place: "in Herat", "at the Kohsan border", "near Kabul" (capitalised after a preposition).
_PLACE = re.compile(r"\b(?:in|at|near|from|into|across|outside|inside)\s+(?:the\s+)?[A-Z][\w-]+")
# A person: two capitalised words in a row ("Shehbaz Sharif"), or a title and a name.
_PERSON = re.compile(
    r"\b(?:[A-Z][a-z'’-]+\s+[A-Z][a-z'’-]+|(?:Mr|Mrs|Ms|Dr|President|Minister|Prime Minister|"
    r"King|Queen|Pope|General|Judge)\.?\s+[A-Z][a-z'’-]+)"
)

_KINDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("cause", re.compile(r"^\s*(?:why|what (?:caused|led to|is the reason))\b", re.I)),
    ("number", re.compile(r"\bhow (?:many|much|long|old|far|big|large|often)\b", re.I)),
    ("time", re.compile(r"^\s*(?:when|what (?:year|date|day|month|time))\b", re.I)),
    ("place", re.compile(r"^\s*(?:where|in what (?:city|country|place))\b", re.I)),
    ("person", re.compile(r"^\s*(?:who|whom|whose)\b", re.I)),
)
_EVIDENCE = {
    "cause": _CAUSE,
    "number": _NUMBER,
    "time": _TIME,
    "place": _PLACE,
    "person": _PERSON,
}


def answer_kind(question: str) -> str | None:
    """ "cause", "number", "time", "place" or "person"; None for a question that names none."""
    return next((kind for kind, pattern in _KINDS if pattern.search(question)), None)


def kind_match(kind: str | None, question: str, sentence: str) -> float:
    """1 when the sentence holds the kind of answer asked for, beyond what the question itself
    says (a number, name, time or place it does not repeat); -1 when it holds none; 0 for a
    question of no kind."""
    if kind is None:
        return 0.0
    asked = question.casefold()
    found = any(
        kind == "cause" or m.group().casefold() not in asked
        for m in _EVIDENCE[kind].finditer(sentence)
    )
    return 1.0 if found else -1.0
