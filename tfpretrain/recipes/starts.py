"""Fine-tuning starts beyond BERT encoders: a `tfpretrain clm` run (a head on the GPT) and a
classifier run (`finetune` or `distill`: its encoder, with a new head). `finetune.INIT_KINDS`
lists them."""

from __future__ import annotations

from pathlib import Path

import keras

from tfpretrain.models.gpt import GPTEncoder
from tfpretrain.text.tokenizers import CausalPacker, load_tokenizer
from tfpretrain.text.wordpiece import WordPieceTokenizer


def is_clm_run(cfg) -> bool:
    path = Path(cfg.init)
    return (path / "model.keras").is_file() and (path / "tokenizer").is_dir()


def build_clm_start(cfg, train_sentences: list[str]):
    """`(packer, GPTEncoder)` of a clm run: texts longer than its context are cut to it."""
    path = Path(cfg.init)
    gpt = keras.saving.load_model(path / "model.keras", compile=False)
    context = gpt.get_layer("embedding").sequence_length
    if cfg.seq_len > context:
        raise ValueError(
            f"--seq-len {cfg.seq_len} is longer than the GPT's context of "
            f"{context} tokens ({path}); use at most {context}."
        )
    return CausalPacker(load_tokenizer(path / "tokenizer")), GPTEncoder(gpt, name="gpt_encoder")


def is_classifier_run(cfg) -> bool:
    path = Path(cfg.init)
    return (path / "classifier.keras").is_file() and (path / "vocab.txt").is_file()


def build_classifier_start(cfg, train_sentences: list[str]):
    """The encoder of a fine-tuned or distilled classifier; its old head is dropped."""
    path = Path(cfg.init)
    classifier = keras.saving.load_model(path / "classifier.keras", compile=False)
    tokenizer = WordPieceTokenizer.from_pretrained(path, sequence_length=cfg.seq_len)
    return tokenizer, classifier.encoder
