"""semsearch eval on data in the RealTime QA format (weekly questions with choices and the
articles found for them), on a tiny invented data set written here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from semsearch import Embedder, Index
from semsearch.cli import main
from semsearch.evaluate.rtqa import evaluate_realtimeqa, fold, realtimeqa_weeks

HARBOUR = (
    "The port authority of Valmora approved a new harbour wall on Tuesday. "
    "The wall will cost 40 million euros and protect the fishing fleet from winter storms."
)
ORCHARD = (
    "Farmers in the Lindt valley lost most of their apple harvest to a late frost. "
    "The regional government promised compensation of 2,000 euros per hectare."
)
RAIL = "A new night train links Arden and Pelle from March, the rail operator said."


def _article(text: str, title: str, day: str) -> dict[str, Any]:
    return {
        "url": f"https://news.example/{title.lower().replace(' ', '-')}",
        "title": title,
        "text": text,
        "authors": [],
        "publish_date": day,
    }


def _write_week(folder: Path, week: str, questions: list[dict[str, Any]]) -> None:
    qa = [
        {
            "question_id": f"{week}_{i}",
            "question_date": week,
            "question_source": "invented",
            "question_url": "",
            "question_sentence": q["question"],
            "choices": q["choices"],
            "answer": [str(q["answer"])],
            "evidence": "",
        }
        for i, q in enumerate(questions)
    ]
    results = [
        {"question_id": f"{week}_{i}", "search_time": week, "search_result": q["articles"]}
        for i, q in enumerate(questions)
    ]
    for suffix, rows in (("qa", qa), ("gcs", results)):
        path = folder / f"{week}_{suffix}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture
def news(tmp_path: Path) -> Path:
    folder = tmp_path / "rtqa"
    folder.mkdir()
    harbour = _article(HARBOUR, "Valmora approves harbour wall", "2023/01/10")
    orchard = _article(ORCHARD, "Frost ruins Lindt valley apples", "2023/01/11")
    rail = _article(RAIL, "Night train for Arden", "2023/01/17")
    _write_week(
        folder,
        "20230113",
        [
            {
                "question": "How much will the Valmora harbour wall cost?",
                "choices": ["10 million euros", "40 million euros", "90 million euros", "none"],
                "answer": 1,
                "articles": [harbour, orchard],
            },
            {
                "question": "What destroyed the apple harvest in the Lindt valley?",
                "choices": ["hail", "drought", "a late frost", "pests"],
                "answer": 2,
                "articles": [orchard, harbour],
            },
        ],
    )
    _write_week(
        folder,
        "20230120",
        [
            {
                "question": "Which city will the new night train reach besides Arden?",
                "choices": ["Pelle", "Brisk", "Ostra", "Varn"],
                "answer": 0,
                "articles": [rail],
            },
            {  # no article holds the answer: unanswerable
                "question": "Who won the Arden chess open?",
                "choices": ["Ana Ruiz", "Tom Berg", "Li Wei", "Sam Ode"],
                "answer": 3,
                "articles": [rail],
            },
        ],
    )
    return folder


def test_weeks_hold_their_articles_once_and_know_which_questions_are_answerable(
    news: Path,
) -> None:
    first, second = realtimeqa_weeks(news)
    assert (first.name, second.name) == ("20230113", "20230120")
    assert len(first.documents) == 2  # the harbour and orchard articles, each once
    assert first.documents[0].date == "2023-01-10"
    assert first.documents[0].url == "https://news.example/valmora-approves-harbour-wall"
    assert [q.gold for q in first.questions] == ["40 million euros", "a late frost"]
    assert [q.answerable for q in second.questions] == [True, False]


def test_choices_are_found_whatever_the_typography() -> None:
    assert fold("“Succession” – HBO’s") in fold('The winner: "succession" - HBO\'s  drama')
    assert fold("６ months") == fold("6 months")  # NFKC: full-width digits, no-break space


def test_each_week_is_searched_in_its_own_index(news: Path, embedder: Embedder) -> None:
    weeks = realtimeqa_weeks(news)
    seen: list[int] = []

    def index_of(week: Any) -> Index:
        index = Index(model=embedder)
        index.add(week.documents)
        seen.append(len(week.documents))
        return index

    result = evaluate_realtimeqa(weeks, index_of, modes=["lexical", "hybrid"], answers=True)
    assert seen == [2, 1]
    for mode in ("lexical", "hybrid"):
        assert result[mode]["answerable: gold in top 5"] == 1.0
        assert result[mode]["all: gold in top 5"] == 0.75  # the chess question cannot be found
    answers = result["answers"]
    assert answers["answerable: answer contains gold"] == pytest.approx(1.0)
    assert 0.0 <= answers["unanswerable: abstained"] <= 1.0


def test_eval_command_reads_the_format(
    news: Path, embedder: Embedder, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", str(news), "--modes", "lexical", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["queries"] == 4
    assert report["weeks"] == 2
    assert report["lexical"] == {"answerable: gold in top 5": 1.0, "all: gold in top 5": 0.75}
    assert main(["eval", str(news), "--modes", "hybrid", "--recency", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["hybrid"]["answerable: gold in top 5"] == 1.0


def test_eval_command_keeps_one_index_per_week_under_index(
    news: Path, tmp_path: Path, embedder: Embedder, capsys: pytest.CaptureFixture[str]
) -> None:
    built = tmp_path / "weeks"
    assert main(["eval", str(news), "--modes", "lexical", "--index", str(built)]) == 0
    assert sorted(p.name for p in built.iterdir()) == ["20230113", "20230120"]
    assert Index.load(built / "20230120").info()["documents"] == 1
    first = capsys.readouterr().out
    assert main(["eval", str(news), "--modes", "lexical", "--index", str(built)]) == 0
    assert capsys.readouterr().out == first  # reused, same figures


def test_a_week_without_its_articles_is_one_clear_error(
    news: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (news / "20230120_gcs.jsonl").unlink()
    assert main(["eval", str(news)]) == 1
    err = capsys.readouterr().err
    assert err.strip() == (
        f"error: {news / '20230120_qa.jsonl'}: no 20230120_gcs.jsonl beside it (the articles)"
    )


def test_an_answer_that_names_no_choice_is_an_error_naming_file_and_line(
    news: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = news / "20230113_qa.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[1]["answer"] = ["7"]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["eval", str(news)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:2" in err and "'answer' does not name one of the choices" in err
    assert "Traceback" not in err
