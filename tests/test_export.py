import json
import subprocess
import sys

import numpy as np

from tfpretrain.export import export_autoencoder
from tfpretrain.models import AutoencoderConfig, autoencoder_layer, build_autoencoder

RELOAD = """
import sys
sys.modules["keras"] = None  # serving must not need Keras: any import of it now fails
import json, numpy as np, tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
x = np.load(sys.argv[2])
out = {name: loaded.signatures[name](images=tf.constant(x)) for name in ("encode", "reconstruct")}
np.save(sys.argv[3], out["encode"]["codes"].numpy())
np.save(sys.argv[4], out["reconstruct"]["reconstructions"].numpy())
print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('tfpretrain',))))
"""


def test_saved_model_reloads_in_fresh_process(tmp_path):
    for conv in (False, True):
        model = build_autoencoder(AutoencoderConfig(conv=conv))
        path = export_autoencoder(model, tmp_path / f"saved_{conv}")
        x = np.random.default_rng(0).uniform(size=(3, 28, 28, 1)).astype("float32")
        np.save(tmp_path / "x.npy", x)
        result = subprocess.run(
            [sys.executable, "-c", RELOAD, str(path), str(tmp_path / "x.npy"),
             str(tmp_path / "codes.npy"), str(tmp_path / "recon.npy")],
            capture_output=True, text=True, check=True,
        )
        assert json.loads(result.stdout.strip().splitlines()[-1]) == []  # tfpretrain never imported
        np.testing.assert_allclose(np.load(tmp_path / "codes.npy"), autoencoder_layer(model).encoder(x), atol=1e-5)
        np.testing.assert_allclose(np.load(tmp_path / "recon.npy"), model(x), atol=1e-5)


def test_export_replaces_existing_folder(tmp_path):
    model = build_autoencoder()
    target = tmp_path / "saved"
    export_autoencoder(model, target)
    export_autoencoder(model, target)
    assert (target / "saved_model.pb").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["saved"]  # no staging folders left behind
