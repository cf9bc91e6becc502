"""`Posterior`: draws of a model's parameters with lme4's vocabulary on top of ArviZ."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import xarray as xr
from arviz_base import from_dict

from ..bayes.program_structure import (
    ProgramStructure,
    population_of_draws,
    residual_from_sites,
    z_site,
)
from ..core.parameters import ParameterMap, cor_pair_name, sd_name
from ..design import ModelSpec
from ..design.newdata import kept_terms
from ..errors import ModelError, integer_argument, level_argument
from ..numerics import float64
from .hypothesis import hypothesis_matrix
from .prediction import (
    ParameterDraws,
    category_columns,
    draw_responses,
    interval_frame,
    prediction_frame,
    prediction_map,
    simulate_responses,
)
from .tables import family_line, population_table, ranef_tables, varcorr_table
from .variance_decomposition import variance_components


class Posterior:
    """Draws by chain: `fixef`, `varcorr`, `ranef`, `summary()`, `diagnostics()`, `loo()`, `idata`.

    `idata` (an ArviZ DataTree) holds everything: its posterior group has one variable per
    population parameter, named as in every table and the priors ("Days", "sd(Days|Subject)",
    "cor((Intercept),Days|Subject)", "sigma"), and the random effects b(label) with dims
    (label, coef(label)); a "/" in a name is written U+2215 there (`idata_name`).
    `post.to_netcdf(path)` and `gb.load_posterior(path, model)` give the same posterior back.
    The pointwise log-likelihood (group log_likelihood) may be left for `log_likelihood()` to
    compute when asked (`Model.sample`'s `log_likelihood`).
    """

    kind = "bayesian"

    def __init__(self, model, idata, method: str = "NUTS", points: dict | None = None):
        """`model`: the `Model` sampled; `points` optionally replaces posterior means as the
        estimate column (the mode for `fit_map`)."""
        self.model, self.spec, self.idata = model, model.spec, idata
        self.method, self._points = method, points
        self._pending_loglik = None  # gives the log_likelihood group's blocks when asked
        self.sample_stats = {k: np.asarray(v) for k, v in idata["sample_stats"].items()}
        self._draws = draws_of(model.parameters, self.spec, idata["posterior"])
        self._population = {
            name: np.asarray(idata["posterior"][idata_name(name)])
            for name in model.parameters.names
        }

    @classmethod
    def from_samples(
        cls,
        model,
        samples: dict,
        sample_stats: dict,
        log_likelihood,
        method: str = "NUTS",
        points: dict | None = None,
    ) -> Posterior:
        """From the program's sites (chains, draws, ...) as the engines return them;
        `log_likelihood`: (chains, draws, rows), or a function giving its blocks of rows
        (`bayes.pointwise.pointwise_blocks`) when asked, or None."""
        draws = lme4_draws(model.spec, model.structure, samples)
        tree = posterior_tree(model, draws, "posterior")
        tree["sample_stats"] = from_dict({"sample_stats": sample_stats})["sample_stats"]
        if log_likelihood is not None and not callable(log_likelihood):
            tree["log_likelihood"] = log_likelihood_group(log_likelihood)
        tree.attrs.update(
            {
                "glmm_bayes_method": method,
                "glmm_bayes_formula": model.spec.formula,
                "glmm_bayes_points": json.dumps(points or {}),
            }
        )
        post = cls(model, tree, method, points)
        if callable(log_likelihood):
            post._pending_loglik = log_likelihood
        return post

    @classmethod
    def from_idata(cls, model, idata) -> Posterior:
        """A posterior of `model` from its `idata` (as `to_netcdf` wrote it); a `ModelError` if
        its variables are not `model`'s parameters."""
        if "posterior" not in idata.children:
            raise ModelError("this DataTree has no posterior group")
        saved = idata["posterior"].data_vars
        missing = [n for n in model.parameters.names if idata_name(n) not in saved]
        if missing:
            raise ModelError(
                f"the saved posterior is not of this model ({model.spec.formula!r}): "
                f"it has no {', '.join(missing)}"
            )
        points = json.loads(idata.attrs.get("glmm_bayes_points", "{}")) or None
        return cls(model, idata, idata.attrs.get("glmm_bayes_method", "NUTS"), points)

    def to_netcdf(self, path) -> None:
        """Save `idata` (every group) to a netCDF file; `gb.load_posterior(path, model)` reads
        it back."""
        self.idata.to_netcdf(path)

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
        return varcorr_table(
            self.spec,
            [self._flat(self._draws["cov"][t.label]) for t in self.spec.terms],
            None if aux is None else self._flat(aux),
        )

    @property
    def ranef(self) -> dict[str, pd.DataFrame]:
        """Per grouping factor: posterior mean (condval) and sd (condsd) of each level's effects."""
        b = [self._flat(self._draws["b"][t.label]) for t in self.spec.terms]
        return ranef_tables(
            self.spec, [x.mean(axis=0) for x in b], [x.std(axis=0, ddof=1) for x in b]
        )

    def _flat(self, x):
        x = np.asarray(x)
        return x.reshape((-1,) + x.shape[2:])

    def population_draws(self) -> dict[str, np.ndarray]:
        """Draws (chains, draws) of every population-level parameter, by name."""
        return dict(self._population)

    def diagnostics(self) -> pd.DataFrame:
        """R-hat, bulk and tail ESS and MCSE of the mean per population parameter.

        `attrs["divergences"]` holds the number of divergent transitions."""
        import arviz_stats  # with scipy.stats, 0.4 s: loaded on first use

        ds = xr.Dataset(
            {k: (("chain", "draw"), np.asarray(v)) for k, v in self._population.items()}
        )
        frame = pd.DataFrame(
            {
                "r_hat": _as_series(arviz_stats.rhat(ds)),
                "ess_bulk": _as_series(arviz_stats.ess(ds, method="bulk")),
                "ess_tail": _as_series(arviz_stats.ess(ds, method="tail")),
                "mcse_mean": _as_series(arviz_stats.mcse(ds)),
            }
        )
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
        values = variance_components(
            self.spec, draws.beta, draws.covariances, draws.aux, draws.residual
        )
        return pd.DataFrame(
            {
                k: {
                    "estimate": v.mean(),
                    "sd": v.std(ddof=1),
                    "lower": np.quantile(v, tail),
                    "upper": np.quantile(v, 1 - tail),
                }
                for k, v in values.items()
            }
        ).T

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
        parameters = self.model.parameters
        aux = parameters.aux_from_sites(self._draws, np) if parameters.aux else None
        b = [self._flat(self._draws["b"][t.label]) for t in terms] if self._draws["b"] else []
        residual = self._draws.get("residual")
        return ParameterDraws(
            self._flat(self._draws["fixef"]),
            [self._flat(self._draws["cov"][t.label]) for t in terms],
            b,
            None if aux is None else self._flat(aux),
            None if residual is None else self._flat(residual),
        )

    @property
    def correlation_params(self) -> dict[str, float]:
        """Posterior means of the residual structure's parameters ({"phi": ...}, sd ratios)."""
        return {
            name: float(np.mean(self._population[name]))
            for name in self.spec.residual.parameter_names
        }

    @float64
    def predict(
        self,
        newdata=None,
        re_form=None,
        scale: str = "response",
        new_levels: str = "error",
        marginal: bool = False,
        interval: float | None = None,
        predictive: bool = False,
        seed: int = 0,
    ):
        """Posterior draws (draws, n) of the prediction at the rows of `newdata` (None: the
        fitted rows); with `interval=level`, newdata (a copy; the model's data rows when None)
        with the columns prediction (the posterior mean), sd, lower and upper, as a point
        fit's `predict`.

        re_form, new_levels and marginal mean what they mean for `FrequentistFit.predict`; with
        new_levels="sample" each draw takes b from that draw's Cov_k, so new levels carry the
        between-group spread. predictive=True draws y from the family around each draw's mean
        (the posterior predictive distribution, brms's posterior_predict).
        """
        if interval is not None:
            interval = level_argument("interval", interval)
        if predictive and (scale == "link" or marginal):
            raise ModelError(
                "predictive=True draws responses: use scale='response' and marginal=False"
            )
        rng = np.random.default_rng(integer_argument("seed", seed, 0))
        draws = self.parameter_draws()
        eta, transform, rows = prediction_map(
            self.spec, draws, newdata, re_form, scale, new_levels, marginal, rng
        )
        out = transform(eta)
        if predictive:
            if rows.trials is None:
                raise ModelError("predictive=True needs the binomial trials in newdata")
            out = draw_responses(
                self.spec,
                np.asarray(self.spec.link.inverse(eta)),  # the family's mu, not always E[y]
                draws.aux,
                rows.trials,
                int(rng.integers(2**31)),
                draws.residual,
                newdata,
                rows,
            )
        if interval is None:
            return out
        if out.ndim == 3:  # a cumulative model's category probabilities (draws, n, K)
            columns = {}
            for k, name in enumerate(category_columns(self.spec, out[0])):
                summary = interval_frame(out[..., k], interval)
                columns.update(
                    {f"{name} {c}" if c != "estimate" else name: summary[c] for c in summary}
                )
            return prediction_frame(self.spec, newdata, columns)
        summary = interval_frame(out, interval).rename(columns={"estimate": "prediction"})
        return prediction_frame(self.spec, newdata, dict(summary.items()))

    def posterior_predictive(self, seed: int = 0):
        """Replicated responses y_rep (chains, draws, n) at the fitted rows, conditional on each
        draw's random effects; stored as the `posterior_predictive` group of `idata` (for
        ArviZ's checks) and returned."""
        chains, n_draws = self._draws["fixef"].shape[:2]
        y = self.predict(predictive=True, seed=seed).reshape(chains, n_draws, -1)
        if self.spec.family.discrete:
            y = np.rint(y).astype(np.int64)
        group = from_dict(
            {"posterior_predictive": {"y": y}},
            dims={"y": ["obs"]},
            coords={"obs": np.arange(self.spec.n_obs)},
        )
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
        return simulate_responses(
            self.spec, draws.subset(pick), n, seed + 1, newdata, kept_terms(self.spec, re_form)
        )

    def log_likelihood(self) -> xr.DataTree:
        """The pointwise log-likelihood, `idata`'s group log_likelihood (y: chain, draw, obs),
        computed now and kept if the sampler left it for later."""
        if "log_likelihood" not in self.idata.children:
            from ..bayes.pointwise import assemble

            blocks = self._loglik_blocks()
            self.idata["log_likelihood"] = log_likelihood_group(assemble(blocks, self.spec.n_obs))
            self._pending_loglik = None
        return self.idata["log_likelihood"]

    def loo(self):
        """PSIS-LOO (`arviz_stats.ELPDDataLOO`: elpd, se, p, and elpd_i and pareto_k by row),
        computed by blocks of rows (`results.loo`): a log-likelihood the sampler left for
        later is computed block by block and not kept, so memory stays at a block's."""
        from .loo import psis_loo, relative_efficiency

        r_eff = relative_efficiency(self.idata["posterior"])
        return psis_loo(self._loglik_blocks(), self.spec.n_obs, r_eff)

    def _loglik_blocks(self):
        """(rows, values (chains, draws, rows)): the stored group in one block, or the blocks
        `Model.sample` left to compute."""
        if "log_likelihood" in self.idata.children:
            return [(slice(0, self.spec.n_obs), self.idata["log_likelihood"]["y"].values)]
        if self._pending_loglik is None:
            raise ModelError(
                "this posterior has no pointwise log-likelihood: it was saved without "
                "one; sample again, or call post.log_likelihood() before to_netcdf"
            )
        return self._pending_loglik()

    def sampling_problems(
        self,
        max_tree_depth: int = 10,
        r_hat_max: float = 1.01,
        ess_per_chain: int = 100,
        bfmi_min: float = 0.3,
    ) -> list[str]:
        """Stan's checks, for any number of chains: divergences, trees at the maximum depth,
        E-BFMI per chain, R-hat and bulk/tail ESS (below `ess_per_chain` x chains) per parameter."""
        import arviz_stats  # with scipy.stats, 0.4 s: loaded on first use

        problems, stats = [], self.sample_stats
        chains, draws = np.shape(stats["diverging"])
        if self.divergences:
            problems.append(
                f"{self.divergences} of {chains * draws} transitions after warmup "
                "diverged (the posterior has regions the sampler cannot follow): "
                "raise target_accept towards 1, or reparameterise"
            )
        if "n_steps" in stats and (full := int(np.sum(stats["n_steps"] >= 2**max_tree_depth - 1))):
            problems.append(
                f"{full} transitions reached the maximum tree depth {max_tree_depth}: "
                "the sampler is inefficient here; raise max_tree_depth"
            )
        if "energy" in stats and draws > 2:
            bfmi = np.atleast_1d(arviz_stats.bfmi(self.idata)["energy"].to_numpy())
            if (low := np.flatnonzero(bfmi < bfmi_min)).size:
                problems.append(
                    f"E-BFMI below {bfmi_min} in chain(s) {low.tolist()} "
                    f"({', '.join(f'{b:.2f}' for b in bfmi[low])}): the momentum "
                    "resampling explores the energy poorly; reparameterise"
                )
        if draws >= 4:
            diag = self.diagnostics()
            if bad := diag.index[~(diag["r_hat"] <= r_hat_max)].tolist():
                problems.append(
                    f"R-hat above {r_hat_max} for {', '.join(bad)}: the chains have "
                    "not mixed; run more warmup and draws"
                )
            floor = ess_per_chain * chains
            low_ess = diag.index[
                ~(np.minimum(diag["ess_bulk"], diag["ess_tail"]) >= floor)
            ].tolist()
            if low_ess:
                problems.append(
                    f"bulk or tail ESS below {floor} for {', '.join(low_ess)}: "
                    "intervals and means are unreliable; run more draws"
                )
        return problems

    def __str__(self) -> str:
        """A text summary laid out like brms's print(fit): the model, the draws, then the
        summary table."""
        chains, draws = self._draws["fixef"].shape[:2]
        spec = self.spec
        lines = [
            f"{self.method} posterior ['glmm_bayes']",
            family_line(spec),
            f"Formula: {spec.formula}",
            f"Draws: {chains} chains x {draws}; divergences: {self.divergences}",
            f"Number of obs: {spec.n_obs}, groups:  "
            + ", ".join(f"{f}, {terms[0].n_levels}" for f, terms in spec.factors.items()),
            "",
        ]
        table = self.summary().to_string(float_format=lambda v: f"{v:.4g}")
        return "\n".join(lines + table.splitlines())

    def __repr__(self) -> str:
        chains, draws = self._draws["fixef"].shape[:2]
        return (
            f"<Posterior {self.method}: {self.spec.formula} ({self.spec.family.name}), "
            f"{chains} chains x {draws} draws>"
        )


def load_posterior(path, model) -> Posterior:
    """A `Posterior` of `model` from a file that `Posterior.to_netcdf` wrote: it summarises,
    predicts and compares as the posterior that was saved."""
    tree = xr.open_datatree(path, engine="h5netcdf")
    return Posterior.from_idata(model, tree.load())


def _as_series(ds: xr.Dataset) -> pd.Series:
    return pd.Series({k: float(v) for k, v in ds.data_vars.items()})


def lme4_draws(spec: ModelSpec, structure: ProgramStructure, samples: dict) -> dict:
    """Samples of the NumPyro program's sites (chains, draws, ...) -> lme4-scale quantities:
    "fixef" (p), "cov" and "b" by term label ((q, q) and (n_k, q)), aux by name, "residual"."""
    beta, factors, _ = population_of_draws(samples, structure, spec.X)
    draws = {"fixef": beta, "cov": {}, "b": {}}
    for term, T in zip(spec.terms, factors):
        draws["cov"][term.label] = T @ np.swapaxes(T, -1, -2)
        if z_site(term.label) in samples:
            z = np.asarray(samples[z_site(term.label)])
            if term.relatedness is not None:  # b = F v per level of K, v = sd z
                draws["b"][term.label] = ((z[..., 0, :] * T[..., 0, :1]) @ term.relatedness.T)[
                    ..., None
                ]
            else:
                draws["b"][term.label] = z @ np.swapaxes(T, -1, -2)
    parameters = structure.parameters
    draws.update({name: parameters.site_value(samples, name, np) for name in parameters.aux})
    if (residual := residual_from_sites(samples, structure)) is not None:
        draws["residual"] = np.asarray(residual)
    return draws


def log_likelihood_group(values) -> xr.DataTree:
    """The log_likelihood group of `idata` from (chains, draws, rows) values."""
    return from_dict({"log_likelihood": {"y": np.asarray(values)}}, dims={"y": ["obs"]})[
        "log_likelihood"
    ]


def idata_name(name: str) -> str:
    """A name as an `idata` variable or dimension: the table's, with "/" (which a DataTree
    reserves for paths; "CrossR/R" is a fixed effect of salamander's) written as the
    look-alike division slash U+2215."""
    return name.replace("/", "\u2215")


def ranef_name(label: str) -> str:
    """The `idata` variable of a term's random effects b_k."""
    return idata_name(f"b({label})")


def posterior_tree(model, draws: dict, group: str):
    """A DataTree with one group (posterior or prior) from lme4-scale draws (chains, draws, ...):
    one variable per population parameter, named by the `ParameterMap`, then b(label) per term
    with dims (label, coef(label)); and the observed data, in the response's own type."""
    spec, parameters = model.spec, model.parameters
    aux = parameters.aux_from_sites(draws, np)
    values = parameters.values(
        draws["fixef"], [draws["cov"][t.label] for t in spec.terms], aux, draws.get("residual")
    )
    variables = {idata_name(name): value for name, value in values.items()}
    dims, coords = {"y": ["obs"]}, {"obs": np.arange(spec.n_obs)}
    for term in spec.terms:
        if term.label in draws["b"]:
            name, coef = ranef_name(term.label), idata_name(f"coef({term.label})")
            variables[name] = draws["b"][term.label]
            dims[name] = [idata_name(term.label), coef]
            coords[idata_name(term.label)] = list(term.levels)
            coords[coef] = list(term.names)
    return from_dict(
        {group: variables, "observed_data": {"y": observed_response(spec)}},
        dims=dims,
        coords=coords,
    )


def observed_response(spec: ModelSpec) -> np.ndarray:
    """y as the data gave it: whole numbers (counts, 0/1) as integers, for ArviZ's count plots."""
    return spec.y.astype(np.int64) if spec.family.discrete else spec.y


def draws_of(parameters: ParameterMap, spec: ModelSpec, dataset) -> dict:
    """The inverse of `posterior_tree`: lme4-scale draws from a posterior group's variables."""
    value = lambda name: np.asarray(dataset[idata_name(name)], dtype=float)
    draws = {
        "fixef": np.stack([value(n) for n in parameters.fixed_names], axis=-1)
        if parameters.fixed_names
        else np.zeros(value(parameters.names[0]).shape + (0,)),
        "cov": {},
        "b": {},
    }
    for t in parameters.terms:
        sd = np.stack([value(sd_name(c, t.label)) for c in t.names], axis=-1)
        k = len(t.names)
        cor = np.broadcast_to(np.eye(k), sd.shape + (k,)).copy()
        for r, c in t.pairs:
            cor[..., r, c] = cor[..., c, r] = value(cor_pair_name(t.names[c], t.names[r], t.label))
        draws["cov"][t.label] = sd[..., :, None] * cor * sd[..., None, :]
        if ranef_name(t.label) in dataset:
            draws["b"][t.label] = np.asarray(dataset[ranef_name(t.label)], dtype=float)
    draws.update({name: value(name) for name in parameters.aux})
    if parameters.residual_names:
        draws["residual"] = np.stack([value(n) for n in parameters.residual_names], axis=-1)
    return draws


def point_values(model, sites: dict) -> dict[str, float]:
    """Population parameters at one value of the program's sites (e.g. the posterior mode)."""
    d = lme4_draws(model.spec, model.structure, {k: np.asarray(v) for k, v in sites.items()})
    aux = model.parameters.aux_from_sites(d, np)
    values = model.parameters.values(
        d["fixef"], [d["cov"][t.label] for t in model.spec.terms], aux, d.get("residual")
    )
    return {k: float(v) for k, v in values.items()}
