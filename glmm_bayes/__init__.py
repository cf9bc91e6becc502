"""glmm_bayes: Bayesian and frequentist mixed models from one lme4-style formula.

design (formula -> ModelSpec) -> core (parameter map, arrays, factorisations, deviances) ->
frequentist (REML/ML, Laplace/AGQ) and bayes (priors, NumPyro program, NUTS, MAP) -> results
(Posterior, FrequentistFit, compare).

Importing the package changes nothing in the user's process: float64 is switched on only
inside the package's own computations (`numerics.float64`). The plots (matplotlib) are
imported on first use, so a script that only fits does not pay for them.
"""

from . import progress  # noqa: F401 (first: loads tqdm.auto before numpyro, see progress.py)
from .compilation_cache import use_compilation_cache
from .control import Control
from .cpu_devices import use_cpu_cores
from .datasets import list_datasets, load_dataset
from .design.residual import AR1, CAR1, CompoundSymmetry, GaussianCorrelation, VarIdent
from .errors import (
    ClusterError,
    ConvergenceWarning,
    DataError,
    DataWarning,
    FamilyError,
    FitError,
    FormulaError,
    GlmmBayesError,
    GlmmBayesWarning,
    ModelError,
    PriorError,
    SamplingWarning,
    SeparationWarning,
    SingularFitWarning,
)
from .model import Model
from .ray_batch import batch_on_ray
from .results import FrequentistFit, Posterior, anova, compare, load_posterior, loo_compare, lrt

__all__ = [
    "AR1",
    "CAR1",
    "CompoundSymmetry",
    "Control",
    "GaussianCorrelation",
    "VarIdent",
    "ClusterError",
    "ConvergenceWarning",
    "DataError",
    "DataWarning",
    "FamilyError",
    "FitError",
    "FormulaError",
    "FrequentistFit",
    "GlmmBayesError",
    "GlmmBayesWarning",
    "Model",
    "ModelError",
    "Posterior",
    "PriorError",
    "SamplingWarning",
    "SeparationWarning",
    "SingularFitWarning",
    "anova",
    "batch_on_ray",
    "compare",
    "list_datasets",
    "load_dataset",
    "load_posterior",
    "loo_compare",
    "lrt",
    "plot_caterpillar",
    "plot_compare",
    "plot_group_fits",
    "plot_ppc",
    "plot_prior_posterior",
    "plot_rank",
    "plot_ranef_qq",
    "plot_residuals",
    "plot_shrinkage",
    "plot_trace",
    "use_compilation_cache",
    "use_cpu_cores",
]

_PLOTS = {name for name in __all__ if name.startswith("plot_")}


def __getattr__(name: str):
    if name in _PLOTS:
        from . import plots

        return getattr(plots, name)
    raise AttributeError(f"module 'glmm_bayes' has no attribute {name!r}")
