"""BERT (Devlin et al., 2019): the encoder, the masked-LM (+ NSP) pre-training model, HF loading."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import keras
import numpy as np
from keras import ops

from tfpretrain.layers import Dropout, TokenAndPositionEmbedding, TransformerBlock
from tfpretrain.layers.activations import get_activation

ENCODER_INPUTS = ("token_ids", "segment_ids", "padding_mask")


@dataclasses.dataclass
class BertConfig:
    """Shape and regularisation of a BERT encoder.

    Presets (`BertConfig.preset(name)`): tiny (2 layers, width 128), mini (4, 256), small (4, 512)
    and base (12, 768), with 64-wide heads and a 4x feed-forward as in Turc et al. (2019).
    """

    vocabulary_size: int = 30522
    num_layers: int = 4
    hidden_dim: int = 256
    num_heads: int = 4
    intermediate_dim: int = 1024
    max_sequence_length: int = 512
    type_vocabulary_size: int = 2
    dropout: float = 0.1
    activation: str = "gelu"
    layer_norm_epsilon: float = 1e-12
    initializer_range: float = 0.02

    PRESETS = {
        "tiny": {"num_layers": 2, "hidden_dim": 128, "num_heads": 2, "intermediate_dim": 512},
        "mini": {"num_layers": 4, "hidden_dim": 256, "num_heads": 4, "intermediate_dim": 1024},
        "small": {"num_layers": 4, "hidden_dim": 512, "num_heads": 8, "intermediate_dim": 2048},
        "base": {"num_layers": 12, "hidden_dim": 768, "num_heads": 12, "intermediate_dim": 3072},
    }

    @classmethod
    def preset(cls, name: str, **overrides) -> BertConfig:
        """A named preset with some fields replaced, e.g. `BertConfig.preset("mini", vocabulary_size=8000)`."""
        if name not in cls.PRESETS:
            raise ValueError(f"Unknown BERT preset {name!r}; choose one of {sorted(cls.PRESETS)}.")
        return cls(**{**cls.PRESETS[name], **overrides})

    @classmethod
    def from_hf(cls, hf: dict) -> BertConfig:
        """Reads a Hugging Face `config.json` dict of a BERT model."""
        if hf.get("model_type", "bert") != "bert":
            raise ValueError(f"config.json describes a {hf.get('model_type')!r} model, not 'bert'.")
        if hf.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError("Only BERT checkpoints with absolute position embeddings are supported.")
        act = hf.get("hidden_act", "gelu")
        activations = {"gelu": "gelu", "relu": "relu", "gelu_new": "gelu_approximate", "gelu_pytorch_tanh": "gelu_approximate"}
        if act not in activations:
            raise ValueError(f"Unsupported hidden_act {act!r} in config.json; supported: {sorted(activations)}.")
        return cls(
            vocabulary_size=hf["vocab_size"], num_layers=hf["num_hidden_layers"], hidden_dim=hf["hidden_size"],
            num_heads=hf["num_attention_heads"], intermediate_dim=hf["intermediate_size"],
            max_sequence_length=hf.get("max_position_embeddings", 512),
            type_vocabulary_size=hf.get("type_vocab_size", 2), dropout=hf.get("hidden_dropout_prob", 0.1),
            activation=activations[act], layer_norm_epsilon=hf.get("layer_norm_eps", 1e-12),
            initializer_range=hf.get("initializer_range", 0.02),
        )


@keras.saving.register_keras_serializable(package="tfpretrain")
class BertEncoder(keras.Model):
    """BERT's encoder as a functional model: embeddings, N post-norm transformer blocks, a pooler.

    Token + learned position embeddings (`TokenAndPositionEmbedding`) plus segment embeddings,
    then layer norm and dropout, then `num_layers` post-norm `TransformerBlock`s, and a tanh
    "pooler" on the [CLS] position.

    Args:
        config: a `BertConfig` (or the dict of one).
        **kwargs: standard `keras.Model` arguments (name, ...).

    Call arguments:
        inputs: dict of int `[B, T]` tensors `token_ids`, `segment_ids`, `padding_mask`.

    Returns:
        dict with `sequence_output` `[B, T, hidden_dim]` and `pooled_output` `[B, hidden_dim]`.

    Example:

    >>> encoder = BertEncoder(BertConfig.preset("tiny", vocabulary_size=100))
    >>> ids = keras.ops.ones((2, 8), "int32")
    >>> out = encoder({"token_ids": ids, "segment_ids": ids * 0, "padding_mask": ids})
    >>> out["pooled_output"].shape
    TensorShape([2, 128])
    """

    def __init__(self, config: BertConfig | dict, **kwargs):
        if isinstance(config, dict):
            config = BertConfig(**config)
        c = config
        init = lambda: keras.initializers.TruncatedNormal(stddev=c.initializer_range)  # noqa: E731
        inputs = {name: keras.Input((None,), dtype="int32", name=name) for name in ENCODER_INPUTS}
        embedding = TokenAndPositionEmbedding(
            c.vocabulary_size, c.max_sequence_length, c.hidden_dim, embeddings_initializer=init(),
            name="embeddings",
        )
        segment_embedding = keras.layers.Embedding(
            c.type_vocabulary_size, c.hidden_dim, embeddings_initializer=init(), name="segment_embedding"
        )
        x = embedding(inputs["token_ids"]) + segment_embedding(inputs["segment_ids"])
        x = keras.layers.LayerNormalization(epsilon=c.layer_norm_epsilon, name="embeddings_norm")(x)
        x = Dropout(c.dropout, name="embeddings_dropout")(x)
        for i in range(c.num_layers):
            x = TransformerBlock(
                c.num_heads, c.hidden_dim, c.intermediate_dim, dropout=c.dropout, norm_first=False,
                activation=c.activation, layer_norm_epsilon=c.layer_norm_epsilon,
                kernel_initializer=init(), name=f"transformer_layer_{i}",
            )(x, attention_mask=inputs["padding_mask"])
        pooled = keras.layers.Dense(c.hidden_dim, activation="tanh", kernel_initializer=init(), name="pooler")(
            x[:, 0, :]
        )
        super().__init__(inputs=inputs, outputs={"sequence_output": x, "pooled_output": pooled}, **kwargs)
        self.config = c
        self.token_embedding = embedding

    @property
    def transformer_layers(self) -> list[TransformerBlock]:
        return [self.get_layer(f"transformer_layer_{i}") for i in range(self.config.num_layers)]

    def get_config(self):
        return {"config": dataclasses.asdict(self.config), "name": self.name, "trainable": self.trainable}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    @classmethod
    def from_pretrained(cls, path, dropout: float | None = None) -> BertEncoder:
        """Loads a Hugging Face–format BERT directory from local disk (no network).

        The folder needs `config.json` and `model.safetensors` (or `pytorch_model.bin`, which
        needs PyTorch). Pair it with `WordPieceTokenizer.from_pretrained(path)`.

        Args:
            path: the checkpoint directory.
            dropout: replaces the checkpoint's dropout rate (e.g. 0.0 for feature extraction).

        Raises:
            FileNotFoundError: a file is missing.
            ValueError: the config is not BERT's, or tensors are missing or have wrong shapes.
        """
        path = Path(path)
        config_file = path / "config.json"
        if not config_file.is_file():
            raise FileNotFoundError(f"{path} has no config.json; give a Hugging Face BERT checkpoint directory.")
        config = BertConfig.from_hf(json.loads(config_file.read_text()))
        if dropout is not None:
            config.dropout = dropout
        encoder = cls(config)
        assign_hf_weights(encoder, load_hf_tensors(path))
        return encoder


def load_hf_tensors(path) -> dict[str, np.ndarray]:
    """Reads `model.safetensors` (or `pytorch_model.bin`) of a checkpoint directory into NumPy arrays."""
    path = Path(path)
    safetensors_file, torch_file = path / "model.safetensors", path / "pytorch_model.bin"
    if safetensors_file.is_file():
        try:
            from safetensors.numpy import load_file
        except ImportError as err:
            raise ImportError("Reading model.safetensors needs the `safetensors` package: pip install safetensors") from err
        tensors = load_file(str(safetensors_file))
    elif torch_file.is_file():
        try:
            import torch
        except ImportError as err:
            raise ImportError(
                f"{torch_file} is a PyTorch pickle and needs PyTorch to read (pip install torch), "
                "or convert the checkpoint to model.safetensors."
            ) from err
        state = torch.load(str(torch_file), map_location="cpu", weights_only=True)
        tensors = {k: v.float().numpy() for k, v in state.items()}
    else:
        raise FileNotFoundError(f"{path} has neither model.safetensors nor pytorch_model.bin.")
    # Old TF-converted checkpoints call the layer-norm weights gamma/beta; some prefix "bert.".
    renamed = {}
    for name, value in tensors.items():
        name = name.removeprefix("bert.").replace("LayerNorm.gamma", "LayerNorm.weight")
        renamed[name.replace("LayerNorm.beta", "LayerNorm.bias")] = value
    return renamed


def _hf_weight_map(encoder: BertEncoder) -> list[tuple[keras.Variable, str, callable]]:
    """(our variable, HF tensor name, transform from the HF array to our variable's layout)."""
    c = encoder.config
    heads, head_dim = c.num_heads, c.hidden_dim // c.num_heads
    same = lambda a: a  # noqa: E731
    dense = lambda a: a.T  # noqa: E731  torch Linear stores [out, in]
    qkv_kernel = lambda a: a.T.reshape(c.hidden_dim, heads, head_dim)  # noqa: E731
    qkv_bias = lambda a: a.reshape(heads, head_dim)  # noqa: E731
    out_kernel = lambda a: a.T.reshape(heads, head_dim, c.hidden_dim)  # noqa: E731
    emb = encoder.token_embedding
    rows = [
        (emb.token_embedding.embeddings, "embeddings.word_embeddings.weight", same),
        (emb.position_embedding.embeddings, "embeddings.position_embeddings.weight", same),
        (encoder.get_layer("segment_embedding").embeddings, "embeddings.token_type_embeddings.weight", same),
        (encoder.get_layer("embeddings_norm").gamma, "embeddings.LayerNorm.weight", same),
        (encoder.get_layer("embeddings_norm").beta, "embeddings.LayerNorm.bias", same),
    ]
    for i, block in enumerate(encoder.transformer_layers):
        p, att = f"encoder.layer.{i}.", block.attention
        rows += [
            (att.query_kernel, p + "attention.self.query.weight", qkv_kernel),
            (att.query_bias, p + "attention.self.query.bias", qkv_bias),
            (att.key_kernel, p + "attention.self.key.weight", qkv_kernel),
            (att.key_bias, p + "attention.self.key.bias", qkv_bias),
            (att.value_kernel, p + "attention.self.value.weight", qkv_kernel),
            (att.value_bias, p + "attention.self.value.bias", qkv_bias),
            (att.output_kernel, p + "attention.output.dense.weight", out_kernel),
            (att.output_bias, p + "attention.output.dense.bias", same),
            (block.attention_norm.gamma, p + "attention.output.LayerNorm.weight", same),
            (block.attention_norm.beta, p + "attention.output.LayerNorm.bias", same),
            (block.ffn_inner.kernel, p + "intermediate.dense.weight", dense),
            (block.ffn_inner.bias, p + "intermediate.dense.bias", same),
            (block.ffn_outer.kernel, p + "output.dense.weight", dense),
            (block.ffn_outer.bias, p + "output.dense.bias", same),
            (block.ffn_norm.gamma, p + "output.LayerNorm.weight", same),
            (block.ffn_norm.beta, p + "output.LayerNorm.bias", same),
        ]
    pooler = encoder.get_layer("pooler")
    rows += [(pooler.kernel, "pooler.dense.weight", dense), (pooler.bias, "pooler.dense.bias", same)]
    return rows


def assign_hf_weights(encoder: BertEncoder, tensors: dict[str, np.ndarray]) -> None:
    """Copies Hugging Face BERT tensors into `encoder`; all problems are reported at once."""
    rows = _hf_weight_map(encoder)
    missing = [name for _, name, _ in rows if name not in tensors]
    mismatched, values = [], []
    for variable, name, transform in rows:
        if name in missing:
            continue
        source = np.asarray(tensors[name])
        expected = int(np.prod(variable.shape))
        if source.size != expected:
            mismatched.append(f"{name}: checkpoint {tuple(source.shape)}, model {tuple(variable.shape)}")
            continue
        value = transform(source)
        if tuple(value.shape) != tuple(variable.shape):
            mismatched.append(f"{name}: checkpoint {tuple(source.shape)}, model {tuple(variable.shape)}")
            continue
        values.append((variable, value))
    if missing or mismatched:
        problems = []
        if missing:
            problems.append(f"missing tensors ({len(missing)}): {missing[:8]}{' ...' if len(missing) > 8 else ''}")
        if mismatched:
            problems.append(f"tensors with the wrong shape ({len(mismatched)}): {mismatched[:8]}")
        raise ValueError(
            "The checkpoint does not fit this BERT encoder: " + "; ".join(problems)
            + ". Check that config.json belongs to the weights file."
        )
    for variable, value in values:
        variable.assign(value.astype(variable.dtype))


@keras.saving.register_keras_serializable(package="tfpretrain")
class MaskedLMHead(keras.layers.Layer):
    """BERT's masked-LM head: dense + activation + layer norm, tied output.

    The output matrix is the encoder's token embedding (weight tying), plus a per-token bias.
    The embedding layer is passed in and not part of this layer's config; `BertMaskedLM`
    rebuilds the link when it is deserialized.

    Args:
        token_embedding: the encoder's `TokenAndPositionEmbedding`.
        activation: activation of the transform.
        layer_norm_epsilon: epsilon of the layer norm.
        kernel_initializer: initializer of the transform.

    Call arguments:
        hidden: `[B, P, H]` encoder outputs at the positions to predict.

    Returns:
        float32 logits `[B, P, vocabulary_size]`.
    """

    def __init__(self, token_embedding: TokenAndPositionEmbedding, activation="gelu",
                 layer_norm_epsilon: float = 1e-12, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.token_embedding = token_embedding
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.transform = keras.layers.Dense(
            token_embedding.embedding_dim, activation=get_activation(activation),
            kernel_initializer=self.kernel_initializer, dtype=self.dtype_policy, name="transform",
        )
        self.norm = keras.layers.LayerNormalization(epsilon=layer_norm_epsilon, dtype=self.dtype_policy, name="norm")

    def build(self, hidden_shape):
        hidden = (None, None, self.token_embedding.embedding_dim)
        self.transform.build(hidden)
        self.norm.build(hidden)
        self.bias = self.add_weight(name="bias", shape=(self.token_embedding.vocabulary_size,), initializer="zeros")
        self.built = True

    def call(self, hidden):
        h = self.norm(self.transform(hidden))
        return self.token_embedding(h, reverse=True) + ops.cast(self.bias, "float32")

    def compute_output_shape(self, hidden_shape):
        return tuple(hidden_shape[:-1]) + (self.token_embedding.vocabulary_size,)

    def get_config(self):
        config = super().get_config()
        config.update({"activation": self.activation, "layer_norm_epsilon": self.layer_norm_epsilon,
                       "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)})
        return config


@keras.saving.register_keras_serializable(package="tfpretrain")
class BertMaskedLM(keras.Model):
    """BERT pre-training model: masked-LM logits at given positions, and optionally NSP logits.

    The encoder's last block runs only at the masked positions (and [CLS] with NSP): its keys
    and values come from every position, but its queries, output projection and feed-forward
    network, whose outputs elsewhere no loss reads, are computed for those rows alone
    (`TransformerBlock(query_positions=)`). The logits equal the full encoder's gathered at the
    positions; at 15% masking this skips about a fifth of a 4-layer model's training FLOPs.

    Args:
        encoder: a `BertEncoder`.
        include_nsp: add the next-sentence-prediction head on the pooled output.
        **kwargs: standard `keras.Model` arguments.

    Call arguments:
        inputs: the encoder's inputs plus `mask_positions`, int `[B, P]`.

    Returns:
        dict with `mlm` float32 logits `[B, P, vocabulary_size]` and, with NSP, `nsp` `[B, 2]`.

    Example:

    >>> model = BertMaskedLM(BertEncoder(BertConfig.preset("tiny", vocabulary_size=100)))
    >>> sorted(model.input)
    ['mask_positions', 'padding_mask', 'segment_ids', 'token_ids']
    """

    def __init__(self, encoder: BertEncoder, include_nsp: bool = False, **kwargs):
        c = encoder.config
        inputs = {name: keras.Input((None,), dtype="int32", name=name) for name in ENCODER_INPUTS}
        inputs["mask_positions"] = keras.Input((None,), dtype="int32", name="mask_positions")
        *lower, last = encoder.transformer_layers
        # The encoder up to its last block: the same layers, so the same weights.
        before_last = lower[-1] if lower else encoder.get_layer("embeddings_dropout")
        trunk = keras.Model(encoder.input, before_last.output, name="encoder_trunk")
        hidden = trunk({k: inputs[k] for k in ENCODER_INPUTS})
        positions = inputs["mask_positions"]
        if include_nsp:  # [CLS] first, for the pooler
            positions = ops.pad(positions, ((0, 0), (1, 0)))
        selected = last(hidden, attention_mask=inputs["padding_mask"], query_positions=positions)
        head = MaskedLMHead(
            encoder.token_embedding, activation=c.activation, layer_norm_epsilon=c.layer_norm_epsilon,
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=c.initializer_range), name="mlm_head",
        )
        if include_nsp:
            pooled = encoder.get_layer("pooler")(selected[:, 0, :])
            outputs = {"mlm": head(selected[:, 1:, :]), "nsp": keras.layers.Dense(2, name="nsp_head", dtype="float32")(pooled)}
        else:
            outputs = {"mlm": head(selected)}
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.encoder = encoder
        self.include_nsp = bool(include_nsp)

    @property
    def trainable_weights(self):
        """All trainable weights, less the pooler's when there is no NSP head to read it.

        Without NSP the pooled output feeds nothing, so its weights get no gradient; training
        them would only make the optimizer warn about it. They stay in `weights` (and in saved
        models) for fine-tuning with `pooling="cls"`.
        """
        weights = super().trainable_weights
        if self.include_nsp:
            return weights
        unused = {id(w) for w in self.encoder.get_layer("pooler").weights}
        return [w for w in weights if id(w) not in unused]

    def get_config(self):
        return {"encoder": keras.saving.serialize_keras_object(self.encoder), "include_nsp": self.include_nsp,
                "name": self.name}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        return cls(**config)
