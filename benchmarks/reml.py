"""Target 3 of issue 8: REML, glmm_bayes vs lme4 (when Rscript is present) and statsmodels
MixedLM (when installed), each in fresh processes in the same run:

- sleepstudy `Reaction ~ Days + (Days | Subject)`: the first fit after import, the mean of
  20 refits of same-shaped models (other responses) in one process, and profile intervals for
  all six parameters (`confint(method="profile")`), the first in the process and that of the
  last refit;
- InstEval `y ~ service + (1 | s) + (1 | d) + (1 | dept)` (73k rows, 4,128 random effects),
  one fit (`--insteval`, slower).

    python benchmarks/reml.py [--insteval]
"""

from __future__ import annotations

import argparse

from common import print_table, python_for, run_fresh, run_r

OURS = """
import json, time
import numpy as np
t0 = time.perf_counter()
import glmm_bayes as gb
t_import = time.perf_counter() - t0
data = gb.load_dataset("{data}")
t = time.perf_counter()
fit = gb.Model("{formula}", data).fit_reml()
first = time.perf_counter() - t
rng = np.random.default_rng(0)
refits = []
for k in range({refits}):
    y = data["{response}"] + rng.normal(0, 1e-3 * data["{response}"].std(), len(data))
    t = time.perf_counter()
    refit = gb.Model("{formula}", data.assign(**{{"{response}": y}})).fit_reml()
    refits.append(time.perf_counter() - t)
profiles = []
for profiled in ([fit, refit] if {refits} else []):
    t = time.perf_counter()
    profiled.confint(method="profile")
    profiles.append(time.perf_counter() - t)
print(json.dumps({{"import": t_import, "first": first,
                  "refit": float(np.mean(refits)) if refits else None,
                  "loglik": fit.loglik, "profiles": profiles}}))
"""

LME4 = """
suppressMessages({{library(lme4); library(jsonlite)}})
data <- read.csv("{csv}")
for (v in c({factors})) data[[v]] <- factor(data[[v]])
t <- system.time(fit <- lmer({formula}, data, REML = TRUE))[["elapsed"]]
times <- sapply(seq_len({refits}), function(k) {{
  d <- data; d${response} <- d${response} + rnorm(nrow(d), 0, 1e-3 * sd(d${response}))
  system.time(lmer({formula}, d, REML = TRUE))[["elapsed"]]
}})
profile <- if ({refits} > 0) system.time(confint(fit, method = "profile"))[["elapsed"]] else NA
cat(toJSON(list(first = t, refit = if ({refits} > 0) mean(times) else NA, profile = profile,
                loglik = as.numeric(logLik(fit))), auto_unbox = TRUE, digits = NA))
"""

STATSMODELS = """
import json, time
import pandas as pd
import statsmodels.formula.api as smf
data = pd.read_csv("{csv}")
t = time.perf_counter()
model = smf.mixedlm("Reaction ~ Days", data, groups=data["Subject"], re_formula="~Days")
fit = model.fit(reml=True)
print(json.dumps({{"first": time.perf_counter() - t, "loglik": float(fit.llf)}}))
"""

JOBS = {
    "sleepstudy": dict(
        data="sleepstudy",
        formula="Reaction ~ Days + (Days | Subject)",
        response="Reaction",
        factors='"Subject"',
        refits=20,
    ),
    "InstEval": dict(
        data="InstEval",
        formula="y ~ service + (1 | s) + (1 | d) + (1 | dept)",
        response="y",
        factors='"s", "d", "dept", "service"',
        refits=0,
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--insteval", action="store_true", help="also fit InstEval")
    args = parser.parse_args()
    import os
    import tempfile

    import glmm_bayes as gb

    rows = [("job", "glmm_bayes s", "peer s", "ratio (ours/peer)")]
    for name, job in JOBS.items():
        if name == "InstEval" and not args.insteval:
            continue
        ours = run_fresh(OURS.format(**job))
        csv = os.path.join(tempfile.mkdtemp(), f"{name}.csv")
        gb.load_dataset(job["data"]).to_csv(csv, index=False)
        lme4 = run_r(LME4.format(csv=csv, **job))
        rows.append((f"{name}: import glmm_bayes", f"{ours['import']:.2f}", "", ""))
        rows.append(
            (
                f"{name}: first REML fit",
                f"{ours['first']:.3f}",
                f"{lme4['first']:.3f}" if lme4 else "no R",
                f"{ours['first'] / lme4['first']:.2f}" if lme4 else "",
            )
        )
        if ours["refit"] is not None:
            rows.append(
                (
                    f"{name}: REML refit, same shape",
                    f"{ours['refit']:.3f}",
                    f"{lme4['refit']:.3f}" if lme4 else "no R",
                    f"{ours['refit'] / lme4['refit']:.2f}" if lme4 else "",
                )
            )
        for label, seconds in zip(("first in the process", "of a refit"), ours["profiles"]):
            rows.append(
                (
                    f"{name}: profile intervals, {label}",
                    f"{seconds:.2f}",
                    f"{lme4['profile']:.2f}" if lme4 else "no R",
                    f"{seconds / lme4['profile']:.2f}" if lme4 else "",
                )
            )
        if lme4:
            rows.append(
                (f"{name}: logLik ours - lme4", f"{ours['loglik'] - lme4['loglik']:.2e}", "", "")
            )
        if name == "sleepstudy" and (python := python_for("statsmodels")):
            peer = run_fresh(STATSMODELS.format(csv=csv), python=python)
            rows.append(
                (
                    "sleepstudy: statsmodels MixedLM fit",
                    f"{ours['first']:.3f}",
                    f"{peer['first']:.3f}",
                    f"{ours['first'] / peer['first']:.2f}",
                )
            )
    print_table("REML", rows)


if __name__ == "__main__":
    main()
