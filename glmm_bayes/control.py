"""`Control`: tolerances, iteration caps and what each check does (lme4's lmerControl).

Every check has an action: "warning" (the default: a warning of the package's own category),
"stop" (raise `FitError`) or "ignore". Pass `control=gb.Control(...)` or a dict of the same
keys to `Model`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, fields
from pathlib import Path

from .errors import FitError, GlmmBayesError

ACTIONS = ("warning", "stop", "ignore")
#: Warnings point at the first frame outside the package: the user's line.
PACKAGE_DIR = (str(Path(__file__).resolve().parent),)


def warn(message: str, category: type[Warning]) -> None:
    """`warnings.warn` attributed to the user's line that called into the package."""
    warnings.warn(message, category, skip_file_prefixes=PACKAGE_DIR)


@dataclass(frozen=True)
class Control:
    """Settings of the fits' checks, with lme4's defaults where lme4 has one.

    gradient_tol: largest Newton-scaled gradient |R^{-T} g| (H = R'R) at a converged optimum
    (lme4's check.conv.grad, 2e-3); singular_tol: a diagonal of Lambda_theta below this is a
    singular fit (check.conv.singular, 1e-4); hessian_tol: smallest eigenvalue of the scaled
    Hessian relative to the largest (check.conv.hess); max_iter: optimiser iterations;
    restart_edge: re-optimise from off the boundary when a fit ends singular; the check_*
    entries say what each check does ("warning", "stop" or "ignore").
    """

    gradient_tol: float = 2e-3
    singular_tol: float = 1e-4
    hessian_tol: float = 1e-8
    max_iter: int = 2000
    restart_edge: bool = True
    check_convergence: str = "warning"
    check_singular: str = "warning"
    check_separation: str = "warning"
    check_nobs_vs_nlev: str = "stop"
    check_nobs_vs_nre: str = "warning"
    check_sampling: str = "warning"

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.startswith("check_") and value not in ACTIONS:
                raise GlmmBayesError(f"control {f.name}={value!r}: use one of {', '.join(ACTIONS)}")
        if self.max_iter < 1 or not isinstance(self.max_iter, int):
            raise GlmmBayesError(
                f"control max_iter must be a positive integer, got {self.max_iter!r}"
            )

    @classmethod
    def coerce(cls, control) -> Control:
        if control is None:
            return cls()
        if isinstance(control, cls):
            return control
        if isinstance(control, dict):
            known = {f.name for f in fields(cls)}
            if unknown := sorted(set(control) - known):
                raise GlmmBayesError(
                    f"unknown control setting {unknown}; known: {', '.join(sorted(known))}"
                )
            return cls(**control)
        raise GlmmBayesError(
            f"control must be a gb.Control or a dict, got {type(control).__name__}"
        )

    def report(self, check: str, category: type[Warning], message: str) -> None:
        """Act on a failed check: warn with `category`, raise `FitError`, or nothing."""
        action = getattr(self, f"check_{check}")
        if action == "stop":
            raise FitError(message)
        if action == "warning":
            warn(message, category)
