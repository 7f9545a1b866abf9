"""WordPiece tokenization inside the TensorFlow graph: learn, load, tokenize, pack, detokenize."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import keras
import tensorflow as tf
import tensorflow_text as tf_text

# BERT's special tokens. A learned vocabulary starts with them in this order, so [PAD] is id 0.
RESERVED_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
VOCAB_FILE = "vocab.txt"
FAST_TOKENIZER_FILE = "tokenizer.json"
# Beside vocab.txt, as transformers writes it: `do_lower_case` says whether the model is uncased.
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"


def read_vocab(path) -> list[str]:
    """Reads a BERT `vocab.txt` (one token per line, the line number is the id)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"Vocabulary file {path} does not exist; give the path of a BERT vocab.txt."
        )
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"Vocabulary file {path} is not valid UTF-8 ({err}).") from None
    tokens = text.split("\n")
    if tokens and tokens[-1] == "":
        tokens.pop()
    return [t.rstrip("\r") for t in tokens]


def write_vocab(tokens: Sequence[str], path) -> Path:
    """Writes `tokens` as a `vocab.txt`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(t + "\n" for t in tokens), encoding="utf-8")
    return path


def is_cased_vocabulary(tokens: Iterable[str]) -> bool:
    """Whether a vocabulary is a cased model's: it holds a token with a capital letter (special
    tokens `[...]` aside), which an uncased model, lower-casing its text first, never produces.

    Example:

    >>> is_cased_vocabulary(["[PAD]", "[UNK]", "the", "The"])
    True
    """
    return any(t != t.lower() for t in tokens if not (t.startswith("[") and t.endswith("]")))


def read_fast_vocab(path) -> list[str]:
    """The WordPiece vocabulary of a `tokenizer.json` (what `transformers` 5 saves for BERT in
    place of `vocab.txt`): its `model.vocab` token-to-id map, as a list indexed by id.

    Raises:
        ValueError: the file holds no WordPiece model, or its ids are not 0..N-1.
    """
    path = Path(path)
    model = json.loads(path.read_text(encoding="utf-8")).get("model") or {}
    if model.get("type") != "WordPiece" or not isinstance(model.get("vocab"), dict):
        raise ValueError(
            f"{path} holds no WordPiece vocabulary (model type {model.get('type')!r}); a BERT "
            "folder needs vocab.txt or a WordPiece tokenizer.json."
        )
    by_id = sorted((int(i), token) for token, i in model["vocab"].items())
    if [i for i, _ in by_id] != list(range(len(by_id))):
        raise ValueError(f"The WordPiece ids of {path} are not 0..{len(by_id) - 1} without gaps.")
    return [token for _, token in by_id]


def folder_vocab(path) -> tuple[list[str], Path]:
    """A BERT vocabulary and the folder it belongs to: `path` itself if it is a `vocab.txt`,
    else the folder's `vocab.txt`, else its `tokenizer.json` (a folder `transformers` 5 saved).
    """
    path = Path(path)
    if path.is_file():
        return read_vocab(path), path.parent
    if not (path / VOCAB_FILE).is_file() and (path / FAST_TOKENIZER_FILE).is_file():
        return read_fast_vocab(path / FAST_TOKENIZER_FILE), path
    return read_vocab(path / VOCAB_FILE), path


def hf_lower_case(directory, tokens: Sequence[str]) -> bool:
    """Whether the BERT tokenizer in `directory` lower-cases: `do_lower_case` in its
    `tokenizer_config.json`, else `lowercase` in the normalizer of its `tokenizer.json`, else
    uncased unless the vocabulary `tokens` is cased (`is_cased_vocabulary`)."""
    directory = Path(directory)
    config = directory / TOKENIZER_CONFIG_FILE
    if config.is_file():
        value = json.loads(config.read_text()).get("do_lower_case")
        if value is not None:
            return bool(value)
    fast = directory / FAST_TOKENIZER_FILE
    if fast.is_file():
        normalizer = json.loads(fast.read_text()).get("normalizer") or {}
        if "lowercase" in normalizer:
            return bool(normalizer["lowercase"])
    return not is_cased_vocabulary(tokens)


def learn_vocabulary(
    corpus: tf.data.Dataset,
    vocab_size: int = 8000,
    reserved_tokens: Sequence[str] = RESERVED_TOKENS,
    lower_case: bool = True,
    batch_size: int = 1024,
) -> list[str]:
    """Learns a WordPiece vocabulary from a corpus with TensorFlow Text's BERT vocabulary learner.

    Args:
        corpus: a `tf.data.Dataset` of scalar strings (sentences or lines).
        vocab_size: the largest vocabulary size (the learner may return fewer tokens).
        reserved_tokens: tokens put first, in this order; must include BERT's special tokens.
        lower_case: lower-case and strip accents as BERT's uncased models do.
        batch_size: how many lines the learner reads at once.

    Returns:
        The vocabulary, reserved tokens first.
    """
    from tensorflow_text.tools.wordpiece_vocab.bert_vocab_from_dataset import (
        bert_vocab_from_dataset,
    )

    missing = [t for t in RESERVED_TOKENS if t not in reserved_tokens]
    if missing:
        raise ValueError(f"reserved_tokens must include BERT's special tokens; missing {missing}.")
    if vocab_size <= len(reserved_tokens):
        raise ValueError(
            f"vocab_size ({vocab_size}) must exceed the {len(reserved_tokens)} reserved tokens."
        )
    if corpus.element_spec.dtype != tf.string or corpus.element_spec.shape.rank != 0:
        raise ValueError(f"corpus must be a dataset of scalar strings; got {corpus.element_spec}.")
    corpus = corpus.filter(lambda s: tf.strings.length(tf.strings.strip(s)) > 0)
    if not any(True for _ in corpus.take(1)):
        raise ValueError("The corpus is empty (no non-blank lines); give a file with text in it.")
    vocab = bert_vocab_from_dataset(
        corpus.batch(batch_size),
        vocab_size=vocab_size,
        reserved_tokens=list(reserved_tokens),
        bert_tokenizer_params={"lower_case": lower_case},
        learn_params={},
    )
    if len(vocab) <= len(reserved_tokens):
        raise ValueError(
            "The corpus yielded no vocabulary beyond the reserved tokens; is it empty?"
        )
    return list(vocab)


@keras.saving.register_keras_serializable(package="tfpretrain")
class WordPieceTokenizer(keras.layers.Layer):
    """BERT's tokenizer (basic splitting, then WordPiece) running inside the TensorFlow graph.

    With `lower_case=True` the text is case-folded, NFD-normalised and stripped of accents as in
    BERT's uncased models; with a real uncased BERT `vocab.txt` the ids equal the original
    tokenizer's. Being a Keras layer, it can be used in `tf.data`, saved in a `.keras` file
    (the vocabulary is part of its config) and exported inside a SavedModel.

    Args:
        vocabulary: list of tokens (the index is the id) or the path of a `vocab.txt`.
        lower_case: lower-case and strip accents (uncased models).
        sequence_length: default length of `pack`'s outputs.
        validate_utf8: raise a clear error on strings that are not valid UTF-8.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: a string tensor `[B]` (or a scalar string).

    Returns:
        int32 ids as a `tf.RaggedTensor` `[B, None]` (or a 1-D tensor for a scalar input).

    Example:

    >>> tok = WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat"])
    >>> tok(tf.constant(["The cat"])).to_list()
    [[5, 6]]
    """

    def __init__(
        self,
        vocabulary,
        lower_case: bool = True,
        sequence_length: int = 128,
        validate_utf8: bool = True,
        **kwargs,
    ):
        kwargs.setdefault("dtype", "int32")
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        if isinstance(vocabulary, (str, Path)):
            vocabulary = read_vocab(vocabulary)
        vocabulary = [str(t) for t in vocabulary]
        missing = [t for t in RESERVED_TOKENS if t not in vocabulary]
        if missing:
            raise ValueError(
                f"The vocabulary lacks BERT's special tokens {missing}; a BERT vocab.txt must "
                f"contain {list(RESERVED_TOKENS)} (learn one with learn_vocabulary, which adds "
                "them)."
            )
        if len(set(vocabulary)) != len(vocabulary):
            dupes = sorted({t for t in vocabulary if vocabulary.count(t) > 1})
            raise ValueError(f"The vocabulary has duplicate tokens, e.g. {dupes[:5]}.")
        if int(sequence_length) < 2:
            raise ValueError(
                f"sequence_length must be >= 2 (room for [CLS] and [SEP]); got {sequence_length}."
            )
        self.vocabulary = vocabulary
        self.lower_case = bool(lower_case)
        self.sequence_length = int(sequence_length)
        self.validate_utf8 = bool(validate_utf8)
        ids = {t: i for i, t in enumerate(vocabulary)}
        self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id = (
            ids[t] for t in RESERVED_TOKENS
        )
        # The special tokens (and [unusedN]) are never produced by splitting text, nor picked as
        # random replacements by masked-LM.
        self.special_ids = sorted(
            i for t, i in ids.items() if t.startswith("[") and t.endswith("]")
        )
        # Normalisation is done in `normalize` (as the original BERT code does it) rather than by
        # the tokenizer's own lower-casing, whose NFKC case folding turns e.g. "™" into "tm".
        # FastBertTokenizer (BERT's splitting + linear-time WordPiece in one op) is >10x faster
        # than BertTokenizer, whose WordPiece step probes a lookup table per candidate piece.
        self._tokenizer = tf_text.FastBertTokenizer(
            list(vocabulary),
            token_out_type=tf.int64,
            unknown_token="[UNK]",
            lower_case_nfd_strip_accents=False,
        )
        self._vocab_strings = tf.constant(vocabulary)
        self.built = True  # no weights; the tokenizer op's model is created above

    @property
    def vocabulary_size(self) -> int:
        return len(self.vocabulary)

    @classmethod
    def from_pretrained(cls, path, **kwargs) -> WordPieceTokenizer:
        """Loads a BERT folder's `vocab.txt` or, without one, its `tokenizer.json` (or the
        `vocab.txt` file `path`), lower-casing as
        the folder says (`hf_lower_case`: `do_lower_case` in `tokenizer_config.json`, else a
        vocabulary with capitals is cased). `kwargs` (e.g. `sequence_length`) go to the
        constructor.

        Example:

        >>> tok = WordPieceTokenizer.from_pretrained("bert-base-cased/")  # doctest: +SKIP
        >>> tok.lower_case  # doctest: +SKIP
        False
        """
        tokens, directory = folder_vocab(path)
        kwargs.setdefault("lower_case", hf_lower_case(directory, tokens))
        return cls(tokens, **kwargs)

    def save(self, directory) -> Path:
        """Writes `vocab.txt` and a `tokenizer_config.json` saying whether it lower-cases, the
        files `from_pretrained` and `transformers`' `BertTokenizer` read; returns the vocab's
        path."""
        directory = Path(directory)
        path = write_vocab(self.vocabulary, directory / VOCAB_FILE)
        names = ("pad_token", "unk_token", "cls_token", "sep_token", "mask_token")
        config = {
            "tokenizer_class": "BertTokenizer",
            "do_lower_case": self.lower_case,
            "strip_accents": None,  # they follow the casing, as in BERT's own code
            **dict(zip(names, RESERVED_TOKENS, strict=True)),
        }
        (directory / TOKENIZER_CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
        return path

    def _check_utf8(self, strings):
        if not self.validate_utf8:
            return strings
        cleaned = tf.strings.unicode_transcode(strings, "UTF-8", "UTF-8", errors="ignore")
        check = tf.debugging.Assert(
            tf.reduce_all(tf.equal(cleaned, strings)),
            ["WordPieceTokenizer: input text is not valid UTF-8; decode or clean it first."],
        )
        with tf.control_dependencies([check]):
            return tf.identity(strings)

    def normalize(self, strings) -> tf.Tensor:
        """BERT's text cleaning: drop control characters; if uncased, lower-case and strip
        accents."""
        strings = tf.strings.regex_replace(strings, r"[\t\n\r]", " ")
        strings = tf.strings.regex_replace(strings, r"[\x00\x{FFFD}\p{Cc}\p{Cf}]", "")
        if self.lower_case:
            # Python's str.lower() (used by the original code) writes a word-final capital sigma
            # as "ς"; per-character lower-casing would give "σ".
            strings = tf.strings.regex_replace(strings, r"(\p{L}\p{M}*)Σ(\P{L}|$)", "\\1ς\\2")
            strings = tf.strings.lower(strings, encoding="utf-8")
            strings = tf_text.normalize_utf8(strings, "NFD")
            strings = tf.strings.regex_replace(strings, r"\p{Mn}", "")
        return strings

    def tokenize(self, strings) -> tf.RaggedTensor:
        """Strings `[B]` -> ragged int32 ids `[B, None]`; a scalar string gives a 1-D tensor."""
        strings = tf.convert_to_tensor(strings)
        if strings.dtype != tf.string:
            raise TypeError(f"WordPieceTokenizer takes strings; got {strings.dtype}.")
        scalar = strings.shape.rank == 0
        if scalar:
            strings = strings[None]
        strings = self.normalize(self._check_utf8(strings))
        ids = self._tokenizer.tokenize(strings)
        ids = tf.cast(ids, tf.int32)
        return ids[0] if scalar else ids

    def call(self, inputs):
        return self.tokenize(inputs)

    def detokenize(self, ids) -> tf.Tensor:
        """Ids `[B, None]` (dense or ragged) -> strings `[B]`, joining `##` pieces; special
        tokens dropped."""
        ids = (
            ids
            if isinstance(ids, tf.RaggedTensor)
            else tf.RaggedTensor.from_tensor(tf.convert_to_tensor(ids))
        )
        ids = tf.cast(ids, tf.int64)
        keep = tf.reduce_all(
            tf.not_equal(ids[..., None], tf.constant(self.special_ids, tf.int64)), axis=-1
        )
        ids = tf.ragged.boolean_mask(ids, keep)
        tokens = tf.gather(self._vocab_strings, ids)
        text = tf.strings.reduce_join(tokens, axis=-1, separator=" ")
        return tf.strings.regex_replace(text, " ##", "")

    def pack(self, strings, sequence_length: int | None = None, pairs=None) -> dict[str, tf.Tensor]:
        """Sentences -> BERT inputs `[CLS] a [SEP]` padded to a fixed length; with `pairs`,
        sentence pairs `[CLS] a [SEP] b [SEP]`, segment 1 for `b` (as BERT's NSP pre-training
        and GLUE pair tasks).

        Too long inputs are cut: a single sentence at the end; a pair round-robin, one token
        from the longer side at a time (tf_text's `RoundRobinTrimmer`), so both keep a share.

        Returns:
            A dict of int32 `[B, L]` tensors: `token_ids`, `segment_ids` (0 for the first
            sentence, 1 for the second) and `padding_mask` (1 for real tokens).
        """
        pair_ids = None if pairs is None else self.tokenize(pairs)
        return self.pack_ids(self.tokenize(strings), sequence_length, pair_ids)

    def pack_ids(
        self,
        ids: tf.RaggedTensor,
        sequence_length: int | None = None,
        pair_ids: tf.RaggedTensor | None = None,
    ) -> dict[str, tf.Tensor]:
        """`pack` from ragged token ids `[B, None]` (e.g. with `[MASK]` ids put in by hand)."""
        length = int(sequence_length or self.sequence_length)
        if pair_ids is None:
            segments = [ids[:, : length - 2]]
        else:
            trimmer = tf_text.RoundRobinTrimmer(max_seq_length=length - 3)
            segments = trimmer.trim([ids, pair_ids])
        ids, segments = tf_text.combine_segments(
            segments, start_of_sequence_id=self.cls_id, end_of_segment_id=self.sep_id
        )
        token_ids, mask = tf_text.pad_model_inputs(ids, length, pad_value=self.pad_id)
        segment_ids, _ = tf_text.pad_model_inputs(segments, length, pad_value=0)
        return {
            "token_ids": tf.cast(token_ids, tf.int32),
            "segment_ids": tf.cast(segment_ids, tf.int32),
            "padding_mask": tf.cast(mask, tf.int32),
        }

    def compute_output_spec(self, inputs):
        return keras.KerasTensor((None, None), dtype="int32", ragged=True)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary": self.vocabulary,
                "lower_case": self.lower_case,
                "sequence_length": self.sequence_length,
                "validate_utf8": self.validate_utf8,
            }
        )
        return config
