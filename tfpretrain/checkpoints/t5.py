"""T5 (Raffel et al., 2020) checkpoints <-> the package's encoder-decoder (`models.t5`).

Two layouts share one `model_type`: the original T5 (t5-small, t5-base: ReLU feed-forward,
output head tied to the shared embedding, decoder output scaled by `d_model ** -0.5`) and
T5 v1.1 / FLAN-T5 (gated-GELU feed-forward `wi_0`/`wi_1`, an untied `lm_head`, no scaling,
and heads that need not split `d_model`: 6 heads of 64 on 512 in v1.1-small).

Both are `build_seq2seq` models: `Seq2SeqConfig.head_dim`, `gated_ffn` and `tie_output`
carry v1.1's choices, so `Seq2SeqGenerator` decodes either.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np

from tfpretrain.checkpoints import hf
from tfpretrain.models.t5 import Seq2SeqConfig, build_seq2seq, config_of

# T5 has relative positions only; the context the generators check lengths against.
DEFAULT_LENGTH = 512


def _token(config: dict, key: str, default: int) -> int:
    value = config.get(key)
    return default if value is None else int(value)


def t5_config(config: dict, file: str = hf.CONFIG, tie_output: bool = True) -> Seq2SeqConfig:
    """Reads a T5 `config.json` dict into a `Seq2SeqConfig` (`tie_output` as `load_t5` finds)."""
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
        return Seq2SeqConfig(
            vocabulary_size=vocab,
            hidden_dim=d_model,
            num_heads=heads,
            intermediate_dim=config["d_ff"],
            num_encoder_layers=config["num_layers"],
            num_decoder_layers=config.get("num_decoder_layers") or config["num_layers"],
            dropout=0.0,
            activation=hf.activation_from_hf(activation, file),
            layer_norm_epsilon=config.get("layer_norm_epsilon", 1e-6),
            relative_buckets=config.get("relative_attention_num_buckets", 32),
            relative_max_distance=config.get("relative_attention_max_distance", 128),
            scale_attention=False,
            encoder_length=DEFAULT_LENGTH,
            decoder_length=DEFAULT_LENGTH,
            pad_id=_token(config, "pad_token_id", 0),
            eos_id=_token(config, "eos_token_id", 1),
            # Vocabularies built here keep their sentinels at the top; HF's are tokenizer data.
            num_sentinels=0,
            head_dim=None if head_dim * heads == d_model else head_dim,
            gated_ffn=gated,
            tie_output=tie_output,
        )
    except KeyError as err:
        raise ValueError(f"{file} lacks {err.args[0]!r}, which a T5 config needs.") from err


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
        return [
            hf.Slot(block.ffn_inner.kernel, prefix + "wi_0.weight", hf.LINEAR),
            hf.Slot(block.ffn_gate.kernel, prefix + "wi_1.weight", hf.LINEAR),
            hf.Slot(block.ffn_outer.kernel, prefix + "wo.weight", hf.LINEAR),
        ]
    return [
        hf.Slot(block.ffn_inner.kernel, prefix + "wi.weight", hf.LINEAR),
        hf.Slot(block.ffn_outer.kernel, prefix + "wo.weight", hf.LINEAR),
    ]


def _slots(model: keras.Model) -> list[hf.Slot]:
    embedding = model.get_layer("token_embedding")
    vocab = embedding.vocabulary_size
    rows = [hf.Slot(embedding.token_embedding.embeddings, "shared.weight", vocabulary=vocab)]
    config = config_of(model)
    for stack in ("encoder", "decoder"):
        bias = f"{stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight"
        rows.append(hf.Slot(model.get_layer(f"{stack}_position_bias").embeddings, bias))
        count = getattr(config, f"num_{stack}_layers")
        for i, block in enumerate(model.get_layer(f"{stack}_block_{j}") for j in range(count)):
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
    if "lm_head" in {layer.name for layer in model.layers}:
        head = model.get_layer("lm_head")
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
        The `build_seq2seq` model; decode with `Seq2SeqGenerator(model, config_of(model))`.

    Example:

    >>> model = load_t5("checkpoints/t5-small")  # doctest: +SKIP
    """
    folder = hf.checkpoint_folder(path)
    file = str(folder / hf.CONFIG)
    raw = hf.read_config(folder)
    t5_config(raw, file)  # checks the config before the weights are read
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
    config = t5_config(raw, file, tie_output=bool(scaled))
    if dropout is not None:
        config = dataclasses.replace(config, dropout=dropout)
    if not config.tie_output and "lm_head.weight" not in tensors and "shared.weight" in tensors:
        tensors.put("lm_head.weight", tensors["shared.weight"], "shared.weight", "as lm_head")
    model = build_seq2seq(config)
    hf.assign(_slots(model), tensors, "T5")
    return model


def save_t5(model: keras.Model, path, pad_id: int = 0, eos_id: int = 1) -> None:
    """Writes a `build_seq2seq` model as a `T5ForConditionalGeneration` folder.

    A model trained here with scaled attention scores (`Seq2SeqConfig.scale_attention`) gets
    the scale folded into its query weights, since T5 checkpoints leave scores unscaled.

    Example:

    >>> save_t5(build_seq2seq(Seq2SeqConfig.preset("t5-tiny")), "out/hf")  # doctest: +SKIP
    """
    config = config_of(model, pad_id, eos_id)
    head_dim = config.head_dim or config.hidden_dim // config.num_heads
    activation = hf.activation_to_hf(config.activation)
    tied, gated = config.tie_output, config.gated_ffn
    hf_config = {
        "model_type": "t5",
        "architectures": ["T5ForConditionalGeneration"],
        "vocab_size": config.vocabulary_size,
        "d_model": config.hidden_dim,
        "d_kv": head_dim,
        "d_ff": config.intermediate_dim,
        "num_layers": config.num_encoder_layers,
        "num_decoder_layers": config.num_decoder_layers,
        "num_heads": config.num_heads,
        "relative_attention_num_buckets": config.relative_buckets,
        "relative_attention_max_distance": config.relative_max_distance,
        "dropout_rate": config.dropout,
        "layer_norm_epsilon": config.layer_norm_epsilon,
        "feed_forward_proj": ("gated-" if gated else "") + activation,
        "dense_act_fn": activation,
        "is_gated_act": gated,
        "tie_word_embeddings": tied,
        "scale_decoder_outputs": tied,
        # T5 starts decoding from the pad id, as `build_seq2seq` models do.
        "pad_token_id": pad_id,
        "eos_token_id": eos_id,
        "decoder_start_token_id": pad_id,
        "is_encoder_decoder": True,
    }
    hf.write_folder(path, hf_config, hf.export(_slots(model)))
