"""predict and simulate against lme4's estimates and against the maths they implement."""

import numpy as np
import pandas as pd
import pytest
from conftest import REFERENCE, predicted, reference_fit, reference_model
from scipy import integrate, special, stats

import glmm_bayes as gb


def lme4_linear_predictor(key, data, conditional=True):
    """X beta + Z b from lme4's fixed effects and BLUPs (reference values)."""
    ref = REFERENCE[key]
    fixef = ref["fixef"]
    eta = fixef["(Intercept)"] + sum(fixef[c] * data[c] for c in fixef if c != "(Intercept)")
    if conditional:
        ranef = ref["ranef"]["Subject"]
        level = pd.Index(ranef["levels"]).get_indexer(data["Subject"].astype(str))
        for term in ranef["terms"]:
            column = 1.0 if term == "(Intercept)" else data[term]
            eta = eta + np.asarray(ranef["values"][term])[level] * column
    return np.asarray(eta, dtype=float)


def test_sleepstudy_predictions_equal_lme4_fixef_and_blups():
    # lme4 stops at ~1e-6 relative change of the criterion: BLUPs and fixed effects agree to
    # ~1e-4 relative, i.e. well under 0.05 ms on responses of ~300 ms.
    fit, data = reference_fit("sleep_rs_reml"), gb.load_dataset("sleepstudy")
    np.testing.assert_allclose(
        predicted(fit), lme4_linear_predictor("sleep_rs_reml", data), atol=0.05
    )
    np.testing.assert_allclose(
        predicted(fit, re_form="~0"), lme4_linear_predictor("sleep_rs_reml", data, False), atol=0.05
    )
    # newdata: the same rows in another order give the same predictions, and equal the
    # fitted values of the REML fit exactly
    shuffled = data.sample(frac=1.0, random_state=1)
    np.testing.assert_allclose(
        predicted(fit, shuffled), fit.estimate.fitted[shuffled.index], rtol=1e-12
    )


def test_new_levels_population_sample_error():
    fit = reference_fit("sleep_rs_reml")
    new = pd.DataFrame({"Days": [0.0, 5.0], "Subject": ["308", "new subject"]})
    population = predicted(fit, new, re_form="~0")
    zero = predicted(fit, new, new_levels="population")
    assert zero[1] == pytest.approx(population[1], rel=1e-12)
    assert zero[0] != pytest.approx(population[0], rel=1e-3)
    sampled = predicted(fit, new, new_levels="sample", seed=3)
    assert sampled[0] == pytest.approx(zero[0], rel=1e-12) and sampled[1] != population[1]
    # the default refuses new levels, naming them, as lme4 and brms do unless asked
    for fitted in (fit, reference_model("sleep_rs_reml").fit_map(draws=20, seed=0)):
        with pytest.raises(gb.DataError, match="new subject.*'Subject'"):
            fitted.predict(new)
    # population-level predictions need no grouping column
    assert predicted(fit, pd.DataFrame({"Days": [5.0]}), re_form="~0")[0] == pytest.approx(
        population[1]
    )


def test_prediction_input_errors_name_the_culprit():
    fit = reference_fit("sleep_rs_reml")
    with pytest.raises(gb.DataError, match="'Days'"):
        fit.predict(pd.DataFrame({"Subject": ["308"]}))
    with pytest.raises(gb.DataError, match="'Subject'"):
        fit.predict(pd.DataFrame({"Days": [1.0]}))
    with pytest.raises(gb.DataError, match="'Days'.*missing"):
        fit.predict(pd.DataFrame({"Days": [np.nan], "Subject": ["308"]}))
    with pytest.raises(gb.FormulaError, match="Item"):
        fit.predict(re_form="~(1 | Item)")
    with pytest.raises(gb.ModelError, match="scale"):
        fit.predict(scale="probability")
    # text where the model was fitted to numbers (once a ValueError from NumPy)
    with pytest.raises(gb.DataError, match="'Days' must be numeric.*'1'"):
        fit.predict(pd.DataFrame({"Days": ["1"], "Subject": ["308"]}))
    for level in (1.5, 0, "95%", True):
        with pytest.raises(gb.GlmmBayesError, match="between 0 and 1"):
            fit.predict(interval=level)
        with pytest.raises(gb.GlmmBayesError, match="between 0 and 1"):
            fit.confint(method="wald", level=level)


def test_predict_leaves_newdata_unmodified():
    fit = reference_fit("penicillin_reml")
    new = pd.DataFrame({"treat": ["B", "A"], "blend": ["Blend1", "Blend9"]})
    copy = new.copy()
    out = predicted(fit, new, new_levels="population")
    pd.testing.assert_frame_equal(new, copy)
    beta = fit.estimate.beta
    assert out[1] == pytest.approx(beta[0], rel=1e-12)  # A is the reference level, Blend9 new


def test_wald_interval_of_the_fixed_part():
    fit = reference_fit("sleep_rs_reml")
    new = pd.DataFrame({"Days": [0.0, 4.5]})
    frame = fit.predict(new, re_form="~0", interval=0.9)
    X = np.column_stack([np.ones(2), new["Days"]])
    se = np.sqrt(np.einsum("np,pq,nq->n", X, fit.vcov.to_numpy(), X))
    np.testing.assert_allclose(frame["std_error"], se, rtol=1e-6)
    np.testing.assert_allclose(
        frame["upper"] - frame["prediction"], stats.norm.ppf(0.95) * se, rtol=1e-9
    )


def test_poisson_marginal_mean_is_exp_eta_plus_half_variance():
    fit, data = reference_fit("rikz_poisson_laplace"), gb.load_dataset("RIKZ")
    tau2 = fit.varcorr["vcov"].iloc[0]
    eta = predicted(fit, re_form="~0", scale="link")
    np.testing.assert_allclose(predicted(fit, marginal=True), np.exp(eta + tau2 / 2), rtol=1e-12)
    # and against lme4's estimates (agreement of the fits ~1e-4 relative)
    ref = REFERENCE["rikz_poisson_laplace"]
    lme4 = np.exp(
        ref["fixef"]["(Intercept)"]
        + ref["fixef"]["NAP"] * data["NAP"]
        + ref["varcorr"][0]["vcov"] / 2
    )
    np.testing.assert_allclose(predicted(fit, marginal=True), lme4, rtol=1e-3)
    # the marginal mean exceeds the conditional-at-zero mean exp(eta): Jensen
    assert np.all(predicted(fit, marginal=True) > predicted(fit, re_form="~0"))


def test_logistic_marginal_mean_agrees_with_brute_force_integration():
    fit = reference_fit("ctsib_laplace")
    tau = np.sqrt(fit.varcorr["vcov"].iloc[0])
    eta = predicted(fit, re_form="~0", scale="link")[:20]
    marginal = predicted(fit, marginal=True)[:20]
    brute = [
        integrate.quad(
            lambda z: special.expit(e + tau * z) * stats.norm.pdf(z),  # noqa: B023 (called at once)
            -12,
            12,
            epsabs=1e-13,
        )[0]
        for e in eta
    ]
    np.testing.assert_allclose(marginal, brute, rtol=1e-9)


def test_simulate_reproduces_the_fitted_moments():
    # 4000 simulations: the mean of each row's draws has sd sqrt(Var(y_i) / 4000); Var(y_i) =
    # z_i' Cov z_i + sigma^2, whose estimate from 4000 draws has relative sd sqrt(2 / 4000).
    fit = reference_fit("sleep_rs_reml")
    sims = fit.simulate(4000, seed=11).to_numpy()
    assert sims.shape == (180, 4000)
    mean = predicted(fit, re_form="~0")
    Z = np.column_stack([np.ones(180), gb.load_dataset("sleepstudy")["Days"]])
    cov = fit.estimate.factors[0] @ fit.estimate.factors[0].T
    var = np.einsum("ni,ij,nj->n", Z, cov, Z) + fit.sigma**2
    z_mean = (sims.mean(axis=1) - mean) / np.sqrt(var / 4000)
    assert np.max(np.abs(z_mean)) < 4.5
    assert np.max(np.abs(sims.var(axis=1, ddof=1) / var - 1)) < 5 * np.sqrt(2 / 4000)
    # a seed reproduces; conditional simulation (re_form=None) centres on the conditional fit
    pd.testing.assert_frame_equal(fit.simulate(2, seed=4), fit.simulate(2, seed=4))
    conditional = fit.simulate(4000, seed=5, re_form=None).to_numpy()
    z_cond = (conditional.mean(axis=1) - predicted(fit)) / (fit.sigma / np.sqrt(4000))
    assert np.max(np.abs(z_cond)) < 4.5


def test_simulated_poisson_counts_match_the_marginal_mean():
    fit = reference_fit("rikz_poisson_laplace")
    sims = fit.simulate(4000, seed=2).to_numpy()
    assert np.all(sims == np.round(sims)) and sims.min() >= 0
    mean = predicted(fit, marginal=True)
    tau2 = fit.varcorr["vcov"].iloc[0]
    var = mean + mean**2 * (np.exp(tau2) - 1)  # Poisson-lognormal variance
    z = (sims.mean(axis=1) - mean) / np.sqrt(var / 4000)
    assert np.max(np.abs(z)) < 4.5


def test_binomial_simulation_needs_trials_in_newdata():
    model = gb.Model(
        "cbind(s, f) ~ 1 + (1 | g)",
        pd.DataFrame({"s": [1, 2, 3, 4, 2, 1], "f": [3, 2, 1, 1, 2, 3], "g": list("aabbcc")}),
        family="binomial",
    )
    fit = model.fit_laplace()
    sims = fit.simulate(50, seed=0).to_numpy()
    assert np.all(sims <= model.spec.trials[:, None]) and np.all(sims >= 0)
    assert np.any(sims == 5)  # row 3 has 4 + 1 trials
    with pytest.raises(gb.DataError, match="'f'.*trials"):
        fit.simulate(1, newdata=pd.DataFrame({"s": [1], "g": ["a"]}))


def test_posterior_new_levels_are_wider_than_known_levels():
    post = reference_model("sleep_rs_reml").fit_map(draws=1000, seed=0)
    new = pd.DataFrame({"Days": [5.0, 5.0], "Subject": ["308", "new"]})
    draws = post.predict(new, new_levels="sample")
    assert draws.shape == (1000, 2)
    frame = post.predict(new, new_levels="sample", interval=0.9)
    width = frame["upper"] - frame["lower"]
    assert width[1] > 2 * width[0]
    predictive = post.predict(new, predictive=True, interval=0.9, new_levels="population")
    assert (predictive["upper"] - predictive["lower"])[0] > width[0]
    group = post.posterior_predictive(seed=1)
    assert group["y"].shape == (1, 1000, 180)
    assert "posterior_predictive" in post.idata.children
    sims = post.simulate(3, seed=0)
    assert sims.shape == (180, 3) and np.all(np.isfinite(sims.to_numpy()))


@pytest.mark.parametrize("term", ["scale(Days)", "center(Days)", "poly(Days, 2)"])
def test_newdata_goes_through_the_training_data_s_transforms(sleepstudy, term):
    """scale(), center() and poly() are stateful: newdata must be transformed with the fitted
    data's means, sds and orthogonal basis, not its own. Predictions at a few of the fitted
    rows equal the fitted predictions there (their own mean and sd differ: Days 0-2 only)."""
    fit = gb.Model(f"Reaction ~ {term} + (1 | Subject)", sleepstudy).fit_reml()
    rows = sleepstudy[sleepstudy.Days <= 2]
    np.testing.assert_allclose(predicted(fit, rows), predicted(fit)[rows.index], rtol=1e-10)
    np.testing.assert_allclose(
        predicted(fit, rows, re_form="~0"), predicted(fit, re_form="~0")[rows.index], rtol=1e-10
    )


def test_bootstrap_interval_of_a_population_prediction(sleepstudy):
    """predict(bootstrap=N), lme4's bootMer percentile interval: for the population-level
    mean at Days 0..9 the refits' spread is the fixed part's sampling sd, which the Wald SE
    estimates, so the 95% limits agree with the Wald limits within Monte Carlo error (the
    2.5% quantile of 200 refits has sd ~0.2 SE; 0.8 SE asserted)."""
    fit = gb.Model("Reaction ~ Days + (Days | Subject)", sleepstudy).fit_reml()
    days = pd.DataFrame({"Days": np.arange(10)})
    wald = fit.predict(days, re_form="~0", interval=0.95)
    boot = fit.predict(days, re_form="~0", interval=0.95, bootstrap=200, seed=1)
    assert boot.attrs["bootstrap"] == "200 of 200 refits succeeded"
    np.testing.assert_allclose(boot["prediction"], wald["prediction"])
    for end in ("lower", "upper"):
        assert np.all(np.abs(boot[end] - wald[end]) < 0.8 * wald["std_error"]), (end, boot, wald)


def test_a_point_fit_s_predictions_come_back_as_newdata_plus_their_columns():
    """lme4 users keep their rows: newdata's columns and index, then prediction (and the
    interval's columns); the fitted rows when newdata is None; a column of newdata that a
    prediction column would overwrite is refused, naming it."""
    fit = reference_fit("sleep_rs_reml")
    new = pd.DataFrame(
        {"Days": [0.0, 4.5], "Subject": ["308", "309"], "note": ["a", "b"]}, index=[10, 20]
    )
    out = fit.predict(new)
    assert list(out.columns) == ["Days", "Subject", "note", "prediction"]
    assert list(out.index) == [10, 20] and list(out["note"]) == ["a", "b"]
    frame = fit.predict(new, interval=0.9)
    assert list(frame.columns)[-4:] == ["prediction", "std_error", "lower", "upper"]
    np.testing.assert_allclose(frame["prediction"], out["prediction"], rtol=1e-15)
    fitted = fit.predict()
    assert len(fitted) == 180 and list(fitted.columns) == [
        "Reaction",
        "Days",
        "Subject",
        "prediction",
    ]
    np.testing.assert_allclose(fitted["prediction"], fit.estimate.fitted, rtol=1e-12)
    with pytest.raises(gb.DataError, match=r"\['prediction'\]"):
        fit.predict(new.assign(prediction=1.0))
    # a posterior's interval frame has the same layout, with the posterior sd
    post = reference_model("sleep_rs_reml").fit_map(draws=50, seed=0)
    summary = post.predict(new, interval=0.9)
    assert list(summary.columns) == [
        "Days",
        "Subject",
        "note",
        "prediction",
        "sd",
        "lower",
        "upper",
    ]
