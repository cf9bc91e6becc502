"""Stage 4 of the pipeline: fit objects with one vocabulary across engines."""

from .batch import BatchFits, BatchPosterior
from .compare import compare
from .frequentist import FrequentistFit
from .posterior import Posterior

__all__ = ["BatchFits", "BatchPosterior", "FrequentistFit", "Posterior", "compare"]
