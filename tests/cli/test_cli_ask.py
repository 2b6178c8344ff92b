"""The ask command: JSON and readable answers, abstention, and the usual one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from test_answers import DOCS

from semsearch import Embedder, Index
from semsearch.answers.compose import NO_ANSWER
from semsearch.cli import cli


@pytest.fixture(scope="module")
def index_dir(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ask") / "index"
    index = Index(model=embedder)
    index.add(DOCS)
    index.save(path)
    return path


def run(*args: str | Path, code: int = 0) -> Result:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    return result


def one_error(result: Result, *fragments: str) -> None:
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_ask_json(index_dir: Path) -> None:
    question = "Who did the football club sign?"
    out = json.loads(run("ask", question, "--index", index_dir, "--json").stdout)
    assert list(out) == ["question", "answer", "abstained", "confidence", "citations"]
    assert out["question"] == question and out["abstained"] is False
    citations = out["citations"]
    assert citations and [c["n"] for c in citations] == list(range(1, len(citations) + 1))
    texts = {d.id: d.text for d in DOCS}
    for c in citations:
        assert list(c) == ["n", "doc_id", "title", "passage_id", "start", "end", "quote"]
        assert texts[c["doc_id"]][c["start"] : c["end"]] == c["quote"]
        assert f"[{c['n']}]" in out["answer"]
    assert citations[0]["title"] == "Record transfer"


def test_ask_readable(index_dir: Path) -> None:
    out = run("ask", "Who did the football club sign?", "--index", index_dir, "-k", "2").stdout
    assert "Joao Silva" in out and "[1]" in out
    assert "[1] Record transfer" in out
    assert "2023-08-15  sport/football.txt  [" in out


def test_ask_filters(index_dir: Path) -> None:
    question = "Who did the football club sign?"
    sport = json.loads(
        run("ask", question, "--index", index_dir, "--json", "--source", "sport/*").stdout
    )
    assert sport["citations"] and {c["title"] for c in sport["citations"]} == {"Record transfer"}
    later = json.loads(
        run("ask", question, "--index", index_dir, "--json", "--date-from", "2030-01-01").stdout
    )
    assert later["abstained"] is True and later["citations"] == []
    elsewhere = run("ask", question, "--index", index_dir, "--json", "--source", "nowhere/*")
    assert json.loads(elsewhere.stdout)["abstained"] is True
    usage = run("ask", question, "--index", index_dir, "--date-to", "soon", code=2)
    assert "'soon' is not a date as YYYY-MM-DD" in usage.stderr


def test_ask_abstains(index_dir: Path) -> None:
    out = run("ask", "What is the recipe for lemon meringue pie?", "--index", index_dir).stdout
    assert out.startswith(NO_ANSWER) and "Closest passages:" in out
    data = json.loads(
        run(
            "ask", "What is the recipe for lemon meringue pie?", "--index", index_dir, "--json"
        ).stdout
    )
    assert data["abstained"] is True and data["citations"] == [] and data["answer"] == NO_ANSWER


def test_ask_errors(index_dir: Path, tmp_path: Path) -> None:
    one_error(run("ask", "  ", "--index", index_dir, code=1), "empty question")
    one_error(run("ask", "Who?", "--index", tmp_path / "missing", code=1), "missing")
    run("ask", "--index", index_dir, code=2)
    run("ask", "Who?", "--index", index_dir, "-k", "0", code=2)
