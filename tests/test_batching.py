"""The objectives are pure JAX functions of (parameters, ModelArrays): vmap over datasets of one
shape gives the per-dataset values (the basis of batch fits over many datasets)."""

import warnings
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import glmm_bayes as gb
from glmm_bayes.core import batch_optimize
from glmm_bayes.core.batch_optimize import Evaluator, minimize_batch
from glmm_bayes.core.compiled import bind
from glmm_bayes.core.glmm_deviance import laplace_deviance
from glmm_bayes.core.lmm_deviance import profiled_deviance
from glmm_bayes.core.structure import ModelArrays, RandomEffectsLayout, model_arrays

pytestmark = pytest.mark.usefixtures("float64")  # calls engine functions directly


def batch_of_responses(spec, responses):
    layout = RandomEffectsLayout.from_spec(spec)
    arrays = model_arrays(spec, layout)
    batched = arrays._replace(y=jnp.asarray(responses))
    axes = ModelArrays(*[0 if name == "y" else None for name in ModelArrays._fields])
    return layout, arrays, batched, axes


def test_vmapped_reml_criterion_and_gradient_equal_a_loop():
    spec = gb.Model("Reaction ~ Days + (Days | Subject)", gb.load_dataset("sleepstudy")).spec
    rng = np.random.default_rng(0)
    responses = spec.y[None, :] + rng.normal(0, 20, (5, spec.n_obs))
    layout, arrays, batched, axes = batch_of_responses(spec, responses)
    objective = partial(profiled_deviance, layout=layout, reml=True)
    theta = jnp.array([0.9, 0.1, 0.25])
    values, grads = jax.jit(jax.vmap(jax.value_and_grad(objective), in_axes=(None, axes)))(
        theta, batched
    )
    one_dataset = jax.jit(jax.value_and_grad(objective))  # jitted: eagerly ~3 s a dataset
    for k in range(len(responses)):
        single = arrays._replace(y=jnp.asarray(responses[k]))
        value, grad = one_dataset(theta, single)
        np.testing.assert_allclose(values[k], value, rtol=1e-12)
        np.testing.assert_allclose(grads[k], grad, rtol=1e-9, atol=1e-9)


def test_vmapped_laplace_deviance_equals_a_loop():
    """PIRLS runs in a while_loop; under vmap it iterates until every dataset has converged."""
    spec = gb.Model("Richness ~ NAP + (1|Beach)", gb.load_dataset("RIKZ"), family="poisson").spec
    rng = np.random.default_rng(1)
    responses = rng.poisson(np.maximum(spec.y, 0.5)[None, :], (4, spec.n_obs)).astype(float)
    layout, arrays, batched, axes = batch_of_responses(spec, responses)
    deviance = partial(laplace_deviance, layout=layout, family=spec.family, link=spec.link)
    beta, theta = jnp.array([1.6, -0.5]), jnp.array([0.5])
    values = jax.jit(jax.vmap(deviance, in_axes=(None, None, None, axes)))(
        beta, theta, 1.0, batched
    )
    one_dataset = jax.jit(deviance)
    for k in range(len(responses)):
        single = arrays._replace(y=jnp.asarray(responses[k]))
        np.testing.assert_allclose(values[k], one_dataset(beta, theta, 1.0, single), rtol=1e-10)


# ---- the lockstep search (`core.batch_optimize`)


class _Rows(NamedTuple):
    """The two fields of ModelArrays that a batch varies."""

    y: jnp.ndarray
    log_norm: jnp.ndarray


def _barrier(x, arrays):
    """sum_j x_j / a_j - log x_j, a = arrays.y: its minimum is at x = a, and it is not finite
    for x <= 0."""
    return jnp.sum(x / arrays.y - jnp.log(x))


def test_lockstep_bfgs_finds_each_rows_minimum_across_scales_and_backs_off_from_non_finite():
    """Rows whose minima lie nine orders of magnitude apart, started at 5a with scales of 100a,
    so that the first trial step lands where the objective is not finite and the line search
    must back off; a row started at a non-finite point is reported, not searched. In the
    scaled units the curvature at the minimum is 1e4, and the search stops at a relative
    decrease below 1e-15 of f ~ 1: x within sqrt(2e-15 / 1e4) * 100 ~ 5e-8 of a, relatively."""
    a = np.array([[1e-3, 2.0], [1.0, 1.0], [3e4, 5e-2], [1.0, 1.0]])
    x0 = 5 * a
    x0[3] = [-1.0, 1.0]
    evaluate = Evaluator(bind(_barrier), (a, np.zeros_like(a)), (_Rows(a[0], a[0]),))
    opts = minimize_batch(evaluate, x0, 100 * a)
    for d in range(3):
        assert opts[d].success, opts[d].message
        np.testing.assert_allclose(opts[d].x, a[d], rtol=1e-7)
        assert opts[d].n_evals > opts[d].n_iter  # some trial points were rejected
    assert not opts[3].success and "not finite at the start" in opts[3].message


def test_the_vectorised_batch_gives_the_loops_estimates(monkeypatch):
    """An accelerator evaluates the rows by vmap, a CPU in a loop: the same arithmetic, so the
    same searches up to rounding (estimates within 1e-9 relative)."""
    model = gb.Model("Yield ~ 1 + (1 | Batch)", gb.load_dataset("Dyestuff"))
    rng = np.random.default_rng(4)
    responses = model.spec.y + rng.normal(0, 40, (3, model.spec.n_obs))
    loop = model.fit_reml_batch(responses, progress=False).summary()["estimate"]
    monkeypatch.setattr(batch_optimize, "loops_over_rows", lambda: False)
    vectorised = model.fit_reml_batch(responses, progress=False).summary()["estimate"]
    np.testing.assert_allclose(vectorised.to_numpy(), loop.to_numpy(), rtol=1e-9)


def _glmm_cases():
    """(model, responses) off the happy path: Poisson counts in the hundreds, and Bernoulli
    responses of which one is separated by x and one has a group of zeros only."""
    rng = np.random.default_rng(11)
    groups, per = 12, 10
    data = pd.DataFrame(
        {"g": np.repeat([f"g{i}" for i in range(groups)], per), "x": rng.normal(0, 1, groups * per)}
    )
    b = np.repeat(rng.normal(0, 0.5, groups), per)
    counts = rng.poisson(300 * np.exp(0.3 * data["x"].to_numpy() + b), (3, groups * per))
    yes = rng.uniform(size=(3, groups * per)) < 1 / (1 + np.exp(-(data["x"] + b).to_numpy()))
    yes = yes.astype(float)
    yes[1] = data["x"].to_numpy() > 0  # separated by x
    yes[2, :per] = 0.0  # group g0 all zeros
    return [
        (gb.Model("y ~ x + (1 | g)", data.assign(y=counts[0]), family="poisson"), counts),
        (gb.Model("y ~ x + (1 | g)", data.assign(y=yes[0]), family="bernoulli"), yes),
    ]


@pytest.mark.parametrize("case", [0, 1], ids=["poisson-hundreds", "bernoulli-separation"])
def test_laplace_batch_gives_each_single_fits_estimates_and_warnings(case):
    """Each dataset's estimates and warnings are those of its own single fit (the separated
    response warns): the batch keeps a search's end only where the single fit's checks pass
    at once, and refits the others alone. Both searches stop at relative decreases below
    1e-15 (log-likelihoods within 1e-9 relative; estimates within 1e-4, the curvature being
    far from one in some directions)."""
    model, responses = _glmm_cases()[case]
    batch = model.fit_laplace_batch(responses, progress=False)
    summary, status = batch.summary()["estimate"], batch.status
    assert "BFGS (batched)" in {f.estimate.opt.optimizer for f in batch.fits}
    for d, y in enumerate(responses):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", gb.GlmmBayesWarning)
            single = model._with_response(y).fit_laplace()
        assert status.loc[d, "warnings"] == "; ".join(str(w.message) for w in caught)
        assert batch.fits[d].loglik == pytest.approx(single.loglik, rel=1e-9)
        for name, value in single._estimates().items():
            assert summary.loc[d, name] == pytest.approx(value, rel=1e-4, abs=1e-6), name


def test_laplace_batch_fits_a_response_with_no_finite_start_alone():
    """An identity-link Poisson GLMM whose GLM start gives some rows mu <= 0 (no finite
    deviance there): a single fit first moves the start towards a constant mean; the batch
    leaves the start, ends those searches at once and refits each response alone, so each
    dataset gets its own single fit's estimates (the same L-BFGS-B search: to 1e-10), and the
    third, whose optimum lies where mu reaches 0 (a step in the intercept leaves the domain),
    the single fit's error, which names the intercept."""
    rng = np.random.default_rng(1)
    groups, per = 8, 10
    x = np.tile(np.linspace(0, 1, per), groups)
    data = pd.DataFrame({"g": np.repeat([f"g{i}" for i in range(groups)], per), "x": x})
    b = np.repeat(rng.normal(0, 0.3, (3, groups)), per, axis=1)
    counts = rng.poisson(np.maximum(0.05 + 3 * x + b, 0.01)).astype(float)
    model = gb.Model("y ~ x + (1 | g)", data.assign(y=counts[0]), family="poisson", link="identity")
    batch = model.fit_laplace_batch(counts, progress=False)
    summary, status = batch.summary()["estimate"], batch.status
    for d in (0, 1):
        assert batch.fits[d].estimate.opt.optimizer == "L-BFGS-B"  # refitted alone
        single = model._with_response(counts[d]).fit_laplace()
        assert batch.fits[d].loglik == pytest.approx(single.loglik, rel=1e-10)
        for name, value in single._estimates().items():
            assert summary.loc[d, name] == pytest.approx(value, rel=1e-10, abs=1e-12), name
    with pytest.raises(gb.FitError) as raised:
        model._with_response(counts[2]).fit_laplace()
    assert "Hessian at the optimum is not finite in (Intercept):" in str(raised.value)
    assert batch.fits[2] is None and status.loc[2, "error"] == str(raised.value)
