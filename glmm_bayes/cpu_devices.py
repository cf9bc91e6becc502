"""Every CPU core for independent pieces of work: threads by default, devices on request.

XLA runs a chain's small operations on one core. Independent pieces of one compiled program
(blocks of chains, chunks of datasets) therefore run side by side from threads, one per core
(`run_side_by_side`): the executable releases the GIL while it runs, and two VerbAgg-sized
chains from two threads each ran at the speed of one alone (measured in
benchmarks/README.md). This is the default on a CPU for programs whose operations XLA does not
split over its own threads (`PARALLEL_LOOP_ELEMENTS`), and changes nothing process-wide.

`use_cpu_cores()` instead splits JAX's CPU platform into a device per core, process-wide and
fixed when JAX starts its backend, so importing the package never sets it: chains and datasets
are then split over the devices inside one program (`shard_map`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

import jax

from .errors import GlmmBayesError


def available_cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


#: XLA's CPU runtime runs an element-wise loop over more elements than this on its own thread
#: pool. Two programs with such loops run side by side from threads were slower than one after
#: the other, and the process's memory grew by ~20 MB per NUTS iteration until it was killed
#: (a Bernoulli GLMM of 16,500 rows: 5.5 GB after 200 iterations; of 16,384 rows: 0.65 GB,
#: flat), so those run one after another.
PARALLEL_LOOP_ELEMENTS = 1 << 14


def thread_count(pieces: int, devices=None, loop_elements: int = 0) -> int:
    """How many threads run `pieces` independent calls of a program side by side: one per
    available core (at most `pieces`) where the program runs on one CPU device and its widest
    element-wise operation covers at most PARALLEL_LOOP_ELEMENTS (`loop_elements`), else 1 (an
    accelerator runs its pieces vectorised, several devices split them inside the program)."""
    devices = jax.local_devices() if devices is None else devices
    if len(devices) != 1 or devices[0].platform != "cpu":
        return 1
    if loop_elements > PARALLEL_LOOP_ELEMENTS:
        return 1
    return max(1, min(available_cores(), pieces))


def run_side_by_side(call: Callable, pieces: Iterable, threads: int) -> Iterator:
    """call(piece) for each piece, `threads` at a time, yielded in order as they finish. Each
    thread runs in the caller's JAX precision (64-bit mode and matmul precision are per thread
    in JAX). Call it with an executable already compiled, so the threads only run it."""
    x64, precision = jax.config.jax_enable_x64, jax.config.jax_default_matmul_precision

    def run(piece):
        with jax.enable_x64(x64), jax.default_matmul_precision(precision):
            return call(piece)

    if threads == 1:
        yield from map(run, pieces)
        return
    with ThreadPoolExecutor(threads, thread_name_prefix="glmm_bayes") as pool:
        yield from pool.map(run, pieces)


def use_cpu_cores(n: int | None = None) -> int:
    """Make JAX's CPU platform `n` devices (default: every available core), before any JAX
    computation in this process. Returns the number of CPU devices. Raises RuntimeError if JAX
    has already started with fewer."""
    n = available_cores() if n is None else int(n)
    if n < 1:
        raise GlmmBayesError(f"n must be a positive number of cores, got {n}")
    try:
        jax.config.update("jax_num_cpu_devices", n)
    except RuntimeError:
        running = len(jax.devices("cpu"))
        if running >= n:
            return running
        raise RuntimeError(
            f"use_cpu_cores({n}) must run before any JAX computation in this process: JAX has "
            f"already started with {running} CPU device(s). Call it right after the imports."
        ) from None
    return len(jax.devices("cpu"))
