"""Odd inputs never hurt the user: pipes, sockets, impossible dates, reversed date ranges and
pages nested deeper than libxml2 parses by default each give one clear message, never a hang
or a traceback."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from semsearch import Embedder, Filters, Index
from semsearch.errors import InputError, SemsearchWarning, SkippedInputWarning
from semsearch.ingest.files import _read_file, list_inputs, read_articles
from semsearch.ingest.paths import open_input

GOOD = "Harbour wall\n\nThe council approved money for a new harbour wall on Tuesday.\n"
TIMEOUT = 20.0
PARAGRAPHS = [
    "The city council approved a new budget on Tuesday after months of debate, setting aside "
    "money for schools, roads and a new harbour wall along the eastern shore.",
    "Critics said the plan relied on optimistic forecasts of tax revenue and warned that the "
    "council would have to revisit it before the end of the year.",
    "The mayor said the harbour wall alone would protect more than two thousand homes from the "
    "winter storms that flooded the old town twice in the past decade.",
]
BODY = "".join(f"<p>{p}</p>" for p in PARAGRAPHS)


def bounded(call: Callable[[], Any]) -> tuple[Any, list[warnings.WarningMessage]]:
    """``call()`` in a thread, failing the test if it has not returned within TIMEOUT seconds
    (a read that blocks on a FIFO would otherwise hang the whole run); its result (or the
    exception it raised) and every warning it gave."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                outcome["value"] = call()
            except BaseException as exc:
                outcome["value"] = exc
            outcome["warnings"] = list(caught)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(TIMEOUT)
    assert not thread.is_alive(), f"still blocked after {TIMEOUT} s"
    return outcome["value"], outcome["warnings"]


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a short path: a Unix socket's path must fit in 108 bytes, which
    pytest's tmp_path does not promise."""
    path = Path(tempfile.mkdtemp(prefix="ss-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def make_fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def make_socket(path: Path) -> socket.socket:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    return server


@pytest.fixture
def odd_folder(short_dir: Path) -> Iterator[tuple[Path, Path, Path, Path]]:
    """A folder holding one good article, a FIFO and a listening Unix socket (both with names
    a walk reads) and a FIFO in a subfolder."""
    root = short_dir / "in"
    (root / "sub").mkdir(parents=True)
    good = root / "good.txt"
    good.write_text(GOOD, encoding="utf-8")
    fifo = make_fifo(root / "pipe.txt")
    nested = make_fifo(root / "sub" / "feed.jsonl")
    server = make_socket(root / "sock.md")
    try:
        yield root, fifo, nested, root / "sock.md"
    finally:
        server.close()


def ours(record: Any) -> list[str]:
    """The messages of semsearch's own warnings: another test's garbage (an unclosed event loop
    collected now, a ResourceWarning) may be recorded too."""
    return [str(w.message) for w in record if issubclass(w.category, SemsearchWarning)]


def skipped_messages(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, SkippedInputWarning)]


# -- FIFOs, sockets and devices -------------------------------------------------------------


@pytest.mark.parametrize("strict", [False, True])
def test_walk_skips_fifos_and_sockets_with_one_warning_each_and_never_blocks(
    odd_folder: tuple[Path, Path, Path, Path], strict: bool
) -> None:
    root, fifo, nested, sock = odd_folder
    docs, caught = bounded(lambda: list(read_articles(root, strict=strict)))
    assert not isinstance(docs, BaseException), docs
    assert [(d.title, d.source) for d in docs] == [("Harbour wall", str(root / "good.txt"))]
    assert sorted(skipped_messages(caught)) == sorted(
        [
            f"{fifo}: is a FIFO, not a regular file",
            f"{sock}: is a socket, not a regular file",
            f"{nested}: is a FIFO, not a regular file",
        ]
    )
    assert len(ours(caught)) == 3, ours(caught)


def test_ray_listing_uses_the_same_rule(odd_folder: tuple[Path, Path, Path, Path]) -> None:
    root, fifo, nested, sock = odd_folder
    listed, caught = bounded(lambda: list_inputs([root]))
    assert listed == [(str(root / "good.txt"), False)]
    assert sorted(skipped_messages(caught)) == sorted(
        [
            f"{fifo}: is a FIFO, not a regular file",
            f"{sock}: is a socket, not a regular file",
            f"{nested}: is a FIFO, not a regular file",
        ]
    )


def test_odd_files_a_walk_would_not_read_are_not_reported(short_dir: Path) -> None:
    (short_dir / "a.txt").write_text(GOOD, encoding="utf-8")
    make_fifo(short_dir / "pipe")  # no supported suffix: never a candidate, like picture.png
    make_fifo(short_dir / "skip.txt")
    docs, caught = bounded(lambda: list(read_articles(short_dir, exclude=["skip.*"])))
    assert [d.title for d in docs] == ["Harbour wall"]
    assert caught == []


def test_a_fifo_named_explicitly_is_one_clear_error(short_dir: Path) -> None:
    fifo = make_fifo(short_dir / "pipe.txt")
    error, _ = bounded(lambda: list(read_articles(fifo)))
    assert isinstance(error, InputError)
    assert str(error) == f"{fifo}: is a FIFO, not a regular file or directory"
    server = make_socket(short_dir / "s.jsonl")
    try:
        error, _ = bounded(lambda: list(read_articles(short_dir / "s.jsonl")))
    finally:
        server.close()
    assert str(error) == f"{short_dir / 's.jsonl'}: is a socket, not a regular file or directory"


@pytest.mark.parametrize("name", ["swapped.txt", "swapped.html", "swapped.jsonl"])
def test_a_file_swapped_for_a_fifo_after_listing_is_refused_not_waited_on(
    short_dir: Path, name: str
) -> None:
    path = short_dir / name
    path.write_text(GOOD, encoding="utf-8")
    (listed,) = list_inputs([short_dir])
    path.unlink()
    make_fifo(path)  # between the walk listing it and the read opening it
    error, _ = bounded(lambda: list(_read_file(listed[0], max_file_bytes=1 << 20)))
    assert isinstance(error, InputError)
    assert str(error) == f"{path}: is a FIFO, not a regular file"
    error, _ = bounded(lambda: open_input(str(path)))
    assert isinstance(error, InputError) and "is a FIFO" in str(error)


def test_a_character_device_is_refused(tmp_path: Path) -> None:
    if not os.path.exists("/dev/null"):
        pytest.skip("no /dev/null")
    link = tmp_path / "null.txt"
    link.symlink_to("/dev/null")
    docs, caught = bounded(lambda: list(read_articles(tmp_path)))
    assert docs == []
    assert skipped_messages(caught) == [f"{link}: is a character device, not a regular file"]


# -- dates that are no day ------------------------------------------------------------------


def test_jsonl_date_that_is_no_day_warns_naming_file_line_and_value(tmp_path: Path) -> None:
    path = tmp_path / "dump.jsonl"
    rows = [
        {"id": "a", "text": "A fine article.", "date": "2024-02-10"},
        {"id": "b", "text": "An article from nowhen.", "date": "9999-99-99"},
        {"id": "c", "text": "Another one.", "published": "2024-13-45"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.warns(SemsearchWarning) as record:
        a, b, c = read_articles(path)
    assert ours(record) == [
        f"{path}:2: unreadable date '9999-99-99' in the 'date' field; "
        "the document is kept without a date",
        f"{path}:3: unreadable date '2024-13-45' in the 'published' field; "
        "the document is kept without a date",
    ]
    assert (a.date, b.date, c.date) == ("2024-02-10", None, None)
    assert (b.metadata["date_raw"], c.metadata["date_raw"]) == ("9999-99-99", "2024-13-45")
    assert "date_raw" not in a.metadata


def test_jsonl_date_warning_is_given_once_in_a_directory_walk(tmp_path: Path) -> None:
    (tmp_path / "d.jsonl").write_text('{"text": "Body.", "date": "2024-13-45"}\n')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (doc,) = read_articles(tmp_path)
    assert ours(caught) == [
        f"{tmp_path / 'd.jsonl'}:1: unreadable date '2024-13-45' in the 'date' field; "
        "the document is kept without a date"
    ]
    assert doc.date is None and doc.metadata["date_raw"] == "2024-13-45"


@pytest.mark.parametrize(
    ("line", "value"),
    [("Updated 2024-13-45", "2024-13-45"), ("9999-99-99", "9999-99-99")],
)
def test_news_header_date_that_is_no_day_warns(tmp_path: Path, line: str, value: str) -> None:
    page = tmp_path / "page.txt"
    page.write_text(
        f"Harbour wall approved\n{line}\nFollow\nHarbour wall approved\n\n"
        "CAIRO: The council approved money for a new harbour wall.\n",
        encoding="utf-8",
    )
    with pytest.warns(SemsearchWarning) as record:
        (doc,) = read_articles(page)
    (message,) = ours(record)
    assert message.startswith(f"{page}: unreadable date {value!r} in the line {line!r}")
    assert message.endswith("the document is kept without a date")
    assert doc.title == "Harbour wall approved"
    assert doc.text == "CAIRO: The council approved money for a new harbour wall."
    assert (doc.date, doc.metadata["date_raw"]) == (None, value)


def test_news_header_without_a_date_in_it_does_not_warn(tmp_path: Path) -> None:
    page = tmp_path / "page.txt"
    page.write_text(
        "Harbour wall approved\nUpdated by our staff\nFollow\nHarbour wall approved\n\n"
        "CAIRO: The council approved money for a new harbour wall.\n",
        encoding="utf-8",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (doc,) = read_articles(page)
    assert doc.date is None and "date_raw" not in doc.metadata


def page_with_meta(meta: str, body: str = BODY) -> str:
    return (
        f"<!doctype html><html><head><title>Budget approved</title>{meta}</head>"
        f"<body><article><h1>Budget approved</h1>{body}</article></body></html>"
    )


def test_html_meta_date_that_is_no_day_warns_and_leaves_no_date(tmp_path: Path) -> None:
    path = tmp_path / "budget.html"
    meta = '<meta property="article:published_time" content="2024-13-45T10:00:00Z">'
    path.write_text(page_with_meta(meta), encoding="utf-8")
    with pytest.warns(SemsearchWarning) as record:
        (doc,) = read_articles(path)
    assert ours(record) == [
        f"{path}: unreadable date '2024-13-45T10:00:00Z' in "
        '<meta property="article:published_time">; the document is kept without a date'
    ]
    # trafilatura alone would have dated it 2024-01-01, a day the page never gave.
    assert (doc.date, doc.metadata["date_raw"]) == (None, "2024-13-45T10:00:00Z")
    assert doc.text.startswith(PARAGRAPHS[0])


def test_html_with_a_good_meta_date_beside_a_bad_one_keeps_its_date(tmp_path: Path) -> None:
    path = tmp_path / "budget.html"
    meta = (
        '<meta property="article:published_time" content="2024-02-10T10:00:00Z">'
        '<meta name="dcterms.modified" content="9999-99-99">'
    )
    path.write_text(page_with_meta(meta), encoding="utf-8")
    with pytest.warns(SemsearchWarning, match=r"'9999-99-99'.*taken from elsewhere"):
        (doc,) = read_articles(path)
    assert doc.date == "2024-02-10"


@pytest.mark.parametrize(
    "meta",
    [
        '<meta property="article:published_time" content="2022-04-24T10:00:00Z">',
        '<meta name="date" content="20220424">',  # not a form semsearch reads, but no bad day
        "",
    ],
)
def test_html_with_readable_or_no_meta_date_does_not_warn(tmp_path: Path, meta: str) -> None:
    path = tmp_path / "budget.html"
    path.write_text(page_with_meta(meta), encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (doc,) = read_articles(path)
    assert "date_raw" not in doc.metadata
    if "2022-04-24" in meta:
        assert doc.date == "2022-04-24"


# -- reversed date ranges -------------------------------------------------------------------


def test_reversed_date_range_is_an_input_error_naming_both_dates() -> None:
    with pytest.raises(InputError) as caught:
        Filters(date_from="2024-03-01", date_to="2024-02-01").checked()
    assert str(caught.value) == (
        "date_from 2024-03-01 is after date_to 2024-02-01: no date is in that range"
    )
    same = Filters(date_from="2024-02-01", date_to="2024-02-01").checked()
    assert (same.date_from, same.date_to) == ("2024-02-01", "2024-02-01")
    with pytest.raises(InputError, match=r"date_from 2024-03-01 is after date_to 2024-02-01"):
        Filters(date_from=dt.date(2024, 3, 1), date_to="2024-02-01T00:00:00").checked()


def test_search_with_a_reversed_date_range_fails(embedder: Embedder) -> None:
    index = Index(model=embedder)
    with pytest.raises(InputError, match="date_from 2025-01-01 is after date_to 2024-01-01"):
        index.search("harbour", filters=Filters(date_from="2025-01-01", date_to="2024-01-01"))


# -- pages nested deeper than libxml2's default limit ---------------------------------------


def nested(depth: int, tags: tuple[str, ...] = ("div",)) -> str:
    opening = "".join(f"<{tags[i % len(tags)]}>" for i in range(depth))
    closing = "".join(f"</{tags[i % len(tags)]}>" for i in reversed(range(depth)))
    return (
        "<!doctype html><html><head><title>Budget approved</title></head><body>"
        f"{opening}<h1>Budget approved</h1>{BODY}{closing}</body></html>"
    )


@pytest.mark.parametrize(
    "page",
    [
        nested(300),
        nested(1000),
        nested(800, ("section", "article")),
        nested(3000),  # past even libxml2's raised limit of 2048
    ],
    ids=["div-300", "div-1000", "section-article-800", "div-3000"],
)
def test_deeply_nested_page_is_read_with_exact_offsets(
    tmp_path: Path, embedder: Embedder, page: str
) -> None:
    path = tmp_path / "deep.html"
    path.write_text(page, encoding="utf-8")
    (doc,) = read_articles(path)
    assert doc.title == "Budget approved"
    for paragraph in PARAGRAPHS:
        assert paragraph in doc.text
    assert "Budget approved" not in doc.text, "the headline is not body"
    index = Index(model=embedder)
    index.add([doc])
    passages = index.passages(doc.id)
    assert passages
    for p in passages:
        assert doc.text[p.start : p.end] == p.text
    assert index.search("harbour wall storms", k=1)[0].doc_id == doc.id


def test_deeply_nested_page_without_text_is_still_refused(tmp_path: Path) -> None:
    path = tmp_path / "deep.html"
    path.write_text(
        "<html><body>" + "<div>" * 400 + "<script>x()</script>" + "</div>" * 400 + "</body></html>"
    )
    with pytest.raises(InputError) as caught:
        list(read_articles(path))
    assert str(caught.value) == f"{path}: no main text found in the HTML"
