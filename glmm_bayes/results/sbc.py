"""Simulation-based calibration (Talts, Betancourt, Simpson, Vehtari and Gelman 2018).

For d = 1..n: parameters theta_d from the prior, data y_d from the model at theta_d (the prior
predictive, `Model.sample_prior`), then NUTS on y_d (`Model.sample_batch`: one compiled
program for every dataset). If the sampler draws from the posterior that the priors and the
likelihood define, the rank of theta_d among L posterior draws (thinned, so that they are
nearly independent) is uniform on 0..L for every parameter; a sampler that is biased, or a prior
that is not the one the data came from, shows as ranks piled at an end (the posterior off to
one side) or in the middle (too wide) or at both ends (too narrow). `uniformity()` tests each
parameter's ranks with a chi-square test over bins; `plot()` draws the rank histograms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import ModelError, integer_argument
from .posterior import idata_name


@dataclass(frozen=True)
class SBCResult:
    """`ranks`: datasets x parameters, the rank of each simulated value among `size` posterior
    draws (0..size); `status`: the batch's sampling status per dataset."""

    ranks: pd.DataFrame
    size: int
    status: pd.DataFrame

    def _bins(self, bins: int | None) -> tuple[np.ndarray, np.ndarray]:
        """Bin edges over the ranks 0..size and each bin's probability under uniform ranks."""
        bins = bins or max(2, min(20, len(self.ranks) // 5, self.size + 1))
        edges = np.linspace(0, self.size + 1, bins + 1)
        share = np.histogram(np.arange(self.size + 1), edges)[0] / (self.size + 1)
        return edges, share

    def uniformity(self, bins: int | None = None) -> pd.DataFrame:
        """Per parameter: the chi-square statistic of the binned ranks against the uniform
        expectation, its degrees of freedom and p-value (default bins: at least 5 expected
        ranks in each, at most 20)."""
        edges, share = self._bins(bins)
        rows = {}
        for name, ranks in self.ranks.items():
            counts = np.histogram(ranks, edges)[0]
            test = stats.chisquare(counts, share * len(ranks))
            rows[name] = {"chi2": test.statistic, "df": len(counts) - 1, "p_value": test.pvalue}
        return pd.DataFrame.from_dict(rows, orient="index")

    def plot(self, bins: int | None = None):
        """Rank histograms, one panel per parameter, with the band where 99% of a bin's
        counts fall under uniform ranks."""
        import matplotlib.pyplot as plt

        edges, share = self._bins(bins)
        names = list(self.ranks.columns)
        columns = min(3, len(names))
        rows = -(-len(names) // columns)
        fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3 * rows), squeeze=False)
        n = len(self.ranks)
        low, high = stats.binom.ppf(0.005, n, share), stats.binom.ppf(0.995, n, share)
        for ax, name in zip(axes.flat, names):
            ax.stairs(high, edges, baseline=low, fill=True, color="0.85", label="99% if uniform")
            ax.stairs(np.histogram(self.ranks[name], edges)[0], edges, color="C0", lw=1.5)
            ax.set_title(name, fontsize=9)
            ax.set_xlabel(f"rank among {self.size} draws")
        for ax in list(axes.flat)[len(names) :]:
            ax.set_visible(False)
        axes.flat[0].legend(fontsize=8)
        fig.tight_layout()
        return fig

    def __str__(self) -> str:
        converged = int(self.status["converged"].sum())
        return (
            f"simulation-based calibration: {len(self.ranks)} datasets ({converged} converged), "
            f"ranks among {self.size} posterior draws\n{self.uniformity().to_string()}"
        )


def sbc(
    model,
    n: int = 100,
    draws: int = 1000,
    warmup: int = 1000,
    chains: int = 4,
    thin: int = 10,
    seed: int = 0,
    simulate_from=None,
    progress: bool = True,
) -> SBCResult:
    """Simulation-based calibration of `model`'s NUTS with its priors: `n` datasets from the
    prior predictive of `simulate_from` (default: the model itself; another model of the same
    design and parameters with other priors checks that a wrong prior is caught), each sampled
    by `model.sample_batch` (draws, warmup, chains), ranks among every `thin`-th draw."""
    n, thin = integer_argument("n", n, 2), integer_argument("thin", thin, 1)
    seed = integer_argument("seed", seed, 0)
    source = simulate_from if simulate_from is not None else model
    names = list(model.parameters.names)
    if list(source.parameters.names) != names or source.spec.n_obs != model.spec.n_obs:
        raise ModelError(
            "simulate_from must be a model of the same design and parameters "
            f"({names}, {model.spec.n_obs} rows)"
        )
    prior = source.sample_prior(draws=n, seed=seed)
    truth = {name: prior["prior"][idata_name(name)].to_numpy().reshape(n) for name in names}
    responses = prior["prior_predictive"]["y"].to_numpy().reshape(n, -1)
    batch = model.sample_batch(
        responses, draws=draws, warmup=warmup, chains=chains, seed=seed + 1, progress=progress
    )
    ranks, size = {}, None
    for name in names:
        kept = batch.draws(name)[:, :, ::thin].reshape(n, -1)
        size = kept.shape[1]
        ranks[name] = np.sum(kept < truth[name][:, None], axis=1)
    return SBCResult(pd.DataFrame(ranks).rename_axis("dataset"), size, batch.status)
