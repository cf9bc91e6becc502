"""REML and ML for Gaussian LMMs: lme4's profiled deviance over theta (Bates et al. 2015).

For fixed theta the penalised least squares problem
    min_{beta,u} ||y - X beta - Z Lambda_theta u||^2 + ||u||^2
is solved through the Cholesky factors
    L L' = Lambda' Z'Z Lambda + I,   R_X' R_X = X'X - R_ZX' R_ZX,   R_ZX = L^{-1} Lambda' Z'X,
and with r^2 the penalised residual sum of squares,
    ML:   d(theta)   = log|L|^2 + n (1 + log(2 pi r^2 / n))
    REML: d_R(theta) = log|L|^2 + log|R_X|^2 + (n - p)(1 + log(2 pi r^2 / (n - p))).
Both are pure JAX functions of (theta, arrays); the optimiser gets exact gradients.
With a residual structure (`core.residual`) the criterion is that of the whitened model
plus log|S C S|, and its argument is theta followed by the structure's free parameters.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import cho_solve

from ..control import Control
from ..core.checks import check_finite, check_fit, settle
from ..core.cholesky import (
    BlockCholesky,
    factor_penalised_gram,
    inverse_diagonal_blocks,
    logdet,
    solve_lower,
    solve_upper,
)
from ..core.compiled import bind, compiled
from ..core.estimate import Estimate
from ..core.optimize import minimize_with_edge_restart
from ..core.parameters import ParameterMap
from ..core.residual import whiten
from ..core.scaling import parameter_scales
from ..core.structure import (
    ModelArrays,
    RandomEffectsLayout,
    canonical_theta,
    conditional_covariances,
    covariance_factors,
    singular_terms,
    sparse_crossprod,
    sparse_matvec,
    sparse_rmatvec,
    split_by_term,
    user_terms,
    z_lambda_values,
)
from ..design import ModelSpec


class PlsSolution(NamedTuple):
    beta: jnp.ndarray
    u: jnp.ndarray
    residual: jnp.ndarray  # y - X beta - Z Lambda u - offset
    r2: jnp.ndarray  # penalised residual sum of squares
    logdet_L: jnp.ndarray  # log|L|^2
    logdet_RX: jnp.ndarray  # log|R_X|^2
    L: BlockCholesky
    RX: jnp.ndarray


def penalised_least_squares(theta, arrays: ModelArrays, layout: RandomEffectsLayout) -> PlsSolution:
    """Solve the PLS problem for fixed theta (beta is the GLS estimate)."""
    y = arrays.y - arrays.offset
    X, q = arrays.X, layout.n_random
    zl = z_lambda_values(arrays.z_val, covariance_factors(theta, layout), layout)
    L = factor_penalised_gram(arrays, zl, jnp.ones_like(y), layout)
    cu = solve_lower(L, sparse_rmatvec(arrays.z_idx, zl, y, q))
    RZX = solve_lower(L, sparse_crossprod(arrays.z_idx, zl, X, q))
    RX = jnp.linalg.cholesky(X.T @ X - RZX.T @ RZX).T
    beta = cho_solve((RX, False), X.T @ y - RZX.T @ cu)
    u = solve_upper(L, cu - RZX @ beta)
    resid = y - X @ beta - sparse_matvec(arrays.z_idx, zl, u)
    r2 = resid @ resid + u @ u
    return PlsSolution(
        beta, u, resid, r2, logdet(L), 2 * jnp.sum(jnp.log(jnp.abs(jnp.diag(RX)))), L, RX
    )


def split_criterion_argument(x, layout: RandomEffectsLayout):
    """The criterion's argument -> (theta, natural residual parameters or None)."""
    theta = x[: layout.n_theta]
    if layout.residual is None:
        return theta, None
    return theta, layout.residual.from_free(x[layout.n_theta :])


def profiled_deviance(x, arrays: ModelArrays, reml, layout: RandomEffectsLayout):
    """lme4's profiled deviance (ML) or REML criterion as a function of theta (and of the
    residual structure's free parameters after it). `reml` (a boolean, traced: REML and ML
    share one compiled criterion) adds log|R_X|^2 and takes n - p degrees of freedom."""
    theta, residual = split_criterion_argument(x, layout)
    arrays, logdet_R = whiten(residual, arrays, layout.residual)
    pls = penalised_least_squares(theta, arrays, layout)
    n, p = arrays.X.shape
    dof = jnp.where(reml, n - p, n)
    extra = jnp.where(reml, pls.logdet_RX, 0.0)
    return pls.logdet_L + extra + dof * (1 + jnp.log(2 * jnp.pi * pls.r2 / dof)) + logdet_R


def gaussian_deviance(
    beta, theta, sigma, arrays: ModelArrays, layout: RandomEffectsLayout, residual=None
):
    """-2 log L(beta, theta, sigma), exactly, for relative factor theta (and natural residual
    parameters): log|L|^2 + (r^2 + ||R_X (beta - beta_theta)||^2) / sigma^2 + n log(2 pi sigma^2)
    + log|S C S|."""
    arrays, logdet_R = whiten(residual, arrays, layout.residual)
    pls = penalised_least_squares(theta, arrays, layout)
    gap = pls.RX @ (beta - pls.beta)
    n = arrays.y.shape[0]
    return (
        pls.logdet_L
        + (pls.r2 + gap @ gap) / sigma**2
        + n * jnp.log(2 * jnp.pi * sigma**2)
        + logdet_R
    )


def solution_at(x, arrays: ModelArrays, layout: RandomEffectsLayout):
    """At the criterion's argument x: the PLS solution, the relative factors Lambda_k, the
    conditional covariances of b_k / sigma^2, the fitted values and the residual structure's
    natural parameters (one compiled call, not a string of small eager ones)."""
    theta, residual = split_criterion_argument(x, layout)
    whitened, _ = whiten(residual, arrays, layout.residual)
    pls = penalised_least_squares(theta, whitened, layout)
    rel = covariance_factors(theta, layout)
    cond = conditional_covariances(inverse_diagonal_blocks(pls.L, layout), rel)
    zl = z_lambda_values(arrays.z_val, rel, layout)
    fitted = arrays.X @ pls.beta + sparse_matvec(arrays.z_idx, zl, pls.u) + arrays.offset
    return pls, rel, cond, fitted, residual


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
    what = "REML fit" if reml else "ML fit"
    objective, args = bind(profiled_deviance, layout=layout), (arrays, np.bool_(reml))
    residual_names = layout.residual.names if layout.residual else ()
    x0 = np.concatenate(
        [layout.theta_initial()]
        + (
            [np.asarray(layout.residual.to_free(layout.residual.initial()))]
            if layout.residual
            else []
        )
    )
    edge = np.concatenate([layout.diagonal_mask(), np.zeros(len(residual_names), bool)])
    scale = np.concatenate([parameter_scales(spec).theta, np.ones(len(residual_names))])
    opt = minimize_with_edge_restart(
        objective,
        x0,
        edge,
        args=args,
        scale=scale,
        max_iter=control.max_iter,
        restart=control.restart_edge,
    )
    check_finite(opt, what)
    theta_names = parameters.theta_names()
    names = theta_names + [f"free({name})" for name in residual_names]
    opt, H = settle(objective, opt, args, names, control, edge, scale)
    theta = canonical_theta(opt.x[: layout.n_theta], layout)
    x = np.concatenate([theta, opt.x[layout.n_theta :]])
    singular = singular_terms(theta, theta_names, layout, control.singular_tol)
    check_fit(opt, x, H, names, edge, singular, control, what)
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
        loglik=-opt.fun / 2,
        objective=opt.fun,
        n_params=n_params,
        n_obs=n,
        opt=opt,
        singular=bool(singular),
        residual=dict(zip(residual_names, np.asarray(residual, dtype=float).tolist()))
        if residual_names
        else {},
    )
