"""NUTS over many datasets of one design in one compiled program.

numpyro's functional NUTS (`numpyro.infer.hmc.hmc`) runs one chain as warmup-and-sampling
inside a `lax.scan`; that chain is vmapped over chains and over datasets, so a chunk of
datasets x chains advances in one call (on a GPU, thousands of chains at once). The potential
is the program's, generated per dataset from its data (`initialize_model(dynamic_args=True)`).
Each dataset's draws depend only on its own data and `fold_in(seed, dataset index)`, so a
dataset's result does not depend on the batch or chunk it is run in.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer.hmc import hmc
from numpyro.infer.util import initialize_model
from tqdm.auto import tqdm

from .nuts import init_around

#: Initial points are spread by U(-radius, radius) in the unconstrained space around the centre.
INIT_RADIUS = 1.0


def run_nuts_batch(model, shared: dict, per_dataset: dict, n_datasets: int, *, draws: int,
                   warmup: int, chains: int, seed: int, target_accept: float = 0.8,
                   max_tree_depth: int = 10, initial_values: dict | None = None,
                   keep=None, chunk_size: int = 64, progress: bool = True):
    """NUTS for each dataset d (model kwargs = shared + per_dataset[...][d]).

    `per_dataset`: model kwargs whose leaves have a leading dataset axis; `keep`: the site
    names to return (all when None). Returns (samples {site: (datasets, chains, draws, ...)},
    stats {"diverging", "n_steps": (datasets, chains, draws)}).
    """
    first = jax.tree_util.tree_map(lambda a: a[0], per_dataset)
    info = initialize_model(jax.random.PRNGKey(0), model, model_kwargs={**shared, **first},
                            dynamic_args=True,
                            init_strategy=init_around(values=initial_values or {}, radius=0.0))
    centre = info.param_info.z

    def one_chain(key, data):
        kwargs = {**shared, **data}
        init_kernel, sample_kernel = hmc(potential_fn_gen=info.potential_fn, algo="NUTS")
        key_start, key_init = jax.random.split(key)
        leaves, tree = jax.tree_util.tree_flatten(centre)
        starts = [c + jax.random.uniform(k, jnp.shape(c), c.dtype, -INIT_RADIUS, INIT_RADIUS)
                  for c, k in zip(leaves, jax.random.split(key_start, len(leaves)))]
        state = init_kernel(jax.tree_util.tree_unflatten(tree, starts), warmup,
                            target_accept_prob=target_accept, max_tree_depth=max_tree_depth,
                            model_kwargs=kwargs, rng_key=key_init)

        def step(state, _):
            state = sample_kernel(state, model_kwargs=kwargs)
            return state, (state.z, state.diverging, state.num_steps)

        _, (z, diverging, n_steps) = jax.lax.scan(step, state, None, length=warmup + draws)
        z = jax.tree_util.tree_map(lambda a: a[warmup:], z)
        sites = jax.vmap(info.postprocess_fn(**kwargs))(z)
        if keep is not None:
            sites = {k: v for k, v in sites.items() if k in keep}
        return sites, diverging[warmup:], n_steps[warmup:]

    def one_dataset(key, data):
        return jax.vmap(one_chain, in_axes=(0, None))(jax.random.split(key, chains), data)

    run = jax.jit(jax.vmap(one_dataset))
    base = jax.random.PRNGKey(seed)
    outputs = []
    starts = range(0, n_datasets, chunk_size)
    for start in tqdm(starts, desc="datasets", unit="chunk", disable=not progress):
        index = np.arange(start, start + chunk_size).clip(max=n_datasets - 1)   # pad the last chunk
        keys = jax.vmap(lambda d: jax.random.fold_in(base, d))(jnp.asarray(index))
        data = jax.tree_util.tree_map(lambda a: a[index], per_dataset)
        out = jax.tree_util.tree_map(np.asarray, run(keys, data))
        used = min(chunk_size, n_datasets - start)
        outputs.append(jax.tree_util.tree_map(lambda a: a[:used], out))
    sites, diverging, n_steps = jax.tree_util.tree_map(lambda *a: np.concatenate(a), *outputs)
    return sites, {"diverging": diverging, "n_steps": n_steps}
