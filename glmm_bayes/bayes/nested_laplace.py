"""Nested Laplace (Rue, Martino and Chopin 2009, INLA's idea) for these models.

Split the program's unconstrained coordinates (b already integrated out: exactly for linear
Gaussian models, by Laplace otherwise) into the fixed effects beta and the rest, psi (log sds,
correlations, sigma or the family's parameter). For each psi, beta | psi, y is approximated by
N(beta*(psi), H_bb(psi)^{-1}), beta* the mode of the potential U(beta, psi) and H_bb its Hessian
in beta, and

    log p(psi | y) ~= -U(beta*(psi), psi) - log|H_bb(psi)| / 2 + const

(exact for a linear Gaussian model with flat priors on beta: the REML likelihood). This is
evaluated on a grid in psi standardised by the joint mode's covariance: `GRID_POINTS` per axis,
each axis reaching in either direction as far as log p(psi | y) takes to fall by `LOG_DROP`
(probed at whole sds, up to `MAX_REACH`; a posterior skewed in log sd reaches further on one
side). The posterior is the mixture over the grid of the cells (psi uniform within its cell)
times the conditional Gaussians of beta, and b | beta, psi, y is drawn as for the MAP fit.
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
from .program_structure import PriorValues, ProgramStructure, standardised_name
from .random_effects import draw_random_effects_for

GRID_POINTS = {1: 41, 2: 17, 3: 11, 4: 9}  # points per axis by the number of psi coordinates
LOG_DROP = 9.0  # an axis ends where log p(psi | y) is this far below the mode (e^-9 ~ 1e-4)
MAX_REACH = 12  # the probes along each axis, at 1 ... 12 marginal sds
NEWTON_STEPS = 3  # Newton steps to beta*(psi) from its linear prediction off the joint mode
SETTLED = 1e-3  # largest half squared Newton decrement (the log density's error) accepted
HESSIAN_STEP = 1e-4  # central differences of the gradient in the unit-scale beta coordinates
GRID_BATCH = 256  # grid points evaluated together


def _conditional(psi, beta0, data, *, structure, shapes, beta_at, psi_at):
    """(beta*(psi), H_bb(psi), log p(psi | y) + const); -inf where Newton did not settle.
    H_bb is the central difference of the exact gradient (a GLMM's marginal potential has
    exact first derivatives, but its autodiff second derivatives miss the mode's own second
    order: Newton on them crept, and their log-determinant is biased); the last step's are
    reported, and the point counts only where the last step's half squared Newton decrement,
    the error it left in log p(psi | y) to first order, is below SETTLED."""

    def energy(beta):
        x = jnp.zeros(len(beta_at) + len(psi_at), beta.dtype)
        x = x.at[np.array(beta_at)].set(beta).at[np.array(psi_at)].set(psi)
        return potential(x, data, structure=structure, shapes=shapes)

    gradient_of = jax.grad(energy)

    def step(state, _):
        beta = state[0]
        shifts = HESSIAN_STEP * jnp.eye(beta.size, dtype=beta.dtype)
        rows = jax.vmap(lambda e: gradient_of(beta + e) - gradient_of(beta - e))(shifts)
        hessian = (rows + rows.T) / (4 * HESSIAN_STEP)
        gradient = gradient_of(beta)
        return (beta - jnp.linalg.solve(hessian, gradient), gradient, hessian), None

    p = len(beta_at)
    start = (beta0, jnp.full(p, jnp.inf, beta0.dtype), jnp.eye(p, dtype=beta0.dtype))
    (beta, gradient, hessian), _ = jax.lax.scan(step, start, None, length=NEWTON_STEPS)
    sign, logdet = jnp.linalg.slogdet(hessian)
    settled = 0.5 * gradient @ jnp.linalg.solve(hessian, gradient) < SETTLED
    value = -energy(beta) - 0.5 * logdet
    return beta, hessian, jnp.where(settled & (sign > 0) & jnp.isfinite(value), value, -jnp.inf)


def _on_grid(grid, starts, data, *, structure, shapes, beta_at, psi_at):
    one = partial(_conditional, structure=structure, shapes=shapes, beta_at=beta_at, psi_at=psi_at)
    return jax.lax.map(lambda a: one(*a, data), (grid, starts), batch_size=GRID_BATCH)


def _cell_slopes(logp: np.ndarray, d: int, step: np.ndarray) -> np.ndarray:
    """d log p / dz_j at every grid point, by differences along each axis (one-sided at the
    ends; a point beyond which the density is not finite takes the slope towards it as 0)."""
    values = np.where(np.isfinite(logp), logp, np.nanmin(np.where(np.isfinite(logp), logp, np.nan)))
    values = values.reshape((round(len(logp) ** (1 / d)),) * d)
    slopes = np.gradient(values, *step) if d > 1 else [np.gradient(values, step[0])]
    return np.stack([np.ravel(g) for g in slopes], axis=1)


def _tilted_uniform(rng, slopes: np.ndarray, step: np.ndarray) -> np.ndarray:
    """Offsets within a cell [-h/2, h/2]^d with density proportional to exp(slope . offset)
    (inverse CDF of a truncated exponential per axis; uniform where the slope is ~0), so that
    within a cell log p is linear rather than constant: a piecewise-constant density on a grid
    of step h adds h^2 / 12 to every variance (6% of sigma's sd on sleepstudy's 9-point axes)."""
    u = rng.uniform(size=slopes.shape)
    rate = slopes * step
    flat = np.abs(rate) < 1e-8
    safe = np.where(flat, 1.0, rate)
    tilted = np.log1p(u * np.expm1(safe)) / safe
    return (np.where(flat, u, tilted) - 0.5) * step


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
    program = compiled(
        bind(_on_grid, structure=structure, shapes=shapes, beta_at=beta_at, psi_at=psi_at)
    )
    size = GRID_POINTS[d] ** d

    # beta*(psi) to first order: beta* - H_bb^-1 H_bpsi (psi - psi*), Newton's start
    slope = -np.linalg.solve(H[np.ix_(beta_at, beta_at)], H[np.ix_(beta_at, psi_at)])

    def evaluate(z):  # padded to one grid size, so that one executable serves every call
        padded = np.zeros((size, d))
        padded[: len(z)] = z
        shift = padded @ scale.T
        starts = opt.x[list(beta_at)] + shift @ slope.T
        out = program(opt.x[list(psi_at)] + shift, starts, data)
        return [np.asarray(a)[: len(z)] for a in out]

    reach = np.arange(1, MAX_REACH + 1)
    probes = np.concatenate(
        [sign * np.outer(reach, np.eye(d)[j]) for j in range(d) for sign in (-1, 1)]
    )
    top, *probed = evaluate(np.concatenate([np.zeros((1, d)), probes]))[2]
    below = (np.asarray(probed) < top - LOG_DROP).reshape(d, 2, MAX_REACH)
    extent = np.where(below.any(axis=2), reach[np.argmax(below, axis=2)], MAX_REACH)
    axes = [np.linspace(-extent[j, 0], extent[j, 1], GRID_POINTS[d]) for j in range(d)]
    z = np.array(list(itertools.product(*axes)))
    grid = opt.x[list(psi_at)] + z @ scale.T
    betas, hessians, logp = evaluate(z)
    if not np.isfinite(logp).any():
        raise FitError("nested Laplace: no grid point gave a finite log posterior; use sample()")
    step = np.array([axis[1] - axis[0] for axis in axes])
    slopes = _cell_slopes(logp, d, step)
    # each cell's mass: exp(log p) times the mean of its log-linear tilt over the cell,
    # prod_j sinh(s_j h_j / 2) / (s_j h_j / 2)
    half = np.abs(slopes * step / 2)
    small = half < 1e-8
    tilt = np.prod(np.where(small, 1.0, np.sinh(half) / np.where(small, 1.0, half)), axis=1)
    weights = np.exp(logp - logp.max()) * tilt
    weights /= weights.sum()
    rng = np.random.default_rng(seed)
    cell = rng.choice(len(grid), size=draws, p=weights)
    offset = _tilted_uniform(rng, slopes[cell], step)
    x = np.empty((draws, len(names)))
    x[:, list(psi_at)] = grid[cell] + offset @ scale.T
    for k in np.unique(cell):
        rows = cell == k
        chol = np.linalg.cholesky(np.linalg.inv(hessians[k]))
        noise = rng.standard_normal((rows.sum(), len(beta_at)))
        x[np.ix_(rows, list(beta_at))] = betas[k] + noise @ chol.T
    constrain = compiled(bind(constrained_sites, structure=structure, shapes=shapes))
    sites = {k: np.asarray(v)[None] for k, v in constrain(x, data).items()}
    samples = {**sites, **draw_random_effects_for(sites, seed, arrays, structure, statistics)}
    return samples, logp, weights
