"""`mlm`, `clm` and `seq2seq` stream their corpus: from a TFDS set prepared here, and never read
whole."""

import json
import math

import numpy as np
import pytest
import tensorflow_datasets as tfds

from tests.tfds_sets import store_tfds
from tfpretrain.data import text_files
from tfpretrain.data.lm import LINES_PER_CHUNK
from tfpretrain.recipes import clm, mlm, seq2seq
from tfpretrain.settings.clm import CLMRun
from tfpretrain.settings.mlm import MlmRun
from tfpretrain.settings.seq2seq import Seq2SeqRun
from tfpretrain.text.seq2seq import Seq2SeqTokenizer

SUBJECTS = ["the cat", "a dog", "my bird", "the horse"]
VERBS = ["eats", "sees", "likes", "chases"]
OBJECTS = ["the grass", "a ball", "some seeds", "the river"]


def _lines(count: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [
        f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} ." for _ in range(count)
    ]


def _train_both(
    tmp_path, corpus: str, vocab_lines: int = 20000, num_samples: int = 0, **data
) -> tuple[dict, dict]:
    """A few steps of `mlm` and of `clm` on `corpus`; their metrics."""
    quick = dict(verbose=0, xla="off", export=False, **data)
    masked = mlm.run(
        MlmRun(
            corpus=corpus,
            out_dir=str(tmp_path / "mlm"),
            preset="tiny",
            vocab_size=120,
            steps=2,
            epochs=1,
            batch_size=8,
            seq_len=16,
            steps_per_execution=1,
            validation_fraction=0.1,
            vocab_lines=vocab_lines,
            **quick,
        )
    )
    causal = clm.run(
        CLMRun(
            corpus=corpus,
            out_dir=str(tmp_path / "clm"),
            seq_len=16,
            batch_size=4,
            steps=2,
            eval_interval=2,
            num_samples=num_samples,
            sample_length=8,
            **quick,
        )
    )
    return masked, causal


def _train_seq2seq(tmp_path, corpus: str, seq_len: int = 16, **data) -> dict:
    """A few steps of `seq2seq` span corruption on `corpus`, with a one-layer model."""
    return seq2seq.run(
        Seq2SeqRun(
            corpus=corpus,
            out_dir=str(tmp_path / "seq2seq"),
            vocab_size=300,
            seq_len=seq_len,
            batch_size=4,
            steps=2,
            eval_interval=2,
            steps_per_execution=1,
            model_overrides=dict(
                hidden_dim=16,
                num_heads=2,
                intermediate_dim=32,
                num_encoder_layers=1,
                num_decoder_layers=1,
            ),
            verbose=0,
            xla="off",
            export=False,
            **data,
        )
    )


def _streamed_tokens(tokenizer, lines: list[str]) -> int:
    """Tokens of `lines` encoded as `token_windows` encodes them: chunks of lines, each line
    with its newline."""
    chunks = range(0, len(lines), LINES_PER_CHUNK)
    return sum(
        len(tokenizer.encode("".join(line + "\n" for line in lines[i : i + LINES_PER_CHUNK])))
        for i in chunks
    )


@pytest.mark.slow
def test_mlm_and_clm_train_from_a_local_tfds_corpus(tmp_path):
    root = tmp_path / "tensorflow_datasets"
    texts = ["\n".join(_lines(100, seed)) + "\n" for seed in range(3)]  # three documents
    store_tfds(root, "stories", {"text": tfds.features.Text()}, {"train": {"text": texts}})
    masked, causal = _train_both(tmp_path, "tfds:stories", num_samples=1, data_dir=str(root))
    assert masked["steps"] == 2 and math.isfinite(masked["val_loss"])
    assert causal["steps"] == 2 and math.isfinite(causal["val_loss"])
    # Every tenth 17-token window of the 3 x 100 lines, each with its newline, is held out.
    tokens = sum(len(text) for text in texts)
    assert causal["validation_tokens"] == (tokens // 17) // 10 * 17
    assert (tmp_path / "clm" / "samples.txt").read_text().strip()
    vocab = json.loads((tmp_path / "clm" / "tokenizer" / "char_vocabulary.json").read_text())
    assert "\n" in vocab["vocabulary"]  # line breaks are part of the text
    spans = _train_seq2seq(tmp_path, "tfds:stories", data_dir=str(root))
    assert spans["steps"] == 2 and math.isfinite(spans["val_loss"])


@pytest.mark.slow
def test_a_corpus_past_the_tokenizer_samples_trains_without_being_read_whole(tmp_path, monkeypatch):
    def whole(*args, **kwargs):
        raise AssertionError("the corpus was read whole")

    for name in ("read_corpus", "corpus_text", "_decode"):
        monkeypatch.setattr(text_files, name, whole)
    # The vocabularies come from the first 30 lines and the first 600 characters; the words
    # and characters that come later are in none of them, and training streams past them.
    monkeypatch.setattr(clm, "TOKENIZER_SAMPLE_CHARACTERS", 600)
    lines = _lines(30, 0) + [line.replace("cat", "Zebra 7") for line in _lines(270, 1)]
    (tmp_path / "corpus.txt").write_text("\n".join(lines) + "\n")
    masked, causal = _train_both(tmp_path, str(tmp_path / "corpus.txt"), vocab_lines=30)
    assert masked["steps"] == causal["steps"] == 2
    assert math.isfinite(masked["val_loss"]) and math.isfinite(causal["val_loss"])
    assert "zebra" not in (tmp_path / "mlm" / "vocab.txt").read_text().split()
    vocab = json.loads((tmp_path / "clm" / "tokenizer" / "char_vocabulary.json").read_text())
    assert "Z" not in vocab["vocabulary"] and "7" not in vocab["vocabulary"]
    # The characters the sample lacks are left out of the stream.
    kept = sum(c in vocab["vocabulary"] for line in lines for c in line + "\n")
    assert causal["validation_tokens"] == kept // 17 // 10 * 17
    # seq2seq's vocabulary comes from the same first 600 characters, and every tenth window of
    # 16 streamed tokens is held out.
    monkeypatch.setattr(seq2seq, "TOKENIZER_SAMPLE_CHARACTERS", 600)
    spans = _train_seq2seq(tmp_path, str(tmp_path / "corpus.txt"))
    assert spans["steps"] == 2 and math.isfinite(spans["val_loss"])
    tokenizer = Seq2SeqTokenizer.load(tmp_path / "seq2seq")
    pieces = tokenizer.tokenizer._processor
    assert not any("Zebra" in pieces.id_to_piece(i) for i in range(pieces.get_piece_size()))
    assert spans["validation_tokens"] == _streamed_tokens(tokenizer, lines) // 16 // 10 * 16
    assert "train_tokens" not in spans  # it would need the whole corpus read up front


@pytest.mark.slow
def test_seq2seq_refuses_a_corpus_too_short_for_its_windows(tmp_path, monkeypatch):
    def whole(*args, **kwargs):
        raise AssertionError("the corpus was read whole")

    for name in ("read_corpus", "corpus_text", "_decode"):
        monkeypatch.setattr(text_files, name, whole)
    (tmp_path / "corpus.txt").write_text("\n".join(_lines(100, 0)) + "\n")
    # About 800 tokens: fewer than ten windows of 200, so none is held out.
    with pytest.raises(ValueError, match="too short.*--seq-len 200.*smaller --seq-len"):
        _train_seq2seq(tmp_path, str(tmp_path / "corpus.txt"), seq_len=200)
