"""BM25's flat arrays: matrix builder against bm25s, bulk tokenising, queued changes, bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semsearch.engines.local.lexical import matrix as bm25_matrix
from semsearch.engines.local.lexical.index import K1, B, LexicalIndex, Tokenizer

WORDS = ["oil", "prices", "rose", "Vienna", "cats", "dog", "the", "and", "ΣΟΦΙΑΣ", "naïve", "x"]


@settings(max_examples=60, deadline=None)
@given(
    docs=st.lists(st.lists(st.integers(0, 24), max_size=30), min_size=1, max_size=40),
    extra_vocab=st.integers(0, 5),
    queries=st.lists(st.lists(st.integers(0, 29), min_size=1, max_size=6), min_size=1),
)
def test_matrix_equals_bm25s_own_build(
    docs: list[list[int]], extra_vocab: int, queries: list[list[int]]
) -> None:
    """Empty passages and terms in no passage included (the vocabulary is wider than the docs)."""
    import bm25s

    vocab = 25 + extra_vocab
    lengths = np.asarray([len(d) for d in docs], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    flat = np.asarray([t for d in docs for t in d], dtype=np.int32)
    ours = bm25s.BM25(k1=K1, b=B)
    ours.scores = bm25_matrix.build(flat, offsets, vocab, k1=K1, b=B)
    ours.nonoccurrence_array = None
    if not len(flat):  # bm25s cannot build a matrix of no entries
        assert len(ours.scores["data"]) == 0 and ours.scores["indptr"].tolist() == [0] * (vocab + 1)
        return
    ref = bm25s.BM25(k1=K1, b=B)
    ref.scores = ref.build_index_from_ids(list(range(vocab)), docs, show_progress=False)
    for key in ("data", "indices", "indptr"):
        assert ours.scores[key].dtype == ref.scores[key].dtype, key
    assert np.array_equal(ours.scores["indices"], ref.scores["indices"])
    assert np.array_equal(ours.scores["indptr"], ref.scores["indptr"])
    assert np.allclose(ours.scores["data"], ref.scores["data"], rtol=1e-6)
    assert ours.scores["num_docs"] == ref.scores["num_docs"] == len(docs)
    for query in [*queries, list(range(vocab))]:
        query = [t for t in query if t < vocab] or [0]
        got, want = ours.get_scores_from_ids(query), ref.get_scores_from_ids(query)
        assert np.allclose(got, want, rtol=1e-5, atol=1e-7), query


def test_matrix_counts_a_term_repeated_past_a_byte_and_two() -> None:
    import bm25s

    for repeats in (300, 70_000):  # the count type widens with the longest passage
        docs = [[1] * repeats + [2, 3], [2] * 5, [], [3, 4, 4]]
        flat = np.asarray([t for d in docs for t in d], dtype=np.int32)
        offsets = np.concatenate([[0], np.cumsum([len(d) for d in docs])]).astype(np.int64)
        ours = bm25_matrix.build(flat, offsets, 6, k1=K1, b=B)
        ref = bm25s.BM25(k1=K1, b=B).build_index_from_ids(list(range(6)), docs, False)
        for key in ("data", "indices", "indptr"):
            assert np.allclose(ours[key], ref[key], rtol=1e-6), (repeats, key)


text = st.lists(
    st.one_of(
        st.sampled_from([*WORDS, "QQSEPQQ", "qqsepqq", "Σ", "İstanbul"]), st.text(max_size=8)
    ),
    max_size=25,
).map(" ".join)


@settings(max_examples=60, deadline=None)
@given(texts=st.lists(text, max_size=12))
def test_bulk_encoding_equals_the_tokenizer(texts: list[str]) -> None:
    index = LexicalIndex()
    lengths, flat = index.encode(texts)
    names = list(index.vocab)
    terms = np.split(flat, np.cumsum(lengths)[:-1]) if texts else []
    tok = Tokenizer()
    assert [[names[i] for i in t] for t in terms] == [tok.terms(t) for t in texts]


def test_bulk_encoding_matches_bm25s_tokenize_in_batches() -> None:
    import bm25s
    import Stemmer

    import semsearch.engines.local.lexical.index as lexical

    texts = [f"{w} story number {i}, with cats and Dogs in Vienna" for i, w in enumerate(WORDS)] * 3
    old, lexical._BATCH = lexical._BATCH, 4  # several batches, new words in each
    try:
        index = LexicalIndex()
        lengths, flat = index.encode(texts)
    finally:
        lexical._BATCH = old
    names = list(index.vocab)
    ours = [[names[i] for i in t] for t in np.split(flat, np.cumsum(lengths)[:-1])]
    stemmer = Stemmer.Stemmer("english")
    want = bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, return_ids=False)
    assert ours == [list(w) for w in want]


ops = st.lists(
    st.tuples(st.booleans(), st.lists(st.integers(0, 12), max_size=5)), min_size=1, max_size=12
)


@settings(max_examples=60, deadline=None)
@given(ops=ops, search_between=st.booleans())
def test_queued_changes_equal_a_dict_of_passages(
    ops: list[tuple[bool, list[int]]], search_between: bool
) -> None:
    """Adds (replacing) and removes in any order, merged late, equal an index built afresh."""
    index, model = LexicalIndex(), {}
    for step, (is_add, ids) in enumerate(ops):
        if is_add:
            texts = [f"{WORDS[(i + step) % len(WORDS)]} {WORDS[step % 7]} tale" for i in ids]
            index.add(ids, texts)
            model.update(zip(ids, texts, strict=True))
        else:
            index.remove(ids)
            for i in ids:
                model.pop(i, None)
        if search_between:
            index.scores("oil tale")
    fresh = LexicalIndex()
    fresh.add(sorted(model), [model[i] for i in sorted(model)])
    assert index.ids().tolist() == sorted(model)
    for query in ["oil", "tale cats", "Vienna prices dog"]:
        assert np.allclose(index.scores(query)[1], fresh.scores(query)[1], rtol=1e-6)
        every = np.asarray([*sorted(model), 99], dtype=np.int64)
        assert np.allclose(index.proximity(query, every), fresh.proximity(query, every))


@settings(max_examples=60, deadline=None)
@given(
    batches=st.lists(st.lists(text, max_size=6), min_size=1, max_size=8),
    merges=st.lists(st.booleans(), min_size=8, max_size=8),
)
def test_appended_batches_equal_one_add(batches: list[list[str]], merges: list[bool]) -> None:
    """Index.add's pattern (increasing ids, an empty removal after each batch, reads between
    some batches) merges by appending: the arrays equal those of one add of everything."""
    index, first = LexicalIndex(), 0
    for batch, merge in zip(batches, merges, strict=False):
        index.add(range(first, first + len(batch)), batch)
        index.remove([])
        first += len(batch)
        if merge:
            index.ids()
    texts = [t for batch in batches for t in batch]
    fresh = LexicalIndex()
    fresh.add(range(len(texts)), texts)
    assert index.ids().tolist() == fresh.ids().tolist() == list(range(len(texts)))
    assert index.vocab == fresh.vocab
    assert index._offsets.tolist() == fresh._offsets.tolist()
    assert index._flat.dtype == np.int32 and index._flat.tolist() == fresh._flat.tolist()
    assert not len(index._tail)
    for key in ("data", "indices", "indptr"):
        assert index._matrix().scores[key].tobytes() == fresh._matrix().scores[key].tobytes()


def test_queued_terms_grow_in_one_array() -> None:
    index = LexicalIndex()
    for n in range(300):
        index.add([n], [f"oil story {n} in Vienna {'cats ' * (n % 7)}"])
    assert len(index._queue) == 300 and index._tail_used <= len(index._tail)
    index.remove([3])  # not an append: the general merge
    assert index.ids().tolist() == [n for n in range(300) if n != 3]
    assert sorted(index.search("cats", 400)[0].tolist()) == [
        n for n in range(300) if n % 7 and n != 3
    ]


def saved(tmp_path: Path) -> dict[str, Path]:
    index = LexicalIndex()
    index.add([3, 5, 8], ["Oil prices rose", "Cats and dogs", "Vienna talks on oil"])
    files = {}
    for role, write in index.writers().items():
        files[role] = tmp_path / role
        write(files[role])
    return files


def rewrite(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, array)


def change(path: Path, at: int, value: int) -> None:
    array = np.load(path)
    array[at] = value
    rewrite(path, array)


def rewrite_main(path: Path, **changes: np.ndarray) -> None:
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays.update(changes)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: f["lexical-terms.npy"].write_bytes(b"not numpy"), "lexical-terms.npy"),
        (lambda f: rewrite(f["lexical-terms.npy"], np.zeros(3, np.int64)), "1-D int32"),
        (lambda f: change(f["lexical-terms.npy"], 0, 10**6), "vocabulary"),
        (lambda f: change(f["lexical-terms.npy"], 0, -1), "vocabulary"),
        (lambda f: rewrite(f["lexical-terms.npy"], np.zeros(2, np.int32)), "do not add up"),
        (lambda f: rewrite(f["lexical-bm25-indptr.npy"], np.zeros(3, np.int64)), "shapes"),
        (lambda f: change(f["lexical-bm25-indices.npy"], 0, 3), "rows"),
        (lambda f: f["lexical.npz"].write_bytes(b"PK broken"), "lexical.npz"),
        (lambda f: rewrite_main(f["lexical.npz"], num_docs=np.asarray(4)), "document count"),
        (lambda f: rewrite_main(f["lexical.npz"], ids=np.asarray([5, 3, 8])), "sorted"),
        (lambda f: rewrite_main(f["lexical.npz"], vocab=np.frombuffer(b"{}", np.uint8)), "JSON"),
        (lambda f: f.pop("lexical-bm25-data.npy"), "lexical-bm25-data.npy"),
    ],
)
def test_bad_files_are_refused_with_a_reason(tmp_path: Path, damage, message: str) -> None:  # type: ignore[no-untyped-def]
    files = saved(tmp_path)
    damage(files)
    with pytest.raises(ValueError, match=message):
        LexicalIndex.open(files)


def test_non_monotone_column_pointers_are_refused(tmp_path: Path) -> None:
    files = saved(tmp_path)
    indptr = np.load(files["lexical-bm25-indptr.npy"])
    indptr[1], indptr[2] = indptr[2] + 1, indptr[1]
    rewrite(files["lexical-bm25-indptr.npy"], indptr)
    with pytest.raises(ValueError, match="monotone"):
        LexicalIndex.open(files)


def test_a_matrix_saved_with_other_parameters_is_rebuilt(tmp_path: Path) -> None:
    files = saved(tmp_path)
    rewrite_main(files["lexical.npz"], params=np.asarray([1.2, 0.75]))
    loaded = LexicalIndex.open(files)
    assert loaded._bm25 is None
    assert sorted(loaded.search("oil", 5)[0].tolist()) == [3, 8]


def test_removing_nothing_keeps_the_arrays_and_the_matrix() -> None:
    index = LexicalIndex()
    index.add([1, 2], ["oil prices rose", "cats and dogs"])
    matrix, flat = index._matrix(), index._flat
    index.remove([])
    assert index._matrix() is matrix and index._flat is flat
    index.add([3], ["oil in Vienna"])
    index.remove(np.zeros(0, np.int64))
    assert index.ids().tolist() == [1, 2, 3] and sorted(index.search("oil", 5)[0]) == [1, 3]
