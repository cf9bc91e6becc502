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


def test_rootogram_hangs_observed_bars_from_expected_frequencies():
    """Bar k spans sqrt(expected_k) - sqrt(observed_k) .. sqrt(expected_k), expected_k the mean
    frequency of k over the replicates drawn with the same seed."""
    import matplotlib.pyplot as plt

    rikz = reference_fit("rikz_poisson_laplace")
    (ax,) = visible_axes(gb.plot_ppc(rikz, n=20, seed=3, kind="rootogram"))
    sims = rikz.simulate(20, seed=3, re_form=None).to_numpy().astype(int)
    y = rikz.spec.y.astype(int)
    values = len(ax.patches)
    expected = np.mean([np.bincount(s, minlength=values)[:values] for s in sims.T], axis=0)
    observed = np.bincount(y, minlength=values)[:values]
    tops = np.array([bar.get_y() + bar.get_height() for bar in ax.patches])
    heights = np.array([bar.get_height() for bar in ax.patches])
    np.testing.assert_allclose(tops, np.sqrt(expected))
    np.testing.assert_allclose(heights, np.sqrt(observed))
    with pytest.raises(gb.ModelError, match="count response"):
        gb.plot_ppc(reference_fit("sleep_rs_reml"), kind="rootogram")
    with pytest.raises(gb.ModelError, match="'bars'"):
        gb.plot_ppc(rikz, kind="bars")
    plt.close("all")


def test_prior_posterior_overlay_and_group_fit_legend(sleep_fits):
    import matplotlib.pyplot as plt

    reml, post = sleep_fits
    figure = gb.plot_prior_posterior(post, parameters=["Days", "sigma"])
    axes = visible_axes(figure)
    assert [ax.get_title() for ax in axes] == ["Days", "sigma"]
    for ax in axes:
        assert [line.get_label() for line in ax.get_lines()] == ["prior", "posterior"]
    # the prior of sigma (exponential, mean sd(y)) is far flatter than its posterior
    prior, posterior = (line.get_ydata().max() for line in axes[1].get_lines())
    assert posterior > 5 * prior
    with pytest.raises(gb.ModelError, match="no parameters"):
        gb.plot_prior_posterior(post, parameters=["slope"])
    with pytest.raises(gb.ModelError, match="needs a posterior"):
        gb.plot_prior_posterior(reml)
    legend = gb.plot_group_fits(reml, x="Days").legends[0]
    assert [t.get_text() for t in legend.get_texts()] == [
        "observed",
        "this Subject (with its b)",
        "population (b = 0)",
    ]
    plt.close("all")


def test_densities_are_reflected_at_a_parameter_s_bounds():
    """A half-normal(1) sample's density at 0 is 2 phi(0) = 0.798; a plain KDE halves it. The
    reflected estimate gets within 0.08 (its bias at the bound with 20 000 draws is ~0.03) and
    integrates to 1 over (0, inf)."""
    from scipy import stats

    from glmm_bayes.plots.density import bounded_density

    draws = np.abs(np.random.default_rng(0).normal(size=20_000))
    grid, density = bounded_density(draws, (0.0, np.inf), points=2000, span=(0.0, 6.0))
    assert grid[0] == 0.0
    assert abs(density[0] - 2 * stats.norm.pdf(0)) < 0.08
    assert abs(np.trapezoid(density, grid) - 1) < 0.01
