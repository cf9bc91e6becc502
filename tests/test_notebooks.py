"""Every notebook in notebooks/ executes top to bottom (nbclient), and is stored without outputs.

The notebooks run two at a time, each in its own process and kernel: most of a notebook's time
is XLA compilation, which keeps one core busy, so two cores run two notebooks in about the
time of one. The default run executes a gaussian and a GLMM notebook, one pair; the slow set
(-m slow) executes the others. All of them:
.venv/bin/python -m pytest -q -m "slow or not slow" tests/test_notebooks.py
"""

import traceback
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
#: The notebooks the default run executes (each ~40-60 s, mostly compiling, on 2 cores).
DEFAULT_RUN = {"01_sleepstudy", "06_rikz_poisson"}


def execute(path: Path) -> str | None:
    """Run one notebook in a fresh kernel; the error's text, or None. A cell that writes to
    stderr (a warning, a progress bar) is an error too: a notebook explains every warning it
    expects by catching it in code, and shows no progress noise."""
    notebook = nbformat.read(path, as_version=4)
    try:
        NotebookClient(
            notebook,
            timeout=300,
            kernel_name="python3",
            resources={"metadata": {"path": str(path.parent)}},
        ).execute()
    except Exception:
        return traceback.format_exc()
    noise = [
        f"cell {i}: {output.text.strip()}"
        for i, cell in enumerate(notebook.cells)
        for output in cell.get("outputs", [])
        if output.output_type == "stream" and output.name == "stderr"
    ]
    return "\n".join(noise) or None


@pytest.fixture(scope="module")
def errors(request) -> dict:
    """Runs the notebooks whose execution tests this session selected."""
    selected = [
        item.callspec.params["path"]
        for item in request.session.items
        if getattr(item, "originalname", None) == "test_notebook_executes"
    ]
    with ProcessPoolExecutor(max_workers=2) as pool:
        return dict(zip(selected, pool.map(execute, selected)))


def test_there_is_a_notebook_per_worked_example():
    names = " ".join(p.stem for p in NOTEBOOKS)
    for example in (
        "sleepstudy",
        "dyestuff",
        "penicillin",
        "pulp",
        "irrigation",
        "rikz",
        "salamander",
        "ctsib",
        "ovary",
        "marginal_vs_conditional",
        "shrinkage",
    ):
        assert example in names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_asserts_what_its_text_says(path):
    """Each notebook has cells that assert its prose's claims, so a change that makes the text
    false fails the notebook's execution."""
    notebook = nbformat.read(path, as_version=4)
    code = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    assert sum("assert " in source for source in code) >= 1, f"{path.name} asserts nothing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), (
        f"{path.name} is stored with outputs; clear them"
    )


@pytest.mark.parametrize(
    "path",
    [pytest.param(p, marks=() if p.stem in DEFAULT_RUN else pytest.mark.slow) for p in NOTEBOOKS],
    ids=[p.stem for p in NOTEBOOKS],
)
def test_notebook_executes(path, errors):
    assert errors[path] is None, errors[path]
