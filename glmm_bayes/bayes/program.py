"""Stage 2 of the pipeline: `ModelSpec` + priors -> NumPyro model functions.

    Intercept_c, beta ~ priors     (predictors centred; (Intercept) = Intercept_c - xbar' beta;
                                    each drawn standardised, beta_j = (s_y / s_x_j) std(beta_j))
    T_k = diag(sd_k) L_k,  L_k ~ LKJCholesky(q_k, eta)
    z_k ~ N(0, I)  (n_k x q_k),  b_k = z_k T_k'           (non-centred)
    eta = X beta + sum_k Z_k b_k + offset,  y ~ family(g^{-1}(eta), aux)

`hierarchical_model` samples z_k; `marginal_model` integrates u out (`core.marginal`: exactly
for linear Gaussian models, by Laplace otherwise; `core.grouped` from per-group sufficient
statistics when all terms share one grouping factor). `fit_map` optimises the marginal program, and
NUTS samples it for linear Gaussian models, drawing u | y afterwards.
Both take `arrays` (an `core.structure.ModelArrays`) and `priors` (`PriorValues`, the
priors' data-scaled numbers) as their data arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.distributions.transforms import AffineTransform

from ..core.compiled import bind, compiled
from ..core.grouped import GroupStatistics, grouped_gaussian_deviance
from ..core.marginal import marginal_deviance
from ..core.parameters import ParameterMap
from ..core.residual import color, leave_one_out_loglik, sequential_loglik
from ..core.scaling import parameter_scales
from ..core.structure import RandomEffectsLayout, factors_to_theta, fixed_predictor, row_weights
from ..design import ModelSpec
from ..families import Family, Link
from .priors import DistributionForm, OrderedVector, Parameter, Prior, PriorForm


class FamilyLikelihood(dist.Distribution):
    """log p(y | eta) from the family table, so NUTS and Laplace share one density."""

    support = dist.constraints.real

    def __init__(self, family: Family, link: Link, eta, aux, trials, weights=1.0, log_norm=0.0):
        self.family, self.link, self.eta, self.aux, self.trials = family, link, eta, aux, trials
        self.weights = weights  # glm's prior weights of the log-likelihood terms
        self.log_norm = log_norm  # `Family.log_norm` of the observed response
        super().__init__(batch_shape=jnp.shape(eta))

    def log_prob(self, value):
        logpdf = self.family.logpdf(value, self.eta, self.aux, self.trials, self.link)
        return self.weights * (logpdf + self.log_norm)

    def sample(self, key, sample_shape=()):
        mu = self.link.inverse(self.eta)
        return self.family.distribution(mu, self.aux, self.trials).sample(key, sample_shape)


class CorrelatedNormal(dist.Distribution):
    """y ~ N(eta, sigma^2 S C S) (`core.residual`). `log_prob` gives per-row terms whose sum
    is the joint density (the chain rule within each group), or with `leave_one_out` the
    densities of y_i given the rest of its group, which LOO needs (they do not sum to the joint)."""

    support = dist.constraints.real

    def __init__(self, eta, sigma, params, residual, layout, leave_one_out: bool = False):
        self.eta, self.sigma, self.params = eta, sigma, params
        self.residual, self.layout, self.leave_one_out = residual, layout, leave_one_out
        super().__init__(batch_shape=jnp.shape(eta))

    def log_prob(self, value):
        terms = leave_one_out_loglik if self.leave_one_out else sequential_loglik
        return terms(self.params, value - self.eta, self.sigma, self.residual, self.layout)

    def sample(self, key, sample_shape=()):
        z = jax.random.normal(
            key, sample_shape + jnp.shape(self.eta), dtype=jnp.result_type(self.eta)
        )
        return self.eta + self.sigma * color(self.params, z, self.residual, self.layout)


@dataclass(frozen=True)
class ProgramStructure:
    """Static description of the program (hashable): names, shapes and the priors' forms. The
    numbers that depend on the data are `PriorValues`, traced, so that a same-shaped model on
    other data reuses the compiled program."""

    parameters: ParameterMap  # the population parameters and their sites
    layout: RandomEffectsLayout  # the terms: labels, column names, shapes
    family: Family
    link: Link
    prior_forms: tuple[tuple[str, object], ...]  # (site, `Parameter.form`)

    @classmethod
    def from_spec(
        cls, spec: ModelSpec, parameters: ParameterMap, priors: list[Parameter]
    ) -> ProgramStructure:
        return cls(
            parameters,
            RandomEffectsLayout.from_spec(spec),
            spec.family,
            spec.link,
            tuple((p.name, p.form) for p in priors),
        )

    def prior(self, name: str, priors: PriorValues):
        """The prior distribution of site `name`, with its arguments from `priors`."""
        form = dict(self.prior_forms)[name]
        prior = (
            form.distribution(priors.arguments[name])
            if isinstance(form, (PriorForm, DistributionForm))
            else form
        )
        k = self.parameters.ordered_sites.get(name)
        return prior if k is None else OrderedVector(prior, k)

    @property
    def fixed_names(self) -> tuple[str, ...]:
        return self.parameters.fixed_names

    @property
    def site_names(self) -> tuple[str, ...]:
        """The population-level sample sites, in the order the program draws them."""
        return self.parameters.site_names

    @property
    def sampled_names(self) -> tuple[str, ...]:
        """The population-level sites NUTS moves: `site_names` with each fixed effect in its
        standardised units (`population_parameters`)."""
        fixed = len(self.fixed_names)
        return tuple(standardised_name(n) for n in self.fixed_names) + self.site_names[fixed:]

    @property
    def level_sites(self) -> tuple[str, ...]:
        """The non-centred program's z_k sites, (n_k, q_k) each: no observation has two levels
        of one term, so the potential's Hessian couples no two levels of a site."""
        return tuple(z_site(t.label) for t in self.layout.terms)

    @property
    def residual_names(self) -> tuple[str, ...]:
        """The residual structure's parameters (`core.residual`), after aux."""
        return self.parameters.residual_names

    @property
    def intercept_index(self) -> int | None:
        return self.fixed_names.index("(Intercept)") if "(Intercept)" in self.fixed_names else None


class PriorValues(NamedTuple):
    """The priors' numbers, a pytree traced into the program: each prior's arguments by
    parameter (a `Prior`'s, or the leaves of a user's numpyro distribution; see
    `Parameter.form`), the units s_y / s_x_j of the fixed effects, and a typical value
    (`Prior.typical`) of each sample site whose prior gives one, where NUTS's chains and the
    MAP optimiser start."""

    arguments: dict
    fixed_scales: jnp.ndarray
    initial: dict


def prior_values(spec: ModelSpec, parameters: list[Parameter]) -> PriorValues:
    """The `PriorValues` of `parameters` on `spec`'s data (float64 NumPy arrays)."""
    fixed_scales = np.asarray(parameter_scales(spec).beta, dtype=float)
    scales = dict(zip(spec.fixed_names, fixed_scales))
    arguments, initial = {}, {}
    for param in parameters:
        if param.numbers is not None:
            arguments[param.name] = param.numbers
        if not isinstance(param.prior, Prior):
            continue
        typical = param.prior.typical()
        if typical is None:
            continue
        if param.name in scales:
            initial[standardised_name(param.name)] = np.asarray(typical / scales[param.name])
        else:
            initial[param.name] = np.asarray(typical)
    # an ordered site (the thresholds) starts at its parameters' moments, in order
    for site in {a.cls for a in spec.family.aux if a.cls}:
        starts = [a.moment(spec.y, None) for a in spec.family.aux if a.cls == site]
        initial[site] = np.asarray(starts, dtype=float)
    return PriorValues(arguments, fixed_scales, initial)


def centring_means(column_means, intercept_index):
    """What `centred_design` subtracts: the column means, 0 for the intercept (and for all
    columns in a model without one)."""
    if intercept_index is None:
        return jnp.zeros_like(column_means)
    return column_means.at[intercept_index].set(0.0)


def centred_design(X, intercept_index):
    """X with every non-intercept column centred, and the column means."""
    means = centring_means(jnp.mean(X, axis=0), intercept_index)
    return X - means, means


def z_site(label: str) -> str:
    return f"z({label})"


def standardised_name(name: str) -> str:
    return f"std({name})"


def population_parameters(structure: ProgramStructure, priors: PriorValues):
    """Sample beta (on the centred design), the factors T_k, the family's aux parameter and the
    residual structure's parameters (None without one).

    Each fixed effect is drawn in its own units, std(beta_j) = beta_j / (s_y / s_x_j) with the
    prior mapped by the same affine transform, and recorded as a deterministic site beta_j:
    NUTS's mass-matrix adaptation and the MAP optimiser then see every coordinate at unit scale
    (sds, sigma and shape move on the log scale, which units only shift), so both behave the
    same for y and 1e-12 y.
    """
    sites = {}
    for j, name in enumerate(structure.fixed_names):
        scale = priors.fixed_scales[j]
        std = numpyro.sample(
            standardised_name(name),
            dist.TransformedDistribution(
                structure.prior(name, priors), AffineTransform(0.0, 1.0 / scale)
            ),
        )
        sites[name] = numpyro.deterministic(name, std * scale)
    for name in structure.site_names[len(structure.fixed_names) :]:
        sites[name] = numpyro.sample(name, structure.prior(name, priors))
    return (*population_from_sites(sites, structure), residual_from_sites(sites, structure))


def population_from_sites(sites: dict, structure: ProgramStructure, X=None):
    """The program's sites (any leading sample axes) -> (coefficients, [T_k], aux), the one map
    from site names to parameters. Coefficients are on the centred design, or on the original
    design when `X` (whose column means undo the centring) is given."""
    parameters = structure.parameters
    factors = parameters.factors_from_sites(sites)
    coefs = (
        jnp.stack([jnp.asarray(sites[n]) for n in structure.fixed_names], axis=-1)
        if structure.fixed_names
        else jnp.zeros(factors[0].shape[:-2] + (0,))
    )
    if X is not None:
        coefs = uncentre(
            coefs,
            centred_design(jnp.asarray(X), structure.intercept_index)[1],
            structure.intercept_index,
        )
    return coefs, factors, parameters.aux_from_sites(sites)


def population_of_draws(sites: dict, structure: ProgramStructure, X) -> tuple:
    """`population_from_sites` on the original design X for draws held on the host, as NumPy
    arrays, in one compiled call per shape (run eagerly, each of its dozen small operations
    would be compiled on its own the first time)."""
    needed = {name: sites[name] for name in structure.site_names if name in sites}
    out = compiled(bind(population_from_sites, structure=structure))(needed, X=np.asarray(X))
    return jax.tree_util.tree_map(np.asarray, out)


def residual_from_sites(sites: dict, structure: ProgramStructure):
    """The residual structure's natural parameters (..., n) from the sites, or None."""
    if not structure.residual_names:
        return None
    return jnp.stack([jnp.asarray(sites[n]) for n in structure.residual_names], axis=-1)


def hierarchical_model(
    arrays,
    priors: PriorValues,
    structure: ProgramStructure,
    observed: bool = True,
    leave_one_out: bool = False,
):
    """The full non-centred program: samples z_k for every term. `leave_one_out`: the y site
    gives each row's density given the rest of its correlation group (`CorrelatedNormal`)."""
    means = centring_means(jnp.mean(arrays.Xt, axis=1), structure.intercept_index)
    coefs, factors, aux, residual = population_parameters(structure, priors)
    eta = fixed_predictor(arrays, coefs) - coefs @ means + arrays.offset  # = X uncentre(coefs)
    for T, t in zip(factors, structure.layout.terms):
        z = numpyro.sample(
            z_site(t.label), dist.Normal(0.0, 1.0).expand([t.n_levels, t.q]).to_event(2)
        )
        b = z * T[0, 0] if t.isotropic else z @ T.T  # isotropic: v of a known-K term
        level = (arrays.z_idx[:, t.row_pos] - t.start) // t.q
        eta = eta + jnp.sum(arrays.z_val[:, t.row_pos : t.row_pos + t.q] * b[level], axis=1)
    layout = structure.layout.residual
    if layout is not None and layout.gaussian:
        likelihood = CorrelatedNormal(eta, aux, residual, arrays.residual, layout, leave_one_out)
    else:
        likelihood = FamilyLikelihood(
            structure.family,
            structure.link,
            eta,
            structure.family.rows(aux, arrays),
            arrays.trials,
            row_weights(arrays),
            arrays.log_norm,
        )
    numpyro.sample("y", likelihood, obs=arrays.y if observed else None)


def marginal_model(
    arrays,
    priors: PriorValues,
    structure: ProgramStructure,
    statistics: GroupStatistics | None = None,
):
    """Population parameters only; u integrated out (exactly for linear Gaussian models). With
    `statistics` (a linear Gaussian model whose terms share one grouping factor) the marginal
    likelihood is computed from per-group sufficient statistics instead of the rows."""
    x_mean = statistics.x_mean if statistics is not None else jnp.mean(arrays.X, axis=0)
    means = centring_means(x_mean, structure.intercept_index)
    coefs, factors, aux, residual = population_parameters(structure, priors)
    beta = uncentre(coefs, means, structure.intercept_index)
    if statistics is not None:
        deviance = grouped_gaussian_deviance(beta, factors, aux, statistics)
    else:
        deviance = marginal_deviance(
            beta,
            factors_to_theta(factors),
            aux,
            arrays,
            structure.layout,
            structure.family,
            structure.link,
            residual=residual,
        )
    numpyro.factor("marginal_loglik", -0.5 * deviance)


def uncentre(coefs, means, intercept_index):
    """Coefficients on the centred design -> on the original design (last axis)."""
    if intercept_index is None:
        return coefs
    coefs = jnp.asarray(coefs)
    return coefs.at[..., intercept_index].add(-jnp.sum(coefs * means, axis=-1))
