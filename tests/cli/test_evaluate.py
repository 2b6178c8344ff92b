"""semsearch eval: BEIR and SQuAD metrics, checked by hand on tiny data sets."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from semsearch import Document, Embedder, Index
from semsearch.cli import main
from semsearch.evaluate import beir_metrics, first_tokens, normalize_answer, squad_f1

CORPUS = {
    "d1": ("Oil prices", "Brent crude rose after OPEC cut output."),
    "d2": ("Monsoon", "Heavy rain flooded Karachi streets on Monday."),
    "d3": ("Election", "Voters in Lahore queued for hours to cast ballots."),
    "d4": ("Gadget", "The ZX9 phone ships with a 7000 mAh battery."),
}
QUERIES = {"q1": "why did crude oil rise", "q2": "floods in Karachi", "q3": "ZX9 battery size"}
QRELS = {"q1": {"d1": 1}, "q2": {"d2": 1}, "q3": {"d4": 1, "d3": 1}}


def test_beir_metrics_match_hand_computation() -> None:
    rankings = {"q1": ["d1", "d2"], "q2": ["d3", "d2"], "q3": ["d4", "d1", "d2", "d3"]}
    m = beir_metrics(rankings, QRELS)
    ideal3 = 1 + 1 / math.log2(3)
    ndcg = [1.0, 1 / math.log2(3), (1 + 1 / math.log2(5)) / ideal3]
    assert m["nDCG@10"] == pytest.approx(sum(ndcg) / 3)
    assert m["Recall@10"] == pytest.approx(1.0)
    assert m["MRR@10"] == pytest.approx((1 + 0.5 + 1) / 3)
    # A judged query missing from the run counts as zero, not as absent.
    assert beir_metrics({"q1": ["d1"]}, QRELS)["Recall@100"] == pytest.approx(1 / 3)


def test_squad_answer_normalisation() -> None:
    assert normalize_answer("The  Denver Broncos!") == "denver broncos"
    assert squad_f1("Denver Broncos", "the Broncos") == pytest.approx(2 / 3)
    assert squad_f1("", "x") == 0.0


def _beir(folder: Path) -> Path:
    (folder / "qrels").mkdir(parents=True)
    with open(folder / "corpus.jsonl", "w") as f:
        for doc_id, (title, text) in CORPUS.items():
            f.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
    with open(folder / "queries.jsonl", "w") as f:
        for qid, text in QUERIES.items():
            f.write(json.dumps({"_id": qid, "text": text}) + "\n")
    rows = [f"{q}\t{d}\t{s}" for q, docs in QRELS.items() for d, s in docs.items()]
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(rows))
    return folder


def test_eval_beir_builds_then_reuses_an_index(
    tmp_path: Path, embedder: Embedder, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _beir(tmp_path / "beir")
    index = tmp_path / "index"
    args = ["eval", str(data), "--index", str(index), "--modes", "dense,lexical,hybrid"]
    assert main([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["queries"] == 3
    for mode in ("dense", "lexical", "hybrid"):
        assert set(report[mode]) == {"nDCG@10", "Recall@10", "Recall@100", "MRR@10"}
    # Four documents: dense and hybrid rank them all; BM25 only those sharing a query term.
    assert report["dense"]["Recall@100"] == report["hybrid"]["Recall@100"] == 1.0
    assert report["lexical"]["Recall@100"] == pytest.approx(5 / 6)
    assert report["lexical"]["MRR@10"] == report["hybrid"]["MRR@10"] == 1.0
    manifest = (index / "manifest.json").read_bytes()
    assert main(args) == 0  # reused, not rebuilt
    assert (index / "manifest.json").read_bytes() == manifest
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["mode", "nDCG@10", "Recall@10", "Recall@100", "MRR@10"]
    assert [line.split()[0] for line in out[1:]] == ["dense", "lexical", "hybrid"]


def test_eval_builds_with_the_backend_asked_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, index = _beir(tmp_path / "beir"), tmp_path / "index"
    args = ["eval", str(data), "--index", str(index), "--modes", "dense", "--json"]
    assert main([*args, "--backend", "onnx-int8"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dense"]["Recall@100"] == 1.0
    assert json.loads((index / "manifest.json").read_text())["model"]["backend"] == "onnx-int8"


def test_eval_squad_reports_gold_paragraph_recall(
    tmp_path: Path, embedder: Embedder, capsys: pytest.CaptureFixture[str]
) -> None:
    squad = {
        "version": "1.1",
        "data": [
            {
                "title": "Karachi",
                "paragraphs": [
                    {
                        "context": CORPUS["d2"][1],
                        "qas": [
                            {
                                "id": "a",
                                "question": "What flooded Karachi streets?",
                                "answers": [{"text": "Heavy rain", "answer_start": 0}],
                            }
                        ],
                    },
                    {
                        "context": CORPUS["d4"][1],
                        "qas": [
                            {
                                "id": "b",
                                "question": "What battery does the ZX9 ship with?",
                                "answers": [{"text": "7000 mAh", "answer_start": 26}],
                            }
                        ],
                    },
                ],
            }
        ],
    }
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(squad))
    assert main(["eval", str(path), "--json", "--modes", "lexical,hybrid"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["queries"] == 2
    assert report["lexical"] == {"R@1": 1.0, "R@5": 1.0, "MRR@10": 1.0}


def test_eval_refuses_bad_modes(tmp_path: Path) -> None:
    assert main(["eval", str(_beir(tmp_path / "b")), "--modes", "dense,sparse"]) == 2


def test_first_tokens_keeps_one_passage_per_document(embedder: Embedder) -> None:
    index = Index(model=embedder)
    long = Document(id="long", title="Budget", text=" ".join(["Revenue rose sharply."] * 200))
    short = Document(id="short", title="Rain", text="Heavy rain fell.")
    cut = list(first_tokens(index, [long, short]))
    assert cut[1] == short
    assert long.text.startswith(cut[0].text) and len(cut[0].text) < len(long.text)
    index.add(cut)
    assert len(index.passages("long")) == 1
    # The cut fills one model input: the title's tokens plus the text's reach the limit.
    tokens = len(embedder.tokenizer.token_spans([cut[0].text])[0])
    title = len(embedder.tokenizer.token_spans(["Budget"])[0])
    assert tokens + title == index.settings.max_tokens


def test_eval_reports_where_the_time_went(
    tmp_path: Path, embedder: Embedder, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _beir(tmp_path / "beir")
    assert main(["eval", str(data), "--json", "--modes", "dense,hybrid", "--first-tokens"]) == 0
    seconds = json.loads(capsys.readouterr().out)["seconds"]
    assert {"total", "embed passages", "embed queries", "search", "other"} <= set(seconds)
    parts = seconds["embed passages"] + seconds["embed queries"] + seconds["search"]
    assert parts + seconds["other"] == pytest.approx(seconds["total"], abs=0.2)
