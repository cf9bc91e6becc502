"""Laplace/AGQ and ML against brute-force integration, and the MAP mode against a plain
optimiser."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import compiles_during
from scipy import integrate, optimize, stats
from scipy.special import gammaln

import glmm_bayes as gb


def _quadrature_loglik_poisson(data, beta0, sd):
    """log L = sum_j log int prod_i Poisson(y_ij | exp(beta0 + b)) N(b | 0, sd^2) db, by
    adaptive quadrature."""
    total = 0.0
    for _, rows in data.groupby("Beach"):
        y = rows["Richness"].to_numpy()

        def integrand(b):
            return np.exp(
                np.sum(y * (beta0 + b) - np.exp(beta0 + b) - gammaln(y + 1))  # noqa: B023 (called at once)
                + stats.norm.logpdf(b, 0, sd)
                + 40.0
            )

        value, _ = integrate.quad(integrand, -12 * sd, 12 * sd, epsabs=0, epsrel=1e-12, limit=200)
        total += np.log(value) - 40.0
    return total


def test_laplace_and_agq_against_brute_force_integration():
    """A model no reference fixes: Richness ~ 1 + (1 | Beach). AGQ with 25 nodes equals the
    quadrature integral to 1e-8 relative; Laplace is an approximation, within 0.05 log units."""
    data = gb.load_dataset("RIKZ")
    model = gb.Model("Richness ~ 1 + (1 | Beach)", data, family="poisson")
    agq = model.fit_laplace(nagq=25)
    beta0, sd = agq.fixef["estimate"].iloc[0], agq.varcorr["sdcor"].iloc[0]
    exact = _quadrature_loglik_poisson(data, beta0, sd)
    np.testing.assert_allclose(agq.loglik, exact, rtol=1e-8)
    laplace = model.fit_laplace()
    assert abs(laplace.loglik - exact) < 0.05
    # AGQ's maximiser is the exact ML estimate: quadrature loglik at nearby points is lower
    for db, ds in [(0.02, 0), (-0.02, 0), (0, 0.02), (0, -0.02)]:
        assert _quadrature_loglik_poisson(data, beta0 + db, sd + ds) < exact


def test_gaussian_ml_against_brute_force_integration():
    """Dyestuff ML: the marginal likelihood integrated numerically over each batch's effect."""
    data = gb.load_dataset("Dyestuff")
    fit = gb.Model("Yield ~ 1 + (1 | Batch)", data).fit_ml()
    mu, sd_b, sigma = fit.fixef["estimate"].iloc[0], fit.varcorr["sdcor"].iloc[0], fit.sigma
    total = 0.0
    for _, rows in data.groupby("Batch"):
        y = rows["Yield"].to_numpy()
        value, _ = integrate.quad(
            lambda b: np.exp(
                np.sum(stats.norm.logpdf(y, mu + b, sigma)) + stats.norm.logpdf(b, 0, sd_b) + 150  # noqa: B023 (called at once)
            ),
            -10 * sd_b,
            10 * sd_b,
            epsrel=1e-12,
            limit=200,
        )
        total += np.log(value) - 150
    np.testing.assert_allclose(fit.loglik, total, rtol=1e-9)


@pytest.mark.usefixtures("float64")
def test_map_mode_is_the_maximiser_of_the_log_joint(sleepstudy):
    """fit_map's mode equals what Nelder-Mead finds on the same unnormalised log posterior."""
    from functools import partial

    from jax.flatten_util import ravel_pytree
    from numpyro.infer.util import initialize_model

    from glmm_bayes.bayes.program import marginal_model

    model = gb.Model("Reaction ~ Days + (1 | Subject)", sleepstudy)
    fit = model.fit_map(draws=200, seed=0)
    info = initialize_model(
        jax.random.PRNGKey(0),
        partial(marginal_model, structure=model.structure),
        model_kwargs=model.model_kwargs,
    )
    x0, unravel = ravel_pytree(info.param_info.z)
    potential = jax.jit(lambda x: info.potential_fn(unravel(x)))
    plain = optimize.minimize(
        lambda x: float(potential(jnp.asarray(x))),
        np.asarray(x0),
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 40000, "maxfev": 40000},
    )
    constrained = info.postprocess_fn(unravel(jnp.asarray(plain.x)))
    # Nelder-Mead converges to ~1e-6 relative in x; compare on the constrained scale
    np.testing.assert_allclose(
        fit.population.loc["sigma", "estimate"], float(constrained["sigma"]), rtol=1e-4
    )
    np.testing.assert_allclose(
        fit.population.loc["sd((Intercept)|Subject)", "estimate"],
        float(constrained["sd((Intercept)|Subject)"]),
        rtol=1e-4,
    )
    np.testing.assert_allclose(
        fit.fixef.loc["Days", "estimate"], float(constrained["Days"]), rtol=1e-4
    )


def test_map_with_flat_priors_is_close_to_ml(sleepstudy):
    """Wide priors: the marginal posterior mode in log-sd space sits near the ML estimate; the
    Jacobian of the log transform and the priors move it by a fraction of a standard error."""
    flat = {
        "fixed": "normal(0, 1000)",
        "Intercept": "normal(0, 10000)",
        "sd": "half_normal(1000)",
        "sigma": "half_normal(1000)",
        "cor": "lkj(1)",
    }
    model = gb.Model("Reaction ~ Days + (Days | Subject)", sleepstudy, priors=flat)
    mode, ml = model.fit_map(draws=500, seed=1), model.fit_ml()
    cmp = gb.compare(mode, ml)
    se = ml.fixef["std_error"]
    for name in ["(Intercept)", "Days"]:
        assert (
            abs(cmp.loc[name, ("MAP", "estimate")] - cmp.loc[name, ("ML", "estimate")])
            < 0.05 * se[name]
        )
    for name in ["sd((Intercept)|Subject)", "sd(Days|Subject)", "sigma"]:
        np.testing.assert_allclose(
            cmp.loc[name, ("MAP", "estimate")], cmp.loc[name, ("ML", "estimate")], rtol=0.1
        )
    # the Gaussian approximation's draws have the ML standard errors' scale
    np.testing.assert_allclose(mode.fixef["sd"], se, rtol=0.15)


def test_each_model_s_prior_numbers_reach_the_shared_compiled_program(sleepstudy):
    """Prior arguments are traced data (`program.PriorValues`): models that differ only in them
    share one compiled MAP program, and each mode follows its own prior. normal(c, 0.01) on Days
    pins the mode: the likelihood's pull is (its precision / the prior's) x (10.47 - c) <= 1.6e-4
    x 8.5 < 2e-3. A numpyro distribution's numbers are traced too (its pytree leaves): it gives
    the same mode up to the optimiser's tolerance, and one with other numbers compiles nothing."""
    import numpyro  # noqa: F401  (before its subpackages: see `lazy_modules.LazyModule`)
    import numpyro.distributions as dist

    def mode(prior):
        model = gb.Model("Reaction ~ Days + (1 | Subject)", sleepstudy, priors={"Days": prior})
        return model.fit_map(draws=10).fixef.loc["Days", "estimate"]

    for centre in (2.0, 5.0):
        text = mode(f"normal({centre}, 0.01)")
        compiles, distribution = compiles_during(lambda: mode(dist.Normal(centre, 0.01)))  # noqa: B023 (called at once)
        assert abs(text - centre) < 2e-3
        np.testing.assert_allclose(distribution, text, rtol=1e-6)
        if centre == 5.0:
            assert compiles == []


def test_compare_table_and_plot(sleepstudy):
    model = gb.Model("Reaction ~ Days + (1 | Subject)", sleepstudy)
    reml, mode = model.fit_reml(), model.fit_map(draws=200)
    table = gb.compare(mode, reml)
    assert list(table.index) == ["(Intercept)", "Days", "sd((Intercept)|Subject)", "sigma"]
    assert list(table.columns.get_level_values(0).unique()) == ["MAP", "REML"]
    both = gb.compare(reml, model.fit_ml(), reml, intervals="wald")
    assert list(both.columns.get_level_values(0).unique()) == ["REML", "ML", "REML.1"]
    named = gb.compare(mode, reml, names=["mode", "restricted"])
    assert list(named.columns.get_level_values(0).unique()) == ["mode", "restricted"]
    for names in (["one"], ["same", "same"]):
        with pytest.raises(gb.ModelError, match="one per fit"):
            gb.compare(mode, reml, names=names)
    fig = gb.plot_compare(mode, reml)
    legend = gb.plot_compare(mode, reml, names=["mode", "restricted"]).axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["mode", "restricted"]
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 4
