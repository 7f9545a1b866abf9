"""The notebooks run top to bottom (with small settings) in a fresh kernel."""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]


def run_notebook(name: str, env: dict[str, str], tmp_path) -> nbformat.NotebookNode:
    nb = nbformat.read(REPO / "notebooks" / name, as_version=4)
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb


def outputs(nb) -> str:
    return "\n".join(
        o.get("text", "") for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
    )


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
