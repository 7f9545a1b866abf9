"""Tokenizers: text to token ids and back, in NumPy and in-graph."""

from tfpretrain.text.char import CharTokenizer, UnknownCharacterError  # noqa: F401
from tfpretrain.text.sentencepiece import SentencePieceTokenizer  # noqa: F401
from tfpretrain.text.tokenizers import TOKENIZER_KINDS, load_tokenizer, train_tokenizer  # noqa: F401
