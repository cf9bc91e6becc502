"""Compile once per model shape: a function bound to its static structure by value.

`bind(profiled_deviance, layout=layout)` is equal (and hashes equal) to every other
binding of the same function to an equal layout, so the compiled value, gradient or sampler of
a refit of a same-shaped model, of a profile, or of the next dataset in a batch is found in
`compiled` instead of being traced and compiled again. Data always travel as arguments, never
in the binding, so they are not baked into the executable.

A `Program` holds its executables itself, one per signature of its arguments (compiled ahead of
time, `jit(f).lower(*args).compile()`), and compiles with the package's persistent cache lent
to JAX (`compilation_cache.serving`), so a later process loads what an earlier one compiled;
where it can, the lowered program is stored as well (`stored_programs`), so that process does
not trace or lower it either. The programs are bounded (least recently used first out): each
holds compiled code, and a process that fits thousands of differently shaped models must not
keep them all. Dropping a program is not enough: JAX's own tracing caches (jaxprs, lowerings;
thousands of entries each) kept ~1.8 MB per new REML shape. So each time MAX_COMPILED programs
have been dropped, `jax.clear_caches()` empties JAX's in-memory caches; the programs kept here
hold their executables and do not compile again. That clearing is process-wide: a process that
compiles more than MAX_COMPILED programs of the package also has its own jitted functions
traced again on their next call (the persistent caches on disk are untouched).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from ..compilation_cache import serving
from .stored_programs import compile_program

#: How many compiled programs are kept alive at once.
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


def _each_row_in_a_loop(value_and_grad):
    """f(x, responses, args, asked) = value_and_grad(x_d, response_d, args) for each row d
    asked for (zeros elsewhere): a loop inside one program (`lax.map`) that skips the rows not
    asked for. It traces and compiles as one point does (vmap's tracing took 0.5 s more for
    sleepstudy's REML criterion) and on a CPU runs as fast as vmap."""

    def each_row(x, responses, args, asked):
        def row(inputs):
            x_d, response_d, asked_d = inputs
            skip = lambda x_d, _: (jnp.zeros((), x_d.dtype), jnp.zeros_like(x_d))
            at = lambda x_d, response_d: value_and_grad(x_d, response_d, args)
            return jax.lax.cond(asked_d, at, skip, x_d, response_d)

        return jax.lax.map(row, (x, responses, asked))

    return each_row


def _each_row_vectorised(value_and_grad):
    """As `_each_row_in_a_loop`, by vmap: every row, in parallel on an accelerator."""
    vectorised = jax.vmap(value_and_grad, in_axes=(0, 0, None))
    return lambda x, responses, args, asked: vectorised(x, responses, args)


_TRANSFORMS = {
    "value": lambda f: f,
    "value_and_grad": jax.value_and_grad,
    # f(x, response, args) at D points and responses (`batch_optimize`)
    "value_and_grad_loop": lambda f: _each_row_in_a_loop(jax.value_and_grad(f)),
    "value_and_grad_vmap": lambda f: _each_row_vectorised(jax.value_and_grad(f)),
}


def _signature(args, kwargs) -> tuple:
    """What an executable is specialised to, as `jax.jit` sees it: the arguments' tree and each
    leaf's abstract value (shape, dtype, weak type) in the calling context's float width."""
    leaves, tree = jax.tree_util.tree_flatten((args, kwargs))
    return tree, tuple(jax.typeof(leaf) for leaf in leaves), bool(jax.config.jax_enable_x64)


class Program:
    """The jitted `kind` transform of `bound` and its executables, one per argument signature;
    `stored`: whether its lowered programs may be kept in the cache (`stored_programs`)."""

    def __init__(self, bound: Bound, kind: str, stored: bool):
        self.jitted = jax.jit(_TRANSFORMS[kind](bound))
        self.bound, self.kind, self.stored = bound, kind, stored
        self.executables: dict = {}

    def __call__(self, *args, **kwargs):
        return self.executable(*args, **kwargs)(*args, **kwargs)

    def executable(self, *args, **kwargs):
        """The executable for these arguments' signature, compiled on first use."""
        key = _signature(args, kwargs)
        executable = self.executables.get(key)
        if executable is None:
            with serving():
                executable = compile_program(
                    self.jitted, self.bound, self.kind, args, kwargs, self.stored
                )
            self.executables[key] = executable
        return executable


_cache: OrderedDict = OrderedDict()
_evicted = 0  # programs dropped since JAX's caches were last cleared


def compiled(bound: Bound, kind: str = "value", *, stored: bool = True) -> Program:
    """The compiled `kind` (a key of `_TRANSFORMS`: the value, or with its gradient in the
    first argument, of one point or of a batch) of `bound`,
    shared by every equal binding while it stays among the MAX_COMPILED most recently used.
    `stored=False` for a program jax.export cannot serialise (one with host callbacks), so that
    it is not traced twice to find that out."""
    key = (bound, kind)
    if key in _cache:
        _cache.move_to_end(key)
        return _cache[key]
    program = Program(bound, kind, stored)
    _cache[key] = program
    global _evicted
    while len(_cache) > MAX_COMPILED:
        _cache.popitem(last=False)
        _evicted += 1
    if _evicted >= MAX_COMPILED:
        jax.clear_caches()
        _evicted = 0
    return program


def cache_size() -> int:
    return len(_cache)
