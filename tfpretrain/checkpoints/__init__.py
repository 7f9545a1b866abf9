"""Hugging Face checkpoints in and out: GPT-2, T5 (v1.0, v1.1 / FLAN), BERT, DistilBERT, RoBERTa.

`load(path)` reads a local Hugging Face folder (`config.json` plus `model.safetensors` or
`pytorch_model.bin`) into the package's model for its `model_type`; `save_pretrained(model,
path)` writes a package model, loaded or trained here, as a folder `transformers` loads.
Nothing is ever downloaded: a hub name where a folder is expected is an error saying how to
fetch it.

Example:

>>> from tfpretrain import checkpoints
>>> model = checkpoints.load("downloads/gpt2")  # doctest: +SKIP
>>> checkpoints.save_pretrained(model, "out/gpt2-hf")  # doctest: +SKIP
"""

from __future__ import annotations

from tfpretrain.checkpoints.hf import checkpoint_folder, read_config

MODEL_TYPES = ("gpt2", "t5", "bert", "distilbert", "roberta")


def load(path, **kwargs):
    """Loads a Hugging Face checkpoint folder as the package's model for its `model_type`.

    Args:
        path: the local folder.
        **kwargs: passed to the family's loader: `load_gpt2(path, dropout)`, `load_t5(path,
            dropout)`, `load_bert(path, head, dropout)`.

    Returns:
        gpt2: the `build_gpt` model; t5: the seq2seq model (`build_t5`); bert, distilbert,
        roberta: a `BertEncoder`, `BertMaskedLM` or `TextClassifier` by the checkpoint's
        architecture (see `load_bert`).

    Raises:
        FileNotFoundError: no such folder (a hub name gets the way to fetch it), or no
            config.json / weights in it.
        ValueError: an unknown `model_type`, or tensors that do not fit the config.
    """
    folder = checkpoint_folder(path)
    config = read_config(folder)
    model_type = config.get("model_type")
    if model_type == "gpt2":
        from tfpretrain.checkpoints.gpt2 import load_gpt2

        return load_gpt2(folder, **kwargs)
    if model_type == "t5":
        from tfpretrain.checkpoints.t5 import load_t5

        return load_t5(folder, **kwargs)
    if model_type in ("bert", "distilbert", "roberta"):
        from tfpretrain.checkpoints.bert import load_bert

        return load_bert(folder, **kwargs)
    raise ValueError(
        f"{folder / 'config.json'} has model_type {model_type!r}; tfpretrain loads "
        f"{', '.join(MODEL_TYPES)}."
    )


def save_pretrained(model, path) -> None:
    """Writes a package model as a Hugging Face folder (config.json, model.safetensors).

    Args:
        model: a GPT (`build_gpt`/`load_gpt2`), a seq2seq model (`build_seq2seq`/`build_t5`),
            or a `BertEncoder`, `BertMaskedLM` or `TextClassifier` on a `BertEncoder`.
        path: the folder to write (created if needed).

    Raises:
        ValueError: a model of none of these families.
    """
    from tfpretrain.models.bert import BertEncoder, BertMaskedLM
    from tfpretrain.models.classifier import TextClassifier

    names = {layer.name for layer in model.layers}
    if isinstance(model, (BertEncoder, BertMaskedLM, TextClassifier)):
        from tfpretrain.checkpoints.bert import save_bert

        return save_bert(model, path)
    if {"embedding", "final_norm"} <= names:
        from tfpretrain.checkpoints.gpt2 import save_gpt2

        return save_gpt2(model, path)
    if {"token_embedding", "encoder_norm", "decoder_norm"} <= names:
        from tfpretrain.checkpoints.t5 import save_t5

        return save_t5(model, path)
    raise ValueError(
        f"Model {model.name!r} is none of GPT, T5 or a BERT-family encoder / masked LM / "
        "classifier; save_pretrained cannot write it."
    )


__all__ = ["MODEL_TYPES", "checkpoint_folder", "load", "read_config", "save_pretrained"]
