"""Target 1 of issue 8: sleepstudy `Reaction ~ Days + (Days | Subject)`, NUTS 4 x (1000 + 1000),
min bulk ESS per wall second of the whole fresh process (import and compilation included),
glmm_bayes vs Bambi + numpyro in the same run.

    python benchmarks/nuts_sleepstudy.py [--draws 1000] [--chain-method auto]

Bambi is optional (`pip install .[bench]`, or a separate environment named by
$GLMM_BAYES_BENCH_PYTHON); without it only our figures print.
"""

from __future__ import annotations

import argparse

from common import print_table, python_for, run_fresh

OURS = """
import json, time
start = time.perf_counter()
import glmm_bayes as gb
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
    ours = run_fresh(OURS.format(draws=args.draws, chain_method=args.chain_method))
    rows = [("job", "wall s", "min bulk ESS", "ESS / s"),
            ("glmm_bayes NUTS (b integrated out)", f"{ours['process_s']:.1f}", f"{ours['min_ess']:.0f}",
             f"{ours['min_ess'] / ours['process_s']:.1f}")]
    bambi_python = python_for("bambi")
    if bambi_python:
        import glmm_bayes as gb, tempfile, os
        csv = os.path.join(tempfile.mkdtemp(), "sleepstudy.csv")
        gb.load_dataset("sleepstudy").to_csv(csv, index=False)
        peer = run_fresh(BAMBI.format(draws=args.draws, csv=csv), python=bambi_python)
        rows.append(("Bambi + numpyro", f"{peer['process_s']:.1f}", f"{peer['min_ess']:.0f}",
                     f"{peer['min_ess'] / peer['process_s']:.1f}"))
        ratio = (ours["min_ess"] / ours["process_s"]) / (peer["min_ess"] / peer["process_s"])
        rows.append(("ratio (ours / Bambi), ESS per s", f"{ratio:.2f}", "", "target >= 4"))
    else:
        rows.append(("Bambi + numpyro", "not installed", "", ""))
    print_table("sleepstudy NUTS, 4 chains x (%d + %d)" % (args.draws, args.draws), rows)


if __name__ == "__main__":
    main()
