"""The numpyro distributions the package defines: the hurdle count of the hurdle families
(`families.Hurdle`) and the ordered vector of a cumulative model's thresholds' prior
(`bayes.priors`). Loaded with NumPyro, only by the Bayesian engines and simulation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpyro  # noqa: F401  (before its subpackages: see `lazy_modules.LazyModule`)
import numpyro.distributions as dist
from jax.scipy.special import gammaln

from .families import hurdle_log_prob


class HurdleCount(dist.Distribution):
    """0 with probability p = logit^-1(gate_logits), else a draw of `base` truncated to y > 0,
    by inversion: the first k >= 1 whose cumulative probability f(1) + ... + f(k) reaches
    u (1 - f(0)), u ~ U(0, 1), with all elements stepping through k together (as many steps
    as the largest count drawn; at most `MAX_COUNT`)."""

    support = dist.constraints.nonnegative_integer
    MAX_COUNT = 100_000

    def __init__(self, base, gate_logits):
        self.base, self.gate_logits = base, gate_logits
        super().__init__(batch_shape=jnp.shape(gate_logits))

    def log_prob(self, value):
        log_f0 = self.base.log_prob(jnp.zeros_like(value))
        return hurdle_log_prob(value, self.base.log_prob(value), log_f0, self.gate_logits)

    def sample(self, key, sample_shape=()):
        shape = sample_shape + self.batch_shape
        gate_key, key = jax.random.split(key)
        target = jax.random.uniform(key, shape) * -jnp.expm1(self.base.log_prob(jnp.zeros(shape)))

        def step(state):
            k, total, y = state
            total = total + jnp.exp(self.base.log_prob(jnp.full(shape, k)))
            return k + 1, total, jnp.where((y == 0) & (total >= target), k, y)

        def undone(state):
            return (state[0] <= self.MAX_COUNT) & jnp.any(state[2] == 0)

        k, _, y = jax.lax.while_loop(undone, step, (1.0, jnp.zeros(shape), jnp.zeros(shape)))
        y = jnp.where(y == 0, k - 1, y)  # u (1 - f(0)) beyond the float sum of the pmf
        zero = jax.random.uniform(gate_key, shape) < jax.nn.sigmoid(self.gate_logits)
        return jnp.where(zero, 0.0, y)


class OrderedVector(dist.Distribution):
    """k values of the scalar prior `base`, each with that prior, restricted to increasing
    order (brms's prior on ordinal thresholds): density k! prod_j base(x_j) on x_1 < ... <
    x_k; a draw is k sorted draws of `base`. numpyro moves it in its ordered transform's
    unconstrained space (x_1, log(x_j - x_{j-1}))."""

    support = dist.constraints.ordered_vector

    def __init__(self, base, k: int):
        self.base, self.k = base, k
        super().__init__(batch_shape=(), event_shape=(k,))

    def sample(self, key, sample_shape=()):
        return jax.numpy.sort(self.base.sample(key, sample_shape + (self.k,)), axis=-1)

    def log_prob(self, value):
        return jax.numpy.sum(self.base.log_prob(value), axis=-1) + gammaln(self.k + 1.0)

    def tree_flatten(self):
        return (self.base,), self.k

    @classmethod
    def tree_unflatten(cls, k, children):
        return cls(children[0], k)
