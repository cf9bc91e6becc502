"""`PQLFit`: a penalised quasi-likelihood fit (`frequentist.pql`) in the model's vocabulary.

Its numbers are those of the last working LMM: beta and its Wald covariance, the covariance of
b, and sigma, the quasi-likelihood's dispersion. It maximises no likelihood of y, so it has no
logLik, AIC, BIC or likelihood-ratio test; its tests are Wald tests.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import ModelError
from ..frequentist.pql import WORKING_RESPONSE, WORKING_WEIGHT
from .tables import family_line, wald_table


class PQLFit:
    """fixef (Wald z tests), varcorr, ranef, vcov, sigma (the dispersion), population,
    predict; `fits`: the working LMM fits made, `converged`: whether eta settled."""

    kind = "pql"
    method = "PQL"

    def __init__(self, model, working, fits: int, converged: bool):
        self.model, self.spec, self.working = model, model.spec, working
        self.fits, self.converged = fits, converged

    @property
    def vcov(self) -> pd.DataFrame:
        return self.working.vcov

    @property
    def fixef(self) -> pd.DataFrame:
        """estimate, std_error, z_value, p_value and the 95% Wald interval."""
        return wald_table(self.working.fixef["estimate"], self.vcov, self.spec.fixed_names)

    @property
    def varcorr(self) -> pd.DataFrame:
        """The random effects' sds and correlations; the Residual row is the dispersion."""
        return self.working.varcorr

    @property
    def ranef(self) -> dict[str, pd.DataFrame]:
        return self.working.ranef

    @property
    def sigma(self) -> float:
        """The quasi-likelihood's dispersion (1 where the family's variance holds)."""
        return self.working.sigma

    @property
    def population(self) -> pd.DataFrame:
        """estimate, lower, upper of every population parameter of the model: Wald intervals
        for the fixed effects, none for the covariance parameters."""
        working = self.working.population["estimate"]
        names = [n for n in self.model.parameters.names if n in working.index]
        return pd.DataFrame({"estimate": working[names]}).join(self.fixef[["lower", "upper"]])

    def predict(self, newdata=None, re_form=None, scale: str = "response") -> pd.DataFrame:
        """The working model's linear predictor at the rows of `newdata` (None: the fitted
        rows), on the link or response scale: newdata (or the model's data) plus a
        `prediction` column."""
        if scale not in ("response", "link"):
            raise ModelError(f"scale must be 'response' or 'link', got {scale!r}")
        if newdata is not None:
            newdata = newdata.assign(**{WORKING_RESPONSE: 0.0, WORKING_WEIGHT: 1.0})
        frame = self.working.predict(newdata, re_form=re_form, scale="link")
        if scale == "response":
            frame["prediction"] = np.asarray(self.spec.link.inverse(frame["prediction"].to_numpy()))
        return frame.drop(columns=[WORKING_RESPONSE, WORKING_WEIGHT], errors="ignore")

    def _no_likelihood(self, what: str):
        raise ModelError(
            f"a PQL fit has no {what}: penalised quasi-likelihood maximises no likelihood of "
            "y; use fit_laplace() (or fit_laplace(nagq=...)) for likelihood-based comparisons"
        )

    @property
    def loglik(self):
        self._no_likelihood("logLik")

    @property
    def aic(self):
        self._no_likelihood("AIC")

    @property
    def bic(self):
        self._no_likelihood("BIC")

    @property
    def deviance(self):
        self._no_likelihood("deviance")

    def __str__(self) -> str:
        spec = self.spec
        settled = "" if self.converged else " (eta had not settled)"
        return "\n".join(
            [
                "Generalized linear mixed model fit by PQL (MASS::glmmPQL) ['glmm_bayes']",
                family_line(spec),
                f"Formula: {spec.formula}",
                f"{self.fits} working LMM fits{settled}; dispersion sigma = {self.sigma:.4g}",
                "",
                "Random effects:",
                self.varcorr.to_string(index=False),
                "",
                "Fixed effects (Wald z tests):",
                self.fixef.to_string(),
            ]
        )

    def __repr__(self) -> str:
        return f"<PQLFit {self.spec.formula!r}, {self.fits} working fits>"
