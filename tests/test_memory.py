"""Compiled programs and JAX's caches stay bounded over many fits of different shapes.

Each fit below has a new shape (another number of groups), so each compiles its own programs.
The package keeps `core.compiled.MAX_COMPILED` of them and clears JAX's in-memory caches each
time that many have been dropped; without that, JAX's tracing caches kept ~1.8 MB per REML
shape (678 MB after 50 fits, 951 MB after 150). The bound asserted is the issue's: after 50
fits, 100 more add under 30 MB of resident memory (measured ~10 MB; allocator noise is a few MB).
"""

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import gc, warnings
    import numpy as np, pandas as pd
    import glmm_bayes as gb
    warnings.simplefilter("ignore")

    def resident_mb():
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) / 1024 for l in f if l.startswith("VmRSS"))

    def fit(i):
        rng = np.random.default_rng(i)
        groups = 5 + i
        g = np.repeat(np.arange(groups), 4)
        x = rng.normal(size=g.size)
        y = 1 + 0.5 * x + rng.normal(0, 0.7, groups)[g] + rng.normal(size=g.size)
        data = pd.DataFrame({"y": y, "x": x, "g": [f"g{k}" for k in g]})
        if i % 2 == 0:
            gb.Model("y ~ x + (1 | g)", data).fit_reml()
        else:
            data["c"] = rng.poisson(np.exp(0.3 + 0.3 * x))
            gb.Model("c ~ x + (1 | g)", data, family="poisson").fit_laplace()

    for i in range(150):
        fit(i)
        if i + 1 in (50, 150):
            gc.collect()
            print(resident_mb(), flush=True)
    """
)


@pytest.mark.slow
def test_memory_levels_off_over_many_new_shapes():
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=1500, check=True
    )
    after_50, after_150 = map(float, out.stdout.split())
    assert after_150 - after_50 < 30, (after_50, after_150)
