"""notebooks/simclr_mnist.ipynb runs top to bottom with small settings in a fresh kernel."""

import pytest

from tests.notebook import outputs, run_notebook


@pytest.mark.slow
def test_simclr_notebook_runs(tmp_path):
    nb = run_notebook(
        "simclr_mnist.ipynb",
        {
            "SIMCLR_NB_EPOCHS": "1",
            "SIMCLR_NB_TRAIN": "1024",
            "SIMCLR_NB_PRESET": "tiny",
            "SIMCLR_NB_STEPS": "10",
        },
        tmp_path,
    )
    text = outputs(nb)
    assert "| scratch |" in text and "| simclr |" in text
    assert any(
        o.get("output_type") == "display_data" and "image/png" in o.get("data", {})
        for c in nb.cells
        for o in c.get("outputs", [])
    )
    # Chance is 0.11 (the commonest test digit). One epoch of the tiny preset on 1024 images gave
    # 0.35 (k-NN) and 0.25 (a 40-step linear probe): these bounds fail features that carry no
    # class information, as a broken encoder, augmentation or loss would give.
    knn = next(line for line in text.splitlines() if line.startswith("k-NN accuracy per epoch:"))
    assert float(knn.split("[")[1].split("]")[0].split(",")[-1]) > 0.25
    probe = next(line for line in text.splitlines() if line.startswith("{'accuracy'"))
    assert float(probe.split(":")[1].split(",")[0]) > 0.18
