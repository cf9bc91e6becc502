"""Exact (restricted) likelihood-ratio tests of one variance component against RLRsim 3.1-8
(tests/reference/rlrsim_extra.R): the statistics, the p-values within Monte Carlo error, and
the whole simulated null distributions."""

import json
from pathlib import Path

import numpy as np
import pytest

import glmm_bayes as gb

RLRSIM = json.loads((Path(__file__).parent / "reference" / "rlrsim_extra.json").read_text())
NSIM = 1_000_000  # as the reference: a p-value's Monte Carlo sd is <= 5e-4 on either side
CASES = {  # key of rlrsim_extra.json: (formula, dataset, test)
    "rlrt_irrigation": ("yield ~ irrigation * variety + (1 | field)", "irrigation", "exact_rlrt"),
    "rlrt_pulp": ("bright ~ 1 + (1 | operator)", "pulp", "exact_rlrt"),
    "lrt_pulp": ("bright ~ 1 + (1 | operator)", "pulp", "exact_lrt"),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    formula, dataset, test = CASES[request.param]
    fit = gb.Model(formula, gb.load_dataset(dataset)).fit_reml()
    return RLRSIM[request.param], getattr(gb, test)(fit, nsim=NSIM, seed=1)


def test_the_statistic_is_rlrsims(case):
    """2 (logLik - logLik of the linear model), REML or ML as RLRsim takes them: seen equal to
    2e-10 relative (both fits' optimisers stop within 1e-10 of the optimum); asserted 1e-7."""
    ref, test = case
    np.testing.assert_allclose(test.statistic, ref["statistic"], rtol=1e-7)


def test_the_p_value_agrees_within_monte_carlo_error(case):
    """Two independent estimates from 1e6 simulations each: their difference has sd
    sqrt(2 p (1 - p) / 1e6); within 4 of them. Irrigation's RLRT = 6.11 gives p ~ 0.0095 (the
    course material: 0.0103 from RLRsim's default 10,000 simulations)."""
    ref, test = case
    p = ref["p_value"]
    assert abs(test.p_value - p) < 4 * np.sqrt(2 * p * (1 - p) / NSIM)
    assert test.mcse == pytest.approx(np.sqrt(test.p_value * (1 - test.p_value) / NSIM))


def test_the_null_distribution_is_rlrsims(case):
    """The whole simulated distribution, not one tail: the mass at 0 and our CDF at each of
    RLRsim's quantiles (probs 0.75 ... 0.99; the median is 0, inside the point mass) equal to
    theirs within 4 sds of the difference of two empirical proportions."""
    ref, test = case
    sd = lambda q: np.sqrt(2 * q * (1 - q) / NSIM)  # noqa: E731
    at_zero = float(np.mean(test.null == 0))
    assert abs(at_zero - ref["at_zero"]) < 4 * sd(ref["at_zero"])
    for prob, quantile in zip(RLRSIM["probs"], ref["quantiles"]):
        if quantile > 0:
            assert abs(np.mean(test.null <= quantile) - prob) < 4 * sd(prob), prob


def test_an_exact_test_is_reproducible_and_refuses_what_it_cannot_test():
    fit = gb.Model("bright ~ 1 + (1 | operator)", gb.load_dataset("pulp")).fit_ml()
    first, again = (gb.exact_rlrt(fit, nsim=5000, seed=3) for _ in range(2))
    np.testing.assert_array_equal(first.null, again.null)
    assert first.method == "RLRT" and "RLRT = 3.4701" in str(first)
    other = gb.exact_rlrt(fit, nsim=5000, seed=4)
    assert not np.array_equal(first.null, other.null)
    sleep = gb.load_dataset("sleepstudy")
    for formula in (
        "Reaction ~ Days + (Days | Subject)",
        "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)",
    ):
        with pytest.raises(gb.ModelError, match="only random effect is one variance component"):
            gb.exact_rlrt(gb.Model(formula, sleep).fit_reml(), nsim=10)
    counts = gb.Model("Richness ~ NAP + (1 | Beach)", gb.load_dataset("RIKZ"), family="poisson")
    with pytest.raises(gb.ModelError, match="linear gaussian models"):
        gb.exact_lrt(counts.fit_laplace(), nsim=10)
    with pytest.raises(gb.GlmmBayesError, match="nsim"):
        gb.exact_rlrt(fit, nsim=0)
