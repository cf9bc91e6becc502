"""log p(y_i | draw) for every draw and row: the pointwise log-likelihood that LOO needs.

One compiled program per model shape maps over the draws, `DRAW_BATCH` at a time (vectorised
within a batch, in sequence across batches), so memory is bounded by the batch. With correlated
residuals the density of y_i is given the rest of its group (`program.CorrelatedNormal`).
"""

from __future__ import annotations

import jax
import numpy as np
from numpyro.infer.util import log_likelihood

from ..core.compiled import bind, compiled
from .program import ProgramStructure, hierarchical_model
from .random_effects import DRAW_BATCH


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
    (`PriorValues`) only complete the program, whose sites are all given."""
    lead = next(iter(samples.values())).shape[:2]
    flat = {k: np.reshape(v, (-1,) + v.shape[2:]) for k, v in samples.items()}
    out = compiled(bind(_pointwise, structure=structure))(flat, arrays, priors)
    return np.asarray(out).reshape(lead + (-1,))
