"""A subword vocabulary trained with `sentencepiece`, run in-graph with `tensorflow_text`."""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import tensorflow as tf

SENTENCEPIECE_MODEL_FILE = "sentencepiece.model"
MODEL_TYPES = ("bpe", "unigram")


class SentencePieceTokenizer:
    """A BPE or unigram subword vocabulary (Kudo & Richardson, 2018) for language modelling.

    Trained so that text round-trips exactly: no normalisation, whitespace kept as is, newline
    a piece of its own, and byte fallback, so characters never seen in training are encoded
    as their UTF-8 bytes instead of an unknown token (this is the documented handling of
    out-of-vocabulary characters for subword vocabularies). Encoding in NumPy uses the
    `sentencepiece` package; `tf_encode` / `tf_decode` use `tensorflow_text`'s in-graph
    `SentencepieceTokenizer` on the same model, for `tf.data` pipelines and exported
    SavedModels.

    Args:
        model_proto: the serialized sentencepiece model (the bytes of a `.model` file).

    Example:

    >>> tok = SentencePieceTokenizer.train(
    ...     open("input.txt").read(), vocabulary_size=500
    ... )  # doctest: +SKIP
    >>> tok.decode(tok.encode("To be, or not to be"))  # doctest: +SKIP
    'To be, or not to be'
    """

    kind = "sentencepiece"

    def __init__(self, model_proto: bytes):
        import sentencepiece as spm

        if not model_proto:
            raise ValueError("The sentencepiece model is empty.")
        self.model_proto = bytes(model_proto)
        try:
            self._processor = spm.SentencePieceProcessor(model_proto=self.model_proto)
        except (RuntimeError, OSError) as err:
            raise ValueError(f"Not a valid sentencepiece model: {err}") from err
        self._tf_tokenizer = None
        self._anchor = None

    @classmethod
    def train(
        cls,
        text: str,
        vocabulary_size: int = 1000,
        model_type: str = "bpe",
        max_sentences: int = 1_000_000,
        dummy_prefix: bool = True,
    ) -> SentencePieceTokenizer:
        """Trains a vocabulary of `vocabulary_size` pieces on `text` (split into lines).

        Args:
            text: the training text.
            vocabulary_size: pieces in all, the 260 byte and control pieces included.
            model_type: "bpe" or "unigram".
            max_sentences: lines sampled for training at most.
            dummy_prefix: encode a text as if a space came before it (sentencepiece's
                default: a sentence's first word is the word as within a sentence). Off, a
                text's first word is encoded as after a newline, so encoding a corpus line by
                line (each line with its newline) gives the ids of the whole text: what a
                language model of running text that is streamed line by line (`clm`) needs.
        """
        import sentencepiece as spm

        if model_type not in MODEL_TYPES:
            raise ValueError(f"model_type must be one of {MODEL_TYPES}; got {model_type!r}.")
        if not text or not text.strip():
            raise ValueError("Cannot train a sentencepiece vocabulary on empty text.")
        # 3 control pieces + 256 byte pieces + newline come before any learned piece.
        if vocabulary_size < 300:
            raise ValueError(
                f"vocabulary_size must be >= 300 (byte fallback needs 260); got {vocabulary_size}."
            )
        lines = [line + "\n" for line in text.split("\n") if line]
        writer = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(lines),
                model_writer=writer,
                vocab_size=vocabulary_size,
                model_type=model_type,
                character_coverage=1.0,
                normalization_rule_name="identity",
                remove_extra_whitespaces=False,
                allow_whitespace_only_pieces=True,
                user_defined_symbols=["\n"],
                add_dummy_prefix=dummy_prefix,
                byte_fallback=True,
                split_digits=True,
                input_sentence_size=max_sentences,
                shuffle_input_sentence=True,
                minloglevel=2,
            )
        except RuntimeError as err:
            raise ValueError(
                f"sentencepiece could not train {vocabulary_size} pieces on this text ({err}); "
                "lower --vocab-size or use more text."
            ) from err
        return cls(writer.getvalue())

    @property
    def vocabulary_size(self) -> int:
        return int(self._processor.get_piece_size())

    def encode(self, text: str) -> np.ndarray:
        """Token ids (int32) of `text`."""
        return np.asarray(self._processor.encode(text), dtype=np.int32)

    def decode(self, ids: Iterable[int], continuation: bool = False) -> str:
        """The text of `ids`.

        Args:
            ids: token ids.
            continuation: the ids follow other text (T5's sentinels), so the space their first
                piece stands for is kept; by default it is the dummy prefix and dropped.
        """
        ids = [int(i) for i in (ids.tolist() if isinstance(ids, np.ndarray) else ids)]
        if ids and (min(ids) < 0 or max(ids) >= self.vocabulary_size):
            raise ValueError(
                f"Token ids must be in [0, {self.vocabulary_size}); got {min(ids)}..{max(ids)}."
            )
        if not continuation:
            return self._processor.decode(ids)
        # Behind an anchor piece nothing is dropped; its text is cut off again (as `tf_decode`).
        anchor, head = self._anchor_piece()
        return self._processor.decode([anchor, *ids]).encode()[head:].decode()

    @property
    def tf_tokenizer(self):
        """The `tensorflow_text.SentencepieceTokenizer` of this model (created once)."""
        if self._tf_tokenizer is None:
            import tensorflow_text as tf_text

            # Created outside any tf.function being traced, so every graph can use the resource.
            with tf.init_scope():
                self._tf_tokenizer = tf_text.SentencepieceTokenizer(
                    model=self.model_proto, out_type=tf.int32
                )
        return self._tf_tokenizer

    def tf_encode(self, strings: tf.Tensor) -> tf.RaggedTensor:
        """In-graph: `[B]` strings -> ragged int32 ids `[B, None]`."""
        return self.tf_tokenizer.tokenize(strings)

    def tf_decode(self, ids, continuation=None) -> tf.Tensor:
        """In-graph: ragged (or dense) int ids `[B, None]` -> `[B]` strings, each equal to
        `decode`'s.

        tensorflow-text's detokenizer drops every whitespace piece at the start of a row, where
        SentencePiece's `decode` drops only the space the first piece stands for (its dummy
        prefix). So each row is detokenized behind an anchor piece, which keeps them all, and
        the anchor's text plus what `decode` drops for the row's first piece are cut off.

        Args:
            ids: int ids `[B, None]`.
            continuation: optional bool `[B]`: rows decoded as `decode(..., continuation=True)`.
        """
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.RaggedTensor.from_tensor(ids)
        ids = tf.cast(ids, tf.int32).with_row_splits_dtype(tf.int64)
        anchor, anchor_bytes, dropped = self._decode_anchor()
        anchors = tf.fill([ids.nrows(out_type=tf.int32), 1], tf.constant(anchor, tf.int32))
        text = self.tf_tokenizer.detokenize(
            tf.concat([tf.RaggedTensor.from_tensor(anchors), ids], axis=1)
        )
        first = ids[:, :1].to_tensor(default_value=anchor, shape=[None, 1])[:, 0]
        lost = tf.gather(tf.constant(dropped, tf.int32), first)
        if continuation is not None:
            lost = tf.where(continuation, 0, lost)
        cut = anchor_bytes + lost
        return tf.strings.substr(text, cut, tf.fill(tf.shape(cut), -1))

    def _anchor_piece(self) -> tuple[int, int]:
        """`(anchor id, its text's length in bytes)`: the first piece whose text is one ASCII
        letter or digit, behind which a piece keeps its leading space."""
        decode = self._processor.decode
        anchor = next(
            (
                i
                for i in range(self.vocabulary_size)
                if len(text := decode([i])) == 1 and text.isascii() and text.isalnum()
            ),
            None,
        )
        if anchor is None:
            raise ValueError(
                "Decoding a continuation needs a piece that is a single ASCII letter or digit; "
                "this sentencepiece model has none. Retrain it on text that contains some."
            )
        return anchor, len(decode([anchor]).encode())

    def _decode_anchor(self) -> tuple[int, int, np.ndarray]:
        """`(anchor id, its text's length in bytes, bytes decode drops when each id comes
        first)`."""
        if self._anchor is None:
            decode = self._processor.decode
            anchor, head = self._anchor_piece()
            # Behind the anchor a piece keeps its leading space; first in a row it may lose it.
            dropped = np.array(
                [
                    len(decode([anchor, i]).encode()) - head - len(decode([i]).encode())
                    for i in range(self.vocabulary_size)
                ],
                np.int32,
            )
            self._anchor = (anchor, head, dropped)
        return self._anchor

    def trackables(self) -> list:
        """The TensorFlow resource holding the model, for SavedModel export."""
        return [self.tf_tokenizer]

    def save(self, directory) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / SENTENCEPIECE_MODEL_FILE
        path.write_bytes(self.model_proto)
        return path

    @classmethod
    def load(cls, directory) -> SentencePieceTokenizer:
        path = Path(directory) / SENTENCEPIECE_MODEL_FILE
        if not path.is_file():
            raise FileNotFoundError(f"No sentencepiece model at {path}.")
        return cls(path.read_bytes())
