"""The checked-in index of the sample articles loads, verifies, and matches a fresh rebuild."""

from __future__ import annotations

from pathlib import Path

from semsearch import Embedder, Index, read_articles

ROOT = Path(__file__).resolve().parents[3]


def test_bundled_index_is_current(sample_file: Path, embedder: Embedder) -> None:
    bundled = Index.load(ROOT / "indexes" / "news", model=embedder)
    fresh = Index(model=embedder)
    fresh.add(read_articles(sample_file.parent))
    # Ids hash the source path, which differs here; compare what a reader sees instead.
    want = {
        d.title: (d.text, [(p.start, p.end) for p in fresh.passages(d.id)])
        for d in fresh.documents()
    }
    got = {
        d.title: (d.text, [(p.start, p.end) for p in bundled.passages(d.id)])
        for d in bundled.documents()
    }
    assert got == want, "rebuild indexes/news: semsearch index samples/news --index indexes/news"
    hit = bundled.search("Putin Sharif letters", k=1)[0]
    assert hit.title.startswith("Local media reports discreet exchange of letters")
