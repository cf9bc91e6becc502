"""Batch jobs: one design, many responses (simulation studies, parametric bootstrap)."""

import jax
import numpy as np
import pandas as pd
import pytest
from conftest import in_single_precision

import glmm_bayes as gb

FORMULA = "Reaction ~ Days + (Days | Subject)"


@pytest.fixture(scope="module")
def sleep_model():
    return gb.Model(FORMULA, gb.load_dataset("sleepstudy"))


@pytest.fixture(scope="module")
def responses(sleep_model):
    rng = np.random.default_rng(5)
    y = sleep_model.spec.y
    return np.stack([y + rng.normal(0, 15, y.size) for _ in range(4)])


def test_reml_batch_equals_fresh_single_fits(sleep_model, responses):
    """The batch searches side by side (`core.batch_optimize`: BFGS) and a single fit searches
    alone (L-BFGS-B); both stop at a scaled gradient below 1e-9 or a relative decrease below
    1e-15 of a deviance near 1,700, so their end points differ by up to about
    sqrt(2e-15 * 1700) ~ 2e-6 in the scaled coordinates: estimates agree to 1e-5 relative, the
    log-likelihood (flat there) to 1e-12. Responses in other units (1e-3 and 1e4 times the
    reaction times) search in the same scaled coordinates and agree as well."""
    data = gb.load_dataset("sleepstudy")
    for scaled in (responses, np.vstack([1e-3 * responses[:1], 1e4 * responses[1:2] + 5e5])):
        batch = sleep_model.fit_reml_batch(scaled, progress=False)
        assert batch.status["converged"].all()
        assert {f.estimate.opt.optimizer for f in batch.fits} == {"BFGS (batched)"}
        summary = batch.summary()
        for d in (0, len(scaled) - 1):
            single = gb.Model(FORMULA, data.assign(Reaction=scaled[d])).fit_reml()
            assert batch.fits[d].loglik == pytest.approx(single.loglik, rel=1e-12)
            estimates = summary.loc[d, "estimate"]
            for name, value in single._estimates().items():
                assert estimates[name] == pytest.approx(value, rel=1e-5, abs=1e-9)


def test_batch_status_flags_each_dataset_and_the_input_is_checked(sleep_model, responses):
    # no subject effects at all: this response's REML fit has a zero diagonal of T (singular)
    flat = 10.0 * sleep_model.spec.data["Days"].to_numpy() + np.random.default_rng(1).normal(
        0, 30, 180
    )
    frame = pd.DataFrame({f"sim{d}": y for d, y in enumerate([responses[0], flat])})
    status = sleep_model.fit_reml_batch(frame, progress=False).status
    assert not status.loc[0, "singular"] and status.loc[1, "singular"]
    assert "singular" in status.loc[1, "warnings"]
    # the singular response's search ended on the edge: it was refitted alone (restart_edge)
    fits = sleep_model.fit_reml_batch(frame, progress=False).fits
    assert [f.estimate.opt.optimizer for f in fits] == ["BFGS (batched)", "L-BFGS-B"]
    with pytest.raises(gb.DataError, match=r"shape \(datasets, 180\)"):
        sleep_model.fit_reml_batch(responses[:, :-1], progress=False)
    bad = responses.copy()
    bad[2, 7] = np.nan
    with pytest.raises(gb.DataError, match=r"dataset 2"):
        sleep_model.fit_reml_batch(bad, progress=False)


def test_laplace_batch_checks_counts_and_matches_single_fits():
    rikz = gb.load_dataset("RIKZ")
    m = gb.Model("Richness ~ NAP + (1 | Beach)", rikz, family="poisson")
    rng = np.random.default_rng(2)
    counts = rng.poisson(np.maximum(m.spec.y, 0.5), size=(2, m.spec.n_obs)).astype(float)
    batch = m.fit_laplace_batch(counts, progress=False)
    single = gb.Model(
        "Richness ~ NAP + (1 | Beach)", rikz.assign(Richness=counts[1]), family="poisson"
    ).fit_laplace()
    assert batch.fits[1].loglik == pytest.approx(single.loglik, rel=1e-12)
    counts[1, 3] = -1
    with pytest.raises(gb.DataError, match=r"dataset 1.*non-negative"):
        m.fit_laplace_batch(counts, progress=False)


@pytest.mark.slow
def test_sample_batch_draws_depend_only_on_the_dataset_and_agree_with_single_runs(
    sleep_model, responses
):
    """Dataset d's draws are the same in a batch of 2 and of 3 (same seed); the posterior means
    of a batch dataset agree with `sample` on that response within Monte Carlo error (5 MCSE
    of the difference, the MCSE from each run's ESS)."""
    kwargs = dict(draws=300, warmup=300, chains=4, seed=9, progress=False)
    two = sleep_model.sample_batch(responses[:2], **kwargs)
    three = sleep_model.sample_batch(responses[:3], **kwargs)
    np.testing.assert_allclose(two.draws("sigma"), three.draws("sigma")[:2], rtol=1e-9)
    single = sleep_model._with_response(responses[1]).sample(
        draws=1000, warmup=500, chains=4, seed=3, progress=False, log_likelihood=False
    )
    batch = three.summary().loc[1]
    reference = single.summary()
    for name in ("(Intercept)", "Days", "sd((Intercept)|Subject)", "sigma"):
        mcse = np.hypot(
            batch.loc[name, "sd"] / np.sqrt(batch.loc[name, "ess_bulk"]),
            reference.loc[name, "mcse_mean"],
        )
        assert abs(batch.loc[name, "mean"] - reference.loc[name, "estimate"]) < 5 * mcse, name


@pytest.mark.parametrize(
    "dtype, rtol",
    [
        ("float64", 1e-8),
        # on a GPU the batched float32 reductions reassociate, and 200 iterations of a chain
        # amplify that to a few percent (3% seen on an H100); the CPU gives the same draws
        pytest.param(
            "float32",
            1e-5,
            marks=[
                pytest.mark.slow,
                pytest.mark.skipif(
                    jax.default_backend() != "cpu",
                    reason="float32 draws equal single runs on the CPU only",
                ),
            ],
        ),
    ],
)
def test_sample_batch_runs_in_the_default_set_and_equals_single_runs(dtype, rtol):
    """A short run for the plumbing (shapes, index, status) and the identity with single runs
    in either precision (rtol: reassociation in that precision); the statistical checks of
    sample_batch are in the slow set."""
    data = gb.load_dataset("Dyestuff")
    model = gb.Model("Yield ~ 1 + (1 | Batch)", data)
    rng = np.random.default_rng(1)
    responses = np.stack(
        [data["Yield"].to_numpy() + rng.normal(0, 10, len(data)) for _ in range(2)]
    )
    batch = model.sample_batch(
        responses, draws=100, warmup=100, chains=2, seed=0, progress=False, dtype=dtype
    )
    summary = batch.summary()
    assert set(summary.index.get_level_values(0)) == {0, 1}
    assert np.all(np.isfinite(summary["mean"])) and len(batch.status) == 2
    # dataset d is sampled as `sample(seed=seed + d)` samples it alone with the device's
    # default chain method (sequential on this CPU): the same compiled chain, so the same
    # draws up to floating-point reassociation
    single = model._with_response(responses[1]).sample(
        draws=100,
        warmup=100,
        chains=2,
        seed=1,
        progress=False,
        log_likelihood=False,
        dtype=dtype,
    )
    for name in ("(Intercept)", "sd((Intercept)|Batch)", "sigma"):
        np.testing.assert_allclose(batch.draws(name)[1], single.population_draws()[name], rtol=rtol)
        # the batch ran in the precision asked for: float32 draws are float32 numbers
        assert in_single_precision(batch.draws(name)) == (dtype == "float32"), name
