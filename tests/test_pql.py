"""Penalised quasi-likelihood against MASS::glmmPQL (tests/reference/mass_pql.R)."""

import json
from pathlib import Path

import numpy as np
import pytest

import glmm_bayes as gb

MASS = json.loads((Path(__file__).parent / "reference" / "mass_pql.json").read_text())
CASES = {  # key of mass_pql.json: (formula, dataset, family)
    "ctsib": (
        "I(CTSIB == 1) ~ Sex + Age + Height + Weight + Surface + Vision + (1 | Subject)",
        "ctsib",
        "bernoulli",
    ),
    "rikz": ("Richness ~ NAP + (1 | Beach)", "RIKZ", "poisson"),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    formula, dataset, family = CASES[request.param]
    model = gb.Model(formula, gb.load_dataset(dataset), family=family)
    return MASS[request.param], model, model.fit_pql()


def test_pql_equals_glmmpql(case):
    """The same recursion from the same GLM start, each working fit an ML fit of the weighted
    LMM (nlme's optimiser stops at ~1e-6 relative, ours tighter): the same number of working
    fits; seen: fixed effects within 4e-6 relative, SEs 2e-6, sd 2.2e-6, sigma 1.8e-7;
    asserted 2e-5 (issue 31 asks 1e-4)."""
    ref, _, fit = case
    assert fit.fits == ref["fits"] and fit.converged
    np.testing.assert_allclose(fit.fixef["estimate"], list(ref["fixef"].values()), rtol=2e-5)
    np.testing.assert_allclose(fit.fixef["std_error"], list(ref["se"].values()), rtol=2e-5)
    sds = fit.population["estimate"].filter(like="sd(")
    np.testing.assert_allclose(sds, np.atleast_1d(ref["sd"]), rtol=2e-5)
    np.testing.assert_allclose(fit.sigma, ref["sigma"], rtol=2e-5)


def test_a_pql_fit_has_wald_tests_and_no_likelihood(case):
    _, model, fit = case
    fixef = fit.fixef
    np.testing.assert_allclose(fixef["z_value"], fixef["estimate"] / fixef["std_error"])
    for name in ("loglik", "aic", "bic", "deviance"):
        with pytest.raises(gb.ModelError, match="PQL fit has no"):
            getattr(fit, name)
    laplace = model.fit_laplace()
    with pytest.raises(gb.ModelError, match="PQL fit has no logLik"):
        gb.lrt(fit, laplace)
    table = gb.compare(fit, laplace, intervals="wald")
    assert list(table.columns.get_level_values(0).unique()) == ["PQL", "Laplace"]
    assert np.all(np.isfinite(fit.predict()["prediction"]))


def test_pql_refuses_a_family_with_a_parameter_and_warns_when_eta_has_not_settled():
    ticks = gb.Model("Richness ~ NAP + (1 | Beach)", gb.load_dataset("RIKZ"), family="negbinomial")
    with pytest.raises(gb.ModelError, match="bernoulli, binomial and poisson"):
        ticks.fit_pql()
    counts = gb.Model("Richness ~ NAP + (1 | Beach)", gb.load_dataset("RIKZ"), family="poisson")
    with pytest.warns(gb.ConvergenceWarning, match="after 1 working fits"):
        fit = counts.fit_pql(niter=1)
    assert not fit.converged and fit.fits == 1
