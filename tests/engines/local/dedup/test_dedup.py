"""Near-duplicates: grouped on ingest, never shown twice, reported by info."""

from __future__ import annotations

import random
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semsearch import Document, Embedder, Filters, Index
from semsearch.cli import indexing as cli_indexing
from semsearch.cli import main
from semsearch.engines.local.dedup import groups as dedup
from semsearch.engines.local.dedup.groups import (
    BANDS,
    NUM_PERM,
    THRESHOLD,
    Duplicates,
    near_duplicate_rows,
    signature,
    signatures,
)

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
    embedder: Embedder, tmp_path: Path, capsys: object, monkeypatch: pytest.MonkeyPatch
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
    assert f'duplicates: {want}, article_groups=[["a", "b"]]\n' in out
    # An archive's thousands of groups are summed up, not printed one by one.
    monkeypatch.setattr(cli_indexing, "ARTICLE_GROUPS_SHOWN", 0)
    assert main(["info", "--index", str(tmp_path)]) == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert f"duplicates: {want}, article_groups=[] (+1 more; --json lists all)\n" in out


def _reference_groups(ids: list[int], sigs: np.ndarray) -> dict[int, int]:
    """The plain definition: per band, each bucket member checked against the bucket's smallest
    id; checked pairs joined transitively; each grouped id mapped to its group's smallest id."""
    parent = {i: i for i in ids}

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    width = NUM_PERM // BANDS
    for band in range(BANDS):
        buckets: dict[bytes, list[int]] = {}
        for pid, sig in zip(ids, sigs, strict=True):
            buckets.setdefault(sig[band * width : (band + 1) * width].tobytes(), []).append(pid)
        for members in buckets.values():
            head = min(members)
            row = ids.index(head)
            for pid in members:
                if pid != head and np.mean(sigs[ids.index(pid)] == sigs[row]) >= THRESHOLD:
                    a, b = root(pid), root(head)
                    parent[max(a, b)] = min(a, b)
    roots = {i: root(i) for i in ids}
    sizes = Counter(roots.values())
    return {i: r for i, r in roots.items() if sizes[r] > 1}


def _synthetic(n: int, seed: int) -> np.ndarray:
    """Signatures with near copies (0-24 changed values of 64: some pass 0.8, some fail) and a
    boilerplate bucket whose members share one band but little else."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 2**32, (n // 4, NUM_PERM), dtype=np.uint32)
    sigs = base[rng.integers(0, len(base), n)]
    changed = rng.random((n, NUM_PERM)).argsort(axis=1) < rng.integers(0, 25, n)[:, None]
    sigs[changed] = rng.integers(0, 2**32, int(changed.sum()), dtype=np.uint32)
    sigs[: n // 5, 4:8] = 7
    return sigs


def test_groups_equal_the_plain_definition() -> None:
    for seed in range(3):
        sigs = _synthetic(400, seed)
        ids = sorted(random.Random(seed).sample(range(1, 10_000), 400))
        rows, roots = near_duplicate_rows(sigs)
        want = _reference_groups(ids, sigs)
        assert len(want) > 50  # the data does hold groups of both kinds
        found = zip(np.asarray(ids)[rows].tolist(), np.asarray(ids)[roots].tolist(), strict=True)
        assert dict(found) == want
        dups = Duplicates()
        order = list(range(400))
        random.Random(seed).shuffle(order)  # added in any order, in several calls
        for part in (order[:100], order[100:]):
            dups.add_signatures([ids[i] for i in part], sigs[part])
        assert dups.groups() == want


def test_signatures_match_datasketch() -> None:
    # A dev dependency (>= 2.0, whose default is the affine32 scheme): never skipped in CI.
    import datasketch

    texts = [STORY, SYNDICATED, OTHER, "", "!!", "one", "two words", "Ünïcode wörds here too"]
    for text in texts:
        minhash = datasketch.MinHash(num_perm=NUM_PERM, seed=1, scheme="affine32")
        words = re.findall(r"\w+", text.lower())
        minhash.update_batch(
            [" ".join(words[i : i + 3]).encode() for i in range(max(1, len(words) - 2))]
        )
        np.testing.assert_array_equal(signature(text), minhash.hashvalues)
    np.testing.assert_array_equal(signatures(texts)[1], signature(SYNDICATED))


def test_buffered_changes_apply_in_call_order() -> None:
    dups = Duplicates()
    dups.add([5, 1, 3], [STORY, OTHER, SYNDICATED])
    dups.remove([3, 99])
    dups.add([3], [STORY])  # re-added after its removal: present again, with its new text
    dups.add([7], [OTHER])
    dups.remove([7])
    dups.add([1], [STORY.upper()])  # replaced
    assert dups.ids().tolist() == [1, 3, 5] and len(dups) == 3
    assert dups.exact(1, 3) and dups.exact(3, 5)
    assert dups.groups() == {1: 1, 3: 1, 5: 1}
    dups.remove([1, 5])
    dups.add([2], [SYNDICATED])
    assert dups.ids().tolist() == [2, 3]
    assert dups.groups() == {2: 2, 3: 2}


def _saved(tmp_path: Path, dups: Duplicates) -> dict[str, Path]:
    files = {}
    for role, write in dups.writers().items():
        assert re.fullmatch(r"dedup(-[a-z0-9]+)*\.(npz|npy)", role)
        files[role] = tmp_path / role
        write(files[role])
    return files


def test_saved_groups_are_read_not_recomputed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dups = Duplicates()
    dups.add([1, 2, 3, 4], [STORY, SYNDICATED, OTHER, STORY.upper()])
    files = _saved(tmp_path, dups)
    monkeypatch.setattr(dedup, "near_duplicate_rows", _fail)
    loaded = Duplicates.open(files)
    assert isinstance(loaded._sigs, np.memmap)  # the matrix stays on disk
    assert loaded.groups() == {1: 1, 2: 1, 4: 1}
    assert loaded.exact(1, 4) and loaded.ids().tolist() == [1, 2, 3, 4]
    loaded.add([5, 6], [OTHER, SYNDICATED])  # larger ids: grouped against the rest only
    assert loaded.groups() == {1: 1, 2: 1, 4: 1, 6: 1, 3: 3, 5: 3}
    loaded.remove([3])  # anything else regroups everything
    with pytest.raises(AssertionError, match="recomputed"):
        loaded.groups()


def _fail(sigs: np.ndarray) -> None:
    raise AssertionError("groups recomputed")


def test_format_3_file_still_opens(tmp_path: Path) -> None:
    ids = np.asarray([1, 2, 3], dtype=np.int64)
    path = tmp_path / "dedup.npz"
    np.savez(path, ids=ids, signatures=signatures([STORY, OTHER, STORY]))
    loaded = Duplicates.open({"dedup.npz": path})
    assert loaded.groups() == {1: 1, 3: 1}
    assert Duplicates.open(_saved(tmp_path, loaded)).groups() == {1: 1, 3: 1}


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"members": None, "reps": None}, "missing arrays members, reps"),
        ({"ids": np.asarray([2, 1]), "members": np.asarray([2, 1])}, "not increasing"),
        ({"members": np.asarray([1, 9]), "reps": np.asarray([1, 1])}, "members are not"),
        ({"members": np.asarray([1, 2]), "reps": np.asarray([1, 2])}, "single member"),
        ({"members": np.asarray([1, 2]), "reps": np.asarray([2, 2])}, "representative"),
        ({"members": np.asarray([1, 2], np.int32)}, "two equal 64-bit"),
        ({"signatures.npy": np.zeros((2, 32), np.uint32)}, r"shape \(2, 32\)"),
        ({"signatures.npy": np.zeros((2, 64), np.int64)}, "type int64"),
    ],
)
def test_bad_files_are_refused(tmp_path: Path, arrays: dict[str, Any], message: str) -> None:
    dups = Duplicates()
    dups.add([1, 2], [STORY, STORY])
    files = _saved(tmp_path, dups)
    with np.load(files["dedup.npz"]) as data:
        saved = {k: data[k] for k in data.files}
    if "signatures.npy" in arrays:
        np.save(files["dedup-signatures.npy"], arrays.pop("signatures.npy"))
    changed = {k: v for k, v in {**saved, **arrays}.items() if v is not None}
    np.savez(files["dedup.npz"], **changed)
    with pytest.raises(ValueError, match=message):
        Duplicates.open(files)


def test_unreadable_files_are_refused(tmp_path: Path) -> None:
    dups = Duplicates()
    dups.add([1], [STORY])
    files = _saved(tmp_path, dups)
    with pytest.raises(ValueError, match=r"no dedup-signatures\.npy"):
        Duplicates.open({"dedup.npz": files["dedup.npz"]})
    files["dedup-signatures.npy"].write_bytes(b"not numpy")
    with pytest.raises(ValueError, match="not a signature matrix"):
        Duplicates.open(files)
    files["dedup.npz"].write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match=r"dedup\.npz: not a duplicate-groups file"):
        Duplicates.open(files)


def test_loaded_index_never_recomputes_groups(
    embedder: Embedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = Index(model=embedder)
    docs = [
        Document(id="a", title="Floods", text=STORY, source="x"),
        Document(id="b", title="Valley floods", text=SYNDICATED, source="y"),
        Document(id="c", title="Rates", text=OTHER, source="z"),
    ]
    index.add(docs)
    index.save(tmp_path)
    monkeypatch.setattr(dedup, "near_duplicate_rows", _fail)
    loaded = Index.load(tmp_path, model=embedder)
    for mode in ("dense", "lexical", "hybrid"):
        hits = loaded.search("floods villages rescue boats", k=3, mode=mode)
        assert len({h.doc_id for h in hits} & {"a", "b"}) == 1, mode
    assert loaded.info()["duplicates"]["article_groups"] == [["a", "b"]]
    loaded.save()  # unchanged: the saved groups are written again, not recomputed
    monkeypatch.undo()
    loaded.add(Document(id="d", title="Floods again", text=STORY.lower(), source="w"))
    assert loaded.info()["duplicates"]["article_groups"] == [["a", "b", "d"]]


def test_groups_after_each_small_add_equal_a_full_computation() -> None:
    """Rows added after the groups are known are grouped against the rest incrementally; after
    every step the groups equal those computed from scratch (removals regroup everything)."""
    sigs = _synthetic(1200, 7)
    ids = np.arange(1, 1201, dtype=np.int64) * 2
    dups = Duplicates()
    dups.add_signatures(ids[:900], sigs[:900])
    assert dups.groups() == _groups_of(ids[:900], sigs[:900])
    done, rng = 900, random.Random(3)
    while done < 1200:
        step = rng.choice([1, 1, 3, 40])
        dups.add_signatures(ids[done : done + step], sigs[done : done + step])
        done = min(done + step, 1200)
        if rng.random() < 0.1:  # a removal: the next read regroups everything
            gone = rng.choice(ids[:done].tolist())
            dups.remove([gone])
            keep = (ids[:done] != gone) & np.isin(ids[:done], dups.ids())
        else:
            keep = np.isin(ids[:done], dups.ids())
        assert dups.groups() == _groups_of(ids[:done][keep], sigs[:done][keep])
    assert dups._bands is not None  # the incremental path did run


def _groups_of(ids: np.ndarray, sigs: np.ndarray) -> dict[int, int]:
    rows, roots = near_duplicate_rows(sigs)
    return dict(zip(ids[rows].tolist(), ids[roots].tolist(), strict=True))


@settings(max_examples=80, deadline=None)
@given(
    ops=st.lists(
        st.tuples(st.booleans(), st.lists(st.integers(0, 40), max_size=8), st.booleans()),
        min_size=1,
        max_size=12,
    )
)
def test_buffered_changes_equal_a_dict_of_rows(ops: list[tuple[bool, list[int], bool]]) -> None:
    """Adds (replacing), removals and reads in any order: the merged ids and signatures equal
    a plain dict of the latest rows, and the groups those of a matrix built afresh."""
    sigs = _synthetic(41 * len(ops), 5)
    dups, model = Duplicates(), dict[int, np.ndarray]()
    for step, (is_add, ids, read) in enumerate(ops):
        if is_add:
            ids = list(dict.fromkeys(ids))
            rows = sigs[[41 * step + i for i in ids]] if ids else sigs[:0]
            dups.add_signatures(ids, rows)
            model.update(zip(ids, rows, strict=True))
        else:
            dups.remove(ids)
            for i in ids:
                model.pop(i, None)
        if read:
            dups.ids()
    want_ids = np.asarray(sorted(model), dtype=np.int64)
    want = np.asarray([model[i] for i in sorted(model)], np.uint32).reshape(-1, NUM_PERM)
    assert dups.ids().tolist() == want_ids.tolist()
    assert dups._sigs.dtype == np.uint32 and np.array_equal(dups._sigs, want)
    assert dups.groups() == _groups_of(want_ids, want)
    assert dups._pending_used == 0


def test_batches_in_id_order_become_one_matrix() -> None:
    """Index.add's pattern (increasing ids, an empty removal after each batch), then more
    batches after a read: the same matrix and groups as one add of everything."""
    sigs = _synthetic(5000, 11)
    dups = Duplicates()
    for s in range(0, 5000, 700):
        dups.add_signatures(np.arange(s, min(s + 700, 5000)), sigs[s : s + 700])
        dups.remove([])
        if s == 2800:
            assert dups.ids().tolist() == list(range(3500))
    assert dups.ids().tolist() == list(range(5000)) and np.array_equal(dups._sigs, sigs)
    assert dups.groups() == _groups_of(np.arange(5000), sigs)
