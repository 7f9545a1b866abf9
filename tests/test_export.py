import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tests.checks import assert_close
from tfpretrain.export import export_autoencoder, export_encoder, export_gan
from tfpretrain.export.core import find_saved_model
from tfpretrain.models import AutoencoderConfig, autoencoder_layer, build_autoencoder
from tfpretrain.models.gan import build_gan, discriminator_features, gan_config, sample_noise
from tfpretrain.models.simclr import SimCLRConfig, build_simclr

SAVED_MODEL_CLI = str(Path(sys.executable).with_name("saved_model_cli"))

# Loads every export in a fresh interpreter where Keras cannot even be imported.
RELOAD = """
import sys
sys.modules["keras"] = None  # serving must not need Keras: any import of it now fails
import json, numpy as np, tensorflow as tf
jobs = json.loads(sys.argv[1])
for path, name, inputs, out in jobs:
    signature = tf.saved_model.load(path).signatures[name]
    args = {k: tf.constant(np.load(v) if isinstance(v, str) else v) for k, v in inputs.items()}
    np.savez(out, **{k: v.numpy() for k, v in signature(**args).items()})
print(json.dumps(sorted(m for m, module in sys.modules.items()
                        if module is not None and m.split('.')[0] in ('tfpretrain', 'keras'))))
"""


def _images(n: int = 3, shape=(28, 28, 1)) -> np.ndarray:
    return np.random.default_rng(0).uniform(size=(n, *shape)).astype("float32")


def _reload(tmp_path, jobs) -> list[dict]:
    result = subprocess.run(
        [sys.executable, "-c", RELOAD, json.dumps(jobs)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []  # no tfpretrain, no keras
    return [dict(np.load(out)) for *_, out in jobs]


def _tiny_gan():
    return build_gan(gan_config("dcgan_tiny"), seed=0)


def test_image_kinds_reload_in_fresh_process_without_keras(tmp_path):
    x = _images()
    np.save(tmp_path / "x.npy", x)
    jobs, expected = [], []
    for conv in (False, True):
        model = build_autoencoder(AutoencoderConfig(conv=conv))
        path = str(export_autoencoder(model, tmp_path / f"ae{conv}"))
        x_file = {"images": str(tmp_path / "x.npy")}
        jobs += [
            (path, "encode", x_file, str(tmp_path / f"e{conv}.npz")),
            (path, "serving_default", x_file, str(tmp_path / f"r{conv}.npz")),
        ]
        expected += [{"codes": autoencoder_layer(model).encoder(x)}, {"reconstructions": model(x)}]
    encoder = build_simclr(SimCLRConfig.preset("tiny")).encoder
    jobs.append(
        (
            str(export_encoder(encoder, tmp_path / "enc")),
            "serving_default",
            {"images": str(tmp_path / "x.npy")},
            str(tmp_path / "f.npz"),
        )
    )
    expected.append({"features": encoder(x, training=False)})
    gan = _tiny_gan()
    gan_path = str(export_gan(gan.generator, gan.discriminator, tmp_path / "gan"))
    latent = int(gan.generator.input_shape[-1])
    fakes = gan.generator(sample_noise(11, 5, latent), training=False)
    np.save(tmp_path / "fakes.npy", np.asarray(fakes))
    jobs += [
        (gan_path, "serving_default", {"seed": 11, "count": 5}, str(tmp_path / "s.npz")),
        (gan_path, "features", {"images": str(tmp_path / "fakes.npy")}, str(tmp_path / "d.npz")),
    ]
    expected += [
        {"images": fakes},
        {"features": discriminator_features(gan.discriminator)(fakes, training=False)},
    ]
    for got, want in zip(_reload(tmp_path, jobs), expected, strict=True):
        assert sorted(got) == sorted(want)
        for key in want:
            assert_close(got[key], want[key], atol=1e-5)


def _cli_run(path, signature: str, tmp_path, **inputs) -> dict:
    """`saved_model_cli run` with `.npy` inputs or Python expressions; its outputs as arrays."""
    out = tmp_path / f"cli_{signature}"
    files = {k: v for k, v in inputs.items() if isinstance(v, np.ndarray)}
    for key, value in files.items():
        np.save(tmp_path / f"{key}.npy", value)
    args = [
        SAVED_MODEL_CLI,
        "run",
        "--dir",
        str(path),
        "--tag_set",
        "serve",
        "--signature_def",
        signature,
        "--outdir",
        str(out),
        "--overwrite",
    ]
    if files:
        args += ["--inputs", ";".join(f"{k}={tmp_path / k}.npy" for k in files)]
    exprs = {k: v for k, v in inputs.items() if k not in files}
    if exprs:
        args += ["--input_exprs", ";".join(f"{k}={v}" for k, v in exprs.items())]
    result = subprocess.run(args, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return {p.stem: np.load(p) for p in out.glob("*.npy")}


def test_saved_model_cli_runs_image_kinds(tmp_path):
    x = _images(2)
    model = build_autoencoder()
    got = _cli_run(export_autoencoder(model, tmp_path / "ae"), "encode", tmp_path, images=x)
    assert_close(got["codes"], autoencoder_layer(model).encoder(x), atol=1e-5)
    gan = _tiny_gan()
    got = _cli_run(
        export_gan(gan.generator, gan.discriminator, tmp_path / "gan"),
        "sample",
        tmp_path,
        seed=3,
        count=2,
    )
    latent = int(gan.generator.input_shape[-1])
    assert_close(got["images"], gan.generator(sample_noise(3, 2, latent)), atol=1e-5)


def test_serving_default_is_the_documented_endpoint(tmp_path):
    model = build_autoencoder()
    loaded = tf.saved_model.load(str(export_autoencoder(model, tmp_path / "ae")))
    assert sorted(loaded.signatures) == ["encode", "reconstruct", "serving_default"]
    default = loaded.signatures["serving_default"]
    assert list(default.structured_outputs) == ["reconstructions"]
    assert default.structured_input_signature[1]["images"].shape.as_list() == [None, 28, 28, 1]
    gan = _tiny_gan()
    loaded = tf.saved_model.load(str(export_gan(gan.generator, gan.discriminator, tmp_path / "g")))
    assert list(loaded.signatures["serving_default"].structured_outputs) == ["images"]


def test_versioned_layout(tmp_path):
    model = build_autoencoder()
    base = tmp_path / "saved_model"
    base.mkdir()
    (base / "saved_model.pb").write_bytes(b"old flat export")  # the layout before versions
    assert export_autoencoder(model, base) == base / "1"
    assert export_autoencoder(model, base) == base / "1"  # replaced in place
    assert export_autoencoder(model, base, version="next") == base / "2"
    assert export_autoencoder(model, base, version=7) == base / "7"
    assert sorted(p.name for p in base.iterdir()) == ["1", "2", "7"]  # no staging, no flat files
    assert [p.name for p in tmp_path.iterdir()] == ["saved_model"]
    assert find_saved_model(base) == base / "7"
    assert find_saved_model(tmp_path) == base / "7"  # a run directory
    assert find_saved_model(base / "2") == base / "2"
    with pytest.raises(FileNotFoundError, match="No SavedModel at"):
        find_saved_model(tmp_path / "nothing")
    with pytest.raises(ValueError, match="version must be an integer >= 1"):
        export_autoencoder(model, base, version=0)


BAD_IMAGES = {
    "flat": (np.zeros((2, 784)), r"images must have shape \[batch, 28, 28, 1\].*\[2 784\]"),
    "rank 3": (np.zeros((2, 28, 28)), r"must have shape \[batch, 28, 28, 1\].*\[2 28 28\]"),
    "32x32": (np.zeros((2, 32, 32, 1)), r"must have shape .*got shape\] \[2 32 32 1\]"),
    "0-255": (np.full((2, 28, 28, 1), 255.0), r"must be in \[0, 1\] \(divide 0-255 pixels by 255"),
    "negative": (np.full((1, 28, 28, 1), -0.5), r"must be in \[0, 1\]"),
    "nan": (np.full((1, 28, 28, 1), np.nan), "images contains NaN or infinity"),
    "empty": (np.zeros((0, 28, 28, 1)), "images is an empty batch"),
}


@pytest.fixture(scope="module")
def autoencoder_export(tmp_path_factory):
    path = export_autoencoder(build_autoencoder(), tmp_path_factory.mktemp("ae") / "saved_model")
    return tf.saved_model.load(str(path))


@pytest.mark.parametrize("case", sorted(BAD_IMAGES))
@pytest.mark.parametrize("signature", ["encode", "reconstruct"])
def test_bad_image_requests_fail_with_readable_messages(autoencoder_export, signature, case):
    images, message = BAD_IMAGES[case]
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        autoencoder_export.signatures[signature](images=tf.constant(images, tf.float32))


def test_bad_dtype_and_gan_requests(autoencoder_export, tmp_path):
    with pytest.raises(tf.errors.InvalidArgumentError, match="expected to be a float tensor"):
        autoencoder_export.signatures["encode"](images=tf.zeros((1, 28, 28, 1), tf.uint8))
    gan = _tiny_gan()
    sample = tf.saved_model.load(
        str(export_gan(gan.generator, gan.discriminator, tmp_path / "g"))
    ).signatures["sample"]
    for count, message in ((0, r"count must be >= 1"), (5000, r"count must be <= 1024")):
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            sample(seed=tf.constant(0), count=tf.constant(count))
