"""Text: tokenizers and language-model data pipelines (one import line per public name)."""
# ruff: noqa: F401

from tfpretrain.text.mlm import mask_tokens, mlm_dataset, pack_contiguous
from tfpretrain.text.wordpiece import (
    RESERVED_TOKENS,
    WordPieceTokenizer,
    learn_vocabulary,
    read_vocab,
    tokenize_corpus,
    write_vocab,
)
