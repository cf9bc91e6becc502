"""NUTS over many datasets of one design in one compiled program.

On an accelerator the chains of `nuts.run_chain` are vmapped over chains and datasets, so a
chunk of datasets x chains advances in one call (thousands of chains at once). A vectorised
NUTS step costs every chain the longest tree among them all; a CPU gains nothing from the
width and would pay that, so there the chunk's datasets and their chains run one after another
inside the program (`jax.lax.map`), each at the cost of its own tree (measured in
benchmarks/README.md). Dataset d is sampled from PRNGKey(seeds[d]) exactly as `nuts.run_nuts`
samples one dataset with that seed and the device's default chain method (sequential on a CPU,
vectorised elsewhere), so its draws do not depend on the batch or the chunk it is run in. With
several local devices (GPUs, or CPU devices from `--xla_force_host_platform_device_count`),
each chunk's datasets are split over them (`jax.shard_map` on a one-axis mesh): every device
runs its own share of the datasets with no communication between them.
"""

from __future__ import annotations

from functools import partial

import jax
import numpy as np
from jax.sharding import Mesh, PartitionSpec

from ..core.compiled import Bound, bind, compiled
from ..progress import progress_bar
from .nuts import NutsSettings, run_chains


def _run_datasets(seeds, shared, per_dataset, initial_values, model, settings, chains, vectorize):
    method = "vectorized" if vectorize else "sequential"

    def one_dataset(seed, data):
        return run_chains(seed, {**shared, **data}, initial_values, model, settings, method, chains)

    if vectorize:
        return jax.vmap(one_dataset)(seeds, per_dataset)
    return jax.lax.map(lambda args: one_dataset(*args), (seeds, per_dataset))


def _run_sharded(seeds, shared, per_dataset, initial_values, model, settings, chains, devices):
    """`_run_datasets` with the datasets split evenly over `devices` (vectorised unless they
    are CPUs); `shared` and `initial_values` are copied."""
    mesh = Mesh(np.array(devices), ("datasets",))
    split, copied = PartitionSpec("datasets"), PartitionSpec()
    vectorize = devices[0].platform != "cpu"
    local = partial(
        _run_datasets, model=model, settings=settings, chains=chains, vectorize=vectorize
    )
    return jax.shard_map(
        local, mesh=mesh, in_specs=(split, copied, split, copied), out_specs=split, check_vma=False
    )(seeds, shared, per_dataset, initial_values)


def run_nuts_batch(
    model: Bound,
    shared: dict,
    per_dataset: dict,
    settings: NutsSettings,
    *,
    chains: int,
    seeds: np.ndarray,
    initial_values: dict,
    chunk_size: int = 64,
    progress: bool = True,
    devices=None,
):
    """NUTS for each dataset d (model kwargs = shared + per_dataset[...][d]), started from
    PRNGKey(seeds[d]) around `initial_values` (as `nuts.run_nuts`). `per_dataset`: model
    kwargs whose leaves have a leading dataset axis.
    `devices`: where the datasets run (default: every local device); `chunk_size` is rounded
    up to a multiple of their number. Returns (samples {site: (datasets, chains, draws, ...)},
    stats {name: (datasets, chains, draws)})."""
    n_datasets = len(seeds)
    devices = tuple(jax.local_devices() if devices is None else devices)
    chunk_size = -(-chunk_size // len(devices)) * len(devices)
    run = compiled(
        bind(_run_sharded, model=model, settings=settings, chains=chains, devices=devices)
    )
    outputs = []
    starts = range(0, n_datasets, chunk_size)
    for start in progress_bar(starts, desc="datasets", unit="chunk", disable=not progress):
        index = np.arange(start, start + chunk_size).clip(max=n_datasets - 1)  # pad the last chunk
        data = jax.tree_util.tree_map(lambda a: a[index], per_dataset)  # noqa: B023 (called at once)
        out = jax.tree_util.tree_map(
            np.asarray, run(np.asarray(seeds, np.uint32)[index], shared, data, initial_values)
        )
        used = min(chunk_size, n_datasets - start)
        outputs.append(jax.tree_util.tree_map(lambda a: a[:used], out))  # noqa: B023 (called at once)
    return jax.tree_util.tree_map(lambda *a: np.concatenate(a), *outputs)
