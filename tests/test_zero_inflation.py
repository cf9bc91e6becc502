"""Zero-inflated and hurdle counts (`zi=`): Laplace ML against glmmTMB 1.1.5 on its Salamanders
data and on simulated correlated slopes, predictions against simulated responses, NUTS against
Laplace, and the errors for misuse."""

import json
from functools import cache
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import numpyro  # noqa: F401  (before its subpackages: see `lazy_modules.LazyModule`)
import numpyro.distributions as dist
import pandas as pd
import pytest
from conftest import assert_matches_reference, assert_recovers_its_parameters

import glmm_bayes as gb
from glmm_bayes.distributions import HurdleCount
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
    "hurdle_poisson": ("count ~ mined + (1 | site)", "hurdle_poisson", "~ mined", SALAMANDERS),
    "hurdle_nb": (
        "count ~ spp + mined + (1 | site)",
        "hurdle_negbinomial",
        "~ mined",
        SALAMANDERS,
    ),
}


def model(key: str, **kwargs) -> gb.Model:
    formula, family, zi, data = FITS[key]
    return gb.Model(formula, data, family=family, zi=zi, **kwargs)


@cache
def laplace_fit(key: str):
    """The Laplace fit of a FITS model, made once per session."""
    return model(key).fit_laplace()


@pytest.mark.parametrize("key", sorted(FITS))
def test_laplace_fit_matches_glmmtmb(key):
    """glmmTMB 1.1.5's fits (ziformula with poisson and nbinom2, or with truncated_poisson and
    truncated_nbinom2 for the hurdle families; the observed curvature in the Laplace
    approximation, as ours). Asserted: logLik 1e-9 relative; fixed effects,
    zero-inflation coefficients, SEs, sds and the shape 5e-5 relative (1e-5 absolute for
    coefficients near 0, 5e-5 for correlations and small sds: glmmTMB's optimiser stops where
    the logLik is flat, zinb_slopes' correlation 2.2e-5 from ours with its logLik 3e-9 below
    ours, hurdle_nb's sd of 0.075 1.2e-5 from ours with its logLik 7e-9 below), the
    zero-inflation SEs 5e-4 (seen 1.4e-4 on zinb_salamanders' SEs of 3.2, where the
    zero-inflation likelihood is flat: our Hessian is by central differences, TMB's exact);
    issue 30 asks 1e-5 and 1e-3."""
    ref, fit = GLMMTMB[key], laplace_fit(key)
    assert_matches_reference(fit, ref, 1e-9, rtol=5e-5, atol=1e-5, se_rtol=5e-5, sd_atol=5e-5)
    zi = fit.zero_inflation
    assert list(zi.index) == [f"zi_{name}" for name in ref["zi"]]
    np.testing.assert_allclose(zi["estimate"], list(ref["zi"].values()), rtol=5e-5, atol=1e-5)
    np.testing.assert_allclose(zi["std_error"], list(ref["se_zi"].values()), rtol=5e-4)
    population = fit.population["estimate"]
    if "shape" in ref:
        np.testing.assert_allclose(population["shape"], ref["shape"], rtol=5e-5)


@pytest.mark.parametrize("key", ["zip_salamanders", "zinb_slopes", "hurdle_nb"])
def test_predictions_are_the_mean_of_simulated_responses(key):
    """predict() is E[y | b]: (1 - p) mu zero-inflated, (1 - p) mu / (1 - f(0)) hurdle; 2,000
    responses simulated given the conditional modes average to it within 4.5 Monte Carlo sds
    per row, sd = sqrt(Var(y) / 2000) from the family's variance (300-644 rows: a false alarm
    in ~0.3% of seeds). On the fitted rows given as newdata the predictions are the same."""
    fit = laplace_fit(key)
    spec = fit.spec
    mu = fit.predict()["prediction"].to_numpy()
    aux = fit.model.parameters.aux_from_sites(fit.population["estimate"], np)
    count_mean = np.exp(fit.predict(scale="link")["prediction"].to_numpy())
    rows = aux_on_rows(spec, aux[None], spec)
    variance = np.asarray(spec.family.variance(count_mean, rows, spec.trials))[0]
    mean = fit.simulate(2000, seed=2, re_form=None).to_numpy().mean(axis=1)
    assert np.all(np.abs(mean - mu) < 4.5 * np.sqrt(variance / 2000))
    again = fit.predict(newdata=spec.data.drop(columns=spec.response_name))["prediction"]
    np.testing.assert_allclose(again, mu, rtol=1e-12)


def test_hurdle_draws_follow_its_probabilities():
    """100,000 draws of HurdleCount (a zero-truncated Poisson behind the hurdle) for means from
    0.01 to 40: each value's frequency within 4.5 binomial sds of exp(log_prob), the sampler's
    inversion exact."""
    means, gates = np.array([0.01, 0.5, 3.0, 40.0]), np.array([0.0, -1.0, 1.0, 0.5])
    with jax.enable_x64(True):
        hurdle = HurdleCount(dist.Poisson(jnp.asarray(means)), jnp.asarray(gates))
        y = np.asarray(hurdle.sample(jax.random.PRNGKey(0), (100_000,)))
        for j in range(len(means)):
            values, counts = np.unique(y[:, j], return_counts=True)
            grid = jnp.asarray(np.repeat(values[:, None], len(means), axis=1), dtype=float)
            p = np.exp(np.asarray(hurdle.log_prob(grid))[:, j])
            assert np.all(np.abs(counts / len(y) - p) < 4.5 * np.sqrt(p * (1 - p) / len(y)))
            assert np.isclose(p.sum(), 1.0, atol=1e-3)  # no value it can draw is missing


def test_a_hurdle_model_gives_each_zero_its_probability_p():
    """Every zero's log-likelihood is log p: the pointwise values of a posterior draw equal
    log logit^-1(X_zi gamma) on the rows where y = 0, at 1e-12."""
    post = model("hurdle_poisson").fit_map(draws=4, seed=0)
    draws = post.population_draws()
    gamma = np.stack([draws[n] for n in ("zi_(Intercept)", "zi_minedyes")], axis=-1).reshape(-1, 2)
    X_zi = post.spec.zi.matrix
    log_p = -np.log1p(np.exp(-(gamma @ X_zi.T)))
    loglik = np.asarray(post.log_likelihood()["y"]).reshape(len(gamma), -1)
    zeros = post.spec.y == 0
    np.testing.assert_allclose(loglik[:, zeros], log_p[:, zeros], rtol=1e-12)


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
        ({"family": "hurdle_poisson"}, gb.ModelError, "needs the formula of its zero part"),
        ({"family": "hurdle_poisson", "link": "identity", "zi": "~ 1"}, gb.FamilyError, "log"),
    ],
)
def test_zero_inflation_misuse_is_a_clear_error(kwargs, error, message):
    with pytest.raises(error, match=message):
        gb.Model("count ~ mined + (1 | site)", SALAMANDERS, **kwargs)


def test_a_zero_part_with_no_zeros_to_explain_warns():
    """Poisson counts in the hundreds with no zero at all: the zero-inflation logit runs off to
    -infinity (the optimiser stops near -30) and the fit says so instead of returning a
    meaningless coefficient silently; with the check set to "stop" it raises."""
    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(20), 10)
    x = rng.normal(size=g.size)
    y = rng.poisson(np.exp(5 + 0.3 * x + rng.normal(0, 0.5, 20)[g]))
    assert y.min() > 0
    data = pd.DataFrame({"y": y, "x": x, "g": g.astype(str)})
    with pytest.warns(gb.SeparationWarning, match=r"zero part's probability runs to 0"):
        fit = gb.Model("y ~ x + (1 | g)", data, family="poisson", zi="~ 1").fit_laplace()
    assert fit.population.loc["zi_(Intercept)", "estimate"] < -15
    with pytest.raises(gb.FitError, match="zero part"):
        gb.Model(
            "y ~ x + (1 | g)",
            data,
            family="poisson",
            zi="~ 1",
            control={"check_separation": "stop"},
        ).fit_laplace()


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
    """30 responses simulated from the ZIP and hurdle Poisson fits and fitted again
    (`assert_recovers_its_parameters`: within 4 Monte Carlo sds)."""
    for key in ("zip_salamanders", "hurdle_poisson"):
        assert_recovers_its_parameters(laplace_fit(key), 30)
