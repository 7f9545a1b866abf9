"""A character-level vocabulary with NumPy and in-graph (TensorFlow) encoding and decoding."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import tensorflow as tf

CHAR_VOCAB_FILE = "char_vocabulary.json"


class UnknownCharacterError(ValueError):
    """Text holds characters that the vocabulary does not know."""


class CharTokenizer:
    """Maps every distinct character (Unicode code point) of a corpus to an id, in sorted order.

    The id of a character is its rank among the vocabulary's sorted code points, which is what
    nanoGPT's character-level Shakespeare does. Encoding runs in NumPy for whole corpora and
    in-graph (`tf_encode` / `tf_decode`, plain TensorFlow ops and constants, no lookup-table
    resource) for exported SavedModels. Characters outside the vocabulary are an error, never
    silently mapped: `encode` raises `UnknownCharacterError` naming them, `tf_encode` fails an
    in-graph assertion.

    Args:
        vocabulary: the distinct characters, each a string of one code point.

    Example:

    >>> tok = CharTokenizer.from_text("hello")
    >>> tok.vocabulary
    ['e', 'h', 'l', 'o']
    >>> tok.decode(tok.encode("hole"))
    'hole'
    """

    kind = "char"

    def __init__(self, vocabulary: Iterable[str]):
        chars = list(vocabulary)
        if not chars:
            raise ValueError("A character vocabulary needs at least one character.")
        bad = [c for c in chars if not isinstance(c, str) or len(c) != 1]
        if bad:
            raise ValueError(f"Every vocabulary entry must be one character; got {bad[:5]!r}.")
        if len(set(chars)) != len(chars):
            raise ValueError("The character vocabulary holds duplicates.")
        self.vocabulary = sorted(chars)
        self._codepoints = np.array([ord(c) for c in self.vocabulary], dtype=np.int32)

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        """The vocabulary of every character occurring in `text`."""
        if not text:
            raise ValueError("Cannot build a character vocabulary from empty text.")
        return cls(sorted(set(text)))

    @property
    def vocabulary_size(self) -> int:
        return len(self.vocabulary)

    def _check_known(self, codepoints: np.ndarray, text_hint: str) -> np.ndarray:
        ids = np.searchsorted(self._codepoints, codepoints)
        ids_clipped = np.minimum(ids, len(self._codepoints) - 1)
        known = self._codepoints[ids_clipped] == codepoints
        if not known.all():
            unknown = sorted({chr(c) for c in codepoints[~known]})
            raise UnknownCharacterError(
                f"{text_hint} holds {len(unknown)} character(s) outside the vocabulary of "
                f"{self.vocabulary_size}: {''.join(unknown)!r}. Remove them, or train the "
                "tokenizer on text that contains them."
            )
        return ids_clipped.astype(np.int32)

    def encode(self, text: str) -> np.ndarray:
        """Token ids (int32) of `text`; raises `UnknownCharacterError` for unknown characters."""
        codepoints = np.frombuffer(text.encode("utf-32-le"), dtype="<u4").astype(np.int32)
        return self._check_known(codepoints, "The text")

    def decode(self, ids: Iterable[int]) -> str:
        """The text of token ids; raises ValueError for ids outside the vocabulary."""
        ids = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocabulary_size):
            raise ValueError(
                f"Token ids must be in [0, {self.vocabulary_size}); got {ids.min()}..{ids.max()}."
            )
        return "".join(self.vocabulary[i] for i in ids.tolist())

    def tf_encode(self, strings: tf.Tensor, drop_unknown: bool = False) -> tf.RaggedTensor:
        """In-graph: `[B]` UTF-8 strings -> ragged int32 ids `[B, None]`.

        Fails with `InvalidArgumentError` ("outside the vocabulary") on unknown characters,
        unless `drop_unknown`, which leaves them out: for a corpus streamed past the sample the
        vocabulary was built from, where a rare character must not stop training.
        """
        codepoints = tf.strings.unicode_decode(strings, "UTF-8")
        table = tf.constant(self._codepoints)
        flat = codepoints.flat_values
        ids = tf.searchsorted(table, flat, side="left")
        ids = tf.minimum(ids, len(self._codepoints) - 1)
        known = tf.equal(tf.gather(table, ids), flat)
        ids = tf.cast(ids, tf.int32)
        if drop_unknown:
            return tf.ragged.boolean_mask(
                codepoints.with_flat_values(ids), codepoints.with_flat_values(known)
            )
        check = tf.debugging.Assert(
            tf.reduce_all(known),
            ["The prompt holds characters outside the tokenizer's character vocabulary."],
        )
        with tf.control_dependencies([check]):
            ids = tf.identity(ids)
        return codepoints.with_flat_values(ids)

    def tf_decode(self, ids) -> tf.Tensor:
        """In-graph: ragged (or dense) int ids `[B, None]` -> `[B]` UTF-8 strings."""
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.RaggedTensor.from_tensor(ids)
        codepoints = tf.gather(tf.constant(self._codepoints), ids.flat_values)
        return tf.strings.unicode_encode(ids.with_flat_values(codepoints), "UTF-8")

    def trackables(self) -> list:
        """TensorFlow resources an export must track (none: the vocabulary is a constant)."""
        return []

    def save(self, directory) -> Path:
        """Writes the vocabulary to `directory/char_vocabulary.json`."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / CHAR_VOCAB_FILE
        path.write_text(
            json.dumps({"kind": self.kind, "vocabulary": self.vocabulary}, ensure_ascii=False)
        )
        return path

    @classmethod
    def load(cls, directory) -> CharTokenizer:
        path = Path(directory) / CHAR_VOCAB_FILE
        if not path.is_file():
            raise FileNotFoundError(
                f"No character vocabulary at {path}; train a model with --tokenizer char first."
            )
        values = json.loads(path.read_text())
        return cls(values["vocabulary"])
