"""Issue 29, target 4: sleepstudy `Reaction ~ Days + (Days | Subject)`, NUTS 4 x (1000 +
1000) with each side's defaults, min bulk ESS per wall second of the whole fresh process (import
and compilation included), glmm_bayes vs Bambi + numpyro in the same run. Ours runs cold (an
empty program cache, as a new user's first fit) and warm (the cache filled by an earlier
process). `--pairs N` runs N (ours cold, Bambi) pairs one after the other and reports the
median of each figure and the range of the pairs' ratios.

    python benchmarks/nuts_sleepstudy.py [--draws 1000] [--pairs 3] [--chain-method auto]

Bambi is optional (`pip install .[bench]`, or a separate environment named by
$GLMM_BAYES_BENCH_PYTHON); without it only our figures print.
"""

from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np
from common import print_table, python_for, run_fresh

OURS = """
import json, time
start = time.perf_counter()
import glmm_bayes as gb
m = gb.Model("Reaction ~ Days + (Days | Subject)", gb.load_dataset("sleepstudy"))
post = m.sample(draws={draws}, warmup={draws}, chains=4, seed=1, progress=False,
                chain_method="{chain_method}")
names = ["(Intercept)", "Days", "sd((Intercept)|Subject)", "sd(Days|Subject)", "sigma"]
min_ess = float(post.diagnostics().loc[names, "ess_bulk"].min())
print(json.dumps({{"min_ess": min_ess, "inner_s": time.perf_counter() - start}}))
"""

BAMBI = """
import json, time
start = time.perf_counter()
import arviz as az, bambi as bmb, pandas as pd
data = pd.read_csv("{csv}")
model = bmb.Model("Reaction ~ Days + (Days | Subject)", data)
idata = model.fit(draws={draws}, tune={draws}, chains=4, inference_method="numpyro",
                  random_seed=1, progressbar=False)
ess = az.ess(idata, method="bulk")
names = ["Intercept", "Days", "1|Subject_sigma", "Days|Subject_sigma", "sigma"]
min_ess = min(float(ess[n].min()) for n in names)
print(json.dumps({{"min_ess": min_ess, "inner_s": time.perf_counter() - start}}))
"""


def _rate(run: dict) -> float:
    return run["min_ess"] / run["process_s"]


def _row(label: str, runs: list[dict]) -> tuple:
    """Medians over the runs."""
    median = lambda key: float(np.median([r[key] for r in runs]))  # noqa: E731
    rate = float(np.median([_rate(r) for r in runs]))
    return label, f"{median('process_s'):.1f}", f"{median('min_ess'):.0f}", f"{rate:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--chain-method", default="auto")
    args = parser.parse_args()
    job = OURS.format(draws=args.draws, chain_method=args.chain_method)
    bambi_python = python_for("bambi")
    csv = os.path.join(tempfile.mkdtemp(), "sleepstudy.csv")
    if bambi_python:
        import glmm_bayes as gb

        gb.load_dataset("sleepstudy").to_csv(csv, index=False)
    cold, peers = [], []
    for _ in range(args.pairs):
        cold.append(run_fresh(job))
        if bambi_python:
            peers.append(run_fresh(BAMBI.format(draws=args.draws, csv=csv), python=bambi_python))
    with tempfile.TemporaryDirectory() as cache:
        run_fresh(job, cache=cache)
        warm = [run_fresh(job, cache=cache) for _ in range(args.pairs)]
    rows = [
        ("job (medians)", "wall s", "min bulk ESS", "ESS / s"),
        _row("glmm_bayes NUTS, cold", cold),
        _row("glmm_bayes NUTS, program cache filled", warm),
    ]
    if peers:
        rows.append(_row("Bambi + numpyro", peers))
        cold_ratios = [_rate(o) / _rate(p) for o, p in zip(cold, peers)]
        warm_ratios = [_rate(o) / _rate(p) for o, p in zip(warm, peers)]
        for label, ratios in (("cold", cold_ratios), ("warm", warm_ratios)):
            rows.append(
                (
                    f"ratio ours {label} / Bambi, ESS per s (pairs' range)",
                    f"{np.median(ratios):.2f}",
                    f"{min(ratios):.2f}-{max(ratios):.2f}",
                    "target >= 8 cold",
                )
            )
    else:
        rows.append(("Bambi + numpyro", "not installed", "", ""))
    print_table(f"sleepstudy NUTS, 4 chains x ({args.draws} + {args.draws}), defaults", rows)


if __name__ == "__main__":
    main()
