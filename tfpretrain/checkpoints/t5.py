"""T5 (Raffel et al., 2020) checkpoints <-> the package's encoder-decoder (`models.t5`).

Two layouts share one `model_type`: the original T5 (t5-small, t5-base: ReLU feed-forward,
output head tied to the shared embedding, decoder output scaled by `d_model ** -0.5`) and
T5 v1.1 / FLAN-T5 (gated-GELU feed-forward `wi_0`/`wi_1`, an untied `lm_head`, no scaling,
and heads that need not split `d_model`: 6 heads of 64 on 512 in v1.1-small).

`Seq2SeqConfig` and `build_seq2seq` express only the first, so `build_t5` builds the same
graph (same layer names, so `Seq2SeqDecoder`'s cached decoding reads it) with three more
choices: `head_dim`, `gated_ffn` and an untied head, a second table named `lm_head`. A model
has an `lm_head` exactly when its output is untied and unscaled; without one it is tied and
scaled, as every `build_seq2seq` model is.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
from keras import ops

from tfpretrain.checkpoints import hf
from tfpretrain.layers.activations import serialize_activation
from tfpretrain.layers.decoder import DecoderBlock
from tfpretrain.layers.dropout import Dropout
from tfpretrain.layers.embedding import TokenAndPositionEmbedding
from tfpretrain.layers.normalization import make_norm
from tfpretrain.layers.position_bias import RelativePositionBias
from tfpretrain.layers.transformer import TransformerBlock
from tfpretrain.models.t5 import (
    DECODER_IDS,
    ENCODER_IDS,
    Seq2SeqConfig,
    Seq2SeqDecoder,
    Seq2SeqGenerator,
)

# T5 has relative positions only; this is the context the generators check lengths against.
DEFAULT_LENGTH = 512


@dataclasses.dataclass
class T5Options:
    """What a T5 checkpoint needs beyond `Seq2SeqConfig`.

    Args:
        head_dim: size of each head (`d_kv`); None: `hidden_dim // num_heads`.
        gated_ffn: gated feed-forward (`feed_forward_proj="gated-gelu"`).
        tied_output: output head tied to the input embedding and scaled by
            `hidden_dim ** -0.5` (T5 v1.0); False: an untied, unscaled `lm_head` (v1.1, FLAN).
    """

    head_dim: int | None = None
    gated_ffn: bool = False
    tied_output: bool = True


def _token(config: dict, key: str, default: int) -> int:
    value = config.get(key)
    return default if value is None else int(value)


def t5_config(config: dict, file: str = hf.CONFIG) -> tuple[Seq2SeqConfig, T5Options]:
    """Reads a T5 `config.json` dict into (`Seq2SeqConfig`, `T5Options`)."""
    if config.get("model_type") != "t5":
        raise ValueError(f"{file} describes a {config.get('model_type')!r} model, not 't5'.")
    projection = config.get("feed_forward_proj", "relu")
    gated = projection.startswith("gated-")
    activation = config.get("dense_act_fn") or projection.removeprefix("gated-")
    if projection == "gated-gelu":  # transformers' historical meaning of gated-gelu
        activation = "gelu_new"
    try:
        d_model, heads, vocab = config["d_model"], config["num_heads"], config["vocab_size"]
        head_dim = config.get("d_kv", d_model // heads)
        seq2seq = Seq2SeqConfig(
            vocabulary_size=vocab, hidden_dim=d_model, num_heads=1,
            intermediate_dim=config["d_ff"], num_encoder_layers=config["num_layers"],
            num_decoder_layers=config.get("num_decoder_layers") or config["num_layers"],
            dropout=0.0, activation=hf.activation_from_hf(activation, file),
            layer_norm_epsilon=config.get("layer_norm_epsilon", 1e-6),
            relative_buckets=config.get("relative_attention_num_buckets", 32),
            relative_max_distance=config.get("relative_attention_max_distance", 128),
            scale_attention=False, encoder_length=DEFAULT_LENGTH, decoder_length=DEFAULT_LENGTH,
            pad_id=_token(config, "pad_token_id", 0), eos_id=_token(config, "eos_token_id", 1),
            # Vocabularies built here keep their sentinels at the top; HF's are tokenizer data.
            num_sentinels=0,
        )
    except KeyError as err:
        raise ValueError(f"{file} lacks {err.args[0]!r}, which a T5 config needs.") from err
    # Seq2SeqConfig wants d_model split evenly into heads, which v1.1's need not be (6 x 64 on
    # 512); the head count is set after its check, and T5Options.head_dim carries the size.
    seq2seq.num_heads = heads
    options = T5Options(head_dim=None if head_dim * heads == d_model else head_dim, gated_ffn=gated)
    return seq2seq, options


def build_t5(config: Seq2SeqConfig, options: T5Options | None = None) -> keras.Model:
    """`build_seq2seq`'s graph with T5 v1.1's choices: head size, gated feed-forward, untied head.

    Args:
        config: the shapes and conventions.
        options: the v1.1 choices; default: those of `build_seq2seq` (a model of the same
            layers, names and outputs).

    Returns:
        `{encoder_token_ids [B, S], decoder_token_ids [B, T]} -> float32 logits [B, T, V]`.

    Example:

    >>> model = build_t5(Seq2SeqConfig(vocabulary_size=100, hidden_dim=32, num_heads=6,
    ...     intermediate_dim=64, num_encoder_layers=2, num_decoder_layers=2, num_sentinels=0),
    ...     T5Options(head_dim=8, gated_ffn=True, tied_output=False))
    >>> model.output_shape
    (None, None, 100)
    """
    c, o = config, options or T5Options()
    enc_ids = keras.Input((None,), dtype="int32", name=ENCODER_IDS)
    dec_ids = keras.Input((None,), dtype="int32", name=DECODER_IDS)
    embedding = TokenAndPositionEmbedding(
        c.vocabulary_size, c.encoder_length, c.hidden_dim, position_embedding=False,
        embeddings_initializer=keras.initializers.RandomNormal(stddev=1.0), name="token_embedding",
    )
    common = dict(dropout=c.dropout, activation=c.activation,
                  layer_norm_epsilon=c.layer_norm_epsilon, norm="rms", use_bias=False,
                  scale_attention=c.scale_attention,
                  head_dim=o.head_dim, gated_ffn=o.gated_ffn)
    encoder_mask = ops.not_equal(enc_ids, c.pad_id)

    x = Dropout(c.dropout, name="encoder_dropout")(embedding(enc_ids))
    bias = RelativePositionBias(c.num_heads, c.relative_buckets, c.relative_max_distance,
                                bidirectional=True, name="encoder_position_bias")(x)
    for i in range(c.num_encoder_layers):
        x = TransformerBlock(c.num_heads, c.hidden_dim, c.intermediate_dim, norm_first=True,
                             name=f"encoder_block_{i}", **common)(
            x, attention_mask=encoder_mask, attention_bias=bias)
    encoded = Dropout(c.dropout, name="encoder_output_dropout")(
        make_norm("rms", c.layer_norm_epsilon, name="encoder_norm")(x))

    y = Dropout(c.dropout, name="decoder_dropout")(embedding(dec_ids))
    bias = RelativePositionBias(c.num_heads, c.relative_buckets, c.relative_max_distance,
                                bidirectional=False, name="decoder_position_bias")(y)
    for i in range(c.num_decoder_layers):
        y = DecoderBlock(c.num_heads, c.hidden_dim, c.intermediate_dim, name=f"decoder_block_{i}",
                         **common)(y, encoded, encoder_mask=encoder_mask, self_attention_bias=bias)
    y = Dropout(c.dropout, name="decoder_output_dropout")(
        make_norm("rms", c.layer_norm_epsilon, name="decoder_norm")(y))
    if o.tied_output:
        logits = embedding(y * (c.hidden_dim**-0.5), reverse=True)
    else:
        head = TokenAndPositionEmbedding(
            c.vocabulary_size, c.encoder_length, c.hidden_dim, position_embedding=False,
            embeddings_initializer=keras.initializers.RandomNormal(stddev=1.0), name="lm_head",
        )
        logits = head(y, reverse=True)
    return keras.Model({ENCODER_IDS: enc_ids, DECODER_IDS: dec_ids}, logits, name="seq2seq_lm")


def _head(model: keras.Model):
    names = {layer.name for layer in model.layers}
    return model.get_layer("lm_head") if "lm_head" in names else None


class T5Decoder(Seq2SeqDecoder):
    """`Seq2SeqDecoder` that also decodes with an untied `lm_head` (T5 v1.1, FLAN-T5)."""

    def __init__(self, model: keras.Model, config: Seq2SeqConfig):
        super().__init__(model, config)
        self.head = _head(model)

    def step(self, token_ids, cache: dict, index):
        """Decodes `token_ids` `[B, 1]` at position `index`: (float32 logits `[B, V]`, cache)."""
        if self.head is None:
            return super().step(token_ids, cache, index)
        y = self.embedding(token_ids)
        max_length = ops.shape(cache["self"][0][0])[2]
        bias = self.decoder_bias(y, key_length=max_length, query_offset=index)
        new_self = []
        for block, layer_cache, cross in zip(self.decoder_blocks, cache["self"], cache["cross"],
                                             strict=True):
            y, layer_cache = block(
                y, encoder_mask=cache["encoder_mask"], self_attention_bias=bias,
                cross_key_value=cross, cache=layer_cache, cache_index=index, training=False,
            )
            new_self.append(layer_cache)
        logits = self.head(self.decoder_norm(y), reverse=True)[:, -1, :]
        return logits, {**cache, "self": new_self}


class T5Generator(Seq2SeqGenerator):
    """`Seq2SeqGenerator` for `build_t5` models (either head); same arguments and methods.

    Example:

    >>> model = load_t5("flan-t5-small")  # doctest: +SKIP
    >>> generator = T5Generator(model, seq2seq_config(model))  # doctest: +SKIP
    >>> generator.generate_ids([[13, 8, 1]], 5, greedy=True)  # doctest: +SKIP
    """

    def __init__(self, model: keras.Model, config: Seq2SeqConfig, tokenizer=None,
                 jit_compile: bool = True):
        super().__init__(model, config, tokenizer=tokenizer, jit_compile=jit_compile)
        self.decoder = T5Decoder(model, config)


def _blocks(model: keras.Model, stack: str) -> list:
    names = [layer.name for layer in model.layers]
    count = sum(name.startswith(f"{stack}_block_") for name in names)
    return [model.get_layer(f"{stack}_block_{i}") for i in range(count)]


def seq2seq_config(model: keras.Model, pad_id: int = 0, eos_id: int = 1) -> Seq2SeqConfig:
    """The `Seq2SeqConfig` of a `build_t5` / `build_seq2seq` model, read from its layers.

    Only the decoder's context (not stored in any layer) is taken as `DEFAULT_LENGTH`.
    """
    embedding = model.get_layer("token_embedding")
    encoder, decoder = _blocks(model, "encoder"), _blocks(model, "decoder")
    block, bias = encoder[0], model.get_layer("encoder_position_bias")
    config = Seq2SeqConfig(
        vocabulary_size=embedding.vocabulary_size, hidden_dim=block.hidden_dim,
        num_heads=1, intermediate_dim=block.intermediate_dim,
        num_encoder_layers=len(encoder), num_decoder_layers=len(decoder), dropout=block.dropout,
        activation=serialize_activation(block.activation),
        layer_norm_epsilon=block.layer_norm_epsilon,
        relative_buckets=bias.num_buckets, relative_max_distance=bias.max_distance,
        scale_attention=block.scale_attention, encoder_length=embedding.sequence_length,
        decoder_length=DEFAULT_LENGTH, pad_id=pad_id, eos_id=eos_id, num_sentinels=0,
    )
    config.num_heads = block.num_heads  # after the even-split check, as in `t5_config`
    return config


def _attention_slots(att, prefix: str, scale_queries: bool) -> list[hf.Slot]:
    h, k = att.num_heads, att.key_dim
    queries = hf.heads_in(h, k)
    if scale_queries:  # fold 1/sqrt(head size) into the queries: HF's T5 does not scale scores
        s = k**-0.5
        queries = (lambda a, q=queries: q[0](a) / s, lambda a, q=queries: q[1](a) * s)
    return [
        hf.Slot(att.query_kernel, prefix + "q.weight", queries),
        hf.Slot(att.key_kernel, prefix + "k.weight", hf.heads_in(h, k)),
        hf.Slot(att.value_kernel, prefix + "v.weight", hf.heads_in(h, k)),
        hf.Slot(att.output_kernel, prefix + "o.weight", hf.heads_out(h, k)),
    ]


def _ffn_slots(block, prefix: str) -> list[hf.Slot]:
    if block.gated_ffn:
        return [hf.Slot(block.ffn_inner.kernel, prefix + "wi_0.weight", hf.LINEAR),
                hf.Slot(block.ffn_gate.kernel, prefix + "wi_1.weight", hf.LINEAR),
                hf.Slot(block.ffn_outer.kernel, prefix + "wo.weight", hf.LINEAR)]
    return [hf.Slot(block.ffn_inner.kernel, prefix + "wi.weight", hf.LINEAR),
            hf.Slot(block.ffn_outer.kernel, prefix + "wo.weight", hf.LINEAR)]


def _slots(model: keras.Model) -> list[hf.Slot]:
    embedding = model.get_layer("token_embedding")
    vocab = embedding.vocabulary_size
    rows = [hf.Slot(embedding.token_embedding.embeddings, "shared.weight", vocabulary=vocab)]
    for stack in ("encoder", "decoder"):
        bias = f"{stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight"
        rows.append(hf.Slot(model.get_layer(f"{stack}_position_bias").embeddings, bias))
        for i, block in enumerate(_blocks(model, stack)):
            p = f"{stack}.block.{i}.layer."
            scale = block.scale_attention
            if stack == "encoder":
                attention, ffn = [(block.attention, block.attention_norm, "0.SelfAttention.")], "1."
            else:
                attention = [
                    (block.self_attention, block.self_attention_norm, "0.SelfAttention."),
                    (block.cross_attention, block.cross_attention_norm, "1.EncDecAttention."),
                ]
                ffn = "2."
            for att, norm, name in attention:
                rows += _attention_slots(att, p + name, scale)
                rows.append(hf.Slot(norm.scale, p + name.split(".")[0] + ".layer_norm.weight"))
            rows += _ffn_slots(block, p + ffn + "DenseReluDense.")
            rows.append(hf.Slot(block.ffn_norm.scale, p + ffn + "layer_norm.weight"))
        final = model.get_layer(f"{stack}_norm").scale
        rows.append(hf.Slot(final, f"{stack}.final_layer_norm.weight"))
    head = _head(model)
    if head is not None:
        rows.append(hf.Slot(head.token_embedding.embeddings, "lm_head.weight", vocabulary=vocab))
    return rows


def load_t5(path, dropout: float | None = None) -> keras.Model:
    """Loads a Hugging Face T5 folder (`T5ForConditionalGeneration`: T5, T5 v1.1, FLAN-T5).

    The head is untied (an `lm_head` layer, unscaled) when `config.json` says
    `tie_word_embeddings: false` or does not scale the decoder output; a checkpoint without
    its own `lm_head.weight` then starts that head from the shared embedding.

    Args:
        path: the folder with `config.json` and `model.safetensors` (or `pytorch_model.bin`).
        dropout: the dropout rate to train with (default 0).

    Returns:
        The `build_t5` model; decode with `T5Generator(model, seq2seq_config(model))`.

    Example:

    >>> model = load_t5("checkpoints/t5-small")  # doctest: +SKIP
    """
    folder = hf.checkpoint_folder(path)
    file = str(folder / hf.CONFIG)
    raw = hf.read_config(folder)
    config, options = t5_config(raw, file)
    if dropout is not None:
        config = dataclasses.replace(config, dropout=dropout)
    tensors = hf.Tensors(folder)
    tied = raw.get("tie_word_embeddings", True) is not False
    scaled = raw.get("scale_decoder_outputs", tied)
    if "lm_head.weight" in tensors and "shared.weight" in tensors and tied:
        # transformers unties a head stored with other values than the embedding
        tied = np.array_equal(tensors["lm_head.weight"], tensors["shared.weight"])
    if scaled and not tied:
        raise ValueError(
            f"{file}: an untied lm_head with scaled decoder outputs is not supported (T5 scales "
            "only a head tied to the shared embedding)."
        )
    options.tied_output = bool(scaled)
    if not options.tied_output and "lm_head.weight" not in tensors and "shared.weight" in tensors:
        tensors.put("lm_head.weight", tensors["shared.weight"], "shared.weight", "as lm_head")
    model = build_t5(config, options)
    hf.assign(_slots(model), tensors, "T5")
    return model


def save_t5(model: keras.Model, path) -> None:
    """Writes a `build_t5` or `build_seq2seq` model as a `T5ForConditionalGeneration` folder.

    A model trained here with scaled attention scores (`Seq2SeqConfig.scale_attention`) gets
    the scale folded into its query weights, since T5 checkpoints leave scores unscaled.

    Example:

    >>> save_t5(build_seq2seq(Seq2SeqConfig.preset("t5-tiny")), "out/hf")  # doctest: +SKIP
    """
    config = seq2seq_config(model)
    block = _blocks(model, "encoder")[0]
    head_dim = block.head_dim or config.hidden_dim // config.num_heads
    activation = hf.activation_to_hf(config.activation)
    tied = _head(model) is None
    hf_config = {
        "model_type": "t5", "architectures": ["T5ForConditionalGeneration"],
        "vocab_size": config.vocabulary_size, "d_model": config.hidden_dim, "d_kv": head_dim,
        "d_ff": config.intermediate_dim, "num_layers": config.num_encoder_layers,
        "num_decoder_layers": config.num_decoder_layers, "num_heads": config.num_heads,
        "relative_attention_num_buckets": config.relative_buckets,
        "relative_attention_max_distance": config.relative_max_distance,
        "dropout_rate": config.dropout, "layer_norm_epsilon": config.layer_norm_epsilon,
        "feed_forward_proj": ("gated-" if block.gated_ffn else "") + activation,
        "dense_act_fn": activation, "is_gated_act": block.gated_ffn,
        "tie_word_embeddings": tied, "scale_decoder_outputs": tied,
        "pad_token_id": 0, "eos_token_id": 1, "decoder_start_token_id": 0,
        "is_encoder_decoder": True,
    }
    hf.write_folder(path, hf_config, hf.export(_slots(model)))
