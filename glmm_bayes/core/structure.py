"""Shared random-effect structure: Z in row-sparse form and the relative covariance factor.

b = Lambda_theta u with u ~ N(0, I). Lambda_theta is block diagonal: term k contributes
I_{n_k} (x) T_k, T_k lower triangular (q_k x q_k) holding theta_k column by column (lme4's order).
theta means what it means in lme4: for gaussian models Cov(b_k) = sigma^2 T_k T_k' (T_k relative
to sigma: the REML/ML criterion's argument and every fit's reported `theta`), for other
families Cov(b_k) = T_k T_k'. Functions that take the factor of Cov(b) itself whatever the
family (the Laplace deviance, the marginal deviance, the program's T_k) say so.
A term with a known covariance K (cov={factor: K}, `design.relatedness`) is isotropic here:
b = F v, and the engines see one level with r columns Z F (every row loads on all of them)
and T_k = theta I_r, one parameter; `user_terms` maps its v back to b per level of K.
The entries of u are ordered term by term, the term with the most columns first (its block of
Lambda'Z'WZ Lambda + I is block diagonal, which `cholesky.py` exploits); theta and every table
follow the formula's term order.
Each row of Z has m = sum_k q_k non-zeros, so Z and Z Lambda are stored as (n, m) arrays of
column indices and values: Z Lambda keeps Z's pattern with values Z_k[i, :] T_k.
Every function here is a pure JAX function of arrays (jit- and vmap-able).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..design import ModelSpec
from .off_diagonal import MAX_SPARSE_DENSITY, BlockPattern, block_pattern
from .residual import ResidualArrays, ResidualLayout, residual_arrays


@dataclass(frozen=True)
class TermLayout:
    """The static part of a random-effect term (its data, Z_k and levels, is in the spec)."""

    label: str  # lme4's VarCorr group name: "Subject", "Subject.1"
    names: tuple[str, ...]  # its columns: "(Intercept)", "Days"
    q: int
    n_levels: int
    start: int  # first column of this term's block of Z (and entry of u and b)
    row_pos: int  # first of this term's q entries in each row of the row-sparse Z
    isotropic: bool = False  # T_k = theta I_q (a known-covariance term, q = rank of K)

    @property
    def n_theta(self) -> int:
        return 1 if self.isotropic else self.q * (self.q + 1) // 2

    @property
    def pairs(self) -> tuple[tuple[int, int], ...]:
        """(row, column) of each correlation between the term's columns (`names`), below the
        diagonal, row-major; none for a known-covariance term (one column)."""
        rows, cols = np.tril_indices(len(self.names), -1)
        return tuple(zip(rows.tolist(), cols.tolist()))

    def diagonal_mask(self) -> np.ndarray:
        return np.ones(1, bool) if self.isotropic else _diagonal_mask(self.q)


@dataclass(frozen=True)
class RandomEffectsLayout:
    """Static shapes (hashable, so jit compiles once per model shape), with the static part of
    the residual structure (None for sigma^2 I)."""

    terms: tuple[TermLayout, ...]
    residual: ResidualLayout | None = None

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> RandomEffectsLayout:
        shapes = [engine_shape(term) for term in spec.terms]
        sizes = [q * n for q, n in shapes]
        order = sorted(range(len(sizes)), key=lambda k: -sizes[k])
        starts = dict(zip(order, np.cumsum([0] + [sizes[k] for k in order])[:-1].tolist()))
        row_pos = np.cumsum([0] + [q for q, _ in shapes])[:-1].tolist()
        terms = tuple(
            TermLayout(
                term.label, term.names, q, n, starts[k], row_pos[k], term.relatedness is not None
            )
            for k, (term, (q, n)) in enumerate(zip(spec.terms, shapes))
        )
        return cls(terms, ResidualLayout.from_spec(spec.residual, spec.family.residual_sd))

    @property
    def leading(self) -> TermLayout:
        """The term whose columns come first in u (the one with the most columns)."""
        return next(t for t in self.terms if t.start == 0)

    @property
    def n_random(self) -> int:
        return sum(t.q * t.n_levels for t in self.terms)

    @property
    def n_theta(self) -> int:
        return sum(t.n_theta for t in self.terms)

    @property
    def dense_block_size(self) -> int:
        """q_2: the columns of u outside the leading term, the order of the blocked factor's
        dense block L_22 (`cholesky.py`)."""
        return self.n_random - self.leading.n_levels * self.leading.q

    def diagonal_mask(self) -> np.ndarray:
        """True for the entries of theta on a diagonal of some T_k."""
        return np.concatenate([t.diagonal_mask() for t in self.terms])

    def theta_initial(self) -> np.ndarray:
        return self.diagonal_mask().astype(float)


def engine_shape(term) -> tuple[int, int]:
    """(q, n_levels) of a term as the engines see it: (r, 1) for a known-covariance term."""
    if term.relatedness is not None:
        return term.relatedness.shape[1], 1
    return term.q, term.n_levels


def _diagonal_mask(q: int) -> np.ndarray:
    rows, cols = np.tril_indices(q)
    order = np.lexsort((rows, cols))  # column-major, as lme4 stores theta
    return (rows == cols)[order]


def tril_column_major(q: int) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.tril_indices(q)
    order = np.lexsort((rows, cols))
    return rows[order], cols[order]


@functools.cache
def _factor_index(q: int, isotropic: bool) -> np.ndarray:
    """(q, q) position of each entry of T_k in [0, theta_k...]: 0 (a structural zero) above
    the diagonal, and off it for an isotropic term."""
    index = np.zeros((q, q), dtype=np.int32)
    if isotropic:
        index[np.diag_indices(q)] = 1
    else:
        rows, cols = tril_column_major(q)
        index[rows, cols] = np.arange(1, rows.size + 1)
    return index


def covariance_factors(theta, layout: RandomEffectsLayout) -> list:
    """theta -> [T_1, ..., T_K], the lower-triangular blocks of Lambda_theta: NumPy arrays for a
    NumPy theta (the results, with no JAX operation), JAX arrays inside compiled code."""
    xp = np if isinstance(theta, np.ndarray) else jnp
    factors, pos = [], 0
    for t in layout.terms:
        width = 1 if t.isotropic else t.n_theta
        padded = xp.concatenate([xp.zeros(1, dtype=theta.dtype), theta[pos : pos + width]])
        factors.append(padded[_factor_index(t.q, t.isotropic)])
        pos += width
    return factors


def factors_to_theta(factors) -> jnp.ndarray:
    """Inverse of `covariance_factors`."""
    return jnp.concatenate([T[tril_column_major(T.shape[0])] for T in factors])


def canonical_theta(theta, layout: RandomEffectsLayout) -> np.ndarray:
    """theta with each column of every T_k signed so that its diagonal is >= 0.

    T_k T_k' (and so every likelihood) is unchanged by flipping the sign of a column of T_k, so
    the optimisers search theta unbounded, where a diagonal passing through zero is no
    boundary, and map the optimum to lme4's convention (diagonals >= 0) afterwards.
    """
    factors = covariance_factors(np.asarray(theta, dtype=float), layout)
    signed = [T * np.where(np.diag(T) < 0, -1.0, 1.0)[None, :] for T in factors]
    return np.concatenate(
        [
            T[:1, 0] if t.isotropic else T[tril_column_major(T.shape[0])]
            for T, t in zip(signed, layout.terms)
        ]
    )


def singular_terms(theta, names: list[str], layout: RandomEffectsLayout, tol: float) -> list[str]:
    """The sds whose diagonal of T_k is below `tol` (lme4's isSingular): a variance at zero or a
    correlation at +-1. `names`: theta's (`ParameterMap.theta_names`)."""
    diagonal = layout.diagonal_mask()
    return [
        name
        for name, value, on_diag in zip(names, np.asarray(theta), diagonal)
        if on_diag and abs(value) < tol
    ]


def z_indices(spec: ModelSpec, layout: RandomEffectsLayout) -> np.ndarray:
    """(n, m) column of Z (and of Z Lambda) for each row's non-zeros."""
    blocks = [
        t.start
        + (0 if t.isotropic else term.level_index[:, None] * t.q)
        + np.arange(t.q)[None, :]
        + np.zeros((spec.n_obs, 1), dtype=int)
        for term, t in zip(spec.terms, layout.terms)
    ]
    return np.concatenate(blocks, axis=1).astype(np.int32)


def z_values(spec: ModelSpec) -> np.ndarray:
    """(n, m) values of Z's non-zeros, aligned with `z_indices` (Z_k F[level] for a
    known-covariance term)."""
    return np.concatenate(
        [
            term.Z if term.relatedness is None else term.Z * term.relatedness[term.level_index]
            for term in spec.terms
        ],
        axis=1,
    )


def z_lambda_values(z_val, factors, layout: RandomEffectsLayout):
    """Values of Z Lambda_theta: each term's columns times T_k."""
    blocks, pos = [], 0
    for T, t in zip(factors, layout.terms):
        blocks.append(z_val[:, pos : pos + t.q] @ T)
        pos += t.q
    return jnp.concatenate(blocks, axis=1)


def split_leading(a, layout: RandomEffectsLayout):
    """The columns of a row-sparse (n, m) array (Z's indices or values): the leading term's q_1
    entries, and the others."""
    lead = layout.leading
    rest = [j for j in range(a.shape[1]) if not lead.row_pos <= j < lead.row_pos + lead.q]
    return a[:, lead.row_pos : lead.row_pos + lead.q], a[:, rest]


def off_diagonal_pattern(
    z_idx: np.ndarray, layout: RandomEffectsLayout, max_density: float = MAX_SPARSE_DENSITY
) -> BlockPattern | None:
    """The pattern of the blocked factor's L_21 where at most `max_density` of its blocks are
    non-zero (else None: it is held dense)."""
    lead, n_rows = layout.leading, layout.dense_block_size
    if n_rows == 0:
        return None
    leading, rest = split_leading(z_idx, layout)
    return block_pattern(
        leading[:, 0] // lead.q, rest - lead.n_levels * lead.q, lead.n_levels, n_rows, max_density
    )


def fixed_predictor(arrays: ModelArrays, beta):
    """X beta (beta may have leading axes), as beta' X' from the stored transpose: with p << n,
    XLA's CPU backend computes (p,) x (p, n) about three times faster than (n, p) x (p,), and
    this product is in every gradient of the non-centred program."""
    return beta @ arrays.Xt


def sparse_matvec(idx, val, u):
    """(Z Lambda) u for row-sparse storage."""
    return jnp.sum(val * u[idx], axis=1)


def sparse_rmatvec(idx, val, r, size: int):
    """(Z Lambda)' r."""
    return jnp.zeros(size, dtype=val.dtype).at[idx].add(val * r[:, None])


def sparse_crossprod(idx, val, M, size: int):
    """(Z Lambda)' M for a dense (n, p) matrix M."""
    return (
        jnp.zeros((size, M.shape[1]), dtype=val.dtype).at[idx].add(val[:, :, None] * M[:, None, :])
    )


def sparse_gram(idx, val, w, size: int):
    """(Z Lambda)' W (Z Lambda) for diagonal weights w, as a dense (size x size) matrix."""
    outer = w[:, None, None] * val[:, :, None] * val[:, None, :]
    return jnp.zeros((size, size), dtype=val.dtype).at[idx[:, :, None], idx[:, None, :]].add(outer)


def split_by_term(u, factors, layout: RandomEffectsLayout) -> list:
    """u -> [b_k (n_k, q_k)] with b_k = u_k T_k' (b = Lambda u, level by level)."""
    return [
        u[t.start : t.start + t.n_levels * t.q].reshape(t.n_levels, t.q) @ np.asarray(T).T
        for T, t in zip(factors, layout.terms)
    ]


def conditional_covariances(inverse_blocks, factors) -> list:
    """Per term, the (n_k, q_k, q_k) blocks of Lambda A^{-1} Lambda' (Var(b | y) up to sigma^2)."""
    return [T @ blocks @ T.T for T, blocks in zip(factors, inverse_blocks)]


def user_terms(spec: ModelSpec, factors, modes, cond_cov) -> tuple[list, list, list]:
    """Engine-side factors, modes and conditional covariances -> per term as the user sees it:
    a known-covariance term's T = theta I_r becomes its sd (1 x 1), v its b = F v per level of
    K (n_K, 1), and Var(v | y) the conditional variances diag(F Var(v | y) F') (n_K, 1, 1)."""
    per_term = [
        _user_term(term.relatedness, np.asarray(T), np.asarray(b), np.asarray(C))
        for term, T, b, C in zip(spec.terms, factors, modes, cond_cov)
    ]
    return tuple(list(parts) for parts in zip(*per_term))


def _user_term(F, T, b, C):
    if F is None:
        return T, b, C
    return T[:1, :1], F @ b[0][:, None], np.einsum("lr,rs,ls->l", F, C[0], F)[:, None, None]


class ModelArrays(NamedTuple):
    """The data of one model as a pytree: vmap over a leading axis to fit many datasets."""

    y: jnp.ndarray
    trials: jnp.ndarray
    log_norm: jnp.ndarray  # the family's data-only terms of log p(y_i) (`Family.log_norm`)
    offset: jnp.ndarray
    X: jnp.ndarray
    Xt: jnp.ndarray  # X' stored transposed (p, n), for `fixed_predictor`
    z_idx: jnp.ndarray
    z_val: jnp.ndarray
    residual: ResidualArrays | None = None  # where `layout.residual` is not None
    pattern: BlockPattern | None = None  # `off_diagonal_pattern`
    X_zi: jnp.ndarray | None = None  # the zero-inflation design (`Family.rows`)
    X_disp: jnp.ndarray | None = None  # the dispersion design (`Family.rows`)


def row_subset(arrays: ModelArrays, rows) -> ModelArrays:
    """The arrays of the rows `rows` (an index vector), for densities row by row: the prior
    weights and variance levels are taken with them, the groups of a correlated residual are
    not (a correlated Gaussian residual ties its rows together: its callers take all rows),
    and the pattern of L_21 is left out."""
    take = lambda a: None if a is None else a[rows]
    residual = arrays.residual
    if residual is not None:
        residual = residual._replace(weights=residual.weights[rows], level=residual.level[rows])
    return arrays._replace(
        y=take(arrays.y),
        trials=take(arrays.trials),
        log_norm=take(arrays.log_norm),
        offset=take(arrays.offset),
        X=take(arrays.X),
        Xt=arrays.Xt[:, rows],
        z_idx=take(arrays.z_idx),
        z_val=take(arrays.z_val),
        residual=residual,
        pattern=None,
        X_zi=take(arrays.X_zi),
        X_disp=take(arrays.X_disp),
    )


def model_arrays(spec: ModelSpec, layout: RandomEffectsLayout, dtype=None) -> ModelArrays:
    """The arrays in `dtype`, or JAX's default float of the calling context (float64 inside the
    package's own calls)."""
    dtype = dtype or jax.dtypes.canonicalize_dtype(np.float64)
    as_float = lambda a: jax.device_put(np.asarray(a, dtype=dtype))  # a transfer, no program
    residual = residual_arrays(spec.residual, dtype) if layout.residual is not None else None
    z_idx = z_indices(spec, layout)
    design = ModelArrays(
        as_float(spec.y),
        as_float(spec.trials),
        None,
        as_float(spec.offset),
        as_float(spec.X),
        as_float(np.transpose(spec.X)),
        jax.device_put(z_idx),
        as_float(z_values(spec)),
        residual,
        off_diagonal_pattern(z_idx, layout),
        None if spec.X_zi is None else as_float(spec.X_zi),
        None if spec.X_disp is None else as_float(spec.X_disp),
    )
    return with_response(design, spec.y, spec.family)


def with_response(arrays: ModelArrays, y, family) -> ModelArrays:
    """The same design with another response vector y, held on the scale of the family's log
    density (`Family.on_location_scale`), and its `Family.log_norm`."""
    y = np.asarray(y, dtype=float)
    log_norm = family.log_norm(y, np.asarray(arrays.trials, dtype=float))
    dtype = arrays.trials.dtype
    return arrays._replace(
        y=jnp.asarray(family.on_location_scale(y), dtype=dtype),
        log_norm=jnp.asarray(log_norm, dtype=dtype),
    )


def row_logliks(eta, aux, arrays: ModelArrays, family, link):
    """log p(y_i | eta_i, aux) of every row (eta may have leading axes), times its weight."""
    aux = family.rows(aux, arrays)
    return row_weights(arrays) * (
        family.logpdf(arrays.y, eta, aux, arrays.trials, link) + arrays.log_norm
    )


def row_weights(arrays: ModelArrays):
    """Prior weights of the log-likelihood terms (glm's), or 1: for the families whose model
    is not whitened (a linear gaussian model's weights are in its residual covariance)."""
    return 1.0 if arrays.residual is None else arrays.residual.weights
