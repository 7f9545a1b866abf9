"""The GPT family (Radford et al., 2018/2019): a decoder-only causal language model."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from tfpretrain.generation import Generator, bucket
from tfpretrain.layers import Dropout, TokenAndPositionEmbedding, TransformerBlock
from tfpretrain.settings import from_dict

PRESETS = {
    # Karpathy's nanoGPT CPU recipe for character-level Tiny Shakespeare. At 4 layers and 2000
    # steps, N(0, 0.02) residual projections train better than GPT-2's depth-scaled ones
    # (BENCHMARKS.md).
    "nano": dict(
        num_layers=4, num_heads=4, hidden_dim=128, sequence_length=64, scaled_residual_init=False
    ),
    # nanoGPT's "baby GPT" of config/train_shakespeare_char.py.
    "shakespeare": dict(num_layers=6, num_heads=6, hidden_dim=384, sequence_length=256),
    # GPT-2 small (124M with the 50257-token BPE vocabulary).
    "gpt2-small": dict(
        num_layers=12, num_heads=12, hidden_dim=768, sequence_length=1024, vocabulary_size=50257
    ),
}


@dataclasses.dataclass
class GPTConfig:
    """Everything needed to rebuild a GPT; `GPTConfig.preset("nano", vocabulary_size=65)`.

    `intermediate_dim` defaults to 4 × `hidden_dim`; `sequence_length` is the context size.
    `use_bias=False` drops the biases of every projection and layer norm, as nanoGPT does by
    default (GPT-2 has them). `activation` names the feed-forward activation
    (`layers.activations`: "gelu" is the exact GELU, GPT-2's checkpoints use "gelu_approximate",
    its tanh form). `scaled_residual_init` initialises the two projections that write
    into the residual stream of each block with GPT-2's N(0, 0.02 / sqrt(2 * num_layers)), so
    that its variance does not grow with depth; without it they get N(0, 0.02) like the rest.
    """

    vocabulary_size: int = 50257
    sequence_length: int = 1024
    num_layers: int = 12
    num_heads: int = 12
    hidden_dim: int = 768
    intermediate_dim: int | None = None
    dropout: float = 0.0
    layer_norm_epsilon: float = 1e-5
    use_bias: bool = True
    scaled_residual_init: bool = True
    activation: str = "gelu"

    def __post_init__(self):
        if self.intermediate_dim is None:
            self.intermediate_dim = 4 * self.hidden_dim
        for name in ("vocabulary_size", "sequence_length", "num_layers", "num_heads", "hidden_dim"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"GPTConfig.{name} must be a positive integer; got {value!r}.")
        if self.hidden_dim % self.num_heads:
            raise ValueError(
                f"hidden_dim ({self.hidden_dim}) must be divisible by num_heads ({self.num_heads})."
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {self.dropout}.")

    @classmethod
    def preset(cls, name: str, **overrides) -> GPTConfig:
        """The named preset (`nano`, `shakespeare`, `gpt2-small`) with fields overridden."""
        if name not in PRESETS:
            raise ValueError(f"Unknown GPT preset {name!r}; choose one of {', '.join(PRESETS)}.")
        values = {**PRESETS[name], **{k: v for k, v in overrides.items() if v is not None}}
        return cls(**values)

    @classmethod
    def from_dict(cls, values: dict) -> GPTConfig:
        return from_dict(cls, values, "GPT")

    @property
    def head_dim(self) -> int:
        return self.hidden_dim // self.num_heads


def build_gpt(config: GPTConfig, initialize: bool = True) -> keras.Model:
    """Builds the functional GPT `token_ids [B, T] -> float32 logits [B, T, vocabulary_size]`.

    Token and position embeddings, `num_layers` pre-norm causal `TransformerBlock`s named
    `block_0`, `block_1`, ..., a final layer norm `final_norm`, and an output head tied to the
    token embeddings (`TokenAndPositionEmbedding(..., reverse=True)`). Weights are initialised
    as in GPT-2: N(0, 0.02), and with `config.scaled_residual_init` N(0, 0.02 / sqrt(2 *
    num_layers)) for the two projections that write into the residual stream of each block.

    Args:
        config: the model's sizes.
        initialize: `False` creates every weight as zeros instead (no random draws), for a
            caller that overwrites them all at once, e.g. from a checkpoint (`load_gpt2`).

    Example:

    >>> model = build_gpt(GPTConfig.preset("nano", vocabulary_size=65))
    >>> model.output_shape
    (None, None, 65)
    """
    if initialize:
        init = lambda: keras.initializers.RandomNormal(stddev=0.02)  # noqa: E731
    else:
        init = keras.initializers.Zeros
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    embedding = TokenAndPositionEmbedding(
        config.vocabulary_size,
        config.sequence_length,
        config.hidden_dim,
        embeddings_initializer=init(),
        name="embedding",
    )
    x = embedding(token_ids)
    if config.dropout:
        x = Dropout(config.dropout, name="embedding_dropout")(x)
    residual_std = 0.02 / math.sqrt(2 * config.num_layers)
    for i in range(config.num_layers):
        block = TransformerBlock(
            config.num_heads,
            config.hidden_dim,
            config.intermediate_dim,
            dropout=config.dropout,
            norm_first=True,
            causal=True,
            activation=config.activation,
            layer_norm_epsilon=config.layer_norm_epsilon,
            kernel_initializer=init(),
            use_bias=config.use_bias,
            name=f"block_{i}",
        )
        x = block(x)
        if initialize and config.scaled_residual_init:
            for kernel in (block.attention.output_kernel, block.ffn_outer.kernel):
                kernel.assign(keras.initializers.RandomNormal(stddev=residual_std)(kernel.shape))
    x = keras.layers.LayerNormalization(
        epsilon=config.layer_norm_epsilon, center=config.use_bias, name="final_norm"
    )(x)
    logits = embedding(x, reverse=True)
    return keras.Model(token_ids, logits, name="gpt")


@keras.saving.register_keras_serializable(package="tfpretrain")
class LastTokenPooling(keras.layers.Layer):
    """The hidden state of each row's last real token: under causal attention the only one
    that has read the whole text.

    Call arguments:
        sequence: `[B, T, H]`.
        padding_mask: `[B, T]`, 1 for real tokens, which come first.

    Returns:
        `[B, H]` (a row without tokens gives its first position).
    """

    def call(self, sequence, padding_mask):
        last = ops.maximum(ops.sum(ops.cast(padding_mask, "int32"), axis=1) - 1, 0)
        return ops.take_along_axis(sequence, last[:, None, None], axis=1)[:, 0, :]

    def compute_output_shape(self, sequence_shape, padding_mask_shape):
        return (sequence_shape[0], sequence_shape[-1])


@keras.saving.register_keras_serializable(package="tfpretrain")
class GPTEncoder(keras.Model):
    """A GPT (`build_gpt`) read as an encoder, so `TextClassifier` can put a head on it.

    Runs the GPT up to its final layer norm on right-padded texts (causal attention: real
    tokens never see the padding after them).

    Args:
        gpt: a model from `build_gpt` (or a `tfpretrain clm` run's `model.keras`).

    Call arguments:
        inputs: dict of int `[B, T]` `token_ids` and `padding_mask`.

    Returns:
        dict with `sequence_output` `[B, T, H]` and `pooled_output` `[B, H]`, the last real
        token's state (what `TextClassifier(pooling="cls")` reads; "mean" averages the tokens).

    Example:

    >>> encoder = GPTEncoder(build_gpt(GPTConfig.preset("nano", vocabulary_size=65)))
    >>> ids = keras.ops.ones((2, 8), "int32")
    >>> encoder({"token_ids": ids, "padding_mask": ids})["pooled_output"].shape
    TensorShape([2, 128])
    """

    def __init__(self, gpt: keras.Model, **kwargs):
        inputs = {
            name: keras.Input((None,), dtype="int32", name=name)
            for name in ("token_ids", "padding_mask")
        }
        trunk = keras.Model(gpt.input, gpt.get_layer("final_norm").output, name="gpt_trunk")
        hidden = trunk(inputs["token_ids"])
        pooled = LastTokenPooling(name="last_token")(hidden, inputs["padding_mask"])
        super().__init__(
            inputs=inputs, outputs={"sequence_output": hidden, "pooled_output": pooled}, **kwargs
        )
        self.gpt = gpt

    def get_config(self):
        return {
            "gpt": keras.saving.serialize_keras_object(self.gpt),
            "name": self.name,
            "trainable": self.trainable,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["gpt"] = keras.saving.deserialize_keras_object(config["gpt"])
        return cls(**config)


class GPTDecoder:
    """Cached decoding with a GPT built by `build_gpt`: the step functions `TextGenerator` uses.

    The cache holds one `(keys, values)` pair per block, each `[B, num_heads, max_length,
    head_dim]`, in the format of `MultiHeadSelfAttention.empty_cache`.

    Args:
        model: a model from `build_gpt` (or loaded from its `.keras` file).
    """

    def __init__(self, model: keras.Model):
        self.model = model
        try:
            self.embedding = model.get_layer("embedding")
            self.final_norm = model.get_layer("final_norm")
        except ValueError as err:
            raise ValueError(f"Model {model.name!r} is not a GPT from build_gpt: {err}") from err
        self.blocks = [layer for layer in model.layers if isinstance(layer, TransformerBlock)]
        if not self.blocks:
            raise ValueError(f"Model {model.name!r} has no TransformerBlock.")
        self.vocabulary_size = self.embedding.vocabulary_size
        self.sequence_length = self.embedding.sequence_length

    def initial_cache(self, batch_size, max_length: int):
        """A zero cache for `batch_size` sequences of up to `max_length` tokens."""
        return tuple(block.attention.empty_cache(batch_size, max_length) for block in self.blocks)

    def _run(self, token_ids, cache, index):
        x = self.embedding(token_ids, start_index=index)
        new_cache = []
        for block, layer_cache in zip(self.blocks, cache, strict=True):
            x, layer_cache = block(x, cache=layer_cache, cache_index=index, training=False)
            new_cache.append(layer_cache)
        return x, tuple(new_cache)

    def prefill(self, token_ids, cache):
        """Writes the keys/values of `token_ids [B, P]` at positions 0..P-1; returns the cache."""
        _, cache = self._run(token_ids, cache, 0)
        return cache

    def step(self, token_ids, cache, index):
        """One token `[B, 1]` at position `index` -> (float32 next-token logits `[B, V]`, cache)."""
        x, cache = self._run(token_ids, cache, index)
        logits = self.embedding(self.final_norm(x), reverse=True)
        return logits[:, -1, :], cache


class TextGenerator(Generator):
    """Generates text with a GPT from `build_gpt` and its tokenizer, XLA-compiled, with a KV cache.

    The prompts are written into the cache at once (`GPTDecoder.prefill`), then each step
    samples one token (or, with `num_beams > 1`, runs beam search); `max_length` counts the
    prompt. Compilations are cached per batch size and length bucket (see `Generator`).

    Args:
        model: a GPT built by `build_gpt`.
        tokenizer: a `CharTokenizer` or `SentencePieceTokenizer`.
        jit_compile: compile the loops with XLA.

    Example:

    >>> generator = TextGenerator(model, tokenizer)  # doctest: +SKIP
    >>> generator.generate("ROMEO:", max_length=50, num_return_sequences=5, top_p=0.9,
    ...                    seed=0)  # doctest: +SKIP
    """

    def __init__(self, model: keras.Model, tokenizer, jit_compile: bool = True):
        decoder = GPTDecoder(model)
        if tokenizer.vocabulary_size > decoder.vocabulary_size:
            raise ValueError(
                f"The tokenizer has {tokenizer.vocabulary_size} tokens but the model only "
                f"{decoder.vocabulary_size}; they do not belong together."
            )
        super().__init__(
            decoder, tokenizer, prompt_limit=decoder.sequence_length, jit_compile=jit_compile
        )
        # With biases every projection of a lone row runs XLA's matrix-vector code (decode_rows).
        self.copy_lone_row = not all(block.attention.use_bias for block in decoder.blocks)

    @property
    def context_length(self) -> int:
        return self.decoder.sequence_length

    def _initial_cache(self, inputs, batch_size, width: int):
        return self.decoder.initial_cache(batch_size, width)

    def _layout(self, rows: list[np.ndarray], max_length: int) -> tuple:
        width = bucket(max_length, self.context_length)
        prefill = bucket(max(len(row) for row in rows), width)
        lengths = np.array([len(row) for row in rows], np.int32)
        return None, self.pack(rows, width), lengths, max_length, prefill

    def _length_checks(self, lengths, max_length) -> list[tuple]:
        context = self.context_length
        return [
            (
                max_length <= context,
                "max_length (prompt plus new tokens) must be at most the "
                f"context of the model, {context} tokens.",
            ),
            (
                lengths <= max_length,
                "max_length counts the prompt too and is shorter than the "
                "longest prompt; raise it.",
            ),
        ]

    def generate(
        self, prompts: str | Sequence[str], max_length: int, num_return_sequences: int = 1, **kwargs
    ) -> list[str] | list[list[str]]:
        """Continues prompts; each output is the prompt followed by its continuation.

        Args:
            prompts: one string, or a list of strings of any lengths.
            max_length: tokens per output, prompt included (at most the model's context).
            num_return_sequences: outputs per prompt.
            **kwargs: as in `Generator.generate_ids`: the sampler's `temperature` (0 means
                greedy), `top_k`, `top_p` and `greedy`; `seed`; `stop_token` (none by
                default); `num_beams` and `length_penalty` for beam search.

        Returns:
            For one string, a list of `num_return_sequences` strings; for a list of prompts,
            one such list per prompt.

        Raises:
            ValueError: an empty prompt, a prompt longer than the context, `max_length` below
                a prompt's length or above the context, characters outside a character
                vocabulary, or sampler settings out of range (`top_p` outside (0, 1], ...).
        """
        single = isinstance(prompts, str)
        texts = [prompts] if single else list(prompts)
        if any(not isinstance(text, str) for text in texts):
            raise ValueError("Prompts must be strings.")
        ids = [self.tokenizer.encode(text) for text in texts]
        decoded = self._texts(self.generate_ids(ids, max_length, num_return_sequences, **kwargs))
        return decoded[0] if single else decoded


def from_pretrained(path, dropout: float | None = None) -> keras.Model:
    """Loads a local Hugging Face GPT-2 folder as a `build_gpt` model (`checkpoints.load_gpt2`).

    Pair it with `text.load_tokenizer(path)` (its `vocab.json` + `merges.txt`).

    Example:

    >>> model = from_pretrained("checkpoints/gpt2")  # doctest: +SKIP
    >>> generate(model, load_tokenizer("checkpoints/gpt2"), "Hello", 20)  # doctest: +SKIP
    """
    from tfpretrain.checkpoints.gpt2 import load_gpt2

    return load_gpt2(path, dropout=dropout)


def save_pretrained(model: keras.Model, path) -> None:
    """Writes a `build_gpt` model as a Hugging Face `GPT2LMHeadModel` folder (`save_gpt2`)."""
    from tfpretrain.checkpoints.gpt2 import save_gpt2

    save_gpt2(model, path)


def generate(model: keras.Model, tokenizer, prompts, max_length: int, **kwargs):
    """One-off `TextGenerator(model, tokenizer).generate(prompts, max_length, **kwargs)`.

    Create a `TextGenerator` yourself to reuse its compilations across calls.
    """
    return TextGenerator(model, tokenizer).generate(prompts, max_length, **kwargs)
