"""Every notebook in notebooks/ executes top to bottom (nbclient), and is stored without outputs.

The same run as a command: .venv/bin/python -m pytest -q tests/test_notebooks.py
"""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


def test_there_is_a_notebook_per_worked_example():
    names = " ".join(p.stem for p in NOTEBOOKS)
    for example in ("sleepstudy", "dyestuff", "penicillin", "pulp", "irrigation", "rikz",
                    "salamander", "ctsib", "marginal_vs_conditional", "shrinkage"):
        assert example in names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path):
    notebook = nbformat.read(path, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), \
        f"{path.name} is stored with outputs; clear them"
    client = NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
