"""The README's code works: its first fit runs and prints the table it describes, and every
`gb.` function, class or dataset it names exists."""

import contextlib
import io
import re
from pathlib import Path

import glmm_bayes as gb

README = (Path(__file__).parent.parent / "README.md").read_text()


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README, flags=re.S)


def test_the_first_fit_runs_and_prints_the_side_by_side_table():
    first = _python_blocks()[0]
    first = first.replace("model.sample(seed=0)", "model.sample(seed=0, progress=False)")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(first, {})
    text = printed.getvalue()
    assert "Linear mixed model fit by REML" in text  # print(reml)
    for row in ("sd(Days|Subject)", "cor((Intercept),Days|Subject)", "sigma"):
        assert row in text
    assert "NUTS" in text and "REML" in text


def test_every_gb_name_the_readme_shows_exists():
    names = set(re.findall(r"\bgb\.([A-Za-z_][A-Za-z_0-9]*)", README))
    assert names, "the README shows no gb. names"
    missing = sorted(n for n in names if not hasattr(gb, n))
    assert not missing, missing
    for variable, cls in (("model", gb.Model), ("reml", gb.FrequentistFit), ("post", gb.Posterior)):
        methods = set(re.findall(rf"\b{variable}\.([a-z_]+)\(", README))
        assert not sorted(m for m in methods if not hasattr(cls, m)), (variable, methods)
    for dataset in ("sleepstudy", "Dyestuff", "RIKZ", "Ovary", "InstEval"):
        assert dataset in README and dataset in gb.list_datasets()


def test_the_notebooks_the_readme_links_exist_and_every_notebook_is_linked():
    root = Path(__file__).parent.parent
    linked = set(re.findall(r"\((notebooks/[^)]+\.ipynb)\)", README))
    assert all((root / path).exists() for path in linked), linked
    assert linked == {f"notebooks/{p.name}" for p in (root / "notebooks").glob("*.ipynb")}
