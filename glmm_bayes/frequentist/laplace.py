"""Laplace and adaptive Gauss-Hermite fits of GLMMs (glmer's nAGQ): maximise the
likelihood of `core.glmm_deviance` jointly over (beta, theta, log aux), from a GLM start.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import jax.numpy as jnp
import numpy as np

from ..control import Control
from ..core.batch_optimize import responses_of, settle_batch
from ..core.checks import Search, check_fit, optimize_and_settle
from ..core.cholesky import inverse_diagonal_blocks
from ..core.compiled import bind, compiled
from ..core.estimate import Estimate
from ..core.glmm_deviance import (
    PIRLS_MAX_ITER,
    PIRLS_TOL,
    conditional_fit,
    joint_deviance,
    joint_mode,
    laplace_deviance,
)
from ..core.parameters import ParameterMap
from ..core.scaling import constant_start, glm_start, parameter_scales
from ..core.structure import (
    ModelArrays,
    RandomEffectsLayout,
    canonical_theta,
    conditional_covariances,
    covariance_factors,
    singular_terms,
    split_by_term,
    user_terms,
    with_response,
)
from ..design import ModelSpec
from ..errors import ConvergenceWarning, ModelError
from .separation import (
    warn_dispersion_at_boundary,
    warn_separation,
    warn_zero_part_at_boundary,
)


def _unpack(x, parameters: ParameterMap, n_theta: int):
    """(beta, theta, aux) from the optimiser's x = (beta, theta, aux's coordinates: the logs
    of the family's parameters, the dispersion and zero-inflation coefficients as they are):
    NumPy for NumPy's x."""
    xp = np if isinstance(x, np.ndarray) else jnp
    p = len(parameters.fixed_names)
    beta, theta, tail = x[:p], x[p : p + n_theta], x[p + n_theta :]
    values = [
        xp.exp(tail[j]) if parameters[name].positive else tail[j]
        for j, name in enumerate(parameters.aux)
    ]
    return beta, theta, parameters.pack_aux(values, xp)


def _aux_start(spec: ModelSpec, parameters: ParameterMap, family_values) -> np.ndarray:
    """aux's coordinates at the start: the GLM's moment estimates of the family's parameters
    (logs of the positive ones); a dispersion formula's delta with X_disp delta = that of its
    first (least squares); zero inflation at p = 1/2."""
    start = {
        a.name: np.log(v) if a.lower == 0 else v for a, v in zip(spec.family.aux, family_values)
    }
    if spec.dispersion is not None:
        first = np.full(spec.n_obs, start[spec.family.aux_names[0]])
        delta = np.linalg.lstsq(spec.X_disp, first, rcond=None)[0]
        start.update(zip(parameters.dispersion_names, delta))
    return np.array([start.get(name, 0.0) for name in parameters.aux])


def _objective(x, arrays, layout, family, link, nagq, parameters):
    """The deviance over x = (beta, theta, aux's coordinates), theta lme4's: relative to sigma
    for gaussian families (T_k = sigma theta_k), the absolute factor otherwise."""
    beta, theta, aux = _unpack(x, parameters, layout.n_theta)
    absolute = theta * aux if family.residual_sd else theta
    return laplace_deviance(beta, absolute, aux, arrays, layout, family, link, nagq)


def _finite_start(objective, x0, beta_constant, arrays) -> np.ndarray:
    """The GLM start, with beta moved halfway towards `beta_constant` (a constant linear
    predictor) until the deviance is finite there: with separated data the GLM's estimates
    run off towards infinity, and with an inverse link they can give eta < 0 in some rows.
    The value comes from the search's own program (value and gradient): a program for the
    value alone would be compiled for these few calls."""
    value_and_grad = compiled(objective, "value_and_grad")
    p = beta_constant.size
    x = np.array(x0)
    for _ in range(40):
        if np.isfinite(float(value_and_grad(x, arrays)[0])):
            return x
        x[:p] = beta_constant + 0.5 * (x[:p] - beta_constant)
    x[:p] = beta_constant
    return x


def check_nagq(spec: ModelSpec, nagq: int) -> None:
    if isinstance(nagq, bool) or not isinstance(nagq, (int, np.integer)) or nagq < 0:
        raise ModelError(f"nagq must be a non-negative integer, got {nagq!r}")
    if nagq > 1 and (len(spec.terms) != 1 or spec.terms[0].q != 1):
        raise ModelError(
            f"nagq={nagq} needs exactly one scalar random-effect term such as "
            f"(1 | g); this model has {', '.join(t.label + str(list(t.names)) for t in spec.terms)}"
        )
    if nagq == 0 and (spec.family.aux or spec.zi is not None):
        raise ModelError(
            f"nagq=0 (beta inside PIRLS) is for families without a dispersion parameter, as "
            f"glmer's; this model is {spec.family.name} with "
            f"{', '.join(spec.family.aux_names) or 'zero inflation'}: use nagq=1"
        )


def _method(nagq: int) -> str:
    return {0: "Laplace(nAGQ=0)", 1: "Laplace"}.get(nagq, f"AGQ({nagq})")


def _search(spec: ModelSpec, parameters: ParameterMap, layout, arrays, nagq: int) -> Search:
    """The Laplace / AGQ deviance over x = (beta, theta, aux's coordinates), from the GLM's
    estimates, in coordinates scaled to the data. A single fit moves the start to where the
    deviance is finite (`_finite_start`); a batch leaves it, and a response whose start is not
    finite ends at once in the batch and is fitted alone."""
    n_aux = len(parameters.aux)
    p = spec.X.shape[1]
    beta0, aux0 = glm_start(spec)
    x0 = np.concatenate([beta0, layout.theta_initial(), _aux_start(spec, parameters, aux0)])
    scales = parameter_scales(spec)
    objective = bind(
        _objective,
        layout=layout,
        family=spec.family,
        link=spec.link,
        nagq=nagq,
        parameters=parameters,
    )
    return Search(
        objective=objective,
        x0=x0,
        names=list(parameters.fixed_names) + parameters.theta_names() + list(parameters.aux),
        edge=np.concatenate([np.zeros(p, bool), layout.diagonal_mask(), np.zeros(n_aux, bool)]),
        scale=np.concatenate([scales.beta, scales.theta, np.ones(n_aux)]),
        what=f"{_method(nagq)} fit",
    )


def fit_glmm(
    spec: ModelSpec,
    parameters: ParameterMap,
    layout: RandomEffectsLayout,
    arrays: ModelArrays,
    nagq: int = 1,
    control: Control | None = None,
) -> Estimate:
    """Maximise the Laplace / AGQ likelihood jointly over (beta, theta, log aux), as glmer,
    from a GLM fit, in coordinates scaled to the data; then check the optimum."""
    control = control or Control()
    check_nagq(spec, nagq)
    nagq = int(nagq)
    warn_separation(spec, control, f"{_method(nagq)} fit")
    if nagq == 0:
        return _fit_beta_in_pirls(spec, parameters, layout, arrays, control, _method(0) + " fit")
    search = _search(spec, parameters, layout, arrays, nagq)
    x0 = _finite_start(search.objective, search.x0, constant_start(spec), arrays)
    search = replace(search, x0=x0)
    opt, H = optimize_and_settle(search, (arrays,), control)
    return _joint_estimate(spec, parameters, layout, arrays, nagq, control, search, opt, H)


def fit_glmm_batch(
    spec: ModelSpec,
    parameters: ParameterMap,
    layout: RandomEffectsLayout,
    arrays: ModelArrays,
    responses: np.ndarray,
    nagq: int = 1,
    control: Control | None = None,
    progress: bool = False,
) -> list:
    """`fit_glmm` of each row of `responses` (D, n), searched side by side
    (`core.batch_optimize`, nagq >= 1): for each response, a function that checks separation,
    assembles its estimate and raises its warnings when called, or None where its search must
    go on one by one."""
    control = control or Control()
    check_nagq(spec, nagq)
    nagq = int(nagq)
    if nagq == 0:  # the search's arguments hold each response's own GLM beta
        return [None] * len(responses)
    specs = [replace(spec, y=np.asarray(y, dtype=float)) for y in responses]
    datasets = [with_response(arrays, y, spec.family) for y in responses]
    searches = [_search(s, parameters, layout, a, nagq) for s, a in zip(specs, datasets)]
    ends = settle_batch(
        searches[0],  # one objective, names and edge; each response's own start and scales
        responses_of(spec.family, spec.trials, responses),
        (arrays,),
        control,
        spec.row_elements,
        progress,
        starts=np.array([search.x0 for search in searches]),
        scales=np.array([search.scale for search in searches]),
    )

    def finish(spec, arrays, search, opt, H):
        warn_separation(spec, control, search.what)
        return _joint_estimate(spec, parameters, layout, arrays, nagq, control, search, opt, H)

    return [
        None if end is None else partial(finish, s, a, search, *end)
        for s, a, search, end in zip(specs, datasets, searches, ends)
    ]


def _joint_estimate(spec, parameters, layout, arrays, nagq, control, search, opt, H) -> Estimate:
    """Check the optimum `opt` (Hessian H) of the joint search and assemble the estimates
    there: vcov(beta) from the Hessian of the deviance in (beta, theta), as lme4's
    use.hessian = TRUE (signing theta's columns flips rows and columns of H outside beta's
    block)."""
    names, edge, scale, what = search.names, search.edge, search.scale, search.what
    p = spec.X.shape[1]
    beta, theta, aux = _unpack(opt.x, parameters, layout.n_theta)
    theta = canonical_theta(theta, layout)
    x = np.concatenate([beta, theta, opt.x[p + layout.n_theta :]])
    singular = singular_terms(theta, parameters.theta_names(), layout, control.singular_tol)
    free = check_fit(opt, x, H, names, edge, singular, control, what)
    # invert in the scaled coordinates, where the blocks of H are of comparable size
    D = scale[free]
    cov = 2 * D[:, None] * np.linalg.pinv(H[np.ix_(free, free)] * np.outer(D, D)) * D[None, :]
    estimate = _estimate(
        spec, layout, arrays, beta, theta, aux, cov[:p, :p], opt, x, singular, nagq, control
    )
    # the dispersion and zero-inflation coefficients and thresholds (in aux, never on an edge)
    coefficients = [int(np.sum(free[: names.index(n)])) for n in parameters.aux_coefficients]
    if not coefficients:
        return estimate
    at = lambda group: opt.x[[names.index(n) for n in group]]
    if parameters.zi_names:
        warn_zero_part_at_boundary(spec, at(parameters.zi_names), control, what)
    if parameters.dispersion_names:
        warn_dispersion_at_boundary(spec, at(parameters.dispersion_names), control, what)
    return replace(estimate, vcov_aux_coefficients=cov[np.ix_(coefficients, coefficients)])


def _fit_beta_in_pirls(spec, parameters, layout, arrays, control, what) -> Estimate:
    """glmer's nAGQ = 0: minimise `joint_deviance` over theta alone (beta found by PIRLS with
    u at each theta, from the GLM's beta); vcov(beta) is the inverse of the Schur complement
    of the information at the joint mode, lme4's R_X'R_X."""
    family, link = spec.family, spec.link
    beta0 = np.asarray(glm_start(spec)[0])
    objective = bind(joint_deviance, layout=layout, family=family, link=link)
    edge, scale = layout.diagonal_mask(), parameter_scales(spec).theta
    args = (beta0, arrays)
    names = parameters.theta_names()
    search = Search(objective, layout.theta_initial(), names, edge, scale, what)
    opt, H = optimize_and_settle(search, args, control)
    theta = canonical_theta(opt.x, layout)
    singular = singular_terms(theta, names, layout, control.singular_tol)
    check_fit(opt, theta, H, names, edge, singular, control, what)
    joint = compiled(bind(joint_mode, layout=layout, family=family, link=link))
    beta, _, schur, _ = joint(np.asarray(theta, dtype=float), beta0, arrays)
    x = np.concatenate([np.asarray(beta), theta])
    vcov = np.linalg.inv(np.asarray(schur))
    return _estimate(
        spec, layout, arrays, np.asarray(beta), theta, 1.0, vcov, opt, x, singular, 0, control
    )


def _at_estimate(beta, theta, aux, arrays, layout, family, link):
    """u*, the fitted means and the blocks of Var(u | y) Lambda-scaled (lme4's condVar, up to
    sigma^2), and whether PIRLS converged, at (beta, theta, aux)."""
    u, eta, chol, converged = conditional_fit(beta, theta, aux, arrays, layout, family, link)
    factors = covariance_factors(theta, layout)
    cond = conditional_covariances(inverse_diagonal_blocks(chol, layout), factors)
    fitted = (
        family.response_mean(eta, 0.0, family.rows(aux, arrays))
        if family.response_mean
        else link.inverse(eta)
    )
    return u, fitted, cond, converged


def _estimate(spec, layout, arrays, beta, theta, aux, vcov, opt, x, singular, nagq, control):
    """lme4's estimates at the optimum: the conditional modes, their conditional covariances
    and the fitted means at (beta, theta, aux)."""
    family, link = spec.family, spec.link
    what = f"{_method(nagq)} fit"
    absolute = np.asarray(theta * float(aux) if family.residual_sd else theta, dtype=float)
    u, fitted, cond, converged = compiled(
        bind(_at_estimate, layout=layout, family=family, link=link)
    )(beta, absolute, aux, arrays)
    if not bool(converged):
        control.report(
            "convergence",
            ConvergenceWarning,
            f"{what}: PIRLS did not converge to the conditional modes at the estimate "
            f"(tolerance {PIRLS_TOL}, {PIRLS_MAX_ITER} iterations)",
        )
    factors = covariance_factors(absolute, layout)
    factors, modes, cond = user_terms(
        spec, factors, split_by_term(np.asarray(u), factors, layout), cond
    )
    return Estimate(
        method=_method(nagq),
        beta=np.asarray(beta),
        vcov=vcov,
        theta=np.asarray(theta),
        factors=[np.asarray(T) for T in factors],
        aux=np.asarray(aux, dtype=float)[()] if family.aux or spec.zi is not None else None,
        modes=modes,
        cond_cov=[np.asarray(c) for c in cond],
        fitted=np.asarray(fitted),
        loglik=-opt.fun / 2,
        objective=opt.fun,
        n_params=len(x),
        n_obs=spec.n_obs,
        opt=opt,
        singular=bool(singular),
        nagq=nagq,
    )
