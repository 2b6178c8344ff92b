"""Near-duplicates: grouped on ingest, never shown twice, reported by info."""

from __future__ import annotations

from pathlib import Path

from semsearch import Document, Embedder, Filters, Index
from semsearch.cli import main
from semsearch.dedup import Duplicates, signature

STORY = (
    "Floods swept through the northern valleys on Tuesday, cutting off dozens of villages and "
    "forcing thousands of families to leave their homes, officials said. Rescue teams used "
    "boats and helicopters to reach people stranded on rooftops as the river kept rising."
)
# The same wire story as another outlet runs it: a dateline added and one word changed.
SYNDICATED = "PESHAWAR (Reuters) - " + STORY.replace("dozens", "scores")
OTHER = (
    "The central bank held interest rates steady on Tuesday, saying inflation was easing but "
    "that it would watch food prices closely before deciding on any cut next quarter."
)


def test_signatures_group_exact_and_near_copies_only() -> None:
    dups = Duplicates()
    dups.add([1, 2, 3, 4], [STORY, SYNDICATED, OTHER, STORY.upper()])
    assert dups.groups() == {1: 1, 2: 1, 4: 1}
    assert dups.exact(1, 4) and not dups.exact(1, 2)
    assert (signature(STORY) == signature(STORY)).all()
    dups.remove([1])
    assert dups.groups() == {2: 2, 4: 2}


def test_duplicates_never_shown_twice_and_reported(
    embedder: Embedder, tmp_path: Path, capsys: object
) -> None:
    index = Index(model=embedder)
    index.add(
        [
            Document(id="a", title="Floods", text=STORY, source="x"),
            Document(id="b", title="Valley floods", text=SYNDICATED, source="y"),
            Document(id="c", title="Rates", text=OTHER, source="z"),
        ]
    )
    for mode in ("dense", "lexical", "hybrid"):
        hits = index.search("floods villages rescue boats", k=3, mode=mode)
        assert len({h.doc_id for h in hits} & {"a", "b"}) == 1, mode
        assert len(index.search("floods rates", k=2, mode=mode)) == 2, mode
    # Filtering out the copy shown first brings the other copy back.
    shown = index.search("floods", k=1)[0].doc_id
    other = {"a", "b"} - {shown}
    assert index.search("floods", k=1, filters=Filters(doc_ids=list(other)))[0].doc_id in other
    report = index.info()["duplicates"]
    assert report["article_groups"] == [["a", "b"]]
    assert report["duplicate_passages"] == 1
    index.save(tmp_path)
    assert Index.load(tmp_path, model=embedder).info()["duplicates"] == report
    assert main(["info", "--index", str(tmp_path)]) == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    want = "passage_groups=1, exact_passage_groups=0, duplicate_passages=1"
    assert f'duplicates: {want}, article_groups=[["a", "b"]]' in out
