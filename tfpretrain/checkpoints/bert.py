"""BERT, DistilBERT and RoBERTa checkpoints <-> `BertEncoder`, `BertMaskedLM`, `TextClassifier`.

All three are post-norm encoders with learned positions, so they load into one `BertEncoder`:

* DistilBERT has no segment embeddings (a single all-zero segment row stands in, folded into
  the positions on the way out) and no pooler; its classifier reads [CLS] through a ReLU
  `pre_classifier`, which becomes the encoder's pooler (`pooler_activation="relu"`).
* RoBERTa numbers positions from `pad_token_id + 1`; the rows below are dropped (written back
  as zeros), which is exact for right-padded batches, the layout the package's tokenizers
  produce. Its classifier's tanh `dense` on [CLS] is a pooler, so it becomes the encoder's.

Heads: `BertForMaskedLM` / `BertForPreTraining` (and the DistilBERT / RoBERTa masked LMs) load
as `BertMaskedLM`, `*ForSequenceClassification` as a `TextClassifier` with the checkpoint's
`id2label` as `label_names`.
"""

from __future__ import annotations

import dataclasses

import keras

from tfpretrain.checkpoints import hf
from tfpretrain.layers.activations import serialize_activation
from tfpretrain.models.bert import BertConfig, BertEncoder, BertMaskedLM
from tfpretrain.models.classifier import TextClassifier

HEADS = ("auto", "encoder", "mlm", "pretraining", "classifier")
_PREFIXES = {"bert": "bert.", "distilbert": "distilbert.", "roberta": "roberta."}
_NAMES = {"bert": "Bert", "distilbert": "DistilBert", "roberta": "Roberta"}


def bert_config(config: dict, file: str = hf.CONFIG) -> BertConfig:
    """Reads a BERT, DistilBERT or RoBERTa `config.json` dict into a `BertConfig`."""
    kind = config.get("model_type", "bert")
    if kind not in _PREFIXES:
        raise ValueError(
            f"{file} describes a {kind!r} model, not 'bert', 'distilbert' or 'roberta'."
        )
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError(f"{file}: only absolute position embeddings are supported.")
    try:
        if kind == "distilbert":
            return BertConfig(
                vocabulary_size=config["vocab_size"],
                num_layers=config["n_layers"],
                hidden_dim=config["dim"],
                num_heads=config["n_heads"],
                intermediate_dim=config["hidden_dim"],
                max_sequence_length=config.get("max_position_embeddings", 512),
                type_vocabulary_size=1,
                dropout=config.get("dropout", 0.1),
                activation=hf.activation_from_hf(config.get("activation", "gelu"), file),
                layer_norm_epsilon=1e-12,
                initializer_range=config.get("initializer_range", 0.02),
                pooler_activation="relu",
                hf_model_type=kind,
            )
        offset = _position_offset(config)
        return BertConfig(
            vocabulary_size=config["vocab_size"],
            num_layers=config["num_hidden_layers"],
            hidden_dim=config["hidden_size"],
            num_heads=config["num_attention_heads"],
            intermediate_dim=config["intermediate_size"],
            max_sequence_length=config.get("max_position_embeddings", 512) - offset,
            type_vocabulary_size=config.get("type_vocab_size", 2),
            dropout=config.get("hidden_dropout_prob", 0.1),
            activation=hf.activation_from_hf(config.get("hidden_act", "gelu"), file),
            layer_norm_epsilon=config.get("layer_norm_eps", 1e-12),
            initializer_range=config.get("initializer_range", 0.02),
            hf_model_type=kind,
        )
    except KeyError as err:
        raise ValueError(f"{file} lacks {err.args[0]!r}, which a {kind} config needs.") from err


def _position_offset(config: dict) -> int:
    """RoBERTa's first position id: `pad_token_id + 1`."""
    if config.get("model_type") != "roberta":
        return 0
    pad = config.get("pad_token_id")
    return 2 if pad is None else int(pad) + 1


def _encoder_slots(encoder: BertEncoder, offset: int) -> list[hf.Slot]:
    """The encoder's slots, its pooler aside; `offset`: the first position row used."""
    c, kind = encoder.config, encoder.config.hf_model_type
    heads = (
        hf.heads_in(c.num_heads, c.hidden_dim // c.num_heads),
        hf.heads_bias(c.num_heads, c.hidden_dim // c.num_heads),
    )
    out = hf.heads_out(c.num_heads, c.hidden_dim // c.num_heads)
    emb = encoder.token_embedding
    norm = encoder.get_layer("embeddings_norm")
    rows = [
        hf.Slot(
            emb.token_embedding.embeddings,
            "embeddings.word_embeddings.weight",
            vocabulary=c.vocabulary_size,
        ),
        hf.Slot(
            emb.position_embedding.embeddings,
            "embeddings.position_embeddings.weight",
            hf.rows_from(offset),
        ),
        hf.Slot(norm.gamma, "embeddings.LayerNorm.weight"),
        hf.Slot(norm.beta, "embeddings.LayerNorm.bias"),
    ]
    if kind != "distilbert":
        rows.append(
            hf.Slot(
                encoder.get_layer("segment_embedding").embeddings,
                "embeddings.token_type_embeddings.weight",
            )
        )
    if kind == "distilbert":
        names = (
            "transformer.layer.{}.",
            "attention.q_lin",
            "attention.k_lin",
            "attention.v_lin",
            "attention.out_lin",
            "sa_layer_norm",
            "ffn.lin1",
            "ffn.lin2",
            "output_layer_norm",
        )
    else:
        names = (
            "encoder.layer.{}.",
            "attention.self.query",
            "attention.self.key",
            "attention.self.value",
            "attention.output.dense",
            "attention.output.LayerNorm",
            "intermediate.dense",
            "output.dense",
            "output.LayerNorm",
        )
    layer, q, k, v, o, attention_norm, inner, outer, ffn_norm = names
    for i, block in enumerate(encoder.transformer_layers):
        p, att = layer.format(i), block.attention
        rows += [
            hf.Slot(att.query_kernel, f"{p}{q}.weight", heads[0]),
            hf.Slot(att.query_bias, f"{p}{q}.bias", heads[1]),
            hf.Slot(att.key_kernel, f"{p}{k}.weight", heads[0]),
            hf.Slot(att.key_bias, f"{p}{k}.bias", heads[1]),
            hf.Slot(att.value_kernel, f"{p}{v}.weight", heads[0]),
            hf.Slot(att.value_bias, f"{p}{v}.bias", heads[1]),
            hf.Slot(att.output_kernel, f"{p}{o}.weight", out),
            hf.Slot(att.output_bias, f"{p}{o}.bias"),
            hf.Slot(block.attention_norm.gamma, f"{p}{attention_norm}.weight"),
            hf.Slot(block.attention_norm.beta, f"{p}{attention_norm}.bias"),
            hf.Slot(block.ffn_inner.kernel, f"{p}{inner}.weight", hf.LINEAR),
            hf.Slot(block.ffn_inner.bias, f"{p}{inner}.bias"),
            hf.Slot(block.ffn_outer.kernel, f"{p}{outer}.weight", hf.LINEAR),
            hf.Slot(block.ffn_outer.bias, f"{p}{outer}.bias"),
            hf.Slot(block.ffn_norm.gamma, f"{p}{ffn_norm}.weight"),
            hf.Slot(block.ffn_norm.beta, f"{p}{ffn_norm}.bias"),
        ]
    return rows


def _prefixed(slots: list[hf.Slot], prefix: str) -> list[hf.Slot]:
    return [dataclasses.replace(slot, name=prefix + slot.name) for slot in slots]


def _mlm_slots(model: BertMaskedLM) -> list[hf.Slot]:
    encoder, head = model.encoder, model.get_layer("mlm_head")
    kind = encoder.config.hf_model_type
    names = {
        "bert": (
            "cls.predictions.transform.dense",
            "cls.predictions.transform.LayerNorm",
            "cls.predictions.bias",
        ),
        "distilbert": ("vocab_transform", "vocab_layer_norm", "vocab_projector.bias"),
        "roberta": ("lm_head.dense", "lm_head.layer_norm", "lm_head.bias"),
    }[kind]
    dense, norm, bias = names
    return [
        hf.Slot(head.transform.kernel, dense + ".weight", hf.LINEAR),
        hf.Slot(head.transform.bias, dense + ".bias"),
        hf.Slot(head.norm.gamma, norm + ".weight"),
        hf.Slot(head.norm.beta, norm + ".bias"),
        hf.Slot(head.bias, bias, vocabulary=encoder.config.vocabulary_size),
    ]


def _pooler(kind: str, architecture: str) -> tuple[str | None, bool, bool]:
    """Where the encoder's pooler is in a file: (tensor name, needed to load, written)."""
    if architecture == "classifier":
        name = {
            "bert": "bert.pooler.dense",
            "distilbert": "pre_classifier",
            "roberta": "classifier.dense",
        }[kind]
        return name, True, True
    if kind == "distilbert":
        return None, False, False
    if architecture == "encoder":  # optional: an encoder may come from a masked-LM file
        return "pooler.dense", False, True
    # BertForPreTraining has the pooler; BertForMaskedLM / RobertaForMaskedLM do not.
    return _PREFIXES[kind] + "pooler.dense", architecture == "pretraining", architecture != "mlm"


def _slots(
    model: keras.Model, kind: str, architecture: str, offset: int, loading: bool
) -> list[hf.Slot]:
    encoder = model if isinstance(model, BertEncoder) else model.encoder
    prefix = "" if architecture == "encoder" else _PREFIXES[kind]
    slots = _prefixed(_encoder_slots(encoder, offset), prefix)
    pooler, needed, written = _pooler(kind, architecture)
    if pooler is not None and (loading or written):
        dense = encoder.get_layer("pooler")
        slots += [
            hf.Slot(dense.kernel, pooler + ".weight", hf.LINEAR, optional=not needed),
            hf.Slot(dense.bias, pooler + ".bias", optional=not needed),
        ]
    if architecture in ("mlm", "pretraining"):
        slots += _mlm_slots(model)
    if architecture == "pretraining":
        nsp = model.get_layer("nsp_head")
        slots += [
            hf.Slot(nsp.kernel, "cls.seq_relationship.weight", hf.LINEAR),
            hf.Slot(nsp.bias, "cls.seq_relationship.bias"),
        ]
    if architecture == "classifier":
        logits = model.get_layer("logits")
        name = "classifier.out_proj" if kind == "roberta" else "classifier"
        slots += [
            hf.Slot(logits.kernel, name + ".weight", hf.LINEAR),
            hf.Slot(logits.bias, name + ".bias"),
        ]
    return slots


def hf_architecture(config: dict) -> str:
    """The head of a BERT-family `config.json` by its `architectures`: "pretraining", "mlm",
    "classifier" or "encoder"."""
    names = config.get("architectures") or []
    name = names[0] if names else ""
    if name.endswith("ForPreTraining"):
        return "pretraining"
    if name.endswith("ForMaskedLM"):
        return "mlm"
    if name.endswith("ForSequenceClassification"):
        return "classifier"
    return "encoder"


def _label_names(config: dict) -> list[str]:
    id2label = config.get("id2label")
    if id2label:
        return [str(id2label[key]) for key in sorted(id2label, key=int)]
    return [f"LABEL_{i}" for i in range(int(config.get("num_labels", 2)))]


def load_bert(path, head: str = "auto", dropout: float | None = None) -> keras.Model:
    """Loads a Hugging Face BERT, DistilBERT or RoBERTa folder, with its head.

    Args:
        path: the folder with `config.json` and `model.safetensors` (or `pytorch_model.bin`).
        head: "auto" (by `architectures` in config.json), "encoder" (the encoder only, heads
            skipped), "mlm" (`BertMaskedLM`), "pretraining" (`BertMaskedLM` with the NSP head,
            BERT only) or "classifier" (`TextClassifier`).
        dropout: replaces the checkpoint's dropout rate.

    Returns:
        A `BertEncoder`, a `BertMaskedLM` (inputs: the encoder's plus `mask_positions`) or a
        `TextClassifier` whose `label_names` are the checkpoint's `id2label`.

    Example:

    >>> classifier = load_bert("checkpoints/sst2-bert")  # doctest: +SKIP
    >>> classifier.label_names  # doctest: +SKIP
    ['negative', 'positive']
    """
    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}; got {head!r}.")
    folder = hf.checkpoint_folder(path)
    raw = hf.read_config(folder)
    config = bert_config(raw, str(folder / hf.CONFIG))
    kind = config.hf_model_type
    if dropout is not None:
        config.dropout = dropout
    architecture = hf_architecture(raw) if head == "auto" else head
    if architecture == "pretraining" and kind != "bert":
        raise ValueError(f"Only BERT has a next-sentence head; {folder} holds a {kind}.")
    tensors = hf.Tensors(folder)
    # Old TF-converted BERT files call the layer norms' weights gamma and beta.
    tensors.rename(
        lambda n: n.replace("LayerNorm.gamma", "LayerNorm.weight").replace(
            "LayerNorm.beta", "LayerNorm.bias"
        )
    )
    if architecture == "encoder":  # an encoder is read from any file of the family
        prefix = _PREFIXES[kind]
        if any(name.startswith(prefix) for name in tensors):
            tensors.rename(lambda n: n.removeprefix(prefix))
    encoder = BertEncoder(config)
    if architecture in ("mlm", "pretraining"):
        model = BertMaskedLM(encoder, include_nsp=architecture == "pretraining")
    elif architecture == "classifier":
        labels = _label_names(raw)
        rate = raw.get("classifier_dropout") or raw.get("seq_classif_dropout") or config.dropout
        model = TextClassifier(
            encoder,
            len(labels),
            pooling="cls",
            label_names=labels,
            dropout=rate if dropout is None else dropout,
        )
    else:
        model = encoder
    offset = _position_offset(raw)
    hf.assign(_slots(model, kind, architecture, offset, loading=True), tensors, kind)
    if kind == "distilbert":  # no segments: the one row adds nothing
        encoder.get_layer("segment_embedding").embeddings.assign(
            keras.ops.zeros_like(encoder.get_layer("segment_embedding").embeddings)
        )
    return model


def save_bert(model: keras.Model, path) -> None:
    """Writes a `BertEncoder`, `BertMaskedLM` or `TextClassifier` (on a `BertEncoder`) as a
    Hugging Face folder of the encoder's `hf_model_type` (BERT unless loaded otherwise).

    Raises:
        ValueError: a classifier with mean pooling (no Hugging Face head computes it), or a
            DistilBERT whose segment embedding is not all zero.

    Example:

    >>> classifier = TextClassifier(BertEncoder(BertConfig.preset("tiny")), 2)
    >>> save_bert(classifier, "out/hf")  # doctest: +SKIP
    """
    if isinstance(model, BertEncoder):
        architecture, encoder = "encoder", model
    elif isinstance(model, BertMaskedLM):
        architecture = "pretraining" if model.include_nsp else "mlm"
        encoder = model.encoder
    elif isinstance(model, TextClassifier) and isinstance(model.encoder, BertEncoder):
        architecture, encoder = "classifier", model.encoder
        if model.pooling != "cls":
            raise ValueError(
                "A TextClassifier with mean pooling has no Hugging Face equivalent; "
                "only pooling='cls' can be saved."
            )
    else:
        raise ValueError(
            f"save_bert takes a BertEncoder, BertMaskedLM or TextClassifier; got "
            f"{type(model).__name__}."
        )
    c = encoder.config
    kind = c.hf_model_type
    if architecture == "pretraining" and kind != "bert":
        raise ValueError(f"A {kind} has no next-sentence head; save the encoder or masked LM.")
    if kind != "distilbert" and c.pooler_activation != "tanh":
        raise ValueError(f"A {kind} pooler is tanh; this encoder's is {c.pooler_activation!r}.")
    offset = _position_offset({"model_type": kind, "pad_token_id": 1})
    tensors = hf.export(_slots(model, kind, architecture, offset, loading=False))
    segment = encoder.get_layer("segment_embedding").embeddings.numpy()
    if kind == "distilbert":  # fold the one segment row into the positions
        if len(segment) != 1:
            raise ValueError(
                "A DistilBERT has no segment embeddings; this encoder has "
                f"{len(segment)} segment rows."
            )
        prefix = "" if architecture == "encoder" else _PREFIXES[kind]
        tensors[prefix + "embeddings.position_embeddings.weight"] += segment[0]
    activation = hf.activation_to_hf(serialize_activation(encoder.transformer_layers[0].activation))
    suffix = {
        "encoder": "Model",
        "mlm": "ForMaskedLM",
        "pretraining": "ForPreTraining",
        "classifier": "ForSequenceClassification",
    }[architecture]
    if kind == "distilbert":
        config = {
            "dim": c.hidden_dim,
            "n_layers": c.num_layers,
            "n_heads": c.num_heads,
            "hidden_dim": c.intermediate_dim,
            "activation": activation,
            "dropout": c.dropout,
            "attention_dropout": c.dropout,
            "seq_classif_dropout": c.dropout,
            "max_position_embeddings": c.max_sequence_length,
            "sinusoidal_pos_embds": False,
            "tie_weights_": True,
            "pad_token_id": 0,
        }
    else:
        config = {
            "hidden_size": c.hidden_dim,
            "num_hidden_layers": c.num_layers,
            "num_attention_heads": c.num_heads,
            "intermediate_size": c.intermediate_dim,
            "hidden_act": activation,
            "hidden_dropout_prob": c.dropout,
            "attention_probs_dropout_prob": c.dropout,
            "max_position_embeddings": c.max_sequence_length + offset,
            "type_vocab_size": c.type_vocabulary_size,
            "layer_norm_eps": c.layer_norm_epsilon,
            "initializer_range": c.initializer_range,
            "pad_token_id": 1 if kind == "roberta" else 0,
        }
    config.update(
        {
            "model_type": kind,
            "architectures": [_NAMES[kind] + suffix],
            "vocab_size": c.vocabulary_size,
            "tie_word_embeddings": True,
        }
    )
    if architecture == "classifier":
        names = model.label_names or [f"LABEL_{i}" for i in range(model.num_classes)]
        config["id2label"] = {str(i): name for i, name in enumerate(names)}
        config["label2id"] = {name: i for i, name in enumerate(names)}
        config["num_labels"] = model.num_classes
    hf.write_folder(path, config, tensors)
