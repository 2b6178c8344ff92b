"""Indexing on Ray: a local 2-CPU Ray on 127.0.0.1 with the bundled model gives the index the
in-process path gives, skips or refuses bad files as it does, survives a dying worker, and
streams into a Milvus index from the CLI."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from semsearch import Index, InputError, SkippedInputWarning, read_articles
from semsearch.cli import cli
from semsearch.distributed.ray_indexing import FAIL_ONCE
from semsearch.embeddings.embedder import Embedder
from semsearch.retrieval import Mode

ray = pytest.importorskip("ray")

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples" / "news"


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One local Ray for the module, listening on loopback only. Its workers inherit a
    FAIL_ONCE marker: the first embedding actor dies once, and Ray must restart it."""
    marker = tmp_path_factory.mktemp("ray") / "failed-once"
    os.environ[FAIL_ONCE] = str(marker)
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        _node_ip_address="127.0.0.1",
    )
    try:
        yield marker
    finally:
        ray.shutdown()
        os.environ.pop(FAIL_ONCE, None)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    for f in SAMPLES.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    for i in range(6):
        (folder / f"story{i}.txt").write_text(
            f"Harbour story {i}\n\nThe harbour reopened on day {i}. Ships queued at the gates. "
            f"Dockers counted {i * 7} vessels before noon.",
            encoding="utf-8",
        )
    lines = [
        json.dumps({"id": f"j{i}", "title": "Wire", "text": f"Wire copy {i}."}) for i in (1, 2)
    ]
    (folder / "wire.jsonl").write_text("\n".join(lines), encoding="utf-8")
    return folder


def snapshot(index: Index) -> list[tuple[str, str, list[tuple[int, int, str]], np.ndarray]]:
    context = index.answer_context()
    out = []
    for doc in sorted(index.documents(), key=lambda d: d.id):
        held = index.passages(doc.id)
        vectors = context.passage_vectors(np.asarray([p.id for p in held], np.int64))
        out.append((doc.id, doc.text, [(p.start, p.end, p.text) for p in held], vectors))
    return out


def test_ray_gives_the_index_the_in_process_path_gives(
    local_ray: Path, corpus: Path, embedder: Embedder
) -> None:
    on_ray, here = Index(model=embedder), Index(model=embedder)
    report = on_ray.add_with_ray([corpus], workers=2)
    assert local_ray.exists()  # an actor died on its first batch and was restarted
    expected = here.add(read_articles([corpus]))
    assert report == expected and report.added == 10
    ours, theirs = snapshot(on_ray), snapshot(here)
    assert [s[:3] for s in ours] == [s[:3] for s in theirs]
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a[3], b[3], atol=1e-5)
    modes: tuple[Mode, ...] = ("dense", "lexical", "hybrid")
    for mode in modes:
        found = [(h.doc_id, h.start) for h in on_ray.search("ships at gates", k=4, mode=mode)]
        assert found == [(h.doc_id, h.start) for h in here.search("ships at gates", k=4, mode=mode)]
    again = on_ray.add_with_ray([corpus])
    assert again.unchanged == 10 and again.added == 0


def test_bad_files_are_skipped_or_refused_as_in_process(
    local_ray: Path, corpus: Path, embedder: Embedder
) -> None:
    (corpus / "broken.jsonl").write_text('{"id": "ok", "text": "fine"}\n{broken', encoding="utf-8")
    index = Index(model=embedder)
    with pytest.warns(SkippedInputWarning, match=r"broken\.jsonl"):
        report = index.add_with_ray([corpus])
    assert report.added == 10 and "ok" not in index
    before = snapshot(index)
    (corpus / "story0.txt").write_text("Changed\n\nThe harbour closed again.", encoding="utf-8")
    with pytest.raises(InputError, match=r"broken\.jsonl"):
        index.add_with_ray([corpus], strict=True)
    assert [s[:3] for s in snapshot(index)] == [s[:3] for s in before]  # as it was


def test_cli_indexes_on_ray_into_milvus(local_ray: Path, corpus: Path, tmp_path: Path) -> None:
    pytest.importorskip("milvus_lite")
    location = f"milvus://{tmp_path}/ray.db"
    result = CliRunner().invoke(cli, ["index", str(corpus), "--index", location, "--ray"])
    assert result.exit_code == 0, (result.output, result.exception)
    assert "10 new" in result.output
    hits = Index.load(location).search("vessels before noon", k=3)
    assert hits and all(h.title.startswith("Harbour story") for h in hits)
