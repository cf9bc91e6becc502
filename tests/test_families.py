"""The family table: log densities against numpyro's distributions, and unit deviances against
twice the log-likelihood ratio to the saturated model."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from glmm_bayes.families import FAMILIES, LINKS, log_sigmoid

pytestmark = pytest.mark.usefixtures("float64")  # calls engine functions directly

RNG = np.random.default_rng(3)
CASES = {  # family: (y, trials, mu, aux, dispersion dividing the unit deviance)
    "gaussian": (RNG.normal(size=20), np.ones(20), RNG.normal(size=20), 1.7, 1.7 ** 2),
    "bernoulli": (RNG.integers(0, 2, 20).astype(float), np.ones(20), RNG.uniform(0.05, 0.95, 20), None, 1.0),
    "binomial": (np.arange(20) % 6, np.full(20, 5.0) + (np.arange(20) % 6 == 5), RNG.uniform(0.05, 0.95, 20), None, 1.0),
    "poisson": (RNG.poisson(3.0, 20).astype(float), np.ones(20), RNG.uniform(0.5, 6, 20), None, 1.0),
    "negbinomial": (RNG.poisson(3.0, 20).astype(float), np.ones(20), RNG.uniform(0.5, 6, 20), 2.5, 1.0),
    "gamma": (RNG.gamma(2.0, 1.5, 20), np.ones(20), RNG.uniform(0.5, 6, 20), 3.0, 1 / 3.0),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_log_density_matches_numpyro(name):
    """logpdf + log_norm (the data-only terms, computed once per dataset) is the full density."""
    family, link = FAMILIES[name], LINKS[FAMILIES[name].default_link]
    y, n, mu, aux, _ = CASES[name]
    eta = jnp.asarray(link.link(mu))
    ours = family.logpdf(jnp.asarray(y), eta, aux, jnp.asarray(n), link) + family.log_norm(y, n)
    theirs = family.distribution(jnp.asarray(mu), aux, jnp.asarray(n)).log_prob(jnp.asarray(y))
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(CASES))
def test_unit_deviance_is_the_saturated_log_likelihood_ratio(name):
    """d(y, mu) / dispersion = 2 [log p(y | mu = y) - log p(y | mu)], away from y on a boundary."""
    family, identity = FAMILIES[name], LINKS["identity"]
    y, n, mu, aux, dispersion = CASES[name]
    inside = (y > 0) & (y < n) if family.uses_trials else (y > 0)
    y, n, mu = y[inside], n[inside], mu[inside]
    saturated = y / n if family.uses_trials else y
    logp = lambda m: np.asarray(family.logpdf(jnp.asarray(y), jnp.asarray(m), aux, jnp.asarray(n), identity))
    deviance = np.asarray(family.unit_deviance(jnp.asarray(y), jnp.asarray(mu), jnp.asarray(n), aux))
    np.testing.assert_allclose(deviance / dispersion, 2 * (logp(saturated) - logp(mu)), rtol=1e-9)


def test_the_fused_log_sigmoid_has_exact_derivatives_of_every_order():
    """log_sigmoid's hand-written derivative shares one exp with its value; its first three
    derivatives (Laplace differentiates the curvature, a second derivative, once more) equal
    autodiff of jax.nn.log_sigmoid, also at 0 where |x| has no derivative, and far out."""
    x = jnp.array([-40.0, -3.0, -1e-3, 0.0, 1e-3, 0.7, 5.0, 40.0])
    mine, reference = log_sigmoid, jax.nn.log_sigmoid
    for _ in range(4):
        np.testing.assert_allclose(jax.vmap(mine)(x), jax.vmap(reference)(x), rtol=1e-12, atol=1e-300)
        mine, reference = jax.grad(mine), jax.grad(reference)
    # reverse over forward, as the sampler's gradient of a jvp-based density would do
    np.testing.assert_allclose(jax.vmap(jax.grad(lambda v: jax.jvp(log_sigmoid, (v,), (1.0,))[1]))(x),
                               jax.vmap(jax.grad(jax.grad(jax.nn.log_sigmoid)))(x), rtol=1e-12)
