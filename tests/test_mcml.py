"""Monte Carlo maximum likelihood: the glmm package's salamander estimates, adaptive quadrature
where it applies, and a refusal where the importance weights collapse."""

import json
from pathlib import Path

import numpy as np
import pytest

import glmm_bayes as gb

GLMM = json.loads((Path(__file__).parent / "reference" / "glmm_salamander.json").read_text())


@pytest.mark.slow
def test_mcml_reproduces_the_glmm_package_on_the_salamander_data():
    """Crossed Female and Male intercepts (120 effects), m = 10^5 as the material's fit. Both
    fits are Monte Carlo estimates with errors of similar size (ours, `mcse`, 0.006 for the
    fixed effects and ~0.015 for the variances; glmm's is not printed): each gap within 4 sds
    of the difference of two such estimates, 4 sqrt(2) mcse, and the printed values' rounding
    (0.005 for the variances). Seen: gaps of 1.0-1.6 mcse."""
    model = gb.Model(
        "Mate ~ 0 + Cross + (1 | Female) + (1 | Male)",
        gb.load_dataset("salamander"),
        family="bernoulli",
    )
    fit = model.fit_mcml(m=100_000, seed=1)
    estimates, mcse = fit.population["estimate"], fit.mcse
    for name, value in GLMM["fixef"].items():
        assert abs(estimates[name] - value) < 4 * np.sqrt(2) * mcse[name], name
    for factor, value in GLMM["variance"].items():
        name = f"sd((Intercept)|{factor})"
        variance, variance_mcse = estimates[name] ** 2, 2 * estimates[name] * mcse[name]
        assert abs(variance - value) < 4 * np.sqrt(2) * variance_mcse + 0.005, factor
    assert fit.ess > 1000 and fit.m >= 100_000


def test_mcml_agrees_with_adaptive_quadrature_where_it_applies():
    """One scalar term (RIKZ's beaches): 25-node adaptive quadrature is the likelihood to
    ~1e-8, so MCML must land within its own Monte Carlo error of it: every estimate within
    4 mcse (seen: 1.8 at most). The usual SEs are Laplace's to 10% (the same likelihood's
    curvature, up to Monte Carlo error and Laplace's own)."""
    model = gb.Model("Richness ~ NAP + (1 | Beach)", gb.load_dataset("RIKZ"), family="poisson")
    fit = model.fit_mcml(seed=1)
    agq = model.fit_laplace(nagq=25)
    gap = (fit.population["estimate"] - agq.population["estimate"]).abs()
    assert (gap < 4 * fit.mcse).all(), gap / fit.mcse
    np.testing.assert_allclose(fit.fixef["std_error"], agq.fixef["std_error"], rtol=0.1)
    assert list(fit.mcse.index) == list(fit.population.index)
    assert "Monte Carlo ML" in str(fit)


def test_mcml_refuses_models_it_cannot_fit_and_collapsed_weights():
    sleep = gb.load_dataset("sleepstudy").assign(slow=lambda d: (d["Reaction"] > 300) * 1)
    with pytest.raises(gb.ModelError, match="scalar random-effect terms"):
        gb.Model("slow ~ Days + (Days | Subject)", sleep, family="bernoulli").fit_mcml()
    ticks = gb.Model("Richness ~ NAP + (1 | Beach)", gb.load_dataset("RIKZ"), family="negbinomial")
    with pytest.raises(gb.ModelError, match="without a dispersion parameter"):
        ticks.fit_mcml()
    # ctsib: 40 subjects with a random-intercept sd near 3, many of them always (or never)
    # stable; the Laplace conditional distributions are poor proposals there
    ctsib = gb.Model(
        "I(CTSIB == 1) ~ Sex + Age + Height + Weight + Surface + Vision + (1 | Subject)",
        gb.load_dataset("ctsib"),
        family="bernoulli",
    )
    with pytest.raises(gb.FitError, match="importance weights collapsed"):
        ctsib.fit_mcml(m=2000, seed=1)
