"""`Estimate`: the numbers a frequentist or Laplace engine hands to the results layer."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .optimize import OptSummary


@dataclass(frozen=True)
class Estimate:
    """Point estimates on the lme4 scale.

    `factors[k]` is the absolute covariance factor of term k: Cov(b_k level) = T_k T_k'
    (for Gaussian models T_k = sigma * relative factor). `modes[k]` (n_k, q_k) are the
    conditional modes of b_k and `cond_cov[k]` (n_k, q_k, q_k) their conditional covariances.
    `fitted` is the conditional mean mu = g^{-1}(X beta + Z b + offset) at the modes.
    """

    method: str
    beta: np.ndarray
    vcov: np.ndarray
    theta: np.ndarray
    factors: list
    aux: float | np.ndarray | None  # the family's parameters (several: an array, `pack_aux`)
    modes: list
    cond_cov: list
    fitted: np.ndarray
    loglik: float
    objective: float  # the minimised criterion: REML criterion or -2 log L
    n_params: int
    n_obs: int
    opt: OptSummary  # the optimisation record (start, end, evaluations, message)
    singular: bool
    nagq: int = 1  # quadrature nodes of a Laplace (1) or AGQ fit
    residual: dict = field(default_factory=dict)  # residual structure's natural parameters
    #: of the dispersion and zero-inflation coefficients and the thresholds
    #: (`ParameterMap.aux_coefficients`), from the Hessian
    vcov_aux_coefficients: np.ndarray | None = None

    @property
    def converged(self) -> bool:
        return self.opt.success

    @property
    def message(self) -> str:
        return self.opt.message
