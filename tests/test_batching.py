"""The objectives are pure JAX functions of (parameters, ModelArrays): vmap over datasets of one
shape gives the per-dataset values (the basis of batch fits over many datasets)."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import glmm_bayes as gb
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
