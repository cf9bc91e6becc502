"""The data's own units for every coordinate an optimiser or sampler moves, and a GLM start.

With s_eta the units of the linear predictor (`link_scale`: the sd s_y of y under the identity
link, s_y / ybar^2 under the inverse link, 1 under the log, logit, probit and cloglog links,
whose scale has no units), s_x the sd of a fixed design column and s_z that of a random-effect
column (1 for constant columns), n_k the number of levels of term k:
    beta_j       ~ s_eta / s_x_j
    theta (r, c) ~ 1 / (s_z_r sqrt(n_k))         gaussian (lme4's theta: relative to sigma)
                 ~ s_eta / (s_z_r sqrt(n_k))     other families (the factor of Cov(b) itself)
Optimising in these units makes the fits equivariant in the units of y and x: a first step of
size one moves each coordinate by its own natural amount. The information about a term's
covariance grows with its number of levels, and with it the criterion's curvature in that
term's theta: the sqrt(n_k) evens the curvature across terms, which a quasi-Newton method needs
(InstEval's 2,972 students against 14 departments: 26 evaluations instead of 32).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..design import ModelSpec, column_scale
from ..families import pack_aux
from .compiled import bind, compiled
from .structure import tril_column_major

GLM_MAX_ITER = 50
ETA_LIMIT = 30.0  # the start's linear predictor is clipped here (separated data)


class ParameterScales(NamedTuple):
    beta: np.ndarray
    theta: np.ndarray


def link_scale(spec: ModelSpec) -> float:
    """s_eta, the units of eta = g(mu): those of y under the identity link, of 1 / y under the
    inverse link (by the delta method, s_y / ybar^2), none under the other links."""
    y = spec.family.on_location_scale(spec.y)
    s_y = column_scale(y)
    if spec.link.name == "identity":
        return s_y
    if spec.link.name == "inverse":
        return s_y / max(float(np.mean(np.abs(y))), s_y) ** 2
    return 1.0


def parameter_scales(spec: ModelSpec) -> ParameterScales:
    s_eta = link_scale(spec)
    beta = np.array([s_eta / column_scale(spec.X[:, j]) for j in range(spec.X.shape[1])])
    s_b = 1.0 if spec.family.residual_sd else s_eta
    theta = [
        s_b / (column_scale(term.Z[:, r]) * np.sqrt(term.n_levels))
        for term in spec.terms
        for r, _ in zip(*tril_column_major(term.q))
    ]
    return ParameterScales(beta, np.asarray(theta))


def _irls_quantities(eta, aux, trials, family, link):
    """mu = g^{-1}(eta), d mu / d eta and the Fisher weights at eta."""
    return link.inverse(eta), link.mu_eta(eta), family.fisher_weight(eta, aux, trials, link)


def glm_start(spec: ModelSpec) -> tuple[np.ndarray, list[float]]:
    """beta of the GLM without random effects (IRLS with the family's Fisher weights, from R's
    family$initialize means), and a start for each of the family's parameters (a moment
    estimate). A cumulative family starts from beta = 0 and its thresholds' moments."""
    family, link = spec.family.base or spec.family, spec.link  # zero inflation aside
    y = family.on_location_scale(spec.y)
    if family.categories:
        return np.zeros(spec.X.shape[1]), [a.moment(y, None) for a in family.aux]
    n = spec.trials if family.uses_trials else np.ones_like(y)
    mean = (y + 0.5) / (n + 1.0) if family.uses_trials else y
    if link.name in ("log", "inverse"):
        mean = np.maximum(mean, family.mean_floor)
    at = compiled(bind(_irls_quantities, family=family, link=link))
    eta = np.clip(np.asarray(link.link(mean), dtype=float), -ETA_LIMIT, ETA_LIMIT)
    beta = np.zeros(spec.X.shape[1])
    aux = pack_aux([a.initial for a in family.aux], np)
    for _ in range(GLM_MAX_ITER):
        mu, dmu, w = (np.asarray(a) for a in at(eta, aux, spec.trials))
        working = eta - spec.offset + (y - n * mu) / (n * dmu)
        ok = np.isfinite(w) & np.isfinite(working) & (w > 0)
        root = np.sqrt(w[ok])
        new = np.linalg.lstsq(spec.X[ok] * root[:, None], working[ok] * root, rcond=None)[0]
        eta = np.clip(spec.X @ new + spec.offset, -ETA_LIMIT, ETA_LIMIT)
        done = np.max(np.abs(new - beta), initial=0.0) < 1e-8 * (
            1 + np.max(np.abs(new), initial=0.0)
        )
        beta = new
        if done:
            break
    mu = np.asarray(at(eta, aux, spec.trials)[0])
    return beta, [a.moment(y, mu) for a in family.aux]


def constant_start(spec: ModelSpec) -> np.ndarray:
    """beta of a constant linear predictor eta = g(ybar) (ybar a proportion for binomial
    families): the least-squares fit of g(ybar) - offset by X, the intercept alone where X has
    one (0 for a cumulative family). The fallback start where the GLM's own estimates give a
    non-finite deviance."""
    family, link = spec.family, spec.link
    if family.categories:  # the thresholds hold the constant (`glm_start`)
        return np.zeros(spec.X.shape[1])
    y = family.on_location_scale(spec.y)
    ybar = np.sum(y) / np.sum(spec.trials) if family.uses_trials else np.mean(y)
    if family.uses_trials:
        ybar = np.clip(ybar, 1e-4, 1 - 1e-4)
    elif link.name in ("log", "inverse"):
        ybar = max(ybar, 1e-4)
    target = float(link.link(ybar)) - spec.offset
    return np.linalg.lstsq(spec.X, target, rcond=None)[0] if spec.X.shape[1] else np.zeros(0)
