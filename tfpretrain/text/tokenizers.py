"""Choosing, training and loading a language-model tokenizer by kind."""

from __future__ import annotations

from pathlib import Path

from tfpretrain.text.bpe import BPE_CONFIG_FILE, BytePairTokenizer
from tfpretrain.text.char import CHAR_VOCAB_FILE, CharTokenizer
from tfpretrain.text.sentencepiece import SENTENCEPIECE_MODEL_FILE, SentencePieceTokenizer

TOKENIZER_KINDS = ("char", "sentencepiece")


def train_tokenizer(kind: str, text: str, vocabulary_size: int = 1000):
    """A `CharTokenizer` or a `SentencePieceTokenizer` (BPE) built from `text`."""
    if kind == "char":
        return CharTokenizer.from_text(text)
    if kind == "sentencepiece":
        return SentencePieceTokenizer.train(text, vocabulary_size=vocabulary_size)
    raise ValueError(f"Unknown tokenizer {kind!r}; choose one of {', '.join(TOKENIZER_KINDS)}.")


def load_tokenizer(directory):
    """Loads whichever tokenizer `save(directory)` wrote there (char, sentencepiece or a
    pre-trained byte-level BPE)."""
    directory = Path(directory)
    if (directory / CHAR_VOCAB_FILE).is_file():
        return CharTokenizer.load(directory)
    if (directory / SENTENCEPIECE_MODEL_FILE).is_file():
        return SentencePieceTokenizer.load(directory)
    if (directory / BPE_CONFIG_FILE).is_file():
        return BytePairTokenizer.load(directory)
    raise FileNotFoundError(
        f"No tokenizer in {directory} (expected {CHAR_VOCAB_FILE}, {SENTENCEPIECE_MODEL_FILE} "
        f"or {BPE_CONFIG_FILE})."
    )
