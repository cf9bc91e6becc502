"""Minimisation of a JAX objective with exact gradients, in scaled coordinates, with a record.

The optimiser works on z = (x - x0) / scale, with `scale` the typical size of each coordinate
(a fixed effect's scale is s_y / s_x), so its first steps are of a sensible size whatever the
units of the data. Where the objective is not finite the line search sees a value above
every one seen so far, and backs off. `OptSummary` keeps what MixedModels.jl's OptSummary
keeps, for the checks in `checks.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from .compiled import compiled


@dataclass(frozen=True)
class OptSummary:
    """One optimisation: start, result, work done and how it ended."""

    optimizer: str
    x0: np.ndarray
    x: np.ndarray
    fun: float
    gradient: np.ndarray  # gradient of the objective at x, in x's coordinates
    scale: np.ndarray  # the coordinates' scales the optimiser worked in
    n_evals: int
    n_iter: int
    max_iter: int
    message: str
    success: bool

    @property
    def scaled_gradient_norm(self) -> float:
        return float(np.max(np.abs(self.gradient * self.scale), initial=0.0))


def minimize_jax(
    objective, x0, args=(), lower=None, upper=None, scale=None, max_iter: int = 2000
) -> OptSummary:
    """Minimise `objective(x, *args)` by L-BFGS-B with JAX gradients, in scaled coordinates.

    `args` (data arrays) are passed to the jitted function rather than closed over, so they are
    not baked into the compiled program as constants; an objective made by `compiled.bind`
    reuses the compilation of every equal binding (a same-shaped model). `lower`, `upper`:
    bounds, +-inf for none; `scale`: typical size of each coordinate (ones if None).
    """
    compiled_value_and_grad = compiled(objective, "value_and_grad")
    seen = {}  # x -> (value, gradient): the end point has always been evaluated already

    def value_and_grad(x):
        key = x.tobytes()
        if key not in seen:
            value, grad = compiled_value_and_grad(x, *args)
            seen[key] = float(value), np.asarray(grad, dtype=np.float64)
        return seen[key]

    x0 = np.asarray(x0, dtype=np.float64)
    scale = np.ones_like(x0) if scale is None else np.asarray(scale, dtype=np.float64)
    best = {"fun": np.inf, "z": np.zeros_like(x0)}

    def fun(z):
        value, grad = value_and_grad(x0 + scale * np.asarray(z, dtype=np.float64))
        grad = grad * scale
        if not np.isfinite(value) or not np.all(np.isfinite(grad)):
            # L-BFGS-B's line search gives up on an infinite trial value (it stops at once,
            # 'converged', when its first step lands there); a finite value above every one
            # seen makes it backtrack instead
            return best["fun"] + 1.0 + abs(best["fun"]), np.zeros_like(grad)
        if value < best["fun"]:
            best.update(fun=value, z=np.array(z, dtype=np.float64))
        return value, grad

    lower = np.full(x0.size, -np.inf) if lower is None else np.asarray(lower, dtype=float)
    upper = np.full(x0.size, np.inf) if upper is None else np.asarray(upper, dtype=float)
    bounds = [
        (lo if np.isfinite(lo) else None, hi if np.isfinite(hi) else None)
        for lo, hi in zip((lower - x0) / scale, (upper - x0) / scale)
    ]
    result = minimize(
        fun,
        np.zeros_like(x0),
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": max_iter, "ftol": 1e-15, "gtol": 1e-9, "maxcor": 20},
    )
    x = x0 + scale * result.x
    value, grad = value_and_grad(x)
    if np.isfinite(best["fun"]) and not value <= best["fun"]:
        # the search ended above a point it had visited (a non-finite value, or an abnormal
        # line search): report the best point seen; a non-finite end is not converged
        if not np.isfinite(value):
            result.success, result.message = (
                False,
                f"ended on a non-finite value ({result.message})",
            )
        x = x0 + scale * best["z"]
        value, grad = value_and_grad(x)
    if not np.all(np.isfinite(grad)):
        result.success, result.message = (
            False,
            f"ended where the gradient is not finite ({result.message})",
        )
    return OptSummary(
        "L-BFGS-B",
        x0,
        x,
        value,
        grad,
        scale,
        int(result.nfev),
        int(result.nit),
        max_iter,
        str(result.message),
        bool(result.success),
    )


def hessian_fd(objective, x, args=(), scale=None, step: float = 1e-5) -> np.ndarray:
    """Hessian of `objective(x, *args)` by central differences of the JAX gradient; the step
    in coordinate j is `step * max(scale_j, |x_j|)`, shrunk tenfold (at most SHRINKS times)
    while a side's gradient is not finite: an optimum can lie close to where the objective
    stops being defined (mu > 0 under an identity or inverse link, PIRLS's start there)."""
    value_and_grad = compiled(objective, "value_and_grad")  # the optimiser's: no new compile

    def grad(point):
        return np.asarray(value_and_grad(point, *args)[1], dtype=np.float64)

    x = np.asarray(x, dtype=np.float64)
    scale = np.ones_like(x) if scale is None else np.asarray(scale, dtype=np.float64)
    H = np.empty((x.size, x.size))
    for j in range(x.size):
        h = step * max(scale[j], abs(x[j]))
        for _ in range(SHRINKS + 1):
            e = np.zeros_like(x)
            e[j] = h
            upper, lower = grad(x + e), grad(x - e)
            if np.all(np.isfinite(upper)) and np.all(np.isfinite(lower)):
                break
            h /= 10
        H[:, j] = (upper - lower) / (2 * h)
    return 0.5 * (H + H.T)


#: How often `hessian_fd` shrinks a step that meets a non-finite gradient.
SHRINKS = 3


def curvature_scale(hessian: np.ndarray) -> np.ndarray:
    """Each coordinate's scale from the curvature: 1 / sqrt(H_jj), 1 where H_jj is not positive."""
    d = np.diag(hessian)
    ok = np.isfinite(d) & (d > 0)
    return np.where(ok, 1.0 / np.sqrt(np.where(ok, d, 1.0)), 1.0)


#: A diagonal of Lambda_theta closer to zero than this (in its scaled units) at the end of an
#: optimisation triggers a restart from off the edge.
EDGE = 1e-2


def minimize_with_edge_restart(
    objective, x0, edge_mask, args=(), scale=None, max_iter: int = 2000, restart: bool = True
) -> OptSummary:
    """`minimize_jax` over unbounded coordinates, then lme4's restart_edge: where a coordinate
    in `edge_mask` (a diagonal of some T_k) ends near zero, the objective is flat to first order
    (it depends on that entry through its square), so an optimiser can stop there at a saddle.
    Restart with those entries at 0.1 (scaled) and keep the better end point; repeat while it
    improves."""
    best = minimize_jax(objective, x0, args=args, scale=scale, max_iter=max_iter)
    scale = best.scale
    for _ in range(3):
        near = np.asarray(edge_mask) & (np.abs(best.x / scale) < EDGE)
        if not restart or not near.any() or not np.isfinite(best.fun):
            break
        start = np.where(near, 0.1 * scale, best.x)
        again = minimize_jax(objective, start, args=args, scale=scale, max_iter=max_iter)
        if not again.fun < best.fun - 1e-10 * max(1.0, abs(best.fun)):
            break
        best = again
    return best
