"""Nakagawa's R^2 and the intra-class correlation (Nakagawa, Johnson and Schielzeth 2017; as
performance::r2_nakagawa and performance::icc report them).

    var_f = Var(X beta) (over the rows, n - 1 denominator)
    var_r = sum_k mean_i z_ik' Cov_k z_ik        (random slopes: Johnson 2014)
    var_e = sigma^2 (gaussian), pi^2 / 3 (logit), 1 (probit), pi^2 / 6 (cloglog): the
            latent-scale residual variance of the binomial families; with VarIdent ratios
            delta_v and prior weights w_i, sigma^2 mean_i delta_{v(i)}^2 / w_i (averaged over
            the rows as var_r is; a stationary correlation leaves each row's variance alone)
    R2_marginal = var_f / (var_f + var_r + var_e),  R2_conditional = (var_f + var_r) / (...)
    ICC_adjusted = var_r / (var_r + var_e),          ICC_conditional = var_r / (...)

Every quantity takes leading draw axes, so a posterior gets a distribution of each.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..core.residual import ResidualLayout, residual_arrays, residual_scale
from ..design import ModelSpec
from ..errors import ModelError
from ..families import is_linear_gaussian
from ..numerics import float64


def residual_variance(spec: ModelSpec, aux, residual=None) -> np.ndarray:
    """var_e over the draw axes; `residual`: the residual structure's natural parameters
    (..., r). With a dispersion formula, the mean of sigma_i^2 = exp(2 x_i' delta) over the
    rows (as the mean s_i^2 of a VarIdent structure)."""
    gaussian = spec.family.name == "gaussian" and spec.link.name == "identity"
    if spec.dispersion is not None and gaussian:
        return np.mean(np.exp(2 * np.asarray(aux) @ spec.X_disp.T), axis=-1)
    if is_linear_gaussian(spec.family, spec.link):
        return np.asarray(aux) ** 2 * _mean_relative_variance(spec, residual)
    if (latent := dict(spec.family.latent_variance).get(spec.link.name)) is not None:
        return np.asarray(latent)
    raise ModelError(
        f"R2 and ICC are defined here for gaussian (identity) and binomial models; "
        f"this model is {spec.family.name} ({spec.link.name})"
    )


@float64
def _mean_relative_variance(spec: ModelSpec, residual) -> np.ndarray:
    """mean_i s_i^2 over the rows, s_i = delta_{v(i)} / sqrt(w_i)
    (`core.residual.residual_scale`), for each draw of the residual structure's parameters
    (..., r)."""
    layout = ResidualLayout.from_spec(spec.residual, gaussian=True)
    if layout is None:
        return np.asarray(1.0)
    params = jnp.zeros((0,)) if residual is None else jnp.asarray(residual, dtype=jnp.float64)
    flat, rows = params.reshape(-1, params.shape[-1]), residual_arrays(spec.residual)
    scale = jax.vmap(lambda p: residual_scale(p, rows, layout))(flat)
    return np.mean(np.asarray(scale) ** 2, axis=-1).reshape(params.shape[:-1])


def variance_components(
    spec: ModelSpec, beta, covariances, aux, residual=None
) -> dict[str, np.ndarray]:
    """R2_marginal, R2_conditional, ICC_adjusted and ICC_conditional over the draw axes."""
    var_f = np.var(np.asarray(beta) @ spec.X.T, axis=-1, ddof=1)
    var_r = sum(
        np.mean(np.einsum("ni,...ij,nj->...n", t.Z, cov, t.Z), axis=-1)
        for t, cov in zip(spec.terms, covariances)
    )
    var_e = np.broadcast_to(residual_variance(spec, aux, residual), np.shape(var_f))
    total = var_f + var_r + var_e
    return {
        "R2_marginal": var_f / total,
        "R2_conditional": (var_f + var_r) / total,
        "ICC_adjusted": var_r / (var_r + var_e),
        "ICC_conditional": var_r / total,
    }
