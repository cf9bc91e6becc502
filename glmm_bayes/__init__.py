"""glmm_bayes: Bayesian and frequentist mixed models from one lme4-style formula."""

import jax

jax.config.update("jax_enable_x64", True)

from .datasets import list_datasets, load_dataset  # noqa: E402
