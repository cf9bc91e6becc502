"""Side-by-side table of several fits of one model: the posterior next to REML/ML/Laplace."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import ModelError


def fit_labels(fits, names: list[str] | None = None) -> list[str]:
    """One label per fit: `names`, or each fit's method, numbered where repeated ("REML",
    "REML.1")."""
    if names is not None:
        if len(names) != len(fits) or len(set(names)) != len(names):
            raise ModelError(f"names must be {len(fits)} distinct labels, one per fit; got {names}")
        return list(names)
    seen, labels = {}, []
    for fit in fits:
        seen[fit.method] = seen.get(fit.method, 0) + 1
        count = seen[fit.method]
        labels.append(fit.method if count == 1 else f"{fit.method}.{count - 1}")
    return labels


def fit_intervals(fit, intervals: str = "profile") -> pd.DataFrame:
    """A fit's estimate, lower and upper per population parameter: a posterior's mean and 95%
    interval, a point fit's estimate and 95% `intervals` ("profile", "wald" or
    "satterthwaite", `FrequentistFit.intervals`)."""
    return fit.intervals(intervals) if fit.kind == "frequentist" else fit.population


def compare(*fits, intervals: str = "profile", names: list[str] | None = None) -> pd.DataFrame:
    """One row per population parameter (fixed effects, sds, correlations, sigma); for each fit
    a column block (estimate, lower, upper): posterior mean and 95% interval, or the estimate
    and its 95% interval, profile-likelihood by default (computed here once per fit; "wald"
    skips them, "satterthwaite" gives the fixed effects of an LMM lmerTest's t intervals).
    The blocks are headed by `names`, or by each fit's method ("NUTS", "REML", "REML.1", ...)."""
    if not fits:
        raise ModelError("compare() needs at least one fit")
    blocks = {}
    for fit, label in zip(fits, fit_labels(fits, names)):
        table = fit_intervals(fit, intervals)
        blocks[label] = table.reindex(columns=["estimate", "lower", "upper"])
    order = list(dict.fromkeys(name for block in blocks.values() for name in block.index))
    return pd.concat(blocks, axis=1).reindex(order)


def loo_compare(*posteriors, names: list[str] | None = None) -> pd.DataFrame:
    """PSIS-LOO comparison of posteriors of one response (ArviZ's compare): rank, elpd_loo,
    p_loo, elpd_diff, weight, dse and warning per model, best first."""
    import arviz_stats  # with scipy.stats, 0.4 s: loaded on first use

    if len(posteriors) < 2 or any(getattr(p, "kind", None) != "bayesian" for p in posteriors):
        raise ModelError("loo_compare needs two or more posteriors (sample or fit_map results)")
    first = posteriors[0].spec
    for other in posteriors[1:]:
        if other.spec.n_obs != first.n_obs or not np.array_equal(other.spec.y, first.y):
            raise ModelError(
                "loo_compare needs posteriors of the same response and rows "
                f"({first.formula!r} vs {other.spec.formula!r}); their elpd are "
                "not comparable otherwise"
            )
    names = names or [f"{p.spec.formula} [{p.method}]" for p in posteriors]
    if len(set(names)) != len(names):
        names = [f"{n} #{i + 1}" for i, n in enumerate(names)]
    return arviz_stats.compare(dict(zip(names, (p.loo() for p in posteriors))))
