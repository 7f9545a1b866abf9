"""Settings of `tfpretrain mlm`."""

from __future__ import annotations

import dataclasses

from tfpretrain.settings import TrainingSettings, in_range, non_negative, positive, setting
from tfpretrain.settings.data import CorpusData

# The names of `tfpretrain.models.bert.BertConfig.PRESETS` (a test keeps them equal), here so
# that flags are checked without importing TensorFlow.
BERT_PRESETS = ("tiny", "mini", "small", "base")
EMBEDDING_STARTS = ("auto", "counts", "random")


@dataclasses.dataclass(kw_only=True)
class MlmRun(TrainingSettings, CorpusData):
    """Settings of `tfpretrain mlm`: masked-LM (and optionally NSP) pre-training of a BERT
    preset with AdamW, linear warm-up and decay."""

    preset: str = setting("mini", choices=BERT_PRESETS, help="model size")
    vocab: str | None = setting(None, help="use this vocab.txt instead of learning one")
    init: str | None = setting(
        None,
        help="continue pre-training a local Hugging Face BERT or DistilBERT masked-LM "
        "folder (BertForMaskedLM, BertForPreTraining): its weights, MLM head and "
        "vocab.txt; --preset and --vocab are then its own",
    )
    embeddings: str = setting(
        "auto",
        choices=EMBEDDING_STARTS,
        help="start of the token embeddings: counts (co-occurrence vectors of the corpus: PPMI "
        "within 5 tokens reduced by SVD to the width, in seconds), random, or auto: counts "
        "where the vocabulary (at most 16,384 tokens) and corpus allow, else random; an "
        "--init checkpoint's own",
    )
    vocab_size: int = setting(8000, check=positive, help="size of the learned vocabulary")
    vocab_lines: int = setting(
        20000,
        check=non_negative,
        help="learn the vocabulary from the first N training lines (0: all)",
    )
    steps: int = setting(2000, check=positive, resumable=True, help="training steps in all")
    epochs: int = setting(
        10,
        check=positive,
        resumable=True,
        help="the steps are split into this many epochs (curves); it must divide --steps",
    )
    batch_size: int = setting(32, check=positive, help="global batch size (sequences)")
    seq_len: int = setting(
        128, check=positive, help="tokens per sequence, [CLS] and [SEP] included"
    )
    nsp: bool = setting(False, help="add next-sentence prediction (pairs of lines)")
    mask_rate: float = setting(
        0.15,
        check=in_range(0, 1, low_open=True, high_open=True),
        help="fraction of tokens to predict",
    )
    learning_rate: float = setting(5e-4, check=positive, help="peak AdamW learning rate")
    warmup_fraction: float = setting(
        0.1, check=in_range(0, 1, high_open=True), help="linear warm-up share of the steps"
    )
    weight_decay: float = setting(0.01, check=non_negative, help="AdamW weight decay")
    dropout: float = setting(0.1, check=in_range(0, 1, high_open=True), help="dropout rate")
    validation_fraction: float = setting(
        0.05,
        check=in_range(0, 0.5, high_open=True),
        help="share of the lines held out for validation, spread through the corpus (0.05: "
        "every 20th line)",
    )
    limit_train: int | None = setting(
        None, check=positive, aliases=("--limit-lines",), help="use only the first N corpus lines"
    )

    def check(self) -> None:
        if self.init is not None and self.vocab is not None:
            raise ValueError(
                "--vocab and --init exclude each other: an --init folder brings its own vocab.txt."
            )
        if self.init is not None and self.embeddings != "auto":
            raise ValueError(
                f"--embeddings {self.embeddings} and --init exclude each other: an --init "
                "folder brings its own embeddings."
            )
        if self.steps % self.epochs:
            raise ValueError(
                f"--steps ({self.steps}) must be a multiple of --epochs "
                f"({self.epochs}): each epoch trains --steps / --epochs steps."
            )
