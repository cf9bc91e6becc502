"""MAP + Laplace posterior: the mode of p(beta, sd, cor, aux | y) with u integrated out.

The target is `program.marginal_model`'s potential (priors + Laplace marginal likelihood, exact
for gaussian models) in numpyro's unconstrained space. Around its mode x* the posterior is
approximated by N(x*, H^{-1}), H the Hessian of the potential; each draw of x is mapped to the
constrained parameters and completed with u ~ N(u*, A^{-1}) from the conditional Laplace fit.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from numpyro.infer.util import initialize_model
from numpyro.infer import init_to_median

from ..program import ProgramStructure, centred_design, marginal_model, term_factor, uncentre
from .cholesky import factor_penalised_gram, solve_upper
from .laplace import conditional_mode
from .optimize import hessian_fd, minimize_jax
from .structure import (ModelArrays, covariance_factors, factors_to_theta, sparse_matvec,
                        z_lambda_values)


def _draw_random_effects(key, sites, arrays: ModelArrays, structure: ProgramStructure):
    """u ~ N(u*, A^{-1}) given one draw of the population parameters; returns {z(label): u_k}."""
    _, means = centred_design(arrays.X, structure.intercept_index)
    coefs = jnp.stack([sites[n] for n in structure.fixed_names])
    beta = uncentre(coefs, means, structure.intercept_index)
    factors = [term_factor(sites, label, names)
               for label, names in zip(structure.term_labels, structure.term_names)]
    aux = sites[structure.family.aux_name] if structure.family.aux_name else 1.0
    theta = factors_to_theta(factors)
    layout = structure.layout
    u = conditional_mode(beta, theta, aux, arrays, layout, structure.family, structure.link)
    zl = z_lambda_values(arrays.z_val, covariance_factors(theta, layout), layout)
    eta = arrays.X @ beta + arrays.offset + sparse_matvec(arrays.z_idx, zl, u)
    w = structure.family.fisher_weight(eta, aux, arrays.trials, structure.link)
    L = factor_penalised_gram(arrays.z_idx, zl, w, layout)
    u = u + solve_upper(L, jax.random.normal(key, u.shape, dtype=u.dtype))
    return {f"z({label})": u[t.start:t.start + t.n_levels * t.q].reshape(t.n_levels, t.q)
            for label, t in zip(structure.term_labels, layout.terms)}


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
    sites = {k: v for k, v in constrain(jnp.asarray(x_draws)).items()}
    random = jax.jit(jax.vmap(partial(_draw_random_effects, arrays=arrays, structure=structure)))(
        jax.random.split(key_u, draws), sites)
    samples = {k: np.asarray(v)[None] for k, v in {**sites, **random}.items()}
    at_mode = {k: np.asarray(v) for k, v in info.postprocess_fn(unravel(jnp.asarray(mode))).items()}
    return samples, at_mode, result
