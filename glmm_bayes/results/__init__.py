"""Stage 4 of the pipeline: fit objects with one vocabulary across engines."""

from .batch import BatchFits, BatchPosterior
from .compare import compare, loo_compare
from .frequentist import FrequentistFit
from .lrt import anova, lrt
from .posterior import Posterior, load_posterior

__all__ = [
    "BatchFits",
    "BatchPosterior",
    "FrequentistFit",
    "Posterior",
    "anova",
    "load_posterior",
    "compare",
    "loo_compare",
    "lrt",
]
