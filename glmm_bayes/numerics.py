"""Float64 for the package's own computations, scoped: importing glmm_bayes changes no JAX flag.

The frequentist engines are compared with lme4 to 1e-10, so they run in float64 inside
`jax.enable_x64(True)`; the user's own JAX code keeps whatever precision their process chose.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import jax

from .errors import GlmmBayesError


def float64(func):
    """Run `func` with JAX's 64-bit mode on, restoring the caller's setting afterwards."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with jax.enable_x64(True):
            return func(*args, **kwargs)

    return wrapper


def each_in_float64(items: Iterator) -> Iterator:
    """The items of a lazy iterator, each made with JAX's 64-bit mode on (`float64` would
    cover only the call that creates it), the caller's setting in force between items."""
    while True:
        with jax.enable_x64(True):
            item = next(items, _END)
        if item is _END:
            return
        yield item


_END = object()

SAMPLING_DTYPES = ("float64", "float32")


def check_sampling_dtype(dtype: str) -> None:
    if dtype not in SAMPLING_DTYPES:
        raise GlmmBayesError(f"dtype must be 'float64' or 'float32', got {dtype!r}")


@contextlib.contextmanager
def sampling_precision(dtype: str):
    """The JAX precision a sampler runs in: a context manager for `dtype` "float64" or
    "float32" (`Model.sample(dtype=...)`). Matrix products run at full precision either way:
    a GPU's default for float32 is TF32 (a 10-bit mantissa), whose gradient error alone
    drives NUTS's step size down and its trees to the depth limit."""
    check_sampling_dtype(dtype)
    with jax.enable_x64(dtype == "float64"), jax.default_matmul_precision("highest"):
        yield
