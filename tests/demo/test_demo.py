"""The demo without a browser: rendering, the index service, the API over HTTP and the command."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from semsearch import Document, Filters, Index, InputError, SemsearchError
from semsearch.cli import cli
from semsearch.demo import DemoIndex, build, close_index, launch, open_index, render
from semsearch.demo.service import example_questions, filters

pytestmark = pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")

ROOT = Path(__file__).resolve().parents[2]
BUNDLED_INDEX = ROOT / "indexes" / "news"
RUSSIA = "Local media reports discreet exchange of letters between Russian president, Pakistani PM"
HOSTILE = '<script>alert(1)</script><img src=x onerror="alert(2)">'


def copy_index(target: Path) -> Path:
    """A copy of the bundled index: the demo saves into its index, never the checked-in one."""
    shutil.copytree(BUNDLED_INDEX, target)
    return target


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoIndex]:
    demo_index = DemoIndex(copy_index(tmp_path_factory.mktemp("demo") / "news"))
    yield demo_index
    demo_index.close()


# -- rendering -------------------------------------------------------------------------------


def _answer(**overrides: Any) -> dict[str, Any]:
    passage = {"passage_id": 7, "start": 100, "end": 140, "text": "Before. The quoted span. After."}
    citation = {
        "n": 1,
        "doc_id": "d",
        "title": "T",
        "date": "2024-01-02",
        "source": "s",
        "url": "https://example.org/a",
        "passage_id": 7,
        "start": 108,
        "end": 124,
        "quote": "The quoted span.",
    }
    answer = {
        "question": "q",
        "answer": "The quoted span. [1] Not a citation [2].",
        "abstained": False,
        "confidence": 0.9,
        "citations": [citation],
        "passages": [passage],
    }
    answer.update(overrides)
    return answer


def test_markers_link_to_their_quote_only_when_cited() -> None:
    html = render.answer_html(_answer())
    assert '<a class="cite" href="#src-1" data-n="1">[1]</a>' in html
    assert "[2]" in html and 'href="#src-2"' not in html
    assert '<mark id="src-1" data-n="1">' in render.sources_html(_answer())


def test_quote_is_marked_inside_its_passage() -> None:
    html = render.sources_html(_answer())
    assert re.search(
        r"Before\. <mark id=\"src-1\"[^>]*>The quoted span\.</mark><sup[^>]*>\[1\]</sup> After\.",
        html,
    )
    assert 'href="https://example.org/a"' in html


def test_quotes_from_one_passage_share_one_card() -> None:
    base = _answer()
    one = base["citations"][0]
    second = {**one, "n": 2, "start": 100, "end": 107, "quote": "Before."}
    elsewhere = {
        **one,
        "n": 3,
        "passage_id": 8,
        "start": 200,
        "end": 209,
        "quote": "Far away.",
        "title": "Other",
    }
    passages = [*base["passages"], {"passage_id": 8, "start": 190, "text": "Something. Far away."}]
    html = render.sources_html(_answer(citations=[one, second, elsewhere], passages=passages))
    assert html.count('class="source"') == 2
    assert html.count("The quoted span.") == 1  # the shared passage is shown once
    assert '<span class="src-n">[1] [2]</span>' in html and '<span class="src-n">[3]</span>' in html
    # In passage order, each quote marked with its own number.
    assert html.index('id="src-2"') < html.index('id="src-1"') < html.index('id="src-3"')
    assert 'Something. <mark id="src-3"' in html


def test_a_quote_missing_from_its_passage_still_has_a_target() -> None:
    one = {**_answer()["citations"][0], "quote": "Not in the passage."}
    html = render.sources_html(_answer(citations=[one]))
    assert "Before. The quoted span. After." in html  # the passage, unmarked
    assert '<mark id="src-1" data-n="1">Not in the passage.</mark>' in html


def test_article_markup_is_escaped_everywhere() -> None:
    hostile = _answer(
        answer=f"{HOSTILE} [1]",
        citations=[
            {
                **_answer()["citations"][0],
                "title": HOSTILE,
                "source": HOSTILE,
                "url": "javascript:alert(3)",
                "quote": HOSTILE,
                "start": 100,
            }
        ],
        passages=[{"passage_id": 7, "start": 100, "text": HOSTILE + " tail", "title": HOSTILE}],
    )
    outputs = [
        render.answer_html(hostile),
        render.sources_html(hostile),
        render.sources_html({**hostile, "abstained": True}),
        render.hits_html({"hits": [{**hostile["passages"][0], "rank": 1, "score": 0.5, "end": 9}]}),
        render.stats_html({"sources": [HOSTILE], "model": HOSTILE, "path": HOSTILE}),
        render.report_html([("error", HOSTILE)]),
    ]
    for html in outputs:
        assert "<script" not in html and "<img" not in html and "javascript:" not in html
        assert "&lt;script&gt;" in html
    assert '<mark id="src-1" data-n="1">&lt;script&gt;alert(1)&lt;/script&gt;' in outputs[1]


def test_abstention_shows_the_closest_passages_without_quotes() -> None:
    answer = _answer(answer="The indexed articles do not answer this question.", abstained=True)
    answer["citations"] = []
    assert 'data-abstained="true"' in render.answer_html(answer)
    sources = render.sources_html(answer)
    assert "Closest passages" in sources and "<mark>" not in sources


# -- example questions and filters -----------------------------------------------------------


def test_example_questions_come_from_titles_and_highlights() -> None:
    docs = [
        Document.create(
            "Body.",
            title="Three migrants die crossing into Iran as UN warns of displacement",
            date="2025-01-01",
            highlights=("UNHCR says 1.8 million Afghans returned", "No attribution here"),
        ),
        Document.create("Body.", title="Older story", date="2020-01-01"),
    ]
    assert example_questions(docs) == [
        "What do the articles say about “Three migrants die crossing into Iran”?",
        "What do the articles say about “Older story”?",
        "What does UNHCR say?",
    ]
    assert example_questions(docs, limit=1) == [example_questions(docs)[0]]


def test_filters_from_form_values() -> None:
    assert filters("", " ", []) == Filters()
    assert filters("2022-01-01", None, ["a", ""]) == Filters(date_from="2022-01-01", sources=["a"])
    with pytest.raises(InputError, match="not a date"):
        filters("April 2022")


# -- the service over a copy of the bundled index --------------------------------------------


def test_index_opens_once_per_process_until_closed(service: DemoIndex) -> None:
    opened = open_index(service.path)
    assert opened is open_index(service.path)
    close_index(service.path)
    with pytest.raises(SemsearchError, match="the index is closed"):
        opened.search("letters")
    again = open_index(service.path)
    assert again is not opened and again.search("letters")
    close_index(service.path)


def test_ask_returns_citations_that_point_into_the_documents(service: DemoIndex) -> None:
    answer = service.ask("Did Putin and Sharif exchange letters?")
    assert not answer["abstained"] and answer["citations"]
    index = Index.load(service.path)
    for c in answer["citations"]:
        assert index.document(c["doc_id"]).text[c["start"] : c["end"]] == c["quote"]
        assert f"[{c['n']}]" in answer["answer"]
    assert answer["citations"][0]["title"] == RUSSIA
    assert all("metadata" not in p for p in answer["passages"])  # see service._public
    json.dumps(answer)


def test_filters_apply_to_questions_and_searches(service: DemoIndex) -> None:
    assert service.ask("Did Putin and Sharif exchange letters?", date_to="2000-01-01")["abstained"]
    hits = service.search("letters", k=10, date_from="2022-01-01", date_to="2022-12-31")["hits"]
    assert hits and {h["title"] for h in hits} == {RUSSIA}
    assert service.search("letters", sources=["nowhere/*"])["hits"] == []
    with pytest.raises(InputError):
        service.search("   ")


def test_stats_describe_the_index(service: DemoIndex) -> None:
    stats = service.stats()
    assert stats["documents"] == len(Index.load(service.path)) >= 2
    assert stats["sources"]
    dates = sorted(d.date for d in Index.load(service.path).documents() if d.date)
    assert dates[0] in stats["date_first"] and dates[-1] in stats["date_last"]


def test_ingest_reads_every_format_saves_and_reports_problems(
    tmp_path: Path, service: DemoIndex
) -> None:
    before = service.stats()["documents"]
    files = {
        "a.txt": "Lighthouse keeper retires\n\nThe keeper of Skerry Light retired after 41 years.",
        "b.html": "<html><head><title>Bridge opens</title></head><body><article><h1>Bridge "
        "opens</h1><p>The new bridge over the Tarn opened to traffic on Tuesday morning after "
        "four years of work.</p></article></body></html>",
        "c.jsonl": json.dumps({"id": "j1", "title": "Canal", "text": "The canal reopened."}),
        "d.pdf": "not supported",
        "e.jsonl": "{broken",
        "big.txt": "x" * 2000,
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    steps: list[float] = []
    report = service.ingest(
        [tmp_path / name for name in files],
        "Pasted headline\n\nA pasted article about the harbour.",
        max_bytes=1000,
        progress=lambda fraction, _desc: steps.append(fraction),
    )
    assert report.added == 4 and report.passages >= 4
    problems = "\n".join(report.problems)
    assert "d.pdf: unsupported file type .pdf" in problems
    assert "e.jsonl" in problems and "invalid JSON" in problems
    assert "big.txt: file too large" in problems
    assert str(tmp_path) not in problems  # upload temp paths mean nothing to users
    assert steps == sorted(steps) and steps[-1] < 1
    saved = Index.load(service.path)  # saved to disk, atomically, by Index.save
    assert len(saved) == before + 4 == service.stats()["documents"]
    assert {d.source for d in saved.documents()} >= {"upload/a.txt", "upload/b.html", "pasted"}
    assert "j1" in saved


def test_failed_save_leaves_the_index_as_last_saved(
    service: DemoIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = service.stats()["documents"]

    def broken_save(*_: Any) -> None:
        raise SemsearchError("disk full")

    monkeypatch.setattr(Index, "save", broken_save)
    report = service.ingest([], "Never saved\n\nThis article is never saved to disk.")
    assert report.added == 0 and "nothing was added: disk full" in report.problems
    assert service.stats()["documents"] == before
    assert service.search("never saved to disk", k=1)["hits"][0]["title"] != "Never saved"


def test_nothing_to_add_is_said_plainly(service: DemoIndex) -> None:
    assert service.ingest([], "  ").problems == [
        "nothing to add: upload a file or paste an article"
    ]


# -- the app served on localhost, used as a service by gradio_client -------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    app = build(copy_index(tmp_path_factory.mktemp("served") / "news"))
    yield launch(app, port=None)
    app.close()


def test_api_ask_works_with_the_question_alone(served: str) -> None:
    from gradio_client import Client

    client = Client(served, verbose=False)
    answer = client.predict("Why did the Afghan migrants die crossing into Iran?", api_name="/ask")
    assert not answer["abstained"]
    numbers = [c["n"] for c in answer["citations"]]
    assert numbers and all(f"[{n}]" in answer["answer"] for n in numbers)
    assert {"title", "quote", "start", "end", "doc_id"} <= set(answer["citations"][0])

    result = client.predict("letters between Putin and Sharif", api_name="/search")
    assert result["hits"][0]["title"] == RUSSIA and "score" in result["hits"][0]
    filtered = client.predict("letters", 3, "", "2000-01-01", [], api_name="/search")
    assert filtered["hits"] == []


def test_simultaneous_users_all_get_answers(served: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from gradio_client import Client

    def one(i: int) -> dict[str, Any]:
        question = ["Did Putin write to Sharif?", "Why did Afghan migrants die?"][i % 2]
        result: dict[str, Any] = Client(served, verbose=False).predict(question, api_name="/ask")
        return result

    # More users than the queue serves at once: the rest wait their turn instead of failing.
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(one, range(8)))
    assert all(a["citations"] for a in answers)


def test_api_reports_bad_input_as_an_error(served: str) -> None:
    from gradio_client import Client

    with pytest.raises(Exception, match="empty query"):
        Client(served, verbose=False).predict("  ", api_name="/ask")


# -- the command --------------------------------------------------------------------------------


def test_demo_command_refuses_a_missing_index(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["demo", "--index", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "no index here" in result.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_demo_command_serves_and_prints_its_url(tmp_path: Path) -> None:
    index_dir = copy_index(tmp_path / "news")
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    command = [sys.executable, "-m", "semsearch", "demo", "--index", str(index_dir)]
    proc = subprocess.Popen(
        [*command, "--port", str(port)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until the server is up (or the command dies)
        match = re.match(r"semsearch demo: (http://\S+)", line)
        assert match, line
        assert match.group(1) == f"http://127.0.0.1:{port}/"
        with urllib.request.urlopen(match.group(1), timeout=30) as response:
            assert response.status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)
