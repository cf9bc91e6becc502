"""Whitening by the residual covariance Var(e) = sigma^2 S C S (`design.residual`).

With C_g = L_g L_g' per correlation group and W = L^{-1} S^{-1}, the model
y = X beta + Z b + e becomes W y = W X beta + W Z b + e*, e* ~ N(0, sigma^2 I), and
    -2 log L(y) = -2 log L*(W y) + log|S C S|,   log|S C S| = 2 sum_i log s_i + sum_g log|C_g|,
for ML and REML alike (|X'V^{-1}X| is unchanged by the transformation). A correlation group
lies within one level of every random-effect factor, so W Z has Z's row-sparse pattern: the
REML/ML, marginal and Laplace code runs unchanged on the whitened arrays, one group's
Cholesky factor (n_g x n_g) at a time, never an n x n matrix; AR1 and CAR1, being Markov, need
no factor at all (Prais-Winsten differences).

Natural parameters (`ResidualLayout.names`): the correlation's (phi in (-1, 1) for AR1, [0, 1)
for CAR1, range > 0, rho in (-1/(n_max - 1), 1)), then the VarIdent sd ratios delta > 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import solve_triangular

from ..design.residual import ResidualSpec

#: Correlation parameters are kept this far inside their open intervals.
MARGIN = 1e-6


@dataclass(frozen=True)
class ResidualLayout:
    """The static part of the residual structure (hashable: part of the compiled shape)."""

    correlation: str | None  # "ar1", "car1", "gaussian", "cs" or None
    names: tuple[str, ...]  # natural parameters, correlation first
    weighted: bool
    gaussian: bool  # whitened (gaussian) or glm-weighted log-likelihood terms
    group_size: int  # the largest correlation group
    # median lag between successive positions: a range's start and its prior's centre, both
    # host-side (the prior's numbers are traced), so not part of the compiled shape
    lag: float = field(default=1.0, compare=False)

    @classmethod
    def from_spec(cls, residual: ResidualSpec, gaussian: bool) -> ResidualLayout | None:
        if residual is None or residual.is_trivial:
            return None
        kind = residual.correlation.kind if residual.correlation is not None else None
        valid = residual.group_rows < len(residual.weights)
        lags = np.diff(residual.group_position, axis=1)[valid[:, 1:]]
        lag = float(np.median(lags[lags > 0])) if np.any(lags > 0) else 1.0
        return cls(
            kind,
            residual.parameter_names,
            residual.weighted,
            gaussian,
            residual.group_rows.shape[1],
            lag,
        )

    @property
    def n_params(self) -> int:
        return len(self.names)

    @property
    def n_correlation(self) -> int:
        return int(self.correlation is not None)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds of the natural parameters."""
        lower = {
            "ar1": -1.0,
            "car1": 0.0,
            "gaussian": 0.0,
            "cs": -1.0 / max(self.group_size - 1, 1),
        }.get(self.correlation)
        upper = {"ar1": 1.0, "car1": 1.0, "gaussian": np.inf, "cs": 1.0}.get(self.correlation)
        lo = ([lower] if self.correlation else []) + [0.0] * (self.n_params - self.n_correlation)
        hi = ([upper] if self.correlation else []) + [np.inf] * (self.n_params - self.n_correlation)
        return np.array(lo, dtype=float), np.array(hi, dtype=float)

    def positive(self) -> np.ndarray:
        """The parameters that live on (0, inf): a range and the sd ratios."""
        lower, upper = self.bounds()
        return (lower == 0) & ~np.isfinite(upper)

    def classes(self) -> tuple[str, ...]:
        """Each parameter's class (priors are keyed by it): "correlation" (phi, rho), "range"
        (a Gaussian correlation's) or "sigma_ratio"."""
        first = ("range" if self.correlation == "gaussian" else "correlation",) * self.n_correlation
        return first + ("sigma_ratio",) * (self.n_params - self.n_correlation)

    def initial(self) -> np.ndarray:
        """Natural starting values: little correlation (a range of one median lag), equal sds."""
        start = {"ar1": 0.0, "car1": 0.2, "gaussian": self.lag, "cs": 0.0}.get(self.correlation)
        return np.array(
            ([start] if self.correlation else []) + [1.0] * (self.n_params - self.n_correlation)
        )

    def to_free(self, natural):
        """Natural -> unconstrained: log for positive, a scaled logit for bounded (NumPy for
        NumPy's values, JAX inside compiled code)."""
        xp = jnp if isinstance(natural, jax.Array) else np
        lower, upper = self.bounds()
        natural = xp.asarray(natural, dtype=float) if xp is np else natural
        positive = self.positive()
        width = np.where(positive, 1.0, upper - lower)
        unit = xp.clip((natural - np.where(positive, 0.0, lower)) / width, MARGIN, 1 - MARGIN)
        with np.errstate(divide="ignore"):
            return xp.where(
                positive, xp.log(xp.maximum(natural, 1e-300)), xp.log(unit) - xp.log1p(-unit)
            )

    def from_free(self, free):
        xp = jnp if isinstance(free, jax.Array) else np
        lower, upper = self.bounds()
        positive = self.positive()
        free = xp.asarray(free, dtype=float) if xp is np else free
        bounded = np.where(positive, 0.0, lower) + np.where(positive, 1.0, upper - lower) * (
            MARGIN + (1 - 2 * MARGIN) / (1 + xp.exp(-free))
        )
        with np.errstate(over="ignore"):
            return xp.where(positive, xp.exp(xp.where(positive, free, 0.0)), bounded)


class ResidualArrays(NamedTuple):
    weights: jnp.ndarray  # (n,)
    level: jnp.ndarray  # (n,) VarIdent level
    rows: jnp.ndarray  # (G, n_max) rows of each correlation group, padded with n
    position: jnp.ndarray  # (G, n_max)


def residual_arrays(residual: ResidualSpec, dtype=None) -> ResidualArrays:
    """The arrays on the device (transfers, no program), floats in `dtype` or the calling
    context's default."""
    real = dtype or jax.dtypes.canonicalize_dtype(np.float64)
    integer = jax.dtypes.canonicalize_dtype(np.int64)
    return ResidualArrays(
        jax.device_put(np.asarray(residual.weights, dtype=real)),
        jax.device_put(np.asarray(residual.variance_level, dtype=integer)),
        jax.device_put(np.asarray(residual.group_rows, dtype=integer)),
        jax.device_put(np.asarray(residual.group_position, dtype=real)),
    )


def residual_scale(params, res: ResidualArrays, layout: ResidualLayout):
    """s_i = delta_{v(i)} / sqrt(w_i)."""
    ratios = jnp.concatenate([jnp.ones(1, dtype=res.weights.dtype), params[layout.n_correlation :]])
    return ratios[res.level] / jnp.sqrt(res.weights)


def correlation_factors(params, res: ResidualArrays, layout: ResidualLayout):
    """(G, n_max, n_max) Cholesky factors L_g of C_g (identity on the padding)."""
    valid = res.rows < res.weights.shape[0]
    eye = jnp.eye(res.rows.shape[-1], dtype=bool)
    pair = valid[:, :, None] & valid[:, None, :] & ~eye
    # lags outside distinct valid pairs set to 1, so that no unused entry has a NaN gradient
    distance = jnp.where(pair, jnp.abs(res.position[:, :, None] - res.position[:, None, :]), 1.0)
    p = params[0]
    if layout.correlation in ("ar1", "car1"):
        corr = _decay(p, distance, layout)
    elif layout.correlation == "gaussian":
        corr = jnp.exp(-((distance / p) ** 2))
    else:
        corr = jnp.full_like(distance, p)
    C = jnp.where(eye, 1.0, jnp.where(pair, corr, 0.0))
    return jnp.linalg.cholesky(C)


def _to_groups(x, res: ResidualArrays, fill=0.0):
    """Rows (n, ...) -> groups (G, n_max, ...), `fill` on the padding."""
    return jnp.concatenate([x, jnp.full((1,) + x.shape[1:], fill, dtype=x.dtype)])[res.rows]


def _from_groups(grouped, res: ResidualArrays, n: int):
    """Groups (G, n_max, ...) -> rows (n, ...), the padding dropped."""
    return (
        jnp.zeros((n + 1,) + grouped.shape[2:], dtype=grouped.dtype).at[res.rows].set(grouped)[:n]
    )


def _decay(phi, lag, layout: ResidualLayout):
    """phi^lag; AR1's lags are whole numbers, where phi < 0 is allowed."""
    return jnp.power(phi, lag.astype(jnp.int32)) if layout.correlation == "ar1" else phi**lag


def _whiten_groups(params, padded, res: ResidualArrays, layout: ResidualLayout):
    """L_g^{-1} x per group for padded (G, n_max, k), and log L_g[ii] (G, n_max).

    AR1 and CAR1 are Markov: L^{-1} is bidiagonal, (x_t - r_t x_{t-1}) / sqrt(1 - r_t^2) with
    r_t the correlation with the previous row (Prais-Winsten), O(n) with no factorisation;
    the other structures factor C_g."""
    if layout.correlation in ("ar1", "car1"):
        valid = res.rows < res.weights.shape[0]
        linked = valid[:, 1:] & valid[:, :-1]
        lag = jnp.where(linked, res.position[:, 1:] - res.position[:, :-1], 1.0)
        r = jnp.where(linked, _decay(params[0], lag, layout), 0.0)
        r = jnp.concatenate([jnp.zeros_like(r[:, :1]), r], axis=1)
        scale = jnp.sqrt(1 - r**2)
        previous = jnp.concatenate([jnp.zeros_like(padded[:, :1]), padded[:, :-1]], axis=1)
        return (padded - r[..., None] * previous) / scale[..., None], jnp.log(scale)
    L = correlation_factors(params, res, layout)
    return solve_triangular(L, padded, lower=True), jnp.log(jnp.diagonal(L, axis1=-2, axis2=-1))


def _whiten_with_diagonal(params, M, res: ResidualArrays, layout: ResidualLayout):
    """W M for M (n, k), log s_i and log L_ii per row."""
    s = residual_scale(params, res, layout)
    out, log_diag = M / s[:, None], jnp.zeros(M.shape[0], dtype=M.dtype)
    if layout.correlation is not None:
        solved, group_diag = _whiten_groups(params, _to_groups(out, res), res, layout)
        out, log_diag = (
            _from_groups(solved, res, M.shape[0]),
            _from_groups(group_diag, res, M.shape[0]),
        )
    return out, jnp.log(s), log_diag


def whiten_columns(params, M, res: ResidualArrays, layout: ResidualLayout):
    """W M for M (n, k), and log|S C S| = 2 sum_i (log s_i + log L_ii)."""
    out, log_s, log_diag = _whiten_with_diagonal(params, M, res, layout)
    return out, 2 * jnp.sum(log_s + log_diag)


def whiten(params, arrays, layout: ResidualLayout | None):
    """The model's arrays with y - offset, X and Z whitened (offset 0), and log|S C S|; the
    arrays unchanged and 0 without a residual structure or for a non-gaussian family (whose
    weights multiply its log-likelihood terms instead: `structure.row_weights`)."""
    if layout is None or not layout.gaussian:
        return arrays, 0.0
    p, m = arrays.X.shape[1], arrays.z_val.shape[1]
    M = jnp.concatenate([(arrays.y - arrays.offset)[:, None], arrays.X, arrays.z_val], axis=1)
    W, logdet = whiten_columns(params, M, arrays.residual, layout)
    return arrays._replace(
        y=W[:, 0],
        offset=jnp.zeros_like(arrays.offset),
        X=W[:, 1 : 1 + p],
        Xt=W[:, 1 : 1 + p].T,
        z_val=W[:, 1 + p : 1 + p + m],
        residual=None,
    ), logdet


def color(params, z, res: ResidualArrays, layout: ResidualLayout):
    """S L z: standard normal z (..., n) -> residuals with covariance S C S (W^{-1} z)."""
    out = z
    if layout.correlation is not None:
        L = correlation_factors(params, res, layout)
        colored = jnp.einsum("gij,gj...->gi...", L, _to_groups(jnp.moveaxis(z, -1, 0), res))
        out = jnp.moveaxis(_from_groups(colored, res, z.shape[-1]), 0, -1)
    return out * residual_scale(params, res, layout)


def sequential_loglik(params, residual, sigma, res: ResidualArrays, layout: ResidualLayout):
    """Per-row terms of log N(residual; 0, sigma^2 S C S) whose sum is the joint density: row i
    gives log N((W r)_i; 0, sigma^2) - log s_i - log L_ii (the chain rule, in each group's
    order)."""
    whitened, log_s, log_diag = _whiten_with_diagonal(params, residual[:, None], res, layout)
    return (
        -0.5 * (whitened[:, 0] / sigma) ** 2
        - jnp.log(sigma)
        - 0.5 * jnp.log(2 * jnp.pi)
        - log_s
        - log_diag
    )


def leave_one_out_loglik(params, residual, sigma, res: ResidualArrays, layout: ResidualLayout):
    """log p(r_i | r_{-i}) per row under N(0, sigma^2 S C S) (Burkner, Gabry and Vehtari 2021,
    for LOO with non-factorised normal models): with P the precision and g = P r,
    r_i | r_{-i} ~ N(r_i - g_i / P_ii, 1 / P_ii). Without correlation this is the row's density."""
    s = residual_scale(params, res, layout)
    if layout.correlation is None:
        sd = sigma * s
        return -0.5 * (residual / sd) ** 2 - jnp.log(sd) - 0.5 * jnp.log(2 * jnp.pi)
    n = residual.shape[0]
    L = correlation_factors(params, res, layout)
    m = L.shape[-1]
    Linv = solve_triangular(L, jnp.broadcast_to(jnp.eye(m, dtype=L.dtype), L.shape), lower=True)
    s_pad, r_pad = _to_groups(s, res, fill=1.0), _to_groups(residual, res)
    P = jnp.swapaxes(Linv, -1, -2) @ Linv / (s_pad[:, :, None] * s_pad[:, None, :] * sigma**2)
    g = jnp.einsum("gij,gj->gi", P, r_pad)
    P_ii = jnp.diagonal(P, axis1=-2, axis2=-1)
    values = 0.5 * jnp.log(P_ii / (2 * jnp.pi)) - 0.5 * g**2 / P_ii
    return _from_groups(values, res, n)
