"""Tests of linear hypotheses L beta = 0 on the fixed effects of a frequentist fit.

Gaussian LMMs use t and F tests with denominator df by Satterthwaite or Kenward-Roger (as
lmerTest and pbkrtest) or the residual df n - p; other families use Wald z and chi-square tests.
Per-term hypotheses for `anova`: type 1 (sequential) takes the term's rows of the upper
Cholesky factor R of X'X (R'R = X'X, the Doolittle rows lmerTest uses); type 3 tests the term's
columns of the same model coded with sum-to-zero contrasts (coding-invariant marginal
hypotheses), mapped to this fit's treatment-coded beta through X_sum = X T.
"""

from __future__ import annotations

import re

import formulae
import numpy as np
import pandas as pd
from scipy import special

from ..design.formula import tokens
from ..errors import ModelError
from ..families import is_linear_gaussian
from ..frequentist.denominator_df import KenwardRoger, satterthwaite_pieces, satterthwaite_test

DDF = ("satterthwaite", "kenward-roger", "residual")


def hypothesis_matrix(spec, L) -> np.ndarray:
    """L as an (r, p) array: an array, a dict {column: weight} or a list of such dicts."""
    names = list(spec.fixed_names)
    rows = (
        L
        if isinstance(L, (list, tuple)) and L and isinstance(L[0], dict)
        else [L]
        if isinstance(L, dict)
        else None
    )
    if rows is None:
        matrix = np.atleast_2d(np.asarray(L, dtype=float))
    else:
        matrix = np.zeros((len(rows), len(names)))
        for i, row in enumerate(rows):
            for name, weight in row.items():
                if name not in names:
                    raise ModelError(f"no fixed effect named {name!r}; fixed effects are {names}")
                matrix[i, names.index(name)] = weight
    if matrix.shape[1] != len(names):
        raise ModelError(
            f"L must have {len(names)} columns (one per fixed effect: {names}), "
            f"got shape {matrix.shape}"
        )
    if not np.all(np.isfinite(matrix)):
        raise ModelError(
            f"L has NaN or infinite weights (row(s) "
            f"{np.flatnonzero(~np.isfinite(matrix).all(axis=1)).tolist()})"
        )
    if matrix.shape[0] == 0 or not np.all(matrix.any(axis=1)):
        raise ModelError(
            "L has a row with no non-zero weight: each row must name at least one "
            f"fixed effect ({names})"
        )
    return matrix


class FixedEffectTests:
    """The df machinery for one fit, computed on first use."""

    def __init__(self, fit):
        self.fit, self.spec = fit, fit.spec
        self.gaussian = is_linear_gaussian(fit.spec.family, fit.spec.link)
        self._satterthwaite = self._kenward_roger = None

    def resolve_ddf(self, ddf: str | None) -> str:
        """The denominator df asked for: None is Satterthwaite's for gaussian LMMs and the
        asymptotic (z, chi-square) tests for GLMMs, which have no other."""
        if ddf is None:
            return "satterthwaite" if self.gaussian else "asymptotic"
        ddf = str(ddf).lower().replace("_", "-")
        if not self.gaussian and ddf != "asymptotic":
            raise ModelError(
                f"ddf={ddf!r} applies to gaussian LMMs; GLMMs use Wald z / "
                "chi-square tests (ddf='asymptotic', the default)"
            )
        return ddf

    def _check_ddf(self, ddf: str | None) -> str:
        ddf = self.resolve_ddf(ddf)
        if not self.gaussian:
            return ddf
        if ddf not in DDF + ("asymptotic",):
            raise ModelError(f"ddf must be one of {DDF + ('asymptotic',)}, got {ddf!r}")
        if ddf == "kenward-roger" and self.fit.method != "REML":
            raise ModelError("Kenward-Roger applies to REML fits (as pbkrtest): use fit_reml()")
        return ddf

    def satterthwaite(self):
        if self._satterthwaite is None:
            layout, arrays = self.fit.model.engine_data()
            est = self.fit.estimate
            self._satterthwaite = satterthwaite_pieces(
                est.theta,
                est.aux,
                arrays,
                layout,
                reml=self.fit.method == "REML",
                residual=list(est.residual.values()),
            )
        return self._satterthwaite

    def kenward_roger(self) -> KenwardRoger:
        if self._kenward_roger is None:
            if not self.spec.residual.is_trivial or any(
                t.relatedness is not None for t in self.spec.terms
            ):
                raise ModelError(
                    "Kenward-Roger builds Var(y) from the random-effect terms alone; "
                    "with a residual structure, weights or a known covariance (cov=) "
                    "use ddf='satterthwaite'"
                )
            self._kenward_roger = KenwardRoger(
                self.spec, self.fit._covariances, self.fit.estimate.aux
            )
        return self._kenward_roger

    def vcov(self, ddf: str) -> np.ndarray:
        return self.kenward_roger().Phi_A if ddf == "kenward-roger" else self.fit.estimate.vcov

    def test(self, L: np.ndarray, ddf: str) -> dict:
        """F (or chi-square / q for GLMMs), NumDF, DenDF and the p-value of L beta = 0."""
        ddf = self._check_ddf(ddf)
        beta = self.fit.estimate.beta
        if ddf == "kenward-roger":
            F, q, den = self.kenward_roger().test(L, beta)
        elif ddf == "satterthwaite":
            F, q, den = satterthwaite_test(L, beta, *self.satterthwaite())
        else:
            Lb = L @ beta
            q = float(np.linalg.matrix_rank(L))
            F = float(Lb @ np.linalg.solve(L @ self.fit.estimate.vcov @ L.T, Lb)) / q
            den = float(self.spec.n_obs - len(beta)) if ddf == "residual" else np.inf
        p = special.fdtrc(q, den, F) if np.isfinite(den) else special.chdtrc(q, F * q)
        return {"F": F, "NumDF": q, "DenDF": den, "p_value": float(p)}

    def contrasts(self, L: np.ndarray, ddf: str) -> pd.DataFrame:
        """One t (or z) test per row of L: estimate, std_error, df, statistic, p_value."""
        ddf = self._check_ddf(ddf)
        V = self.vcov(ddf)
        out = []
        for l in L:
            estimate, se = float(l @ self.fit.estimate.beta), float(np.sqrt(l @ V @ l))
            df = self.test(l[None], ddf)["DenDF"]
            out.append(
                {
                    "estimate": estimate,
                    "std_error": se,
                    "df": df,
                    "statistic": estimate / se,
                    "p_value": 2 * special.stdtr(df, -abs(estimate / se)),  # normal at df = inf
                }
            )
        return pd.DataFrame(out)


def term_hypotheses(spec, type: int | str = 3) -> dict[str, np.ndarray]:
    """Per fixed-effect term (intercept aside), its hypothesis matrix L."""
    design = spec.designs[0]
    names = list(spec.fixed_names)
    terms = {t: cols for t, cols in design.term_columns.items() if t != "(Intercept)"}
    if str(type) in ("1", "I"):
        R = np.linalg.cholesky(spec.X.T @ spec.X).T
        return {t: R[[names.index(c) for c in cols]] for t, cols in terms.items()}
    if str(type) not in ("3", "III"):
        raise ModelError(f"type must be 1 or 3, got {type!r}")
    sum_design = formulae.design_matrices(_sum_coded(spec), spec.data, na_action="error").common
    X_sum = np.asarray(sum_design.design_matrix, dtype=float)
    # a cumulative model's X lacks the intercept its design has (the thresholds stand in for
    # it): beta_sum = T^{-1} (intercept, beta), whose intercept column is 0 in the other rows
    dropped = int("(Intercept)" in design.term_columns and not spec.has_intercept)
    X = np.column_stack([np.ones(spec.n_obs), spec.X]) if dropped else spec.X
    T = np.linalg.lstsq(X, X_sum, rcond=None)[0]  # X_sum = X T
    to_sum = np.linalg.inv(T)[:, dropped:]  # beta_sum = T^{-1} beta
    sum_terms = list(sum_design.terms.values())
    out, start = {}, 0
    for name, term in zip(design.term_columns, sum_terms):
        width = len(term.labels)
        if name != "(Intercept)":
            out[name] = to_sum[start : start + width]
        start += width
    return out


def _sum_coded(spec) -> str:
    """The fixed part with every categorical column as C(column, Sum)."""
    categorical = {
        c
        for c in spec.data.columns
        if not pd.api.types.is_numeric_dtype(spec.data[c]) or spec.data[c].dtype == bool
    }
    found, pieces = tokens(spec.parsed.fixed), []
    for i, (kind, tok) in enumerate(found):
        following = found[i + 1][1] if i + 1 < len(found) else ""
        preceding = found[i - 2][1] if i >= 2 else ""
        name = tok.strip("`")
        if (
            kind in ("name", "quoted")
            and name in categorical
            and following != "("
            and preceding != "C"
        ):
            pieces.append(f"C({tok}, Sum)")
        else:
            pieces.append(tok)
    return re.sub(r"\s+", " ", " ".join(pieces))
