"""Data flags shared by several commands, declared once: the image commands' `--dataset` family
and the labelled-text commands' column flags.

The checks here look only at a spec's form (a known name, `tfds:NAME`, an existing path), so a
typo is refused before TensorFlow loads; the data layer (`tfpretrain.data`) reads the data and
names any problem inside a file.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tfpretrain.settings import Settings, positive, setting

# The built-in image sets (`tfpretrain.data.datasets.IMAGE_DATASETS`; tests assert they agree).
IMAGE_DATASETS = ("mnist", "fashion_mnist")
IMAGE_FITS = ("resize", "crop")
TFDS_PREFIX = "tfds:"


def image_spec(value: str) -> str | None:
    """Why `value` cannot be a `--dataset`, or None when its form is right."""
    if value in IMAGE_DATASETS:
        return None
    if value.startswith(TFDS_PREFIX):
        return None if value[len(TFDS_PREFIX) :].split(":")[0] else "needs a name after tfds:"
    path = Path(value).expanduser()
    if path.is_dir():
        return None
    if path.suffix.lower() in (".npz", ".npy"):
        return None if path.is_file() else "names an array file that does not exist"
    return (
        f"must be one of {', '.join(IMAGE_DATASETS)}, tfds:NAME[:TRAIN[:TEST]], a folder of "
        "class folders or an existing .npz/.npy file (see docs/data.md)"
    )


@dataclasses.dataclass(kw_only=True)
class TfdsData(Settings):
    """Where `tfds:` specs are read from."""

    data_dir: str | None = setting(
        None,
        defines_run=False,
        metavar="DIR",
        help="TensorFlow Datasets directory for tfds: specs "
        "(default: $TFDS_DATA_DIR, else ~/tensorflow_datasets)",
    )


@dataclasses.dataclass(kw_only=True)
class TextColumn(Settings):
    """The text column of table files (corpora and tasks)."""

    text_column: str | None = setting(
        None,
        metavar="COLUMN",
        help="the text column of .csv/.tsv/.jsonl tables (a header name or a 0-based index; "
        "default: text/sentence/review/..., else column 0)",
    )


# What a `--corpus` may be (`tfpretrain.data.text_files.corpus_files`), for every command's help.
CORPUS_FORMS = (
    "a file, a folder of .txt files, a glob ('books/**/*.txt'), a .csv/.tsv/.jsonl table (see "
    "--text-column), tfds:NAME[:SPLIT][:FEATURE], or a name in the data directory (wikitext-2, "
    "sst2, tinyshakespeare); comma-separate several"
)


@dataclasses.dataclass(kw_only=True)
class CorpusData(TfdsData, TextColumn):
    """`--corpus`: everything `tfpretrain.data.text_files.corpus_files` resolves."""

    corpus: str = setting(help="text to train on: " + CORPUS_FORMS)


@dataclasses.dataclass(kw_only=True)
class ImageData(TfdsData):
    """`--dataset` and how its images are read: size, fit, TFDS data directory, and the
    class-by-class draw of `--limit-train`."""

    dataset: str = setting(
        "mnist",
        check=image_spec,
        metavar="SPEC",
        help="images: mnist, fashion_mnist, tfds:NAME[:TRAIN[:TEST]], a folder of class folders "
        "(or of train/ and test/ trees), or an .npz/.npy file",
    )
    image_size: tuple[int, ...] | None = setting(
        None,
        check=positive,
        nargs=2,
        metavar=("H", "W"),
        help="bring every image to H x W (needed when a folder's or TFDS set's sizes differ)",
    )
    fit: str = setting(
        "resize",
        choices=IMAGE_FITS,
        help="how --image-size is reached: resize (stretch) or crop (centre crop "
        "to the aspect, then resize)",
    )
    limit_train: int | None = setting(
        None,
        check=positive,
        help="train on N images drawn class by class (seeded by --seed), not the first N",
    )

    def __post_init__(self) -> None:
        if self.image_size is not None:
            self.image_size = tuple(self.image_size)
            if len(self.image_size) != 2:
                raise ValueError(f"--image-size takes two numbers, H W; got {self.image_size}.")
        super().__post_init__()


@dataclasses.dataclass(kw_only=True)
class LabelledText(TfdsData, TextColumn):
    """How `--task` tables are read: columns, declared label names, a dev file."""

    text_pair_column: str | None = setting(
        None,
        metavar="COLUMN",
        help="the second sentence of sentence-pair tasks (default: sentence2 beside sentence1, "
        "hypothesis beside premise)",
    )
    label_column: str | None = setting(
        None,
        metavar="COLUMN",
        help="the label column (default: label/class/category/..., else the last column)",
    )
    label_names: list[str] | None = setting(
        None,
        metavar="NAME",
        help="the classes in label order (default: sorted text labels, or 0..K-1); other labels "
        "are then an error",
    )
    dev: str | None = setting(
        None,
        metavar="FILE",
        help="dev file of a table task (default: X.dev.EXT or dev.EXT beside it, else a seeded, "
        "stratified 10%% of the training rows)",
    )

    def task_options(self) -> dict:
        """The flags as `tfpretrain.data.text_files.labelled_task` keywords."""
        return {
            "text_column": self.text_column,
            "text_pair_column": self.text_pair_column,
            "label_column": self.label_column,
            "label_names": list(self.label_names) if self.label_names else None,
            "dev": self.dev,
            "data_dir": self.data_dir,
        }
