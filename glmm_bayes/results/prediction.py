"""Predictions and simulation from any fit, through one set of draws of its parameters.

A fit hands over `ParameterDraws`: beta (S, p), Cov(b_k) (S, q_k, q_k), b_k at the fitted
levels (S, n_k, q_k) and aux (S,), with S = 1 for a point estimate and S = draws for a
posterior. On rows with design X, Z_k (`design.newdata.Rows`):

    eta = X beta + offset + sum_{k kept} Z_k b_k          (conditional; lme4's re.form)
    E[y] = E_{b ~ N(0, Cov)}[g^{-1}(eta + sum_{k dropped} Z_k b_k)]   (marginal=True)

(or the family's own `response_mean`, the lognormal's exp(eta + (v + sigma^2) / 2)).

The marginal mean integrates the dropped terms' v_i = sum_k z_ik' Cov_k z_ik out:
exp(eta + v / 2) for the log link, eta for the identity, and otherwise the trapezoidal rule
of `families.normal_expectation`.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from ..control import warn
from ..core.residual import ResidualLayout, color, residual_arrays
from ..design import ModelSpec
from ..design.model_spec import RandomEffectTerm, category_values
from ..design.newdata import Rows, kept_terms, model_rows
from ..design.residual import residual_on
from ..errors import DataError, DataWarning, ModelError
from ..families import normal_expectation

NEW_LEVELS = ("population", "sample", "error")


@dataclass(frozen=True)
class ParameterDraws:
    """A fit's parameters with a leading axis of S draws (S = 1 for point estimates)."""

    beta: np.ndarray
    covariances: list
    b: list
    aux: np.ndarray | None
    residual: np.ndarray | None = None  # (S, r): the residual structure's parameters

    @property
    def n_draws(self) -> int:
        return self.beta.shape[0]

    def subset(self, index) -> ParameterDraws:
        pick = lambda a: None if a is None else np.asarray(a)[index]
        return ParameterDraws(
            pick(self.beta),
            [pick(c) for c in self.covariances],
            [pick(b) for b in self.b],
            pick(self.aux),
            pick(self.residual),
        )


def _sample_effects(cov: np.ndarray, n_levels: int, rng: np.random.Generator) -> np.ndarray:
    """b ~ N(0, Cov) for n_levels levels per draw: (S, n_levels, q)."""
    S, q = cov.shape[0], cov.shape[-1]
    w, V = np.linalg.eigh(cov)  # handles singular Cov (a variance at zero)
    root = V * np.sqrt(np.clip(w, 0, None))[:, None, :]
    return rng.standard_normal((S, n_levels, q)) @ np.swapaxes(root, -1, -2)


def _effects_on(
    term: RandomEffectTerm,
    b: np.ndarray,
    cov: np.ndarray,
    factor: str,
    new_levels: str,
    fresh: bool,
    rng,
    relatedness=None,
) -> np.ndarray:
    """b for each of the rows' levels (S, L, q): the fit's at known levels; at new levels
    zero, a fresh draw, or an error; fresh draws everywhere when `fresh` (for a term with a
    known K = F F', b = sd F z over K's levels, so that fresh draws keep K's correlations)."""
    S, q = cov.shape[0], cov.shape[-1]
    if fresh and relatedness is not None and np.all(term.fitted_index >= 0):
        z = rng.standard_normal((S, relatedness.shape[1]))
        every = np.sqrt(cov[:, 0, 0])[:, None] * (z @ relatedness.T)
        return every[:, term.fitted_index, None]
    if fresh:
        return _sample_effects(cov, len(term.levels), rng)
    known = term.fitted_index >= 0
    out = np.zeros((S, len(term.levels), q))
    out[:, known] = b[:, term.fitted_index[known]]
    if not known.all():
        if new_levels == "error":
            raise DataError(
                f"newdata has level(s) {term.new_levels[:10]} of grouping factor "
                f"{factor!r} that the model was not fitted to; use "
                "new_levels='population' or 'sample'"
            )
        if new_levels == "sample":
            out[:, ~known] = _sample_effects(cov, int((~known).sum()), rng)
    return out


def linear_predictor(
    spec: ModelSpec, rows: Rows, draws: ParameterDraws, keep, new_levels: str, rng, fresh=None
) -> np.ndarray:
    """eta (S, n) conditional on the kept terms' random effects (`fresh` terms drawn anew)."""
    if new_levels not in NEW_LEVELS:
        raise ModelError(f"new_levels must be one of {NEW_LEVELS}, got {new_levels!r}")
    fresh = fresh or (False,) * len(spec.terms)
    eta = draws.beta @ rows.X.T + rows.offset
    for k, term in enumerate(spec.terms):
        if not (keep[k] or fresh[k]):
            continue
        t = rows.terms[k]
        b = _effects_on(
            t,
            draws.b[k] if draws.b else None,
            draws.covariances[k],
            term.factor,
            new_levels,
            fresh[k],
            rng,
            term.relatedness,
        )
        eta = eta + np.sum(t.Z * b[:, t.level_index], axis=-1)
    return eta


def dropped_variance(spec: ModelSpec, rows: Rows, draws: ParameterDraws, keep) -> np.ndarray:
    """v (S, n): the variance of sum_{k dropped} Z_k b_k at each row (for a known-covariance
    term, Cov(b_l) = sd^2 K_ll at a level of K, sd^2 at a new level)."""
    v = np.zeros((draws.n_draws, rows.n))
    for k, term in enumerate(spec.terms):
        if keep[k]:
            continue
        t = rows.terms[k]
        v_k = np.einsum("ni,sij,nj->sn", t.Z, draws.covariances[k], t.Z)
        if term.relatedness is not None:
            fitted = t.fitted_index[t.level_index]
            K_diagonal = np.sum(term.relatedness**2, axis=1)
            v_k = v_k * np.where(fitted >= 0, K_diagonal[np.maximum(fitted, 0)], 1.0)
        v += v_k
    return v


def marginal_mean(link, eta: np.ndarray, v: np.ndarray) -> np.ndarray:
    """E[g^{-1}(eta + e)], e ~ N(0, v)."""
    if link.name == "identity":
        return eta
    if link.name == "log":
        return np.exp(eta + v / 2)
    return normal_expectation(link.inverse, eta, v)


def resolve_scale(scale: str) -> str:
    if scale not in ("response", "link"):
        raise ModelError(f"scale must be 'response' or 'link', got {scale!r}")
    return scale


def prediction_terms(spec: ModelSpec, re_form, marginal: bool) -> tuple[bool, ...]:
    """The terms a prediction conditions on; `marginal=True` with re_form None conditions on none
    (it integrates every term out)."""
    return kept_terms(spec, "~0" if marginal and re_form is None else re_form)


def prediction_map(
    spec: ModelSpec,
    draws: ParameterDraws,
    newdata,
    re_form,
    scale: str,
    new_levels: str,
    marginal: bool,
    rng,
):
    """(eta (S, n), transform, rows): the linear predictor on the rows and the monotone map
    from it to the prediction on `scale` (the link, g^{-1}, or the marginal mean), so that
    limits for eta map to limits for the prediction."""
    scale = resolve_scale(scale)
    if marginal and scale == "link":
        raise ModelError("marginal=True averages on the response scale; use scale='response'")
    keep = prediction_terms(spec, re_form, marginal)
    # integrating a known-covariance term out needs each row's level: Var(b_l) = sd^2 K_ll
    grouped = tuple(k or (marginal and t.relatedness is not None) for k, t in zip(keep, spec.terms))
    rows = model_rows(
        spec, newdata, grouped=grouped, columns=(True,) * len(keep) if marginal else None
    )
    eta = linear_predictor(spec, rows, draws, keep, new_levels, rng)
    if scale == "link":
        return eta, lambda e: e, rows
    v = dropped_variance(spec, rows, draws, keep) if marginal else 0.0
    if spec.family.categories:
        aux = aux_on_rows(spec, draws.aux, rows)
        return eta, lambda e: category_probabilities(spec.family, e, v, aux), rows
    if spec.family.response_mean is not None:
        aux = aux_on_rows(spec, draws.aux, rows)
        return eta, lambda e: np.asarray(spec.family.response_mean(e, v, aux)), rows
    if marginal:
        return eta, lambda e: marginal_mean(spec.link, e, v), rows
    return eta, lambda e: np.asarray(spec.link.inverse(e)), rows


def category_probabilities(family, eta, v, aux) -> np.ndarray:
    """P(y = k) of a cumulative model's categories at eta (S, n), on a last axis, averaged
    over e ~ N(0, v) of the random effects integrated out (v = 0: conditional); one compiled
    function of eta, which the quadrature calls at each of its nodes."""
    probs = jax.jit(lambda e: jnp.exp(family.category_log_probs(e, aux)))
    if np.ndim(v) == 0 and v == 0:
        return np.asarray(probs(eta))
    return normal_expectation(probs, eta, v)


def category_columns(spec: ModelSpec, probabilities: np.ndarray) -> dict:
    """{"P(rating = 1)": P(y = 1) per row, ...} from probabilities (n, K)."""
    return {
        f"P({spec.response_name} = {c})": probabilities[:, k]
        for k, c in enumerate(spec.family.categories)
    }


def aux_on_rows(spec: ModelSpec, aux, rows: Rows) -> object:
    """Draws of the family's aux (S, ...) as its functions take them against (S, n) rows: one
    value per draw on an axis of 1, or with a dispersion or zero-inflation formula
    `Family.rows` on the `rows`."""
    if aux is None:
        return 1.0
    aux = np.asarray(aux)
    if spec.family.base is None and rows.X_disp is None:
        return aux[:, None]
    return spec.family.rows(aux, rows)


def draw_responses(
    spec: ModelSpec,
    mu: np.ndarray,
    aux,
    trials: np.ndarray,
    seed: int,
    residual=None,
    newdata=None,
    rows: Rows | None = None,
) -> np.ndarray:
    """y ~ family(mu, aux, trials), elementwise over (S, n), on `rows` (their zero-inflation
    and dispersion designs; None: the fitted rows); for a gaussian model with a residual structure,
    y = mu + sigma S L z per draw, with the structure's parameters `residual` (S, r) on the
    rows of `newdata` (None: the fitted rows)."""
    if spec.family.residual_sd and not spec.residual.is_trivial:
        res = residual_on(spec.residual, newdata)
        layout, arrays = ResidualLayout.from_spec(res, gaussian=True), residual_arrays(res)
        params = np.zeros((mu.shape[0], 0)) if residual is None else np.asarray(residual)
        z = jax.random.normal(jax.random.PRNGKey(seed), mu.shape, dtype=jnp.float64)
        errors = jax.vmap(lambda p, e: color(p, e, arrays, layout))(jnp.asarray(params), z)
        return mu + np.asarray(aux)[:, None] * np.asarray(errors)
    if spec.residual.weighted:
        warn(
            f"simulating a {spec.family.name} model ignores its prior weights: they weight the "
            "log-likelihood terms and have no generative meaning here (as R's family$simulate)",
            DataWarning,
        )
    aux = aux_on_rows(spec, aux, spec if rows is None else rows)
    trials = np.asarray(trials).astype(np.int64) if spec.family.uses_trials else trials
    distribution = spec.family.distribution(mu, aux, trials)
    return np.asarray(distribution.sample(jax.random.PRNGKey(seed)), dtype=float)


def simulate_responses(
    spec: ModelSpec, draws: ParameterDraws, n: int, seed: int, newdata, keep: tuple[bool, ...]
) -> pd.DataFrame:
    """n simulated responses on the rows, one per draw of `draws` (S = n); the random effects of
    the terms not in `keep` are drawn anew for every level (lme4's simulate, use.u = FALSE)."""
    rows = model_rows(spec, newdata, require_trials=spec.family.uses_trials)
    rng = np.random.default_rng(seed)
    eta = linear_predictor(spec, rows, draws, keep, "sample", rng, fresh=tuple(not k for k in keep))
    y = draw_responses(
        spec,
        np.asarray(spec.link.inverse(eta)),
        draws.aux,
        rows.trials,
        int(rng.integers(2**31)),
        draws.residual,
        newdata,
        rows,
    )
    index = newdata.index if newdata is not None else spec.data.index
    if spec.family.categories:  # codes -> the response's categories
        y = category_values(spec.family.categories, y)
    return pd.DataFrame(y.T, index=index, columns=[f"sim_{i + 1}" for i in range(n)])


def interval_frame(draws: np.ndarray, level: float) -> pd.DataFrame:
    """Per row: mean, sd and the equal-tailed `level` interval of the draws (S, n)."""
    tail = (1 - level) / 2
    return pd.DataFrame(
        {
            "estimate": draws.mean(axis=0),
            "sd": draws.std(axis=0, ddof=1),
            "lower": np.quantile(draws, tail, axis=0),
            "upper": np.quantile(draws, 1 - tail, axis=0),
        }
    )


def prediction_frame(spec: ModelSpec, newdata, columns: dict) -> pd.DataFrame:
    """The rows predicted (a copy of `newdata`, or the fitted rows of the model's data) with
    the prediction's columns after them; newdata's own column of one of those names is a
    `DataError`, not overwritten."""
    rows = spec.data if newdata is None else newdata
    clash = [name for name in columns if name in rows.columns]
    if clash:
        raise DataError(
            f"newdata already has column(s) {clash}, which the predictions would take; "
            "rename them to keep both"
        )
    out = rows.copy()
    for name, values in columns.items():
        out[name] = np.asarray(values)
    return out
