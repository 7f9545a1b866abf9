"""Losses shared across the pre-training families."""

from __future__ import annotations

import keras
from keras import ops

from tfpretrain.layers._validate import check_positive_float


def nt_xent(z_a, z_b, temperature: float = 0.5):
    """Normalized temperature-scaled cross-entropy (NT-Xent) of SimCLR (Chen et al., 2020).

    For a batch of N pairs the 2N embeddings are L2-normalised; each embedding's positive is the
    other view of the same example and its 2N - 2 negatives are all other embeddings of both
    views. The loss is the mean over all 2N anchors (so it is symmetric in the two views) of
    `-log(exp(sim(i, j) / t) / sum_{k != i} exp(sim(i, k) / t))`.

    Args:
        z_a: `[N, D]` embeddings of the first view.
        z_b: `[N, D]` embeddings of the second view.
        temperature: softmax temperature, > 0.

    Returns:
        The scalar float32 loss.

    Example:

    >>> z = keras.random.normal((8, 16), seed=0)
    >>> float(nt_xent(z, z, temperature=0.5)) > 0
    True
    """
    temperature = check_positive_float("temperature", temperature)
    if len(z_a.shape) != 2 or len(z_b.shape) != 2:
        raise ValueError(
            f"nt_xent expects two [batch, features] tensors; got shapes {tuple(z_a.shape)} and "
            f"{tuple(z_b.shape)}."
        )
    if z_a.shape[0] is not None and z_a.shape[0] < 2:
        raise ValueError(
            "nt_xent needs a batch of at least 2 pairs: with one pair there are no negatives. "
            "Increase the batch size."
        )
    z = ops.concatenate([ops.cast(z_a, "float32"), ops.cast(z_b, "float32")], axis=0)
    z = z / ops.maximum(ops.norm(z, axis=1, keepdims=True), 1e-12)
    n2 = ops.shape(z)[0]
    n = n2 // 2
    logits = ops.matmul(z, ops.transpose(z)) / temperature
    # An anchor is never its own negative: remove the diagonal from the softmax.
    logits = logits - ops.eye(n2, dtype="float32") * 1e9
    positives = ops.concatenate([ops.arange(n) + n, ops.arange(n)], axis=0)
    losses = keras.losses.sparse_categorical_crossentropy(positives, logits, from_logits=True)
    return ops.mean(losses)


@keras.saving.register_keras_serializable(package="tfpretrain")
class NTXent(keras.losses.Loss):
    """`keras.losses.Loss` wrapper of `nt_xent`.

    `y_pred` holds both views stacked on the batch axis, `[2N, D]` (first N rows view A, last N
    rows view B); `y_true` is ignored (pass zeros), so the loss can be given to `model.compile`.

    Args:
        temperature: softmax temperature, > 0.
        name: name of the loss.

    Example:

    >>> loss = NTXent(temperature=0.1)
    >>> z = keras.random.normal((8, 16), seed=0)
    >>> float(loss(keras.ops.zeros((8,)), z)) > 0
    True
    """

    def __init__(self, temperature: float = 0.5, name: str = "nt_xent", **kwargs):
        super().__init__(name=name, **kwargs)
        self.temperature = check_positive_float("temperature", temperature)

    def call(self, y_true, y_pred):
        z_a, z_b = ops.split(y_pred, 2, axis=0)
        return nt_xent(z_a, z_b, self.temperature)

    def get_config(self):
        config = super().get_config()
        config["temperature"] = self.temperature
        return config


def distillation_loss(
    labels, student_logits, teacher_logits, temperature: float = 2.0, alpha: float = 0.5
):
    """Knowledge-distillation loss of Hinton et al. (2015): soft targets plus hard labels.

    `alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * CE(labels,
    student)`. The T^2 factor keeps the soft term's gradients on the scale of the hard term's
    whatever the temperature (soft-target gradients shrink as 1 / T^2).

    Args:
        labels: `[B]` integer class labels.
        student_logits: `[B, C]` logits of the student.
        teacher_logits: `[B, C]` logits of the teacher (treated as constants).
        temperature: softmax temperature T > 0 of both distributions in the soft term.
        alpha: weight of the soft term, in [0, 1].

    Returns:
        The scalar float32 loss (mean over the batch).

    Example:

    >>> s = keras.ops.convert_to_tensor([[2.0, 0.0]])
    >>> float(distillation_loss(keras.ops.convert_to_tensor([0]), s, s, alpha=1.0))  # same logits
    0.0
    """
    temperature = check_positive_float("temperature", temperature)
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"`alpha` must be in [0, 1]; got {alpha!r}.")
    student_logits = ops.cast(student_logits, "float32")
    teacher_logits = ops.stop_gradient(ops.cast(teacher_logits, "float32"))
    if student_logits.shape[-1] != teacher_logits.shape[-1]:
        raise ValueError(
            "Teacher and student must predict the same classes; got "
            f"{teacher_logits.shape[-1]} and {student_logits.shape[-1]} logits."
        )
    teacher_log_p = ops.log_softmax(teacher_logits / temperature, axis=-1)
    student_log_p = ops.log_softmax(student_logits / temperature, axis=-1)
    kl = ops.sum(ops.exp(teacher_log_p) * (teacher_log_p - student_log_p), axis=-1)
    hard = keras.losses.sparse_categorical_crossentropy(labels, student_logits, from_logits=True)
    return ops.mean(alpha * temperature**2 * kl + (1.0 - alpha) * hard)
