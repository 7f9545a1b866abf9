"""BERT, DistilBERT and RoBERTa folders with their heads in and out, against `transformers`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch  # the dev extra: missing fails, never skips
import transformers  # the dev extra: missing fails, never skips

from tfpretrain import checkpoints
from tfpretrain.checkpoints.bert import load_bert
from tfpretrain.models.bert import BertConfig, BertEncoder, BertMaskedLM
from tfpretrain.models.classifier import TextClassifier

VOCAB, LABELS = 99, ["negative", "neutral", "positive"]
SIZES = {
    "bert": dict(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=40,
    ),
    "roberta": dict(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=42,
        type_vocab_size=1,
        layer_norm_eps=1e-5,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    ),
    "distilbert": dict(
        vocab_size=VOCAB, dim=32, n_layers=2, n_heads=4, hidden_dim=37, max_position_embeddings=40
    ),
}
CLASSES = {
    ("bert", "encoder"): "BertModel",
    ("bert", "mlm"): "BertForMaskedLM",
    ("bert", "pretraining"): "BertForPreTraining",
    ("bert", "classifier"): "BertForSequenceClassification",
    ("roberta", "encoder"): "RobertaModel",
    ("roberta", "mlm"): "RobertaForMaskedLM",
    ("roberta", "classifier"): "RobertaForSequenceClassification",
    ("distilbert", "encoder"): "DistilBertModel",
    ("distilbert", "mlm"): "DistilBertForMaskedLM",
    ("distilbert", "classifier"): "DistilBertForSequenceClassification",
}
CASES = list(CLASSES)


def hf_model(kind: str, head: str, path):
    torch.manual_seed(0)
    config_class = {
        "bert": transformers.BertConfig,
        "roberta": transformers.RobertaConfig,
        "distilbert": transformers.DistilBertConfig,
    }[kind]
    labels = {"id2label": dict(enumerate(LABELS))} if head == "classifier" else {}
    config = config_class(**SIZES[kind], **labels)
    model = getattr(transformers, CLASSES[kind, head])(config)
    with torch.no_grad():  # move norms and biases off ones and zeros so their mapping counts
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    model.save_pretrained(path)
    return getattr(transformers, CLASSES[kind, head]).from_pretrained(path).eval()


def batch(kind: str):
    """Right-padded rows (RoBERTa pads with its pad id 1); BERT gets a second segment."""
    rng = np.random.RandomState(0)
    ids = rng.randint(3, VOCAB, size=(3, 10)).astype(np.int32)
    mask = np.ones_like(ids)
    mask[1, 6:] = 0
    mask[2, 3:] = 0
    ids[mask == 0] = 1 if kind == "roberta" else 0
    segments = np.zeros_like(ids)
    if kind == "bert":
        segments[0, 5:] = 1
        segments[1, 4:6] = 1
    return ids, segments, mask


def hf_outputs(model, kind, ids, segments, mask) -> dict:
    inputs = {
        "input_ids": torch.tensor(ids, dtype=torch.long),
        "attention_mask": torch.tensor(mask, dtype=torch.long),
    }
    if kind == "bert":
        inputs["token_type_ids"] = torch.tensor(segments, dtype=torch.long)
    with torch.no_grad():
        out = model(**inputs)
    if hasattr(out, "last_hidden_state"):
        result = {"sequence": out.last_hidden_state.numpy()}
        if getattr(out, "pooler_output", None) is not None:
            result["pooled"] = out.pooler_output.numpy()
        return result
    if hasattr(out, "prediction_logits"):
        return {"mlm": out.prediction_logits.numpy(), "nsp": out.seq_relationship_logits.numpy()}
    return {"logits": out.logits.numpy()}


def our_outputs(model, ids, segments, mask) -> dict:
    inputs = {"token_ids": ids, "segment_ids": segments, "padding_mask": mask}
    if isinstance(model, BertMaskedLM):
        positions = np.tile(np.arange(ids.shape[1], dtype=np.int32), (len(ids), 1))
        out = {k: np.asarray(v) for k, v in model({**inputs, "mask_positions": positions}).items()}
        return {**out, "logits": out["mlm"]}  # transformers' name for a masked LM's output
    if isinstance(model, TextClassifier):
        return {"logits": np.asarray(model(inputs))}
    out = model(inputs)
    return {
        "sequence": np.asarray(out["sequence_output"]),
        "pooled": np.asarray(out["pooled_output"]),
    }


def max_diffs(ours: dict, theirs: dict, mask) -> dict:
    diffs = {}
    for key, value in theirs.items():
        diff = np.abs(ours[key] - value)
        diffs[key] = float((diff[mask.astype(bool)] if diff.ndim == 3 else diff).max())
    return diffs


@pytest.mark.parametrize("kind,head", CASES)
def test_outputs_match_transformers_with_padding(tmp_path, kind, head):
    reference = hf_model(kind, head, tmp_path)
    model = checkpoints.load(tmp_path, dropout=0.0)
    expected = {
        "encoder": BertEncoder,
        "mlm": BertMaskedLM,
        "pretraining": BertMaskedLM,
        "classifier": TextClassifier,
    }[head]
    assert isinstance(model, expected)
    if head == "classifier":
        assert model.label_names == LABELS
    ids, segments, mask = batch(kind)
    diffs = max_diffs(
        our_outputs(model, ids, segments, mask),
        hf_outputs(reference, kind, ids, segments, mask),
        mask,
    )
    assert max(diffs.values()) <= 1e-4, diffs


@pytest.mark.parametrize("kind,head", CASES)
def test_hf_folder_round_trips_through_tfpretrain(tmp_path, kind, head):
    reference = hf_model(kind, head, tmp_path / "a")
    checkpoints.save_pretrained(load_bert(tmp_path / "a"), tmp_path / "b")
    written = json.loads((tmp_path / "b" / "config.json").read_text())
    assert written["architectures"] == [CLASSES[kind, head]]
    again = getattr(transformers, CLASSES[kind, head]).from_pretrained(tmp_path / "b").eval()
    if head == "classifier":
        assert again.config.id2label == dict(enumerate(LABELS))
    ids, segments, mask = batch(kind)
    diffs = max_diffs(
        hf_outputs(again, kind, ids, segments, mask),
        hf_outputs(reference, kind, ids, segments, mask),
        mask,
    )
    assert max(diffs.values()) <= 1e-5, diffs


def test_classifier_trained_here_loads_in_transformers(tmp_path):
    config = BertConfig(
        vocabulary_size=VOCAB,
        num_layers=2,
        hidden_dim=32,
        num_heads=4,
        intermediate_dim=37,
        max_sequence_length=40,
        dropout=0.0,
    )
    model = TextClassifier(BertEncoder(config), 3, label_names=LABELS, dropout=0.0)
    rng = np.random.RandomState(1)
    for w in model.weights:
        w.assign(w.numpy() + rng.normal(0, 0.1, w.shape).astype("float32"))
    checkpoints.save_pretrained(model, tmp_path)
    reference = transformers.BertForSequenceClassification.from_pretrained(tmp_path).eval()
    assert reference.config.id2label == dict(enumerate(LABELS))
    ids, segments, mask = batch("bert")
    diffs = max_diffs(
        our_outputs(model, ids, segments, mask),
        hf_outputs(reference, "bert", ids, segments, mask),
        mask,
    )
    assert diffs["logits"] <= 1e-4
    again = checkpoints.load(tmp_path)
    np.testing.assert_allclose(
        our_outputs(again, ids, segments, mask)["logits"],
        our_outputs(model, ids, segments, mask)["logits"],
        atol=1e-5,
    )


def test_encoder_from_pretrained_reads_a_masked_lm_folder(tmp_path):
    reference = hf_model("bert", "mlm", tmp_path)
    encoder = BertEncoder.from_pretrained(tmp_path, dropout=0.0)
    ids, segments, mask = batch("bert")
    with torch.no_grad():
        hidden = reference.bert(
            input_ids=torch.tensor(ids, dtype=torch.long),
            token_type_ids=torch.tensor(segments, dtype=torch.long),
            attention_mask=torch.tensor(mask, dtype=torch.long),
        )[0].numpy()
    ours = np.asarray(
        encoder({"token_ids": ids, "segment_ids": segments, "padding_mask": mask})[
            "sequence_output"
        ]
    )
    assert np.abs(ours - hidden)[mask.astype(bool)].max() <= 1e-4


def test_errors(tmp_path):
    hf_model("bert", "classifier", tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["vocab_size"] = 120
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        ValueError,
        match=r"model.safetensors: bert.embeddings.word_embeddings"
        r".weight has 99 rows but config.json's vocab_size is 120",
    ):
        checkpoints.load(tmp_path)
    with pytest.raises(FileNotFoundError, match="hf download bert-base-uncased"):
        BertEncoder.from_pretrained("bert-base-uncased")
    with pytest.raises(ValueError, match="mean pooling"):
        checkpoints.save_pretrained(
            TextClassifier(
                BertEncoder(BertConfig.preset("tiny", vocabulary_size=VOCAB)), 2, pooling="mean"
            ),
            tmp_path / "out",
        )


@pytest.mark.parametrize(
    "cls, head", [(BertMaskedLM, "pretraining"), (TextClassifier, "classifier")]
)
def test_model_classes_read_and_write_folders(tmp_path, cls, head):
    reference = hf_model("bert", head, tmp_path / "a")
    model = cls.from_pretrained(tmp_path / "a", dropout=0.0)
    assert type(model) is cls
    if cls is TextClassifier:
        assert model.label_names == LABELS
    else:  # a pre-training folder gives its masked LM; the NSP head is left out
        assert not model.include_nsp
    model.save_pretrained(tmp_path / "b")
    saved = json.loads((tmp_path / "b" / "config.json").read_text())
    expected = "BertForMaskedLM" if cls is BertMaskedLM else "BertForSequenceClassification"
    assert saved["architectures"] == [expected]
    again = getattr(transformers, expected).from_pretrained(tmp_path / "b").eval()
    ids, segments, mask = batch("bert")
    ours, theirs = (hf_outputs(m, "bert", ids, segments, mask) for m in (again, reference))
    theirs = theirs["logits" if cls is TextClassifier else "mlm"]
    rows = mask.astype(bool) if cls is BertMaskedLM else slice(None)
    assert np.abs(ours["logits"] - theirs)[rows].max() <= 1e-5
