"""A text-to-text vocabulary: a cased SentencePiece tokenizer plus T5's pad/end ids and sentinels."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfpretrain.text.sentencepiece import SentencePieceTokenizer

SEQ2SEQ_VOCAB_FILE = "seq2seq_vocab.json"
# sentencepiece's default control pieces: <unk>=0, <s>=1, </s>=2. Encoding never emits <s> or
# </s>, and decoding renders them as nothing, so <s> serves as T5's pad / decoder-start token.
PAD_ID = 1
EOS_ID = 2


class Seq2SeqTokenizer:
    """Wraps a `SentencePieceTokenizer` with the ids an encoder-decoder needs.

    Model ids are the tokenizer's pieces `[0, N)` followed by `num_sentinels` sentinel ids
    `[N, N + num_sentinels)` for span corruption; `pad_id` (also the decoder start) and
    `eos_id` are the tokenizer's `<s>` and `</s>` control pieces.

    Args:
        tokenizer: a trained `SentencePieceTokenizer` (cased, so text keeps its casing).
        num_sentinels: sentinel ids appended after the pieces.

    Example:

    >>> tok = Seq2SeqTokenizer(SentencePieceTokenizer.train(text, 1000))  # doctest: +SKIP
    >>> tok.decode(tok.encode("To be, or not"))  # doctest: +SKIP
    'To be, or not'
    """

    pad_id = PAD_ID
    eos_id = EOS_ID

    def __init__(self, tokenizer: SentencePieceTokenizer, num_sentinels: int = 100):
        if not isinstance(tokenizer, SentencePieceTokenizer):
            raise ValueError("Seq2SeqTokenizer needs a SentencePieceTokenizer.")
        if num_sentinels < 1:
            raise ValueError(f"num_sentinels must be >= 1; got {num_sentinels}.")
        self.tokenizer = tokenizer
        self.num_sentinels = int(num_sentinels)

    @property
    def sentinel_start(self) -> int:
        return self.tokenizer.vocabulary_size

    @property
    def vocabulary_size(self) -> int:
        """Model vocabulary: pieces plus sentinels."""
        return self.tokenizer.vocabulary_size + self.num_sentinels

    def encode(self, text: str) -> np.ndarray:
        return self.tokenizer.encode(text)

    def _text_ids(self, ids) -> list[int]:
        out = []
        for i in np.asarray(ids).reshape(-1).tolist():
            if i == self.eos_id:
                break
            if i != self.pad_id and 0 <= i < self.sentinel_start:
                out.append(int(i))
        return out

    def decode(self, ids: Iterable[int]) -> str:
        """Text of `ids` up to the first end token; pad and sentinel ids are dropped."""
        return self.tokenizer.decode(self._text_ids(ids))

    def tf_encode(self, strings: tf.Tensor) -> tf.RaggedTensor:
        return self.tokenizer.tf_encode(strings)

    def tf_decode(self, ids: tf.Tensor) -> tf.Tensor:
        """In-graph `[B, T]` (dense or ragged) ids -> `[B]` strings, cut at the first end token, sentinels dropped."""
        if isinstance(ids, tf.RaggedTensor):
            ids = ids.to_tensor(default_value=self.pad_id)
        ids = tf.cast(ids, tf.int32)
        before_end = tf.math.cumsum(tf.cast(tf.equal(ids, self.eos_id), tf.int32), axis=1) == 0
        keep = before_end & (ids != self.pad_id) & (ids < self.sentinel_start)
        return self.tokenizer.tf_decode(tf.ragged.boolean_mask(ids, keep))

    def trackables(self) -> list:
        return self.tokenizer.trackables()

    def save(self, directory) -> Path:
        directory = Path(directory)
        self.tokenizer.save(directory)
        path = directory / SEQ2SEQ_VOCAB_FILE
        path.write_text(json.dumps({"num_sentinels": self.num_sentinels, "pad_id": self.pad_id,
                                    "eos_id": self.eos_id}) + "\n")
        return path

    @classmethod
    def load(cls, directory) -> Seq2SeqTokenizer:
        directory = Path(directory)
        path = directory / SEQ2SEQ_VOCAB_FILE
        if not path.is_file():
            raise FileNotFoundError(f"No {SEQ2SEQ_VOCAB_FILE} in {directory}; is it a seq2seq model directory?")
        values = json.loads(path.read_text())
        return cls(SentencePieceTokenizer.load(directory), num_sentinels=int(values["num_sentinels"]))
