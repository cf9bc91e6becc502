"""glmm_bayes: Bayesian and frequentist mixed models from one lme4-style formula.

design (formula -> ModelSpec) -> core (parameter map, arrays, factorisations, deviances) ->
frequentist (REML/ML, Laplace/AGQ) and bayes (priors, NumPyro program, NUTS, MAP) -> results
(Posterior, FrequentistFit, compare).

Importing the package changes nothing in the user's process: float64 is switched on only
inside the package's own computations (`numerics.float64`). Only the exceptions, `Control`
and the datasets load with the package; JAX, NumPyro, formulae and the engines load when a
name that needs them is first used (`gb.Model`, `gb.compare`, ...), and matplotlib with the
first plot, so `import glmm_bayes` is quick.
"""

from . import progress  # noqa: F401 (first: loads tqdm.auto before numpyro, see progress.py)
from .control import Control
from .datasets import list_datasets, load_dataset
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
from .lazy_modules import lazy_attributes

__all__ = [
    "AR1",
    "CAR1",
    "ClusterError",
    "CompoundSymmetry",
    "Control",
    "ConvergenceWarning",
    "DataError",
    "DataWarning",
    "FamilyError",
    "FitError",
    "FormulaError",
    "FrequentistFit",
    "GaussianCorrelation",
    "GlmmBayesError",
    "GlmmBayesWarning",
    "Model",
    "ModelError",
    "Posterior",
    "PriorError",
    "SamplingWarning",
    "SeparationWarning",
    "SingularFitWarning",
    "VarIdent",
    "anova",
    "batch_on_ray",
    "compare",
    "exact_lrt",
    "exact_rlrt",
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
    "sbc",
    "use_compilation_cache",
    "use_cpu_cores",
]

#: Public names loaded on first use, by the module that defines them (every plot_* name from
#: `plots`, which loads matplotlib).
_LAZY = {
    **dict.fromkeys(
        ["AR1", "CAR1", "CompoundSymmetry", "GaussianCorrelation", "VarIdent"], ".design.residual"
    ),
    "Model": ".model",
    "batch_on_ray": ".ray_batch",
    **dict.fromkeys(["exact_lrt", "exact_rlrt"], ".results.exact_lrt"),
    "sbc": ".results.sbc",
    **dict.fromkeys(
        ["FrequentistFit", "Posterior", "anova", "compare", "load_posterior", "loo_compare", "lrt"],
        ".results",
    ),
    **{name: ".plots" for name in __all__ if name.startswith("plot_")},
    "use_compilation_cache": ".compilation_cache",
    "use_cpu_cores": ".cpu_devices",
}


__getattr__ = lazy_attributes(__name__, _LAZY)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
