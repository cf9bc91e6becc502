"""NUTS over many datasets of one design in one compiled program.

On an accelerator the chains of `nuts.run_chain` are vmapped over chains and datasets, so a
chunk of datasets x chains advances in one call (thousands of chains at once). A vectorised
NUTS step costs every chain the longest tree among them all; a CPU gains nothing from the
width and would pay that, so there the chunk's datasets and their chains run one after another
inside the program (`jax.lax.map`), each at the cost of its own tree (measured in
benchmarks/README.md). Dataset d is sampled from PRNGKey(seeds[d]) exactly as `nuts.run_nuts`
samples one dataset with that seed (each chain with the key it has there, whatever the chain
method), so its draws do not depend on the batch or the chunk it is run in. With
several local devices (GPUs, or CPU devices from `use_cpu_cores`), each chunk's datasets are
split over them (`jax.shard_map` on a one-axis mesh): every device runs its own share of the
datasets with no communication between them. On one CPU device the chunk is split into a
piece per core instead, the pieces run side by side from threads through one executable
(`cpu_devices.run_side_by_side`).
"""

from __future__ import annotations

from functools import partial

import jax
import numpy as np
from jax.sharding import Mesh, PartitionSpec

from ..core.compiled import Bound, bind, compiled
from ..cpu_devices import run_side_by_side, thread_count
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
    loop_elements: int = 0,
):
    """NUTS for each dataset d (model kwargs = shared + per_dataset[...][d]), started from
    PRNGKey(seeds[d]) around `initial_values` (as `nuts.run_nuts`). `per_dataset`: model
    kwargs whose leaves have a leading dataset axis.
    `devices`: where the datasets run (default: every local device); at most `chunk_size`
    datasets are in memory at once, in calls of a multiple of the devices' number, run side by
    side from a thread per core on one CPU device (where `loop_elements`, the program's
    widest element-wise operation, allows: `cpu_devices.thread_count`). Returns (samples
    {site: (datasets, chains, draws, ...)}, stats {name: (datasets, chains, draws)})."""
    n_datasets = len(seeds)
    devices = tuple(jax.local_devices() if devices is None else devices)
    threads = thread_count(min(chunk_size, n_datasets), devices, loop_elements)
    piece = -(-chunk_size // (len(devices) * threads)) * len(devices)  # datasets per call
    run = compiled(
        bind(_run_sharded, model=model, settings=settings, chains=chains, devices=devices),
        stored=False,  # the chains' progress callbacks cannot be exported
    )
    seeds = np.asarray(seeds, np.uint32)
    per_dataset = jax.tree_util.tree_map(np.asarray, per_dataset)  # to the host once
    calls = []
    for start in range(0, n_datasets, piece):
        index = np.arange(start, start + piece).clip(max=n_datasets - 1)  # pad the last piece
        data = jax.tree_util.tree_map(lambda a: a[index], per_dataset)  # noqa: B023 (called at once)
        calls.append((seeds[index], data, min(piece, n_datasets - start)))
    executable = run.executable(calls[0][0], shared, calls[0][1], initial_values)

    def one_call(call):
        call_seeds, data, used = call
        out = executable(call_seeds, shared, data, initial_values)
        return jax.tree_util.tree_map(lambda a: np.asarray(a)[:used], out)

    outputs = run_side_by_side(one_call, calls, threads)
    bar = progress_bar(
        outputs, total=len(calls), desc="datasets", unit="piece", disable=not progress
    )
    return jax.tree_util.tree_map(lambda *a: np.concatenate(a), *bar)
