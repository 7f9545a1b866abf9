"""Settings of `tfpretrain distill`: a fine-tuned text classifier (`--task`) or a pre-trained
encoder (`--corpus`) distilled into a student."""

from __future__ import annotations

import dataclasses

from tfpretrain.settings import TrainingSettings, in_range, non_negative, positive, setting
from tfpretrain.settings.data import CORPUS_FORMS, LabelledText

# 'half' plus the names of `BertConfig.PRESETS` (tests assert they agree; the model module loads
# Keras).
STUDENT_PRESETS = ("half", "tiny", "mini", "small", "base")
STUDENT_EMBEDDINGS = ("teacher", "random")


@dataclasses.dataclass(kw_only=True)
class DistillRun(TrainingSettings, LabelledText):
    """Settings of `tfpretrain distill`: exactly one of `task` (the teacher classifier's soft
    targets on labelled text) and `corpus` (the teacher encoder's last hidden states on
    unlabelled text). `student_preset="half"` = the teacher's widths, half its layers,
    initialised from every other teacher layer; other names are `BertConfig` presets, whose
    embeddings start from the teacher's projected to their width (`student_embeddings="teacher"`)
    or at random (`"random"`)."""

    teacher: str = setting(
        help="with --task: run directory of `tfpretrain finetune` (classifier.keras, vocab.txt); "
        "with --corpus: a Hugging Face BERT or DistilBERT folder (e.g. all-MiniLM-L6-v2) or a "
        "`tfpretrain mlm` / `electra` run (encoder.keras, vocab.txt)"
    )
    student_preset: str = setting(
        "half",
        choices=STUDENT_PRESETS,
        help="'half': teacher widths, half the layers, initialised from every other teacher "
        "layer; else a BERT preset trained from scratch over the teacher's vocabulary",
    )
    student_embeddings: str = setting(
        "teacher",
        choices=STUDENT_EMBEDDINGS,
        help="start a preset student's embeddings from the teacher's, projected onto their top "
        "principal directions, or at random ('half' students copy the teacher's anyway)",
    )
    task: str | None = setting(
        None,
        help="distil the teacher classifier's predictions on this labelled task: 'sst2' (the "
        "default without --corpus), a .csv/.tsv/.jsonl table or tfds:NAME (as for finetune); "
        "its classes must be the teacher's",
    )
    corpus: str | None = setting(
        None,
        help="instead of --task, distil the teacher encoder's last hidden states on this "
        "unlabelled text, task-agnostic (as DistilBERT pre-trains its student): " + CORPUS_FORMS,
    )
    seq_len: int | None = setting(
        None,
        check=positive,
        help="tokens per sequence, [CLS] and [SEP] included, longer texts cut (default: the "
        "teacher run's with --task, 64 with --corpus)",
    )
    steps: int = setting(2000, check=positive, resumable=True, help="training steps with --corpus")
    vocab: str | None = setting(None, help="the student's vocab.txt; must equal the teacher's")
    epochs: int = setting(
        3,
        check=positive,
        resumable=True,
        help="training epochs with --task (distillation and baseline each)",
    )
    batch_size: int = setting(32, check=positive, help="global batch size")
    learning_rate: float = setting(
        1e-4, check=positive, help="peak AdamW learning rate of the student"
    )
    warmup_fraction: float = setting(
        0.1, check=in_range(0, 1), help="share of the training steps spent in linear warm-up"
    )
    temperature: float = setting(
        2.0, check=positive, help="softmax temperature of the soft targets"
    )
    alpha: float = setting(
        0.5, check=in_range(0, 1), help="weight of the soft targets (1 - alpha: labels)"
    )
    hidden_weight: float = setting(
        0.0,
        check=non_negative,
        help="with --task: weight of the cosine alignment of last hidden states (needs equal "
        "widths); --corpus always aligns them",
    )
    mse_weight: float = setting(
        0.0,
        check=non_negative,
        help="with --corpus: weight of the hidden states' mean squared error, added to their "
        "cosine distance",
    )
    validation_fraction: float = setting(
        0.05,
        check=in_range(0, 0.5, low_open=True, high_open=True),
        help="with --corpus: share of the lines held out to measure the hidden-state distance "
        "before and after (0.05: every 20th line)",
    )
    teacher_logits: str | None = setting(
        None,
        defines_run=False,
        help="teacher_logits.npz of an earlier distill run with the same teacher and training "
        "set: reuse its labels instead of running the teacher again",
    )
    baseline: bool = setting(True, help="also train the student without the teacher")
    limit_train: int | None = setting(
        None,
        check=positive,
        help="train on N examples sampled class by class (seeded by --seed), not the first N; "
        "with --corpus on the first N lines",
    )
    latency_batches: int = 20
    steps_per_execution: int = setting(
        1,
        check=positive,
        defines_run=False,
        help="training steps run per compiled call (fewer Python round trips)",
    )

    def check(self) -> None:
        if self.task is not None and self.corpus is not None:
            raise ValueError(
                "Give one of --task and --corpus, not both: --task distils a fine-tuned "
                "classifier's predictions on labelled text, --corpus a pre-trained encoder's "
                "hidden states on unlabelled text."
            )
        if self.corpus is None and self.task is None:
            self.task = "sst2"  # the command's task before --corpus existed
        if self.corpus is not None and self.teacher_logits:
            raise ValueError(
                "--teacher-logits holds a classifier's predictions on --task; --corpus "
                "distillation matches hidden states. Drop --teacher-logits."
            )
        if self.teacher_logits and self.hidden_weight:
            raise ValueError(
                "Cached teacher logits cannot serve hidden-state alignment, which "
                "runs the teacher at every step: drop --teacher-logits or set "
                "--hidden-weight 0."
            )
