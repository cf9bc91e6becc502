"""The block Cholesky of A = Lambda'Z'WZ Lambda + I against a dense factorisation."""

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import glmm_bayes as gb
from glmm_bayes.core.cholesky import (
    factor_penalised_gram,
    inverse_diagonal_blocks,
    logdet,
    solve,
    solve_lower,
)
from glmm_bayes.core.off_diagonal import DenseBlock, SparseBlock
from glmm_bayes.core.structure import (
    RandomEffectsLayout,
    covariance_factors,
    model_arrays,
    off_diagonal_pattern,
    sparse_gram,
    z_lambda_values,
)

pytestmark = pytest.mark.usefixtures("float64")  # calls engine functions directly


def crossed_design(seed=0):
    """Two vector terms on crossed factors plus a scalar one; the leading term is not the first."""
    rng = np.random.default_rng(seed)
    n = 300
    data = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "a": rng.integers(0, 7, n).astype(str),
            "b": rng.integers(0, 40, n).astype(str),
            "c": rng.integers(0, 5, n).astype(str),
        }
    )
    data["y"] = rng.normal(size=n)
    return gb.Model("y ~ x + (1 + x | a) + (1 + x | b) + (1 | c)", data)


def dense_and_blocked(seed=0, sparse=False):
    """A dense A and its blocked factor, with L_21 held sparse or dense."""
    spec = crossed_design(seed).spec
    layout = RandomEffectsLayout.from_spec(spec)
    arrays = model_arrays(spec, layout)
    arrays = arrays._replace(
        pattern=off_diagonal_pattern(
            np.asarray(arrays.z_idx), layout, max_density=1.0 if sparse else 0.0
        )
    )
    rng = np.random.default_rng(seed + 1)
    theta = jnp.asarray(rng.uniform(0.3, 1.5, layout.n_theta))
    zl = z_lambda_values(arrays.z_val, covariance_factors(theta, layout), layout)
    w = jnp.asarray(rng.uniform(0.2, 2.0, spec.n_obs))
    q = layout.n_random
    A = np.asarray(sparse_gram(arrays.z_idx, zl, w, q)) + np.eye(q)
    return A, factor_penalised_gram(arrays, zl, w, layout), layout, rng


def test_leading_term_is_the_largest():
    layout = RandomEffectsLayout.from_spec(crossed_design().spec)
    assert layout.leading is layout.terms[1]  # (1 + x | b): 40 levels x 2


@pytest.mark.parametrize("sparse", [False, True])
def test_block_factor_agrees_with_dense(sparse):
    """Tolerance 1e-10: both are backward-stable factorisations of a well-conditioned A."""
    A, chol, layout, rng = dense_and_blocked(sparse=sparse)
    assert isinstance(chol.L21, SparseBlock if sparse else DenseBlock)
    b = rng.normal(size=(A.shape[0], 3))
    assert float(logdet(chol)) == pytest.approx(np.linalg.slogdet(A)[1], rel=1e-10)
    np.testing.assert_allclose(
        np.asarray(solve(chol, jnp.asarray(b))), np.linalg.solve(A, b), rtol=1e-10, atol=1e-12
    )
    x = np.asarray(solve_lower(chol, jnp.asarray(b[:, 0])))
    assert x @ x == pytest.approx(b[:, 0] @ np.linalg.solve(A, b[:, 0]), rel=1e-10)
    A_inv = np.linalg.inv(A)
    for t, blocks in zip(layout.terms, inverse_diagonal_blocks(chol, layout)):
        for level in range(t.n_levels):
            cols = t.start + level * t.q + np.arange(t.q)
            np.testing.assert_allclose(
                np.asarray(blocks[level]), A_inv[np.ix_(cols, cols)], rtol=1e-10, atol=1e-12
            )


def test_sparse_and_dense_off_diagonal_give_the_same_criterion_and_gradient():
    """The REML criterion and its autodiff gradient through either form of L_21 (1e-10: the
    same arithmetic summed in another order)."""
    import jax

    from glmm_bayes.core.lmm_deviance import profiled_deviance

    spec = crossed_design(3).spec
    layout = RandomEffectsLayout.from_spec(spec)
    arrays = model_arrays(spec, layout)
    theta = jnp.asarray(np.random.default_rng(4).uniform(0.3, 1.5, layout.n_theta))
    results = []
    for density in (0.0, 1.0):
        sparse = arrays._replace(
            pattern=off_diagonal_pattern(np.asarray(arrays.z_idx), layout, density)
        )
        results.append(
            jax.jit(jax.value_and_grad(profiled_deviance), static_argnums=(3,))(
                theta, sparse, True, layout
            )
        )
    (v0, g0), (v1, g1) = results
    assert float(v1) == pytest.approx(float(v0), rel=1e-10)
    np.testing.assert_allclose(np.asarray(g1), np.asarray(g0), rtol=1e-8, atol=1e-10)


def test_sparse_off_diagonal_is_chosen_for_a_sparse_design():
    """Nested-like crossing (each level of b meets few levels of c) is held sparse, a fully
    crossed design dense."""
    rng = np.random.default_rng(5)
    n = 2000
    b = rng.integers(0, 400, n)
    data = pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "b": b.astype(str),
            "c": (b // 4 + rng.integers(0, 2, n)).astype(str),
            "d": rng.integers(0, 5, n).astype(str),
        }
    )
    for formula, sparse in [
        ("y ~ 1 + (1 | b) + (1 | c)", True),
        ("y ~ 1 + (1 | b) + (1 | d)", False),
    ]:
        spec = gb.Model(formula, data).spec
        layout = RandomEffectsLayout.from_spec(spec)
        assert (model_arrays(spec, layout).pattern is not None) == sparse
