"""Exact finite-sample (restricted) likelihood-ratio tests of one variance component
(Crainiceanu and Ruppert 2004; RLRsim's exactRLRT and exactLRT).

For y = X beta + Z b + e, b ~ N(0, sigma_b^2 I_K), e ~ N(0, sigma^2 I_n) and H0: sigma_b^2 = 0,
let lambda = sigma_b^2 / sigma^2, mu_s the eigenvalues of Z' P0 Z (P0 = I - X (X'X)^-1 X') and
xi_s those of Z'Z. Under H0 the statistics are distributed as

    RLRT = sup_lambda (n - p) log(1 + N(lambda) / D(lambda)) - sum_s log(1 + lambda mu_s)
    LRT  = sup_lambda n log(1 + N(lambda) / D(lambda)) - sum_s log(1 + lambda xi_s)
    N(lambda) = sum_s lambda mu_s / (1 + lambda mu_s) w_s^2
    D(lambda) = sum_s w_s^2 / (1 + lambda mu_s) + chi^2_{n - p - K'}

with w_s iid N(0, 1) over the K' non-zero mu_s. As RLRsim, the eigenvalues are divided by the
largest (of both sets for the LRT) and the supremum is taken over lambda = 0 and 199 values
equally spaced in log lambda from -10 to 8. The simulations run in one compiled program per
shape, `CHUNK` at a time: two matrix products (simulations x K') (K' x grid) per chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ..core.compiled import bind, compiled
from ..errors import ModelError, integer_argument
from ..families import is_linear_gaussian
from ..numerics import float64

GRID = np.concatenate([[0.0], np.exp(np.linspace(-10.0, 8.0, 199))])  # RLRsim's lambda grid
CHUNK = 2**16  # simulations per call of the compiled program


@dataclass(frozen=True)
class ExactTest:
    """An exact test of H0: the variance of `term` is 0. `null`: the simulated statistics;
    `mcse`: the Monte Carlo standard error of `p_value`."""

    method: str  # "RLRT" (restricted) or "LRT"
    term: str
    statistic: float
    p_value: float
    mcse: float
    nsim: int
    null: np.ndarray

    def __str__(self) -> str:
        return (
            f"exact {self.method} of H0: var({self.term}) = 0 (Crainiceanu and Ruppert 2004)\n"
            f"{self.method} = {self.statistic:.4f}, p-value = {self.p_value:.4g} "
            f"(Monte Carlo SE {self.mcse:.1g}, {self.nsim:,} simulations)"
        )


def exact_rlrt(fit, nsim: int = 100_000, seed: int = 0) -> ExactTest:
    """The restricted likelihood-ratio test of the model's one variance component against the
    linear model without it, its p-value from `nsim` draws of the exact null distribution (an
    ML fit is refitted by REML)."""
    return _exact_test(fit, "RLRT", nsim, seed)


def exact_lrt(fit, nsim: int = 100_000, seed: int = 0) -> ExactTest:
    """As `exact_rlrt`, with maximum likelihood (a REML fit is refitted by ML)."""
    return _exact_test(fit, "LRT", nsim, seed)


@float64
def _exact_test(fit, method: str, nsim: int, seed: int) -> ExactTest:
    nsim, seed = integer_argument("nsim", nsim, 1), integer_argument("seed", seed, 0)
    term = _tested_term(fit)
    reml = method == "RLRT"
    wanted = "REML" if reml else "ML"
    if fit.method != wanted:
        fit = fit.model.fit_reml() if reml else fit.model.fit_ml()
    spec = fit.spec
    y, family = spec.y, spec.family
    null_loglik = _linear_model_loglik(spec.X, family.on_location_scale(y), reml)
    jacobian = float(np.sum(family.log_norm(y, spec.trials)))  # the lognormal's; else 0
    statistic = max(0.0, 2 * (fit.loglik - null_loglik - jacobian))
    mu, xi = _spectrum(spec.X, term)
    n, p = spec.X.shape
    null = _simulate_null(mu, mu if reml else xi, n - p if reml else n, n - p - mu.size, nsim, seed)
    p_value = float(np.mean(null >= statistic))
    return ExactTest(
        method,
        f"1 | {term.factor}",
        statistic,
        p_value,
        float(np.sqrt(max(p_value * (1 - p_value), 1 / nsim) / nsim)),
        nsim,
        null,
    )


def _tested_term(fit):
    """The model's only random-effect term, which must be a scalar with iid levels, in a
    linear gaussian model without residual structure or weights."""
    if getattr(fit, "kind", None) != "frequentist":
        raise ModelError("exact_rlrt and exact_lrt test a frequentist fit (fit_reml or fit_ml)")
    spec = fit.spec
    if not is_linear_gaussian(spec.family, spec.link):
        raise ModelError(
            "exact_rlrt and exact_lrt apply to linear gaussian models; this model is "
            f"{spec.family.name} ({spec.link.name}): use lrt() with nsim for a bootstrap test"
        )
    residual = spec.residual
    if residual.correlation is not None or residual.variance is not None or residual.weighted:
        raise ModelError(
            "exact_rlrt and exact_lrt need iid residuals: this model has a residual "
            "correlation, variance function or weights"
        )
    terms = spec.terms
    if len(terms) != 1 or terms[0].q != 1 or terms[0].relatedness is not None:
        labels = ", ".join(f"({' + '.join(t.names)} | {t.factor})" for t in terms)
        raise ModelError(
            "exact_rlrt and exact_lrt test a model whose only random effect is one variance "
            f"component with iid levels, such as (1 | g); this model has {labels}"
        )
    return terms[0]


def _linear_model_loglik(X: np.ndarray, y: np.ndarray, reml: bool) -> float:
    """The (restricted) log-likelihood of y = X beta + e at its maximum, as R's logLik(lm(...),
    REML = reml): with N = n, or n - p for REML, -N/2 (log 2 pi + 1 - log N + log RSS), and
    REML's -log |det R| of X = QR."""
    Q, R = np.linalg.qr(X)
    rss = float(np.sum((y - Q @ (Q.T @ y)) ** 2))
    n = len(y) - (X.shape[1] if reml else 0)
    value = -0.5 * n * (np.log(2 * np.pi) + 1 - np.log(n) + np.log(rss))
    return value - (float(np.sum(np.log(np.abs(np.diag(R))))) if reml else 0.0)


def _spectrum(X: np.ndarray, term) -> tuple[np.ndarray, np.ndarray]:
    """The non-zero eigenvalues mu of Z' P0 Z and the eigenvalues xi of Z'Z, both divided by
    the largest xi (the largest of either set). Z of a scalar term is sparse, one non-zero per
    row: Z'Z is diagonal and Q'Z is a sum per level, so Z is never formed."""
    z, level = term.Z[:, 0], term.level_index
    xi = np.bincount(level, weights=z**2, minlength=term.n_levels)
    Q, _ = np.linalg.qr(X)
    QtZ = np.zeros((term.n_levels, X.shape[1]))
    np.add.at(QtZ, level, Q * z[:, None])
    mu = np.linalg.eigvalsh(np.diag(xi) - QtZ @ QtZ.T)
    scale = max(float(xi.max()), float(mu.max()))
    mu = mu[mu > 1e-10 * scale]
    return mu / scale, xi / scale


def _null_chunk(seed, chunk, mu, xi, grid, n_eff, rest_df, size: int):
    """`size` draws of the null statistic; simulation chunk `chunk` of the stream of `seed`."""
    key_w, key_rest = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(seed), chunk))
    w2 = jax.random.normal(key_w, (size, mu.size), dtype=mu.dtype) ** 2
    rest = jnp.where(
        rest_df > 0,
        jax.random.chisquare(key_rest, jnp.maximum(rest_df, 1.0), (size,), dtype=mu.dtype),
        0.0,
    )
    scaled = grid[:, None] * mu[None, :]  # (grid, K')
    numerator = w2 @ (scaled / (1 + scaled)).T
    denominator = w2 @ (1 / (1 + scaled)).T + rest[:, None]
    penalty = jnp.sum(jnp.log1p(grid[:, None] * xi[None, :]), axis=1)
    return jnp.max(n_eff * jnp.log1p(numerator / denominator) - penalty[None, :], axis=1)


def _simulate_null(mu, xi, n_eff: int, rest_df: int, nsim: int, seed: int) -> np.ndarray:
    """`nsim` draws of the null statistic, `CHUNK` (or fewer, if nsim is smaller) per call."""
    size = min(nsim, CHUNK)
    program = compiled(bind(_null_chunk, size=size))
    data = (mu, xi, GRID, float(n_eff), float(rest_df))
    chunks = [
        np.asarray(program(np.uint32(seed), np.uint32(i), *data)) for i in range(-(-nsim // size))
    ]
    return np.concatenate(chunks)[:nsim]
