"""Draws of u | y, population parameters, for programs that integrate u out.

Given beta, the absolute factors T_k and aux (a gaussian model's arrays whitened by its
residual structure first, `engines.residual`), u* is the conditional mode and
A = Lambda' Z' W Z Lambda + I (W the Fisher weights at u*); u ~ N(u*, A^{-1}), drawn as
u* + L^{-T} e with e ~ N(0, I). For linear Gaussian models (W = I / sigma^2) this is the exact
conditional distribution; otherwise it is its Laplace approximation.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ..program import ProgramStructure, population_from_sites, residual_from_sites
from .cholesky import solve_upper
from .laplace import conditional_fit
from .residual import whiten
from .structure import ModelArrays, factors_to_theta


def draw_random_effects(key, sites, arrays: ModelArrays, structure: ProgramStructure):
    """One draw of u given one draw of the program's population sites; {z(label): u_k}."""
    beta, factors, aux = population_from_sites(sites, structure, arrays.X)
    theta = factors_to_theta(factors)
    layout = structure.layout
    arrays, _ = whiten(residual_from_sites(sites, structure), arrays, layout.residual)
    u, _, L, _ = conditional_fit(beta, theta, aux, arrays, layout, structure.family, structure.link)
    u = u + solve_upper(L, jax.random.normal(key, u.shape, dtype=u.dtype))
    return {f"z({t.label})": u[t.start:t.start + t.n_levels * t.q].reshape(t.n_levels, t.q)
            for t in layout.terms}


#: Draws of u are computed this many at a time (vectorised within a batch, in sequence across
#: batches), so memory is bounded by the batch, not by the number of draws.
DRAW_BATCH = 64


def draw_random_effects_for(samples: dict, key, arrays: ModelArrays,
                            structure: ProgramStructure) -> dict:
    """u for every draw of `samples` (arrays with leading axes (chains, draws))."""
    lead = next(iter(samples.values())).shape[:2]
    flat = {k: jnp.asarray(v).reshape((-1,) + v.shape[2:]) for k, v in samples.items()}
    keys = jax.random.split(key, int(np.prod(lead)))
    one = partial(draw_random_effects, arrays=arrays, structure=structure)
    draws = jax.jit(lambda k, s: jax.lax.map(lambda a: one(*a), (k, s), batch_size=DRAW_BATCH))(keys, flat)
    return {k: np.asarray(v).reshape(lead + v.shape[1:]) for k, v in draws.items()}
