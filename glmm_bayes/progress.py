"""`progress_bar`: tqdm's widget front end where Jupyter can draw it, its text bar elsewhere.

`tqdm.auto` picks the widget in any Jupyter kernel and, without ipywidgets, warns
"IProgress not found"; the choice here is by what is installed. numpyro imports `tqdm.auto`
as it loads, so this module loads it first, without that warning, where the bars will be text.
"""

from __future__ import annotations

import warnings
from functools import cache
from importlib.util import find_spec

from tqdm import TqdmWarning

if find_spec("ipywidgets") is None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "IProgress not found", TqdmWarning)
        import tqdm.auto  # noqa: F401


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
