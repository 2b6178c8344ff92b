"""Reading files into documents: formats, encodings, directories and every refusal."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import re
import shutil
import tracemalloc
import warnings
from pathlib import Path

import pytest

from semsearch.errors import InputError, SemsearchWarning, SkippedInputWarning
from semsearch.ingest.files import DEFAULT_MAX_FILE_BYTES, read_articles, read_text

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "news" / "000_94129f04b1971983.txt"
TITLES = [
    "Local media reports discreet exchange of letters between Russian president, Pakistani PM",
    "Three Afghan migrants die crossing into Iran as UN warns of new displacement toward Pakistan",
]
MTIME = dt.datetime(2025, 12, 20, 12, 0, tzinfo=dt.timezone.utc).timestamp()

ARTICLE_HTML = """<!doctype html><html><head><title>Quake hits coast | Daily News</title>
<meta charset="utf-8"><link rel="canonical" href="https://example.com/quake">
<meta name="author" content="Jane Roe"><meta property="og:site_name" content="Daily News">
<meta property="article:published_time" content="2022-04-24T10:00:00Z">
<style>body { color: red } .x::after { content: "STYLE_SECRET" }</style>
<script>var SCRIPT_SECRET = "do not index"; function f() { return "SCRIPT_FN"; }</script>
</head><body><nav>Home | World | Sport</nav><script>document.write("SCRIPT_WRITE")</script>
<article><h1>Quake hits coast</h1><style>p.q { font-family: "STYLE_INLINE" }</style>
<p>A strong earthquake struck the northern coast on Sunday, damaging buildings and cutting
power to thousands of homes, officials said.</p>
<script type="application/ld+json">{"@type": "NewsArticle", "headline": "LDJSON_SECRET"}</script>
<p>Rescue teams were searching collapsed houses in three villages while aftershocks rattled the
region through the night.</p><noscript>NOSCRIPT_SECRET</noscript>
<p>The national weather service said the magnitude 6.1 quake was centred 20 km offshore.</p>
</article><script>trackEverything("SCRIPT_TRACK")</script></body></html>"""


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def one(path: Path, *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> str:
    """The message of the InputError that reading ``path`` raises: one line, naming the file."""
    with pytest.raises(InputError) as caught:
        list(read_articles(path, max_file_bytes=max_file_bytes))
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message
    return message


@pytest.fixture
def sample_copy(tmp_path: Path) -> Path:
    target = tmp_path / "news" / SAMPLE.name
    target.parent.mkdir()
    shutil.copy(SAMPLE, target)
    os.utime(target, (MTIME, MTIME))
    return target


def test_sample_page(sample_copy: Path) -> None:
    first, second = read_articles(sample_copy)
    assert [first.title, second.title] == TITLES
    assert (first.date, first.date_approximate) == ("2022-04-24", False)
    assert (second.date, second.date_approximate) == ("2025-12-20", True)
    assert (first.dateline, second.dateline) == ("ISLAMABAD", "KABUL")
    assert len(first.highlights) == len(second.highlights) == 2
    for doc in (first, second):
        assert doc.source == str(sample_copy)
        assert doc.metadata["path"] == str(sample_copy)
        assert doc.text.startswith(f"{doc.dateline}: ")
        for furniture in ("Short Url", "Follow", "Updated", "(AFP photos/File)", doc.title):
            assert furniture not in doc.text


def test_directory_gives_the_same_articles(sample_copy: Path) -> None:
    from_dir = list(read_articles(sample_copy.parent))
    assert from_dir == list(read_articles(str(sample_copy)))
    assert [d.title for d in from_dir] == TITLES


def test_plain_text_and_markdown(tmp_path: Path) -> None:
    md = write(tmp_path / "note.md", "\ufeff# The heading\r\n\r\nFirst para.\r\n\r\nSecond.\r\n")
    (doc,) = read_articles(md)
    assert (doc.title, doc.text) == ("The heading", "First para.\n\nSecond.")
    plain = write(tmp_path / "report.txt", "  It rained all day.\nThe end.  \n\n")
    (doc,) = read_articles(plain)
    assert (doc.title, doc.text) == ("report", "It rained all day.\nThe end.")
    setext = write(tmp_path / "s.markdown", "Big news\n========\nBody here.\n")
    assert [(d.title, d.text) for d in read_articles(setext)] == [("Big news", "Body here.")]


def test_empty_files(tmp_path: Path) -> None:
    assert one(write(tmp_path / "a.txt", "")).endswith("empty file")
    assert one(write(tmp_path / "b.md", " \n\t\r\n")).endswith("empty file")
    assert one(write(tmp_path / "c.jsonl", "\n\n")).endswith("empty file")


def test_binary_files(tmp_path: Path) -> None:
    assert "binary file, not text" in one(write(tmp_path / "nul.txt", b"abc\x00def" * 50))
    noise = bytes((i * 7919 + 13) % 255 + 1 for i in range(5000))  # no NUL, not text
    assert "binary file, not text" in one(write(tmp_path / "noise.html", noise))


def test_too_large(tmp_path: Path) -> None:
    big = write(tmp_path / "big.txt", "word " * 100)
    message = one(big, max_file_bytes=100)
    assert "500" in message and "100" in message
    assert list(read_articles(big, max_file_bytes=500))
    jsonl = write(tmp_path / "big.jsonl", '{"text": "ok"}\n{"text": "' + "x" * 200 + '"}\n')
    assert one(jsonl, max_file_bytes=100).startswith(f"{jsonl}:2: line too long")


def test_cp1252_text_warns_and_decodes(tmp_path: Path) -> None:
    text = (
        "Caf\u00e9 owners said the rules were na\u00efve. \u201cWe were not consulted,\u201d "
        "one said \u2014 the plan costs \u20ac2,000 a year.\n"
    )
    path = write(tmp_path / "legacy.txt", text.encode("cp1252"))
    with pytest.warns(SemsearchWarning, match="not UTF-8; read as cp1252") as record:
        (doc,) = read_articles(path)
    assert str(path) in str(record[0].message)
    assert doc.text == text.strip()


def test_html_drops_scripts_and_styles(tmp_path: Path) -> None:
    (doc,) = read_articles(write(tmp_path / "quake.html", ARTICLE_HTML))
    assert doc.title == "Quake hits coast"
    assert doc.text.startswith("A strong earthquake struck the northern coast")
    assert "centred 20 km offshore" in doc.text
    for secret in ("SECRET", "SCRIPT_", "STYLE_", "function", "{", "trackEverything"):
        assert secret not in doc.text
    assert doc.url == "https://example.com/quake"
    assert doc.date == "2022-04-24"
    assert doc.metadata["author"] == "Jane Roe"
    assert doc.metadata["sitename"] == "Daily News"
    assert doc.metadata["path"] == doc.source == str(tmp_path / "quake.html")


def test_html_without_main_content(tmp_path: Path) -> None:
    html = "<html><head><style>a{}</style></head><body><script>x()</script></body></html>"
    assert "no main text" in one(write(tmp_path / "empty.htm", html))


def test_jsonl_fields(tmp_path: Path) -> None:
    rows = [
        {"_id": 4983, "title": "T1", "text": "Body one.", "metadata": {"k": 1}},
        {"id": "b", "body": "Body two.", "url": "https://x.test/2", "published": "2022/06/12"},
        {"content": "Body three.", "date": "sometime", "lang": "en"},
    ]
    lines = [json.dumps(rows[0]), "", "   ", json.dumps(rows[1]), json.dumps(rows[2])]
    path = write(tmp_path / "docs.jsonl", "\n".join(lines) + "\n")
    with pytest.warns(SemsearchWarning, match=re.escape(f"{path}:5: unreadable date 'sometime'")):
        a, b, c = read_articles(path)
    assert (a.id, a.title, a.text, a.metadata["k"]) == ("4983", "T1", "Body one.", 1)
    assert (b.id, b.url, b.date, b.text) == ("b", "https://x.test/2", "2022-06-12", "Body two.")
    assert c.date is None and c.metadata["date_raw"] == "sometime" and c.metadata["lang"] == "en"
    assert [d.metadata["line"] for d in (a, b, c)] == [1, 4, 5]
    assert all(d.source == d.metadata["path"] == str(path) for d in (a, b, c))
    with pytest.warns(SemsearchWarning):
        assert [d.id for d in read_articles(path)] == [a.id, b.id, c.id]  # stable without an id


def test_jsonl_broken_lines(tmp_path: Path) -> None:
    good = json.dumps({"text": "fine"})
    broken = write(tmp_path / "broken.jsonl", f"{good}\n\n{{not json\n{good}\n")
    assert one(broken).startswith(f"{broken}:3: invalid JSON")
    untexted = write(tmp_path / "untexted.jsonl", f'{good}\n{{"title": "no body"}}\n')
    assert one(untexted).startswith(f"{untexted}:2: no text")
    listed = write(tmp_path / "listed.jsonl", "[1, 2]\n")
    assert one(listed).startswith(f"{listed}:1: expected a JSON object")


def test_jsonl_is_streamed(tmp_path: Path) -> None:
    path = tmp_path / "many.jsonl"
    filler = "lorem ipsum dolor sit amet " * 20
    with path.open("w", encoding="utf-8") as handle:
        for i in range(20_000):
            handle.write(json.dumps({"id": i, "title": f"Doc {i}", "text": f"{i} {filler}"}) + "\n")
    size = path.stat().st_size
    assert size > 10_000_000
    tracemalloc.start()
    try:
        (first,) = itertools.islice(read_articles(path, max_file_bytes=4096), 1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert first.id == "0"
    assert peak < size / 20, f"peak {peak:,} bytes for a {size:,}-byte file"
    assert sum(1 for _ in read_articles(path, max_file_bytes=4096)) == 20_000


def test_directory_walk_skips_bad_files(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    write(root / "b" / "two.txt", "Two\n\nSecond text.")
    write(root / "a.md", "# One\n\nFirst text.")
    write(root / "b" / "empty.txt", "")
    write(root / ".hidden.txt", "Hidden\n\nNope.")
    write(root / ".git" / "x.txt", "Git\n\nNope.")
    write(root / "picture.png", b"\x89PNG\x00")
    with pytest.warns(SkippedInputWarning) as record:
        docs = list(read_articles(root))
    assert [d.title for d in docs] == ["One", "Two"]
    assert [d.source for d in docs] == [str(root / "a.md"), str(root / "b" / "two.txt")]
    skipped = [w for w in record if issubclass(w.category, SkippedInputWarning)]
    assert len(skipped) == 1
    assert str(skipped[0].message) == f"{root / 'b' / 'empty.txt'}: empty file"
    with pytest.raises(InputError, match="empty file"):
        list(read_articles(root, strict=True))


def test_include_exclude(tmp_path: Path) -> None:
    root = tmp_path / "c"
    write(root / "keep" / "x.txt", "X\n\nx text.")
    write(root / "keep" / "y.md", "Y\n\ny text.")
    write(root / "drop" / "z.txt", "Z\n\nz text.")
    write(root / "notes.rst", "R\n\nr text.")

    def titles(include: list[str] | None = None, exclude: list[str] | None = None) -> list[str]:
        with warnings.catch_warnings():
            # Unsupported files are not candidates by default, so no warning either.
            warnings.simplefilter("error")
            documents = read_articles(root, include=include or (), exclude=exclude or ())
            return [d.title for d in documents]

    assert titles() == ["Z", "X", "Y"]
    assert titles(include=["*.txt"]) == ["Z", "X"]
    assert titles(exclude=["drop/*"]) == ["X", "Y"]
    assert titles(include=["keep/*"], exclude=["*.md"]) == ["X"]
    with pytest.warns(SkippedInputWarning, match="notes.rst: unsupported file type"):
        assert list(read_articles(root, include=["*.rst"])) == []


def test_missing_and_unsupported_paths(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    assert one(missing).endswith("no such file or directory")
    assert "unsupported file type '.rst'" in one(write(tmp_path / "notes.rst", "hello"))
    # A file named explicitly raises even where a directory walk would only warn.
    assert one(write(tmp_path / "d" / "e.txt", "")).endswith("empty file")


def test_several_paths_lazily(tmp_path: Path, sample_copy: Path) -> None:
    extra = write(tmp_path / "extra.txt", "Extra\n\nMore text.")
    documents = read_articles([sample_copy, str(extra), tmp_path / "missing.md"])
    assert [d.title for d in itertools.islice(documents, 3)] == [*TITLES, "Extra"]
    with pytest.raises(InputError, match=r"missing\.md: no such file or directory"):
        next(documents)


def test_read_text() -> None:
    docs = read_text(SAMPLE.read_text(encoding="utf-8"), mtime=MTIME)
    assert [d.title for d in docs] == TITLES
    assert all(d.source == "pasted" for d in docs)
    (plain,) = read_text("Headline\n\nSome pasted body.\n")
    assert (plain.title, plain.text, plain.source) == ("Headline", "Some pasted body.", "pasted")
    (named,) = read_text("Just a sentence.", title="Mine", source="clipboard")
    assert (named.title, named.text, named.source) == ("Mine", "Just a sentence.", "clipboard")
    assert read_text("Just a sentence.")[0].title == ""
    with pytest.raises(InputError, match="clipboard: empty text"):
        read_text(" \n ", source="clipboard")


def test_directory_walk_skips_a_jsonl_file_with_a_bad_line_whole(tmp_path: Path) -> None:
    root = tmp_path / "dump"
    good = '{"id": "ok", "title": "Fine", "text": "A good article."}\n'
    write(root / "a.jsonl", good + '{"id": "2", "text": "half"\n' + good.replace("ok", "ok2"))
    write(root / "b.txt", "B\n\nA plain article.")
    with pytest.warns(SkippedInputWarning, match=r"a\.jsonl:2: invalid JSON"):
        docs = list(read_articles(root))
    assert [d.title for d in docs] == ["B"], "no line of the bad file gets through"
