"""Profile-likelihood intervals against lme4's confint(profile(m, delta.cutoff = 1/50)).

Reference values: tests/reference/lme4_extra.json, made by lme4_extra.R. lme4 interpolates the
profile by splines on a grid (made 6x finer than its default so that interpolation error is
~1e-6) and optimises the other parameters with bobyqa at default tolerances; our ends are roots
of the profile found by Brent's method with inner L-BFGS-B solves. The ends agree to 5e-5
relative (the largest gap, sleepstudy's sd(Days), is lme4's: our profile deviance at lme4's
ends is still below the cutoff). Ends at a bound (penicillin's sd at 0) must be that bound.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import EXTRA, REFERENCE, reference_fit, reference_model
from scipy import stats

import glmm_bayes as gb

PROFILE_RTOL = 5e-5


def lme4_names(spec) -> list[str]:
    """Our names for lme4's .sig01, .sig02, ... (theta's column-major order), then sigma, beta."""
    names = []
    for term in spec.terms:
        rows, cols = np.tril_indices(term.q)
        for r, c in sorted(zip(rows, cols), key=lambda rc: (rc[1], rc[0])):
            names.append(
                f"sd({term.names[r]}|{term.label})"
                if r == c
                else f"cor({term.names[c]},{term.names[r]}|{term.label})"
            )
    return names + (["sigma"] if spec.family.name == "gaussian" else []) + list(spec.fixed_names)


@pytest.mark.parametrize("key", sorted(EXTRA["profile_confint"]))
def test_profile_intervals_match_lme4(key):
    ref = EXTRA["profile_confint"][key]
    fit = reference_fit(key)
    names = lme4_names(reference_model(key).spec)
    assert len(names) == len(ref["names"])
    ours = fit.confint(method="profile").loc[names]
    np.testing.assert_allclose(ours["lower"], ref["lower"], rtol=PROFILE_RTOL, atol=1e-8)
    np.testing.assert_allclose(ours["upper"], ref["upper"], rtol=PROFILE_RTOL, atol=1e-8)


def test_profile_ends_sit_on_the_chi_square_cutoff():
    """At each end the ML deviance, minimised over the other parameters, exceeds its minimum by
    chi^2_1(0.9): checked with an ML fit of the model with the parameter moved into an offset."""
    data = gb.load_dataset("sleepstudy")
    fit = gb.Model("Reaction ~ Days + (1|Subject)", data).fit_ml()
    lower, upper = fit.confint(method="profile", level=0.9, parm="Days").loc["Days"]
    for end in (lower, upper):
        shifted = data.assign(Reaction=data["Reaction"] - end * data["Days"])
        refit = gb.Model("Reaction ~ 1 + (1|Subject)", shifted).fit_ml()
        assert 2 * (fit.loglik - refit.loglik) == pytest.approx(stats.chi2.ppf(0.9, 1), abs=1e-5)


def test_a_fixed_effect_on_a_ridge_is_profiled_to_both_ends():
    """ctsib's Height, collinear with the intercept (SE 13.5) and Weight: the profile started the
    other coefficients where they were at the previous value, the Laplace deviance there was
    not finite, and the lower end came back NaN. Each end is checked with a Laplace fit of the
    model with Height moved into an offset: the deviances differ by chi^2_1(0.95) to 1e-6 (both
    are L-BFGS-B minima of a deviance ~230 with ftol 1e-15 relative; the gap seen is 2e-10,
    and Brent's xtol 1e-9 in Height moves the deviance by < 1e-8)."""
    fit = reference_fit("ctsib_laplace")
    with warnings.catch_warnings():
        warnings.simplefilter("error", gb.GlmmBayesWarning)
        lower, upper = fit.confint(method="profile", parm="Height").loc["Height"]
    wald_lower, wald_upper = fit.confint(method="wald", parm="Height").loc["Height"]
    assert lower < wald_lower < upper < wald_upper  # the profile is skewed to the left
    data = gb.load_dataset("ctsib")
    for end in (lower, upper):
        refit = gb.Model(
            f"I(CTSIB == 1) ~ Sex + Age + Weight + Surface + Vision + (1|Subject) + "
            f"offset({end!r} * Height)",
            data,
            family="bernoulli",
        ).fit_laplace()
        assert 2 * (fit.loglik - refit.loglik) == pytest.approx(stats.chi2.ppf(0.95, 1), abs=1e-6)


def test_wald_intervals_and_errors():
    """Wald intervals are lme4's estimate +- z_0.975 SE (lme4's SEs agree with ours to ~1e-6,
    test_lme4_reference; 1e-5 asserted)."""
    fit = reference_fit("sleep_rs_reml")
    wald = fit.confint(method="wald")
    ref = REFERENCE["sleep_rs_reml"]
    for name in ("(Intercept)", "Days"):
        half = stats.norm.ppf(0.975) * ref["se"][name]
        np.testing.assert_allclose(
            wald.loc[name, ["lower", "upper"]],
            [ref["fixef"][name] - half, ref["fixef"][name] + half],
            rtol=1e-5,
        )
    assert wald.loc["sigma"].isna().all()
    with pytest.raises(gb.ModelError, match="no parameter named"):
        fit.confint(parm="sd(Days|subject)")
    with pytest.raises(gb.ModelError, match="unknown interval method"):
        fit.confint(method="bogus")


def test_correlations_of_three_column_terms_are_not_profiled(sleepstudy):
    data = sleepstudy.assign(Days2=(sleepstudy["Days"] - 4.5) ** 2)
    fit = gb.Model("Reaction ~ Days + (Days + Days2 | Subject)", data).fit_ml()
    name = "cor(Days,Days2|Subject)"
    with pytest.warns(UserWarning, match="no profile interval for cor"):
        interval = fit.confint(parm=name)
    assert interval.loc[name].isna().all()


def test_bootstrap_intervals_agree_with_bootmer():
    """confint(method="boot"), lme4's confint(method = "boot") (bootMer, parametric, new random
    effects, percentile intervals): 1000 refits there (lme4_idioms.R), 400 here. Each end is a
    2.5% or 97.5% quantile of n draws: its Monte Carlo sd is sqrt(p (1 - p) / n) / phi(z) of
    the estimate's sampling sd (taken as the interval's width / 3.92), 0.085 for n = 1000 and
    0.134 for 400, so the two runs differ by sd ~0.16 of it; 0.5 asserted (3 sd)."""
    import json
    from pathlib import Path

    ref = json.loads((Path(__file__).parent / "reference" / "lme4_idioms.json").read_text())
    ref = ref["sleep_ri_boot_confint"]
    fit = reference_fit("sleep_ri_reml")
    boot = fit.confint(method="boot", nsim=400, seed=1)
    assert boot.attrs["bootstrap"] == "400 of 400 refits succeeded"
    names = {
        "sd_(Intercept)|Subject": "sd((Intercept)|Subject)",
        "sigma": "sigma",
        "(Intercept)": "(Intercept)",
        "Days": "Days",
    }
    for theirs, lower, upper in zip(ref["names"], ref["lower"], ref["upper"]):
        sd = (upper - lower) / 3.92
        ours = boot.loc[names[theirs]]
        assert abs(ours["lower"] - lower) < 0.5 * sd and abs(ours["upper"] - upper) < 0.5 * sd, (
            theirs
        )


def test_compare_shows_profile_intervals_and_satterthwaite_t_intervals():
    """gb.compare showed NaN for every REML variance component unless confint had run: it now
    computes the profiles itself (the default), skips them with intervals="wald", and gives
    an LMM's fixed effects lmerTest's t intervals with intervals="satterthwaite"; plot_compare
    shades the same intervals."""
    from scipy import stats

    fit = reference_fit("sleep_ri_reml")
    table = gb.compare(fit)["REML"]
    profile = fit.confint(method="profile")
    np.testing.assert_allclose(table[["lower", "upper"]], profile.loc[table.index], rtol=1e-12)
    assert np.isfinite(table.loc["sd((Intercept)|Subject)", "lower"])
    wald = gb.compare(fit, intervals="wald")["REML"]
    assert np.isnan(wald.loc["sigma", "lower"])
    satterthwaite = gb.compare(fit, intervals="satterthwaite")["REML"]
    tests = fit.fixef_tests()
    half = stats.t.ppf(0.975, tests["df"]) * tests["std_error"]
    np.testing.assert_allclose(satterthwaite.loc[tests.index, "upper"], tests["estimate"] + half)
    np.testing.assert_allclose(satterthwaite.loc["sigma"], table.loc["sigma"])
    width = lambda frame: frame.loc["Days", "upper"] - frame.loc["Days", "lower"]
    assert width(satterthwaite) > width(wald)  # t with finite df is wider than z
    with pytest.raises(gb.ModelError, match="Satterthwaite df are for linear mixed models"):
        gb.compare(reference_fit("rikz_poisson_laplace"), intervals="satterthwaite")
    with pytest.raises(gb.ModelError, match="intervals must be"):
        gb.compare(fit, intervals="bogus")


def test_profile_of_a_singular_reml_fit_warns_only_once():
    """The ML refit behind a REML fit's profile is on the same boundary; the user was told by
    the REML fit, and the profile adds no second SingularFitWarning."""
    rng = np.random.default_rng(4)
    plot = np.repeat(np.arange(8), 6)
    data = pd.DataFrame({"plot": [f"plot{k}" for k in plot]})
    data["y"] = 10 + rng.normal(0, 0.3, 8)[plot] + rng.normal(0, 2, plot.size)
    with pytest.warns(gb.SingularFitWarning):
        reml = gb.Model("y ~ 1 + (1 | plot)", data).fit_reml()
    with warnings.catch_warnings():
        warnings.simplefilter("error", gb.GlmmBayesWarning)
        interval = reml.intervals("profile").loc["sd((Intercept)|plot)"]
    assert interval["lower"] == 0 and interval["upper"] > 0.1
