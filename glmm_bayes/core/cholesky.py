"""Cholesky factor of A = Lambda' Z' W Z Lambda + I that exploits its block structure.

Split u into the leading term's columns (1) and the rest (2). Each observation belongs to one
level of the leading term, so A_11 is block diagonal (n_1 blocks of q_1 x q_1), and
    L = [[L_11, 0], [L_21, L_22]],   L_11 L_11' = A_11,   L_21 = A_21 L_11^{-T},
    L_22 L_22' = A_22 - L_21 L_21'   (dense, only as large as the non-leading terms).
This is lme4's reason for putting the factor with most levels first: for InstEval the dense
factor is 1142 x 1142 instead of 4128 x 4128. L_21 is held sparse where its pattern is
(`off_diagonal.py`). Everything is a pure JAX function of arrays.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular

from .off_diagonal import DenseBlock, SparseBlock, off_diagonal_block
from .structure import ModelArrays, RandomEffectsLayout, sparse_gram, split_leading


class BlockCholesky(NamedTuple):
    L11: jnp.ndarray  # (n_1, q_1, q_1) lower-triangular diagonal blocks
    L21: DenseBlock | SparseBlock  # (q_rest, n_1 q_1), `off_diagonal.py`
    L22: jnp.ndarray  # (q_rest, q_rest) lower triangular


def _inverse_blocks(L11):
    """L_11j^{-1} for every level j."""
    eye = jnp.broadcast_to(jnp.eye(L11.shape[1], dtype=L11.dtype), L11.shape)
    return solve_triangular(L11, eye, lower=True)


def factor_penalised_gram(
    arrays: ModelArrays, val, w, layout: RandomEffectsLayout
) -> BlockCholesky:
    """L with L L' = (Z Lambda)' diag(w) (Z Lambda) + I, from the values `val` of the
    row-sparse Z Lambda on `arrays.z_idx` (L_21 sparse where `arrays.pattern` says so)."""
    lead = layout.leading
    q1, n1 = lead.q, lead.n_levels
    (idx1, idx2), (val1, val2) = split_leading(arrays.z_idx, layout), split_leading(val, layout)
    level, columns = idx1[:, 0] // q1, idx2 - n1 * q1
    A11 = jnp.zeros((n1, q1, q1), dtype=val.dtype).at[level].add(
        w[:, None, None] * val1[:, :, None] * val1[:, None, :]
    ) + jnp.eye(q1, dtype=val.dtype)
    L11 = jnp.linalg.cholesky(A11)
    q2 = layout.dense_block_size
    if q2 == 0:
        return BlockCholesky(
            L11, DenseBlock(jnp.zeros((0, n1 * q1), val.dtype)), jnp.zeros((0, 0), val.dtype)
        )
    L21 = off_diagonal_block(
        w[:, None, None] * val2[:, :, None] * val1[:, None, :],
        level,
        columns,
        _inverse_blocks(L11),
        q2,
        arrays.pattern,
    )
    A22 = sparse_gram(columns, val2, w, q2) + jnp.eye(q2, dtype=val.dtype)
    return BlockCholesky(L11, L21, jnp.linalg.cholesky(A22 - L21.gram()))


def logdet(chol: BlockCholesky):
    """log|A| = log|L|^2."""
    diag11 = jnp.diagonal(chol.L11, axis1=-2, axis2=-1)
    return 2 * (jnp.sum(jnp.log(diag11)) + jnp.sum(jnp.log(jnp.diag(chol.L22))))


def solve_lower(chol: BlockCholesky, b):
    """L^{-1} b for b of shape (q,) or (q, k)."""
    n1, q1, _ = chol.L11.shape
    B = b.reshape(b.shape[0], -1)
    x1 = solve_triangular(chol.L11, B[: n1 * q1].reshape(n1, q1, -1), lower=True).reshape(
        n1 * q1, -1
    )
    x2 = solve_triangular(chol.L22, B[n1 * q1 :] - chol.L21.matmul(x1), lower=True)
    return jnp.concatenate([x1, x2]).reshape(b.shape)


def solve_upper(chol: BlockCholesky, c):
    """L^{-T} c for c of shape (q,) or (q, k)."""
    n1, q1, _ = chol.L11.shape
    C = c.reshape(c.shape[0], -1)
    x2 = solve_triangular(chol.L22, C[n1 * q1 :], lower=True, trans="T")
    rhs1 = (C[: n1 * q1] - chol.L21.rmatmul(x2)).reshape(n1, q1, -1)
    x1 = solve_triangular(chol.L11, rhs1, lower=True, trans="T").reshape(n1 * q1, -1)
    return jnp.concatenate([x1, x2]).reshape(c.shape)


def solve(chol: BlockCholesky, b):
    """A^{-1} b."""
    return solve_upper(chol, solve_lower(chol, b))


def inverse_diagonal_blocks(chol: BlockCholesky, layout: RandomEffectsLayout) -> list:
    """Per term (formula order), the (n_k, q_k, q_k) diagonal blocks of A^{-1} = L^{-T} L^{-1}.

    Leading term: L_11j^{-T} L_11j^{-1} + M_j' M_j with M = L_22^{-1} L_21 L_11^{-1};
    other terms: blocks of (A^{-1})_22 = L_22^{-T} L_22^{-1}.
    """
    n1, q1, _ = chol.L11.shape
    q2 = chol.L22.shape[0]
    L11_inv = _inverse_blocks(chol.L11)
    lead_blocks = jnp.swapaxes(L11_inv, 1, 2) @ L11_inv
    if q2:
        L21_blocks = chol.L21.dense().reshape(q2, n1, q1).transpose(1, 0, 2)  # (n1, q2, q1)
        M = solve_triangular(
            chol.L22, (L21_blocks @ L11_inv).transpose(1, 0, 2).reshape(q2, -1), lower=True
        ).reshape(q2, n1, q1)
        lead_blocks = lead_blocks + jnp.einsum("knj,knl->njl", M, M)
        L22_inv = solve_triangular(chol.L22, jnp.eye(q2, dtype=chol.L22.dtype), lower=True)
        rest_inverse = L22_inv.T @ L22_inv
    out = []
    for t in layout.terms:
        if t.start == 0:
            out.append(lead_blocks)
            continue
        idx = (t.start - n1 * q1) + jnp.arange(t.n_levels)[:, None] * t.q + jnp.arange(t.q)[None, :]
        out.append(rest_inverse[idx[:, :, None], idx[:, None, :]])
    return out
