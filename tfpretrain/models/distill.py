"""Knowledge distillation into a smaller BERT (Hinton et al., 2015; DistilBERT).

`Distiller` trains a student `TextClassifier` against a frozen teacher `TextClassifier` with
`tfpretrain.losses.distillation_loss`, plus optionally DistilBERT's cosine alignment of the
two encoders' last hidden states. `HiddenStateDistiller` is the task-agnostic kind: a student
encoder learns a teacher encoder's last hidden states on unlabelled text. `half_depth_encoder`
and `half_depth_student` build a student with the teacher's widths and half its layers,
initialised from every other teacher layer.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from tfpretrain.losses import distillation_loss
from tfpretrain.models.bert import BertConfig, BertEncoder
from tfpretrain.models.classifier import TextClassifier


def _with_hidden_states(classifier: TextClassifier) -> keras.Model:
    """`inputs -> (logits, [B, T, H] last hidden states)` sharing the classifier's weights."""
    node = classifier.get_layer(classifier.encoder.name)._inbound_nodes[-1]
    sequence = [t for t in node.outputs if len(t.shape) == 3]
    if len(sequence) != 1:
        raise ValueError(
            f"Cannot find the [batch, tokens, hidden] output of {classifier.encoder.name!r}."
        )
    return keras.Model(classifier.inputs, [classifier.outputs[0], sequence[0]])


def _encoder(model: TextClassifier | BertEncoder) -> BertEncoder:
    return model.encoder if isinstance(model, TextClassifier) else model


def half_depth_encoder(teacher: BertEncoder, dropout: float | None = None) -> BertEncoder:
    """An encoder with the teacher's widths and half its layers, started from the teacher:
    student layer i copies teacher layer 2i (DistilBERT); embeddings and pooler are copied too.
    """
    config = dataclasses.replace(teacher.config, num_layers=max(1, teacher.config.num_layers // 2))
    if dropout is not None:
        config.dropout = dropout
    student = BertEncoder(config, name="student_encoder")
    init_from_every_other_layer(student, teacher)
    return student


def half_depth_student(teacher: TextClassifier, dropout: float | None = None) -> TextClassifier:
    """`half_depth_encoder` of the teacher's encoder under a copy of its classification head."""
    student = TextClassifier(
        half_depth_encoder(teacher.encoder, dropout),
        teacher.num_classes,
        pooling=teacher.pooling,
        dropout=teacher.dropout,
        name="student",
    )
    student.get_layer("logits").set_weights(teacher.get_layer("logits").get_weights())
    return student


def init_from_every_other_layer(
    student: TextClassifier | BertEncoder, teacher: TextClassifier | BertEncoder
) -> None:
    """Copies teacher layer 2i into student layer i, and every non-block layer of equal shape
    (the classification head too when both are classifiers).

    Raises:
        ValueError: the widths differ or the student is deeper than half the teacher.
    """
    s_enc, t_enc = _encoder(student), _encoder(teacher)
    s_cfg, t_cfg = s_enc.config, t_enc.config
    if (s_cfg.hidden_dim, s_cfg.intermediate_dim, s_cfg.num_heads) != (
        t_cfg.hidden_dim,
        t_cfg.intermediate_dim,
        t_cfg.num_heads,
    ):
        raise ValueError(
            "Initialising from the teacher needs equal widths; the student has hidden "
            f"{s_cfg.hidden_dim}/{s_cfg.intermediate_dim} and {s_cfg.num_heads} heads, the "
            f"teacher {t_cfg.hidden_dim}/{t_cfg.intermediate_dim} and {t_cfg.num_heads}."
        )
    if 2 * (s_cfg.num_layers - 1) >= t_cfg.num_layers:
        raise ValueError(
            f"A {t_cfg.num_layers}-layer teacher has no every-other layer for a "
            f"{s_cfg.num_layers}-layer student."
        )
    for i, block in enumerate(s_enc.transformer_layers):
        block.set_weights(t_enc.transformer_layers[2 * i].get_weights())
    for name in ("embeddings", "segment_embedding", "embeddings_norm", "pooler"):
        s_enc.get_layer(name).set_weights(t_enc.get_layer(name).get_weights())
    if isinstance(student, TextClassifier) and isinstance(teacher, TextClassifier):
        student.get_layer("logits").set_weights(teacher.get_layer("logits").get_weights())


def init_embeddings_from_teacher(
    student: TextClassifier | BertEncoder, teacher: TextClassifier | BertEncoder
) -> None:
    """Starts a narrower student's embedding tables from the teacher's, projected to its width.

    The projection is onto the top principal directions of the teacher's token embeddings (a
    PCA) and is applied alike to the token, position and segment tables, so that their sums stay
    consistent: a student trained from scratch then starts from the teacher's word geometry.

    Raises:
        ValueError: the vocabularies differ, the student is wider than the teacher, or it reads
            longer sequences.
    """
    s_enc, t_enc = _encoder(student), _encoder(teacher)
    s_cfg, t_cfg = s_enc.config, t_enc.config
    if s_cfg.vocabulary_size != t_cfg.vocabulary_size:
        raise ValueError(
            f"The student's vocabulary ({s_cfg.vocabulary_size}) differs from the teacher's "
            f"({t_cfg.vocabulary_size}); both must read the same token ids."
        )
    if s_cfg.hidden_dim > t_cfg.hidden_dim or s_cfg.max_sequence_length > t_cfg.max_sequence_length:
        raise ValueError(
            f"Projecting the teacher's embeddings needs a student no wider ({s_cfg.hidden_dim} vs "
            f"{t_cfg.hidden_dim}) and no longer ({s_cfg.max_sequence_length} vs "
            f"{t_cfg.max_sequence_length}); "
            "start its embeddings at random instead (--student-embeddings random)."
        )
    token, position = t_enc.get_layer("embeddings").get_weights()
    segment = t_enc.get_layer("segment_embedding").get_weights()[0]
    centered = token.astype("float64") - token.mean(0)
    variances, directions = np.linalg.eigh(centered.T @ centered)  # ascending; [width, width]
    # Orthonormal columns [teacher width, student width], most variance first.
    projection = directions[:, np.argsort(variances)[::-1][: s_cfg.hidden_dim]].astype(token.dtype)
    s_enc.get_layer("embeddings").set_weights(
        [token @ projection, position[: s_cfg.max_sequence_length] @ projection]
    )
    s_enc.get_layer("segment_embedding").set_weights(
        [segment[: s_cfg.type_vocabulary_size] @ projection]
    )


def _token_mean(values, padding_mask):
    """The mean of `[B, T]` values over real tokens (padding excluded)."""
    mask = ops.cast(padding_mask, "float32")
    return ops.sum(values * mask) / ops.maximum(ops.sum(mask), 1.0)


def cosine_distance(student_hidden, teacher_hidden, padding_mask):
    """DistilBERT's L_cos: `1 - cos(h_student, h_teacher)` averaged over real tokens; no
    gradient reaches the teacher."""
    s = ops.cast(student_hidden, "float32")
    t = ops.stop_gradient(ops.cast(teacher_hidden, "float32"))
    cosine = ops.sum(s * t, -1) / ops.maximum(ops.norm(s, axis=-1) * ops.norm(t, axis=-1), 1e-6)
    return _token_mean(1.0 - cosine, padding_mask)


def squared_error(student_hidden, teacher_hidden, padding_mask):
    """The squared error of the hidden states, averaged over features and real tokens."""
    s = ops.cast(student_hidden, "float32")
    t = ops.stop_gradient(ops.cast(teacher_hidden, "float32"))
    return _token_mean(ops.mean(ops.square(s - t), -1), padding_mask)


@keras.saving.register_keras_serializable(package="tfpretrain")
class Distiller(keras.Model):
    """Trains `student` to match a frozen `teacher` (soft targets) and the labels (hard targets).

    Args:
        student: the `TextClassifier` to train.
        teacher: the fine-tuned `TextClassifier`; never updated.
        temperature: softmax temperature of the soft targets.
        alpha: weight of the soft term (1 - alpha weighs the labels).
        hidden_weight: weight of the cosine loss 1 - cos(h_student, h_teacher) between the last
            hidden states of real tokens (DistilBERT); 0 turns it off. Needs equal widths.

    Call arguments:
        inputs: the encoders' input dict; returns the student's logits.

    `fit` data are `(inputs, labels)`; logs hold `loss`, `accuracy` and, with alignment,
    `hidden_loss`. Without alignment, `inputs` may carry the teacher's precomputed logits under
    `"teacher_logits"` (see `teacher_logits`): the frozen teacher gives the same ones every epoch,
    so computing them once spares its forward pass at every step.
    """

    def __init__(
        self,
        student: TextClassifier,
        teacher: TextClassifier,
        temperature: float = 2.0,
        alpha: float = 0.5,
        hidden_weight: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if hidden_weight and student.encoder.config.hidden_dim != teacher.encoder.config.hidden_dim:
            raise ValueError(
                "Hidden-state alignment needs equal widths; the student has "
                f"{student.encoder.config.hidden_dim}, the teacher "
                f"{teacher.encoder.config.hidden_dim}. Set hidden_weight=0."
            )
        self.student = student
        self.teacher = teacher
        self.teacher.trainable = False
        self.temperature = float(temperature)
        self.alpha = float(alpha)
        self.hidden_weight = float(hidden_weight)
        self._student_hidden = _with_hidden_states(student) if hidden_weight else None
        self._teacher_hidden = _with_hidden_states(teacher) if hidden_weight else None
        self.trackers = {n: keras.metrics.Mean(name=n) for n in ("loss", "hidden_loss")}
        self.accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        self.built = True  # both classifiers exist already

    def call(self, inputs, training=False):
        return self.student(inputs, training=training)

    @property
    def metrics(self):
        return [self.trackers["loss"], self.accuracy] + (
            [self.trackers["hidden_loss"]] if self.hidden_weight else []
        )

    def _forward(self, x, training):
        if not self.hidden_weight:
            if "teacher_logits" in x:
                x = dict(x)
                cached = x.pop("teacher_logits")
                return self.student(x, training=training), cached, 0.0
            return self.student(x, training=training), self.teacher(x, training=False), 0.0
        s_logits, s_hidden = self._student_hidden(x, training=training)
        t_logits, t_hidden = self._teacher_hidden(x, training=False)
        return s_logits, t_logits, cosine_distance(s_hidden, t_hidden, x["padding_mask"])

    def train_step(self, data):
        x, y = data[0], data[1]
        with tf.GradientTape() as tape:
            s_logits, t_logits, hidden = self._forward(x, training=True)
            loss = (
                distillation_loss(y, s_logits, t_logits, self.temperature, self.alpha)
                + self.hidden_weight * hidden
            )
            scaled = (
                self.optimizer.scale_loss(loss) if hasattr(self.optimizer, "scale_loss") else loss
            )
        variables = self.student.trainable_variables
        self.optimizer.apply(tape.gradient(scaled, variables), variables)
        self.trackers["loss"].update_state(loss)
        self.trackers["hidden_loss"].update_state(hidden)
        self.accuracy.update_state(y, s_logits)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        x, y = data[0], data[1]
        s_logits, t_logits, hidden = self._forward(x, training=False)
        loss = (
            distillation_loss(y, s_logits, t_logits, self.temperature, self.alpha)
            + self.hidden_weight * hidden
        )
        self.trackers["loss"].update_state(loss)
        self.trackers["hidden_loss"].update_state(hidden)
        self.accuracy.update_state(y, s_logits)
        return {m.name: m.result() for m in self.metrics}


class HiddenStateDistiller(keras.Model):
    """Trains a student encoder to reproduce a frozen teacher encoder's last hidden states:
    task-agnostic distillation on unlabelled text, as DistilBERT pre-trains its student.

    Args:
        student: the `BertEncoder` to train.
        teacher: a `BertEncoder` of the same width; never updated.
        mse_weight: weight of `squared_error`, added to `cosine_distance` (DistilBERT's L_cos).

    Call arguments:
        inputs: the encoders' input dict; returns the student's `[B, T, H]` hidden states.

    `fit` data are input dicts alone, no labels. Logs hold `loss`, `cosine_distance` and `mse`,
    each averaged over the real tokens, padding excluded.
    """

    def __init__(
        self, student: BertEncoder, teacher: BertEncoder, mse_weight: float = 0.0, **kwargs
    ):
        super().__init__(**kwargs)
        if student.config.hidden_dim != teacher.config.hidden_dim:
            raise ValueError(
                "Matching hidden states needs equal widths; the student has "
                f"{student.config.hidden_dim}, the teacher {teacher.config.hidden_dim}."
            )
        self.student = student
        self.teacher = teacher
        self.teacher.trainable = False
        self.mse_weight = float(mse_weight)
        self.trackers = {n: keras.metrics.Mean(name=n) for n in ("loss", "cosine_distance", "mse")}
        self.built = True  # both encoders exist already

    def call(self, inputs, training=False):
        return self.student(inputs, training=training)["sequence_output"]

    @property
    def metrics(self):
        return list(self.trackers.values())

    def _distances(self, x, teacher_hidden, training: bool):
        student_hidden = self(x, training=training)
        parts = {
            "cosine_distance": cosine_distance(student_hidden, teacher_hidden, x["padding_mask"]),
            "mse": squared_error(student_hidden, teacher_hidden, x["padding_mask"]),
        }
        return parts["cosine_distance"] + self.mse_weight * parts["mse"], parts

    def _logs(self, x, values: dict) -> dict:
        # Weighted by real tokens: a held-out pass averages over tokens, not over batches.
        tokens = ops.sum(ops.cast(x["padding_mask"], "float32"))
        for name, value in values.items():
            self.trackers[name].update_state(value, sample_weight=tokens)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        x = keras.utils.unpack_x_y_sample_weight(data)[0]
        teacher_hidden = self.teacher(x, training=False)["sequence_output"]  # outside the tape
        with tf.GradientTape() as tape:
            loss, parts = self._distances(x, teacher_hidden, training=True)
            scaled = (
                self.optimizer.scale_loss(loss) if hasattr(self.optimizer, "scale_loss") else loss
            )
        variables = self.student.trainable_variables
        # The pooler does not shape the hidden states: it gets no gradient and keeps its start.
        gradients = tape.gradient(scaled, variables)
        pairs = [(g, v) for g, v in zip(gradients, variables, strict=True) if g is not None]
        self.optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])
        return self._logs(x, {"loss": loss, **parts})

    def test_step(self, data):
        x = keras.utils.unpack_x_y_sample_weight(data)[0]
        teacher_hidden = self.teacher(x, training=False)["sequence_output"]
        loss, parts = self._distances(x, teacher_hidden, training=False)
        return self._logs(x, {"loss": loss, **parts})


def teacher_logits(
    teacher: TextClassifier,
    pack,
    sentences,
    sequence_length: int,
    batch_size: int = 128,
    progress: bool = False,
    pairs=None,
) -> np.ndarray:
    """The teacher's logits for every sentence, in order, computed once.

    Sentences run shortest first and each batch is cut to its longest sentence (rounded up to a
    multiple of 16, so XLA compiles only a few shapes): a frozen teacher's pass then costs what
    the real tokens cost rather than `sequence_length` each. Padding is masked out, so the logits
    equal those of the full-length batch up to rounding.

    Args:
        teacher: the frozen classifier.
        pack: `strings -> encoder input dict` padded to `sequence_length`
            (`WordPieceTokenizer.pack`).
        sentences: the sentences, a list of str.
        sequence_length: the padded length `pack` produces.
        batch_size: sentences per teacher call.
        progress: show a progress bar.
        pairs: the second sentences of a sentence-pair task (`pack(..., pairs=)`), or None.

    Returns:
        A float32 array `[len(sentences), num_classes]`.
    """
    if len(sentences) == 0:
        raise ValueError("No sentences to label: the training set is empty.")
    call = tf.function(lambda x: teacher(x, training=False), jit_compile=True)
    lengths = [
        len(s) + (len(pairs[i]) if pairs is not None else 0) for i, s in enumerate(sentences)
    ]
    order = np.argsort(lengths, kind="stable")
    logits = np.zeros((len(sentences), teacher.num_classes), np.float32)
    bar = keras.utils.Progbar(len(sentences), unit_name="sentence") if progress else None
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        batch = tf.constant([sentences[i] for i in index])
        if pairs is None:
            x = pack(batch, sequence_length)
        else:
            x = pack(batch, sequence_length, pairs=tf.constant([pairs[i] for i in index]))
        longest = int(tf.reduce_max(tf.reduce_sum(x["padding_mask"], axis=1)))
        width = min(sequence_length, -(-longest // 16) * 16)
        logits[index] = np.asarray(call({k: v[:, :width] for k, v in x.items()}), np.float32)
        if bar is not None:
            bar.add(len(index))
    return logits


def student_config(
    preset: str, vocabulary_size: int, max_sequence_length: int, dropout: float = 0.1
) -> BertConfig:
    """The encoder config of a BERT preset student over the teacher's vocabulary."""
    return BertConfig.preset(
        preset,
        vocabulary_size=vocabulary_size,
        max_sequence_length=max_sequence_length,
        dropout=dropout,
    )
