"""Compile once per model shape: a function bound to its static structure by value.

`bind(profiled_deviance, layout=layout)` is equal (and hashes equal) to every other
binding of the same function to an equal layout, so the jitted value, gradient and Hessian of
a refit of a same-shaped model, of a profile, or of the next dataset in a batch are found in
`compiled` instead of being traced and compiled again. Data always travel as arguments, never
in the binding, so they are not baked into the executable.

The cache is bounded (least recently used first out): every live XLA executable holds compiled
code in memory maps, and a process that fits thousands of differently shaped models must not
keep them all. Dropping a function is not enough: JAX's own tracing caches (jaxprs, lowerings;
thousands of entries each) keep ~1.8 MB per REML shape. So each time MAX_COMPILED functions
have been dropped, `jax.clear_caches()` empties JAX's in-memory caches. That is process-wide: a
process that compiles more than MAX_COMPILED programs of the package also has its own jitted
functions traced again on their next call (the persistent cache on disk is untouched).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import jax

#: How many compiled functions are kept alive at once.
MAX_COMPILED = 24


@dataclass(frozen=True)
class Bound:
    """f(*args, **kwargs) = func(*args, **kwargs, **static), with hashable static keyword
    arguments."""

    func: Callable
    static: tuple

    def __call__(self, *args, **kwargs):
        return self.func(*args, **kwargs, **dict(self.static))


def bind(func: Callable, **static) -> Bound:
    """`func` with its static (hashable) keyword arguments bound by value."""
    return Bound(func, tuple(sorted(static.items())))


_TRANSFORMS = {
    "value": lambda f: f,
    "value_and_grad": jax.value_and_grad,
}

_cache: OrderedDict = OrderedDict()
_evicted = 0  # functions dropped since JAX's caches were last cleared


def compiled(bound: Bound, kind: str = "value"):
    """The jitted `kind` ("value" or "value_and_grad" in the first argument) of
    `bound`, shared by every equal binding while it stays among the MAX_COMPILED most recently
    used."""
    key = (bound, kind)
    if key in _cache:
        _cache.move_to_end(key)
        return _cache[key]
    function = jax.jit(_TRANSFORMS[kind](bound))
    _cache[key] = function
    global _evicted
    while len(_cache) > MAX_COMPILED:
        _cache.popitem(last=False)
        _evicted += 1
    if _evicted >= MAX_COMPILED:
        jax.clear_caches()
        _evicted = 0
    return function


def cache_size() -> int:
    return len(_cache)
