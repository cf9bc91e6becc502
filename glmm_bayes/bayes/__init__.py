"""Layer 3, Bayesian engines: the priors, the NumPyro programs, NUTS (one model or a batch),
MAP, draws of the random effects and the pointwise log-likelihood."""
