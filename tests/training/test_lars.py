import keras
import numpy as np
import pytest

from tfpretrain.training.lars import LARS


def reference_lars(w, grads, lr, momentum, weight_decay, eta, nesterov, adapted):
    """NumPy LARS as written in SimCLR's lars_optimizer.py."""
    w = w.astype(np.float64).copy()
    v = np.zeros_like(w)
    for g in grads:
        g = g.astype(np.float64)
        scaled = lr
        if adapted:
            g = g + weight_decay * w
            w_norm, g_norm = np.linalg.norm(w), np.linalg.norm(g)
            trust = eta * w_norm / g_norm if w_norm > 0 and g_norm > 0 else 1.0
            scaled = lr * trust
        v = momentum * v + scaled * g
        w = w - (momentum * v + scaled * g if nesterov else v)
    return w


@pytest.mark.parametrize("nesterov", [False, True])
def test_matches_numpy_reference(nesterov):
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(5, 3)).astype("float32")
    bias = rng.normal(size=(3,)).astype("float32")
    grads = [
        (rng.normal(size=(5, 3)).astype("float32"), rng.normal(size=(3,)).astype("float32"))
        for _ in range(4)
    ]
    wk, wb = keras.Variable(kernel, name="kernel"), keras.Variable(bias, name="bias")
    opt = LARS(learning_rate=0.5, momentum=0.9, weight_decay=0.01, eta=0.02, nesterov=nesterov)
    for gk, gb in grads:
        opt.apply([keras.ops.convert_to_tensor(gk), keras.ops.convert_to_tensor(gb)], [wk, wb])
    expected_k = reference_lars(
        kernel, [g[0] for g in grads], 0.5, 0.9, 0.01, 0.02, nesterov, adapted=True
    )
    # The bias is excluded from decay and adaptation: plain momentum SGD.
    expected_b = reference_lars(
        bias, [g[1] for g in grads], 0.5, 0.9, 0.01, 0.02, nesterov, adapted=False
    )
    np.testing.assert_allclose(wk.numpy(), expected_k, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(wb.numpy(), expected_b, rtol=1e-5, atol=1e-6)
    # The trust ratio makes the kernel's first step tiny next to the unscaled SGD step.
    assert np.abs(wk.numpy() - kernel).max() < np.abs(wb.numpy() - bias).max()


def test_excluded_names_and_zero_weights():
    w = keras.Variable(np.zeros((2, 2), "float32"), name="excluded_kernel")
    z = keras.Variable(np.zeros((2, 2), "float32"), name="zero_kernel")
    opt = LARS(learning_rate=1.0, momentum=0.0, weight_decay=0.5, exclude_names=["excluded"])
    g = np.ones((2, 2), "float32")
    opt.apply([keras.ops.convert_to_tensor(g)] * 2, [w, z])
    assert not opt.adapted(w) and opt.adapted(z)
    np.testing.assert_allclose(w.numpy(), -g)  # plain SGD
    np.testing.assert_allclose(z.numpy(), -g)  # ||w|| = 0: trust ratio 1


def test_config_roundtrip_and_fit_reduces_loss():
    opt = LARS(
        learning_rate=0.2,
        momentum=0.8,
        weight_decay=1e-4,
        eta=0.01,
        nesterov=True,
        exclude_names=["x"],
    )
    clone = LARS.from_config(opt.get_config())
    for key in ("momentum", "eta", "nesterov", "exclude_names"):
        assert clone.get_config()[key] == opt.get_config()[key]
    assert clone.lars_weight_decay == 1e-4
    rng = np.random.default_rng(1)
    x = rng.normal(size=(256, 8)).astype("float32")
    y = (x @ rng.normal(size=(8, 1))).astype("float32")
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)]
    )
    model.compile(optimizer=LARS(learning_rate=0.05, eta=0.05), loss="mse", jit_compile=True)
    history = model.fit(x, y, epochs=15, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < 0.3 * history.history["loss"][0]


@pytest.mark.parametrize("kwargs", [{"momentum": 1.0}, {"weight_decay": -1.0}, {"eta": 0.0}])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        LARS(**kwargs)
