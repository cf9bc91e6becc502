"""Results of batch jobs: one model's design fitted to many responses, indexed by dataset."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..design import ModelSpec
from ..errors import ConvergenceWarning


class BatchFits:
    """One frequentist fit per dataset.

    `fits[d]` is dataset d's `FrequentistFit` (None where the fit raised); `status` says per
    dataset whether it converged, whether it is singular, its log-likelihood and the warnings
    and error it gave; `summary()` stacks the estimates.
    """

    def __init__(self, fits: list, caught: list[list], errors: list[str | None]):
        """`caught`: per dataset, the warnings (`warnings.WarningMessage`) its fit gave."""
        self.fits, self._caught, self._errors = fits, caught, errors

    @classmethod
    def concatenate(cls, parts: list[BatchFits]) -> BatchFits:
        """The datasets of `parts`, in order, as one batch."""
        return cls(
            *(
                [item for part in parts for item in getattr(part, name)]
                for name in ("fits", "_caught", "_errors")
            )
        )

    def __len__(self) -> int:
        return len(self.fits)

    @property
    def status(self) -> pd.DataFrame:
        rows = []
        for fit, caught, error in zip(self.fits, self._caught, self._errors):
            failed = any(issubclass(w.category, ConvergenceWarning) for w in caught)
            rows.append(
                {
                    "converged": fit is not None and not failed,
                    "singular": bool(fit is not None and fit.estimate.singular),
                    "loglik": fit.loglik if fit is not None else np.nan,
                    "warnings": "; ".join(str(w.message) for w in caught),
                    "error": error or "",
                }
            )
        return pd.DataFrame(rows).rename_axis("dataset")

    def summary(self) -> pd.DataFrame:
        """estimate of every population parameter (std_error for fixed effects), indexed by
        (dataset, parameter)."""
        frames = {}
        for d, fit in enumerate(self.fits):
            if fit is None:
                continue
            estimates = pd.Series(fit._estimates(), name="estimate").to_frame()
            frames[d] = estimates.join(fit.fixef["std_error"])
        return pd.concat(frames, names=["dataset", "parameter"])


class BatchPosterior:
    """Posterior draws of the population parameters per dataset, (dataset, chain, draw).

    `summary()`: mean, sd, 2.5% and 97.5% quantiles, R-hat and bulk ESS per (dataset,
    parameter); `status`: divergences, largest R-hat and smallest bulk ESS per dataset, with
    `converged` when there are no divergences, every R-hat <= 1.01 and every bulk ESS is at
    least 100 per chain (Stan's thresholds, as `Posterior.sampling_problems`).
    """

    def __init__(self, spec: ModelSpec, population: dict[str, np.ndarray], sample_stats: dict):
        import xarray as xr  # loaded with the first posterior, not by frequentist batches

        self.spec, self.sample_stats = spec, sample_stats
        self._draws = xr.Dataset(
            {k: (("dataset", "chain", "draw"), np.asarray(v)) for k, v in population.items()}
        )

    @classmethod
    def concatenate(cls, parts: list[BatchPosterior]) -> BatchPosterior:
        """The datasets of `parts`, in order, as one batch."""
        population = {k: np.concatenate([part.draws(k) for part in parts]) for k in parts[0]._draws}
        stats = {
            k: np.concatenate([part.sample_stats[k] for part in parts])
            for k in parts[0].sample_stats
        }
        return cls(parts[0].spec, population, stats)

    def __len__(self) -> int:
        return self._draws.sizes["dataset"]

    def draws(self, name: str) -> np.ndarray:
        """Draws (dataset, chain, draw) of one population parameter."""
        return self._draws[name].to_numpy()

    def _diagnostics(self):
        import arviz_stats  # with scipy.stats, 0.4 s: loaded on first use

        chains = self._draws.sizes["chain"]
        if chains < 2:
            return None, None
        return arviz_stats.rhat(self._draws), arviz_stats.ess(self._draws, method="bulk")

    def summary(self) -> pd.DataFrame:
        stacked = self._draws.stack(sample=("chain", "draw"))
        frame = pd.concat(
            {
                "mean": stacked.mean("sample").to_dataframe().stack(),
                "sd": stacked.std("sample", ddof=1).to_dataframe().stack(),
                "lower": stacked.quantile(0.025, "sample")
                .drop_vars("quantile")
                .to_dataframe()
                .stack(),
                "upper": stacked.quantile(0.975, "sample")
                .drop_vars("quantile")
                .to_dataframe()
                .stack(),
            },
            axis=1,
        )
        r_hat, ess = self._diagnostics()
        if r_hat is not None:
            frame["r_hat"] = r_hat.to_dataframe().stack()
            frame["ess_bulk"] = ess.to_dataframe().stack()
        return frame.rename_axis(["dataset", "parameter"])

    @property
    def status(self) -> pd.DataFrame:
        divergences = self.sample_stats["diverging"].sum(axis=(1, 2))
        frame = pd.DataFrame({"divergences": divergences}).rename_axis("dataset")
        r_hat, ess = self._diagnostics()
        if r_hat is None:
            frame["converged"] = divergences == 0
            return frame
        frame["max_r_hat"] = r_hat.to_array().max("variable").to_numpy()
        frame["min_ess_bulk"] = ess.to_array().min("variable").to_numpy()
        chains = self._draws.sizes["chain"]
        frame["converged"] = (
            (divergences == 0)
            & (frame["max_r_hat"] <= 1.01)
            & (frame["min_ess_bulk"] >= 100 * chains)
        )
        return frame
