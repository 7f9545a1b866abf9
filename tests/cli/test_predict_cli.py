import io
import json

import numpy as np
import pytest
import tensorflow as tf

from tfpretrain.cli.main import main
from tfpretrain.export import export_autoencoder
from tfpretrain.export.text import export_text_classifier
from tfpretrain.models import autoencoder_layer, build_autoencoder
from tfpretrain.models.bert import BertConfig, BertEncoder
from tfpretrain.models.classifier import TextClassifier
from tfpretrain.settings.predict import PredictRun
from tfpretrain.text import RESERVED_TOKENS, WordPieceTokenizer


def _predict(capsys, *args: str) -> tuple[int, list[dict], str]:
    code = main(["predict", *args])
    captured = capsys.readouterr()
    return code, [json.loads(line) for line in captured.out.splitlines()], captured.err


def test_predict_runs_an_autoencoder_on_npz_and_png(tmp_path, capsys):
    model = build_autoencoder()
    export_autoencoder(model, tmp_path / "run" / "saved_model")
    pixels = np.random.default_rng(0).integers(0, 256, size=(3, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "digits.npz", images=pixels)
    x = pixels[..., None].astype("float32") / 255.0
    code, rows, _ = _predict(
        capsys,
        "--model",
        str(tmp_path / "run"),
        "--input",
        str(tmp_path / "digits.npz"),
        "--batch-size",
        "2",
    )
    assert code == 0 and [r["input"] for r in rows] == [
        f"{tmp_path}/digits.npz[{i}]" for i in range(3)
    ]
    recon = model(x).numpy()
    np.testing.assert_allclose(
        [r["reconstruction_mse"] for r in rows], ((recon - x) ** 2).mean(axis=(1, 2, 3)), atol=1e-5
    )
    np.testing.assert_allclose(
        [r["reconstruction_max"] for r in rows], recon.max(axis=(1, 2, 3)), atol=1e-5
    )

    png = tmp_path / "one.png"
    png.write_bytes(tf.io.encode_png(pixels[1][..., None]).numpy())
    code, rows, _ = _predict(
        capsys,
        "--model",
        str(tmp_path / "run" / "saved_model" / "1"),
        "--input",
        str(png),
        "--signature",
        "encode",
    )
    codes = autoencoder_layer(model).encoder(x[1:2]).numpy()
    assert code == 0 and len(rows) == 1
    np.testing.assert_allclose(rows[0]["codes"], codes[0], atol=1e-5)


def test_predict_reports_the_signature_refusal(tmp_path, capsys):
    export_autoencoder(build_autoencoder(), tmp_path / "saved_model")
    np.savez(tmp_path / "big.npz", images=np.zeros((2, 32, 32, 1), "float32"))
    code, rows, err = _predict(
        capsys, "--model", str(tmp_path / "saved_model"), "--input", str(tmp_path / "big.npz")
    )
    assert code == 2 and rows == []
    assert "images must have shape [batch, 28, 28, 1]" in err and "[2 32 32 1]" in err
    code, _, err = _predict(capsys, "--model", str(tmp_path / "nowhere"), "--input", "x.npz")
    assert code == 2 and "No SavedModel at" in err


def test_predict_classifies_lines_from_stdin(tmp_path, capsys, monkeypatch):
    vocab = list(RESERVED_TOKENS) + ["a", "great", "film", "dull", "plot", "##s", "not", "!"]
    tokenizer = WordPieceTokenizer(vocab)
    encoder = BertEncoder(
        BertConfig.preset("tiny", vocabulary_size=len(vocab), max_sequence_length=16)
    )
    model = TextClassifier(encoder, num_classes=2)
    export_text_classifier(
        model, tokenizer, tmp_path / "saved_model", 12, label_names=["negative", "positive"]
    )
    texts = ["A great film!", "dull plots", "", "not a plot"]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(texts) + "\n"))
    code, rows, _ = _predict(
        capsys, "--model", str(tmp_path / "saved_model"), "--input", "-", "--batch-size", "3"
    )
    expected = tf.nn.softmax(model(tokenizer.pack(tf.constant(texts), 12))).numpy()
    assert code == 0 and [r["text"] for r in rows] == texts
    got = np.array([[r["probabilities"]["negative"], r["probabilities"]["positive"]] for r in rows])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert [r["label"] for r in rows] == [["negative", "positive"][i] for i in expected.argmax(-1)]


def test_predict_settings_are_checked():
    with pytest.raises(ValueError, match="--batch-size must be > 0"):
        PredictRun(model="m", input="-", batch_size=0)
    with pytest.raises(ValueError, match=r"--top-p must be in \(0.0, 1.0\]"):
        PredictRun(model="m", input="-", top_p=0.0)


def test_predict_runs_a_masked_lm_export(tmp_path, capsys):
    from tfpretrain.export.mlm import export_mlm
    from tfpretrain.models.bert import BertMaskedLM

    vocab = list(RESERVED_TOKENS) + ["a", "great", "film", "dull", "plot", "##s", "not", "!"]
    tokenizer = WordPieceTokenizer(vocab)
    model = BertMaskedLM(
        BertEncoder(BertConfig.preset("tiny", vocabulary_size=len(vocab), max_sequence_length=16))
    )
    export_mlm(model, tokenizer, tmp_path / "saved_model", 12)
    texts = ["a great film!", "dull [MASK] plots"]
    (tmp_path / "texts.txt").write_text("\n".join(texts) + "\n")
    code, rows, _ = _predict(
        capsys, "--model", str(tmp_path), "--input", str(tmp_path / "texts.txt")
    )
    pooled = model.encoder(tokenizer.pack(tf.constant(texts), 12))["pooled_output"].numpy()
    assert code == 0 and [r["text"] for r in rows] == texts
    np.testing.assert_allclose([r["pooled"] for r in rows], pooled, atol=1e-5)

    code, rows, _ = _predict(
        capsys,
        "--model",
        str(tmp_path),
        "--input",
        str(tmp_path / "texts.txt"),
        "--signature",
        "fill_mask",
        "--top-k",
        "2",
    )
    assert code == 2 and "Every text needs at least one [MASK]" in _  # the first has none
    (tmp_path / "masked.txt").write_text("dull [MASK] plots\n[MASK] film [MASK]\n")
    code, rows, _ = _predict(
        capsys,
        "--model",
        str(tmp_path),
        "--input",
        str(tmp_path / "masked.txt"),
        "--signature",
        "fill_mask",
        "--top-k",
        "2",
    )
    assert code == 0 and [len(r["masks"]) for r in rows] == [1, 2]
    pieces = [
        tokenizer.cls_id,
        *tokenizer.tokenize("dull").numpy(),
        tokenizer.mask_id,
        *tokenizer.tokenize("plots").numpy(),
        tokenizer.sep_id,
    ]
    ids = np.array([pieces + [0] * (12 - len(pieces))], "int32")
    position = 2  # [CLS] dull [MASK]
    inputs = {
        "token_ids": ids,
        "segment_ids": 0 * ids,
        "padding_mask": (ids > 0).astype("int32"),
        "mask_positions": np.array([[position]], "int32"),
    }
    probabilities = tf.nn.softmax(model(inputs)["mlm"])[0, 0].numpy()
    best = np.argsort(-probabilities)[:2]
    assert rows[0]["masks"][0]["tokens"] == [vocab[i] for i in best]
    np.testing.assert_allclose(rows[0]["masks"][0]["probabilities"], probabilities[best], atol=1e-5)


def test_predict_runs_a_gpt_export(tmp_path, capsys):
    from tfpretrain.export.generate import export_generate
    from tfpretrain.models.gpt import GPTConfig, TextGenerator, build_gpt
    from tfpretrain.text import CharTokenizer

    tokenizer = CharTokenizer.from_text("ROMEO: JULIET what light")
    model = build_gpt(
        GPTConfig(
            vocabulary_size=tokenizer.vocabulary_size,
            sequence_length=32,
            num_layers=1,
            num_heads=2,
            hidden_dim=16,
        )
    )
    export_generate(model, tokenizer, tmp_path / "saved_model")
    (tmp_path / "prompts.txt").write_text("ROMEO:\nJULIET\n")
    code, rows, _ = _predict(
        capsys,
        "--model",
        str(tmp_path),
        "--input",
        str(tmp_path / "prompts.txt"),
        "--max-length",
        "12",
    )
    expected = TextGenerator(model, tokenizer).generate(["ROMEO:", "JULIET"], 12, greedy=True)
    assert code == 0 and [r["completions"] for r in rows] == expected
    code, rows, err = _predict(
        capsys,
        "--model",
        str(tmp_path),
        "--input",
        str(tmp_path / "prompts.txt"),
        "--max-length",
        "40",
    )
    assert code == 2 and "must be at most the context of the model, 32 tokens" in err
