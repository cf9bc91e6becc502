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

from ..control import Control
from ..errors import FitError
from ..program import ProgramStructure, marginal_model
from .checks import check_optimum
from .nuts import init_around
from .optimize import hessian_fd, minimize_jax
from .random_effects import draw_random_effects_for
from .structure import ModelArrays


def fit_map(structure: ProgramStructure, arrays: ModelArrays, draws: int, seed: int,
            control: Control):
    """Returns (samples with a chain axis of 1, constrained sites at the mode, optimiser record).

    The program's unconstrained coordinates are all of unit scale (standardised fixed effects,
    log sds), so the optimiser needs no further scaling.
    """
    model = partial(marginal_model, structure=structure)
    key_init, key_draw = jax.random.split(jax.random.PRNGKey(seed))
    info = initialize_model(key_init, model, model_kwargs={"arrays": arrays},
                            init_strategy=init_around(values=structure.initial_values(), radius=0.0))
    x0, unravel = ravel_pytree(info.param_info.z)
    names = [k if jnp.size(v) == 1 else f"{k}[{i}]" for k, v in sorted(info.param_info.z.items())
             for i in range(int(jnp.size(v)))]
    potential = info.potential_fn

    def objective(x):
        return potential(unravel(x))

    opt = minimize_jax(objective, np.asarray(x0), max_iter=control.max_iter)
    mode = opt.x
    H = hessian_fd(objective, mode)
    check_optimum(opt, H, names, control, "MAP fit")
    try:
        chol = np.linalg.cholesky(np.linalg.inv(H))
    except np.linalg.LinAlgError:
        raise FitError("MAP fit: the Hessian of the log posterior at the mode is not positive "
                       "definite, so it has no Gaussian approximation; use sample()") from None
    eps = np.asarray(jax.random.normal(key_draw, (draws, mode.size)))
    x_draws = mode + eps @ chol.T
    constrain = jax.jit(jax.vmap(lambda x: info.postprocess_fn(unravel(x))))
    sites = {k: np.asarray(v)[None] for k, v in constrain(jnp.asarray(x_draws)).items()}
    samples = {**sites, **draw_random_effects_for(sites, seed, arrays, structure)}
    at_mode = {k: np.asarray(v) for k, v in info.postprocess_fn(unravel(jnp.asarray(mode))).items()}
    return samples, at_mode, opt
