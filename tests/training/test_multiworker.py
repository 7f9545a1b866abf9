"""Two worker processes on localhost with TF_CONFIG train the same model to identical weights."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]

WORKER = r"""
import sys
import numpy as np
from tfpretrain.distribute import get_strategy, is_chief
strategy = get_strategy("auto")  # TF_CONFIG describes a cluster -> MultiWorkerMirroredStrategy
import keras
import tensorflow as tf
from tfpretrain.models.autoencoder import AutoencoderConfig, build_autoencoder
from tfpretrain.recipes.autoencoder import compile_autoencoder
from tfpretrain.training import fit

keras.utils.set_random_seed(0)
images = np.random.default_rng(0).uniform(size=(64, 8, 8, 1)).astype("float32")
def data():
    return tf.data.Dataset.from_tensor_slices((images, images)).shuffle(64, seed=1).batch(16)
with strategy.scope():
    model = compile_autoencoder(
        build_autoencoder(AutoencoderConfig(image_shape=(8, 8, 1), encoder_units=(16, 8),
                                            decoder_units=(16,))), learning_rate=1e-2)
import json, os
os.makedirs(sys.argv[1])
with open(os.path.join(sys.argv[1], "config.json"), "w") as f:  # a run directory's record
    json.dump({"run": {"xla": "auto"}}, f)
history = fit(model, data, epochs=2, out_dir=sys.argv[1], verbose=0, checkpoint_every=2)
np.savez(sys.argv[2], *model.get_weights(), loss=np.array(history.history["loss"]),
         replicas=strategy.num_replicas_in_sync, chief=is_chief(strategy))
"""


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _env(cluster, index, **extra):
    config = {"cluster": {"worker": cluster}, "task": {"type": "worker", "index": index}}
    return dict(
        os.environ,
        TF_CONFIG=json.dumps(config),
        PYTHONPATH=str(REPO),
        TF_CPP_MIN_LOG_LEVEL="2",
        **extra,
    )


@pytest.mark.slow
def test_two_workers_finish_with_identical_weights(tmp_path):
    cluster = [f"localhost:{p}" for p in _free_ports(2)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(tmp_path / f"run{i}"), str(tmp_path / f"w{i}.npz")],
            cwd=REPO,
            env=_env(cluster, i, TFPRETRAIN_WORKER_TIMEOUT="120"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outputs = []
    for w in workers:
        try:
            outputs.append(w.communicate(timeout=300))
        finally:
            if w.poll() is None:
                w.kill()
    for w, (_, err) in zip(workers, outputs, strict=True):
        assert w.returncode == 0, err[-3000:]
    first, second = (np.load(tmp_path / f"w{i}.npz") for i in range(2))
    assert int(first["replicas"]) == int(second["replicas"]) == 2
    assert bool(first["chief"]) and not bool(second["chief"])
    weights = [k for k in first.files if k.startswith("arr_")]
    assert weights
    for key in weights:
        np.testing.assert_array_equal(first[key], second[key])
    assert first["loss"][-1] < first["loss"][0]
    # Only the chief writes checkpoints; the other worker leaves its directory without any.
    assert list((tmp_path / "run0" / "checkpoints" / "state").glob("step-*.npz"))
    assert not list((tmp_path / "run1" / "checkpoints" / "state").glob("step-*.npz"))
    # The chief records how the run executes, once: XLA per replica on its own device.
    execution = json.loads((tmp_path / "run0" / "config.json").read_text())["execution"]
    assert execution["xla"] is True and execution["xla_per_replica"] is True
    assert execution["strategy"] == {"name": "MultiWorkerMirroredStrategy", "replicas": 2}
    assert [d.rsplit("/", 1)[-1] for d in execution["devices"]] == ["device:CPU:0"]
    assert outputs[0][0].count("Execution: XLA on per replica") == 1
    assert "execution" not in json.loads((tmp_path / "run1" / "config.json").read_text())
    assert "Execution:" not in outputs[1][0]


def test_unreachable_worker_is_a_clear_error(tmp_path):
    port, dead = _free_ports(2)  # nothing listens on `dead`
    cluster = [f"localhost:{port}", f"localhost:{dead}"]
    code = "from tfpretrain.distribute import get_strategy; get_strategy('multiworker')"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=_env(cluster, 0, TFPRETRAIN_WORKER_TIMEOUT="3"),
        timeout=120,
    )
    assert result.returncode != 0
    assert (
        f"workers at localhost:{dead} (from TF_CONFIG) did not join the cluster within 3 s"
        in result.stderr
    )
