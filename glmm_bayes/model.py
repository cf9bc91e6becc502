"""`Model`: one formula, every engine (lme4's lFormula, then devfun/optimise/mkMerMod per
method)."""

from __future__ import annotations

import copy
import dataclasses
import warnings
from functools import partial
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from .bayes.priors import prior_table, resolve_priors
from .bayes.program_structure import (
    ProgramStructure,
    population_of_draws,
    prior_values,
    residual_from_sites,
)
from .control import Control
from .core.compiled import bind
from .core.grouped import group_statistics, shares_one_factor
from .core.marginal import MAX_INTEGRATED_DENSE_BLOCK
from .core.parameters import ParameterMap
from .core.structure import model_arrays, with_response
from .design import build_model_spec, response_batch
from .errors import FitError, GlmmBayesWarning, ModelError, SamplingWarning, integer_argument
from .families import is_linear_gaussian
from .frequentist.laplace import fit_glmm, fit_glmm_batch
from .frequentist.mcml import fit_mcml
from .frequentist.pql import WORKING_WEIGHT, fit_pql
from .frequentist.reml import fit_lmm, fit_lmm_batch
from .numerics import each_in_float64, float64, sampling_precision
from .progress import progress_bar
from .results.batch import BatchFits
from .results.frequentist import FrequentistFit
from .results.mcml import MCMLFit
from .results.pql import PQLFit

if TYPE_CHECKING:
    from .bayes.nuts import NutsSettings
    from .results.batch import BatchPosterior
    from .results.posterior import Posterior

LOGLIK_STORED_VALUES = 25_000_000  # draws x rows that `sample` stores by default


def _with_dataset_response(arrays, priors, y, log_norm, program, structure, statistics=None):
    """The program on `arrays` with response y (the batch's per-dataset data)."""
    kwargs = {"statistics": statistics} if statistics is not None else {}
    return program(arrays._replace(y=y, log_norm=log_norm), priors, structure, **kwargs)


class Model:
    """A mixed model from an lme4 formula over a DataFrame.

    >>> m = Model("Reaction ~ Days + (Days | Subject)", data=load_dataset("sleepstudy"))
    >>> post = m.sample(seed=0); reml = m.fit_reml(); compare(post, reml)
    """

    def __init__(
        self,
        formula: str,
        data: pd.DataFrame,
        family: str = "gaussian",
        link: str | None = None,
        priors: dict | None = None,
        control: Control | dict | None = None,
        correlation=None,
        variance=None,
        weights=None,
        cov: dict | None = None,
        df: float | None = None,
        zi: str | None = None,
        dispersion: str | None = None,
    ):
        """correlation: `AR1`, `CAR1`, `GaussianCorrelation` or `CompoundSymmetry` among the
        residuals of each group; variance: `VarIdent(by=...)`, a residual sd per level;
        weights: a column name or one value per row, lme4's prior weights (residual variance
        sigma^2 / w for gaussian models; glm's weights of the log-likelihood terms otherwise);
        cov: {grouping factor: K}, a scalar term whose levels are correlated through the known
        PSD matrix K (a DataFrame labelled by level, or an array in sorted level order):
        b ~ N(0, sd^2 K); df: the degrees of freedom of family="student_t", fixed; zi: a
        one-sided formula ("~ x") for the probability of a structural zero (logit link) of a
        poisson or negbinomial model, glmmTMB's ziformula; dispersion: a one-sided formula
        for the log of the family's dispersion parameter (sigma, shape or phi), glmmTMB's
        dispformula, brms's sigma ~ x."""
        self.control = Control.coerce(control)
        self.spec = build_model_spec(
            formula,
            data,
            family,
            link,
            self.control,
            correlation=correlation,
            variance=variance,
            weights=weights,
            cov=cov,
            df=df,
            zi=zi,
            dispersion=dispersion,
        )
        self.parameters = ParameterMap.from_spec(self.spec)
        self._parameters = resolve_priors(self.spec, priors, self.parameters)
        self.structure = ProgramStructure.from_spec(self.spec, self.parameters, self._parameters)
        self._prior_values = prior_values(self.spec, self._parameters)  # kept by `_with_response`
        self._arrays: dict = {}  # per x64 state: the program's data, and GroupStatistics

    def __getstate__(self) -> dict:
        """Pickled (a Ray worker's copy) without the cached JAX arrays: JAX restores an array
        in the receiving process's default precision, float32 outside the package's calls, so
        a worker sampled a used model in single precision. Each process builds its own."""
        return {**self.__dict__, "_arrays": {}}

    @property
    def priors(self) -> pd.DataFrame:
        """Every parameter with its resolved prior; `source` says default or user."""
        return prior_table(self._parameters, self.parameters)

    @property
    def numpyro_model(self):
        """The NumPyro model function; call it with `**model.model_kwargs`."""
        from .bayes.program import hierarchical_model

        return partial(hierarchical_model, structure=self.structure)

    @property
    def model_kwargs(self) -> dict:
        """The program's data (`ModelArrays` and the priors' `PriorValues`), in float64 inside
        the package's calls and in the caller's JAX precision otherwise."""
        x64 = bool(jax.config.jax_enable_x64)
        if x64 not in self._arrays:
            dtype = jnp.float64 if x64 else jnp.float32
            self._arrays[x64] = {
                "arrays": model_arrays(self.spec, self.structure.layout, dtype),
                "priors": jax.tree_util.tree_map(
                    partial(jnp.asarray, dtype=dtype), self._prior_values
                ),
            }
        return dict(self._arrays[x64])

    # ---- Bayesian engines
    @float64
    def sample(
        self,
        draws: int = 1000,
        warmup: int = 1000,
        chains: int = 4,
        seed: int = 0,
        chain_method: str = "auto",
        target_accept: float = 0.8,
        progress: bool = True,
        log_likelihood: bool | str = "auto",
        random_effects: str = "auto",
        max_tree_depth: int = 10,
        dtype: str = "float64",
    ) -> Posterior:
        """NUTS; warns (`SamplingWarning`) about divergences, saturated trees, low E-BFMI,
        R-hat > 1.01 and low ESS, for any number of chains.

        random_effects: "sample" runs NUTS on the non-centred program (b drawn with the rest);
        "integrate" (linear Gaussian models) runs NUTS on the population parameters with b
        integrated out exactly, then draws b | y, parameters exactly for every draw, which
        removes the funnel between the sds and b; "auto" integrates where it is exact and
        cheap (one grouping factor, or at most `MAX_INTEGRATED_DENSE_BLOCK` columns outside the
        largest term: not InstEval's crossed students and lecturers), and samples otherwise.
        dtype: "float32" samples in single precision (faster transcendentals on a CPU, and the
        native precision of most GPUs); summaries are computed in float64 either way.
        log_likelihood: True stores the pointwise log-likelihood in `idata` with the draws;
        False leaves it for `post.log_likelihood()` to compute when asked, and `loo()` to
        compute by blocks of rows without keeping it; "auto" stores it up to
        `LOGLIK_STORED_VALUES` draws x rows (200 MB in float64) and leaves it for later above
        (InstEval's 4,000 draws x 73k rows would hold 2.3 GB).
        """
        from .bayes.nuts import run_nuts
        from .bayes.program import hierarchical_model, marginal_model
        from .bayes.random_effects import draw_random_effects_for
        from .results.posterior import Posterior

        seed = integer_argument("seed", seed, 0)
        if log_likelihood not in (True, False, "auto"):
            raise ModelError(
                f"log_likelihood must be True, False or 'auto', not {log_likelihood!r}"
            )
        integrate = self._integrates_random_effects(random_effects)
        program = bind(
            marginal_model if integrate else hierarchical_model, structure=self.structure
        )
        with sampling_precision(dtype):
            kwargs = self._sampler_kwargs(integrate)
            samples, stats = run_nuts(
                program,
                kwargs,
                self._nuts_settings(draws, warmup, target_accept, max_tree_depth, integrate),
                chains=chains,
                seed=seed,
                initial_values=kwargs["priors"].initial,
                chain_method=chain_method,
                progress=progress,
                loop_elements=self.spec.row_elements,
            )
            if integrate:
                samples.update(
                    draw_random_effects_for(
                        samples, seed, kwargs["arrays"], self.structure, kwargs.get("statistics")
                    )
                )
        samples = {k: np.asarray(v, dtype=float) for k, v in samples.items()}
        loglik = self._log_likelihood(samples, log_likelihood)
        post = Posterior.from_samples(self, samples, stats, loglik, "NUTS")
        for problem in post.sampling_problems(max_tree_depth):
            self.control.report("sampling", SamplingWarning, f"NUTS: {problem}")
        return post

    def _nuts_settings(
        self, draws, warmup, target_accept, max_tree_depth, integrate: bool, keep=None
    ) -> NutsSettings:
        """With b integrated out the few population sites share a dense mass matrix (on
        sleepstudy it nearly doubles the ESS of the fixed effects); the non-centred program keeps
        a diagonal one, which mixed better on the GLMM examples (RIKZ: R-hat of the sd 1.015 vs
        1.005 with the same seed). Chains start around the priors' typical values
        (`PriorValues.initial`)."""
        from .bayes.nuts import NutsSettings

        return NutsSettings.checked(
            draws,
            warmup,
            target_accept,
            max_tree_depth,
            dense_sites=self.structure.sampled_names if integrate else (),
            level_sites=() if integrate else self.structure.level_sites,
            keep=keep,
        )

    def _sampler_kwargs(self, integrate: bool) -> dict:
        """The data of the program NUTS runs: with u integrated out and every term on one
        grouping factor, the per-group sufficient statistics stand in for the rows."""
        kwargs = self.model_kwargs
        if self._uses_group_statistics(integrate):
            key = ("statistics", bool(jax.config.jax_enable_x64))
            if key not in self._arrays:
                layout, arrays = self.engine_data()
                self._arrays[key] = group_statistics(arrays, layout)
            kwargs = {**kwargs, "statistics": self._arrays[key]}
        return kwargs

    def _uses_group_statistics(self, integrate: bool) -> bool:
        """u integrated out of a linear Gaussian model (the statistics' marginal likelihood is
        Gaussian) without a residual structure, every term on one grouping factor."""
        layout, arrays = self.engine_data()
        return (
            integrate
            and is_linear_gaussian(self.spec.family, self.spec.link)
            and layout.residual is None
            and shares_one_factor(arrays, layout)
        )

    def _integrates_by_default(self) -> bool:
        """Exact (a linear Gaussian model) and cheap (`MAX_INTEGRATED_DENSE_BLOCK`)."""
        layout, arrays = self.engine_data()
        return is_linear_gaussian(self.spec.family, self.spec.link) and (
            shares_one_factor(arrays, layout)
            or layout.dense_block_size <= MAX_INTEGRATED_DENSE_BLOCK
        )

    def _integrates_random_effects(self, random_effects: str) -> bool:
        exact = is_linear_gaussian(self.spec.family, self.spec.link)
        if random_effects == "auto":
            return self._integrates_by_default()
        if random_effects == "integrate" and not exact:
            raise ModelError(
                "random_effects='integrate' needs a gaussian model with the identity "
                f"link; this model is {self.spec.family.name} ({self.spec.link.name}): "
                "use random_effects='sample'"
            )
        if random_effects not in ("integrate", "sample"):
            raise ModelError(
                f"random_effects must be 'auto', 'integrate' or 'sample', got {random_effects!r}"
            )
        return random_effects == "integrate"

    @float64
    def _pointwise_blocks(self, samples: dict):
        """log p(y_i | draw) for every draw, by blocks of rows (`bayes.pointwise`), computed
        in float64 as they are taken (the model's float64 arrays chosen here)."""
        from .bayes.pointwise import pointwise_blocks

        blocks = pointwise_blocks(samples, **self.model_kwargs, structure=self.structure)
        return each_in_float64(blocks)

    def _log_likelihood(self, samples: dict, when: bool | str = "auto"):
        """The pointwise log-likelihood now (an array), or a function giving its blocks of rows
        when the posterior is asked for it (`sample`'s `log_likelihood`)."""
        from .bayes.pointwise import assemble

        if when == "auto":
            n_draws = int(np.prod(next(iter(samples.values())).shape[:2]))
            when = n_draws * self.spec.n_obs <= LOGLIK_STORED_VALUES
        blocks = partial(self._pointwise_blocks, samples)
        return assemble(blocks(), self.spec.n_obs) if when else blocks

    @float64
    def sample_prior(self, draws: int = 500, seed: int = 0):
        """Prior and prior predictive draws as an ArviZ DataTree: groups prior (the posterior's
        variables, by the same names), prior_predictive (y) and observed_data, so that
        `tree["prior"] = m.sample_prior()["prior"]` puts prior and posterior side by side."""
        import numpyro  # noqa: F401  (before its subpackages: see `lazy_modules.LazyModule`)
        from arviz_base import from_dict
        from numpyro.infer import Predictive

        from .results.posterior import lme4_draws, posterior_tree

        draws, seed = integer_argument("draws", draws, 1), integer_argument("seed", seed, 0)
        predictive = Predictive(self.numpyro_model, num_samples=draws)
        out = predictive(jax.random.PRNGKey(seed), observed=False, **self.model_kwargs)
        sites = {k: np.asarray(v, dtype=float)[None] for k, v in out.items()}
        tree = posterior_tree(self, lme4_draws(self.spec, self.structure, sites), "prior")
        y = sites["y"].astype(np.int64) if self.spec.family.discrete else sites["y"]
        tree["prior_predictive"] = from_dict({"prior_predictive": {"y": y}}, dims={"y": ["obs"]})[
            "prior_predictive"
        ]
        return tree

    @float64
    def fit_map(self, draws: int = 1000, seed: int = 0) -> Posterior:
        """Posterior mode (u integrated out) and draws from its Gaussian approximation."""
        from .bayes.map import fit_map
        from .results.posterior import point_values

        return self._independent_posterior(
            fit_map, draws, seed, "MAP", lambda at_mode: point_values(self, at_mode)
        )

    @float64
    def fit_nested_laplace(self, draws: int = 4000, seed: int = 0) -> Posterior:
        """INLA's nested Laplace (`bayes.nested_laplace`): p(psi | y) for the covariance and
        family parameters on a grid, the fixed effects' conditional Gaussians mixed over it, b
        drawn given each draw; a `Posterior` of `draws` independent draws. Up to 4 such
        parameters (a grid of at most 6,561 points)."""
        from .bayes.nested_laplace import fit_nested_laplace

        return self._independent_posterior(fit_nested_laplace, draws, seed, "nested Laplace")

    def _independent_posterior(self, engine, draws, seed, method: str, points=None) -> Posterior:
        """A `Posterior` of `draws` independent draws made by `engine` (`bayes.map.fit_map`,
        `bayes.nested_laplace.fit_nested_laplace`) on the program with u integrated out;
        `points` maps the engine's second output to the table's point estimates."""
        from .results.posterior import Posterior

        draws, seed = integer_argument("draws", draws, 1), integer_argument("seed", seed, 0)
        samples, extra, _ = engine(
            self.structure,
            **self.model_kwargs,
            draws=draws,
            seed=seed,
            control=self.control,
            statistics=self._sampler_kwargs(integrate=True).get("statistics"),
        )
        stats = {"diverging": np.zeros((1, draws), dtype=bool)}
        return Posterior.from_samples(
            self,
            samples,
            stats,
            self._log_likelihood(samples),
            method,
            points(extra) if points else None,
        )

    # ---- frequentist engines
    def engine_data(self) -> tuple:
        """The layout and arrays every engine shares (built once per model and precision)."""
        return self.structure.layout, self.model_kwargs["arrays"]

    def _require_gaussian(self, method: str) -> None:
        if self.spec.dispersion is not None:
            raise ModelError(
                f"{method} needs one residual sd; this model's depends on "
                f"{self.spec.dispersion_formula}: fit it by ML with fit_ml() (exact Laplace)"
                if method == "REML"
                else f"{method} applies to gaussian models: use fit_laplace()"
            )
        if not is_linear_gaussian(self.spec.family, self.spec.link):
            raise ModelError(
                f"{method} applies to gaussian models with the identity link; this "
                f"model is {self.spec.family.name} ({self.spec.link.name}): use fit_laplace()"
            )

    @float64
    def fit_reml(self) -> FrequentistFit:
        """REML fit (lmer's default), gaussian models only."""
        self._require_gaussian("REML")
        return FrequentistFit(
            self,
            fit_lmm(
                self.spec, self.parameters, *self.engine_data(), reml=True, control=self.control
            ),
        )

    @float64
    def fit_ml(self) -> FrequentistFit:
        """Maximum likelihood fit (lmer(REML = FALSE)), gaussian models only; with a
        dispersion formula the Laplace fit, which is exact for the identity link."""
        if self._ml_is_laplace():
            return self.fit_laplace()
        self._require_gaussian("ML")
        return FrequentistFit(
            self,
            fit_lmm(
                self.spec, self.parameters, *self.engine_data(), reml=False, control=self.control
            ),
        )

    def _require_no_gaussian_residual_structure(self) -> None:
        if self.structure.layout.residual is not None and self.structure.layout.residual.gaussian:
            raise ModelError(
                "this gaussian model has a residual structure (correlation, variance "
                "or weights): fit it with fit_reml() or fit_ml(), which are exact"
            )

    def _ml_is_laplace(self) -> bool:
        """A gaussian or lognormal model with a dispersion formula: its ML fit is the Laplace
        fit, exact under the identity link."""
        return self.spec.dispersion is not None and self.spec.family.name in (
            "gaussian",
            "lognormal",
        )

    @float64
    def fit_laplace(self, nagq: int = 1) -> FrequentistFit:
        """Marginal ML with u integrated out by Laplace (nagq = 1) or adaptive Gauss-Hermite
        quadrature with nagq nodes (one scalar term); nagq = 0 is glmer's faster approximation
        with beta found inside PIRLS and theta alone optimised (families without aux)."""
        self._require_no_gaussian_residual_structure()
        return FrequentistFit(
            self,
            fit_glmm(
                self.spec, self.parameters, *self.engine_data(), nagq=nagq, control=self.control
            ),
        )

    @float64
    def fit_pql(self, niter: int = 10) -> PQLFit:
        """Penalised quasi-likelihood, as MASS::glmmPQL: at most `niter` ML fits of a weighted
        LMM to the working response (`frequentist.pql`); bernoulli, binomial and poisson
        families. A quasi-likelihood fit: Wald tests, no logLik, AIC or LRT."""
        niter = integer_argument("niter", niter, 1)

        def fit_working(formula, data):
            return Model(formula, data, weights=WORKING_WEIGHT, control=self.control).fit_ml()

        return PQLFit(self, *fit_pql(self.spec, self.control, fit_working, niter))

    @float64
    def fit_mcml(self, m: int = 20_000, seed: int = 0) -> MCMLFit:
        """Monte Carlo maximum likelihood, as the glmm package (`frequentist.mcml`): `m` draws
        of b from a t proposal at the Laplace fit's conditional modes, re-centred once; scalar
        random-effect terms, families without a dispersion parameter. `fit.mcse` gives each
        estimate's Monte Carlo standard error."""
        m, seed = integer_argument("m", m, 100), integer_argument("seed", seed, 0)
        layout, arrays = self.engine_data()
        laplace = self.fit_laplace().estimate
        return MCMLFit(self, *fit_mcml(self.spec, layout, arrays, laplace, m, seed))

    # ---- batch jobs: one design, many responses
    def _with_response(self, y: np.ndarray) -> Model:
        """This model with another response vector (same design, priors and control)."""
        other = copy.copy(self)
        other.spec = dataclasses.replace(self.spec, y=np.asarray(y, dtype=float))
        other._arrays = {}
        return other

    @float64
    def _fit_batch(self, responses, fit, progress: bool, search=None) -> BatchFits:
        """`fit` of this model to each response. `search` (responses -> a finisher or None per
        response, as `fit_lmm_batch`) searches all responses side by side first; `fit` then
        fits one by one only those it left unfinished."""
        responses = response_batch(self.spec, responses)
        finishers = search(responses) if search else [None] * len(responses)
        fits, caught, errors = [], [], []
        for y, finish in progress_bar(
            zip(responses, finishers), total=len(responses), desc="datasets", disable=not progress
        ):
            with warnings.catch_warnings(record=True) as record:
                warnings.simplefilter("always", GlmmBayesWarning)
                try:
                    model = self._with_response(y)
                    fits.append(fit(model) if finish is None else FrequentistFit(model, finish()))
                    errors.append(None)
                except FitError as error:
                    fits.append(None)
                    errors.append(str(error))
            caught.append([w for w in record if issubclass(w.category, GlmmBayesWarning)])
        return BatchFits(fits, caught, errors)

    def _side_by_side(self, batch_fitter, progress: bool, **options):
        """`batch_fitter` (`fit_lmm_batch` or `fit_glmm_batch`: the search of every response
        side by side) on this model, for `_fit_batch`."""
        return lambda responses: batch_fitter(
            self.spec,
            self.parameters,
            *self.engine_data(),
            responses,
            control=self.control,
            progress=progress,
            **options,
        )

    def fit_reml_batch(self, responses, progress: bool = True) -> BatchFits:
        """REML fit of every response in `responses` ((datasets, n) array, or a DataFrame with a
        column per dataset) on this model's design: the searches run side by side, one compiled
        call per step for all datasets (`core.batch_optimize`), and a dataset whose search
        needs more (a restart off the edge, a rescaled search) is fitted alone. Warnings are
        collected per dataset in `.status` instead of being raised."""
        self._require_gaussian("REML")
        search = self._side_by_side(fit_lmm_batch, progress, reml=True)
        return self._fit_batch(responses, Model.fit_reml, progress, search)

    def fit_ml_batch(self, responses, progress: bool = True) -> BatchFits:
        """As `fit_reml_batch`, by maximum likelihood."""
        if self._ml_is_laplace():
            return self.fit_laplace_batch(responses, progress=progress)
        self._require_gaussian("ML")
        search = self._side_by_side(fit_lmm_batch, progress, reml=False)
        return self._fit_batch(responses, Model.fit_ml, progress, search)

    def fit_laplace_batch(self, responses, nagq: int = 1, progress: bool = True) -> BatchFits:
        """As `fit_reml_batch`, by Laplace / adaptive Gauss-Hermite (`fit_laplace`; nagq = 0
        fits one by one)."""
        self._require_no_gaussian_residual_structure()
        search = self._side_by_side(fit_glmm_batch, progress, nagq=nagq)
        return self._fit_batch(responses, lambda m: m.fit_laplace(nagq=nagq), progress, search)

    @float64
    def sample_batch(
        self,
        responses,
        draws: int = 1000,
        warmup: int = 1000,
        chains: int = 4,
        seed: int = 0,
        target_accept: float = 0.8,
        max_tree_depth: int = 10,
        chunk_size: int = 64,
        progress: bool = True,
        devices=None,
        dtype: str = "float64",
    ) -> BatchPosterior:
        """NUTS for every response in `responses` on this model's design, in one compiled
        program, `chunk_size` datasets at a time (memory is bounded by the chunk), each chunk
        split over `devices` (default: every local JAX device): datasets x chains vectorised on
        an accelerator, one after another on a CPU (`bayes.batch_nuts`). Dataset d is sampled as
        `sample(seed=seed + d, dtype=dtype)` would sample it alone on that kind of device,
        whatever the batch, chunk or device count (the same draws up to floating-point
        reassociation, which a long chain can amplify).
        Population parameters only (no random-effect draws); priors are this model's.
        Linear Gaussian models integrate b out where `sample`'s "auto" would (per-group
        sufficient statistics where the terms share one factor); others sample b non-centred."""
        from .bayes.batch_nuts import run_nuts_batch
        from .bayes.program import hierarchical_model, marginal_model
        from .results.batch import BatchPosterior

        batch = response_batch(self.spec, responses)
        chains, seed = integer_argument("chains", chains, 1), integer_argument("seed", seed, 0)
        chunk_size = integer_argument("chunk_size", chunk_size, 1)
        integrate = self._integrates_by_default()
        settings = self._nuts_settings(
            draws, warmup, target_accept, max_tree_depth, integrate, keep=self.structure.site_names
        )
        with sampling_precision(dtype):
            layout, arrays = self.engine_data()
            responses = [with_response(arrays, y, self.spec.family) for y in batch]
            per_dataset = {
                "y": jnp.stack([r.y for r in responses]),
                "log_norm": jnp.stack([r.log_norm for r in responses]),
            }
            if self._uses_group_statistics(integrate):
                per_dataset["statistics"] = jax.tree_util.tree_map(
                    lambda *a: jnp.stack(a), *[group_statistics(r, layout) for r in responses]
                )
            program = bind(
                _with_dataset_response,
                program=marginal_model if integrate else hierarchical_model,
                structure=self.structure,
            )
            priors = self.model_kwargs["priors"]
            shared = {
                "arrays": arrays._replace(y=None, log_norm=None),
                "priors": priors,
            }  # y: per dataset
            samples, stats = run_nuts_batch(
                program,
                shared,
                per_dataset,
                settings,
                chains=chains,
                seeds=seed + np.arange(len(batch)),
                initial_values=priors.initial,
                chunk_size=min(chunk_size, len(batch)),
                progress=progress,
                devices=devices,
                loop_elements=self.spec.row_elements,
            )
        samples = {k: np.asarray(v, dtype=float) for k, v in samples.items()}
        coefs, factors, aux = population_of_draws(samples, self.structure, self.spec.X)
        covariances = [T @ np.swapaxes(T, -1, -2) for T in factors]
        population = self.parameters.values(
            coefs, covariances, aux, residual_from_sites(samples, self.structure)
        )
        return BatchPosterior(self.spec, population, stats)

    def __repr__(self) -> str:
        return (
            f"<Model {self.spec.formula!r}: {self.spec.family.name}({self.spec.link.name}), "
            f"{self.spec.n_obs} obs>"
        )
