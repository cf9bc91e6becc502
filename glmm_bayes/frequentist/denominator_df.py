"""Denominator degrees of freedom for tests of L beta in Gaussian LMMs.

Satterthwaite (lmerTest, Kuznetsova et al. 2017): with varpar = (theta, sigma) and
V(varpar) = sigma^2 (R_X' R_X)^{-1} = Var(beta_hat), A = 2 H^{-1} (H the Hessian of the REML or
ML deviance in varpar at the estimate), a contrast l has
    nu = 2 (l' V l)^2 / (g' A g),   g_i = l' (dV / d varpar_i) l,
and an F test of q rows is combined from the q eigen-directions of L V L' (lmerTest's contestMD).

Kenward-Roger (1997; pbkrtest's vcovAdj and KR_adjust): with Sigma = sum_i gamma_i G_i linear
in the variance parameters gamma (each entry of each Cov(b_k), and sigma^2), Phi = (X' Sigma^{-1}
X)^{-1}, P_i = -X' Sigma^{-1} G_i Sigma^{-1} X, Q_ij = X' Sigma^{-1} G_i Sigma^{-1} G_j Sigma^{-1} X
and W the inverse expected REML information (times 2):
    Phi_A = Phi + 2 Phi [sum_ij W_ij (Q_ij - P_i Phi P_j)] Phi,
and the scaled Wald F with its denominator df from the moments of Kenward and Roger. Sigma is
dense n x n, so Kenward-Roger is limited to `KR_MAX_ROWS` rows.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..core.compiled import bind, compiled
from ..core.lmm_deviance import penalised_least_squares
from ..core.residual import whiten
from ..core.structure import ModelArrays, RandomEffectsLayout
from ..errors import ModelError

KR_MAX_ROWS = 5000


def _unpack(varpar, arrays: ModelArrays, layout: RandomEffectsLayout):
    """varpar = (theta, sigma, the residual structure's natural parameters) -> theta, sigma,
    the whitened arrays and log|S C S|."""
    theta, sigma = varpar[: layout.n_theta], varpar[layout.n_theta]
    residual = varpar[layout.n_theta + 1 :] if layout.residual is not None else None
    return (theta, sigma, *whiten(residual, arrays, layout.residual))


def _deviance(varpar, arrays: ModelArrays, layout: RandomEffectsLayout, reml: bool):
    """-2 log L (REML or ML) at varpar, beta profiled out."""
    theta, sigma, arrays, logdet_R = _unpack(varpar, arrays, layout)
    pls = penalised_least_squares(theta, arrays, layout)
    n, p = arrays.X.shape
    dof = n - p if reml else n
    extra = pls.logdet_RX if reml else 0.0
    return (
        pls.logdet_L + extra + pls.r2 / sigma**2 + dof * jnp.log(2 * jnp.pi * sigma**2) + logdet_R
    )


def _beta_covariance(varpar, arrays: ModelArrays, layout: RandomEffectsLayout):
    theta, sigma, arrays, _ = _unpack(varpar, arrays, layout)
    RX = penalised_least_squares(theta, arrays, layout).RX
    return sigma**2 * jnp.linalg.inv(RX.T @ RX)


def _satterthwaite_arrays(varpar, arrays: ModelArrays, layout: RandomEffectsLayout, reml: bool):
    return (
        _beta_covariance(varpar, arrays, layout),
        jax.jacfwd(_beta_covariance)(varpar, arrays, layout),
        jax.hessian(_deviance)(varpar, arrays, layout, reml),
    )


def satterthwaite_pieces(
    theta, sigma, arrays: ModelArrays, layout: RandomEffectsLayout, reml: bool, residual=()
):
    """(V, dV/dvarpar (p, p, k), A = 2 H^{-1}) at the estimate; varpar includes the residual
    structure's natural parameters."""
    varpar = np.concatenate(
        [np.asarray(theta, dtype=float), [float(sigma)], np.asarray(residual, dtype=float)]
    )
    V, jac, H = compiled(bind(_satterthwaite_arrays, layout=layout, reml=reml))(varpar, arrays)
    return np.asarray(V), np.asarray(jac), 2 * np.linalg.pinv(np.asarray(H))


def satterthwaite_test(L: np.ndarray, beta, V, jac, A) -> tuple[float, float, float]:
    """(F, numerator df, denominator df) for H0: L beta = 0 (for one row F = t^2)."""
    VL = L @ V @ L.T
    values, vectors = np.linalg.eigh(VL)
    rows = vectors.T @ L
    nus = []
    for l, d in zip(rows, values):
        g = np.einsum("i,ijk,j->k", l, jac, l)
        nus.append(2 * d**2 / (g @ A @ g))
    F = float(np.sum((rows @ beta) ** 2 / values)) / len(values)
    q = len(values)
    if q == 1:
        return F, 1.0, float(nus[0])
    nus = np.asarray(nus)
    E = np.sum(nus / (nus - 2)) if np.all(nus > 2) else np.nan
    ddf = 2 * E / (E - q) if E > q else np.nan
    return F, float(q), float(ddf)


def _derivative_matrices(spec, covariances, sigma2) -> tuple[list, np.ndarray]:
    """G_i = dSigma / dgamma_i (n x n) for every entry of every Cov(b_k) and sigma^2, and Sigma."""
    n = spec.n_obs
    G = []
    for term in spec.terms:
        same = term.level_index[:, None] == term.level_index[None, :]
        for r in range(term.q):
            for c in range(r + 1):
                outer = np.outer(term.Z[:, r], term.Z[:, c])
                G.append(same * (outer + outer.T if r != c else outer))
    G.append(np.eye(n))
    gamma = [cov[r, c] for cov in covariances for r in range(cov.shape[0]) for c in range(r + 1)]
    Sigma = sum(g * Gi for g, Gi in zip(gamma + [sigma2], G))
    return G, Sigma


class KenwardRoger:
    """Phi, the adjusted Phi_A and the pieces of the Kenward-Roger F test at an REML estimate."""

    def __init__(self, spec, covariances, sigma):
        if spec.n_obs > KR_MAX_ROWS:
            raise ModelError(
                f"Kenward-Roger needs n x n matrices; this model has {spec.n_obs} rows "
                f"(limit {KR_MAX_ROWS}): use ddf='satterthwaite'"
            )
        X = spec.X
        G, Sigma = _derivative_matrices(spec, covariances, sigma**2)
        S_inv = np.linalg.inv(Sigma)
        Phi = np.linalg.inv(X.T @ S_inv @ X)
        SX = S_inv @ X
        GS = [Gi @ S_inv for Gi in G]
        GSX = [Gi @ SX for Gi in G]
        P = [-SX.T @ g for g in GSX]
        k = len(G)
        Q = [[GSX[i].T @ S_inv @ GSX[j] for j in range(k)] for i in range(k)]
        info = np.array(
            [
                [
                    np.sum(GS[i] * GS[j].T)
                    - 2 * np.sum(Phi * Q[i][j])
                    + np.sum((Phi @ P[i]) * (Phi @ P[j]).T)
                    for j in range(k)
                ]
                for i in range(k)
            ]
        )
        W = 2 * np.linalg.inv(info)
        U = sum(W[i, j] * (Q[i][j] - P[i] @ Phi @ P[j]) for i in range(k) for j in range(k))
        self.Phi, self.P, self.W = Phi, P, W
        self.Phi_A = Phi + 2 * Phi @ U @ Phi

    def test(self, L: np.ndarray, beta) -> tuple[float, float, float]:
        """(scaled F, numerator df, denominator df) for H0: L beta = 0."""
        Phi, W = self.Phi, self.W
        q = np.linalg.matrix_rank(L)
        Theta = L.T @ np.linalg.solve(L @ Phi @ L.T, L)
        u = [Theta @ Phi @ Pi @ Phi for Pi in self.P]
        traces = np.array([np.trace(ui) for ui in u])
        A1 = traces @ W @ traces
        A2 = sum(W[i, j] * np.sum(u[i] * u[j].T) for i in range(len(u)) for j in range(len(u)))
        B = (A1 + 6 * A2) / (2 * q)
        g = ((q + 1) * A1 - (q + 4) * A2) / ((q + 2) * A2)
        denominator = 3 * q + 2 * (1 - g)
        c1, c2, c3 = g / denominator, (q - g) / denominator, (q + 2 - g) / denominator
        E = 1 / (1 - A2 / q)
        V = 2 / q * (1 + c1 * B) / ((1 - c2 * B) ** 2 * (1 - c3 * B))
        rho = V / (2 * E**2)
        ddf = 4 + (q + 2) / (q * rho - 1)
        Lb = L @ beta
        wald = float(Lb @ np.linalg.solve(L @ self.Phi_A @ L.T, Lb)) / q
        return ddf / (E * (ddf - 2)) * wald, float(q), float(ddf)
