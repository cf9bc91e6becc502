"""NUTS: one compiled program runs every chain's initialisation, warmup and sampling.

A chain is numpyro's functional NUTS kernel (`numpyro.infer.hmc.hmc`) on the program's
potential, stepped by one `lax.scan` over warmup and draws (the kernel adapts the step size and
mass matrix while its iteration count is below `warmup`), then mapped to the constrained sites.
Chains run one after another (`lax.map`), vectorised (`vmap`), split over the local devices
(`shard_map`; `use_cpu_cores` makes a device per CPU core) or, on one CPU device, in blocks
run side by side from a thread per core (`cpu_devices.run_side_by_side`), every block through
the same executable. The program is bound to the model's static structure by value
(`compiled.bind`), so a second `sample` of a same-shaped model reuses the executable.
Everything the sampler does happens in that executable: there are no eager JAX operations,
each of which would otherwise be compiled on its own.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import numpyro  # noqa: F401  (before its subpackages: see `lazy_modules.LazyModule`)
import numpyro.distributions as dist
from jax.flatten_util import ravel_pytree
from jax.sharding import Mesh, PartitionSpec
from numpyro.distributions.transforms import biject_to
from numpyro.handlers import seed, substitute, trace
from numpyro.infer import init_to_median, init_to_uniform
from numpyro.infer.hmc import hmc
from numpyro.infer.util import constrain_fn, potential_energy, unconstrain_fn

from ..core.compiled import Bound, bind, compiled
from ..cpu_devices import run_side_by_side, thread_count
from ..errors import ModelError, integer_argument
from ..progress import progress_bar

CHAIN_METHODS = ("auto", "parallel", "sequential", "vectorized")

#: Chains start around the initial values, moved by U(-radius, radius) in unconstrained space.
INIT_RADIUS = 1.0

#: Progress is reported every this many iterations of a chain.
PROGRESS_EVERY = 50


def resolve_chain_method(chain_method: str, chains: int, loop_elements: int = 0) -> str:
    """'auto': chains side by side ('parallel') where there is a device per chain, or on a CPU
    with several devices (`use_cpu_cores`) or several cores (threads, for a program whose
    widest element-wise operation covers `loop_elements`: `cpu_devices.thread_count`); else
    one after another on a CPU, where vectorised chains wait at every step for the longest
    tree, and vectorised on an accelerator. 'parallel' falls back the same way where nothing
    can run side by side."""
    if chain_method not in CHAIN_METHODS:
        raise ModelError(
            f"chain_method must be one of {', '.join(CHAIN_METHODS)}, got {chain_method!r}"
        )
    on_cpu, devices = jax.default_backend() == "cpu", jax.local_device_count()
    fallback = "sequential" if on_cpu else "vectorized"
    side_by_side = devices > 1 or thread_count(chains, loop_elements=loop_elements) > 1
    if chain_method == "auto":
        splits = chains > 1 and (devices >= chains or (on_cpu and side_by_side))
        return "parallel" if splits else fallback
    if chain_method == "parallel" and (not side_by_side or chains == 1):
        return fallback
    return chain_method


def init_around(site=None, values=None, radius: float = 1.0):
    """numpyro init strategy: each site in `values` starts at its value moved by U(-radius,
    radius) in the unconstrained space (so chains start apart, on the scale of the data); other
    sites start as `init_to_median` (user distributions) or near the identity (correlations).
    radius = 0 starts every site in `values` exactly there (the MAP optimiser's start)."""
    if site is None:
        return partial(init_around, values=values, radius=radius)
    if site["type"] != "sample" or site["is_observed"] or site["fn"].support.is_discrete:
        return None
    if site["name"] not in values:
        if isinstance(site["fn"], dist.LKJCholesky):
            return init_to_uniform(site, radius=radius)
        return init_to_median(site)
    transform = biject_to(site["fn"].support)
    centre = transform.inv(jnp.asarray(values[site["name"]], dtype=jnp.result_type(float)))
    if radius == 0:
        return transform(centre)
    shape = site["kwargs"].get("sample_shape", ()) + jnp.shape(centre)
    jitter = dist.Uniform(-radius, radius)(
        rng_key=site["kwargs"].get("rng_key"), sample_shape=shape
    )
    return transform(centre + jitter)


@dataclass(frozen=True)
class NutsSettings:
    """What a chain's compiled program depends on besides the model and the data's shapes."""

    draws: int
    warmup: int
    target_accept: float = 0.8
    max_tree_depth: int = 10
    dense_sites: tuple = ()  # sites sharing a dense mass matrix (others: diagonal)
    level_sites: tuple = ()  # (n_k, q_k) sites whose levels the potential does not
    # couple (`curvature_inverse_mass`)
    keep: tuple | None = None  # the sites to return (all when None)

    @classmethod
    def checked(cls, draws, warmup, target_accept, max_tree_depth, **rest) -> NutsSettings:
        if not 0 < target_accept < 1:
            raise ModelError(f"target_accept must be in (0, 1), got {target_accept!r}")
        return cls(
            integer_argument("draws", draws, 1),
            integer_argument("warmup", warmup, 0),
            float(target_accept),
            integer_argument("max_tree_depth", max_tree_depth, 1),
            **rest,
        )


def initial_point(model, kwargs, key, values, radius):
    """Unconstrained starting values from `init_around`."""
    strategy = init_around(values=values, radius=radius)
    sites = trace(substitute(seed(model, key), substitute_fn=strategy)).get_trace(**kwargs)
    start = {
        k: s["value"] for k, s in sites.items() if s["type"] == "sample" and not s["is_observed"]
    }
    return unconstrain_fn(model, (), kwargs, start)


def curvature_inverse_mass(potential, start: dict, level_sites: tuple):
    """(U(start), the initial diagonal inverse mass matrix): 1 / H_jj where the potential's
    curvature at the start exceeds 1, 1 (numpyro's identity) elsewhere.

    With 73k rows (InstEval) log(sigma), the intercept and the z of a 5,000-row level are a
    thousand times stiffer than a unit mass assumes, and the first adaptation window ran ~800
    leapfrog steps per iteration at a tiny step size. diag(H) costs one Hessian-vector product
    per colour: H couples no two levels of a `level_sites` site, so a tangent of ones on its
    column c returns H_jj for that column of every level at once; every other coordinate gets
    its own product. U(start) is the products' primal value, so the program holds one copy of
    the potential for both.
    """
    flat, unravel = ravel_pytree(start)
    tangents = []
    for name, value in start.items():
        value = jnp.asarray(value)
        if name in level_sites:
            masks = [jnp.zeros_like(value).at[..., c].set(1.0) for c in range(value.shape[-1])]
        else:
            masks = [
                jnp.zeros(value.size, value.dtype).at[i].set(1.0).reshape(value.shape)
                for i in range(value.size)
            ]
        tangents += [
            ravel_pytree({k: m if k == name else jnp.zeros_like(v) for k, v in start.items()})[0]
            for m in masks
        ]
    V = jnp.stack(tangents)
    value_and_gradient = jax.value_and_grad(lambda x: potential(unravel(x)))
    (energy, _), (_, products) = jax.vmap(
        lambda v: jax.jvp(value_and_gradient, (flat,), (v,)), out_axes=((None, None), 0)
    )(V)
    diagonal = jnp.sum(products * V, axis=0)
    return energy, jnp.where(jnp.isfinite(diagonal) & (diagonal > 1.0), 1.0 / diagonal, 1.0)


def run_chain(key, kwargs, initial_values, chain, *, model: Bound, settings: NutsSettings):
    """One chain: (sites {name: (draws, ...)}, stats {name: (draws,)}). The start is jittered
    around `initial_values` ({site: value}, traced), or exactly there when the jittered point
    has no finite density."""
    key_start, key_kernel = jax.random.split(key)
    # jitted so that its several call sites in the kernel share one trace of the model
    potential = jax.jit(partial(potential_energy, model, (), kwargs))
    jittered = initial_point(model, kwargs, key_start, initial_values, INIT_RADIUS)
    centre = initial_point(model, kwargs, key_start, initial_values, 0.0)
    dense = [tuple(s for s in settings.dense_sites if s in jittered)]
    if dense[0]:
        energy, inverse_mass = potential(jittered), None
    else:  # at the centre fallback, numpyro's unit mass
        energy, inverse_mass = curvature_inverse_mass(potential, jittered, settings.level_sites)
        inverse_mass = jnp.where(jnp.isfinite(energy), inverse_mass, 1.0)
    start = jax.tree_util.tree_map(
        lambda a, b: jnp.where(jnp.isfinite(energy), a, b), jittered, centre
    )
    init_kernel, sample_kernel = hmc(potential, algo="NUTS")
    state = init_kernel(
        start,
        settings.warmup,
        inverse_mass_matrix=inverse_mass,
        target_accept_prob=settings.target_accept,
        max_tree_depth=settings.max_tree_depth,
        rng_key=key_kernel,
        dense_mass=dense if dense[0] else False,
    )

    def step(state, iteration):
        jax.lax.cond(
            iteration % PROGRESS_EVERY == 0,
            lambda: jax.debug.callback(_report_progress, chain, iteration),
            lambda: None,
        )
        state = sample_kernel(state)
        return state, (
            state.z,
            {
                "diverging": state.diverging,
                "n_steps": state.num_steps,
                "acceptance_rate": state.accept_prob,
                "energy": state.energy,
                "step_size": state.adapt_state.step_size,
            },
        )

    total = settings.warmup + settings.draws
    _, (z, stats) = jax.lax.scan(step, state, jnp.arange(total))
    z, stats = jax.tree_util.tree_map(lambda a: a[settings.warmup :], (z, stats))
    sites = jax.vmap(lambda z: constrain_fn(model, (), kwargs, z, return_deterministic=True))(z)
    if settings.keep is not None:
        sites = {k: v for k, v in sites.items() if k in settings.keep}
    return sites, stats


def chain_keys(seed, chains: int):
    """The chains' random keys from an integer seed (traced or not)."""
    return jax.random.split(jax.random.PRNGKey(seed), chains)


def run_chains(seed, kwargs, initial_values, model, settings, method, chains):
    """Every chain of one dataset, one after another ("sequential") or vmapped ("vectorized")."""
    keys, ids = chain_keys(seed, chains), jnp.arange(chains)
    if method == "vectorized":
        one = partial(run_chain, model=model, settings=settings)
        return jax.vmap(one, in_axes=(0, None, None, 0))(keys, kwargs, initial_values, ids)
    return run_chains_of(keys, ids, kwargs, initial_values, model, settings)


def _parallel_chains(seed, kwargs, initial_values, model, settings, chains):
    """The chains split over the local devices (`run_chains` with method "parallel"): device k
    runs the k-th block of chains one after another (`shard_map` with no collective, so a
    device that finishes first never waits for another). Chain c has the key and id it has in
    `run_chains`; where the chains do not fill the last block it repeats the last chain (the
    caller drops the copies: slicing here would gather the devices' outputs)."""
    devices = min(jax.local_device_count(), chains)
    rounds = -(-chains // devices)
    order = np.minimum(np.arange(rounds * devices), chains - 1)
    keys, ids = chain_keys(seed, chains)[order], jnp.asarray(order)
    mesh = Mesh(np.array(jax.local_devices()[:devices]), ("chains",))
    local = partial(run_chains_of, model=model, settings=settings)
    split = PartitionSpec("chains")
    return jax.shard_map(
        local,
        mesh=mesh,
        in_specs=(split, split, PartitionSpec(), PartitionSpec()),
        out_specs=split,
        check_vma=False,
    )(keys, ids, kwargs, initial_values)


def run_chains_of(keys, ids, kwargs, initial_values, model, settings):
    """The chains with these keys and ids, one after another."""
    one = partial(run_chain, model=model, settings=settings)
    return jax.lax.map(lambda a: one(a[0], kwargs, initial_values, a[1]), (keys, ids))


def _chain_block(seed, block, kwargs, initial_values, model, settings, chains, size):
    """Chains block * size, ..., block * size + size - 1 of `run_chains`, each with its key and
    id there, one after another; past the last chain it repeats the last (dropped by the
    caller)."""
    ids = jnp.minimum(block * size + jnp.arange(size), chains - 1)
    keys = chain_keys(seed, chains)[ids]
    return run_chains_of(keys, ids, kwargs, initial_values, model, settings)


def _threaded_chains(seed, kwargs, initial_values, model, settings, chains, threads):
    """The chains in blocks run side by side from `threads` threads (on one CPU device): the
    blocks share one executable, each thread runs one block."""
    size = -(-chains // threads)
    run = compiled(
        bind(_chain_block, model=model, settings=settings, chains=chains, size=size), stored=False
    )  # its progress callbacks cannot be exported
    seed, first = np.uint32(seed), np.int32(0)
    executable = run.executable(seed, first, kwargs, initial_values)
    blocks = run_side_by_side(
        lambda block: jax.tree_util.tree_map(
            np.asarray, executable(seed, np.int32(block), kwargs, initial_values)
        ),
        range(-(-chains // size)),
        threads,
    )
    return jax.tree_util.tree_map(lambda *a: np.concatenate(a), *blocks)


def run_nuts(
    model: Bound,
    model_kwargs: dict,
    settings: NutsSettings,
    *,
    chains: int,
    seed: int,
    initial_values: dict | None = None,
    chain_method: str = "auto",
    progress: bool = True,
    loop_elements: int = 0,
):
    """NUTS on the NumPyro program `model`, chains started around `initial_values` ({site:
    value}, `init_around`; traced, so other values reuse the compiled program); returns
    (samples {site: (chains, draws, ...)}, stats {name: (chains, draws)}). `loop_elements`:
    the program's widest element-wise operation (`resolve_chain_method`)."""
    chains = integer_argument("chains", chains, 1)
    seed = integer_argument("seed", seed, 0)
    method = resolve_chain_method(chain_method, chains, loop_elements)
    initial_values = initial_values or {}
    with _ChainProgress(chains * (settings.warmup + settings.draws), progress):
        if method == "parallel" and jax.local_device_count() == 1:
            threads = thread_count(chains, loop_elements=loop_elements)
            out = _threaded_chains(
                seed, model_kwargs, initial_values, model, settings, chains, threads
            )
        else:  # each compiled once per model shape
            if method == "parallel":
                function = bind(_parallel_chains, model=model, settings=settings, chains=chains)
            else:
                function = bind(
                    run_chains, model=model, settings=settings, method=method, chains=chains
                )
            out = compiled(function, stored=False)(np.uint32(seed), model_kwargs, initial_values)
        return jax.tree_util.tree_map(lambda a: np.asarray(a)[:chains], out)


class _ChainProgress:
    """A tqdm bar over all chains' iterations, advanced by the compiled program's callbacks."""

    active = None

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled, self.done = total, enabled, {}
        self.lock = threading.Lock()

    def __enter__(self):
        if self.enabled:
            self.bar = progress_bar(total=self.total, desc="NUTS (compiling)", unit="it")
            _ChainProgress.active = self
        return self

    def update(self, chain, iteration):
        with self.lock:  # chains in threads report from several
            for c, i in zip(np.ravel(chain), np.ravel(np.broadcast_to(iteration, np.shape(chain)))):
                self.done[int(c)] = int(i)
            self.bar.set_description("NUTS")
            self.bar.update(sum(self.done.values()) - self.bar.n)

    def __exit__(self, *exc):
        if self.enabled:
            self.bar.update(self.total - self.bar.n)
            self.bar.close()
            _ChainProgress.active = None


def _report_progress(chain, iteration):
    if _ChainProgress.active is not None:
        _ChainProgress.active.update(chain, iteration)
