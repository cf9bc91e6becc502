"""Shared cache of reference models and fits (as MixedModels.jl's tests), and lme4's answers."""

import json
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import glmm_bayes as gb

REFERENCE = json.loads((Path(__file__).parent / "reference" / "lme4_seed.json").read_text())
#: Further lme4 values made by tests/reference/lme4_extra.R (profile intervals, tight PIRLS).
EXTRA = json.loads((Path(__file__).parent / "reference" / "lme4_extra.json").read_text())

#: lme4's formula for ctsib uses a derived column; here it is computed in the formula.
FORMULA_OVERRIDES = {
    "ctsib_laplace": "I(CTSIB == 1) ~ Sex + Age + Height + Weight + Surface + Vision + (1|Subject)"
}


def reference_formula(key: str) -> str:
    return FORMULA_OVERRIDES.get(key, REFERENCE[key]["formula"])


@cache
def reference_model(key: str) -> gb.Model:
    ref = REFERENCE[key]
    return gb.Model(reference_formula(key), gb.load_dataset(ref["data"]), family=ref["family"])


@cache
def reference_fit(key: str) -> gb.FrequentistFit:
    ref, model = REFERENCE[key], reference_model(key)
    method = ref["method"]
    if method == "REML":
        return model.fit_reml()
    if method == "ML":
        return model.fit_ml()
    return model.fit_laplace(nagq=ref.get("nAGQ", 1))


def compiles_during(run) -> tuple[list, object]:
    """(the XLA compilations while `run()` ran, its result)."""
    import jax

    compiles = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, seconds, **kw: compiles.append(event) if "backend_compile" in event else None
    )
    try:
        return compiles, run()
    finally:
        jax.monitoring.clear_event_listeners()


def predicted(fit, *args, **kwargs) -> np.ndarray:
    """A point fit's predictions as an array (its `predict` returns newdata plus them)."""
    return fit.predict(*args, **kwargs)["prediction"].to_numpy()


def assert_matches_reference(fit, ref: dict, loglik_rtol, rtol, atol, se_rtol, sd_atol) -> None:
    """A fit against another program's (an R script's entry in tests/reference/): logLik; the
    fixed effects' names, estimates and SEs; the random-effect sds and correlations."""
    np.testing.assert_allclose(fit.loglik, ref["logLik"], rtol=loglik_rtol)
    fixef = fit.fixef
    assert list(fixef.index) == list(ref["fixef"])
    np.testing.assert_allclose(fixef["estimate"], list(ref["fixef"].values()), rtol=rtol, atol=atol)
    np.testing.assert_allclose(fixef["std_error"], list(ref["se"].values()), rtol=se_rtol)
    population = fit.population["estimate"]
    for prefix, key in (("sd(", "sd"), ("cor(", "cor")):
        values = population[[n for n in population.index if n.startswith(prefix)]]
        np.testing.assert_allclose(values, np.atleast_1d(ref[key]), rtol=rtol, atol=sd_atol)


def assert_recovers_its_parameters(fit, n: int, seed: int = 1) -> None:
    """n responses simulated from `fit` (new b each, as lme4's simulate) and fitted again by
    Laplace: the mean of each estimate lies within 4 Monte Carlo sds (sd / sqrt(n)) of the
    value simulated from."""
    truth = fit.population["estimate"]
    batch = fit.model.fit_laplace_batch(fit.simulate(n, seed=seed), progress=False)
    assert batch.status["converged"].all()
    estimates = pd.DataFrame(
        [refit.population["estimate"] for refit in batch.fits], columns=truth.index
    )
    gap = (estimates.mean() - truth).abs()
    assert (gap < 4 * estimates.std(ddof=1) / np.sqrt(len(estimates))).all(), gap


def in_single_precision(values) -> bool:
    """Whether every value is a float32 number (draws are stored as float64 either way)."""
    values = np.asarray(values)
    return bool(np.array_equal(values, values.astype(np.float32).astype(np.float64)))


@pytest.fixture
def float64():
    """For tests that call the engines' functions directly: the package runs them in float64
    inside its own calls (`numerics.float64`), so a direct caller opts in the same way."""
    import jax

    with jax.enable_x64(True):
        yield


@pytest.fixture
def sleepstudy():
    return gb.load_dataset("sleepstudy")
