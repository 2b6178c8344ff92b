"""The semsearch command line: commands, output shapes, exit codes and one-line errors."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from semsearch.cli import cli
from semsearch.cli.searching import BATCH_HIT_KEYS
from semsearch.embeddings.embedder import Embedder

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "news" / "000_94129f04b1971983.txt"
# 2025-12-06 12:00 UTC: the second sample article says "Updated 9 sec ago".
SAMPLE_MTIME = 1765022400.0
RUSSIA = "Local media reports discreet exchange of letters between Russian president, Pakistani PM"
AFGHAN = (
    "Three Afghan migrants die crossing into Iran as UN warns of new displacement toward Pakistan"
)
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}


def run(*args: str | Path, code: int = 0, stdin: str | None = None) -> Result:
    """Invoke the CLI in-process and check its exit code; no exception may escape as a crash."""
    result = CliRunner().invoke(cli, [str(a) for a in args], input=stdin)
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    return result


def assert_one_error(stderr: str, *fragments: str) -> None:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in lines[0], stderr


def run_subprocess(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "semsearch", *map(str, args)],
        env=ENV,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file in an index directory, byte for byte."""
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def copy_sample(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / SAMPLE.name
    shutil.copy(SAMPLE, target)
    os.utime(target, (SAMPLE_MTIME, SAMPLE_MTIME))
    return target


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> tuple[Path, Result]:
    """One index of the sample page per module (the embedder fixture loads the model once)."""
    base = tmp_path_factory.mktemp("cli")
    pages = base / "pages"
    copy_sample(pages)
    result = run("index", pages, "--index", base / "index")
    return base / "index", result


@pytest.fixture
def index_dir(built: tuple[Path, Result]) -> Path:
    return built[0]


@pytest.fixture
def index_copy(index_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the module's index for tests that change it."""
    return Path(shutil.copytree(index_dir, tmp_path / "index"))


def search_json(index_dir: Path, query: str, *extra: str) -> dict[str, Any]:
    result = run("search", query, "--index", index_dir, "--json", *extra)
    data: dict[str, Any] = json.loads(result.stdout)
    return data


# -- index --------------------------------------------------------------------------------------


def test_index_prints_a_summary(built: tuple[Path, Result]) -> None:
    index_dir, result = built
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "indexed 2 documents (2 new, 0 replaced, 0 unchanged), 4 passages (4 embedded) "
        f"into {index_dir}"
    ]
    assert (index_dir / "manifest.json").is_file()


def test_reindexing_unchanged_files_leaves_the_index_untouched(
    index_dir: Path, index_copy: Path
) -> None:
    pages = index_dir.parent / "pages"  # the same files: document ids derive from their paths
    before = snapshot(index_copy)
    result = run("index", pages, "--index", index_copy)
    assert "(0 new, 0 replaced, 2 unchanged)" in result.stderr
    assert snapshot(index_copy) == before


def test_bad_file_in_directory_is_skipped_with_a_warning(
    tmp_path: Path, embedder: Embedder
) -> None:
    pages = tmp_path / "pages"
    copy_sample(pages)
    (pages / "broken.txt").write_bytes(b"\x00\x01\x02\x03 binary")
    result = run("index", pages, "--index", tmp_path / "index")
    lines = result.stderr.splitlines()
    assert lines[0] == f"warning: {pages / 'broken.txt'}: binary file, not text"
    assert lines[1].startswith("indexed 2 documents (2 new")
    assert lines[1].endswith("; skipped 1 file")
    assert len(lines) == 2


def test_strict_fails_on_a_bad_file_and_leaves_the_index_unchanged(
    index_copy: Path, tmp_path: Path
) -> None:
    pages = tmp_path / "pages"
    copy_sample(pages)
    (pages / "new.md").write_text("# A new article\n\nSomething else entirely happened today.\n")
    (pages / "zz_broken.txt").write_bytes(b"\x00\x01\x02\x03 binary")
    before = snapshot(index_copy)
    result = run("index", pages, "--index", index_copy, "--strict", code=1)
    assert_one_error(result.stderr, "zz_broken.txt", "binary file")
    assert snapshot(index_copy) == before


@pytest.mark.parametrize(
    ("content", "name", "problem"),
    [
        (b"", "empty.txt", "empty file"),
        (b"\x00\x01\x02\x03\xff\xfe binary", "binary.txt", "binary file"),
        (
            b'{"id": "a", "text": "fine"}\n{"id": "b", "text": \n',
            "broken.jsonl",
            ":2: invalid JSON",
        ),
    ],
)
def test_bad_file_named_explicitly_fails(
    tmp_path: Path, embedder: Embedder, content: bytes, name: str, problem: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    result = run("index", path, "--index", tmp_path / "index", code=1)
    assert_one_error(result.stderr, str(path), problem)
    assert not (tmp_path / "index").exists()


def test_read_only_index_dir_is_refused(index_copy: Path, tmp_path: Path) -> None:
    pages = tmp_path / "pages"
    copy_sample(pages)
    before = snapshot(index_copy)
    index_copy.chmod(0o555)
    try:
        result = run("index", pages, "--index", index_copy, code=1)
    finally:
        index_copy.chmod(0o755)
    assert_one_error(result.stderr, str(index_copy), "read-only")
    assert snapshot(index_copy) == before


def test_model_mismatch_fails(index_copy: Path, tmp_path: Path) -> None:
    pages = tmp_path / "pages"
    copy_sample(pages)
    before = snapshot(index_copy)
    result = run("index", pages, "--index", index_copy, "--model", "other/model", code=1)
    assert_one_error(result.stderr, "other/model", "sentence-transformers/all-MiniLM-L6-v2")
    assert snapshot(index_copy) == before


def test_changed_chunking_of_an_existing_index_fails(index_copy: Path, tmp_path: Path) -> None:
    pages = tmp_path / "pages"
    copy_sample(pages)
    result = run("index", pages, "--index", index_copy, "--max-tokens", "50", code=1)
    assert_one_error(result.stderr, "--max-tokens 254")


def test_no_documents_found_fails(tmp_path: Path, embedder: Embedder) -> None:
    (tmp_path / "pages").mkdir()
    (tmp_path / "pages" / "notes.csv").write_text("a,b\n")
    result = run("index", tmp_path / "pages", "--index", tmp_path / "index", code=1)
    assert_one_error(result.stderr, "no documents found")
    assert not (tmp_path / "index").exists()


def test_unknown_model_fails(tmp_path: Path) -> None:
    result = run("index", SAMPLE, "--index", tmp_path / "index", "--model", "no/such-model", code=1)
    assert_one_error(result.stderr, "cannot load model 'no/such-model'")


def test_missing_parent_of_index_dir_fails(tmp_path: Path) -> None:
    result = run("index", SAMPLE, "--index", tmp_path / "no" / "index", code=1)
    assert_one_error(result.stderr, str(tmp_path / "no"), "does not exist")


def test_fifos_and_sockets_in_a_directory_are_skipped_with_a_warning_each(
    embedder: Embedder,
) -> None:
    # A Unix socket's path must fit in 108 bytes, which pytest's tmp_path does not promise.
    base = Path(tempfile.mkdtemp(prefix="ss-", dir="/tmp"))
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        pages = base / "pages"
        copy_sample(pages)
        os.mkfifo(pages / "pipe.txt")
        server.bind(str(pages / "sock.md"))
        result = run("index", pages, "--index", base / "index")
        lines = result.stderr.splitlines()
        assert lines[:2] == [
            f"warning: {pages / 'pipe.txt'}: is a FIFO, not a regular file",
            f"warning: {pages / 'sock.md'}: is a socket, not a regular file",
        ]
        assert lines[2].startswith("indexed 2 documents (2 new")
        assert lines[2].endswith("; skipped 2 files")
        assert len(lines) == 3
    finally:
        server.close()
        shutil.rmtree(base, ignore_errors=True)


def test_a_fifo_named_explicitly_fails(tmp_path: Path, embedder: Embedder) -> None:
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    result = run("index", fifo, "--index", tmp_path / "index", code=1)
    assert_one_error(result.stderr, f"{fifo}: is a FIFO, not a regular file or directory")
    assert not (tmp_path / "index").exists()


def test_a_date_that_is_no_day_warns_naming_file_line_and_value(
    tmp_path: Path, embedder: Embedder
) -> None:
    dump = tmp_path / "dump.jsonl"
    rows = [
        {"id": "a", "text": "The council approved the harbour wall.", "date": "2024-02-10"},
        {"id": "b", "text": "The mayor opened the new library.", "date": "9999-99-99"},
    ]
    dump.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    result = run("index", dump, "--index", tmp_path / "index")
    lines = result.stderr.splitlines()
    assert lines[0] == (
        f"warning: {dump}:2: unreadable date '9999-99-99' in the 'date' field; "
        "the document is kept without a date"
    )
    assert lines[1].startswith("indexed 2 documents (2 new")
    assert len(lines) == 2
    hits = search_json(tmp_path / "index", "library", "-k", "1")["hits"]
    assert (hits[0]["doc_id"], hits[0]["date"]) == ("b", None)
    assert hits[0]["metadata"]["date_raw"] == "9999-99-99"


# -- search -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "title"),
    [
        ("Did Vladimir Putin and Shehbaz Sharif exchange letters?", RUSSIA),
        ("How many Afghans died trying to cross the border into Iran?", AFGHAN),
    ],
)
def test_search_finds_the_article_asked_about_first(
    index_dir: Path, question: str, title: str
) -> None:
    data = search_json(index_dir, question, "-k", "3")
    assert data["hits"][0]["title"] == title


def test_search_json_shape(index_dir: Path) -> None:
    data = search_json(index_dir, "letters between leaders", "-k", "2")
    assert set(data) == {"query", "hits"}
    assert data["query"] == "letters between leaders"
    assert [hit["rank"] for hit in data["hits"]] == [1, 2]
    hit = data["hits"][0]
    assert set(hit) == {
        "rank", "score", "doc_id", "passage_id", "ordinal", "title", "date",
        "date_approximate", "source", "url", "start", "end", "text", "metadata",
    }  # fmt: skip
    assert data["hits"][0]["score"] >= data["hits"][1]["score"]
    assert hit["end"] - hit["start"] == len(hit["text"])


def test_search_readable_output(index_dir: Path) -> None:
    result = run("search", "letters between Putin and Sharif", "--index", index_dir, "-k", "1")
    lines = result.stdout.splitlines()
    assert lines[0].startswith(" 1. ") and 0 < float(lines[0].split()[1]) <= 1  # fused score
    assert lines[0].endswith(RUSSIA)
    assert lines[1].strip().startswith("2022-04-24")
    assert "[0:" in lines[1]
    assert lines[2].strip().startswith("ISLAMABAD:")
    assert lines[2].endswith("…")
    assert len(lines[2].strip()) <= 302


def test_search_filters(index_dir: Path) -> None:
    data = search_json(index_dir, "Pakistan", "--date-from", "2025-01-01")
    assert {hit["title"] for hit in data["hits"]} == {AFGHAN}
    data = search_json(index_dir, "Pakistan", "--date-to", "2022-12-31")
    assert {hit["title"] for hit in data["hits"]} == {RUSSIA}
    assert search_json(index_dir, "Pakistan", "--source", "*/elsewhere/*")["hits"] == []


@pytest.mark.parametrize("command", ["search", "ask"])
def test_reversed_date_range_fails_before_loading_the_index(tmp_path: Path, command: str) -> None:
    # The index does not exist: the range is refused before anything is loaded.
    args = ["--date-from", "2025-01-01", "--date-to", "2024-01-01"]
    result = run(command, "Pakistan", "--index", tmp_path / "nowhere", *args, code=1)
    assert_one_error(
        result.stderr,
        "--date-from 2025-01-01 is after --date-to 2024-01-01: no date is in that range",
    )


def test_search_and_ask_take_recency(index_dir: Path) -> None:
    from semsearch import Index

    index = Index.load(index_dir)
    for flag, recency in (("--recency", True), ("--no-recency", False)):
        data = search_json(index_dir, "Pakistan", flag)
        assert [(h["doc_id"], h["score"]) for h in data["hits"]] == [
            (h.doc_id, pytest.approx(h.score, abs=1e-4))
            for h in index.search("Pakistan", recency=recency)
        ]
        answer = json.loads(
            run("ask", "Who crossed into Iran?", "--index", index_dir, flag, "--json").stdout
        )
        assert answer["citations"]
    result = run("search", "Pakistan", "--index", index_dir, "--recency", "--mode", "dense", code=1)
    assert_one_error(result.stderr, "--recency needs --mode hybrid, got --mode dense")


def test_a_single_day_range_is_no_error(index_dir: Path) -> None:
    day = ["--date-from", "2022-04-24", "--date-to", "2022-04-24"]
    assert {hit["title"] for hit in search_json(index_dir, "Pakistan", *day)["hits"]} == {RUSSIA}


def test_long_query_succeeds_with_a_warning(index_dir: Path) -> None:
    result = run("search", "refugees " * 1111 + "x", "--index", index_dir, "--json", "-k", "1")
    assert len(json.loads(result.stdout)["hits"]) == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("warning: query is ")
    assert "the model reads only the first 254" in lines[0]


@pytest.mark.parametrize("query", ["", "   \n"])
def test_empty_query_fails(index_dir: Path, query: str) -> None:
    result = run("search", query, "--index", index_dir, code=1)
    assert_one_error(result.stderr, "empty query")


def test_missing_index_dir_fails(tmp_path: Path) -> None:
    result = run("search", "anything", "--index", tmp_path / "nowhere", code=1)
    assert_one_error(result.stderr, str(tmp_path / "nowhere"), "does not exist")


@pytest.mark.parametrize(
    "args",
    [
        ["search", "--index", "x"],
        ["search", "q", "--queries", "q.jsonl", "--index", "x"],
        ["search", "q", "--index", "x", "--no-such-option"],
        ["search", "q", "--index", "x", "-k", "0"],
        ["search", "q", "--index", "x", "--date-from", "2022-13-45"],
        ["index", "--index", "x"],
        ["frobnicate"],
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = run(*args, code=2)
    assert "Usage:" in result.stderr


# -- batch search -------------------------------------------------------------------------------


def test_batch_search_writes_one_json_line_per_query(index_dir: Path, tmp_path: Path) -> None:
    queries = tmp_path / "queries.jsonl"
    queries.write_text(
        json.dumps({"_id": "q-russia", "text": "letters from Putin to Sharif", "metadata": {}})
        + "\n\n"
        + json.dumps({"id": 7, "text": "Afghan migrants freezing at the Iran border"})
        + "\n",
        encoding="utf-8",
    )
    result = run("search", "--queries", queries, "--index", index_dir, "-k", "2", "--json")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["query_id"] for line in lines] == ["q-russia", "7"]
    for line in lines:
        assert set(line) == {"query_id", "hits"}
        assert len(line["hits"]) == 2
        for hit in line["hits"]:
            assert list(hit) == list(BATCH_HIT_KEYS)
            assert set(hit) == {
                "rank",
                "score",
                "doc_id",
                "passage_id",
                "title",
                "start",
                "end",
                "text",
            }
    assert lines[0]["hits"][0]["title"] == RUSSIA
    assert lines[1]["hits"][0]["title"] == AFGHAN
    # Without --json, and from stdin, the output is the same JSON Lines.
    again = run(
        "search", "--queries", "-", "--index", index_dir, "-k", "2", stdin=queries.read_text()
    )
    assert again.stdout == result.stdout


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"_id": "a", "text": "fine"}\n{"_id": "b", "text": \n', ":2: invalid JSON"),
        ('{"_id": "a", "text": "fine"}\n\n{"_id": "b"}\n', ":3: no query"),
        ('{"text": "no id"}\n', ":1: no query id"),
        ('["a list"]\n', ":1: expected a JSON object"),
        ('{"_id": "a", "text": "fine"}\n{"_id": "b", "text": "caf\xe9"}\n', ":2: not UTF-8"),
        ("\n\n", ": no queries"),
    ],
)
def test_broken_query_line_fails_naming_file_and_line(
    index_dir: Path, tmp_path: Path, content: str, problem: str
) -> None:
    queries = tmp_path / "queries.jsonl"
    queries.write_bytes(content.encode("latin-1"))
    result = run("search", "--queries", queries, "--index", index_dir, "--json", code=1)
    assert_one_error(result.stderr, f"{queries}{problem}")
    assert result.stdout == ""  # the file is checked before any query runs


# -- info and remove ----------------------------------------------------------------------------


def test_info_json(index_dir: Path) -> None:
    info = json.loads(run("info", "--index", index_dir, "--json").stdout)
    assert info["documents"] == 2
    assert info["passages"] == 4
    assert info["vectors"] == 4
    assert info["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert info["chunking"]["max_tokens"] == 254
    # Each part may keep several files ("lexical-terms.npy"); their roles start with its name.
    parts = {role.split(".", 1)[0].split("-", 1)[0] for role in info["files"]}
    assert parts == {"vectors", "store", "lexical", "dedup"}
    for entry in info["files"].values():
        assert entry["bytes"] == (index_dir / entry["name"]).stat().st_size
    assert info["bytes"] == sum(entry["bytes"] for entry in info["files"].values())


def test_info_readable(index_dir: Path) -> None:
    lines = run("info", "--index", index_dir).stdout.splitlines()
    assert "documents: 2" in lines
    assert "passages: 4" in lines
    assert any(line.startswith("file vectors.npy: vectors.") for line in lines)


def test_remove(index_copy: Path) -> None:
    doc_id = search_json(index_copy, "Putin letters", "-k", "1")["hits"][0]["doc_id"]
    result = run("remove", doc_id, "--index", index_copy)
    assert result.stderr.startswith("removed 1 document (")
    info = json.loads(run("info", "--index", index_copy, "--json").stdout)
    assert info["documents"] == 1
    hits = search_json(index_copy, "Putin letters")["hits"]
    assert hits
    assert all(hit["doc_id"] != doc_id for hit in hits)


def test_remove_unknown_id_changes_nothing(index_copy: Path) -> None:
    doc_id = search_json(index_copy, "Putin letters", "-k", "1")["hits"][0]["doc_id"]
    before = snapshot(index_copy)
    result = run("remove", doc_id, "no-such-doc", "--index", index_copy, code=1)
    assert_one_error(result.stderr, "no-such-doc")
    assert snapshot(index_copy) == before


# -- process behaviour --------------------------------------------------------------------------


def test_interrupt_exits_130(index_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from semsearch.index import Index

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Index, "load", interrupted)
    result = run("search", "q", "--index", index_dir, code=130)
    assert_one_error(result.stderr, "interrupted")


def test_version() -> None:
    assert run("--version").stdout.startswith("semsearch ")


def test_help_and_usage_errors_do_not_import_torch() -> None:
    script = (
        "import sys\n"
        "from semsearch.cli import main\n"
        "codes = [main(['--help']), main(['search', '--help']), main(['search', '--index', 'x'])]\n"
        "assert codes == [0, 0, 2], codes\n"
        "heavy = [m for m in ('torch', 'transformers', 'faiss') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], env=ENV, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr


def test_subprocess_search_succeeds(index_dir: Path) -> None:
    proc = run_subprocess("search", "Putin letters", "--index", index_dir, "--json", "-k", "1")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert json.loads(proc.stdout)["hits"][0]["title"] == RUSSIA


def test_subprocess_errors_are_one_line(index_copy: Path, tmp_path: Path) -> None:
    proc = run_subprocess("search", "anything", "--index", tmp_path / "nowhere")
    assert proc.returncode == 1
    assert_one_error(proc.stderr, "does not exist")
    assert proc.stdout == ""

    proc = run_subprocess("index", SAMPLE, "--index", index_copy, "--model", "other/model")
    assert proc.returncode == 1
    assert_one_error(proc.stderr, "other/model")


def test_subprocess_usage_error_exits_2() -> None:
    proc = run_subprocess("search", "--index", "x", "--bogus")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
