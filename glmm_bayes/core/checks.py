"""Checks after an optimisation, the same for every engine (lme4's checkConv and isSingular).

At a converged optimum x* of a smooth objective f, with g and H its gradient and Hessian in
the optimiser's scaled coordinates and H = R'R:
  - the Newton-scaled gradient R^{-T} g is small (|.| <= gradient_tol; its squared norm
    g'H^{-1}g is twice the decrease a Newton step would still give);
  - H is positive definite, and not nearly singular (the estimate is identified).
Coordinates on a boundary (a variance component at zero) are left out of both checks, since
the objective is flat to first order there. Failures warn (or raise) through `Control.report`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from ..control import Control
from ..errors import ConvergenceWarning, FitError, SingularFitWarning
from .optimize import (
    OptSummary,
    curvature_scale,
    hessian_fd,
    minimize_jax,
    minimize_with_edge_restart,
)

#: Searches again in the curvature's units while an end point fails the optimum checks.
RESCALED_RESTARTS = 2


def check_finite(opt: OptSummary, what: str) -> None:
    """A non-finite objective is never returned as a fit."""
    if not np.isfinite(opt.fun) or not np.all(np.isfinite(opt.x)):
        raise FitError(
            f"{what}: the objective is not finite at the optimiser's end point "
            f"({opt.message}); the model may be too complex for the data, or a "
            "predictor may need rescaling"
        )


def optimum_problem(
    opt: OptSummary,
    hessian: np.ndarray,
    names: list[str],
    control: Control,
    free: np.ndarray | None = None,
) -> str | None:
    """What is wrong with the end point as an optimum (None if nothing): the iteration cap, a
    Hessian that is not positive definite or nearly singular, or a large Newton-scaled
    gradient. An optimiser that reports failure (L-BFGS-B's line search ends 'ABNORMAL' at a
    point it cannot improve) is judged by these checks, as lme4 judges its optimisers' ends."""
    if opt.n_iter >= opt.max_iter:
        return (
            f"the optimiser stopped at its iteration cap ({opt.n_iter}) without "
            f"converging; try control=gb.Control(max_iter=...)"
        )
    free = np.ones(opt.x.size, dtype=bool) if free is None else np.asarray(free)
    if not free.any():
        return None
    H = (hessian * np.outer(opt.scale, opt.scale))[np.ix_(free, free)]
    g = (opt.gradient * opt.scale)[free]
    labels = [n for n, f in zip(names, free) if f]
    if not np.all(np.isfinite(H)):
        # the coordinates whose own steps left the objective's domain (else every one touched)
        finite = np.isfinite(np.diag(H))
        finite = finite if not finite.all() else np.all(np.isfinite(H), axis=0)
        raise FitError(
            "the Hessian at the optimum is not finite in "
            f"{', '.join(n for n, ok in zip(labels, finite) if not ok)}: the objective is not "
            "defined a small step away (an optimum where the model stops being defined, such "
            "as a fitted mean of 0 under an identity or inverse link), so it has no standard "
            "errors"
        )
    eigenvalues, vectors = np.linalg.eigh(H)
    top = max(abs(eigenvalues[-1]), 1e-300)
    worst = labels[int(np.argmax(np.abs(vectors[:, 0])))]  # the flattest direction's main part
    if eigenvalues[0] <= -control.hessian_tol * top:
        return (
            f"the Hessian at the optimum has {int(np.sum(eigenvalues < 0))} negative "
            f"eigenvalue(s), so the end point is not a minimum (most involved: {worst})"
        )
    if eigenvalues[0] < control.hessian_tol * top:
        return (
            f"the model is nearly unidentifiable: the Hessian is nearly singular (eigenvalue "
            f"ratio {eigenvalues[0] / top:.1e}), mostly in the direction of {worst}; "
            "rescale predictors or simplify the model"
        )
    newton = vectors @ (
        (vectors.T @ g) / np.sqrt(eigenvalues)
    )  # H^{-1/2} g, a rotation of R^{-T} g
    if np.max(np.abs(newton)) > control.gradient_tol:
        step = np.abs(vectors @ ((vectors.T @ g) / eigenvalues))
        return (
            f"the model failed to converge: Newton-scaled gradient "
            f"{np.max(np.abs(newton)):.2g} > {control.gradient_tol} (largest step in "
            f"{labels[int(np.argmax(step))]})"
        )
    return None


def free_coordinates(x, edge: np.ndarray | None, control: Control) -> np.ndarray:
    """The coordinates off the boundary: all but the diagonals of Lambda (`edge`) at zero."""
    x = np.asarray(x)
    return (
        np.ones(x.size, bool)
        if edge is None
        else ~(np.asarray(edge) & (np.abs(x) < control.singular_tol))
    )


def settle(
    objective,
    opt: OptSummary,
    args: tuple,
    names: list[str],
    control: Control,
    edge: np.ndarray | None = None,
    hessian_scale=None,
) -> tuple[OptSummary, np.ndarray]:
    """The end point of a search and the objective's Hessian there; while `optimum_problem`
    finds fault with it (short of the iteration cap), search again from it in the units of
    the curvature there (`curvature_scale`), keeping a search only if it ends lower.

    The start units suit most models but not all: with counts in the hundreds a Poisson slope
    is known to 1 / sqrt(sum_i mu_i x_i^2), far inside its unit, and a search in such units
    can end short of the optimum (a large Newton-scaled gradient, or an indefinite Hessian)."""
    H = hessian_fd(objective, opt.x, args=args, scale=hessian_scale)
    for _ in range(RESCALED_RESTARTS):
        if (
            opt.n_iter >= opt.max_iter
            or not np.isfinite(opt.fun)
            or not np.all(np.isfinite(H))
            or optimum_problem(opt, H, names, control, free_coordinates(opt.x, edge, control))
            is None
        ):
            break
        again = minimize_jax(
            objective, opt.x, args=args, scale=curvature_scale(H), max_iter=control.max_iter
        )
        if not again.fun <= opt.fun:
            break
        opt = replace(again, x0=opt.x0, n_evals=opt.n_evals + again.n_evals)
        H = hessian_fd(objective, opt.x, args=args, scale=hessian_scale)
    return opt, H


def check_optimum(
    opt: OptSummary,
    hessian: np.ndarray,
    names: list[str],
    control: Control,
    what: str,
    free: np.ndarray | None = None,
) -> None:
    """Warn (or raise, as `control` says) when `optimum_problem` finds one; raise on a
    non-finite objective or Hessian."""
    check_finite(opt, what)
    try:
        problem = optimum_problem(opt, hessian, names, control, free)
    except FitError as error:
        raise FitError(f"{what}: {error}") from None
    if problem:
        control.report("convergence", ConvergenceWarning, f"{what}: {problem}")


def check_fit(
    opt: OptSummary,
    x,
    hessian: np.ndarray,
    names: list[str],
    edge: np.ndarray,
    singular: list[str],
    control: Control,
    what: str,
) -> np.ndarray:
    """The checks of a fitted optimum x (theta in lme4's signs): optimum, then singularity.
    Returns the mask of coordinates off the boundary (diagonals of Lambda at zero left out)."""
    free = free_coordinates(x, edge, control)
    check_optimum(opt, hessian, names, control, what, free)
    check_singular(singular, control, what)
    return free


def check_singular(singular_terms: list[str], control: Control, what: str) -> None:
    if singular_terms:
        control.report(
            "singular",
            SingularFitWarning,
            f"{what}: boundary (singular) fit: {', '.join(singular_terms)} estimated "
            "at zero or at a correlation of +-1; the random-effect structure may be "
            "too complex for the data (see lme4's ?isSingular)",
        )


@dataclass(frozen=True)
class Search:
    """What a frequentist fitter minimises: the objective (a `compiled.bind`ing of f(x, *args)),
    its start, the coordinates' names, which are diagonals of Lambda (`edge`), their scales,
    and what the fit is called in messages."""

    objective: Callable
    x0: np.ndarray
    names: list[str]
    edge: np.ndarray
    scale: np.ndarray
    what: str


def optimize_and_settle(search: Search, args: tuple, control: Control):
    """The frequentist fitters' search: minimise from x0 with lme4's restart off the edge,
    refuse a non-finite end point (`check_finite`), then `settle` it. (OptSummary, Hessian)."""
    opt = minimize_with_edge_restart(
        search.objective,
        search.x0,
        search.edge,
        args=args,
        scale=search.scale,
        max_iter=control.max_iter,
        restart=control.restart_edge,
    )
    check_finite(opt, search.what)
    return settle(search.objective, opt, args, search.names, control, search.edge, search.scale)
