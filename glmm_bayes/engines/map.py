"""MAP + Laplace posterior: the mode of p(beta, sd, cor, aux | y) with u integrated out.

The target is `program.marginal_model`'s potential (priors + Laplace marginal likelihood, exact
for gaussian models) in numpyro's unconstrained space. Around its mode x* the posterior is
approximated by N(x*, H^{-1}), H the Hessian of the potential; each draw of x is mapped to the
constrained parameters and completed with a draw of u (`random_effects`).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from numpyro.infer.util import initialize_model
from numpyro.infer import init_to_median

from ..program import ProgramStructure, marginal_model
from .optimize import hessian_fd, minimize_jax
from .random_effects import draw_random_effects_for
from .structure import ModelArrays


def fit_map(structure: ProgramStructure, arrays: ModelArrays, draws: int, seed: int):
    """Returns (samples with a chain axis of 1, constrained sites at the mode, optimiser result)."""
    model = partial(marginal_model, structure=structure)
    key_init, key_draw, key_u = jax.random.split(jax.random.PRNGKey(seed), 3)
    info = initialize_model(key_init, model, model_kwargs={"arrays": arrays},
                            init_strategy=init_to_median)
    x0, unravel = ravel_pytree(info.param_info.z)
    potential = info.potential_fn

    def objective(x):
        return potential(unravel(x))

    result = minimize_jax(objective, np.asarray(x0))
    mode = np.asarray(result.x)
    H = hessian_fd(objective, mode)
    chol = np.linalg.cholesky(np.linalg.inv(H))
    eps = np.asarray(jax.random.normal(key_draw, (draws, mode.size)))
    x_draws = mode + eps @ chol.T
    constrain = jax.jit(jax.vmap(lambda x: info.postprocess_fn(unravel(x))))
    sites = {k: np.asarray(v)[None] for k, v in constrain(jnp.asarray(x_draws)).items()}
    samples = {**sites, **draw_random_effects_for(sites, key_u, arrays, structure)}
    at_mode = {k: np.asarray(v) for k, v in info.postprocess_fn(unravel(jnp.asarray(mode))).items()}
    return samples, at_mode, result
