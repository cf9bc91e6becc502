"""Target 2 of issue 8: a VerbAgg-sized Bernoulli GLMM (316 subjects x 24 items, crossed
random intercepts, 7,584 rows), NUTS 4 x (1000 + 1000), min bulk ESS of the population
parameters per wall second of the whole fresh process, glmm_bayes vs Bambi + numpyro in the same
run. The data are simulated with lme4's VerbAgg design and estimates (`verbagg_like`), so no R is
needed. Each side runs twice: as imported (one CPU device: ours runs the chains in blocks
from a thread per core, numpyro one after another), and with several CPU devices, where the
chains run side by side inside the program (ours `gb.use_cpu_cores()`, a device per core; the
peer `numpyro.set_host_device_count(4)`, numpyro's recipe of a device per chain). A single
seed's min ESS varies by +-15% (seed to seed, on both sides), so every configuration runs with
seeds 1..N (`--seeds`, default 3) and the table gives the means.

    python benchmarks/nuts_glmm.py [--draws 1000] [--seeds 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np
import pandas as pd
from common import PYTHON, print_table, python_for, run_fresh

FORMULA = "r2 ~ Anger + Gender + btype + situ + (1|id) + (1|item)"

OURS = """
import json, time
start = time.perf_counter()
import glmm_bayes as gb, pandas as pd
if {cores}:
    gb.use_cpu_cores()
m = gb.Model("{formula}", pd.read_csv("{csv}"), family="bernoulli")
post = m.sample(draws={draws}, warmup={draws}, chains=4, seed={seed}, progress=False)
min_ess = float(post.diagnostics()["ess_bulk"].min())
steps = float(post.idata.sample_stats["n_steps"].mean())
print(json.dumps({{"min_ess": min_ess, "steps": steps, "inner_s": time.perf_counter() - start}}))
"""

BAMBI = """
import json, time
start = time.perf_counter()
import numpyro
if {cores}:
    numpyro.set_host_device_count(4)
import arviz as az, bambi as bmb, pandas as pd
model = bmb.Model("{formula}", pd.read_csv("{csv}"), family="bernoulli")
idata = model.fit(draws={draws}, tune={draws}, chains=4, inference_method="numpyro",
                  random_seed={seed}, progressbar=False)
ess = az.ess(idata, method="bulk")
names = [n for n in ess.data_vars if "|" not in n or n.endswith("_sigma")]
min_ess = min(float(ess[n].min()) for n in names)
print(json.dumps({{"min_ess": min_ess, "inner_s": time.perf_counter() - start}}))
"""


def verbagg_like(seed: int = 1) -> pd.DataFrame:
    """VerbAgg's design (lme4): 316 subjects (trait anger score, gender) x 24 items (behaviour
    type, situation), responses from glmer's estimates of `FORMULA` on VerbAgg."""
    rng = np.random.default_rng(seed)
    n_id, n_item = 316, 24
    anger, male = rng.integers(11, 40, n_id), rng.random(n_id) < 0.23
    btype = np.tile(np.repeat(["curse", "scold", "shout"], 2), 4)
    situ = np.repeat(["other", "self"], 12)
    person, item = np.repeat(np.arange(n_id), n_item), np.tile(np.arange(n_item), n_id)
    data = pd.DataFrame(
        {
            "Anger": anger[person],
            "Gender": np.where(male, "M", "F")[person],
            "btype": btype[item],
            "situ": situ[item],
            "id": [f"p{i}" for i in person],
            "item": [f"S{j}" for j in item],
        }
    )
    return data.assign(r2=verbagg_responses(data, 1, rng)[0])


def verbagg_responses(data: pd.DataFrame, n: int, rng: np.random.Generator) -> np.ndarray:
    """n Bernoulli responses (n, rows) on `verbagg_like`'s design, each with new random
    intercepts of its subjects (sd 1.34) and items (sd 0.49), from glmer's estimates."""
    person = data["id"].str[1:].astype(int).to_numpy()
    item = data["item"].str[1:].astype(int).to_numpy()
    eta = (
        0.21
        + 0.057 * (data["Anger"].to_numpy() - 20)
        + 0.32 * (data["Gender"] == "M").to_numpy()
        - 1.06 * (data["btype"] == "scold").to_numpy()
        - 2.1 * (data["btype"] == "shout").to_numpy()
        - 1.05 * (data["situ"] == "self").to_numpy()
        + rng.normal(0, 1.34, (n, person.max() + 1))[:, person]
        + rng.normal(0, 0.49, (n, item.max() + 1))[:, item]
    )
    return rng.binomial(1, 1 / (1 + np.exp(-eta))).astype(float)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    csv = os.path.join(tempfile.mkdtemp(), "verbagg_like.csv")
    verbagg_like().to_csv(csv, index=False)
    seeds = range(1, args.seeds + 1)

    def runs(template, cores, python=PYTHON):
        """The mean of each figure over the seeds, fresh processes."""
        out = [
            run_fresh(
                template.format(formula=FORMULA, csv=csv, draws=args.draws, cores=cores, seed=seed),
                python=python,
            )
            for seed in seeds
        ]
        return {k: float(np.mean([o[k] for o in out])) for k in out[0]} | {
            "rate": float(np.mean([o["min_ess"] / o["process_s"] for o in out]))
        }

    rows = [("job (means over seeds)", "wall s", "min bulk ESS", "ESS / s")]
    ours, peers = {}, {}
    for cores, label in ((False, "one CPU device"), (True, "a CPU device per core")):
        ours[cores] = runs(OURS, cores)
        rows.append(
            (
                f"glmm_bayes, {label} ({ours[cores]['steps']:.0f} steps per draw)",
                f"{ours[cores]['process_s']:.1f}",
                f"{ours[cores]['min_ess']:.0f}",
                f"{ours[cores]['rate']:.1f}",
            )
        )
    bambi_python = python_for("bambi")
    for cores, label in ((False, "one CPU device"), (True, "a CPU device per chain")):
        if not bambi_python:
            rows.append(("Bambi + numpyro", "not installed", "", ""))
            break
        peers[cores] = runs(BAMBI, cores, bambi_python)
        rows.append(
            (
                f"Bambi + numpyro, {label}",
                f"{peers[cores]['process_s']:.1f}",
                f"{peers[cores]['min_ess']:.0f}",
                f"{peers[cores]['rate']:.1f}",
            )
        )
    for (mine, theirs), label in (
        ((True, False), "ours per core / Bambi as imported"),
        ((True, True), "ours per core / Bambi per chain"),
        ((False, False), "ours / Bambi, both one device"),
    ):
        if theirs in peers:
            rows.append(
                (
                    f"ratio {label}, ESS per s",
                    f"{ours[mine]['rate'] / peers[theirs]['rate']:.2f}",
                    "",
                    "target >= 2",
                )
            )
    print_table(
        f"VerbAgg-sized Bernoulli GLMM NUTS, 4 chains x ({args.draws} + {args.draws}), "
        f"seeds 1-{args.seeds}",
        rows,
    )


if __name__ == "__main__":
    main()
