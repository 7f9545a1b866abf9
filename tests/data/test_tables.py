"""Text tables and labelled tasks from files (data/tables.py, data/text_files.py)."""

import json
import warnings

import numpy as np
import pytest

from tfpretrain.data.tables import TableError, read_table
from tfpretrain.data.text_files import corpus_dataset, corpus_text, labelled_task, read_corpus


def _csv(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_string_labels_sorted_or_declared(tmp_path):
    path = _csv(
        tmp_path / "reviews.csv",
        'text,label\n"Great, really",positive\nAwful,negative\nFine,positive\n',
    )
    table = read_table(path, text_column="text", label_column="label")
    assert table.texts == ["Great, really", "Awful", "Fine"]
    assert table.class_names == ["negative", "positive"] and table.labels.tolist() == [1, 0, 1]
    declared = read_table(path, label_column="label", label_names=["positive", "negative"])
    assert declared.labels.tolist() == [0, 1, 0]
    by_index = read_table(path, text_column="0", label_column=1)
    assert by_index.labels.tolist() == [1, 0, 1]
    with pytest.raises(
        TableError,
        match=r"line 3, column 'label': label 'negative' is not "
        r"among the declared classes",
    ):
        read_table(path, label_column="label", label_names=["positive", "neutral"])


def test_tsv_headers_detected_pairs_and_targets(tmp_path):
    plain = _csv(tmp_path / "plain.tsv", "good film\t1\nbad film\t0\n")
    table = read_table(plain, labelled=True)
    assert table.texts == ["good film", "bad film"] and table.labels.tolist() == [1, 0]
    sst = _csv(tmp_path / "sst.tsv", "sentence\tlabel\ngood\t1\nbad\t0\n")
    assert read_table(sst, labelled=True).texts == ["good", "bad"]
    named = _csv(tmp_path / "named.tsv", "words\tgold\ngood\t1\nbad\t0\n")  # unusual header
    assert read_table(named, labelled=True).texts == ["good", "bad"]
    pairs = _csv(
        tmp_path / "mnli.tsv",
        "sentence1\tsentence2\tlabel\ta\tb\tneutral\n".replace("label\t", "label\n")
        + "c\td\tentailment\ne\tf\tcontradiction\n",
    )
    table = read_table(pairs, labelled=True)
    assert table.texts == ["a", "c", "e"] and table.pairs == ["b", "d", "f"]
    assert table.class_names == ["contradiction", "entailment", "neutral"]
    seq = _csv(tmp_path / "seq.jsonl", '{"input": "hi", "target": "salut"}\n')
    assert read_table(seq, target_column="target").targets == ["salut"]


def test_jsonl_many_classes(tmp_path):
    rows = [{"body": f"t{i}", "topic": ["sport", "art", "tech"][i % 3]} for i in range(9)]
    path = _csv(tmp_path / "x.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    table = read_table(path, text_column="body", label_column="topic")
    assert table.class_names == ["art", "sport", "tech"] and len(table) == 9
    assert [table.class_names[i] for i in table.labels] == [r["topic"] for r in rows]


@pytest.mark.parametrize(
    "content, kwargs, message",
    [
        (
            "text,label\nhi,1\n",
            {"label_column": "stars"},
            r"line 1: unknown label column 'stars'; the file has \['text', 'label'\]",
        ),
        ("text,label\n,1\n", {"label_column": "label"}, r"line 2, column 0: the text .* is empty"),
        (
            "text,label\na,1\nb,two\n",
            {"label_column": "label"},
            r"mixed label types: line 2 has the integer '1' but line 3 has the text 'two'",
        ),
        ("text,label\n", {"label_column": "label"}, r"has a header \(line 1\) but no rows"),
        ("text,label\na,1,extra\n", {"label_column": "label"}, r"line 2: 3 fields but the header"),
        ("text,label\na,-1\n", {"label_column": "label"}, r"line 2, column 'label': label -1"),
    ],
)
def test_bad_tables_name_line_and_column(tmp_path, content, kwargs, message):
    path = _csv(tmp_path / "bad.csv", content)
    with pytest.raises(TableError, match=message):
        read_table(path, **kwargs)


def test_invalid_utf8_and_json_named(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes(b"text,label\ncaf\xe9,1\n")
    with pytest.raises(TableError, match=r"line 2, column 4 .*invalid UTF-8.*iconv"):
        read_table(path, label_column="label")
    bad = _csv(tmp_path / "bad.jsonl", '{"text": "a"}\n{"text": \n')
    with pytest.raises(TableError, match=r"bad.jsonl, line 2, column \d+: not valid JSON"):
        read_table(bad)
    with pytest.raises(TableError, match=r"unknown table format '.xlsx'"):
        read_table(_csv(tmp_path / "a.xlsx", "x"))


def test_labelled_task_stratified_hold_out_and_limit(tmp_path):
    # Sorted by label: "the last 10%" would hold out only one class.
    rows = [f"neg {i},negative" for i in range(40)] + [f"pos {i},positive" for i in range(20)]
    path = _csv(tmp_path / "reviews.csv", "text,label\n" + "\n".join(rows) + "\n")
    data = labelled_task(str(path), dev_fraction=0.25, seed=1)
    assert data["class_names"] == ["negative", "positive"] and data["num_classes"] == 2
    (train_x, train_y), (dev_x, dev_y) = data["train"], data["dev"]
    assert np.bincount(dev_y).tolist() == [10, 5] and np.bincount(train_y).tolist() == [30, 15]
    assert sorted(train_x + dev_x) == sorted(r.split(",")[0] for r in rows)
    assert all(
        data["class_names"][y] in x.replace("neg", "negative").replace("pos", "positive")
        for x, y in zip(train_x, train_y, strict=True)
    )
    assert labelled_task(str(path), dev_fraction=0.25, seed=1)["dev"][0] == dev_x
    assert labelled_task(str(path), dev_fraction=0.25, seed=2)["dev"][0] != dev_x
    small = labelled_task(str(path), dev_fraction=0.25, seed=1, limit=9)
    assert np.bincount(small["train"][1]).tolist() == [6, 3]
    assert small["dev"][0] == dev_x  # the limit samples training rows only


def test_labelled_task_dev_file_and_unseen_label(tmp_path):
    train = _csv(tmp_path / "train.csv", "text,label\na,x\nb,y\nc,y\n")
    _csv(tmp_path / "dev.csv", "text,label\nd,y\ne,z\n")
    with pytest.raises(
        TableError,
        match=r"dev.csv, line 3, column 'label': label 'z' never "
        r"occurs in the training data .*train.csv",
    ):
        labelled_task(str(train))
    _csv(tmp_path / "dev.csv", "text,label\nd,y\ne,x\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # class 'x' is seen once, but nothing is held out
        data = labelled_task(str(train))
    assert data["dev"][0] == ["d", "e"] and data["dev"][1].tolist() == [1, 0]
    tsv = _csv(tmp_path / "old.tsv", "one\t0\ntwo\t1\nthree\t1\nfour\t0\nfive\t1\n")
    old = labelled_task(str(tsv), 2)
    assert old["class_names"] == ["0", "1"] and len(old["dev"][0]) == 2  # one per class


def test_a_class_seen_once_is_warned_with_its_count(tmp_path):
    path = _csv(tmp_path / "rare.csv", "text,label\n" + "a,common\n" * 6 + "b,rare\n")
    with pytest.warns(UserWarning, match=r"1 class\(es\) seen only once \('rare'\)"):
        data = labelled_task(str(path))
    assert data["class_names"] == ["common", "rare"] and 1 in data["train"][1]


def test_a_stray_integer_label_is_warned_with_the_empty_classes(tmp_path):
    rows = "".join(f"text {i},{i % 2}\n" for i in range(40)) + "odd one,7\n"
    path = _csv(tmp_path / "stray.csv", "text,label\n" + rows)
    with pytest.warns(
        UserWarning,
        match=r"5 of 8 class\(es\) have no examples \('2', '3', '4', '5', "
        r"'6'\)",
    ):
        data = labelled_task(str(path))
    assert data["num_classes"] == 8


def test_corpus_from_tables_globs_and_streamed(tmp_path):
    (tmp_path / "a.txt").write_text("one\n\n = Heading = \ntwo\n", encoding="utf-8")
    (tmp_path / "b.txt").write_text("three\n", encoding="utf-8")
    _csv(tmp_path / "r.csv", "id,review\n1,four\n2,five\n")
    corpus = f"{tmp_path}/*.txt,{tmp_path / 'r.csv'}"
    lines = read_corpus(corpus, text_column="review")
    assert lines == ["one", "two", "three", "four", "five"]
    streamed = corpus_dataset(corpus, text_column="review").as_numpy_iterator()
    streamed = [s.decode() for s in streamed]
    assert streamed == lines
    with pytest.raises(FileNotFoundError, match="matches no file"):
        read_corpus(f"{tmp_path}/*.md")
    (tmp_path / "bad.txt").write_bytes(b"ok\nbad \xff here\n")
    with pytest.raises(ValueError, match=r"line 2, column 5"):
        corpus_dataset(str(tmp_path / "bad.txt"))


def test_corpus_text_keeps_a_file_whole_and_joins_parts(tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("naïve\n\n = Kept = \nlast", encoding="utf-8")
    assert corpus_text(str(good)) == "naïve\n\n = Kept = \nlast"  # exactly as stored
    _csv(tmp_path / "r.jsonl", '{"body": "four"}\n{"body": "five"}\n')
    joined = corpus_text(f"{good},{tmp_path / 'r.jsonl'},{good}", text_column="body")
    assert joined == "naïve\n\n = Kept = \nlast\nfour\nfive\nnaïve\n\n = Kept = \nlast"
    # Streamed as stored (clm), the same text line by line.
    layout = corpus_dataset(f"{good},{tmp_path / 'r.jsonl'},{good}", "body", layout=True)
    assert "\n".join(s.decode() for s in layout.as_numpy_iterator()) == joined
    with pytest.raises(FileNotFoundError, match="'missing.txt' not found: it does not exist"):
        corpus_text("missing.txt")
    with pytest.raises(FileNotFoundError, match="has no .txt files"):
        (tmp_path / "none").mkdir()
        corpus_text(str(tmp_path / "none"))
    (tmp_path / "empty.txt").write_text(" \n")
    with pytest.raises(ValueError, match="empty"):
        corpus_text(str(tmp_path / "empty.txt"))
    (tmp_path / "latin1.txt").write_bytes("café au lait".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1.txt, line 1, column 4 \(byte 3\): invalid UTF-8"):
        corpus_text(str(tmp_path / "latin1.txt"))
