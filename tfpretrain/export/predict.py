"""`tfpretrain predict`: run any exported SavedModel on texts or images, one JSON line each.

Works from the SavedModel alone (no run directory, no Keras model): the kind is read from the
signature names, which each exporter in this package fixes:

=============== ====================================== =====================================
kind            signatures                              printed per input
=============== ====================================== =====================================
autoencoder     encode, reconstruct                     codes, reconstruction error/min/max
gan             sample, features                        features (of the discriminator)
encoder         encode                                  features
classifier      serve (+ serve_xla, label_names)        label, probabilities (pair
                                                        classifiers: text<TAB>pair lines)
mlm             encode, fill_mask (+ fill_mask_top_k)   pooled features / masks' top tokens
gpt             generate (prompts in), generate_no_xla  completions
seq2seq         generate, beam_search (inputs in)       output
=============== ====================================== =====================================
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

import numpy as np
import tensorflow as tf

from tfpretrain.export.core import find_saved_model

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
DEFAULT_SIGNATURE = {
    "autoencoder": "reconstruct",
    "gan": "features",
    "encoder": "encode",
    "classifier": "serve",
    "mlm": "encode",
    "gpt": "generate",
    "seq2seq": "generate",
}
TEXT_INPUT = {"classifier": "strings", "mlm": "strings", "gpt": "prompts", "seq2seq": "inputs"}


def detect_kind(signatures: Iterable[str], inputs: Iterable[str] = ()) -> str:
    """The export's kind from its signature names (and `generate`'s input names).

    Example:

    >>> detect_kind(["encode", "reconstruct", "serving_default"])
    'autoencoder'
    """
    names = set(signatures)
    if {"encode", "reconstruct"} <= names:
        return "autoencoder"
    if {"sample", "features"} <= names:
        return "gan"
    if "serve" in names:
        return "classifier"
    if {"encode", "fill_mask"} <= names:
        return "mlm"
    if "generate" in names:
        return "gpt" if "prompts" in set(inputs) else "seq2seq"
    if "encode" in names:
        return "encoder"
    raise ValueError(f"Not an export of tfpretrain: unknown signatures {sorted(names)}.")


def _input_names(function) -> list[str]:
    return sorted(function.structured_input_signature[1])


def _lines(source: str, stdin: TextIO) -> list[str]:
    if source == "-":
        return [line.rstrip("\r\n") for line in stdin]
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"--input {source}: no such file.")
    return path.read_text(encoding="utf-8").splitlines()


def _split_pairs(lines: list[str], source: str) -> tuple[list[str], list[str]]:
    """A pair classifier's input: `first<TAB>second` lines -> (firsts, seconds)."""
    firsts, seconds = [], []
    for number, line in enumerate(lines, 1):
        fields = line.split("\t")
        if len(fields) != 2:
            raise ValueError(
                f"--input {source}, line {number}: the model classifies sentence pairs; give "
                f"each pair on one line as its two texts separated by a tab (got "
                f"{len(fields)} field(s))."
            )
        firsts.append(fields[0])
        seconds.append(fields[1])
    return firsts, seconds


def _as_images(array: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Images as float32 `[N, H, W, C]`: uint8 pixels scaled to [0, 1], a missing channel
    axis added; sizes are left for the signature to check."""
    scaled = array.astype("float32") / 255.0 if array.dtype == np.uint8 else array
    if scaled.ndim == 3 and shape[-1] == 1:
        scaled = scaled[..., None]
    return scaled.astype("float32")


def _read_images(source: str, stdin: TextIO, shape) -> tuple[list[str], np.ndarray]:
    """(names, images) from an .npz, one image file, or a list of image files."""
    if source.endswith(".npz"):
        with np.load(source) as data:
            keys = ["images"] if "images" in data else list(data)
            if len(keys) != 1:
                raise ValueError(f"{source} holds {keys}; name the image array 'images'.")
            images = data[keys[0]]
        return [f"{source}[{i}]" for i in range(len(images))], _as_images(images, shape)
    files = (
        [source]
        if source.lower().endswith(IMAGE_SUFFIXES)
        else [line.strip() for line in _lines(source, stdin) if line.strip()]
    )
    decoded = []
    for name in files:
        if not Path(name).is_file():
            raise FileNotFoundError(f"Image {name}: no such file.")
        image = tf.io.decode_image(
            tf.io.read_file(name), channels=shape[-1], expand_animations=False
        )
        decoded.append(image.numpy())
    sizes = {d.shape for d in decoded}
    if len(sizes) > 1:
        raise ValueError(f"The images differ in size: {sorted(sizes)}; expected {shape}.")
    images = np.stack(decoded) if decoded else np.zeros((0, *shape), np.uint8)
    return files, _as_images(images, shape)


def _round(values: np.ndarray) -> list:
    return np.round(values.astype("float64"), 6).tolist()


def _call(function, **inputs) -> dict[str, np.ndarray]:
    """Calls a signature; its input checks' failures become ValueErrors with their message."""
    try:
        return {k: v.numpy() for k, v in function(**inputs).items()}
    except tf.errors.InvalidArgumentError as err:
        lines = [line for line in err.message.splitlines() if "assertion failed" in line]
        raise ValueError((lines or [err.message.splitlines()[0]])[0].strip()) from None


def _batches(items: list, size: int) -> Iterator[tuple[int, list]]:
    for start in range(0, len(items), size):
        yield start, items[start : start + size]


def predict(settings, stdin: TextIO | None = None) -> Iterator[dict]:
    """Yields one dict per input of `settings.input` (see the module docstring).

    Args:
        settings: a `PredictRun`.
        stdin: where `--input -` reads from (default `sys.stdin`).

    Example:

    >>> from tfpretrain.settings.predict import PredictRun
    >>> for row in predict(PredictRun(model="runs/sst2", input="texts.txt")):  # doctest: +SKIP
    ...     print(row["label"])
    """
    stdin = stdin or sys.stdin
    try:  # registers the tokenizer ops of text exports; image exports do not need it
        import tensorflow_text  # noqa: F401
    except ImportError:
        pass
    loaded = tf.saved_model.load(str(find_saved_model(settings.model)))
    signatures = loaded.signatures
    generate_inputs = _input_names(signatures["generate"]) if "generate" in signatures else []
    kind = detect_kind(signatures, generate_inputs)
    name = settings.signature or DEFAULT_SIGNATURE[kind]
    if name == "fill_mask" and settings.top_k > 0:
        name = "fill_mask_top_k"  # the same with k as an input
    if name not in signatures:
        raise ValueError(f"--signature {name}: the export has {sorted(signatures)}.")
    function = signatures[name]
    if kind in ("autoencoder", "gan", "encoder"):
        yield from _predict_images(settings, stdin, function, kind)
    else:
        label_names = None
        if "label_names" in signatures:
            label_names = [n.decode() for n in _call(signatures["label_names"])["label_names"]]
        lines, pairs = _lines(settings.input, stdin), None
        if kind == "classifier" and "pairs" in _input_names(function):
            lines, pairs = _split_pairs(lines, settings.input)
        yield from _predict_texts(settings, lines, function, kind, name, label_names, pairs)


def _predict_images(settings, stdin: TextIO, function, kind: str) -> Iterator[dict]:
    if "images" not in function.structured_input_signature[1]:
        raise ValueError(f"--signature {settings.signature} does not take images.")
    shape = tuple(function.structured_input_signature[1]["images"].shape[1:])
    names, images = _read_images(settings.input, stdin, shape)
    for start, batch in _batches(list(range(len(names))), settings.batch_size):
        x = images[batch[0] : batch[-1] + 1]
        outputs = _call(function, images=tf.constant(x))
        for i in range(len(batch)):
            row = {"input": names[start + i]}
            for key, value in outputs.items():
                if key == "reconstructions":
                    error = value[i] - x[i]
                    row["reconstruction_mse"] = round(float(np.mean(error**2)), 6)
                    row["reconstruction_min"] = round(float(value[i].min()), 6)
                    row["reconstruction_max"] = round(float(value[i].max()), 6)
                else:
                    row[key] = _round(value[i])
            yield row


def _text_arguments(settings, kind: str, name: str) -> dict[str, tf.Tensor]:
    if name == "fill_mask_top_k":
        return {"k": tf.constant(settings.top_k, tf.int32)}
    if kind in ("classifier", "mlm"):
        return {}
    extra = {"max_length": tf.constant(settings.max_length, tf.int32)}
    if name == "beam_search":
        return {**extra, "length_penalty": tf.constant(settings.length_penalty, tf.float32)}
    extra.update(
        temperature=tf.constant(settings.temperature, tf.float32),
        top_k=tf.constant(settings.top_k, tf.int32),
        top_p=tf.constant(settings.top_p, tf.float32),
    )
    if kind == "gpt":
        extra["num_return_sequences"] = tf.constant(settings.num_return_sequences, tf.int32)
    return extra


def _predict_texts(
    settings,
    lines: list[str],
    function,
    kind: str,
    name: str,
    label_names: list[str] | None,
    pairs: list[str] | None = None,
) -> Iterator[dict]:
    """Rows for texts; `pairs` (a pair classifier's second texts) go in beside `lines`."""
    extra = _text_arguments(settings, kind, name)
    for start, batch in _batches(lines, settings.batch_size):
        if pairs is not None:
            second = pairs[start : start + len(batch)]
            extra = {"pairs": tf.constant(second, tf.string)}
        outputs = _call(function, **{TEXT_INPUT[kind]: tf.constant(batch, tf.string)}, **extra)
        for i, text in enumerate(batch):
            if kind == "classifier":
                p = outputs["probabilities"][i]
                best = int(np.argmax(p))
                yield {
                    "text": text,
                    **({} if pairs is None else {"text_pair": second[i]}),
                    "label": label_names[best] if label_names else best,
                    "probabilities": (
                        dict(zip(label_names, _round(p), strict=True)) if label_names else _round(p)
                    ),
                }
            elif kind == "mlm" and "pooled" in outputs:
                yield {"text": text, "pooled": _round(outputs["pooled"][i])}
            elif kind == "mlm":
                masks = outputs["num_masks"][i]
                yield {
                    "text": text,
                    "masks": [
                        {
                            "tokens": [t.decode() for t in outputs["tokens"][i, m]],
                            "probabilities": _round(outputs["probabilities"][i, m]),
                        }
                        for m in range(masks)
                    ],
                }
            elif kind == "gpt":
                yield {
                    "prompt": text,
                    "completions": [c.decode() for c in outputs["completions"][i]],
                }
            else:
                yield {"input": text, "output": outputs["outputs"][i].decode()}


def run(settings, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    """Prints `predict`'s rows as JSON lines; returns how many.

    Example:

    >>> run(PredictRun(model="runs/ae", input="digits.npz"))  # doctest: +SKIP
    {"input": "digits.npz[0]", "codes": [...], "reconstruction_mse": 0.0112, ...}
    """
    stdout = stdout or sys.stdout
    count = 0
    for row in predict(settings, stdin):
        stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
        count += 1
    stdout.flush()
    return count
