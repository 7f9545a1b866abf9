"""Image data sets: MNIST / Fashion-MNIST found offline first (`$TFPRETRAIN_DATA_DIR`, then Keras'
cache, then download), and the user's own images through `load_image_dataset`."""

from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

DATA_DIR_ENV = "TFPRETRAIN_DATA_DIR"

Split = tuple[np.ndarray, np.ndarray]


class DataNotFoundError(FileNotFoundError):
    """No copy of a data set could be found or downloaded; the message lists every place tried."""


class CorruptDataError(ValueError):
    """A data file exists but cannot be read as the data set it should hold."""


def data_dir() -> Path | None:
    """The folder named by `$TFPRETRAIN_DATA_DIR`, or None when the variable is unset."""
    value = os.environ.get(DATA_DIR_ENV)
    return Path(value).expanduser() if value else None


def _keras_cache() -> Path:
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")).expanduser() / "datasets"


def _check_images(name: str, source: str, x: np.ndarray, y: np.ndarray) -> None:
    if x.ndim != 3 or x.shape[1:] != (28, 28) or x.dtype != np.uint8:
        raise CorruptDataError(
            f"{name} images in {source} should be uint8 of shape [N, 28, 28]; got {x.dtype} "
            f"{x.shape}. Delete the file and fetch it again."
        )
    if y.shape != (x.shape[0],):
        raise CorruptDataError(
            f"{name} labels in {source} should have shape ({x.shape[0]},); got {y.shape}. "
            "Delete the file and fetch it again."
        )


def _load_npz(path: Path) -> tuple[Split, Split]:
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except Exception as err:  # zipfile.BadZipFile, KeyError, OSError, ValueError
        raise CorruptDataError(
            f"Cannot read MNIST from {path}: {err}. The file should be Keras' mnist.npz with "
            "arrays x_train, y_train, x_test, y_test; delete it and fetch it again."
        ) from err
    for split in ("train", "test"):
        _check_images("MNIST", str(path), arrays[f"x_{split}"], arrays[f"y_{split}"])
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])


def read_idx(path: Path) -> np.ndarray:
    """Reads a (gzipped) IDX file of unsigned bytes, the format of MNIST and Fashion-MNIST."""
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
        zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
        if zero != 0 or dtype_code != 0x08:
            raise ValueError(f"bad magic number {raw[:4].hex()} (expected 0x0000080N for uint8)")
        dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
        data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
        if data.size != int(np.prod(dims)):
            raise ValueError(
                f"holds {data.size} values but its header promises {int(np.prod(dims))}"
            )
    except Exception as err:  # gzip.BadGzipFile, EOFError, struct.error, ValueError
        raise CorruptDataError(
            f"Cannot read the IDX file {path}: {err}. Delete it and fetch it again."
        ) from err
    return data.reshape(dims)


_FASHION_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def _load_idx_folder(folder: Path) -> tuple[Split, Split]:
    x_train, y_train, x_test, y_test = (read_idx(folder / f) for f in _FASHION_FILES)
    _check_images("Fashion-MNIST", str(folder), x_train, y_train)
    _check_images("Fashion-MNIST", str(folder), x_test, y_test)
    return (x_train, y_train), (x_test, y_test)


def _find(name: str, candidates: list[tuple[Path, object]], download) -> tuple[Split, Split]:
    """Loads from the first candidate that exists, else downloads; errors name every place."""
    for path, loader in candidates:
        if path.exists():
            return loader(path)
    try:
        return download()
    except Exception as err:
        places = "\n".join(f"  - {p}" for p, _ in candidates)
        raise DataNotFoundError(
            f"{name} was not found in any of these places:\n{places}\n"
            f"  - the Keras download (failed: {type(err).__name__}: {err})\n"
            f"Set {DATA_DIR_ENV} to a folder holding the data set (see README.md), or connect to "
            "the internet so Keras can download it."
        ) from err


def mnist() -> tuple[Split, Split]:
    """MNIST digits as `((x_train, y_train), (x_test, y_test))`, uint8 images `[N, 28, 28]`.

    Looks in `$TFPRETRAIN_DATA_DIR/mnist/mnist.npz`, then Keras' cache
    (`~/.keras/datasets/mnist.npz`), then downloads with `keras.datasets.mnist.load_data()`.
    """
    candidates = []
    if (root := data_dir()) is not None:
        candidates.append((root / "mnist" / "mnist.npz", _load_npz))
    candidates.append((_keras_cache() / "mnist.npz", _load_npz))

    def download():
        import keras

        return keras.datasets.mnist.load_data()

    return _find("MNIST", candidates, download)


def fashion_mnist() -> tuple[Split, Split]:
    """Fashion-MNIST as `((x_train, y_train), (x_test, y_test))`, uint8 images `[N, 28, 28]`.

    Looks in `$TFPRETRAIN_DATA_DIR/fashion-mnist/` (the four official IDX `.gz` files), then
    Keras' cache (`~/.keras/datasets/fashion-mnist/`), then downloads with
    `keras.datasets.fashion_mnist.load_data()`.
    """
    candidates = []
    if (root := data_dir()) is not None:
        candidates.append((root / "fashion-mnist", _load_idx_folder))
    candidates.append((_keras_cache() / "fashion-mnist", _load_idx_folder))

    def download():
        import keras

        return keras.datasets.fashion_mnist.load_data()

    return _find("Fashion-MNIST", candidates, download)


IMAGE_DATASETS = {"mnist": mnist, "fashion_mnist": fashion_mnist}
# Label names of the built-in sets, in label order (Fashion-MNIST's from its official README).
CLASS_NAMES = {
    "mnist": [str(d) for d in range(10)],
    "fashion_mnist": [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ],
}


@dataclass
class ImageDataset:
    """Images with labels, split into train and test, and the class names by label id.

    Images are uint8, `[N, H, W]` (the built-in sets and arrays saved so) or `[N, H, W, C]`;
    labels are int64 ids into `class_names`, or None for unlabelled images.
    """

    x_train: np.ndarray
    y_train: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray | None
    class_names: list[str]
    source: str

    def as_tuples(self) -> tuple[Split, Split]:
        """`((x_train, y_train), (x_test, y_test))`, the shape `load_images` returns."""
        return (self.x_train, self.y_train), (self.x_test, self.y_test)

    def limit(self, train: int | None = None, test: int | None = None, seed: int = 0):
        """At most `train` training and `test` test images, drawn class by class (seeded).

        A draw, never the first rows: a class-folder tree is read class after class, so its
        first N images would hold only the first classes. Each class keeps its share (see
        `splits.stratified_sample`), unlabelled images are drawn plainly, and the drawn rows
        come in shuffled order. The test draw uses seed 0 whatever `seed` is, as the held-out
        test split does, so runs of several seeds score on the same images. A limit of None,
        or one not below the split's size, leaves that split as it is.

        Args:
            train: how many training images to keep, or None for all.
            test: how many test images to keep, or None for all.
            seed: the seed of the training draw (`--seed`).

        Returns:
            An `ImageDataset` with the drawn rows.

        Example:
            >>> small = load_image_dataset("mnist").limit(train=1000, seed=1)
            >>> small.x_train.shape
            (1000, 28, 28)
        """
        from tfpretrain.data.splits import stratified_subset

        x_train, y_train = stratified_subset(self.x_train, self.y_train, train, seed)
        x_test, y_test = stratified_subset(self.x_test, self.y_test, test, 0)
        return replace(self, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)


def _is_array_file(spec: str) -> bool:
    return spec.endswith((".npz", ".npy"))


def load_image_dataset(
    spec: str,
    *,
    data_dir: str | os.PathLike | None = None,
    image_size: tuple[int, int] | None = None,
    fit: str = "resize",
    class_names: list[str] | None = None,
    test_fraction: float = 0.1,
    seed: int = 0,
) -> ImageDataset:
    """Loads images named by `--dataset`.

    Forms:
        - `mnist`, `fashion_mnist`: the built-in sets (see `mnist()`, `fashion_mnist()`).
        - `tfds:NAME[:TRAIN_SPLIT[:TEST_SPLIT]]`: a TFDS data set prepared offline, e.g.
          `tfds:cifar10` or `tfds:mnist:train[:10%]:test`; splits default to `train` and `test`.
          Its Image feature and ClassLabel feature are read (names from the ClassLabel).
        - a folder of class sub-folders of PNG/JPEG images, or of `train/` and `test/` trees
          (see `image_files.read_image_folder`).
        - `.npz` (`x` [+ `y`], or `x_train`/`y_train`/`x_test`/`y_test`) or `.npy` (`x` only).

    Without a test split, `test_fraction` of the rows is held out, class by class (seeded).

    Args:
        spec: one of the forms above.
        data_dir: the TFDS data directory for `tfds:` specs (else `$TFDS_DATA_DIR`).
        image_size: `(height, width)` to bring folder or TFDS images of mixed sizes to.
        fit: "resize" or "crop" (centre crop to the target's aspect, then resize).
        class_names: a folder's classes in label order (default: sorted folder names).
        test_fraction: the share held out when the source has no test split.
        seed: the seed of that hold-out.

    Raises:
        ValueError: an unknown name or malformed source, with the fix.
        DataNotFoundError: a file, folder or TFDS data set is missing.

    Example:
        >>> data = load_image_dataset("tfds:cifar10", data_dir="~/tensorflow_datasets")
        >>> data.x_train.shape, data.class_names[:2]
        ((50000, 32, 32, 3), ['airplane', 'automobile'])
    """
    from tfpretrain.data import image_files
    from tfpretrain.data.tfds_source import is_tfds_spec

    spec = str(spec)
    if spec in IMAGE_DATASETS:
        (x_train, y_train), (x_test, y_test) = IMAGE_DATASETS[spec]()
        return ImageDataset(x_train, y_train, x_test, y_test, CLASS_NAMES[spec], spec)
    if is_tfds_spec(spec):
        from tfpretrain.data.tfds_source import read_tfds_images

        arrays = read_tfds_images(spec, data_dir=data_dir, image_size=image_size, fit=fit)
    elif Path(spec).expanduser().is_dir():
        arrays = image_files.read_image_folder(
            Path(spec).expanduser(), image_size=image_size, fit=fit, class_names=class_names
        )
    elif _is_array_file(spec):
        arrays = image_files.read_array_file(Path(spec).expanduser())
        if image_size is not None:
            for split in ("x_train", "x_test"):
                if arrays[split] is not None:
                    x = arrays[split]
                    fitted = image_files.fit_array(
                        x if x.ndim == 4 else x[..., None], tuple(image_size), fit
                    )
                    arrays[split] = fitted if x.ndim == 4 else fitted[..., 0]
    else:
        raise ValueError(
            f"Unknown image data set {spec!r}: not one of {sorted(IMAGE_DATASETS)}, not a "
            "tfds:NAME spec, not a folder and not an .npz/.npy file. See docs/data.md."
        )
    return _with_test_split(arrays, spec, test_fraction, seed)


def _with_test_split(arrays: dict, source: str, fraction: float, seed: int) -> ImageDataset:
    """Holds out a seeded, stratified test split when the source has none; fills class names."""
    from tfpretrain.data.splits import stratified_holdout

    x, y = arrays["x_train"], arrays["y_train"]
    x_test, y_test = arrays["x_test"], arrays["y_test"]
    if x_test is None:
        train, test = stratified_holdout(y, len(x), fraction, seed)
        x, x_test = x[train], x[test]
        if y is not None:
            y, y_test = y[train], y[test]
    if (y is None) != (y_test is None):
        raise ValueError(f"{source}: one split has labels and the other has none; label both.")
    names = arrays.get("class_names")
    if y is not None:
        top = int(max(y.max(), y_test.max())) + 1
        if names is None:
            names = [str(i) for i in range(top)]
        elif top > len(names):
            raise ValueError(
                f"{source}: label {top - 1} has no class name ({len(names)} names given); give "
                "one name per class."
            )
    return ImageDataset(x, y, x_test, y_test, list(names or []), source)


def load_images(spec: str, **kwargs) -> tuple[Split, Split]:
    """Images as `((x_train, y_train), (x_test, y_test))`; any form `load_image_dataset` takes.

    Example:
        >>> (x_train, y_train), (x_test, y_test) = load_images("mnist")
    """
    return load_image_dataset(spec, **kwargs).as_tuples()
