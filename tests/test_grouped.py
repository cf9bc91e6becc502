"""The Gaussian marginal likelihood from per-group sufficient statistics equals the row-wise
one (`reml.gaussian_deviance`) to rounding, whatever the parameters."""

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import glmm_bayes as gb
from glmm_bayes.core.grouped import (
    group_statistics,
    grouped_gaussian_deviance,
    shares_one_factor,
)
from glmm_bayes.core.lmm_deviance import gaussian_deviance
from glmm_bayes.core.structure import factors_to_theta


def _simulated(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 9, size=70)  # unbalanced groups
    x, z = rng.normal(size=70), rng.uniform(0, 5, size=70)
    return pd.DataFrame(
        {
            "g": [f"s{k}" for k in g],
            "x": x,
            "z": z,
            "t": rng.uniform(1, 3, 70),
            "h": [f"h{k}" for k in rng.integers(0, 4, 70)],
            "y": 2 + x + rng.normal(size=9)[g] * (1 + z) + rng.normal(size=70),
        }
    )


@pytest.mark.parametrize(
    "formula",
    [
        "y ~ x + (1 | g)",
        "y ~ x + z + (z | g)",
        "y ~ x + (1 + x + z | g)",
        "y ~ x + (1 | g) + (0 + z | g)",  # two terms on one factor
        "y ~ 0 + x + (x || g)",
        "y ~ x + offset(log(t)) + (1 | g)",
    ],
)
def test_grouped_deviance_equals_the_row_wise_deviance(formula, float64):
    m = gb.Model(formula, _simulated(0))
    layout, arrays = m.engine_data()
    assert shares_one_factor(arrays, layout)
    stats = group_statistics(arrays, layout)
    rng = np.random.default_rng(1)
    for _ in range(5):
        beta = jnp.asarray(rng.normal(size=arrays.X.shape[1]) * 3)
        factors = [
            jnp.asarray(np.tril(rng.normal(size=(t.q, t.q))) + 2 * np.eye(t.q))
            for t in layout.terms
        ]
        sigma = float(rng.uniform(0.3, 3))
        rows = gaussian_deviance(beta, factors_to_theta(factors) / sigma, sigma, arrays, layout)
        grouped = grouped_gaussian_deviance(beta, factors, sigma, stats)
        assert float(grouped) == pytest.approx(float(rows), rel=1e-11)


def test_crossed_or_nested_factors_do_not_share_one_factor(float64):
    for formula in ("y ~ x + (1 | g) + (1 | h)", "y ~ x + (1 | g/h)"):
        layout, arrays = gb.Model(formula, _simulated(0)).engine_data()
        assert not shares_one_factor(arrays, layout)
