"""The image pre-train -> evaluate protocol: linear probe, few-label fine-tuning, k-NN monitoring.

Every function takes an *encoder*: any Keras model mapping `[B, H, W, C]` images to `[B, F]`
features (SimCLR's `model.encoder`, the autoencoder's encoder, a GAN discriminator's trunk).
Encoders are never modified: fine-tuning trains a copy.

Example:

>>> (x, y), (x_test, y_test) = mnist()
>>> linear_probe(model.encoder, (x, y), (x_test, y_test))["accuracy"]  # doctest: +SKIP
0.98
>>> fine_tune(model.encoder, (x, y), (x_test, y_test), labels=100)["accuracy"]  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfpretrain.data.augment import AugmentConfig, augment
from tfpretrain.data.pipeline import AUTOTUNE, as_image_array, image_dataset, image_shape
from tfpretrain.metrics import classification_metrics
from tfpretrain.training.checkpoint import load_keras_model

Split = tuple[np.ndarray, np.ndarray]


def _check_split(split, name: str) -> Split:
    try:
        images, labels = split
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a pair (images, labels).") from None
    images = as_image_array(images, f"{name} images")
    labels = np.asarray(labels).astype(np.int64).ravel()
    if labels.shape != (images.shape[0],):
        raise ValueError(f"`{name}` has {images.shape[0]} images but {labels.shape[0]} labels.")
    return images, labels


def _image_shape(encoder: keras.Model, images: np.ndarray) -> tuple[int, ...]:
    shape = image_shape(images)
    expected = getattr(encoder, "input_shape", None)
    if (
        isinstance(expected, tuple)
        and len(expected) == 4
        and None not in expected[1:]
        and expected[1:] != shape
    ):
        raise ValueError(
            f"The encoder expects images of shape {expected[1:]}; the data has {shape}."
        )
    return shape


def encode(encoder: keras.Model, images, batch_size: int = 512) -> np.ndarray:
    """Features `[N, F]` of `images` (uint8 pixels or floats in [0, 1]) in inference mode."""
    images = as_image_array(images)
    _image_shape(encoder, images)
    features = encoder.predict(
        image_dataset(images, batch_size=batch_size, shuffle=False), verbose=0
    )
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2:
        raise ValueError(f"The encoder must output [batch, features]; got shape {features.shape}.")
    return features


def select_labels(labels, k: int, per_class: bool = False, seed: int = 0) -> np.ndarray:
    """Indices of a labelled subset: `k` examples per class (`per_class`) or `k` in total.

    `k` in total is drawn stratified (classes in proportion, at least one each when possible),
    so 100 MNIST labels means about 10 per digit whichever way it is asked for.

    Raises:
        ValueError: when `k` is not positive or asks for more examples than exist.
    """
    labels = np.asarray(labels).ravel()
    if not isinstance(k, (int, np.integer)) or k <= 0:
        raise ValueError(f"The number of labels must be a positive integer; got {k!r}.")
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    if per_class:
        if k > counts.min():
            raise ValueError(
                f"Asked for {k} labels per class but class {classes[counts.argmin()]} has only "
                f"{counts.min()} training examples; use at most {counts.min()}."
            )
        chosen = [rng.choice(np.flatnonzero(labels == c), k, replace=False) for c in classes]
        return np.sort(np.concatenate(chosen))
    if k > labels.size:
        raise ValueError(
            f"Asked for {k} labels but the training set has only {labels.size} examples."
        )
    order = rng.permutation(labels.size)
    # Stratify: take examples class by class in round-robin over a shuffled order.
    ranks = np.empty(labels.size, dtype=np.int64)
    for c in classes:
        members = order[labels[order] == c]
        ranks[members] = np.arange(members.size) * labels.size // members.size
    return np.sort(order[np.argsort(ranks[order], kind="stable")[:k]])


def _as_model(encoder: keras.Model, image_shape) -> keras.Model:
    """The encoder as a functional model with a known input (for cloning)."""
    if getattr(encoder, "inputs", None):
        return encoder
    images = keras.Input(shape=tuple(image_shape), name="images")
    return keras.Model(images, encoder(images), name=encoder.name)


def copy_encoder(encoder: keras.Model, image_shape, fresh: bool = False) -> keras.Model:
    """A copy of `encoder` with its weights, or with freshly initialised weights (`fresh`)."""
    source = _as_model(encoder, image_shape)
    copy = keras.models.clone_model(source)
    if not fresh:
        copy.set_weights(source.get_weights())
    return copy


def classifier(
    encoder: keras.Model, image_shape, num_classes: int, name: str = "classifier"
) -> keras.Model:
    """`images -> logits`: the encoder followed by a linear layer."""
    images = keras.Input(shape=tuple(image_shape), name="images")
    logits = keras.layers.Dense(num_classes, name="logits")(encoder(images))
    return keras.Model(images, logits, name=name)


def _train_classifier(
    model,
    x,
    y,
    *,
    steps,
    batch_size,
    learning_rate,
    augment_config,
    seed,
    verbose,
    jit_compile=True,
):
    ds = tf.data.Dataset.from_tensor_slices((x, y)).cache().shuffle(len(x), seed=seed).repeat()
    ds = ds.batch(min(batch_size, len(x)), drop_remainder=True).enumerate()

    def prepare(index, batch):
        images = tf.cast(batch[0], tf.float32) / (255.0 if x.dtype == np.uint8 else 1.0)
        if images.shape.rank == 3:
            images = images[..., None]
        if augment_config is not None:
            images = augment(images, tf.stack([tf.constant(seed, tf.int64), index]), augment_config)
        return images, batch[1]

    ds = ds.map(prepare, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, steps)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit_compile,
    )
    epochs = max(1, math.ceil(steps / 100))
    model.fit(ds, epochs=epochs, steps_per_epoch=math.ceil(steps / epochs), verbose=verbose)
    return model


def _scores(model, x_test, y_test, num_classes, batch_size=512) -> dict[str, float]:
    logits = model.predict(image_dataset(x_test, batch_size=batch_size, shuffle=False), verbose=0)
    return classification_metrics(y_test, np.argmax(logits, axis=1), num_classes)


def fit_linear(
    features: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    *,
    steps: int,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    seed: int = 0,
    verbose=0,
    jit_compile: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """A softmax regression on `features` trained for `steps` Adam steps; returns
    `(kernel [F, C], bias [C])`.

    Training sees the features standardised with their mean and deviation (so one learning
    rate suits every encoder) and starts from zero weights (the problem is convex); the
    standardisation is folded back into the returned weights, which apply to the raw features.
    """
    mean, std = features.mean(0), features.std(0) + 1e-6
    keras.utils.set_random_seed(seed)
    ds = tf.data.Dataset.from_tensor_slices((((features - mean) / std).astype(np.float32), labels))
    ds = ds.cache().shuffle(len(labels), seed=seed).repeat().batch(min(batch_size, len(labels)))
    probe = keras.Sequential(
        [
            keras.Input((features.shape[1],)),
            keras.layers.Dense(num_classes, kernel_initializer="zeros"),
        ],
        name="linear_probe",
    )
    probe.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        steps_per_execution=min(steps, 50),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit_compile,
    )
    probe.fit(ds, epochs=1, steps_per_epoch=steps, verbose=verbose)
    kernel, bias = (w.astype(np.float64) for w in probe.layers[-1].get_weights())
    kernel = kernel / std[:, None].astype(np.float64)
    return kernel.astype(np.float32), (bias - mean.astype(np.float64) @ kernel).astype(np.float32)


def linear_probe(
    encoder: keras.Model,
    train: Split,
    test: Split,
    *,
    epochs: int = 30,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    num_classes: int | None = None,
    seed: int = 0,
    verbose=0,
    jit_compile: bool = True,
) -> dict[str, float]:
    """Trains a linear softmax classifier on the frozen encoder's features; test-set metrics.

    Features are standardised with the training set's mean and deviation first (an affine map,
    so the classifier stays linear in the features) so one learning rate suits every encoder.

    Returns:
        `accuracy`, `precision`, `recall`, `f1` on the test set.
    """
    x, y = _check_split(train, "train")
    x_test, y_test = _check_split(test, "test")
    num_classes = num_classes or int(max(y.max(), y_test.max()) + 1)
    kernel, bias = fit_linear(
        encode(encoder, x),
        y,
        num_classes,
        steps=epochs * math.ceil(len(y) / batch_size),
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
        verbose=verbose,
        jit_compile=jit_compile,
    )
    predictions = np.argmax(encode(encoder, x_test) @ kernel + bias, axis=1)
    return classification_metrics(y_test, predictions, num_classes)


def fine_tune(
    encoder: keras.Model,
    train: Split,
    test: Split,
    *,
    labels: int | None = None,
    per_class: bool = False,
    from_scratch: bool = False,
    steps: int | None = None,
    epochs: int = 3,
    batch_size: int = 128,
    learning_rate: float = 1e-3,
    augment_config: AugmentConfig | None = None,
    num_classes: int | None = None,
    probe_first: bool = True,
    seed: int = 0,
    verbose=0,
    jit_compile: bool = True,
) -> dict[str, float]:
    """Fine-tunes a copy of the encoder plus a linear layer on a labelled subset; test-set metrics.

    By default a pre-trained encoder's linear layer starts as a linear probe of the subset on
    the frozen copy's features, and then everything is fine-tuned from there ("LP-FT", Kumar et
    al., 2022): a random head's first large gradients would otherwise overwrite pre-trained
    features, which with 100 labels undoes most of what pre-training gave. A re-initialised
    (`from_scratch`) network starts its head at random, as supervised training does: its
    features are noise at a tiny scale, and a probe's weights on them only amplify the first
    updates (measured on MNIST with 100 labels: 21% with a probe start against 47% without).

    Args:
        encoder: the pre-trained encoder (left unchanged).
        train: `(images, labels)` of the training set.
        test: `(images, labels)` of the test set.
        labels: how many labelled examples to use (None: all); see `per_class`.
        per_class: `labels` counts examples per class instead of in total.
        from_scratch: re-initialise the copy: the same network trained without pre-training.
        steps: optimisation steps; default `max(300, epochs * batches_per_epoch)`.
        epochs: passes over the labelled subset when `steps` is None.
        batch_size: examples per step (at most the subset size).
        learning_rate: Adam's peak learning rate (cosine decay over the steps).
        augment_config: augment the labelled images on the fly (None: no augmentation).
        num_classes: number of classes (inferred from the labels when None).
        probe_first: start a pre-trained encoder's linear layer from a linear probe (see
            above); `False` starts it at random.
        seed: seed of the subset, the initialisation and the order.
        jit_compile: XLA-compile the probe and fine-tuning steps.

    Returns:
        `accuracy`, `precision`, `recall`, `f1` on the test set, plus `labels` used and `steps`.
    """
    x, y = _check_split(train, "train")
    x_test, y_test = _check_split(test, "test")
    num_classes = num_classes or int(max(y.max(), y_test.max()) + 1)
    if labels is not None:
        index = select_labels(y, labels, per_class=per_class, seed=seed)
        x, y = x[index], y[index]
    if steps is None:
        steps = max(300, epochs * math.ceil(len(x) / batch_size))
    image_shape = _image_shape(encoder, x)
    keras.utils.set_random_seed(seed)
    copy = copy_encoder(encoder, image_shape, fresh=from_scratch)
    model = classifier(copy, image_shape, num_classes)
    if probe_first and not from_scratch:
        # 300 steps of batch 256 (the whole subset when it is smaller), at least two passes.
        probe_steps = max(300, 2 * math.ceil(len(x) / 256))
        head = fit_linear(
            encode(copy, x), y, num_classes, steps=probe_steps, seed=seed, jit_compile=jit_compile
        )
        model.get_layer("logits").set_weights(head)
    _train_classifier(
        model,
        x,
        y,
        steps=steps,
        batch_size=batch_size,
        learning_rate=learning_rate,
        augment_config=augment_config,
        seed=seed,
        verbose=verbose,
        jit_compile=jit_compile,
    )
    return {
        **_scores(model, x_test, y_test, num_classes),
        "labels": int(len(x)),
        "steps": int(steps),
    }


def compare(
    encoders: dict[str, keras.Model],
    train: Split,
    test: Split,
    *,
    label_counts: Sequence[int | None] = (100, 1000, None),
    per_class: bool = False,
    scratch: bool = True,
    probe: bool = True,
    seed: int = 0,
    jit_compile: bool = True,
    **fine_tune_kwargs,
) -> dict[str, dict]:
    """The comparison table: per encoder (plus `scratch`, the first encoder re-initialised), the
    fine-tuning metrics for each label count and the linear probe.

    Returns:
        `{row: {column: metrics}}` with columns `"100"`, `"1000"`, `"all"` ... and `"linear_probe"`.
    """
    if not encoders:
        raise ValueError("Give at least one encoder to evaluate.")
    rows: dict[str, dict] = {}
    first = next(iter(encoders.values()))
    plan = ([("scratch", first, True)] if scratch else []) + [
        (n, e, False) for n, e in encoders.items()
    ]
    for name, encoder, fresh in plan:
        row = {}
        for k in label_counts:
            row["all" if k is None else str(k)] = fine_tune(
                encoder,
                train,
                test,
                labels=k,
                per_class=per_class,
                from_scratch=fresh,
                seed=seed,
                jit_compile=jit_compile,
                **fine_tune_kwargs,
            )
        if probe:
            source = (
                copy_encoder(encoder, _image_shape(encoder, as_image_array(test[0])), fresh=True)
                if fresh
                else encoder
            )
            row["linear_probe"] = linear_probe(
                source, train, test, seed=seed, jit_compile=jit_compile
            )
        rows[name] = row
    return rows


def markdown_table(rows: dict[str, dict], metric: str = "accuracy", first: str = "encoder") -> str:
    """The `compare` table (or `textbench`'s) as Markdown, `metric` in percent; a cell with a
    `{metric}_std` over several seeds shows it as `mean ± std`, a missing cell as "–"."""
    columns = list(dict.fromkeys(c for row in rows.values() for c in row))
    titles = [
        (
            "all labels"
            if c == "all"
            else "linear probe"
            if c == "linear_probe"
            else f"{int(c):,} labels"
        )
        for c in columns
    ]

    def cell(scores: dict | None) -> str:
        if scores is None:
            return "–"
        text = f"{100 * scores[metric]:.1f}"
        if len(scores.get(f"{metric}_per_seed", ())) > 1:
            text += f" ± {100 * scores[f'{metric}_std']:.1f}"
        return text

    lines = [f"| {first} | " + " | ".join(titles) + " |", "|---|" + "---:|" * len(columns)]
    for name, row in rows.items():
        lines.append(f"| {name} | " + " | ".join(cell(row.get(c)) for c in columns) + " |")
    return "\n".join(lines) + "\n"


class KNNAccuracy(keras.callbacks.Callback):
    """Logs `knn_accuracy`, the k-nearest-neighbour test accuracy of the encoder's features.

    Features are L2-normalised; each query is labelled by a vote of its `k` most cosine-similar
    bank examples, weighted by `exp(similarity / temperature)` (Wu et al., 2018). It needs no
    training, so it tracks representation quality cheaply during pre-training.

    Args:
        bank: `(images, labels)` of labelled reference examples (e.g. part of the training set).
        queries: `(images, labels)` to classify (e.g. part of the test set).
        k: number of neighbours.
        every: evaluate every `every` epochs.
        temperature: vote temperature.
        encoder: the encoder to evaluate; default `self.model.encoder`.

    Example:

    >>> knn = KNNAccuracy((x[:5000], y[:5000]), (x_test[:1000], y_test[:1000]))
    >>> model.fit(views, epochs=10, callbacks=[knn])  # doctest: +SKIP
    """

    def __init__(
        self,
        bank: Split,
        queries: Split,
        k: int = 20,
        every: int = 1,
        temperature: float = 0.07,
        encoder: keras.Model | None = None,
        num_classes: int | None = None,
    ):
        super().__init__()
        self.bank = _check_split(bank, "bank")
        self.queries = _check_split(queries, "queries")
        if k <= 0 or k > len(self.bank[1]):
            raise ValueError(f"`k` must be in [1, {len(self.bank[1])}] (the bank size); got {k}.")
        self.k, self.every, self.temperature, self.encoder = (
            int(k),
            int(every),
            float(temperature),
            encoder,
        )
        self.num_classes = num_classes or int(max(self.bank[1].max(), self.queries[1].max()) + 1)
        self.history: list[float] = []

    def accuracy(self, encoder: keras.Model) -> float:
        bank = tf.math.l2_normalize(encode(encoder, self.bank[0]), axis=1)
        queries = tf.math.l2_normalize(encode(encoder, self.queries[0]), axis=1)
        similarity, index = tf.math.top_k(tf.matmul(queries, bank, transpose_b=True), k=self.k)
        votes = tf.one_hot(tf.gather(self.bank[1], index), self.num_classes)
        votes = votes * tf.exp(similarity / self.temperature)[..., None]
        predicted = tf.argmax(tf.reduce_sum(votes, axis=1), axis=1).numpy()
        return float(np.mean(predicted == self.queries[1]))

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        value = self.accuracy(self.encoder or self.model.encoder)
        self.history.append(value)
        if logs is not None:
            logs["knn_accuracy"] = value


def load_encoder(path) -> tuple[keras.Model, str]:
    """Loads the encoder of a run directory or `.keras` file; returns `(encoder, kind)`.

    Accepts a `tfpretrain simclr` run (`encoder.keras` or `model.keras`), a `tfpretrain
    autoencoder` run (`model.keras`; its encoder half), a `tfpretrain gan` run
    (`discriminator.keras`; its pooled features), or a `.keras` file of any of these or of a bare
    encoder.
    """
    from tfpretrain.models.autoencoder import autoencoder_layer
    from tfpretrain.models.simclr import SimCLR

    path = Path(path)
    candidates = (
        [path]
        if path.suffix == ".keras"
        else [path / "encoder.keras", path / "model.keras", path / "discriminator.keras"]
    )
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        raise FileNotFoundError(
            f"No encoder found at {path}: expected a run directory of `tfpretrain simclr` or "
            "`tfpretrain autoencoder` (holding encoder.keras or model.keras) or a .keras file."
        )
    model = load_keras_model(found)
    if model.name == "discriminator":  # a `tfpretrain gan` run: its pooled conv features
        from tfpretrain.models.gan import discriminator_features

        return discriminator_features(model), "gan"
    if isinstance(model, SimCLR):
        return model.encoder, "simclr"
    try:
        return autoencoder_layer(model).encoder, "autoencoder"
    except ValueError:
        pass
    if len(model.outputs or []) == 1 and len(model.output_shape) == 2:
        return model, "simclr" if found.name == "encoder.keras" else "encoder"
    raise ValueError(
        f"{found} holds a {type(model).__name__} that is neither SimCLR, an autoencoder nor an "
        "encoder mapping images to [batch, features]."
    )
