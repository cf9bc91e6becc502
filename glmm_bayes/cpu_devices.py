"""Chains on every CPU core, switched on only when asked.

XLA runs a chain's small operations on one core, and two chains run from threads on one CPU
device contend inside the runtime (each ran ~6x slower than alone). Split into several CPU
devices, chains run one per device at full speed (`chain_method="parallel"`, which "auto"
picks when there are several devices), and `sample_batch` splits datasets over them. The
number of CPU devices is fixed when JAX starts its backend, process-wide, so importing the
package never sets it: a user calls `use_cpu_cores()` first thing, and the `glmm-bayes` command
line, which owns its process, does.
"""

from __future__ import annotations

import os

import jax

from .errors import GlmmBayesError


def available_cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


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
