"""TensorFlow Lite versions of the models that convert to TFLite's built-in ops.

The image models (autoencoder `encode`/`reconstruct`, an image encoder's `encode`) and the text
classifier with token ids in (`classify`; the in-graph tokenizer's tensorflow-text ops have no
TFLite kernels, so the app tokenizes). Each `.tflite` file holds named signatures, run with
`tf.lite.Interpreter(...).get_signature_runner(name)`; the batch dimension is dynamic.

TFLite has no room for the SavedModels' input checks (no `Assert` kernel): callers check shape
and range themselves, e.g. with `Interpreter.resize_tensor_input(..., strict=True)`.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfpretrain.export.core import EndpointSpec, export_saved_model


def convert_to_tflite(endpoints: dict[str, EndpointSpec], track: Sequence[object], path) -> Path:
    """Converts endpoints to one `.tflite` file with a signature per endpoint, atomically.

    Args:
        endpoints: signature name -> `(function, input_signature)`, as for
            `export_saved_model`; the functions must use TFLite built-in ops only.
        track: the Keras layers/models the functions use.
        path: the `.tflite` file to write.

    Returns:
        `path`.

    Example:

    >>> convert_to_tflite({"encode": (encode, spec)}, [model], "out/model.tflite")
    ... # doctest: +SKIP
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        saved = export_saved_model(Path(tmp) / "saved_model", endpoints, track)
        converter = tf.lite.TFLiteConverter.from_saved_model(
            str(saved), signature_keys=list(endpoints)
        )
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        flatbuffer = converter.convert()
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_bytes(flatbuffer)
    os.replace(staging, path)
    return path


def _image_spec(shape: Sequence[int]) -> list[tf.TensorSpec]:
    return [tf.TensorSpec((None, *(int(d) for d in shape)), tf.float32, name="images")]


def autoencoder_to_tflite(model: keras.Model, path) -> Path:
    """Writes an autoencoder as TFLite with signatures `encode` (`images` -> `codes`) and
    `reconstruct` (`images` -> `reconstructions`); images float32 `[batch, H, W, C]` in
    [0, 1], as the SavedModel's.

    Example:

    >>> autoencoder_to_tflite(model, "out/autoencoder.tflite")  # doctest: +SKIP
    """
    from tfpretrain.models.autoencoder import autoencoder_layer

    encoder = autoencoder_layer(model).encoder
    spec = _image_spec(model.input_shape[1:])

    def encode(images):
        return {"codes": encoder(images, training=False)}

    def reconstruct(images):
        return {"reconstructions": model(images, training=False)}

    return convert_to_tflite(
        {"encode": (encode, spec), "reconstruct": (reconstruct, spec)}, [model], path
    )


def encoder_to_tflite(encoder: keras.Model, path, image_shape: Sequence[int] | None = None) -> Path:
    """Writes an image encoder (e.g. SimCLR's) as TFLite with the signature `encode`:
    `images` float32 `[batch, H, W, C]` in [0, 1] -> `features` float32 `[batch, F]`.

    Example:

    >>> encoder_to_tflite(simclr.encoder, "out/encoder.tflite")  # doctest: +SKIP
    """
    from tfpretrain.export.encoder import encoder_image_shape

    spec = _image_spec(encoder_image_shape(encoder, image_shape))

    def encode(images):
        return {"features": tf.cast(encoder(images, training=False), tf.float32)}

    return convert_to_tflite({"encode": (encode, spec)}, [encoder], path)


def text_classifier_to_tflite(model: keras.Model, path, sequence_length: int) -> Path:
    """Writes a text classifier as TFLite with the signature `classify`: `token_ids` and
    `padding_mask`, int32 `[batch, sequence_length]` (the tokenizer's `pack` output: ids padded
    with the pad id, mask 1 on real tokens) -> `probabilities` float32 `[batch, classes]`.
    Any other input of the model (BERT's `segment_ids`) is zeros, as `pack` gives.

    Example:

    >>> text_classifier_to_tflite(model, "out/classifier.tflite", 128)  # doctest: +SKIP
    """
    length = int(sequence_length)
    names = list(model.input) if isinstance(model.input, dict) else []
    if not {"token_ids", "padding_mask"} <= set(names):
        raise ValueError(f"The classifier must take token_ids and padding_mask; it takes {names}.")
    spec = [
        tf.TensorSpec((None, length), tf.int32, name="token_ids"),
        tf.TensorSpec((None, length), tf.int32, name="padding_mask"),
    ]

    def classify(token_ids, padding_mask):
        given = {"token_ids": token_ids, "padding_mask": padding_mask}
        inputs = {n: given.get(n, tf.zeros_like(token_ids)) for n in names}
        logits = model(inputs, training=False)
        return {"probabilities": tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)}

    return convert_to_tflite({"classify": (classify, spec)}, [model], path)


def run_tflite(path, signature: str, **inputs: np.ndarray) -> dict[str, np.ndarray]:
    """Runs one signature of a `.tflite` file with the TFLite interpreter (inputs of any batch).

    Example:

    >>> run_tflite("out/autoencoder.tflite", "encode", images=x)["codes"]  # doctest: +SKIP
    """
    try:  # LiteRT, tf.lite's successor, where installed; the same API
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
        interpreter = Interpreter(model_path=str(path))
    runner = interpreter.get_signature_runner(signature)
    return {k: np.asarray(v) for k, v in runner(**inputs).items()}
