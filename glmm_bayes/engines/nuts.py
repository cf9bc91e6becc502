"""NUTS through numpyro's sampler, on any NumPyro model function."""

from __future__ import annotations

import warnings
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from numpyro.distributions.transforms import biject_to
from numpyro.infer import MCMC, NUTS, init_to_median, init_to_uniform

from ..errors import integer_argument

CHAIN_METHODS = ("auto", "parallel", "sequential", "vectorized")


def resolve_chain_method(chain_method: str, chains: int) -> str:
    """'auto': one device per chain when there are enough devices, else all chains vectorised
    on one device (one compilation, and one pass of the sampler's loop for all chains)."""
    if chain_method not in CHAIN_METHODS:
        raise ValueError(f"chain_method must be one of {', '.join(CHAIN_METHODS)}, got {chain_method!r}")
    if chain_method == "auto":
        if chains == 1:
            return "sequential"
        return "parallel" if jax.local_device_count() >= chains else "vectorized"
    return chain_method


def init_around(site=None, values=None, radius: float = 1.0):
    """numpyro init strategy: each site in `values` starts at its value moved by U(-radius,
    radius) in the unconstrained space (so chains start apart, on the scale of the data); other
    sites start as `init_to_median` (user distributions) or near the identity (correlations).
    radius = 0 starts every site in `values` exactly there (the MAP optimiser's start)."""
    if site is None:
        return partial(init_around, values=values, radius=radius)
    if site["type"] != "sample" or site["is_observed"] or site["fn"].support.is_discrete:
        return None
    if site["name"] not in values:
        if isinstance(site["fn"], dist.LKJCholesky):
            return init_to_uniform(site, radius=radius)
        return init_to_median(site)
    transform = biject_to(site["fn"].support)
    centre = transform.inv(jnp.asarray(values[site["name"]], dtype=jnp.result_type(float)))
    if radius == 0:
        return transform(centre)
    shape = site["kwargs"].get("sample_shape", ()) + jnp.shape(centre)
    jitter = dist.Uniform(-radius, radius)(rng_key=site["kwargs"].get("rng_key"), sample_shape=shape)
    return transform(centre + jitter)


def run_nuts(model, model_kwargs: dict, *, draws: int, warmup: int, chains: int, seed: int,
             chain_method: str = "auto", target_accept: float = 0.8, progress: bool = True,
             max_tree_depth: int = 10, initial_values: dict | None = None):
    """Run NUTS, chains starting around `initial_values` (`init_around`); returns (samples by
    chain, sample stats by chain)."""
    draws, chains = integer_argument("draws", draws, 1), integer_argument("chains", chains, 1)
    warmup, seed_value = integer_argument("warmup", warmup, 0), integer_argument("seed", seed, 0)
    max_tree_depth = integer_argument("max_tree_depth", max_tree_depth, 1)
    if not 0 < target_accept < 1:
        raise ValueError(f"target_accept must be in (0, 1), got {target_accept!r}")
    kernel = NUTS(model, target_accept_prob=target_accept, max_tree_depth=max_tree_depth,
                  init_strategy=init_around(values=initial_values or {}))
    mcmc = MCMC(kernel, num_warmup=warmup, num_samples=draws, num_chains=chains,
                chain_method=resolve_chain_method(chain_method, chains), progress_bar=progress)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="There are not enough devices")
        mcmc.run(jax.random.PRNGKey(seed_value), extra_fields=("diverging", "num_steps", "accept_prob",
                                                         "energy", "adapt_state.step_size"),
                 **model_kwargs)
    samples = {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}
    extra = mcmc.get_extra_fields(group_by_chain=True)
    stats = {"diverging": np.asarray(extra["diverging"]), "n_steps": np.asarray(extra["num_steps"]),
             "acceptance_rate": np.asarray(extra["accept_prob"]), "energy": np.asarray(extra["energy"]),
             "step_size": np.asarray(extra["adapt_state.step_size"])}
    return samples, stats
