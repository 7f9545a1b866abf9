"""Real image data sets, found offline first: `$TFPRETRAIN_DATA_DIR`, then Keras' cache, then download."""

from __future__ import annotations

import gzip
import os
import struct
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
            f"Cannot read MNIST from {path}: {err}. The file should be Keras' mnist.npz with arrays "
            "x_train, y_train, x_test, y_test; delete it and fetch it again."
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
            raise ValueError(f"holds {data.size} values but its header promises {int(np.prod(dims))}")
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


def load_images(name: str) -> tuple[Split, Split]:
    """Loads an image data set by name (`mnist` or `fashion_mnist`)."""
    try:
        loader = IMAGE_DATASETS[name]
    except KeyError:
        raise ValueError(f"Unknown image data set {name!r}; choose one of {sorted(IMAGE_DATASETS)}.") from None
    return loader()
