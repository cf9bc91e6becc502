"""NUTS on every worked example: convergence and agreement with lme4's estimates.

Each fit runs 4 chains x (1000 warmup + 1000 draws). Under weak priors a posterior mean and
the ML/REML estimate differ by a fraction of a posterior sd (the posterior's skew, its average
over the variance components), so |mean - lme4| <= 1 posterior sd holds for every fixed
effect and every sd. In a balanced Gaussian design the fixed effects' estimate does not
depend on the variance components, so there the posterior mean equals lme4's estimate up to
Monte Carlo error and the prior's pull, E[V / (V + prior var)] of the estimate with V its
conditional variance: nothing for an intercept alone (its prior is centred at mean(y), the
estimate), ~(1.5 / 44)^2 ~ 1e-3 of sleepstudy's Days effect (0.3 MCSE). There the test is
within 4 MCSE, at the precision of the draws. (Irrigation's whole-plot effects rest on 8
fields: in the heavy right tail of the field sd V is large and the pull reaches 6 MCSE, while
with normal(0, 1000) priors on the fixed effects every gap is within 1.1 MCSE; penicillin's
rest on 5 blends; both are left to the 1 sd bound.)
"""

import numpy as np
import pandas as pd
import pytest
from conftest import REFERENCE, in_single_precision, reference_model

import glmm_bayes as gb

#: The default run checks a vector-valued gaussian term and a Poisson GLMM; the other examples
#: run in the slow set (-m slow), and every example's NUTS runs in its notebook.
SLOW = pytest.mark.slow
EXAMPLES = [
    pytest.param("sleep_ri_reml", marks=SLOW),
    "sleep_rs_reml",
    pytest.param("sleep_uncorr_reml", marks=SLOW),
    pytest.param("dyestuff_reml", marks=SLOW),
    pytest.param("penicillin_reml", marks=SLOW),
    pytest.param("pulp_reml", marks=SLOW),
    pytest.param("irrigation_reml", marks=SLOW),
    "rikz_poisson_laplace",
    pytest.param("salamander_laplace", marks=SLOW),
    pytest.param("ctsib_laplace", marks=SLOW),
]
R_HAT_MAX, SD_MULTIPLE = 1.01, 1.0


#: irrigation has 16 rows and 8 fixed effects: 6 residual degrees of freedom make sigma's
#: posterior slow to explore, so it gets twice the draws for the same R-hat bound
DRAWS = {"irrigation_reml": 2000}


def _fit(key):
    # small data with few groups (pulp: 4 operators) puts mass near sd = 0: a higher target
    # acceptance avoids divergences there
    return reference_model(key).sample(
        draws=DRAWS.get(key, 1000),
        warmup=1000,
        chains=4,
        seed=1,
        target_accept=0.95,
        progress=False,
    )


#: balanced Gaussian designs where beta_hat does not depend on theta and the prior's pull is
#: far below the Monte Carlo error (see the docstring)
BALANCED = {"sleep_ri_reml", "sleep_rs_reml", "sleep_uncorr_reml", "dyestuff_reml", "pulp_reml"}


@pytest.mark.parametrize("key", EXAMPLES)
def test_posterior_converges_and_agrees_with_lme4(key):
    post = _fit(key)
    diag = post.diagnostics()
    assert diag["r_hat"].max() <= R_HAT_MAX, diag
    fixef, ref = post.fixef, REFERENCE[key]
    lme4 = np.asarray(
        list(ref["fixef"].values()) if isinstance(ref["fixef"], dict) else ref["fixef"]
    )
    gap = np.abs(fixef["estimate"].to_numpy() - lme4)
    z = gap / fixef["sd"].to_numpy()
    assert np.all(z <= SD_MULTIPLE), dict(zip(fixef.index, z))
    if key in BALANCED:
        mcse = diag.loc[fixef.index, "mcse_mean"].to_numpy()
        assert np.all(gap <= 4 * mcse), dict(zip(fixef.index, gap / mcse))
    summary = post.summary()
    for row in ref["varcorr"]:
        if row.get("var2") is not None:
            continue
        name = "sigma" if row["grp"] == "Residual" else f"sd({row['var1']}|{row['grp']})"
        z = abs(summary.loc[name, "estimate"] - row["sdcor"]) / summary.loc[name, "sd"]
        assert z <= SD_MULTIPLE, (name, z)


SHORT_RUN = pytest.mark.filterwarnings("ignore:R-hat above")  # short runs only test plumbing


@SHORT_RUN
def test_same_seed_gives_identical_draws(sleepstudy):
    m = gb.Model("Reaction ~ Days + (1 | Subject)", sleepstudy)
    a = m.sample(draws=50, warmup=50, chains=2, seed=3, progress=False)
    b = m.sample(draws=50, warmup=50, chains=2, seed=3, progress=False)
    c = m.sample(draws=50, warmup=50, chains=2, seed=4, progress=False)
    np.testing.assert_array_equal(
        a.idata.posterior["Days"].values, b.idata.posterior["Days"].values
    )
    assert not np.array_equal(a.idata.posterior["Days"].values, c.idata.posterior["Days"].values)


@SHORT_RUN
def test_posterior_object_vocabulary(sleepstudy):
    post = gb.Model("Reaction ~ Days + (Days | Subject)", sleepstudy).sample(
        draws=100, warmup=100, chains=2, seed=0, progress=False
    )
    tree = post.idata
    for group in ("posterior", "sample_stats", "observed_data", "log_likelihood"):
        assert group in tree.children, group
    posterior = tree.posterior
    names = [
        "(Intercept)",
        "Days",
        "sd((Intercept)|Subject)",
        "sd(Days|Subject)",
        "cor((Intercept),Days|Subject)",
        "sigma",
    ]
    assert list(posterior.data_vars) == names + ["b(Subject)"]
    assert posterior["b(Subject)"].dims == ("chain", "draw", "Subject", "coef(Subject)")
    assert posterior["b(Subject)"].shape == (2, 100, 18, 2)
    assert list(posterior["b(Subject)"].coords["Subject"].values[:2]) == ["308", "309"]
    assert tree.log_likelihood["y"].shape == (2, 100, 180)
    assert list(post.diagnostics().columns) == ["r_hat", "ess_bulk", "ess_tail", "mcse_mean"]
    assert list(post.diagnostics().index) == [
        "(Intercept)",
        "Days",
        "sd((Intercept)|Subject)",
        "sd(Days|Subject)",
        "cor((Intercept),Days|Subject)",
        "sigma",
    ]
    vc = post.varcorr
    assert list(vc["grp"]) == ["Subject", "Subject", "Subject", "Residual"]
    # vcov of a sd row is the posterior mean of the variance: at least the squared mean sd
    assert vc["vcov"][0] >= vc["sdcor"][0] ** 2
    ranef = post.ranef["Subject"]
    assert ranef.shape == (18, 4)
    np.testing.assert_allclose(
        ranef[("condval", "Days")],
        posterior["b(Subject)"].sel({"coef(Subject)": "Days"}).mean(("chain", "draw")),
    )


def test_float32_sampling_targets_the_same_posterior():
    """dtype="float32" samples in single precision: every draw is a float32 number (float64's
    are not), and its posterior means agree with float64's within 5 Monte Carlo standard errors
    of the difference; a dtype that is neither is an error."""
    m = gb.Model("Yield ~ 1 + (1 | Batch)", gb.load_dataset("Dyestuff"))
    runs = {
        dtype: m.sample(
            draws=1000,
            warmup=500,
            chains=2,
            seed=2,
            progress=False,
            target_accept=0.95,
            dtype=dtype,
        )
        for dtype in ("float32", "float64")
    }
    draws = {dtype: post.population_draws() for dtype, post in runs.items()}
    assert all(in_single_precision(v) for v in draws["float32"].values())
    assert not any(in_single_precision(v) for v in draws["float64"].values())
    single, double = runs["float32"].summary(), runs["float64"].summary()
    for name in ("(Intercept)", "sd((Intercept)|Batch)", "sigma"):
        mcse = np.hypot(single.loc[name, "mcse_mean"], double.loc[name, "mcse_mean"])
        assert abs(single.loc[name, "estimate"] - double.loc[name, "estimate"]) < 5 * mcse, name
    with pytest.raises(gb.GlmmBayesError, match="dtype must be"):
        m.sample(draws=10, warmup=10, dtype="float16", progress=False)


def test_prior_predictive_draws(sleepstudy):
    m = gb.Model("Reaction ~ Days + (Days | Subject)", sleepstudy)
    prior = m.sample_prior(draws=200, seed=0)
    assert prior.prior_predictive["y"].shape == (1, 200, 180)
    sigma = prior.prior["sigma"].values.ravel()
    # exponential(1 / sd(y)) prior: mean sd(y); 200 draws put the sample mean within 30%
    np.testing.assert_allclose(sigma.mean(), np.std(sleepstudy["Reaction"]), rtol=0.3)


def test_user_numpyro_code_can_run_the_model(sleepstudy):
    import jax
    from numpyro.infer import MCMC, NUTS

    m = gb.Model("Reaction ~ Days + (1 | Subject)", sleepstudy)
    mcmc = MCMC(NUTS(m.numpyro_model), num_warmup=50, num_samples=50, progress_bar=False)
    mcmc.run(jax.random.PRNGKey(0), **m.model_kwargs)
    assert mcmc.get_samples()["z(Subject)"].shape == (50, 18, 1)


@pytest.mark.filterwarnings(
    "ignore:R-hat above"
)  # the non-centred run mixes slowly: MCSE covers it
@pytest.mark.slow
def test_integrated_and_sampled_random_effects_target_one_posterior(sleepstudy):
    """NUTS on the marginal program (b integrated out, then drawn exactly) and on the non-centred
    program sample the same posterior: population means agree within 4 combined MCSEs, and the
    mean of each b within 0.3 of its posterior sd (the non-centred ESS of b is ~300 here, so
    its MC error is ~0.06 sd; 0.3 sd covers the largest of 18 levels)."""
    m = gb.Model("Reaction ~ Days + (1 | Subject)", sleepstudy)
    runs = {
        mode: m.sample(
            draws=1000,
            warmup=1000,
            chains=4,
            seed=2,
            target_accept=0.95,
            progress=False,
            random_effects=mode,
        )
        for mode in ("integrate", "sample")
    }
    a, b = (runs[k].population.join(runs[k].diagnostics()) for k in ("integrate", "sample"))
    gap = np.abs(a["estimate"] - b["estimate"])
    assert np.all(gap <= 4 * np.hypot(a["mcse_mean"], b["mcse_mean"])), gap
    ra, rb = (runs[k].ranef["Subject"] for k in ("integrate", "sample"))
    np.testing.assert_array_less(np.abs(ra["condval"] - rb["condval"]), 0.3 * ra["condsd"])
    assert a["ess_bulk"].min() > b["ess_bulk"].min()


def test_integrating_random_effects_needs_a_linear_gaussian_model():
    rikz = gb.Model("Richness ~ NAP + (1|Beach)", gb.load_dataset("RIKZ"), family="poisson")
    with pytest.raises(gb.ModelError, match="identity link"):
        rikz.sample(draws=10, warmup=10, chains=1, random_effects="integrate", progress=False)
    with pytest.raises(gb.ModelError, match="random_effects must be"):
        rikz.sample(draws=10, warmup=10, chains=1, random_effects="marginal", progress=False)


def test_initial_inverse_mass_is_the_inverse_hessian_diagonal(float64):
    """The colouring by column of each z site recovers diag(H) exactly (1e-8: one Hessian-vector
    product per colour against the dense autodiff Hessian), on a crossed model with a
    two-column term; the inverse mass is 1 / H_jj where H_jj > 1 and 1 elsewhere (a toy
    potential); the energy returned with it is U(start)."""
    from functools import partial

    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree
    from numpyro.infer.util import potential_energy

    from glmm_bayes.bayes.nuts import curvature_inverse_mass, initial_point
    from glmm_bayes.bayes.program import hierarchical_model

    rng = np.random.default_rng(0)
    n = 400
    data = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "a": rng.integers(0, 12, n).astype(str),
            "c": rng.integers(0, 7, n).astype(str),
        }
    )
    data["y"] = rng.poisson(np.exp(1 + 0.3 * data["x"]))
    m = gb.Model("y ~ x + (1 + x | a) + (1 | c)", data, family="poisson")
    model = partial(hierarchical_model, structure=m.structure)
    kwargs = m.model_kwargs
    # jitted: run eagerly, the model compiles every operation on its own (~10 s)
    start = jax.jit(lambda key: initial_point(model, kwargs, key, kwargs["priors"].initial, 1.0))(
        jax.random.PRNGKey(1)
    )
    potential = jax.jit(partial(potential_energy, model, (), kwargs))
    flat, unravel = ravel_pytree(start)
    diagonal = jnp.diag(jax.jit(jax.hessian(lambda x: potential(unravel(x))))(flat))
    energy, got = jax.jit(
        partial(curvature_inverse_mass, potential, level_sites=m.structure.level_sites)
    )(start)
    np.testing.assert_allclose(float(energy), float(potential(start)), rtol=1e-12)
    assert np.all(diagonal > 1) and np.ptp(np.log(diagonal)) > 2  # curvatures differ a lot
    np.testing.assert_allclose(np.asarray(got), 1 / diagonal, rtol=1e-8)
    # weak curvature (H_jj <= 1) keeps numpyro's unit mass
    _, toy = curvature_inverse_mass(
        lambda z: 50 * z["a"] ** 2 + 0.05 * z["b"] ** 2,
        {"a": jnp.zeros(()), "b": jnp.zeros(())},
        (),
    )
    np.testing.assert_allclose(np.asarray(toy), [0.01, 1.0], rtol=1e-12)


def test_chain_starts_at_the_initial_values_where_the_jitter_has_no_density(float64):
    """A potential finite only within 0.01 of the initial value: the jittered start (U(-1, 1)
    around it) has no finite density, so every chain starts exactly there and stays in the band."""
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    from glmm_bayes.bayes.nuts import NutsSettings, run_nuts
    from glmm_bayes.core.compiled import bind

    def narrow():
        x = numpyro.sample("x", dist.Normal(0.0, 10.0))
        numpyro.factor("band", jnp.where(jnp.abs(x - 3.0) < 0.01, 0.0, -jnp.inf))

    samples, _ = run_nuts(
        bind(narrow),
        {},
        NutsSettings(draws=20, warmup=20),
        chains=2,
        seed=0,
        initial_values={"x": 3.0},
        chain_method="sequential",
        progress=False,
    )
    assert np.all(np.abs(samples["x"] - 3.0) < 0.01)


def test_auto_integrates_only_where_it_is_cheap(sleepstudy):
    """sleepstudy (one factor) and a small crossed design integrate b out; a crossed design with
    300 levels outside the largest term samples it (MAX_INTEGRATED_DENSE_BLOCK = 256)."""
    rng = np.random.default_rng(1)
    n = 3000
    big = pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "a": rng.integers(0, 400, n).astype(str),
            "c": rng.integers(0, 300, n).astype(str),
            "d": rng.integers(0, 20, n).astype(str),
        }
    )
    assert gb.Model("Reaction ~ Days + (Days | Subject)", sleepstudy)._integrates_by_default()
    assert gb.Model("y ~ 1 + (1 | a) + (1 | d)", big)._integrates_by_default()
    assert not gb.Model("y ~ 1 + (1 | a) + (1 | c)", big)._integrates_by_default()
