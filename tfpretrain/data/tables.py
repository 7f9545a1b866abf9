"""Text tables: CSV, TSV and JSONL files of texts, sentence pairs, labels and targets.

Columns are chosen by header name or by 0-based index; string labels become ids with their
names kept (sorted, or in a declared order). Every error names the file, the line and the
column at fault, and says how to fix it.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from tfpretrain.data.datasets import DataNotFoundError

TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t", ".tab": "\t", ".jsonl": None, ".ndjson": None}
# Header names taken when a column is not given, in order of preference.
TEXT_NAMES = (
    "text",
    "sentence",
    "sentence1",
    "review",
    "content",
    "document",
    "question",
    "premise",
    "input",
    "source",
)
PAIR_NAMES = {"sentence1": "sentence2", "premise": "hypothesis", "text": "text_pair"}
LABEL_NAMES = ("label", "labels", "class", "category", "sentiment", "gold_label")
TARGET_NAMES = ("target", "output", "summary")
_KNOWN = {*TEXT_NAMES, *PAIR_NAMES.values(), *LABEL_NAMES, *TARGET_NAMES, "id", "idx", "index"}

Column = str | int | None


class TableError(ValueError):
    """A table cannot be read as asked; the message names the file, line and column."""


@dataclass
class Table:
    """Rows read from a text table; every list has one entry per row.

    Attributes:
        texts: the text column.
        pairs: the second text of a sentence pair, or None.
        labels: int32 class ids into `class_names`, or None.
        class_names: label names by id (integer labels are named "0".."K-1"), or None.
        targets: output texts for text-to-text tasks, or None.
        lines: the line each row starts on, for messages.
        source: the file.
    """

    texts: list[str]
    pairs: list[str] | None = None
    labels: np.ndarray | None = None
    class_names: list[str] | None = None
    targets: list[str] | None = None
    lines: list[int] = field(default_factory=list)
    source: str = ""

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, rows: np.ndarray) -> Table:
        """The rows at `rows` (indices), in that order."""

        def pick(values: list | None) -> list | None:
            # None: no such column; []: rows read without line numbers (e.g. SST-2's loader).
            return values if not values else [values[i] for i in rows]

        return replace(
            self,
            texts=pick(self.texts),
            pairs=pick(self.pairs),
            targets=pick(self.targets),
            labels=None if self.labels is None else self.labels[rows],
            lines=pick(self.lines) if self.lines else [],  # tables built in code record none
        )


def decode_utf8(path: Path) -> str:
    """The file's text; invalid UTF-8 is an error naming the line and column (a BOM is dropped)."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        column = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        raise TableError(
            f"{path}, line {line}, column {column} (byte {err.start}): invalid UTF-8 "
            f"(byte {raw[err.start]:#04x}, {err.reason}). Convert the file to UTF-8, e.g. "
            "`iconv -f latin1 -t utf-8`."
        ) from None


def _rows(path: Path, text: str) -> list[tuple[int, list[str] | dict]]:
    """`(line, fields)` per non-blank row: field lists for CSV/TSV, dicts for JSONL."""
    delimiter = TABLE_SUFFIXES[path.suffix.lower()]
    rows = []
    if delimiter is None:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as err:
                raise TableError(
                    f"{path}, line {number}, column {err.colno}: not valid JSON ({err.msg}). "
                    "Each line must hold one JSON object."
                ) from None
            if not isinstance(value, dict):
                raise TableError(
                    f"{path}, line {number}: a JSON {type(value).__name__}, not an object; "
                    'write one object per line, e.g. {"text": "...", "label": "..."}.'
                )
            rows.append((number, value))
        return rows
    # GLUE-style TSVs are unquoted (quotes are text); CSV follows RFC 4180 quoting.
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting)
    start = 1
    try:
        for fields in reader:
            if any(f.strip() for f in fields):
                rows.append((start, fields))
            start = reader.line_num + 1
    except csv.Error as err:
        raise TableError(f"{path}, line {reader.line_num}: {err}; check its quoting.") from None
    return rows


def _is_int(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, str) and value.strip().lstrip("-").isdigit()


def _detect_header(first: list[str], rest: list[list[str]], named: bool, label: Column) -> bool:
    if named:
        return True
    cells = [c.strip().lower() for c in first]
    if cells and all(c in _KNOWN for c in cells):
        return True
    # An integer label column whose first cell is not an integer: that cell is a name.
    if isinstance(label, int) and rest and label < len(first) and not _is_int(first[label]):
        return all(len(r) > label and _is_int(r[label]) for r in rest[:100])
    return False


def _index(column: Column) -> int | None:
    if isinstance(column, int):
        return column
    if isinstance(column, str) and column.strip().isdigit():
        return int(column)
    return None


class _Columns:
    """Resolves the columns asked for against a file's header (or its width without one)."""

    def __init__(self, path: Path, header: list[str] | None, width: int | None):
        self.path, self.header, self.width = path, header, width

    def find(self, column: Column, role: str) -> str | int:
        header = self.header
        if header is not None and isinstance(column, str) and column in header:
            return column if self.width is None else header.index(column)
        index = _index(column)
        if index is not None and self.width is not None:
            if not 0 <= index < self.width:
                raise TableError(
                    f"{self.path}: the {role} column index {index} is outside the {self.width} "
                    f"columns (0..{self.width - 1}); pick another with the {role} column option."
                )
            return index
        have = header if header is not None else f"{self.width} unnamed columns"
        raise TableError(
            f"{self.path}, line 1: unknown {role} column {column!r}; the file has {have}. Name "
            f"one of them (or, for CSV/TSV, a 0-based index) with the {role} column option."
        )

    def default(self, names: tuple[str, ...]) -> str | int | None:
        if self.header is None:
            return None
        for name in names:
            for i, have in enumerate(self.header):
                if have.strip().lower() == name:
                    return have if self.width is None else i
        return None


def _check_width(path: Path, rows, width: int, header: bool) -> None:
    for number, fields in rows:
        if len(fields) != width:
            what = "the header has" if header else "the first row has"
            raise TableError(
                f"{path}, line {number}: {len(fields)} fields but {what} {width}. Quote fields "
                "that hold the delimiter (CSV), or remove stray tabs (TSV)."
            )


def _cells(path: Path, rows, key: str | int, role: str, text: bool = True) -> list:
    values = []
    for number, fields in rows:
        if isinstance(fields, dict) and key not in fields:
            raise TableError(
                f"{path}, line {number}: no key {key!r} (the {role} column); the row has keys "
                f"{sorted(fields)}. Add it to every row."
            )
        value = fields[key]
        if text and value is not None and not isinstance(value, str):
            value = str(value)  # JSON numbers in a text column are text
        if isinstance(value, str):
            value = value.strip()
        if value is None or value == "":
            raise TableError(
                f"{path}, line {number}, column {key!r}: the {role} is empty. Fill it in or "
                "remove the row."
            )
        values.append(value)
    return values


def map_labels(
    path: Path,
    values: list,
    lines: list[int],
    column: str | int,
    label_names: list[str] | None = None,
    num_classes: int | None = None,
    classes_from: str | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Turns raw labels into int32 ids and the names of the classes by id.

    All-integer labels are ids (named "0".."K-1"); string labels take their place in
    `label_names`, else in the sorted set of labels seen. Declared names with integer labels
    treat the integers as ids into the names.

    Args:
        path: the file, for messages.
        values: the labels as read (strings, or JSON values).
        lines: the line of each label.
        column: the label column, for messages.
        label_names: the classes in label order, or None to sort the labels seen.
        num_classes: when given, integer ids must be below it.
        classes_from: the training file `label_names` came from (for a dev file's messages).

    Raises:
        TableError: mixed integer and text labels, a negative id, or a label outside the
            declared classes; each with its line.
    """
    where = f"column {column!r}"
    unseen = (
        f" never occurs in the training data {classes_from} (classes {label_names}). Fix "
        "the label, add training rows of that class, or declare the classes."
        if classes_from
        else None
    )
    kinds = [_is_int(v) for v in values]
    declared = None if label_names is None else [str(n) for n in label_names]
    as_ids = all(kinds) and (
        declared is None
        or not set(map(str, values)) & set(declared)
        or declared == [str(i) for i in range(len(declared))]
    )
    if as_ids:
        ids = np.array([int(v) for v in values], np.int64)
        top = len(declared) if declared is not None else num_classes
        for i, value in enumerate(ids):
            if value < 0 or (top is not None and value >= top):
                bound = f"[0, {top})" if top is not None else ">= 0"
                if unseen and value >= 0:
                    raise TableError(f"{path}, line {lines[i]}, {where}: label {value}{unseen}")
                raise TableError(
                    f"{path}, line {lines[i]}, {where}: label {value} is out of range; integer "
                    f"labels must be {bound}. Fix the label or declare the classes."
                )
        names = declared or [str(i) for i in range(max(int(ids.max()) + 1, num_classes or 0))]
        return ids.astype(np.int32), names
    if declared is None and any(kinds):
        first_int, first_text = kinds.index(True), kinds.index(False)
        raise TableError(
            f"{path}, {where}: mixed label types: line {lines[first_int]} has the integer "
            f"{values[first_int]!r} but line {lines[first_text]} has the text "
            f"{values[first_text]!r}. Use one kind of label throughout."
        )
    for i, value in enumerate(values):
        if not isinstance(value, str | int):
            raise TableError(
                f"{path}, line {lines[i]}, {where}: label {value!r} is a "
                f"{type(value).__name__}; labels must be strings or integers."
            )
    texts = [str(v) for v in values]
    names = declared if declared is not None else sorted(set(texts))
    table = {name: i for i, name in enumerate(names)}
    for i, value in enumerate(texts):
        if value not in table:
            if unseen:
                raise TableError(f"{path}, line {lines[i]}, {where}: label {value!r}{unseen}")
            raise TableError(
                f"{path}, line {lines[i]}, {where}: label {value!r} is not among the declared "
                f"classes {names}. Fix the label or add it to the declared classes."
            )
    if num_classes is not None and len(names) > num_classes:
        raise TableError(
            f"{path}, {where}: {len(names)} classes ({names}) but num_classes is {num_classes}; "
            "raise num_classes or merge classes."
        )
    return np.array([table[v] for v in texts], np.int32), names


def read_table(
    path,
    text_column: Column = None,
    text_pair_column: Column = None,
    label_column: Column = None,
    target_column: Column = None,
    *,
    labelled: bool | None = None,
    label_names: list[str] | None = None,
    num_classes: int | None = None,
    header: bool | None = None,
    classes_from: str | None = None,
) -> Table:
    """Reads a CSV, TSV or JSONL table (by its suffix: .csv, .tsv/.tab, .jsonl/.ndjson).

    CSV/TSV columns are header names or 0-based indices (also as digit strings, as flags give
    them); JSONL columns are keys. A CSV/TSV header is detected: it is there when a column is
    given by name, when every first-row cell is a usual column name (text, sentence, label...),
    or when an integer label column starts with a non-integer. `header` overrides the guess.
    Columns not given are taken by header name (text/sentence/..., label/class/...); a
    headerless file has its text in column 0 and its label in the last column.

    Args:
        path: the file.
        text_column: the text; default by name, else column 0.
        text_pair_column: the second sentence of a pair, or None (sentence2 / hypothesis
            are taken when the text is sentence1 / premise).
        label_column: the class label; default by name (or the last column without a header).
        target_column: output text of a text-to-text task, or None.
        labelled: True needs a label column, False reads none, None reads one if it is given
            or found by name.
        label_names: the classes in label order; labels outside them are errors. None sorts
            text labels, and treats integer labels as ids.
        num_classes: when given, integer labels must be below it.
        header: whether a CSV/TSV file starts with a header; None guesses.
        classes_from: the training file `label_names` came from, when reading its dev file.

    Returns:
        A `Table`.

    Raises:
        TableError: with the file, line and column at fault and the fix.

    Example:
        >>> table = read_table("reviews.csv", text_column="text", label_column="label")
        >>> table.class_names
        ['negative', 'positive']
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataNotFoundError(f"Table {path} does not exist.")
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise TableError(
            f"{path}: unknown table format {path.suffix!r}; name the file .csv, .tsv or .jsonl "
            "after what it holds."
        )
    rows = _rows(path, decode_utf8(path))
    if not rows:
        raise TableError(f"{path} has no rows; it is empty.")
    jsonl = isinstance(rows[0][1], dict)
    if jsonl:
        names = list(dict.fromkeys(k for _, r in rows[:100] for k in r))
        columns = _Columns(path, names, None)
    else:
        asked = (text_column, text_pair_column, label_column, target_column)
        named = any(c is not None and _index(c) is None for c in asked)
        width = len(rows[0][1])
        last = (
            _index(label_column)
            if label_column is not None
            else (width - 1 if labelled and width > 1 else None)
        )
        if header is None:
            header = _detect_header(rows[0][1], [r for _, r in rows[1:]], named, last)
        head = [c.strip() for c in rows[0][1]] if header else None
        rows = rows[1:] if header else rows
        if not rows:
            raise TableError(
                f"{path} has a header (line 1) but no rows; add data rows below the header."
            )
        _check_width(path, rows, width, bool(header))
        columns = _Columns(path, head, width)

    def resolve(column: Column, role: str, names: tuple[str, ...], fallback) -> str | int | None:
        if column is not None:
            return columns.find(column, role)
        found = columns.default(names)
        return found if found is not None else fallback

    text = resolve(text_column, "text", TEXT_NAMES, None if jsonl else 0)
    if text is None:
        raise TableError(
            f"{path}: no text column among {columns.header}; name it with the text column option."
        )
    pair = None
    if text_pair_column is not None:
        pair = columns.find(text_pair_column, "text pair")
    elif columns.header is not None:
        partner = PAIR_NAMES.get(str(columns.header[text] if isinstance(text, int) else text))
        pair = columns.default((partner,)) if partner else None
    label = None
    if labelled is not False:
        # CSV/TSV without a label header: the last column, as in `sentence<TAB>label`.
        fallback = (
            None
            if jsonl or not labelled
            else (columns.width - 1 if columns.width and columns.width > 1 else None)
        )
        label = resolve(label_column, "label", LABEL_NAMES, fallback)
        if labelled and label is None:
            raise TableError(
                f"{path}: no label column (looked for {list(LABEL_NAMES)}; the file has "
                f"{columns.header or f'{columns.width} column(s)'}). Name it with the label "
                "column option."
            )
    target = None if target_column is None else columns.find(target_column, "target")
    if label is not None and label == text:
        raise TableError(f"{path}: the label and text columns are both {text!r}; pick two.")

    def name(key):
        return columns.header[key] if isinstance(key, int) and columns.header else key

    lines = [number for number, _ in rows]
    table = Table(
        texts=_cells(path, rows, text, f"text ({name(text)!r})"), lines=lines, source=str(path)
    )
    if pair is not None:
        table.pairs = _cells(path, rows, pair, f"text pair ({name(pair)!r})")
    if target is not None:
        table.targets = _cells(path, rows, target, f"target ({name(target)!r})")
    if label is not None:
        raw = _cells(path, rows, label, f"label ({name(label)!r})", text=False)
        table.labels, table.class_names = map_labels(
            path, raw, lines, name(label), label_names, num_classes, classes_from
        )
    return table
