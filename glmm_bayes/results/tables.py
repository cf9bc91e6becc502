"""Tables in lme4's layout, built from samples (a leading sample axis S; S = 1 for point fits).

Population parameters are named as the `ParameterMap` names them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special

from ..design import ModelSpec

INTERVAL = (0.025, 0.975)


def family_line(spec: ModelSpec) -> str:
    """The summaries' family line, lme4's, with the parameters the user fixed (df = 4) and the
    zero-inflation formula."""
    fixed = ", ".join(f"{name} = {value:g}" for name, value in spec.family.fixed)
    zi = f", {spec.family.zero_model}: {spec.zi_formula}" if spec.zi is not None else ""
    disp = f", dispersion: {spec.dispersion_formula}" if spec.dispersion is not None else ""
    return (
        f"Family: {spec.family.name}{f' ({fixed})' if fixed else ''} ( {spec.link.name} ){disp}{zi}"
    )


def _summarise(values: np.ndarray, point=None) -> dict:
    flat = np.asarray(values).reshape(-1)
    estimate = flat.mean() if point is None else point
    if flat.size == 1:
        return {"estimate": estimate}
    lower, upper = np.quantile(flat, INTERVAL)
    return {"estimate": estimate, "sd": flat.std(ddof=1), "lower": lower, "upper": upper}


def varcorr_table(spec: ModelSpec, covariances, sigma) -> pd.DataFrame:
    """lme4's as.data.frame(VarCorr()): grp, var1, var2, vcov, sdcor (and sd, lower, upper of
    sdcor)."""
    rows = []
    for term, cov in zip(spec.terms, covariances):
        sd = np.sqrt(np.diagonal(cov, axis1=-2, axis2=-1))
        for j, coef in enumerate(term.names):
            rows.append((term.label, coef, None, cov[..., j, j], sd[..., j]))
        for j, l in zip(*np.triu_indices(term.q, 1)):
            rows.append(
                (
                    term.label,
                    term.names[j],
                    term.names[l],
                    cov[..., j, l],
                    cov[..., j, l] / (sd[..., j] * sd[..., l]),
                )
            )
    if spec.family.residual_sd:
        rows.append(("Residual", None, None, np.asarray(sigma) ** 2, np.asarray(sigma)))
    records = []
    for grp, var1, var2, vcov, sdcor in rows:
        summary = _summarise(sdcor)
        summary.pop("estimate")
        records.append(
            {
                "grp": grp,
                "var1": var1,
                "var2": var2,
                "vcov": float(np.mean(vcov)),
                "sdcor": float(np.mean(sdcor)),
                **summary,
            }
        )
    return pd.DataFrame.from_records(records)


def population_table(values: dict[str, np.ndarray], points: dict | None = None) -> pd.DataFrame:
    """One row per population parameter: estimate (mean, or the given point), sd, lower, upper."""
    points = points or {}
    return pd.DataFrame.from_dict(
        {name: _summarise(v, points.get(name)) for name, v in values.items()}, orient="index"
    )


def ranef_tables(spec: ModelSpec, values, cond_sd) -> dict[str, pd.DataFrame]:
    """Per grouping factor: levels x (condval | condsd, term), merging terms on one factor."""
    out: dict[str, pd.DataFrame] = {}
    for term, val, sd in zip(spec.terms, values, cond_sd):
        columns = pd.MultiIndex.from_product([["condval", "condsd"], list(term.names)])
        frame = pd.DataFrame(
            np.concatenate([val, sd], axis=1),
            index=pd.Index(term.levels, name=term.factor),
            columns=columns,
        )
        out[term.factor] = (
            frame if term.factor not in out else pd.concat([out[term.factor], frame], axis=1)
        )
    return {k: v[["condval", "condsd"]] for k, v in out.items()}


def wald_table(beta, vcov, names) -> pd.DataFrame:
    """estimate, std_error, z_value, p_value and the 95% Wald interval of each coefficient."""
    beta = np.asarray(beta, dtype=float)
    se = np.sqrt(np.diag(np.asarray(vcov, dtype=float)))
    z, half = beta / se, special.ndtri(0.975) * se
    return pd.DataFrame(
        {
            "estimate": beta,
            "std_error": se,
            "z_value": z,
            "p_value": 2 * special.ndtr(-np.abs(z)),
            "lower": beta - half,
            "upper": beta + half,
        },
        index=list(names),
    )
