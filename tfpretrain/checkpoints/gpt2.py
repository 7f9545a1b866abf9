"""GPT-2 (Radford et al., 2019) checkpoints <-> the package's GPT (`models.gpt.build_gpt`).

Hugging Face's GPT-2 keeps its projections as `Conv1D` (`[in, out]`, Keras' own layout) and
fuses queries, keys and values into one `c_attn`; positions are learned (`wpe`), the output
head is tied to `wte`, and the feed-forward activation is GELU's tanh approximation
(`activation_function="gelu_new"`: `GPTConfig.activation="gelu_approximate"`). Every size from
gpt2 (124M) to gpt2-xl (1.5B) is the same layout with other numbers in `config.json`.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np

from tfpretrain.checkpoints import hf
from tfpretrain.layers.activations import serialize_activation
from tfpretrain.layers.transformer import TransformerBlock
from tfpretrain.models.gpt import GPTConfig, build_gpt

_PREFIX = "transformer."
_PARTS = ("query", "key", "value")


def gpt2_config(config: dict, file: str = hf.CONFIG) -> GPTConfig:
    """Reads a GPT-2 `config.json` dict into a `GPTConfig`.

    Raises:
        ValueError: not GPT-2, or a variant the package's GPT does not compute.
    """
    if config.get("model_type") != "gpt2":
        raise ValueError(f"{file} describes a {config.get('model_type')!r} model, not 'gpt2'.")
    unsupported = {
        "scale_attn_weights": True,
        "scale_attn_by_inverse_layer_idx": False,
        "add_cross_attention": False,
    }
    for key, wanted in unsupported.items():
        if config.get(key, wanted) != wanted:
            raise ValueError(f"{file}: {key}={config[key]!r} is not supported (only {wanted}).")
    try:
        gpt = GPTConfig(
            vocabulary_size=config["vocab_size"],
            sequence_length=config["n_positions"],
            num_layers=config["n_layer"],
            num_heads=config["n_head"],
            hidden_dim=config["n_embd"],
            intermediate_dim=config.get("n_inner"),
            dropout=0.0,
            layer_norm_epsilon=config.get("layer_norm_epsilon", 1e-5),
            use_bias=True,
            activation=hf.activation_from_hf(config.get("activation_function", "gelu_new"), file),
        )
    except KeyError as err:
        raise ValueError(f"{file} lacks {err.args[0]!r}, which a GPT-2 config needs.") from err
    return gpt


def _blocks(model: keras.Model) -> list[TransformerBlock]:
    return [layer for layer in model.layers if isinstance(layer, TransformerBlock)]


def _slots(model: keras.Model) -> list[hf.Slot]:
    embedding = model.get_layer("embedding")
    rows = [
        hf.Slot(
            embedding.token_embedding.embeddings, "wte.weight", vocabulary=embedding.vocabulary_size
        ),
        hf.Slot(embedding.position_embedding.embeddings, "wpe.weight"),
    ]
    for i, block in enumerate(_blocks(model)):
        p, att = f"h.{i}.", block.attention
        heads = hf.heads_in(att.num_heads, att.key_dim, linear=False)
        rows += [
            hf.Slot(block.attention_norm.gamma, p + "ln_1.weight"),
            hf.Slot(att.query_kernel, p + "attn.c_attn.weight[query]", heads),
            hf.Slot(att.key_kernel, p + "attn.c_attn.weight[key]", heads),
            hf.Slot(att.value_kernel, p + "attn.c_attn.weight[value]", heads),
            hf.Slot(
                att.output_kernel,
                p + "attn.c_proj.weight",
                hf.heads_out(att.num_heads, att.key_dim, linear=False),
            ),
            hf.Slot(block.ffn_norm.gamma, p + "ln_2.weight"),
            hf.Slot(block.ffn_inner.kernel, p + "mlp.c_fc.weight"),
            hf.Slot(block.ffn_outer.kernel, p + "mlp.c_proj.weight"),
        ]
        if block.use_bias:
            bias = hf.heads_bias(att.num_heads, att.key_dim)
            rows += [
                hf.Slot(block.attention_norm.beta, p + "ln_1.bias"),
                hf.Slot(att.query_bias, p + "attn.c_attn.bias[query]", bias),
                hf.Slot(att.key_bias, p + "attn.c_attn.bias[key]", bias),
                hf.Slot(att.value_bias, p + "attn.c_attn.bias[value]", bias),
                hf.Slot(att.output_bias, p + "attn.c_proj.bias"),
                hf.Slot(block.ffn_norm.beta, p + "ln_2.bias"),
                hf.Slot(block.ffn_inner.bias, p + "mlp.c_fc.bias"),
                hf.Slot(block.ffn_outer.bias, p + "mlp.c_proj.bias"),
            ]
    final = model.get_layer("final_norm")
    rows.append(hf.Slot(final.gamma, "ln_f.weight"))
    if final.center:
        rows.append(hf.Slot(final.beta, "ln_f.bias"))
    return rows


def _split_fused(tensors: hf.Tensors, num_layers: int) -> None:
    """Splits each `c_attn` (queries, keys and values side by side) into three named parts."""
    for i in range(num_layers):
        for kind in ("weight", "bias"):
            name = f"h.{i}.attn.c_attn.{kind}"
            if name not in tensors:
                continue
            fused = tensors[name]
            if fused.shape[-1] % 3:
                raise ValueError(
                    f"{tensors.source(name)} has shape {fused.shape}; its last axis should "
                    "hold queries, keys and values (3 x n_embd)."
                )
            for part, value in zip(_PARTS, np.split(fused, 3, axis=-1), strict=True):
                tensors.put(f"{name}[{part}]", value, name, part)


def load_gpt2(path, dropout: float | None = None) -> keras.Model:
    """Loads a Hugging Face GPT-2 folder (`GPT2LMHeadModel`, any size) as a `build_gpt` model.

    Args:
        path: the folder with `config.json` and `model.safetensors` (or `pytorch_model.bin`).
        dropout: the dropout rate to train with (default 0: the checkpoint's rates are for its
            own pre-training).

    Returns:
        The functional GPT, `token_ids [B, T] -> float32 logits [B, T, vocab_size]`; its
        `GPTDecoder` / `TextGenerator` decode with it.

    Example:

    >>> model = load_gpt2("checkpoints/gpt2")  # doctest: +SKIP
    """
    folder = hf.checkpoint_folder(path)
    config = gpt2_config(hf.read_config(folder), str(folder / hf.CONFIG))
    if dropout is not None:
        config = dataclasses.replace(config, dropout=dropout)
    model = build_gpt(config, initialize=False)  # every weight is set from the file below
    tensors = hf.Tensors(folder)
    tensors.rename(lambda name: name.removeprefix(_PREFIX))
    _split_fused(tensors, config.num_layers)
    hf.assign(_slots(model), tensors, "GPT-2")
    return model


def hf_config(model: keras.Model) -> dict:
    """The GPT-2 `config.json` of a `build_gpt` model (sizes read from its layers)."""
    embedding, blocks = model.get_layer("embedding"), _blocks(model)
    first = blocks[0]
    end = 50256 if embedding.vocabulary_size == 50257 else None
    return {
        "model_type": "gpt2",
        "architectures": ["GPT2LMHeadModel"],
        "vocab_size": embedding.vocabulary_size,
        "n_positions": embedding.sequence_length,
        "n_embd": embedding.embedding_dim,
        "n_layer": len(blocks),
        "n_head": first.num_heads,
        "n_inner": first.intermediate_dim,
        "activation_function": hf.activation_to_hf(serialize_activation(first.activation)),
        "layer_norm_epsilon": first.layer_norm_epsilon,
        "resid_pdrop": first.dropout,
        "embd_pdrop": first.dropout,
        "attn_pdrop": first.dropout,
        "tie_word_embeddings": True,
        "scale_attn_weights": True,
        # GPT-2's <|endoftext|> is its last id; a vocabulary of another size names none.
        "bos_token_id": end,
        "eos_token_id": end,
    }


def save_gpt2(model: keras.Model, path) -> None:
    """Writes a `build_gpt` model (loaded or trained here) as a `GPT2LMHeadModel` folder.

    A model without biases (`GPTConfig(use_bias=False)`) gets zero biases, which GPT-2's layout
    requires and which change nothing.

    Example:

    >>> model = build_gpt(GPTConfig.preset("nano", vocabulary_size=65))
    >>> save_gpt2(model, "out/hf")  # doctest: +SKIP
    """
    names = {layer.name for layer in model.layers}
    if not {"embedding", "final_norm"} <= names or not _blocks(model):
        raise ValueError(f"Model {model.name!r} is not a GPT from build_gpt.")
    config = hf_config(model)
    tensors = hf.export(_slots(model))
    d = config["n_embd"]
    for i in range(config["n_layer"]):
        p = f"h.{i}."
        for kind in ("weight", "bias"):
            parts = [tensors.pop(f"{p}attn.c_attn.{kind}[{part}]", None) for part in _PARTS]
            if parts[0] is None:
                parts = [np.zeros(d, np.float32)] * 3
            tensors[f"{p}attn.c_attn.{kind}"] = np.ascontiguousarray(np.concatenate(parts, -1))
        zeros = {
            "ln_1.bias": d,
            "ln_2.bias": d,
            "attn.c_proj.bias": d,
            "mlp.c_fc.bias": config["n_inner"],
            "mlp.c_proj.bias": d,
        }
        for name, size in zeros.items():
            tensors.setdefault(p + name, np.zeros(size, np.float32))
    tensors.setdefault("ln_f.bias", np.zeros(d, np.float32))
    hf.write_folder(path, config, {_PREFIX + name: value for name, value in tensors.items()})
