"""Stage 4 of the pipeline: fit objects with one vocabulary across engines."""

from .compare import compare
from .frequentist import FrequentistFit
from .posterior import Posterior

__all__ = ["FrequentistFit", "Posterior", "compare"]
