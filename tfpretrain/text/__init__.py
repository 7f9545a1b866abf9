"""Text: tokenizers (WordPiece, BPE, SentencePiece, characters) and in-graph preprocessing."""
# ruff: noqa: F401

from tfpretrain.text.bpe import BytePairTokenizer
from tfpretrain.text.char import CharTokenizer, UnknownCharacterError
from tfpretrain.text.mlm import mask_tokens, mlm_dataset
from tfpretrain.text.sentencepiece import SentencePieceTokenizer
from tfpretrain.text.tokenizers import TOKENIZER_KINDS, load_tokenizer, train_tokenizer
from tfpretrain.text.wordpiece import (
    RESERVED_TOKENS,
    WordPieceTokenizer,
    learn_vocabulary,
    read_vocab,
    write_vocab,
)
