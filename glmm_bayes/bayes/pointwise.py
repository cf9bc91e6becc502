"""log p(y_i | draw) for every draw and row: the pointwise log-likelihood that LOO needs.

One compiled program per model shape maps over a chunk of draws (`DRAW_BATCH` at a time,
vectorised within a batch, in sequence across batches); chunks of at most `CHUNK_VALUES`
values are written one after another into one NumPy array, so the only large allocation is
the result itself. With correlated residuals the density of y_i is given the rest of its group
(`program.CorrelatedNormal`).
"""

from __future__ import annotations

import jax
import numpy as np
from numpyro.infer.util import log_likelihood

from ..core.compiled import bind, compiled
from .program import hierarchical_model
from .program_structure import ProgramStructure
from .random_effects import DRAW_BATCH

CHUNK_VALUES = 2**22  # draws x rows per call of the compiled program (32 MB in float64)


def _pointwise(flat: dict, arrays, priors, structure: ProgramStructure):
    def one(draw):
        return log_likelihood(
            hierarchical_model,
            draw,
            arrays=arrays,
            priors=priors,
            structure=structure,
            leave_one_out=True,
            batch_ndims=0,
        )["y"]

    return jax.lax.map(one, flat, batch_size=DRAW_BATCH)


def pointwise_loglik(samples: dict, arrays, priors, structure: ProgramStructure) -> np.ndarray:
    """(chains, draws, rows) from samples with leading axes (chains, draws); `priors`
    (`PriorValues`) only complete the program, whose sites are all given. Every chunk has the
    same number of draws (the last is padded with repeats of the last draw), so the program
    compiles once."""
    lead = next(iter(samples.values())).shape[:2]
    flat = {k: np.reshape(v, (-1,) + v.shape[2:]) for k, v in samples.items()}
    n_draws, n_rows = int(np.prod(lead)), int(np.shape(arrays.y)[0])
    chunk = min(n_draws, max(DRAW_BATCH, CHUNK_VALUES // n_rows))
    program = compiled(bind(_pointwise, structure=structure))
    out = None
    for start in range(0, n_draws, chunk):
        rows = np.minimum(np.arange(start, start + chunk), n_draws - 1)
        part = np.asarray(program({k: v[rows] for k, v in flat.items()}, arrays, priors))
        if out is None:
            out = np.empty((n_draws, n_rows), dtype=part.dtype)
        out[start : start + chunk] = part[: n_draws - start]
    return out.reshape(lead + (n_rows,))
