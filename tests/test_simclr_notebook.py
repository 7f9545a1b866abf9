"""notebooks/simclr_mnist.ipynb runs top to bottom with small settings in a fresh kernel."""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_simclr_notebook_runs(tmp_path):
    nb = nbformat.read(REPO / "notebooks" / "simclr_mnist.ipynb", as_version=4)
    env = {"SIMCLR_NB_EPOCHS": "1", "SIMCLR_NB_TRAIN": "1024", "SIMCLR_NB_PRESET": "tiny", "SIMCLR_NB_STEPS": "10",
           # The kernel must import this checkout's tfpretrain, wherever the tests run from.
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "k-NN accuracy per epoch" in text
    assert "| scratch |" in text and "| simclr |" in text
    assert any(o.get("output_type") == "display_data" and "image/png" in o.get("data", {})
               for c in nb.cells for o in c.get("outputs", []))
    probe = next(line for line in text.splitlines() if line.startswith("{'accuracy'"))
    assert 0.1 < float(probe.split(":")[1].split(",")[0]) <= 1.0
