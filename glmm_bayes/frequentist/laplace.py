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
Prior weights w_i (glm's) multiply the log-likelihood terms and the Fisher weights.
Here theta holds the factor of Cov(b) itself: lme4's theta for GLMMs, sigma times it for
gaussian families (`fit_glmm` reports lme4's).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..control import Control
from ..core.checks import check_finite, check_fit, settle
from ..core.cholesky import factor_penalised_gram, inverse_diagonal_blocks, logdet, solve
from ..core.compiled import bind, compiled
from ..core.estimate import Estimate
from ..core.optimize import minimize_with_edge_restart
from ..core.parameters import ParameterMap
from ..core.scaling import constant_start, glm_start, parameter_scales
from ..core.structure import (
    ModelArrays,
    RandomEffectsLayout,
    canonical_theta,
    conditional_covariances,
    covariance_factors,
    fixed_predictor,
    row_logliks,
    row_weights,
    singular_terms,
    sparse_matvec,
    sparse_rmatvec,
    split_by_term,
    user_terms,
    z_lambda_values,
)
from ..design import ModelSpec
from ..errors import ConvergenceWarning, ModelError
from ..families import Family, Link
from .separation import warn_separation

PIRLS_MAX_ITER = 100
PIRLS_TOL = 1e-10


def _score_and_curvature(arrays: ModelArrays, eta, aux, family: Family, link: Link):
    """d log p / d eta and -d^2 log p / d eta^2, elementwise, by autodiff of the family's
    density."""

    def total(e):
        return jnp.sum(row_logliks(e, aux, arrays, family, link))

    score, curvature = jax.jvp(jax.grad(total), (eta,), (jnp.ones_like(eta),))
    return score, -curvature


def _newton_direction(u, zl, eta, aux, arrays, layout, family, link, observed: bool):
    score, observed_w = _score_and_curvature(arrays, eta, aux, family, link)
    w = (
        observed_w
        if observed
        else row_weights(arrays) * family.fisher_weight(eta, aux, arrays.trials, link)
    )
    gradient = sparse_rmatvec(arrays.z_idx, zl, score, layout.n_random) - u
    return solve(factor_penalised_gram(arrays, zl, w, layout), gradient)


def conditional_mode(
    beta, theta, aux, arrays: ModelArrays, layout: RandomEffectsLayout, family: Family, link: Link
):
    """u* = argmax_u h(u) by Fisher scoring with step halving (PIRLS), and whether it converged.

    A step is accepted only where h is finite and not lower; a step that stays non-finite after
    halving ends the iteration unconverged, so a NaN never passes for a mode.
    """
    zl = z_lambda_values(arrays.z_val, covariance_factors(theta, layout), layout)
    eta0 = fixed_predictor(arrays, beta) + arrays.offset

    def penalised(u):
        eta = eta0 + sparse_matvec(arrays.z_idx, zl, u)
        return jnp.sum(row_logliks(eta, aux, arrays, family, link)) - 0.5 * u @ u

    def body(state):
        u, _, it, _ = state
        eta = eta0 + sparse_matvec(arrays.z_idx, zl, u)
        delta = _newton_direction(u, zl, eta, aux, arrays, layout, family, link, observed=False)
        base = penalised(u)

        def halve(s):
            return s[0] * 0.5, penalised(u + 0.5 * s[0] * delta)

        step, value = jax.lax.while_loop(
            lambda s: ((s[1] < base - 1e-12 * jnp.abs(base)) | ~jnp.isfinite(s[1])) & (s[0] > 1e-6),
            halve,
            (1.0, penalised(u + delta)),
        )
        ok = jnp.isfinite(value) & jnp.all(jnp.isfinite(delta))
        change = jnp.where(ok, jnp.max(jnp.abs(step * delta)), jnp.inf)
        return jnp.where(ok, u + step * delta, u), change, it + 1, ok

    u0 = jnp.zeros(layout.n_random, dtype=zl.dtype)
    u, change, _, ok = jax.lax.while_loop(
        lambda s: s[3] & ~(s[1] <= PIRLS_TOL) & (s[2] < PIRLS_MAX_ITER),
        body,
        (u0, jnp.asarray(jnp.inf, zl.dtype), 0, jnp.isfinite(penalised(u0))),
    )
    return u, ok & (change <= PIRLS_TOL)


def conditional_fit(
    beta, theta, aux, arrays: ModelArrays, layout: RandomEffectsLayout, family: Family, link: Link
):
    """u*, eta at u*, the factor L of A = Lambda'Z'WZ Lambda + I with W the weights at u*, and
    whether PIRLS converged."""
    u, converged = conditional_mode(beta, theta, aux, arrays, layout, family, link)
    zl = z_lambda_values(arrays.z_val, covariance_factors(theta, layout), layout)
    eta = fixed_predictor(arrays, beta) + arrays.offset + sparse_matvec(arrays.z_idx, zl, u)
    w = row_weights(arrays) * family.fisher_weight(eta, aux, arrays.trials, link)
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
    w = row_weights(arrays) * family.fisher_weight(eta, aux, arrays.trials, link)
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


def _unpack(x, p: int, n_theta: int, has_aux: bool):
    beta, theta = x[:p], x[p : p + n_theta]
    aux = jnp.exp(x[p + n_theta]) if has_aux else 1.0
    return beta, theta, aux


def _objective(x, arrays, layout, family, link, nagq, p, has_aux):
    """The deviance over x = (beta, theta, log aux), theta lme4's: relative to sigma for gaussian
    families (T_k = sigma theta_k), the absolute factor otherwise."""
    beta, theta, aux = _unpack(x, p, layout.n_theta, has_aux)
    absolute = theta * aux if family.residual_sd else theta
    return laplace_deviance(beta, absolute, aux, arrays, layout, family, link, nagq)


def _finite_start(objective, x0, beta_constant, arrays) -> np.ndarray:
    """The GLM start, with beta moved halfway towards `beta_constant` (a constant linear
    predictor) until the deviance is finite there: with separated data the GLM's estimates
    run off towards infinity, and with an inverse link they can give eta < 0 in some rows."""
    value = compiled(objective)
    p = beta_constant.size
    x = np.array(x0)
    for _ in range(40):
        if np.isfinite(float(value(x, arrays))):
            return x
        x[:p] = beta_constant + 0.5 * (x[:p] - beta_constant)
    x[:p] = beta_constant
    return x


def check_nagq(spec: ModelSpec, nagq: int) -> None:
    if isinstance(nagq, bool) or not isinstance(nagq, (int, np.integer)) or nagq < 1:
        raise ModelError(f"nagq must be a positive integer, got {nagq!r}")
    if nagq > 1 and (len(spec.terms) != 1 or spec.terms[0].q != 1):
        raise ModelError(
            f"nagq={nagq} needs exactly one scalar random-effect term such as "
            f"(1 | g); this model has {', '.join(t.label + str(list(t.names)) for t in spec.terms)}"
        )


def fit_glmm(
    spec: ModelSpec,
    parameters: ParameterMap,
    layout: RandomEffectsLayout,
    arrays: ModelArrays,
    nagq: int = 1,
    control: Control | None = None,
) -> Estimate:
    """Maximise the Laplace / AGQ likelihood jointly over (beta, theta, log aux), as glmer,
    from a GLM fit, in coordinates scaled to the data; then check the optimum."""
    control = control or Control()
    check_nagq(spec, nagq)
    nagq = int(nagq)
    what = "Laplace fit" if nagq == 1 else f"AGQ({nagq}) fit"
    warn_separation(spec, control, what)
    family, link = spec.family, spec.link
    has_aux = family.aux_name is not None
    p = spec.X.shape[1]
    beta0, aux0 = glm_start(spec)
    x0 = np.concatenate([beta0, layout.theta_initial(), [np.log(aux0)] if has_aux else []])
    scales = parameter_scales(spec)
    scale = np.concatenate([scales.beta, scales.theta, [1.0] if has_aux else []])
    edge = np.concatenate([np.zeros(p, bool), layout.diagonal_mask(), np.zeros(int(has_aux), bool)])
    objective = bind(
        _objective, layout=layout, family=family, link=link, nagq=nagq, p=p, has_aux=has_aux
    )
    x0 = _finite_start(objective, x0, constant_start(spec), arrays)
    opt = minimize_with_edge_restart(
        objective,
        x0,
        edge,
        args=(arrays,),
        scale=scale,
        max_iter=control.max_iter,
        restart=control.restart_edge,
    )
    check_finite(opt, what)
    theta_names = parameters.theta_names()
    names = list(parameters.fixed_names) + theta_names + ([parameters.aux] if has_aux else [])
    # vcov(beta) from the Hessian of the deviance in (beta, theta), as lme4's use.hessian = TRUE
    # (signing theta's columns below flips rows and columns of H outside beta's block)
    opt, H = settle(objective, opt, (arrays,), names, control, edge, scale)
    beta, theta, aux = _unpack(opt.x, p, layout.n_theta, has_aux)
    theta = canonical_theta(theta, layout)
    x = np.concatenate([beta, theta, opt.x[p + layout.n_theta :]])
    singular = singular_terms(theta, theta_names, layout, control.singular_tol)
    free = check_fit(opt, x, H, names, edge, singular, control, what)
    # invert in the scaled coordinates, where the blocks of H are of comparable size
    D = scale[free]
    vcov = (2 * D[:, None] * np.linalg.pinv(H[np.ix_(free, free)] * np.outer(D, D)) * D[None, :])[
        :p, :p
    ]

    absolute = theta * float(aux) if family.residual_sd else theta
    u, eta, chol, converged = compiled(
        bind(conditional_fit, layout=layout, family=family, link=link)
    )(beta, jnp.asarray(absolute), aux, arrays)
    if not bool(converged):
        control.report(
            "convergence",
            ConvergenceWarning,
            f"{what}: PIRLS did not converge to the conditional modes at the estimate "
            f"(tolerance {PIRLS_TOL}, {PIRLS_MAX_ITER} iterations)",
        )
    factors = covariance_factors(jnp.asarray(absolute), layout)
    cond = conditional_covariances(inverse_diagonal_blocks(chol, layout), factors)
    factors, modes, cond = user_terms(
        spec, factors, split_by_term(np.asarray(u), factors, layout), cond
    )
    return Estimate(
        method="Laplace" if nagq == 1 else f"AGQ({nagq})",
        beta=np.asarray(beta),
        vcov=vcov,
        theta=np.asarray(theta),
        factors=[np.asarray(T) for T in factors],
        aux=float(aux) if has_aux else None,
        modes=modes,
        cond_cov=[np.asarray(c) for c in cond],
        fitted=np.asarray(link.inverse(eta)),
        loglik=-opt.fun / 2,
        objective=opt.fun,
        n_params=len(x),
        n_obs=spec.n_obs,
        opt=opt,
        singular=bool(singular),
        nagq=nagq,
    )
