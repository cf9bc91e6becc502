"""Fixed-effect tests (Satterthwaite, Kenward-Roger) against lmerTest/pbkrtest, and the LRT
against lme4's anova. Reference values: tests/reference/lmertest_extra.R -> lmertest_extra.json."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REFERENCE, reference_fit, reference_model
from scipy import stats

import glmm_bayes as gb
from glmm_bayes.results.variance_decomposition import variance_components

LMERTEST = json.loads((Path(__file__).parent / "reference" / "lmertest_extra.json").read_text())[
    "fits"
]
DDF = {"satterthwaite": "satterthwaite", "kenward_roger": "kenward-roger"}


def fit_for(key):
    if key == "sleep_rs_ml":
        return reference_model("sleep_rs_reml").fit_ml()
    return reference_fit(key)


# lme4 stops its optimiser at ~1e-6 relative change of the criterion; df and F are smooth
# functions of the estimates, so they agree to ~1e-4 relative (sleepstudy's random slopes are
# the least determined: 2e-5 seen), tighter where the criterion is sharper.
@pytest.mark.parametrize(
    "key", ["sleep_rs_reml", "sleep_rs_ml", "pulp_reml", "penicillin_reml", "irrigation_reml"]
)
def test_coefficient_tests_equal_lmertest(key):
    fit, ref = fit_for(key), LMERTEST[key]
    for name, ddf in DDF.items():
        if name not in ref:
            continue
        table, expected = fit.fixef_tests(ddf), ref[name]
        assert list(table.index) == list(np.atleast_1d(expected["names"]))
        np.testing.assert_allclose(table["df"], expected["df"], rtol=1e-4)
        np.testing.assert_allclose(table["std_error"], expected["se"], rtol=1e-4)
        np.testing.assert_allclose(table["p_value"], expected["p"], rtol=5e-3)


@pytest.mark.parametrize(
    "key", ["sleep_rs_reml", "sleep_rs_ml", "penicillin_reml", "irrigation_reml"]
)
def test_anova_f_tests_equal_lmertest(key):
    fit, ref = fit_for(key), LMERTEST[key]
    for label, expected in ref.items():
        if not label.startswith("anova_"):
            continue
        ddf = "kenward-roger" if "kenward" in label else "satterthwaite"
        table = fit.anova(ddf=ddf, type=int(label[-1]))
        assert list(table.index) == list(np.atleast_1d(expected["terms"]))
        np.testing.assert_allclose(table["F"], np.atleast_1d(expected["F"]), rtol=1e-4)
        np.testing.assert_allclose(table["NumDF"], np.atleast_1d(expected["NumDF"]))
        np.testing.assert_allclose(table["DenDF"], np.atleast_1d(expected["DenDF"]), rtol=1e-4)


def test_contrast_and_wald_on_penicillin():
    fit, expected = reference_fit("penicillin_reml"), LMERTEST["penicillin_contrast_B_minus_C"]
    row = fit.contrast({"treatB": 1, "treatC": -1}).iloc[0]
    assert row["estimate"] == pytest.approx(expected["estimate"], rel=1e-6)
    assert row["std_error"] == pytest.approx(expected["se"], rel=1e-5)
    assert row["df"] == pytest.approx(expected["df"], rel=1e-5)
    assert row["p_value"] == pytest.approx(expected["p"], rel=1e-4)
    # a joint test of the three treatment columns is the anova's F for treat
    joint = fit.wald([{"treatB": 1}, {"treatC": 1}, {"treatD": 1}]).iloc[0]
    assert joint["F"] == pytest.approx(fit.anova().loc["treat", "F"], rel=1e-10)
    # residual df: n - p
    assert fit.contrast({"treatB": 1}, ddf="residual")["df"].iloc[0] == fit.spec.n_obs - 4
    with pytest.raises(gb.ModelError, match="treatZ"):
        fit.contrast({"treatZ": 1})
    with pytest.raises(gb.ModelError, match="4 columns"):
        fit.wald(np.ones((1, 3)))
    with pytest.raises(gb.ModelError, match="ddf"):
        fit.anova(ddf="containment")


def test_glmm_tests_are_wald_chi_square():
    fit = reference_fit("rikz_poisson_laplace")
    table = fit.anova()
    z = fit.fixef.loc["NAP", "z_value"]
    assert np.isinf(table.loc["NAP", "DenDF"])
    assert table.loc["NAP", "F"] == pytest.approx(z**2, rel=1e-10)
    assert table.loc["NAP", "p_value"] == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-8)
    with pytest.raises(gb.ModelError, match="gaussian"):
        fit.anova(ddf="kenward-roger")


def test_penicillin_lrt_equals_lme4_anova():
    ref = REFERENCE["penicillin_lrt"]
    data = gb.load_dataset("penicillin")
    big, small = reference_fit("penicillin_reml"), gb.Model(ref["null"], data).fit_reml()
    table = gb.anova(big, small)  # any order; REML fits refitted by ML
    assert list(table["formula"]) == [ref["null"], ref["full"]]
    assert all(table["method"] == "ML (refit)") and "refitted by ML" in table.attrs["notes"][0]
    last = table.iloc[1]
    # ML logLik agrees with lme4 to ~1e-8 relative; the statistic is a difference of two of them
    assert last["Chisq"] == pytest.approx(ref["chisq"], abs=1e-5)
    assert last["Df"] == ref["df"] and last["p_value"] == pytest.approx(ref["p"], abs=1e-6)
    np.testing.assert_allclose(table["AIC"], ref["AIC"], rtol=1e-8)
    np.testing.assert_allclose(table["BIC"], ref["BIC"], rtol=1e-8)
    k, n = table["npar"], big.spec.n_obs
    np.testing.assert_allclose(
        table["AICc"], table["AIC"] + 2 * k * (k + 1) / (n - k - 1), rtol=1e-12
    )


def test_variance_component_lrt_has_boundary_p_and_bootstrap():
    ri = reference_model("sleep_ri_reml").fit_ml()
    rs = reference_model("sleep_rs_reml").fit_ml()
    table = gb.lrt(ri, rs)
    row = table.iloc[1]
    assert row["Df"] == 2
    assert row["p_boundary"] == pytest.approx(
        0.5 * stats.chi2.sf(row["Chisq"], 1) + 0.5 * stats.chi2.sf(row["Chisq"], 2), rel=1e-12
    )
    assert row["p_boundary"] < row["p_value"]
    # parametric bootstrap: the smaller model is false here (Chisq = 42), so no simulated
    # statistic reaches it and p = 1 / (nsim + 1)
    boot = gb.lrt(ri, rs, nsim=19, seed=3)
    assert boot.iloc[1]["p_bootstrap"] == pytest.approx(1 / 20)
    pd.testing.assert_frame_equal(boot, gb.lrt(ri, rs, nsim=19, seed=3))


def test_lrt_refuses_different_data_and_single_fits():
    fit = reference_fit("penicillin_reml")
    other = reference_fit("dyestuff_reml")
    with pytest.raises(gb.ModelError, match="different responses"):
        gb.lrt(fit, other)
    with pytest.raises(gb.ModelError, match="two fits"):
        gb.lrt(fit)


# performance::r2_nakagawa / icc on lme4's fits; variance components agree to ~1e-5 relative
@pytest.mark.parametrize("key", ["sleep_rs_reml", "penicillin_reml"])
def test_r2_and_icc_equal_performance(key):
    expected = LMERTEST["r2_icc"][key]
    got = reference_fit(key).icc()["estimate"]
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-4), name


def test_bernoulli_r2_equals_performance_at_lme4_s_estimates():
    """performance::r2_nakagawa / icc on glmer's ctsib fit (lmertest_extra.R), against our
    decomposition at glmer's estimates (lme4_seed.json, 11 significant digits: 1e-9 asserted).
    glmer stops short on ctsib's ridge (test_lme4_reference: our logLik is higher), so the fit's
    own icc() differs from these by 0.3-1.2%; it is the same decomposition at its estimates."""
    ref, model = REFERENCE["ctsib_laplace"], reference_model("ctsib_laplace")
    beta = np.array([ref["fixef"][name] for name in model.spec.fixed_names])
    tau2 = np.array([[[ref["varcorr"][0]["vcov"]]]])
    at_lme4 = variance_components(model.spec, beta[None], [tau2], None)
    for name, value in LMERTEST["r2_icc"]["ctsib_laplace"].items():
        assert float(at_lme4[name][0]) == pytest.approx(value, rel=1e-9), name
    fit = reference_fit("ctsib_laplace")
    own = variance_components(
        fit.spec, fit.estimate.beta[None], [fit.varcorr["vcov"].to_numpy()[None, :, None]], None
    )
    for name, value in fit.icc()["estimate"].items():
        assert value == pytest.approx(float(own[name][0]), rel=1e-12), name
    with pytest.raises(gb.ModelError, match="poisson"):
        reference_fit("rikz_poisson_laplace").icc()


def test_posterior_contrast_and_icc():
    """penicillin is balanced, so the contrast's estimate does not depend on the variance
    components: the MAP posterior's mean equals lmerTest's -4 within 4 Monte Carlo standard
    errors (2000 independent draws, sd / sqrt(2000)); the prior's pull, (sd / prior sd)^2 of the
    estimate ~ 1e-3, is far smaller. The ICC's draws equal those from the sd and sigma draws."""
    post = reference_model("penicillin_reml").fit_map(draws=2000, seed=1)
    frame = post.contrast({"treatB": 1, "treatC": -1})
    beta = post.parameter_draws().beta
    diff = beta[:, 1] - beta[:, 2]
    assert frame["estimate"].iloc[0] == pytest.approx(diff.mean(), rel=1e-12)
    assert frame["prob_positive"].iloc[0] == pytest.approx((diff > 0).mean())
    lmertest = LMERTEST["penicillin_contrast_B_minus_C"]["estimate"]
    assert abs(frame["estimate"].iloc[0] - lmertest) < 4 * frame["sd"].iloc[0] / np.sqrt(2000)
    draws = {name: np.ravel(value) for name, value in post.population_draws().items()}
    var_r = draws["sd((Intercept)|blend)"] ** 2
    icc = var_r / (var_r + draws["sigma"] ** 2)
    table = post.icc()
    assert table.loc["ICC_adjusted", "estimate"] == pytest.approx(np.mean(icc), rel=1e-10)
    assert table.loc["ICC_adjusted", "lower"] == pytest.approx(np.quantile(icc, 0.025), rel=1e-10)
    # the plug-in REML value lies inside the posterior's bulk (skewed, bounded by 0 and 1)
    reml = reference_fit("penicillin_reml").icc()
    assert list(reml.index) == list(table.index)  # one return type for both kinds
    assert (
        abs(table.loc["ICC_adjusted", "estimate"] - reml.loc["ICC_adjusted", "estimate"])
        < table.loc["ICC_adjusted", "sd"]
    )


def test_loo_compare_ranks_posteriors(sleepstudy):
    """sleepstudy's Days effect is ~10 standard errors: the model with it wins by many dse.
    On penicillin the treatment effect is weak (F test p = 0.17), and LOO prefers the null
    model, as the ranking's elpd order must say."""
    days = gb.Model("Reaction ~ Days + (Days | Subject)", sleepstudy).fit_map(draws=1000, seed=0)
    flat = gb.Model("Reaction ~ 1 + (1 | Subject)", sleepstudy).fit_map(draws=1000, seed=0)
    table = gb.loo_compare(flat, days, names=["flat", "days"])
    assert list(table.index) == ["days", "flat"] and list(table["rank"]) == [0, 1]
    assert table.loc["flat", "elpd_diff"] < -4 * table.loc["flat", "dse"] < 0
    data = gb.load_dataset("penicillin")
    full = reference_model("penicillin_reml").fit_map(draws=1000, seed=0)
    null = gb.Model("yield ~ 1 + (1 | blend)", data).fit_map(draws=1000, seed=0)
    table = gb.loo_compare(full, null, names=["treat", "null"])
    assert table.index[0] == table["elpd"].idxmax() == "null"
    np.testing.assert_allclose(table["elpd_diff"], table["elpd"] - table["elpd"].max(), atol=0.15)
    with pytest.raises(gb.ModelError, match="two or more"):
        gb.loo_compare(full)
