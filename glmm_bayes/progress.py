"""`progress_bar`: tqdm's widget front end where Jupyter can draw it, its text bar elsewhere.

`tqdm.auto` picks the widget in any Jupyter kernel and, without ipywidgets, warns
"IProgress not found" on every bar; the choice here is by what is installed.
"""

from __future__ import annotations

from functools import cache
from importlib.util import find_spec


@cache
def _front_end():
    if find_spec("ipywidgets") is not None:
        from tqdm.auto import tqdm
    else:
        from tqdm.std import tqdm
    return tqdm


def progress_bar(*args, **kwargs):
    """A tqdm bar (same arguments as `tqdm.tqdm`)."""
    return _front_end()(*args, **kwargs)
