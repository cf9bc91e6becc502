"""The family table: log densities against numpyro's distributions, unit deviances against
twice the log-likelihood ratio to the saturated model, and a Laplace fit of each family and
link against lme4's."""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from conftest import assert_recovers_its_parameters, predicted

import glmm_bayes as gb
from glmm_bayes.families import FAMILIES, LINKS, log_sigmoid, student_t_family

pytestmark = pytest.mark.usefixtures("float64")  # calls engine functions directly

RNG = np.random.default_rng(3)
CASES = {  # family: (y, trials, mu, aux, dispersion dividing the unit deviance)
    "gaussian": (RNG.normal(size=20), np.ones(20), RNG.normal(size=20), 1.7, 1.7**2),
    "bernoulli": (
        RNG.integers(0, 2, 20).astype(float),
        np.ones(20),
        RNG.uniform(0.05, 0.95, 20),
        None,
        1.0,
    ),
    "binomial": (
        np.arange(20) % 6,
        np.full(20, 5.0) + (np.arange(20) % 6 == 5),
        RNG.uniform(0.05, 0.95, 20),
        None,
        1.0,
    ),
    "poisson": (
        RNG.poisson(3.0, 20).astype(float),
        np.ones(20),
        RNG.uniform(0.5, 6, 20),
        None,
        1.0,
    ),
    "negbinomial": (
        RNG.poisson(3.0, 20).astype(float),
        np.ones(20),
        RNG.uniform(0.5, 6, 20),
        2.5,
        1.0,
    ),
    "gamma": (RNG.gamma(2.0, 1.5, 20), np.ones(20), RNG.uniform(0.5, 6, 20), 3.0, 1 / 3.0),
    # the lognormal's mu is E[log y]
    "lognormal": (RNG.lognormal(1.0, 0.6, 20), np.ones(20), RNG.normal(1.0, 0.5, 20), 0.6, 0.36),
    "student_t": (RNG.standard_t(4.5, 20), np.ones(20), RNG.normal(size=20), 1.3, 1.0),
    "beta": (RNG.beta(2.0, 3.0, 20), np.ones(20), RNG.uniform(0.05, 0.95, 20), 6.0, 1.0),
    "beta_binomial": (
        np.arange(20) % 7,
        np.full(20, 6.0) + (np.arange(20) % 7 == 6),
        RNG.uniform(0.05, 0.95, 20),
        4.0,
        1.0,
    ),
}


def family_of(name: str):
    """The table's row; the Student-t with df = 4.5."""
    return student_t_family(4.5) if name == "student_t" else FAMILIES[name]


@pytest.mark.parametrize("name", sorted(CASES))
def test_log_density_matches_numpyro(name):
    """logpdf + log_norm (the data-only terms, computed once per dataset) is the full density
    (the lognormal's logpdf is the normal density of log y, log_norm its Jacobian)."""
    family = family_of(name)
    link = LINKS[family.default_link]
    y, n, mu, aux, _ = CASES[name]
    eta = jnp.asarray(link.link(mu))
    on_scale = jnp.asarray(family.on_location_scale(y))  # log y for the lognormal
    ours = family.logpdf(on_scale, eta, aux, jnp.asarray(n), link) + family.log_norm(y, n)
    theirs = family.distribution(jnp.asarray(mu), aux, jnp.asarray(n)).log_prob(jnp.asarray(y))
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(CASES))
def test_unit_deviance_is_the_saturated_log_likelihood_ratio(name):
    """d(y, mu) / dispersion = 2 [log p(y | mu = y) - log p(y | mu)], away from y on a boundary
    (the lognormal's: d of y and E[y], the saturated location log y)."""
    family, identity = family_of(name), LINKS["identity"]
    y, n, mu, aux, dispersion = CASES[name]
    inside = (y > 0) & (y < n) if family.uses_trials else (y > 0)
    y, n, mu = y[inside], n[inside], mu[inside]
    saturated = y / n if family.uses_trials else family.on_location_scale(y)
    mean = mu if family.response_mean is None else family.response_mean(mu, 0.0, aux)
    on_scale = jnp.asarray(family.on_location_scale(y))
    logp = lambda m: np.asarray(
        family.logpdf(on_scale, jnp.asarray(m), aux, jnp.asarray(n), identity)
    )
    deviance = np.asarray(
        family.unit_deviance(jnp.asarray(y), jnp.asarray(mean), jnp.asarray(n), aux)
    )
    np.testing.assert_allclose(deviance / dispersion, 2 * (logp(saturated) - logp(mu)), rtol=1e-9)


def test_the_fused_log_sigmoid_has_exact_derivatives_of_every_order():
    """log_sigmoid's hand-written derivative shares one exp with its value; its first three
    derivatives (Laplace differentiates the curvature, a second derivative, once more) equal
    autodiff of jax.nn.log_sigmoid, also at 0 where |x| has no derivative, and far out."""
    x = jnp.array([-40.0, -3.0, -1e-3, 0.0, 1e-3, 0.7, 5.0, 40.0])
    mine, reference = log_sigmoid, jax.nn.log_sigmoid
    for _ in range(4):
        np.testing.assert_allclose(
            jax.vmap(mine)(x), jax.vmap(reference)(x), rtol=1e-12, atol=1e-300
        )
        mine, reference = jax.grad(mine), jax.grad(reference)
    # reverse over forward, as the sampler's gradient of a jvp-based density would do
    np.testing.assert_allclose(
        jax.vmap(jax.grad(lambda v: jax.jvp(log_sigmoid, (v,), (1.0,))[1]))(x),
        jax.vmap(jax.grad(jax.grad(jax.nn.log_sigmoid)))(x),
        rtol=1e-12,
    )


@pytest.mark.parametrize("link_name", ["logit", "probit", "cloglog"])
def test_binomial_fisher_weight_is_finite_in_the_tails(link_name):
    """w = n (dmu/deta)^2 / (mu (1 - mu)): equal to the direct formula where that is accurate
    (|eta| <= 2, where 1 - mu >= 6e-4 under every link: 1e-10 relative), finite with a finite
    derivative out to |eta| = 700, where the direct formula gives 0 / 0 or x / 0 once 1 - mu
    rounds to 0 (a separated fit's fixed effects run there: the Laplace fit's Hessian came
    back NaN)."""
    family, link = FAMILIES["binomial"], LINKS[link_name]
    n = jnp.full(7, 3.0)
    eta = jnp.linspace(-2.0, 2.0, 7)
    mu = link.inverse(eta)
    np.testing.assert_allclose(
        family.fisher_weight(eta, None, n, link),
        n * link.mu_eta(eta) ** 2 / (mu * (1 - mu)),
        rtol=1e-10,
    )
    tails = jnp.array([-700.0, -200.0, -40.0, 40.0, 200.0, 700.0])
    weight = family.fisher_weight(tails, None, jnp.ones(6), link)
    slope = jax.vmap(jax.grad(lambda e: family.fisher_weight(e, None, 1.0, link)))(tails)
    assert np.all(np.isfinite(weight)) and np.all(np.asarray(weight) >= 0)
    assert np.all(np.isfinite(slope))


LME4 = json.loads((Path(__file__).parent / "reference" / "lme4_families.json").read_text())
FAMILIES_DATA = pd.read_csv(Path(__file__).parent / "reference" / "data" / "families_sim.csv")
FITS = {  # key of lme4_families.json: (formula, family, link)
    "logit": ("logit ~ x + z + (1 | g)", "bernoulli", None),
    "probit": ("probit ~ x + z + (1 | g)", "bernoulli", "probit"),
    "cloglog": ("cloglog ~ x + z + (1 | g)", "bernoulli", "cloglog"),
    "binomial": ("cbind(k, fail) ~ x + z + (x || g)", "binomial", None),
    "poisson": ("counts ~ x + z + (x | g)", "poisson", None),
    "exposure": ("exposed ~ x + z + offset(log(t)) + (1 | g)", "poisson", None),
    "negbinomial": ("nb ~ x + z + (1 | g)", "negbinomial", None),
}


@pytest.mark.parametrize("key", sorted(FITS))
def test_laplace_fit_of_each_family_and_link_matches_lme4(key):
    """glmer (glmer.nb for the negative binomial) on one simulated design with tolPwrss 1e-12.
    Seen: logLik within 7e-9 relative, fixed effects within 8e-6 absolute, sds 2.1e-5 and SEs
    1e-5 relative (the negative binomial's 3.1e-4: glmer.nb's vcov holds the shape fixed, ours
    is the joint Hessian's), shape 8e-7. What is left is where lme4's outer optimiser stops
    (Nelder-Mead on the deviance, tolerance ~1e-6 relative change: estimates to ~1e-5); asserted
    about 3x what is seen: logLik 3e-8 relative, fixed effects 3e-5 absolute, SEs 3e-5 (the
    negative binomial's 1e-3) and sds 6e-5 relative, the shape 5e-6."""
    formula, family, link = FITS[key]
    ref = LME4[key]
    fit = gb.Model(formula, FAMILIES_DATA, family=family, link=link).fit_laplace()
    np.testing.assert_allclose(fit.loglik, ref["logLik"], rtol=3e-8)
    np.testing.assert_allclose(fit.fixef["estimate"], list(ref["fixef"].values()), atol=3e-5)
    np.testing.assert_allclose(
        fit.fixef["std_error"],
        list(ref["se"].values()),
        rtol=1e-3 if key == "negbinomial" else 3e-5,
    )
    np.testing.assert_allclose(fit.varcorr["sdcor"], np.atleast_1d(ref["sdcor"]), rtol=6e-5)
    if key == "negbinomial":
        np.testing.assert_allclose(fit.population.loc["shape", "estimate"], ref["shape"], rtol=5e-6)


IDIOMS = json.loads((Path(__file__).parent / "reference" / "lme4_idioms.json").read_text())


def test_binomial_idioms_of_glm_and_glmer():
    """glmer(incidence / size ~ period + (1 | herd), weights = size, family = binomial): the
    weights are the trials (lme4_idioms.R; equal to the cbind() fit there). Once refused; now
    equal to lme4 as the cbind() fits are (test above: logLik 3e-8, fixed effects 3e-5, SEs
    3e-5, sd 6e-5). A 0/1 response with family='binomial' is Bernoulli (was refused): the
    same fit as family='bernoulli'."""
    data = pd.read_csv(
        Path(__file__).parent / "reference" / "data" / "cbpp.csv",
        dtype={"herd": str, "period": str},
    )
    ref = IDIOMS["proportion_weights"]
    fit = gb.Model(
        "proportion ~ period + (1 | herd)",
        data.assign(proportion=data.incidence / data["size"]),
        family="binomial",
        weights="size",
    ).fit_laplace()
    np.testing.assert_allclose(fit.loglik, ref["logLik"], rtol=3e-8)
    np.testing.assert_allclose(fit.fixef["estimate"], list(ref["fixef"].values()), atol=3e-5)
    np.testing.assert_allclose(fit.fixef["std_error"], list(ref["se"].values()), rtol=3e-5)
    np.testing.assert_allclose(fit.varcorr["sdcor"], [ref["sdcor"]], rtol=6e-5)
    counts = gb.Model(
        "cbind(incidence, size - incidence) ~ period + (1 | herd)", data, family="binomial"
    ).fit_laplace()
    np.testing.assert_allclose(counts.loglik, fit.loglik, rtol=1e-12)
    binary = gb.Model("logit ~ x + z + (1 | g)", FAMILIES_DATA, family="binomial").fit_laplace()
    np.testing.assert_allclose(binary.loglik, LME4["logit"]["logLik"], rtol=3e-8)
    with pytest.raises(gb.DataError, match="not a whole number of successes"):
        gb.Model(
            "proportion ~ period + (1 | herd)",
            data.assign(proportion=0.3, size=data["size"]),
            family="binomial",
            weights="size",
        )
    with pytest.raises(gb.DataError, match="needs its trials"):
        gb.Model("size ~ period + (1 | herd)", data, family="binomial")


NAGQ0 = {
    "nagq0_cbpp": ("cbind(incidence, size - incidence) ~ period + (1 | herd)", "cbpp", "binomial"),
    "nagq0_salamander": ("Mate ~ 0 + Cross + (1 | Female) + (1 | Male)", "salamander", "bernoulli"),
    "nagq0_rikz": ("Richness ~ NAP + (1 | Beach)", "RIKZ", "poisson"),
}


@pytest.mark.parametrize("key", list(NAGQ0))
def test_nagq0_puts_beta_inside_pirls_as_glmer(key):
    """glmer(nAGQ = 0) (lme4_idioms.R, tolPwrss 1e-12): the deviance at the joint mode of
    (beta, u), optimised over theta alone. Measured: logLik within 2e-7 (salamander; 1e-9
    relative), beta 2e-7, SEs and sds 8e-7 relative; asserted with a few times that room
    (lme4 stops at ~1e-6 relative change of its criterion). The Laplace fit's logLik differs by
    0.005 (RIKZ) to 0.64 (salamander), so a Laplace fit in its place fails."""
    formula, dataset, family = NAGQ0[key]
    data = (
        pd.read_csv(
            Path(__file__).parent / "reference" / "data" / "cbpp.csv",
            dtype={"herd": str, "period": str},
        )
        if dataset == "cbpp"
        else gb.load_dataset(dataset)
    )
    model = gb.Model(formula, data, family=family)
    fit, laplace = model.fit_laplace(nagq=0), model.fit_laplace()
    ref = IDIOMS[key]
    assert fit.method == "Laplace(nAGQ=0)"
    np.testing.assert_allclose(fit.loglik, ref["logLik"], atol=1e-6)
    assert abs(laplace.loglik - fit.loglik) > 1e-3
    np.testing.assert_allclose(fit.fixef["estimate"], list(ref["fixef"].values()), atol=1e-6)
    np.testing.assert_allclose(fit.fixef["std_error"], list(ref["se"].values()), rtol=3e-6)
    np.testing.assert_allclose(fit.varcorr["sdcor"], np.atleast_1d(ref["sdcor"]), rtol=3e-6)
    assert fit.refit(model).loglik == pytest.approx(fit.loglik, rel=1e-10)


def test_nagq0_is_refused_where_glmer_has_no_such_fit():
    with pytest.raises(gb.ModelError, match="nagq=0.*shape"):
        gb.Model(
            "Richness ~ NAP + (1 | Beach)", gb.load_dataset("RIKZ"), family="negbinomial"
        ).fit_laplace(nagq=0)
    with pytest.raises(gb.ModelError, match="non-negative integer"):
        gb.Model(
            "Richness ~ NAP + (1 | Beach)", gb.load_dataset("RIKZ"), family="poisson"
        ).fit_laplace(nagq=-1)


GLMMTMB = json.loads((Path(__file__).parent / "reference" / "glmmtmb_families.json").read_text())
PROPORTIONS = pd.read_csv(Path(__file__).parent / "reference" / "data" / "proportions_sim.csv")
TRIALS = pd.read_csv(Path(__file__).parent / "reference" / "data" / "trials_sim.csv")
CONTINUOUS = pd.read_csv(Path(__file__).parent / "reference" / "data" / "continuous_sim.csv")
GLMMTMB_FITS = {  # key of glmmtmb_families.json: (formula, family, link, data)
    "beta_logit": ("y_logit ~ x + (1 | g)", "beta", None, PROPORTIONS),
    "beta_probit": ("y_probit ~ x + (x | g)", "beta", "probit", PROPORTIONS),
    "beta_binomial": ("cbind(k, fail) ~ x + (1 | g)", "beta_binomial", None, TRIALS),
    "beta_binomial_slopes": ("cbind(k, fail) ~ x + (x | g)", "beta_binomial", None, TRIALS),
    "lognormal_sleepstudy": (
        "Reaction ~ Days + (Days | Subject)",
        "lognormal",
        None,
        gb.load_dataset("sleepstudy"),
    ),
    "lognormal_slopes": ("y_lognormal ~ x + (x | g)", "lognormal", None, CONTINUOUS),
    # df estimated, or fixed at 4 (student_t_df4) as glmmTMB's fit
    "student_t": ("y_t ~ x + (1 | g)", "student_t", None, CONTINUOUS),
    "student_t_df4": ("y_t ~ x + (1 | g)", "student_t", None, CONTINUOUS),
    "student_t_sleepstudy": (
        "Reaction ~ Days + (Days | Subject)",
        "student_t",
        None,
        gb.load_dataset("sleepstudy"),
    ),
}


_FITTED: dict = {}


def glmmtmb_fit(key: str):
    """The Laplace fit of a GLMMTMB_FITS model, made once per session."""
    if key not in _FITTED:
        _FITTED[key] = glmmtmb_model(key).fit_laplace()
    return _FITTED[key]


def glmmtmb_model(key: str, **kwargs) -> gb.Model:
    formula, family, link, data = GLMMTMB_FITS[key]
    ref = GLMMTMB[key]
    df = ref["df"] if "df" in ref and not ref["df_estimated"] else None  # as glmmTMB's fit
    return gb.Model(formula, data, family=family, link=link, df=df, **kwargs)


@pytest.mark.parametrize("key", sorted(GLMMTMB_FITS))
def test_laplace_fit_of_the_glmmtmb_families_matches_glmmtmb(key):
    """glmmTMB 1.1.5, whose Laplace approximation uses the observed curvature of the log density
    (`Family.observed_curvature`; the Fisher weight differs from it under the beta families).
    Seen: logLik within 1e-11 relative; beta: fixed effects, SEs, sds, correlation and phi
    within 4e-7; beta-binomial: within 1.8e-5 (1.4e-6 absolute for an intercept of 0.09), where
    glmmTMB's optimiser stops with the logLik flat to 1e-11. The lognormal against glmmTMB's ML
    fit of log y (its logLik less sum(log y)), where Laplace is exact. The Student-t with df
    estimated (18.4 on the simulated data, 2.9 on sleepstudy) or fixed at 4 (psi mapped).
    Seen within 4e-7 but for sleepstudy's correlation of -0.084 (5.8e-6 absolute: glmmTMB's
    optimiser stopping at a logLik flat to 1e-10). Asserted: logLik
    1e-10, the rest 5e-5 relative (1e-5 absolute for the fixed effects and correlations);
    issue 30 asks 1e-5 and 1e-3."""
    ref = GLMMTMB[key]
    fit = glmmtmb_fit(key)
    np.testing.assert_allclose(fit.loglik, ref["logLik"], rtol=1e-10)
    fixef = list(ref["fixef"].values())
    np.testing.assert_allclose(fit.fixef["estimate"], fixef, rtol=5e-5, atol=1e-5)
    np.testing.assert_allclose(fit.fixef["std_error"], list(ref["se"].values()), rtol=5e-5)
    population = fit.population["estimate"]
    sds = population[[n for n in population.index if n.startswith("sd(")]]
    np.testing.assert_allclose(sds, np.atleast_1d(ref["sd"]), rtol=5e-5)
    cors = population[[n for n in population.index if n.startswith("cor(")]]
    np.testing.assert_allclose(cors, np.atleast_1d(ref["cor"]), rtol=5e-5, atol=1e-5)
    for name in fit.spec.family.aux_names:  # phi, sigma; the Student-t's df where estimated
        np.testing.assert_allclose(population[name], ref[name], rtol=5e-5)


@pytest.mark.parametrize(
    "key", ["beta_logit", "beta_binomial", "lognormal_slopes", "student_t_df4"]
)
def test_fits_of_the_new_families_recover_their_simulated_parameters(key):
    """40 responses simulated from the fit and fitted again (`assert_recovers_its_parameters`:
    within 4 Monte Carlo sds). ML's bias in the sd with 25-30 groups (a few %) is well inside
    that."""
    assert_recovers_its_parameters(glmmtmb_fit(key), 40)


@pytest.mark.parametrize(
    "key", ["beta_logit", "beta_binomial", "lognormal_slopes", "student_t_df4"]
)
def test_predictions_of_the_new_families_are_the_mean_of_simulated_responses(key):
    """predict() on the response scale is E[y | b] (a proportion of the trials for the
    beta-binomial, exp(mu + sigma^2 / 2) for the lognormal); 2,000 responses simulated given the
    conditional modes (re_form=None) average to it within 4.5 Monte Carlo sds per row, the sd
    being sqrt(Var(y) / 2000) from the family's variance (240-300 rows: a false alarm in ~0.2%
    of seeds)."""
    fit = glmmtmb_fit(key)
    spec = fit.spec
    aux = fit.model.parameters.aux_from_sites(fit.population["estimate"], np)
    mu = predicted(fit)
    mean = fit.simulate(2000, seed=2, re_form=None).to_numpy().mean(axis=1) / spec.trials
    at = spec.link.inverse(predicted(fit, scale="link"))  # the variance's argument
    variance = np.asarray(spec.family.variance(at, aux, spec.trials)) / spec.trials**2
    assert np.all(np.abs(mean - mu) < 4.5 * np.sqrt(variance / 2000))


def test_beta_binomial_takes_successes_of_trials_and_refuses_a_proportion_alone():
    """As the binomial family: cbind(successes, failures), or a proportion with the trials as
    weights; the two give one fit."""
    data = TRIALS.assign(
        p=TRIALS["k"] / (TRIALS["k"] + TRIALS["fail"]), n=TRIALS["k"] + TRIALS["fail"]
    )
    counts = gb.Model("cbind(k, fail) ~ x + (1 | g)", data, family="beta_binomial").fit_laplace()
    weighted = gb.Model("p ~ x + (1 | g)", data, family="beta_binomial", weights="n")
    np.testing.assert_allclose(weighted.fit_laplace().loglik, counts.loglik, rtol=1e-10)
    with pytest.raises(gb.DataError):
        gb.Model("p ~ x + (1 | g)", data, family="beta_binomial")


def test_a_beta_response_outside_the_open_unit_interval_or_a_wrong_prior_is_refused():
    for bad in (0.0, 1.0, 1.5):
        data = PROPORTIONS.copy()
        data.loc[7, "y_logit"] = bad
        with pytest.raises(
            gb.DataError, match=r"beta response 'y_logit'.*strictly between 0 and 1"
        ):
            gb.Model("y_logit ~ x + (1 | g)", data, family="beta")
    with pytest.raises(gb.PriorError, match="'phi' must be on positive values"):
        gb.Model(
            "y_logit ~ x + (1 | g)", PROPORTIONS, family="beta", priors={"phi": "normal(1, 5)"}
        )
    with pytest.raises(gb.PriorError, match="no parameter matches prior key 'shape'"):
        gb.Model(
            "y_logit ~ x + (1 | g)", PROPORTIONS, family="beta", priors={"shape": "gamma(2, 1)"}
        )


def test_a_lognormal_model_is_the_gaussian_model_of_log_y():
    """REML, ML and the exact RLRT of the lognormal family equal the gaussian family's on log y
    (estimates to 1e-9), with log L lower by sum(log y), the Jacobian; E[y] is exp(mu + sigma^2
    / 2); a residual structure and non-positive y are refused."""
    data = CONTINUOUS.assign(log_y=np.log(CONTINUOUS["y_lognormal"]))
    lognormal = gb.Model("y_lognormal ~ x + (1 | g)", data, family="lognormal")
    gaussian = gb.Model("log_y ~ x + (1 | g)", data)
    jacobian = np.sum(np.log(data["y_lognormal"]))
    for method in ("fit_reml", "fit_ml"):
        ours, theirs = getattr(lognormal, method)(), getattr(gaussian, method)()
        np.testing.assert_allclose(ours.loglik, theirs.loglik - jacobian, rtol=1e-12)
        np.testing.assert_allclose(
            ours.population["estimate"], theirs.population["estimate"], rtol=1e-9
        )
        sigma = ours.population.loc["sigma", "estimate"]
        np.testing.assert_allclose(predicted(ours), np.exp(predicted(theirs) + sigma**2 / 2))
    ours, theirs = (
        gb.exact_rlrt(lognormal.fit_reml(), nsim=1000),
        gb.exact_rlrt(gaussian.fit_reml(), nsim=1000),
    )
    np.testing.assert_allclose(ours.statistic, theirs.statistic, rtol=1e-9)
    with pytest.raises(gb.ModelError, match="applies to gaussian models.*log\\(y\\)"):
        gb.Model(
            "y_lognormal ~ x + (1 | g)", data, family="lognormal", correlation=gb.AR1(group="g")
        )
    with pytest.raises(gb.DataError, match="'y_lognormal' must be positive"):
        gb.Model("y_lognormal ~ x + (1 | g)", data.assign(y_lognormal=-data["x"]), "lognormal")


#: each family parameter's prior overridden by its class
PARAMETER_PRIOR = {
    "beta_logit": {"phi": "gamma(0.01, 0.01)"},
    "lognormal_slopes": {"sigma": "exponential(1)"},
    "student_t_df4": {"sigma": "exponential(1)"},
}


def test_a_fixed_df_must_be_positive_and_only_the_student_t_takes_one():
    data = CONTINUOUS
    for kwargs, message in (
        ({"family": "student_t", "df": 0}, "df must be a positive number, got 0"),
        ({"family": "t", "df": "4"}, "df must be a positive number, got '4'"),
        ({"family": "gaussian", "df": 4}, "df= applies to family 'student_t', not 'gaussian'"),
    ):
        with pytest.raises(gb.FamilyError, match=message):
            gb.Model("y_t ~ x + (1 | g)", data, **kwargs)


@pytest.mark.slow
@pytest.mark.parametrize("key", sorted(PARAMETER_PRIOR))
def test_nuts_on_a_new_family_agrees_with_its_laplace_fit(key):
    """NUTS with the default priors (weak beside 240-300 rows) against glmmTMB's Laplace
    estimates (checked equal to ours above): each posterior mean within 1 posterior sd of the
    ML estimate (the gap is the posterior's skew and the prior, a fraction of an sd), and the
    family parameter's prior overridden by class."""
    model = glmmtmb_model(key, priors=PARAMETER_PRIOR[key])
    post = model.sample(seed=1, progress=False)
    assert post.diagnostics()["r_hat"].max() < 1.01
    table = post.population
    gap = (table["estimate"] - glmmtmb_fit(key).population["estimate"]).abs()
    assert (gap < table["sd"]).all(), gap
