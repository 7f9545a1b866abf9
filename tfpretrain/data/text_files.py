"""Text corpora (files, globs, tables, TFDS) and labelled tasks (SST-2, tables, TFDS) by spec."""

from __future__ import annotations

import codecs
import glob
import os
from pathlib import Path

import numpy as np

from tfpretrain.data.datasets import DATA_DIR_ENV, DataNotFoundError, data_dir
from tfpretrain.data.splits import (
    balanced_sample,
    stratified_holdout,
    stratified_sample,
    warn_rare_classes,
)
from tfpretrain.data.tables import TABLE_SUFFIXES, Table, decode_utf8, read_table
from tfpretrain.data.tfds_source import (
    TfdsSpec,
    is_tfds_spec,
    parse_tfds_spec,
    read_tfds_labelled,
    tfds_texts,
)

# Corpus names resolved inside the data directory (TFPRETRAIN_DATA_DIR).
NAMED_CORPORA = {
    "wikitext-2": ["wikitext-2/valid.txt", "wikitext-2/test.txt"],
    "sst2": ["sst2/train.tsv"],
    "tinyshakespeare": ["tinyshakespeare/input.txt"],
}


def _decode(path: Path) -> str:
    """The file's text; invalid UTF-8 is an error naming its line and column."""
    return decode_utf8(Path(path))


def _in_data_dir(relative: str) -> Path:
    root = data_dir()
    if root is None or not (root / relative).is_file():
        raise DataNotFoundError(
            f"{relative} was not found; set {DATA_DIR_ENV} to the folder that holds it"
            + (f" (now {root})." if root else ".")
        )
    return root / relative


def _glob(pattern: str) -> list[Path]:
    found = sorted(Path(p) for p in glob.glob(os.path.expanduser(pattern), recursive=True))
    found = [p for p in found if p.is_file()]
    if not found:
        raise FileNotFoundError(f"Corpus pattern {pattern!r} matches no file; check the path.")
    return found


def corpus_files(corpus: str) -> list[Path | TfdsSpec]:
    """Resolves `--corpus` into files and TFDS specs, in order.

    Parts, comma-separated: a file (text, or a .csv/.tsv/.jsonl table), a folder (its *.txt
    files), a glob (`books/*.txt`, `**` allowed), a name (`wikitext-2`: valid + test,
    `sst2`: the training sentences, `tinyshakespeare`; looked up in the data directory) or
    `tfds:NAME[:SPLIT][:FEATURE]` (returned as a parsed `TfdsSpec`; see `corpus_dataset`).

    Example:
        >>> corpus_files("notes/*.txt,tfds:tiny_shakespeare")
    """
    files: list[Path | TfdsSpec] = []
    for part in [p.strip() for p in str(corpus).split(",") if p.strip()]:
        path = Path(part).expanduser()
        if is_tfds_spec(part):
            files.append(parse_tfds_spec(part))
        elif path.is_dir():
            found = sorted(path.glob("*.txt"))
            if not found:
                raise FileNotFoundError(f"Corpus folder {path} has no .txt files.")
            files += found
        elif path.is_file():
            files.append(path)
        elif part in NAMED_CORPORA:
            files += [_in_data_dir(rel) for rel in NAMED_CORPORA[part]]
        elif any(c in part for c in "*?["):
            files += _glob(part)
        else:
            raise DataNotFoundError(
                f"Corpus {part!r} not found: it does not exist as a file or folder, and it is "
                f"neither a glob, a tfds:NAME spec nor one of {sorted(NAMED_CORPORA)}."
            )
    if not files:
        raise ValueError("No corpus given; pass --corpus PATH.")
    return files


def _is_heading(line: str) -> bool:
    return line.startswith("= ") and line.endswith(" =")


def _file_lines(path: Path, text_column) -> list[str]:
    """A file's stripped lines: a table's text column, or a text file less WikiText headings."""
    if path.suffix.lower() in TABLE_SUFFIXES:
        return read_table(path, text_column=text_column, labelled=False).texts
    return [line.strip() for line in _decode(path).splitlines() if not _is_heading(line.strip())]


def read_corpus(corpus: str, text_column: str | int | None = None, data_dir=None) -> list[str]:
    """The non-blank lines of a corpus (see `corpus_files`), stripped, in memory.

    Tables (.csv, .tsv, .jsonl) give their text column (`text_column`, else a `text` /
    `sentence` header, else column 0; SST-2's TSV gives its sentences); for text files the
    WikiText ` = Heading = ` lines are dropped; TFDS texts are split into lines.

    Args:
        corpus: the `--corpus` value.
        text_column: the text column of table files (`--text-column`).
        data_dir: the TFDS data directory for `tfds:` parts.

    Raises:
        ValueError: the corpus has no text, or a file is not valid UTF-8.

    Example:
        >>> read_corpus("reviews.csv", text_column="review")[:1]
        ['Great phone, poor battery.']
    """
    lines: list[str] = []
    for source in corpus_files(corpus):
        if isinstance(source, TfdsSpec):
            ds = _lines_of(tfds_texts(source.spec, data_dir))
            lines += [line.decode("utf-8") for line in ds.as_numpy_iterator()]
        else:
            lines += _file_lines(source, text_column)
    lines = [line for line in lines if line]
    if not lines:
        raise ValueError(f"The corpus {corpus!r} is empty (no non-blank lines).")
    return lines


def corpus_text(corpus: str, text_column: str | int | None = None, data_dir=None) -> str:
    """The corpus as one string, for models that read text whole (character and BPE language
    models, span corruption), where blank lines and layout are part of the text.

    A text file is kept exactly as stored (a single file gives its text unchanged); a table
    gives its text column and a TFDS part its texts, one per line; parts are joined by a newline.

    Args:
        corpus: the `--corpus` value (see `corpus_files`).
        text_column: the text column of table files.
        data_dir: the TFDS data directory for `tfds:` parts.

    Raises:
        ValueError: the corpus holds only whitespace, or a file is not valid UTF-8.

    Example:
        >>> corpus_text("tinyshakespeare")[:14]
        'First Citizen:'
    """
    pieces = []
    for source in corpus_files(corpus):
        if isinstance(source, TfdsSpec):
            texts = tfds_texts(source.spec, data_dir).as_numpy_iterator()
            pieces.append("\n".join(text.decode("utf-8") for text in texts))
        elif source.suffix.lower() in TABLE_SUFFIXES:
            pieces.append(
                "\n".join(read_table(source, text_column=text_column, labelled=False).texts)
            )
        else:
            pieces.append(_decode(source))
    # A newline between parts unless the earlier one ends with one.
    text = "".join(
        piece if i == len(pieces) - 1 or piece.endswith("\n") else piece + "\n"
        for i, piece in enumerate(pieces)
    )
    if not text.strip():
        raise ValueError(f"The corpus {corpus!r} is empty; it needs text to train on.")
    return text


def _lines_of(texts, layout: bool = False, batch: int = 256):
    """Splits a dataset of strings into lines, a batch of strings at a time (one `tf.data`
    element per line, not one small dataset per line).

    Without `layout` the lines are stripped and blank lines and WikiText headings dropped; with
    it every line is kept as stored, and a text's final newline ends its last line rather than
    starting an empty one.
    """
    import tensorflow as tf

    def split(strings):
        if layout:
            strings = tf.strings.regex_replace(strings, "\n\\z", "")
        lines = tf.strings.split(strings, "\n").flat_values
        if layout:
            return lines
        lines = tf.strings.strip(lines)
        keep = tf.logical_and(
            tf.strings.length(lines) > 0,
            tf.logical_not(tf.strings.regex_full_match(lines, "= (.* )?=")),
        )
        return tf.boolean_mask(lines, keep)

    return texts.batch(batch).map(split).unbatch()


def corpus_dataset(
    corpus: str, text_column: str | int | None = None, data_dir=None, *, layout: bool = False
):
    """The corpus as a `tf.data.Dataset` of its lines (scalar strings), streamed.

    By default the non-blank lines, stripped, in the same order as `read_corpus`. With
    `layout=True` the lines as stored, for models of running text (`clm`): blank lines,
    indentation and headings kept, line endings removed; joined by newlines they give
    `corpus_text` (but for a final newline, and CRLF line ends read as LF). Text files and TFDS
    data sets are read as the dataset is iterated, never whole into memory (only table files
    are parsed up front); text files are checked for valid UTF-8 first, so a bad byte is named
    by line.

    Args:
        corpus: the `--corpus` value (see `corpus_files`).
        text_column: the text column of table files.
        data_dir: the TFDS data directory for `tfds:` parts.
        layout: keep every line as stored.

    Example:
        >>> ds = corpus_dataset("tfds:tiny_shakespeare").batch(64)
    """
    import tensorflow as tf

    parts = []
    for source in corpus_files(corpus):
        if isinstance(source, TfdsSpec):
            parts.append(tfds_texts(source.spec, data_dir))
        elif source.suffix.lower() in TABLE_SUFFIXES:
            texts = read_table(source, text_column=text_column, labelled=False).texts
            parts.append(tf.data.Dataset.from_tensor_slices(tf.constant(texts, tf.string)))
        else:
            _check_utf8(source)
            parts.append(tf.data.TextLineDataset(str(source)))
    dataset = parts[0]
    for part in parts[1:]:
        dataset = dataset.concatenate(part)
    return _lines_of(dataset, layout)


def _check_utf8(path: Path, chunk: int = 1 << 24) -> None:
    """Raises at the first invalid UTF-8 byte of a file, read in chunks (naming its line)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with open(path, "rb") as f:
            while block := f.read(chunk):
                decoder.decode(block)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        _decode(path)  # reads the whole file once to name the line and column


def read_labelled_tsv(path, num_classes: int | None = None) -> tuple[list[str], np.ndarray]:
    """Reads `sentence<TAB>label` lines (an optional `sentence<TAB>label` header is skipped).

    Args:
        path: the TSV file.
        num_classes: when given, labels must be in `[0, num_classes)`; else labels must be
            0..K-1 with K >= 2.

    Returns:
        `(sentences, labels)` with int32 labels.

    Raises:
        FileNotFoundError, ValueError: with the file and line at fault.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Labelled data file {path} does not exist.")
    sentences, labels = [], []
    for number, row in enumerate(_decode(path).splitlines(), start=1):
        if not row.strip():
            continue
        fields = row.split("\t")
        if number == 1 and fields[0].strip().lower() == "sentence":
            continue
        if len(fields) != 2:
            raise ValueError(
                f"{path}, line {number}: expected 'sentence<TAB>label', got {len(fields)} "
                "tab-separated fields."
            )
        try:
            label = int(fields[1].strip())
        except ValueError:
            raise ValueError(
                f"{path}, line {number}: label {fields[1].strip()!r} is not an integer."
            ) from None
        if label < 0 or (num_classes is not None and label >= num_classes):
            bound = f"[0, {num_classes})" if num_classes is not None else ">= 0"
            raise ValueError(
                f"{path}, line {number}: label {label} is out of range; labels must be {bound}."
            )
        sentences.append(fields[0].strip())
        labels.append(label)
    if not sentences:
        raise ValueError(f"{path} has no labelled lines.")
    if num_classes is None and max(labels) < 1:
        raise ValueError(
            f"{path}: all labels are {labels[0]}; a classifier needs at least two classes."
        )
    return sentences, np.asarray(labels, np.int32)


SST2_CLASSES = ["negative", "positive"]


def dev_file_beside(path: Path) -> Path | None:
    """`X.dev.EXT` or `dev.EXT` beside a training file `X.EXT`, if one exists."""
    candidates = (path.with_suffix(".dev" + path.suffix), path.parent / ("dev" + path.suffix))
    return next((p for p in candidates if p.is_file() and p != path), None)


def _from_table(table: Table) -> tuple[list[str], np.ndarray]:
    return list(table.texts), np.asarray(table.labels, np.int32)


def labelled_task(
    task: str,
    num_classes: int | None = None,
    *,
    text_column: str | int | None = None,
    text_pair_column: str | int | None = None,
    label_column: str | int | None = None,
    label_names: list[str] | None = None,
    dev: str | os.PathLike | None = None,
    dev_fraction: float = 0.1,
    limit: int | None = None,
    balanced: bool = False,
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
) -> dict:
    """Train and dev data of `--task`, with class names.

    Forms:
        - `sst2`: the data directory's GLUE SST-2 (`sst2/train.tsv`, `sst2/dev.tsv`).
        - a CSV, TSV or JSONL file (see `tables.read_table`; `sentence<TAB>label` TSVs as
          before). The dev set is `dev`, else `X.dev.EXT` or `dev.EXT` beside the file, else a
          seeded, shuffled, stratified `dev_fraction` of the rows.
        - `tfds:NAME[:TRAIN_SPLIT[:DEV_SPLIT]]`, e.g. `tfds:glue/sst2`, `tfds:imdb_reviews`:
          a TFDS data set prepared offline (see `tfds_source.read_tfds_labelled`); the columns
          name its features.

    Args:
        task: one of the forms above.
        num_classes: when given, integer labels must be below it (and it is the class count).
        text_column: the text column / feature (`--text-column`).
        text_pair_column: the second sentence of pairs (`--text-pair-column`).
        label_column: the label column / feature (`--label-column`).
        label_names: the classes in label order; None sorts text labels.
        dev: a dev file for a file task.
        dev_fraction: the share held out when there is no dev set.
        limit: keep at most this many training rows, sampled by class (seeded), not the first.
        balanced: draw the `limit` rows with the classes equal (`splits.balanced_sample`)
            instead of in their proportions.
        seed: seeds the hold-out and the `limit` sample.
        data_dir: the TFDS data directory for `tfds:` tasks.

    Returns:
        dict with `train` and `dev` `(sentences, labels)` pairs (int32 labels), `num_classes`,
        `class_names`, `source`, and `train_pair` / `dev_pair`: the second sentences, or None.

    Raises:
        TableError: bad rows, named by file, line and column; a dev label unseen in training.

    Example:
        >>> data = labelled_task("reviews.csv", text_column="text", label_column="label")
        >>> data["class_names"]
        ['negative', 'positive']
    """
    if task == "sst2":
        classes = num_classes or 2
        names = SST2_CLASSES if classes == 2 else [str(i) for i in range(classes)]
        tables = []
        for split in ("train", "dev"):
            texts, labels = read_labelled_tsv(_in_data_dir(f"sst2/{split}.tsv"), classes)
            tables.append(
                Table(texts=texts, labels=labels, class_names=names, source=f"sst2 {split}")
            )
        train, dev_table = tables
    elif is_tfds_spec(task):
        train, dev_table = read_tfds_labelled(
            task, text_column, text_pair_column, label_column, data_dir=data_dir
        )
        if label_names is not None or num_classes is not None:
            _check_declared(train, label_names, num_classes)
    else:
        path = Path(task).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"--task must be 'sst2', a tfds:NAME spec or a CSV/TSV/JSONL file; {task!r} is "
                "none of these."
            )
        columns = dict(
            text_column=text_column,
            text_pair_column=text_pair_column,
            label_column=label_column,
            labelled=True,
        )
        train = read_table(path, **columns, label_names=label_names, num_classes=num_classes)
        dev_path = Path(dev).expanduser() if dev is not None else dev_file_beside(path)
        dev_table = None
        if dev_path is not None:
            dev_table = _read_dev(dev_path, columns, train)
    if dev_table is None:
        warn_rare_classes(train.labels, train.class_names, train.source)
        rows, held = stratified_holdout(train.labels, len(train), dev_fraction, seed)
        train, dev_table = train.subset(rows), train.subset(held)
    if limit is not None:
        draw = balanced_sample if balanced else stratified_sample
        train = train.subset(draw(train.labels, len(train), limit, seed))
    names = list(train.class_names)
    return {
        "train": _from_table(train),
        "dev": _from_table(dev_table),
        "num_classes": len(names),
        "class_names": names,
        "source": task,
        "train_pair": train.pairs,
        "dev_pair": dev_table.pairs,
    }


def _read_dev(path: Path, columns: dict, train: Table) -> Table:
    """Reads a dev file with the training file's classes; a label unseen in training is an error."""
    return read_table(path, **columns, label_names=train.class_names, classes_from=train.source)


def _check_declared(table: Table, label_names, num_classes) -> None:
    if label_names is not None and list(label_names) != list(table.class_names):
        raise ValueError(
            f"{table.source}: the data set's classes are {table.class_names}, not the declared "
            f"{list(label_names)}; drop the declared names or match them."
        )
    if num_classes is not None and num_classes != len(table.class_names):
        raise ValueError(
            f"{table.source} has {len(table.class_names)} classes, not num_classes={num_classes}."
        )
