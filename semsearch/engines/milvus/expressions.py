"""Milvus filter expressions: which rows are visible, and semsearch's Filters as data."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from ...errors import InputError
from ...types import Filters

_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_GLOB = re.compile(r"[*?\[]")


def quote(value: str) -> str:
    """A string literal of Milvus's expression language."""
    if _CONTROL.search(value):
        raise InputError(None, f"{value!r}: control characters cannot be matched in Milvus")
    return '"' + "".join(_ESCAPES.get(c, c) for c in value) + '"'


def strings(values: Iterable[str]) -> str:
    return "[" + ", ".join(quote(v) for v in values) + "]"


def numbers(values: Iterable[int]) -> str:
    return "[" + ", ".join(str(int(v)) for v in values) + "]"


def visible(pending: Sequence[int]) -> str:
    """Rows whose write committed and that no committed write retired."""
    if not pending:
        return "retired == 0"
    p = numbers(sorted(pending))
    return f"txn not in {p} and (retired == 0 or retired in {p})"


def both(*parts: str) -> str:
    return " and ".join(f"({p})" for p in parts if p)


def like_pattern(glob: str) -> tuple[str, bool]:
    """The LIKE pattern matching what ``glob`` matches (SQLite GLOB: ``*``, ``?``, ``[...]``),
    and whether it matches exactly that; when not, it matches more and the caller narrows."""
    exact = not re.search(r"[%_\\\[]", glob)
    out = re.sub(r"\[!?\]?[^\]]*\]", "_", glob)  # a character class: any one character
    out = out.replace("\\", "_").replace("*", "%").replace("?", "_")
    return out, exact


def filter_expression(f: Filters, exact_sources: Sequence[str] | None = None) -> str | None:
    """The expression selecting passages that pass ``f`` (checked Filters), or None when none
    can: an empty ``doc_ids`` or ``sources``. ``exact_sources`` replaces glob patterns that
    LIKE cannot express exactly, resolved by the caller to the sources they match."""
    parts: list[str] = []
    if isinstance(f.date_from, str):
        parts.append(f"date >= {quote(f.date_from)}")
    if isinstance(f.date_to, str):
        parts.append(f'date != "" and date <= {quote(f.date_to)}')
    if f.sources is not None:
        terms = source_terms(f.sources, exact_sources)
        if not terms:
            return None
        parts.append(" or ".join(terms))
    if f.doc_ids is not None:
        if not f.doc_ids:
            return None
        parts.append(f"doc_id in {strings(f.doc_ids)}")
    return both(*parts)


def source_terms(sources: Sequence[str], exact_sources: Sequence[str] | None) -> list[str]:
    terms: list[str] = []
    plain = [s for s in sources if not _GLOB.search(s)]
    if plain:
        terms.append(f"source in {strings(plain)}")
    for glob in sources:
        if not _GLOB.search(glob):
            continue
        pattern, exact = like_pattern(glob)
        if exact:
            terms.append(f"source like {quote(pattern)}")
    if exact_sources:
        terms.append(f"source in {strings(exact_sources)}")
    return terms


def inexact_globs(sources: Sequence[str] | None) -> list[str]:
    """The glob patterns among ``sources`` that LIKE matches only approximately."""
    return [s for s in sources or () if _GLOB.search(s) and not like_pattern(s)[1]]
