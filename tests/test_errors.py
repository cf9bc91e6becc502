"""Bad input gets a clear error naming the column, term or value at fault."""

import numpy as np
import pandas as pd
import pytest

import glmm_bayes as gb


@pytest.fixture
def counts():
    return pd.DataFrame({"y": [0, 1, 2, 3, 1, 0, 2, 4], "x": np.arange(8.0),
                         "g": list("aabbccdd"), "one": ["z"] * 8})


@pytest.mark.parametrize("formula, match", [
    ("Reaction ~ Dayz + (1 | Subject)", "unknown column 'Dayz'"),
    ("Reaction ~ Days + (1 | Subjct)", "unknown column 'Subjct'"),
    ("Reaction ~ Days + (1 | Subject", "unbalanced parentheses"),
    ("Reaction Days + (1 | Subject)", "response ~ terms"),
    ("Reaction ~ Days + ( | Subject)", "needs 'terms | group'"),
    ("Reaction ~ system(Days) + (1 | Subject)", "function 'system' is not allowed"),
    ("Reaction ~ Days", "no random-effect term"),
])
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
    with pytest.raises(gb.DataError, match="binomial family needs trials"):
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
    with pytest.raises(gb.PriorError, match=r"no parameter matches prior key 'Dayz'.*valid keys: \(Intercept\), Days"):
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
    m = gb.Model("Reaction ~ Days + (1 | Subject)", sleepstudy)
    with pytest.raises(ValueError, match="chain_method must be one of"):
        m.sample(chain_method="fast", progress=False)
    with pytest.raises(ValueError, match="draws must be an integer >= 1"):
        m.sample(draws=0, progress=False)
