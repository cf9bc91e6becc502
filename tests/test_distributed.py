"""Work past one core: chains and datasets run side by side from threads on one CPU device or
split over local devices (JAX sharding), and chunks sent to Ray workers, give the results of
running them one after another."""

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import pytest
from conftest import in_single_precision

import glmm_bayes as gb
from glmm_bayes import cpu_devices
from glmm_bayes.bayes.nuts import resolve_chain_method
from glmm_bayes.cli import main
from glmm_bayes.ray_batch import _run_chunk

DRAWS = dict(draws=300, warmup=300, chains=2, seed=3)


@pytest.fixture(scope="module")
def dyestuff():
    data = gb.load_dataset("Dyestuff")
    model = gb.Model("Yield ~ 1 + (1 | Batch)", data)
    rng = np.random.default_rng(1)
    # shifted means, so that a dataset returned in the wrong place is far off
    responses = np.stack(
        [data["Yield"].to_numpy() + 40 * d + rng.normal(0, 10, len(data)) for d in range(4)]
    )
    return model, responses


@pytest.mark.slow
def test_datasets_and_chains_split_over_two_devices_give_the_single_device_draws():
    """Two CPU devices (a fresh process with --xla_force_host_platform_device_count=2): three
    datasets on one device, and split over both (padded to four); two chains of `sample`
    vectorised on one device, and one per device (chain_method="parallel", compiled once for
    both calls). The same chains up to the rounding of a differently compiled program, which a
    chain amplifies (hence a short run and rtol 1e-6; a dataset, chain or seed on the wrong
    device is off by O(1))."""
    script = textwrap.dedent("""
        import json, sys, jax, numpy as np, glmm_bayes as gb
        assert len(jax.local_devices()) == 2
        data = gb.load_dataset("Dyestuff")
        model = gb.Model("Yield ~ 1 + (1 | Batch)", data)
        rng = np.random.default_rng(1)
        responses = np.stack([data["Yield"].to_numpy() + 40 * d + rng.normal(0, 10, len(data))
                              for d in range(3)])
        out = {}
        for name, devices in (("one", jax.local_devices()[:1]), ("two", None)):
            batch = model.sample_batch(responses, draws=10, warmup=20, chains=2, seed=3,
                                       progress=False, devices=devices)
            out[name] = {k: batch.draws(k).tolist() for k in ("sigma", "(Intercept)")}
        compiles = []
        jax.monitoring.register_event_duration_secs_listener(
            lambda event, seconds, **kw: compiles.append(event)
            if "backend_compile" in event
            else None
        )
        one = model._with_response(responses[1])
        kwargs = dict(draws=10, warmup=20, chains=2, seed=4, progress=False, log_likelihood=False)
        for method in ("vectorized", "parallel", "parallel"):
            compiles.clear()
            post = one.sample(chain_method=method, **kwargs)
            out[method] = post.population_draws()["sigma"].tolist()
        out["parallel_compiles_again"] = len(compiles)
        json.dump(out, sys.stdout)
    """)
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        "JAX_PLATFORMS": "cpu",
    }
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    for name in ("sigma", "(Intercept)"):
        np.testing.assert_allclose(out["two"][name], out["one"][name], rtol=1e-6)
    np.testing.assert_allclose(out["parallel"], out["vectorized"], rtol=1e-6)
    assert out["parallel_compiles_again"] == 0


def test_use_cpu_cores_splits_the_chains_over_cpu_devices_and_keeps_each_chain():
    """A fresh process with `gb.use_cpu_cores(2)`: 'auto' runs 3 chains split over the 2 CPU
    devices (chains 0 and 2 on one, 1 on the other, a padded fourth dropped) and draws what
    'sequential' draws chain by chain (each chain's program is the same; rtol 1e-9 allows for
    rounding, a chain in the wrong place is off by O(1)). Asking again for as many devices is
    harmless; asking for more once JAX runs raises a RuntimeError that names the fix. The
    compiled program has no collective: with one, a device whose chains finish first waits for
    the other, and XLA aborted the process after 40 s of waiting (InstEval)."""
    script = textwrap.dedent("""
        import json, sys, jax, numpy as np, glmm_bayes as gb
        from glmm_bayes.core import compiled
        from glmm_bayes.bayes.nuts import resolve_chain_method
        out = {"devices": gb.use_cpu_cores(2)}
        out["method"] = resolve_chain_method("auto", 3)
        model = gb.Model("Yield ~ 1 + (1 | Batch)", gb.load_dataset("Dyestuff"))
        for method in ("auto", "sequential"):
            post = model.sample(draws=20, warmup=30, chains=3, seed=5, progress=False,
                                log_likelihood=False, chain_method=method)
            out[method] = post.population_draws()["sigma"].tolist()
        with jax.enable_x64(True):
            program = next(f for (bound, _), f in compiled._cache.items()
                           if bound.func.__name__ == "_parallel_chains")
            kwargs = model._sampler_kwargs(model._integrates_random_effects("auto"))
            text = program.jitted.lower(
                np.uint32(5), kwargs, kwargs["priors"].initial
            ).compile().as_text()
        out["collectives"] = [op for op in ("all-gather", "all-reduce", "all-to-all",
                                            "collective-permute") if op in text]
        out["again"] = gb.use_cpu_cores(2)
        try:
            gb.use_cpu_cores(3)
        except RuntimeError as error:
            out["error"] = str(error)
        json.dump(out, sys.stdout)
    """)
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    assert out["devices"] == 2 and out["again"] == 2 and out["method"] == "parallel"
    assert out["collectives"] == []
    np.testing.assert_allclose(out["auto"], out["sequential"], rtol=1e-9)
    assert np.ptp(np.asarray(out["auto"])[:, 0]) > 0  # three different chains
    assert "use_cpu_cores(3) must run before any JAX computation" in out["error"]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_chains_and_datasets_from_threads_draw_what_one_after_another_draws(
    dyestuff, monkeypatch, dtype
):
    """On one CPU device with two cores (forced here, so a one-core machine tests it too),
    'auto' runs 3 chains in blocks of 2 from two threads (a padded fourth dropped) and a batch
    of 3 datasets in pieces of 2: each chain with its own key, so the draws equal the
    sequential ones (each chain's program is the same: rtol 1e-9 allows for rounding; a chain
    or dataset in the wrong place is off by O(1)), in the precision asked for (the threads
    inherit the caller's)."""
    monkeypatch.setattr(cpu_devices, "available_cores", lambda: 2)
    assert jax.local_device_count() == 1 and resolve_chain_method("auto", 3) == "parallel"
    model, responses = dyestuff
    kwargs = dict(draws=20, warmup=30, seed=5, progress=False, dtype=dtype)
    single = {}
    for method in ("auto", "sequential"):
        post = model.sample(chains=3, log_likelihood=False, chain_method=method, **kwargs)
        single[method] = post.population_draws()["sigma"]
    np.testing.assert_allclose(single["auto"], single["sequential"], rtol=1e-9)
    assert np.ptp(single["auto"][:, 0]) > 0  # three different chains
    assert in_single_precision(single["auto"]) == (dtype == "float32")
    batch = model.sample_batch(responses[:3], chains=2, **kwargs)
    for d in range(3):
        alone = model._with_response(responses[d]).sample(
            chains=2, log_likelihood=False, chain_method="sequential", **{**kwargs, "seed": 5 + d}
        )
        np.testing.assert_allclose(
            batch.draws("sigma")[d], alone.population_draws()["sigma"], rtol=1e-9
        )


def test_programs_whose_loops_xla_splits_over_its_own_threads_run_one_after_another(
    monkeypatch,
):
    """Above PARALLEL_LOOP_ELEMENTS elements per element-wise operation (rows x the widest
    per-row block: a term's columns, a cumulative model's categories) XLA runs the loops on its
    own threads, and programs run side by side from threads grew in memory without bound."""
    monkeypatch.setattr(cpu_devices, "available_cores", lambda: 2)
    limit = cpu_devices.PARALLEL_LOOP_ELEMENTS
    assert resolve_chain_method("auto", 4, loop_elements=limit) == "parallel"
    assert resolve_chain_method("auto", 4, loop_elements=limit + 1) == "sequential"
    assert cpu_devices.thread_count(4, loop_elements=limit + 1) == 1
    wine = gb.Model("rating ~ temp + (1 | judge)", gb.load_dataset("wine"), family="cumulative")
    sleep = gb.Model("Reaction ~ Days + (Days | Subject)", gb.load_dataset("sleepstudy"))
    assert (wine.spec.row_elements, sleep.spec.row_elements) == (72 * 5, 180 * 2)


def test_a_chunk_is_seeded_by_the_position_of_its_first_dataset(dyestuff):
    """What a Ray worker runs: datasets 2 and 3 alone, as a chunk starting at 2, draw what
    they draw in the whole batch: the same chain, up to the rounding of a differently sized
    vmap, which a chain amplifies (hence a short run and rtol 1e-6; a dataset or seed in the
    wrong place is off by O(1))."""
    model, responses = dyestuff
    kwargs = dict(draws=10, warmup=20, chains=2, seed=3, chunk_size=2)
    chunk = _run_chunk(model, responses[2:], "nuts", 2, kwargs)
    whole = model.sample_batch(responses, progress=False, **kwargs)
    np.testing.assert_allclose(chunk.draws("sigma"), whole.draws("sigma")[2:], rtol=1e-6)


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    with warnings.catch_warnings():  # Ray's fork + exec of its processes, as in batch_on_ray
        warnings.filterwarnings("ignore", "os.fork", RuntimeWarning)
        ray.init(num_cpus=2, include_dashboard=False, logging_level="error")
    yield ray
    ray.shutdown()


def test_reml_batch_on_ray_with_two_workers_equals_the_in_process_batch(local_ray, dyestuff):
    model, responses = dyestuff
    reml = gb.batch_on_ray(model, responses, "reml", progress=False)
    local = model.fit_reml_batch(responses, progress=False)
    # the same deterministic optimiser on each dataset: equal to optimiser-free rounding
    pd.testing.assert_frame_equal(reml.summary(), local.summary(), rtol=1e-9)
    assert list(reml.status["converged"]) == list(local.status["converged"])


def test_a_used_model_reaches_a_worker_in_double_precision(dyestuff):
    """A model is sent to a Ray worker pickled. Its cached JAX arrays came back in the worker's
    default precision (float32), so a model used before `batch_on_ray` was sampled there in
    single precision; now each process builds its own arrays."""
    cloudpickle = pytest.importorskip("ray.cloudpickle")
    model, _ = dyestuff
    with jax.enable_x64(True):
        model.model_kwargs  # noqa: B018 (fills the cache)
    copy = cloudpickle.loads(cloudpickle.dumps(model))
    with jax.enable_x64(True):
        leaves = jax.tree_util.tree_leaves(copy.model_kwargs)
    assert leaves and {leaf.dtype for leaf in leaves if leaf.dtype.kind == "f"} == {
        np.dtype("float64")
    }


@pytest.mark.slow
def test_nuts_batch_on_ray_with_two_workers_equals_the_in_process_batch(local_ray, dyestuff):
    model, responses = dyestuff
    """Dataset d is seeded seed + d wherever it runs, so a worker samples the chains of the
    in-process batch: the same draws up to the rounding of a differently batched program
    (float64; 1e-6 relative asserted, as docs/guide.md says)."""
    nuts = gb.batch_on_ray(model, responses, "nuts", chunk_size=1, progress=False, **DRAWS)
    assert len(nuts) == 4
    local = model.sample_batch(responses, progress=False, **DRAWS)
    for name in ("(Intercept)", "sd((Intercept)|Batch)", "sigma"):
        np.testing.assert_allclose(nuts.draws(name), local.draws(name), rtol=1e-6)


def test_the_command_line_sends_a_batch_to_ray(local_ray, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("glmm_bayes.cli.use_compilation_cache", lambda directory=None: None)
    spec = Path(__file__).parent.parent / "models" / "dyestuff.toml"
    assert (
        main(["batch", str(spec), "--simulate", "3", "--ray", "--quiet", "--out", str(tmp_path)])
        == 0
    )
    status = pd.read_csv(tmp_path / "status.csv")
    assert len(status) == 3 and status["converged"].all()
    assert "3 datasets, 3 converged" in capsys.readouterr().out


def test_batch_on_ray_checks_its_arguments(dyestuff):
    model, responses = dyestuff
    with pytest.raises(ValueError, match="method must be one of"):
        gb.batch_on_ray(model, responses, "gibbs")
    with pytest.raises(gb.GlmmBayesError, match="workers must be an integer >= 1, got 0"):
        gb.batch_on_ray(model, responses, workers=0)
    with pytest.raises(gb.DataError, match=r"shape \(datasets, 30\)"):
        gb.batch_on_ray(model, responses[:, :-1])


def test_options_are_checked_before_ray_starts(dyestuff, monkeypatch):
    """draws=0 and the like were checked only inside the workers: the error came ~11 s later
    behind a worker's traceback. Now each is the package's own error before Ray is touched."""
    import glmm_bayes.ray_batch as ray_batch

    def no_ray():
        raise AssertionError("Ray was started")

    monkeypatch.setattr(ray_batch, "_import_ray", no_ray)
    model, responses = dyestuff
    cases = [
        ("nuts", {"draws": 0}, "draws must be an integer >= 1"),
        ("nuts", {"target_accept": 1.5}, r"target_accept must be in \(0, 1\)"),
        ("nuts", {"chains": 0}, "chains must be an integer >= 1"),
        ("nuts", {"dtype": "float16"}, "dtype must be"),
        ("nuts", {"nagq": 2}, r"\['nagq'\] are not options of sample_batch"),
        ("reml", {"draws": 10}, r"\['draws'\] are not options of fit_reml_batch"),
        ("laplace", {"nagq": -1}, "nagq must be a non-negative integer"),
        ("laplace", {"nagq": 0}, "nagq=0 .* without a dispersion parameter"),
    ]
    for method, options, message in cases:
        with pytest.raises(gb.GlmmBayesError, match=message):
            gb.batch_on_ray(model, responses, method, progress=False, **options)


def test_an_unreachable_cluster_is_named_within_seconds(dyestuff):
    """batch_on_ray(address="127.0.0.1:1") once hung (Ray still retrying after 330 s): the
    address is tried first, and an unreachable one is a ClusterError well within 30 s. A
    ray:// address without Ray's client says what to install (the lock has no grpc)."""
    import time

    model, responses = dyestuff
    start = time.perf_counter()
    with pytest.raises(gb.ClusterError, match="no Ray cluster answers at '127.0.0.1:1'"):
        gb.batch_on_ray(model, responses, "reml", address="127.0.0.1:1", progress=False)
    assert time.perf_counter() - start < 30
    with pytest.raises(gb.ClusterError, match=r"ray\[client\]"):
        gb.batch_on_ray(model, responses, "reml", address="ray://127.0.0.1:1", progress=False)
    with pytest.raises(gb.ClusterError, match="not host:port"):
        gb.batch_on_ray(model, responses, "reml", address="my-cluster", progress=False)


def test_a_worker_s_error_reaches_the_caller_as_raised_there():
    """A RayTaskError wraps the worker's exception behind its traceback: the package's own
    error comes back as itself, message first; any other as a ClusterError naming the chunk."""
    ray = pytest.importorskip("ray")
    from glmm_bayes.ray_batch import _worker_error

    own = gb.DataError("response 'y' has NaN values")
    wrapped = ray.exceptions.RayTaskError("_run_chunk", "Traceback ...", own)
    assert _worker_error(wrapped, 8) is own
    other = ray.exceptions.RayTaskError("_run_chunk", "Traceback ...", MemoryError("out of memory"))
    error = _worker_error(other, 8)
    assert isinstance(error, gb.ClusterError)
    assert str(error) == "the Ray worker fitting datasets from 8 failed: MemoryError: out of memory"
