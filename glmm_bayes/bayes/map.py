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
import numpyro  # noqa: F401  (before its subpackages: see `lazy_modules.LazyModule`)
from numpyro.infer.util import constrain_fn, potential_energy

from ..control import Control
from ..core.checks import check_optimum, settle
from ..core.compiled import bind, compiled
from ..core.grouped import GroupStatistics
from ..core.optimize import minimize_jax
from ..core.structure import ModelArrays
from ..errors import FitError
from .nuts import initial_point
from .program import marginal_model
from .program_structure import PriorValues, ProgramStructure
from .random_effects import draw_random_effects_for


def _unravel(x, shapes: tuple) -> dict:
    """The flat unconstrained vector as the program's sites ((name, shape) pairs, names sorted:
    `ravel_pytree`'s order)."""
    sizes = [int(np.prod(shape)) for _, shape in shapes]
    parts = jnp.split(x, np.cumsum(sizes)[:-1])
    return {name: part.reshape(shape) for (name, shape), part in zip(shapes, parts)}


def potential(x, data, *, structure: ProgramStructure, shapes: tuple):
    """-log p(x | y) up to a constant, x the flat unconstrained parameters."""
    return potential_energy(
        partial(marginal_model, structure=structure), (), data, _unravel(x, shapes)
    )


def _start(data, *, structure: ProgramStructure):
    """The unconstrained sites at the priors' typical values (`PriorValues.initial`)."""
    return initial_point(
        partial(marginal_model, structure=structure),
        data,
        jax.random.PRNGKey(0),
        data["priors"].initial,
        0.0,
    )


def constrained_sites(x, data, *, structure: ProgramStructure, shapes: tuple):
    """The constrained and deterministic sites at each row of `x` (flat unconstrained points)."""
    return jax.vmap(
        lambda z: constrain_fn(
            partial(marginal_model, structure=structure),
            (),
            data,
            _unravel(z, shapes),
            return_deterministic=True,
        )
    )(x)


def _gaussian_draws(
    seed, mode, chol, data, *, structure: ProgramStructure, shapes: tuple, draws: int
):
    """The constrained and deterministic sites at the mode (row 0) and at `draws` draws of
    N(mode, chol chol') (rows 1...)."""
    eps = jax.random.normal(jax.random.split(jax.random.PRNGKey(seed))[1], (draws, mode.size))
    x = jnp.concatenate([mode[None, :], mode + eps @ chol.T])
    return constrained_sites(x, data, structure=structure, shapes=shapes)


def posterior_mode(
    structure: ProgramStructure,
    arrays: ModelArrays,
    priors: PriorValues,
    control: Control,
    statistics: GroupStatistics | None = None,
    what: str = "MAP fit",
):
    """The mode of the potential in the unconstrained space, checked: (data, shapes (the
    sites' (name, shape) in the flat vector's order), the flat coordinates' names, the
    optimiser's record, the Hessian there)."""
    data = {"arrays": arrays, "priors": priors, "statistics": statistics}
    start = compiled(bind(_start, structure=structure))(data)
    shapes = tuple((name, tuple(np.shape(value))) for name, value in sorted(start.items()))
    x0 = np.concatenate([np.ravel(start[name]) for name, _ in shapes])
    names = [
        name if not shape else f"{name}[{i}]"
        for name, shape in shapes
        for i in range(int(np.prod(shape)))
    ]
    objective = bind(potential, structure=structure, shapes=shapes)
    opt, H = settle(
        objective,
        minimize_jax(objective, x0, args=(data,), max_iter=control.max_iter),
        (data,),
        names,
        control,
    )
    check_optimum(opt, H, names, control, what)
    return data, shapes, names, opt, H


def fit_map(
    structure: ProgramStructure,
    arrays: ModelArrays,
    priors: PriorValues,
    draws: int,
    seed: int,
    control: Control,
    statistics: GroupStatistics | None = None,
):
    """Returns (samples with a chain axis of 1, constrained sites at the mode, optimiser record).

    `statistics`: per-group sufficient statistics standing in for the rows (a linear Gaussian
    model on one grouping factor, as in NUTS). The program's unconstrained coordinates are all
    of unit scale (standardised fixed effects, log sds), which suits the optimiser unless the
    data pin a coordinate far more tightly than its prior (then `settle` searches again).
    Every step is compiled once per program (structure and data shapes): a refit, on these
    data or others, reuses them.
    """
    data, shapes, _, opt, H = posterior_mode(structure, arrays, priors, control, statistics)
    mode = opt.x
    try:
        chol = np.linalg.cholesky(np.linalg.inv(H))
    except np.linalg.LinAlgError:
        raise FitError(
            "MAP fit: the Hessian of the log posterior at the mode is not positive "
            "definite, so it has no Gaussian approximation; use sample()"
        ) from None
    gaussian_draws = compiled(
        bind(_gaussian_draws, structure=structure, shapes=shapes, draws=draws)
    )
    constrained = {
        k: np.asarray(v) for k, v in gaussian_draws(np.uint32(seed), mode, chol, data).items()
    }
    at_mode = {k: v[0] for k, v in constrained.items()}
    sites = {k: v[None, 1:] for k, v in constrained.items()}
    samples = {**sites, **draw_random_effects_for(sites, seed, arrays, structure, statistics)}
    return samples, at_mode, opt
