"""Reading text corpora and labelled `sentence<TAB>label` files (GLUE SST-2's format)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tfpretrain.data.datasets import DATA_DIR_ENV, DataNotFoundError, data_dir

# Corpus names resolved inside the data directory (TFPRETRAIN_DATA_DIR).
NAMED_CORPORA = {
    "wikitext-2": ["wikitext-2/valid.txt", "wikitext-2/test.txt"],
    "sst2": ["sst2/train.tsv"],
    "tinyshakespeare": ["tinyshakespeare/input.txt"],
}


def _decode(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise ValueError(
            f"{path} is not valid UTF-8: byte {err.start} (line {line}) cannot be decoded ({err.reason}). "
            "Convert the file to UTF-8 first."
        ) from None


def _in_data_dir(relative: str) -> Path:
    root = data_dir()
    if root is None or not (root / relative).is_file():
        raise DataNotFoundError(
            f"{relative} was not found; set {DATA_DIR_ENV} to the folder that holds it"
            + (f" (now {root})." if root else ".")
        )
    return root / relative


def corpus_files(corpus: str) -> list[Path]:
    """Resolves `--corpus`: a file, a folder (its *.txt files), a comma-separated list, or a name.

    Names: `wikitext-2` (valid + test), `sst2` (the training sentences), `tinyshakespeare`,
    looked up in the data directory.
    """
    files: list[Path] = []
    for part in [p.strip() for p in str(corpus).split(",") if p.strip()]:
        path = Path(part)
        if path.is_dir():
            found = sorted(path.glob("*.txt"))
            if not found:
                raise FileNotFoundError(f"Corpus folder {path} has no .txt files.")
            files += found
        elif path.is_file():
            files.append(path)
        elif part in NAMED_CORPORA:
            files += [_in_data_dir(rel) for rel in NAMED_CORPORA[part]]
        else:
            raise FileNotFoundError(
                f"Corpus {part!r} is neither a file, a folder nor one of {sorted(NAMED_CORPORA)}."
            )
    if not files:
        raise ValueError("No corpus given; pass --corpus PATH.")
    return files


def read_corpus(corpus: str) -> list[str]:
    """The non-blank lines of a corpus (see `corpus_files`), stripped.

    For `.tsv` files with a `sentence` header (SST-2) only the sentence column is kept; for
    WikiText the ` = Heading = ` lines are dropped.

    Raises:
        ValueError: the corpus has no text, or a file is not valid UTF-8.
    """
    lines: list[str] = []
    for path in corpus_files(corpus):
        text = _decode(path)
        if path.suffix == ".tsv":
            rows = text.splitlines()
            if rows and rows[0].split("\t")[0] == "sentence":
                rows = rows[1:]
            lines += [r.split("\t")[0].strip() for r in rows]
        else:
            lines += [
                line.strip() for line in text.splitlines()
                if not (line.strip().startswith("= ") and line.strip().endswith(" ="))
            ]
    lines = [line for line in lines if line]
    if not lines:
        raise ValueError(f"The corpus {corpus!r} is empty (no non-blank lines).")
    return lines


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
                f"{path}, line {number}: expected 'sentence<TAB>label', got {len(fields)} tab-separated fields."
            )
        try:
            label = int(fields[1].strip())
        except ValueError:
            raise ValueError(f"{path}, line {number}: label {fields[1].strip()!r} is not an integer.") from None
        if label < 0 or (num_classes is not None and label >= num_classes):
            bound = f"[0, {num_classes})" if num_classes is not None else ">= 0"
            raise ValueError(f"{path}, line {number}: label {label} is out of range; labels must be {bound}.")
        sentences.append(fields[0].strip())
        labels.append(label)
    if not sentences:
        raise ValueError(f"{path} has no labelled lines.")
    if num_classes is None and max(labels) < 1:
        raise ValueError(f"{path}: all labels are {labels[0]}; a classifier needs at least two classes.")
    return sentences, np.asarray(labels, np.int32)


def labelled_task(task: str, num_classes: int | None = None) -> dict:
    """Train and dev data of `--task`: "sst2" (the data directory's GLUE SST-2) or a TSV path.

    For a TSV path, a file `X.dev.tsv` or `dev.tsv` beside it is the dev set if present;
    otherwise the last 10% of the lines are held out.

    Returns:
        dict with `train` and `dev` `(sentences, labels)` pairs and `num_classes`.
    """
    if task == "sst2":
        train = read_labelled_tsv(_in_data_dir("sst2/train.tsv"), num_classes or 2)
        dev = read_labelled_tsv(_in_data_dir("sst2/dev.tsv"), num_classes or 2)
        return {"train": train, "dev": dev, "num_classes": num_classes or 2}
    path = Path(task)
    if not path.is_file():
        raise FileNotFoundError(f"--task must be 'sst2' or a sentence<TAB>label file; {task!r} is neither.")
    train = read_labelled_tsv(path, num_classes)
    classes = num_classes or int(train[1].max()) + 1
    dev_file = next((p for p in (path.with_suffix(".dev.tsv"), path.parent / "dev.tsv")
                     if p.is_file() and p != path), None)
    if dev_file is not None:
        dev = read_labelled_tsv(dev_file, classes)
    else:
        n = len(train[0])
        cut = n - max(1, n // 10)
        if cut < 1:
            raise ValueError(f"{path} has too few lines ({n}) to hold out a dev set.")
        dev = (train[0][cut:], train[1][cut:])
        train = (train[0][:cut], train[1][:cut])
    return {"train": train, "dev": dev, "num_classes": classes}
