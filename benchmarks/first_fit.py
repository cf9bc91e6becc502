"""Time to first result (issue 29, target 3): a whole fresh process that imports the package,
reads the data and fits one model with the defaults, against lme4's whole process
(`Rscript`, `library(lme4)` included) in the same run.

Ours runs twice per repeat: "first" with an empty program cache (a new user's first fit) and
"later" with the cache the first process filled (every later process). Medians over the
repeats.

- sleepstudy `Reaction ~ Days + (Days | Subject)`, REML;
- a grouseticks-shaped Poisson GLMM, `TICKS ~ YEAR + HEIGHT + (1|BROOD) + (1|INDEX) +
  (1|LOCATION)` (403 rows, three crossed terms, one an observation-level term), Laplace, on
  the simulated data frozen in tests/reference/data/ticks_sim.csv;
- VerbAgg `r2 ~ Anger + Gender + btype + situ + (1|id) + (1|item)` (7,584 rows, 316 x 24
  crossed), Bernoulli, Laplace: lme4's own VerbAgg data where R is present (written to a CSV
  that both sides read), else `nuts_glmm.verbagg_like`'s simulated data of its design.

    python benchmarks/first_fit.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from common import print_table, run_fresh, run_r
from nuts_glmm import FORMULA as VERBAGG_FORMULA
from nuts_glmm import verbagg_like

TICKS = Path(__file__).resolve().parent.parent / "tests" / "reference" / "data" / "ticks_sim.csv"
SLEEP = "sleepstudy"

OURS = """
import json, time, warnings
start = time.perf_counter()
import glmm_bayes as gb
import pandas as pd
warnings.simplefilter("ignore")
data = {load}
fit = gb.Model("{formula}", data{family}).{method}()
print(json.dumps({{"loglik": float(fit.loglik), "inner_s": time.perf_counter() - start}}))
"""

LME4 = """
start <- Sys.time()
suppressMessages(library(lme4))
data <- {load}
fit <- suppressWarnings({call})
cat(sprintf('{{"loglik": %.10f, "inner_s": %.4f}}\\n', as.numeric(logLik(fit)),
            as.numeric(Sys.time() - start, units = "secs")))
"""

JOBS = {
    "sleepstudy REML": dict(
        load=f"gb.load_dataset({SLEEP!r})",
        formula="Reaction ~ Days + (Days | Subject)",
        family="",
        method="fit_reml",
        r_load="lme4::sleepstudy",
        r_call="lmer(Reaction ~ Days + (Days | Subject), data)",
    ),
    "grouseticks-shaped Poisson, Laplace": dict(
        load=f"pd.read_csv({str(TICKS)!r}, dtype={{'YEAR': str, 'BROOD': str, "
        "'LOCATION': str, 'INDEX': str})",
        formula="TICKS ~ YEAR + HEIGHT + (1|BROOD) + (1|INDEX) + (1|LOCATION)",
        family=', family="poisson"',
        method="fit_laplace",
        r_load=f"within(read.csv('{TICKS}'), {{YEAR <- factor(YEAR); BROOD <- factor(BROOD); "
        "LOCATION <- factor(LOCATION); INDEX <- factor(INDEX)})",
        r_call="glmer(TICKS ~ YEAR + HEIGHT + (1|BROOD) + (1|INDEX) + (1|LOCATION), data, "
        "family = poisson)",
    ),
    "VerbAgg Bernoulli, Laplace": dict(
        load="pd.read_csv('{verbagg}')",
        formula=VERBAGG_FORMULA,
        family=', family="bernoulli"',
        method="fit_laplace",
        r_load="read.csv('{verbagg}', stringsAsFactors = TRUE)",
        r_call=f"glmer({VERBAGG_FORMULA}, data, family = binomial)",
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    verbagg = os.path.join(tempfile.mkdtemp(), "verbagg.csv")
    exported = run_r(
        f"v <- transform(lme4::VerbAgg, r2 = as.integer(r2 == 'Y')); "
        f"write.csv(v, '{verbagg}', row.names = FALSE); cat('{{}}\\n')"
    )
    if exported is None:
        verbagg_like().to_csv(verbagg, index=False)
    rows = [("job", "ours first", "ours later", "lme4", "first/lme4", "later/lme4")]
    for name, job in JOBS.items():
        job = {k: v.replace("{verbagg}", verbagg) for k, v in job.items()}
        first, later, peer = [], [], []
        for _ in range(args.repeats):
            code = OURS.format(**job)
            with tempfile.TemporaryDirectory() as cache:
                first.append(run_fresh(code, cache=cache)["process_s"])
                later.append(run_fresh(code, cache=cache)["process_s"])
            r = run_r(LME4.format(load=job["r_load"], call=job["r_call"]))
            if r is not None:
                peer.append(r["process_s"])
        med = statistics.median
        lme4 = med(peer) if peer else float("nan")
        rows.append(
            (
                name,
                f"{med(first):.2f} s",
                f"{med(later):.2f} s",
                f"{lme4:.2f} s" if peer else "no R",
                f"{med(first) / lme4:.2f}",
                f"{med(later) / lme4:.2f}",
            )
        )
    print_table(f"Whole fresh processes, medians of {args.repeats}", rows)


if __name__ == "__main__":
    main()
