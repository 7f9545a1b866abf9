"""SavedModel export of text classifiers: raw strings in, class probabilities out."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import keras
import tensorflow as tf

from tfpretrain.export.checks import check_string_pairs, check_strings
from tfpretrain.export.core import export_saved_model, jit, xla_variants


def task_label_names(task: dict, num_classes: int) -> list[str]:
    """The class names of a `labelled_task` result, else the class ids as names.

    Example:

    >>> task_label_names({"num_classes": 3}, 3)
    ['0', '1', '2']
    """
    names = task.get("class_names")
    if names is None or len(names) != num_classes:
        return [str(i) for i in range(num_classes)]
    return [str(name) for name in names]


def export_text_classifier(
    model: keras.Model,
    tokenizer,
    path,
    sequence_length: int | None = None,
    *,
    label_names: Sequence[str] | None = None,
    pairs: bool = False,
    version: int | str = 1,
) -> Path:
    """Exports a text classifier with its tokenizer to `path/<version>/`.

    Signatures:

    - `serve(strings)` (also `serving_default`): `strings` string `[N >= 1]` ->
      `probabilities` float32 `[N, num_classes]`, and with `label_names` also `labels`
      string `[N]` (the most probable class's name). Without XLA.
    - `serve_xla(strings)`: the same, the model XLA-compiled (the tokenizer cannot be); for
      servers that JIT (TF Serving with `--xla_cpu_compilation_enabled`).
    - `label_names()` (with `label_names` only): no inputs -> `label_names` string
      `[num_classes]`, the class names in probability order.

    A sentence-pair classifier (`pairs=True`) takes `serve(strings, pairs)` and
    `serve_xla(strings, pairs)`: two string `[N >= 1]` batches, the first and second texts
    of each pair, packed as in training by the tokenizer's `pack(strings, pairs=pairs)`
    (BERT: `[CLS] a [SEP] b [SEP]`, segment 1 for `b`; RoBERTa: `<s> a </s></s> b </s>`).

    Texts longer than `sequence_length` tokens are truncated (pairs round-robin); an empty
    text is allowed (it classifies the special tokens alone). A scalar or empty batch, or pair
    batches of two lengths, fail with `InvalidArgumentError` naming the problem. The tokenizer
    runs inside the graph, so serving needs only `tensorflow` and `tensorflow_text` (imported
    before loading, for its ops).

    Args:
        model: a classifier taking the tokenizer's `pack` dict and returning logits.
        tokenizer: a tokenizer layer with `pack(strings, sequence_length)` (e.g.
            `WordPieceTokenizer`).
        path: the base folder, e.g. `OUT/saved_model`.
        sequence_length: tokens per input; default the tokenizer's.
        label_names: one name per class (e.g. `["negative", "positive"]`), or None.
        pairs: whether the classifier reads sentence pairs (the task's `--text-pair-column`).
        version: the version folder (an integer, or "next").

    Returns:
        The version folder written.

    Example:

    >>> path = export_text_classifier(model, tokenizer, "out/saved_model",
    ...                               label_names=["negative", "positive"])  # doctest: +SKIP
    >>> import tensorflow_text  # doctest: +SKIP
    >>> tf.saved_model.load(str(path)).signatures["serve"](strings=tf.constant(["great film"]))
    ... # doctest: +SKIP
    >>> path = export_text_classifier(nli, tokenizer, "nli/saved_model", pairs=True)
    ... # doctest: +SKIP
    >>> tf.saved_model.load(str(path)).signatures["serve"](
    ...     strings=tf.constant(["A man sleeps."]), pairs=tf.constant(["A person rests."])
    ... )  # doctest: +SKIP
    """
    length = int(sequence_length or tokenizer.sequence_length)
    num_classes = int(model.output_shape[-1])
    names = None
    if label_names is not None:
        names = [str(n) for n in label_names]
        if len(names) != num_classes:
            raise ValueError(f"label_names has {len(names)} names for {num_classes} classes.")

    def build(jit_compile: bool):
        def probabilities(inputs):
            logits = model(inputs, training=False)
            return tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)

        classify = jit(probabilities, jit_compile)

        def answer(inputs):
            result = {"probabilities": classify(inputs)}
            if names is not None:
                best = tf.argmax(result["probabilities"], axis=-1)
                result["labels"] = tf.gather(tf.constant(names), best)
            return result

        def serve(strings):
            return answer(tokenizer.pack(check_strings(strings), length))

        def serve_pairs(strings, pairs):
            first, second = check_string_pairs(strings, pairs)
            return answer(tokenizer.pack(first, length, pairs=second))

        return serve_pairs if pairs else serve

    spec = [tf.TensorSpec((None,), tf.string, name="strings")]
    if pairs:
        spec.append(tf.TensorSpec((None,), tf.string, name="pairs"))
    endpoints = xla_variants("serve", build, spec, xla=False)
    if names is not None:
        endpoints["label_names"] = (lambda: {"label_names": tf.constant(names)}, [])
    return export_saved_model(path, endpoints, [model, tokenizer], default="serve", version=version)
