"""Model-checking plots: each returns a Figure with the panels it promises, for every fit type,
without showing anything."""

import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from conftest import predicted, reference_fit, reference_model
from matplotlib.figure import Figure

import glmm_bayes as gb


@pytest.fixture(scope="module")
def sleep_fits():
    model = reference_model("sleep_rs_reml")
    with warnings.catch_warnings():  # 2 x 200 draws: too few for R-hat, enough to plot
        warnings.simplefilter("ignore", gb.SamplingWarning)
        post = model.sample(draws=200, warmup=200, chains=2, seed=0, progress=False)
    return reference_fit("sleep_rs_reml"), post


def visible_axes(fig):
    return [ax for ax in fig.axes if ax.get_visible()]


def test_every_check_plot_for_reml_and_nuts(sleep_fits):
    import matplotlib.pyplot as plt

    for fit in sleep_fits:
        figures = {
            "residuals": gb.plot_residuals(fit),
            "ranef_qq": gb.plot_ranef_qq(fit),
            "caterpillar": gb.plot_caterpillar(fit),
            "ppc": gb.plot_ppc(fit, n=10),
            "group": gb.plot_group_fits(fit, x="Days"),
            "shrinkage": gb.plot_shrinkage(fit),
        }
        assert all(isinstance(f, Figure) for f in figures.values())
        assert len(visible_axes(figures["ranef_qq"])) == 2  # (Intercept) and Days
        assert len(visible_axes(figures["caterpillar"])) == 2
        assert len(visible_axes(figures["group"])) == 18  # one panel per subject
        plt.close("all")
    post = sleep_fits[1]
    assert isinstance(gb.plot_trace(post), Figure) and isinstance(gb.plot_rank(post), Figure)
    plt.close("all")


def test_residuals_are_pearson_residuals_of_the_conditional_fit():
    from glmm_bayes.plots.checks import pearson_residuals

    fit = reference_fit("sleep_rs_reml")
    # the engine's fitted values come from the PLS residual, predict's from X beta + Z b: they
    # agree to the solve's rounding (~1e-9 relative on the residuals)
    np.testing.assert_allclose(
        pearson_residuals(fit), (fit.spec.y - fit.estimate.fitted) / fit.sigma, rtol=1e-6
    )
    rikz = reference_fit("rikz_poisson_laplace")
    mu = predicted(rikz)
    np.testing.assert_allclose(
        pearson_residuals(rikz), (rikz.spec.y - mu) / np.sqrt(mu), rtol=1e-10
    )


def test_glmm_plots_and_plot_errors():
    import matplotlib.pyplot as plt

    fit = reference_fit("rikz_poisson_laplace")
    assert isinstance(gb.plot_ppc(fit, n=5), Figure)
    assert isinstance(gb.plot_caterpillar(fit, factor="Beach"), Figure)
    with pytest.raises(gb.ModelError, match="gaussian"):
        gb.plot_shrinkage(fit)
    with pytest.raises(gb.ModelError, match="Site"):
        gb.plot_caterpillar(fit, factor="Site")
    with pytest.raises(gb.ModelError, match="'Weight'"):
        gb.plot_group_fits(fit, x="Weight")
    plt.close("all")


def test_trace_plot_takes_parameter_names_with_a_slash():
    # salamander's fixed effects are named "CrossR/R", ...; DataTree variables cannot hold "/"
    class Draws:
        def population_draws(self):
            rng = np.random.default_rng(0)
            return {"CrossR/R": rng.normal(size=(2, 50)), "sigma": rng.gamma(2.0, size=(2, 50))}

    import matplotlib.pyplot as plt

    figure = gb.plot_trace(Draws())
    assert len(visible_axes(figure)) == 4  # a trace and a density per parameter
    plt.close("all")


def test_plots_draw_the_fit_s_numbers():
    """What is drawn, not only that a figure exists: the caterpillar's points and 95% bars are
    lme4's conditional modes +- 1.96 conditional sds (lme4_seed.json; REML agrees to ~1e-6,
    1e-4 asserted), sorted, and RIKZ's 90% bars are its ranef's condsd x 1.645 (its beaches'
    sizes differ, so each bar must go with its own level); the residual plot's points are the
    Pearson residuals against the fitted means, and its QQ panel holds the same residuals in
    order."""
    import matplotlib.pyplot as plt
    from conftest import REFERENCE
    from scipy import stats

    from glmm_bayes.plots.checks import fitted_mean, pearson_residuals

    fit = reference_fit("sleep_rs_reml")
    lme4 = REFERENCE["sleep_rs_reml"]["ranef"]["Subject"]
    figure = gb.plot_caterpillar(fit)
    for ax, term in zip(visible_axes(figure), ["(Intercept)", "Days"]):
        assert ax.get_title() == f"{term} | Subject"
        points, _, (bars,) = ax.containers[0]
        order = np.argsort(lme4["values"][term])
        np.testing.assert_allclose(
            points.get_xdata(), np.asarray(lme4["values"][term])[order], rtol=1e-4
        )
        half = np.array([(s[1][0] - s[0][0]) / 2 for s in bars.get_segments()])
        np.testing.assert_allclose(
            half, stats.norm.ppf(0.975) * np.asarray(lme4["cond_sd"][term])[order], rtol=1e-4
        )
        assert [t.get_text() for t in ax.get_yticklabels()] == [lme4["levels"][i] for i in order]
    rikz = reference_fit("rikz_poisson_laplace")  # beaches of 5 rows or fewer: sds differ
    ranef = rikz.ranef["Beach"]
    (ax,) = visible_axes(gb.plot_caterpillar(rikz, level=0.9))
    points, _, (bars,) = ax.containers[0]
    order = np.argsort(ranef[("condval", "(Intercept)")].to_numpy())
    np.testing.assert_allclose(
        points.get_xdata(), ranef[("condval", "(Intercept)")].to_numpy()[order]
    )
    half = np.array([(s[1][0] - s[0][0]) / 2 for s in bars.get_segments()])
    np.testing.assert_allclose(
        half, stats.norm.ppf(0.95) * ranef[("condsd", "(Intercept)")].to_numpy()[order]
    )
    figure = gb.plot_residuals(fit)
    left, right = visible_axes(figure)
    np.testing.assert_allclose(
        left.collections[0].get_offsets(),
        np.column_stack([fitted_mean(fit), pearson_residuals(fit)]),
    )
    np.testing.assert_allclose(
        right.collections[0].get_offsets()[:, 1], np.sort(pearson_residuals(fit))
    )
    plt.close("all")


def test_qq_ppc_and_compare_draw_the_fit_s_numbers():
    """The ranef QQ plot holds each term's conditional modes in order against normal
    quantiles; the predictive check of counts draws the observed frequencies of each value;
    plot_compare draws the REML estimate at its value and shades its profile interval."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon, Rectangle
    from scipy import stats

    fit = reference_fit("sleep_rs_reml")
    for ax, term in zip(visible_axes(gb.plot_ranef_qq(fit)), ["(Intercept)", "Days"]):
        points = ax.collections[0].get_offsets()
        modes = np.sort(fit.ranef["Subject"][("condval", term)].to_numpy())
        np.testing.assert_allclose(points[:, 1], modes)
        np.testing.assert_allclose(points[:, 0], stats.probplot(modes)[0][0])
    rikz = reference_fit("rikz_poisson_laplace")
    (ax,) = visible_axes(gb.plot_ppc(rikz, n=5))
    observed = [line for line in ax.get_lines() if line.get_label() == "observed"][0]
    y = rikz.spec.y.astype(int)
    np.testing.assert_array_equal(observed.get_ydata()[: y.max() + 1], np.bincount(y))
    dyestuff = reference_fit("dyestuff_reml")
    interval = dyestuff.confint(method="profile")
    figure = gb.plot_compare(dyestuff, parameters=["sd((Intercept)|Batch)"])
    ax = visible_axes(figure)[0]
    (estimate,) = [line for line in ax.get_lines() if line.get_label() == "REML"]
    assert estimate.get_xdata()[0] == pytest.approx(
        dyestuff.population.loc["sd((Intercept)|Batch)", "estimate"]
    )
    (shade,) = [p for p in ax.patches if isinstance(p, (Polygon, Rectangle))]
    xs = (
        shade.get_xy()[:, 0]
        if isinstance(shade, Polygon)
        else [shade.get_x(), shade.get_x() + shade.get_width()]
    )
    np.testing.assert_allclose(
        [min(xs), max(xs)], interval.loc["sd((Intercept)|Batch)", ["lower", "upper"]]
    )
    plt.close("all")
