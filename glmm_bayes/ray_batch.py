"""Batch jobs past one machine: chunks of datasets sent to Ray workers, one result gathered.

`batch_on_ray(model, responses, "nuts", address="auto")` splits the datasets into chunks,
runs each chunk's batch method (`Model.sample_batch`, `fit_reml_batch`, ...) as a Ray task
that holds one GPU, or one CPU core on a cluster without GPUs, and concatenates the chunks in
dataset order. A chunk starting at dataset `first` samples with seed `seed + first`, so dataset
d is seeded `seed + d` wherever it runs, as in the in-process batch. Ray is an optional extra
(`pip install glmm_bayes[ray]`).
"""

from __future__ import annotations

import importlib.util
import inspect
import socket
import warnings

import numpy as np

from .bayes.nuts import NutsSettings
from .design.model_spec import response_batch
from .errors import ClusterError, GlmmBayesError, ModelError, integer_argument
from .frequentist.laplace import check_nagq
from .model import Model
from .numerics import check_sampling_dtype
from .progress import progress_bar
from .results.batch import BatchFits, BatchPosterior

#: batch method -> (the Model method, the result type whose chunks are concatenated)
METHODS = {
    "nuts": ("sample_batch", BatchPosterior),
    "reml": ("fit_reml_batch", BatchFits),
    "ml": ("fit_ml_batch", BatchFits),
    "laplace": ("fit_laplace_batch", BatchFits),
}


#: Seconds to wait for a cluster's address to accept a connection before giving up.
CONNECT_TIMEOUT = 10.0


def _check_address(address: str | None) -> None:
    """A cluster address that can be used, before Ray is asked (which retries an unreachable
    address for minutes): "host:port" must accept a connection within CONNECT_TIMEOUT, and a
    "ray://" address needs Ray's client as well. None (a local instance) and "auto" (the
    cluster this machine belongs to) are Ray's to resolve."""
    if address is None or address == "auto":
        return
    target = address.removeprefix("ray://")
    if address.startswith("ray://") and importlib.util.find_spec("grpc") is None:
        raise ClusterError(
            f"{address!r} is a Ray client address, which needs Ray's client: "
            "pip install 'ray[client]'"
        )
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(f"Ray address {address!r} is not host:port, ray://host:port or 'auto'")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        raise ClusterError(
            f"no Ray cluster answers at {address!r} within {CONNECT_TIMEOUT:g} s "
            f"({exc.strerror or exc}); start one with `ray start --head` or give its address"
        ) from None


def _worker_error(exc, first: int) -> GlmmBayesError:
    """A worker's exception as the caller's: the package's own error as raised there (message
    first, no worker traceback), anything else as a `ClusterError` naming the chunk."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, GlmmBayesError):
        return cause
    what = f"{type(cause).__name__}: {cause}" if cause is not None else str(exc).splitlines()[0]
    return ClusterError(f"the Ray worker fitting datasets from {first} failed: {what}")


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ImportError("batch_on_ray needs Ray: pip install 'glmm_bayes[ray]'") from None
    return ray


def _run_chunk(model: Model, responses: np.ndarray, method: str, first: int, options: dict):
    """One chunk on a worker; datasets first, first + 1, ... of the whole batch."""
    if method == "nuts":
        options = {**options, "seed": options.get("seed", 0) + first}
    return getattr(model, METHODS[method][0])(responses, progress=False, **options)


def _check_options(model: Model, method: str, options: dict) -> None:
    """The batch method's options, checked here as the method would check them in a worker,
    so that a mistake is named at once rather than after Ray has started."""
    parameters = inspect.signature(getattr(model, METHODS[method][0])).parameters
    accepted = [p for p in parameters if p not in ("responses", "progress")]
    if unknown := sorted(set(options) - set(accepted)):
        raise ModelError(f"{unknown} are not options of {METHODS[method][0]}; it takes {accepted}")
    given = {**{name: p.default for name, p in parameters.items()}, **options}
    if method == "nuts":
        NutsSettings.checked(
            given["draws"], given["warmup"], given["target_accept"], given["max_tree_depth"]
        )
        for name, low in (("chains", 1), ("seed", 0), ("chunk_size", 1)):
            integer_argument(name, given[name], low)
        check_sampling_dtype(given["dtype"])
    elif method == "laplace":
        check_nagq(model.spec, given["nagq"])


def batch_on_ray(
    model: Model,
    responses,
    method: str = "reml",
    *,
    address: str | None = None,
    workers: int | None = None,
    chunk_size: int | None = None,
    progress: bool = True,
    **options,
):
    """`method` ("nuts", "reml", "ml" or "laplace") of `model` on every response in
    `responses`, in chunks of `chunk_size` datasets run as Ray tasks. `address`: a running
    Ray cluster ("auto", "ray://host:10001"); None starts a local instance with `workers`
    CPU workers (default: every core) for the call, unless Ray is already initialised in this
    process. `chunk_size` defaults to an equal share per worker. `options` go to the batch
    method (draws, warmup, chains, seed, nagq, ...). Returns the in-process batch's result
    type (`BatchPosterior` or `BatchFits`) for all datasets."""
    if method not in METHODS:
        raise ModelError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    workers = None if workers is None else integer_argument("workers", workers, 1)
    chunk_size = None if chunk_size is None else integer_argument("chunk_size", chunk_size, 1)
    batch = response_batch(model.spec, responses)
    _check_options(model, method, options)
    _check_address(address)
    ray = _import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        with warnings.catch_warnings():
            # Ray starts its processes by fork + exec: JAX's threads are not carried into them
            warnings.filterwarnings("ignore", "os.fork", RuntimeWarning)
            ray.init(
                address=address,
                include_dashboard=False,
                logging_level="error",
                num_cpus=workers if address is None else None,
            )
    try:
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        workers = workers or gpus or int(resources["CPU"])
        size = chunk_size or -(-len(batch) // workers)
        task = ray.remote(num_gpus=1 if gpus else 0, num_cpus=0 if gpus else 1)(_run_chunk)
        shared = ray.put(model)
        pending = {
            task.remote(shared, batch[first : first + size], method, first, options): first
            for first in range(0, len(batch), size)
        }
        done = {}
        with progress_bar(
            total=len(batch), desc="datasets", unit="dataset", disable=not progress
        ) as bar:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                first = pending.pop(ready[0])
                try:
                    done[first] = ray.get(ready[0])
                except ray.exceptions.RayTaskError as exc:
                    raise _worker_error(exc, first) from None
                bar.update(len(done[first]))
    finally:
        if started_here:
            ray.shutdown()
    return METHODS[method][1].concatenate([done[first] for first in sorted(done)])
