"""Byte-level BPE (GPT-2's, RoBERTa's) inside the TensorFlow graph: load, tokenize, detokenize.

The tokenizer reads either a tiktoken ranks file (`<base64 bytes> <rank>` per line) or the
Hugging Face `vocab.json` + `merges.txt` pair, and encodes exactly as `tiktoken` does:

1. Text is cut at special tokens (only those the caller allows), then into the pieces GPT-2's
   pattern matches. TensorFlow's regular expressions (RE2) have no lookahead for `\\s+(?!\\S)`
   and match slowly, so the pieces are found from each character's class (whitespace, letter,
   number, other) with vectorised rules that give the pattern's matches exactly (`_pieces`).
2. A piece that is a token is that token (one hash lookup); the others are merged from their
   bytes in a vectorised loop that joins, in every unfinished piece at once, the adjacent pair of
   lowest merge rank (leftmost on ties), and drops finished pieces from the loop as it goes.

Everything is TensorFlow ops and lookup tables, so the tokenizer runs in `tf.data` maps, under
`tf.function` and inside SavedModels that reload with only `tensorflow` + `tensorflow_text`.
Letters and numbers are those of Python's `unicodedata`; characters assigned in later Unicode
versions than it knows may split differently from tiktoken's (newer) tables.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

ENDOFTEXT = "<|endoftext|>"
# GPT-2's pre-tokenization pattern as tiktoken and Hugging Face write it (Python/Rust regex).
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

BPE_CONFIG_FILE = "bpe_config.json"
VOCAB_FILE = "vocab.json"
MERGES_FILE = "merges.txt"
RANKS_FILE = "ranks.tiktoken"

# Unicode's White_Space property: what `\s` means in tiktoken's regex engine.
WHITE_SPACE = frozenset(
    [
        *range(0x09, 0x0E),
        0x20,
        0x85,
        0xA0,
        0x1680,
        *range(0x2000, 0x200B),
        0x2028,
        0x2029,
        0x202F,
        0x205F,
        0x3000,
    ]
)
# Character classes of the pattern: `\s`, `\p{L}`, `\p{N}` and everything else.
_SPACE, _LETTER, _NUMBER, _OTHER = 0, 1, 2, 3
_APOSTROPHE = ord("'")
# Contractions the pattern splits off after an apostrophe that starts a piece.
_SUFFIX_1 = [ord(c) for c in "stmd"]
_SUFFIX_2 = [(ord(a), ord(b)) for a, b in ("re", "ve", "ll")]
# Merge-table keys and values pack two numbers into an int64.
_ID_BITS = 24
_NO_MERGE = np.iinfo(np.int64).max


@lru_cache(maxsize=1)
def byte_to_unicode() -> tuple[str, ...]:
    """GPT-2's printable stand-in for each byte, as `vocab.json` and `merges.txt` spell tokens.

    Bytes that are visible Latin-1 characters stand for themselves; the other 68 (controls,
    space, soft hyphen, ...) take the code points from U+0100 upwards, in byte order.
    """
    visible = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    table, extra = {}, 0
    for b in range(256):
        if b in visible:
            table[b] = chr(b)
        else:
            table[b] = chr(0x100 + extra)
            extra += 1
    return tuple(table[b] for b in range(256))


@lru_cache(maxsize=1)
def character_classes() -> tuple[np.ndarray, np.ndarray]:
    """Code-point ranges and their class (space, letter, number, other): `(starts, classes)`.

    Letters and numbers are the general categories L* and N* of Python's `unicodedata`; code
    points assigned after its Unicode version count as "other".
    """
    import unicodedata

    kinds = {"L": _LETTER, "N": _NUMBER}
    starts, classes, previous = [], [], None
    for cp in range(0x110000):
        kind = _SPACE if cp in WHITE_SPACE else kinds.get(unicodedata.category(chr(cp))[0], _OTHER)
        if kind != previous:
            starts.append(cp)
            classes.append(kind)
            previous = kind
    return np.array(starts, np.int32), np.array(classes, np.int32)


def token_to_bytes(token: str) -> bytes:
    """A `vocab.json` token string -> the bytes it stands for."""
    inverse = _unicode_to_byte()
    try:
        return bytes(inverse[c] for c in token)
    except KeyError as err:
        raise ValueError(f"{token!r} is not a byte-level BPE token (no byte for {err}).") from None


def bytes_to_token(data: bytes) -> str:
    """Bytes -> their `vocab.json` spelling."""
    table = byte_to_unicode()
    return "".join(table[b] for b in data)


@lru_cache(maxsize=1)
def _unicode_to_byte() -> dict[str, int]:
    return {c: b for b, c in enumerate(byte_to_unicode())}


def read_tiktoken_ranks(path) -> dict[bytes, int]:
    """Reads a tiktoken ranks file: one `<base64 of the token's bytes> <rank>` per line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No tiktoken ranks file at {path}.")
    ranks = {}
    for number, line in enumerate(path.read_text(encoding="ascii").splitlines(), 1):
        if not line.strip():
            continue
        try:
            token, rank = line.split()
            ranks[base64.b64decode(token, validate=True)] = int(rank)
        except ValueError as err:
            raise ValueError(f"{path}:{number} is not '<base64> <rank>' ({err}).") from None
    return ranks


def write_tiktoken_ranks(ranks: Mapping[bytes, int], path) -> Path:
    """Writes `ranks` as a tiktoken ranks file, in rank order."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ordered = sorted(ranks.items(), key=lambda x: x[1])
    lines = (f"{base64.b64encode(t).decode('ascii')} {r}\n" for t, r in ordered)
    path.write_text("".join(lines), encoding="ascii")
    return path


def _bpe_python(data: bytes, ranks: Mapping[bytes, int], below: int) -> list[bytes]:
    """tiktoken's rule in plain Python, merges of rank < `below` only: the lowest-rank adjacent
    pair (leftmost on ties) joins until none is a token. Used once per token to derive merges."""
    parts = [data[i : i + 1] for i in range(len(data))]
    while len(parts) > 1:
        best, where = below, -1
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1], below)
            if rank < best:
                best, where = rank, i
        if where < 0:
            break
        parts[where : where + 2] = [parts[where] + parts[where + 1]]
    return parts


def ranks_to_merges(ranks: Mapping[bytes, int]) -> list[tuple[bytes, bytes]]:
    """The merges list (`merges.txt` order) that a tiktoken ranks table implies.

    Each token of two or more bytes is the join of the two parts that byte-pair encoding with
    the lower-ranked tokens leaves of its bytes.
    """
    merges = []
    for token, rank in sorted(ranks.items(), key=lambda x: x[1]):
        if len(token) < 2:
            continue
        parts = _bpe_python(token, ranks, rank)
        if len(parts) != 2:
            raise ValueError(
                f"Token {token!r} (rank {rank}) is not the merge of two lower-ranked tokens."
            )
        merges.append((parts[0], parts[1]))
    return merges


def write_hf_files(
    ranks: Mapping[bytes, int], directory, special_tokens: Mapping[str, int] | None = None
) -> Path:
    """Writes a ranks table as Hugging Face `vocab.json` + `merges.txt` (GPT-2's layout).

    Args:
        ranks: token bytes -> id (a tiktoken table).
        directory: where the two files go.
        special_tokens: extra `vocab.json` entries such as `{"<|endoftext|>": 50256}`.

    Example:

    >>> ranks = read_tiktoken_ranks("gpt2.tiktoken")  # doctest: +SKIP
    >>> write_hf_files(ranks, "gpt2", {ENDOFTEXT: 50256})  # doctest: +SKIP
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    vocab = {bytes_to_token(t): i for t, i in ranks.items()}
    vocab.update(special_tokens or {})
    (directory / VOCAB_FILE).write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    lines = [f"{bytes_to_token(a)} {bytes_to_token(b)}\n" for a, b in ranks_to_merges(ranks)]
    (directory / MERGES_FILE).write_text("#version: 0.2\n" + "".join(lines), encoding="utf-8")
    return directory


def read_hf_files(directory_or_vocab, merges_path=None) -> tuple[dict[str, int], list[str]]:
    """Reads `vocab.json` (token -> id) and `merges.txt` (one `a b` pair per line)."""
    vocab_path = Path(directory_or_vocab)
    if vocab_path.is_dir():
        merges_path = vocab_path / MERGES_FILE
        vocab_path = vocab_path / VOCAB_FILE
    if merges_path is None:
        merges_path = vocab_path.with_name(MERGES_FILE)
    for p in (vocab_path, Path(merges_path)):
        if not p.is_file():
            raise FileNotFoundError(f"No {p.name} at {p}.")
    vocab = json.loads(vocab_path.read_text(encoding="utf-8"))
    merges = [
        line
        for line in Path(merges_path).read_text(encoding="utf-8").split("\n")
        if line and not line.startswith("#version")
    ]
    return vocab, merges


@keras.saving.register_keras_serializable(package="tfpretrain")
class BytePairTokenizer(keras.layers.Layer):
    """Byte-level BPE (GPT-2, RoBERTa) running in the TensorFlow graph, equal to `tiktoken`.

    Build it with `from_tiktoken` (a ranks file), `from_hf` (`vocab.json` + `merges.txt`) or
    `from_pretrained` (a folder holding either, or one written by `save`). Ids equal tiktoken's
    for the same table and pattern, and `detokenize(tokenize(s)) == s` for any valid UTF-8.

    Args:
        vocabulary: token -> id for every mergeable token, tokens spelt as in `vocab.json`
            (GPT-2's byte-to-unicode stand-ins). All 256 single bytes must be in it.
        merges: `merges.txt` lines (`"a b"`), in priority order; a pair merges only if listed.
            `None` applies tiktoken's rule instead: any adjacent pair whose join is a token
            merges, with the join's id as its rank.
        special_tokens: special token -> id, e.g. `{"<|endoftext|>": 50256}`. Never produced from
            ordinary text; `detokenize` writes them out.
        allowed_special: the special tokens `tokenize` recognises inside text (tiktoken's
            `allowed_special`), a list or `"all"`. Others are encoded as ordinary text.
        validate_utf8: fail (`InvalidArgumentError`) on input that is not valid UTF-8; if
            False, invalid bytes are read as U+FFFD.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: a string tensor `[B]` (or a scalar string).

    Returns:
        int32 ids as a `tf.RaggedTensor` `[B, None]` (a 1-D tensor for a scalar input).

    Example:

    >>> tok = BytePairTokenizer.from_tiktoken("gpt2.tiktoken")  # doctest: +SKIP
    >>> tok(tf.constant(["Hello world"])).to_list()  # doctest: +SKIP
    [[15496, 995]]
    >>> tok.detokenize(tok(tf.constant(["Hello world"]))).numpy()  # doctest: +SKIP
    array([b'Hello world'], dtype=object)
    """

    kind = "bpe"

    def __init__(
        self,
        vocabulary: Mapping[str, int],
        merges: Sequence[str] | None = None,
        special_tokens: Mapping[str, int] | None = None,
        allowed_special: Sequence[str] | str = (),
        validate_utf8: bool = True,
        **kwargs,
    ):
        kwargs.setdefault("dtype", "int32")
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        self.vocabulary = {str(t): int(i) for t, i in dict(vocabulary).items()}
        self.merges = None if merges is None else [str(m) for m in merges]
        self.special_tokens = {str(t): int(i) for t, i in dict(special_tokens or {}).items()}
        if allowed_special != "all":
            allowed_special = [str(t) for t in allowed_special]
        self.allowed_special = allowed_special
        self._allowed(None)  # checks the names
        self.validate_utf8 = bool(validate_utf8)

        token_bytes = {token_to_bytes(t): i for t, i in self.vocabulary.items()}
        if len(token_bytes) != len(self.vocabulary):
            raise ValueError("Two vocabulary entries spell the same bytes.")
        missing = [b for b in range(256) if bytes([b]) not in token_bytes]
        if missing:
            raise ValueError(
                f"A byte-level vocabulary needs all 256 bytes as tokens; {len(missing)} missing."
            )
        ids = sorted([*token_bytes.values(), *self.special_tokens.values()])
        if len(set(ids)) != len(ids):
            raise ValueError("Token ids must be distinct (special tokens included).")
        if ids[0] < 0 or ids[-1] >= 2**_ID_BITS:
            raise ValueError(f"Token ids must lie in [0, 2**{_ID_BITS}); got {ids[0]}..{ids[-1]}.")
        self._size = ids[-1] + 1
        left, right, value = self._merge_table(token_bytes)

        # Tables are created outside any graph being traced, so every tf.function can use them.
        with tf.init_scope():
            pieces = list(token_bytes)
            self._piece_table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(
                    tf.constant(pieces, tf.string),
                    tf.constant([token_bytes[p] for p in pieces], tf.int64),
                ),
                default_value=-1,
            )
            self._merge_lookup = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(
                    tf.constant((left << _ID_BITS) | right, tf.int64), tf.constant(value, tf.int64)
                ),
                default_value=_NO_MERGE,
            )
            specials = list(self.special_tokens)
            if specials:
                self._special_table = tf.lookup.StaticHashTable(
                    tf.lookup.KeyValueTensorInitializer(
                        tf.constant(specials, tf.string),
                        tf.constant([self.special_tokens[s] for s in specials], tf.int64),
                    ),
                    default_value=-1,
                )
        # id -> bytes for detokenize (ids that are no token give nothing), byte -> id for BPE.
        strings = [b""] * self._size
        for data, i in token_bytes.items():
            strings[i] = data
        for text, i in self.special_tokens.items():
            strings[i] = text.encode("utf-8")
        self._id_bytes = np.array(strings, dtype=object)
        self._byte_ids = np.array([token_bytes[bytes([b])] for b in range(256)], np.int64)
        with tf.init_scope():
            self._id_strings = tf.constant(strings, tf.string)
        # Kept out of Keras' and TensorFlow's attribute tracking: a cache, not state to save.
        self.__dict__["_graph_fns"] = {}
        self.built = True

    def _merge_table(self, token_bytes: dict[bytes, int]) -> tuple[np.ndarray, ...]:
        """(left id, right id, rank << 24 | merged id) for every pair that may merge."""
        left, right, value = [], [], []
        if self.merges is None:
            # tiktoken: a pair merges if its join is a token, ranked by the join's id.
            for data, i in token_bytes.items():
                for cut in range(1, len(data)):
                    a, b = token_bytes.get(data[:cut]), token_bytes.get(data[cut:])
                    if a is not None and b is not None:
                        left.append(a)
                        right.append(b)
                        value.append((i << _ID_BITS) | i)
        else:
            seen = set()
            for rank, line in enumerate(self.merges):
                parts = line.split(" ")
                if len(parts) != 2:
                    raise ValueError(f"merges line {rank + 1} is not two tokens: {line!r}.")
                a, b = (token_bytes.get(token_to_bytes(p)) for p in parts)
                joined = token_bytes.get(token_to_bytes(parts[0] + parts[1]))
                if a is None or b is None or joined is None:
                    raise ValueError(
                        f"merges line {rank + 1} ({line!r}) uses or makes a token that is not in "
                        "the vocabulary."
                    )
                if (a, b) in seen:
                    continue  # a repeated pair keeps its first (highest) priority
                seen.add((a, b))
                left.append(a)
                right.append(b)
                value.append((rank << _ID_BITS) | joined)
        return (np.array(left, np.int64), np.array(right, np.int64), np.array(value, np.int64))

    # ----------------------------------------------------------------------------- constructors
    @classmethod
    def from_tiktoken(
        cls, path, special_tokens: Mapping[str, int] | None = None, **kwargs
    ) -> BytePairTokenizer:
        """From a tiktoken ranks file; `special_tokens` defaults to GPT-2's `<|endoftext|>`
        taking the id after the last rank (50256 for GPT-2).

        Example:

        >>> tok = BytePairTokenizer.from_tiktoken("gpt2.tiktoken")  # doctest: +SKIP
        """
        ranks = read_tiktoken_ranks(path)
        if special_tokens is None:
            special_tokens = {ENDOFTEXT: max(ranks.values()) + 1}
        return cls({bytes_to_token(t): r for t, r in ranks.items()}, None, special_tokens, **kwargs)

    @classmethod
    def from_hf(
        cls, vocab_path, merges_path=None, special_tokens: Sequence[str] | None = None, **kwargs
    ) -> BytePairTokenizer:
        """From Hugging Face `vocab.json` + `merges.txt` (GPT-2 or RoBERTa layout).

        Args:
            vocab_path: the `vocab.json` file, or a folder holding both files.
            merges_path: the `merges.txt` file (default: beside `vocab.json`).
            special_tokens: `vocab.json` entries that are special tokens (default: those of
                `<|endoftext|>`, `<s>`, `</s>`, `<pad>`, `<unk>`, `<mask>` it holds).
        """
        vocab, merges = read_hf_files(vocab_path, merges_path)
        if special_tokens is None:
            known = (ENDOFTEXT, "<s>", "</s>", "<pad>", "<unk>", "<mask>")
            special_tokens = [t for t in known if t in vocab]
        missing = [t for t in special_tokens if t not in vocab]
        if missing:
            raise ValueError(f"Special tokens {missing} are not in {VOCAB_FILE}.")
        specials = {t: vocab[t] for t in special_tokens}
        ordinary = {t: i for t, i in vocab.items() if t not in specials}
        return cls(ordinary, merges, specials, **kwargs)

    @classmethod
    def from_pretrained(cls, path, **kwargs) -> BytePairTokenizer:
        """From a folder: one `save` wrote, a Hugging Face GPT-2/RoBERTa tokenizer folder
        (`vocab.json` + `merges.txt`), or a `*.tiktoken` file (or a folder with one)."""
        path = Path(path)
        if path.is_file():
            return cls.from_tiktoken(path, **kwargs)
        if (path / BPE_CONFIG_FILE).is_file() and not kwargs:
            return cls.load(path)
        if (path / VOCAB_FILE).is_file():
            return cls.from_hf(path, **kwargs)
        found = sorted(path.glob("*.tiktoken"))
        if len(found) == 1:
            return cls.from_tiktoken(found[0], **kwargs)
        raise FileNotFoundError(
            f"No BPE tokenizer in {path} (expected {VOCAB_FILE} + {MERGES_FILE}, or one "
            "*.tiktoken file)."
        )

    # ------------------------------------------------------------------------------- properties
    @property
    def vocabulary_size(self) -> int:
        """One more than the largest id (special tokens included): the embedding's row count."""
        return self._size

    def token_to_id(self, token: str) -> int:
        """The id of a special token or of a `vocab.json`-spelt token."""
        if token in self.special_tokens:
            return self.special_tokens[token]
        return self.vocabulary[token]

    def id_to_token(self, token_id: int) -> bytes:
        """The bytes an id stands for (a special token's text in UTF-8)."""
        return bytes(self._id_bytes[int(token_id)])

    # --------------------------------------------------------------------------------- in-graph
    def tokenize(
        self, strings, allowed_special: Sequence[str] | str | None = None
    ) -> tf.RaggedTensor:
        """Strings `[B]` -> ragged int32 ids `[B, None]`; a scalar string gives a 1-D tensor.

        Args:
            strings: UTF-8 strings.
            allowed_special: special tokens to recognise in the text, a list or `"all"`
                (default: the layer's `allowed_special`).
        """
        strings = tf.convert_to_tensor(strings)
        if strings.dtype != tf.string:
            raise TypeError(f"BytePairTokenizer takes strings; got {strings.dtype}.")
        scalar = strings.shape.rank == 0
        if scalar:
            strings = strings[None]
        specials = self._allowed(allowed_special)
        if tf.executing_eagerly():
            # Eagerly the merge loop would run op by op; one traced graph per setting instead.
            if specials not in self._graph_fns:
                self._graph_fns[specials] = tf.function(
                    lambda s: self._tokenize(s, specials),
                    input_signature=[tf.TensorSpec([None], tf.string)],
                    autograph=False,
                )
            ids = self._graph_fns[specials](tf.reshape(strings, [-1]))
        else:
            ids = self._tokenize(tf.reshape(strings, [-1]), specials)
        return ids[0] if scalar else ids

    def call(self, inputs):
        return self.tokenize(inputs)

    def pack(self, strings, sequence_length: int, pairs=None) -> dict[str, tf.Tensor]:
        """Texts -> RoBERTa's encoder inputs `<s> a </s>` (with `pairs`: `<s> a </s></s> b </s>`),
        `<pad>`ded to a length.

        Too long inputs are cut: a single text at the end; a pair round-robin, one token from
        the longer side at a time, so both keep a share. Needs `<s>`, `</s>` and `<pad>` among
        the special tokens (a RoBERTa `vocab.json` has them).

        Returns:
            A dict of int32 `[B, sequence_length]` tensors: `token_ids`, `segment_ids`
            (zeros: RoBERTa has no segment embedding) and `padding_mask` (1 for real tokens),
            as `WordPieceTokenizer.pack`.
        """
        missing = [t for t in ("<s>", "</s>", "<pad>") if t not in self.special_tokens]
        if missing:
            raise ValueError(
                f"pack needs the special tokens {missing}, which this vocabulary "
                "lacks (a RoBERTa vocab.json has <s>, </s> and <pad>)."
            )
        length = int(sequence_length)
        extra = 2 if pairs is None else 4
        if length < extra + 1:
            raise ValueError(
                f"sequence_length must be > {extra} (the special tokens); got {length}."
            )
        ids = self.tokenize(strings)
        rows = ids.nrows()
        start, end = (
            tf.fill([rows, 1], tf.constant(self.special_tokens[t], tf.int32))
            for t in ("<s>", "</s>")
        )
        if pairs is None:
            ids = tf.concat([start, ids[:, : length - 2], end], axis=1)
        else:
            first, second = tf_text.RoundRobinTrimmer(max_seq_length=length - 4).trim(
                [ids, self.tokenize(pairs)]
            )
            ids = tf.concat([start, first, end, end, second, end], axis=1)
        token_ids = ids.to_tensor(default_value=self.special_tokens["<pad>"], shape=[None, length])
        mask = tf.sequence_mask(ids.row_lengths(), length, dtype=tf.int32)
        return {
            "token_ids": token_ids,
            "segment_ids": tf.zeros_like(token_ids),
            "padding_mask": mask,
        }

    def detokenize(self, ids) -> tf.Tensor:
        """Ids `[B, None]` (ragged or dense) -> `[B]` strings of their bytes, special tokens
        written out. Rows that end inside a character give its bytes as they are."""
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.convert_to_tensor(ids)
            if ids.shape.rank == 1:
                return self.detokenize(ids[None])[0]
            ids = tf.RaggedTensor.from_tensor(ids)
        pieces = tf.gather(self._id_strings, tf.cast(ids, tf.int64))
        return tf.strings.reduce_join(pieces, axis=-1)

    def _allowed(self, allowed_special) -> tuple[str, ...]:
        allowed = self.allowed_special if allowed_special is None else allowed_special
        if allowed == "all":
            allowed = list(self.special_tokens)
        unknown = [t for t in allowed if t not in self.special_tokens]
        if unknown:
            raise ValueError(f"allowed_special names tokens that are not special: {unknown}.")
        # Longest first, so a special token that begins another does not cut it short.
        return tuple(sorted(set(allowed), key=lambda t: (-len(t), t)))

    def _tokenize(self, strings: tf.Tensor, specials: tuple[str, ...]) -> tf.RaggedTensor:
        if not specials:
            return self._encode_ordinary(strings)
        # Cut each row at the allowed special tokens (plain string splits: tensorflow-text's
        # regex_split stops at a NUL byte); the parts between are encoded apart, as tiktoken
        # does, so a piece never reaches across a special token. `ids` is -1 for text.
        texts, ids = strings, tf.fill(tf.shape(strings), tf.constant(-1, tf.int64))
        rows = tf.range(tf.size(strings, out_type=tf.int64))
        for special in specials:
            parts = tf.strings.split(tf.where(ids < 0, texts, ""), special)
            owner = parts.value_rowids()
            last = tf.equal(
                tf.range(tf.size(owner, out_type=tf.int64)) + 1,
                tf.gather(parts.row_limits(), owner),
            )
            # Every part but a row's last is followed by the special token.
            texts = tf.reshape(tf.stack([parts.flat_values, tf.fill(tf.shape(owner), "")], 1), [-1])
            special_id = tf.fill(
                tf.shape(owner), tf.constant(self.special_tokens[special], tf.int64)
            )
            ids = tf.reshape(tf.stack([tf.gather(ids, owner), special_id], 1), [-1])
            owner_rows = tf.gather(rows, owner)
            rows = tf.reshape(tf.stack([owner_rows, owner_rows], 1), [-1])
            keep = tf.reshape(tf.stack([tf.ones_like(last), ~last], 1), [-1])
            texts, ids, rows = (tf.boolean_mask(t, keep) for t in (texts, ids, rows))
        encoded = self._encode_ordinary(texts)  # special tokens' segments are empty text
        is_special = ids >= 0
        special_rows = tf.RaggedTensor.from_row_lengths(
            tf.cast(tf.boolean_mask(ids, is_special), tf.int32), tf.cast(is_special, tf.int64)
        )
        per_segment = tf.concat([encoded, special_rows], axis=1)
        grouped = tf.RaggedTensor.from_value_rowids(
            per_segment, rows, nrows=tf.size(strings, tf.int64)
        )
        return grouped.merge_dims(1, 2)

    def _pieces(self, strings: tf.Tensor) -> tf.RaggedTensor:
        """Strings `[B]` -> GPT-2's pre-tokenization pieces `[B, None]` (strings).

        The pattern's matches are found from character classes, all characters at once: a piece
        starts where the class changes, with three exceptions that follow from its alternatives.
        A run of whitespace followed by text gives its last character to a piece of its own
        (`\\s+(?!\\S)`), and if that character is a space it joins the word after it
        (` ?\\p{L}+` and kin). An apostrophe that starts a piece takes a contraction suffix
        (`'s`, `'ll`, ...) along, and the letters after the suffix start a new piece.
        """
        errors = "strict" if self.validate_utf8 else "replace"
        chars = tf.strings.unicode_decode(strings, "UTF-8", errors=errors)
        cp = chars.flat_values
        n = tf.size(cp)
        starts, classes = character_classes()
        kind = tf.gather(classes, tf.searchsorted(starts, cp, side="right") - 1)
        row_starts = tf.cast(chars.row_starts(), tf.int32)
        first = tf.scatter_nd(row_starts[:, None], tf.ones_like(row_starts), [n + 1])[:n] > 0
        last = _shift(first, -1, True)
        space = tf.equal(kind, _SPACE)
        # The last whitespace character before text (where `\s+(?!\S)` stops short).
        split = space & ~last & ~_shift(space, -1, False)
        attach = split & tf.equal(cp, ord(" "))
        begins = first | tf.not_equal(kind, _shift(kind, 1, -1)) | split
        begins &= ~_shift(attach, 1, False)
        # Contractions: an apostrophe that starts a piece, then a suffix in the same row.
        lead = begins & tf.equal(cp, _APOSTROPHE) & ~last
        cp1, cp2 = _shift(cp, -1, -1), _shift(cp, -2, -1)
        short = lead & tf.reduce_any(tf.equal(cp1[:, None], [_SUFFIX_1]), axis=1)
        pairs = tf.equal(cp1[:, None], [[a for a, _ in _SUFFIX_2]])
        pairs &= tf.equal(cp2[:, None], [[b for _, b in _SUFFIX_2]])
        long = lead & ~_shift(last, -1, True) & tf.reduce_any(pairs, axis=1)
        joined = _shift(short | long, 1, False)  # the suffix's first letter stays with the '
        after = _shift(short, 2, False) | _shift(long, 3, False)  # a new piece after the suffix
        begins = (begins & ~joined) | after
        # Pieces are runs of characters from one start to the next, re-encoded to UTF-8.
        pieces = tf.RaggedTensor.from_row_starts(cp, tf.where(begins)[:, 0])
        per_row = tf.math.unsorted_segment_sum(
            tf.cast(begins, tf.int64), chars.value_rowids(), chars.nrows()
        )
        return tf.RaggedTensor.from_row_lengths(tf.strings.unicode_encode(pieces, "UTF-8"), per_row)

    def _encode_ordinary(self, strings: tf.Tensor) -> tf.RaggedTensor:
        """Strings `[B]` (no special tokens recognised) -> ragged int32 ids `[B, None]`."""
        pieces = self._pieces(strings)
        flat = pieces.flat_values
        whole = self._piece_table.lookup(flat)
        found = whole >= 0
        position = tf.range(tf.size(flat))
        hit = tf.where(found)[:, 0]
        miss = tf.where(~found)[:, 0]
        merged = self._merge(tf.gather(flat, miss))
        hits = tf.RaggedTensor.from_row_lengths(tf.gather(whole, hit), tf.ones_like(hit))
        order = tf.argsort(tf.concat([tf.gather(position, hit), tf.gather(position, miss)], 0))
        per_piece = tf.gather(tf.concat([hits, merged], 0), order)
        return tf.cast(pieces.with_flat_values(per_piece).merge_dims(1, 2), tf.int32)

    def _merge(self, pieces: tf.Tensor) -> tf.RaggedTensor:
        """Pieces `[P]` (strings) -> their BPE ids, ragged int64 `[P, None]`."""
        lengths = tf.strings.length(pieces)
        data = tf.io.decode_raw(tf.strings.reduce_join(pieces), tf.uint8)
        ids = tf.gather(tf.constant(self._byte_ids), tf.cast(data, tf.int32))
        rows = tf.range(tf.size(pieces))
        # Finished pieces' ids, lengths and row numbers, one element per round.
        out = [
            tf.TensorArray(tf.int64, 0, dynamic_size=True, infer_shape=False, element_shape=[None])
            for _ in range(3)
        ]

        def round_(ids, lengths, rows, out_ids, out_lengths, out_rows, step):
            # One merge per unfinished piece: the lowest-ranked pair, leftmost on ties.
            row_of = tf.repeat(tf.range(tf.size(lengths)), lengths)
            n = tf.size(ids)
            key = ids[:-1] * 2**_ID_BITS + ids[1:]
            same_row = tf.equal(row_of[:-1], row_of[1:])
            value = tf.where(same_row, self._merge_lookup.lookup(key), _NO_MERGE)
            # A piece of one token has no pair: its minimum is the int64 maximum, _NO_MERGE.
            best = tf.math.unsorted_segment_min(value, row_of[:-1], tf.size(lengths))
            at_best = tf.equal(value, tf.gather(best, row_of[:-1])) & (value < _NO_MERGE)
            index = tf.range(n - 1)
            first = tf.math.unsorted_segment_min(
                tf.where(at_best, index, n), row_of[:-1], tf.size(lengths)
            )
            done = tf.equal(best, _NO_MERGE)
            # Finished pieces leave the loop.
            done_el = tf.gather(done, row_of)
            out_ids = out_ids.write(step, tf.boolean_mask(ids, done_el))
            out_lengths = out_lengths.write(step, tf.cast(tf.boolean_mask(lengths, done), tf.int64))
            out_rows = out_rows.write(step, tf.cast(tf.boolean_mask(rows, done), tf.int64))
            # The rest: the pair's left slot takes the merged id, its right slot goes.
            element = tf.range(n)
            first_el = tf.gather(first, row_of)
            merged_id = tf.gather(best % 2**_ID_BITS, row_of)
            new_ids = tf.where(tf.equal(element, first_el), merged_id, ids)
            keep = ~done_el & ~tf.equal(element, first_el + 1)
            return (
                tf.boolean_mask(new_ids, keep),
                tf.boolean_mask(lengths - 1, ~done),
                tf.boolean_mask(rows, ~done),
                out_ids,
                out_lengths,
                out_rows,
                step + 1,
            )

        state = tf.while_loop(
            lambda ids, lengths, *_: tf.size(lengths) > 0,
            round_,
            (ids, lengths, rows, *out, tf.constant(0)),
            shape_invariants=(tf.TensorShape([None]),) * 3 + (None, None, None, tf.TensorShape([])),
        )
        out_ids, out_lengths, out_rows = (tf.reshape(ta.concat(), [-1]) for ta in state[3:6])
        merged = tf.RaggedTensor.from_row_lengths(out_ids, out_lengths)
        return tf.gather(merged, tf.argsort(out_rows))

    # ------------------------------------------------------------------- Python-side convenience
    def encode(self, text: str) -> np.ndarray:
        """Token ids (int32) of one text."""
        return self.tokenize(tf.constant([text]))[0].numpy()

    def decode(self, ids: Iterable[int]) -> str:
        """The text of token ids (bytes that do not form UTF-8 become U+FFFD)."""
        ids = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocabulary_size):
            raise ValueError(
                f"Token ids must be in [0, {self.vocabulary_size}); got {ids.min()}..{ids.max()}."
            )
        return b"".join(self._id_bytes[ids].tolist()).decode("utf-8", errors="replace")

    def tf_encode(self, strings: tf.Tensor) -> tf.RaggedTensor:
        """In-graph `[B]` strings -> ragged int32 ids, as the other language-model tokenizers."""
        return self.tokenize(strings)

    def tf_decode(self, ids) -> tf.Tensor:
        return self.detokenize(ids)

    def trackables(self) -> list:
        """What an export must track: this layer, which holds the lookup tables."""
        return [self]

    def compute_output_spec(self, inputs):
        return keras.KerasTensor((None, None), dtype="int32", ragged=True)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary": self.vocabulary,
                "merges": self.merges,
                "special_tokens": self.special_tokens,
                "allowed_special": self.allowed_special,
                "validate_utf8": self.validate_utf8,
            }
        )
        return config

    # ------------------------------------------------------------------------------ save / load
    def save(self, directory) -> Path:
        """Writes `vocab.json` (+ `merges.txt` when pairs are listed) and `bpe_config.json`."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        vocab = {**self.vocabulary, **self.special_tokens}
        (directory / VOCAB_FILE).write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        if self.merges is not None:
            text = "#version: 0.2\n" + "".join(m + "\n" for m in self.merges)
            (directory / MERGES_FILE).write_text(text, encoding="utf-8")
        settings = {
            "kind": self.kind,
            "merge_rule": "tiktoken" if self.merges is None else "merges",
            "special_tokens": self.special_tokens,
            "allowed_special": self.allowed_special,
            "validate_utf8": self.validate_utf8,
        }
        path = directory / BPE_CONFIG_FILE
        path.write_text(json.dumps(settings, indent=1, ensure_ascii=False), encoding="utf-8")
        return path

    @classmethod
    def load(cls, directory) -> BytePairTokenizer:
        """Reads what `save` wrote."""
        directory = Path(directory)
        path = directory / BPE_CONFIG_FILE
        if not path.is_file():
            raise FileNotFoundError(f"No BPE tokenizer at {path}.")
        settings = json.loads(path.read_text(encoding="utf-8"))
        vocab = json.loads((directory / VOCAB_FILE).read_text(encoding="utf-8"))
        specials = settings["special_tokens"]
        ordinary = {t: i for t, i in vocab.items() if t not in specials}
        merges = None
        if settings["merge_rule"] == "merges":
            merges = read_hf_files(directory)[1]
        return cls(
            ordinary,
            merges,
            specials,
            allowed_special=settings["allowed_special"],
            validate_utf8=settings["validate_utf8"],
        )


def _shift(x: tf.Tensor, k: int, fill) -> tf.Tensor:
    """`y[i] = x[i - k]` along a 1-D tensor, `fill` where that falls outside."""
    pad = tf.fill([abs(k)], tf.constant(fill, x.dtype))
    if k > 0:
        return tf.concat([pad, x], 0)[: tf.size(x)]
    return tf.concat([x, pad], 0)[-k:]
