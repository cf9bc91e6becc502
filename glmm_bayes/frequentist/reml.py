"""REML and ML fits of linear mixed models (lmer): minimise the profiled deviance of
`core.lmm_deviance` over theta, check the optimum, and assemble lme4's estimates there.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from ..control import Control
from ..core.batch_optimize import responses_of, settle_batch
from ..core.checks import Search, check_fit, optimize_and_settle
from ..core.compiled import bind, compiled
from ..core.estimate import Estimate
from ..core.lmm_deviance import profiled_deviance, solution_at
from ..core.parameters import ParameterMap
from ..core.scaling import parameter_scales
from ..core.structure import (
    ModelArrays,
    RandomEffectsLayout,
    canonical_theta,
    singular_terms,
    split_by_term,
    user_terms,
    with_response,
)
from ..design import ModelSpec


def _search(spec: ModelSpec, parameters: ParameterMap, layout: RandomEffectsLayout, reml: bool):
    """The profiled deviance over x = (theta unbounded, the residual structure's free
    parameters), its start, names, edge mask (the diagonals of Lambda) and scales."""
    residual_names = layout.residual.names if layout.residual else ()
    x0 = np.concatenate(
        [layout.theta_initial()]
        + (
            [np.asarray(layout.residual.to_free(layout.residual.initial()))]
            if layout.residual
            else []
        )
    )
    return Search(
        objective=bind(profiled_deviance, layout=layout),
        x0=x0,
        names=parameters.theta_names() + [f"free({name})" for name in residual_names],
        edge=np.concatenate([layout.diagonal_mask(), np.zeros(len(residual_names), bool)]),
        scale=np.concatenate([parameter_scales(spec).theta, np.ones(len(residual_names))]),
        what="REML fit" if reml else "ML fit",
    )


def fit_lmm(
    spec: ModelSpec,
    parameters: ParameterMap,
    layout: RandomEffectsLayout,
    arrays: ModelArrays,
    reml: bool = True,
    control: Control | None = None,
) -> Estimate:
    """Minimise the profiled deviance over theta (unbounded, then signed as lme4's), check the
    optimum, and assemble lme4's estimates there."""
    control = control or Control()
    search = _search(spec, parameters, layout, reml)
    args = (arrays, np.bool_(reml))
    opt, H = optimize_and_settle(search, args, control)
    return _estimate(spec, parameters, layout, arrays, reml, control, search, opt, H)


def fit_lmm_batch(
    spec: ModelSpec,
    parameters: ParameterMap,
    layout: RandomEffectsLayout,
    arrays: ModelArrays,
    responses: np.ndarray,
    reml: bool = True,
    control: Control | None = None,
    progress: bool = False,
) -> list:
    """`fit_lmm` of each row of `responses` (D, n), searched side by side
    (`core.batch_optimize`): for each response, a function that assembles its estimate (and
    raises its warnings when called), or None where its search must go on one by one."""
    control = control or Control()
    search = _search(spec, parameters, layout, reml)
    ends = settle_batch(
        search,
        responses_of(spec.family, spec.trials, responses),
        (arrays, np.bool_(reml)),
        control,
        spec.row_elements,
        progress,
    )
    return [
        None
        if end is None
        else partial(
            _estimate,
            spec,
            parameters,
            layout,
            with_response(arrays, y, spec.family),
            reml,
            control,
            search,
            *end,
        )
        for y, end in zip(responses, ends)
    ]


def _estimate(spec, parameters, layout, arrays, reml, control, search, opt, H) -> Estimate:
    """Check the optimum `opt` (Hessian H) and assemble lme4's estimates there."""
    residual_names = layout.residual.names if layout.residual else ()
    theta = canonical_theta(opt.x[: layout.n_theta], layout)
    x = np.concatenate([theta, opt.x[layout.n_theta :]])
    theta_names = parameters.theta_names()
    singular = singular_terms(theta, theta_names, layout, control.singular_tol)
    check_fit(opt, x, H, search.names, search.edge, singular, control, search.what)
    pls, rel, cond, fitted, residual = compiled(bind(solution_at, layout=layout))(x, arrays)
    n, p = spec.X.shape
    sigma2 = float(pls.r2) / (n - p if reml else n)
    sigma = np.sqrt(sigma2)
    modes = split_by_term(np.asarray(pls.u), rel, layout)
    RX = np.asarray(pls.RX)
    vcov = sigma2 * np.linalg.inv(RX.T @ RX)
    n_params = p + layout.n_theta + 1 + len(residual_names)
    factors, modes, cond = user_terms(
        spec, [sigma * np.asarray(T) for T in rel], modes, [sigma2 * np.asarray(c) for c in cond]
    )
    return Estimate(
        method="REML" if reml else "ML",
        beta=np.asarray(pls.beta),
        vcov=vcov,
        theta=theta,
        factors=factors,
        aux=sigma,
        modes=modes,
        cond_cov=cond,
        fitted=np.asarray(fitted),
        loglik=-opt.fun / 2 + float(np.sum(np.asarray(arrays.log_norm))),  # lognormal: Jacobian
        objective=opt.fun,
        n_params=n_params,
        n_obs=n,
        opt=opt,
        singular=bool(singular),
        residual=dict(zip(residual_names, np.asarray(residual, dtype=float).tolist()))
        if residual_names
        else {},
    )
