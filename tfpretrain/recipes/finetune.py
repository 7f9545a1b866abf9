"""Fine-tune a pre-trained (or fresh) encoder as a text classifier and evaluate it.

`--init` is dispatched through `INIT_KINDS`: each kind recognises a value of `--init` and
builds `(tokenizer, encoder)`, where the tokenizer is a layer with `pack(strings, length)`
giving the encoder's input dict, and the encoder returns a dict with `sequence_output` (and
optionally `pooled_output`). Other families add a kind with `register_init_kind`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfpretrain.data.splits import stratified_holdout
from tfpretrain.data.text_files import labelled_task
from tfpretrain.distribute import get_strategy, set_precision, xla_for_training
from tfpretrain.metrics import class_report, classification_metrics
from tfpretrain.models.bert import BertConfig, BertEncoder
from tfpretrain.models.classifier import TextClassifier, freeze_encoder
from tfpretrain.recipes.load import model_width
from tfpretrain.recipes.starts import (
    build_classifier_start,
    build_clm_start,
    is_classifier_run,
    is_clm_run,
)
from tfpretrain.settings.finetune import FinetuneRun
from tfpretrain.text.wordpiece import WordPieceTokenizer, learn_vocabulary
from tfpretrain.training import (
    EpochTimer,
    WarmupSchedule,
    adamw,
    fit,
    record_config,
    run_directory,
    warmup_steps,
    write_json,
)
from tfpretrain.training.budget import FinetuneBudget, finetune_budget
from tfpretrain.training.checkpoint import load_keras_model


@dataclasses.dataclass
class InitKind:
    """One way to start fine-tuning: `matches(cfg)` tells whether `cfg.init` is of this kind."""

    name: str
    matches: Callable[[FinetuneRun], bool]
    build: Callable[[FinetuneRun, list[str]], tuple[keras.layers.Layer, keras.Model]]


def _scratch(cfg: FinetuneRun, train_sentences: list[str]):
    if cfg.vocab:
        tokenizer = WordPieceTokenizer.from_pretrained(cfg.vocab, sequence_length=cfg.seq_len)
    else:
        vocab = learn_vocabulary(
            tf.data.Dataset.from_tensor_slices(train_sentences), cfg.vocab_size
        )
        tokenizer = WordPieceTokenizer(vocab, sequence_length=cfg.seq_len)
    config = BertConfig.preset(
        cfg.preset,
        vocabulary_size=tokenizer.vocabulary_size,
        dropout=cfg.dropout,
        max_sequence_length=max(512, cfg.seq_len),
    )
    return tokenizer, BertEncoder(config, name="bert_encoder")


def _mlm_run(cfg: FinetuneRun, train_sentences: list[str]):
    path = Path(cfg.init)
    encoder = load_keras_model(path / "encoder.keras", compile=False)
    return WordPieceTokenizer.from_pretrained(path, sequence_length=cfg.seq_len), encoder


def _hf_bert(cfg: FinetuneRun, train_sentences: list[str]):
    """A Hugging Face BERT, DistilBERT or RoBERTa folder's tokenizer (RoBERTa's BPE packs
    `<s> ... </s>`) and encoder; a `*ForSequenceClassification` comes as its `TextClassifier`,
    head and label names kept (`_classifier` fits it to the task)."""
    from tfpretrain.checkpoints.bert import hf_architecture, load_bert
    from tfpretrain.recipes.load import hf_encoder_folder

    tokenizer, config = hf_encoder_folder(cfg.init, cfg.seq_len)
    head = "classifier" if hf_architecture(config) == "classifier" else "encoder"
    return tokenizer, load_bert(cfg.init, head=head, dropout=cfg.dropout)


def _is_hf_bert(cfg: FinetuneRun) -> bool:
    from tfpretrain.recipes.load import HF_ENCODERS, hf_model_type

    return hf_model_type(cfg.init) in HF_ENCODERS


def _classifier(encoder: keras.Model, data: dict, cfg: FinetuneRun) -> TextClassifier:
    """The model to train: a new head on `encoder`, or a loaded classifier fitted to the task.

    A new head takes the task's class names (export-hf writes them as `id2label`). A loaded
    head keeps its label names; its classes are put in the task's order when both name the
    same classes (case aside), and it takes the task's names when its own are Hugging Face's
    placeholders (`LABEL_0`, ...).
    """
    freeze = cfg.freeze if cfg.freeze == "all" else int(cfg.freeze)
    task_names = [str(name) for name in data["class_names"]]
    if not isinstance(encoder, TextClassifier):
        freeze_encoder(encoder, freeze)
        return TextClassifier(
            encoder,
            data["num_classes"],
            pooling=cfg.pooling,
            dropout=cfg.dropout,
            label_names=task_names if len(task_names) == data["num_classes"] else None,
        )
    model = encoder
    names = list(model.label_names or [])
    if model.num_classes != len(task_names):
        raise ValueError(
            f"--init {cfg.init} is a classifier of {model.num_classes} labels {names}, but the "
            f"task has {len(task_names)} classes {task_names}; give a task with its "
            f"{model.num_classes} classes, or fine-tune a folder without a classification head."
        )
    if cfg.pooling != "cls":
        raise ValueError(
            f"--init {cfg.init} has a classification head on [CLS]; --pooling "
            f"{cfg.pooling} does not fit it."
        )
    folded = [name.lower() for name in names]
    order = [folded.index(name.lower()) for name in task_names if name.lower() in folded]
    if sorted(order) == list(range(len(names))):  # the same classes: the task's order
        logits = model.get_layer("logits")
        kernel, bias = logits.get_weights()
        logits.set_weights([kernel[:, order], bias[order]])
        model.label_names = [names[i] for i in order]
    elif names == [f"LABEL_{i}" for i in range(len(names))]:
        model.label_names = task_names
    freeze_encoder(model.encoder, freeze)
    return model


INIT_KINDS: list[InitKind] = [
    InitKind("scratch", lambda cfg: cfg.init == "scratch", _scratch),
    InitKind("mlm", lambda cfg: (Path(cfg.init) / "encoder.keras").is_file(), _mlm_run),
    InitKind("hf-bert", _is_hf_bert, _hf_bert),
    InitKind("clm", is_clm_run, build_clm_start),
    InitKind("classifier", is_classifier_run, build_classifier_start),
]


def register_init_kind(kind: InitKind) -> None:
    """Adds a kind of `--init` (checked before the built-in ones)."""
    INIT_KINDS.insert(0, kind)


def resolve_init(cfg: FinetuneRun) -> InitKind:
    for kind in INIT_KINDS:
        if kind.matches(cfg):
            return kind
    raise FileNotFoundError(
        f"--init {cfg.init!r} is not 'scratch', a `tfpretrain mlm` or `electra` run directory "
        "(with encoder.keras and vocab.txt), a `tfpretrain clm` run (model.keras, tokenizer/), "
        "a classifier run (classifier.keras, vocab.txt), a Hugging Face BERT, DistilBERT or "
        "RoBERTa folder (config.json, model.safetensors and the tokenizer files), nor a "
        "seq2seq run or Hugging Face T5 folder."
    )


def _dataset(
    tokenizer, sentences, labels, batch_size, seq_len, shuffle, seed=0, extra=None, pairs=None
):
    """Batches of `(packed inputs, labels)`; `extra` = `{name: [N, ...] array}` joins the inputs;
    `pairs` (second sentences) are packed as segment B after each sentence."""
    extra = dict(extra or {})
    texts = (tf.constant(sentences), tf.constant(pairs if pairs is not None else sentences))
    ds = tf.data.Dataset.from_tensor_slices((texts, tf.constant(labels, tf.int32), extra))
    if shuffle:
        ds = ds.shuffle(len(sentences), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=shuffle)

    def pack(text, y, e):
        second = text[1] if pairs is not None else None
        return {**tokenizer.pack(text[0], seq_len, pairs=second), **e}, y

    return ds.map(pack, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def load_task(cfg, num_classes: int | None = None) -> dict:
    """`labelled_task` with the command's flags: columns, label names, dev file, and a seeded,
    class-balanced `--limit-train` draw."""
    return labelled_task(
        cfg.task,
        num_classes,
        **cfg.task_options(),
        limit=cfg.limit_train,
        balanced=True,
        seed=cfg.seed,
    )


def training_plan(cfg: FinetuneRun, labels: int, *, pretrained: bool, width: int) -> FinetuneBudget:
    """The steps, batch, learning rate and early stopping of a fine-tuning on `labels` examples:
    the budget rule's (`training.budget`), with `--learning-rate` / `--epochs` where given
    (`--epochs`: passes over all the labels, no held-out slice, no early stopping)."""
    if cfg.epochs is None:
        rule = finetune_budget(
            labels, pretrained=pretrained, width=width, batch_size=cfg.batch_size
        )
        return dataclasses.replace(
            rule,
            learning_rate=cfg.learning_rate or rule.learning_rate,
            warmup_steps=warmup_steps(rule.steps, cfg.warmup_fraction),
        )
    if labels < cfg.batch_size:
        raise ValueError(
            f"{labels} training examples are fewer than one batch of "
            f"{cfg.batch_size}; lower --batch-size (or raise --limit-train)."
        )
    per_pass = labels // cfg.batch_size
    steps = per_pass * cfg.epochs
    learning_rate = (
        cfg.learning_rate
        or finetune_budget(max(labels, 8), pretrained=pretrained, width=width).learning_rate
    )
    return FinetuneBudget(
        labels=labels,
        held_out=0,
        batch_size=cfg.batch_size,
        steps=steps,
        rounds=cfg.epochs,
        steps_per_round=per_pass,
        patience=0,
        learning_rate=learning_rate,
        warmup_steps=warmup_steps(steps, cfg.warmup_fraction),
        monitor="val_loss",  # of dev: the best weights' checkpoint only, no early stopping
    )


def hold_out(plan: FinetuneBudget, texts: list[str], labels, pairs: list[str] | None, seed: int):
    """Splits the training labels into `(train, held_out)` triples `(texts, labels, pairs)` by
    class (seeded); the held-out slice, never dev, decides when fine-tuning stops."""
    labels = np.asarray(labels)
    if not plan.held_out:
        return (texts, labels, pairs), None
    rows, held = stratified_holdout(labels, len(texts), plan.held_out / len(texts), seed)

    def take(index):
        return (
            [texts[i] for i in index],
            labels[index],
            None if pairs is None else [pairs[i] for i in index],
        )

    return take(rows), take(held)


def _divisor_up_to(steps: int, most: int) -> int:
    """The largest divisor of `steps` not above `most`: compiled calls that fill each round."""
    return max(d for d in range(1, min(steps, most) + 1) if steps % d == 0)


def encoder_width(encoder: keras.Model) -> int:
    return int(encoder.output["sequence_output"].shape[-1])


def label_metrics(y_true, y_pred, class_names: list[str]) -> dict:
    """The dev metrics every classifier command writes: accuracy, precision, recall, F1, then
    the class names, per-class scores and the confusion matrix."""
    return {
        **classification_metrics(y_true, y_pred, len(class_names)),
        **class_report(y_true, y_pred, class_names),
    }


def _save_tokenizer(tokenizer, out: Path) -> None:
    """WordPiece as `vocab.txt` and `tokenizer_config.json` (its casing; what `--init`, distill
    and export-hf read), others (RoBERTa's BPE) as their own files under `tokenizer/`
    (`text.load_tokenizer`)."""
    if isinstance(tokenizer, WordPieceTokenizer):
        tokenizer.save(out)
    elif hasattr(tokenizer, "save"):
        tokenizer.save(out / "tokenizer")


@run_directory
def run(cfg: FinetuneRun) -> dict:
    """Fine-tunes, evaluates on the dev set, exports; returns the metrics written to disk.

    Writes `metrics.json` (dev accuracy, precision, recall, F1), `classifier.keras`,
    `vocab.txt` (or `tokenizer/`), `saved_model/` (signature `serve`: strings, and the second
    texts of a sentence-pair task, -> probabilities), `checkpoints/`.
    """
    if cfg.init == "vsm":  # the count-based baseline: no encoder, no tokenizer to fine-tune
        from tfpretrain.recipes.vsm import run as run_vsm

        return run_vsm(cfg)
    from tfpretrain.recipes.seq2seq_finetune import run_seq2seq, wants_seq2seq

    if wants_seq2seq(cfg):  # an encoder-decoder: text-to-text fine-tuning
        return run_seq2seq(cfg)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(cfg.seed)
    strategy = get_strategy(cfg.strategy)
    # --precision auto judges by the model's width, read before the model is built (None for
    # a start whose folder does not record it, e.g. a classifier run).
    scratch = cfg.init == "scratch"
    width = BertConfig.PRESETS[cfg.preset]["hidden_dim"] if scratch else model_width(cfg.init)
    set_precision(cfg.precision, width=width)

    data = load_task(cfg, cfg.num_classes)
    (train_x, train_y), (dev_x, dev_y) = data["train"], data["dev"]
    train_pair, dev_pair = data["train_pair"], data["dev_pair"]
    kind = resolve_init(cfg)

    with strategy.scope():
        tokenizer, encoder = kind.build(cfg, train_x + (train_pair or []))
        model = _classifier(encoder, data, cfg)
        plan = training_plan(
            cfg, len(train_x), pretrained=kind.name != "scratch", width=encoder_width(model.encoder)
        )
        steps = plan.steps
        schedule = WarmupSchedule(plan.learning_rate, steps, plan.warmup_steps, decay="linear")
        model.compile(
            optimizer=adamw(model, schedule, weight_decay=cfg.weight_decay),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
            jit_compile=xla_for_training(cfg.xla),
            steps_per_execution=_divisor_up_to(plan.steps_per_round, cfg.steps_per_execution),
        )
    (fit_x, fit_y, fit_pair), held = hold_out(plan, train_x, train_y, train_pair, cfg.seed)
    train = _dataset(
        tokenizer,
        fit_x,
        fit_y,
        plan.batch_size,
        cfg.seq_len,
        shuffle=True,
        seed=cfg.seed,
        pairs=fit_pair,
    ).repeat()
    dev = _dataset(tokenizer, dev_x, dev_y, 256, cfg.seq_len, shuffle=False, pairs=dev_pair)
    # Early stopping reads the held-out labels; with --epochs dev only draws the curves.
    watched = (
        dev
        if held is None
        else _dataset(tokenizer, held[0], held[1], 256, cfg.seq_len, shuffle=False, pairs=held[2])
    )

    timer = EpochTimer()
    history = fit(
        model,
        train,
        epochs=plan.rounds,
        steps_per_epoch=plan.steps_per_round,
        validation_data=watched,
        out_dir=out,
        tensorboard=cfg.tensorboard,
        callbacks=[timer],
        verbose=cfg.verbose,
        checkpoint_every=cfg.checkpoint_every,
        early_stopping_patience=plan.patience or None,
        monitor=plan.monitor,
    )
    train_seconds = history.training_seconds

    logits = model.predict(dev, verbose=0)
    metrics = label_metrics(dev_y, np.argmax(logits, -1), data["class_names"])
    metrics.update(
        {
            "init": kind.name,
            "train_examples": len(train_x),
            "held_out_examples": plan.held_out,
            "dev_examples": len(dev_x),
            "epochs": len(history.history["loss"]),
            "steps": steps,
            "steps_trained": len(history.history["loss"]) * plan.steps_per_round,
            "learning_rate": plan.learning_rate,
            "train_seconds": train_seconds,
            "final_loss": float(history.history["loss"][-1]),
            "val_loss": float(history.history["val_loss"][-1]),
            "trainable_parameters": int(sum(np.prod(v.shape) for v in model.trainable_variables)),
        }
    )

    model.save(out / "classifier.keras")
    _save_tokenizer(tokenizer, out)
    if cfg.export:
        from tfpretrain.export.text import export_text_classifier, task_label_names

        export_text_classifier(
            model,
            tokenizer,
            out / "saved_model",
            cfg.seq_len,
            label_names=task_label_names(data, model.output_shape[-1]),
            pairs=train_pair is not None,
        )
    write_json(out / "history.json", history.history)
    record_config(out, class_names=data["class_names"], budget=plan.to_dict())
    write_json(out / "metrics.json", metrics)
    return metrics
