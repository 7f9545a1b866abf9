"""XLA under MirroredStrategy on 2 logical CPU devices equals the single-device run.

Logical devices must be configured before TensorFlow initialises its devices, so the strategy
runs happen in a fresh subprocess; this process only checks what it reports.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tfpretrain.distribute import get_strategy, global_batch_size, per_replica_batch_size

REPO = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import json, sys
from tfpretrain.distribute import (distribute_dataset, get_strategy, set_logical_cpus,
                                   shard_for)
devices = set_logical_cpus(2)
import keras
import numpy as np
import tensorflow as tf
from tfpretrain.layers import TransformerBlock
from tfpretrain.models.autoencoder import AutoencoderConfig, build_autoencoder
from tfpretrain.recipes.autoencoder import compile_autoencoder
from tfpretrain.training import fit
from tfpretrain.training.xla import is_xla_compiled, replica_xla_steps

rng = np.random.default_rng(0)
images = rng.uniform(size=(64, 8, 8, 1)).astype("float32")
tokens = rng.normal(size=(32, 6, 16)).astype("float32")

def autoencoder():
    model = build_autoencoder(AutoencoderConfig(image_shape=(8, 8, 1), encoder_units=(16, 8),
                                                decoder_units=(16,)))
    return compile_autoencoder(model, learning_rate=1e-2, steps_per_execution=4)

def transformer():
    x = keras.Input((6, 16))
    y = keras.layers.Dense(1)(TransformerBlock(4, 16, 32, causal=True, remat=True)(x))
    model = keras.Model(x, y)
    model.compile(keras.optimizers.Adam(1e-2), "mse", jit_compile=True)
    return model

def train(name, strategy, build, data):
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = build()
    history = fit(model, data, epochs=2, validation_data=data, verbose=0)
    steps = replica_xla_steps(model)
    return {
        "loss": history.history["loss"],
        "weights": [w.tolist() for w in model.get_weights()],
        "replicas": strategy.num_replicas_in_sync,
        "per_replica_xla": None if steps is None else [
            is_xla_compiled(f) for f in steps.compiled("train") + steps.compiled("test")
        ],
    }

mirrored = get_strategy("mirrored")
ae_data = tf.data.Dataset.from_tensor_slices((images, images)).batch(16)  # global batch 16
tf_data = tf.data.Dataset.from_tensor_slices((tokens, tokens.sum(-1, keepdims=True))).batch(8)
report = {"devices": devices}
report["ae_mirrored"] = train("ae", mirrored, autoencoder, ae_data)
report["tf_mirrored"] = train("tf", mirrored, transformer, tf_data)
sys.stderr.write("=== single-device runs start ===\n")
sys.stderr.flush()
report["ae_single"] = train("ae", tf.distribute.get_strategy(), autoencoder, ae_data)
report["tf_single"] = train("tf", tf.distribute.get_strategy(), transformer, tf_data)

def make(context, per_replica):
    return shard_for(tf.data.Dataset.range(32), context).batch(per_replica)
first = next(iter(distribute_dataset(make, 8, mirrored)))
report["distributed_batch"] = [
    t.numpy().tolist() for t in mirrored.experimental_local_results(first)
]

# How a mirrored run records its execution (XLA moved per replica by use_replica_xla).
import tempfile
run_dir = tempfile.mkdtemp()
with open(run_dir + "/config.json", "w") as f:
    json.dump({"run": {"xla": "auto"}}, f)
with mirrored.scope():
    model = autoencoder()
fit(model, ae_data.take(2), epochs=1, out_dir=run_dir, verbose=0)
with open(run_dir + "/config.json") as f:
    report["execution"] = json.load(f)["execution"]
print("REPORT " + json.dumps(report))
"""


@pytest.fixture(scope="module")
def report():
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="0")
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(x for x in result.stdout.splitlines() if x.startswith("REPORT "))
    return json.loads(line[len("REPORT ") :]), result.stderr


@pytest.mark.parametrize("family", ["ae", "tf"])
def test_mirrored_xla_loss_curve_equals_single_device(report, family):
    values, _ = report
    mirrored, single = values[f"{family}_mirrored"], values[f"{family}_single"]
    assert mirrored["replicas"] == 2 and single["replicas"] == 1
    np.testing.assert_allclose(mirrored["loss"], single["loss"], rtol=1e-5, atol=1e-6)
    assert mirrored["loss"][-1] < mirrored["loss"][0]  # it trains
    # Adam divides by sqrt(v): near-zero weights amplify float summation-order noise, hence atol.
    for a, b in zip(mirrored["weights"], single["weights"], strict=True):
        np.testing.assert_allclose(np.array(a), np.array(b), rtol=1e-3, atol=1e-3)


def test_xla_is_really_used_per_replica(report):
    values, stderr = report
    for family in ("ae", "tf"):
        # One train and one test function per replica device, each with XLA's must-compile flag.
        flags = values[f"{family}_mirrored"]["per_replica_xla"]
        assert flags == [True] * 4, flags
        assert values[f"{family}_single"]["per_replica_xla"] is None  # Keras' own XLA works there
    # The runtime compiled an XLA cluster before any single-device run started (TensorFlow logs
    # this once per process, when the first cluster is compiled).
    mirrored_part = stderr.split("=== single-device runs start ===")[0]
    assert "Compiled cluster using XLA" in mirrored_part


def test_a_mirrored_run_records_per_replica_xla(report):
    values, _ = report
    execution = values["execution"]
    assert execution["xla"] is True and execution["xla_per_replica"] is True
    assert execution["xla_reason"] == "auto: float32 trains fastest under XLA"
    assert execution["strategy"] == {"name": "MirroredStrategy", "replicas": 2}
    assert [d.rsplit("/", 1)[-1] for d in execution["devices"]] == ["device:CPU:0", "device:CPU:1"]
    assert execution["machine"]["cpu"]


def test_distribute_dataset_gives_each_replica_its_share(report):
    values, _ = report
    assert len(values["devices"]) == 2
    assert values["distributed_batch"] == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_batch_arithmetic_and_strategy_names():
    strategy = get_strategy("default")
    assert global_batch_size(32, strategy) == 32 * strategy.num_replicas_in_sync
    assert per_replica_batch_size(64, strategy) == 64
    with pytest.raises(ValueError, match="positive"):
        global_batch_size(0, strategy)
    with pytest.raises(ValueError, match="Unknown strategy"):
        get_strategy("nccl")
    with pytest.raises(ValueError, match="TF_CONFIG"):
        os.environ.pop("TF_CONFIG", None)
        get_strategy("multiworker")
