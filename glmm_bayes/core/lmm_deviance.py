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
from jax.scipy.linalg import cho_solve

from .cholesky import (
    BlockCholesky,
    factor_penalised_gram,
    inverse_diagonal_blocks,
    logdet,
    solve_lower,
    solve_upper,
)
from .residual import whiten
from .structure import (
    ModelArrays,
    RandomEffectsLayout,
    conditional_covariances,
    covariance_factors,
    sparse_crossprod,
    sparse_matvec,
    sparse_rmatvec,
    z_lambda_values,
)


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
