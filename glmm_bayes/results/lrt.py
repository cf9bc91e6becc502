"""Likelihood-ratio tests of nested frequentist fits (lme4's anova(m0, m1), pbkrtest's PBmodcomp).

REML likelihoods of models with different fixed effects are not comparable, so REML fits are
refitted by ML first, as lme4 does, and the table says so. When the larger model only adds
covariance parameters, H0 puts a variance on the boundary of its space and the chi-square
reference is conservative; the table adds the mixture 0.5 chi2(df - 1) + 0.5 chi2(df) (Self and
Liang 1987; Stram and Lee 1994; exact for adding one random effect to a term). `nsim` adds a
parametric-bootstrap p-value: responses simulated from the smaller fit, both models refitted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special

from ..control import warn
from ..errors import GlmmBayesWarning, ModelError, integer_argument
from ..numerics import float64
from .prediction import simulate_responses

#: A larger model's logLik may fall short of a nested one's by this much (relative; the
#: optimisers stop at ~1e-15 relative change, lme4's at ~1e-6) before they are called non-nested.
NESTED_TOL = 1e-6


def _as_ml(fit):
    return (fit.model.fit_ml(), True) if fit.method == "REML" else (fit, False)


def _check_comparable(fits) -> None:
    first = fits[0].spec
    for fit in fits[1:]:
        spec = fit.spec
        if spec.n_obs != first.n_obs or not np.array_equal(spec.y, first.y):
            raise ModelError(
                "the models were fitted to different responses or rows "
                f"({first.formula!r} vs {spec.formula!r}); a likelihood-ratio test "
                "needs the same data"
            )
        if spec.family is not first.family:
            raise ModelError(
                f"the models have different families ({first.family.name}, {spec.family.name})"
            )
    if len({f.method for f in fits}) > 1 and any(f.method not in ("REML", "ML") for f in fits):
        raise ModelError(
            f"the fits use different methods ({[f.method for f in fits]}); refit them alike"
        )


@float64
def lrt(*fits, nsim: int = 0, seed: int = 0, progress: bool = False) -> pd.DataFrame:
    """Likelihood-ratio tests of nested fits, ordered by number of parameters: npar, AIC, AICc, BIC,
    logLik, deviance, Chisq, Df, p_value (chi-square), p_boundary where only covariance
    parameters are added, and p_bootstrap with `nsim` (two models)."""
    if len(fits) < 2:
        raise ModelError("lrt/anova needs at least two fits to compare")
    for fit in fits:
        if getattr(fit, "kind", None) == "pql":
            fit.loglik  # raises: a quasi-likelihood has none  # noqa: B018
    if any(getattr(f, "kind", None) != "frequentist" for f in fits):
        raise ModelError(
            "lrt/anova compares frequentist fits (fit_reml, fit_ml, fit_laplace); "
            "for posteriors use gb.loo_compare"
        )
    nsim, seed = integer_argument("nsim", nsim, 0), integer_argument("seed", seed, 0)
    _check_comparable(fits)
    refitted = [_as_ml(f) for f in fits]
    order = sorted(range(len(fits)), key=lambda i: refitted[i][0].estimate.n_params)
    ml = [refitted[i][0] for i in order]
    rows, notes = [], []
    if any(r for _, r in refitted):
        notes.append(
            "REML fits were refitted by ML (REML likelihoods of models with different "
            "fixed effects are not comparable), as lme4's anova does"
        )
    for k, fit in enumerate(ml):
        row = {
            "formula": fit.spec.formula + fit.spec.residual.describe(),
            "method": fit.method + (" (refit)" if refitted[order[k]][1] else ""),
            "npar": fit.estimate.n_params,
            "AIC": fit.aic,
            "AICc": fit.aicc,
            "BIC": fit.bic,
            "logLik": fit.loglik,
            "deviance": -2 * fit.loglik,
        }
        if k:
            small = ml[k - 1]
            chisq = 2 * (fit.loglik - small.loglik)
            df = fit.estimate.n_params - small.estimate.n_params
            if chisq < -NESTED_TOL * max(1.0, abs(small.loglik)):
                # a model nested in a larger one can never fit better than it
                message = (
                    f"{fit.spec.formula!r} has more parameters than {small.spec.formula!r} "
                    f"but a lower log-likelihood ({fit.loglik:.6g} < {small.loglik:.6g}): "
                    "the models are not nested, so no likelihood-ratio test applies "
                    "(compare them by AIC or BIC)"
                )
                warn(message, GlmmBayesWarning)
                notes.append(message)
                chisq = np.nan
            else:
                chisq = max(chisq, 0.0)  # the optimisers' tolerance below zero
            row.update(Chisq=chisq, Df=df, p_value=special.chdtrc(df, chisq) if df > 0 else np.nan)
            if (
                df > 0
                and small.spec.fixed_names == fit.spec.fixed_names
                and small.spec.residual.parameter_names == fit.spec.residual.parameter_names
            ):
                row["p_boundary"] = 0.5 * special.chdtrc(df, chisq) + (
                    0.5 * special.chdtrc(df - 1, chisq) if df > 1 else 0.0
                )
                notes.append(
                    f"{fit.spec.formula!r} adds only covariance parameters: H0 is on the "
                    "boundary, p_boundary uses 0.5 chi2(df - 1) + 0.5 chi2(df)"
                )
        rows.append(row)
    frame = pd.DataFrame(rows)
    if nsim:
        if len(ml) != 2:
            raise ModelError("the parametric bootstrap (nsim) compares exactly two models")
        p_value, frame.attrs["bootstrap"] = _bootstrap_p(ml[0], ml[1], nsim, seed, progress)
        frame.loc[1, "p_bootstrap"] = p_value
    frame.attrs["notes"] = notes
    return frame


def _bootstrap_p(small, big, nsim: int, seed: int, progress: bool) -> tuple[float, str]:
    """(1 + #{LR*_b >= LR}) / (1 + B) over B refits of both models to responses simulated from
    the smaller fit (PBmodcomp)."""
    observed = 2 * (big.loglik - small.loglik)
    draws = small.parameter_draws().subset(np.zeros(nsim, dtype=int))
    keep = (False,) * len(small.spec.terms)
    responses = simulate_responses(small.spec, draws, nsim, seed, None, keep).to_numpy().T
    fits_small = small.refit_batch(responses, progress).fits
    fits_big = big.refit_batch(responses, progress).fits
    ratios = np.array(
        [
            2 * (b.loglik - s.loglik)
            for s, b in zip(fits_small, fits_big)
            if s is not None and b is not None
        ]
    )
    p = (1 + np.sum(ratios >= observed - 1e-8 * abs(observed))) / (1 + len(ratios))
    return float(p), f"{len(ratios)} of {nsim} simulated datasets refitted by both models"


anova = lrt
