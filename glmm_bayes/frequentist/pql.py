"""Penalised quasi-likelihood (Breslow and Clayton 1993), as MASS::glmmPQL computes it.

From the GLM's estimates, repeat at most `niter` times: with eta the linear predictor (offset
included), mu = g^{-1}(eta) and the Fisher weights W = w (dmu/deta)^2 / V(mu), fit by ML the
weighted LMM of the working response

    z = eta + (y - mu) / (dmu/deta) = X beta + Z b + e,   Var(e_i) = sigma^2 / W_i,

and take its fitted values X beta + Z b as the new eta; stop once sum((eta - eta_old)^2) <
1e-6 sum(eta^2). sigma is a free dispersion (1 for a binomial or Poisson model that is right).
The LMM maximises no likelihood of y: a PQL fit has Wald tests only.
"""

from __future__ import annotations

import numpy as np

from ..core.compiled import bind, compiled
from ..core.scaling import glm_start
from ..errors import ConvergenceWarning, ModelError

#: MASS::glmmPQL's relative change of eta that ends the iterations
PQL_TOL = 1e-6
WORKING_RESPONSE, WORKING_WEIGHT = "pql_working_response_", "pql_working_weight_"


def _working_quantities(eta, trials, family, link):
    """mu (per trial), dmu/deta and the Fisher weights (trials included) at eta."""
    return link.inverse(eta), link.mu_eta(eta), family.fisher_weight(eta, 1.0, trials, link)


def fit_pql(spec, control, fit_working, niter: int = 10):
    """The last working LMM fit, the number of fits made, and whether eta settled within
    `niter` of them. `fit_working(formula, data)`: the ML fit of the gaussian model `formula`
    on `data` with prior weights from the column WORKING_WEIGHT (a `FrequentistFit`)."""
    if spec.family.aux or spec.family.residual_sd or spec.zi is not None:
        raise ModelError(
            "fit_pql applies to the bernoulli, binomial and poisson families (glmmPQL's "
            f"quasi-likelihood without a family parameter); this model is {spec.family.name}"
            + (" with zero inflation" if spec.zi is not None else "")
        )
    n = spec.trials if spec.family.uses_trials else np.ones_like(spec.y)
    at = compiled(bind(_working_quantities, family=spec.family, link=spec.link))
    beta, _ = glm_start(spec)
    eta = spec.X @ beta + spec.offset
    formula = f"{WORKING_RESPONSE} ~ {spec.formula.split('~', 1)[1]}"
    for fits in range(1, niter + 1):
        mu, dmu, weight = (np.asarray(a) for a in at(eta, spec.trials))
        data = spec.data.assign(
            **{
                WORKING_RESPONSE: eta + (spec.y / n - mu) / dmu,
                WORKING_WEIGHT: weight * spec.residual.weights,
            }
        )
        working = fit_working(formula, data)
        eta_old, eta = eta, working.predict()["prediction"].to_numpy()
        if np.sum((eta - eta_old) ** 2) < PQL_TOL * np.sum(eta**2):
            return working, fits, True
    control.report(
        "convergence",
        ConvergenceWarning,
        f"PQL: the linear predictor still changed after {niter} working fits; raise niter",
    )
    return working, niter, False
