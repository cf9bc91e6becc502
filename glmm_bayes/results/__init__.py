"""Stage 4 of the pipeline: fit objects with one vocabulary across engines. Each name loads its
module on first use, so that a frequentist fit never loads the posterior's xarray and ArviZ."""

from ..lazy_modules import lazy_attributes

_MODULES = {
    **dict.fromkeys(["BatchFits", "BatchPosterior"], ".batch"),
    **dict.fromkeys(["compare", "loo_compare"], ".compare"),
    "FrequentistFit": ".frequentist",
    **dict.fromkeys(["anova", "lrt"], ".lrt"),
    **dict.fromkeys(["Posterior", "load_posterior"], ".posterior"),
}

__all__ = sorted(_MODULES)

__getattr__ = lazy_attributes(__name__, _MODULES)
