"""NUTS over many datasets of one design in one compiled program.

The chains of `nuts.run_chain` are vmapped over chains and over datasets, so a chunk of
datasets x chains advances in one call (on a GPU, thousands of chains at once). Dataset d is
sampled from PRNGKey(seeds[d]) exactly as `nuts.run_nuts` samples one dataset with that seed
and vectorised chains, so its draws do not depend on the batch or the chunk it is run in.
"""

from __future__ import annotations

import jax
import numpy as np
from tqdm.auto import tqdm

from .compiled import Bound, bind, compiled
from .nuts import NutsSettings, run_chains


def _run_datasets(seeds, shared, per_dataset, model, settings, chains):
    def one_dataset(seed, data):
        return run_chains(seed, {**shared, **data}, model, settings, "vectorized", chains)
    return jax.vmap(one_dataset)(seeds, per_dataset)


def run_nuts_batch(model: Bound, shared: dict, per_dataset: dict, settings: NutsSettings, *,
                   chains: int, seeds: np.ndarray, chunk_size: int = 64, progress: bool = True):
    """NUTS for each dataset d (model kwargs = shared + per_dataset[...][d]), started from
    PRNGKey(seeds[d]). `per_dataset`: model kwargs whose leaves have a leading dataset axis.
    Returns (samples {site: (datasets, chains, draws, ...)}, stats {name: (datasets, chains,
    draws)})."""
    n_datasets = len(seeds)
    run = compiled(bind(_run_datasets, model=model, settings=settings, chains=chains))
    outputs = []
    starts = range(0, n_datasets, chunk_size)
    for start in tqdm(starts, desc="datasets", unit="chunk", disable=not progress):
        index = np.arange(start, start + chunk_size).clip(max=n_datasets - 1)   # pad the last chunk
        data = jax.tree_util.tree_map(lambda a: a[index], per_dataset)
        out = jax.tree_util.tree_map(np.asarray, run(np.asarray(seeds, np.uint32)[index], shared, data))
        used = min(chunk_size, n_datasets - start)
        outputs.append(jax.tree_util.tree_map(lambda a: a[:used], out))
    return jax.tree_util.tree_map(lambda *a: np.concatenate(a), *outputs)
