"""`FrequentistFit`: REML, ML, Laplace and AGQ estimates in lme4's vocabulary (mkMerMod)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import special

from ..core.estimate import Estimate
from ..design.newdata import kept_terms
from ..errors import ModelError, SingularFitWarning, integer_argument, level_argument
from ..families import is_linear_gaussian
from ..frequentist.profile import profile_intervals
from ..numerics import float64
from .hypothesis import FixedEffectTests, hypothesis_matrix, term_hypotheses
from .prediction import (
    ParameterDraws,
    category_columns,
    prediction_frame,
    prediction_map,
    prediction_terms,
    simulate_responses,
)
from .tables import family_line, ranef_tables, varcorr_table
from .variance_decomposition import variance_components


class FrequentistFit:
    """fixef, varcorr, ranef, vcov, loglik, aic, bic, deviance, reml_criterion, sigma, theta."""

    kind = "frequentist"

    def __init__(self, model, estimate: Estimate):
        """`model`: the `Model` fitted, whose spec, layout and arrays the profiles reuse."""
        self.model, self.spec, self.estimate, self.method = (
            model,
            model.spec,
            estimate,
            estimate.method,
        )
        self._covariances = [np.asarray(T) @ np.asarray(T).T for T in estimate.factors]
        self._intervals: dict = {}
        self._tests = FixedEffectTests(self)

    # ---- fixed effects
    @property
    def vcov(self) -> pd.DataFrame:
        names = list(self.spec.fixed_names)
        return pd.DataFrame(self.estimate.vcov, index=names, columns=names)

    @property
    def fixef(self) -> pd.DataFrame:
        """estimate, std_error, t (gaussian) or z with p-value, and 95% Wald interval."""
        beta = self.estimate.beta
        se = np.sqrt(np.diag(self.estimate.vcov))
        statistic = beta / se
        frame = pd.DataFrame({"estimate": beta, "std_error": se}, index=list(self.spec.fixed_names))
        if self.spec.family.residual_sd:
            frame["t_value"] = statistic
        else:
            frame["z_value"] = statistic
            frame["p_value"] = 2 * special.ndtr(-np.abs(statistic))
        return frame.join(self.confint(method="wald", parm=list(self.spec.fixed_names)))

    @float64
    def fixef_tests(self, ddf: str | None = None) -> pd.DataFrame:
        """t tests of each fixed effect with Satterthwaite (the default), Kenward-Roger (REML
        fits, with its adjusted standard errors) or residual (n - p) df, as lmerTest's summary;
        z tests for GLMMs (ddf None or "asymptotic")."""
        frame = self._tests.contrasts(np.eye(len(self.spec.fixed_names)), ddf)
        frame.index = list(self.spec.fixed_names)
        return frame.rename(
            columns={"statistic": "t_value" if np.isfinite(frame["df"]).all() else "z_value"}
        )

    @float64
    def anova(self, ddf: str | None = None, type: int = 3) -> pd.DataFrame:
        """F test per fixed-effect term (lmerTest's anova): type 3 (marginal, coding-invariant)
        or 1 (sequential); Wald chi-square tests (as F = chi2 / NumDF, DenDF inf) for GLMMs."""
        rows = {
            term: self._tests.test(L, ddf) for term, L in term_hypotheses(self.spec, type).items()
        }
        frame = pd.DataFrame.from_dict(rows, orient="index")
        frame.attrs["ddf"], frame.attrs["type"] = self._tests.resolve_ddf(ddf), type
        return frame

    @float64
    def wald(self, L, ddf: str | None = None) -> pd.DataFrame:
        """Joint test of L beta = 0 (L: (r, p) array, {column: weight} or a list of them):
        F, NumDF, DenDF, p_value."""
        return pd.DataFrame([self._tests.test(hypothesis_matrix(self.spec, L), ddf)])

    @float64
    def contrast(self, L, ddf: str | None = None) -> pd.DataFrame:
        """One t test per row of L, e.g. contrast({"treatB": 1, "treatC": -1}) for
        beta_B - beta_C: estimate, std_error, df, statistic, p_value."""
        return self._tests.contrasts(hypothesis_matrix(self.spec, L), ddf)

    def icc(self) -> pd.DataFrame:
        """Nakagawa's marginal and conditional R^2 and the adjusted and conditional ICC: one
        row each, their plug-in estimate (the posterior's `icc` adds sd and interval)."""
        draws = self.parameter_draws()
        values = variance_components(
            self.spec, draws.beta, draws.covariances, draws.aux, draws.residual
        )
        return pd.DataFrame({"estimate": {k: float(v[0]) for k, v in values.items()}})

    # ---- random effects
    @property
    def varcorr(self) -> pd.DataFrame:
        sigma = None if self.sigma is None else np.array([self.sigma])
        return varcorr_table(self.spec, [c[None] for c in self._covariances], sigma)

    @property
    def ranef(self) -> dict[str, pd.DataFrame]:
        """Conditional modes (BLUPs) and conditional sds per grouping factor."""
        sds = [np.sqrt(np.diagonal(c, axis1=-2, axis2=-1)) for c in self.estimate.cond_cov]
        return ranef_tables(self.spec, self.estimate.modes, sds)

    def _standard_errors(self) -> dict[str, float]:
        """Wald standard errors of the fixed effects and of `ParameterMap.aux_coefficients`."""
        names = list(self.spec.fixed_names)
        variances = list(np.diag(self.estimate.vcov))
        if self.estimate.vcov_aux_coefficients is not None:
            names += list(self.model.parameters.aux_coefficients)
            variances += list(np.diag(self.estimate.vcov_aux_coefficients))
        with np.errstate(invalid="ignore"):  # NaN where the Hessian is not positive definite
            return dict(zip(names, np.sqrt(variances)))

    @property
    def zero_inflation(self) -> pd.DataFrame:
        """The zero-inflation coefficients (logit scale): estimate, std_error, z_value,
        p_value and 95% Wald interval, as glmmTMB's "Zero-inflation model" table."""
        names = self.model.parameters.zi_names
        if not names:
            raise ModelError("this model has no zero inflation (Model(..., zi='~ x'))")
        return self._wald_table(names)

    @property
    def dispersion(self) -> pd.DataFrame:
        """The dispersion formula's coefficients (log scale of sigma, shape or phi): estimate,
        std_error, z_value, p_value and 95% Wald interval, as glmmTMB's "Dispersion model"."""
        names = self.model.parameters.dispersion_names
        if not names:
            raise ModelError("this model has no dispersion formula (Model(..., dispersion='~ x'))")
        return self._wald_table(names)

    @property
    def thresholds(self) -> pd.DataFrame:
        """A cumulative model's thresholds: estimate, std_error, z_value, p_value and 95%
        Wald interval, as clmm's "Threshold coefficients"."""
        names = [a.name for a in self.spec.family.aux if a.cls == "threshold"]
        if not names:
            raise ModelError("this model has no thresholds (family='cumulative')")
        return self._wald_table(names)

    def _wald_table(self, names) -> pd.DataFrame:
        estimates, se = self._estimates(), self._standard_errors()
        frame = pd.DataFrame(
            {"estimate": [estimates[n] for n in names], "std_error": [se[n] for n in names]},
            index=list(names),
        )
        frame["z_value"] = frame["estimate"] / frame["std_error"]
        frame["p_value"] = 2 * special.ndtr(-np.abs(frame["z_value"]))
        return frame.join(self.confint(method="wald", parm=list(names)))

    def _estimates(self) -> dict[str, float]:
        values = self.model.parameters.values(
            self.estimate.beta,
            self._covariances,
            self.estimate.aux,
            np.array(list(self.estimate.residual.values())),
        )
        return {name: float(v) for name, v in values.items()}

    @property
    def population(self) -> pd.DataFrame:
        """Every population parameter: estimate and 95% interval, profile-likelihood where
        `confint(method="profile")` has computed it, else Wald (NaN for variance components)."""
        frame = pd.DataFrame({"estimate": self._estimates()})
        profile = self._intervals.get(("profile", 0.95, tuple(frame.index)))
        return frame.join(profile if profile is not None else self.confint(method="wald"))

    @float64
    def intervals(self, method: str = "profile", level: float = 0.95) -> pd.DataFrame:
        """Every population parameter: estimate, lower, upper, with `method`'s intervals:
        "profile" (computed once, then `population` shows them too), "wald" (NaN for variance
        components), or "satterthwaite": t intervals with Satterthwaite df for the fixed
        effects of a linear mixed model (lmerTest's), profile intervals for the rest."""
        if method not in ("profile", "wald", "satterthwaite"):
            raise ModelError(
                f"intervals must be 'profile', 'wald' or 'satterthwaite', got {method!r}"
            )
        frame = pd.DataFrame({"estimate": self._estimates()})
        if method != "satterthwaite":
            return frame.join(self.confint(method=method, level=level))
        if not is_linear_gaussian(self.spec.family, self.spec.link):
            raise ModelError(
                "Satterthwaite df are for linear mixed models; this model is "
                f"{self.spec.family.name} ({self.spec.link.name}): use 'profile' or 'wald'"
            )
        # the fixed effects' t intervals; the profiles only for the other parameters
        tests = self.fixef_tests(ddf="Satterthwaite")
        half = special.stdtrit(tests["df"], 0.5 + level / 2) * tests["std_error"]
        fixed = pd.DataFrame({"lower": tests["estimate"] - half, "upper": tests["estimate"] + half})
        others = [name for name in frame.index if name not in fixed.index]
        ends = pd.concat([fixed, self.confint(method="profile", level=level, parm=others)])
        return frame.join(ends)

    @float64
    def confint(
        self,
        method: str = "profile",
        level: float = 0.95,
        parm=None,
        nsim: int = 500,
        seed: int = 0,
    ) -> pd.DataFrame:
        """Confidence intervals (lower, upper) per parameter, as lme4's confint().

        "profile" (the default, as lme4): likelihood-profile intervals for every parameter.
        They profile the likelihood, so a REML fit is profiled through its ML refit, as lme4.
        "wald": beta +- z * SE for the fixed effects; NaN for variance components (as lme4).
        "boot": percentile intervals of `nsim` parametric-bootstrap refits by this fit's
        method (lme4's bootMer: responses simulated with new random effects), from `seed`;
        `attrs["bootstrap"]` says how many refits succeeded.
        """
        level = level_argument("level", level)
        estimates = self._estimates()
        names = list(estimates) if parm is None else [parm] if isinstance(parm, str) else list(parm)
        unknown = [n for n in names if n not in estimates]
        if unknown:
            raise ModelError(f"no parameter named {unknown}; parameters are {list(estimates)}")
        if method == "boot":
            nsim, seed = integer_argument("nsim", nsim, 1), integer_argument("seed", seed, 0)
        key = (method, level, tuple(names)) + ((nsim, seed) if method == "boot" else ())
        if key not in self._intervals:
            self._intervals[key] = self._compute_intervals(method, level, names, nsim, seed)
        frame = self._intervals[key].copy()
        frame.attrs = dict(self._intervals[key].attrs)
        return frame

    def _compute_intervals(
        self, method: str, level: float, names: list[str], nsim: int, seed: int
    ) -> pd.DataFrame:
        if method == "wald":
            crit = special.ndtri(0.5 + level / 2)
            se = self._standard_errors()
            estimates = self._estimates()
            rows = {
                n: (estimates[n] - crit * se[n], estimates[n] + crit * se[n])
                if n in se
                else (np.nan, np.nan)
                for n in names
            }
        elif method == "profile":
            ml = self if self.method != "REML" else self._ml_refit()
            rows = profile_intervals(
                self.spec,
                self.model.parameters,
                *self.model.engine_data(),
                ml._estimates(),
                names,
                level,
                nagq=max(ml.estimate.nagq, 1),  # nAGQ = 0's fit: the Laplace likelihood
            )
        elif method == "boot":
            fits = self._bootstrap_refits(nsim, seed, (False,) * len(self.spec.terms))
            values = pd.DataFrame([f._estimates() for f in fits])[names].to_numpy()
            tail = (1 - level) / 2
            lower, upper = np.quantile(values, [tail, 1 - tail], axis=0)
            frame = pd.DataFrame({"lower": lower, "upper": upper}, index=names)
            frame.attrs["bootstrap"] = f"{len(fits)} of {nsim} refits succeeded"
            return frame
        else:
            raise ModelError(f"unknown interval method {method!r}: use 'profile', 'wald' or 'boot'")
        return pd.DataFrame.from_dict(rows, orient="index", columns=["lower", "upper"])

    # ---- predictions and simulation
    def parameter_draws(self) -> ParameterDraws:
        """The estimates as one draw (S = 1): beta, Cov(b_k), the conditional modes, aux."""
        aux = None if self.estimate.aux is None else np.array([self.estimate.aux])
        residual = (
            np.array([list(self.estimate.residual.values())]) if self.estimate.residual else None
        )
        return ParameterDraws(
            self.estimate.beta[None],
            [c[None] for c in self._covariances],
            [np.asarray(b)[None] for b in self.estimate.modes],
            aux,
            residual,
        )

    @property
    def correlation_params(self) -> dict[str, float]:
        """The residual structure's estimates: {"phi": ...}, {"range": ...}, {"rho": ...} and
        VarIdent's sd ratios {"sigma_ratio(Sex=M)": ...}; {} without a structure."""
        return dict(self.estimate.residual)

    @float64
    def predict(
        self,
        newdata=None,
        re_form=None,
        scale: str = "response",
        new_levels: str = "error",
        marginal: bool = False,
        interval: float | None = None,
        bootstrap: int = 0,
        seed: int = 0,
    ):
        """Predictions at the rows of `newdata` (None: the fitted rows), as lme4's predict.

        re_form: None conditions on every random effect (the conditional modes), "~0" on none
        (population level), "~(1 | g)" on the terms of factor g. New levels of a kept factor
        raise (new_levels="error", the default, as lme4's allow.new.levels = FALSE and brms's
        allow_new_levels = FALSE), get b = 0 ("population"), or a draw from N(0, Cov_k)
        ("sample").
        marginal=True averages the response over the random effects re_form drops (all of them
        when re_form is None): E[g^{-1}(eta + Z b)], which for a non-identity link differs from
        g^{-1}(eta).
        Returns newdata (a copy; the model's data rows when None) with a `prediction` column,
        and with `interval=level` also std_error (of the fixed part, delta method on the
        response scale), lower and upper: Wald limits of the fixed part mapped through the
        link, or with `bootstrap=nsim` percentile limits from nsim parametric-bootstrap refits
        (lme4's bootMer; responses are simulated conditional on the modes of the terms the
        prediction keeps, use.u = TRUE, and with fresh random effects for the others).
        """
        if interval is not None:
            interval = level_argument("interval", interval)
        bootstrap = integer_argument("bootstrap", bootstrap, 0)
        rng = np.random.default_rng(integer_argument("seed", seed, 0))
        draws = self.parameter_draws()
        eta, transform, rows = prediction_map(
            self.spec, draws, newdata, re_form, scale, new_levels, marginal, rng
        )
        if self.spec.family.categories and scale == "response":
            if interval is not None:
                raise ModelError(
                    "intervals of category probabilities come from a posterior: "
                    "fit_map() or sample(), then predict(interval=...)"
                )
            return prediction_frame(
                self.spec, newdata, category_columns(self.spec, transform(eta)[0])
            )
        columns = {"prediction": transform(eta)[0]}
        attrs = {}
        if interval is not None:
            se_eta = np.sqrt(np.einsum("np,pq,nq->n", rows.X, self.estimate.vcov, rows.X))
            step = 1e-6 * np.maximum(1.0, np.abs(eta[0]))
            slope = (transform(eta + step)[0] - transform(eta - step)[0]) / (2 * step)
            columns["std_error"] = np.abs(slope) * se_eta
            if bootstrap:
                limits = self._bootstrap_predictions(
                    bootstrap, seed, newdata, re_form, scale, new_levels, marginal
                )
                tail = (1 - interval) / 2
                columns["lower"], columns["upper"] = np.quantile(limits, [tail, 1 - tail], axis=0)
                attrs["bootstrap"] = f"{len(limits)} of {bootstrap} refits succeeded"
            else:
                crit = special.ndtri(0.5 + interval / 2)
                ends = [transform(eta - crit * se_eta)[0], transform(eta + crit * se_eta)[0]]
                columns["lower"], columns["upper"] = np.sort(np.stack(ends), axis=0)
        frame = prediction_frame(self.spec, newdata, columns)
        frame.attrs.update(attrs)
        return frame

    def _ml_refit(self):
        """The ML fit a REML fit's profile intervals start from (as lme4's profile does). A
        boundary there repeats what the REML fit reported, so it is not warned about again."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SingularFitWarning)
            return self.model.fit_ml()

    def refit(self, model):
        """This fit's method applied to another `Model` (REML, ML, Laplace or AGQ)."""
        if self.method == "REML":
            return model.fit_reml()
        if self.method == "ML":
            return model.fit_ml()
        return model.fit_laplace(nagq=self.estimate.nagq)

    def refit_batch(self, responses, progress: bool = True):
        """This fit's method applied to each response on the same design (`BatchFits`, as
        `Model.fit_reml_batch` and its siblings)."""
        if self.method == "REML":
            return self.model.fit_reml_batch(responses, progress)
        if self.method == "ML":
            return self.model.fit_ml_batch(responses, progress)
        return self.model.fit_laplace_batch(responses, self.estimate.nagq, progress)

    def _bootstrap_refits(self, nsim: int, seed: int, keep: tuple[bool, ...]) -> list:
        """This fit's method on `nsim` responses simulated from it (bootMer), keeping the
        conditional modes of the terms in `keep` and drawing the others anew; the refits that
        succeeded."""
        draws = self.parameter_draws().subset(np.zeros(nsim, dtype=int))
        responses = simulate_responses(self.spec, draws, nsim, seed, None, keep).to_numpy().T
        return [f for f in self.refit_batch(responses, progress=False).fits if f is not None]

    def _bootstrap_predictions(self, nsim, seed, newdata, re_form, scale, new_levels, marginal):
        fits = self._bootstrap_refits(nsim, seed, prediction_terms(self.spec, re_form, marginal))
        return np.array(
            [
                f.predict(newdata, re_form, scale, new_levels, marginal, seed=seed)["prediction"]
                for f in fits
            ]
        )

    @float64
    def simulate(self, n: int = 1, seed: int = 0, newdata=None, re_form="~0") -> pd.DataFrame:
        """n responses simulated from the fitted model on the rows of `newdata` (None: the
        fitted rows), one column each. As lme4's simulate, random effects are drawn anew for
        every level (re_form "~0"); re_form=None keeps the conditional modes."""
        n = integer_argument("n", n, 1)
        draws = self.parameter_draws().subset(np.zeros(n, dtype=int))
        return simulate_responses(
            self.spec,
            draws,
            n,
            integer_argument("seed", seed, 0),
            newdata,
            kept_terms(self.spec, re_form),
        )

    # ---- likelihood summaries
    @property
    def sigma(self) -> float | None:
        return self.estimate.aux if self.spec.family.residual_sd else None

    @property
    def theta(self) -> np.ndarray:
        return self.estimate.theta

    @property
    def loglik(self) -> float:
        """log L (REML fits: the REML log-likelihood, -reml_criterion / 2), constants included."""
        return self.estimate.loglik

    @property
    def nobs(self) -> int:
        """The number of observations used (lme4's nobs: rows after dropping missing values)."""
        return int(self.estimate.n_obs)

    @property
    def aic(self) -> float:
        return -2 * self.loglik + 2 * self.estimate.n_params

    @property
    def bic(self) -> float:
        return -2 * self.loglik + np.log(self.estimate.n_obs) * self.estimate.n_params

    @property
    def aicc(self) -> float:
        """AIC with the small-sample correction 2k(k + 1) / (n - k - 1) (Hurvich and Tsai)."""
        k, n = self.estimate.n_params, self.estimate.n_obs
        return self.aic + 2 * k * (k + 1) / (n - k - 1) if n > k + 1 else np.inf

    @property
    def deviance(self) -> float | None:
        """As lme4's deviance(): -2 log L for ML fits, None for REML fits, and for GLMMs the
        conditional deviance sum_i d(y_i, mu_i) at the conditional modes (not -2 log L); for
        zero-inflated families, which have no unit deviance, and with a dispersion formula
        -2 log L (glmmTMB's summary)."""
        if self.method == "REML":
            return None
        family = self.spec.family
        if family.residual_sd or family.unit_deviance is None or self.spec.dispersion is not None:
            return -2 * self.loglik
        spec = self.spec
        return float(
            np.sum(
                spec.family.unit_deviance(
                    spec.y, self.estimate.fitted, spec.trials, self.estimate.aux
                )
            )
        )

    @property
    def reml_criterion(self) -> float | None:
        return self.estimate.objective if self.method == "REML" else None

    @property
    def optsummary(self):
        """The optimisation record (start, end, evaluations, gradient, message), as
        MixedModels.jl's OptSummary."""
        return self.estimate.opt

    @property
    def singular(self) -> bool:
        return self.estimate.singular

    def summary(self) -> pd.DataFrame:
        """One row per population parameter: estimate, std_error (fixed effects), lower and
        upper (`population`'s intervals), as a posterior's summary(); `print(fit)` gives the
        text laid out as lme4's print(summary(fit))."""
        frame = self.population
        frame.insert(1, "std_error", pd.Series(self._standard_errors()).reindex(frame.index))
        return frame

    def __str__(self) -> str:
        """A text summary laid out like lme4's print(summary(fit))."""
        spec = self.spec
        lines = [
            f"{'Linear' if spec.family.residual_sd else 'Generalized linear'} mixed model "
            f"fit by {self.method} ['glmm_bayes']",
            family_line(spec),
            f"Formula: {spec.formula}",
            "",
        ]
        crit = (
            f"REML criterion at convergence: {self.reml_criterion:.4f}"
            if self.method == "REML"
            else f"     AIC      BIC   logLik deviance\n{self.aic:8.1f} {self.bic:8.1f} "
            f"{self.loglik:8.1f} {-2 * self.loglik:8.1f}"
        )
        lines += [crit, "", "Random effects:"]
        vc = self.varcorr
        lines += [
            "  " + line
            for line in vc[["grp", "var1", "var2", "vcov", "sdcor"]]
            .fillna("")
            .to_string(index=False)
            .splitlines()
        ]
        groups = ", ".join(f"{f}, {terms[0].n_levels}" for f, terms in spec.factors.items())
        lines += [f"Number of obs: {spec.n_obs}, groups:  {groups}", "", "Fixed effects:"]
        lines += [
            "  " + line
            for line in self.fixef.drop(columns=["lower", "upper"])
            .to_string(float_format=lambda v: f"{v:.5g}")
            .splitlines()
        ]
        for title, names, table in (
            ("Threshold coefficients", self.spec.family.categories, "thresholds"),
            ("Dispersion model", self.model.parameters.dispersion_names, "dispersion"),
            ("Zero-inflation model", self.model.parameters.zi_names, "zero_inflation"),
        ):
            if names:
                lines += ["", f"{title}:"]
                lines += [
                    "  " + line
                    for line in getattr(self, table)
                    .drop(columns=["lower", "upper"])
                    .to_string(float_format=lambda v: f"{v:.5g}")
                    .splitlines()
                ]
        if self.singular:
            lines += ["", "boundary (singular) fit: see help('isSingular')"]
        if not self.estimate.converged:
            lines += ["", f"optimiser did not converge: {self.estimate.message}"]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<FrequentistFit {self.method}: {self.spec.formula}, logLik {self.loglik:.4f}>"
