"""Settings of `tfpretrain finetune` (a classifier on an encoder, text to text on an
encoder-decoder, or the count-based `vsm` baseline)."""

from __future__ import annotations

import dataclasses

from tfpretrain.settings import (
    TrainingSettings,
    at_least,
    in_range,
    non_negative,
    positive,
    setting,
)
from tfpretrain.settings.data import LabelledText
from tfpretrain.settings.mlm import BERT_PRESETS
from tfpretrain.settings.seq2seq import T5_PRESETS

POOLINGS = ("cls", "mean")
REINIT_PARTS = ("none", "encoder", "cross-attention", "decoder")


def _layers_or_all(value: str) -> str | None:
    return None if value == "all" or value.isdigit() else "must be a number of layers or 'all'"


@dataclasses.dataclass(kw_only=True)
class FinetuneRun(TrainingSettings, LabelledText):
    """Settings of `tfpretrain finetune`: AdamW with linear warm-up and decay on a labelled
    text task, from the encoder (or encoder-decoder) named by `init`."""

    task: str = setting(
        help="'sst2' (data directory), a .csv/.tsv/.jsonl table (see --text-column, "
        "--label-column, --dev) or tfds:NAME[:TRAIN[:DEV]]; for an encoder-decoder also "
        "'punctuation' (restore casing and punctuation of Tiny Shakespeare) or a "
        "text-to-text table (--target-column)"
    )
    init: str = setting(
        help="'scratch', an mlm, electra or `distill --corpus` run, a clm run (a head on the "
        "GPT), a finetune or distill run (its encoder), a Hugging Face BERT, DistilBERT or "
        "RoBERTa folder (a *ForSequenceClassification keeps its head and label names), a "
        "`tfpretrain seq2seq` directory or a Hugging Face T5 folder (text to text), or 'vsm' (the "
        "count-based baseline: TF-IDF bag of words + logistic regression; uses --epochs, "
        "--batch-size, --vocab-size, --limit-train)"
    )
    preset: str = setting(
        "mini",
        choices=BERT_PRESETS + T5_PRESETS,
        help="model size for --init scratch (t5-*: an encoder-decoder trained text to text)",
    )
    vocab: str | None = setting(
        None, help="vocab.txt for --init scratch (default: learned from the task)"
    )
    vocab_size: int = setting(
        8000, check=positive, help="learned vocabulary size for --init scratch"
    )
    epochs: int | None = setting(
        None,
        check=positive,
        resumable=True,
        help="training epochs over all the labels, with no early stopping (default: the budget "
        "rule: steps from the label count, early stopping on a held-out slice of them)",
    )
    batch_size: int = setting(
        32,
        check=positive,
        help="global batch size (by the budget rule the largest: small "
        "sets use a quarter of their examples, at least 8)",
    )
    learning_rate: float | None = setting(
        None,
        check=positive,
        help="peak AdamW learning rate (default: the budget rule's for the start: 5e-4 from "
        "scratch, 3e-4 / 1e-4 / 5e-5 for pre-trained encoders up to 256 / 512 / more wide)",
    )
    warmup_fraction: float = setting(
        0.1, check=in_range(0, 1, high_open=True), help="linear warm-up share of the steps"
    )
    weight_decay: float = setting(0.01, check=non_negative, help="AdamW weight decay")
    freeze: str = setting(
        "0",
        check=_layers_or_all,
        help="freeze the embeddings and the lowest N transformer layers, or 'all' for the encoder",
    )
    pooling: str = setting("cls", choices=POOLINGS, help="sentence representation")
    dropout: float = setting(0.1, check=in_range(0, 1, high_open=True), help="dropout rate")
    seq_len: int = setting(64, check=positive, help="tokens per sentence (longer ones are cut)")
    num_classes: int | None = setting(
        None, check=at_least(2), help="number of classes (default: from labels)"
    )
    limit_train: int | None = setting(
        None,
        check=positive,
        help="train on N examples drawn with the classes as equal as they allow (seeded by "
        "--seed), not the first N",
    )
    target_column: str | None = setting(
        None,
        metavar="COLUMN",
        help="encoder-decoder only: the output text column of a text-to-text table (default for "
        "a 2-column input<TAB>target .tsv without a label: column 1)",
    )
    num_beams: int = setting(
        1,
        check=positive,
        defines_run=False,
        help="encoder-decoder only: beams for generating the dev outputs (1: greedy)",
    )
    limit_eval: int | None = setting(
        None,
        check=positive,
        defines_run=False,
        help="encoder-decoder only: score the first N dev examples",
    )
    reinit: str = setting(
        "none",
        choices=REINIT_PARTS,
        help="encoder-decoder only: draw this part of the pre-trained --init "
        "anew before training (cross-attention: each decoder block's), "
        "keeping the rest and the shared embedding",
    )

    def check(self) -> None:
        if self.reinit != "none" and self.init in ("scratch", "vsm"):
            raise ValueError(
                f"--reinit {self.reinit} needs a pre-trained seq2seq directory as "
                f"--init, not {self.init!r}."
            )
