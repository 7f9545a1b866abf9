"""The encoder-decoder (T5) family: `Seq2SeqLM`, a functional model, and its cached decoding
steps."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from tfpretrain.generation import Generator, bucket, require
from tfpretrain.layers.activations import serialize_activation
from tfpretrain.layers.decoder import DecoderBlock
from tfpretrain.layers.dropout import Dropout
from tfpretrain.layers.embedding import TokenAndPositionEmbedding
from tfpretrain.layers.normalization import make_norm
from tfpretrain.layers.position_bias import RelativePositionBias
from tfpretrain.layers.transformer import TransformerBlock
from tfpretrain.settings import from_dict

ENCODER_IDS = "encoder_token_ids"
DECODER_IDS = "decoder_token_ids"


@dataclasses.dataclass
class Seq2SeqConfig:
    """Shape and conventions of a `Seq2SeqLM` (T5: Raffel et al., 2020).

    `pad_id` pads encoder inputs (masked out) and also starts every decoder input, as in T5;
    `eos_id` ends every target. Token ids at or above `vocabulary_size - num_sentinels` are the
    span-corruption sentinels.

    T5 v1.1 / FLAN-T5 checkpoints need three more choices: `head_dim` (heads need not split
    `hidden_dim`: 6 heads of 64 on 512), `gated_ffn` (gated-GELU feed-forward) and
    `tie_output=False`, an output head of its own (`lm_head`) whose logits are not scaled; a
    tied head (T5 v1.0, models trained here) is the embedding, scaled by `hidden_dim ** -0.5`.
    """

    vocabulary_size: int = 32128
    hidden_dim: int = 512
    num_heads: int = 8
    intermediate_dim: int = 2048
    num_encoder_layers: int = 6
    num_decoder_layers: int = 6
    dropout: float = 0.1
    activation: str = "relu"
    layer_norm_epsilon: float = 1e-6
    relative_buckets: int = 32
    relative_max_distance: int = 128
    # T5 checkpoints leave attention scores unscaled (the factor is folded into their init);
    # models trained here from Glorot-initialised weights scale them.
    scale_attention: bool = True
    encoder_length: int = 512
    decoder_length: int = 128
    pad_id: int = 0
    eos_id: int = 1
    num_sentinels: int = 100
    head_dim: int | None = None
    gated_ffn: bool = False
    tie_output: bool = True

    def __post_init__(self):
        for name in (
            "vocabulary_size",
            "hidden_dim",
            "num_heads",
            "intermediate_dim",
            "num_encoder_layers",
            "num_decoder_layers",
            "encoder_length",
            "decoder_length",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"Seq2SeqConfig.{name} must be a positive integer; got {value!r}.")
        if self.head_dim is not None and (not isinstance(self.head_dim, int) or self.head_dim <= 0):
            raise ValueError(
                f"Seq2SeqConfig.head_dim must be a positive integer or None; got {self.head_dim!r}."
            )
        if self.head_dim is None and self.hidden_dim % self.num_heads:
            raise ValueError(
                f"hidden_dim ({self.hidden_dim}) must be divisible by num_heads "
                f"({self.num_heads}), or head_dim set."
            )
        if self.num_sentinels < 0 or self.num_sentinels >= self.vocabulary_size:
            raise ValueError(
                f"num_sentinels must be in [0, vocabulary_size); got {self.num_sentinels}."
            )
        for name in ("pad_id", "eos_id"):
            if not 0 <= getattr(self, name) < self.sentinel_start:
                raise ValueError(
                    f"{name} must be a non-sentinel token id; got {getattr(self, name)}."
                )

    @property
    def sentinel_start(self) -> int:
        return self.vocabulary_size - self.num_sentinels

    @classmethod
    def preset(cls, name: str, **overrides) -> Seq2SeqConfig:
        """A named shape: `t5-tiny` (4+4 layers, 256 wide) or `t5-small` (T5's published 6+6,
        512)."""
        if name not in PRESETS:
            raise ValueError(
                f"Unknown seq2seq preset {name!r}; choose one of {', '.join(PRESETS)}."
            )
        return cls(**{**PRESETS[name], **overrides})

    @classmethod
    def from_dict(cls, values: dict) -> Seq2SeqConfig:
        return from_dict(cls, values, "seq2seq")


PRESETS = {
    "t5-tiny": dict(
        hidden_dim=256,
        num_heads=4,
        intermediate_dim=1024,
        num_encoder_layers=4,
        num_decoder_layers=4,
        encoder_length=256,
        decoder_length=128,
    ),
    "t5-small": dict(
        hidden_dim=512,
        num_heads=8,
        intermediate_dim=2048,
        num_encoder_layers=6,
        num_decoder_layers=6,
        encoder_length=512,
        decoder_length=128,
    ),
}


def build_seq2seq(config: Seq2SeqConfig) -> keras.Model:
    """Builds `Seq2SeqLM`:
    `{encoder_token_ids [B, S], decoder_token_ids [B, T]} -> logits [B, T, V]`.

    A shared token embedding feeds the encoder and the decoder; the output head is the same
    matrix transposed (logits float32, scaled by `hidden_dim ** -0.5` as in T5), or with
    `tie_output=False` a table of its own named `lm_head`, unscaled (T5 v1.1). Encoder
    positions equal to `pad_id` are masked out of both attentions; the decoder is causal.
    Layers are named `token_embedding`, `encoder_position_bias`, `encoder_block_{i}`,
    `encoder_norm`, `decoder_position_bias`, `decoder_block_{i}` and `decoder_norm`, which is
    what `Seq2SeqDecoder` uses for cached generation.

    Example:

    >>> model = build_seq2seq(Seq2SeqConfig.preset("t5-tiny", vocabulary_size=1000))
    >>> model.output_shape
    (None, None, 1000)
    """
    c = config
    enc_ids = keras.Input((None,), dtype="int32", name=ENCODER_IDS)
    dec_ids = keras.Input((None,), dtype="int32", name=DECODER_IDS)
    embedding = TokenAndPositionEmbedding(
        c.vocabulary_size,
        c.encoder_length,
        c.hidden_dim,
        position_embedding=False,
        embeddings_initializer=keras.initializers.RandomNormal(stddev=1.0),
        name="token_embedding",
    )
    # Kernels keep Keras' Glorot rule. T5's own N(0, 1 / fan_in) (queries and keys six times
    # larger at 256 wide) trained worse with the AdamW recipes here: see BENCHMARKS.md.
    common = dict(
        dropout=c.dropout,
        activation=c.activation,
        layer_norm_epsilon=c.layer_norm_epsilon,
        norm="rms",
        use_bias=False,
        scale_attention=c.scale_attention,
        head_dim=c.head_dim,
        gated_ffn=c.gated_ffn,
    )
    encoder_mask = ops.not_equal(enc_ids, c.pad_id)

    x = Dropout(c.dropout, name="encoder_dropout")(embedding(enc_ids))
    bias = RelativePositionBias(
        c.num_heads,
        c.relative_buckets,
        c.relative_max_distance,
        bidirectional=True,
        name="encoder_position_bias",
    )(x)
    for i in range(c.num_encoder_layers):
        x = TransformerBlock(
            c.num_heads,
            c.hidden_dim,
            c.intermediate_dim,
            norm_first=True,
            name=f"encoder_block_{i}",
            **common,
        )(x, attention_mask=encoder_mask, attention_bias=bias)
    encoded = Dropout(c.dropout, name="encoder_output_dropout")(
        make_norm("rms", c.layer_norm_epsilon, name="encoder_norm")(x)
    )

    y = Dropout(c.dropout, name="decoder_dropout")(embedding(dec_ids))
    bias = RelativePositionBias(
        c.num_heads,
        c.relative_buckets,
        c.relative_max_distance,
        bidirectional=False,
        name="decoder_position_bias",
    )(y)
    for i in range(c.num_decoder_layers):
        y = DecoderBlock(
            c.num_heads, c.hidden_dim, c.intermediate_dim, name=f"decoder_block_{i}", **common
        )(y, encoded, encoder_mask=encoder_mask, self_attention_bias=bias)
    y = Dropout(c.dropout, name="decoder_output_dropout")(
        make_norm("rms", c.layer_norm_epsilon, name="decoder_norm")(y)
    )
    head = (
        None
        if c.tie_output
        else TokenAndPositionEmbedding(
            c.vocabulary_size,
            c.encoder_length,
            c.hidden_dim,
            position_embedding=False,
            embeddings_initializer=keras.initializers.RandomNormal(stddev=1.0),
            name="lm_head",
        )
    )
    logits = _logits(y, embedding, head, c.hidden_dim)
    return keras.Model({ENCODER_IDS: enc_ids, DECODER_IDS: dec_ids}, logits, name="seq2seq_lm")


def _logits(y, embedding: TokenAndPositionEmbedding, head, hidden_dim: int):
    """Decoder outputs `[B, T, D]` -> logits: the scaled, tied embedding, or `head` unscaled."""
    if head is None:
        return embedding(y * (hidden_dim**-0.5), reverse=True)
    return head(y, reverse=True)


class Seq2SeqDecoder:
    """Cached, step-by-step decoding with the layers of a `build_seq2seq` model.

    The encoder runs once (`initial_cache`), each decoder block's cross-attention keys and
    values are computed once from its outputs, and the self-attention keys and values of the
    generated tokens go to a `(keys, values)` cache per block, each `[B, H, T_max, K]`. `step`
    fits the step function contract of `tfpretrain.generation.decode_loop`.

    Args:
        model: a model built by `build_seq2seq` (or loaded from `.keras`).
        config: its `Seq2SeqConfig`.
    """

    def __init__(self, model: keras.Model, config: Seq2SeqConfig):
        self.model = model
        self.config = config
        self.embedding = model.get_layer("token_embedding")
        self.encoder_bias = model.get_layer("encoder_position_bias")
        self.encoder_blocks = [
            model.get_layer(f"encoder_block_{i}") for i in range(config.num_encoder_layers)
        ]
        self.encoder_norm = model.get_layer("encoder_norm")
        self.decoder_bias = model.get_layer("decoder_position_bias")
        self.decoder_blocks = [
            model.get_layer(f"decoder_block_{i}") for i in range(config.num_decoder_layers)
        ]
        self.decoder_norm = model.get_layer("decoder_norm")
        self.head = None if config.tie_output else model.get_layer("lm_head")

    @property
    def vocabulary_size(self) -> int:
        return self.config.vocabulary_size

    def encode(self, encoder_token_ids):
        """`[B, S]` ids -> (encoder outputs `[B, S, D]`, padding mask `[B, S]`)."""
        mask = ops.not_equal(encoder_token_ids, self.config.pad_id)
        x = self.embedding(encoder_token_ids)
        bias = self.encoder_bias(x)
        for block in self.encoder_blocks:
            x = block(x, attention_mask=mask, attention_bias=bias, training=False)
        return self.encoder_norm(x), mask

    def initial_cache(self, encoder_token_ids, max_length: int) -> dict:
        """Runs the encoder and returns the decoding cache for up to `max_length` decoder steps."""
        encoded, mask = self.encode(encoder_token_ids)
        batch = ops.shape(encoder_token_ids)[0]
        return {
            "self": [
                block.self_attention.empty_cache(batch, max_length) for block in self.decoder_blocks
            ],
            "cross": [block.cross_key_value(encoded) for block in self.decoder_blocks],
            "encoder_mask": mask,
        }

    def step(self, token_ids, cache: dict, index):
        """Decodes `token_ids` `[B, 1]` at position `index`: (float32 logits `[B, V]`, cache)."""
        y = self.embedding(token_ids)
        max_length = ops.shape(cache["self"][0][0])[2]
        bias = self.decoder_bias(y, key_length=max_length, query_offset=index)
        new_self = []
        for block, layer_cache, cross in zip(
            self.decoder_blocks, cache["self"], cache["cross"], strict=True
        ):
            y, layer_cache = block(
                y,
                encoder_mask=cache["encoder_mask"],
                self_attention_bias=bias,
                cross_key_value=cross,
                cache=layer_cache,
                cache_index=index,
                training=False,
            )
            new_self.append(layer_cache)
        logits = _logits(self.decoder_norm(y), self.embedding, self.head, self.config.hidden_dim)
        logits = logits[:, -1, :]
        return logits, {**cache, "self": new_self}


class Seq2SeqGenerator(Generator):
    """Text to text with a `Seq2SeqLM`: XLA-compiled sampling, greedy or beam-search decoding.

    The encoder runs once per call, each decoder block's cross-attention keys and values are
    computed once (and shared by the beams of an input), and the decoder self-attention uses a
    key/value cache. Every output starts from `pad_id`, T5's start token, which is not output;
    `max_length` counts output tokens and decoding stops at `eos_id`. Compilations are cached
    per batch size, input-length bucket, output-length bucket and beams (see `Generator`).

    Args:
        model: a model from `build_seq2seq`.
        config: its `Seq2SeqConfig`.
        tokenizer: its `Seq2SeqTokenizer` (or anything with `encode`/`decode`), or None to
            generate from token ids only.
        jit_compile: compile the loops with XLA.

    Example:

    >>> generator = Seq2SeqGenerator(model, config, tokenizer)  # doctest: +SKIP
    >>> generator.generate(["sst2 sentence: a fine film"], max_length=4,
    ...                    greedy=True)  # doctest: +SKIP
    [['positive']]
    """

    prompt_name = "input"
    prompt_context = "the encoder context"
    output_start = 1  # the start token

    def __init__(
        self, model: keras.Model, config: Seq2SeqConfig, tokenizer=None, jit_compile: bool = True
    ):
        # A model may have spare rows (T5's 32128 for 32100 tokens), never fewer than its ids.
        if tokenizer is not None and tokenizer.vocabulary_size > config.vocabulary_size:
            raise ValueError(
                f"The tokenizer has {tokenizer.vocabulary_size} ids but the model only "
                f"{config.vocabulary_size}; they do not belong together."
            )
        super().__init__(
            Seq2SeqDecoder(model, config),
            tokenizer,
            prompt_limit=config.encoder_length,
            pad_id=config.pad_id,
            end_token=config.eos_id,
            jit_compile=jit_compile,
        )
        self.config = config

    def _initial_cache(self, inputs, batch_size, width: int):
        return self.decoder.initial_cache(inputs, width)

    def _layout(self, rows: list[np.ndarray], max_length: int) -> tuple:
        c = self.config
        encoder_ids = self.pack(rows, bucket(max(len(row) for row in rows), c.encoder_length))
        # Every output starts from the start token (pad_id) alone.
        starts = self.pack([[]] * len(rows), bucket(max_length + 1, c.decoder_length))
        return encoder_ids, starts, np.ones(len(rows), np.int32), max_length + 1, 0

    def _length_checks(self, lengths, max_length) -> list[tuple]:
        most = self.config.decoder_length - 1  # the start token takes one position
        return [
            (max_length > 0, "max_length (output tokens) must be >= 1."),
            (
                max_length <= most,
                "max_length plus the start token must fit the decoder "
                f"context of {most + 1}; ask for at most {most} tokens.",
            ),
        ]

    def _encode(self, texts: Sequence[str]) -> list[list[int]]:
        """The encoder's id lists for `texts`: each text's tokens and the end token."""
        encoded = [self.tokenizer.encode(text) for text in texts]
        require([self.empty_check(np.array([len(ids) for ids in encoded]))])
        return [[*map(int, ids), self.config.eos_id] for ids in encoded]

    def generate(self, inputs: str | Sequence[str], max_length: int, **kwargs) -> list[list[str]]:
        """Strings in, `[input][sequence]` strings out.

        `generate_ids` takes the encoder's id lists, the end token included, and gives the
        output ids without the start and end tokens; `max_length` counts output tokens.

        Args:
            inputs: one string or a list of strings.
            max_length: output tokens at most (the end token included).
            **kwargs: as in `Generator.generate_ids`: `num_return_sequences`, `num_beams`,
                `length_penalty`, `seed` and the sampler's `temperature`, `top_k`, `top_p`,
                `greedy`.

        Raises:
            ValueError: an input that tokenizes to nothing or exceeds the encoder's context,
                `max_length` beyond the decoder's context, `num_beams` below 1, sampler
                settings out of range.
        """
        if self.tokenizer is None:
            raise ValueError("Seq2SeqGenerator needs a tokenizer to generate from text.")
        texts = [inputs] if isinstance(inputs, str) else list(inputs)
        return self._texts(self.generate_ids(self._encode(texts), max_length, **kwargs))


def from_pretrained(path, dropout: float | None = None) -> tuple[keras.Model, Seq2SeqConfig]:
    """Loads a local Hugging Face T5 folder (T5, T5 v1.1, FLAN-T5): `(model, config)`.

    Pair it with `text.load_tokenizer(path)` (its `spiece.model`) in a `Seq2SeqGenerator`.

    Example:

    >>> model, config = from_pretrained("checkpoints/flan-t5-small")  # doctest: +SKIP
    >>> tokenizer = load_tokenizer("checkpoints/flan-t5-small")  # doctest: +SKIP
    >>> Seq2SeqGenerator(model, config, tokenizer).generate("translate English to German: "
    ...     "Hello", max_length=20, greedy=True)  # doctest: +SKIP
    """
    from tfpretrain.checkpoints.t5 import load_t5

    model = load_t5(path, dropout=dropout)
    return model, config_of(model)


def save_pretrained(model: keras.Model, path) -> None:
    """Writes a `build_seq2seq` model as a `T5ForConditionalGeneration` folder (`save_t5`)."""
    from tfpretrain.checkpoints.t5 import save_t5

    save_t5(model, path)


def config_of(model: keras.Model, pad_id: int = 0, eos_id: int = 1) -> Seq2SeqConfig:
    """The `Seq2SeqConfig` of a `build_seq2seq` model, read from its layers.

    Layers do not hold the decoder's context, the special ids or the sentinel count: the
    decoder's context is taken as the encoder's, `pad_id` / `eos_id` as T5's and no sentinels
    (a Hugging Face vocabulary keeps them in its tokenizer).
    """
    embedding = model.get_layer("token_embedding")
    names = [layer.name for layer in model.layers]
    encoder = [model.get_layer(n) for n in names if n.startswith("encoder_block_")]
    decoder = [n for n in names if n.startswith("decoder_block_")]
    block, bias = encoder[0], model.get_layer("encoder_position_bias")
    default_heads = block.head_dim is None or block.head_dim * block.num_heads == block.hidden_dim
    return Seq2SeqConfig(
        vocabulary_size=embedding.vocabulary_size,
        hidden_dim=block.hidden_dim,
        num_heads=block.num_heads,
        intermediate_dim=block.intermediate_dim,
        num_encoder_layers=len(encoder),
        num_decoder_layers=len(decoder),
        dropout=block.dropout,
        activation=serialize_activation(block.activation),
        layer_norm_epsilon=block.layer_norm_epsilon,
        relative_buckets=bias.num_buckets,
        relative_max_distance=bias.max_distance,
        scale_attention=block.scale_attention,
        encoder_length=embedding.sequence_length,
        decoder_length=embedding.sequence_length,
        pad_id=pad_id,
        eos_id=eos_id,
        num_sentinels=0,
        head_dim=None if default_heads else block.head_dim,
        gated_ffn=block.gated_ffn,
        tie_output="lm_head" not in names,
    )
