"""The user's own images: folders of class sub-folders (PNG/JPEG), NumPy `.npz` / `.npy` files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tfpretrain.data.datasets import CorruptDataError, DataNotFoundError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# Sub-folder names that mark a folder split into train/test trees rather than into classes.
TRAIN_DIRS = ("train",)
TEST_DIRS = ("test", "validation", "val", "dev")
_GREY_MODES = {"1", "L", "LA", "I", "I;16", "F"}
FITS = ("resize", "crop")


def _fit(image, size: tuple[int, int], fit: str):
    """Resizes a PIL image to `size` (height, width); "crop" first cuts the centre to its aspect."""
    from PIL import Image

    height, width = size
    if fit == "crop":
        w, h = image.size
        # The largest centre box with the target's aspect ratio.
        crop_w, crop_h = min(w, round(h * width / height)), min(h, round(w * height / width))
        left, top = (w - crop_w) // 2, (h - crop_h) // 2
        image = image.crop((left, top, left + crop_w, top + crop_h))
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    return image


def fit_array(images: np.ndarray, size: tuple[int, int], fit: str) -> np.ndarray:
    """Brings uint8 images `[N, H, W, C]` to `size` (height, width) by "resize" or "crop"."""
    from PIL import Image

    if fit not in FITS:
        raise ValueError(f"fit must be one of {FITS}; got {fit!r}.")
    out = []
    for image in images:
        grey = image.shape[-1] == 1
        fitted = np.asarray(_fit(Image.fromarray(image[..., 0] if grey else image), size, fit))
        out.append(fitted[..., None] if grey else fitted)
    return np.stack(out)


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))


def _split_dirs(folder: Path) -> tuple[Path, Path | None] | None:
    """`(train, test)` folders when `folder` holds split trees (train/ and test/), else None."""
    dirs = {d.name.lower(): d for d in _class_dirs(folder)}
    train = next((dirs[n] for n in TRAIN_DIRS if n in dirs), None)
    if train is None or not set(dirs) <= set(TRAIN_DIRS + TEST_DIRS):
        return None
    if not _class_dirs(train):
        return None
    test = next((dirs[n] for n in TEST_DIRS if n in dirs), None)
    return train, test


def _list_classes(folder: Path) -> dict[str, list[Path]]:
    loose = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    if loose:
        raise ValueError(
            f"{loose[0]} lies directly in {folder}; images must sit in one sub-folder per class "
            f"({folder}/<class>/<image>.png). Move them into class folders."
        )
    classes = {d.name: _image_files(d) for d in _class_dirs(folder)}
    for name, files in classes.items():
        if not files:
            raise ValueError(
                f"Class folder {folder / name} holds no PNG/JPEG images; add images or remove it."
            )
    return classes


def _open_all(files: list[Path]) -> list:
    from PIL import Image, UnidentifiedImageError

    images = []
    for path in files:
        try:
            image = Image.open(path)
            image.load()  # decodes now, so a truncated file fails here with its name
        except (OSError, SyntaxError, ValueError, UnidentifiedImageError) as err:
            raise CorruptDataError(
                f"{path}: cannot decode the image ({err}); it is truncated or not a PNG/JPEG. "
                "Replace or delete the file."
            ) from err
        images.append(image)
    return images


def _decode(files: list[Path], size: tuple[int, int] | None, fit: str) -> np.ndarray:
    """Decodes files to uint8 `[N, H, W, C]`: C is 1 when every image is grey, else 3 (RGB)."""
    images = _open_all(files)
    if size is None:
        first = images[0]
        for path, image in zip(files, images, strict=True):
            if image.size != first.size:
                raise ValueError(
                    f"Images differ in size: {files[0]} is {first.size[0]}x{first.size[1]} but "
                    f"{path} is {image.size[0]}x{image.size[1]} (width x height). Pass an image "
                    "size (image_size=(H, W), --image-size) to resize or centre-crop them all."
                )
        size = (first.size[1], first.size[0])
    grey = all(image.mode in _GREY_MODES for image in images)
    out = np.empty((len(images), *size, 1 if grey else 3), np.uint8)
    for i, image in enumerate(images):
        image = _fit(image.convert("L" if grey else "RGB"), size, fit)
        out[i] = np.asarray(image).reshape(out.shape[1:])
    return out


def _read_tree(classes: dict[str, list[Path]], names: list[str], size, fit):
    files = [f for name in names for f in classes.get(name, [])]
    labels = np.concatenate(
        [np.full(len(classes.get(name, [])), i, np.int64) for i, name in enumerate(names)]
    )
    return _decode(files, size, fit), labels


def read_image_folder(
    folder,
    image_size: tuple[int, int] | None = None,
    fit: str = "resize",
    class_names: list[str] | None = None,
) -> dict:
    """Reads a folder of class sub-folders, or of `train/` and `test/` trees of them.

    Layouts: `folder/<class>/*.png` (then the caller holds out a test split) or
    `folder/train/<class>/*.png` with `folder/test/<class>/*.png` (`validation/`, `val/` and
    `dev/` also name the test tree). PNG and JPEG, grey or colour; images come out uint8
    `[N, H, W, 1]` when all are grey, else `[N, H, W, 3]`, ordered by class then file name.

    Args:
        folder: the folder.
        image_size: `(height, width)` to bring every image to; None needs all of one size.
        fit: "resize" (stretch) or "crop" (cut the centre to the target's aspect, then resize).
        class_names: the classes in label order; None sorts the folder names. Every folder must
            be one of them.

    Returns:
        dict with `x_train`, `y_train`, `x_test`, `y_test` (None without a test tree),
        `class_names`.

    Raises:
        ValueError: one class only, mixed sizes without `image_size`, loose or unknown folders.
        CorruptDataError: an image cannot be decoded (named).

    Example:
        >>> data = read_image_folder("photos", image_size=(64, 64), fit="crop")
    """
    folder = Path(folder)
    if fit not in FITS:
        raise ValueError(f"fit must be one of {FITS}; got {fit!r}.")
    if not folder.is_dir():
        raise DataNotFoundError(f"Image folder {folder} does not exist.")
    splits = _split_dirs(folder)
    train_classes = _list_classes(splits[0] if splits else folder)
    test_classes = _list_classes(splits[1]) if splits and splits[1] else {}
    found = sorted(set(train_classes) | set(test_classes))
    if class_names is None:
        names = found
    else:
        names = [str(n) for n in class_names]
        stray = sorted(set(found) - set(names))
        if stray:
            raise ValueError(
                f"{folder}: class folder(s) {stray} are not among the declared classes {names}; "
                "declare them or remove the folders."
            )
    missing = sorted(set(test_classes) - set(train_classes))
    if missing:
        raise ValueError(
            f"{folder}: class(es) {missing} have test images but no training images; add "
            f"training images under {splits[0]}/ or remove them from the test tree."
        )
    if len(train_classes) < 2:
        raise ValueError(
            f"{folder} holds {len(train_classes)} class folder(s) ({sorted(train_classes)}); a "
            "labelled image folder needs one sub-folder per class and at least two classes. "
            "For unlabelled images, save them as an .npy array."
        )
    x_train, y_train = _read_tree(train_classes, names, image_size, fit)
    x_test = y_test = None
    if test_classes:
        x_test, y_test = _read_tree(test_classes, names, image_size, fit)
        if x_test.shape[1:3] != x_train.shape[1:3]:
            raise ValueError(
                f"{folder}: test images are {x_test.shape[2]}x{x_test.shape[1]} but training "
                f"images {x_train.shape[2]}x{x_train.shape[1]} (width x height). Pass an image "
                "size (image_size=(H, W), --image-size) to bring them all to one size."
            )
        if x_test.shape[-1] != x_train.shape[-1]:  # one split all grey, the other colour
            channels = max(x_test.shape[-1], x_train.shape[-1])
            x_train, x_test = (np.repeat(a, channels // a.shape[-1], -1) for a in (x_train, x_test))
    return {
        "x_train": x_train,
        "y_train": y_train,
        "x_test": x_test,
        "y_test": y_test,
        "class_names": names,
    }


def _as_uint8(x: np.ndarray, where: str) -> np.ndarray:
    if x.ndim not in (3, 4) or x.shape[0] == 0 or (x.ndim == 4 and x.shape[-1] not in (1, 3)):
        raise ValueError(
            f"{where}: images must be [N, H, W] or [N, H, W, C] with C 1 or 3 and N > 0; got "
            f"shape {x.shape}. Reshape the array before saving it."
        )
    if x.dtype == np.uint8:
        return x
    if np.issubdtype(x.dtype, np.integer) and x.min() >= 0 and x.max() <= 255:
        return x.astype(np.uint8)
    if np.issubdtype(x.dtype, np.floating) and x.min() >= 0.0 and x.max() <= 1.0:
        return np.round(x * 255.0).astype(np.uint8)
    raise ValueError(
        f"{where}: pixels must be uint8, integers in [0, 255] or floats in [0, 1]; got "
        f"{x.dtype} in [{x.min()}, {x.max()}]. Rescale the array before saving it."
    )


def _as_labels(y: np.ndarray, n: int, where: str, names: list[str] | None) -> np.ndarray:
    """Class ids for `n` images: integers as they are, strings by their place in `names`."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.shape != (n,):
        raise ValueError(
            f"{where}: labels must have shape ({n},) to match the images; got {y.shape}."
        )
    if names is not None and y.dtype.kind in "US":
        table = {name: i for i, name in enumerate(names)}
        return np.array([table[v] for v in y.astype(str)], np.int64)
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or names is not None:
        raise ValueError(
            f"{where}: labels must be integers >= 0 or strings (in every split alike); got "
            f"{y.dtype}. Convert them to class ids or to class names first."
        )
    return y.astype(np.int64)


def read_array_file(path) -> dict:
    """Reads images (and labels) from `.npz` or `.npy`.

    `.npz` holds `x` with an optional `y`, or Keras' `x_train`, `y_train`, `x_test`,
    `y_test` (the test pair optional), and optionally `class_names`; `.npy` holds images only.
    Images keep their shape (`[N, H, W]` or `[N, H, W, C]`); pixels become uint8.

    Returns:
        dict with `x_train`, `y_train`, `x_test`, `y_test` (None where absent) and
        `class_names` (None where the labels are ids without names).

    Example:
        >>> np.savez("mine.npz", x=images, y=labels); data = read_array_file("mine.npz")
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"Array file {path} does not exist.")
    try:
        if path.suffix == ".npy":
            arrays = {"x": np.load(path, allow_pickle=False)}
        else:
            with np.load(path, allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files}
    except Exception as err:  # zipfile.BadZipFile, ValueError (pickled objects), OSError
        raise CorruptDataError(
            f"Cannot read {path}: {err}. Save it with np.savez / np.save (no pickled objects)."
        ) from err
    keys = ("x_train", "y_train", "x_test", "y_test") if "x_train" in arrays else ("x", "y")
    if keys[0] not in arrays:
        raise ValueError(
            f"{path} holds arrays {sorted(arrays)}; expected `x` (with an optional `y`) or "
            "`x_train`, `y_train`, `x_test`, `y_test`. Rename them when saving."
        )
    out = {"x_train": None, "y_train": None, "x_test": None, "y_test": None}
    splits = [("train", *keys[:2])] + ([("test", *keys[2:])] if len(keys) == 4 else [])
    pairs = [(s, kx, ky) for s, kx, ky in splits if kx in arrays]
    text = [
        arrays[ky].astype(str).ravel()
        for _, _, ky in pairs
        if ky in arrays and arrays[ky].dtype.kind in "US"
    ]
    # String labels: one sorted id table over every split.
    names = sorted({str(v) for labels in text for v in labels}) if text else None
    for split, kx, ky in pairs:
        out[f"x_{split}"] = _as_uint8(arrays[kx], f"{path}[{kx!r}]")
        if ky in arrays:
            out[f"y_{split}"] = _as_labels(arrays[ky], len(arrays[kx]), f"{path}[{ky!r}]", names)
    if "class_names" in arrays:
        names = [str(n) for n in arrays["class_names"]]
    out["class_names"] = names
    return out
