"""Target 5 of issue 8: batch jobs on one design. Per-dataset cost of `fit_reml_batch` and
`sample_batch` over D simulated sleepstudy responses, against one single fit in a fresh process
(import and compilation included, as a user running one fit at a time pays them).

    python benchmarks/batch.py [--datasets 64] [--draws 1000] [--chunk-size 64] [--dtype float64]
                               [--skip-reml] [--warm-cache] [--ray WORKERS]

`--warm-cache` also times each batch in a second fresh process that reads its compiled program
from a persistent compilation cache (`gb.use_compilation_cache`) filled by the first.
`--ray WORKERS` also runs the NUTS batch as `batch_on_ray` on a local Ray instance with that
many workers (the ray extra), for the overhead of sending chunks to worker processes.

On a GPU machine: `python benchmarks/batch.py --datasets 1000 --chunk-size 1000 --skip-reml` (the
issue's 1,000 datasets x 4 chains x (1000 + 1000) target), with `--dtype float32` for the GPU's
native precision.
"""

from __future__ import annotations

import argparse
import tempfile

from common import print_table, run_fresh

SETUP = """
import json, time
t0 = time.perf_counter()
import numpy as np
import jax
import glmm_bayes as gb
if {cache!r}:
    gb.use_compilation_cache({cache!r})
data = gb.load_dataset("sleepstudy")
m = gb.Model("Reaction ~ Days + (Days | Subject)", data)
rng = np.random.default_rng(0)
Y = m.spec.y + rng.normal(0, 20, size=({datasets}, m.spec.n_obs))
"""

SINGLE = (
    SETUP
    + """
{job}
print(json.dumps({{"seconds": time.perf_counter() - t0, "device": str(jax.devices()[0])}}))
"""
)

BATCH = (
    SETUP
    + """
t = time.perf_counter()
result = {job}
print(json.dumps({{"seconds": time.perf_counter() - t0, "batch_s": time.perf_counter() - t,
                  "converged": int(result.status["converged"].sum()),
                  "device": str(jax.devices()[0])}}))
"""
)


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
    parser.add_argument("--skip-reml", action="store_true")
    parser.add_argument("--warm-cache", action="store_true")
    parser.add_argument("--ray", type=int, default=0, metavar="WORKERS")
    args = parser.parse_args()
    D = args.datasets
    sampler = (
        f"draws={args.draws}, warmup={args.draws}, chains=4, seed=1, progress=False, "
        f"dtype={args.dtype!r}"
    )
    jobs = [
        ("REML", "m.fit_reml()", "m.fit_reml_batch(Y, progress=False)"),
        (
            f"NUTS 4 x ({args.draws} + {args.draws})",
            f"m._with_response(Y[0]).sample({sampler}, log_likelihood=False)",
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
            "single fit s",
            f"batch of {D} s",
            "of which the batch call",
            "per dataset / single",
        )
    ]
    device = ""
    for name, single_job, batch_job in jobs:
        if name == "REML" and args.skip_reml:
            continue
        cache = tempfile.mkdtemp(prefix="glmm_bayes_cache_") if args.warm_cache else ""
        single = run_fresh(SINGLE.format(datasets=D, job=single_job, cache=""))
        batch = run_fresh(BATCH.format(datasets=D, job=batch_job, cache=cache))
        device = batch["device"]
        rows.append(
            (
                name,
                f"{single['seconds']:.2f}",
                f"{batch['seconds']:.2f}",
                f"{batch['batch_s']:.2f}",
                f"{batch['seconds'] / D / single['seconds']:.3f}",
            )
        )
        rows.append(
            (
                f"  {name}: converged datasets",
                "",
                f"{batch['converged']} / {D}",
                "",
                "target <= 0.2",
            )
        )
        if cache:
            warm = run_fresh(BATCH.format(datasets=D, job=batch_job, cache=cache))
            rows.append(
                (
                    f"  {name}: warm compilation cache",
                    "",
                    f"{warm['seconds']:.2f}",
                    f"{warm['batch_s']:.2f}",
                    f"{warm['seconds'] / D / single['seconds']:.3f}",
                )
            )
    print_table(f"Batch jobs, sleepstudy design, device {device}, NUTS in {args.dtype}", rows)


if __name__ == "__main__":
    main()
