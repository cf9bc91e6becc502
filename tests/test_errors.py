"""Bad input gets a clear error naming the column, term or value at fault."""

import numpy as np
import pandas as pd
import pytest

import glmm_bayes as gb


@pytest.fixture
def counts():
    return pd.DataFrame(
        {
            "y": [0, 1, 2, 3, 1, 0, 2, 4],
            "x": np.arange(8.0),
            "g": list("aabbccdd"),
            "one": ["z"] * 8,
        }
    )


@pytest.mark.parametrize(
    "formula, match",
    [
        ("Reaction ~ Dayz + (1 | Subject)", "unknown column 'Dayz'"),
        ("Reaction ~ Days + (1 | Subjct)", "unknown column 'Subjct'"),
        ("Reaction ~ Days + (1 | Subject", "unbalanced parentheses"),
        ("Reaction Days + (1 | Subject)", "response ~ terms"),
        ("Reaction ~ Days + ( | Subject)", "needs 'terms | group'"),
        ("Reaction ~ system(Days) + (1 | Subject)", "function 'system' is not allowed"),
        ("Reaction ~ Days", "no random-effect term"),
    ],
)
def test_malformed_formulas(sleepstudy, formula, match):
    with pytest.raises(gb.FormulaError, match=match):
        gb.Model(formula, sleepstudy)


def test_unknown_family_and_wrong_link(sleepstudy):
    with pytest.raises(gb.FamilyError, match="unknown family 'gausian'"):
        gb.Model("Reaction ~ Days + (1 | Subject)", sleepstudy, family="gausian")
    with pytest.raises(gb.FamilyError, match="link 'logit' is not available for family 'poisson'"):
        gb.Model("Reaction ~ Days + (1 | Subject)", sleepstudy, family="poisson", link="logit")


def test_count_responses(counts):
    with pytest.raises(gb.DataError, match="non-negative whole counts; found -1"):
        gb.Model("y ~ x + (1 | g)", counts.assign(y=counts.y - 1), family="poisson")
    with pytest.raises(gb.DataError, match="response column 'y' must be numeric"):
        gb.Model("y ~ x + (1 | g)", counts.assign(y=counts.y.astype(str)), family="poisson")
    with pytest.raises(gb.DataError, match=r"bernoulli response 'y' must be 0/1.*\[2"):
        gb.Model("y ~ x + (1 | g)", counts, family="bernoulli")
    with pytest.raises(gb.DataError, match="needs its trials"):
        gb.Model("y ~ x + (1 | g)", counts, family="binomial")


def test_a_constant_gaussian_response_is_named(counts):
    """Its residual sd would be 0: once a FitError about a non-finite objective."""
    with pytest.raises(gb.DataError, match="gaussian response 'y' does not vary .every value is 2"):
        gb.Model("y ~ x + (1 | g)", counts.assign(y=2.0))
    model = gb.Model("y ~ x + (1 | g)", counts)
    with pytest.raises(gb.DataError, match=r"response 'y \(dataset 1\)' does not vary"):
        model.fit_reml_batch(np.vstack([counts.y, np.full(8, 3.0)]))
    # a constant response around a varying offset is a model
    gb.Model("y ~ x + offset(sqrt(x)) + (1 | g)", counts.assign(y=2.0))


def test_grouping_factor_with_one_level(counts):
    with pytest.raises(gb.DataError, match="grouping factor 'one' has only one level"):
        gb.Model("y ~ x + (1 | one)", counts)


def test_infinite_values_are_rejected_nan_rows_dropped(counts):
    with pytest.raises(gb.DataError, match="column 'x' has infinite values"):
        gb.Model("y ~ x + (1 | g)", counts.assign(x=[np.inf] + list(range(7))))
    with pytest.warns(UserWarning, match="dropped 1 of 8 rows"):
        gb.Model("y ~ x + (1 | g)", counts.assign(x=[np.nan] + list(range(7))))


def test_prior_errors(sleepstudy):
    with pytest.raises(
        gb.PriorError,
        match=r"no parameter matches prior key 'Dayz'.*valid keys: \(Intercept\), Days",
    ):
        gb.Model("Reaction ~ Days + (1 | Subject)", sleepstudy, priors={"Dayz": "normal(0, 1)"})
    with pytest.raises(gb.PriorError, match="cannot read prior 'normal 0 1'"):
        gb.Model("Reaction ~ Days + (1 | Subject)", sleepstudy, priors={"Days": "normal 0 1"})
    with pytest.raises(gb.PriorError, match="must be on positive values"):
        gb.Model("Reaction ~ Days + (1 | Subject)", sleepstudy, priors={"sigma": "normal(5, 1)"})


def test_method_errors(sleepstudy, counts):
    poisson = gb.Model("y ~ x + (1 | g)", counts, family="poisson")
    with pytest.raises(gb.ModelError, match="REML applies to gaussian models"):
        poisson.fit_reml()
    slopes = gb.Model("Reaction ~ Days + (Days | Subject)", sleepstudy)
    with pytest.raises(gb.ModelError, match=r"nagq=5 needs exactly one scalar random-effect term"):
        slopes.fit_laplace(nagq=5)


def test_rank_deficient_design_names_the_aliased_column(sleepstudy):
    data = sleepstudy.assign(Days2=2 * sleepstudy.Days)
    with pytest.raises(gb.ModelError, match="rank deficient: Days2"):
        gb.Model("Reaction ~ Days + Days2 + (1 | Subject)", data)


def test_sampler_arguments(sleepstudy):
    """The package's own errors (a GlmmBayesError is a ValueError too), before any sampling."""
    m = gb.Model("Reaction ~ Days + (1 | Subject)", sleepstudy)
    with pytest.raises(gb.ModelError, match="chain_method must be one of"):
        m.sample(chain_method="fast", progress=False)
    for value in (1.5, 0):
        with pytest.raises(gb.ModelError, match=r"target_accept must be in \(0, 1\)"):
            m.sample(target_accept=value, progress=False)
    with pytest.raises(gb.DataError, match="no dataset"):
        m.sample_batch(np.zeros((0, len(sleepstudy))), progress=False)
    with pytest.raises(gb.DataError, match="no dataset"):
        m.fit_reml_batch(np.zeros((0, len(sleepstudy))), progress=False)
    with pytest.raises(gb.ModelError, match="method must be one of"):
        gb.batch_on_ray(m, sleepstudy[["Reaction"]].T.to_numpy(), "bogus")
    with pytest.raises(gb.GlmmBayesError, match="unknown dataset 'sleep'"):
        gb.load_dataset("sleep")
    with pytest.raises(gb.ModelError, match="at least one fit"):
        gb.compare()
    with pytest.raises(ValueError, match="draws must be an integer >= 1"):
        m.sample(draws=0, progress=False)


def test_hypotheses_and_predictions_name_bad_arguments(sleepstudy):
    """An empty contrast once raised ZeroDivisionError, NaN in L gave NaN F and p, and
    bootstrap=-1 NumPy's negative dimensions."""
    fit = gb.Model("Reaction ~ Days + (1 | Subject)", sleepstudy).fit_reml()
    with pytest.raises(gb.ModelError, match="no non-zero weight"):
        fit.contrast({})
    with pytest.raises(gb.ModelError, match="NaN or infinite"):
        fit.wald(np.array([[np.nan, 1.0]]))
    with pytest.raises(gb.GlmmBayesError, match="bootstrap"):
        fit.predict(sleepstudy.head(2), interval=0.95, bootstrap=-1)


def test_weights_as_a_series_go_with_the_rows_by_index(sleepstudy):
    """A Series of weights is aligned on the data's index, as pandas aligns columns; it was
    taken by position. Reversed, it gives the fit of the weights in order; with foreign
    labels it is an error."""
    w = pd.Series(np.linspace(0.5, 2.0, len(sleepstudy)), index=sleepstudy.index)
    formula = "Reaction ~ Days + (1 | Subject)"
    in_order = gb.Model(formula, sleepstudy, weights=w).fit_reml()
    reversed_ = gb.Model(formula, sleepstudy, weights=w.iloc[::-1]).fit_reml()
    assert reversed_.loglik == pytest.approx(in_order.loglik, rel=1e-12)
    with pytest.raises(gb.DataError, match="indexed by the data's rows"):
        gb.Model(formula, sleepstudy, weights=w.set_axis(w.index + 1000))


def test_comparisons_refuse_what_is_not_comparable(sleepstudy):
    """A larger model that fits worse is not nested in the smaller (Days against a noise
    column x with its random slope): the LRT once said Chisq 0, p = 1; now NaN with a
    warning. loo_compare once ranked posteriors of different responses."""
    data = sleepstudy.assign(x=np.random.default_rng(0).normal(size=len(sleepstudy)))
    days = gb.Model("Reaction ~ Days + (1 | Subject)", data).fit_ml()
    slopes = gb.Model("Reaction ~ x + (x || Subject)", data).fit_ml()
    assert slopes.estimate.n_params > days.estimate.n_params and slopes.loglik < days.loglik
    with pytest.warns(gb.GlmmBayesWarning, match="not nested"):
        table = gb.lrt(days, slopes)
    assert np.isnan(table["Chisq"].iloc[1]) and np.isnan(table["p_value"].iloc[1])
    one = gb.Model(formula := "Reaction ~ Days + (1 | Subject)", sleepstudy).fit_map(
        draws=200, seed=0
    )
    other = gb.Model(formula, sleepstudy.assign(Reaction=sleepstudy.Reaction + 1.0)).fit_map(
        draws=200, seed=0
    )
    with pytest.raises(gb.ModelError, match="same response"):
        gb.loo_compare(one, other)


def test_glmm_tests_are_z_tests_unless_asked_for_what_does_not_exist(sleepstudy):
    """A GLMM's fixef_tests once took ddf='satterthwaite' and quietly returned z tests with
    df = inf; now the default is the asymptotic test and a df method is an error. nobs is
    lme4's: the rows used, after missing values are dropped."""
    data = gb.load_dataset("RIKZ")
    fit = gb.Model("Richness ~ NAP + (1 | Beach)", data, family="poisson").fit_laplace()
    table = fit.fixef_tests()
    assert "z_value" in table and np.isinf(table["df"]).all()
    for ddf in ("satterthwaite", "kenward-roger", "residual"):
        with pytest.raises(gb.ModelError, match="applies to gaussian LMMs"):
            fit.fixef_tests(ddf)
    assert fit.anova().attrs["ddf"] == "asymptotic"
    with pytest.warns(gb.DataWarning, match="dropped 1 of 180 rows"):
        lmm = gb.Model(
            "Reaction ~ Days + (1 | Subject)",
            sleepstudy.assign(Days=sleepstudy.Days.where(sleepstudy.index != 0)),
        ).fit_reml()
    assert lmm.nobs == len(sleepstudy) - 1 and fit.nobs == len(data)
    assert (
        np.isfinite(lmm.fixef_tests()["df"]).all() and lmm.anova().attrs["ddf"] == "satterthwaite"
    )


def test_dates_and_numbers_mixed_with_text_are_named(sleepstudy):
    """Both once reached formulae's 'Variable is of an unrecognized type'."""
    mixed = sleepstudy.assign(
        Days=sleepstudy.Days.astype(object).where(sleepstudy.index != 3, "three")
    )
    with pytest.raises(gb.DataError, match="column 'Days' mixes numbers and text"):
        gb.Model("Reaction ~ Days + (1 | Subject)", mixed)
    dated = sleepstudy.assign(
        Days=pd.Timestamp("2020-01-01") + pd.to_timedelta(sleepstudy.Days, unit="D")
    )
    with pytest.raises(gb.DataError, match="column 'Days' holds dates"):
        gb.Model("Reaction ~ Days + (1 | Subject)", dated)
