"""Side-by-side table of several fits of one model: the posterior next to REML/ML/Laplace."""

from __future__ import annotations

import pandas as pd


def _label(fit, seen: dict) -> str:
    base = fit.method
    seen[base] = seen.get(base, 0) + 1
    return base if seen[base] == 1 else f"{base}.{seen[base] - 1}"


def compare(*fits) -> pd.DataFrame:
    """One row per population parameter (fixed effects, sds, correlations, sigma); for each fit
    a column block (estimate, lower, upper): posterior mean and 95% interval, or the estimate
    and its 95% profile-likelihood interval."""
    if not fits:
        raise ValueError("compare() needs at least one fit")
    blocks, seen = {}, {}
    for fit in fits:
        table = fit.population
        blocks[_label(fit, seen)] = table.reindex(columns=["estimate", "lower", "upper"])
    order = list(dict.fromkeys(name for block in blocks.values() for name in block.index))
    return pd.concat(blocks, axis=1).reindex(order)
