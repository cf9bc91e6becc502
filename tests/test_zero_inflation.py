"""Zero-inflated counts (`zi=`): Laplace ML against glmmTMB 1.1.5 on its Salamanders data and
on simulated correlated slopes, predictions against simulated responses, NUTS against Laplace,
and the errors for misuse."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import glmm_bayes as gb
from glmm_bayes.results.prediction import aux_on_rows

REFERENCE = Path(__file__).parent / "reference"
GLMMTMB = json.loads((REFERENCE / "glmmtmb_zero_inflation.json").read_text())
SALAMANDERS = gb.load_dataset("Salamanders")
SIMULATED = pd.read_csv(REFERENCE / "data" / "zero_inflated_sim.csv")
FITS = {  # key of glmmtmb_zero_inflation.json: (formula, family, zi, data)
    "zip_salamanders": ("count ~ mined + (1 | site)", "poisson", "~ mined", SALAMANDERS),
    "zip_constant": ("count ~ mined + cover + (1 | site)", "poisson", "~ 1", SALAMANDERS),
    "zinb_salamanders": (
        "count ~ spp + mined + (1 | site)",
        "negbinomial",
        "~ mined",
        SALAMANDERS,
    ),
    "zinb_slopes": ("y ~ x + (x | g)", "negbinomial", "~ z", SIMULATED),
}
_FITTED: dict = {}


def model(key: str, **kwargs) -> gb.Model:
    formula, family, zi, data = FITS[key]
    return gb.Model(formula, data, family=family, zi=zi, **kwargs)


def laplace_fit(key: str):
    """The Laplace fit of a FITS model, made once per session."""
    if key not in _FITTED:
        _FITTED[key] = model(key).fit_laplace()
    return _FITTED[key]


@pytest.mark.parametrize("key", sorted(FITS))
def test_laplace_fit_matches_glmmtmb(key):
    """glmmTMB 1.1.5's fits (ziformula, poisson and nbinom2; the observed curvature in the
    Laplace approximation, as ours). Asserted: logLik 1e-9 relative; fixed effects,
    zero-inflation coefficients, SEs, sds and the shape 5e-5 relative (1e-5 absolute for
    coefficients near 0, 5e-5 for correlations: glmmTMB's optimiser stops where the logLik is
    flat, zinb_slopes' correlation 2.2e-5 from ours with its logLik 3e-9 below ours), the
    zero-inflation SEs 5e-4 (seen 1.4e-4 on zinb_salamanders' SEs of 3.2, where the
    zero-inflation likelihood is flat: our Hessian is by central differences, TMB's exact);
    issue 30 asks 1e-5 and 1e-3."""
    ref, fit = GLMMTMB[key], laplace_fit(key)
    np.testing.assert_allclose(fit.loglik, ref["logLik"], rtol=1e-9)
    fixef = fit.fixef
    np.testing.assert_allclose(fixef["estimate"], list(ref["fixef"].values()), rtol=5e-5, atol=1e-5)
    np.testing.assert_allclose(fixef["std_error"], list(ref["se"].values()), rtol=5e-5)
    assert list(fixef.index) == list(ref["fixef"])
    zi = fit.zero_inflation
    assert list(zi.index) == [f"zi_{name}" for name in ref["zi"]]
    np.testing.assert_allclose(zi["estimate"], list(ref["zi"].values()), rtol=5e-5, atol=1e-5)
    np.testing.assert_allclose(zi["std_error"], list(ref["se_zi"].values()), rtol=5e-4)
    population = fit.population["estimate"]
    sds = population[[n for n in population.index if n.startswith("sd(")]]
    np.testing.assert_allclose(sds, np.atleast_1d(ref["sd"]), rtol=5e-5)
    cors = population[[n for n in population.index if n.startswith("cor(")]]
    np.testing.assert_allclose(cors, np.atleast_1d(ref["cor"]), rtol=5e-5, atol=5e-5)
    if "shape" in ref:
        np.testing.assert_allclose(population["shape"], ref["shape"], rtol=5e-5)


@pytest.mark.parametrize("key", ["zip_salamanders", "zinb_slopes"])
def test_predictions_are_the_mean_of_simulated_responses(key):
    """predict() is E[y | b] = (1 - p) mu; 2,000 responses simulated given the conditional
    modes average to it within 4.5 Monte Carlo sds per row, sd = sqrt(Var(y) / 2000) with the
    zero-inflated variance (1 - p)(V(mu) + p mu^2) (300-644 rows: a false alarm in ~0.3% of
    seeds). On the fitted rows given as newdata the predictions are the same."""
    fit = laplace_fit(key)
    spec = fit.spec
    mu = fit.predict()["prediction"].to_numpy()
    aux = fit.model.parameters.aux_from_sites(fit.population["estimate"], np)
    variance = np.asarray(
        spec.family.variance(mu, aux_on_rows(spec, aux[None], spec.zi.matrix), spec.trials)
    )[0]
    mean = fit.simulate(2000, seed=2, re_form=None).to_numpy().mean(axis=1)
    assert np.all(np.abs(mean - mu) < 4.5 * np.sqrt(variance / 2000))
    again = fit.predict(newdata=spec.data.drop(columns=spec.response_name))["prediction"]
    np.testing.assert_allclose(again, mu, rtol=1e-12)


def test_a_constant_zero_inflation_lowers_the_mean_by_its_probability():
    """With zi = ~ 1, E[y] is (1 - p) times the Poisson mean exp(eta), p = logit^-1(gamma_0)."""
    fit = laplace_fit("zip_constant")
    p = 1 / (1 + np.exp(-fit.population.loc["zi_(Intercept)", "estimate"]))
    link = fit.predict(scale="link")["prediction"].to_numpy()
    np.testing.assert_allclose(fit.predict()["prediction"], (1 - p) * np.exp(link), rtol=1e-12)


def test_zero_inflation_priors_are_named_and_overridden_by_class():
    priors = model("zip_salamanders").priors
    assert str(priors.loc["zi_(Intercept)", "prior"]) == "logistic(0, 1)"
    assert priors.loc["zi_minedyes", "class"] == "zi"
    overridden = model("zip_salamanders", priors={"zi": "normal(0, 1)"}).priors
    assert str(overridden.loc["zi_minedyes", "prior"]) == "normal(0, 1)"


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"family": "gaussian", "zi": "~ mined"}, gb.ModelError, "zi= applies to the poisson"),
        ({"family": "poisson", "link": "identity", "zi": "~ 1"}, gb.ModelError, "log link"),
        ({"family": "poisson", "zi": "mined"}, gb.FormulaError, "one-sided formula"),
        ({"family": "poisson", "zi": "~ (1 | site)"}, gb.FormulaError, "fixed effects only"),
        ({"family": "poisson", "zi": "~ depth"}, gb.FormulaError, "unknown column 'depth'"),
        ({"family": "poisson", "zi": "~ "}, gb.FormulaError, "has no terms"),
    ],
)
def test_zero_inflation_misuse_is_a_clear_error(kwargs, error, message):
    with pytest.raises(error, match=message):
        gb.Model("count ~ mined + (1 | site)", SALAMANDERS, **kwargs)


def test_estimators_without_zero_inflation_say_so():
    zip_model = model("zip_salamanders")
    with pytest.raises(gb.ModelError, match="nagq=0.*zero inflation"):
        zip_model.fit_laplace(nagq=0)
    for fit in (zip_model.fit_pql, zip_model.fit_mcml):
        with pytest.raises(gb.ModelError, match="with zero inflation"):
            fit()
    plain = gb.Model("count ~ mined + (1 | site)", SALAMANDERS, family="poisson").fit_laplace()
    with pytest.raises(gb.ModelError, match="no zero inflation"):
        _ = plain.zero_inflation


@pytest.mark.slow
def test_nuts_on_a_zero_inflated_model_agrees_with_its_laplace_fit():
    """NUTS with the default priors (weak beside 644 rows) against the Laplace estimates
    (checked equal to glmmTMB's above): each posterior mean within 1 posterior sd of the ML
    estimate; the posterior predictive rootogram draws."""
    post = model("zip_salamanders").sample(seed=1, progress=False)
    assert post.diagnostics()["r_hat"].max() < 1.01
    table = post.population
    gap = (table["estimate"] - laplace_fit("zip_salamanders").population["estimate"]).abs()
    assert (gap < table["sd"]).all(), gap
    gb.plot_ppc(post, kind="rootogram")


@pytest.mark.slow
def test_zero_inflated_fits_recover_their_simulated_parameters():
    """30 responses simulated from the ZIP fit (new b each) and fitted again: the mean of
    each estimate lies within 4 Monte Carlo sds of the value simulated from."""
    fit = laplace_fit("zip_salamanders")
    truth = fit.population["estimate"]
    batch = fit.model.fit_laplace_batch(fit.simulate(30, seed=1), progress=False)
    assert batch.status["converged"].all()
    estimates = pd.DataFrame(
        [refit.population["estimate"] for refit in batch.fits], columns=truth.index
    )
    gap = (estimates.mean() - truth).abs()
    assert (gap < 4 * estimates.std(ddof=1) / np.sqrt(len(estimates))).all(), gap
