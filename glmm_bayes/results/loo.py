"""PSIS-LOO (Vehtari, Gelman and Gabry 2017; Vehtari et al. 2024) by blocks of rows.

Pareto smoothing treats each row's S draws of log p(y_i | theta_s) alone, so elpd_i, p_loo_i
and k_i of a block of rows need only that block: `psis_loo` takes the blocks one at a time
through ArviZ's array functions and sums as `arviz_stats.loo` does (elpd = sum elpd_i, se =
sqrt(n var(elpd_i)), p_loo = sum p_loo_i). The memory is a block's, not the S x n matrix and
ArviZ's smoothed weights beside it (InstEval: 2.3 GB each in float64). The smoothed log
weights are not returned (`arviz_stats.loo(post.idata)` after `post.log_likelihood()` has them).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import numpy as np

from ..errors import SamplingWarning


def relative_efficiency(posterior) -> float:
    """r_eff = the mean over every posterior quantity of ESS(mean) / S, as `arviz_stats.loo`
    takes it; 1 for one chain."""
    import arviz_stats  # with scipy.stats, 0.4 s: loaded on first use

    if posterior.sizes["chain"] == 1:
        return 1.0
    ess = arviz_stats.ess(posterior, method="mean")
    values = np.concatenate([np.ravel(ess[name].values) for name in ess.data_vars])
    n_samples = posterior.sizes["chain"] * posterior.sizes["draw"]
    return float(np.mean(values) / n_samples)


def psis_loo(blocks: Iterable[tuple[slice, np.ndarray]], n_rows: int, r_eff: float):
    """`arviz_stats.ELPDDataLOO` from blocks (rows, log-likelihood (chains, draws, rows));
    warns (`SamplingWarning`) where k_i exceeds min(1 - 1 / log10 S, 0.7), as ArviZ does."""
    import xarray as xr
    from arviz_stats.base import array_stats
    from arviz_stats.utils import ELPDDataLOO

    elpd_i, pareto_k, p_loo_i = (np.empty(n_rows) for _ in range(3))
    for rows, values in blocks:
        n_samples = values.shape[0] * values.shape[1]
        found = array_stats.loo(values, chain_axis=0, draw_axis=1, r_eff=r_eff)
        elpd_i[rows], pareto_k[rows], p_loo_i[rows] = found
    elpd, se, p_loo, _ = array_stats.loo_summary(elpd_i, p_loo_i)
    good_k = min(1 - 1 / np.log10(n_samples), 0.7) if n_samples > 1 else 0.7
    above = int(np.sum(pareto_k > good_k))
    if above:
        warnings.warn(
            f"PSIS-LOO: Pareto k above {good_k:.2f} for {above} of {n_rows} rows: the "
            "posterior without those rows is far from the full one, and their elpd_i is not "
            "reliable (post.loo().pareto_k gives k by row)",
            SamplingWarning,
            stacklevel=3,
        )
    pointwise = lambda a: xr.DataArray(a, dims=["obs"], coords={"obs": np.arange(n_rows)}, name="y")
    return ELPDDataLOO(
        elpd=float(elpd),
        se=float(se),
        p=float(p_loo),
        n_samples=n_samples,
        n_data_points=n_rows,
        scale="log",
        warning=bool(above),
        good_k=good_k,
        elpd_i=pointwise(elpd_i),
        pareto_k=pointwise(pareto_k),
        approx_posterior=False,
    )
