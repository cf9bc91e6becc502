"""Separation: fixed effects whose ML estimates are infinite (Konis 2007, detectseparation).

For a binomial or count response, the likelihood increases without bound along a direction d of
beta when the linear predictor X d never lowers any observation's likelihood and raises some:
    binomial:  X_i d >= 0 where y_i = n_i,  X_i d <= 0 where y_i = 0,  X_i d = 0 otherwise;
    counts:    X_i d <= 0 where y_i = 0,   X_i d = 0 where y_i > 0.
Random effects do not remove this (for every u the conditional likelihood rises along d), so
the Laplace likelihood's supremum is at infinity. A linear programme finds such a d:
maximise sum_i s_i X_i d over the box |d_j| <= 1; a positive optimum means separation. A
second one finds the sparsest such direction (least ||d||_1 with sum_i s_i X_i d = 1), whose
non-zero entries name the fixed effects at fault.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linprog

from ..control import Control
from ..design import ModelSpec, column_scale
from ..errors import ConvergenceWarning, SeparationWarning


def separating_columns(spec: ModelSpec) -> list[str]:
    """Names of the fixed effects along which the likelihood rises without bound ([] if none)."""
    family = spec.family
    if not family.discrete or spec.X.shape[1] == 0:
        return []
    X = spec.X / np.array([column_scale(spec.X[:, j]) for j in range(spec.X.shape[1])])
    if family.uses_trials:
        sign = np.where(spec.y == spec.trials, 1.0, np.where(spec.y == 0, -1.0, 0.0))
    else:
        sign = np.where(spec.y == 0, -1.0, 0.0)
    free = sign != 0
    if not free.any():
        return []
    inequality = -(sign[free, None] * X[free])  # s_i X_i d >= 0
    equality = X[~free] if (~free).any() else None  # X_i d = 0
    zeros = lambda k: np.zeros(k)
    found = linprog(
        -(sign[free] @ X[free]),
        A_ub=inequality,
        b_ub=zeros(free.sum()),
        A_eq=equality,
        b_eq=None if equality is None else zeros(equality.shape[0]),
        bounds=[(-1, 1)] * X.shape[1],
        method="highs",
    )
    if found.status != 0 or -found.fun <= 1e-7 * len(spec.y):
        return []
    # sparsest direction: d = d+ - d-, minimise sum(d+ + d-) with sum_i s_i X_i d = 1
    split = lambda A: np.hstack([A, -A])
    total = (sign[free] @ X[free])[None, :]
    sparse = linprog(
        np.ones(2 * X.shape[1]),
        A_ub=split(inequality),
        b_ub=zeros(free.sum()),
        A_eq=split(np.vstack([total] + ([equality] if equality is not None else []))),
        b_eq=np.concatenate([[1.0], zeros(0 if equality is None else equality.shape[0])]),
        bounds=[(0, None)] * (2 * X.shape[1]),
        method="highs",
    )
    d = sparse.x[: X.shape[1]] - sparse.x[X.shape[1] :] if sparse.status == 0 else found.x
    return [name for name, dj in zip(spec.fixed_names, d) if abs(dj) > 1e-6 * np.max(np.abs(d))]


def warn_separation(spec: ModelSpec, control: Control, what: str) -> None:
    if columns := separating_columns(spec):
        control.report(
            "separation",
            SeparationWarning,
            f"{what}: the response is separated by {', '.join(columns)}: the likelihood "
            "rises without bound as these fixed effects go to +-infinity, so their "
            "estimates and standard errors are meaningless. Use priors (fit_map() or "
            "sample()) or remove the term",
        )


#: |logit p| of the zero part beyond which its probability has run to 0 or 1 (p < 3e-7)
ZERO_PART_LOGIT_LIMIT = 15.0


def warn_zero_part_at_boundary(spec: ModelSpec, gamma: np.ndarray, control: Control, what: str):
    """The zero part's separation: where the data give the zero-inflation (or hurdle) part no
    zeros to explain, or nothing but zeros, its logit X_zi gamma runs off to -+infinity and the
    optimiser stops somewhere along the way."""
    logit = spec.zi.matrix @ np.asarray(gamma, dtype=float)
    beyond = np.abs(logit) > ZERO_PART_LOGIT_LIMIT
    if beyond.any():
        control.report(
            "separation",
            SeparationWarning,
            f"{what}: the zero part's probability runs to {0 if logit[beyond][0] < 0 else 1} "
            f"(logit {logit[beyond][0]:.1f}) on {int(beyond.sum())} of {len(logit)} rows: its "
            f"coefficients ({spec.zi_formula}) go to +-infinity and their estimates and standard "
            "errors are meaningless. Simplify zi= (or drop it where the data have no excess "
            "zeros) or use priors (fit_map() or sample())",
        )


#: |log| of a modelled dispersion (sigma relative to sd(y); shape, phi) beyond which it has run
#: to 0 or infinity (a factor of 5e8)
DISPERSION_LOG_LIMIT = 20.0


def warn_dispersion_at_boundary(spec: ModelSpec, delta: np.ndarray, control: Control, what: str):
    """A dispersion formula's boundary: where a level of its covariates has a response fitted
    exactly (sigma -> 0, an unbounded likelihood) or no overdispersion left (shape, phi ->
    infinity, the family's limit), X_disp delta runs off and the optimiser stops somewhere."""
    name = spec.family.aux_names[0]
    centre = (
        np.log(column_scale(spec.family.on_location_scale(spec.y))) if spec.family.y_units else 0.0
    )
    log_value = spec.dispersion.matrix @ np.asarray(delta, dtype=float) - centre
    beyond = np.abs(log_value) > DISPERSION_LOG_LIMIT
    if beyond.any():
        first = log_value[beyond][0]
        control.report(
            "convergence",
            ConvergenceWarning,
            f"{what}: the dispersion {name} runs to {'0' if first < 0 else 'infinity'} "
            f"({name} / {'sd(y)' if spec.family.y_units else '1'} = exp({first:.1f})) on "
            f"{int(beyond.sum())} of {len(log_value)} rows: the response is fitted exactly "
            "there or has no dispersion left to model, the likelihood has no maximum in "
            f"the coefficients of {spec.dispersion_formula}, and their estimates and "
            "standard errors are meaningless. Simplify the dispersion formula or use priors "
            "(fit_map() or sample())",
        )
