"""Runs a notebook of notebooks/ top to bottom in a fresh kernel, for the notebook tests."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]


def run_notebook(name: str, env: dict[str, str], tmp_path) -> nbformat.NotebookNode:
    """Executes `notebooks/<name>` with `env` added to the kernel's environment (in `tmp_path`).

    The kernel imports this checkout's tfpretrain, wherever the tests run from.
    """
    nb = nbformat.read(REPO / "notebooks" / name, as_version=4)
    env = {**env, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        NotebookClient(
            nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
        ).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb


def outputs(nb: nbformat.NotebookNode) -> str:
    """The text the notebook's code cells printed."""
    return "\n".join(
        o.get("text", "")
        for cell in nb.cells
        if cell.cell_type == "code"
        for o in cell.get("outputs", [])
    )
