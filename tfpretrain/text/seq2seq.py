"""A text-to-text vocabulary: a cased SentencePiece tokenizer plus T5's pad/end ids and
sentinels."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfpretrain.text.sentencepiece import SentencePieceTokenizer

SEQ2SEQ_VOCAB_FILE = "seq2seq_vocab.json"
# A Hugging Face T5 folder's tokenizer: sentencepiece with pad 0, eos 1, unk 2, and the
# sentinels <extra_id_0> ... <extra_id_99> above the pieces, <extra_id_0> the highest id.
T5_SPIECE_FILE = "spiece.model"
T5_SENTINELS = 100
# sentencepiece's default control pieces: <unk>=0, <s>=1, </s>=2. Encoding never emits <s> or
# </s>, and decoding renders them as nothing, so <s> serves as T5's pad / decoder-start token.
PAD_ID = 1
EOS_ID = 2


class Seq2SeqTokenizer:
    """Wraps a `SentencePieceTokenizer` with the ids an encoder-decoder needs.

    Model ids are the tokenizer's pieces `[0, N)` followed by `num_sentinels` sentinel ids
    `[N, N + num_sentinels)` for span corruption; `pad_id` (also the decoder start) and
    `eos_id` are by default the tokenizer's `<s>` and `</s>` control pieces. T5's own
    vocabulary (`from_hf`) has pad 0 and eos 1, and numbers its sentinels down from the top:
    sentinel k (`<extra_id_k>`) is `N + num_sentinels - 1 - k` (`sentinel_id`).

    Sentinels are written `<extra_id_k>` in text both ways, as `transformers`' T5 tokenizer
    has them: `encode` (and `tf_encode`) gives a sentinel's id for its name and encodes the
    text between them on its own (spaces around a sentinel belong to it), `decode` (and
    `tf_decode`) writes the names back, the text after one keeping its leading space.

    Args:
        tokenizer: a trained `SentencePieceTokenizer` (cased, so text keeps its casing).
        num_sentinels: sentinel ids appended after the pieces.
        pad_id: the padding / decoder start id.
        eos_id: the end id.
        descending_sentinels: sentinel 0 is the highest id (T5's order).

    Example:

    >>> tok = Seq2SeqTokenizer(SentencePieceTokenizer.train(text, 1000))  # doctest: +SKIP
    >>> tok.decode(tok.encode("To be, or not"))  # doctest: +SKIP
    'To be, or not'
    >>> tok.decode(tok.encode("To be, <extra_id_0> not"))  # doctest: +SKIP
    'To be,<extra_id_0> not'
    """

    def __init__(
        self,
        tokenizer: SentencePieceTokenizer,
        num_sentinels: int = 100,
        pad_id: int = PAD_ID,
        eos_id: int = EOS_ID,
        descending_sentinels: bool = False,
    ):
        if not isinstance(tokenizer, SentencePieceTokenizer):
            raise ValueError("Seq2SeqTokenizer needs a SentencePieceTokenizer.")
        if num_sentinels < 1:
            raise ValueError(f"num_sentinels must be >= 1; got {num_sentinels}.")
        for name, value in (("pad_id", pad_id), ("eos_id", eos_id)):
            if not 0 <= value < tokenizer.vocabulary_size:
                raise ValueError(f"{name} {value} is not a piece of the sentencepiece model.")
        self.tokenizer = tokenizer
        self.num_sentinels = int(num_sentinels)
        self.pad_id, self.eos_id = int(pad_id), int(eos_id)
        self.descending_sentinels = bool(descending_sentinels)

    @classmethod
    def from_hf(cls, directory) -> Seq2SeqTokenizer:
        """T5's tokenizer from a Hugging Face folder: `spiece.model`, and the sentinel count
        (`extra_ids` in `tokenizer_config.json`, default 100)."""
        directory = Path(directory)
        path = directory / T5_SPIECE_FILE
        if not path.is_file():
            raise FileNotFoundError(
                f"No {T5_SPIECE_FILE} in {directory}: a T5 folder's "
                "tokenizer is that sentencepiece model."
            )
        config = directory / "tokenizer_config.json"
        extra = json.loads(config.read_text()).get("extra_ids") if config.is_file() else None
        pieces = SentencePieceTokenizer(path.read_bytes())
        processor = pieces._processor
        return cls(
            pieces,
            num_sentinels=extra or T5_SENTINELS,
            pad_id=processor.pad_id(),
            eos_id=processor.eos_id(),
            descending_sentinels=True,
        )

    def sentinel_id(self, k: int) -> int:
        """The id of sentinel `k` (`<extra_id_k>` in T5)."""
        if not 0 <= k < self.num_sentinels:
            raise ValueError(f"Sentinel {k} is not in [0, {self.num_sentinels}).")
        return self.sentinel_start + (
            self.num_sentinels - 1 - k if self.descending_sentinels else k
        )

    @property
    def sentinel_start(self) -> int:
        return self.tokenizer.vocabulary_size

    @property
    def vocabulary_size(self) -> int:
        """Model vocabulary: pieces plus sentinels."""
        return self.tokenizer.vocabulary_size + self.num_sentinels

    def _sentinel_pattern(self, capture: bool) -> str:
        """The regular expression of a sentinel's name with the spaces around it; `capture`
        keeps its number as a group (Python's `re`; RE2 in the graph takes the other form)."""
        numbers = "|".join(str(k) for k in range(self.num_sentinels - 1, -1, -1))
        number = f"({numbers})" if capture else f"(?:{numbers})"
        return rf"\s*<extra_id_{number}>\s*"

    def encode(self, text: str) -> np.ndarray:
        """Token ids of `text`, a sentinel's name (`<extra_id_k>`) giving its id."""
        parts = re.split(self._sentinel_pattern(capture=True), text)
        ids = [self.tokenizer.encode(parts[0])]
        for number, piece in zip(parts[1::2], parts[2::2], strict=True):
            ids += [[self.sentinel_id(int(number))], self.tokenizer.encode(piece)]
        return np.concatenate(ids).astype(np.int32)

    def sentinel_number(self, i: int) -> int | None:
        """k of a sentinel id (`<extra_id_k>`), None for another id."""
        k = int(i) - self.sentinel_start
        if not 0 <= k < self.num_sentinels:
            return None
        return self.num_sentinels - 1 - k if self.descending_sentinels else k

    def decode(self, ids: Iterable[int]) -> str:
        """Text of `ids` up to the first end token, pad dropped, sentinels as `<extra_id_k>`."""
        text, run, after_sentinel = [], [], False
        for i in np.asarray(ids).reshape(-1).tolist():
            if i == self.eos_id:
                break
            k = self.sentinel_number(i)
            if k is not None:
                text += [self.tokenizer.decode(run, continuation=after_sentinel), f"<extra_id_{k}>"]
                run, after_sentinel = [], True
            elif i != self.pad_id and 0 <= i < self.sentinel_start:
                run.append(int(i))
        return "".join(text) + self.tokenizer.decode(run, continuation=after_sentinel)

    def tf_encode(self, strings: tf.Tensor) -> tf.RaggedTensor:
        """In-graph `encode`: `[B]` strings -> ragged int32 ids `[B, None]`."""
        import tensorflow_text as tf_text

        strings = tf.convert_to_tensor(strings, tf.string)
        pattern = self._sentinel_pattern(capture=False)
        # Every string split into its sentinels and the text around them: [B, parts].
        parts, _, _ = tf_text.regex_split_with_offsets(strings, pattern, pattern)
        flat = parts.flat_values
        is_sentinel = tf.strings.regex_full_match(flat, pattern)
        # A sentinel part encodes as nothing, then its id is appended: each part's ids in order.
        text_ids = self.tokenizer.tf_encode(tf.where(is_sentinel, "", flat))
        digits = tf.where(is_sentinel, tf.strings.regex_replace(flat, r"\D", ""), "0")
        number = tf.strings.to_number(digits, out_type=tf.int32)
        order = number if not self.descending_sentinels else self.num_sentinels - 1 - number
        sentinel_ids = tf.RaggedTensor.from_row_lengths(
            tf.boolean_mask(self.sentinel_start + order, is_sentinel),
            tf.cast(is_sentinel, tf.int64),
        )
        part_ids = tf.concat([tf.cast(text_ids, tf.int32), sentinel_ids], axis=1)
        return parts.with_flat_values(part_ids).merge_dims(1, 2)

    def tf_decode(self, ids: tf.Tensor) -> tf.Tensor:
        """In-graph `decode`: `[B, T]` (dense or ragged) ids -> `[B]` strings, cut at the first
        end token, pad dropped, sentinels written `<extra_id_k>`."""
        if isinstance(ids, tf.RaggedTensor):
            ids = ids.to_tensor(default_value=self.pad_id)
        ids = tf.cast(ids, tf.int32)
        before_end = tf.math.cumsum(tf.cast(tf.equal(ids, self.eos_id), tf.int32), axis=1) == 0
        is_sentinel = (ids >= self.sentinel_start) & (ids < self.vocabulary_size)
        keep = before_end & (ids != self.pad_id) & (ids < self.sentinel_start)
        # Each row is cut into runs of text at its sentinels: run 0, then one after each.
        sentinels = tf.cast(is_sentinel & before_end, tf.int32)
        runs_per_row = tf.reduce_sum(sentinels, axis=1) + 1
        first_run = tf.math.cumsum(runs_per_row, exclusive=True)
        text = tf.RaggedTensor.from_value_rowids(
            tf.boolean_mask(ids, keep),
            tf.boolean_mask(first_run[:, None] + tf.math.cumsum(sentinels, axis=1), keep),
            nrows=tf.reduce_sum(runs_per_row),
        )
        after_sentinel = tf.ragged.range(runs_per_row).flat_values > 0
        decoded = self.tokenizer.tf_decode(text, continuation=after_sentinel)
        k = tf.boolean_mask(ids, sentinels > 0) - self.sentinel_start
        if self.descending_sentinels:
            k = self.num_sentinels - 1 - k
        names = tf.strings.join(["<extra_id_", tf.strings.as_string(k), ">"])
        # Run j > 0 of row b, run g overall, follows sentinel g - b - 1 of the whole batch.
        row = tf.repeat(tf.range(tf.shape(ids)[0]), runs_per_row)
        before = tf.where(after_sentinel, tf.range(tf.size(row)) - row, 0)
        prefix = tf.gather(tf.concat([[""], names], 0), before)
        joined = tf.strings.join([prefix, decoded])
        return tf.strings.reduce_join(
            tf.RaggedTensor.from_row_lengths(joined, runs_per_row), axis=1
        )

    def trackables(self) -> list:
        return self.tokenizer.trackables()

    def save(self, directory) -> Path:
        directory = Path(directory)
        self.tokenizer.save(directory)
        path = directory / SEQ2SEQ_VOCAB_FILE
        path.write_text(
            json.dumps(
                {
                    "num_sentinels": self.num_sentinels,
                    "pad_id": self.pad_id,
                    "eos_id": self.eos_id,
                    "descending_sentinels": self.descending_sentinels,
                }
            )
            + "\n"
        )
        return path

    def save_hf(self, directory) -> None:
        """`save`, plus, for T5's vocabulary (sentinels numbered down from the top), the
        `spiece.model` and `tokenizer_config.json` that `transformers`' `T5Tokenizer` reads."""
        directory = Path(directory)
        self.save(directory)
        if not self.descending_sentinels:
            return  # sentinels numbered up: no T5 tokenizer reads them so
        (directory / T5_SPIECE_FILE).write_bytes(self.tokenizer.model_proto)
        piece = self.tokenizer._processor.id_to_piece
        config = {
            "tokenizer_class": "T5Tokenizer",
            "extra_ids": self.num_sentinels,
            "pad_token": piece(self.pad_id),
            "eos_token": piece(self.eos_id),
            "unk_token": piece(self.tokenizer._processor.unk_id()),
        }
        (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")

    @classmethod
    def load(cls, directory) -> Seq2SeqTokenizer:
        directory = Path(directory)
        path = directory / SEQ2SEQ_VOCAB_FILE
        if not path.is_file():
            raise FileNotFoundError(
                f"No {SEQ2SEQ_VOCAB_FILE} in {directory}; is it a seq2seq model directory?"
            )
        values = json.loads(path.read_text())
        return cls(
            SentencePieceTokenizer.load(directory),
            num_sentinels=int(values["num_sentinels"]),
            pad_id=values.get("pad_id", PAD_ID),
            eos_id=values.get("eos_id", EOS_ID),
            descending_sentinels=values.get("descending_sentinels", False),
        )
