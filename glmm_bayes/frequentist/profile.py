"""Profile-likelihood intervals, as lme4's confint(method = "profile").

The deviance -2 log L is written as a function of the natural parameters
    phi = (beta, then per term the sds and correlations of b_k, then sigma or the family's aux,
           then the residual structure's parameters),
in the order of the `ParameterMap` (`marginal.marginal_deviance`: exact for linear Gaussian
models, Laplace / AGQ otherwise). For each parameter phi_j
the profile d_j(v) = min_{phi: phi_j = v} -2 log L(phi) is minimised over the others, and the
interval ends solve d_j(v) - d_min = chi^2_1(level) by Brent's method. An end at a bound
(an sd at 0, a correlation at +-1) is reported as that bound, as lme4 does. Profiles are of
the likelihood: a REML fit is profiled through its ML refit, as lme4's profile() does.
"""

from __future__ import annotations

import warnings

import jax.numpy as jnp
import numpy as np
from scipy import optimize, special

from ..core.compiled import bind
from ..core.marginal import marginal_deviance
from ..core.optimize import hessian_fd, minimize_jax
from ..core.parameters import ParameterMap
from ..core.scaling import parameter_scales
from ..core.structure import ModelArrays, RandomEffectsLayout, factors_to_theta
from ..design import ModelSpec
from ..errors import FitError

#: Correlations are kept this far inside (-1, 1), where the factor of C is differentiable.
CORRELATION_MARGIN = 1e-8
MAX_DOUBLINGS = 40


def natural_deviance(
    phi, arrays, parameters: ParameterMap, layout: RandomEffectsLayout, family, link, nagq: int
):
    """-2 log L as a function of the natural parameters phi (`ParameterMap.unpack`)."""
    beta, factors, aux, residual = parameters.unpack(phi)
    return marginal_deviance(
        beta, factors_to_theta(factors), aux, arrays, layout, family, link, nagq, residual
    )


def _bounds(parameters: ParameterMap):
    """Bounds of phi (the map's, correlations kept `CORRELATION_MARGIN` inside (-1, 1) and any
    other bounded parameter likewise) and the mask of the positive entries, which the inner
    optimisations move on the log scale."""
    lower, upper = parameters.bounds()
    bounded = np.isfinite(lower) & np.isfinite(upper)
    return (
        np.where(bounded, lower + CORRELATION_MARGIN, lower),
        np.where(bounded, upper - CORRELATION_MARGIN, upper),
        parameters.positive(),
    )


#: Positive parameters are floored here (relative to their scale) before taking logs.
LOG_FLOOR = 1e-12


def _to_free(phi, positive, scale):
    """phi -> the inner optimiser's coordinates: log(phi / scale) for sds and aux, else phi."""
    return np.where(positive, np.log(np.maximum(phi / scale, LOG_FLOOR)), phi)


def _from_free(z, positive, scale, xp=jnp):
    return xp.where(positive, scale * xp.exp(xp.where(positive, z, 0.0)), z)


def _pinned(z, pinned, value, positive, scale, arrays, deviance):
    """The deviance at phi = `_from_free(z)` with the entries in the mask `pinned` set to
    `value`. One compiled function serves every optimisation and the Hessian: nothing pinned
    is the all-free objective, one entry pinned (its z held by equal bounds) a profile's, and
    nothing positive the deviance of phi = z itself."""
    return deviance(jnp.where(pinned, value, _from_free(z, positive, scale)), arrays)


class _Profiler:
    """d_j(v) for one parameter j; the others move in free coordinates. Each optimisation starts
    from the solution at the nearest value already profiled (the estimate at first), so that
    neighbouring values reach the same branch of optima: with a strongly correlated parameter (an
    intercept beside uncentred covariates) a start far from the value can end elsewhere. For a
    fixed effect the start is moved along the deviance's valley (`_ridge_slope`): on ctsib's
    ridge (intercept, Height and Weight collinear) the unmoved start lay where the Laplace
    deviance is not finite, and the profile could not be bracketed. Each value is profiled
    once (d_j(v_hat) = d_min), so Brent's method sees the values that bracketed the root."""

    def __init__(self, objective, z_hat, j, v_hat, d_min, coordinates, hessian, p, arrays):
        lower, upper, positive, scale, step = coordinates
        self.objective, self.j, self.arrays = objective, j, arrays
        self.solutions = {float(v_hat): z_hat}
        self.values = {float(v_hat): d_min}
        self.slope = _ridge_slope(hessian, j, p)
        self.pinned = np.arange(z_hat.size) == j
        self.positive, self.scale, self.step = positive, scale, step
        self.lower = np.where(positive, -np.inf, lower)  # z_j: pinned by equal bounds
        self.upper = np.where(positive, np.inf, upper)

    def __call__(self, value: float) -> float:
        value = float(value)
        if value in self.values:
            return self.values[value]
        nearest = min(self.solutions, key=lambda v: abs(v - value))
        start = self.solutions[nearest] + self.slope * (value - nearest)
        lower, upper = self.lower.copy(), self.upper.copy()
        lower[self.j] = upper[self.j] = start[self.j]
        result = minimize_jax(
            self.objective,
            start,
            args=(self.pinned, np.float64(value), self.positive, self.scale, self.arrays),
            lower=lower,
            upper=upper,
            scale=self.step,
        )
        if not (np.isfinite(result.fun) and np.all(np.isfinite(result.gradient))):
            raise FitError(f"the profile of parameter {self.j} is not finite at {value:.6g}")
        self.solutions[value] = result.x
        self.values[value] = float(result.fun)
        return self.values[value]


def _ridge_slope(H, j, p):
    """d beta_f / d beta_j = -H_ff^-1 H_fj along the valley of the deviance at the estimate (H
    its Hessian), over the other fixed effects f; 0 for every other coordinate, where phi_j is
    not a fixed effect, and where H_ff is singular (the starts are then those of before)."""
    slope = np.zeros(H.shape[0])
    if j < p:
        f = np.delete(np.arange(p), j)
        try:
            slope[f] = -np.linalg.solve(H[np.ix_(f, f)], H[f, j])
        except np.linalg.LinAlgError:
            pass
    return slope


def _interval_end(profile, v_hat, step, bound, side, excess):
    """The v on `side` of v_hat where profile(v) - d_min = crit, or the bound if never reached.
    Doubling steps bracket it between a value inside (excess <= 0) and one beyond (> 0);
    `profile` returns those same values to Brent's method."""
    inside = v_hat
    for k in range(MAX_DOUBLINGS):
        v = v_hat + side * step * 2.0**k
        if side * (v - bound) >= 0:
            v = bound
            if not np.isfinite(v) or excess(profile(v)) <= 0:
                return v
            break
        if excess(profile(v)) > 0:
            break
        inside = v
    else:
        return side * np.inf
    low, high = sorted((inside, v))
    return optimize.brentq(
        lambda x: excess(profile(x)), low, high, xtol=1e-9 * max(1.0, abs(v_hat)), rtol=1e-10
    )


def profile_intervals(
    spec: ModelSpec,
    parameters: ParameterMap,
    layout: RandomEffectsLayout,
    arrays: ModelArrays,
    estimates: dict[str, float],
    names: list[str],
    level: float = 0.95,
    nagq: int = 1,
) -> dict[str, tuple[float, float]]:
    """name -> (lower, upper) profile-likelihood interval at `level`.

    `estimates`: the ML or Laplace estimate of every natural parameter, in the order and with the
    names of the `ParameterMap`; `names`: the parameters to profile.
    """
    all_names = list(estimates)
    deviance = bind(
        natural_deviance,
        parameters=parameters,
        layout=layout,
        family=spec.family,
        link=spec.link,
        nagq=nagq,
    )
    lower, upper, positive = _bounds(parameters)
    phi0 = np.clip(np.array([float(v) for v in estimates.values()]), lower, upper)
    scale = np.where(positive, np.maximum(phi0, 1e-3 * np.max(np.where(positive, phi0, 0.0))), 1.0)
    scales = parameter_scales(spec)
    step = np.concatenate([scales.beta, np.ones(phi0.size - scales.beta.size)])
    objective = bind(_pinned, deviance=deviance)
    nothing = np.zeros(phi0.size, dtype=bool)
    best = minimize_jax(
        objective,
        _to_free(phi0, positive, scale),
        args=(nothing, np.float64(0.0), positive, scale, arrays),
        lower=np.where(positive, -np.inf, lower),
        upper=np.where(positive, np.inf, upper),
        scale=step,
    )
    if not np.isfinite(best.fun):
        raise FitError(f"the deviance is not finite at the estimate ({best.message})")
    z_hat, d_min = np.asarray(best.x), float(best.fun)
    phi_hat = _from_free(z_hat, positive, scale, np)
    crit = special.chdtri(1, 1 - level)  # the chi2(1) quantile
    hessian = hessian_fd(
        objective, phi_hat, args=(nothing, np.float64(0.0), nothing, np.ones(phi0.size), arrays)
    )
    steps = _steps(hessian, phi_hat)
    coordinates = (lower, upper, positive, scale, step)
    out = {}
    for name in names:
        if name in _unprofiled_correlations(parameters):
            warnings.warn(
                f"no profile interval for {name}: fixing one correlation of a term with "
                "three or more columns needs a positive-definiteness constraint that "
                "this profiler does not impose",
                stacklevel=3,
            )
            out[name] = (np.nan, np.nan)
            continue
        j = all_names.index(name)
        profile = _Profiler(
            objective, z_hat, j, phi_hat[j], d_min, coordinates, hessian, spec.X.shape[1], arrays
        )
        excess = lambda d: d - d_min - crit
        ends = []
        for side, bound in ((-1, lower[j]), (1, upper[j])):
            ends.append(_interval_end(profile, phi_hat[j], steps[j], bound, side, excess))
        out[name] = (_snap(ends[0], lower[j]), _snap(ends[1], upper[j]))
    return out


def _unprofiled_correlations(parameters: ParameterMap) -> set[str]:
    """Correlations of terms with q >= 3 (there fixing one can leave no valid matrix)."""
    large = {t.label for t in parameters.terms if len(t.pairs) >= 3}
    return {p.name for p in parameters.parameters if p.cls == "cor" and p.group in large}


def _steps(H, phi_hat) -> np.ndarray:
    """Wald standard errors sqrt(diag(2 H^{-1})) as first steps (H the deviance's Hessian at
    phi_hat); a tenth of |phi| where undefined."""
    with np.errstate(invalid="ignore"):
        se = np.sqrt(np.diag(2 * np.linalg.pinv(H)))
    fallback = np.maximum(0.1 * np.abs(phi_hat), 1e-3)
    return np.where(np.isfinite(se) & (se > 0), se, fallback)


def _snap(end: float, bound: float) -> float:
    """A correlation bound 1 - margin is reported as 1 (and -1 likewise)."""
    if np.isfinite(bound) and abs(end - bound) <= CORRELATION_MARGIN:
        return float(np.round(bound))
    return float(end)
