"""The teaching picture: posterior densities with the REML/ML/Laplace estimates overlaid."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ..results.compare import fit_intervals, fit_labels
from .density import bounded_density, parameter_bounds


def plot_compare(
    *fits,
    parameters: list[str] | None = None,
    ncols: int = 3,
    intervals: str = "profile",
    names: list[str] | None = None,
):
    """One panel per population parameter: a density per posterior, a point and its 95%
    interval per point fit, the intervals of `gb.compare` (`intervals`: "profile", "wald" or
    "satterthwaite"), labelled by `names` or each fit's method. Returns the matplotlib Figure."""
    labelled = list(zip(fits, fit_labels(fits, names)))
    posteriors = [(f, label) for f, label in labelled if f.kind == "bayesian"]
    points = [(f, label) for f, label in labelled if f.kind == "frequentist"]
    tables = [fit_intervals(f, intervals) for f, _ in points]
    shown = parameters or list(dict.fromkeys(n for f in fits for n in f.population.index))
    nrows = int(np.ceil(len(shown) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4 * ncols, 2.6 * nrows), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, name in zip(axes.flat, shown):
        for i, (post, label) in enumerate(posteriors):
            draws = post.population_draws().get(name)
            if draws is None:
                continue
            x = np.asarray(draws).reshape(-1)
            if np.ptp(x) > 0:
                grid, density = bounded_density(x, parameter_bounds(post)[name])
                ax.plot(grid, density, color=colours[i % len(colours)], label=label)
        for j, ((_, label), table) in enumerate(zip(points, tables)):
            row = table.loc[name] if name in table.index else None
            if row is None:
                continue
            colour = colours[(len(posteriors) + j) % len(colours)]
            ax.axvline(row["estimate"], color=colour, linestyle="--", label=label)
            if np.isfinite(row.get("lower", np.nan)):
                ax.axvspan(row["lower"], row["upper"], color=colour, alpha=0.12)
        ax.set_title(name, fontsize=9)
        ax.set_yticks([])
        ax.tick_params(labelsize=8)
    for ax in list(axes.flat)[len(shown) :]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    return fig
