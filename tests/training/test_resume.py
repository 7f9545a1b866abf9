"""Crash-safe resume: mid-epoch restarts continue exactly; broken checkpoints fail clearly."""

import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfpretrain.training import NonFiniteLossError, fit
from tfpretrain.training.checkpoint import CheckpointError, checkpoints, read_state

STEPS_PER_EPOCH = 8  # 64 examples, batch 8


class Crash(Exception):
    pass


class CrashAt(keras.callbacks.Callback):
    """Raises after `step` global steps, like a process dying between two steps."""

    def __init__(self, step):
        super().__init__()
        self.step, self.seen = step, 0

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen == self.step:
            raise Crash()


def _data(nan_at_batch=None):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6)).astype("float32")
    y = (x @ rng.normal(size=(6, 1))).astype("float32")
    if nan_at_batch is not None:
        x[nan_at_batch * 8] = np.nan
    # Reshuffled every epoch with a fixed seed: resuming must find the same order again.
    return tf.data.Dataset.from_tensor_slices((x, y)).shuffle(64, seed=3).batch(8)


def _model(width=16):
    keras.utils.set_random_seed(7)
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(width, activation="relu"),
            keras.layers.Dropout(0.3),  # its seed state must be restored too
            keras.layers.Dense(1),
        ]
    )
    model.compile(keras.optimizers.Adam(1e-2), "mse", steps_per_execution=1)
    return model


def _state(path):
    _, arrays = read_state(path)
    return arrays


def test_mid_epoch_resume_equals_uninterrupted_run(tmp_path):
    keras.utils.set_random_seed(1)
    reference = _model()
    history = fit(
        reference, _data, epochs=3, out_dir=tmp_path / "ref", verbose=0, checkpoint_every=3
    )
    final = checkpoints(tmp_path / "ref" / "checkpoints" / "state")[-1]
    assert final.name == f"step-{3 * STEPS_PER_EPOCH:09d}.npz"

    keras.utils.set_random_seed(1)
    with pytest.raises(Crash):  # dies after step 12: the newest checkpoint is step 11, mid-epoch 2
        fit(
            _model(),
            _data,
            epochs=3,
            out_dir=tmp_path / "run",
            verbose=0,
            checkpoint_every=3,
            callbacks=[CrashAt(12)],
        )
    saved = checkpoints(tmp_path / "run" / "checkpoints" / "state")
    assert saved[-1].name == "step-000000011.npz"
    header, _ = read_state(saved[-1])
    assert (header["epoch"], header["batch"], header["data_position"]) == (1, 3, 11)

    keras.utils.set_random_seed(1)
    resumed = _model()
    resumed_history = fit(
        resumed, _data, epochs=3, out_dir=tmp_path / "run", verbose=0, checkpoint_every=3
    )
    # Same step count, same weights, optimizer moments and RNG state as without the crash.
    assert int(resumed.optimizer.iterations.numpy()) == 3 * STEPS_PER_EPOCH
    ref_state, run_state = (
        _state(final),
        _state(tmp_path / "run" / "checkpoints" / "state" / final.name),
    )
    assert ref_state.keys() == run_state.keys()
    for key in ref_state:
        np.testing.assert_allclose(
            run_state[key], ref_state[key], rtol=1e-6, atol=1e-7, err_msg=key
        )
    for a, b in zip(resumed.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    # The history covers all three epochs; the epochs finished before the crash are identical.
    assert len(resumed_history.history["loss"]) == 3
    np.testing.assert_allclose(
        resumed_history.history["loss"][0], history.history["loss"][0], rtol=1e-6
    )


class SlowSteps(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        time.sleep(0.3)


def test_training_seconds_count_the_runs_before_a_resume(tmp_path):
    with pytest.raises(Crash):  # 11 steps of at least 0.3 s reach the step-11 checkpoint
        fit(
            _model(),
            _data,
            epochs=3,
            out_dir=tmp_path,
            verbose=0,
            checkpoint_every=3,
            callbacks=[SlowSteps(), CrashAt(12)],
        )
    header, _ = read_state(checkpoints(tmp_path / "checkpoints" / "state")[-1])
    assert header["step"] == 11 and header["training_seconds"] >= 11 * 0.3
    start = time.perf_counter()
    history = fit(_model(), _data, epochs=3, out_dir=tmp_path, verbose=0, checkpoint_every=3)
    this_run = time.perf_counter() - start
    # This run's clock starts after set-up (model, data, restore), so it counts at most `this_run`
    # on top of the crashed run's time; without the carry-over the total would be below it.
    assert (
        header["training_seconds"]
        < history.training_seconds
        <= header["training_seconds"] + this_run
    )
    final, _ = read_state(checkpoints(tmp_path / "checkpoints" / "state")[-1])
    assert header["training_seconds"] < final["training_seconds"] <= history.training_seconds


def test_corrupt_checkpoint_is_a_clear_error_and_nothing_is_overwritten(tmp_path):
    fit(_model(), _data(), epochs=1, out_dir=tmp_path, verbose=0)
    state = tmp_path / "checkpoints" / "state"
    path = checkpoints(state)[-1]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # truncated, as by a disk failure
    before = sorted(p.name for p in state.iterdir())
    with pytest.raises(CheckpointError, match="corrupt"):
        fit(_model(), _data(), epochs=2, out_dir=tmp_path, verbose=0)
    assert sorted(p.name for p in state.iterdir()) == before
    assert path.read_bytes() == data[: len(data) // 2]

    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF  # one flipped bit inside an array: the zip CRC catches it
    path.write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError):
        fit(_model(), _data(), epochs=2, out_dir=tmp_path, verbose=0)


def test_checkpoint_of_another_model_shape_is_refused(tmp_path):
    fit(_model(width=16), _data(), epochs=1, out_dir=tmp_path, verbose=0)
    state = tmp_path / "checkpoints" / "state"
    before = {p.name: p.read_bytes() for p in state.iterdir()}
    other = _model(width=32)
    weights = [w.copy() for w in other.get_weights()]
    with pytest.raises(CheckpointError, match=r"shape \[6, 16\].*shape \[6, 32\]"):
        fit(other, _data(), epochs=2, out_dir=tmp_path, verbose=0)
    assert {p.name: p.read_bytes() for p in state.iterdir()} == before
    for a, b in zip(other.get_weights(), weights, strict=True):  # nothing was half-loaded
        np.testing.assert_array_equal(a, b)


def test_half_written_checkpoint_is_never_loaded(tmp_path):
    fit(_model(), _data(), epochs=1, out_dir=tmp_path, verbose=0)
    state = tmp_path / "checkpoints" / "state"
    # What a kill during a write leaves: a temporary file, never a step-*.npz name.
    (state / "step-000000016.npz.tmp-12345").write_bytes(b"PK\x03\x04 partial")
    assert [p.name for p in checkpoints(state)] == ["step-000000008.npz"]
    model = _model()
    history = fit(model, _data(), epochs=2, out_dir=tmp_path, verbose=0)
    assert len(history.history["loss"]) == 2
    assert sorted(p.name for p in state.iterdir()) == ["step-000000008.npz", "step-000000016.npz"]


def test_weights_gone_nan_behind_a_finite_loss_stop_training_at_the_epoch_end():
    # A NaN moving variance never shows in a training loss (batch norm trains on batch statistics).
    keras.utils.set_random_seed(0)
    norm = keras.layers.BatchNormalization()
    model = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(8), norm, keras.layers.Dense(1)]
    )
    model.compile(keras.optimizers.SGD(1e-2), "mse")
    spoil = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: (
            norm.moving_variance.assign(np.full((8,), np.nan, "float32")) if batch == 0 else None
        )
    )
    losses = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: seen.append(logs["loss"])
    )
    seen: list[float] = []
    x = np.random.default_rng(0).normal(size=(64, 6)).astype("float32")
    with pytest.raises(NonFiniteLossError, match="moving_variance holds NaN/Inf after epoch 1"):
        fit(
            model,
            tf.data.Dataset.from_tensor_slices((x, x[:, :1])).batch(8),
            epochs=3,
            verbose=0,
            callbacks=[losses, spoil],
        )
    assert seen == []  # stopped before any later callback saw the end of epoch 1


def test_nan_loss_names_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    data = _data(nan_at_batch=None)
    fit(_model(), data, epochs=1, out_dir=tmp_path, verbose=0)
    state = tmp_path / "checkpoints" / "state"
    good = checkpoints(state)[-1].read_bytes()

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6)).astype("float32")
    y = x[:, :1].copy()
    # Unshuffled batch 6 of the second epoch -> global step 8 + 6 = 14. The NaN goes in the target:
    # in the input it can vanish behind ReLU (on CPU, TensorFlow can give relu(NaN) = 0), leaving
    # a finite loss with NaN gradients, which the checkpoint's check of the variables reports.
    y[45] = np.nan
    bad = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    with pytest.raises(NonFiniteLossError, match="step 14"):
        fit(_model(), bad, epochs=2, out_dir=tmp_path, verbose=0, checkpoint_every=1)
    newest = checkpoints(state)[-1]
    assert newest.name == "step-000000013.npz"  # the step before the NaN
    _, arrays = read_state(newest)
    assert all(np.all(np.isfinite(a)) for a in arrays.values() if a.dtype.kind == "f")
    assert good  # the first run's checkpoint was valid too


def test_a_truncated_keras_file_is_named_as_such(tmp_path):
    from tfpretrain.training.checkpoint import load_keras_model

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    good = tmp_path / "model.keras"
    model.save(good)
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(good.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r"truncated.keras is not a readable .keras file"):
        load_keras_model(truncated)
    with pytest.raises(FileNotFoundError, match="missing.keras does not exist"):
        load_keras_model(tmp_path / "missing.keras")
    np.testing.assert_array_equal(load_keras_model(good).get_weights()[0], model.get_weights()[0])
