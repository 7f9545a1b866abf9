"""The command line on Hugging Face folders: generate, clm / mlm / finetune / seq2seq --init,
export-hf, against `transformers` on tiny random checkpoints with real tokenizer files."""

from __future__ import annotations

import numpy as np
import pytest
import torch  # the dev extra: missing fails, never skips
import transformers  # the dev extra: missing fails, never skips

from tests.hf_folders import gpt2_folder, shakespeare, t5_folder
from tfpretrain.cli.main import main
from tfpretrain.text import load_tokenizer

PROMPT = "First Citizen:"


def generate(capsys, model, *flags) -> list[str]:
    capsys.readouterr()
    assert main(["generate", "--model", str(model), "--prompt", PROMPT, *flags]) == 0
    return capsys.readouterr().out.rstrip("\n").split("\n----\n")


def gpt2_greedy(reference, tokenizer, max_length: int) -> str:
    with torch.no_grad():
        ids = reference.generate(
            torch.tensor([tokenizer.encode(PROMPT).tolist()]),
            max_length=max_length,
            do_sample=False,
            pad_token_id=0,
            eos_token_id=None,
        )[0].numpy()
    return tokenizer.decode(ids)


def test_generate_on_a_gpt2_folder(tmp_path, capsys):
    reference = gpt2_folder(tmp_path)
    tokenizer = load_tokenizer(tmp_path)
    expected = gpt2_greedy(reference, tokenizer, 12)
    assert generate(
        capsys, tmp_path, "--max-length", "12", "--greedy", "--num-return-sequences", "2"
    ) == [expected, expected]
    sampled = generate(
        capsys,
        tmp_path,
        "--max-length",
        "12",
        "--top-k",
        "40",
        "--seed",
        "0",
        "--num-return-sequences",
        "5",
    )
    assert len(sampled) == 5 and len(set(sampled)) > 1
    assert all(text.startswith(PROMPT) for text in sampled)
    beams = generate(capsys, tmp_path, "--max-length", "12", "--num-beams", "3")
    assert len(beams) == 1 and beams[0].startswith(PROMPT)


def test_generate_on_a_t5_folder(tmp_path, capsys):
    reference, hf_tokenizer = t5_folder(tmp_path)
    tokenizer = load_tokenizer(tmp_path)
    with torch.no_grad():
        ids = reference.generate(
            torch.tensor([hf_tokenizer(PROMPT)["input_ids"]]),
            max_new_tokens=8,
            do_sample=False,
            num_beams=1,
        )[0].numpy()
    assert len(ids) > 3
    expected = tokenizer.decode(ids[1:])  # after the start token, up to the end token
    assert generate(capsys, tmp_path, "--max-length", "8", "--greedy") == [expected]
    sampled = generate(
        capsys, tmp_path, "--max-length", "8", "--seed", "1", "--num-return-sequences", "5"
    )
    assert len(sampled) == 5
    assert len(generate(capsys, tmp_path, "--max-length", "8", "--num-beams", "2")) == 1


def test_generate_names_what_it_accepts(tmp_path, capsys):
    assert main(["generate", "--model", str(tmp_path), "--prompt", "x"]) == 2
    assert "local Hugging Face GPT-2 or T5 folder" in capsys.readouterr().err


def corpus(tmp_path, chars: int = 6000):
    path = tmp_path / "corpus.txt"
    path.write_text(shakespeare(chars))
    return str(path)


TINY_CLM = [
    "--batch-size",
    "2",
    "--steps",
    "4",
    "--eval-interval",
    "2",
    "--num-samples",
    "0",
    "--steps-per-execution",
    "1",
]


def test_clm_continues_a_gpt2_folder_and_exports_strings_to_strings(tmp_path, capsys):
    import json

    import tensorflow as tf

    gpt2_folder(tmp_path / "gpt2")
    out = tmp_path / "run"
    assert (
        main(
            [
                "clm",
                "--init",
                str(tmp_path / "gpt2"),
                "--corpus",
                corpus(tmp_path),
                "--out",
                str(out),
                "--seq-len",
                "32",
                *TINY_CLM,
            ]
        )
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["vocabulary_size"] == 50257 and metrics["steps"] == 4
    model_config = json.loads((out / "config.json").read_text())["model"]
    assert (model_config["activation"], model_config["sequence_length"]) == ("gelu_approximate", 64)
    # The continued model generates through its BPE tokenizer, and its export takes strings.
    assert generate(capsys, out, "--max-length", "10", "--greedy")[0].startswith(PROMPT)
    from tfpretrain.export.core import find_saved_model

    loaded = tf.saved_model.load(str(find_saved_model(out)))
    result = loaded.signatures["generate"](
        prompts=tf.constant([PROMPT]),
        max_length=tf.constant(10),
        num_return_sequences=tf.constant(2),
        temperature=tf.constant(0.0),
        top_k=tf.constant(0),
        top_p=tf.constant(1.0),
    )["completions"].numpy()
    assert result.shape == (1, 2)
    printed = generate(capsys, out, "--max-length", "10", "--greedy")[0]  # trailing "\n"s cut
    assert result[0, 0].decode().rstrip("\n") == printed


def test_export_hf_writes_a_run_trained_here_that_transformers_loads(tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        main(
            [
                "clm",
                "--corpus",
                corpus(tmp_path),
                "--out",
                str(out),
                "--seq-len",
                "16",
                "--tokenizer",
                "char",
                "--no-export",
                *TINY_CLM,
            ]
        )
        == 0
    )
    assert main(["export-hf", "--model", str(out), "--out", str(tmp_path / "hf")]) == 0
    assert "Wrote a Hugging Face gpt2 folder" in capsys.readouterr().out
    import keras

    ours = keras.models.load_model(out / "model.keras")
    theirs = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "hf").eval()
    ids = np.random.RandomState(0).randint(0, ours.output_shape[-1], (2, 16)).astype(np.int32)
    with torch.no_grad():
        expected = theirs(torch.tensor(ids, dtype=torch.long)).logits.numpy()
    assert np.abs(np.asarray(ours(ids)) - expected).max() <= 1e-4
    # The folder is a model tfpretrain generates with too (the char vocabulary travels along).
    assert generate(capsys, tmp_path / "hf", "--max-length", "16", "--greedy") == generate(
        capsys, out, "--max-length", "16", "--greedy"
    )
    assert main(["export-hf", "--model", str(tmp_path), "--out", str(tmp_path / "x")]) == 2
    assert "is not a finished run that export-hf writes" in capsys.readouterr().err


def sst2_lines(count: int, start: int = 1) -> list[tuple[str, int]]:
    """`count` SST-2 training rows (sentence, label), whose words the BERT vocab.txt holds."""
    from tests.hf_folders import data_path

    rows = data_path("sst2", "train.tsv").read_text().splitlines()[start : start + count]
    return [(row.split("\t")[0].strip(), int(row.split("\t")[1])) for row in rows]


def sentiment_tsv(tmp_path, count: int = 40, classes=("negative", "positive")) -> str:
    """A tiny `sentence<TAB>label` task whose labels are words."""
    path = tmp_path / "task.tsv"
    rows = [f"{text}\t{classes[label % len(classes)]}" for text, label in sst2_lines(count)]
    path.write_text("sentence\tlabel\n" + "\n".join(rows) + "\n")
    return str(path)


def bert_inputs(hf_tokenizer, sentences, length: int) -> dict:
    encoded = hf_tokenizer(
        sentences, padding="max_length", truncation=True, max_length=length, return_tensors="np"
    )
    return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}


def test_mlm_continues_a_bert_masked_lm_with_its_head_and_vocabulary(tmp_path):
    import json

    from tests.hf_folders import bert_folder
    from tfpretrain.recipes import mlm
    from tfpretrain.settings.mlm import MlmRun

    folder = tmp_path / "bert"
    reference = bert_folder(folder, head="ForMaskedLM")
    lines = [text for text, _ in sst2_lines(300)]
    (tmp_path / "corpus.txt").write_text("\n".join(lines) + "\n")
    cfg = MlmRun(
        corpus=str(tmp_path / "corpus.txt"),
        init=str(folder),
        seq_len=32,
        out_dir=str(tmp_path / "run"),
    )
    tokenizer, model = mlm._init_tokenizer(cfg), mlm._init_model(cfg)
    packed = {k: v.numpy() for k, v in tokenizer.pack(lines[:3], 32).items()}
    theirs = bert_inputs(transformers.BertTokenizer.from_pretrained(folder), lines[:3], 32)
    np.testing.assert_array_equal(packed["token_ids"], theirs["input_ids"])
    positions = np.tile(np.arange(32, dtype=np.int32), (3, 1))
    ours = np.asarray(model({**packed, "mask_positions": positions})["mlm"])
    with torch.no_grad():
        expected = reference(**{k: torch.tensor(v) for k, v in theirs.items()}).logits.numpy()
    assert np.abs(ours - expected).max() <= 1e-4

    out = tmp_path / "run"
    assert (
        main(
            [
                "mlm",
                "--init",
                str(folder),
                "--corpus",
                cfg.corpus,
                "--out",
                str(out),
                "--seq-len",
                "32",
                "--batch-size",
                "8",
                "--steps",
                "12",
                "--epochs",
                "3",
                "--learning-rate",
                "3e-3",
                "--steps-per-execution",
                "1",
                "--dropout",
                "0",
            ]
        )
        == 0
    )
    history = json.loads((out / "history.json").read_text())["loss"]
    assert history[-1] < history[0] - 0.2
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["vocabulary_size"] == tokenizer.vocabulary_size
    assert (out / "vocab.txt").read_text() == (folder / "vocab.txt").read_text()


def mixed_case(sentence: str) -> str:
    """Every other word capitalised and the last in capitals: text a cased tokenizer keeps."""
    words = sentence.split()
    words = [w.capitalize() if i % 2 == 0 else w for i, w in enumerate(words)]
    return " ".join(words[:-1] + [words[-1].upper()])


def test_a_cased_bert_stays_cased_through_mlm_finetune_and_export_hf(tmp_path, capsys):
    """A cased masked LM (do_lower_case false) continued by mlm, fine-tuned, and written back
    by export-hf twice: transformers' tokenizers give the same ids, its models the same
    logits."""
    import json

    import keras

    from tests.hf_folders import bert_folder

    folder, run, finetuned = tmp_path / "bert", tmp_path / "mlm", tmp_path / "finetuned"
    bert_folder(folder, head="ForMaskedLM", cased=True)
    sentences = [mixed_case(text) for text, _ in sst2_lines(4, start=100)]
    tokenizer = load_tokenizer(folder)
    theirs = bert_inputs(transformers.BertTokenizer.from_pretrained(folder), sentences, 32)
    packed = {k: v.numpy() for k, v in tokenizer.pack(sentences, 32).items()}
    np.testing.assert_array_equal(packed["token_ids"], theirs["input_ids"])
    tokenizer.lower_case = True  # the same vocabulary read uncased gives other ids
    assert (tokenizer.pack(sentences, 32)["token_ids"].numpy() != theirs["input_ids"]).any()

    (tmp_path / "corpus.txt").write_text(
        "\n".join(mixed_case(text) for text, _ in sst2_lines(100)) + "\n"
    )
    mlm = ["--seq-len", "32", "--batch-size", "8", "--steps", "2", "--epochs", "1"]
    run_flags = ["--steps-per-execution", "1", "--no-export"]
    corpus = ["--corpus", str(tmp_path / "corpus.txt")]
    assert main(["mlm", "--init", str(folder), *corpus, "--out", str(run), *mlm, *run_flags]) == 0
    task = tmp_path / "task.tsv"
    classes = ("negative", "positive")
    rows = [f"{mixed_case(text)}\t{classes[label]}" for text, label in sst2_lines(24)]
    task.write_text("sentence\tlabel\n" + "\n".join(rows) + "\n")
    finetune = ["--epochs", "1", "--batch-size", "4", "--seq-len", "32", "--learning-rate", "1e-3"]
    assert (
        main(
            ["finetune", "--init", str(run), "--task", str(task), "--out", str(finetuned)]
            + finetune
            + run_flags
        )
        == 0
    )
    for directory, model_file, head in (
        (run, "mlm.keras", "BertForMaskedLM"),
        (finetuned, "classifier.keras", "BertForSequenceClassification"),
    ):
        config = json.loads((directory / "tokenizer_config.json").read_text())
        assert config["do_lower_case"] is False
        hf = tmp_path / f"hf-{directory.name}"
        assert main(["export-hf", "--model", str(directory), "--out", str(hf)]) == 0
        assert json.loads((hf / "tokenizer_config.json").read_text())["do_lower_case"] is False
        hf_tokenizer = transformers.BertTokenizer.from_pretrained(hf)
        np.testing.assert_array_equal(
            bert_inputs(hf_tokenizer, sentences, 32)["input_ids"], theirs["input_ids"]
        )
        np.testing.assert_array_equal(
            load_tokenizer(hf).pack(sentences, 32)["token_ids"].numpy(), theirs["input_ids"]
        )
        ours = keras.models.load_model(directory / model_file, compile=False)
        reference = getattr(transformers, head).from_pretrained(hf).eval()
        with torch.no_grad():
            expected = reference(**{k: torch.tensor(v) for k, v in theirs.items()}).logits.numpy()
        if head == "BertForMaskedLM":
            positions = np.tile(np.arange(32, dtype=np.int32), (len(sentences), 1))
            logits = np.asarray(ours({**packed, "mask_positions": positions})["mlm"])
        else:
            assert reference.config.id2label == dict(enumerate(classes))
            logits = np.asarray(ours(packed))
        assert np.abs(logits - expected).max() <= 1e-4


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--seq-len", "128"], "--seq-len 128 is longer than the 64 positions"),
        (["--nsp"], "--nsp needs a next-sentence head"),
        (["--vocab", "vocab.txt"], "--vocab and --init exclude each other"),
    ],
)
def test_mlm_init_refuses_what_it_cannot_continue(tmp_path, capsys, flags, message):
    from tests.hf_folders import bert_folder

    bert_folder(tmp_path / "bert", head="ForMaskedLM")
    (tmp_path / "corpus.txt").write_text("a b c\n" * 50)
    assert (
        main(
            [
                "mlm",
                "--init",
                str(tmp_path / "bert"),
                "--corpus",
                str(tmp_path / "corpus.txt"),
                "--out",
                str(tmp_path / "run"),
                "--seq-len",
                "32",
                *flags,
            ]
        )
        == 2
    )
    assert message in capsys.readouterr().err


def test_mlm_init_names_a_folder_without_a_masked_lm_head(tmp_path, capsys):
    from tests.hf_folders import bert_folder

    bert_folder(tmp_path / "bert", head="ForSequenceClassification")
    (tmp_path / "corpus.txt").write_text("a b c\n" * 50)
    assert (
        main(
            [
                "mlm",
                "--init",
                str(tmp_path / "bert"),
                "--corpus",
                str(tmp_path / "corpus.txt"),
                "--out",
                str(tmp_path / "run"),
                "--seq-len",
                "32",
            ]
        )
        == 2
    )
    assert "holds BertForSequenceClassification, not a masked LM" in capsys.readouterr().err


def _finetune_model(tmp_path, folder, task: str, seq_len: int = 32):
    """The tokenizer and classifier `tfpretrain finetune --init folder` starts training from."""
    from tfpretrain.data.text_files import labelled_task
    from tfpretrain.recipes import finetune
    from tfpretrain.settings.finetune import FinetuneRun

    cfg = FinetuneRun(task=task, init=str(folder), seq_len=seq_len, out_dir=str(tmp_path / "x"))
    data = labelled_task(task)
    tokenizer, encoder = finetune.resolve_init(cfg).build(cfg, data["train"][0])
    return tokenizer, finetune._classifier(encoder, data, cfg)


@pytest.mark.parametrize("labels", [("negative", "positive"), ("POSITIVE", "NEGATIVE")])
def test_finetune_keeps_a_bert_classifier_its_logits_equal_transformers(tmp_path, labels):
    from tests.hf_folders import bert_folder

    folder = tmp_path / "bert"
    reference = bert_folder(folder, head="ForSequenceClassification", labels=list(labels))
    tokenizer, model = _finetune_model(tmp_path, folder, sentiment_tsv(tmp_path))
    # The head's classes are put in the task's order (sorted: negative, positive).
    assert model.label_names == sorted(labels, key=str.lower)
    sentences = [text for text, _ in sst2_lines(4, start=100)]
    theirs = bert_inputs(transformers.BertTokenizer.from_pretrained(folder), sentences, 32)
    packed = tokenizer.pack(sentences, 32)
    np.testing.assert_array_equal(packed["token_ids"].numpy(), theirs["input_ids"])
    with torch.no_grad():
        expected = reference(**{k: torch.tensor(v) for k, v in theirs.items()}).logits.numpy()
    if labels[0] == "POSITIVE":
        expected = expected[:, ::-1]
    assert np.abs(np.asarray(model(packed)) - expected).max() <= 1e-4


def test_finetune_refuses_a_classifier_of_other_classes(tmp_path, capsys):
    from tests.hf_folders import bert_folder

    bert_folder(tmp_path / "bert", head="ForSequenceClassification", labels=["no", "yes"])
    task = tmp_path / "three.tsv"
    classes = ("bad", "good", "mixed")
    task.write_text(
        "".join(f"{text}\t{classes[i % 3]}\n" for i, (text, _) in enumerate(sst2_lines(60)))
    )
    assert (
        main(
            [
                "finetune",
                "--init",
                str(tmp_path / "bert"),
                "--task",
                str(task),
                "--out",
                str(tmp_path / "run"),
                "--seq-len",
                "32",
            ]
        )
        == 2
    )
    assert (
        "is a classifier of 2 labels ['no', 'yes'], but the task has 3 classes"
        in capsys.readouterr().err
    )


@pytest.mark.parametrize("kind", ["distilbert", "roberta"])
def test_finetune_trains_a_distilbert_or_roberta_classifier_and_exports_strings_in(
    tmp_path, capsys, kind
):
    import json

    import keras
    import tensorflow as tf

    from tests.hf_folders import bert_folder, roberta_folder
    from tfpretrain.export.core import find_saved_model

    folder = tmp_path / kind
    if kind == "roberta":
        roberta_folder(folder)  # labels LABEL_0, LABEL_1: the task's names replace them
    else:
        bert_folder(folder, kind, head="ForSequenceClassification", labels=["negative", "positive"])
    out = tmp_path / "run"
    assert (
        main(
            [
                "finetune",
                "--init",
                str(folder),
                "--task",
                sentiment_tsv(tmp_path),
                "--out",
                str(out),
                "--epochs",
                "1",
                "--batch-size",
                "4",
                "--seq-len",
                "32",
                "--learning-rate",
                "1e-3",
                "--steps-per-execution",
                "1",
            ]
        )
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["init"] == "hf-bert" and metrics["steps"] == 9
    model = keras.models.load_model(out / "classifier.keras")
    assert model.label_names == ["negative", "positive"]
    assert model.encoder.config.hf_model_type == kind
    # The run's tokenizer is saved: with the model it gives the export's probabilities.
    tokenizer = load_tokenizer(out / ("tokenizer" if kind == "roberta" else ""))
    sentences = [text for text, _ in sst2_lines(3, start=200)]
    expected = tf.nn.softmax(model(tokenizer.pack(sentences, 32))).numpy()
    served = (
        tf.saved_model.load(str(find_saved_model(out)))
        .signatures["serve"](strings=tf.constant(sentences))["probabilities"]
        .numpy()
    )
    assert np.abs(served - expected).max() <= 1e-5
    if kind == "roberta":  # export-hf writes the BPE tokenizer beside the weights
        assert main(["export-hf", "--model", str(out), "--out", str(tmp_path / "hf")]) == 0
        theirs = transformers.RobertaForSequenceClassification.from_pretrained(tmp_path / "hf")
        packed = load_tokenizer(tmp_path / "hf").pack(sentences, 32)
        with torch.no_grad():
            logits = theirs.eval()(
                input_ids=torch.tensor(packed["token_ids"].numpy(), dtype=torch.long),
                attention_mask=torch.tensor(packed["padding_mask"].numpy()),
            ).logits.numpy()
        assert np.abs(logits - np.asarray(model(packed))).max() <= 1e-4


def text_pairs_tsv(tmp_path, count: int = 12) -> str:
    lines = [line for line in shakespeare(4000).split("\n") if line.strip()][:count]
    path = tmp_path / "pairs.tsv"
    path.write_text("".join(f"{line.lower()}\t{line}\n" for line in lines))
    return str(path)


def test_a_t5_folder_greedy_before_training_equals_transformers(tmp_path):
    from tfpretrain.recipes.seq2seq import load_hf_t5
    from tfpretrain.recipes.seq2seq_finetune import score_dev

    reference, hf_tokenizer = t5_folder(tmp_path)
    model, config, tokenizer = load_hf_t5(tmp_path)
    assert tokenizer.sentinel_id(0) == hf_tokenizer.convert_tokens_to_ids("<extra_id_0>")
    assert config.sentinel_start == tokenizer.sentinel_start
    prompts = [PROMPT, "Before we proceed any further, hear me speak."]
    predictions, _ = score_dev(model, config, tokenizer, "tsv", (prompts, prompts), 8)
    expected = []
    for prompt in prompts:
        with torch.no_grad():
            ids = reference.generate(
                torch.tensor([hf_tokenizer(prompt)["input_ids"]]),
                max_new_tokens=8,
                do_sample=False,
                num_beams=1,
            )[0]
        expected.append(tokenizer.decode(ids.numpy()[1:]))
    assert predictions == expected and any(expected)


def test_finetune_and_seq2seq_continue_a_t5_folder(tmp_path, capsys):
    import json

    from tfpretrain.text.seq2seq import Seq2SeqTokenizer

    t5_folder(tmp_path / "t5")
    out = tmp_path / "finetuned"
    assert (
        main(
            [
                "finetune",
                "--init",
                str(tmp_path / "t5"),
                "--task",
                text_pairs_tsv(tmp_path),
                "--out",
                str(out),
                "--epochs",
                "1",
                "--batch-size",
                "2",
                "--no-export",
                "--learning-rate",
                "1e-3",
                "--steps-per-execution",
                "1",
            ]
        )
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["init"], metrics["steps"]) == ("hf-t5", 5)
    assert len(generate(capsys, out, "--max-length", "6", "--greedy")) == 1

    out = tmp_path / "continued"
    assert (
        main(
            [
                "seq2seq",
                "--init",
                str(tmp_path / "t5"),
                "--corpus",
                corpus(tmp_path),
                "--out",
                str(out),
                "--steps",
                "4",
                "--eval-interval",
                "2",
                "--batch-size",
                "2",
                "--seq-len",
                "32",
                "--steps-per-execution",
                "1",
            ]
        )
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 4 and np.isfinite(metrics["val_loss"])
    saved = Seq2SeqTokenizer.load(out)  # T5's vocabulary, sentinels numbered down from the top
    assert saved.descending_sentinels and saved.sentinel_id(0) == 399
    assert json.loads((out / "config.json").read_text())["model"]["num_sentinels"] == 104
    assert len(generate(capsys, out, "--max-length", "6", "--greedy")) == 1

    # export-hf writes the continued T5 back: transformers reads its weights and its tokenizer.
    from tfpretrain.recipes.seq2seq import load_seq2seq

    assert main(["export-hf", "--model", str(out), "--out", str(tmp_path / "hf")]) == 0
    reference = transformers.T5ForConditionalGeneration.from_pretrained(tmp_path / "hf").eval()
    hf_tokenizer = transformers.T5TokenizerFast.from_pretrained(tmp_path / "hf")
    model, _, tokenizer = load_seq2seq(out)
    texts = ["First Citizen:<extra_id_0> proceed", "Before we <extra_id_1> any further, hear"]
    encoded = hf_tokenizer(texts, padding=True, return_tensors="np")
    assert [row[row != 0].tolist() for row in encoded["input_ids"]] == [
        [*tokenizer.encode(text).tolist(), 1] for text in texts
    ]
    enc = encoded["input_ids"].astype(np.int32)
    dec = np.array([[0, 5, 9, 399, 7], [0, 398, 3, 11, 4]], np.int32)
    with torch.no_grad():
        expected = reference(
            input_ids=torch.tensor(enc, dtype=torch.long),
            attention_mask=torch.tensor(encoded["attention_mask"]),
            decoder_input_ids=torch.tensor(dec, dtype=torch.long),
        ).logits.numpy()
    ours = np.asarray(model({"encoder_token_ids": enc, "decoder_token_ids": dec}))
    assert np.abs(ours - expected).max() <= 1e-4
