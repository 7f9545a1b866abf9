"""Text: WordPiece tokenization and masked-LM data pipelines."""

from tfpretrain.text.wordpiece import (
    RESERVED_TOKENS,
    WordPieceTokenizer,
    learn_vocabulary,
    read_vocab,
    tokenize_corpus,
    write_vocab,
)
