"""Draws of u | y, population parameters, for programs that integrate u out.

Given beta, the absolute factors T_k and aux (a gaussian model's arrays whitened by its
residual structure first, `core.residual`), u* is the conditional mode and
A = Lambda' Z' W Z Lambda + I (W the Fisher weights at u*); u ~ N(u*, A^{-1}), drawn as
u* + L^{-T} e with e ~ N(0, I). For linear Gaussian models (W = I / sigma^2) this is the exact
conditional distribution; otherwise it is its Laplace approximation.
"""

from __future__ import annotations

from functools import partial

import jax
import numpy as np

from ..core.cholesky import solve_upper
from ..core.compiled import bind, compiled
from ..core.glmm_deviance import conditional_fit
from ..core.grouped import GroupStatistics, grouped_random_effects_draw
from ..core.residual import whiten
from ..core.structure import ModelArrays, factors_to_theta
from .program_structure import ProgramStructure, population_from_sites, residual_from_sites


def draw_random_effects(
    key,
    sites,
    arrays: ModelArrays,
    structure: ProgramStructure,
    statistics: GroupStatistics | None = None,
):
    """One draw of u given one draw of the program's population sites; {z(label): u_k}. With
    `statistics` (every term on one grouping factor) the draw is made group by group from the
    per-group sufficient statistics (`grouped.grouped_random_effects_draw`)."""
    beta, factors, aux = population_from_sites(sites, structure, arrays.X)
    layout = structure.layout
    if statistics is not None:
        u = grouped_random_effects_draw(key, beta, factors, aux, statistics)
        return {f"z({t.label})": u[:, t.row_pos : t.row_pos + t.q] for t in layout.terms}
    arrays, _ = whiten(residual_from_sites(sites, structure), arrays, layout.residual)
    u, _, L, _ = conditional_fit(
        beta, factors_to_theta(factors), aux, arrays, layout, structure.family, structure.link
    )
    u = u + solve_upper(L, jax.random.normal(key, u.shape, dtype=u.dtype))
    return {
        f"z({t.label})": u[t.start : t.start + t.n_levels * t.q].reshape(t.n_levels, t.q)
        for t in layout.terms
    }


#: Draws of u are computed this many at a time (vectorised within a batch, in sequence across
#: batches), so memory is bounded by the batch, not by the number of draws.
DRAW_BATCH = 64


def _draw_all(seed, flat, arrays, statistics, structure):
    keys = jax.random.split(
        jax.random.fold_in(jax.random.PRNGKey(seed), 1), len(next(iter(flat.values())))
    )
    one = partial(draw_random_effects, arrays=arrays, structure=structure, statistics=statistics)
    return jax.lax.map(lambda a: one(*a), (keys, flat), batch_size=DRAW_BATCH)


def draw_random_effects_for(
    samples: dict,
    seed: int,
    arrays: ModelArrays,
    structure: ProgramStructure,
    statistics: GroupStatistics | None = None,
) -> dict:
    """u for every draw of `samples` (arrays with leading axes (chains, draws)), from the
    random stream fold_in(PRNGKey(seed), 1); compiled once per model shape."""
    lead = next(iter(samples.values())).shape[:2]
    flat = {k: np.reshape(v, (-1,) + v.shape[2:]) for k, v in samples.items()}
    draws = compiled(bind(_draw_all, structure=structure))(
        np.uint32(seed), flat, arrays, statistics
    )
    return {k: np.asarray(v).reshape(lead + v.shape[1:]) for k, v in draws.items()}
