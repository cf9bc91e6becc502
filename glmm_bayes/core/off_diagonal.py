"""The off-diagonal block L_21 = A_21 L_11^{-T} of the blocked Cholesky factor, dense or sparse.

L_21 is q_2 x n_1 q_1 (`cholesky.py`'s notation). Its 1 x q_1 block (r, j) is non-zero only
where some observation has level j of the leading term and a non-zero in column r of the other
terms: the pattern of A_21 = (Z_2 Lambda_2)' W (Z_1 Lambda_1), fixed by the design. Where the
leading levels meet few of the other columns (InstEval: students x lecturers, 2.6% of the
blocks) L_21 keeps only those blocks, and
    (L_21 L_21')_{rs} = sum_j L_21[r, j] . L_21[s, j]
is a scatter-add over the pairs of blocks that share a level j: sum_j c_j (c_j + 1) / 2 products
(c_j blocks in column j, lower triangle) instead of a dense product of q_2^2 n_1 q_1 flops.
On a CPU one scatter-add costs about what 200 flops of a dense product do, so with c_j ~ d q_2
(density d) the sparse form is the faster one while 100 d^2 < 1: below `MAX_SPARSE_DENSITY`.
Both forms offer the same four operations, so the factor's solves do not care which they hold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

MAX_SPARSE_DENSITY = 0.1


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class BlockPattern:
    """Where the non-zero blocks of L_21 are, sorted by leading level j, then row r."""

    entry_block: np.ndarray  # (n, m_2) the block of each observation's non-leading non-zero
    row: np.ndarray  # (K,) r of each block
    level: np.ndarray  # (K,) j of each block
    pair_first: np.ndarray  # (P,) pairs of blocks in one level, row[first] >= row[second]
    pair_second: np.ndarray  # (P,)
    pair_target: np.ndarray  # (P,) flat index row[first] * q_2 + row[second]
    n_rows: int = field(metadata=dict(static=True))  # q_2
    n_levels: int = field(metadata=dict(static=True))  # n_1


def block_pattern(
    level: np.ndarray,
    columns: np.ndarray,
    n_levels: int,
    n_rows: int,
    max_density: float = MAX_SPARSE_DENSITY,
) -> BlockPattern | None:
    """The pattern of L_21 from each observation's leading level (n,) and its non-leading
    columns (n, m_2); None where the blocks are dense enough for the dense product to win."""
    keys, entry_block = np.unique(level[:, None] * n_rows + columns, return_inverse=True)
    if len(keys) > max_density * n_levels * n_rows:
        return None
    block_level, block_row = keys // n_rows, keys % n_rows
    starts = np.concatenate([[0], np.cumsum(np.bincount(block_level, minlength=n_levels))[:-1]])
    rank = np.arange(len(keys)) - starts[block_level]  # position of a block in its level
    first = np.repeat(np.arange(len(keys)), rank + 1)  # paired with each block up to it
    pair_start = np.concatenate([[0], np.cumsum(rank + 1)[:-1]])
    second = starts[block_level[first]] + np.arange(len(first)) - pair_start[first]
    as_index = lambda a: np.asarray(a, dtype=np.int32)
    return BlockPattern(
        as_index(entry_block.reshape(columns.shape)),
        as_index(block_row),
        as_index(block_level),
        as_index(first),
        as_index(second),
        as_index(block_row[first] * n_rows + block_row[second]),
        n_rows,
        n_levels,
    )


class DenseBlock(NamedTuple):
    """L_21 held as a dense (q_2, n_1 q_1) matrix."""

    matrix: jnp.ndarray

    def matmul(self, X):
        """L_21 X for X of shape (n_1 q_1, k)."""
        return self.matrix @ X

    def rmatmul(self, Y):
        """L_21' Y for Y of shape (q_2, k)."""
        return self.matrix.T @ Y

    def gram(self):
        """L_21 L_21'."""
        return self.matrix @ self.matrix.T

    def dense(self):
        """L_21 as a dense (q_2, n_1 q_1) matrix."""
        return self.matrix


class SparseBlock(NamedTuple):
    """L_21 held as its non-zero blocks (K, q_1) on `pattern`."""

    values: jnp.ndarray
    pattern: BlockPattern

    def matmul(self, X):
        p, q1 = self.pattern, self.values.shape[1]
        parts = jnp.einsum("ka,kac->kc", self.values, X.reshape(p.n_levels, q1, -1)[p.level])
        return jnp.zeros((p.n_rows, X.shape[1]), X.dtype).at[p.row].add(parts)

    def rmatmul(self, Y):
        p, q1 = self.pattern, self.values.shape[1]
        parts = self.values[:, :, None] * Y[p.row][:, None, :]
        return (
            jnp.zeros((p.n_levels, q1, Y.shape[1]), Y.dtype)
            .at[p.level]
            .add(parts)
            .reshape(-1, Y.shape[1])
        )

    def gram(self):
        p = self.pattern
        products = jnp.sum(self.values[p.pair_first] * self.values[p.pair_second], axis=1)
        lower = (
            jnp.zeros(p.n_rows * p.n_rows, self.values.dtype)
            .at[p.pair_target]
            .add(products)
            .reshape(p.n_rows, p.n_rows)
        )
        return lower + lower.T - jnp.diag(jnp.diag(lower))

    def dense(self):
        p, q1 = self.pattern, self.values.shape[1]
        return (
            jnp.zeros((p.n_rows, p.n_levels, q1), self.values.dtype)
            .at[p.row, p.level]
            .set(self.values)
            .reshape(p.n_rows, -1)
        )


def off_diagonal_block(
    products, level, columns, L11_inverse, n_rows: int, pattern: BlockPattern | None
):
    """L_21 = A_21 L_11^{-T} from each observation's w z_2 z_1' (n, m_2, q_1): z_1 its leading
    entries (at `level`), z_2 its other entries (at `columns` (n, m_2) of the q_2 = n_rows)."""
    n1, q1, _ = L11_inverse.shape
    if pattern is None:
        A21 = jnp.zeros((n_rows, n1, q1), products.dtype).at[columns, level[:, None]].add(products)
        return DenseBlock(jnp.einsum("rja,jba->rjb", A21, L11_inverse).reshape(n_rows, n1 * q1))
    A21 = jnp.zeros((len(pattern.row), q1), products.dtype).at[pattern.entry_block].add(products)
    return SparseBlock(jnp.einsum("ka,kba->kb", A21, L11_inverse[pattern.level]), pattern)
