"""In-graph checks of a signature's inputs, run before the model sees them.

A serving client can send any tensor: TF Serving and loaded signatures check the dtype against
the signature but not the declared shape, so a `[2, 784]` batch would reach an image model and
fail (or worse, answer) deep inside it. These checks fail the request first with an
`InvalidArgumentError` whose message says what was expected and what came.

Shapes are compared through the padded runtime shape, never through `tf.rank`/`tf.size` of the
shape: those fold into constants from the declared spec and would check nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

# Highest `count` a GAN `sample` request may ask for: bounds the memory one request can take.
MAX_SAMPLES = 1024
_RANK_PAD = 8


def _padded_shape(x: tf.Tensor) -> tf.Tensor:
    """The runtime shape of `x` followed by -1s, `_RANK_PAD` long (so any rank compares)."""
    return tf.concat([tf.shape(x), tf.fill([_RANK_PAD], -1)], axis=0)[:_RANK_PAD]


def check_images(images: tf.Tensor, shape: Sequence[int], name: str = "images") -> tf.Tensor:
    """Checks an image batch: `[batch >= 1, H, W, C]` exactly, finite values in [0, 1].

    Args:
        images: float32 tensor as received by the signature.
        shape: the expected `(H, W, C)`.
        name: the input's name, for the messages.

    Returns:
        `images`, to be used only after the checks have passed.

    Example:

    >>> check_images(tf.zeros([2, 28, 28, 1]), (28, 28, 1)).shape
    TensorShape([2, 28, 28, 1])
    """
    height, width, channels = (int(d) for d in shape)
    padded = _padded_shape(images)
    expected = tf.constant([height, width, channels] + [-1] * (_RANK_PAD - 4))
    described = f"[batch, {height}, {width}, {channels}]"
    shape_ok = tf.debugging.Assert(
        tf.reduce_all(tf.equal(padded[1:], expected)),
        [
            f"{name} must have shape {described} (batch, height, width, channels); got shape",
            tf.shape(images),
        ],
        summarize=_RANK_PAD,
    )
    with tf.control_dependencies([shape_ok]):
        nonempty = tf.debugging.Assert(
            padded[0] > 0, [f"{name} is an empty batch; give at least one image."]
        )
        finite = tf.debugging.Assert(
            tf.reduce_all(tf.math.is_finite(images)), [f"{name} contains NaN or infinity."]
        )
    with tf.control_dependencies([nonempty, finite]):
        in_range = tf.debugging.Assert(
            tf.reduce_all(tf.logical_and(images >= 0.0, images <= 1.0)),
            [
                f"{name} must be in [0, 1] (divide 0-255 pixels by 255); got min",
                tf.reduce_min(images),
                "max",
                tf.reduce_max(images),
            ],
        )
    with tf.control_dependencies([in_range]):
        return tf.identity(images)


def check_strings(strings: tf.Tensor, name: str = "strings") -> tf.Tensor:
    """Checks a batch of texts: a 1-D string tensor with at least one element.

    Example:

    >>> check_strings(tf.constant(["a", ""])).shape
    TensorShape([2])
    """
    padded = _padded_shape(strings)
    ok = tf.debugging.Assert(
        tf.logical_and(padded[0] > 0, padded[1] < 0),
        [f"{name} must be a non-empty 1-D batch of texts [N >= 1]; got shape", tf.shape(strings)],
        summarize=_RANK_PAD,
    )
    with tf.control_dependencies([ok]):
        return tf.identity(strings)


def check_string_pairs(
    strings: tf.Tensor, pairs: tf.Tensor, names: tuple[str, str] = ("strings", "pairs")
) -> tuple[tf.Tensor, tf.Tensor]:
    """Checks a batch of text pairs: two non-empty 1-D string tensors of one length.

    Returns:
        `(strings, pairs)`, to be used only after the checks have passed.

    Example:

    >>> first, second = check_string_pairs(tf.constant(["a", "b"]), tf.constant(["c", "d"]))
    >>> second.shape
    TensorShape([2])
    """
    strings, pairs = check_strings(strings, names[0]), check_strings(pairs, names[1])
    with tf.control_dependencies([strings, pairs]):
        same = tf.debugging.Assert(
            tf.equal(tf.shape(strings)[0], tf.shape(pairs)[0]),
            [
                f"{names[0]} and {names[1]} must hold one text each per pair; got",
                tf.shape(strings)[0],
                "and",
                tf.shape(pairs)[0],
            ],
        )
    with tf.control_dependencies([same]):
        return tf.identity(strings), tf.identity(pairs)


def check_scalar(
    value: tf.Tensor, name: str, low: int | None = None, high: int | None = None
) -> tf.Tensor:
    """Checks that `value` is a scalar in `[low, high]` (either bound optional).

    Example:

    >>> int(check_scalar(tf.constant(3), "count", low=1))
    3
    """
    padded = _padded_shape(value)
    rank_ok = tf.debugging.Assert(
        padded[0] < 0, [f"{name} must be a scalar; got shape", tf.shape(value)]
    )
    checks = [rank_ok]
    with tf.control_dependencies([rank_ok]):
        if low is not None:
            checks.append(
                tf.debugging.Assert(value >= low, [f"{name} must be >= {low}; got", value])
            )
        if high is not None:
            checks.append(
                tf.debugging.Assert(value <= high, [f"{name} must be <= {high}; got", value])
            )
    with tf.control_dependencies(checks):
        return tf.identity(value)


def check_text_request(
    strings: tf.Tensor, name: str, **scalars: tf.Tensor
) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """Checks a generation request's texts, then each scalar's rank, one after the other.

    Chained so that a request with several faults always names the same one, and the texts
    come back only once every check has passed: whatever uses them (tokenizer, decoding loop)
    runs after the checks.

    Returns:
        `(strings, scalars)`, checked.

    Example:

    >>> texts, values = check_text_request(tf.constant(["hi"]), "prompts",
    ...                                    max_length=tf.constant(8))
    >>> int(values["max_length"])
    8
    """
    previous = check_strings(strings, name)
    checked = {}
    for key, value in scalars.items():
        with tf.control_dependencies([previous]):
            previous = checked[key] = check_scalar(value, key)
    with tf.control_dependencies([previous]):
        return tf.identity(strings), checked
