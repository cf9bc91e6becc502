"""Dispersion formulas (`dispersion=`, glmmTMB's dispformula): Laplace ML against glmmTMB 1.1.5
on simulated and public data for every family that takes one, the constant formula against the
model without one, predictions and simulations against the per-row dispersion, NUTS against
Laplace, and the errors for misuse."""

import json
from functools import cache
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import pytest
from conftest import assert_matches_reference, assert_recovers_its_parameters

import glmm_bayes as gb
from glmm_bayes.results.prediction import aux_on_rows

REFERENCE = Path(__file__).parent / "reference"
GLMMTMB = json.loads((REFERENCE / "glmmtmb_dispersion.json").read_text())
SIMULATED = pd.read_csv(REFERENCE / "data" / "dispersion_sim.csv")
TRIALS = pd.read_csv(REFERENCE / "data" / "trials_sim.csv")
FITS = {  # key of glmmtmb_dispersion.json: (formula, family, dispersion, data, link)
    "gaussian": ("y_gaussian ~ x + (1 | g)", "gaussian", "~ f + x", SIMULATED, None),
    "gaussian_sleepstudy": (
        "Reaction ~ Days + (Days | Subject)",
        "gaussian",
        "~ Days",
        gb.load_dataset("sleepstudy"),
        None,
    ),
    "student_t": ("y_t ~ x + (1 | g)", "student_t", "~ f", SIMULATED, None),
    "lognormal": ("y_gamma ~ x + (1 | g)", "lognormal", "~ f", SIMULATED, None),
    "negbinomial": ("y_nb ~ x + (1 | g)", "negbinomial", "~ f", SIMULATED, None),
    "negbinomial_salamanders": (
        "count ~ mined + (1 | site)",
        "negbinomial",
        "~ mined",
        gb.load_dataset("Salamanders"),
        None,
    ),
    "gamma": ("y_gamma ~ x + (1 | g)", "gamma", "~ f", SIMULATED, "log"),
    "beta": ("y_beta ~ x + (1 | g)", "beta", "~ x", SIMULATED, None),
    "beta_binomial": ("cbind(k, fail) ~ x + (1 | g)", "beta_binomial", "~ x", TRIALS, None),
    "zinb_salamanders": (
        "count ~ mined + (1 | site)",
        "negbinomial",
        "~ mined",
        gb.load_dataset("Salamanders"),
        None,
    ),
}
ZERO_INFLATION = {"zinb_salamanders": "~ mined"}  # with a dispersion formula beside


def model(key: str, **kwargs) -> gb.Model:
    formula, family, dispersion, data, link = FITS[key]
    zi = ZERO_INFLATION.get(key)
    return gb.Model(formula, data, family, link, dispersion=dispersion, zi=zi, **kwargs)


@cache
def laplace_fit(key: str):
    """The Laplace fit of a FITS model, made once per session."""
    return model(key).fit_laplace()


@pytest.mark.parametrize("key", sorted(FITS))
def test_laplace_fit_matches_glmmtmb(key):
    """glmmTMB 1.1.5's fits with a dispformula (its gaussian's log sigma^2 halved to our log
    sigma in the R script; the lognormal's is its gaussian fit of log y less the Jacobian).
    Both use the observed curvature in the Laplace approximation. Asserted: logLik 1e-9
    relative (seen 4e-11); fixed effects, dispersion coefficients, their SEs and the sds 1e-4
    relative or 5e-5 absolute (seen 8e-5 relative on the negbinomial's dispersion intercept
    of 0.37 and 3.5e-5 absolute on sleepstudy's intercept of 253, where glmmTMB's optimiser
    stops on a flat logLik: ours is higher by 3e-8 there); issue 30 asks 1e-5 and 1e-3. One
    fit has zero inflation beside the dispersion formula (its coefficients to the same
    tolerance)."""
    ref, fit = GLMMTMB[key], laplace_fit(key)
    assert_matches_reference(fit, ref, 1e-9, rtol=1e-4, atol=5e-5, se_rtol=1e-4, sd_atol=5e-5)
    table = fit.dispersion
    parameter = fit.spec.family.aux_names[0]
    assert list(table.index) == [f"{parameter}_{name}" for name in ref["disp"]]
    np.testing.assert_allclose(table["estimate"], list(ref["disp"].values()), rtol=1e-4, atol=5e-5)
    np.testing.assert_allclose(table["std_error"], list(ref["se_disp"].values()), rtol=1e-4)
    population = fit.population["estimate"]
    if "df" in ref:
        np.testing.assert_allclose(population["df"], ref["df"], rtol=1e-4)
    if ref["zi"]:
        zi = fit.zero_inflation["estimate"]
        np.testing.assert_allclose(zi, list(ref["zi"].values()), rtol=1e-4, atol=5e-5)


@pytest.mark.parametrize("family", ["gaussian", "beta"])
def test_a_constant_dispersion_formula_is_the_model_without_one(family):
    """dispersion = "~ 1" is the same model as none: the same ML logLik (1e-9 relative; the
    gaussian's REML-free ML fit is exact, the beta's Laplace uses the observed curvature either
    way) and sigma_(Intercept) = log sigma (phi_(Intercept) = log phi) to 1e-5."""
    response = {"gaussian": "y_gaussian", "beta": "y_beta"}[family]
    plain = gb.Model(f"{response} ~ x + (1 | g)", SIMULATED, family=family)
    constant = gb.Model(f"{response} ~ x + (1 | g)", SIMULATED, family=family, dispersion="~ 1")
    a, b = (
        (plain.fit_ml(), constant.fit_ml())
        if family == "gaussian"
        else (
            plain.fit_laplace(),
            constant.fit_laplace(),
        )
    )
    np.testing.assert_allclose(b.loglik, a.loglik, rtol=1e-9)
    name = a.spec.family.aux_names[0]
    np.testing.assert_allclose(
        b.population.loc[f"{name}_(Intercept)", "estimate"],
        np.log(a.population.loc[name, "estimate"]),
        rtol=1e-5,
    )


@pytest.mark.parametrize("key", ["gaussian", "lognormal", "negbinomial", "beta"])
def test_predictions_and_simulations_follow_the_per_row_dispersion(key):
    """2,000 responses simulated given the conditional modes: their mean on each row within
    4.5 Monte Carlo sds of predict()'s E[y] (the lognormal's exp(mu + sigma_i^2 / 2) depends
    on the row's sigma), and their variance within 25% of the family's Var(y) at the row's
    dispersion, on average over each level of the dispersion's covariate f (or above and
    below the median x) (the variance of 2,000 draws has a relative sd of 3-10%, more for the
    lognormal's heavy tail; averaging over ~180 rows makes it ~1%)."""
    fit = laplace_fit(key)
    spec = fit.spec
    mu = fit.predict()["prediction"].to_numpy()
    aux = fit.model.parameters.aux_from_sites(fit.population["estimate"], np)
    link_mean = np.asarray(spec.link.inverse(fit.predict(scale="link")["prediction"].to_numpy()))
    variance = np.asarray(spec.family.variance(link_mean, aux_on_rows(spec, aux[None], spec), 1.0))
    variance = variance[0]
    draws = fit.simulate(2000, seed=3, re_form=None).to_numpy()
    assert np.all(np.abs(draws.mean(axis=1) - mu) < 4.5 * np.sqrt(variance / 2000))
    column = spec.data["f"] == "b" if "f" in spec.dispersion_formula else spec.data["x"] > 0
    for rows in (column.to_numpy(), ~column.to_numpy()):
        ratio = draws[rows].var(axis=1).mean() / variance[rows].mean()
        assert abs(ratio - 1) < 0.25, ratio


def test_the_dispersion_table_and_summary_name_the_coefficients():
    fit = laplace_fit("gaussian")
    text = str(fit)
    assert "Family: gaussian ( identity ), dispersion: ~ f + x" in text
    assert "Dispersion model:" in text and "sigma_fb" in text
    assert fit.deviance == pytest.approx(-2 * fit.loglik, rel=1e-12)
    assert fit.model.fit_ml().loglik == pytest.approx(fit.loglik, rel=1e-12)
    with pytest.raises(gb.ModelError, match="no dispersion formula"):
        _ = gb.Model("y_gaussian ~ x + (1 | g)", SIMULATED).fit_ml().dispersion


def test_dispersion_priors_are_named_and_overridden_by_class():
    """sigma_(Intercept) ~ student_t(3, log sd(y), 2.5), slopes normal(0, 2.5 / s_x)."""
    priors = model("gaussian").priors
    location = np.log(np.std(SIMULATED["y_gaussian"]))
    assert str(priors.loc["sigma_(Intercept)", "prior"]) == f"student_t(3, {location:.4g}, 2.5)"
    assert priors.loc["sigma_x", "class"] == "dispersion"
    assert "sigma" not in priors.index
    overridden = model("gaussian", priors={"dispersion": "normal(0, 1)"}).priors
    assert str(overridden.loc["sigma_x", "prior"]) == "normal(0, 1)"
    assert str(model("negbinomial").priors.loc["shape_fb", "prior"]).startswith("normal(0, ")


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"family": "poisson", "dispersion": "~ f"}, gb.ModelError, "dispersion= applies to"),
        ({"dispersion": "f"}, gb.FormulaError, "one-sided formula"),
        ({"dispersion": "~ (1 | g)"}, gb.FormulaError, "fixed effects only"),
        ({"dispersion": "~ depth"}, gb.FormulaError, "unknown column 'depth'"),
        ({"dispersion": "~ f", "variance": gb.VarIdent("f")}, gb.ModelError, "does not combine"),
        ({"dispersion": "~ f + I(2 * x) + x"}, gb.ModelError, "dispersion model matrix is rank"),
    ],
)
def test_dispersion_misuse_is_a_clear_error(kwargs, error, message):
    with pytest.raises(error, match=message):
        gb.Model("y_nb ~ x + (1 | g)", SIMULATED, **kwargs)


def test_the_trials_as_weights_idiom_combines_with_a_dispersion_formula():
    """A beta-binomial proportion with its trials as weights is the cbind() model (1e-10 in
    logLik); a gaussian model's weights (variances sigma^2 / w) are refused beside it."""
    trials = TRIALS.assign(
        n=TRIALS["k"] + TRIALS["fail"], p=TRIALS["k"] / (TRIALS["k"] + TRIALS["fail"])
    )
    proportion = gb.Model(
        "p ~ x + (1 | g)", trials, family="beta_binomial", weights="n", dispersion="~ x"
    ).fit_laplace()
    np.testing.assert_allclose(proportion.loglik, laplace_fit("beta_binomial").loglik, rtol=1e-10)
    with pytest.raises(gb.ModelError, match="does not combine"):
        gb.Model("y_gaussian ~ x + (1 | g)", SIMULATED, weights="x", dispersion="~ f")


def test_a_dispersion_that_runs_to_zero_is_reported():
    """A level of the dispersion's covariate whose responses are one value (fitted exactly):
    its sigma runs to 0, the likelihood is unbounded, and the fit says so (ConvergenceWarning
    naming the formula; FitError with check_convergence="stop") instead of returning the
    coefficient where the optimiser stopped (log sigma near -37) silently."""
    data = SIMULATED.assign(y=np.where(SIMULATED["f"] == "a", 2.0, SIMULATED["y_gaussian"]))
    with pytest.warns(gb.ConvergenceWarning, match=r"sigma runs to 0 .* ~ f"):
        gb.Model("y ~ x + (1 | g)", data, dispersion="~ f").fit_ml()
    stop = {"check_convergence": "stop"}
    with pytest.raises(gb.FitError):
        gb.Model("y ~ x + (1 | g)", data, dispersion="~ f", control=stop).fit_ml()


def test_estimators_that_need_one_dispersion_say_so():
    gaussian = model("gaussian")
    with pytest.raises(gb.ModelError, match="REML needs one residual sd"):
        gaussian.fit_reml()
    with pytest.raises(gb.ModelError, match="nagq=0"):
        gaussian.fit_laplace(nagq=0)
    with pytest.raises(gb.DataError, match="column 'f'"):
        laplace_fit("gaussian").predict(newdata=SIMULATED.drop(columns=["f"]))


@pytest.mark.slow
@pytest.mark.parametrize("key", ["gaussian", "negbinomial"])
def test_nuts_with_a_dispersion_formula_agrees_with_its_laplace_fit(key):
    """NUTS with the default priors (weak beside 360 rows) against the Laplace estimates
    (checked equal to glmmTMB's above): each posterior mean within 1 posterior sd of the ML
    estimate."""
    post = model(key).sample(seed=1, progress=False)
    assert post.diagnostics()["r_hat"].max() < 1.01
    table = post.population
    gap = (table["estimate"] - laplace_fit(key).population["estimate"]).abs()
    assert (gap < table["sd"]).all(), gap


@pytest.mark.slow
def test_dispersion_fits_recover_their_simulated_parameters():
    """30 responses simulated from the gaussian and negative-binomial fits and fitted again
    (`assert_recovers_its_parameters`: within 4 Monte Carlo sds)."""
    for key in ("gaussian", "negbinomial"):
        assert_recovers_its_parameters(laplace_fit(key), 30)
        jax.monitoring.clear_event_listeners()
