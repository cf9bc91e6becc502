"""glmm_bayes: Bayesian and frequentist mixed models from one lme4-style formula.

spec (formula -> ModelSpec) -> program (NumPyro model) -> engines (NUTS, REML/ML,
Laplace/AGQ, MAP) -> results (Posterior, FrequentistFit, compare).
"""

import jax

jax.config.update("jax_enable_x64", True)  # REML/Laplace are compared with lme4 in float64

from .datasets import list_datasets, load_dataset  # noqa: E402
from .errors import (DataError, FamilyError, FormulaError, GlmmBayesError, ModelError,  # noqa: E402
                     PriorError)
from .model import Model  # noqa: E402
from .plots import plot_compare  # noqa: E402
from .results import FrequentistFit, Posterior, compare  # noqa: E402

__all__ = ["DataError", "FamilyError", "FormulaError", "FrequentistFit", "GlmmBayesError",
           "Model", "ModelError", "Posterior", "PriorError", "compare", "plot_compare", "list_datasets",
           "load_dataset"]
