"""Kernel density estimates that respect a parameter's bounds."""

from __future__ import annotations

import numpy as np
from scipy.stats import gaussian_kde


def parameter_bounds(fit) -> dict[str, tuple[float, float]]:
    """Name -> (lower, upper) of every population parameter of `fit`'s model."""
    return {p.name: (p.lower, p.upper) for p in fit.model.parameters.parameters}


def bounded_density(draws, bounds=(-np.inf, np.inf), points: int = 300, span=None):
    """(grid, density) of `draws`: a Gaussian KDE reflected at each finite bound, so that a
    posterior piled up against sd = 0 or cor = 1 is drawn rising to the bound instead of
    falling off before it. `span` (lo, hi) sets the range shown, within the bounds."""
    x = np.ravel(np.asarray(draws, dtype=float))
    lower, upper = bounds
    lo, hi = span if span is not None else np.quantile(x, [0.001, 0.999])
    grid = np.linspace(max(lo, lower), min(hi, upper), points)
    copies = [x]
    copies += [2 * lower - x] if np.isfinite(lower) else []
    copies += [2 * upper - x] if np.isfinite(upper) else []
    pooled = np.concatenate(copies)
    bandwidth = gaussian_kde(x).factor * x.std()  # that of the draws, not of the copies
    kde = gaussian_kde(pooled, bw_method=bandwidth / pooled.std())
    return grid, kde(grid) * len(copies)
