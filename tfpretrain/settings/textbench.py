"""Settings of `tfpretrain textbench`: the text label-budget protocol."""

from __future__ import annotations

import dataclasses

from tfpretrain.settings import RunSettings, at_least, non_negative, positive, setting
from tfpretrain.settings.evaluate import label_count
from tfpretrain.settings.mlm import BERT_PRESETS


# Not `TrainingSettings`: each cell is a `finetune` run directory of its own, without exports.
@dataclasses.dataclass(kw_only=True)
class TextbenchRun(RunSettings):
    """Settings of `tfpretrain textbench`: every start fine-tuned on every label budget by the
    fine-tuning budget rule (class-balanced draws, early stopping on held-out training labels,
    never dev), several seeds at small budgets."""

    task: str = setting("sst2", help="the labelled task, as for `finetune --task`")
    inits: list[str] = setting(
        flag="--init",
        metavar="START",
        repeat=True,
        help="a start, as for `finetune --init` (scratch, vsm, an mlm / electra / clm / "
        "seq2seq run, a distill run: a distilled classifier or a `distill --corpus` encoder, a "
        "Hugging Face BERT folder); repeat for several",
    )
    labels: list[int | None] = setting(
        default_factory=lambda: [100, 1000, 10000, None],
        check=positive,
        parse=label_count,
        metavar="K",
        help="labelled training examples per cell; 'all' for all",
    )
    seeds: list[int] = setting(
        default_factory=lambda: [0, 1, 2],
        check=non_negative,
        help="seeds of the label draws and the fine-tuning",
    )
    seeds_up_to: int = setting(
        1000,
        check=positive,
        metavar="K",
        help="budgets above K labels (and 'all') run the first seed only: their draws differ "
        "little and each costs far more",
    )
    preset: str = setting("mini", choices=BERT_PRESETS, help="model size for the scratch start")
    seq_len: int = setting(64, check=positive, help="tokens per sentence")
    batch_size: int = setting(32, check=at_least(8), help="the largest fine-tuning batch")
    vocab_size: int = setting(
        8000, check=positive, help="vocabulary of the scratch start and the count baseline"
    )

    def check(self) -> None:
        if not self.inits:
            raise ValueError("Name at least one start with --init (e.g. --init scratch).")
        if not self.seeds:
            raise ValueError("Give at least one seed with --seeds.")
