"""Loading a text generator from whatever folder a user names: one place for every kind.

`load_generator(path)` accepts the `--out` folder of `tfpretrain clm`, of `tfpretrain seq2seq`
or of a text-to-text `tfpretrain finetune`, and a local Hugging Face GPT-2 or T5 folder.
`generate_text` runs either family with the command line's settings. `hf_encoder_folder` is
the one reading of a BERT-family folder that `mlm --init` and `finetune --init` continue.
"""

from __future__ import annotations

import json
from pathlib import Path

from tfpretrain.models.gpt import TextGenerator
from tfpretrain.models.t5 import Seq2SeqGenerator

HF_GENERATORS = ("gpt2", "t5")
HF_ENCODERS = ("bert", "distilbert", "roberta")


def hf_model_type(path) -> str | None:
    """The `model_type` of a Hugging Face folder's `config.json` (None: not such a folder, or a
    folder a recipe wrote, which holds `model.keras`)."""
    path = Path(path)
    config = path / "config.json"
    if not config.is_file() or (path / "model.keras").is_file():
        return None
    return json.loads(config.read_text()).get("model_type")


# The width's key in a Hugging Face config.json, by family (DistilBERT's `hidden_dim` is its
# feed-forward width, so it is not read there).
HF_WIDTH_KEYS = ("hidden_size", "dim", "d_model", "n_embd")


def model_width(path) -> int | None:
    """The hidden width of the model in folder `path`, from its config.json before the model is
    built (what `--precision auto` judges by): a tfpretrain run's recorded `model`, or a Hugging
    Face config (BERT, DistilBERT, RoBERTa, T5, GPT-2). None where neither says it."""
    file = Path(path) / "config.json"
    config = json.loads(file.read_text()) if file.is_file() else {}
    if isinstance(config.get("model"), dict):  # a run directory
        return config["model"].get("hidden_dim")
    return next((config[key] for key in HF_WIDTH_KEYS if isinstance(config.get(key), int)), None)


def hf_encoder_folder(
    path, sequence_length: int, kinds: tuple[str, ...] = HF_ENCODERS
) -> tuple[object, dict]:
    """The tokenizer and `config.json` of a Hugging Face encoder folder that a recipe continues,
    the tokenizer packing `sequence_length` tokens by default (what an export uses).

    Raises:
        ValueError: not a folder of one of `kinds`, or `sequence_length` beyond the model's
            positions.
        FileNotFoundError: the folder lacks its tokenizer files (named).
    """
    from tfpretrain.checkpoints import read_config
    from tfpretrain.checkpoints.bert import bert_config
    from tfpretrain.text import load_tokenizer

    kind = hf_model_type(path)
    if kind not in kinds:
        found = "no Hugging Face config.json" if kind is None else f"a {kind!r} model"
        raise ValueError(
            f"{path} holds {found}; this takes a local Hugging Face {' / '.join(kinds)} folder."
        )
    raw = read_config(path)
    positions = bert_config(raw).max_sequence_length
    if sequence_length > positions:
        raise ValueError(
            f"--seq-len {sequence_length} is longer than the {positions} positions "
            f"of the model in {path}; pass --seq-len {positions} or less."
        )
    tokenizer = load_tokenizer(path)
    if hasattr(tokenizer, "sequence_length"):  # WordPiece: its default packing length
        tokenizer.sequence_length = int(sequence_length)
    return tokenizer, raw


def load_generator(path, jit_compile: bool = True) -> TextGenerator | Seq2SeqGenerator:
    """The generator, with its tokenizer, of a clm run, a seq2seq / finetune run, or a Hugging
    Face GPT-2 / T5 folder.

    Raises:
        FileNotFoundError: none of these (the message lists what is accepted).
    """
    from tfpretrain.recipes.clm import load_run
    from tfpretrain.recipes.seq2seq import is_seq2seq_dir, load_seq2seq
    from tfpretrain.text import load_tokenizer

    kind = hf_model_type(path)
    if kind == "gpt2":
        from tfpretrain.models import gpt

        return TextGenerator(
            gpt.from_pretrained(path), load_tokenizer(path), jit_compile=jit_compile
        )
    if kind == "t5":
        from tfpretrain.models import t5

        model, config = t5.from_pretrained(path)
        return Seq2SeqGenerator(model, config, load_tokenizer(path), jit_compile=jit_compile)
    if kind is not None:
        raise ValueError(
            f"{path} holds a Hugging Face {kind!r} model; generation takes "
            f"{' or '.join(HF_GENERATORS)} folders."
        )
    if is_seq2seq_dir(path):
        model, config, tokenizer = load_seq2seq(path)
        return Seq2SeqGenerator(model, config, tokenizer, jit_compile=jit_compile)
    if not (Path(path) / "model.keras").is_file():
        raise FileNotFoundError(
            f"{path} is not a model to generate with: pass the --out folder of `tfpretrain clm`, "
            "`tfpretrain seq2seq` or a text-to-text `tfpretrain finetune`, or a local Hugging "
            "Face GPT-2 or T5 folder (config.json, weights and tokenizer files)."
        )
    model, tokenizer = load_run(path)
    return TextGenerator(model, tokenizer, jit_compile=jit_compile)


def generate_text(
    generator,
    prompt: str,
    max_length: int | None = None,
    num_return_sequences: int = 1,
    stop: str | None = None,
    **kwargs,
) -> list[str]:
    """`num_return_sequences` outputs for one prompt.

    A GPT's outputs are the prompt and its continuation, `max_length` tokens in all (default:
    the context); an encoder-decoder's are new text of at most `max_length` tokens (default:
    as many as its decoder holds), ending at its end token. `stop` (GPT only) ends a
    continuation at that text. `kwargs`: the sampler's settings and `num_beams`.
    """
    if isinstance(generator, Seq2SeqGenerator):
        if stop is not None:
            raise ValueError(
                "--stop applies to GPT models; an encoder-decoder stops at its end token."
            )
        length = max_length or generator.config.decoder_length - 1
        return generator.generate(
            prompt, length, num_return_sequences=num_return_sequences, **kwargs
        )[0]
    return generator.generate(
        prompt,
        max_length or generator.context_length,
        num_return_sequences=num_return_sequences,
        stop_token=stop,
        **kwargs,
    )
