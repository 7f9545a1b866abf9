import dataclasses
import json
import math
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from tfpretrain.models.t5 import Seq2SeqConfig, Seq2SeqGenerator, build_seq2seq
from tfpretrain.recipes.finetune import FinetuneRun
from tfpretrain.recipes.finetune import run as finetune
from tfpretrain.recipes.seq2seq import Seq2SeqRun, load_seq2seq
from tfpretrain.recipes.seq2seq import run as pretrain
from tfpretrain.recipes.seq2seq_finetune import (
    character_error_rate,
    edit_distance,
    reinitialize,
    score_dev,
    strip_punctuation,
    text_to_text_task,
)
from tfpretrain.training import budget

TINY = dict(
    hidden_dim=32, num_heads=2, intermediate_dim=64, num_encoder_layers=1, num_decoder_layers=1
)

RELOAD = """
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401
loaded = tf.saved_model.load(sys.argv[1])
inputs = tf.constant(json.loads(sys.argv[2]))
greedy = loaded.signatures["generate"](inputs=inputs, max_length=tf.constant(10),
                                       temperature=tf.constant(0.0), top_k=tf.constant(0),
                                       top_p=tf.constant(1.0))["outputs"]
beam = loaded.signatures["beam_search"](inputs=inputs, max_length=tf.constant(10),
                                        length_penalty=tf.constant(1.0))["outputs"]
try:
    loaded.signatures["generate"](inputs=tf.constant([""]), max_length=tf.constant(10),
                                  temperature=tf.constant(0.0), top_k=tf.constant(0),
                                  top_p=tf.constant(1.0))
    empty = "accepted"
except tf.errors.InvalidArgumentError as err:
    empty = str(err)
print(json.dumps({"greedy": [s.decode() for s in greedy.numpy()],
                  "beam": [s.decode() for s in beam.numpy()],
                  "empty": empty,
                  "tfpretrain": sorted(m for m in sys.modules if m.startswith("tfpretrain"))}))
"""


def cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "tfpretrain.cli.main", *args], capture_output=True, text=True
    )


def test_help_lists_flags():
    out = cli("seq2seq", "--help").stdout
    for flag in (
        "--corpus",
        "--preset",
        "--steps",
        "--batch-size",
        "--out",
        "--strategy",
        "--precision",
    ):
        assert flag in out
    out = cli("finetune", "--help").stdout
    assert "t5-tiny" in out and "punctuation" in out and "--num-beams" in out


def test_cer_and_punctuation_stripping():
    assert edit_distance("kitten", "sitting") == 3 and edit_distance("", "abc") == 3
    assert character_error_rate(["abc", "xy"], ["abd", "xy"]) == pytest.approx(1 / 5)
    assert strip_punctuation("Nay, 'tis so--\nROMEO: Go!") == "nay tis so\nromeo go"


class _CharTokenizer:
    def encode(self, text):
        return [ord(c) for c in text]

    def decode(self, ids):
        return "".join(chr(i) for i in ids)


class _ChosenOutputs:
    """Stands in for `Seq2SeqGenerator`: decodes each input to the output the test chose."""

    outputs: dict[str, str] = {}

    def __init__(self, model, config, tokenizer):
        self.tokenizer, self.eos_id = tokenizer, config.eos_id

    def generate_ids(self, rows, max_new, num_beams=1, greedy=True):
        assert all(row[-1] == self.eos_id for row in rows)
        decode, encode = self.tokenizer.decode, self.tokenizer.encode
        return [[encode(self.outputs[decode(row[:-1])])] for row in rows]


def test_score_dev_scores_the_decoded_strings_against_the_targets(monkeypatch):
    from tfpretrain.recipes import seq2seq_finetune

    monkeypatch.setattr(seq2seq_finetune, "Seq2SeqGenerator", _ChosenOutputs)
    config, tokenizer = SimpleNamespace(eos_id=0), _CharTokenizer()
    _ChosenOutputs.outputs = {"good night": "GOOD NIGHT", "love": "LOV", "king": "king"}
    dev = (["good night", "love", "king"], ["GOOD NIGHT", "LOVE", "KING"])
    predictions, scores = score_dev(None, config, tokenizer, "tsv", dev, 20)
    assert predictions == ["GOOD NIGHT", "LOV", "king"]
    # One of three exact; 0 + 1 + 4 edits over 10 + 4 + 4 target characters; copying the
    # inputs gets their 9 + 4 + 4 letters wrong.
    assert scores["exact_match"] == pytest.approx(1 / 3)
    assert scores["cer"] == pytest.approx(5 / 18)
    assert scores["copy_input_cer"] == pytest.approx(17 / 18)
    # SST-2: class 1 is "positive"; a word that is neither label counts as the wrong class.
    _ChosenOutputs.outputs = {"a": "positive", "b": "positive", "c": "maybe", "d": "negative"}
    dev = (["a", "b", "c", "d"], ["positive", "negative", "positive", "negative"])
    _, scores = score_dev(None, config, tokenizer, "sst2", dev, 20)
    assert scores["exact_match"] == 0.5  # truth 1 0 1 0, read as 1 1 0 0
    assert scores["accuracy"] == 0.5 and scores["precision"] == 0.5 and scores["recall"] == 0.5


@pytest.mark.slow
def test_pretrain_finetune_generate_export(tmp_path, data_dir, monkeypatch):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text((data_dir / "tinyshakespeare" / "input.txt").read_text()[:60000])
    pre = pretrain(
        Seq2SeqRun(
            corpus=str(corpus),
            out_dir=str(tmp_path / "pre"),
            steps=60,
            eval_interval=30,
            batch_size=16,
            seq_len=32,
            vocab_size=400,
            learning_rate=3e-3,
            warmup_fraction=5 / 60,
            model_overrides=TINY,
            verbose=0,
        )
    )
    model, config, tokenizer = load_seq2seq(tmp_path / "pre")
    vocabulary = tokenizer.vocabulary_size
    assert config.vocabulary_size == vocabulary == 400 + 100
    # Held-out span-corruption loss well below guessing, and falling.
    assert pre["val_loss"] < 0.8 * math.log(vocabulary)
    assert pre["val_loss_curve"][-1] < pre["val_loss_curve"][0]
    for name in (
        "model.keras",
        "config.json",
        "metrics.json",
        "sentencepiece.model",
        "checkpoints",
        "saved_model/1/saved_model.pb",
    ):
        assert (tmp_path / "pre" / name).exists(), name

    task = tmp_path / "copy.tsv"
    rng = np.random.default_rng(0)
    words = ["king", "queen", "lord", "good", "night", "love", "death", "sweet"]
    lines = [" ".join(rng.choice(words, 3)) for _ in range(220)]
    task.write_text("".join(f"{line}\t{line.upper()}\n" for line in lines))
    metrics = finetune(
        FinetuneRun(
            task=str(task),
            init=str(tmp_path / "pre"),
            out_dir=str(tmp_path / "ft"),
            epochs=2,
            batch_size=16,
            learning_rate=3e-3,
            verbose=0,
            limit_eval=8,
        )
    )
    assert metrics["init"] == "seq2seq" and metrics["dev_examples"] == 8
    # Copying a line gets every letter's case wrong and every space right.
    dev_in, dev_out = (part[:8] for part in text_to_text_task(str(task))["dev"])
    letters = sum(c.isalpha() for line in dev_out for c in line)
    assert metrics["copy_input_cer"] == pytest.approx(letters / sum(len(t) for t in dev_out))
    written = json.loads((tmp_path / "ft" / "metrics.json").read_text())
    assert written["cer"] == pytest.approx(metrics["cer"])

    # The SavedModel, reloaded with TensorFlow and tensorflow_text only, generates what Python does.
    model, config, tokenizer = load_seq2seq(tmp_path / "ft")
    # Scoring the reloaded model again (as tools/score_seq2seq.py does) reproduces the run's scores.
    predictions, again = score_dev(
        model, config, tokenizer, "tsv", (dev_in, dev_out), written["max_new_tokens"]
    )
    assert (
        again["cer"] == pytest.approx(metrics["cer"])
        and again["exact_match"] == metrics["exact_match"]
    )
    # Both scores are those of the decoded strings against the dev targets.
    pairs = list(zip(predictions, dev_out, strict=True))
    assert again["exact_match"] == np.mean([p == t for p, t in pairs])
    distance = sum(edit_distance(p, t) for p, t in pairs)
    assert again["cer"] == pytest.approx(distance / sum(len(t) for t in dev_out))
    inputs = ["good night sweet", "love"]
    expected = [
        row[0]
        for row in Seq2SeqGenerator(model, config, tokenizer).generate(inputs, 10, greedy=True)
    ]
    saved = tmp_path / "ft" / "saved_model" / "1"
    result = subprocess.run(
        [sys.executable, "-c", RELOAD, str(saved), json.dumps(inputs)],
        capture_output=True,
        text=True,
        check=True,
    )
    served = json.loads(result.stdout.strip().splitlines()[-1])
    assert served["tfpretrain"] == []
    assert served["greedy"] == expected
    assert len(served["beam"]) == 2 and all(isinstance(s, str) for s in served["beam"])
    assert "tokenizes to nothing" in served["empty"]

    # Without --epochs the budget rule's steps run as at most ROUNDS validated rounds, however
    # short a pass is: 40 examples in batches of 16 are 2 steps a pass, 30 passes for the rule.
    monkeypatch.setattr(budget, "MIN_STEPS", 40)
    assert budget.passes_for(40, 16) == 30
    ruled = finetune(
        FinetuneRun(
            task=str(task),
            init=str(tmp_path / "pre"),
            out_dir=str(tmp_path / "ft-rule"),
            batch_size=16,
            limit_train=40,
            verbose=0,
            limit_eval=8,
            export=False,
        )
    )
    assert (ruled["epochs"], ruled["steps_per_epoch"], ruled["steps"]) == (budget.ROUNDS, 3, 60)
    history = json.loads((tmp_path / "ft-rule" / "history.json").read_text())
    assert len(history["val_loss"]) == budget.ROUNDS


def test_reconstruct_objective_trains_on_the_whole_text(tmp_path, data_dir):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text((data_dir / "tinyshakespeare" / "input.txt").read_text()[:20000])
    out = tmp_path / "pre"
    cfg = Seq2SeqRun(
        corpus=str(corpus),
        out_dir=str(out),
        objective="reconstruct",
        steps=40,
        eval_interval=20,
        batch_size=16,
        seq_len=24,
        vocab_size=400,
        learning_rate=3e-3,
        warmup_fraction=0.1,
        model_overrides=TINY,
        export=False,
        verbose=0,
    )
    pre = pretrain(cfg)
    assert pre["val_loss_curve"][-1] < pre["val_loss_curve"][0]
    assert json.loads((out / "config.json").read_text())["run"]["objective"] == "reconstruct"
    # The targets are the 24-token windows themselves: one more than the decoder can hold fails.
    model, config, tokenizer = load_seq2seq(out)
    too_long = dataclasses.replace(
        cfg, out_dir=str(tmp_path / "long"), seq_len=config.decoder_length
    )
    with pytest.raises(ValueError, match="targets of"):
        pretrain(too_long)


@pytest.mark.parametrize("part", ["none", "encoder", "cross-attention", "decoder"])
def test_reinitialize_draws_only_the_named_part(part):
    config = Seq2SeqConfig(
        vocabulary_size=50, num_sentinels=4, dropout=0.0, **{**TINY, "num_decoder_layers": 2}
    )
    model = build_seq2seq(config)
    before = {v.path: v.numpy().copy() for v in model.weights}
    reinitialize(model, config, part)
    after = {v.path: v.numpy() for v in model.weights}
    changed = {path for path, value in before.items() if not np.array_equal(value, after[path])}

    def expected(path):
        if part in ("encoder", "decoder"):
            return path.startswith((f"{part}_block", f"{part}_position_bias"))
        if part == "cross-attention":
            return path.startswith("decoder_block") and "/cross_attention/" in path
        return False

    # Norm scales start at one in both draws, so only the random weights can be seen to change.
    random_weights = {path for path, value in before.items() if np.std(value) > 0}
    assert changed == {path for path in random_weights if expected(path)}
    assert changed or part == "none"
    with pytest.raises(ValueError, match="--reinit must be one of"):
        reinitialize(model, config, "embedding")


def test_bad_input(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    result = cli("seq2seq", "--corpus", str(empty), "--out", str(tmp_path / "a"))
    assert result.returncode == 2 and "empty" in result.stderr
    result = cli("seq2seq", "--corpus", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "a"))
    assert result.returncode == 2 and "missing.txt' not found" in result.stderr
    long_targets = tmp_path / "long.tsv"
    rng = np.random.default_rng(0)  # varied words, so that a 300-piece vocabulary can be learned
    words = ["".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), 5)) for _ in range(12000)]
    long_targets.write_text(
        "".join(f"short {i}\t{' '.join(words[300 * i : 300 * (i + 1)])}\n" for i in range(40))
    )
    result = cli(
        "finetune",
        "--task",
        str(long_targets),
        "--init",
        "scratch",
        "--preset",
        "t5-tiny",
        "--vocab-size",
        "300",
        "--batch-size",
        "8",
        "--out",
        str(tmp_path / "b"),
    )
    assert result.returncode == 2 and "decoder context" in result.stderr, result.stderr[-2000:]
    result = cli(
        "finetune",
        "--task",
        str(long_targets),
        "--init",
        "scratch",
        "--preset",
        "t5-tiny",
        "--reinit",
        "decoder",
        "--out",
        str(tmp_path / "c"),
    )
    assert result.returncode == 2 and "needs a pre-trained seq2seq directory" in result.stderr


def test_old_flag_spellings_still_work_with_a_deprecation_message(capsys):
    from tfpretrain.cli.main import build_parser

    args = build_parser().parse_args(
        [
            "seq2seq",
            "--corpus",
            "c.txt",
            "--out",
            "o",
            "--length",
            "64",
            "--eval-every",
            "100",
            "--warmup-steps",
            "20",
        ]
    )
    cfg = Seq2SeqRun.from_args(args)
    assert (cfg.seq_len, cfg.eval_interval, cfg.warmup_fraction) == (64, 100, 0.01)
    err = capsys.readouterr().err
    for old, new in (
        ("--length", "--seq-len"),
        ("--eval-every", "--eval-interval"),
        ("--warmup-steps", "--warmup-fraction"),
    ):
        assert f"{old} is deprecated; use {new}" in err


def test_presets_are_the_models_and_warm_up_is_unchanged():
    from tfpretrain.models.t5 import PRESETS
    from tfpretrain.settings.seq2seq import T5_PRESETS
    from tfpretrain.training import warmup_steps

    assert T5_PRESETS == tuple(PRESETS)
    cfg = Seq2SeqRun(corpus="c.txt", out_dir="o")
    assert (cfg.steps, warmup_steps(cfg.steps, cfg.warmup_fraction)) == (2000, 100)  # as before


@pytest.mark.parametrize(
    "values, message",
    [
        ({"seq_len": 0}, "--seq-len must be > 0"),
        ({"noise_density": 1.0}, r"--noise-density must be in \(0, 1\)"),
        ({"preset": "t5-huge"}, "--preset must be one of t5-tiny, t5-small"),
        ({"steps": 700}, "--steps 700 is not a multiple of --eval-interval 500"),
    ],
)
def test_bad_settings_are_refused_before_the_corpus_is_read(tmp_path, values, message):
    with pytest.raises(ValueError, match=message):
        pretrain(
            Seq2SeqRun(corpus=str(tmp_path / "missing.txt"), out_dir=str(tmp_path / "o"), **values)
        )
    assert not (tmp_path / "o").exists()


def test_generate_command_decodes_with_a_t5_run(tmp_path, capsys):
    from tests.test_export_seq2seq import tiny_t5
    from tfpretrain.cli.main import main
    from tfpretrain.recipes.seq2seq import save_seq2seq

    model, config, tokenizer = tiny_t5()
    save_seq2seq(model, config, tokenizer, tmp_path / "run")
    generator = Seq2SeqGenerator(model, config, tokenizer)
    prompt = "good night sweet prince"
    runs = {
        ("--greedy",): dict(greedy=True),
        ("--num-beams", "2", "--num-return-sequences", "2"): dict(
            num_beams=2, num_return_sequences=2
        ),
        ("--temperature", "0.8", "--top-k", "5", "--seed", "3"): dict(
            temperature=0.8, top_k=5, seed=3
        ),
    }
    for flags, options in runs.items():
        assert (
            main(
                [
                    "generate",
                    "--model",
                    str(tmp_path / "run"),
                    "--prompt",
                    prompt,
                    "--max-length",
                    "8",
                    *flags,
                ]
            )
            == 0
        )
        printed = capsys.readouterr().out.rstrip("\n").split("\n----\n")
        assert printed == generator.generate(prompt, 8, **options)[0], flags
