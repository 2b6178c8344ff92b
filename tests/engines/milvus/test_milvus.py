"""The Milvus engine beyond the contract suite: addresses, filters Milvus cannot say directly,
the Index, CLI and demo over Milvus Lite (embedded and served), and abandoned writes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from semsearch import Document, Filters, Index, ModelMismatchError, SemsearchError
from semsearch.cli import cli
from semsearch.embeddings.embedder import Embedder
from semsearch.engines import new_engine, open_engine
from semsearch.engines.milvus import Address, MilvusEngine
from semsearch.engines.milvus import expressions as ex
from semsearch.engines.milvus import writer as milvus_writer
from semsearch.engines.milvus.address import close
from semsearch.retrieval import Mode
from semsearch.retrieval.recency import RECENCY_DAYS, recency_boost

pytest.importorskip("milvus_lite")

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = ROOT / "samples" / "news"


def test_addresses_parse_and_never_show_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SEMSEARCH_MILVUS_TOKEN", raising=False)
    server = Address.parse("milvus://root:s3cret@db.example:19531/news_2024")
    assert (server.uri, server.name, server.token) == (
        "http://db.example:19531",
        "news_2024",
        "root:s3cret",
    )
    assert (
        "s3cret" not in server.display and server.display == "milvus://db.example:19531/news_2024"
    )
    monkeypatch.setenv("SEMSEARCH_MILVUS_TOKEN", "from-env")
    assert Address.parse("milvus://db.example/news").token == "from-env"
    assert Address.parse("milvus://db.example/news").uri == "http://db.example:19530"
    lite = Address.parse(f"milvus://{tmp_path}/archive.db")
    assert (lite.uri, lite.name, lite.embedded) == (str(tmp_path / "archive.db"), "archive", True)
    monkeypatch.chdir(tmp_path)
    assert Address.parse("milvus:sub/x.db").uri == str(tmp_path / "sub" / "x.db")
    for bad in ("milvus://host:port/x", "milvus://host:19530/", "milvus:x.txt", "milvus://h/1x"):
        with pytest.raises(SemsearchError, match="milvus"):
            Address.parse(bad)


def test_expressions_quote_and_resolve_globs() -> None:
    assert ex.quote('a"b\\c') == '"a\\"b\\\\c"'
    assert ex.like_pattern("news/*.txt") == ("news/%.txt", True)
    assert ex.like_pattern("news_2024/*")[1] is False  # "_" is a LIKE wildcard: narrowed after
    assert ex.filter_expression(Filters(doc_ids=[]).checked()) is None
    expr = ex.filter_expression(Filters(date_to="2024-01-31").checked())
    assert expr == '(date != "" and date <= "2024-01-31")'  # undated documents fail date filters


def vec(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(4).astype(np.float32)
    return v / np.linalg.norm(v)


def small_index(location: str) -> MilvusEngine:
    from semsearch.engines import DocumentPassages, IndexSettings
    from semsearch.types import Passage

    settings = IndexSettings("t/m", "torch", 4, 64, 0, True)
    engine = new_engine(location)
    assert isinstance(engine, MilvusEngine)
    docs = []
    for i, source in enumerate(["news_2024/a.txt", "newsX2024/b.txt", 'odd "quoted" [x].txt']):
        text = f"Story number {i} about the harbour."
        doc = Document(id=f'd{i}"', text=text, source=source)
        docs.append(DocumentPassages(doc, [Passage(doc.id, 0, 0, len(text), text)], [f"k{i}"], ""))
    with engine.writer(settings) as w:
        w.write(docs, np.stack([vec(i) for i in range(3)]))
    return engine


def test_globs_that_like_cannot_say_are_matched_exactly(tmp_path: Path) -> None:
    engine = small_index(f"milvus://{tmp_path}/globs.db")
    q = vec(9)[None, :]

    def docs(*sources: str) -> set[str]:
        (ranked,) = engine.dense(q, 10, Filters(sources=list(sources)).checked())
        return {h.doc_id for h in engine.hits(ranked)}

    assert docs("news_2024/*") == {'d0"'}  # not newsX2024: "_" is literal in a glob
    assert docs("news?2024/*") == {'d0"', 'd1"'}
    assert docs('odd "quoted" [[]x].txt') == {'d2"'}
    assert docs('odd "quoted" [x].txt') == set()  # "[x]" is a class matching "x", as in GLOB
    assert engine.has_documents(['d2"', "d9"]) == [True, False]


def test_an_abandoned_write_is_rolled_back_by_the_next_writer(tmp_path: Path) -> None:
    engine = small_index(f"milvus://{tmp_path}/crash.db")
    from semsearch.engines import DocumentPassages
    from semsearch.types import Passage

    settings = engine.settings
    assert settings is not None
    # A writer whose process dies after writing: its context is never left.
    txn = milvus_writer._begin(engine)
    doc = Document(id="ghost", text="A ghost story.", source="x.txt")
    w = milvus_writer.MilvusWriter(engine, txn)
    w.write(
        [DocumentPassages(doc, [Passage("ghost", 0, 0, 14, doc.text)], ["g"], "")], vec(5)[None]
    )
    w._retire(['d0"'])  # and it had begun replacing a document
    assert engine.counts() == (3, 3) and "ghost" not in {d.id for d in engine.documents()}
    state = engine.meta("state")
    assert state is not None
    state["pending"][str(txn)] = time.time() - milvus_writer.LEASE_SECONDS - 1
    engine.put_meta("state", state)
    with engine.writer(settings):
        pass  # the next writer finds the lease run out
    assert engine.pending() == []
    assert engine.count("passages", "") == 3  # the ghost's rows are gone, not just hidden
    assert engine.document('d0"') is not None and engine.counts() == (3, 3)


@pytest.fixture(scope="module")
def lite_index(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> str:
    location = f"milvus://{tmp_path_factory.mktemp('lite')}/news.db"
    index = Index(model=embedder, engine=location)
    index.add(_sample_documents())
    index.save()
    close(Address.parse(location))
    return location


def _sample_documents() -> list[Document]:
    from semsearch import read_articles

    return list(read_articles([SAMPLES]))


def test_index_over_milvus_lite_keeps_offsets_filters_and_k(
    lite_index: str, embedder: Embedder
) -> None:
    index = Index.load(lite_index, model=embedder)
    assert index.path is None and index.location == lite_index
    docs = {d.id: d for d in index.documents()}
    assert len(docs) == len(index) >= 2
    for doc_id, doc in docs.items():
        for p in index.passages(doc_id):
            assert doc.text[p.start : p.end] == p.text
    for mode in ("dense", "lexical", "hybrid"):
        hits = index.search("Afghan migrants Iran border", k=2, mode=mode)
        assert len(hits) == 2, mode
        for h in hits:
            assert docs[h.doc_id].text[h.start : h.end] == h.text
    dated = sorted(d.date for d in docs.values() if d.date)
    only = Filters(date_to=dated[0])
    hits = index.search("letters", k=50, filters=only)
    assert hits and all(h.date is not None and h.date <= dated[0] for h in hits)
    answer = index.ask("Why did the Afghan migrants die?")
    assert not answer.abstained and answer.citations
    for c in answer.citations:
        assert docs[c.doc_id].text[c.start : c.end] == c.quote
    with pytest.raises(ModelMismatchError, match="all-mpnet-base-v2"):
        Index.load(lite_index, model="sentence-transformers/all-mpnet-base-v2")


def test_recency_adds_what_it_adds_over_the_local_engine(
    lite_index: str, embedder: Embedder
) -> None:
    milvus = Index.load(lite_index, model=embedder)
    local = Index(model=embedder)
    local.add(_sample_documents())
    for index in (milvus, local):
        plain = {h.passage_id: h.score for h in index.search("letters", k=10, recency=False)}
        dated = {h.passage_id: h.score for h in index.search("letters", k=10, recency=True)}
        # Every passage is a candidate here, so "now" is the newest article's date.
        gains = recency_boost(index._engine.passage_dates(np.asarray(list(plain))), RECENCY_DAYS)
        assert len(plain) == sum(len(index.passages(d.id)) for d in index.documents())
        for (pid, score), gain in zip(plain.items(), gains.tolist(), strict=True):
            assert dated[pid] == pytest.approx(score + gain, abs=1e-5)
    order = [[h.doc_id for h in i.search("letters", k=10, recency=True)] for i in (milvus, local)]
    assert order[0] == order[1]


def test_a_failed_add_leaves_a_milvus_index_as_it_was(tmp_path: Path, embedder: Embedder) -> None:
    location = f"milvus://{tmp_path}/atomic.db"
    index = Index(model=embedder, engine=location)
    index.add(Document.create("The ferry sailed at dawn.", id="ferry"))

    def documents() -> object:
        yield Document.create("The ferry was replaced.", id="ferry")
        yield Document.create("A second story.", id="second")
        raise RuntimeError("the feed broke")

    with pytest.raises(RuntimeError):
        index.add(documents())  # type: ignore[arg-type]
    reopened = Index.load(location, model=embedder)
    assert len(reopened) == 1 and reopened.document("ferry").text == "The ferry sailed at dawn."
    assert [h.text for h in reopened.search("ferry", k=5)] == ["The ferry sailed at dawn."]
    with pytest.raises(SemsearchError, match="kept where it is"):
        reopened.save(tmp_path / "elsewhere")


def test_cli_over_a_milvus_server(milvus_server: str, tmp_path: Path) -> None:
    """index, search, ask, info and remove over milvus://127.0.0.1:PORT/NAME, as over a
    cluster; a password in the address is never printed."""
    location = milvus_server.replace("milvus://", "milvus://root:hunter2@") + "/cli_news"
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(cli, list(args))
        assert result.exit_code == 0, (result.output, result.exception)
        assert "hunter2" not in result.output
        return result.output

    out = run("index", str(SAMPLES), "--index", location)
    assert "into milvus://127.0.0.1" in out and "2 new" in out
    assert "Afghan" in run("search", "migrants crossing into Iran", "--index", location, "-k", "1")
    assert "[1]" in run("ask", "Why did the Afghan migrants die?", "--index", location)
    info = run("info", "--index", location)
    assert "documents: 2" in info and "engine: milvus" in info
    doc_id = Index.load(location).documents().__next__().id
    assert "removed 1 document" in run("remove", doc_id, "--index", location)
    assert len(Index.load(location)) == 1
    bad = runner.invoke(cli, ["search", "x", "--index", milvus_server + "/no_such_index"])
    assert bad.exit_code != 0 and "no semsearch index there" in bad.output


@pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")
def test_the_demo_serves_a_milvus_index(lite_index: str) -> None:
    from gradio_client import Client

    from semsearch.demo import build, launch

    app = build(lite_index)
    url = launch(app, port=None)
    try:
        answer = Client(url, verbose=False).predict(
            "Why did the Afghan migrants die crossing into Iran?", api_name="/ask"
        )
        assert not answer["abstained"] and answer["citations"]
    finally:
        app.close()


def test_the_demo_command_serves_an_index_on_a_milvus_server(milvus_server: str) -> None:
    """`semsearch demo --index milvus://127.0.0.1:PORT/NAME` in its own process, as a user
    starts it against a cluster: it prints its URL and answers there."""
    location = milvus_server + "/cli_demo"
    copied = CliRunner().invoke(cli, ["copy", str(ROOT / "indexes" / "news"), location])
    assert copied.exit_code == 0, copied.output
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    command = [sys.executable, "-m", "semsearch", "demo", "--index", location]
    proc = subprocess.Popen(
        [*command, "--port", str(port)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until the server is up (or the command dies)
        assert line.startswith(f"semsearch demo: http://127.0.0.1:{port}/"), line
        from gradio_client import Client

        answer = Client(f"http://127.0.0.1:{port}/", verbose=False).predict(
            "Why did the Afghan migrants die crossing into Iran?", api_name="/ask"
        )
        assert not answer["abstained"] and answer["citations"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_reopening_needs_an_index_there(tmp_path: Path) -> None:
    with pytest.raises(SemsearchError, match="no semsearch index there"):
        open_engine(f"milvus://{tmp_path}/empty.db")
    with pytest.raises(SemsearchError, match="directory does not exist"):
        new_engine(f"milvus://{tmp_path}/missing/x.db")


def test_copy_moves_an_index_between_engines_without_embedding(
    tmp_path: Path, embedder: Embedder
) -> None:
    """Bundled index -> Milvus Lite -> a new directory: the same documents, passages and
    vectors, and the same search results, at every step."""
    bundled = ROOT / "indexes" / "news"
    there, back = f"milvus://{tmp_path}/copied.db", tmp_path / "back"
    runner = CliRunner()
    for source, target in ((str(bundled), there), (there, str(back))):
        result = runner.invoke(cli, ["copy", source, target])
        assert result.exit_code == 0, (result.output, result.exception)
        assert "copied 2 documents (4 passages)" in result.output

    def contents(location: str | Path) -> list[tuple[Document, list[tuple[int, int, str]], bytes]]:
        engine = open_engine(location)
        out = []
        for doc in sorted(engine.documents(), key=lambda d: d.id):
            held = engine.passages(doc.id)
            vectors = engine.passage_vectors(np.asarray([p.id for p in held], np.int64))
            out.append((doc, [(p.start, p.end, p.text) for p in held], vectors.tobytes()))
        return out

    assert contents(bundled) == contents(there) == contents(back)

    def results(location: str | Path, mode: Mode) -> list[tuple[str, int, int, float]]:
        hits = Index.load(location, model=embedder).search("letters to Sharif", k=3, mode=mode)
        return [(h.doc_id, h.start, h.end, round(h.score, 4)) for h in hits]

    modes: tuple[Mode, ...] = ("dense", "lexical", "hybrid")
    for mode in modes:
        assert results(bundled, mode) == results(back, mode), mode
    assert results(bundled, "dense") == results(there, "dense")
    for mode in modes:  # Milvus's BM25 and estimated proximity rank as the local engine does
        assert [r[:3] for r in results(there, mode)] == [r[:3] for r in results(bundled, mode)]
    refused = runner.invoke(cli, ["copy", there, there])
    assert refused.exit_code != 0 and "one index" in refused.output


def test_a_near_copy_added_later_joins_the_stored_group(tmp_path: Path, embedder: Embedder) -> None:
    """Stored candidates are found by vector: a near-copy (one word changed) embeds next to
    its original and, its MinHash signature agreeing, joins the original's group."""
    story = (
        "The regional council approved a new flood barrier for the river port on Tuesday. "
        "Engineers said the barrier would protect four thousand homes from winter storms, "
        "and work is due to start in the spring after a final public consultation ends."
    )
    index = Index(model=embedder, engine=f"milvus://{tmp_path}/dups.db")
    index.add(Document.create(story, id="original"))
    index.add(Document.create("Bakers in the old town held a bread festival.", id="bread"))
    index.add(Document.create(story.replace("Tuesday", "Wednesday"), id="copy"))
    engine = index._engine
    groups = {
        p.doc_id: engine.representatives(np.asarray([p.id], np.int64)).tolist()[0]
        for doc in ("original", "copy", "bread")
        for p in index.passages(doc)
    }
    assert groups["copy"] == groups["original"] != groups["bread"]
    hits = index.search("flood barrier for the river port", k=5)
    assert [h.doc_id for h in hits].count("original") + [h.doc_id for h in hits].count("copy") == 1
