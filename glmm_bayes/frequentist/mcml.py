"""Monte Carlo maximum likelihood (Geyer and Thompson 1992; the `glmm` package's method).

With b ~ N(0, Sigma_sd) (scalar terms: one variance per term) the likelihood is
L(beta, sd) = E_q[ p(y | beta, b) p(b | sd) / q(b) ] for any density q of b. Draw b_1..b_m once
from q, a multivariate t with 5 degrees of freedom centred at the Laplace fit's conditional
modes b* with the Laplace conditional covariance Lambda A^{-1} Lambda (heavy tails, so the
weights stay bounded as the parameters move), and maximise the Monte Carlo estimate

    log L_m(beta, sd) = logsumexp_k [ log p(y | beta, b_k) + log p(b_k | sd) - log q(b_k) ] - log m

over (beta, log sd) with these draws held fixed, from the Laplace estimates; then draw again
from the proposal centred at that maximum (nearer the target there: more effective draws) and
maximise again. Standard errors
come from its Hessian H; the Monte Carlo error of the estimates from the sandwich
H^-1 V H^-1, V the Monte Carlo variance of the gradient of log L_m: with w_k the normalised
weights and g_k each draw's gradient, V = sum_k w_k^2 (g_k - g)(g_k - g)', g = sum_k w_k g_k.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import gammaln

from ..core.compiled import bind, compiled
from ..core.glmm_deviance import conditional_fit, laplace_weights
from ..core.optimize import minimize_jax
from ..core.structure import (
    ModelArrays,
    RandomEffectsLayout,
    covariance_factors,
    fixed_predictor,
    row_logliks,
    sparse_matvec,
    z_lambda_values,
)
from ..errors import FitError, ModelError

PROPOSAL_DF = 5.0  # degrees of freedom of the t proposal
PROPOSAL_ROUNDS = 2  # the second proposal is centred at the first round's maximum
MIN_EFFECTIVE_DRAWS = 200  # fewer effective draws at the maximum: the fit is refused
DRAW_CHUNK = 2048  # draws of b whose rows are evaluated together
MAX_RANDOM = 2000  # the proposal's dense covariance is q x q


def term_of_effect(layout: RandomEffectsLayout) -> np.ndarray:
    """For each entry of b, the index of its (scalar) term in `layout.terms`."""
    index = np.empty(layout.n_random, dtype=np.int32)
    for k, t in enumerate(layout.terms):
        index[t.start : t.start + t.n_levels] = k
    return index


def _proposal(beta, theta, aux, arrays: ModelArrays, layout, family, link):
    """b* and the Cholesky factor of Lambda A^{-1} Lambda at the Laplace fit (dense, q x q)."""
    u, eta, _, converged = conditional_fit(beta, theta, aux, arrays, layout, family, link)
    zl = z_lambda_values(arrays.z_val, covariance_factors(theta, layout), layout)
    n, q = arrays.z_idx.shape[0], layout.n_random
    dense = jnp.zeros((n, q), zl.dtype).at[jnp.arange(n)[:, None], arrays.z_idx].add(zl)
    w = laplace_weights(eta, aux, arrays, family, link)
    precision = jnp.eye(q, dtype=zl.dtype) + dense.T @ (w[:, None] * dense)
    scale = jnp.stack([f[0, 0] for f in covariance_factors(theta, layout)])[term_of_effect(layout)]
    covariance = scale[:, None] * jnp.linalg.inv(precision) * scale[None, :]
    return scale * u, jnp.linalg.cholesky(covariance), converged


def _draw_log_terms(x, b, log_q, arrays: ModelArrays, layout, family, link, p: int):
    """log p(y | beta, b_k) + log p(b_k | sd) - log q(b_k) for each draw k (rows of b)."""
    beta, log_sd = x[:p], x[p:]
    sd = jnp.exp(log_sd)[term_of_effect(layout)]
    eta = fixed_predictor(arrays, beta) + arrays.offset

    def loglik(bk):
        eta_k = eta + sparse_matvec(arrays.z_idx, arrays.z_val, bk)
        return jnp.sum(row_logliks(eta_k, 1.0, arrays, family, link))

    prior = -0.5 * jnp.sum((b / sd) ** 2, axis=1) - jnp.sum(jnp.log(sd))
    prior = prior - 0.5 * b.shape[1] * jnp.log(2 * jnp.pi)
    rows = jax.vmap(loglik)(b)
    return rows + prior - log_q


def _chunks(b, log_q):
    m = b.shape[0]
    return b.reshape(m // DRAW_CHUNK, DRAW_CHUNK, -1), log_q.reshape(m // DRAW_CHUNK, DRAW_CHUNK)


def _negative_log_likelihood(x, b, log_q, arrays, *, layout, family, link, p):
    """-log L_m(beta, log sd), the draws evaluated a chunk at a time."""

    def chunk(args):
        terms = _draw_log_terms(x, *args, arrays, layout, family, link, p)
        return jax.nn.logsumexp(terms)

    per_chunk = jax.lax.map(chunk, _chunks(b, log_q))
    return -(jax.nn.logsumexp(per_chunk) - jnp.log(b.shape[0]))


def _per_draw(x, b, log_q, arrays, *, layout, family, link, p):
    """Each draw's log term and its gradient in x (forward mode: x is short)."""

    def terms(x):
        return jax.lax.map(
            lambda args: _draw_log_terms(x, *args, arrays, layout, family, link, p),
            _chunks(b, log_q),
        ).reshape(-1)

    value, along = jax.linearize(terms, x)
    return value, jax.vmap(along)(jnp.eye(x.size, dtype=x.dtype)).T


def _hessian(x, b, log_q, arrays, *, layout, family, link, p):
    static = dict(layout=layout, family=family, link=link, p=p)
    return jax.hessian(lambda v: _negative_log_likelihood(v, b, log_q, arrays, **static))(x)


def fit_mcml(spec, layout: RandomEffectsLayout, arrays: ModelArrays, laplace, m: int, seed: int):
    """(the optimiser's record, whose x = (beta, log sd) is the maximum; its covariance H^-1;
    the Monte Carlo covariance of x; the effective number of draws at the maximum; the number
    of draws, m rounded up to whole chunks). `laplace`: the
    Laplace `Estimate` that centres the proposal and starts the search."""
    if any(t.q != 1 or t.isotropic for t in layout.terms) or layout.residual is not None:
        raise ModelError(
            "fit_mcml takes scalar random-effect terms, such as (1 | g), without residual "
            "structure (the glmm package's variance components)"
        )
    if spec.family.aux or spec.zi is not None:
        raise ModelError(
            "fit_mcml applies to families without a dispersion parameter or zero inflation "
            f"(bernoulli, binomial, poisson); this model is {spec.family.name}"
            + (" with zero inflation" if spec.zi is not None else "")
        )
    if layout.n_random > MAX_RANDOM:
        raise ModelError(f"fit_mcml's proposal is dense: at most {MAX_RANDOM} random effects")
    static = dict(layout=layout, family=spec.family, link=spec.link)
    p = np.asarray(laplace.beta).size
    x = np.concatenate(
        [np.asarray(laplace.beta), np.log(np.abs([float(np.ravel(T)[0]) for T in laplace.factors]))]
    )
    rng = np.random.default_rng(seed)
    objective = bind(_negative_log_likelihood, **static, p=p)
    per_draw = compiled(bind(_per_draw, **static, p=p))
    for _ in range(PROPOSAL_ROUNDS):
        b, log_q = _proposal_draws(x, p, -(-m // DRAW_CHUNK) * DRAW_CHUNK, rng, arrays, static)
        _effective_draws(np.asarray(per_draw(x, b, log_q, arrays)[0]), "at its centre")
        opt = minimize_jax(objective, x, args=(b, log_q, arrays))
        if not np.isfinite(opt.fun):
            raise FitError("fit_mcml: the Monte Carlo likelihood is not finite at its optimum")
        x = opt.x
    H = np.asarray(compiled(bind(_hessian, **static, p=p))(x, b, log_q, arrays))
    values, gradients = (np.asarray(a) for a in per_draw(x, b, log_q, arrays))
    w, ess = _effective_draws(values, "at the maximum")
    centred = gradients - w @ gradients
    V = (centred * w[:, None] ** 2).T @ centred
    covariance = np.linalg.inv(H)
    return opt, covariance, covariance @ V @ covariance, ess, len(b)


def _effective_draws(log_terms: np.ndarray, where: str) -> tuple[np.ndarray, float]:
    """The normalised importance weights and their effective number 1 / sum w^2; a FitError
    where it is below MIN_EFFECTIVE_DRAWS (the weights collapsed)."""
    w = np.exp(log_terms - log_terms.max())
    w /= w.sum()
    ess = 1.0 / np.sum(w**2)
    if not ess >= MIN_EFFECTIVE_DRAWS:
        raise FitError(
            f"fit_mcml: the importance weights collapsed ({ess:.0f} effective draws of "
            f"{len(w):,} {where}): the t proposal at the Laplace modes does not cover the "
            "conditional distribution of b (Laplace is poor here); raise m, or use "
            "fit_laplace(nagq=...) for one scalar term"
        )
    return w, ess


def _proposal_draws(x, p: int, m: int, rng, arrays, static):
    """m draws of b from the t proposal centred at the conditional modes at x = (beta, log sd),
    and log q of each."""
    theta = np.exp(x[p:])
    centre, chol, converged = (
        np.asarray(a) for a in compiled(bind(_proposal, **static))(x[:p], theta, 1.0, arrays)
    )
    if not converged:
        raise FitError("fit_mcml: the conditional modes that centre the proposal did not converge")
    z = rng.standard_normal((m, centre.size))
    shrink = np.sqrt(rng.chisquare(PROPOSAL_DF, m) / PROPOSAL_DF)
    b = centre + (z @ chol.T) / shrink[:, None]
    return b, _t_log_density(np.sum(z**2, axis=1) / shrink**2, centre.size, chol)


def _t_log_density(mahalanobis, q: int, chol) -> np.ndarray:
    """log density of a q-variate t(PROPOSAL_DF) with scale chol chol' at points whose
    squared Mahalanobis distance is `mahalanobis`."""
    nu = PROPOSAL_DF
    return (
        gammaln((nu + q) / 2)
        - gammaln(nu / 2)
        - 0.5 * q * np.log(nu * np.pi)
        - np.sum(np.log(np.diag(chol)))
        - 0.5 * (nu + q) * np.log1p(mahalanobis / nu)
    )
