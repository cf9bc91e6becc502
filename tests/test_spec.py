"""Design matrices for each lme4 syntax form equal hand-built ones; the input is never modified."""

import numpy as np
import pandas as pd
import pytest

import glmm_bayes as gb
from glmm_bayes.design import build_model_spec, parse_formula


@pytest.fixture
def toy():
    rng = np.random.default_rng(0)
    n = 24
    return pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "x": rng.normal(size=n),
            "t": rng.uniform(1, 2, size=n),
            "a": np.repeat(["a1", "a2"], 12),
            "b": np.tile(np.repeat(["b1", "b2", "b3"], 4), 2),
            "g": np.tile(["g1", "g2", "g3", "g4"], 6),
            "treat": np.tile(["A", "B", "C"], 8),
            "Sex": np.tile(["Female", "Male"], 12),
            "age": rng.uniform(20, 60, size=n),
            "s": rng.integers(0, 5, size=n),
            "f": rng.integers(0, 5, size=n),
        }
    )


def _onehot(values, levels):
    return (np.asarray(values)[:, None] == np.asarray(levels)[None, :]).astype(float)


def test_fixed_design_uses_treatment_contrasts_and_lme4_names(toy):
    spec = build_model_spec("y ~ treat + age:Sex + (1 | g)", toy)
    assert spec.fixed_names == ("(Intercept)", "treatB", "treatC", "age:SexFemale", "age:SexMale")
    expected = np.column_stack(
        [
            np.ones(24),
            _onehot(toy.treat, ["B", "C"]),
            toy.age.to_numpy()[:, None] * _onehot(toy.Sex, ["Female", "Male"]),
        ]
    )
    np.testing.assert_array_equal(spec.X, expected)


def test_correlated_term(toy):
    spec = build_model_spec("y ~ x + (x | g)", toy)
    (term,) = spec.terms
    assert (term.factor, term.label, term.names) == ("g", "g", ("(Intercept)", "x"))
    assert term.levels == ("g1", "g2", "g3", "g4")
    np.testing.assert_array_equal(term.Z, np.column_stack([np.ones(24), toy.x]))
    np.testing.assert_array_equal(term.level_index, np.tile([0, 1, 2, 3], 6))


def test_uncorrelated_term_splits_columns_like_lme4(toy):
    spec = build_model_spec("y ~ x + (x || g)", toy)
    assert [(t.label, t.names) for t in spec.terms] == [("g", ("(Intercept)",)), ("g.1", ("x",))]
    np.testing.assert_array_equal(spec.terms[1].Z[:, 0], toy.x)


def test_no_intercept_term(toy):
    spec = build_model_spec("y ~ x + (0 + x | g)", toy)
    assert spec.terms[0].names == ("x",)
    spec = build_model_spec("y ~ x + (0 + treat | g)", toy)
    np.testing.assert_array_equal(spec.terms[0].Z, _onehot(toy.treat, ["A", "B", "C"]))
    assert spec.terms[0].names == ("treatA", "treatB", "treatC")


def test_nested_and_interaction_grouping(toy):
    nested = build_model_spec("y ~ 1 + (1 | a/b)", toy)
    assert [t.factor for t in nested.terms] == ["a", "a:b"]
    inner = nested.terms[1]
    assert inner.levels == ("a1:b1", "a1:b2", "a1:b3", "a2:b1", "a2:b2", "a2:b3")
    labels = (toy.a + ":" + toy.b).to_numpy()
    np.testing.assert_array_equal(np.asarray(inner.levels)[inner.level_index], labels)
    explicit = build_model_spec("y ~ 1 + (1 | a) + (1 | a:b)", toy)
    np.testing.assert_array_equal(explicit.terms[1].level_index, inner.level_index)


def test_crossed_and_several_terms_on_one_factor(toy):
    spec = build_model_spec("y ~ x + (1 | g) + (1 | b) + (0 + x | g)", toy)
    assert [t.label for t in spec.terms] == ["g", "b", "g.1"]
    assert list(spec.factors) == ["g", "b"]


def test_binomial_responses(toy):
    spec = build_model_spec("cbind(s, f) ~ x + (1 | g)", toy, family="binomial")
    np.testing.assert_array_equal(spec.y, toy.s)
    np.testing.assert_array_equal(spec.trials, toy.s + toy.f)
    data = toy.assign(n=toy.s + toy.f)
    spec = build_model_spec("p(s, n) ~ x + (1 | g)", data, family="binomial")
    np.testing.assert_array_equal(spec.trials, data.n)


def test_offset_and_transforms(toy):
    spec = build_model_spec("s ~ x + offset(log(t)) + (1 | g)", toy, family="poisson")
    np.testing.assert_allclose(spec.offset, np.log(toy.t))
    assert spec.fixed_names == ("(Intercept)", "x")


def test_missing_values_are_dropped_with_a_count(toy):
    data = toy.copy()
    data.loc[[1, 5], "x"] = np.nan
    data.loc[7, "unused"] = 1.0  # NaN in an unused column must not drop rows
    with pytest.warns(UserWarning, match="dropped 2 of 24 rows"):
        spec = build_model_spec("y ~ x + (1 | g)", data)
    assert spec.n_obs == 22


def test_input_dataframe_is_not_modified(sleepstudy):
    before = sleepstudy.copy(deep=True)
    m = gb.Model("Reaction ~ Days + (Days | Subject)", sleepstudy)
    m.fit_reml()
    pd.testing.assert_frame_equal(sleepstudy, before)


def test_parse_formula_pieces():
    parsed = parse_formula("y ~ x - 1 + (x || g) + offset(log(t)) + (1 | a/b)")
    assert parsed.fixed == "x - 1"
    assert parsed.offsets == ("log(t)",)
    assert [(r.expr, r.group, r.correlated) for r in parsed.random] == [
        ("x", "g", False),
        ("1", "a", True),
        ("1", "a:b", True),
    ]


def test_priors_table_lists_every_parameter_with_defaults(sleepstudy):
    m = gb.Model("Reaction ~ Days + (Days | Subject)", sleepstudy, priors={"Days": "normal(0, 10)"})
    table = m.priors
    assert list(table.index) == [
        "(Intercept)",
        "Days",
        "sd((Intercept)|Subject)",
        "sd(Days|Subject)",
        "cor((Intercept),Days|Subject)",
        "sigma",
    ]
    assert table.loc["Days", "prior"] == "normal(0, 10)" and table.loc["Days", "source"] == "user"
    assert (table.drop("Days")["source"] == "default").all()
    # data-scaled: slope sd prior scale 2.5 sd(y) / sd(Days)
    expected = 2.5 * np.std(sleepstudy.Reaction) / np.std(sleepstudy.Days)
    assert table.loc["sd(Days|Subject)", "prior"] == f"half_student_t(3, {expected:.4g})"


def test_priors_by_class_and_group(sleepstudy):
    m = gb.Model(
        "Reaction ~ Days + (Days | Subject)",
        sleepstudy,
        priors={
            "sd": "half_normal(50)",
            "sd|Subject": "exponential(0.1)",
            "sd(Days|Subject)": "normal(0, 5)",
            "cor": "lkj(2)",
        },
    )
    table = m.priors
    assert table.loc["sd((Intercept)|Subject)", "prior"] == "exponential(0.1)"
    assert table.loc["sd(Days|Subject)", "prior"] == "half_normal(5)"  # zero-centred -> half
    assert table.loc["cor((Intercept),Days|Subject)", "prior"] == "lkj(2)"


def test_a_correlation_prior_is_keyed_by_its_pair_or_its_term(sleepstudy):
    """A term's correlations share one lkj prior: with one pair, the pair's name (as in every
    table) and the term's site cor(Subject) set it alike; with three columns a pair's name is
    refused, naming the keys that work."""
    by_pair = gb.Model(
        "Reaction ~ Days + (Days | Subject)",
        sleepstudy,
        priors={"cor((Intercept),Days|Subject)": "lkj(3)"},
    ).priors
    by_site = gb.Model(
        "Reaction ~ Days + (Days | Subject)", sleepstudy, priors={"cor(Subject)": "lkj(3)"}
    ).priors
    pd.testing.assert_frame_equal(by_pair, by_site)
    assert by_pair.loc["cor((Intercept),Days|Subject)", "prior"] == "lkj(3)"
    data = sleepstudy.assign(D2=sleepstudy.Days**2)
    with pytest.raises(gb.PriorError, match=r"joint over all of them: key it 'cor\(Subject\)'"):
        gb.Model(
            "Reaction ~ Days + (Days + D2 | Subject)",
            data,
            priors={"cor(Days,D2|Subject)": "lkj(3)"},
        )
