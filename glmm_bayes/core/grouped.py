"""The Gaussian marginal likelihood from per-group sufficient statistics.

When every random-effect term has the same grouping factor, the groups i = 1..G are
independent given the population parameters:
    y_i ~ N(X_i beta, V_i),   V_i = sigma^2 I + Z_i T T' Z_i',
with Z_i the group's rows of the m = sum_k q_k columns of Z and T = blockdiag(T_k). With
r_i = y_i - X_i beta, c_i = T' Z_i' r_i and M_i = sigma^2 I_m + T' Z_i'Z_i T (Woodbury),
    log|V_i| = (n_i - m) log sigma^2 + log|M_i|,
    r_i' V_i^{-1} r_i = (r_i'r_i - c_i' M_i^{-1} c_i) / sigma^2,
so -2 log L needs only Z_i'Z_i, Z_i'X_i, Z_i'y_i (per group) and X'X, X'y, y'y, computed once:
each evaluation costs G factorisations of m x m matrices, whatever the number of rows.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import block_diag, solve_triangular

from .structure import ModelArrays, RandomEffectsLayout

#: Up to this m the G factorisations are unrolled into elementwise operations over the groups
#: (fused by XLA, several times faster on a CPU than a batched LAPACK call for small m).
UNROLL_MAX = 6


class GroupStatistics(NamedTuple):
    ZtZ: jnp.ndarray  # (G, m, m)
    ZtX: jnp.ndarray  # (G, m, p)
    Zty: jnp.ndarray  # (G, m)
    XtX: jnp.ndarray  # (p, p)
    Xty: jnp.ndarray  # (p,)
    yty: jnp.ndarray  # ()
    n_obs: jnp.ndarray  # () number of rows
    x_mean: jnp.ndarray  # (p,) column means of X


def term_levels(arrays: ModelArrays, layout: RandomEffectsLayout) -> list[np.ndarray]:
    """Per term, the level of each row."""
    z_idx = np.asarray(arrays.z_idx)
    return [(z_idx[:, t.row_pos] - t.start) // t.q for t in layout.terms]


def shares_one_factor(arrays: ModelArrays, layout: RandomEffectsLayout) -> bool:
    """Whether every term has the same grouping of the rows (the groups are independent)."""
    if any(t.isotropic for t in layout.terms):
        return False
    levels = term_levels(arrays, layout)
    first = layout.terms[0]
    return all(
        t.n_levels == first.n_levels and np.array_equal(lv, levels[0])
        for t, lv in zip(layout.terms, levels)
    )


def group_statistics(arrays: ModelArrays, layout: RandomEffectsLayout) -> GroupStatistics:
    """The sufficient statistics, with y taken net of the offset."""
    group = term_levels(arrays, layout)[0]
    G = layout.terms[0].n_levels
    X, Z = np.asarray(arrays.X, dtype=float), np.asarray(arrays.z_val, dtype=float)
    y = np.asarray(arrays.y, dtype=float) - np.asarray(arrays.offset, dtype=float)
    m, p = Z.shape[1], X.shape[1]
    ZtZ, ZtX, Zty = np.zeros((G, m, m)), np.zeros((G, m, p)), np.zeros((G, m))
    np.add.at(ZtZ, group, Z[:, :, None] * Z[:, None, :])
    np.add.at(ZtX, group, Z[:, :, None] * X[:, None, :])
    np.add.at(Zty, group, Z * y[:, None])
    dtype = arrays.X.dtype
    as_array = lambda a: jax.device_put(np.asarray(a, dtype=dtype))  # a transfer, no program
    return GroupStatistics(
        as_array(ZtZ),
        as_array(ZtX),
        as_array(Zty),
        as_array(X.T @ X),
        as_array(X.T @ y),
        as_array(y @ y),
        as_array(y.size),
        as_array(X.mean(axis=0)),
    )


def _woodbury_terms(beta, factors, sigma, stats: GroupStatistics):
    """sigma^2, r'r, c_i = T' Z_i' r_i (G, m) and M_i = sigma^2 I + T' Z_i'Z_i T (G, m, m)."""
    T = block_diag(*factors)
    s2 = sigma**2
    rtr = stats.yty - 2 * beta @ stats.Xty + beta @ stats.XtX @ beta
    c = jnp.einsum("ji,gj->gi", T, stats.Zty - stats.ZtX @ beta)
    M = s2 * jnp.eye(T.shape[0], dtype=T.dtype) + jnp.einsum("ji,gjk,kl->gil", T, stats.ZtZ, T)
    return s2, rtr, c, M


def grouped_gaussian_deviance(beta, factors, sigma, stats: GroupStatistics):
    """-2 log L(beta, [T_k], sigma), T_k the absolute factors of Cov(b_k) (module docstring)."""
    s2, rtr, c, M = _woodbury_terms(beta, factors, sigma, stats)
    logdet_M, w = _factor_and_solve(M, c)
    G, m = c.shape
    logdet_V = (stats.n_obs - G * m) * jnp.log(s2) + logdet_M
    quad = (rtr - jnp.sum(w * w)) / s2
    return stats.n_obs * jnp.log(2 * jnp.pi) + logdet_V + quad


def grouped_random_effects_draw(key, beta, factors, sigma, stats: GroupStatistics):
    """One draw of the spherical random effects u_i | y (G, m), b_i = T u_i: per group
    u_i ~ N(M_i^{-1} c_i, sigma^2 M_i^{-1}), drawn as L_i^{-T} (L_i^{-1} c_i + sigma e_i)."""
    _, _, c, M = _woodbury_terms(beta, factors, sigma, stats)
    L = jnp.linalg.cholesky(M)
    w = solve_triangular(L, c[..., None], lower=True)[..., 0]
    e = jax.random.normal(key, c.shape, dtype=c.dtype)
    return solve_triangular(L, (w + sigma * e)[..., None], lower=True, trans=1)[..., 0]


def _factor_and_solve(M, c):
    """sum_i log|M_i| and w_i = L_i^{-1} c_i, with L_i L_i' = M_i, for a batch (G, m, m)."""
    m = M.shape[-1]
    if m > UNROLL_MAX:
        L = jnp.linalg.cholesky(M)
        w = solve_triangular(L, c[..., None], lower=True)[..., 0]
        return 2 * jnp.sum(jnp.log(jnp.diagonal(L, axis1=-2, axis2=-1))), w
    L = [[None] * m for _ in range(m)]
    w = []
    logdet = 0.0
    for j in range(m):
        diag = M[:, j, j] - sum(L[j][k] ** 2 for k in range(j))
        L[j][j] = jnp.sqrt(diag)
        logdet = logdet + jnp.sum(jnp.log(diag))
        for i in range(j + 1, m):
            L[i][j] = (M[:, i, j] - sum(L[i][k] * L[j][k] for k in range(j))) / L[j][j]
        w.append((c[:, j] - sum(L[j][k] * w[k] for k in range(j))) / L[j][j])
    return logdet, jnp.stack(w, axis=1)
