"""`Posterior`: draws of a model's parameters with lme4's vocabulary on top of ArviZ."""

from __future__ import annotations

import arviz_stats
from arviz_base import from_dict
import numpy as np
import pandas as pd
import xarray as xr

from ..errors import ModelError, integer_argument, level_argument
from ..numerics import float64
from ..parameters import population_values, sd_name
from ..program import ProgramStructure, population_of_draws, residual_from_sites
from ..spec import ModelSpec
from ..spec.newdata import kept_terms
from .hypothesis import hypothesis_matrix
from .prediction import (ParameterDraws, draw_responses, interval_frame, prediction_map,
                         simulate_responses)
from .tables import population_table, ranef_tables, varcorr_table
from .variance_decomposition import variance_components


class Posterior:
    """Draws by chain: `fixef`, `varcorr`, `ranef`, `summary()`, `diagnostics()`, `loo()`, `idata`.

    `draws` maps each quantity to an array (chains, draws, ...): "fixef" (p), "cov" per term
    label (q, q), "b" per term label (n_k, q), and the aux parameter by name. `points`
    optionally replaces posterior means as the estimate column (the mode for `fit_map`).
    """

    def __init__(self, spec: ModelSpec, draws: dict, sample_stats: dict, log_likelihood,
                 method: str = "NUTS", points: dict | None = None):
        self.spec, self.method = spec, method
        self._draws, self._points = draws, points
        self.sample_stats = sample_stats
        aux = draws.get(spec.family.aux_name) if spec.family.aux_name else None
        self._population = population_values(
            spec, draws["fixef"], [draws["cov"][t.label] for t in spec.terms], aux,
            draws.get("residual"))
        self.idata = self._build_idata(log_likelihood)

    @classmethod
    def from_samples(cls, spec: ModelSpec, structure: ProgramStructure, samples: dict,
                     sample_stats: dict, log_likelihood, method: str = "NUTS",
                     points: dict | None = None) -> "Posterior":
        return cls(spec, lme4_draws(spec, structure, samples), sample_stats, log_likelihood,
                   method, points)

    def _build_idata(self, log_likelihood):
        spec = self.spec
        posterior = {"fixef": self._draws["fixef"]}
        dims = {"fixef": ["fixef_term"], "y": ["obs"]}
        coords = {"fixef_term": list(spec.fixed_names), "obs": np.arange(spec.n_obs)}
        for term in spec.terms:
            lab = term.label
            sd = np.stack([self._population[sd_name(c, lab)] for c in term.names], axis=-1)
            posterior[f"sd_{lab}"] = sd
            posterior[f"r_{lab}"] = self._draws["b"][lab]
            dims[f"sd_{lab}"] = [f"{lab}_term"]
            dims[f"r_{lab}"] = [f"{lab}_level", f"{lab}_term"]
            coords[f"{lab}_term"] = list(term.names)
            coords[f"{lab}_level"] = list(term.levels)
            if term.q > 1:
                cov = self._draws["cov"][lab]
                posterior[f"cor_{lab}"] = cov / (sd[..., :, None] * sd[..., None, :])
                dims[f"cor_{lab}"] = [f"{lab}_term", f"{lab}_term_bis"]
                coords[f"{lab}_term_bis"] = list(term.names)
        if spec.family.aux_name:
            posterior[spec.family.aux_name] = self._draws[spec.family.aux_name]
        for name in spec.residual.parameter_names:
            posterior[name] = self._population[name]
        data = {"posterior": posterior, "sample_stats": self.sample_stats,
                "observed_data": {"y": spec.y}}
        if log_likelihood is not None:
            data["log_likelihood"] = {"y": np.asarray(log_likelihood)}
        return from_dict(data, dims=dims, coords=coords)

    # ---- lme4 vocabulary
    @property
    def fixef(self) -> pd.DataFrame:
        """Posterior mean (or mode), sd and 95% interval of each fixed effect."""
        return self.population.loc[list(self.spec.fixed_names)]

    @property
    def population(self) -> pd.DataFrame:
        """Every population-level parameter: estimate, sd, lower, upper."""
        return population_table(self._population, self._points)

    @property
    def varcorr(self) -> pd.DataFrame:
        aux = self._draws.get("sigma")
        return varcorr_table(self.spec, [self._flat(self._draws["cov"][t.label]) for t in self.spec.terms],
                             None if aux is None else self._flat(aux))

    @property
    def ranef(self) -> dict[str, pd.DataFrame]:
        """Per grouping factor: posterior mean (condval) and sd (condsd) of each level's effects."""
        b = [self._flat(self._draws["b"][t.label]) for t in self.spec.terms]
        return ranef_tables(self.spec, [x.mean(axis=0) for x in b], [x.std(axis=0, ddof=1) for x in b])

    def _flat(self, x):
        x = np.asarray(x)
        return x.reshape((-1,) + x.shape[2:])

    def population_draws(self) -> dict[str, np.ndarray]:
        """Draws (chains, draws) of every population-level parameter, by name."""
        return dict(self._population)

    def diagnostics(self) -> pd.DataFrame:
        """R-hat, bulk and tail ESS and MCSE of the mean per population parameter.

        `attrs["divergences"]` holds the number of divergent transitions."""
        ds = xr.Dataset({k: (("chain", "draw"), np.asarray(v)) for k, v in self._population.items()})
        frame = pd.DataFrame({
            "r_hat": _as_series(arviz_stats.rhat(ds)), "ess_bulk": _as_series(arviz_stats.ess(ds, method="bulk")),
            "ess_tail": _as_series(arviz_stats.ess(ds, method="tail")), "mcse_mean": _as_series(arviz_stats.mcse(ds))})
        frame.attrs["divergences"] = self.divergences
        return frame

    @property
    def nobs(self) -> int:
        """The number of observations used (lme4's nobs: rows after dropping missing values)."""
        return int(self.spec.n_obs)

    @property
    def divergences(self) -> int:
        div = self.sample_stats.get("diverging")
        return int(np.sum(div)) if div is not None else 0

    def summary(self) -> pd.DataFrame:
        """Estimates with intervals and convergence diagnostics, one row per parameter."""
        if self._draws["fixef"].shape[0] < 2:
            return self.population
        return self.population.join(self.diagnostics())

    def icc(self, level: float = 0.95) -> pd.DataFrame:
        """Posterior of Nakagawa's R^2 and the ICC: estimate (mean), sd, lower, upper."""
        tail = (1 - level_argument("level", level)) / 2
        draws = self.parameter_draws()
        values = variance_components(self.spec, draws.beta, draws.covariances, draws.aux, draws.residual)
        return pd.DataFrame({k: {"estimate": v.mean(), "sd": v.std(ddof=1),
                                 "lower": np.quantile(v, tail), "upper": np.quantile(v, 1 - tail)}
                             for k, v in values.items()}).T

    def contrast(self, L, level: float = 0.95) -> pd.DataFrame:
        """Posterior of each row of L beta (L as for `FrequentistFit.contrast`): estimate
        (mean), sd, lower, upper, and the posterior probability that it is positive."""
        values = self.parameter_draws().beta @ hypothesis_matrix(self.spec, L).T
        frame = interval_frame(values, level_argument("level", level))
        frame["prob_positive"] = (values > 0).mean(axis=0)
        return frame

    # ---- predictions and simulation
    def parameter_draws(self) -> ParameterDraws:
        """Every draw (chains x draws flattened): beta, Cov(b_k), b_k, aux."""
        terms = self.spec.terms
        aux = self._draws.get(self.spec.family.aux_name) if self.spec.family.aux_name else None
        b = [self._flat(self._draws["b"][t.label]) for t in terms] if self._draws["b"] else []
        residual = self._draws.get("residual")
        return ParameterDraws(self._flat(self._draws["fixef"]),
                              [self._flat(self._draws["cov"][t.label]) for t in terms], b,
                              None if aux is None else self._flat(aux),
                              None if residual is None else self._flat(residual))

    @property
    def correlation_params(self) -> dict[str, float]:
        """Posterior means of the residual structure's parameters ({"phi": ...}, sd ratios)."""
        return {name: float(np.mean(self._population[name])) for name in self.spec.residual.parameter_names}

    @float64
    def predict(self, newdata=None, re_form=None, scale: str = "response",
                new_levels: str = "error", marginal: bool = False,
                interval: float | None = None, predictive: bool = False, seed: int = 0):
        """Posterior draws (draws, n) of the prediction at the rows of `newdata` (None: the
        fitted rows); with `interval=level` a DataFrame of estimate (mean), sd, lower, upper.

        re_form, new_levels and marginal mean what they mean for `FrequentistFit.predict`; with
        new_levels="sample" each draw takes b from that draw's Cov_k, so new levels carry the
        between-group spread. predictive=True draws y from the family around each draw's mean
        (the posterior predictive distribution, brms's posterior_predict).
        """
        if interval is not None:
            interval = level_argument("interval", interval)
        if predictive and (scale == "link" or marginal):
            raise ModelError("predictive=True draws responses: use scale='response' and marginal=False")
        rng = np.random.default_rng(integer_argument("seed", seed, 0))
        draws = self.parameter_draws()
        eta, transform, rows = prediction_map(self.spec, draws, newdata, re_form, scale, new_levels,
                                              marginal, rng)
        out = transform(eta)
        if predictive:
            if rows.trials is None:
                raise ModelError("predictive=True needs the binomial trials in newdata")
            out = draw_responses(self.spec, out, draws.aux, rows.trials, int(rng.integers(2 ** 31)),
                                 draws.residual, newdata)
        return out if interval is None else interval_frame(out, interval)

    def posterior_predictive(self, seed: int = 0):
        """Replicated responses y_rep (chains, draws, n) at the fitted rows, conditional on each
        draw's random effects; stored as the `posterior_predictive` group of `idata` (for
        ArviZ's checks) and returned."""
        chains, n_draws = self._draws["fixef"].shape[:2]
        y = self.predict(predictive=True, seed=seed).reshape(chains, n_draws, -1)
        group = from_dict({"posterior_predictive": {"y": y}}, dims={"y": ["obs"]},
                             coords={"obs": np.arange(self.spec.n_obs)})
        self.idata["posterior_predictive"] = group["posterior_predictive"]
        return self.idata["posterior_predictive"]

    @float64
    def simulate(self, n: int = 1, seed: int = 0, newdata=None, re_form="~0") -> pd.DataFrame:
        """n responses on the rows of `newdata` (None: the fitted rows), each from a posterior
        draw picked at random, with random effects drawn anew (re_form "~0", as lme4's
        simulate) or the draw's own (re_form=None)."""
        n, seed = integer_argument("n", n, 1), integer_argument("seed", seed, 0)
        draws = self.parameter_draws()
        pick = np.random.default_rng(seed).integers(draws.n_draws, size=n)
        return simulate_responses(self.spec, draws.subset(pick), n, seed + 1, newdata,
                                  kept_terms(self.spec, re_form))

    def loo(self):
        """PSIS-LOO from the pointwise log-likelihood (ArviZ)."""
        return arviz_stats.loo(self.idata)

    def sampling_problems(self, max_tree_depth: int = 10, r_hat_max: float = 1.01,
                          ess_per_chain: int = 100, bfmi_min: float = 0.3) -> list[str]:
        """Stan's checks, for any number of chains: divergences, trees at the maximum depth,
        E-BFMI per chain, R-hat and bulk/tail ESS (below `ess_per_chain` x chains) per parameter."""
        problems, stats = [], self.sample_stats
        chains, draws = np.shape(stats["diverging"])
        if self.divergences:
            problems.append(f"{self.divergences} of {chains * draws} transitions after warmup "
                            "diverged (the posterior has regions the sampler cannot follow): "
                            "raise target_accept towards 1, or reparameterise")
        if "n_steps" in stats and (full := int(np.sum(stats["n_steps"] >= 2 ** max_tree_depth - 1))):
            problems.append(f"{full} transitions reached the maximum tree depth {max_tree_depth}: "
                            "the sampler is inefficient here; raise max_tree_depth")
        if "energy" in stats and draws > 2:
            bfmi = np.atleast_1d(arviz_stats.bfmi(self.idata)["energy"].to_numpy())
            if (low := np.flatnonzero(bfmi < bfmi_min)).size:
                problems.append(f"E-BFMI below {bfmi_min} in chain(s) {low.tolist()} "
                                f"({', '.join(f'{b:.2f}' for b in bfmi[low])}): the momentum "
                                "resampling explores the energy poorly; reparameterise")
        if draws >= 4:
            diag = self.diagnostics()
            if bad := diag.index[~(diag["r_hat"] <= r_hat_max)].tolist():
                problems.append(f"R-hat above {r_hat_max} for {', '.join(bad)}: the chains have "
                                "not mixed; run more warmup and draws")
            floor = ess_per_chain * chains
            low_ess = diag.index[~(np.minimum(diag["ess_bulk"], diag["ess_tail"]) >= floor)].tolist()
            if low_ess:
                problems.append(f"bulk or tail ESS below {floor} for {', '.join(low_ess)}: "
                                "intervals and means are unreliable; run more draws")
        return problems

    def __repr__(self) -> str:
        chains, draws = self._draws["fixef"].shape[:2]
        return (f"<Posterior {self.method}: {self.spec.formula} ({self.spec.family.name}), "
                f"{chains} chains x {draws} draws>")


def _as_series(ds: xr.Dataset) -> pd.Series:
    return pd.Series({k: float(v) for k, v in ds.data_vars.items()})


def lme4_draws(spec: ModelSpec, structure: ProgramStructure, samples: dict) -> dict:
    """Samples of the NumPyro program's sites (chains, draws, ...) -> lme4-scale quantities."""
    beta, factors, aux = population_of_draws(samples, structure, spec.X)
    draws = {"fixef": beta, "cov": {}, "b": {}}
    for term, T in zip(spec.terms, factors):
        draws["cov"][term.label] = T @ np.swapaxes(T, -1, -2)
        if f"z({term.label})" in samples:
            z = np.asarray(samples[f"z({term.label})"])
            if term.relatedness is not None:        # b = F v per level of K, v = sd z
                draws["b"][term.label] = ((z[..., 0, :] * T[..., 0, :1]) @ term.relatedness.T)[..., None]
            else:
                draws["b"][term.label] = z @ np.swapaxes(T, -1, -2)
    if spec.family.aux_name:
        draws[spec.family.aux_name] = aux
    if (residual := residual_from_sites(samples, structure)) is not None:
        draws["residual"] = np.asarray(residual)
    return draws


def point_values(spec: ModelSpec, structure: ProgramStructure, sites: dict) -> dict[str, float]:
    """Population parameters at one value of the program's sites (e.g. the posterior mode)."""
    d = lme4_draws(spec, structure, {k: np.asarray(v) for k, v in sites.items()})
    aux = d.get(spec.family.aux_name) if spec.family.aux_name else None
    values = population_values(spec, d["fixef"], [d["cov"][t.label] for t in spec.terms], aux,
                               d.get("residual"))
    return {k: float(v) for k, v in values.items()}
