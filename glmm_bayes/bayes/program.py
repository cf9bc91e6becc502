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

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from numpyro.distributions.transforms import AffineTransform

from ..core.grouped import GroupStatistics, grouped_gaussian_deviance
from ..core.marginal import marginal_deviance
from ..core.residual import color, leave_one_out_loglik, sequential_loglik
from ..core.structure import factors_to_theta, fixed_predictor, row_weights
from ..families import Family, Link
from .program_structure import (
    PriorValues,
    ProgramStructure,
    centring_means,
    population_from_sites,
    residual_from_sites,
    standardised_name,
    uncentre,
    z_site,
)


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


def hierarchical_model(
    arrays,
    priors: PriorValues,
    structure: ProgramStructure,
    observed: bool = True,
    leave_one_out: bool = False,
    x_mean=None,
):
    """The full non-centred program: samples z_k for every term. `leave_one_out`: the y site
    gives each row's density given the rest of its correlation group (`CorrelatedNormal`).
    `x_mean`: the column means of the whole X, where `arrays` holds some of its rows
    (`core.structure.row_subset`)."""
    x_mean = jnp.mean(arrays.Xt, axis=1) if x_mean is None else x_mean
    means = centring_means(x_mean, structure.intercept_index)
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
