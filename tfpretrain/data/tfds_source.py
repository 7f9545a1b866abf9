"""TensorFlow Datasets read offline: `tfds:NAME[:part...]` specs, builders that never download.

A TFDS data set is read from files already prepared in a TFDS data directory (the `data_dir`
argument, else `$TFDS_DATA_DIR`, else `~/tensorflow_datasets`). Nothing here downloads: a data
set not prepared there is an error that says how to prepare it on a machine with internet.
`tensorflow_datasets` is imported only when a `tfds:` spec is used.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from tfpretrain.data.datasets import DataNotFoundError

PREFIX = "tfds:"
TFDS_DATA_DIR_ENV = "TFDS_DATA_DIR"


@dataclass(frozen=True)
class TfdsSpec:
    """A parsed `tfds:NAME[:part...]`: the builder name (with `/config`) and the parts after it.

    What the parts mean is up to the reader: splits for images, `split` and `feature` for text.
    """

    name: str
    parts: tuple[str, ...]
    spec: str


def is_tfds_spec(spec: object) -> bool:
    """Whether `spec` is a string starting with `tfds:`."""
    return isinstance(spec, str) and spec.startswith(PREFIX)


def parse_tfds_spec(spec: str) -> TfdsSpec:
    """Splits `tfds:glue/sst2:train:sentence` into name `glue/sst2` and parts `(train, sentence)`.

    Example:
        >>> parse_tfds_spec("tfds:imdb_reviews:train[:10%]:text").parts
        ('train[:10%]', 'text')
    """
    if not is_tfds_spec(spec):
        raise ValueError(f"{spec!r} is not a TFDS spec; write it as tfds:NAME[:SPLIT...].")
    # Colons inside brackets belong to TFDS split slices (`train[:10%]`).
    name, *parts = re.split(r":(?![^\[]*\])", spec[len(PREFIX) :])
    if not name or any(not p for p in parts):
        raise ValueError(
            f"{spec!r}: empty name or part; write it as tfds:NAME[:SPLIT...], e.g. tfds:mnist "
            "or tfds:imdb_reviews:train:text."
        )
    return TfdsSpec(name=name, parts=tuple(parts), spec=spec)


def tfds_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The TFDS data directory: `data_dir`, else `$TFDS_DATA_DIR`, else `~/tensorflow_datasets`."""
    value = data_dir or os.environ.get(TFDS_DATA_DIR_ENV) or "~/tensorflow_datasets"
    return Path(value).expanduser()


def _not_prepared(name: str, root: Path, reason: str) -> DataNotFoundError:
    return DataNotFoundError(
        f"The TFDS data set {name!r} is not prepared in {root} ({reason}). Nothing is downloaded "
        f"here. On a machine with internet run `tfds build {name.split('/')[0]}` (or "
        f"`tfds.builder({name!r}).download_and_prepare()` in Python), then copy its folder "
        f"(~/tensorflow_datasets/{name.split('/')[0]}/) into {root}, or point "
        f"{TFDS_DATA_DIR_ENV} (or the data_dir argument) at the folder that holds it."
    )


def tfds_builder(name: str, data_dir: str | os.PathLike | None = None):
    """A prepared TFDS builder for `name` (`mnist`, `glue/sst2`, ...), read from files only.

    The builder is rebuilt from the prepared files (`dataset_info.json`, `features.json`), so
    it needs neither the data set's source code nor a download, and any version on disk works.
    Folders prepared by old TFDS versions without `features.json` fall back to the registered
    builder of the same name.

    Args:
        name: the TFDS name with an optional `/config` (the newest version on disk is read).
        data_dir: the TFDS data directory (see `tfds_data_dir`).

    Raises:
        DataNotFoundError: the data set is not prepared there; the message says how to prepare it.

    Example:
        >>> builder = tfds_builder("mnist", data_dir="/data/tensorflow_datasets")
    """
    import tensorflow_datasets as tfds

    root = tfds_data_dir(data_dir)
    if not (root / name.split("/")[0]).is_dir():
        # Checked first: TFDS' own builder would leave an empty folder behind.
        raise _not_prepared(name, root, f"there is no folder {name.split('/')[0]}/ there")
    try:
        return tfds.core.read_only_builder.builder_from_files(name, data_dir=str(root))
    except tfds.core.registered.DatasetNotFoundError as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        found = _version_dir(root / name)
        if found is not None:  # e.g. no config folder where the registered builder has configs
            return tfds.builder_from_directory(str(found))
        try:  # a legacy folder without features.json: the registered builder can read it
            builder = tfds.builder(name, data_dir=str(root), try_gcs=False)
        except Exception:  # an unknown name, a broken registration: report the first reason
            raise _not_prepared(name, root, first) from err
        if not builder.is_prepared():
            raise _not_prepared(name, root, "no prepared version found") from err
        return builder


def _version_dir(folder: Path) -> Path | None:
    """The newest `VERSION/` folder with a `dataset_info.json` in `folder` or its one config."""

    def versions(base: Path) -> list[Path]:
        return [d for d in base.iterdir() if (d / "dataset_info.json").is_file()]

    if not folder.is_dir():
        return None
    found = versions(folder)
    if not found:
        configs = [d for d in folder.iterdir() if d.is_dir() and versions(d)]
        found = versions(configs[0]) if len(configs) == 1 else []

    def number(d: Path) -> tuple[int, ...]:
        return tuple(int(p) if p.isdigit() else -1 for p in d.name.split("."))

    return max(found, key=number) if found else None


def split_names(builder) -> list[str]:
    """The split names a prepared builder holds (`train`, `test`, ...)."""
    return list(builder.info.splits.keys())


def check_split(builder, split: str, spec: str) -> str:
    """Returns `split` if the builder has its base split (TFDS slicing like `train[:10%]` allowed).

    Raises:
        ValueError: naming the splits there are.
    """
    base = split.split("[")[0].split("+")[0]
    if base not in builder.info.splits:
        raise ValueError(
            f"{spec}: the data set has no split {base!r}; its splits are {split_names(builder)}."
        )
    return split


def features_of_kind(builder, kind: str) -> list[str]:
    """Top-level feature names of one kind: "image", "text" or "label" (a ClassLabel).

    Text features are `Text` or scalar string tensors; images are `Image` features.
    """
    import tensorflow_datasets as tfds

    found = []
    for key, feature in builder.info.features.items():
        if kind == "image" and isinstance(feature, tfds.features.Image):
            found.append(key)
        elif kind == "label" and isinstance(feature, tfds.features.ClassLabel):
            found.append(key)
        elif kind == "text" and (
            isinstance(feature, tfds.features.Text)
            or (
                type(feature) is tfds.features.Tensor
                and feature.dtype == "string"
                and feature.shape == ()
            )
        ):
            found.append(key)
    return found


def pick_feature(
    builder, kind: str, wanted: str | None, spec: str, preferred: tuple[str, ...] = ()
) -> str:
    """The feature to read: `wanted` if given (checked), else the only one of `kind`.

    Args:
        builder: a prepared builder.
        kind: "image", "text" or "label".
        wanted: the feature name the user gave, or None to choose.
        spec: the user's spec, for messages.
        preferred: names taken first when several features of the kind exist.

    Raises:
        ValueError: an unknown feature, none of the kind, or several to choose from.
    """
    features = list(builder.info.features.keys())
    if wanted is not None:
        if wanted not in features:
            raise ValueError(f"{spec}: no feature {wanted!r}; its features are {features}.")
        return wanted
    found = features_of_kind(builder, kind)
    for name in preferred:
        if name in found:
            return name
    if len(found) == 1:
        return found[0]
    what = {"image": "Image", "text": "Text", "label": "ClassLabel"}[kind]
    raise ValueError(
        f"{spec}: {'no' if not found else 'several'} {what} features ({found or features}); "
        f"name the one to use (e.g. {spec}:<split>:<feature> or the column/feature option)."
    )


def _examples(builder, split: str, keys: list[str], batch: bool):
    """NumPy dicts of `keys` from a split, in the prepared order (batched when shapes allow)."""
    import tensorflow_datasets as tfds

    ds = builder.as_dataset(split=split, shuffle_files=False)
    ds = ds.map(lambda example: {k: example[k] for k in keys})
    return tfds.as_numpy(ds.batch(1024) if batch else ds)


def read_tfds_images(
    spec: str, data_dir=None, image_size: tuple[int, int] | None = None, fit: str = "resize"
) -> dict:
    """Reads `tfds:NAME[:TRAIN_SPLIT[:TEST_SPLIT]]` into uint8 arrays `[N, H, W, C]`.

    The test split defaults to `test` when the data set has one; else it is None and the
    caller holds out part of the training split. Labels come from the ClassLabel feature
    (`label` first when there are several), class names from its names.

    Args:
        spec: the spec, e.g. `tfds:cifar10` or `tfds:mnist:train[:10%]:test`.
        data_dir: the TFDS data directory (see `tfds_data_dir`).
        image_size: `(height, width)` for data sets whose images differ in size.
        fit: "resize" or "crop" (see `image_files.fit_array`).

    Returns:
        dict with `x_train`, `y_train`, `x_test`, `y_test`, `class_names`.

    Example:
        >>> arrays = read_tfds_images("tfds:cifar10", data_dir="~/tensorflow_datasets")
    """
    import numpy as np

    from tfpretrain.data.image_files import fit_array

    parsed = parse_tfds_spec(spec)
    if len(parsed.parts) > 2:
        raise ValueError(f"{spec}: images take tfds:NAME[:TRAIN_SPLIT[:TEST_SPLIT]], no more.")
    builder = tfds_builder(parsed.name, data_dir)
    train = check_split(builder, parsed.parts[0] if parsed.parts else "train", spec)
    test = (
        parsed.parts[1]
        if len(parsed.parts) > 1
        else ("test" if "test" in builder.info.splits else None)
    )
    if test is not None:
        check_split(builder, test, spec)
    image = pick_feature(builder, "image", None, spec, preferred=("image",))
    labels = features_of_kind(builder, "label")
    label = pick_feature(builder, "label", None, spec, preferred=("label",)) if labels else None
    shape = builder.info.features[image].shape
    fixed = all(d is not None for d in shape)

    def read(split: str) -> tuple[np.ndarray, np.ndarray | None]:
        keys = [image] + ([label] if label else [])
        rows = list(_examples(builder, split, keys, batch=fixed))
        if not rows:
            raise ValueError(f"{spec}: split {split!r} is empty.")
        if fixed:
            x = np.concatenate([r[image] for r in rows])
            y = np.concatenate([r[label] for r in rows]) if label else None
        else:
            pictures = [r[image] for r in rows]
            if image_size is None:
                odd = next(
                    (i for i, p in enumerate(pictures) if p.shape != pictures[0].shape), None
                )
                if odd is not None:
                    raise ValueError(
                        f"{spec}: images differ in size in split {split!r} (example 0 is "
                        f"{pictures[0].shape}, example {odd} is {pictures[odd].shape}); pass an "
                        "image size (image_size=(H, W), --image-size) to resize or crop them."
                    )
                x = np.stack(pictures)
            else:
                x = np.concatenate([fit_array(p[None], tuple(image_size), fit) for p in pictures])
            y = np.asarray([r[label] for r in rows]) if label else None
        if image_size is not None and x.shape[1:3] != tuple(image_size):
            x = fit_array(x, tuple(image_size), fit)
        if y is not None and (y < 0).any():
            raise ValueError(
                f"{spec}: split {split!r} has unlabelled examples (label -1); name a labelled "
                "split instead."
            )
        return x.astype(np.uint8), None if y is None else y.astype(np.int64)

    x_train, y_train = read(train)
    x_test, y_test = read(test) if test is not None else (None, None)
    names = builder.info.features[label].names if label else None
    return {
        "x_train": x_train,
        "y_train": y_train,
        "x_test": x_test,
        "y_test": y_test,
        "class_names": names,
    }


def _split_and_feature(builder, parsed: TfdsSpec) -> tuple[str, str | None]:
    """Reads `[SPLIT][:FEATURE]` in either order: a part naming a feature is the feature."""
    split = feature = None
    for part in parsed.parts:
        if part in builder.info.features and feature is None:
            feature = part
        elif split is None:
            split = check_split(builder, part, parsed.spec)
        else:
            raise ValueError(
                f"{parsed.spec}: {part!r} is neither a split nor a feature, or one is given "
                f"twice; write tfds:NAME[:SPLIT][:FEATURE]. Features: "
                f"{list(builder.info.features)}, splits: {split_names(builder)}."
            )
    return split or check_split(builder, "train", parsed.spec), feature


def tfds_texts(spec: str, data_dir=None):
    """The text feature of `tfds:NAME[:SPLIT][:FEATURE]` as a `tf.data.Dataset` of strings.

    Streams from the prepared files (nothing is held in memory); one element per example,
    which may span many lines (Tiny Shakespeare is one example). The split defaults to
    `train`, the feature to the only Text feature (`text` or `sentence` when there are more).

    Example:
        >>> ds = tfds_texts("tfds:imdb_reviews:train:text", data_dir="~/tensorflow_datasets")
    """
    parsed = parse_tfds_spec(spec)
    builder = tfds_builder(parsed.name, data_dir)
    split, feature = _split_and_feature(builder, parsed)
    feature = pick_feature(builder, "text", feature, spec, preferred=("text", "sentence"))
    return builder.as_dataset(split=split, shuffle_files=False).map(lambda ex: ex[feature])


def read_tfds_labelled(
    spec: str,
    text_feature: str | None = None,
    pair_feature: str | None = None,
    label_feature: str | None = None,
    data_dir=None,
):
    """Labelled texts of `tfds:NAME[:TRAIN_SPLIT[:DEV_SPLIT]]`, e.g. `tfds:glue/sst2`.

    The dev split defaults to `validation`, else `test`; class names come from the ClassLabel
    feature. Examples labelled -1 (GLUE's hidden test labels) are refused.

    Args:
        spec: the spec.
        text_feature: the text feature; default the only Text one (`sentence`/`text` first,
            then `sentence1`/`premise`, whose partner becomes the pair).
        pair_feature: a second text feature for sentence pairs, or None.
        label_feature: the ClassLabel feature; default the only one (`label` first).
        data_dir: the TFDS data directory.

    Returns:
        `(train, dev)` `tables.Table`s; `dev` is None when the data set has neither split.

    Example:
        >>> train, dev = read_tfds_labelled("tfds:glue/sst2")
        >>> train.class_names
        ['negative', 'positive']
    """
    import numpy as np
    import tensorflow_datasets as tfds

    from tfpretrain.data.tables import Table

    parsed = parse_tfds_spec(spec)
    if len(parsed.parts) > 2:
        raise ValueError(f"{spec}: labelled texts take tfds:NAME[:TRAIN_SPLIT[:DEV_SPLIT]].")
    builder = tfds_builder(parsed.name, data_dir)
    splits = builder.info.splits
    train = check_split(builder, parsed.parts[0] if parsed.parts else "train", spec)
    dev = (
        parsed.parts[1]
        if len(parsed.parts) > 1
        else next((s for s in ("validation", "test") if s in splits), None)
    )
    if dev is not None:
        check_split(builder, dev, spec)
    texts = features_of_kind(builder, "text")
    if text_feature is None and pair_feature is None:
        pairs = {"sentence1": "sentence2", "premise": "hypothesis", "question1": "question2"}
        first = next((t for t in pairs if t in texts and pairs[t] in texts), None)
        if first is not None and not {"sentence", "text"} & set(texts):
            text_feature, pair_feature = first, pairs[first]
    text = pick_feature(builder, "text", text_feature, spec, preferred=("sentence", "text"))
    pair = None if pair_feature is None else pick_feature(builder, "text", pair_feature, spec)
    label = pick_feature(builder, "label", label_feature, spec, preferred=("label",))
    feature = builder.info.features[label]
    if not isinstance(feature, tfds.features.ClassLabel):
        raise ValueError(f"{spec}: feature {label!r} is not a ClassLabel; name the label feature.")
    keys = [text, label] + ([pair] if pair else [])

    def read(split: str) -> Table:
        batches = list(_examples(builder, split, keys, batch=True))
        if not batches:
            raise ValueError(f"{spec}: split {split!r} is empty.")
        labels = np.concatenate([b[label] for b in batches]).astype(np.int64)
        if (labels < 0).any():
            raise ValueError(
                f"{spec}: split {split!r} has unlabelled examples (label -1, e.g. GLUE's test "
                f"split); name a labelled dev split: {spec}:{train}:<split>."
            )

        def strings(key: str) -> list[str]:
            return [v.decode("utf-8") for b in batches for v in b[key]]

        return Table(
            texts=strings(text),
            pairs=strings(pair) if pair else None,
            labels=labels.astype(np.int32),
            class_names=list(feature.names),
            lines=list(range(1, len(labels) + 1)),
            source=f"{spec} ({split})",
        )

    return read(train), read(dev) if dev is not None else None
