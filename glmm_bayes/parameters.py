"""The one map between the three forms of a model's population-level parameters.

    program sites   beta_j by column name, sd(c|g) per column, cor(g) = L_k (LKJ Cholesky
                    factor of the correlation matrix), sigma or shape
    engines         beta, T_k = diag(sd_k) L_k with Cov(b_k) = T_k T_k', aux
    named values    "(Intercept)", "Days", "sd(Days|Subject)", "cor((Intercept),Days|Subject)",
                    "sigma": what priors, diagnostics, `compare` and profiles are keyed by

Every function takes any leading sample axes, so one map serves draws and point estimates.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from .spec import ModelSpec


def sd_name(coef: str, group: str) -> str:
    return f"sd({coef}|{group})"


def cor_name(group: str) -> str:
    """The program's site for a term's correlations (its LKJ Cholesky factor)."""
    return f"cor({group})"


def cor_pair_name(a: str, b: str, group: str) -> str:
    return f"cor({a},{b}|{group})"


def factor_from_sites(sites: dict, label: str, names) -> jnp.ndarray:
    """T_k = diag(sd_k) L_k from the program's sites."""
    sd = jnp.stack([jnp.asarray(sites[sd_name(c, label)]) for c in names], axis=-1)
    chol = sites.get(cor_name(label))
    return sd[..., :, None] * chol if chol is not None else sd[..., :, None]


def factor_from_sd_cor(sd, cor, q: int) -> jnp.ndarray:
    """T_k = diag(sd) chol(C) from the sds and the below-diagonal correlations of C (row-major
    over np.tril_indices(q, -1)), as the profiles parameterise a term."""
    rows, cols = np.tril_indices(q, -1)
    C = jnp.eye(q, dtype=sd.dtype).at[rows, cols].set(cor).at[cols, rows].set(cor)
    return sd[:, None] * jnp.linalg.cholesky(C)


def population_values(spec: ModelSpec, fixef, covariances, aux, residual=None) -> dict[str, np.ndarray]:
    """Name -> values over the sample axes, from beta (..., p), Cov(b_k) (..., q, q), aux and
    the residual structure's parameters (..., r); in this order: fixed effects, then per term
    its sds and correlations, then aux, then the residual structure's ("phi", ...)."""
    out = {name: fixef[..., j] for j, name in enumerate(spec.fixed_names)}
    for term, cov in zip(spec.terms, covariances):
        sd = np.sqrt(np.diagonal(cov, axis1=-2, axis2=-1))
        for j, coef in enumerate(term.names):
            out[sd_name(coef, term.label)] = sd[..., j]
        for j, l in zip(*np.tril_indices(term.q, -1)):
            out[cor_pair_name(term.names[l], term.names[j], term.label)] = \
                cov[..., j, l] / (sd[..., j] * sd[..., l])
    if spec.family.aux_name is not None:
        out[spec.family.aux_name] = np.asarray(aux)
    for j, name in enumerate(spec.residual.parameter_names):
        out[name] = np.asarray(residual)[..., j]
    return out
