"""The teaching picture: posterior densities with the REML/ML/Laplace estimates overlaid."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import gaussian_kde

from ..results.compare import fit_intervals


def plot_compare(
    *fits, parameters: list[str] | None = None, ncols: int = 3, intervals: str = "profile"
):
    """One panel per population parameter: a density per posterior, a point and its 95%
    interval per point fit, the intervals of `gb.compare` (`intervals`: "profile", "wald" or
    "satterthwaite"). Returns the matplotlib Figure."""
    posteriors = [f for f in fits if f.kind == "bayesian"]
    points = [f for f in fits if f.kind == "frequentist"]
    tables = [fit_intervals(f, intervals) for f in points]
    names = parameters or list(dict.fromkeys(n for f in fits for n in f.population.index))
    nrows = int(np.ceil(len(names) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4 * ncols, 2.6 * nrows), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, name in zip(axes.flat, names):
        for i, post in enumerate(posteriors):
            draws = post.population_draws().get(name)
            if draws is None:
                continue
            x = np.asarray(draws).reshape(-1)
            grid = np.linspace(*np.quantile(x, [0.001, 0.999]), 200)
            if np.ptp(x) > 0:
                ax.plot(
                    grid, gaussian_kde(x)(grid), color=colours[i % len(colours)], label=post.method
                )
        for j, (fit, table) in enumerate(zip(points, tables)):
            row = table.loc[name] if name in table.index else None
            if row is None:
                continue
            colour = colours[(len(posteriors) + j) % len(colours)]
            ax.axvline(row["estimate"], color=colour, linestyle="--", label=fit.method)
            if np.isfinite(row.get("lower", np.nan)):
                ax.axvspan(row["lower"], row["upper"], color=colour, alpha=0.12)
        ax.set_title(name, fontsize=9)
        ax.set_yticks([])
    for ax in list(axes.flat)[len(names) :]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    return fig
