"""The notebooks run top to bottom (with small settings) in a fresh kernel."""

import pytest

from tests.notebook import outputs, run_notebook


@pytest.mark.slow
def test_mnist_autoencoder_notebook(tmp_path):
    nb = run_notebook(
        "mnist_autoencoder.ipynb",
        {"TFPRETRAIN_NOTEBOOK_EPOCHS": "1", "TFPRETRAIN_NOTEBOOK_LIMIT": "15000"},
        tmp_path,
    )
    text = outputs(nb)
    assert "test binary cross-entropy" in text
    # Even after one short epoch the codes must carry class information well above chance.
    line = next(line for line in text.splitlines() if line.startswith("autoencoder codes"))
    assert float(line.split("accuracy")[1].split()[0]) > 0.5
    signatures = next(line for line in text.splitlines() if line.endswith("(10, 64)"))
    assert "'encode'" in signatures and "'reconstruct'" in signatures
