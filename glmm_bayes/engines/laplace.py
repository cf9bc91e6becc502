"""Laplace and adaptive Gauss-Hermite marginal likelihood for GLMMs (glmer's nAGQ).

With b = Lambda u, u ~ N(0, I), eta = X beta + Z Lambda u + offset, the penalised log joint
    h(u) = sum_i log p(y_i | eta_i) - ||u||^2 / 2
is maximised over u by penalised IRLS (Fisher scoring with step halving). With W the Fisher
weights at the mode u* and L L' = Lambda' Z' W Z Lambda + I, the Laplace approximation gives
    -2 log L(beta, theta) ~= -2 sum_i log p(y_i | eta_i*) + ||u*||^2 + log|L|^2.
For one scalar random-effect term the integral factorises over levels and adaptive
Gauss-Hermite quadrature with k nodes refines each 1-D integral (k = 1 is the Laplace value).
Gradients: u* is found without tracing, then one differentiable Newton step from u* gives
du*/d(beta, theta) exactly (the Newton map has zero Jacobian in u at its fixed point).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ModelError
from ..families import Family, Link
from ..spec import ModelSpec
from .cholesky import factor_penalised_gram, inverse_diagonal_blocks, logdet, solve
from .estimate import Estimate
from .optimize import hessian_fd, minimize_jax
from .reml import is_singular
from .structure import (ModelArrays, RandomEffectsLayout, conditional_covariances,
                        covariance_factors, model_arrays, sparse_matvec, sparse_rmatvec,
                        split_by_term, z_lambda_values)

PIRLS_MAX_ITER = 100
PIRLS_TOL = 1e-10


def _score_and_curvature(arrays: ModelArrays, eta, aux, family: Family, link: Link):
    """d log p / d eta and -d^2 log p / d eta^2, elementwise, by autodiff of the family's density."""
    def total(e):
        return jnp.sum(family.logpdf(arrays.y, e, aux, arrays.trials, link))
    score, curvature = jax.jvp(jax.grad(total), (eta,), (jnp.ones_like(eta),))
    return score, -curvature


def _newton_direction(u, zl, eta, aux, arrays, layout, family, link, observed: bool):
    score, observed_w = _score_and_curvature(arrays, eta, aux, family, link)
    w = observed_w if observed else family.fisher_weight(eta, aux, arrays.trials, link)
    gradient = sparse_rmatvec(arrays.z_idx, zl, score, layout.n_random) - u
    return solve(factor_penalised_gram(arrays.z_idx, zl, w, layout), gradient)


def conditional_mode(beta, theta, aux, arrays: ModelArrays, layout: RandomEffectsLayout,
                     family: Family, link: Link):
    """u* = argmax_u h(u) by Fisher scoring with step halving (PIRLS)."""
    zl = z_lambda_values(arrays.z_val, covariance_factors(theta, layout), layout)
    eta0 = arrays.X @ beta + arrays.offset

    def penalised(u):
        eta = eta0 + sparse_matvec(arrays.z_idx, zl, u)
        return jnp.sum(family.logpdf(arrays.y, eta, aux, arrays.trials, link)) - 0.5 * u @ u

    def body(state):
        u, _, it = state
        eta = eta0 + sparse_matvec(arrays.z_idx, zl, u)
        delta = _newton_direction(u, zl, eta, aux, arrays, layout, family, link, observed=False)
        base = penalised(u)

        def halve(s):
            return s[0] * 0.5, penalised(u + 0.5 * s[0] * delta)

        step, _ = jax.lax.while_loop(
            lambda s: ((s[1] < base - 1e-12 * jnp.abs(base)) | ~jnp.isfinite(s[1])) & (s[0] > 1e-6),
            halve, (1.0, penalised(u + delta)))
        return u + step * delta, jnp.max(jnp.abs(step * delta)), it + 1

    u0 = jnp.zeros(layout.n_random, dtype=zl.dtype)
    u, _, _ = jax.lax.while_loop(lambda s: (s[1] > PIRLS_TOL) & (s[2] < PIRLS_MAX_ITER),
                                 body, (u0, jnp.inf, 0))
    return u


def conditional_fit(beta, theta, aux, arrays: ModelArrays, layout: RandomEffectsLayout,
                    family: Family, link: Link):
    """u*, eta at u*, and the factor L of A = Lambda'Z'WZ Lambda + I with W the weights at u*."""
    u = conditional_mode(beta, theta, aux, arrays, layout, family, link)
    zl = z_lambda_values(arrays.z_val, covariance_factors(theta, layout), layout)
    eta = arrays.X @ beta + arrays.offset + sparse_matvec(arrays.z_idx, zl, u)
    w = family.fisher_weight(eta, aux, arrays.trials, link)
    return u, eta, factor_penalised_gram(arrays.z_idx, zl, w, layout)


def _mode_with_gradient(beta, theta, aux, arrays, layout, family, link):
    """u* with exact derivatives in (beta, theta, aux): one traced Newton step from stop_gradient(u*)."""
    u_star = jax.lax.stop_gradient(conditional_mode(beta, theta, aux, arrays, layout, family, link))
    zl = z_lambda_values(arrays.z_val, covariance_factors(theta, layout), layout)
    eta = arrays.X @ beta + arrays.offset + sparse_matvec(arrays.z_idx, zl, u_star)
    u = u_star + _newton_direction(u_star, zl, eta, aux, arrays, layout, family, link, observed=True)
    return u, zl


def laplace_deviance(beta, theta, aux, arrays: ModelArrays, layout: RandomEffectsLayout,
                     family: Family, link: Link, nagq: int = 1):
    """-2 log L(beta, theta, aux) by Laplace (nagq = 1) or adaptive Gauss-Hermite quadrature."""
    u, zl = _mode_with_gradient(beta, theta, aux, arrays, layout, family, link)
    eta = arrays.X @ beta + arrays.offset + sparse_matvec(arrays.z_idx, zl, u)
    w = family.fisher_weight(eta, aux, arrays.trials, link)
    q = layout.n_random
    if nagq == 1:
        loglik = jnp.sum(family.logpdf(arrays.y, eta, aux, arrays.trials, link))
        return -2 * loglik + u @ u + logdet(factor_penalised_gram(arrays.z_idx, zl, w, layout))
    # one scalar term: level j of row i is z_idx[i, 0]; curvature h_j = 1 + sum_i w_i zl_i^2
    level, zcol = arrays.z_idx[:, 0], zl[:, 0]
    h = 1.0 + jnp.zeros(q, dtype=zl.dtype).at[level].add(w * zcol ** 2)
    scale = jnp.sqrt(2.0 / h)
    nodes, weights = np.polynomial.hermite.hermgauss(nagq)
    eta_fixed = arrays.X @ beta + arrays.offset
    u_nodes = u[None, :] + scale[None, :] * nodes[:, None]                 # (k, q)
    eta_nodes = eta_fixed[None, :] + zcol[None, :] * u_nodes[:, level]      # (k, n)
    logp = family.logpdf(arrays.y[None, :], eta_nodes, aux, arrays.trials[None, :], link)
    f = jnp.zeros((nagq, q), dtype=zl.dtype).at[:, level].add(logp) - 0.5 * u_nodes ** 2
    log_integral = jax.nn.logsumexp(f + nodes[:, None] ** 2 + jnp.log(weights)[:, None], axis=0)
    loglik = jnp.sum(log_integral + jnp.log(scale) - 0.5 * jnp.log(2 * jnp.pi))
    return -2 * loglik


def _unpack(x, p: int, n_theta: int, has_aux: bool):
    beta, theta = x[:p], x[p:p + n_theta]
    aux = jnp.exp(x[p + n_theta]) if has_aux else 1.0
    return beta, theta, aux


def _objective(x, arrays, layout, family, link, nagq, p, has_aux):
    beta, theta, aux = _unpack(x, p, layout.n_theta, has_aux)
    return laplace_deviance(beta, theta, aux, arrays, layout, family, link, nagq)


def _glm_start(spec: ModelSpec) -> np.ndarray:
    """Starting beta: least squares of the linked, slightly shrunk response on X."""
    mean = (spec.y + 0.5) / (spec.trials + 1.0) if spec.family.uses_trials else spec.y
    if spec.link.name == "log":
        mean = np.maximum(mean, 0.1)
    target = np.asarray(spec.link.link(mean)) - spec.offset
    return np.linalg.lstsq(spec.X, target, rcond=None)[0]


def check_nagq(spec: ModelSpec, nagq: int) -> None:
    if not isinstance(nagq, int) or nagq < 1:
        raise ModelError(f"nagq must be a positive integer, got {nagq!r}")
    if nagq > 1 and (len(spec.terms) != 1 or spec.terms[0].q != 1):
        raise ModelError(f"nagq={nagq} needs exactly one scalar random-effect term such as "
                         f"(1 | g); this model has {', '.join(t.label + str(list(t.names)) for t in spec.terms)}")


def fit_glmm(spec: ModelSpec, nagq: int = 1) -> Estimate:
    """Maximise the Laplace / AGQ likelihood jointly over (beta, theta, log aux), as glmer."""
    check_nagq(spec, nagq)
    layout = RandomEffectsLayout.from_spec(spec)
    arrays = model_arrays(spec, layout)
    family, link = spec.family, spec.link
    has_aux = family.aux_name is not None
    p = spec.X.shape[1]
    x0 = np.concatenate([_glm_start(spec), layout.theta_initial(),
                         [np.log(np.std(spec.y))] if has_aux else []])
    lower = np.concatenate([np.full(p, -np.inf), layout.theta_lower_bounds(),
                            [-np.inf] if has_aux else []])
    objective = partial(_objective, layout=layout, family=family, link=link, nagq=nagq, p=p,
                        has_aux=has_aux)
    result = minimize_jax(objective, x0, args=(arrays,), lower=lower)
    x = np.asarray(result.x)
    beta, theta, aux = _unpack(x, p, layout.n_theta, has_aux)
    # vcov(beta) from the Hessian of the deviance in (beta, theta), as lme4's use.hessian = TRUE
    H = hessian_fd(objective, x, args=(arrays,))
    vcov = 2 * np.linalg.pinv(H)[:p, :p]

    u, eta, chol = jax.jit(conditional_fit, static_argnums=(4, 5, 6))(
        beta, theta, aux, arrays, layout, family, link)
    factors = covariance_factors(jnp.asarray(theta), layout)
    cond = conditional_covariances(inverse_diagonal_blocks(chol, layout), factors)
    modes = split_by_term(np.asarray(u), factors, layout)
    deviance = float(result.fun)
    return Estimate(
        method="Laplace" if nagq == 1 else f"AGQ({nagq})", beta=np.asarray(beta), vcov=vcov,
        theta=np.asarray(theta), factors=[np.asarray(T) for T in factors],
        aux=float(aux) if has_aux else None, modes=modes, cond_cov=[np.asarray(c) for c in cond],
        fitted=np.asarray(link.inverse(eta)),
        loglik=-deviance / 2, objective=deviance, n_params=len(x), n_obs=spec.n_obs,
        converged=bool(result.success), message=str(result.message),
        singular=is_singular(theta, layout), nagq=nagq)
