"""Target 5 of issue 29: batch jobs on one design against a warm loop. Over D simulated
sleepstudy responses, `fit_reml_batch` and `sample_batch` in one fresh process, against a loop
of D single fits (`m._with_response(y).fit_reml()` / `.sample()`) in another: the same draws,
each side's whole process and its first fit or call (where the compilation is) reported,
what a compiled dataset costs (the loop's later fits; the batch called a second time), and
the compile: the seconds of JAX's tracing, lowering and XLA compiling events in the first fit
or call.

    python benchmarks/batch.py [--design sleepstudy|verbagg] [--datasets 64] [--draws 1000]
                               [--chunk-size 64] [--dtype float64] [--skip-frequentist]
                               [--skip-nuts]
                               [--warm-cache] [--ray WORKERS]

`--warm-cache` also times each batch in a second fresh process that reads its compiled program
from the package's program cache filled by the first (the other runs start with an empty one).
`--ray WORKERS` also runs the NUTS batch as `batch_on_ray` on a local Ray instance with that
many workers (the ray extra), for the overhead of sending chunks to worker processes.

`--design verbagg` fits a VerbAgg-sized Bernoulli GLMM (7,584 rows, 316 x 24 crossed; see
nuts_glmm.py) by Laplace and NUTS instead of sleepstudy's REML and NUTS.

On a GPU machine (issue 29, target 7): `python benchmarks/batch.py --datasets 10000
--chunk-size 2500 --skip-frequentist` (10,000 sleepstudy-size datasets x 4 chains x (1000 +
1000)), and `--design verbagg --datasets 100 --chunk-size 100`; `--dtype float32` for the
GPU's native precision.
"""

from __future__ import annotations

import argparse
import os
import tempfile

from common import print_table, run_fresh

SETUP = """
import json, time
t0 = time.perf_counter()
import numpy as np
import jax
import glmm_bayes as gb
{design}
# the seconds JAX spends tracing, lowering and compiling (its own duration events)
compile_events = {{"/jax/core/compile/" + name + "_duration"
                  for name in ("jaxpr_trace", "jaxpr_to_mlir_module", "backend_compile")}}
compile_s = [0.0]
def count_compile(event, seconds, **_):
    if event in compile_events:
        compile_s[0] += seconds
jax.monitoring.register_event_duration_secs_listener(count_compile)
"""

#: the model m and D responses Y of each design
DESIGNS = {
    "sleepstudy": """
m = gb.Model("Reaction ~ Days + (Days | Subject)", gb.load_dataset("sleepstudy"))
Y = m.spec.y + np.random.default_rng(0).normal(0, 20, size=({datasets}, m.spec.n_obs))
""",
    # VerbAgg's size and design, responses simulated from glmer's estimates (nuts_glmm)
    "verbagg": """
import sys, pandas as pd
sys.path.insert(0, {here!r})
from nuts_glmm import FORMULA, verbagg_like, verbagg_responses
data = verbagg_like()
m = gb.Model(FORMULA, data, family="bernoulli")
Y = verbagg_responses(data, {datasets}, np.random.default_rng(0))
""",
}

LOOP = (
    SETUP
    + """
import warnings
compile_s[0], first_compile_s = 0.0, None
t, first, converged = time.perf_counter(), None, 0
for y in Y:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", gb.GlmmBayesWarning)
        {job}
    converged += not any(issubclass(w.category, gb.GlmmBayesWarning) for w in caught)
    if first is None:
        first, first_compile_s = time.perf_counter() - t, compile_s[0]
print(json.dumps({{"seconds": time.perf_counter() - t0, "batch_s": time.perf_counter() - t,
                  "first_s": first, "compile_s": first_compile_s, "converged": converged,
                  "device": str(jax.devices()[0])}}))
"""
)

BATCH = (
    SETUP
    + """
compile_s[0] = 0.0
t = time.perf_counter()
result = {job}
seconds, batch_s = time.perf_counter() - t0, time.perf_counter() - t
first_compile_s = compile_s[0]
t = time.perf_counter()
{job}  # again, compiled: what each dataset costs
print(json.dumps({{"seconds": seconds, "batch_s": batch_s, "again_s": time.perf_counter() - t,
                  "compile_s": first_compile_s, "converged": int(result.status["converged"].sum()),
                  "device": str(jax.devices()[0])}}))
"""
)


def _design(name: str, datasets: int) -> str:
    """The setup code of a design: the model `m` and `datasets` responses `Y`."""
    return DESIGNS[name].format(datasets=datasets, here=os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=64)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--chunk-size", type=int, default=64)
    parser.add_argument(
        "--dtype",
        choices=("float64", "float32"),
        default="float64",
        help="the NUTS runs' precision",
    )
    parser.add_argument("--design", choices=sorted(DESIGNS), default="sleepstudy")
    parser.add_argument("--skip-frequentist", action="store_true")
    parser.add_argument("--skip-nuts", action="store_true")
    parser.add_argument("--warm-cache", action="store_true")
    parser.add_argument("--ray", type=int, default=0, metavar="WORKERS")
    args = parser.parse_args()
    D = args.datasets
    design = _design(args.design, D)
    sampler = (
        f"draws={args.draws}, warmup={args.draws}, chains=4, seed=1, progress=False, "
        f"dtype={args.dtype!r}"
    )
    frequentist = "fit_reml" if args.design == "sleepstudy" else "fit_laplace"
    jobs = [
        (
            frequentist,
            f"m._with_response(y).{frequentist}()",
            f"m.{frequentist}_batch(Y, progress=False)",
        ),
        (
            f"NUTS 4 x ({args.draws} + {args.draws})",
            f"m._with_response(y).sample({sampler})",
            f"m.sample_batch(Y, {sampler}, chunk_size={args.chunk_size})",
        ),
    ]
    if args.ray:
        jobs.append(
            (
                f"NUTS on Ray, {args.ray} workers",
                jobs[1][1],
                f"gb.batch_on_ray(m, Y, 'nuts', workers={args.ray}, {sampler})",
            )
        )
    rows = [
        (
            "job",
            f"loop of {D} s (its first fit)",
            f"batch of {D} s (its call)",
            "batch / loop, whole processes",
            "per dataset, compiled: loop, batch (ratio)",
            "compile: single fit, batch (ratio)",
            "converged: loop, batch",
        )
    ]
    device = ""
    for name, single_job, batch_job in jobs:
        if args.skip_frequentist if name == frequentist else args.skip_nuts:
            continue
        cache = tempfile.mkdtemp(prefix="glmm_bayes_cache_") if args.warm_cache else None
        loop = run_fresh(LOOP.format(design=design, job=single_job))
        batch = run_fresh(BATCH.format(design=design, job=batch_job), cache=cache)
        device = batch["device"]
        # a compiled dataset: the loop's later fits, the batch's second call; the compile:
        # JAX's tracing, lowering and XLA compiling in the first fit or call (the difference
        # of a batch's two calls also holds the machine's drift over ~D fits' work)
        loop_each = (loop["batch_s"] - loop["first_s"]) / (D - 1)
        batch_each = batch["again_s"] / D
        loop_compile, batch_compile = loop["compile_s"], batch["compile_s"]
        rows.append(
            (
                name,
                f"{loop['seconds']:.2f} ({loop['first_s']:.2f})",
                f"{batch['seconds']:.2f} ({batch['batch_s']:.2f})",
                f"{batch['seconds'] / loop['seconds']:.2f}",
                f"{loop_each:.3f}, {batch_each:.3f} ({batch_each / loop_each:.2f}; target <= 0.5)",
                f"{loop_compile:.2f}, {batch_compile:.2f} "
                f"({batch_compile / loop_compile:.2f}; target <= 1.2)",
                f"{loop['converged']}, {batch['converged']} of {D}",
            )
        )
        if cache:
            warm = run_fresh(BATCH.format(design=design, job=batch_job), cache=cache)
            rows.append(
                (
                    f"  {name}: the batch, program cache filled",
                    "",
                    f"{warm['seconds']:.2f} ({warm['batch_s']:.2f})",
                    f"{warm['seconds'] / loop['seconds']:.2f}",
                    "",
                )
            )
    print_table(f"Batch jobs, {args.design} design, device {device}, NUTS in {args.dtype}", rows)


if __name__ == "__main__":
    main()
