"""log p(y_i | draw) for every draw and row: the pointwise log-likelihood that LOO needs.

It is computed in blocks of rows, every draw at once (`DRAW_BATCH` draws vectorised, in
sequence across batches), at most `CHUNK_VALUES` values a block: PSIS-LOO smooths each row's
draws by itself, so `results.loo` needs one block at a time, never the draws x rows matrix.
Every block has the same number of rows (the last repeats the last row), so the program
compiles once. With correlated residuals the density of y_i is given the rest of its group
(`program.CorrelatedNormal`), so such a model's rows are taken in one block, as are the rows
of a model whose draws x rows fit in one.
"""

from __future__ import annotations

from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np
import numpyro  # noqa: F401  (before its subpackages: see `lazy_modules.LazyModule`)
from numpyro.infer.util import log_likelihood

from ..core.compiled import bind, compiled
from ..core.structure import row_subset
from .program import hierarchical_model
from .program_structure import ProgramStructure
from .random_effects import DRAW_BATCH

CHUNK_VALUES = 2**22  # draws x rows per call of the compiled program (32 MB in float64)


def _pointwise(flat: dict, rows, arrays, priors, structure: ProgramStructure):
    """(draws, rows) log p(y_i | draw) for the rows `rows` (an index vector; None: all)."""
    x_mean = jnp.mean(arrays.Xt, axis=1)
    block = arrays if rows is None else row_subset(arrays, rows)

    def one(draw):
        return log_likelihood(
            hierarchical_model,
            draw,
            arrays=block,
            priors=priors,
            structure=structure,
            leave_one_out=True,
            x_mean=x_mean,
            batch_ndims=0,
        )["y"]

    return jax.lax.map(one, flat, batch_size=DRAW_BATCH)


def pointwise_blocks(
    samples: dict, arrays, priors, structure: ProgramStructure
) -> Iterator[tuple[slice, np.ndarray]]:
    """(rows, values) for consecutive blocks of rows, values (chains, draws, rows) from samples
    with leading axes (chains, draws); `priors` (`PriorValues`) only complete the program,
    whose sites are all given."""
    lead = next(iter(samples.values())).shape[:2]
    flat = {k: jax.device_put(np.reshape(v, (-1,) + v.shape[2:])) for k, v in samples.items()}
    n_draws, n_rows = int(np.prod(lead)), int(np.shape(arrays.y)[0])
    residual = structure.layout.residual
    tied = residual is not None and residual.gaussian
    one_block = tied or n_draws * n_rows <= CHUNK_VALUES  # the arrays as they are
    size = n_rows if one_block else max(1, CHUNK_VALUES // n_draws)
    program = compiled(bind(_pointwise, structure=structure))
    for start in range(0, n_rows, size):
        stop = min(start + size, n_rows)
        rows = None if one_block else np.minimum(np.arange(start, start + size), n_rows - 1)
        values = np.asarray(program(flat, rows, arrays, priors))[:, : stop - start]
        yield slice(start, stop), values.reshape(lead + (stop - start,))


def assemble(blocks: Iterator[tuple[slice, np.ndarray]], n_rows: int) -> np.ndarray:
    """The (chains, draws, rows) array of the blocks of `pointwise_blocks`."""
    out = None
    for rows, values in blocks:
        if out is None:
            out = np.empty(values.shape[:2] + (n_rows,), dtype=values.dtype)
        out[..., rows] = values
    return out
