"""The text commands on the user's own data: a 3-class CSV with string labels, a sentence-pair
TSV, text-to-text tables, JSONL and glob corpora, and the data layer's errors as CLI errors."""

import json

import numpy as np
import pytest

from tfpretrain.cli.main import main

TOPICS = {
    "sport": ["the team won the match", "a goal in the last minute", "the runner broke the record"],
    "food": ["the soup was hot and salty", "fresh bread from the oven", "a sweet cake with cream"],
    "music": ["the band played a loud song", "a quiet piano concert", "the singer hit a high note"],
}


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    root = tmp_path_factory.mktemp("tables")
    rng = np.random.default_rng(0)
    rows = [
        (f"{rng.choice(texts)} {i}", topic) for i in range(30) for topic, texts in TOPICS.items()
    ]
    (root / "topics.csv").write_text("body,topic\n" + "".join(f'"{t}",{c}\n' for t, c in rows))
    pairs = ["premise\thypothesis\tlabel\n"]
    for i in range(60):
        a = str(rng.choice(TOPICS["sport"]))
        other = str(rng.choice(TOPICS["food"]))
        b, label = (a, "entailment") if i % 2 else (other, "contradiction")
        pairs.append(f"{a} {i}\t{b}\t{label}\n")
    (root / "nli.tsv").write_text("".join(pairs))
    return root


def _finetune(out, *args) -> dict:
    assert (
        main(
            [
                "finetune",
                "--init",
                "scratch",
                "--preset",
                "tiny",
                "--vocab-size",
                "120",
                "--epochs",
                "1",
                "--batch-size",
                "8",
                "--seq-len",
                "24",
                "--learning-rate",
                "1e-3",
                "--steps-per-execution",
                "4",
                "--out",
                str(out),
                *args,
            ]
        )
        == 0
    )
    return json.loads((out / "metrics.json").read_text())


@pytest.mark.slow
def test_three_string_classes_from_a_csv(tables, tmp_path):
    out = tmp_path / "ft"
    metrics = _finetune(
        out,
        "--task",
        str(tables / "topics.csv"),
        "--text-column",
        "body",
        "--label-column",
        "topic",
        "--limit-train",
        "40",
    )
    assert metrics["class_names"] == ["food", "music", "sport"]  # sorted string labels
    assert metrics["train_examples"] == 40 and metrics["dev_examples"] == 9
    confusion = np.array(metrics["confusion_matrix"])
    assert confusion.shape == (3, 3) and confusion.sum() == 9
    assert confusion.sum(1).tolist() == [3] * 3
    assert set(metrics["per_class"]) == {"food", "music", "sport"}
    assert metrics["per_class"]["food"]["support"] == 3
    assert json.loads((out / "config.json").read_text())["class_names"] == metrics["class_names"]

    # Declared names fix the order; distilling keeps the teacher's classes (and refuses others).
    student = tmp_path / "student"
    assert (
        main(
            [
                "distill",
                "--teacher",
                str(out),
                "--task",
                str(tables / "topics.csv"),
                "--text-column",
                "body",
                "--label-column",
                "topic",
                "--student-preset",
                "tiny",
                "--epochs",
                "1",
                "--batch-size",
                "8",
                "--no-baseline",
                "--no-export",
                "--out",
                str(student),
            ]
        )
        == 0
    )
    distilled = json.loads((student / "metrics.json").read_text())
    assert distilled["class_names"] == ["food", "music", "sport"]
    assert np.array(distilled["confusion_matrix"]).shape == (3, 3)
    assert (
        main(
            [
                "distill",
                "--teacher",
                str(out),
                "--task",
                str(tables / "topics.csv"),
                "--text-column",
                "body",
                "--label-column",
                "topic",
                "--label-names",
                "sport",
                "food",
                "music",
                "--out",
                str(tmp_path / "x"),
            ]
        )
        == 2
    )


@pytest.mark.slow
def test_sentence_pairs_from_a_tsv_export_and_predict(tables, tmp_path, capsys):
    import keras
    import tensorflow as tf

    from tests.checks import reload_text_export
    from tfpretrain.export.core import find_saved_model
    from tfpretrain.text import WordPieceTokenizer

    out = tmp_path / "nli"
    names = ["entailment", "contradiction"]
    metrics = _finetune(out, "--task", str(tables / "nli.tsv"), "--label-names", *names)
    assert metrics["class_names"] == names
    assert sum(map(sum, metrics["confusion_matrix"])) == metrics["dev_examples"] == 6

    # The export takes the two texts of each pair and packs them as training did.
    first = ["the team won the match", "a goal in the last minute", ""]
    second = ["the team won the match", "fresh bread from the oven", "a quiet piano concert"]
    model = keras.models.load_model(out / "classifier.keras")
    tokenizer = WordPieceTokenizer(out / "vocab.txt")
    packed = tokenizer.pack(tf.constant(first), 24, pairs=tf.constant(second))
    expected = tf.nn.softmax(model(packed, training=False)).numpy()
    reply = reload_text_export(find_saved_model(out), {"strings": first, "pairs": second})
    assert reply["modules"] == [] and reply["label_names"] == names
    np.testing.assert_allclose(reply["serving_default"]["probabilities"], expected, atol=1e-5)
    assert reply["serving_default"]["labels"] == [names[i] for i in expected.argmax(-1)]

    capsys.readouterr()
    pairs = list(zip(first, second, strict=True))
    (tmp_path / "pairs.tsv").write_text("".join(f"{a}\t{b}\n" for a, b in pairs))
    assert main(["predict", "--model", str(out), "--input", str(tmp_path / "pairs.tsv")]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["text"], r["text_pair"]) for r in rows] == pairs
    assert [r["label"] for r in rows] == [names[i] for i in expected.argmax(-1)]
    for row, p in zip(rows, expected, strict=True):
        assert list(row["probabilities"]) == names
        np.testing.assert_allclose(list(row["probabilities"].values()), p, atol=1e-5)
    (tmp_path / "single.txt").write_text("one text\n")
    assert main(["predict", "--model", str(out), "--input", str(tmp_path / "single.txt")]) == 2
    assert "line 1: the model classifies sentence pairs" in capsys.readouterr().err

    # A student distilled on the pairs exports pairs too.
    student = tmp_path / "student"
    argv = ["--teacher", str(out), "--task", str(tables / "nli.tsv"), "--label-names", *names]
    argv += ["--student-preset", "tiny", "--epochs", "1", "--batch-size", "8", "--no-baseline"]
    assert main(["distill", *argv, "--out", str(student)]) == 0
    model = keras.models.load_model(student / "classifier.keras")
    expected = tf.nn.softmax(model(packed, training=False)).numpy()  # the teacher's vocabulary
    served = tf.saved_model.load(str(find_saved_model(student))).signatures["serve"]
    probabilities = served(strings=tf.constant(first), pairs=tf.constant(second))["probabilities"]
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)


def test_t5_reads_pairs_and_target_tables_as_text(tables, tmp_path):
    from tfpretrain.recipes.seq2seq_finetune import text_to_text_task
    from tfpretrain.settings.finetune import FinetuneRun

    def settings(task, **flags):
        return FinetuneRun(task=str(task), init="scratch", preset="t5-tiny", out_dir="o", **flags)

    nli = text_to_text_task(
        str(tables / "nli.tsv"), settings(tables / "nli.tsv", label_column="label")
    )
    assert nli["class_names"] == ["contradiction", "entailment"]
    first_in, first_out = nli["train"][0][0], nli["train"][1][0]
    assert first_in.startswith("premise: ") and " hypothesis: " in first_in
    assert first_out in ("contradiction", "entailment")

    (tmp_path / "fix.jsonl").write_text(
        "".join(json.dumps({"src": f"helo {i}", "dst": f"hello {i}"}) + "\n" for i in range(20))
    )
    table = text_to_text_task(
        str(tmp_path / "fix.jsonl"),
        settings(tmp_path / "fix.jsonl", text_column="src", target_column="dst", limit_train=5),
    )
    assert len(table["train"][0]) == 5 and len(table["dev"][0]) == 2
    assert all(t == s.replace("helo", "hello") for s, t in zip(*table["train"], strict=True))


@pytest.mark.slow
def test_clm_on_a_jsonl_corpus_and_mlm_on_a_glob(tmp_path):
    (tmp_path / "notes.jsonl").write_text(
        "".join(
            json.dumps({"id": i, "body": f"note number {i} says hello world"}) + "\n"
            for i in range(200)
        )
    )
    assert (
        main(
            [
                "clm",
                "--corpus",
                str(tmp_path / "notes.jsonl"),
                "--text-column",
                "body",
                "--seq-len",
                "16",
                "--batch-size",
                "4",
                "--steps",
                "4",
                "--eval-interval",
                "4",
                "--num-samples",
                "0",
                "--no-export",
                "--out",
                str(tmp_path / "clm"),
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "clm" / "metrics.json").read_text())["steps"] == 4
    for i in range(3):
        (tmp_path / "books" / f"b{i}").mkdir(parents=True)
        (tmp_path / "books" / f"b{i}" / "text.txt").write_text(
            "".join(f"the cat {j} sat on mat {i}\n" for j in range(60))
        )
    assert (
        main(
            [
                "mlm",
                "--corpus",
                str(tmp_path / "books" / "**" / "*.txt"),
                "--preset",
                "tiny",
                "--vocab-size",
                "60",
                "--steps",
                "4",
                "--epochs",
                "1",
                "--batch-size",
                "8",
                "--seq-len",
                "16",
                "--steps-per-execution",
                "2",
                "--out",
                str(tmp_path / "mlm"),
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "mlm" / "metrics.json").read_text())["steps"] == 4


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            [
                "finetune",
                "--task",
                "{root}/topics.csv",
                "--label-column",
                "subject",
                "--init",
                "scratch",
            ],
            "topics.csv",
        ),
        (
            [
                "finetune",
                "--task",
                "{root}/topics.csv",
                "--text-column",
                "body",
                "--label-column",
                "topic",
                "--label-names",
                "food",
                "sport",
                "--init",
                "scratch",
            ],
            "label 'music' is not among the declared classes ['food', 'sport']",
        ),
        (["mlm", "--corpus", "{root}/topics.csv", "--text-column", "title"], "topics.csv"),
        (["clm", "--corpus", "{root}/*.md"], "matches no file"),
        (["seq2seq", "--corpus", "{root}/nowhere.txt"], "nowhere.txt' not found"),
    ],
)
def test_data_errors_are_clean_cli_errors(tables, tmp_path, capsys, argv, message):
    argv = [a.replace("{root}", str(tables)) for a in argv]
    assert main([*argv, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
