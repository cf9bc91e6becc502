"""Random effects correlated through a known matrix: b ~ N(0, sigma_a^2 K) (`cov={"strain": K}`).

K is positive semi-definite over the levels of a grouping factor (a kinship or relatedness
matrix, GWAS-style). With K = V diag(lambda) V' and F = V_r diag(sqrt(lambda_r)) over the r
positive eigenvalues, b = F v with v ~ N(0, sigma_a^2 I_r): the engines see one term whose
every row loads on the r columns of v, Z F, with the isotropic factor sigma_a I_r
(`core.structure`); results report b per level of K, including levels without data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import DataError, ModelError

#: Eigenvalues of K below this fraction of the largest are zero (K is singular there).
EIGEN_TOL = 1e-10
#: A negative eigenvalue beyond this fraction of the largest makes K not PSD.
PSD_TOL = 1e-8


def relatedness_factor(
    K, factor: str, data_levels: tuple[str, ...]
) -> tuple[tuple[str, ...], np.ndarray]:
    """(levels of K, F with F F' = K) after checking K against the data's levels of `factor`."""
    if isinstance(K, pd.DataFrame):
        levels = [str(v) for v in K.index]
        if isinstance(K.index, pd.RangeIndex) and not set(data_levels) <= set(levels):
            raise DataError(
                f"cov[{factor!r}]: K's rows are unlabelled (0, 1, ...); index it by the "
                f"levels of {factor!r} ({', '.join(data_levels[:5])}, ...)"
            )
        if len(set(levels)) < len(levels):
            dup = sorted({v for v in levels if levels.count(v) > 1})
            raise DataError(f"cov[{factor!r}]: K has duplicated level(s) {dup[:10]}")
        columns = [str(v) for v in K.columns]
        if sorted(columns) != sorted(levels):
            raise DataError(f"cov[{factor!r}]: K's columns must be the levels of its index")
        values = K.to_numpy(dtype=float)[:, [columns.index(v) for v in levels]]
    else:
        try:
            values = np.asarray(K, dtype=float)
        except (TypeError, ValueError):
            raise DataError(f"cov[{factor!r}] must be a DataFrame or a numeric array") from None
        levels = list(data_levels)
        if values.shape != (len(levels), len(levels)):
            raise DataError(
                f"cov[{factor!r}]: an unlabelled K must be {len(levels)} x {len(levels)}, "
                f"one row per level of {factor!r} in sorted order; got {values.shape} "
                "(label K as a DataFrame to include levels without data)"
            )
    if not np.all(np.isfinite(values)):
        raise DataError(f"cov[{factor!r}]: K has NaN or infinite entries")
    scale = max(np.abs(values).max(initial=0.0), 1e-300)
    if np.abs(values - values.T).max(initial=0.0) > 1e-8 * scale:
        raise DataError(f"cov[{factor!r}]: K is not symmetric")
    if missing := [v for v in data_levels if v not in set(levels)]:
        raise DataError(
            f"cov[{factor!r}]: level(s) {missing[:10]} of {factor!r} in the data are not in K"
        )
    eigenvalues, vectors = np.linalg.eigh(0.5 * (values + values.T))
    top = eigenvalues[-1]
    if top <= 0 or eigenvalues[0] < -PSD_TOL * top:
        raise DataError(
            f"cov[{factor!r}]: K is not positive semi-definite (smallest eigenvalue "
            f"{eigenvalues[0]:.3g}, largest {top:.3g})"
        )
    keep = eigenvalues > EIGEN_TOL * top
    return tuple(levels), vectors[:, keep] * np.sqrt(eigenvalues[keep])


def check_cov_keys(cov: dict, factors: list[str]) -> None:
    if not isinstance(cov, dict):
        raise ModelError(f"cov= takes a dict {{grouping factor: K}}, got {type(cov).__name__}")
    for key in cov:
        if key not in factors:
            raise ModelError(
                f"cov={{{key!r}: ...}}: {key!r} is not a grouping factor of the "
                f"formula ({', '.join(dict.fromkeys(factors))})"
            )
