"""`MCMLFit`: a Monte Carlo maximum likelihood fit (`frequentist.mcml`) in the model's
vocabulary, with the Monte Carlo standard error of every estimate beside its usual one."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.parameters import sd_name
from .tables import family_line, varcorr_table, wald_table


class MCMLFit:
    """fixef (Wald z tests), varcorr, population, vcov; `mcse`: the Monte Carlo standard error
    of each population parameter; `m`, `ess`: the draws of b and their effective number at
    the maximum."""

    kind = "mcml"
    method = "MCML"

    def __init__(self, model, opt, covariance, mc_covariance, ess: float, m: int):
        self.model, self.spec = model, model.spec
        self.opt, self.m, self.ess = opt, m, ess
        p = len(self.spec.fixed_names)
        self._beta, self._sd = opt.x[:p], np.exp(opt.x[p:])
        self._covariance, self._mc = covariance, mc_covariance
        self._sd_names = [sd_name(t.names[0], t.label) for t in self.spec.terms]

    @property
    def vcov(self) -> pd.DataFrame:
        p, names = len(self._beta), list(self.spec.fixed_names)
        return pd.DataFrame(self._covariance[:p, :p], index=names, columns=names)

    @property
    def fixef(self) -> pd.DataFrame:
        return wald_table(self._beta, self.vcov, self.spec.fixed_names)

    @property
    def varcorr(self) -> pd.DataFrame:
        return varcorr_table(self.spec, [np.array([[s**2]]) for s in self._sd], None)

    def _log_sd_se(self, covariance) -> np.ndarray:
        p = len(self._beta)
        return np.sqrt(np.diag(covariance)[p:])

    @property
    def population(self) -> pd.DataFrame:
        """estimate, std_error, lower, upper: Wald intervals for the fixed effects, and for the
        sds on the log scale (exp(log sd +- 1.96 se))."""
        fixed = self.fixef[["estimate", "std_error", "lower", "upper"]]
        se = self._log_sd_se(self._covariance)
        sds = pd.DataFrame(
            {
                "estimate": self._sd,
                "std_error": self._sd * se,
                "lower": self._sd * np.exp(-1.959964 * se),
                "upper": self._sd * np.exp(1.959964 * se),
            },
            index=self._sd_names,
        )
        return pd.concat([fixed, sds])

    @property
    def mcse(self) -> pd.Series:
        """The Monte Carlo standard error of each estimate (the sandwich of `frequentist.mcml`;
        an sd's by the delta method from log sd)."""
        p = len(self._beta)
        values = np.sqrt(np.diag(self._mc))
        return pd.Series(
            np.concatenate([values[:p], self._sd * values[p:]]),
            index=list(self.spec.fixed_names) + self._sd_names,
            name="mcse",
        )

    def __str__(self) -> str:
        table = self.population.join(self.mcse)
        return "\n".join(
            [
                "Generalized linear mixed model fit by Monte Carlo ML ['glmm_bayes']",
                family_line(self.spec),
                f"Formula: {self.spec.formula}",
                f"{self.m:,} draws of b, {self.ess:,.0f} effective at the maximum",
                "",
                table.to_string(),
            ]
        )

    def __repr__(self) -> str:
        return f"<MCMLFit {self.spec.formula!r}, m = {self.m}>"
