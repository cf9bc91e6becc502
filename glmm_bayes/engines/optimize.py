"""Bound-constrained minimisation of a JAX objective with exact gradients (float64)."""

from __future__ import annotations

from functools import lru_cache

import jax
import numpy as np
from scipy.optimize import minimize


@lru_cache(maxsize=8)
def _compiled_value_and_grad(objective):
    """One jitted value-and-gradient per objective, so repeated minimisations compile once."""
    return jax.jit(jax.value_and_grad(objective))


def minimize_jax(objective, x0, args=(), lower=None, upper=None, max_iter: int = 2000):
    """Minimise `objective(x, *args)` over x by L-BFGS-B with JAX gradients.

    `args` (data arrays) are passed to the jitted function rather than closed over, so they are
    not baked into the compiled program as constants. `lower`, `upper`: bounds, +-inf for none.
    """
    value_and_grad = _compiled_value_and_grad(objective)

    def fun(x):
        value, grad = value_and_grad(np.asarray(x, dtype=np.float64), *args)
        return float(value), np.asarray(grad, dtype=np.float64)

    x0 = np.asarray(x0, dtype=np.float64)
    lower = np.full(x0.size, -np.inf) if lower is None else np.asarray(lower, dtype=float)
    upper = np.full(x0.size, np.inf) if upper is None else np.asarray(upper, dtype=float)
    bounds = [(lo if np.isfinite(lo) else None, hi if np.isfinite(hi) else None)
              for lo, hi in zip(lower, upper)]
    return minimize(fun, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                    options={"maxiter": max_iter, "ftol": 1e-15, "gtol": 1e-9, "maxcor": 20})


def hessian_fd(objective, x, args=(), step: float = 1e-5) -> np.ndarray:
    """Hessian of `objective(x, *args)` by central differences of the JAX gradient."""
    grad = jax.jit(jax.grad(objective))
    x = np.asarray(x, dtype=np.float64)
    H = np.empty((x.size, x.size))
    for j in range(x.size):
        h = step * max(1.0, abs(x[j]))
        e = np.zeros_like(x)
        e[j] = h
        H[:, j] = (np.asarray(grad(x + e, *args)) - np.asarray(grad(x - e, *args))) / (2 * h)
    return 0.5 * (H + H.T)
