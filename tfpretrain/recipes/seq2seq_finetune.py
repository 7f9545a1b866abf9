"""Text-to-text fine-tuning of an encoder-decoder, reached through `tfpretrain finetune`.

`tfpretrain finetune` hands a run to `run_seq2seq` when `--init` is a seq2seq model directory
(written by `tfpretrain seq2seq`), a local Hugging Face T5 folder, or `scratch` with a `t5-*`
preset. Tasks:

* `sst2`: `sst2 sentence: <sentence>` -> `positive` / `negative`, scored by exact match and by
  the classifier's accuracy, precision, recall and F1 (an output that is neither word counts as
  the wrong class);
* `punctuation`: restore casing and punctuation of Tiny Shakespeare passages (two lines,
  lower-cased, punctuation removed -> the original; first 90% of the file for training, last
  10% for evaluation), scored by `exact_match` and character error rate `cer`, beside the CER
  of copying the input unchanged;
* a TSV file of `input<TAB>target` lines (dev set: `X.dev.tsv` or `dev.tsv` beside it, else
  the last 10% of lines), or any table with `--target-column`, scored by `exact_match` and `cer`;
* any other labelled task (tables, `tfds:`, sentence pairs): `sentence: <text>` or
  `premise: <a> hypothesis: <b>` -> the class name, scored as SST-2 is.
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path

import keras
import numpy as np

from tfpretrain.data.seq2seq import seq2seq_batches, text_pairs
from tfpretrain.data.splits import stratified_holdout, stratified_sample
from tfpretrain.data.tables import read_table
from tfpretrain.data.text_files import _decode, _in_data_dir, dev_file_beside, labelled_task
from tfpretrain.data.tfds_source import is_tfds_spec
from tfpretrain.distribute import get_strategy, set_precision
from tfpretrain.export.seq2seq import export_seq2seq
from tfpretrain.models.t5 import PRESETS, Seq2SeqConfig, Seq2SeqGenerator, build_seq2seq
from tfpretrain.recipes.finetune import label_metrics
from tfpretrain.recipes.load import model_width
from tfpretrain.recipes.seq2seq import (
    compile_seq2seq,
    is_seq2seq_dir,
    load_hf_t5,
    load_seq2seq,
    save_seq2seq,
)
from tfpretrain.settings.finetune import REINIT_PARTS, FinetuneRun
from tfpretrain.text.sentencepiece import SentencePieceTokenizer
from tfpretrain.text.seq2seq import Seq2SeqTokenizer
from tfpretrain.training import EpochTimer, fit, write_json
from tfpretrain.training.budget import learning_rate_for, passes_for, rounds_for

SST2_WORDS = ("negative", "positive")
PUNCTUATION_LINES = 2


def wants_seq2seq(cfg: FinetuneRun) -> bool:
    """Whether a `FinetuneRun` is for an encoder-decoder."""
    return _pretrained(cfg.init) or (cfg.init == "scratch" and cfg.preset in PRESETS)


def _pretrained(init: str) -> bool:
    """Whether `--init` is a pre-trained encoder-decoder: a seq2seq run or a Hugging Face T5."""
    from tfpretrain.recipes.load import hf_model_type

    return is_seq2seq_dir(init) or hf_model_type(init) == "t5"


def strip_punctuation(text: str) -> str:
    """Lower-cases each line and removes its punctuation (spaces collapsed, newlines kept)."""
    lines = (re.sub(r"[^\w\s]|_", "", line.lower()) for line in text.split("\n"))
    return "\n".join(" ".join(line.split()) for line in lines)


def punctuation_passages(text: str, lines_per_passage: int = PUNCTUATION_LINES) -> list[str]:
    """Groups of `lines_per_passage` consecutive lines of each blank-line-separated block."""
    passages = []
    for block in re.split(r"\n\s*\n", text):
        lines = [line for line in block.split("\n") if line.strip()]
        for i in range(0, len(lines), lines_per_passage):
            passages.append("\n".join(lines[i : i + lines_per_passage]))
    return passages


def read_tsv_pairs(path) -> tuple[list[str], list[str]]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Text-to-text file {path} does not exist.")
    inputs, targets = [], []
    for number, row in enumerate(_decode(path).splitlines(), start=1):
        if not row.strip():
            continue
        fields = row.split("\t")
        if len(fields) != 2:
            raise ValueError(
                f"{path}, line {number}: expected 'input<TAB>target', got {len(fields)} fields."
            )
        inputs.append(fields[0].strip())
        targets.append(fields[1].strip())
    if not inputs:
        raise ValueError(f"{path} has no input<TAB>target lines.")
    return inputs, targets


def _sample(pairs: tuple[list[str], list[str]], limit: int | None, seed: int):
    """A seeded sample of `limit` (input, target) pairs, not the first ones."""
    if not limit or limit >= len(pairs[0]):
        return pairs
    rows = stratified_sample(None, len(pairs[0]), limit, seed)
    return [pairs[0][i] for i in rows], [pairs[1][i] for i in rows]


def _is_classification(task: str, cfg) -> bool:
    """A labelled task read by `labelled_task`: any table or tfds: task, except a `.tsv` of
    input<TAB>target lines (the original text-to-text form: no label flags given)."""
    if cfg is None:
        return False
    flags = (cfg.label_column, cfg.text_pair_column, cfg.label_names)
    return is_tfds_spec(task) or Path(task).suffix.lower() != ".tsv" or any(flags)


def text_to_text_task(task: str, cfg: FinetuneRun | None = None) -> dict:
    """`{"name", "train": (inputs, targets), "dev": (inputs, targets), "class_names"}` for
    `--task` (class names for classification tasks, else None).

    Classification tasks become text to text: `sentence: <text>` (sentence pairs:
    `premise: <a> hypothesis: <b>`) -> the class name. `cfg` supplies the task flags
    (columns, label names, dev file, `--target-column`, a seeded `--limit-train` sample).
    """
    limit, seed = (cfg.limit_train, cfg.seed) if cfg is not None else (None, 0)
    if task == "sst2":
        data = labelled_task("sst2", 2, limit=limit, balanced=True, seed=seed)

        def words(split):
            sentences, labels = data[split]
            return [f"sst2 sentence: {s}" for s in sentences], [SST2_WORDS[int(y)] for y in labels]

        return {
            "name": "sst2",
            "train": words("train"),
            "dev": words("dev"),
            "class_names": list(SST2_WORDS),
        }
    if task == "punctuation":
        text = _decode(_in_data_dir("tinyshakespeare/input.txt"))
        cut = text.rfind("\n", 0, int(len(text) * 0.9))
        split = {}
        for name, part in (("train", text[:cut]), ("dev", text[cut:])):
            passages = punctuation_passages(part)
            split[name] = ([strip_punctuation(p) for p in passages], passages)
        split["train"] = _sample(split["train"], limit, seed)
        return {"name": "punctuation", **split, "class_names": None}
    if cfg is not None and cfg.target_column is not None:
        return _target_table(task, cfg)
    if _is_classification(task, cfg):
        data = labelled_task(
            task, cfg.num_classes, **cfg.task_options(), limit=limit, balanced=True, seed=seed
        )
        names = data["class_names"]

        def as_text(split):
            (sentences, labels), pairs = data[split], data[f"{split}_pair"]
            if pairs is None:
                inputs = [f"sentence: {s}" for s in sentences]
            else:
                inputs = [
                    f"premise: {a} hypothesis: {b}" for a, b in zip(sentences, pairs, strict=True)
                ]
            return inputs, [names[int(y)] for y in labels]

        return {
            "name": "classification",
            "train": as_text("train"),
            "dev": as_text("dev"),
            "class_names": names,
        }
    path = Path(task)
    if not path.is_file():
        raise FileNotFoundError(
            f"--task must be 'sst2', 'punctuation', a table or a tfds:NAME spec; {task!r} is none "
            "of them."
        )
    train = read_tsv_pairs(path)
    dev_file = next(
        (
            p
            for p in (path.with_suffix(".dev.tsv"), path.parent / "dev.tsv")
            if p.is_file() and p != path
        ),
        None,
    )
    if dev_file is not None:
        dev = read_tsv_pairs(dev_file)
    else:
        cut = len(train[0]) - max(1, len(train[0]) // 10)
        if cut < 1:
            raise ValueError(f"{path} has too few lines ({len(train[0])}) to hold out a dev set.")
        dev = (train[0][cut:], train[1][cut:])
        train = (train[0][:cut], train[1][:cut])
    return {"name": "tsv", "train": _sample(train, limit, seed), "dev": dev, "class_names": None}


def _target_table(task: str, cfg: FinetuneRun) -> dict:
    """A text-to-text table: `--text-column` -> `--target-column`; its dev file (`--dev`, or
    X.dev.EXT / dev.EXT beside it), else a seeded 10% of the rows."""
    path = Path(task).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"--target-column needs a table file as --task; {task!r} is not one."
        )

    def read(file: Path) -> tuple[list[str], list[str]]:
        table = read_table(
            file, text_column=cfg.text_column, target_column=cfg.target_column, labelled=False
        )
        return list(table.texts), list(table.targets)

    train = read(path)
    dev_path = Path(cfg.dev).expanduser() if cfg.dev else dev_file_beside(path)
    if dev_path is not None:
        dev = read(dev_path)
    else:
        rows, held = stratified_holdout(None, len(train[0]), 0.1, cfg.seed)
        dev = ([train[0][i] for i in held], [train[1][i] for i in held])
        train = ([train[0][i] for i in rows], [train[1][i] for i in rows])
    return {
        "name": "table",
        "train": _sample(train, cfg.limit_train, cfg.seed),
        "dev": dev,
        "class_names": None,
    }


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions) between two strings."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def character_error_rate(predictions: list[str], references: list[str]) -> float:
    """Total edit distance over total reference length (corpus-level CER)."""
    distance = sum(edit_distance(p, r) for p, r in zip(predictions, references, strict=True))
    return distance / max(1, sum(len(r) for r in references))


def score_dev(
    model: keras.Model,
    config: Seq2SeqConfig,
    tokenizer: Seq2SeqTokenizer,
    task_name: str,
    dev: tuple[list[str], list[str]],
    max_new: int,
    num_beams: int = 1,
    batch_size: int = 64,
    class_names: list[str] | None = None,
) -> tuple[list[str], dict]:
    """Decodes every dev input (greedy, or beam search when `num_beams > 1`) and scores it.

    Returns the predicted strings and `{"exact_match", "generate_seconds"}` plus, for SST-2 and
    other classification tasks (`class_names`), the classifier's `accuracy`, `precision`,
    `recall`, `f1`, per-class scores and confusion matrix (an output that is no class name
    counts as a wrong class), else `cer` beside `copy_input_cer`, the CER of copying the input.
    """
    dev_in, dev_out = dev
    generator = Seq2SeqGenerator(model, config, tokenizer)
    predictions = []
    start = time.perf_counter()
    for i in range(0, len(dev_in), batch_size):
        rows = [list(tokenizer.encode(x)) + [config.eos_id] for x in dev_in[i : i + batch_size]]
        outputs = generator.generate_ids(rows, max_new, num_beams=num_beams, greedy=True)
        predictions += [tokenizer.decode(o[0]) for o in outputs]
    scores = {
        "exact_match": float(np.mean([p == t for p, t in zip(predictions, dev_out, strict=True)])),
        "generate_seconds": time.perf_counter() - start,
    }
    if task_name == "sst2":
        class_names = list(SST2_WORDS)
    if class_names:
        truth = np.array([class_names.index(t) for t in dev_out])
        k = len(class_names)
        guess = np.array(
            [
                class_names.index(p) if p in class_names else (y + 1) % k
                for p, y in zip(predictions, truth, strict=True)
            ]
        )
        scores.update(label_metrics(truth, guess, class_names))
    else:
        scores["cer"] = character_error_rate(predictions, dev_out)
        scores["copy_input_cer"] = character_error_rate(list(dev_in), dev_out)
    return predictions, scores


def _round_up(n: int, multiple: int = 8) -> int:
    return int(math.ceil(n / multiple) * multiple)


def reinitialize(model: keras.Model, config: Seq2SeqConfig, part: str) -> None:
    """Draws `part` of a (pre-trained) `build_seq2seq` model anew, as `build_seq2seq` would.

    `"encoder"`: the encoder blocks, the encoder's position bias and its final norm;
    `"cross-attention"`: each decoder block's cross-attention and its norm; `"decoder"`: the
    decoder blocks, the decoder's position bias and its final norm. The shared token embedding
    and the other parts keep their weights; `"none"` changes nothing.
    """
    if part not in REINIT_PARTS:
        raise ValueError(f"--reinit must be one of {', '.join(REINIT_PARTS)}; got {part!r}.")
    if part == "none":
        return
    fresh = build_seq2seq(config)
    if part in ("encoder", "decoder"):
        blocks = [f"{part}_block_{i}" for i in range(getattr(config, f"num_{part}_layers"))]
        pairs = [
            (model.get_layer(n), fresh.get_layer(n))
            for n in (f"{part}_position_bias", f"{part}_norm", *blocks)
        ]
    else:
        blocks = [f"decoder_block_{i}" for i in range(config.num_decoder_layers)]
        pairs = [
            (getattr(model.get_layer(n), a), getattr(fresh.get_layer(n), a))
            for n in blocks
            for a in ("cross_attention", "cross_attention_norm")
        ]
    for target, source in pairs:
        target.set_weights(source.get_weights())


def _build(cfg: FinetuneRun, task: dict, strategy):
    """(model, config, tokenizer, init kind) from `--init`."""
    if _pretrained(cfg.init):
        hf = not is_seq2seq_dir(cfg.init)
        with strategy.scope():
            model, config, tokenizer = (
                load_hf_t5(cfg.init, cfg.dropout) if hf else load_seq2seq(cfg.init)
            )
            reinitialize(model, config, cfg.reinit)
        return model, config, tokenizer, "hf-t5" if hf else "seq2seq"
    text = "\n".join(task["train"][0] + task["train"][1])
    tokenizer = Seq2SeqTokenizer(SentencePieceTokenizer.train(text, cfg.vocab_size))
    config = Seq2SeqConfig.preset(
        cfg.preset,
        vocabulary_size=tokenizer.vocabulary_size,
        dropout=cfg.dropout,
        pad_id=tokenizer.pad_id,
        eos_id=tokenizer.eos_id,
        num_sentinels=tokenizer.num_sentinels,
    )
    with strategy.scope():
        model = build_seq2seq(config)
    return model, config, tokenizer, "scratch"


def run_seq2seq(cfg: FinetuneRun) -> dict:
    """Fine-tunes text to text, generates on the dev set, scores and saves; returns the metrics.

    Writes `metrics.json`, `samples.json` (dev inputs, targets, outputs), the fine-tuned model
    directory (`model.keras`, tokenizer, `config.json`) and `saved_model/` (signature `generate`).
    """
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(cfg.seed)
    strategy = get_strategy(cfg.strategy)
    # --precision auto judges by the model's width, read before the model is built.
    width = model_width(cfg.init) if _pretrained(cfg.init) else PRESETS[cfg.preset]["hidden_dim"]
    set_precision(cfg.precision, width=width)
    if cfg.reinit != "none" and not _pretrained(cfg.init):
        raise ValueError(
            f"--reinit {cfg.reinit} needs a pre-trained seq2seq directory (or a "
            f"Hugging Face T5 folder) as --init, not {cfg.init!r}."
        )

    task = text_to_text_task(cfg.task, cfg)
    train_in, train_out = task["train"]
    dev_in, dev_out = task["dev"]
    if cfg.limit_eval:
        dev_in, dev_out = dev_in[: cfg.limit_eval], dev_out[: cfg.limit_eval]
    if len(train_in) < cfg.batch_size:
        raise ValueError(
            f"{len(train_in)} training examples are fewer than one batch of "
            f"{cfg.batch_size}; lower --batch-size (or raise --limit-train)."
        )

    model, config, tokenizer, init = _build(cfg, {"train": (train_in, train_out)}, strategy)
    encode = tokenizer.encode
    train_ids = ([encode(t) for t in train_in], [encode(t) for t in train_out])
    dev_ids = ([encode(t) for t in dev_in], [encode(t) for t in dev_out])
    longest_in = max(len(x) for x in train_ids[0] + dev_ids[0]) + 1
    longest_out = max(len(x) for x in train_ids[1] + dev_ids[1]) + 1
    enc_len = min(_round_up(longest_in), config.encoder_length)
    dec_len = min(_round_up(longest_out), config.decoder_length)
    train_pairs = text_pairs(*train_ids, config.eos_id, enc_len, dec_len)
    dev_pairs = text_pairs(*dev_ids, config.eos_id, enc_len, dec_len)
    batch_args = dict(pad_id=config.pad_id, encoder_length=enc_len, decoder_length=dec_len)
    train = seq2seq_batches(
        train_pairs,
        cfg.batch_size,
        shuffle_buffer=len(train_in),
        seed=cfg.seed,
        drop_remainder=True,
        **batch_args,
    )
    dev = seq2seq_batches(dev_pairs, 64, **batch_args).cache()

    # The budget rule where --epochs / --learning-rate are not given (no held-out slice here).
    # Its steps run as rounds of a repeated stream, not as passes: a pass over 100 examples
    # is 3 steps, and validating and checkpointing after each of 100 passes costs more than
    # the training.
    per_pass = len(train_in) // cfg.batch_size
    if cfg.epochs:
        epochs, steps_per_epoch = cfg.epochs, None
    else:
        epochs, steps_per_epoch = rounds_for(per_pass * passes_for(len(train_in), cfg.batch_size))
        train = train.repeat()
    steps = epochs * (steps_per_epoch or per_pass)
    learning_rate = cfg.learning_rate or learning_rate_for(init != "scratch", config.hidden_dim)
    with strategy.scope():
        compile_seq2seq(
            model,
            learning_rate,
            steps,
            cfg.warmup_fraction,
            cfg.weight_decay,
            cfg.steps_per_execution,
            cfg.xla,
        )
    timer = EpochTimer()
    history = fit(
        model,
        train,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        validation_data=dev,
        out_dir=out,
        callbacks=[timer],
        tensorboard=cfg.tensorboard,
        verbose=cfg.verbose,
        checkpoint_every=cfg.checkpoint_every,
    )
    train_seconds = history.training_seconds

    max_new = min(longest_out + 8, config.decoder_length - 1)  # a little past the longest target
    predictions, scores = score_dev(
        model,
        config,
        tokenizer,
        task["name"],
        (dev_in, dev_out),
        max_new,
        cfg.num_beams,
        class_names=task["class_names"],
    )
    metrics = {
        "task": task["name"],
        "init": init,
        "reinit": cfg.reinit,
        **scores,
        "train_examples": len(train_in),
        "dev_examples": len(dev_in),
        "epochs": epochs,  # with the budget rule: rounds of steps_per_epoch steps
        "steps_per_epoch": steps_per_epoch or per_pass,
        "steps": steps,
        "train_seconds": train_seconds,
        "num_beams": cfg.num_beams,
        "max_new_tokens": max_new,
        "final_loss": float(history.history["loss"][-1]),
        "val_loss": float(history.history["val_loss"][-1]),
        "val_token_accuracy": float(history.history["val_token_accuracy"][-1]),
    }

    save_seq2seq(model, config, tokenizer, out, {"class_names": task["class_names"]})
    write_json(
        out / "samples.json",
        [
            {"input": a, "target": b, "output": c}
            for a, b, c in list(zip(dev_in, dev_out, predictions, strict=True))[:50]
        ],
    )
    write_json(out / "history.json", history.history)
    if cfg.export:
        export_seq2seq(model, config, tokenizer, out / "saved_model")
    write_json(out / "metrics.json", metrics)
    return metrics
