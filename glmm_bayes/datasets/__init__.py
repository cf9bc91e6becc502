"""The worked examples' datasets, bundled as CSV files (sources in docs/guide.md)."""

from importlib import resources

import pandas as pd

from ..errors import GlmmBayesError

_CATEGORICAL = {  # grouping columns stored as numbers in the CSVs
    "sleepstudy": ["Subject"],
    "RIKZ": ["Beach"],
    "salamander": ["Female", "Male"],
    "ctsib": ["Subject"],
    "Ovary": ["Mare"],
    "InstEval": ["s", "d", "dept", "service", "studage", "lectage"],
    "wine": ["bottle", "judge"],
}


def list_datasets() -> list[str]:
    """Names accepted by `load_dataset`."""
    return sorted(
        p.name[:-4] for p in resources.files(__name__).iterdir() if p.name.endswith(".csv")
    )


def load_dataset(name: str) -> pd.DataFrame:
    """Load a bundled dataset; grouping columns stored as numbers come back as strings."""
    if name not in list_datasets():
        raise GlmmBayesError(f"unknown dataset {name!r}; available: {', '.join(list_datasets())}")
    with resources.files(__name__).joinpath(f"{name}.csv").open() as fh:
        frame = pd.read_csv(fh)
    for col in _CATEGORICAL.get(name, []):
        frame[col] = frame[col].astype(str)
    return frame
