"""Residual correlation, VarIdent, prior weights and known covariance among levels (issue 10).

References: `reference/nlme_extra.json`, made by `reference/nlme_extra.R` (nlme 3.1-162 and
lme4 1.1-31) on Ovary and the simulated `reference/data/serial_sim.csv` (unbalanced groups,
unequally spaced times, whole-number visits with gaps). Tolerances: both sides optimise to
about 1e-8 relative in the criterion, so logLik agrees to 1e-6 relative and every estimate to
the precision that leaves it (nlme stops at ~1e-6 relative change: fixed effects 1e-4,
variance and correlation parameters 2e-3, standard errors 1e-3).
"""

import json
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REFERENCE, predicted
from scipy.stats import multivariate_normal

import glmm_bayes as gb
from glmm_bayes.core.residual import ResidualLayout, leave_one_out_loglik, residual_arrays

LMERTEST = json.loads((Path(__file__).parent / "reference" / "lmertest_extra.json").read_text())[
    "fits"
]

HERE = Path(__file__).parent / "reference"
NLME = json.loads((HERE / "nlme_extra.json").read_text())
OVARY = "follicles ~ sin(2*pi*Time) + cos(2*pi*Time) + (1 + sin(2*pi*Time) || Mare)"
SERIAL = "y ~ time + x + (1 | id)"


def serial_data() -> pd.DataFrame:
    return pd.read_csv(HERE / "data" / "serial_sim.csv")


#: reference key -> (data, formula, Model keyword arguments, method, our names of nlme's params)
CASES = {
    "ovary_ar1_reml": (
        "Ovary",
        OVARY,
        {"correlation": gb.AR1(group="Mare")},
        "REML",
        {"Phi": "phi"},
    ),
    "ovary_ar1_ml": ("Ovary", OVARY, {"correlation": gb.AR1(group="Mare")}, "ML", {"Phi": "phi"}),
    "ovary_gaussian_reml": (
        "Ovary",
        OVARY,
        {"correlation": gb.GaussianCorrelation(time="Time", group="Mare")},
        "REML",
        {"range": "range"},
    ),
    "serial_car1_reml": (
        "serial",
        SERIAL,
        {"correlation": gb.CAR1(time="time", group="id")},
        "REML",
        {"Phi": "phi"},
    ),
    "serial_car1_ml": (
        "serial",
        SERIAL,
        {"correlation": gb.CAR1(time="time", group="id")},
        "ML",
        {"Phi": "phi"},
    ),
    "serial_ar1_visit_reml": (
        "serial",
        SERIAL,
        {"correlation": gb.AR1(group="id", order="visit")},
        "REML",
        {"Phi1": "phi"},
    ),
    "serial_cs_reml": (
        "serial",
        "y ~ time + x + (0 + time | id)",
        {"correlation": gb.CompoundSymmetry(group="id")},
        "REML",
        {"Rho": "rho"},
    ),
    "serial_varident_reml": (
        "serial",
        SERIAL,
        {"variance": gb.VarIdent(by="sex")},
        "REML",
        {"M": "sigma_ratio(sex=M)"},
    ),
    "serial_car1_varident_reml": (
        "serial",
        SERIAL,
        {"correlation": gb.CAR1(time="time", group="id"), "variance": gb.VarIdent(by="sex")},
        "REML",
        {"Phi": "phi", "M": "sigma_ratio(sex=M)"},
    ),
    "serial_weights_reml": ("serial", SERIAL, {"weights": "w"}, "REML", {}),
    "serial_weights_ml": ("serial", SERIAL, {"weights": "w"}, "ML", {}),
}


@cache
def model(key: str) -> gb.Model:
    data, formula, kwargs, _, _ = CASES[key]
    frame = gb.load_dataset("Ovary") if data == "Ovary" else serial_data()
    return gb.Model(formula, frame, **kwargs)


@cache
def fit(key: str) -> gb.FrequentistFit:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gb.SingularFitWarning)  # nlme's sd 4e-4 is our 0
        m = model(key)
        return m.fit_reml() if CASES[key][3] == "REML" else m.fit_ml()


@pytest.mark.parametrize("key", list(CASES))
def test_matches_nlme(key):
    """nlme runs at tolerance 1e-10 (nlme_extra.R) and our optimiser at ftol 1e-15, so the two
    optima agree to the parameters' own precision. Seen over the 11 cases: logLik 2.4e-10
    relative, fixed effects 1.4e-7 (relative, or absolute below 1), SEs 1.9e-6 (ours from a
    finite-difference Hessian with step 1e-5), sigma 3.9e-7, correlation parameters 7.1e-7,
    random-effect sds 1.4e-6 of sigma; asserted about 5x those. A random-effect sd that nlme
    leaves at its boundary (up to 2.9e-4 of sigma) is 0 here (below 1e-8 of sigma)."""
    ref, ours = NLME[key], fit(key)
    assert ours.method == ref["method"]
    assert ours.loglik == pytest.approx(ref["logLik"], rel=1e-9)
    names = list(ref["fixef"])
    assert ours.estimate.beta == pytest.approx([ref["fixef"][n] for n in names], rel=1e-6, abs=1e-6)
    assert np.sqrt(np.diag(ours.estimate.vcov)) == pytest.approx(
        [ref["se"][n] for n in names], rel=1e-5
    )
    assert ours.sigma == pytest.approx(ref["sigma"], rel=2e-6)
    sds = ours.varcorr.query("grp != 'Residual'")["sdcor"].to_numpy()
    theirs = np.asarray(ref["sd"][:-1])
    boundary = sds < 1e-8 * ref["sigma"]  # on the boundary: 0 up to the optimiser's step
    assert np.all(theirs[boundary] < 5e-4 * ref["sigma"])
    assert sds[~boundary] == pytest.approx(theirs[~boundary], rel=1e-5, abs=1e-5 * ref["sigma"])
    for theirs_name, mine in CASES[key][4].items():
        assert ours.correlation_params[mine] == pytest.approx(ref["params"][theirs_name], rel=5e-6)
    assert set(ours.correlation_params) == set(CASES[key][4].values())


def test_ovary_matches_the_seed_reference():
    """The project's seed value for Ovary (nlme::lme, AR(1) within Mare, REML)."""
    ref, ours = REFERENCE["ovary_ar1_reml"], fit("ovary_ar1_reml")
    assert ours.correlation_params["phi"] == pytest.approx(ref["phi"], rel=1e-5)
    assert ours.loglik == pytest.approx(ref["logLik"], rel=1e-8)
    assert ours.aic == pytest.approx(ref["AIC"], rel=1e-8)
    assert ours.estimate.beta == pytest.approx(list(ref["fixef"].values()), rel=1e-6)
    assert np.sqrt(np.diag(ours.estimate.vcov)) == pytest.approx(list(ref["se"].values()), rel=1e-5)
    sds = list(ours.varcorr["sdcor"])
    assert sds == pytest.approx(ref["sd"], rel=1e-5)


def test_ovary_aic_and_lrt_prefer_ar1():
    """AR(1) against independent errors, both by ML: AIC, and the LRT statistic equals nlme's."""
    ind = gb.Model(OVARY, gb.load_dataset("Ovary")).fit_ml()
    ar1 = fit("ovary_ar1_ml")
    assert ind.loglik == pytest.approx(NLME["ovary_independent_ml"]["logLik"], rel=1e-6)
    assert ar1.aic == pytest.approx(NLME["ovary_ar1_ml"]["AIC"], rel=1e-6)
    table = gb.lrt(ind, ar1)
    expected = 2 * (NLME["ovary_ar1_ml"]["logLik"] - NLME["ovary_independent_ml"]["logLik"])
    assert table["Chisq"].iloc[-1] == pytest.approx(expected, rel=1e-5)
    assert table["Df"].iloc[-1] == 1
    assert (
        "AR1(group='Mare', order=None)" in table["formula"].iloc[-1] and "p_boundary" not in table
    )


def test_rikz_glmm_weights_match_glmer():
    """glm's prior weights in a Poisson GLMM (each row's log-likelihood counted w times)."""
    ref = NLME["rikz_weights_laplace"]
    data = gb.load_dataset("RIKZ")
    ours = gb.Model(
        "Richness ~ NAP + (1 | Beach)", data, family="poisson", weights=1 + data["Sample"] % 3
    ).fit_laplace()
    assert ours.loglik == pytest.approx(ref["logLik"], rel=1e-7)
    assert ours.estimate.beta == pytest.approx(list(ref["fixef"].values()), rel=1e-4)
    assert np.sqrt(np.diag(ours.estimate.vcov)) == pytest.approx(list(ref["se"].values()), rel=1e-3)
    # simulating says that the weights play no part, as R's poisson()$simulate does
    with pytest.warns(gb.DataWarning, match="ignores its prior weights"):
        sims = ours.simulate(3, seed=0)
    assert sims.shape == (len(data), 3)


def test_weights_of_one_change_nothing(sleepstudy):
    plain = gb.Model("Reaction ~ Days + (Days | Subject)", sleepstudy).fit_reml()
    ones = gb.Model(
        "Reaction ~ Days + (Days | Subject)", sleepstudy, weights=np.ones(len(sleepstudy))
    ).fit_reml()
    assert ones.loglik == pytest.approx(plain.loglik, rel=1e-10)
    assert ones.estimate.beta == pytest.approx(plain.estimate.beta, rel=1e-6)


@pytest.mark.slow
def test_profile_interval_of_phi_brackets_the_estimate():
    reml = fit("ovary_ar1_reml")
    ends = reml.confint(parm="phi").loc["phi"]
    ml_phi = fit("ovary_ar1_ml").correlation_params["phi"]
    assert ends["lower"] < ml_phi < ends["upper"]
    assert 0.3 < ends["lower"] and ends["upper"] < 0.85  # the 95% profile, not the bounds


def test_simulation_honours_ar1_and_varident():
    """Simulated residuals around the conditional fit: lag-1 correlation phi (4000 draws x 297
    pairs, sd of the estimate < 0.002) and sds sigma delta_v / sqrt(w_i)."""
    reml = fit("ovary_ar1_reml")
    e = reml.simulate(4000, seed=1, re_form=None).to_numpy() - reml.estimate.fitted[:, None]
    mare = model("ovary_ar1_reml").spec.data["Mare"].to_numpy()
    same = mare[1:] == mare[:-1]
    lag1 = np.corrcoef(e[:-1][same].ravel(), e[1:][same].ravel())[0, 1]
    assert lag1 == pytest.approx(reml.correlation_params["phi"], abs=0.01)
    assert e.std() == pytest.approx(reml.sigma, rel=0.01)

    m = gb.Model(SERIAL, serial_data(), variance=gb.VarIdent(by="sex"), weights="w")
    f = m.fit_reml()
    e = f.simulate(4000, seed=2, re_form=None).to_numpy() - f.estimate.fitted[:, None]
    s = m.spec.data
    ratio = np.where(s["sex"] == "M", f.correlation_params["sigma_ratio(sex=M)"], 1.0)
    expected = f.sigma * ratio / np.sqrt(s["w"].to_numpy())
    assert e.std(axis=1) / expected == pytest.approx(np.ones(len(s)), abs=0.06)  # 4.5 z at n=4000


def test_icc_averages_the_rows_residual_variance_over_varident_and_weights():
    """var_e = sigma^2 mean_i delta_{v(i)}^2 / w_i (1e-12: the same arithmetic from the fit's
    reported parameters), for the point estimate and for every posterior draw."""
    m = gb.Model(SERIAL, serial_data(), variance=gb.VarIdent(by="sex"), weights="w")
    f = m.fit_reml()
    s = m.spec.data
    ratio = np.where(s["sex"] == "M", f.correlation_params["sigma_ratio(sex=M)"], 1.0)
    var_e = f.sigma**2 * np.mean(ratio**2 / s["w"].to_numpy())
    var_r = f.varcorr["vcov"].iloc[0]
    assert abs(var_e - f.sigma**2) > 0.05 * var_e  # the structure matters here
    assert f.icc().loc["ICC_adjusted", "estimate"] == pytest.approx(
        var_r / (var_r + var_e), rel=1e-12
    )
    post = m.fit_map(draws=200, seed=0)
    draws = post.parameter_draws()
    ratios = np.where(s["sex"].to_numpy()[None, :] == "M", draws.residual[:, -1:], 1.0)
    var_e = draws.aux**2 * np.mean(ratios**2 / s["w"].to_numpy(), axis=1)
    var_r = draws.covariances[0][:, 0, 0]
    assert post.icc().loc["ICC_adjusted", "estimate"] == pytest.approx(
        np.mean(var_r / (var_r + var_e)), rel=1e-12
    )


def test_leave_one_out_density_is_the_conditional_normal(float64):
    """log p(r_i | r_-i) from the group precision equals the conditional normal from the dense
    covariance of one group."""
    m = model("serial_car1_varident_reml")
    res, layout = m.spec.residual, ResidualLayout.from_spec(m.spec.residual, gaussian=True)
    params = np.array([0.7, 1.8])
    r = np.random.default_rng(0).normal(size=m.spec.n_obs)
    ours = np.asarray(leave_one_out_loglik(params, r, 1.3, residual_arrays(res), layout))
    rows = res.group_rows[3][res.group_rows[3] < m.spec.n_obs]
    t = res.group_position[3][: len(rows)]
    s = np.where(res.variance_level[rows] == 1, 1.8, 1.0) / np.sqrt(res.weights[rows])
    V = 1.3**2 * np.outer(s, s) * 0.7 ** np.abs(t[:, None] - t[None, :])
    for j, i in enumerate(rows):
        o = np.delete(np.arange(len(rows)), j)
        w = np.linalg.solve(V[np.ix_(o, o)], V[o, j])
        mean, var = w @ r[rows[o]], V[j, j] - w @ V[o, j]
        assert ours[i] == pytest.approx(
            -0.5 * np.log(2 * np.pi * var) - 0.5 * (r[i] - mean) ** 2 / var, rel=1e-9
        )


@pytest.mark.slow
def test_nuts_with_ar1_agrees_with_reml():
    """Posterior of phi (uniform prior) against the REML estimate: the mean is within 2 posterior
    sds (the posterior is skewed towards 0 by integrating over the variances)."""
    post = model("ovary_ar1_reml").sample(draws=1000, warmup=1000, chains=2, seed=1, progress=False)
    phi = post.population.loc["phi"]
    assert abs(phi["estimate"] - fit("ovary_ar1_reml").correlation_params["phi"]) < 2 * phi["sd"]
    assert "phi" in post.idata.posterior and post.correlation_params["phi"] == pytest.approx(
        phi["estimate"]
    )
    assert np.isfinite(post.loo().elpd)


# ---- known covariance among levels
def kinship(levels, extra=("new",), seed=0):
    rng = np.random.default_rng(seed)
    names = list(levels) + list(extra)
    A = rng.normal(size=(len(names), 4))
    return pd.DataFrame(A @ A.T / 4 + 0.5 * np.eye(len(names)), index=names, columns=names)


def test_identity_k_equals_the_plain_fit(sleepstudy):
    levels = sorted(sleepstudy["Subject"].astype(str).unique())
    K = pd.DataFrame(np.eye(len(levels)), index=levels, columns=levels)
    known = gb.Model("Reaction ~ Days + (1 | Subject)", sleepstudy, cov={"Subject": K}).fit_reml()
    plain = gb.Model("Reaction ~ Days + (1 | Subject)", sleepstudy).fit_reml()
    assert known.loglik == pytest.approx(plain.loglik, rel=1e-10)
    assert known.estimate.beta == pytest.approx(plain.estimate.beta, rel=1e-7)
    assert known.varcorr["sdcor"].to_numpy() == pytest.approx(
        plain.varcorr["sdcor"].to_numpy(), rel=1e-5
    )
    assert known.ranef["Subject"].to_numpy() == pytest.approx(
        plain.ranef["Subject"].to_numpy(), rel=1e-5, abs=1e-4
    )
    # an unlabelled K in sorted level order is the same
    array = gb.Model(
        "Reaction ~ Days + (1 | Subject)", sleepstudy, cov={"Subject": np.eye(len(levels))}
    ).fit_reml()
    assert array.loglik == pytest.approx(plain.loglik, rel=1e-10)


def test_known_k_ml_is_the_dense_normal_maximum(sleepstudy):
    """logLik equals log N(y; X beta, sd^2 Z K Z' + sigma^2 I) at the estimates, and moving any
    parameter lowers it; levels of K without data get a BLUP from their relatives."""
    K = kinship(sorted(sleepstudy["Subject"].astype(str).unique()))
    m = gb.Model("Reaction ~ Days + (1 | Subject)", sleepstudy, cov={"Subject": K})
    ml = m.fit_ml()
    X, y = m.spec.X, m.spec.y
    idx = pd.Index(K.index).get_indexer(sleepstudy["Subject"].astype(str))
    Kz = K.to_numpy()[np.ix_(idx, idx)]

    def loglik(beta, sd, sigma):
        return multivariate_normal(X @ beta, sd**2 * Kz + sigma**2 * np.eye(len(y))).logpdf(y)

    beta, sd, sigma = ml.estimate.beta, ml.varcorr["sdcor"].iloc[0], ml.sigma
    best = loglik(beta, sd, sigma)
    assert ml.loglik == pytest.approx(best, rel=1e-10)
    for step in (
        np.array([1e-2, 0, 0, 0]),
        np.array([0, 1e-3, 0, 0]),
        np.array([0, 0, 1e-2, 0]),
        np.array([0, 0, 0, 1e-2]),
    ):
        for sign in (-1, 1):
            b0, b1, s_a, s_e = np.concatenate([beta, [sd, sigma]]) * (1 + sign * step)
            assert loglik(np.array([b0, b1]), s_a, s_e) < best
    b_new = ml.estimate.modes[0][list(K.index).index("new"), 0]
    assert list(ml.ranef["Subject"].index) == list(K.index) and b_new != 0
    assert predicted(ml, pd.DataFrame({"Days": [0.0], "Subject": ["new"]}))[0] == pytest.approx(
        beta[0] + b_new
    )


@pytest.mark.slow
def test_known_k_nuts_runs_with_the_same_model(sleepstudy):
    K = kinship(sorted(sleepstudy["Subject"].astype(str).unique()))
    m = gb.Model("Reaction ~ Days + (1 | Subject)", sleepstudy, cov={"Subject": K})
    post = m.sample(draws=200, warmup=200, chains=2, progress=False)
    assert post.ranef["Subject"].shape[0] == len(K)
    assert post.population.loc["Days", "estimate"] == pytest.approx(
        m.fit_reml().estimate.beta[1], abs=0.3
    )


def test_known_k_marginal_mean_uses_each_levels_variance():
    """Poisson with b ~ N(0, sd^2 K): E[y] = exp(eta + sd^2 K_ll / 2) at level l (1e-12: the
    log link's mean is exact)."""
    rng = np.random.default_rng(3)
    levels = [f"g{j}" for j in range(12)]
    K = kinship(levels, extra=())
    g = rng.integers(0, 12, 300)
    data = pd.DataFrame({"x": rng.normal(size=300), "g": np.array(levels)[g]})
    data["y"] = rng.poisson(np.exp(0.5 + 0.3 * data["x"] + rng.normal(0, 0.5, 12)[g]))
    fit = gb.Model("y ~ x + (1 | g)", data, family="poisson", cov={"g": K}).fit_laplace()
    sd2 = fit.varcorr["vcov"].iloc[0]
    eta = predicted(fit, re_form="~0", scale="link")
    K_rows = np.diag(K.to_numpy())[g]
    assert np.ptp(K_rows) > 0.5  # the levels' variances differ
    np.testing.assert_allclose(
        predicted(fit, marginal=True), np.exp(eta + sd2 * K_rows / 2), rtol=1e-12
    )


# ---- bad input
def test_bad_structures_are_named():
    ov, s = gb.load_dataset("Ovary"), serial_data()
    with pytest.raises(gb.DataError, match="'Horse' is not a column"):
        gb.Model(OVARY, ov, correlation=gb.AR1(group="Horse"))
    with pytest.raises(gb.DataError, match="'when' is not a column"):
        gb.Model(SERIAL, s, correlation=gb.CAR1(time="when", group="id"))
    dup = s.copy()
    dup.loc[1, "visit"] = dup.loc[0, "visit"]
    with pytest.raises(gb.DataError, match="group 's00' has two observations at visit 1"):
        gb.Model(SERIAL, dup, correlation=gb.AR1(group="id", order="visit"))
    with pytest.raises(gb.DataError, match="whole-number"):
        gb.Model(SERIAL, s, correlation=gb.AR1(group="id", order="time"))
    with pytest.raises(gb.ModelError, match="not nested within the grouping factor 'id'"):
        gb.Model(SERIAL, s, correlation=gb.CompoundSymmetry(group="sex"))
    with pytest.raises(gb.ModelError, match="gaussian"):
        gb.Model(
            "Richness ~ NAP + (1 | Beach)",
            gb.load_dataset("RIKZ"),
            family="poisson",
            correlation=gb.AR1(group="Beach"),
        )
    with pytest.raises(gb.DataError, match="needs two levels"):
        gb.Model(SERIAL, s.assign(one="a"), variance=gb.VarIdent(by="one"))
    with pytest.raises(gb.PriorError, match="'phi'"):
        gb.Model(OVARY, ov, correlation=gb.AR1(group="Mare"), priors={"phi": "uniform(-2, 1)"})
    with pytest.raises(gb.ModelError, match=r"fit_reml\(\)"):
        gb.Model(OVARY, ov, correlation=gb.AR1(group="Mare")).fit_laplace()


@pytest.mark.parametrize(
    "weights, message",
    [
        ("w_bad", "must be positive and finite; found 0"),
        (np.ones(5), "one value per row"),
        ("nope", "'nope' is not a column"),
    ],
)
def test_bad_weights_are_named(weights, message):
    s = serial_data().assign(w_bad=lambda d: np.where(d.index == 3, 0.0, 1.0))
    with pytest.raises(gb.DataError, match=message):
        gb.Model(SERIAL, s, weights=weights)


def test_bad_known_covariance_is_named(sleepstudy):
    levels = sorted(sleepstudy["Subject"].astype(str).unique())
    n = len(levels)
    model = lambda K, formula="Reaction ~ Days + (1 | Subject)": gb.Model(
        formula, sleepstudy, cov={"Subject": K}
    )
    bad = np.eye(n)
    bad[0, 1] = bad[1, 0] = 2.0
    with pytest.raises(gb.DataError, match="not positive semi-definite"):
        model(pd.DataFrame(bad, index=levels, columns=levels))
    with pytest.raises(gb.DataError, match="duplicated level"):
        model(
            pd.DataFrame(
                np.eye(n), index=levels[:-1] + levels[:1], columns=levels[:-1] + levels[:1]
            )
        )
    with pytest.raises(gb.DataError, match="unlabelled"):
        model(pd.DataFrame(np.eye(n)))
    with pytest.raises(gb.DataError, match=r"level\(s\) \['372'\]"):
        model(pd.DataFrame(np.eye(n - 1), index=levels[:-1], columns=levels[:-1]))
    with pytest.raises(gb.DataError, match="must be 18 x 18"):
        model(np.eye(n - 1))
    with pytest.raises(gb.DataError, match="not symmetric"):
        model(np.triu(np.ones((n, n))))
    with pytest.raises(gb.ModelError, match="scalar term"):
        model(np.eye(n), "Reaction ~ Days + (Days | Subject)")
    with pytest.raises(gb.ModelError, match="'Strain' is not a grouping factor"):
        gb.Model("Reaction ~ Days + (1 | Subject)", sleepstudy, cov={"Strain": np.eye(n)})


def test_input_frames_are_not_modified():
    s = serial_data()
    before = s.copy()
    gb.Model(
        SERIAL,
        s,
        correlation=gb.CAR1(time="time", group="id"),
        variance=gb.VarIdent(by="sex"),
        weights=s["w"].to_numpy(),
    )
    pd.testing.assert_frame_equal(s, before)


def test_satterthwaite_through_a_residual_structure():
    """Satterthwaite's df differentiate C = (X'V^-1 X)^-1 through the residual structure's
    parameters too. Compound symmetry within id with rho > 0 is a random intercept per id:
    the two parameterisations give the same REML fit (1e-9) and the same df, t and p (1e-5,
    the optimisers' tolerance on the variance parameters). Constant prior weights move only
    sigma: lmerTest's df of the unweighted fit (1e-4, as test_hypothesis). Kenward-Roger
    builds Var(y) from the random-effect terms alone, so it refuses either."""
    data = serial_data()
    cs = gb.Model(
        "y ~ time + x + (0 + time | id)", data, correlation=gb.CompoundSymmetry(group="id")
    ).fit_reml()
    intercept = gb.Model("y ~ time + x + (1 | id) + (0 + time | id)", data).fit_reml()
    assert cs.correlation_params["rho"] > 0
    assert cs.loglik == pytest.approx(intercept.loglik, rel=1e-9)
    pd.testing.assert_frame_equal(
        cs.fixef_tests("satterthwaite"), intercept.fixef_tests("satterthwaite"), rtol=1e-5
    )
    sleep = gb.load_dataset("sleepstudy").assign(w=4.0)
    weighted = gb.Model("Reaction ~ Days + (Days | Subject)", sleep, weights="w").fit_reml()
    lmertest = LMERTEST["sleep_rs_reml"]["satterthwaite"]
    np.testing.assert_allclose(
        weighted.fixef_tests("satterthwaite")["df"], lmertest["df"], rtol=1e-4
    )
    for fit in (cs, weighted):
        with pytest.raises(gb.ModelError, match="Kenward-Roger builds Var"):
            fit.fixef_tests("kenward-roger")
