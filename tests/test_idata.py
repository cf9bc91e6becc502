"""One vocabulary: the posterior's `idata` as ArviZ expects it, named as the tables and priors,
saved and reloaded, and the parameter map that names everything."""

import warnings

import arviz as az
import matplotlib
import numpy as np
import pandas as pd
import pytest

import glmm_bayes as gb
from glmm_bayes.core.parameters import ParameterMap
from glmm_bayes.families import FAMILIES, AuxParameter, Family

matplotlib.use("Agg")
SHORT = dict(draws=200, warmup=200, chains=2, seed=1, progress=False)


@pytest.fixture(scope="module")
def slopes():
    """A correlated-slopes model (two columns: one correlation) and its short NUTS run."""
    m = gb.Model("Reaction ~ Days + (Days | Subject)", gb.load_dataset("sleepstudy"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gb.SamplingWarning)
        return m, m.sample(**SHORT)


@pytest.fixture(scope="module")
def counts():
    """RIKZ's Poisson counts with a random intercept per beach."""
    m = gb.Model("Richness ~ NAP + (1 | Beach)", gb.load_dataset("RIKZ"), family="poisson")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gb.SamplingWarning)
        return m, m.sample(**SHORT)


@pytest.mark.parametrize("which", ["slopes", "counts"])
def test_one_set_of_names_in_idata_tables_priors_and_prior_draws(which, request):
    m, post = request.getfixturevalue(which)
    names = list(m.parameters.names)
    posterior = post.idata["posterior"]
    population = [v for v in posterior.data_vars if not v.startswith("b(")]
    prior = m.sample_prior(draws=50, seed=0)
    prior_names = [v for v in prior["prior"].data_vars if not v.startswith("b(")]
    assert population == names == list(post.population.index) == list(m.priors.index) == prior_names
    assert list(m.fit_laplace().population.index) == names
    # random effects: (level, coefficient) dims in both groups
    assert posterior["b(Beach)" if which == "counts" else "b(Subject)"].ndim == 4
    assert prior["prior"].sizes["chain"] == 1 and prior["prior"].sizes["draw"] == 50


def test_arviz_summary_and_plots_run_cleanly_on_a_correlated_slopes_model(slopes):
    """No unit diagonal of a correlation matrix is left for ArviZ to divide by zero on: the
    summary warns nothing, and the trace and forest plots draw every parameter."""
    _, post = slopes
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = az.summary(post.idata)
    assert np.isfinite(table.filter(like="|Subject)", axis=0)["r_hat"]).all()
    assert "cor((Intercept),Days|Subject)" in table.index
    az.plot_trace(post.idata, var_names=list(post.population.index), backend="matplotlib")
    az.plot_trace_dist(post.idata, var_names=list(post.population.index), backend="matplotlib")
    az.plot_forest(post.idata, var_names=list(post.population.index), backend="matplotlib")
    matplotlib.pyplot.close("all")


def test_observed_counts_are_integers_and_the_rootogram_draws(counts):
    m, post = counts
    assert post.idata["observed_data"]["y"].dtype.kind == "i"
    np.testing.assert_array_equal(post.idata["observed_data"]["y"], m.spec.y)
    post.posterior_predictive(seed=0)
    assert post.idata["posterior_predictive"]["y"].dtype.kind == "i"
    az.plot_ppc_rootogram(post.idata, backend="matplotlib")
    matplotlib.pyplot.close("all")


def test_prior_and_posterior_merge_into_one_tree(slopes):
    m, post = slopes
    tree = post.idata.copy()
    prior = m.sample_prior(draws=100, seed=2)
    tree["prior"] = prior["prior"]
    az.plot_prior_posterior(tree, var_names=["Days", "sigma"], backend="matplotlib")
    matplotlib.pyplot.close("all")
    # the prior group holds what the priors say: sigma ~ exponential(1 / sd(y)) has mean sd(y)
    sigma = np.ravel(prior["prior"]["sigma"])
    s_y = np.std(m.spec.y)
    assert abs(sigma.mean() - s_y) < 4 * s_y / np.sqrt(sigma.size)  # 4 Monte Carlo sds


@pytest.mark.parametrize("which", ["slopes", "counts"])
def test_a_saved_posterior_reloads_and_predicts_the_same_numbers(which, request, tmp_path):
    m, post = request.getfixturevalue(which)
    path = tmp_path / "post.nc"
    post.to_netcdf(path)
    again = gb.load_posterior(path, m)
    assert isinstance(again, gb.Posterior) and again.method == post.method
    pd.testing.assert_frame_equal(again.summary(), post.summary(), rtol=1e-12)
    np.testing.assert_allclose(again.predict(), post.predict(), rtol=1e-12)
    newdata = m.spec.data.head(5)
    pd.testing.assert_frame_equal(
        again.predict(newdata, interval=0.9), post.predict(newdata, interval=0.9), rtol=1e-12
    )
    compared = gb.loo_compare(post, again, names=["saved", "reloaded"])
    assert compared["elpd_diff"].abs().max() < 1e-9
    other = gb.Model("Reaction ~ 1 + (1 | Subject)", gb.load_dataset("sleepstudy"))
    if which == "counts":
        with pytest.raises(gb.ModelError, match="not of this model"):
            gb.load_posterior(path, other)


def test_a_log_likelihood_left_for_later_is_the_stored_one(counts, monkeypatch, tmp_path):
    """Deferred (`log_likelihood=False`, or "auto" above `LOGLIK_STORED_VALUES`) and computed in
    blocks of 7 of the 45 rows (the last padded), the pointwise log-likelihood equals the one
    stored with the draws in one block, to rounding (the same program on the same draws, in
    other shapes). `loo()` takes the blocks one at a time, keeps none of them, and gives
    ArviZ's PSIS-LOO of the stored matrix."""
    import arviz_stats

    import glmm_bayes.bayes.pointwise as pointwise
    import glmm_bayes.model as model

    m, post = counts
    stored = post.idata.log_likelihood["y"].to_numpy()
    assert stored.shape == (2, 200, m.spec.n_obs) and m.spec.n_obs == 45
    monkeypatch.setattr(pointwise, "CHUNK_VALUES", 400 * 7)  # 400 draws: 7 blocks of 7 rows
    monkeypatch.setattr(model, "LOGLIK_STORED_VALUES", 400 * m.spec.n_obs - 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gb.SamplingWarning)
        later = m.sample(**SHORT)
        blocked, reference = later.loo(), arviz_stats.loo(post.idata)
    assert "log_likelihood" not in later.idata.children
    for value in ("elpd", "se", "p"):
        assert getattr(blocked, value) == pytest.approx(getattr(reference, value), rel=1e-12)
    for pointwise_value in ("elpd_i", "pareto_k"):
        np.testing.assert_allclose(
            getattr(blocked, pointwise_value), getattr(reference, pointwise_value), rtol=1e-9
        )
    np.testing.assert_allclose(later.log_likelihood()["y"].to_numpy(), stored, rtol=1e-12)
    assert float(later.loo().elpd) == pytest.approx(float(post.loo().elpd), rel=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gb.SamplingWarning)
        unsaved = m.sample(**SHORT, log_likelihood=False)
    unsaved.to_netcdf(tmp_path / "no_loglik.nc")
    with pytest.raises(gb.ModelError, match="no pointwise log-likelihood"):
        gb.load_posterior(tmp_path / "no_loglik.nc", m).loo()
    assert gb.loo_compare(post, unsaved)["elpd_diff"].abs().max() < 1e-9
    with pytest.raises(gb.ModelError, match="log_likelihood must be"):
        m.sample(**SHORT, log_likelihood="yes")


def test_a_map_posterior_reloads_with_its_mode(slopes, tmp_path):
    m, _ = slopes
    post = m.fit_map(draws=200, seed=0)
    post.to_netcdf(tmp_path / "map.nc")
    again = gb.load_posterior(tmp_path / "map.nc", m)
    assert again.method == "MAP"
    pd.testing.assert_frame_equal(again.population, post.population, rtol=1e-12)


def test_every_fit_has_a_kind_a_model_and_one_summary_type(slopes):
    m, post = slopes
    reml = m.fit_reml()
    assert (post.kind, reml.kind) == ("bayesian", "frequentist")
    assert post.model is m and reml.model is m
    for fit in (post, reml):
        table = fit.summary()
        assert isinstance(table, pd.DataFrame) and list(table.index) == list(m.parameters.names)
        assert {"estimate", "lower", "upper"} <= set(table.columns)
        assert isinstance(fit.icc(), pd.DataFrame) and "estimate" in fit.icc().columns
    text = str(reml)
    assert text.startswith("Linear mixed model fit by REML")
    assert "Random effects:" in text and "Fixed effects:" in text
    assert f"{reml.reml_criterion:.4f}" in text
    assert str(post).startswith("NUTS posterior") and "sd(Days|Subject)" in str(post)


def test_a_family_parameter_is_one_entry_in_the_family_table(monkeypatch, sleepstudy):
    """A toy family: gaussian with its sd renamed "tau" and another default prior, added as one
    entry of the family table and nothing else. The map, the priors, the program, the Laplace
    fit and the posterior all carry "tau"; the Laplace estimate is the gaussian one."""
    gaussian = FAMILIES["gaussian"]
    tau = AuxParameter("tau", lambda s_y: ("half_normal", (3.0 * s_y,)), gaussian.aux[0].moment)
    toy = Family(**{**gaussian.__dict__, "name": "toy", "aux": (tau,)})
    monkeypatch.setitem(FAMILIES, "toy", toy)
    m = gb.Model("Reaction ~ Days + (1 | Subject)", sleepstudy, family="toy")
    assert m.parameters.names[-1] == "tau" and m.parameters["tau"].positive
    assert m.priors.loc["tau", "prior"] == f"half_normal({3 * np.std(sleepstudy.Reaction):.4g})"
    assert m.priors.loc["tau", "class"] == "tau"
    fit = m.fit_laplace()
    reference = gb.Model("Reaction ~ Days + (1 | Subject)", sleepstudy).fit_ml()
    assert fit.population.loc["tau", "estimate"] == pytest.approx(reference.sigma, rel=1e-6)
    post = m.fit_map(draws=100, seed=0)
    assert "tau" in post.idata["posterior"] and "tau" in post.population.index
    custom = gb.Model(
        "Reaction ~ Days + (1 | Subject)",
        sleepstudy,
        family="toy",
        priors={"tau": "exponential(0.1)"},
    )
    assert custom.priors.loc["tau", "source"] == "user"


def test_the_map_orders_and_bounds_the_natural_parameters():
    data = gb.load_dataset("Ovary")
    m = gb.Model(
        "follicles ~ sin(2*pi*Time) + cos(2*pi*Time) + (1 | Mare)",
        data,
        correlation=gb.AR1(group="Mare"),
    )
    pmap = ParameterMap.from_spec(m.spec)
    assert pmap.names == (
        "(Intercept)",
        "sin(2 * pi * Time)",
        "cos(2 * pi * Time)",
        "sd((Intercept)|Mare)",
        "sigma",
        "phi",
    )
    lower, upper = pmap.bounds()
    np.testing.assert_array_equal(lower, [-np.inf] * 3 + [0, 0, -1])
    np.testing.assert_array_equal(upper, [np.inf] * 5 + [1])
    assert pmap["phi"].cls == "correlation" and pmap.site_names == pmap.names
    assert list(m.fit_reml().population.index) == list(pmap.names)


def test_a_slash_in_a_parameter_name_survives_idata_and_netcdf(tmp_path):
    """salamander's fixed effects are "CrossR/R", ...: a DataTree refuses "/" in a variable's
    name, so idata writes it as U+2215; the tables keep lme4's names and a reload maps back."""
    m = gb.Model(
        "Mate ~ 0 + Cross + (1 | Female) + (1 | Male)",
        gb.load_dataset("salamander"),
        family="bernoulli",
    )
    post = m.fit_map(draws=100, seed=0)
    assert "CrossR/R" in post.population.index
    assert "CrossR\u2215R" in post.idata["posterior"].data_vars
    post.to_netcdf(tmp_path / "salamander.nc")
    again = gb.load_posterior(tmp_path / "salamander.nc", m)
    pd.testing.assert_frame_equal(again.population, post.population, rtol=1e-12)


def test_loo_warns_of_the_rows_whose_pareto_k_is_too_high():
    """One reading 1,000 ms too slow (~30 residual sds) cannot be left out by reweighting the
    draws: its Pareto k exceeds min(1 - 1 / log10 S, 0.7) (0.62 for 400 draws), and `loo()`
    says how many rows do, with the package's warning category."""
    data = gb.load_dataset("sleepstudy")
    data.loc[0, "Reaction"] += 1000.0
    m = gb.Model("Reaction ~ Days + (Days | Subject)", data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gb.SamplingWarning)
        post = m.sample(**SHORT)
    with pytest.warns(gb.SamplingWarning, match="Pareto k above 0.62") as record:
        loo = post.loo()
    assert loo.warning and float(loo.pareto_k[0]) > loo.good_k
    above = int((loo.pareto_k > loo.good_k).sum())
    assert f"for {above} of 180 rows" in str(record[-1].message)


def _rows_data(seed: int = 3, n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(6), n // 6)
    x = rng.normal(size=n)
    mu = np.exp(1.0 + 0.4 * x + rng.normal(0, 0.5, 6)[g])
    trials = rng.integers(5, 30, size=n)
    k = rng.binomial(trials, 1 / (1 + np.exp(-(0.3 * x + rng.normal(0, 0.5, 6)[g]))))
    return pd.DataFrame(
        {
            "count": rng.poisson(mu) * (rng.uniform(size=n) > 0.2),
            "x": x,
            "g": g.astype(str),
            "k": k,
            "fail": trials - k,
            "exposure": rng.uniform(0.5, 2.0, size=n),
            "w": rng.uniform(0.5, 1.5, size=n),
        }
    )


@pytest.mark.parametrize(
    "formula, options",
    [
        ("count ~ x + (1 | g)", {"family": "negbinomial", "zi": "~ x", "dispersion": "~ x"}),
        ("cbind(k, fail) ~ x + offset(log(exposure)) + (1 | g)", {"family": "binomial"}),
        ("count ~ x + (x | g)", {"family": "poisson", "weights": "w"}),
    ],
    ids=[
        "zero-inflated negbinomial with a dispersion formula",
        "binomial trials, offset",
        "weights",
    ],
)
def test_the_log_likelihood_by_blocks_of_rows_is_the_whole_one(formula, options, monkeypatch):
    """Every per-row array goes with its rows in a block (`core.structure.row_subset`: y,
    trials, offset, X, Z, the zero-inflation and dispersion designs, the prior weights), and
    the block is centred by the whole X's means: for 60 draws of the MAP's Gaussian
    approximation, blocks of 7 of the 60 rows (the last padded) give the one-block values to
    1e-12 (the same program on other shapes)."""
    import glmm_bayes.bayes.pointwise as pointwise
    import glmm_bayes.model as model

    m = gb.Model(formula, _rows_data(), **options)
    whole = m.fit_map(draws=60, seed=2).idata.log_likelihood["y"].to_numpy()
    monkeypatch.setattr(pointwise, "CHUNK_VALUES", 60 * 7)  # 60 draws: blocks of 7 rows
    monkeypatch.setattr(model, "LOGLIK_STORED_VALUES", 0)  # left for later
    later = m.fit_map(draws=60, seed=2)
    assert "log_likelihood" not in later.idata.children
    np.testing.assert_allclose(later.log_likelihood()["y"].to_numpy(), whole, rtol=1e-12)
