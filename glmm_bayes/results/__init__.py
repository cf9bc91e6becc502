"""Stage 4 of the pipeline: fit objects with one vocabulary across engines. The posterior's
module (xarray, ArviZ) loads on first use of its names, so that a frequentist fit never loads
it; `compare` and `lrt` are imported here because they share their modules' names (a lazy
lookup would find the submodule once something had imported it)."""

from ..lazy_modules import lazy_attributes
from .batch import BatchFits, BatchPosterior
from .compare import compare, loo_compare
from .frequentist import FrequentistFit
from .lrt import anova, lrt

__all__ = [
    "BatchFits",
    "BatchPosterior",
    "FrequentistFit",
    "Posterior",
    "anova",
    "compare",
    "load_posterior",
    "loo_compare",
    "lrt",
]

__getattr__ = lazy_attributes(
    __name__, dict.fromkeys(["Posterior", "load_posterior"], ".posterior")
)
