"""Cross-encoder reranking after fusion, with a tiny randomly initialised model (no download)."""

from __future__ import annotations

from pathlib import Path

import pytest

from semsearch import Document, Embedder, Index, SemsearchError
from semsearch.retrieval.rerank import Reranker

WORDS = [
    "oil",
    "prices",
    "rose",
    "rain",
    "flooded",
    "karachi",
    "voters",
    "lahore",
    "crude",
    "monday",
    "the",
    "in",
]


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-cross-encoder")
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(WORDS) + 5,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        num_labels=1,
    )
    BertForSequenceClassification(config).save_pretrained(folder)
    return folder


def test_reranker_scores_pairs(tiny_cross_encoder: Path) -> None:
    reranker = Reranker(str(tiny_cross_encoder))
    scores = reranker.scores("oil prices", ["crude oil rose", "rain in karachi"])
    assert len(scores) == 2 and all(isinstance(s, float) for s in scores)
    assert scores == reranker.scores("oil prices", ["crude oil rose", "rain in karachi"])
    assert reranker.scores("oil", []) == []


def test_search_reorders_fused_hits_by_the_reranker(
    tiny_cross_encoder: Path, embedder: Embedder
) -> None:
    index = Index(model=embedder)
    index.add(
        [
            Document(id="oil", text="Oil prices rose on Monday."),
            Document(id="rain", text="Rain flooded Karachi."),
            Document(id="vote", text="Voters in Lahore."),
        ]
    )
    reranker = Reranker(str(tiny_cross_encoder), depth=3)
    plain = index.search("oil prices", k=3)
    hits = index.search("oil prices", k=2, reranker=reranker)
    assert len(hits) == 2 and [h.rank for h in hits] == [1, 2]
    scores = reranker.scores("oil prices", [h.text for h in plain])
    best = sorted(range(3), key=lambda i: -scores[i])[:2]
    assert [h.doc_id for h in hits] == [plain[i].doc_id for i in best]
    assert [h.score for h in hits] == sorted((scores[i] for i in best), reverse=True)


def test_unknown_reranker_fails_with_one_message(tmp_path: Path) -> None:
    with pytest.raises(SemsearchError, match="cannot load reranker"):
        _ = Reranker(str(tmp_path / "missing")).model
    with pytest.raises(ValueError, match="depth"):
        Reranker("x", depth=0)
