"""Compile once per model shape, with a bounded number of live executables."""

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import compiles_during

import glmm_bayes as gb
from glmm_bayes.core import compiled as compiled_module
from glmm_bayes.core.compiled import bind, compiled
from glmm_bayes.core.lmm_deviance import profiled_deviance


def _grouped_data(seed: int, groups: int = 12, per_group: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), per_group)
    x = rng.normal(size=g.size)
    return pd.DataFrame(
        {
            "g": [f"g{k}" for k in g],
            "x": x,
            "y": 1 + x + rng.normal(size=groups)[g] + rng.normal(size=g.size),
        }
    )


def test_a_same_shaped_model_reuses_the_compiled_objective():
    layouts = [gb.Model("y ~ x + (1 | g)", _grouped_data(seed)).engine_data()[0] for seed in (0, 1)]
    first, second = (
        compiled(bind(profiled_deviance, layout=lay, reml=True), "value_and_grad")
        for lay in layouts
    )
    assert first is second
    other = gb.Model("y ~ x + (1 | g)", _grouped_data(2, groups=13)).engine_data()[0]
    assert compiled(bind(profiled_deviance, layout=other, reml=True), "value_and_grad") is not first


def _scaled(x, factor):
    return factor * x


def test_the_cache_keeps_at_most_its_bound_and_evicts_the_least_recently_used():
    functions = [bind(_scaled, factor=k) for k in range(compiled_module.MAX_COMPILED + 3)]
    first = compiled(functions[0])
    for f in functions[1:]:
        compiled(f)
    assert compiled_module.cache_size() <= compiled_module.MAX_COMPILED
    assert compiled(functions[0]) is not first  # evicted, so compiled afresh
    assert float(compiled(functions[2])(3.0)) == 6.0


def test_refits_of_different_data_of_one_shape_give_their_own_estimates():
    """Reusing an executable must not reuse data: each refit's estimate is its own."""
    fits = [gb.Model("y ~ x + (1 | g)", _grouped_data(seed)).fit_reml() for seed in (0, 1, 0)]
    assert fits[0].loglik == fits[2].loglik
    assert fits[0].loglik != fits[1].loglik
    pd.testing.assert_frame_equal(fits[0].fixef, fits[2].fixef)


def test_a_gaussian_correlation_on_other_times_compiles_nothing():
    """The range's start and prior centre (the median lag) are not part of the compiled shape:
    REML with the Gaussian correlation on times x 2 compiles nothing, and its range is twice
    the first's (the search runs in log(range) from the lag, so the path is the same; 1e-6)."""
    data = gb.load_dataset("Ovary").assign(Time2=lambda d: 2 * d.Time)
    fits = []
    for time in ("Time", "Time2"):
        model = gb.Model(
            "follicles ~ sin(2*pi*Time) + cos(2*pi*Time) + (1 | Mare)",
            data,
            correlation=gb.GaussianCorrelation(time=time, group="Mare"),
        )
        compiles, fit = compiles_during(model.fit_reml)
        fits.append((compiles, fit))
    assert fits[1][0] == []
    np.testing.assert_allclose(
        fits[1][1].correlation_params["range"],
        2 * fits[0][1].correlation_params["range"],
        rtol=1e-6,
    )
    np.testing.assert_allclose(fits[1][1].loglik, fits[0][1].loglik, rtol=1e-9)


def _map_and_nuts(data: pd.DataFrame):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gb.SamplingWarning)  # 60 draws: ESS warnings
        model = gb.Model("y ~ x + (1 | g)", data)
        return (
            model.fit_map(draws=50, seed=2),
            model.sample(draws=60, warmup=60, chains=2, seed=2, progress=False),
        )


def test_a_model_on_other_data_compiles_nothing_for_map_and_nuts():
    """Other data of one shape have other data-scaled default priors and other starting values;
    both are traced into the programs (`PriorValues`), so fit_map and sample on them compile
    nothing, and give the draws that programs compiled afresh for them give."""
    import jax

    _map_and_nuts(_grouped_data(0))
    compiles, (map_fit, nuts_fit) = compiles_during(lambda: _map_and_nuts(_grouped_data(1)))
    assert compiles == []
    compiled_module._cache.clear()
    jax.clear_caches()
    fresh_map, fresh_nuts = _map_and_nuts(_grouped_data(1))
    for reused, fresh in ((map_fit, fresh_map), (nuts_fit, fresh_nuts)):
        for name in ("(Intercept)", "x", "sd((Intercept)|g)", "sigma"):
            np.testing.assert_array_equal(
                reused.population_draws()[name], fresh.population_draws()[name]
            )


_CACHED_FIT = """
import jax
events, traced = [], []
jax.monitoring.register_event_listener(lambda event, **kw: events.append(event))
jax.monitoring.register_event_duration_secs_listener(
    lambda event, _, fun_name="", **kw: traced.append(fun_name) if "trace" in event else None)
import glmm_bayes as gb
fit = gb.Model("Yield ~ 1 + (1 | Batch)", gb.load_dataset("Dyestuff")).fit_reml()
counts = gb.Model("count ~ mined + (1 | site)", gb.load_dataset("Salamanders"), family="poisson")
laplace = counts.fit_laplace().fixef["estimate"].tolist()
print(repr(float(fit.loglik)), repr(float(fit.sigma) + sum(laplace)),
      sum(e.endswith("cache_hits") for e in events),
      sum(e.endswith("cache_misses") for e in events),
      sum(name != "stored_program" for name in traced))
"""


def _fit_in_a_new_process(cache) -> tuple[float, float, int, int, int, str]:
    """(logLik, sigma plus a Poisson Laplace fit's fixed effects, cache hits, cache misses,
    functions traced, stderr) of a REML and a Laplace fit in a fresh process whose
    GLMM_BAYES_CACHE is `cache`. A stored program's call (`stored_program`)
    is not counted as traced: it is the deserialised program, not the package's function."""
    import os
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _CACHED_FIT],
        env={**os.environ, "GLMM_BAYES_CACHE": str(cache)},
        check=True,
        capture_output=True,
        text=True,
    )
    loglik, sigma, hits, misses, traced = done.stdout.split()
    return float(loglik), float(sigma), int(hits), int(misses), int(traced), done.stderr


def test_a_later_process_loads_the_compiled_programs_from_disk(tmp_path):
    """The program cache is on by default: the first process traces, compiles and writes each
    program of a REML and a Laplace fit (its lowered form and its executable) to a folder
    private to the user; a second process traces none of the package's functions, loads every
    executable (no miss) and gives the same estimates to the last bit. A corrupt entry is
    dropped and compiled again, without a word."""
    cache = tmp_path / "programs"
    loglik, sigma, hits, misses, traced, _ = _fit_in_a_new_process(cache)
    assert hits == 0 and misses > 0 and traced >= misses
    stored = [entry.name for entry in cache.iterdir() if entry.name.startswith("program-")]
    assert len(stored) == misses and len(list(cache.iterdir())) == 2 * misses
    assert cache.stat().st_mode & 0o777 == 0o700
    again = _fit_in_a_new_process(cache)
    assert again[:5] == (loglik, sigma, misses, 0, 0)
    for entry in cache.iterdir():
        entry.write_bytes(entry.read_bytes()[:-100])  # truncated
    corrupt = _fit_in_a_new_process(cache)
    assert corrupt[:4] == (loglik, sigma, 0, misses) and corrupt[5] == ""


def test_the_program_cache_is_refused_where_others_can_write_and_can_be_turned_off(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    *_, hits, misses, _, stderr = _fit_in_a_new_process(shared)
    assert (hits, misses) == (0, 0) and not any(shared.iterdir())
    assert "others can write" in stderr and "GlmmBayesWarning" in stderr
    *_, hits, misses, _, stderr = _fit_in_a_new_process("0")
    assert (hits, misses, stderr) == (0, 0, "")


def test_jax_caches_are_cleared_once_the_bound_has_turned_over(monkeypatch):
    bound = compiled_module.MAX_COMPILED
    for k in range(bound):  # the cache is full
        compiled(bind(_scaled, factor=1000 + k))
    cleared = []
    monkeypatch.setattr(compiled_module.jax, "clear_caches", lambda: cleared.append(1))
    monkeypatch.setattr(compiled_module, "_evicted", 0)
    for k in range(2 * bound + 1):  # drops 2 * bound + 1 functions
        compiled(bind(_scaled, factor=2000 + k))
    assert len(cleared) == 2


def _crossed_data(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g, h = np.repeat(np.arange(20), 6), np.tile(np.arange(6), 20)
    x = rng.normal(size=g.size)
    eta = 0.5 + 0.4 * x + rng.normal(0, 0.5, 20)[g] + rng.normal(0, 0.3, 6)[h]
    return pd.DataFrame(
        {
            "y": eta + rng.normal(size=g.size),
            "c": rng.poisson(np.exp(eta)),
            "x": x,
            "g": [f"g{k}" for k in g],
            "h": [f"h{k}" for k in h],
        }
    )


_ENGINES = {
    "reml": lambda d: gb.Model("y ~ x + (x | g) + (1 | h)", d).fit_reml(),
    "ar1": lambda d: gb.Model("y ~ x + (1 | g)", d, correlation=gb.AR1(group="g")).fit_reml(),
    "satterthwaite": lambda d: (
        gb.Model("y ~ x + (1 | g)", d).fit_reml().fixef_tests(ddf="satterthwaite")
    ),
    "laplace": lambda d: gb.Model("c ~ x + (1 | g) + (1 | h)", d, family="poisson").fit_laplace(),
    "agq": lambda d: gb.Model("c ~ x + (1 | g)", d, family="poisson").fit_laplace(nagq=5),
    "nagq0": lambda d: gb.Model("c ~ x + (1 | g)", d, family="poisson").fit_laplace(nagq=0),
    "negbinomial": lambda d: gb.Model("c ~ x + (1 | g)", d, family="negbinomial").fit_laplace(),
    "map": lambda d: gb.Model("y ~ x + (x | g)", d).fit_map(draws=20),
    "nuts": lambda d: gb.Model("c ~ x + (1 | g)", d, family="poisson").sample(
        draws=20, warmup=20, chains=1, progress=False
    ),
}


@pytest.mark.parametrize("engine", list(_ENGINES))
def test_a_fit_runs_no_jax_operation_outside_its_compiled_programs(engine):
    """After a first fit, JAX's in-memory caches are emptied (as the bound on programs does);
    the package's programs keep their executables, so a refit of a same-shaped model compiles
    nothing unless some JAX operation runs eagerly on the fit path (each would compile a small
    program of its own, in every new process, outside the disk cache)."""
    import jax

    fit = _ENGINES[engine]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gb.GlmmBayesWarning)  # 20 draws; small data
        fit(_crossed_data(0))
        jax.clear_caches()
        compiles, _ = compiles_during(lambda: fit(_crossed_data(1)))
    assert compiles == []


def test_the_folder_is_trimmed_to_its_bound_on_a_first_put_and_then_per_written_bytes(
    tmp_path, monkeypatch
):
    """Least recently used entries go first once the folder exceeds MAX_BYTES; a process
    measures the folder on its first put and after each EVICT_EVERY_BYTES it writes."""
    import os

    from glmm_bayes import compilation_cache

    monkeypatch.setattr(compilation_cache, "MAX_BYTES", 3 * 132)  # three entries of 100 bytes
    monkeypatch.setattr(compilation_cache, "EVICT_EVERY_BYTES", 250)
    store = compilation_cache._program_store(tmp_path)
    for k in range(5):
        store.put(f"key{k}", bytes(100))
        os.utime(tmp_path / f"key{k}", (k, k))  # key0 the least recently used
    # puts 1 (first), 4 (300 bytes written since) measured the folder: key0 went at put 4
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["key1", "key2", "key3", "key4"]
    assert store.get("key4") == bytes(100)
    later = compilation_cache._program_store(tmp_path)  # another process: trims at once
    later.put("key5", bytes(100))
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["key3", "key4", "key5"]
