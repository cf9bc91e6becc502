"""Laplace and adaptive Gauss-Hermite marginal likelihood for GLMMs (glmer's nAGQ).

With b = Lambda u, u ~ N(0, I), eta = X beta + Z Lambda u + offset, the penalised log joint
    h(u) = sum_i log p(y_i | eta_i) - ||u||^2 / 2
is maximised over u by penalised IRLS (Fisher scoring with step halving). With W the Fisher
weights at the mode u* (glmer's; the observed curvature for families that ask for it, as
glmmTMB) and L L' = Lambda' Z' W Z Lambda + I, the Laplace approximation gives
    -2 log L(beta, theta) ~= -2 sum_i log p(y_i | eta_i*) + ||u*||^2 + log|L|^2.
With nAGQ = 0 (`joint_deviance`) beta joins u in the penalised IRLS, and the deviance at that
joint mode is a function of theta alone, as glmer's.
For one scalar random-effect term the integral factorises over levels and adaptive
Gauss-Hermite quadrature with k nodes refines each 1-D integral (k = 1 is the Laplace value).
Gradients: u* is found without tracing, then one differentiable Newton step from u* gives
du*/d(beta, theta) exactly (the Newton map has zero Jacobian in u at its fixed point).
Prior weights w_i (glm's) multiply the log-likelihood terms and the Fisher weights.
Here theta holds the factor of Cov(b) itself: lme4's theta for GLMMs, sigma times it for
gaussian families (`fit_glmm` reports lme4's).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..families import Family, Link
from .cholesky import factor_penalised_gram, logdet, solve, solve_lower, solve_upper
from .structure import (
    ModelArrays,
    RandomEffectsLayout,
    covariance_factors,
    fixed_predictor,
    row_logliks,
    row_weights,
    sparse_crossprod,
    sparse_matvec,
    sparse_rmatvec,
    z_lambda_values,
)

PIRLS_MAX_ITER = 100
PIRLS_TOL = 1e-10


def _score_and_curvature(arrays: ModelArrays, eta, aux, family: Family, link: Link):
    """d log p / d eta and -d^2 log p / d eta^2, elementwise, by autodiff of the family's
    density."""

    def total(e):
        return jnp.sum(row_logliks(e, aux, arrays, family, link))

    score, curvature = jax.jvp(jax.grad(total), (eta,), (jnp.ones_like(eta),))
    return score, -curvature


def laplace_weights(eta, aux, arrays: ModelArrays, family: Family, link: Link):
    """W of the Laplace approximation: the Fisher weights (glmer's), or where the family asks
    for it (`Family.observed_curvature`) the observed -d^2 log p / d eta^2 (glmmTMB's)."""
    if family.observed_curvature:
        return _score_and_curvature(arrays, eta, aux, family, link)[1]
    return fisher_weights(eta, aux, arrays, family, link)


def fisher_weights(eta, aux, arrays: ModelArrays, family: Family, link: Link):
    """The rows' Fisher weights, times their prior weights."""
    aux = family.rows(aux, arrays)
    return row_weights(arrays) * family.fisher_weight(eta, aux, arrays.trials, link)


def _newton_direction(u, zl, eta, aux, arrays, layout, family, link, observed: bool):
    score, observed_w = _score_and_curvature(arrays, eta, aux, family, link)
    w = observed_w if observed else fisher_weights(eta, aux, arrays, family, link)
    gradient = sparse_rmatvec(arrays.z_idx, zl, score, layout.n_random) - u
    return solve(factor_penalised_gram(arrays, zl, w, layout), gradient)


def _scoring(x0, penalised, direction):
    """argmax_x of `penalised` by the steps `direction(x)` with step halving, and whether it
    converged. A step is accepted only where the objective is finite and not lower; a step that
    stays non-finite after halving ends the iteration unconverged, so a NaN never passes for a
    mode."""

    def body(state):
        x, _, it, _ = state
        delta = direction(x)
        base = penalised(x)

        def halve(s):
            return s[0] * 0.5, penalised(x + 0.5 * s[0] * delta)

        step, value = jax.lax.while_loop(
            lambda s: ((s[1] < base - 1e-12 * jnp.abs(base)) | ~jnp.isfinite(s[1])) & (s[0] > 1e-6),
            halve,
            (1.0, penalised(x + delta)),
        )
        ok = jnp.isfinite(value) & jnp.all(jnp.isfinite(delta))
        change = jnp.where(ok, jnp.max(jnp.abs(step * delta)), jnp.inf)
        return jnp.where(ok, x + step * delta, x), change, it + 1, ok

    x, change, _, ok = jax.lax.while_loop(
        lambda s: s[3] & ~(s[1] <= PIRLS_TOL) & (s[2] < PIRLS_MAX_ITER),
        body,
        (x0, jnp.asarray(jnp.inf, x0.dtype), 0, jnp.isfinite(penalised(x0))),
    )
    return x, ok & (change <= PIRLS_TOL)


def conditional_mode(
    beta, theta, aux, arrays: ModelArrays, layout: RandomEffectsLayout, family: Family, link: Link
):
    """u* = argmax_u h(u) by Fisher scoring with step halving (PIRLS), Newton's steps for the
    families whose Laplace curvature is the observed one; and whether it converged."""
    zl = z_lambda_values(arrays.z_val, covariance_factors(theta, layout), layout)
    eta0 = fixed_predictor(arrays, beta) + arrays.offset

    def penalised(u):
        eta = eta0 + sparse_matvec(arrays.z_idx, zl, u)
        return jnp.sum(row_logliks(eta, aux, arrays, family, link)) - 0.5 * u @ u

    def direction(u):
        eta = eta0 + sparse_matvec(arrays.z_idx, zl, u)
        scoring = _newton_direction(u, zl, eta, aux, arrays, layout, family, link, observed=False)
        if not family.observed_curvature:
            return scoring
        # Fisher scoring converges only linearly under a non-canonical link, and stalled
        # short of PIRLS_TOL (beta, probit, a vector term); Newton's step wherever the
        # observed penalised Hessian is positive definite (its Cholesky factor finite)
        newton = _newton_direction(u, zl, eta, aux, arrays, layout, family, link, observed=True)
        return jnp.where(jnp.all(jnp.isfinite(newton)), newton, scoring)

    return _scoring(jnp.zeros(layout.n_random, dtype=zl.dtype), penalised, direction)


def conditional_fit(
    beta, theta, aux, arrays: ModelArrays, layout: RandomEffectsLayout, family: Family, link: Link
):
    """u*, eta at u*, the factor L of A = Lambda'Z'WZ Lambda + I with W the weights at u*, and
    whether PIRLS converged."""
    u, converged = conditional_mode(beta, theta, aux, arrays, layout, family, link)
    zl = z_lambda_values(arrays.z_val, covariance_factors(theta, layout), layout)
    eta = fixed_predictor(arrays, beta) + arrays.offset + sparse_matvec(arrays.z_idx, zl, u)
    w = laplace_weights(eta, aux, arrays, family, link)
    return u, eta, factor_penalised_gram(arrays, zl, w, layout), converged


def _mode_with_gradient(beta, theta, aux, arrays, layout, family, link):
    """u* with exact derivatives in (beta, theta, aux): one traced Newton step from
    stop_gradient(u*);
    and whether PIRLS converged."""
    u_star, converged = jax.lax.stop_gradient(
        conditional_mode(beta, theta, aux, arrays, layout, family, link)
    )
    zl = z_lambda_values(arrays.z_val, covariance_factors(theta, layout), layout)
    eta = fixed_predictor(arrays, beta) + arrays.offset + sparse_matvec(arrays.z_idx, zl, u_star)
    u = u_star + _newton_direction(
        u_star, zl, eta, aux, arrays, layout, family, link, observed=True
    )
    return u, zl, converged


def laplace_deviance(
    beta,
    theta,
    aux,
    arrays: ModelArrays,
    layout: RandomEffectsLayout,
    family: Family,
    link: Link,
    nagq: int = 1,
):
    """-2 log L(beta, theta, aux) by Laplace (nagq = 1) or adaptive Gauss-Hermite quadrature;
    NaN where PIRLS did not converge (the optimisers treat it as +inf and back off)."""
    u, zl, converged = _mode_with_gradient(beta, theta, aux, arrays, layout, family, link)
    return jnp.where(
        converged,
        _approximate_deviance(u, zl, beta, aux, arrays, layout, family, link, nagq),
        jnp.nan,
    )


def _approximate_deviance(u, zl, beta, aux, arrays, layout, family, link, nagq):
    eta = fixed_predictor(arrays, beta) + arrays.offset + sparse_matvec(arrays.z_idx, zl, u)
    w = laplace_weights(eta, aux, arrays, family, link)
    q = layout.n_random
    if nagq == 1:
        loglik = jnp.sum(row_logliks(eta, aux, arrays, family, link))
        return -2 * loglik + u @ u + logdet(factor_penalised_gram(arrays, zl, w, layout))
    # one scalar term: level j of row i is z_idx[i, 0]; curvature h_j = 1 + sum_i w_i zl_i^2
    level, zcol = arrays.z_idx[:, 0], zl[:, 0]
    h = 1.0 + jnp.zeros(q, dtype=zl.dtype).at[level].add(w * zcol**2)
    scale = jnp.sqrt(2.0 / h)
    nodes, weights = np.polynomial.hermite.hermgauss(nagq)
    eta_fixed = fixed_predictor(arrays, beta) + arrays.offset
    u_nodes = u[None, :] + scale[None, :] * nodes[:, None]  # (k, q)
    eta_nodes = eta_fixed[None, :] + zcol[None, :] * u_nodes[:, level]  # (k, n)
    logp = row_logliks(eta_nodes, aux, arrays, family, link)
    f = jnp.zeros((nagq, q), dtype=zl.dtype).at[:, level].add(logp) - 0.5 * u_nodes**2
    log_integral = jax.nn.logsumexp(f + nodes[:, None] ** 2 + jnp.log(weights)[:, None], axis=0)
    loglik = jnp.sum(log_integral + jnp.log(scale) - 0.5 * jnp.log(2 * jnp.pi))
    return -2 * loglik


# ---- nAGQ = 0: beta inside PIRLS
def _joint_system(beta, u, zl, arrays: ModelArrays, layout, family, link, observed: bool):
    """The scoring step (dbeta, du) for h(beta, u) = sum_i log p(y_i | eta_i) - ||u||^2 / 2 and
    the Schur complement X'WX - R_ZX'R_ZX of its information (lme4's R_X'R_X). The
    information [[X'WX, X'W Z Lambda], [Lambda'Z'WX, L L']] is solved by blocks, L L' =
    Lambda'Z'WZ Lambda + I from the blocked factor."""
    eta = fixed_predictor(arrays, beta) + arrays.offset + sparse_matvec(arrays.z_idx, zl, u)
    score, observed_w = _score_and_curvature(arrays, eta, 1.0, family, link)
    w = (
        observed_w
        if observed
        else row_weights(arrays) * family.fisher_weight(eta, 1.0, arrays.trials, link)
    )
    X, q = arrays.X, layout.n_random
    L = factor_penalised_gram(arrays, zl, w, layout)
    RZX = solve_lower(L, sparse_crossprod(arrays.z_idx, zl, w[:, None] * X, q))
    cu = solve_lower(L, sparse_rmatvec(arrays.z_idx, zl, score, q) - u)
    schur = X.T @ (w[:, None] * X) - RZX.T @ RZX
    dbeta = jnp.linalg.solve(schur, X.T @ score - RZX.T @ cu)
    return dbeta, solve_upper(L, cu - RZX @ dbeta), schur


def joint_mode(theta, beta0, arrays: ModelArrays, layout: RandomEffectsLayout, family, link):
    """(beta*, u*) = argmax h(beta, u) by Fisher scoring with step halving from (beta0, 0),
    the Schur complement of the information there, and whether it converged."""
    zl = z_lambda_values(arrays.z_val, covariance_factors(theta, layout), layout)
    p = beta0.shape[0]

    def penalised(x):
        eta = fixed_predictor(arrays, x[:p]) + arrays.offset
        eta = eta + sparse_matvec(arrays.z_idx, zl, x[p:])
        return jnp.sum(row_logliks(eta, 1.0, arrays, family, link)) - 0.5 * x[p:] @ x[p:]

    def direction(x):
        dbeta, du, _ = _joint_system(x[:p], x[p:], zl, arrays, layout, family, link, False)
        return jnp.concatenate([dbeta, du])

    x0 = jnp.concatenate([beta0, jnp.zeros(layout.n_random, dtype=zl.dtype)])
    x, converged = _scoring(x0, penalised, direction)
    _, _, schur = _joint_system(x[:p], x[p:], zl, arrays, layout, family, link, False)
    return x[:p], x[p:], schur, converged


def joint_deviance(
    theta, beta0, arrays: ModelArrays, layout: RandomEffectsLayout, family: Family, link: Link
):
    """glmer's nAGQ = 0 criterion, a function of theta alone: the Laplace deviance
    -2 sum_i log p(y_i | eta_i*) + ||u*||^2 + log|L|^2 at the joint mode (beta*, u*) of h;
    exact derivatives in theta through one traced Newton step from the mode (as
    `_mode_with_gradient`); NaN where the scoring did not converge."""
    beta_s, u_s, _, converged = jax.lax.stop_gradient(
        joint_mode(theta, beta0, arrays, layout, family, link)
    )
    zl = z_lambda_values(arrays.z_val, covariance_factors(theta, layout), layout)
    dbeta, du, _ = _joint_system(beta_s, u_s, zl, arrays, layout, family, link, observed=True)
    beta, u = beta_s + dbeta, u_s + du
    deviance = _approximate_deviance(u, zl, beta, 1.0, arrays, layout, family, link, 1)
    return jnp.where(converged, deviance, jnp.nan)
