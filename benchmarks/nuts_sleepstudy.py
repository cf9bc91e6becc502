"""Target 1 of issue 8: sleepstudy `Reaction ~ Days + (Days | Subject)`, NUTS 4 x (1000 + 1000),
min bulk ESS per wall second of the whole fresh process (import and compilation included),
glmm_bayes vs Bambi + numpyro in the same run. Ours runs cold (nothing cached) and warm (a
second process with `gb.use_compilation_cache` filled by a first one).

    python benchmarks/nuts_sleepstudy.py [--draws 1000] [--chain-method auto]

Bambi is optional (`pip install .[bench]`, or a separate environment named by
$GLMM_BAYES_BENCH_PYTHON); without it only our figures print.
"""

from __future__ import annotations

import argparse
import os
import tempfile

from common import print_table, python_for, run_fresh

OURS = """
import json, time
start = time.perf_counter()
import glmm_bayes as gb
if {cache!r}:
    gb.use_compilation_cache({cache!r})
m = gb.Model("Reaction ~ Days + (Days | Subject)", gb.load_dataset("sleepstudy"))
post = m.sample(draws={draws}, warmup={draws}, chains=4, seed=1, progress=False,
                chain_method="{chain_method}", log_likelihood=False)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--chain-method", default="auto")
    args = parser.parse_args()
    job = OURS.format(draws=args.draws, chain_method=args.chain_method, cache="")
    ours = run_fresh(job)
    rows = [
        ("job", "wall s", "min bulk ESS", "ESS / s"),
        (
            "glmm_bayes NUTS, cold",
            f"{ours['process_s']:.1f}",
            f"{ours['min_ess']:.0f}",
            f"{ours['min_ess'] / ours['process_s']:.1f}",
        ),
    ]
    with tempfile.TemporaryDirectory() as cache:
        job = OURS.format(draws=args.draws, chain_method=args.chain_method, cache=cache)
        run_fresh(job)
        warm = run_fresh(job)
    rows.append(
        (
            "glmm_bayes NUTS, warm compilation cache",
            f"{warm['process_s']:.1f}",
            f"{warm['min_ess']:.0f}",
            f"{warm['min_ess'] / warm['process_s']:.1f}",
        )
    )
    bambi_python = python_for("bambi")
    if bambi_python:
        import glmm_bayes as gb

        csv = os.path.join(tempfile.mkdtemp(), "sleepstudy.csv")
        gb.load_dataset("sleepstudy").to_csv(csv, index=False)
        peer = run_fresh(BAMBI.format(draws=args.draws, csv=csv), python=bambi_python)
        rows.append(
            (
                "Bambi + numpyro",
                f"{peer['process_s']:.1f}",
                f"{peer['min_ess']:.0f}",
                f"{peer['min_ess'] / peer['process_s']:.1f}",
            )
        )
        for label, run in (("cold", ours), ("warm", warm)):
            ratio = (run["min_ess"] / run["process_s"]) / (peer["min_ess"] / peer["process_s"])
            rows.append(
                (f"ratio ours {label} / Bambi, ESS per s", f"{ratio:.2f}", "", "target >= 4")
            )
    else:
        rows.append(("Bambi + numpyro", "not installed", "", ""))
    print_table(f"sleepstudy NUTS, 4 chains x ({args.draws} + {args.draws})", rows)


if __name__ == "__main__":
    main()
