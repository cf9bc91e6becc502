"""-2 log p(y | beta, theta, aux) with the random effects integrated out, for every family.

Linear Gaussian models integrate u out exactly (`reml.gaussian_deviance`, with the relative
factor theta / sigma); every other family and link uses the Laplace / AGQ approximation.
Here theta holds the absolute factors T_k (Cov(b_k) = T_k T_k'), as the program's sites do.
The function is jitted with its structure static: numpyro evaluates a model eagerly while it
initialises, and one compiled call is much cheaper than compiling each of its operations.
"""

from __future__ import annotations

from functools import partial

import jax

from ..families import Family, Link, is_linear_gaussian
from .glmm_deviance import laplace_deviance
from .lmm_deviance import gaussian_deviance
from .structure import ModelArrays, RandomEffectsLayout

#: NUTS's "auto" integrates b out where the blocked factor's dense block has at most this many
#: columns (or the terms share one factor): the gradient of its Cholesky factor then costs about
#: what a non-centred gradient over the rows does (the measurements: benchmarks/README.md).
MAX_INTEGRATED_DENSE_BLOCK = 256


@partial(jax.jit, static_argnames=("layout", "family", "link", "nagq"))
def marginal_deviance(
    beta,
    theta,
    aux,
    arrays: ModelArrays,
    layout: RandomEffectsLayout,
    family: Family,
    link: Link,
    nagq: int = 1,
    residual=None,
):
    """`residual`: the natural parameters of the residual structure (`core.residual`)."""
    if is_linear_gaussian(family, link):
        return gaussian_deviance(beta, theta / aux, aux, arrays, layout, residual)
    return laplace_deviance(beta, theta, aux, arrays, layout, family, link, nagq)
