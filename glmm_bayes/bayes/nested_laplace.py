"""Nested Laplace (Rue, Martino and Chopin 2009, INLA's idea) for these models.

Split the program's unconstrained coordinates (b already integrated out: exactly for linear
Gaussian models, by Laplace otherwise) into the fixed effects beta and the rest, psi (log sds,
correlations, sigma or the family's parameter). For each psi, beta | psi, y is approximated by
N(beta*(psi), H_bb(psi)^{-1}), beta* the mode of the potential U(beta, psi) and H_bb its Hessian
in beta, and

    log p(psi | y) ~= -U(beta*(psi), psi) - log|H_bb(psi)| / 2 + const

(exact for a linear Gaussian model with flat priors on beta: the REML likelihood). This is
evaluated on a grid in psi standardised by the joint mode's covariance (`GRID_POINTS` per axis
over +-`GRID_HALF_WIDTH` sds); the posterior is the mixture over the grid of the cells (psi
uniform within its cell) times the conditional Gaussians of beta, and b | beta, psi, y is drawn
as for the MAP fit.
"""

from __future__ import annotations

import itertools
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ..control import Control
from ..core.compiled import bind, compiled
from ..core.grouped import GroupStatistics
from ..core.structure import ModelArrays
from ..errors import FitError, ModelError
from .map import constrained_sites, posterior_mode, potential
from .program import PriorValues, ProgramStructure, standardised_name
from .random_effects import draw_random_effects_for

GRID_HALF_WIDTH = 4.0  # the grid spans psi* +- this many marginal sds on each axis
GRID_POINTS = {1: 41, 2: 25, 3: 13, 4: 9}  # points per axis by the number of psi coordinates
NEWTON_STEPS = 12  # Newton steps to beta*(psi) from the joint mode's beta
GRID_BATCH = 256  # grid points evaluated together


def _conditional(psi, beta0, data, *, structure, shapes, beta_at, psi_at):
    """(beta*(psi), H_bb(psi), log p(psi | y) + const); -inf where Newton did not settle.
    The gradient and Hessian come from one linearisation of the gradient (one copy of the
    second-derivative program to compile); the last step's are reported."""

    def energy(beta):
        x = jnp.zeros(len(beta_at) + len(psi_at), beta.dtype)
        x = x.at[np.array(beta_at)].set(beta).at[np.array(psi_at)].set(psi)
        return potential(x, data, structure=structure, shapes=shapes)

    def step(state, _):
        beta = state[0]
        gradient, along = jax.linearize(jax.grad(energy), beta)
        hessian = jax.vmap(along)(jnp.eye(beta.size, dtype=beta.dtype))
        return (beta - jnp.linalg.solve(hessian, gradient), gradient, hessian), None

    p = len(beta_at)
    start = (beta0, jnp.full(p, jnp.inf, beta0.dtype), jnp.eye(p, dtype=beta0.dtype))
    (beta, gradient, hessian), _ = jax.lax.scan(step, start, None, length=NEWTON_STEPS)
    sign, logdet = jnp.linalg.slogdet(hessian)
    settled = jnp.max(jnp.abs(gradient)) < 1e-6 * (1 + jnp.max(jnp.abs(beta)))
    value = -energy(beta) - 0.5 * logdet
    return beta, hessian, jnp.where(settled & (sign > 0) & jnp.isfinite(value), value, -jnp.inf)


def _on_grid(grid, beta0, data, *, structure, shapes, beta_at, psi_at):
    one = partial(_conditional, structure=structure, shapes=shapes, beta_at=beta_at, psi_at=psi_at)
    return jax.lax.map(lambda psi: one(psi, beta0, data), grid, batch_size=GRID_BATCH)


def fit_nested_laplace(
    structure: ProgramStructure,
    arrays: ModelArrays,
    priors: PriorValues,
    draws: int,
    seed: int,
    control: Control,
    statistics: GroupStatistics | None = None,
):
    """Returns (samples with a chain axis of 1, the grid's log p(psi | y), normalised weights)."""
    data, shapes, names, opt, H = posterior_mode(
        structure, arrays, priors, control, statistics, "nested Laplace"
    )
    fixed = {standardised_name(n) for n in structure.fixed_names}
    site_of = [name for name, shape in shapes for _ in range(int(np.prod(shape)))]
    beta_at = tuple(i for i, site in enumerate(site_of) if site in fixed)
    psi_at = tuple(i for i, site in enumerate(site_of) if site not in fixed)
    d = len(psi_at)
    if d not in GRID_POINTS:
        raise ModelError(
            f"fit_nested_laplace integrates over a grid of at most {max(GRID_POINTS)} "
            f"covariance and family parameters; this model has {d}: use sample()"
        )
    try:
        scale = np.linalg.cholesky(np.linalg.inv(H)[np.ix_(psi_at, psi_at)])
    except np.linalg.LinAlgError:
        raise FitError(
            "nested Laplace: the Hessian of the log posterior at the mode is not positive "
            "definite; use sample()"
        ) from None
    axis = np.linspace(-GRID_HALF_WIDTH, GRID_HALF_WIDTH, GRID_POINTS[d])
    z = np.array(list(itertools.product(axis, repeat=d)))
    grid = opt.x[list(psi_at)] + z @ scale.T
    program = compiled(
        bind(_on_grid, structure=structure, shapes=shapes, beta_at=beta_at, psi_at=psi_at)
    )
    betas, hessians, logp = (np.asarray(a) for a in program(grid, opt.x[list(beta_at)], data))
    if not np.isfinite(logp).any():
        raise FitError("nested Laplace: no grid point gave a finite log posterior; use sample()")
    weights = np.exp(logp - logp.max())
    weights /= weights.sum()
    rng = np.random.default_rng(seed)
    cell = rng.choice(len(grid), size=draws, p=weights)
    step = axis[1] - axis[0]
    x = np.empty((draws, len(names)))
    x[:, list(psi_at)] = grid[cell] + (rng.uniform(-0.5, 0.5, (draws, d)) * step) @ scale.T
    for k in np.unique(cell):
        rows = cell == k
        chol = np.linalg.cholesky(np.linalg.inv(hessians[k]))
        noise = rng.standard_normal((rows.sum(), len(beta_at)))
        x[np.ix_(rows, list(beta_at))] = betas[k] + noise @ chol.T
    constrain = compiled(bind(constrained_sites, structure=structure, shapes=shapes))
    sites = {k: np.asarray(v)[None] for k, v in constrain(x, data).items()}
    samples = {**sites, **draw_random_effects_for(sites, seed, arrays, structure, statistics)}
    return samples, logp, weights
