"""Target 4 of issue 8: NUTS on InstEval `y ~ service + (1 | s) + (1 | d) + (1 | dept)` (73k
rows, 4,128 random effects), 4 x (1000 + 1000), in under 5 minutes within 4 GB on 2 cores;
glmm_bayes vs Bambi + numpyro in the same run (`--no-peer` skips the peer, which takes much
longer). Whole fresh processes with each side's defaults: wall time, peak resident memory,
min bulk ESS of the population parameters. Neither stores the pointwise log-likelihood (73k x
4,000 values) by default: ours computes it when `loo()` asks, which the script then times
(`loo s`, and the peak memory after it).

`--per-core` gives both sides a CPU device per core (ours `gb.use_cpu_cores()`, the peer
numpyro's `set_host_device_count(4)`, a device per chain), so chains run side by side.

    python benchmarks/nuts_insteval.py [--draws 1000] [--no-peer] [--per-core]
"""

from __future__ import annotations

import argparse
import os
import tempfile

from common import print_table, python_for, run_fresh

FORMULA = "y ~ service + (1 | s) + (1 | d) + (1 | dept)"

OURS = """
import json, resource, time
import glmm_bayes as gb
if {per_core}:
    gb.use_cpu_cores()
m = gb.Model("{formula}", gb.load_dataset("InstEval"))
post = m.sample(draws={draws}, warmup={draws}, chains=4, seed=1, progress=False)
diagnostics = post.diagnostics()
peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
start = time.perf_counter()
elpd = float(post.loo().elpd)
print(json.dumps({{"min_ess": float(diagnostics["ess_bulk"].min()),
                  "max_rhat": float(diagnostics["r_hat"].max()),
                  "steps": float(post.idata.sample_stats["n_steps"].mean()),
                  "peak_gb": peak_gb, "loo_s": time.perf_counter() - start, "elpd": elpd,
                  "loo_peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20}}))
"""

BAMBI = """
import json, resource, numpyro
if {per_core}:
    numpyro.set_host_device_count(4)
import arviz as az, bambi as bmb, pandas as pd
data = pd.read_csv("{csv}")
for column in ("s", "d", "dept", "service"):
    data[column] = data[column].astype(str)
model = bmb.Model("{formula}", data)
idata = model.fit(draws={draws}, tune={draws}, chains=4, inference_method="numpyro",
                  random_seed=1, progressbar=False)
ess, rhat = az.ess(idata, method="bulk"), az.rhat(idata)
names = [n for n in ess.data_vars if "|" not in n or n.endswith("_sigma")]
print(json.dumps({{"min_ess": min(float(ess[n].min()) for n in names),
                  "max_rhat": max(float(rhat[n].max()) for n in names),
                  "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20}}))
"""


def _ess_rate(run: dict) -> float:
    """Minimum bulk ESS per second of the whole process."""
    return run["min_ess"] / run["process_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--no-peer", action="store_true", help="skip Bambi")
    parser.add_argument("--per-core", action="store_true", help="a CPU device per core, both sides")
    args = parser.parse_args()
    import glmm_bayes as gb

    ours = run_fresh(OURS.format(formula=FORMULA, draws=args.draws, per_core=args.per_core))
    ours["process_s"] -= ours["loo_s"]  # the sampling process as the peer's; loo() after it
    row = lambda name, r: (
        name,
        f"{r['process_s']:.0f}",
        f"{r['peak_gb']:.2f}",
        f"{r['min_ess']:.0f}",
        f"{r['max_rhat']:.3f}",
        f"{r['min_ess'] / r['process_s']:.2f}",
    )
    rows = [
        ("job", "wall s", "peak GB", "min bulk ESS", "max R-hat", "ESS / s"),
        row(f"glmm_bayes NUTS ({ours['steps']:.0f} steps per draw)", ours),
    ]
    bambi_python = None if args.no_peer else python_for("bambi")
    if bambi_python:
        csv = os.path.join(tempfile.mkdtemp(), "InstEval.csv")
        gb.load_dataset("InstEval").to_csv(csv, index=False)
        peer = run_fresh(
            BAMBI.format(formula=FORMULA, csv=csv, draws=args.draws, per_core=args.per_core),
            python=bambi_python,
            timeout=7200,
        )
        rows.append(row("Bambi + numpyro", peer))
        rows.append(
            (
                "ESS / s ratio (ours / Bambi)",
                "",
                "",
                "",
                "",
                f"{_ess_rate(ours) / _ess_rate(peer):.2f}",
            )
        )
    devices = "a CPU device per core" if args.per_core else "one CPU device"
    print_table(f"InstEval NUTS 4 x ({args.draws} + {args.draws}), {devices}", rows)
    print(
        f"then post.loo(): {ours['loo_s']:.0f} s (the pointwise log-likelihood computed then), "
        f"peak {ours['loo_peak_gb']:.2f} GB, elpd_loo {ours['elpd']:.1f}"
    )


if __name__ == "__main__":
    main()
