"""BERT (Devlin et al., 2019): the encoder and the masked-LM (+ NSP) pre-training model."""

from __future__ import annotations

import dataclasses

import keras
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
    # DistilBERT's classifier reads [CLS] through a ReLU layer where BERT's pooler has tanh.
    pooler_activation: str = "tanh"
    # The Hugging Face layout `tfpretrain.checkpoints.save_pretrained` writes: "bert",
    # "distilbert" or "roberta"; loading a checkpoint sets it.
    hf_model_type: str = "bert"

    PRESETS = {
        "tiny": {"num_layers": 2, "hidden_dim": 128, "num_heads": 2, "intermediate_dim": 512},
        "mini": {"num_layers": 4, "hidden_dim": 256, "num_heads": 4, "intermediate_dim": 1024},
        "small": {"num_layers": 4, "hidden_dim": 512, "num_heads": 8, "intermediate_dim": 2048},
        "base": {"num_layers": 12, "hidden_dim": 768, "num_heads": 12, "intermediate_dim": 3072},
    }

    def initializer(self) -> keras.initializers.Initializer:
        """A fresh copy of BERT's weight initializer (each weight gets its own)."""
        return keras.initializers.TruncatedNormal(stddev=self.initializer_range)

    def block(self, name: str, intermediate_dim: int | None = None) -> TransformerBlock:
        """One post-norm encoder block of this configuration; `intermediate_dim` narrows its
        feed-forward (ELECTRA's generator)."""
        return TransformerBlock(
            self.num_heads,
            self.hidden_dim,
            intermediate_dim or self.intermediate_dim,
            dropout=self.dropout,
            norm_first=False,
            activation=self.activation,
            layer_norm_epsilon=self.layer_norm_epsilon,
            kernel_initializer=self.initializer(),
            name=name,
        )

    @classmethod
    def preset(cls, name: str, **overrides) -> BertConfig:
        """A named preset with some fields replaced, e.g.
        `BertConfig.preset("mini", vocabulary_size=8000)`."""
        if name not in cls.PRESETS:
            raise ValueError(f"Unknown BERT preset {name!r}; choose one of {sorted(cls.PRESETS)}.")
        return cls(**{**cls.PRESETS[name], **overrides})


class HuggingFaceFolders:
    """`from_pretrained(path)` / `save_pretrained(path)` for the BERT family's models.

    A class reads a local Hugging Face BERT, DistilBERT or RoBERTa folder as itself (`hf_head`
    is the head `checkpoints.load_bert` keeps) and writes itself back as one.
    """

    hf_head = "encoder"

    @classmethod
    def from_pretrained(cls, path, dropout: float | None = None):
        """Loads a local Hugging Face folder as this class (see `checkpoints.load_bert`).

        Raises:
            FileNotFoundError: a file is missing (or a hub name was given: nothing downloads).
            ValueError: the config is not of the BERT family, or tensors are missing or have
                the wrong shapes.
        """
        from tfpretrain.checkpoints.bert import load_bert

        return load_bert(path, head=cls.hf_head, dropout=dropout)

    def save_pretrained(self, path) -> None:
        """Writes the model as a Hugging Face folder (`checkpoints.save_pretrained`)."""
        from tfpretrain.checkpoints.bert import save_bert

        save_bert(self, path)


@keras.saving.register_keras_serializable(package="tfpretrain")
class BertEncoder(HuggingFaceFolders, keras.Model):
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
        init = c.initializer
        inputs = {name: keras.Input((None,), dtype="int32", name=name) for name in ENCODER_INPUTS}
        embedding = TokenAndPositionEmbedding(
            c.vocabulary_size,
            c.max_sequence_length,
            c.hidden_dim,
            embeddings_initializer=init(),
            name="embeddings",
        )
        segment_embedding = keras.layers.Embedding(
            c.type_vocabulary_size,
            c.hidden_dim,
            embeddings_initializer=init(),
            name="segment_embedding",
        )
        x = embedding(inputs["token_ids"]) + segment_embedding(inputs["segment_ids"])
        x = keras.layers.LayerNormalization(epsilon=c.layer_norm_epsilon, name="embeddings_norm")(x)
        x = Dropout(c.dropout, name="embeddings_dropout")(x)
        for i in range(c.num_layers):
            x = c.block(f"transformer_layer_{i}")(x, attention_mask=inputs["padding_mask"])
        pooled = keras.layers.Dense(
            c.hidden_dim, activation=c.pooler_activation, kernel_initializer=init(), name="pooler"
        )(x[:, 0, :])
        super().__init__(
            inputs=inputs, outputs={"sequence_output": x, "pooled_output": pooled}, **kwargs
        )
        self.config = c
        self.token_embedding = embedding

    @property
    def transformer_layers(self) -> list[TransformerBlock]:
        return [self.get_layer(f"transformer_layer_{i}") for i in range(self.config.num_layers)]

    def get_config(self):
        return {
            "config": dataclasses.asdict(self.config),
            "name": self.name,
            "trainable": self.trainable,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


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

    def __init__(
        self,
        token_embedding: TokenAndPositionEmbedding,
        activation="gelu",
        layer_norm_epsilon: float = 1e-12,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.token_embedding = token_embedding
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.transform = keras.layers.Dense(
            token_embedding.embedding_dim,
            activation=get_activation(activation),
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name="transform",
        )
        self.norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=self.dtype_policy, name="norm"
        )

    def build(self, hidden_shape):
        hidden = (None, None, self.token_embedding.embedding_dim)
        self.transform.build(hidden)
        self.norm.build(hidden)
        self.bias = self.add_weight(
            name="bias", shape=(self.token_embedding.vocabulary_size,), initializer="zeros"
        )
        self.built = True

    def call(self, hidden):
        h = self.norm(self.transform(hidden))
        return self.token_embedding(h, reverse=True) + ops.cast(self.bias, "float32")

    def compute_output_shape(self, hidden_shape):
        return tuple(hidden_shape[:-1]) + (self.token_embedding.vocabulary_size,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "activation": self.activation,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="tfpretrain")
class BertMaskedLM(HuggingFaceFolders, keras.Model):
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

    hf_head = "mlm"  # a BertForPreTraining folder loads too, without its NSP head

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
            encoder.token_embedding,
            activation=c.activation,
            layer_norm_epsilon=c.layer_norm_epsilon,
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=c.initializer_range),
            name="mlm_head",
        )
        if include_nsp:
            pooled = encoder.get_layer("pooler")(selected[:, 0, :])
            outputs = {
                "mlm": head(selected[:, 1:, :]),
                "nsp": keras.layers.Dense(2, name="nsp_head", dtype="float32")(pooled),
            }
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
        return {
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "include_nsp": self.include_nsp,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        return cls(**config)
