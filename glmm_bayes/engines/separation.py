"""Separation: fixed effects whose ML estimates are infinite (Konis 2007, detectseparation).

For a binomial or count response, the likelihood increases without bound along a direction d of
beta when the linear predictor X d never lowers any observation's likelihood and raises some:
    binomial:  X_i d >= 0 where y_i = n_i,  X_i d <= 0 where y_i = 0,  X_i d = 0 otherwise;
    counts:    X_i d <= 0 where y_i = 0,   X_i d = 0 where y_i > 0.
Random effects do not remove this (for every u the conditional likelihood rises along d), so
the Laplace likelihood's supremum is at infinity. A linear programme finds such a d:
maximise sum_i s_i X_i d over the box |d_j| <= 1; a positive optimum means separation.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linprog

from ..control import Control
from ..errors import SeparationWarning
from ..spec import ModelSpec, column_scale


def separating_columns(spec: ModelSpec) -> list[str]:
    """Names of the fixed effects along which the likelihood rises without bound ([] if none)."""
    family = spec.family
    if family.name not in ("bernoulli", "binomial", "poisson", "negbinomial") or spec.X.shape[1] == 0:
        return []
    X = spec.X / np.array([column_scale(spec.X[:, j]) for j in range(spec.X.shape[1])])
    if family.uses_trials:
        sign = np.where(spec.y == spec.trials, 1.0, np.where(spec.y == 0, -1.0, 0.0))
    else:
        sign = np.where(spec.y == 0, -1.0, 0.0)
    free = sign != 0
    if not free.any():
        return []
    result = linprog(-(sign[free] @ X[free]), A_ub=-(sign[free, None] * X[free]),
                     b_ub=np.zeros(free.sum()),
                     A_eq=X[~free] if (~free).any() else None,
                     b_eq=np.zeros((~free).sum()) if (~free).any() else None,
                     bounds=[(-1, 1)] * X.shape[1], method="highs")
    if result.status != 0 or -result.fun <= 1e-7 * len(spec.y):
        return []
    return [name for name, dj in zip(spec.fixed_names, result.x) if abs(dj) > 1e-6]


def warn_separation(spec: ModelSpec, control: Control, what: str) -> None:
    if columns := separating_columns(spec):
        control.report("separation", SeparationWarning,
                       f"{what}: the response is separated by {', '.join(columns)}: the likelihood "
                       "rises without bound as these fixed effects go to +-infinity, so their "
                       "estimates and standard errors are meaningless. Use priors (fit_map() or "
                       "sample()) or remove the term")
